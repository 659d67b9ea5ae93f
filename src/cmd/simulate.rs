//! `medley simulate`: replay a request stream against a mixed-GPU cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use gpu_models::Catalog;
use sim::{
    AssignmentTable, AutoscaleConfig, AutoscalePolicy, CapacityTable, Cluster, KvLink,
    PredictorKind, ScaleLimits, ScaleMetric, ScheduleWindow, SimConfig, Summary, parse_spec,
    simulate,
};

use super::CmdResult;
use super::common::{EngineArgs, SourceArgs, check_router_tables, progress_bar, router_arg};
use super::table::TextTable;

/// Arguments of `medley simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Replicas per GPU type: `A10G:3,A100-80GB:2` (add `:tp4` for 4-GPU replicas). Under
    /// `--autoscale schedule` every count may be 0 (`L4:0,A10G:0`): the schedule brings the first
    /// replicas.
    #[arg(
        long,
        required_unless_present_all = ["prefill_cluster", "decode_cluster"],
        conflicts_with_all = ["prefill_cluster", "decode_cluster"]
    )]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub disaggregation: DisaggregationArgs,
    #[command(flatten)]
    pub autoscale: AutoscaleArgs,
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
    /// Write requests.{csv,parquet}, timeseries.{csv,parquet} and summary.json here, with
    /// figures/timeseries.{png,svg} (per-replica queue, batch and KV use) and, when autoscaling,
    /// figures/replicas.{png,svg}.
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

/// Prefill/decode disaggregation (Splitwise, DistServe).
#[derive(Debug, Args)]
pub struct DisaggregationArgs {
    /// Prefill pool of a disaggregated cluster, e.g. `H100-SXM:1`: its replicas only prefill,
    /// then move each prompt's KV cache to the decode pool (TTFT ends at prefill).
    #[arg(long, requires = "decode_cluster")]
    pub prefill_cluster: Option<String>,
    /// Decode pool of a disaggregated cluster, e.g. `A100-80GB:2` (picked by --router).
    #[arg(long, requires = "prefill_cluster")]
    pub decode_cluster: Option<String>,
    /// Bandwidth of the link KV caches cross, gigabytes per second (disaggregated clusters)
    /// [default: 50].
    #[arg(long, allow_negative_numbers = true)]
    pub kv_link_gbs: Option<f64>,
    /// Latency added to every KV transfer, e.g. `1ms` (disaggregated clusters) [default: 1ms].
    #[arg(long)]
    pub kv_link_latency: Option<String>,
}

/// Autoscaling.
#[derive(Debug, Args)]
pub struct AutoscaleArgs {
    /// Autoscaling policy: static, reactive (thresholds with a cooldown), hpa (Kubernetes:
    /// ceil(current x metric / target), 10% tolerance) or schedule (--schedule FILE).
    #[arg(long, default_value = "static")]
    pub autoscale: String,
    /// What reactive and hpa measure per replica: queue (waiting requests), outstanding
    /// (waiting + running), utilization (busy fraction of the interval), kv (KV-cache use)
    /// [default: outstanding].
    #[arg(long)]
    pub scale_metric: Option<String>,
    /// Time between autoscaler evaluations (reactive, hpa) [default: 15s].
    #[arg(long)]
    pub autoscale_interval: Option<String>,
    /// Reactive: add replicas when a type's mean metric exceeds this [default per metric:
    /// queue 2, outstanding 48, utilization 0.9, kv 0.8].
    #[arg(long, allow_negative_numbers = true)]
    pub scale_up: Option<f64>,
    /// Reactive: remove replicas when a type's mean metric falls below this [default per
    /// metric: queue 0.1, outstanding 16, utilization 0.5, kv 0.3].
    #[arg(long, allow_negative_numbers = true)]
    pub scale_down: Option<f64>,
    /// Reactive: wait after a type changes; hpa: scale-down stabilisation window [default: 60s].
    #[arg(long)]
    pub cooldown: Option<String>,
    /// HPA: target metric per replica [default per metric: queue 1, outstanding 32,
    /// utilization 0.7, kv 0.6].
    #[arg(long, allow_negative_numbers = true)]
    pub hpa_target: Option<f64>,
    /// Schedule of replica counts per window: TOML (`[[window]]` tables with `start` and
    /// TYPE = COUNT keys) or CSV (header `start,TYPE,...`; one row per window).
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// Schedule: apply each window this early, so its new replicas are warm when it starts
    /// [default: 0s].
    #[arg(long)]
    pub schedule_lead: Option<String>,
    /// Fewest and most replicas per type: `A10G=1:8,L4=0:4` [default: min 1 for types the
    /// cluster starts with (reactive, hpa), otherwise 0; max 64]. Under reactive and hpa a type
    /// at 0 wakes with one replica when requests are turned away for want of one, or when the
    /// running replicas are past the scale-up threshold or target.
    #[arg(long)]
    pub scale_limits: Option<String>,
    /// Reactive, hpa, schedule: bandwidth at which a new replica loads the model weights, GB/s:
    /// cold start = weight bytes / this (billed while starting) [default: 2].
    #[arg(long, allow_negative_numbers = true)]
    pub cold_start_gbs: Option<f64>,
}

