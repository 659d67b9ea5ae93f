//! `medley plan`: the cost-minimising GPU mix.

use std::io::Write;

use clap::Args;
use experiments::planning::{PlanSettings, WorkloadInput, WorkloadPlan, plan_workload};
use gpu_models::Catalog;
use sim::SimConfig;
use solver::{
    Formulation, MelangeOutput, MelangeOverrides, SolveOptions, TimedPlan, VerifySettings,
    plan_melange_file,
};
use workloads::SizeHistogram;

use super::CmdResult;
use super::common::{router_arg, workload_requests};
use super::profile::{ProfileArgs, render_profiles};

/// Arguments of `medley plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Mélange input JSON (`gpu_info`, `workload_distribution`, `total_request_rate`, `slice_factor`).
    /// The file holds the capacities, prices and mix, so the profiling, workload and engine
    /// flags of `--workload` planning cannot be given with it.
    #[arg(long, conflicts_with_all = [
        "workload", "gpus", "tpot_stat", "ttft_stat", "buckets", "lengths", "requests_per_trial",
        "replicates", "tolerance", "prices", "seed", "cache_dir", "no_cache", "model", "batching",
        "max_num_seqs", "max_batched_tokens", "preemption", "queue", "mem_util", "max_model_len",
        "dtype", "slo_ttft", "slo_tpot", "slo_norm_latency", "duration",
        // Listed too, not left to their `requires`: a present conflicting argument (this one,
        // against --workload) lifts clap's requirements, and they would be ignored.
        "verify", "target", "max_rounds", "router", "windows", "schedule_out",
    ])]
    pub melange_json: Option<std::path::PathBuf>,
    /// Slices per bucket (1 to 1000), replacing the file's `slice_factor`.
    #[arg(long)]
    pub slice_factor: Option<u32>,
    /// Total request rate (req/s), replacing the file's `total_request_rate`.
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Integer program: `compact` (fast) or `melange` (Mélange's own, one binary per slice).
    #[arg(long, default_value = "compact")]
    pub formulation: Formulation,
    /// Extra rate fraction to provision for (0.2 plans for 1.2 × the rate).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub headroom: f64,
    /// Most instances of a type, as NAME=COUNT (repeatable).
    #[arg(long = "cap", value_parser = parse_count)]
    pub caps: Vec<(String, u32)>,
    /// Least instances of a type, as NAME=COUNT (repeatable).
    #[arg(long = "min", value_parser = parse_count)]
    pub minimums: Vec<(String, u32)>,
    /// Solver: `auto` (branch-and-bound for the compact program, microlp for Mélange's),
    /// `branch-and-bound` or `microlp`.
    #[arg(long, default_value = "auto")]
    pub backend: solver::Backend,
    /// Give up (with an error) if the search has not ended, with optimality (or the --gap
    /// tolerance) proven, within this many seconds.
    #[arg(long, allow_negative_numbers = true)]
    pub time_limit: Option<f64>,
    /// Branch and bound: nodes to search before returning the best plan found, marked not proven
    /// optimal with its remaining gap (deterministic, unlike --time-limit); 0 for no limit.
    #[arg(long, default_value_t = solver::DEFAULT_NODE_LIMIT)]
    pub node_limit: u64,
    /// Branch and bound: stop once no plan can be cheaper than the one found by more than this
    /// percentage (e.g. 1 for 1%); the plan then reports the bound it proved. 0 proves optimality.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub gap: f64,
    /// Print the full plan as JSON instead of a table.
    #[arg(long, conflicts_with = "melange_output")]
    pub json: bool,
    /// Print Mélange's output shape (`{"<gpu>": count, ..., "cost": $/h}`) instead of a table.
    #[arg(long)]
    pub melange_output: bool,
    /// Profiling and workload inputs (used with --workload).
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Length of the stream drawn from a preset (histogram and verification), e.g. `30m`
    /// (default 10m; presets only: a trace is replayed to its end).
    #[arg(long)]
    pub duration: Option<String>,
    /// Simulate the plan on the workload; if it misses the SLO, derate and re-plan.
    #[arg(long, requires = "workload")]
    pub verify: bool,
    /// With --verify: per-request SLO attainment the fleet must also reach (e.g. 0.99).
    #[arg(long, requires = "verify", allow_negative_numbers = true)]
    pub target: Option<f64>,
    /// With --verify: rounds of derating and re-planning before giving up.
    #[arg(long, default_value_t = 6, requires = "verify")]
    pub max_rounds: u32,
    /// With --verify: router of the simulated fleet.
    #[arg(long, default_value = "melange", requires = "verify")]
    pub router: String,
    /// With --workload: also plan one fleet per time window of a rate forecast, given as
    /// consecutive `LENGTH=RATE` windows (e.g. `6h=2,6h=10,12h=4`), and compare the schedule's
    /// cost with one fleet sized for the peak window.
    #[arg(long, requires = "workload")]
    pub windows: Option<String>,
    /// With --windows: write the per-window fleets as a schedule file (TOML) for
    /// `medley simulate --autoscale schedule --schedule FILE`.
    #[arg(long, requires = "windows")]
    pub schedule_out: Option<std::path::PathBuf>,
}

