//! `medley bench`: simulator speed on the two reference workloads.

use std::time::Instant;

use clap::Args;
use gpu_models::{Catalog, InstanceOptions};
use serde::Serialize;
use sim::{Cluster, SimConfig, parse_spec, simulate};
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
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
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
