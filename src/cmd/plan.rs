//! `medley plan`: the cost-minimising GPU mix.

use std::io::Write;

use clap::Args;
use solver::{Formulation, MelangeOutput, MelangeOverrides, SolveOptions, plan_melange_file};

use super::CmdResult;

/// Arguments of `medley plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Mélange input JSON (`gpu_info`, `workload_distribution`, `total_request_rate`, `slice_factor`).
    #[arg(long)]
    pub melange_json: Option<std::path::PathBuf>,
    /// Slices per bucket, replacing the file's `slice_factor`.
    #[arg(long)]
    pub slice_factor: Option<u32>,
    /// Total request rate (req/s), replacing the file's `total_request_rate`.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Integer program: `compact` (fast) or `melange` (Mélange's own, one binary per slice).
    #[arg(long, default_value = "compact")]
    pub formulation: Formulation,
    /// Extra rate fraction to provision for (0.2 plans for 1.2 × the rate).
    #[arg(long, default_value_t = 0.0)]
    pub headroom: f64,
    /// Most instances of a type, as NAME=COUNT (repeatable).
    #[arg(long = "cap", value_parser = parse_count)]
    pub caps: Vec<(String, u32)>,
    /// Least instances of a type, as NAME=COUNT (repeatable).
    #[arg(long = "min", value_parser = parse_count)]
    pub minimums: Vec<(String, u32)>,
    /// Give up (with an error) if optimality is not proven within this many seconds.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Print the full plan as JSON instead of a table.
    #[arg(long, conflicts_with = "melange_output")]
    pub json: bool,
    /// Print Mélange's output shape (`{"<gpu>": count, ..., "cost": $/h}`) instead of a table.
    #[arg(long)]
    pub melange_output: bool,
}

/// Parses `NAME=COUNT`.
fn parse_count(text: &str) -> Result<(String, u32), String> {
    let (name, count) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("\"{text}\": expected NAME=COUNT"))?;
    let count = count
        .parse()
        .map_err(|err| format!("\"{text}\": count is not a whole number ({err})"))?;
    Ok((name.to_string(), count))
}

/// Runs `medley plan`.
pub fn run(args: PlanArgs) -> CmdResult {
    let Some(path) = &args.melange_json else {
        return Err("plan: give --melange-json FILE (other inputs are not built yet)".into());
    };
    let time_limit = match args.time_limit {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => {
            Some(std::time::Duration::from_secs_f64(seconds))
        }
        Some(seconds) => return Err(format!("--time-limit {seconds}: expected seconds > 0").into()),
        None => None,
    };
    let overrides = MelangeOverrides {
        slice_factor: args.slice_factor,
        total_request_rate: args.rate,
        headroom: args.headroom,
        caps: args.caps,
        minimums: args.minimums,
    };
    let options = SolveOptions {
        formulation: args.formulation,
        time_limit,
    };
    let plan = plan_melange_file(path, &overrides, &options)?;
    let text = if args.json {
        serde_json::to_string_pretty(&plan)? + "\n"
    } else if args.melange_output {
        serde_json::to_string_pretty(&MelangeOutput::from_plan(&plan))? + "\n"
    } else {
        plan.to_string()
    };
    // A closed pipe (`| head`) is not an error worth a panic or a message.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => return Err(err.into()),
        _ => {}
    }
    Ok(())
}