/// Parses consecutive `LENGTH=RATE` windows into labelled time windows.
fn parse_windows(text: &str) -> Result<Vec<solver::TimeWindow>, String> {
    let mut windows = Vec::new();
    let mut start_s = 0.0;
    for part in text.split(',').map(str::trim) {
        let bad = || format!("--windows entry '{part}': expected LENGTH=RATE, e.g. 6h=2.5");
        let (length, rate) = part.split_once('=').ok_or_else(bad)?;
        let length_s = sim::parse_duration_s(length.trim()).ok_or_else(bad)?;
        let rate: f64 = rate.trim().parse().map_err(|_| bad())?;
        if !(length_s > 0.0 && length_s.is_finite()) {
            return Err(format!(
                "--windows entry '{part}': the length must be positive"
            ));
        }
        if !(rate >= 0.0 && rate.is_finite()) {
            return Err(format!(
                "--windows entry '{part}': the rate must be >= 0 req/s"
            ));
        }
        let end_s = start_s + length_s;
        windows.push(solver::TimeWindow {
            label: format!("{}-{}", clock(start_s), clock(end_s)),
            hours: length_s / 3600.0,
            request_rate: rate,
            bucket_fractions: None,
        });
        start_s = end_s;
    }
    Ok(windows)
}

/// Seconds as the shortest exact `h`, `m` or `s` text.
fn clock(seconds: f64) -> String {
    if seconds == 0.0 {
        "0".to_string()
    } else if seconds % 3600.0 == 0.0 {
        format!("{}h", seconds / 3600.0)
    } else if seconds % 60.0 == 0.0 {
        format!("{}m", seconds / 60.0)
    } else {
        format!("{seconds}s")
    }
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
pub fn run(args: PlanArgs, catalog: &Catalog) -> CmdResult {
    let Some(path) = &args.melange_json else {
        return match args.profile.workload.clone() {
            Some(workload) => plan_for_workload(args, &workload, catalog),
            None => Err(
                "plan: give --workload PRESET|TRACE (profile by simulation), or --melange-json FILE"
                    .into(),
            ),
        };
    };
    let time_limit = time_limit(args.time_limit)?;
    let overrides = MelangeOverrides {
        slice_factor: args.slice_factor,
        total_request_rate: args.rate,
        headroom: args.headroom,
        caps: args.caps,
        minimums: args.minimums,
    };
    let options = SolveOptions {
        formulation: args.formulation,
        backend: args.backend,
        time_limit,
        node_limit: node_limit(args.node_limit),
        relative_gap: relative_gap(args.gap)?,
    };
    let start = std::time::Instant::now();
    let plan = plan_melange_file(path, &overrides, &options)?;
    // The wall-clock time is shown and printed with --json, but kept out of the plan itself.
    let timed = TimedPlan {
        solve_seconds: start.elapsed().as_secs_f64(),
        plan,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&timed)? + "\n"
    } else if args.melange_output {
        warn_if_unproven(&timed.plan);
        serde_json::to_string_pretty(&MelangeOutput::from_plan(&timed.plan))? + "\n"
    } else {
        timed.to_string()
    };
    // A closed pipe (`| head`) is not an error worth a panic or a message.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => return Err(err.into()),
        _ => {}
    }
    Ok(())
}

/// Mélange's output shape has no room to say a plan is unproven, so it is said on stderr.
fn warn_if_unproven(plan: &solver::Plan) {
    if !plan.proven_optimal {
        eprintln!(
            "note: this plan is not proven optimal; no plan costs less than ${:.4}/h (gap {:.3}%)",
            plan.cost_lower_bound,
            plan.optimality_gap() * 100.0
        );
    }
}

/// `--node-limit`: 0 means none.
fn node_limit(nodes: u64) -> Option<u64> {
    (nodes > 0).then_some(nodes)
}

/// `--gap`, a percentage, as the fraction the solver takes.
fn relative_gap(percent: f64) -> Result<f64, String> {
    if percent.is_finite() && (0.0..100.0).contains(&percent) {
        Ok(percent / 100.0)
    } else {
        Err(format!(
            "--gap {percent}: expected a percentage in [0, 100), e.g. 1 for 1%"
        ))
    }
}

fn time_limit(seconds: Option<f64>) -> Result<Option<std::time::Duration>, String> {
    match seconds {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => {
            std::time::Duration::try_from_secs_f64(seconds)
                .map(Some)
                .map_err(|_| format!("--time-limit {seconds}: too large; expected seconds > 0"))
        }
        Some(seconds) => Err(format!("--time-limit {seconds}: expected seconds > 0")),
        None => Ok(None),
    }
}