fn duration(flag: &str, text: &str) -> Result<f64, String> {
    sim::parse_duration_s(text).ok_or_else(|| {
        format!("{flag}: expected a duration like 500ms, 30s or 10m, found '{text}'")
    })
}

impl DisaggregationArgs {
    /// The KV link.
    pub fn link(&self) -> Result<KvLink, String> {
        if self.prefill_cluster.is_none() {
            let given = [
                ("--kv-link-gbs", self.kv_link_gbs.is_some()),
                ("--kv-link-latency", self.kv_link_latency.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "{flag} has no effect without a disaggregated cluster: give \
                     --prefill-cluster and --decode-cluster instead of --cluster"
                ));
            }
        }
        let defaults = KvLink::default();
        let link = KvLink {
            bandwidth_gbs: self.kv_link_gbs.unwrap_or(defaults.bandwidth_gbs),
            latency_s: match &self.kv_link_latency {
                Some(text) => duration("--kv-link-latency", text)?,
                None => defaults.latency_s,
            },
        };
        link.validate().map_err(|e| {
            let flag = if e.contains("latency") {
                "--kv-link-latency"
            } else {
                "--kv-link-gbs"
            };
            format!("{flag}: {e}")
        })?;
        Ok(link)
    }
}

impl AutoscaleArgs {
    /// The autoscaler settings.
    pub fn config(&self) -> Result<AutoscaleConfig, String> {
        let policy = AutoscalePolicy::parse(&self.autoscale).ok_or_else(|| {
            format!(
                "--autoscale: expected one of {}, found '{}'",
                AutoscalePolicy::ALL.map(AutoscalePolicy::name).join(", "),
                self.autoscale
            )
        })?;
        let defaults = AutoscaleConfig::default();
        let metric = match &self.scale_metric {
            Some(text) => ScaleMetric::parse(text).ok_or_else(|| {
                format!(
                    "--scale-metric: expected one of {}, found '{text}'",
                    ScaleMetric::ALL.map(ScaleMetric::name).join(", ")
                )
            })?,
            None => defaults.metric,
        };
        // Which policies read each flag; one given to a policy that ignores it is an error,
        // not a silent no-op.
        // The setting each flag sets; the policies that read it come from the one table the
        // config check uses too.
        let readers: [(&str, bool, &str); 9] = [
            ("--scale-metric", self.scale_metric.is_some(), "metric"),
            (
                "--schedule-lead",
                self.schedule_lead.is_some(),
                "schedule_lead_s",
            ),
            (
                "--cold-start-gbs",
                self.cold_start_gbs.is_some(),
                "load_gbs",
            ),
            (
                "--autoscale-interval",
                self.autoscale_interval.is_some(),
                "interval_s",
            ),
            ("--scale-up", self.scale_up.is_some(), "scale_up_threshold"),
            (
                "--scale-down",
                self.scale_down.is_some(),
                "scale_down_threshold",
            ),
            ("--cooldown", self.cooldown.is_some(), "cooldown_s"),
            ("--hpa-target", self.hpa_target.is_some(), "hpa_target"),
            ("--scale-limits", self.scale_limits.is_some(), "limits"),
        ];
        for (flag, given, key) in readers {
            let policies = AutoscaleConfig::readers_of(key).expect("every flag sets a setting");
            if given && !policies.contains(&policy) {
                let names: Vec<&str> = policies.iter().map(|p| p.name()).collect();
                let read_by = match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("{} and {last}", rest.join(", "))
                    }
                    _ => names.join(""),
                };
                return Err(format!(
                    "{flag} has no effect with --autoscale {policy}: it is read by {read_by}"
                ));
            }
        }
        let schedule = match (&self.schedule, policy) {
            (Some(path), AutoscalePolicy::Schedule) => read_schedule(path)?,
            (None, AutoscalePolicy::Schedule) => {
                return Err("--autoscale schedule needs --schedule FILE".into());
            }
            (Some(_), _) => {
                return Err(format!(
                    "--schedule is only read by --autoscale schedule (not {policy})"
                ));
            }
            (None, _) => Vec::new(),
        };
        let config = AutoscaleConfig {
            policy,
            metric,
            interval_s: match &self.autoscale_interval {
                Some(text) => duration("--autoscale-interval", text)?,
                None => defaults.interval_s,
            },
            scale_up_threshold: self.scale_up,
            scale_down_threshold: self.scale_down,
            cooldown_s: match &self.cooldown {
                Some(text) => duration("--cooldown", text)?,
                None => defaults.cooldown_s,
            },
            hpa_target: self.hpa_target,
            schedule,
            schedule_lead_s: match &self.schedule_lead {
                Some(text) => duration("--schedule-lead", text)?,
                None => defaults.schedule_lead_s,
            },
            limits: match &self.scale_limits {
                Some(text) => parse_limits(text)?,
                None => BTreeMap::new(),
            },
            load_gbs: self.cold_start_gbs.unwrap_or(defaults.load_gbs),
            ..defaults
        };
        config.check_numbers(&autoscale_flag)?;
        Ok(config)
    }
}

