//! `medley bench`: simulator speed on the two reference workloads, or (`--solver`) the GPU-mix
//! solver's speed on seeded synthetic problems or on given profiles.

use std::time::Instant;

use clap::Args;
use gpu_models::{Catalog, InstanceOptions};
use serde::Serialize;
use sim::{Cluster, SimConfig, parse_spec, simulate};
use solver::{Backend, Formulation, SolveOptions, solve_timed};
use workloads::{ReadOptions, TraceReader};

use super::CmdResult;
use super::table::TextTable;

/// Arguments of `medley bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Azure 2023 conversation trace (normalized or raw); skipped when absent.
    #[arg(long, default_value = "../shared/traces/normalized/azure2023_conv.csv")]
    pub azure_trace: std::path::PathBuf,
    /// Expected requests in the synthetic stream (arrivals are random, so about this many).
    #[arg(long, default_value_t = 1_000_000)]
    pub synthetic_requests: u64,
    /// Measure the GPU-mix solver instead: 60 buckets × 12 GPU types, seeds 1..=N at 10, 100,
    /// 300 and 1,000 req/s, each to proven optimality and to a proven 1% gap.
    #[arg(long)]
    pub solver: bool,
    /// With --solver: seeds per rate.
    #[arg(long, default_value_t = 10)]
    pub solver_seeds: u64,
    /// With --solver: plan on these capacity profiles (Mélange `gpu_info` JSON, as `medley
    /// profile --out` writes) under seeded request-size mixes, instead of synthetic problems.
    #[arg(long, value_name = "FILE", requires = "solver")]
    pub solver_profiles: Option<std::path::PathBuf>,
    /// With --solver: branch-and-bound nodes before the exact solve stops unproven (0 for no
    /// limit, which on the hardest seeds runs for minutes).
    #[arg(long, default_value_t = 20_000)]
    pub solver_node_limit: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One synthetic problem solved to optimality and to a 1% gap.
#[derive(Debug, Serialize)]
struct SolverRow {
    request_rate: f64,
    seed: u64,
    exact_s: f64,
    exact_nodes: Option<u64>,
    exact_proven: bool,
    /// `(cost − bound) / cost` of the exact solve (0 when proven).
    exact_gap: f64,
    exact_cost: f64,
    gap_1pct_s: f64,
    gap_1pct_nodes: Option<u64>,
    gap_1pct_gap: f64,
    gap_1pct_cost: f64,
}

