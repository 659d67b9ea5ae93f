//! `medley plan`: the cost-minimising GPU mix.

use std::io::Write;

use clap::Args;
use gpu_models::Catalog;
use serde::Serialize;
use sim::{Cluster, ClusterEntry, SimConfig};
use solver::{
    Formulation, GpuType, MelangeOutput, MelangeOverrides, Plan, PlanProblem, ProfileSet,
    SolveOptions, VerifyOutcome, VerifySettings, WorkloadClass, plan_melange_file,
};
use workloads::SizeHistogram;

use super::CmdResult;
use super::common::router_arg;
use super::profile::{ProfileArgs, WorkloadSource, render_profiles};

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
    /// Give up (with an error) if optimality is not proven within this many seconds.
    #[arg(long, allow_negative_numbers = true)]
    pub time_limit: Option<f64>,
    /// Print the full plan as JSON instead of a table.
    #[arg(long, conflicts_with = "melange_output")]
    pub json: bool,
    /// Print Mélange's output shape (`{"<gpu>": count, ..., "cost": $/h}`) instead of a table.
    #[arg(long)]
    pub melange_output: bool,
    /// Profiling and workload inputs (used with --workload).
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Length of the workload stream drawn from a preset (histogram and verification), e.g. `10m`.
    #[arg(long, default_value = "10m")]
    pub duration: String,
    /// Simulate the plan on the workload; if it misses the SLO, derate and re-plan.
    #[arg(long, requires = "workload")]
    pub verify: bool,
    /// With --verify: per-request SLO attainment the fleet must also reach (e.g. 0.99).
    #[arg(long, requires = "verify", allow_negative_numbers = true)]
    pub target: Option<f64>,
    /// With --verify: rounds of derating and re-planning before giving up.
    #[arg(long, default_value_t = 6)]
    pub max_rounds: u32,
    /// With --verify: router of the simulated fleet.
    #[arg(long, default_value = "melange")]
    pub router: String,
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
            Some(workload) => plan_workload(args, &workload, catalog),
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

fn time_limit(seconds: Option<f64>) -> Result<Option<std::time::Duration>, String> {
    match seconds {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => {
            Ok(Some(std::time::Duration::from_secs_f64(seconds)))
        }
        Some(seconds) => Err(format!("--time-limit {seconds}: expected seconds > 0")),
        None => Ok(None),
    }
}

/// Everything `medley plan --workload` found, for `--json`.
#[derive(Debug, Serialize)]
pub struct WorkloadPlan {
    /// The workload planned for.
    pub workload: String,
    /// Its mean rate, req/s.
    pub rate_rps: f64,
    /// Requests in the workload stream.
    pub requests: u64,
    /// Requests beyond the last bucket edge (not planned for).
    pub beyond_buckets: u64,
    /// Buckets holding requests that no instance type can serve under the SLO.
    pub unservable_buckets: Vec<String>,
    /// Share of requests in those buckets (not planned for; they will miss).
    pub unservable_share: f64,
    /// The capacity profiles.
    pub profiles: ProfileSet,
    /// The optimal mix under the profiles.
    pub plan: Plan,
    /// With --verify: every round of simulation and re-planning.
    pub verification: Option<VerifyOutcome>,
}