/// The flag that sets an autoscale config key, so the simulator's range errors name what the
/// user typed.
fn autoscale_flag(key: &str) -> String {
    match key {
        "load_gbs" => "--cold-start-gbs",
        "interval_s" => "--autoscale-interval",
        "cooldown_s" => "--cooldown",
        "scale_up_threshold" => "--scale-up",
        "scale_down_threshold" => "--scale-down",
        "hpa_target" => "--hpa-target",
        "schedule_lead_s" => "--schedule-lead",
        other => return format!("autoscale.{other}"),
    }
    .to_string()
}

/// Parses `A10G=1:8,L4=0:4`.
pub fn parse_limits(text: &str) -> Result<BTreeMap<String, ScaleLimits>, String> {
    let mut limits = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad =
            || format!("--scale-limits entry '{part}': expected TYPE=MIN:MAX (e.g. A10G=1:8)");
        let (name, range) = part.split_once('=').ok_or_else(bad)?;
        let (min, max) = range.split_once(':').ok_or_else(bad)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(bad());
        }
        let min: u32 = min.trim().parse().map_err(|_| bad())?;
        let max: u32 = max.trim().parse().map_err(|_| bad())?;
        if min > max {
            return Err(format!(
                "--scale-limits entry '{part}': min {min} is above max {max}"
            ));
        }
        if limits
            .insert(name.to_string(), ScaleLimits { min, max })
            .is_some()
        {
            return Err(format!("--scale-limits: '{name}' is given twice"));
        }
    }
    if limits.is_empty() {
        return Err("--scale-limits: expected TYPE=MIN:MAX entries (e.g. A10G=1:8)".into());
    }
    Ok(limits)
}

/// Reads a schedule: TOML `[[window]]` tables (`start` plus TYPE = COUNT keys) or CSV with a
/// `start,TYPE,...` header, by the file's extension. Starts are durations or seconds.
pub fn read_schedule(path: &Path) -> Result<Vec<ScheduleWindow>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let at = |what: String| format!("{}: {what}", path.display());
    let windows = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("toml") => schedule_from_toml(&text).map_err(at)?,
        Some(ext) if ext.eq_ignore_ascii_case("csv") => schedule_from_csv(&text).map_err(at)?,
        _ => return Err(at("expected a .toml or .csv schedule".into())),
    };
    if windows.is_empty() {
        return Err(at("the schedule has no windows".into()));
    }
    Ok(windows)
}

