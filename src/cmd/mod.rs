//! One module per subcommand: argument parsing (clap) and printing; the work lives in the crates.

pub mod bench;
pub mod catalog;
pub mod common;
pub mod figures;
pub mod plan;
pub mod profile;
pub mod report;
pub mod run;
pub mod simulate;
pub mod table;
pub mod validate;
pub mod whatif;
pub mod workload;

/// Error type shared by the subcommands.
pub type CmdResult = Result<(), Box<dyn std::error::Error>>;
