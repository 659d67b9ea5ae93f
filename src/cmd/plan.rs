//! `medley plan`: the cost-minimising GPU mix.

use clap::Args;

use super::CmdResult;

/// Arguments of `medley plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Mélange input JSON (`gpu_info`, `workload_distribution`, `total_request_rate`, `slice_factor`).
    #[arg(long)]
    pub melange_json: Option<std::path::PathBuf>,
}

/// Runs `medley plan`.
pub fn run(_args: PlanArgs) -> CmdResult {
    Err("plan: not built yet".into())
}