fn schedule_start(value: &str, place: &str) -> Result<f64, String> {
    sim::parse_duration_s(value).ok_or_else(|| {
        format!("{place}: start must be a duration like 90s or 10m, or seconds; found '{value}'")
    })
}

fn schedule_from_toml(text: &str) -> Result<Vec<ScheduleWindow>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))?;
    if let Some(key) = table.keys().find(|k| *k != "window") {
        return Err(format!("unknown key '{key}' (expected [[window]] tables)"));
    }
    let windows = table
        .get("window")
        .and_then(toml::Value::as_array)
        .ok_or("expected [[window]] tables, each with `start` and TYPE = COUNT keys")?;
    windows
        .iter()
        .enumerate()
        .map(|(k, window)| {
            let place = format!("window {k}");
            let window = window
                .as_table()
                .ok_or_else(|| format!("{place}: expected a table"))?;
            let start_s = match window.get("start") {
                Some(toml::Value::String(text)) => schedule_start(text, &place)?,
                Some(toml::Value::Integer(seconds)) if *seconds >= 0 => *seconds as f64,
                Some(toml::Value::Float(seconds)) if *seconds >= 0.0 => *seconds,
                Some(other) => {
                    return Err(format!(
                        "{place}: start must be a duration or seconds >= 0, found {other}"
                    ));
                }
                None => return Err(format!("{place}: missing key 'start'")),
            };
            let mut counts = BTreeMap::new();
            for (name, value) in window.iter().filter(|(key, _)| *key != "start") {
                let count = value
                    .as_integer()
                    .and_then(|c| u32::try_from(c).ok())
                    .ok_or_else(|| {
                        format!(
                            "{place}: {name} must be a whole number of replicas >= 0, found {value}"
                        )
                    })?;
                counts.insert(name.clone(), count);
            }
            Ok(ScheduleWindow { start_s, counts })
        })
        .collect()
}

fn schedule_from_csv(text: &str) -> Result<Vec<ScheduleWindow>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    let (_, header) = lines
        .next()
        .ok_or("empty file: expected a header `start,TYPE,...`")?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    if columns.len() < 2 || !columns[0].to_ascii_lowercase().starts_with("start") {
        return Err(format!(
            "line 1: expected a header `start,TYPE,...` (e.g. start,A10G,L4), found '{header}'"
        ));
    }
    for (k, name) in columns.iter().enumerate().skip(1) {
        if name.is_empty() {
            return Err(format!("line 1: column {} has no type name", k + 1));
        }
        if columns[1..k].contains(name) {
            return Err(format!(
                "line 1: {name} appears twice in the header; give each type one column"
            ));
        }
    }
    lines
        .map(|(number, line)| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != columns.len() {
                return Err(format!(
                    "line {number}: {} fields, expected {} like the header",
                    fields.len(),
                    columns.len()
                ));
            }
            let start_s = schedule_start(fields[0], &format!("line {number}"))?;
            let mut counts = BTreeMap::new();
            for (name, field) in columns[1..].iter().zip(&fields[1..]) {
                let count: u32 = field.parse().map_err(|_| {
                    format!(
                        "line {number}: {name} must be a whole number of replicas, found '{field}'"
                    )
                })?;
                counts.insert((*name).to_string(), count);
            }
            Ok(ScheduleWindow { start_s, counts })
        })
        .collect()
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

/// The entries of `--cluster`: every count may be 0 under a schedule, which brings the first
/// replicas; any other policy needs at least one replica from the start.
fn cluster_entries(spec: &str, policy: &str) -> Result<Vec<sim::ClusterEntry>, String> {
    let entries = sim::parse_spec_types(spec)?;
    if policy != "schedule" && entries.iter().all(|entry| entry.count == 0) {
        return Err(format!(
            "cluster '{spec}' has no replicas (only --autoscale schedule may start from an empty \
             cluster)"
        ));
    }
    Ok(entries)
}