/// Solves the seeded problems the solver benchmark and docs/results.md use.
fn solver_study(args: &BenchArgs) -> CmdResult {
    if args.solver_seeds == 0 {
        return Err("--solver-seeds 0: expected at least one seed".into());
    }
    let profiles = match &args.solver_profiles {
        Some(path) => Some(solver::read_gpu_info(path)?),
        None => None,
    };
    let exact = SolveOptions {
        formulation: Formulation::Compact,
        backend: Backend::BranchAndBound,
        node_limit: (args.solver_node_limit > 0).then_some(args.solver_node_limit),
        ..SolveOptions::default()
    };
    let loose = SolveOptions {
        relative_gap: 0.01,
        ..exact.clone()
    };
    let mut rows = Vec::new();
    for request_rate in [10.0, 100.0, 300.0, 1000.0] {
        eprintln!(
            "solving {} problems at {request_rate} req/s, exactly and to a 1% gap",
            args.solver_seeds
        );
        for seed in 1..=args.solver_seeds {
            let problem = match &profiles {
                Some(gpu_info) => {
                    solver::synthetic::profiled_problem(gpu_info, request_rate, seed)?
                }
                None => solver::synthetic::synthetic_problem(12, request_rate, seed),
            };
            let proven = solve_timed(&problem, &exact)?;
            let within = solve_timed(&problem, &loose)?;
            rows.push(SolverRow {
                request_rate,
                seed,
                exact_s: proven.solve_seconds,
                exact_nodes: proven.plan.search_nodes,
                exact_proven: proven.plan.proven_optimal,
                exact_gap: proven.plan.optimality_gap(),
                exact_cost: proven.plan.hourly_cost,
                gap_1pct_s: within.solve_seconds,
                gap_1pct_nodes: within.plan.search_nodes,
                gap_1pct_gap: within.plan.optimality_gap(),
                gap_1pct_cost: within.plan.hourly_cost,
            });
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut table = TextTable::new([
        "req/s", "seed", "exact s", "nodes", "proven", "gap %", "$/h", "1% gap s", "nodes",
        "gap %", "$/h",
    ]);
    let nodes = |count: Option<u64>| count.map_or_else(|| "-".into(), |n| n.to_string());
    for row in &rows {
        table.row([
            format!("{:.0}", row.request_rate),
            row.seed.to_string(),
            format!("{:.4}", row.exact_s),
            nodes(row.exact_nodes),
            if row.exact_proven { "yes" } else { "no" }.to_string(),
            format!("{:.3}", row.exact_gap * 100.0),
            format!("{:.4}", row.exact_cost),
            format!("{:.4}", row.gap_1pct_s),
            nodes(row.gap_1pct_nodes),
            format!("{:.3}", row.gap_1pct_gap * 100.0),
            format!("{:.4}", row.gap_1pct_cost),
        ]);
    }
    print!("{}", table.render());
    let slowest_within = rows.iter().map(|r| r.gap_1pct_s).fold(0.0, f64::max);
    let proven = rows.iter().filter(|r| r.exact_proven).count();
    let slowest_exact = rows.iter().map(|r| r.exact_s).fold(0.0, f64::max);
    // Per rate: the median exact solve, as docs/results.md quotes it.
    let medians: Vec<String> = [10.0, 100.0, 300.0, 1000.0]
        .iter()
        .map(|&rate| {
            let mut times: Vec<f64> = rows
                .iter()
                .filter(|r| r.request_rate == rate)
                .map(|r| r.exact_s)
                .collect();
            times.sort_by(f64::total_cmp);
            let middle = times.len() / 2;
            let median = match times.len() {
                0 => 0.0,
                n if n % 2 == 1 => times[middle],
                _ => (times[middle - 1] + times[middle]) / 2.0,
            };
            format!("{:.0} ms at {rate:.0} req/s", median * 1000.0)
        })
        .collect();
    let shape = match &profiles {
        Some(gpu_info) => format!(
            "{} profiles ({} types)",
            args.solver_profiles
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
            gpu_info.0.len()
        ),
        None => "synthetic 60 buckets x 12 types".to_string(),
    };
    println!(
        "{shape}, slice factor 8: {proven} of {} proven within {} nodes (median {}; slowest \
         {slowest_exact:.3} s); to a proven 1% gap the slowest took {slowest_within:.3} s",
        rows.len(),
        args.solver_node_limit,
        medians.join(", ")
    );
    Ok(())
}

#[derive(Debug, Serialize)]
struct BenchRow {
    scenario: String,
    requests: u64,
    iterations: u64,
    events: u64,
    wall_s: f64,
    requests_per_s: f64,
    iterations_per_s: f64,
    events_per_s: f64,
    peak_rss_mb: Option<f64>,
}

/// Peak resident memory of this process so far (Linux), MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn measure(
    scenario: &str,
    cluster: &Cluster,
    requests: impl Iterator<Item = workloads::Request>,
) -> Result<BenchRow, Box<dyn std::error::Error>> {
    let config = SimConfig::default();
    let start = Instant::now();
    let summary = simulate(cluster, &config, None, requests, &mut sim::NullSink, None)?;
    let wall_s = start.elapsed().as_secs_f64();
    Ok(BenchRow {
        scenario: scenario.to_string(),
        requests: summary.requests.arrived,
        iterations: summary.iterations,
        events: summary.events,
        wall_s,
        requests_per_s: summary.requests.arrived as f64 / wall_s,
        iterations_per_s: summary.iterations as f64 / wall_s,
        events_per_s: summary.events as f64 / wall_s,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Runs the benchmarks and prints requests and iterations per second.
pub fn run(args: BenchArgs, catalog: &Catalog) -> CmdResult {
    if cfg!(debug_assertions) {
        eprintln!(
            "note: this is a debug build; run `cargo run --release -- bench` for real numbers"
        );
    }
    if args.solver {
        return solver_study(&args);
    }
    let options = InstanceOptions::default();
    let mut rows = Vec::new();
    let mixed = Cluster::build(
        &parse_spec("A10G:2,A100-80GB:2")?,
        catalog,
        "Llama-3.1-8B",
        &InstanceOptions {
            max_model_len: Some(16384),
            ..options.clone()
        },
        Some("melange-2024"),
    )?;
    if args.azure_trace.exists() {
        let reader = TraceReader::open(&args.azure_trace, &ReadOptions::default())?;
        let requests: Vec<_> = reader.collect::<Result<_, _>>()?;
        rows.push(measure(
            "azure-conv-2023 trace (1 h), Llama-3.1-8B on A10G:2,A100-80GB:2",
            &mixed,
            requests.into_iter(),
        )?);
    } else {
        eprintln!(
            "skipped the Azure benchmark: {} is absent",
            args.azure_trace.display()
        );
    }
    let big = Cluster::build(
        &parse_spec("L4:8,A10G:8,A100-80GB:4,H100-SXM:4")?,
        catalog,
        "Llama-2-7B",
        &options,
        Some("melange-2024"),
    )?;
    let preset = workloads::presets::get("arena")?;
    let rate = 100.0;
    let duration = args.synthetic_requests as f64 / rate;
    let stream = preset.stream(rate, duration, 1)?;
    rows.push(measure(
        // The preset's arrivals are random: the stream holds about, not exactly, this many.
        &format!(
            "arena preset, about {} requests ({duration} s at {rate} req/s), Llama-2-7B on 24 \
             mixed replicas",
            args.synthetic_requests
        ),
        &big,
        stream,
    )?);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut table = TextTable::new([
        "scenario",
        "requests",
        "iterations",
        "wall s",
        "requests/s",
        "iterations/s",
        "events/s",
        "peak RSS MB",
    ]);
    for r in &rows {
        table.row([
            r.scenario.clone(),
            r.requests.to_string(),
            r.iterations.to_string(),
            format!("{:.3}", r.wall_s),
            format!("{:.0}", r.requests_per_s),
            format!("{:.0}", r.iterations_per_s),
            format!("{:.0}", r.events_per_s),
            r.peak_rss_mb
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}
