//! `medley simulate`: replay a request stream against a mixed-GPU cluster.

use std::path::{Path, PathBuf};

use clap::Args;
use gpu_models::Catalog;
use sim::{
    AssignmentTable, CapacityTable, Cluster, PredictorKind, SimConfig, Summary, parse_spec,
    simulate,
};

use super::CmdResult;
use super::common::{EngineArgs, SourceArgs, progress_bar, router_arg};
use super::table::TextTable;

/// Arguments of `medley simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Replicas per GPU type: `A10G:3,A100-80GB:2` (add `:tp4` for 4-GPU replicas).
    #[arg(long)]
    pub cluster: String,
    /// Router: round-robin, random, least-outstanding, least-tokens, power-of-two, melange,
    /// session-sticky, kv-aware, size-aware, solver-proportional.
    #[arg(long, default_value = "least-outstanding")]
    pub router: String,
    /// Output-length predictor policies see: oracle, noisy[:SIGMA], bucket-average[:PRIOR],
    /// class[:ACCURACY].
    #[arg(long, default_value = "oracle")]
    pub predictor: String,
    /// Load per GPU type and size bucket for size-aware and solver-proportional routing:
    /// JSON `{"A10G": [[...]], ...}` (rows: input buckets, columns: output buckets).
    #[arg(long, value_name = "FILE")]
    pub assignment: Option<PathBuf>,
    /// Capacity table for the melange router: Mélange `gpu_info` JSON (tputs per GPU type).
    #[arg(long, value_name = "FILE")]
    pub capacity: Option<PathBuf>,
    /// Price book for cost.
    #[arg(long)]
    pub prices: Option<String>,
    /// Seed for synthetic streams and randomised routers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop at this simulated time (e.g. `1h`); unfinished requests are reported in flight.
    #[arg(long)]
    pub horizon: Option<String>,
    /// Interval of the per-replica time series (e.g. `1s`; `0s` writes no samples).
    #[arg(long, default_value = "1s")]
    pub sample_interval: String,
    /// Write requests.{csv,parquet}, timeseries.{csv,parquet} and summary.json here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Step every iteration through the event queue (slower; same results).
    #[arg(long)]
    pub no_fast_path: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Reads a Mélange `gpu_info` JSON (`{"A10G": {"cost": 1.01, "tputs": [[...]]}, ...}`), or a
/// whole Mélange input file holding one, as a capacity table.
pub fn read_capacity(path: &Path) -> Result<CapacityTable, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?;
    let info = value.get("gpu_info").unwrap_or(&value);
    let object = info.as_object().ok_or_else(|| {
        format!(
            "{}: expected an object of GPU types with `tputs`",
            path.display()
        )
    })?;
    let mut tputs = std::collections::BTreeMap::new();
    for (name, entry) in object {
        let rows = entry
            .get("tputs")
            .ok_or_else(|| format!("{}: gpu_info.{name}: missing key 'tputs'", path.display()))?;
        let rows: Vec<Vec<f64>> = serde_json::from_value(rows.clone()).map_err(|e| {
            format!(
                "{}: gpu_info.{name}.tputs: expected a matrix of numbers: {e}",
                path.display()
            )
        })?;
        tputs.insert(name.clone(), rows);
    }
    Ok(CapacityTable {
        edges: workloads::BucketEdges::melange(),
        tputs,
    })
}

/// Reads an assignment table: JSON `{"TYPE": [[load, ...], ...], ...}`, or the same under a
/// `loads` key.
pub fn read_assignment(path: &Path) -> Result<AssignmentTable, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?;
    let loads = value.get("loads").unwrap_or(&value).clone();
    let loads = serde_json::from_value(loads).map_err(|e| {
        format!(
            "{}: expected an object of GPU types, each a matrix of loads: {e}",
            path.display()
        )
    })?;
    let table = AssignmentTable {
        edges: workloads::BucketEdges::melange(),
        loads,
    };
    table
        .validate()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(table)
}

/// Runs `medley simulate`.
pub fn run(args: SimulateArgs, catalog: &Catalog) -> CmdResult {
    let options = args.engine.instance_options()?;
    let cluster = Cluster::build(
        &parse_spec(&args.cluster)?,
        catalog,
        &args.engine.model,
        &options,
        args.prices.as_deref(),
    )?;
    let horizon_s = args
        .horizon
        .as_deref()
        .map(|h| {
            sim::parse_duration_s(h)
                .ok_or_else(|| format!("--horizon: expected a duration like 1h, found '{h}'"))
        })
        .transpose()?;
    let sample_interval_s = sim::parse_duration_s(&args.sample_interval).ok_or_else(|| {
        format!(
            "--sample-interval: expected a duration like 1s, found '{}'",
            args.sample_interval
        )
    })?;
    let config = SimConfig {
        engine: args.engine.engine()?,
        router: router_arg(&args.router)?,
        queue: args.engine.queue()?,
        slo: args.engine.slo()?,
        seed: args.seed,
        fast_path: !args.no_fast_path,
        sample_interval_s: Some(sample_interval_s),
        horizon_s,
        predictor: PredictorKind::parse(&args.predictor)
            .map_err(|e| format!("--predictor: {e}"))?,
        assignment: args
            .assignment
            .as_deref()
            .map(read_assignment)
            .transpose()?,
        ..SimConfig::default()
    };
    let capacity = args.capacity.as_deref().map(read_capacity).transpose()?;
    let mut stream = args.source.open(args.seed)?;
    let bar = progress_bar(stream.expected, args.quiet || args.json);
    let mut on_progress = |p: sim::Progress| {
        bar.set_position(p.arrived);
        bar.set_message(format!(
            "sim time {:.0} s, {} finished",
            p.now_s, p.finished
        ));
    };
    let summary = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let mut sink = experiments::tables::TableSink::create(dir)?;
            simulate(
                &cluster,
                &config,
                capacity.as_ref(),
                stream.requests(),
                &mut sink,
                Some(&mut on_progress),
            )?
        }
        None => simulate(
            &cluster,
            &config,
            capacity.as_ref(),
            stream.requests(),
            &mut sim::NullSink,
            Some(&mut on_progress),
        )?,
    };
    bar.finish_and_clear();
    if let Some(error) = stream.error() {
        return Err(format!("reading the trace stopped the run: {error}").into());
    }
    if let Some(dir) = &args.out {
        let path = dir.join("summary.json");
        std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!("workload: {}", stream.description);
    println!(
        "model: {}   cluster: {}",
        args.engine.model,
        cluster.describe()
    );
    print_summary(&summary);
    if let Some(dir) = &args.out {
        println!(
            "tables: {}/requests.{{csv,parquet}}, timeseries.{{csv,parquet}}, summary.json",
            dir.display()
        );
    }
    Ok(())
}