/// Runs `medley simulate`.
pub fn run(args: SimulateArgs, catalog: &Catalog) -> CmdResult {
    let options = args.engine.instance_options()?;
    let pools = (
        &args.disaggregation.prefill_cluster,
        &args.disaggregation.decode_cluster,
    );
    let cluster = match (&args.cluster, pools) {
        (Some(spec), _) => Cluster::build(
            &cluster_entries(spec, &args.autoscale.autoscale)?,
            catalog,
            &args.engine.model,
            &options,
            args.prices.as_deref(),
        )?,
        (None, (Some(prefill), Some(decode))) => Cluster::build_disaggregated(
            &parse_spec(prefill).map_err(|e| format!("--prefill-cluster: {e}"))?,
            &parse_spec(decode).map_err(|e| format!("--decode-cluster: {e}"))?,
            catalog,
            &args.engine.model,
            &options,
            args.prices.as_deref(),
        )?,
        _ => return Err("give --cluster, or --prefill-cluster and --decode-cluster".into()),
    };
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
    let router = router_arg(&args.router)?;
    check_router_tables(router, args.capacity.is_some(), args.assignment.is_some())?;
    let config = SimConfig {
        engine: args.engine.engine()?,
        router,
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
        autoscale: args.autoscale.config()?,
        kv_link: args.disaggregation.link()?,
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
    let mut too_many_replicas = false;
    let summary = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let mut tables = experiments::tables::TableSink::create(dir)?;
            let mut sink = FigureTap {
                inner: &mut tables,
                arrivals_per_s: Vec::new(),
                keep_arrivals: config.autoscale.policy != sim::AutoscalePolicy::Static,
                samples: Vec::new(),
                instances: BTreeMap::new(),
                samples_dropped: false,
            };
            let summary = simulate(
                &cluster,
                &config,
                capacity.as_ref(),
                stream.requests(),
                &mut sink,
                Some(&mut on_progress),
            )?;
            // A trace that stopped the run leaves no tables of a partial replay behind.
            if let Some(error) = stream.error() {
                drop(tables);
                for name in [
                    "requests.csv",
                    "requests.parquet",
                    "timeseries.csv",
                    "timeseries.parquet",
                ] {
                    let _ = std::fs::remove_file(dir.join(name));
                }
                bar.finish_and_clear();
                return Err(format!("reading the trace stopped the run: {error}").into());
            }
            let figures = dir.join("figures");
            std::fs::create_dir_all(&figures)
                .map_err(|e| format!("cannot create {}: {e}", figures.display()))?;
            too_many_replicas = sink.samples_dropped;
            let drawable = !sink.samples_dropped;
            if let Some(data) =
                time_series_figure(&sink.samples, &sink.instances, &cluster).filter(|_| drawable)
            {
                plots::run_time_series(&data, &figures, "timeseries")?;
                std::fs::write(
                    figures.join("timeseries.json"),
                    serde_json::to_string_pretty(&data)?,
                )?;
            }
            if let Some(report) = &summary.autoscale {
                let trace = experiments::runner::ScalingTrace::new(
                    report,
                    summary.span_s,
                    &sink.arrivals_per_s,
                );
                let title = format!(
                    "{} autoscaling: {} at the start",
                    report.policy,
                    cluster.describe()
                );
                let data = crate::cmd::figures::replicas_figure(&trace, title);
                plots::replicas_over_time(&data, &figures, "replicas")?;
                std::fs::write(
                    figures.join("replicas.json"),
                    serde_json::to_string_pretty(&data)?,
                )?;
            }
            summary
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
    let left_out = stream.left_out();
    if args.json {
        // The JSON is the run's summary; what the trace left out goes to stderr beside it.
        if let Some(left_out) = &left_out {
            eprintln!("note: {left_out}");
        }
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!("workload: {}", stream.description);
    if let Some(left_out) = &left_out {
        println!("{left_out}");
    }
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
        if dir.join("figures/timeseries.png").exists() {
            println!(
                "figure: {}/figures/timeseries.{{png,svg}} (queue, running and KV use per replica; data in timeseries.json)",
                dir.display()
            );
        } else if too_many_replicas {
            println!(
                "no time-series figure: more than {MAX_PLOTTED_REPLICAS} replicas or \
                 {MAX_PLOTTED_SAMPLES} samples (the samples are in timeseries.csv)"
            );
        }
        if summary.autoscale.is_some() {
            println!(
                "figure: {}/figures/replicas.{{png,svg}} (replicas over time; data in replicas.json)",
                dir.display()
            );
        }
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
        let not_finished = match (s.requests.rejected, s.requests.in_flight) {
            (0, 0) => String::new(),
            (rejected, 0) => format!("; the {rejected} rejected count as not met"),
            (0, in_flight) => {
                format!("; the {in_flight} in flight at the horizon count as not met")
            }
            (rejected, in_flight) => format!(
                "; the {rejected} rejected and {in_flight} in flight at the horizon count as not met"
            ),
        };
        println!(
            "SLO ({}): attainment {:.2}% ({} of {} arrived met{not_finished}), goodput {:.2} req/s",
            targets.join(", "),
            100.0 * slo.attainment,
            slo.met,
            s.requests.arrived,
            slo.goodput_rps
        );
        if let Some(met) = slo.mean_norm_latency_met {
            let why = if met {
                ""
            } else if s.requests.completed == 0 {
                " (no request completed)"
            } else if s.requests.rejected > 0 {
                " (rejected requests are never served)"
            } else {
                ""
            };
            println!(
                "  Mélange SLO (mean e2e/out over requests): {}{why}",
                if met { "met" } else { "missed" }
            );
        }
    }
    // Under autoscaling a type's replicas come and go: count every one that ran, and average
    // the cost over the span.
    let (replicas, usd_per_hour) = if s.autoscale.is_some() {
        ("replicas run", "mean $/h")
    } else {
        ("replicas", "$/h")
    };
    let mut types = TextTable::new([
        "type",
        replicas,
        "busy",
        "mean KV",
        "completed",
        "SLO met",
        "preemptions",
        usd_per_hour,
    ]);
    for t in &s.types {
        types.row([
            match t.role {
                sim::ReplicaRole::Colocated => t.instance.clone(),
                role => format!("{} ({})", t.instance, role.name()),
            },
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
    match &s.autoscale {
        None => println!(
            "cost ({} prices): ${:.3}/h, ${:.4} over the span, ${:.3} per million output tokens",
            s.cost.price_book,
            s.cost.usd_per_hour,
            s.cost.total_usd,
            s.cost.usd_per_million_output_tokens
        ),
        Some(_) => println!(
            "cost ({} prices): ${:.4} billed over the replicas' lives (the cluster as given, \
             static: ${:.3}/h, ${:.4} over the span), ${:.3} per million output tokens",
            s.cost.price_book,
            s.cost.billed_usd,
            s.cost.usd_per_hour,
            s.cost.total_usd,
            s.cost.usd_per_million_output_tokens
        ),
    }
    if let Some(a) = &s.autoscale {
        let metric = a
            .metric
            .as_deref()
            .map_or(String::new(), |m| format!(" on {m}"));
        println!(
            "autoscale ({}{metric}): {} evaluations, {} replicas started, {} drained, {} changes \
             of the replica counts",
            a.policy,
            a.evaluations,
            a.replicas_started,
            a.replicas_drained,
            a.series.len().saturating_sub(1)
        );
        let mut scaling = TextTable::new([
            "type",
            "min",
            "max",
            "initial",
            "peak",
            "final",
            "mean",
            "cold start",
            "billed h",
            "billed $",
        ]);
        for t in &a.types {
            scaling.row([
                t.instance.clone(),
                t.min.to_string(),
                t.max.to_string(),
                t.initial.to_string(),
                t.peak.to_string(),
                t.final_ready.to_string(),
                format!("{:.2}", t.mean_billed),
                format!("{:.1} s", t.cold_start_s),
                format!("{:.3}", t.billed_replica_hours),
                format!("{:.4}", t.billed_usd),
            ]);
        }
        print!("{}", scaling.render());
    }
    if let Some(d) = &s.disaggregation {
        println!(
            "disaggregated: prefill {} | decode {}, KV link {} GB/s + {} ms",
            d.prefill_pool,
            d.decode_pool,
            d.link.bandwidth_gbs,
            d.link.latency_s * 1e3
        );
        println!(
            "  KV transfers: {} ({:.2} GB); transfer {:.4} s mean, {:.4} s p99; wait for decode \
             blocks {:.4} s mean, {:.4} s p99, {:.4} s max; {} completed at prefill, {} pending \
             at the end",
            d.transfers,
            d.transferred_gb,
            d.transfer_s.mean,
            d.transfer_s.p99,
            d.decode_wait_s.mean,
            d.decode_wait_s.p99,
            d.decode_wait_s.max,
            d.completed_at_prefill,
            d.pending_at_end
        );
    }
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

/// Most replicas the time-series figure draws: beyond this its lines and legend are a blur.
const MAX_PLOTTED_REPLICAS: usize = 24;
/// Most samples kept for the time-series figure (24 replicas sampled every second for about
/// 11 hours): beyond this the figure is skipped so memory stays bounded.
const MAX_PLOTTED_SAMPLES: usize = 1_000_000;

/// Passes records on, keeping what the figures need: arrivals per second (when asked, for the
/// replicas figure) and the time-series samples (while a figure of them could be drawn).
struct FigureTap<'a> {
    inner: &'a mut dyn sim::RecordSink,
    arrivals_per_s: Vec<u32>,
    keep_arrivals: bool,
    /// (time, replica, waiting, running, KV fraction) per sample.
    samples: Vec<(f64, u32, u32, u32, f64)>,
    /// Instance name of each replica sampled.
    instances: BTreeMap<u32, String>,
    /// Whether samples were let go because no figure could be drawn from them.
    samples_dropped: bool,
}

impl sim::RecordSink for FigureTap<'_> {
    fn request(&mut self, record: &sim::RequestRecord) -> std::io::Result<()> {
        if self.keep_arrivals {
            let second = record.arrival_s.max(0.0) as usize;
            if second >= self.arrivals_per_s.len() {
                self.arrivals_per_s.resize(second + 1, 0);
            }
            self.arrivals_per_s[second] += 1;
        }
        self.inner.request(record)
    }

    fn sample(&mut self, sample: &sim::SampleRecord) -> std::io::Result<()> {
        self.instances
            .entry(sample.replica)
            .or_insert_with(|| sample.instance.clone());
        if self.instances.len() > MAX_PLOTTED_REPLICAS || self.samples.len() >= MAX_PLOTTED_SAMPLES
        {
            // No figure will be drawn: stop holding samples (the tables have them all).
            self.samples = Vec::new();
            self.samples_dropped = true;
            return self.inner.sample(sample);
        }
        self.samples.push((
            sample.time_s,
            sample.replica,
            sample.waiting,
            sample.running,
            sample.kv_blocks_used as f64 / sample.kv_blocks_total.max(1) as f64,
        ));
        self.inner.sample(sample)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.inner.finish()
    }
}

/// The per-replica time series of a run (none without samples or with too many replicas to
/// draw). A replica absent at a sample time (not started yet, or stopped) counts as idle.
fn time_series_figure(
    samples: &[(f64, u32, u32, u32, f64)],
    instances: &BTreeMap<u32, String>,
    cluster: &sim::Cluster,
) -> Option<plots::RunTimeSeries> {
    let mut times: Vec<f64> = samples.iter().map(|s| s.0).collect();
    times.dedup();
    if times.is_empty() || instances.len() > MAX_PLOTTED_REPLICAS {
        return None;
    }
    let row: BTreeMap<u32, usize> = instances.keys().enumerate().map(|(k, &r)| (r, k)).collect();
    let mut series: Vec<plots::ReplicaSeries> = instances
        .iter()
        .map(|(replica, instance)| plots::ReplicaSeries {
            replica: format!("{instance}#{replica}"),
            queue_len: vec![0.0; times.len()],
            running: vec![0.0; times.len()],
            kv_use: vec![0.0; times.len()],
        })
        .collect();
    let mut k = 0;
    for &(time, replica, waiting, running, kv) in samples {
        while times[k] < time {
            k += 1;
        }
        let line = &mut series[row[&replica]];
        line.queue_len[k] = f64::from(waiting);
        line.running[k] = f64::from(running);
        line.kv_use[k] = kv.clamp(0.0, 1.0);
    }
    Some(plots::RunTimeSeries {
        title: format!(
            "Queue, batch and KV use per replica: {}",
            cluster.describe()
        ),
        time_s: times,
        replicas: series,
    })
}