/// `medley plan --workload`: profile by simulation, solve, and optionally verify by simulation.
fn plan_for_workload(args: PlanArgs, workload: &str, catalog: &Catalog) -> CmdResult {
    // Options are checked before the profiling, which can take minutes.
    let options = SolveOptions {
        formulation: args.formulation,
        backend: args.backend,
        time_limit: time_limit(args.time_limit)?,
        node_limit: node_limit(args.node_limit),
        relative_gap: relative_gap(args.gap)?,
    };
    if let Some(target) = args.target
        && !(target > 0.0 && target <= 1.0)
    {
        return Err(format!("--target {target}: expected a fraction in (0, 1]").into());
    }
    let windows = match &args.windows {
        Some(text) => parse_windows(text)?,
        None => Vec::new(),
    };
    let quiet = args.profile.quiet;
    let (requests, description, rate_rps) = workload_requests(
        workload,
        args.rate,
        args.duration.as_deref(),
        args.profile.seed,
    )?;
    let edges = args.profile.edges()?;
    let histogram = SizeHistogram::from_requests(edges, &requests);
    if !quiet {
        // The description gives the request count; the histogram is a table of its own.
        eprintln!("workload: {description}\n{histogram}");
    }
    let profiles = args.profile.run(catalog, Some(&requests))?;
    let verify = if args.verify {
        Some(VerifySettings {
            target_attainment: args.target,
            max_rounds: args.max_rounds,
            sim: SimConfig {
                engine: args.profile.engine.engine()?,
                queue: args.profile.engine.queue()?,
                router: router_arg(&args.router)?,
                seed: args.profile.seed,
                ..SimConfig::default()
            },
            ..VerifySettings::default()
        })
    } else {
        None
    };
    let settings = PlanSettings {
        slice_factor: args.slice_factor.unwrap_or(8),
        headroom: args.headroom,
        caps: args.caps.clone(),
        minimums: args.minimums.clone(),
        options,
        verify,
        simulate_baselines: None,
        windows,
    };
    let report = plan_workload(
        profiles,
        WorkloadInput {
            requests: &requests,
            description: &description,
            rate_rps,
            histogram: &histogram,
        },
        &settings,
        catalog,
        &args.profile.engine.instance_options()?,
    )
    .map_err(|err| err.to_string())?;
    if let (Some(path), Some(schedule)) = (&args.schedule_out, &report.schedule) {
        std::fs::write(path, experiments::planning::schedule_toml(schedule))
            .map_err(|err| format!("{}: cannot write: {err}", path.display()))?;
        if !quiet {
            eprintln!(
                "schedule written to {}: replay it with medley simulate --autoscale schedule \
                 --schedule {} (the cluster must list every type, e.g. with 0 replicas)",
                path.display(),
                path.display()
            );
        }
    }
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else if args.melange_output {
        // With --verify the fleet to run is the verified one, not the solver's first plan.
        let plan = match &report.verification {
            Some(verification) => {
                if verification.verified_usd_per_hour.is_none() {
                    eprintln!(
                        "note: no fleet met the SLO in simulation; this is the last one tried, \
                         which missed it"
                    );
                }
                &verification.final_plan
            }
            None => &report.plan,
        };
        warn_if_unproven(plan);
        serde_json::to_string_pretty(&MelangeOutput::from_plan(plan))? + "\n"
    } else {
        render_workload_plan(&report)
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => return Err(err.into()),
        _ => {}
    }
    Ok(())
}

fn render_workload_plan(report: &WorkloadPlan) -> String {
    let mut out = render_profiles(&report.profiles);
    out.push_str(&format!(
        "\nworkload: {} ({} requests)\n",
        report.workload, report.requests
    ));
    if report.beyond_every_type > 0 {
        out.push_str(&format!(
            "{} requests are longer than any profiled type holds: they are not planned for, and \
             left out of the verifying simulations (no fleet of these types serves them)\n",
            report.beyond_every_type
        ));
    }
    if report.beyond_buckets > 0 {
        out.push_str(&format!(
            "{} requests lie beyond the last bucket edge and are not planned for\n",
            report.beyond_buckets
        ));
    }
    if !report.unservable_buckets.is_empty() {
        out.push_str(&format!(
            "{:.2}% of requests fall in buckets no instance type can serve under the SLO ({}); they are not planned for and will miss\n",
            report.unservable_share * 100.0,
            report.unservable_buckets.join(", ")
        ));
    }
    out.push('\n');
    if report.verification.is_some() {
        out.push_str("the solver's plan, before verification (which may change it, below):\n");
    }
    let timed = TimedPlan {
        plan: report.plan.clone(),
        solve_seconds: report.solve_seconds,
    };
    out.push_str(&timed.to_string());
    if let Some(schedule) = &report.schedule {
        out.push_str(
            "\nschedule: one fleet per window of the forecast (req/s: the share of each window's \
             rate the plan covers, as for the plan above)\n",
        );
        out.push_str(&schedule.to_string());
    }
    if let Some(verification) = &report.verification {
        out.push('\n');
        out.push_str(&verification.to_string());
    }
    out
}
