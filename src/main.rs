//! The `medley` command line: simulate, profile, plan and compare LLM serving on mixed GPU fleets.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// medley: simulate and plan LLM serving on heterogeneous GPU clusters.
#[derive(Debug, Parser)]
#[command(name = "medley", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    catalog: cmd::catalog::CatalogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List GPU types: memory, bandwidth, FLOPS, links, power and $/GPU-hour.
    Gpus(cmd::catalog::GpusArgs),
    /// List LLM architectures and their sources.
    Models(cmd::catalog::ModelsArgs),
    /// List the price books side by side.
    Prices(cmd::catalog::PricesArgs),
    /// Does a model fit a GPU type, how big is its KV cache, how fast does it run?
    Instance(cmd::catalog::InstanceArgs),
    /// Fit the latency model's efficiency factors to measured prefill/decode times.
    Calibrate(cmd::catalog::CalibrateArgs),
    /// Replay a request stream against a cluster of (mixed) GPU replicas.
    Simulate(Box<cmd::simulate::SimulateArgs>),
    /// Measure simulator speed (requests/s, iterations/s, peak memory).
    Bench(cmd::bench::BenchArgs),
    /// Workload tools: trace statistics, synthetic generation, presets.
    #[command(subcommand)]
    Workload(cmd::workload::WorkloadCmd),
    /// Run an experiment config (default: the built-in quick start): sweep, tables, figures.
    Run(Box<cmd::run::RunArgs>),
    /// Combine the results of sharded runs into one table (and figures).
    Merge(cmd::run::MergeArgs),
    /// Redraw every figure a results directory supports.
    Plot(cmd::run::PlotArgs),
    /// Max req/s per instance type and request-size bucket under an SLO, by simulated load tests.
    Profile(Box<cmd::profile::ProfileCmdArgs>),
    /// Solve the cost-minimising GPU mix (Mélange's integer program); --verify checks it by simulation.
    Plan(Box<cmd::plan::PlanArgs>),
    /// Simulate a chosen fleet on a workload: SLO attainment overall, per GPU type and per bucket, and its cost.
    Validate(Box<cmd::validate::ValidateArgs>),
    /// Write one shareable page (Markdown, HTML) of a results directory's tables and figures.
    Report(cmd::report::ReportArgs),
    /// Re-plan the cheapest mix as one GPU's price varies; find where types enter or leave.
    Whatif(Box<cmd::whatif::WhatIfArgs>),
}

/// Exit status of a process stopped by SIGPIPE in a shell (128 + 13).
const BROKEN_PIPE_EXIT: i32 = 141;

fn main() -> ExitCode {
    // When the reader of our output goes away (`medley simulate ... | head -1`), `println!`
    // panics; stop quietly instead, as Unix tools do when SIGPIPE ends them.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    let catalog = match cli.catalog.load() {
        Ok(catalog) => catalog,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Gpus(args) => cmd::catalog::gpus(args, &catalog),
        Command::Models(args) => cmd::catalog::models(args, &catalog),
        Command::Prices(args) => cmd::catalog::prices(args, &catalog),
        Command::Instance(args) => cmd::catalog::instance(args, &catalog),
        Command::Calibrate(args) => cmd::catalog::calibrate_cmd(args, &catalog),
        Command::Simulate(args) => cmd::simulate::run(*args, &catalog),
        Command::Bench(args) => cmd::bench::run(args, &catalog),
        Command::Workload(workload_cmd) => cmd::workload::run(workload_cmd),
        Command::Run(args) => cmd::run::run(*args, &catalog),
        Command::Merge(args) => cmd::run::merge(args),
        Command::Plot(args) => cmd::run::plot(args),
        Command::Profile(args) => cmd::profile::run(*args, &catalog),
        Command::Plan(args) => cmd::plan::run(*args, &catalog),
        Command::Validate(args) => cmd::validate::run(*args, &catalog),
        Command::Report(args) => cmd::report::run(args),
        Command::Whatif(args) => cmd::whatif::run(*args, &catalog),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
