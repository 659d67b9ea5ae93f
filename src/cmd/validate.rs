//! `medley validate`: simulate a chosen fleet on a workload and check the SLO overall, per
//! instance type and per size bucket, next to the fleet's cost.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use gpu_models::Catalog;
use serde::Serialize;
use sim::{CapacityTable, Cluster, SimConfig, parse_spec};
use solver::{GroupValidation, SloVerdict, Validation};

use super::CmdResult;
use super::common::{check_router_tables, router_arg, workload_requests};
use super::profile::ProfileArgs;
use super::simulate::{read_assignment, read_capacity};
use super::table::TextTable;

/// Arguments of `medley validate`.
#[derive(Debug, Args)]
#[command(
    after_help = "With the melange router the capacity table comes from --capacity, or else from \
                  profiling the cluster's own instance types (so --gpus cannot be given)."
)]
pub struct ValidateArgs {
    /// The fleet: replicas per GPU type, e.g. `A10G:3,A100-80GB:1` (add `:tpN` for N-GPU replicas).
    /// Its types are the ones profiled, so `--gpus` cannot be given with it.
    #[arg(long, conflicts_with = "gpus")]
    pub cluster: String,
    /// Request rate, req/s: a preset's rate (default: its own), or a trace's arrivals rescaled to it.
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Length of the stream drawn from a preset, e.g. `30m` (default 10m; presets only: a
    /// trace is replayed to its end).
    #[arg(long)]
    pub duration: Option<String>,
    /// Router: melange (Mélange's, by capacity table) or any router of `medley simulate`.
    #[arg(long, default_value = "melange")]
    pub router: String,
    /// Capacity table for the melange router (Mélange `gpu_info` JSON) instead of profiling.
    #[arg(long, value_name = "FILE")]
    pub capacity: Option<PathBuf>,
    /// Load per GPU type and bucket for the size-aware and solver-proportional routers (JSON).
    #[arg(long, value_name = "FILE")]
    pub assignment: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Workload, SLO, engine, price book and (for the melange router) profiling settings.
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// What `medley validate` found.
#[derive(Debug, Serialize)]
pub struct ValidateReport {
    /// The workload simulated.
    pub workload: String,
    /// Its mean rate, req/s.
    pub rate_rps: f64,
    /// Requests in the stream.
    pub requests: u64,
    /// The router.
    pub router: String,
    /// Where the melange router's capacity table came from (`None` for other routers).
    pub capacity_table: Option<String>,
    /// The SLO checked.
    pub slo: String,
    /// Price book of the cost.
    pub price_book: String,
    /// The simulation's verdict: attainment overall, per instance type and per bucket, and cost.
    pub validation: Validation,
}

/// Runs `medley validate`.
pub fn run(mut args: ValidateArgs, catalog: &Catalog) -> CmdResult {
    let Some(workload) = args.profile.workload.clone() else {
        return Err("validate: give --workload PRESET|TRACE to simulate the fleet on".into());
    };
    let entries = parse_spec(&args.cluster).map_err(|err| format!("--cluster: {err}"))?;
    let instance_options = args.profile.engine.instance_options()?;
    let cluster = Cluster::build(
        &entries,
        catalog,
        &args.profile.engine.model,
        &instance_options,
        args.profile.prices.as_deref(),
    )
    .map_err(|err| format!("--cluster {}: {err}", args.cluster))?;
    let router = router_arg(&args.router)?;
    let slo = args.profile.slo()?;
    let edges = args.profile.edges()?;

    let (requests, description, rate_rps) = workload_requests(
        &workload,
        args.rate,
        args.duration.as_deref(),
        args.profile.seed,
    )?;
    if !args.profile.quiet {
        eprintln!("workload: {description}; {} requests", requests.len());
    }

    // Tables a router would not read are mistakes, not inputs to ignore.
    check_router_tables(router, args.capacity.is_some(), args.assignment.is_some())?;
    let (capacity, capacity_source): (Option<CapacityTable>, Option<String>) =
        match (router == sim::RouterKind::Melange, &args.capacity) {
            (false, _) => (None, None),
            (true, Some(path)) => (Some(read_capacity(path)?), Some(path.display().to_string())),
            (true, None) => {
                // Profile exactly the fleet's instance types, with the workload's lengths.
                args.profile.gpus = entries
                    .iter()
                    .map(|entry| match entry.tp {
                        1 => entry.gpu.clone(),
                        tp => format!("{}:tp{tp}", entry.gpu),
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                let profiles = args.profile.run(catalog, Some(&requests))?;
                (
                    Some(profiles.capacity_table()),
                    Some(format!("profiled ({})", profiles.slo_text)),
                )
            }
        };
    let config = SimConfig {
        engine: args.profile.engine.engine()?,
        queue: args.profile.engine.queue()?,
        router,
        seed: args.profile.seed,
        assignment: args
            .assignment
            .as_deref()
            .map(read_assignment)
            .transpose()?,
        ..SimConfig::default()
    };
    let validation = solver::validate(
        &cluster,
        capacity.as_ref(),
        &config,
        &slo,
        &edges,
        requests.iter().cloned(),
    )?;
    let report = ValidateReport {
        workload: description,
        rate_rps,
        requests: requests.len() as u64,
        router: router.name().to_string(),
        capacity_table: capacity_source,
        slo: slo.to_string(),
        price_book: cluster.price_book.clone(),
        validation,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        render(&report)
    };
    // A closed pipe (`| head`) is not an error worth a panic or a message.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => return Err(err.into()),
        _ => {}
    }
    Ok(())
}

fn percent(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

fn milliseconds(seconds: f64) -> String {
    format!("{:.1}", seconds * 1e3)
}

/// Each checked statistic as `name value/target ms`, e.g. `melange e2e/output 81.2/120 ms`, with
/// the requests never served when there were any.
fn verdict_text(verdict: &SloVerdict) -> String {
    verdict
        .checks
        .iter()
        .map(|check| {
            let value = check.value_s.map_or_else(|| "-".to_string(), milliseconds);
            let unserved = if check.unserved > 0 {
                format!(" (+{} never served)", check.unserved)
            } else {
                String::new()
            };
            format!(
                "{} {} {value}/{} ms{unserved}",
                check.stat,
                check.metric,
                milliseconds(check.target_s)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "no" }
}

fn group_table(first: &str, groups: &[GroupValidation]) -> String {
    let mut table = TextTable::new([first, "completed", "attainment", "SLO met", "statistics"]);
    for group in groups {
        table.row([
            group.group.clone(),
            group.completed.to_string(),
            percent(group.attainment),
            yes_no(group.met).to_string(),
            verdict_text(&group.verdict),
        ]);
    }
    table.render()
}

fn render(report: &ValidateReport) -> String {
    let validation = &report.validation;
    let mut out = format!(
        "fleet {}: ${:.2}/h ({} price book), router {}{}\n",
        validation.allocation,
        validation.usd_per_hour,
        report.price_book,
        report.router,
        report
            .capacity_table
            .as_ref()
            .map_or_else(String::new, |source| format!(", capacity table {source}"))
    );
    out.push_str(&format!(
        "workload: {} ({} requests)\nSLO: {}\n",
        report.workload, report.requests, report.slo
    ));
    out.push_str(&format!(
        "\nrequests: {} arrived, {} completed, {} rejected (too long for every replica)\n",
        validation.arrived, validation.completed, validation.rejected
    ));
    out.push_str(&format!(
        "overall: {} of requests met every per-request target; SLO statistics met: {} ({})\n",
        percent(validation.attainment),
        yes_no(validation.overall_met),
        verdict_text(&validation.overall)
    ));
    // With nothing completed there is no latency (the statistics hold 0 there).
    let milliseconds = |seconds: f64| {
        if validation.completed > 0 {
            milliseconds(seconds)
        } else {
            "-".to_string()
        }
    };
    out.push_str(&format!(
        "latency: TTFT p50/p90/p99 {}/{}/{} ms, TPOT p50/p90 {}/{} ms, mean e2e/output {} ms; \
         replicas busy {} of the time on average\n",
        milliseconds(validation.ttft_p50_s),
        milliseconds(validation.ttft_p90_s),
        milliseconds(validation.ttft_p99_s),
        milliseconds(validation.tpot_p50_s),
        milliseconds(validation.tpot_p90_s),
        milliseconds(validation.norm_latency_mean_s),
        percent(validation.mean_busy_fraction)
    ));
    out.push_str("\nper instance type:\n");
    out.push_str(&group_table("type", &validation.types));
    out.push_str("\nper size bucket (in/out bucket indices):\n");
    out.push_str(&group_table("bucket", &validation.buckets));
    if validation.beyond_buckets > 0 {
        out.push_str(&format!(
            "{} requests lie beyond the last bucket edge (counted in the totals, in no bucket row)\n",
            validation.beyond_buckets
        ));
    }
    out.push_str(&format!(
        "\nverdict: {}\n",
        if validation.passes(None) {
            "the fleet meets the SLO overall and on every instance type"
        } else {
            "the fleet misses the SLO (see the rows marked no)"
        }
    ));
    out
}