/// The planning problem from profiles and a histogram; buckets nobody can serve are left out
/// (returned, with their share) rather than making the program infeasible.
fn problem_from_profiles(
    profiles: &ProfileSet,
    histogram: &SizeHistogram,
    rate_rps: f64,
) -> Result<(PlanProblem, Vec<String>, f64), String> {
    let usable: Vec<_> = profiles
        .types
        .iter()
        .filter(|t| t.unusable.is_none())
        .collect();
    if usable.is_empty() {
        let reasons: Vec<String> = profiles
            .types
            .iter()
            .map(|t| format!("{}: {}", t.instance, t.unusable.as_deref().unwrap_or("")))
            .collect();
        return Err(format!(
            "no instance type can serve {}: {}",
            profiles.model,
            reasons.join("; ")
        ));
    }
    let fractions = histogram.fractions();
    let mut labels = Vec::new();
    let mut kept_fractions = Vec::new();
    let mut capacity: Vec<Vec<f64>> = vec![Vec::new(); usable.len()];
    let mut unservable = Vec::new();
    let mut unservable_share = 0.0;
    for (i, row) in fractions.iter().enumerate() {
        for (j, &fraction) in row.iter().enumerate() {
            if fraction <= 0.0 {
                continue;
            }
            let label = solver::melange::bucket_label(i, j);
            if usable.iter().all(|t| t.cells[i][j].capacity_rps <= 0.0) {
                unservable.push(label);
                unservable_share += fraction;
                continue;
            }
            labels.push(label);
            kept_fractions.push(fraction);
            for (table, profile) in capacity.iter_mut().zip(&usable) {
                table.push(profile.cells[i][j].capacity_rps);
            }
        }
    }
    let kept: f64 = kept_fractions.iter().sum();
    if kept <= 0.0 {
        return Err(format!(
            "no request of the workload can be served under {} by {}",
            profiles.slo_text,
            usable
                .iter()
                .map(|t| t.instance.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    kept_fractions.iter_mut().for_each(|f| *f /= kept);
    let problem = PlanProblem {
        gpu_types: usable
            .iter()
            .map(|t| GpuType {
                gpus_per_instance: t.tp,
                ..GpuType::new(t.instance.clone(), t.usd_per_hour)
            })
            .collect(),
        classes: vec![WorkloadClass {
            name: "workload".into(),
            request_rate: rate_rps * kept * (histogram.in_range() as f64 / histogram.total().max(1) as f64),
            bucket_labels: labels,
            bucket_fractions: kept_fractions,
            capacity,
        }],
        slice_factor: 8,
        headroom: 0.0,
    };
    Ok((problem, unservable, unservable_share))
}

/// The cluster a plan buys, for simulation.
fn cluster_of(
    plan: &Plan,
    profiles: &ProfileSet,
    catalog: &Catalog,
    args: &ProfileArgs,
) -> Result<Cluster, String> {
    let entries: Vec<ClusterEntry> = plan
        .allocations
        .iter()
        .filter(|a| a.instances > 0)
        .map(|a| {
            let table = profiles
                .types
                .iter()
                .find(|t| t.instance == a.gpu_type)
                .ok_or_else(|| format!("plan names an unprofiled type {}", a.gpu_type))?;
            Ok(ClusterEntry {
                gpu: table.gpu.clone(),
                count: a.instances,
                tp: table.tp,
            })
        })
        .collect::<Result<_, String>>()?;
    if entries.is_empty() {
        return Err("the plan buys no instances (is the rate zero?)".into());
    }
    Cluster::build(
        &entries,
        catalog,
        &args.engine.model,
        &args.engine.instance_options()?,
        args.prices.as_deref(),
    )
}

/// `medley plan --workload`: profile by simulation, solve, and optionally verify by simulation.
fn plan_workload(args: PlanArgs, workload: &str, catalog: &Catalog) -> CmdResult {
    let quiet = args.profile.quiet;
    let source = WorkloadSource::resolve(workload)?;
    let duration_s = sim::parse_duration_s(&args.duration).ok_or_else(|| {
        format!(
            "--duration: expected a duration like 600s, 10m or 1h, found '{}'",
            args.duration
        )
    })?;
    let (requests, description, rate_rps) =
        source.requests(args.rate, duration_s, args.profile.seed)?;
    if requests.is_empty() {
        return Err(format!("the workload ({description}) has no requests").into());
    }
    let edges = args.profile.edges()?;
    let histogram = SizeHistogram::from_requests(edges, &requests);
    if !quiet {
        eprintln!("workload: {description}; {} requests, {histogram}", requests.len());
    }
    let profiles = args.profile.run(catalog, Some(&requests))?;
    let (mut problem, unservable, unservable_share) =
        problem_from_profiles(&profiles, &histogram, rate_rps)?;
    let overrides = MelangeOverrides {
        slice_factor: Some(args.slice_factor.unwrap_or(8)),
        total_request_rate: None,
        headroom: args.headroom,
        caps: args.caps.clone(),
        minimums: args.minimums.clone(),
    };
    overrides.apply(&mut problem)?;
    let options = SolveOptions {
        formulation: args.formulation,
        time_limit: time_limit(args.time_limit)?,
    };
    let plan = solver::solve(&problem, &options)?;
    let verification = if args.verify {
        if let Some(target) = args.target
            && !(target > 0.0 && target <= 1.0)
        {
            return Err(format!("--target {target}: expected a fraction in (0, 1]").into());
        }
        let settings = VerifySettings {
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
        };
        let capacity = profiles.capacity_table();
        let slo = profiles.slo;
        Some(solver::plan_and_verify(
            &problem,
            &options,
            &capacity,
            &slo,
            &requests,
            &settings,
            &|plan| cluster_of(plan, &profiles, catalog, &args.profile),
        )?)
    } else {
        None
    };
    let beyond_buckets = histogram.overflow;
    let report = WorkloadPlan {
        workload: description,
        rate_rps,
        requests: requests.len() as u64,
        beyond_buckets,
        unservable_buckets: unservable,
        unservable_share,
        profiles,
        plan,
        verification,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else if args.melange_output {
        serde_json::to_string_pretty(&MelangeOutput::from_plan(&report.plan))? + "\n"
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
    out.push_str(&report.plan.to_string());
    if let Some(verification) = &report.verification {
        out.push('\n');
        out.push_str(&verification.to_string());
    }
    out
}