/// Prints a run summary as tables.
pub fn print_summary(s: &Summary) {
    let c = &s.requests;
    println!(
        "router: {}   queue: {}   predictor: {}   batching: {}   simulated span: {:.1} s",
        s.router, s.queue, s.predictor, s.batching, s.span_s
    );
    println!(
        "requests: {} arrived, {} completed, {} rejected, {} in flight",
        c.arrived, c.completed, c.rejected, c.in_flight
    );
    for (reason, n) in &c.rejected_by_reason {
        println!("  rejected ({reason}): {n}");
    }
    println!(
        "throughput: {:.2} req/s, {:.0} output tokens/s",
        s.throughput_rps, s.output_tokens_per_s
    );
    let mut latency = TextTable::new(["latency (s)", "mean", "p50", "p90", "p95", "p99", "max"]);
    let l = &s.latency;
    for (name, q) in [
        ("TTFT", &l.ttft_s),
        ("TPOT (inter-token)", &l.tpot_s),
        ("e2e / output tokens", &l.norm_latency_s),
        ("max inter-token gap", &l.max_itl_s),
        ("queueing delay", &l.queue_delay_s),
        ("end-to-end", &l.e2e_s),
    ] {
        latency.row([
            name.to_string(),
            format!("{:.4}", q.mean),
            format!("{:.4}", q.p50),
            format!("{:.4}", q.p90),
            format!("{:.4}", q.p95),
            format!("{:.4}", q.p99),
            format!("{:.4}", q.max),
        ]);
    }
    print!("{}", latency.render());
    if let Some(slo) = &s.slo {
        let mut targets = Vec::new();
        if let Some(t) = slo.targets.ttft_s {
            targets.push(format!("TTFT <= {t} s"));
        }
        if let Some(t) = slo.targets.tpot_s {
            targets.push(format!("TPOT <= {t} s"));
        }
        if let Some(t) = slo.targets.norm_latency_s {
            targets.push(format!("e2e/out <= {t} s"));
        }
        println!(
            "SLO ({}): attainment {:.2}% ({} met), goodput {:.2} req/s",
            targets.join(", "),
            100.0 * slo.attainment,
            slo.met,
            slo.goodput_rps
        );
        if let Some(met) = slo.mean_norm_latency_met {
            println!(
                "  Mélange SLO (mean e2e/out over requests): {}",
                if met { "met" } else { "missed" }
            );
        }
    }
    let mut types = TextTable::new([
        "type",
        "replicas",
        "busy",
        "mean KV",
        "completed",
        "SLO met",
        "preemptions",
        "$/h",
    ]);
    for t in &s.types {
        types.row([
            t.instance.clone(),
            t.replicas.to_string(),
            format!("{:.1}%", 100.0 * t.busy_fraction),
            format!("{:.1}%", 100.0 * t.mean_kv_use),
            t.completed.to_string(),
            if s.slo.is_some() {
                format!("{:.1}%", 100.0 * t.attainment)
            } else {
                "-".into()
            },
            t.preemptions.to_string(),
            format!("{:.3}", t.usd_per_hour),
        ]);
    }
    print!("{}", types.render());
    println!(
        "cost ({} prices): ${:.3}/h, ${:.4} over the span, ${:.3} per million output tokens",
        s.cost.price_book,
        s.cost.usd_per_hour,
        s.cost.total_usd,
        s.cost.usd_per_million_output_tokens
    );
    let e = &s.energy;
    let per = |value: Option<f64>| value.map_or("-".to_string(), |v| format!("{v:.1} J"));
    println!(
        "energy: {:.3} kWh ({:.0} W mean; idle {:.0}%, prefill {:.0}%, decode {:.0}%), {} per request, {} per output token",
        e.total_kwh,
        e.mean_power_w,
        100.0 * e.idle_j / e.total_j.max(f64::MIN_POSITIVE),
        100.0 * e.prefill_j / e.total_j.max(f64::MIN_POSITIVE),
        100.0 * e.decode_j / e.total_j.max(f64::MIN_POSITIVE),
        per(e.j_per_request),
        per(e.j_per_output_token)
    );
    if !e.types_without_tdp.is_empty() {
        println!(
            "  no TDP in the catalog (energy not counted): {}",
            e.types_without_tdp.join(", ")
        );
    }
}
