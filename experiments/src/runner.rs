//! The sweep runner: expands a config's grid, runs its points in parallel, stores each finished
//! point on disk (so a re-run resumes and shards can be merged), and writes the result tables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gpu_models::{Catalog, InstanceOptions, WeightDtype};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sim::{Cluster, SimConfig};
use solver::{
    BucketLengths, ProfileRequest, ProfileSet, ProfileSettings, ProfileSlo, ProfileTarget,
    SolveOptions, Validation, VerifySettings, fnv1a,
};
use workloads::SizeHistogram;

use crate::config::{ExperimentConfig, parse_duration, parse_edges};
use crate::efficiency::{BucketStats, ProfileRow, ProfileRowContext, profile_rows};
use crate::planning::{PlanSettings, WorkloadInput, plan_workload};
use crate::workload::WorkloadSource;

/// Version written into every result row.
pub const MEDLEY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One point of the grid: a value for every axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// Position in the full grid (stable for a given config).
    pub index: usize,
    /// Request rate, req/s (`None`: the workload's own).
    pub rate: Option<f64>,
    /// TPOT target.
    pub tpot: Option<String>,
    /// TTFT target.
    pub ttft: Option<String>,
    /// Instance types to plan over (plan experiments).
    pub gpus: Vec<String>,
    /// Price book.
    pub price_book: Option<String>,
    /// What-if prices replacing the book's, $/GPU-hour.
    pub price_overrides: BTreeMap<String, f64>,
    /// Cluster spec (simulate experiments).
    pub cluster: Option<String>,
    /// Router (simulate experiments).
    pub router: Option<String>,
    /// Queue order (simulate experiments).
    pub queue: Option<String>,
    /// Autoscaling policy (simulate experiments; `None`: the config's, or static).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<String>,
    /// Seed.
    pub seed: u64,
}

impl GridPoint {
    /// The point's what-if prices as `GPU=price` text.
    pub fn price_text(&self) -> String {
        self.price_overrides
            .iter()
            .map(|(gpu, price)| format!("{gpu}={price}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn axis<T: Clone>(values: &[T], base: T) -> Vec<T> {
    if values.is_empty() {
        vec![base]
    } else {
        values.to_vec()
    }
}

/// The cartesian product of the sweep axes, in a fixed order.
pub fn grid(config: &ExperimentConfig) -> Vec<GridPoint> {
    let sweep = &config.sweep;
    let rates = axis(
        &sweep.rates.iter().copied().map(Some).collect::<Vec<_>>(),
        config.workload.rate,
    );
    let tpots = axis(
        &sweep.tpot.iter().cloned().map(Some).collect::<Vec<_>>(),
        config.slo.tpot.clone(),
    );
    let ttfts = axis(
        &sweep.ttft.iter().cloned().map(Some).collect::<Vec<_>>(),
        config.slo.ttft.clone(),
    );
    let gpu_sets = axis(&sweep.gpu_sets, config.profile.gpus.clone());
    let books = axis(
        &sweep
            .price_books
            .iter()
            .cloned()
            .map(Some)
            .collect::<Vec<_>>(),
        config.prices.clone(),
    );
    // Price axes: the product over every GPU named in sweep.prices.
    let mut price_points: Vec<BTreeMap<String, f64>> = vec![BTreeMap::new()];
    for (gpu, prices) in &sweep.prices {
        price_points = price_points
            .iter()
            .flat_map(|base| {
                prices.iter().map(move |price| {
                    let mut next = base.clone();
                    next.insert(gpu.clone(), *price);
                    next
                })
            })
            .collect();
    }
    let simulate = config.simulate.clone().unwrap_or_default();
    let is_simulate = config.simulate.is_some();
    let clusters = if is_simulate {
        axis(
            &sweep.clusters.iter().cloned().map(Some).collect::<Vec<_>>(),
            Some(simulate.cluster.clone()).filter(|c| !c.is_empty()),
        )
    } else {
        vec![None]
    };
    let routers = if is_simulate {
        axis(
            &sweep.routers.iter().cloned().map(Some).collect::<Vec<_>>(),
            Some(simulate.router.clone()),
        )
    } else {
        vec![None]
    };
    let queues = if is_simulate {
        axis(
            &sweep.queues.iter().cloned().map(Some).collect::<Vec<_>>(),
            Some(simulate.queue.clone()),
        )
    } else {
        vec![None]
    };
    let autoscalers = if is_simulate {
        axis(
            &sweep
                .autoscalers
                .iter()
                .cloned()
                .map(Some)
                .collect::<Vec<_>>(),
            None,
        )
    } else {
        vec![None]
    };
    let seeds = axis(&sweep.seeds, config.seed);
    let mut points = Vec::new();
    for tpot in &tpots {
        for ttft in &ttfts {
            for gpus in &gpu_sets {
                for book in &books {
                    for prices in &price_points {
                        for cluster in &clusters {
                            for router in &routers {
                                for (queue, autoscaler) in queues
                                    .iter()
                                    .flat_map(|q| autoscalers.iter().map(move |a| (q, a)))
                                {
                                    for rate in &rates {
                                        for seed in &seeds {
                                            points.push(GridPoint {
                                                index: points.len(),
                                                rate: *rate,
                                                tpot: tpot.clone(),
                                                ttft: ttft.clone(),
                                                gpus: if is_simulate {
                                                    Vec::new()
                                                } else {
                                                    gpus.clone()
                                                },
                                                price_book: book.clone(),
                                                price_overrides: prices.clone(),
                                                cluster: cluster.clone(),
                                                router: router.clone(),
                                                queue: queue.clone(),
                                                autoscaler: autoscaler.clone(),
                                                seed: *seed,
                                            });
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    points
}

/// One fleet simulated at one grid point: a row of the results table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Experiment name.
    pub experiment: String,
    /// Hash of the resolved config (the stored `config.toml` reproduces it).
    pub config_hash: String,
    /// medley version that produced the row.
    pub medley_version: String,
    /// Grid point index.
    pub point: u64,
    /// Seed of the point.
    pub seed: u64,
    /// Request rate, req/s.
    pub rate_rps: f64,
    /// TPOT target (text, empty for none).
    pub tpot_target: String,
    /// TTFT target (text, empty for none).
    pub ttft_target: String,
    /// Price book.
    pub price_book: String,
    /// What-if prices (`GPU=price`, empty for none).
    pub price_overrides: String,
    /// Instance types the point planned over, comma-separated (plan experiments; empty
    /// otherwise): tells apart the points of a `sweep.gpu_sets` sweep.
    #[serde(default)]
    pub gpu_set: String,
    /// Router of the simulated fleet.
    pub router: String,
    /// Queue order.
    pub queue: String,
    /// Autoscaling policy (simulate experiments; empty for plan experiments).
    #[serde(default)]
    pub autoscaler: String,
    /// Which fleet: `mixed` (the solver's, verified), `single` (one type), or `given`.
    pub fleet: String,
    /// The fleet's GPU type for single-type fleets, else empty.
    pub fleet_type: String,
    /// The fleet as a cluster spec.
    pub allocation: String,
    /// GPUs in the fleet.
    pub gpus: u64,
    /// The solver's cost for the fleet before simulation, $/h (plan experiments).
    pub planned_usd_per_hour: Option<f64>,
    /// Cost of the simulated fleet, $/h.
    pub usd_per_hour: f64,
    /// Whether the fleet met the SLO statistics in simulation.
    pub slo_met: bool,
    /// Fraction of requests meeting every per-request target.
    pub attainment: f64,
    /// Requests in the stream.
    pub arrived: u64,
    /// Requests completed.
    pub completed: u64,
    /// Requests rejected (too long for every replica).
    pub rejected: u64,
    /// Median TTFT, s (none when no request completed: there is no latency to report).
    pub ttft_p50_s: Option<f64>,
    /// p90 TTFT, s.
    pub ttft_p90_s: Option<f64>,
    /// p99 TTFT, s.
    pub ttft_p99_s: Option<f64>,
    /// Median TPOT, s.
    pub tpot_p50_s: Option<f64>,
    /// p90 TPOT, s.
    pub tpot_p90_s: Option<f64>,
    /// Mean e2e ÷ output tokens, s.
    pub norm_latency_mean_s: Option<f64>,
    /// Mean replica busy fraction.
    pub busy_fraction: f64,
    /// Verification rounds (mixed fleets).
    pub verify_rounds: Option<u32>,
    /// Per-request attainment of the solver's first plan, before any derating (mixed fleets):
    /// where Mélange's additive-load assumption holds, it meets the SLO here already.
    pub first_plan_attainment: Option<f64>,
    /// Whether the solver's first plan met the SLO in simulation (mixed fleets).
    pub first_plan_slo_met: Option<bool>,
    /// Cost of the solver's first plan, $/h (mixed fleets).
    pub first_plan_usd_per_hour: Option<f64>,
    /// The solver's first plan as a cluster spec (mixed fleets).
    pub first_plan_allocation: Option<String>,
}

impl ResultRow {
    /// The prices as shown in tables: the book, with any what-if prices in parentheses.
    pub fn prices_label(&self) -> String {
        if self.price_overrides.is_empty() {
            self.price_book.clone()
        } else {
            format!("{} ({})", self.price_book, self.price_overrides)
        }
    }

    /// The fleet as shown in tables: `mixed`, `given`, or `single <GPU>`, with its
    /// autoscaler when it has one (`given (hpa)`).
    pub fn fleet_label(&self) -> String {
        let fleet = if self.fleet_type.is_empty() {
            self.fleet.clone()
        } else {
            format!("{} {}", self.fleet, self.fleet_type)
        };
        if self.autoscaler.is_empty() || self.autoscaler == "static" {
            fleet
        } else {
            format!("{fleet} ({})", self.autoscaler)
        }
    }
}

/// A finished grid point as stored on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointResult {
    /// Key of the point (config hash and point), for resuming and merging.
    pub key: String,
    /// The point.
    pub point: GridPoint,
    /// Its rows.
    pub rows: Vec<ResultRow>,
    /// Notes (why a fleet is missing, what the verification gave up on).
    pub notes: Vec<String>,
    /// Per-bucket efficiency of each instance type (plan and efficiency experiments).
    #[serde(default)]
    pub profiles: Vec<ProfileRow>,
    /// Latency distributions, one per row (same order), for CDF figures.
    #[serde(default)]
    pub latency: Vec<LatencyPercentiles>,
    /// How an autoscaled fleet changed over the run (simulate experiments with autoscaling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingTrace>,
}

/// An autoscaled run over time: replica counts after each change and arrivals per window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingTrace {
    /// Autoscaling policy.
    pub policy: String,
    /// Types as the autoscaler names them (`prefill/TYPE`, `decode/TYPE` when disaggregated).
    pub types: Vec<String>,
    /// Times the counts changed, seconds.
    pub time_s: Vec<f64>,
    /// Replicas billed (starting, serving or draining) per change, per type.
    pub billed: Vec<Vec<u32>>,
    /// Replicas serving per change, per type.
    pub ready: Vec<Vec<u32>>,
    /// End of the run, seconds.
    pub end_s: f64,
    /// Length of the arrival-count windows, seconds.
    pub window_s: f64,
    /// Requests arriving in each window from time 0.
    pub arrivals: Vec<u32>,
}

/// Window lengths for arrival counts, seconds: about 60 windows over a run.
const ARRIVAL_WINDOWS_S: [f64; 13] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// Requests arriving in each whole second from time 0: a run's arrivals in memory that grows
/// with its span, not with its requests.
pub fn arrivals_per_second(arrivals_s: impl Iterator<Item = f64>) -> Vec<u32> {
    let mut counts = Vec::new();
    for at in arrivals_s {
        let second = at.max(0.0) as usize;
        if second >= counts.len() {
            counts.resize(second + 1, 0);
        }
        counts[second] += 1;
    }
    counts
}

impl ScalingTrace {
    /// The trace of `report`, a run that ended at `end_s`, with its arrivals counted per
    /// second ([`arrivals_per_second`]).
    pub fn new(report: &sim::ScalingReport, end_s: f64, per_second: &[u32]) -> Self {
        // Whole-second windows, so each second's count falls in exactly one window.
        let window_s = ARRIVAL_WINDOWS_S
            .into_iter()
            .find(|w| end_s / w <= 60.0)
            .unwrap_or(3600.0);
        let mut arrivals = vec![0u32; (end_s / window_s).ceil().max(1.0) as usize];
        let per_window = window_s as usize;
        for (second, &count) in per_second.iter().enumerate() {
            let window = (second / per_window).min(arrivals.len() - 1);
            arrivals[window] += count;
        }
        let billed = report
            .series
            .iter()
            .map(|p| {
                (0..p.ready.len())
                    .map(|t| p.ready[t] + p.starting[t] + p.draining[t])
                    .collect()
            })
            .collect();
        Self {
            policy: report.policy.clone(),
            types: report.types.iter().map(|t| t.instance.clone()).collect(),
            time_s: report.series.iter().map(|p| p.time_s).collect(),
            billed,
            ready: report.series.iter().map(|p| p.ready.clone()).collect(),
            end_s,
            window_s,
            arrivals,
        }
    }
}

/// A simulated fleet's latency distribution in 101 numbers per metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyPercentiles {
    /// TTFT at percentiles 0, 1, …, 100, seconds.
    pub ttft_s: Vec<f64>,
    /// TPOT at percentiles 0, 1, …, 100, seconds.
    pub tpot_s: Vec<f64>,
}

impl LatencyPercentiles {
    fn of(validation: &Validation) -> Self {
        Self {
            ttft_s: validation.ttft_percentiles_s.clone(),
            tpot_s: validation.tpot_percentiles_s.clone(),
        }
    }
}

impl PointResult {
    /// The point's notes, each prefixed with `point <index>: `.
    pub fn labelled_notes(&self) -> impl Iterator<Item = String> + '_ {
        self.notes
            .iter()
            .map(|note| format!("point {}: {note}", self.point.index))
    }
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Results directory.
    pub out: PathBuf,
    /// Run only points with `index % count == shard` (`(shard, count)`).
    pub shard: Option<(usize, usize)>,
    /// Profile cache directory (`None`: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Run only the first N points (smoke tests and CI).
    pub limit: Option<usize>,
}

/// Progress events of a run.
#[derive(Debug, Clone)]
pub enum RunProgress {
    /// Profiling for one SLO: cells done of all.
    Profiling {
        /// Which SLO.
        slo: String,
        /// Cells done.
        done: usize,
        /// Cells in all.
        total: usize,
    },
    /// Grid points done of those to run in this invocation.
    Points {
        /// Points finished.
        done: usize,
        /// Points to run.
        total: usize,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Points in the whole grid.
    pub grid_points: usize,
    /// Points in this shard (or limit).
    pub selected: usize,
    /// Points skipped because they were already done.
    pub resumed: usize,
    /// Points run now.
    pub ran: usize,
    /// Rows in the results tables (every finished point of this config on disk).
    pub rows: usize,
    /// Points on disk from other configs (an earlier version of this one, say): kept, but
    /// left out of the tables and figures.
    pub stale: usize,
}

/// Identity of a run's inputs, as 16 hex digits: the resolved config, the bytes of every
/// catalog file applied on top of the built-in catalog, the bytes of the trace the workload
/// reads (if it is a file), and medley's version. Resuming and merging trust points with the
/// same identity, so anything that changes their numbers must be in it; an error names a file
/// that cannot be read.
pub fn config_hash(config: &ExperimentConfig, catalog: &Catalog) -> Result<String, String> {
    let mut text = serde_json::to_string(config).expect("configs serialize");
    let file_hash = |path: &Path| {
        std::fs::read(path)
            .map(|bytes| fnv1a(&bytes))
            .map_err(|err| format!("{}: cannot read: {err}", path.display()))
    };
    for overlay in &catalog.overlays {
        text.push_str(&format!("\ncatalog file {:016x}", file_hash(overlay)?));
    }
    if let Ok(crate::workload::WorkloadSource::Trace(path)) =
        crate::workload::WorkloadSource::resolve(&config.workload.source)
    {
        text.push_str(&format!("\ntrace {:016x}", file_hash(&path)?));
    }
    text.push_str(&format!("\nmedley {MEDLEY_VERSION}"));
    Ok(format!("{:016x}", fnv1a(text.as_bytes())))
}

fn point_key(hash: &str, point: &GridPoint) -> String {
    let text = serde_json::to_string(point).expect("points serialize");
    format!("{hash}-{:016x}", fnv1a(text.as_bytes()))
}

fn points_dir(out: &Path) -> PathBuf {
    out.join("points")
}

/// Checks what each point needs from the catalog (its GPU types and `GPU:tpN` entries, price
/// book and what-if prices) before any profiling or simulation starts, so a typo fails in
/// seconds, not after the points before it have run.
fn check_points_against_catalog(
    catalog: &Catalog,
    config: &ExperimentConfig,
    points: &[GridPoint],
) -> Result<(), String> {
    catalog
        .model(&config.model)
        .map_err(|err| format!("model: {err}"))?;
    for point in points {
        let context = |err: String| format!("grid point {}: {err}", point.index);
        catalog_for(catalog, point).map_err(context)?;
        catalog
            .price_book(point.price_book.as_deref())
            .map_err(|err| context(format!("prices / sweep.price_books: {err}")))?;
        // The planner's type names (`sim::type_name` of the catalog's GPU name).
        let mut names = Vec::new();
        for target in targets(&point.gpus).map_err(context)? {
            let gpu = catalog
                .gpu(&target.gpu)
                .map_err(|err| context(format!("profile.gpus / sweep.gpu_sets: {err}")))?;
            names.push(sim::type_name(&gpu.name, target.tp));
        }
        if let Some(plan) = &config.plan {
            for (key, limits) in [("plan.caps", &plan.caps), ("plan.minimums", &plan.minimums)] {
                if let Some(name) = limits.keys().find(|name| !names.contains(name)) {
                    return Err(context(format!(
                        "{key}.{name}: this point plans over {}, which has no type of that name",
                        names.join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The catalog with a point's what-if prices applied to its price book.
fn catalog_for(catalog: &Catalog, point: &GridPoint) -> Result<Catalog, String> {
    if point.price_overrides.is_empty() {
        return Ok(catalog.clone());
    }
    let book = catalog
        .price_book(point.price_book.as_deref())
        .map_err(|err| err.to_string())?
        .name
        .clone();
    let mut text = String::new();
    for (gpu, price) in &point.price_overrides {
        let gpu = catalog
            .gpu(gpu)
            .map_err(|err| err.to_string())?
            .name
            .clone();
        text.push_str(&format!(
            "[price_books.\"{book}\".prices.\"{gpu}\"]\nusd_per_hour = {price}\nsource = \"what-if sweep\"\n"
        ));
    }
    let mut catalog = catalog.clone();
    catalog.apply_toml(&text)?;
    Ok(catalog)
}

fn instance_options(config: &ExperimentConfig) -> InstanceOptions {
    InstanceOptions {
        mem_utilization: config.memory.mem_util,
        max_model_len: config.memory.max_model_len,
        dtype: WeightDtype::parse(&config.memory.dtype).unwrap_or(WeightDtype::Bf16),
        ..InstanceOptions::default()
    }
}

fn targets(gpus: &[String]) -> Result<Vec<ProfileTarget>, String> {
    gpus.iter()
        .map(|entry| match entry.split_once(':') {
            None => Ok(ProfileTarget {
                gpu: entry.clone(),
                tp: 1,
            }),
            Some((gpu, tp)) => tp
                .strip_prefix("tp")
                .and_then(|t| t.parse().ok())
                .filter(|t: &u32| *t > 0)
                .map(|tp| ProfileTarget {
                    gpu: gpu.to_string(),
                    tp,
                })
                .ok_or_else(|| format!("GPU entry '{entry}': expected GPU or GPU:tpN")),
        })
        .collect()
}

/// Runs (or resumes) an experiment, then writes the result tables from every finished point.
pub fn run(
    config: &ExperimentConfig,
    catalog: &Catalog,
    options: &RunOptions,
    progress: &(dyn Fn(RunProgress) + Sync),
) -> Result<RunReport, String> {
    let hash = config_hash(config, catalog)?;
    let all = grid(config);
    let selected: Vec<GridPoint> = all
        .iter()
        .filter(|p| {
            options
                .shard
                .is_none_or(|(shard, count)| p.index % count == shard)
        })
        .take(options.limit.unwrap_or(usize::MAX))
        .cloned()
        .collect();
    let dir = points_dir(&options.out);
    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("{}: cannot create: {err}", dir.display()))?;
    let config_text = toml::to_string(config).map_err(|err| err.to_string())?;
    let stored = options.out.join("config.toml");
    std::fs::write(
        &stored,
        format!("# resolved config, hash {hash}\n{config_text}"),
    )
    .map_err(|err| format!("{}: cannot write: {err}", stored.display()))?;
    let todo: Vec<GridPoint> = selected
        .iter()
        .filter(|p| read_point(&dir, &point_key(&hash, p)).is_none())
        .cloned()
        .collect();
    let resumed = selected.len() - todo.len();
    check_points_against_catalog(catalog, config, &todo)?;
    // Profiles depend on the SLO, the instance types and the seed, not on rate or price: run
    // each once (in parallel inside), before the points that share it.
    let mut profiles: BTreeMap<String, (ProfileSet, BucketStats)> = BTreeMap::new();
    if config.plan.is_some() || config.efficiency.is_some() {
        let mut groups: BTreeMap<String, ProfileGroup> = BTreeMap::new();
        for point in &todo {
            let slo = config.slo_for(point.tpot.as_deref(), point.ttft.as_deref())?;
            let entry = groups
                .entry(profile_key(&slo, point.seed))
                .or_insert_with(|| (slo, Vec::new(), point.seed, Vec::new()));
            for gpu in &point.gpus {
                if !entry.1.contains(gpu) {
                    entry.1.push(gpu.clone());
                }
            }
        }
        // The buckets to profile are those any point of the whole grid with this profile
        // reaches, not only those left to run: a shard, resume or limit would otherwise mark
        // the others skipped, and a merge would keep one shard's skipped rows.
        for point in &all {
            let slo = config.slo_for(point.tpot.as_deref(), point.ttft.as_deref())?;
            if let Some(entry) = groups.get_mut(&profile_key(&slo, point.seed)) {
                entry.3.push(point);
            }
        }
        // In the order the whole grid first names them, so the profile tables do not depend
        // on which points a resume, shard or limit left to run.
        let mut grid_order: Vec<&String> = Vec::new();
        for gpu in all.iter().flat_map(|point| &point.gpus) {
            if !grid_order.contains(&gpu) {
                grid_order.push(gpu);
            }
        }
        for (key, mut group) in groups {
            group
                .1
                .sort_by_key(|gpu| grid_order.iter().position(|known| *known == gpu));
            let group = profile_group(config, catalog, &group, options, progress)?;
            profiles.insert(key, group);
        }
    }
    let done = Mutex::new(0usize);
    progress(RunProgress::Points {
        done: 0,
        total: todo.len(),
    });
    todo.par_iter()
        .map(|point| {
            let result = run_point(config, catalog, &hash, point, &profiles)
                .map_err(|err| format!("grid point {}: {err}", point.index))?;
            write_point(&dir, &result)?;
            let mut done = done.lock().expect("no panics while counting");
            *done += 1;
            progress(RunProgress::Points {
                done: *done,
                total: todo.len(),
            });
            Ok(())
        })
        .collect::<Result<Vec<()>, String>>()?;
    let (points, stale) = current_points(&options.out)?;
    let rows = write_tables_of(&points, &options.out)?;
    Ok(RunReport {
        stale,
        grid_points: all.len(),
        selected: selected.len(),
        resumed,
        ran: todo.len(),
        rows,
    })
}

/// The points that share one set of profiles: their SLO, GPU types, seed, and the points.
type ProfileGroup<'p> = (ProfileSlo, Vec<String>, u64, Vec<&'p GridPoint>);

fn profile_key(slo: &ProfileSlo, seed: u64) -> String {
    format!("{slo:?}/{seed}")
}

/// The workload's requests at a point: (requests, description, rate).
fn point_requests(
    config: &ExperimentConfig,
    point: &GridPoint,
) -> Result<(Vec<workloads::Request>, String, f64), String> {
    let source = WorkloadSource::resolve(&config.workload.source)?;
    let duration = config.workload.duration_s()?;
    if config.workload.rate_shape.is_empty() {
        source.requests(point.rate, duration, point.seed)
    } else {
        let step = parse_duration("workload.rate_shape_step", &config.workload.rate_shape_step)?;
        source.shaped_requests(
            point.rate.or(config.workload.rate),
            &config.workload.rate_shape,
            step,
            duration,
            point.seed,
        )
    }
    .map_err(|err| err.to_string())
}

fn profile_group(
    config: &ExperimentConfig,
    catalog: &Catalog,
    group: &ProfileGroup<'_>,
    options: &RunOptions,
    progress: &(dyn Fn(RunProgress) + Sync),
) -> Result<(ProfileSet, BucketStats), String> {
    let (slo, gpus, seed, points) = group;
    let seed = *seed;
    // Lengths from a long stream at the workload's base rate: every bucket gets a deep pool.
    let source = WorkloadSource::resolve(&config.workload.source)?;
    let (requests, _, _) = source
        .requests(config.workload.rate, 3600.0, seed)
        .map_err(|err| err.to_string())?;
    let edges = parse_edges(&config.profile.buckets)?;
    let pairs: Vec<(u32, u32)> = requests
        .iter()
        .map(|r| (r.input_tokens, r.output_tokens))
        .collect();
    let lengths = if config.profile.lengths == "representative" {
        BucketLengths::Representative
    } else {
        BucketLengths::Sampled(pairs.clone())
    };
    let stats = BucketStats::new(&edges, &lengths, &pairs);
    let mut needed: Vec<Vec<bool>> = SizeHistogram::from_requests(edges.clone(), &requests)
        .counts
        .iter()
        .map(|row| row.iter().map(|count| *count > 0).collect())
        .collect();
    // A point's stream can be longer than the one above (a higher rate draws more lengths) and
    // reach buckets it never did; those are profiled too, or the plan would count them as
    // buckets no GPU can serve.
    for point in points {
        let (point_requests, _, _) = point_requests(config, point)?;
        let histogram = SizeHistogram::from_requests(edges.clone(), &point_requests);
        for (row, counts) in needed.iter_mut().zip(&histogram.counts) {
            for (cell, count) in row.iter_mut().zip(counts) {
                *cell |= *count > 0;
            }
        }
    }
    let settings = ProfileSettings {
        requests_per_trial: config.profile.requests_per_trial,
        replicates: config.profile.replicates,
        tolerance: config.profile.tolerance,
        seed,
        ..ProfileSettings::default()
    };
    let targets = targets(gpus)?;
    let options_memory = instance_options(config);
    let request = ProfileRequest {
        catalog,
        model: &config.model,
        instance_options: &options_memory,
        engine: &config.engine,
        price_book: config.prices.as_deref(),
        targets: &targets,
        edges: &edges,
        lengths: &lengths,
        needed: Some(&needed),
        slo: *slo,
        settings: &settings,
        cache_dir: options.cache_dir.as_deref(),
    };
    let text = slo.to_string();
    let (set, _) = solver::profile(&request, &|p| {
        progress(RunProgress::Profiling {
            slo: text.clone(),
            done: p.done,
            total: p.total,
        });
    })
    .map_err(|err| err.to_string())?;
    Ok((set, stats))
}

/// The profile set restricted to a point's instance types and repriced under its catalog.
fn profiles_for_point(
    set: &ProfileSet,
    point: &GridPoint,
    catalog: &Catalog,
) -> Result<ProfileSet, String> {
    let book = catalog
        .price_book(point.price_book.as_deref())
        .map_err(|err| err.to_string())?;
    let wanted = targets(&point.gpus)?;
    let mut subset = set.clone();
    subset.price_book = book.name.clone();
    subset.types.retain(|t| {
        wanted
            .iter()
            .any(|w| w.tp == t.tp && catalog.gpu(&w.gpu).is_ok_and(|gpu| gpu.name == t.gpu))
    });
    for table in &mut subset.types {
        let per_gpu = book
            .usd_per_gpu_hour(&table.gpu)
            .ok_or_else(|| format!("price book '{}' has no price for {}", book.name, table.gpu))?;
        table.usd_per_hour = per_gpu * f64::from(table.tp);
    }
    Ok(subset)
}

/// What every row of one grid point shares.
struct RowContext<'a> {
    config: &'a ExperimentConfig,
    hash: &'a str,
    point: &'a GridPoint,
    rate_rps: f64,
    catalog: &'a Catalog,
}

fn row_from(
    context: &RowContext<'_>,
    fleet: (&str, &str),
    validation: &Validation,
    planned: Option<f64>,
    rounds: Option<u32>,
) -> ResultRow {
    let RowContext {
        config,
        hash,
        point,
        rate_rps,
        catalog,
    } = *context;
    // A latency statistic over no completed request is no number (the summaries hold 0 there).
    let served = |value: f64| (validation.completed > 0).then_some(value);
    let gpus = sim::parse_spec(&validation.allocation)
        .map(|entries| entries.iter().map(|e| u64::from(e.count * e.tp)).sum())
        .unwrap_or(0);
    let book = catalog
        .price_book(point.price_book.as_deref())
        .map(|b| b.name.clone())
        .unwrap_or_default();
    ResultRow {
        experiment: config.name.clone(),
        config_hash: hash.to_string(),
        medley_version: MEDLEY_VERSION.to_string(),
        point: point.index as u64,
        seed: point.seed,
        rate_rps,
        tpot_target: point.tpot.clone().unwrap_or_default(),
        ttft_target: point.ttft.clone().unwrap_or_default(),
        price_book: book,
        price_overrides: point.price_text(),
        gpu_set: if config.plan.is_some() {
            point.gpus.join(",")
        } else {
            String::new()
        },
        router: point
            .router
            .clone()
            .or_else(|| config.plan.as_ref().map(|p| p.router.clone()))
            .unwrap_or_default(),
        queue: point.queue.clone().unwrap_or_else(|| "fcfs".into()),
        autoscaler: match &config.simulate {
            Some(simulate) => point.autoscaler.clone().unwrap_or_else(|| {
                simulate
                    .autoscale
                    .as_ref()
                    .map_or(sim::AutoscalePolicy::Static, |a| a.policy)
                    .name()
                    .to_string()
            }),
            None => String::new(),
        },
        fleet: fleet.0.to_string(),
        fleet_type: fleet.1.to_string(),
        allocation: validation.allocation.clone(),
        gpus,
        planned_usd_per_hour: planned,
        usd_per_hour: validation.usd_per_hour,
        slo_met: validation.passes(config.plan.as_ref().and_then(|p| p.target)),
        attainment: validation.attainment,
        arrived: validation.arrived,
        completed: validation.completed,
        rejected: validation.rejected,
        ttft_p50_s: served(validation.ttft_p50_s),
        ttft_p90_s: served(validation.ttft_p90_s),
        ttft_p99_s: served(validation.ttft_p99_s),
        tpot_p50_s: served(validation.tpot_p50_s),
        tpot_p90_s: served(validation.tpot_p90_s),
        norm_latency_mean_s: served(validation.norm_latency_mean_s),
        busy_fraction: validation.mean_busy_fraction,
        verify_rounds: rounds,
        first_plan_attainment: None,
        first_plan_slo_met: None,
        first_plan_usd_per_hour: None,
        first_plan_allocation: None,
    }
}

fn run_point(
    config: &ExperimentConfig,
    base_catalog: &Catalog,
    hash: &str,
    point: &GridPoint,
    profiles: &BTreeMap<String, (ProfileSet, BucketStats)>,
) -> Result<PointResult, String> {
    let catalog = catalog_for(base_catalog, point)?;
    let slo = config.slo_for(point.tpot.as_deref(), point.ttft.as_deref())?;
    let mut profile_table = Vec::new();
    // The point's profiles, restricted to its types and priced under its catalog, once.
    let mut point_profiles = None;
    if config.plan.is_some() || config.efficiency.is_some() {
        let (set, stats) = profiles
            .get(&profile_key(&slo, point.seed))
            .ok_or("profiles missing for this point's SLO")?;
        let set = profiles_for_point(set, point, &catalog)?;
        let price_overrides = point.price_text();
        let context = ProfileRowContext {
            experiment: &config.name,
            config_hash: hash,
            seed: point.seed,
            tpot_target: point.tpot.as_deref().unwrap_or(""),
            ttft_target: point.ttft.as_deref().unwrap_or(""),
            price_overrides: &price_overrides,
        };
        profile_table = profile_rows(&context, &set, stats);
        point_profiles = Some(set);
    }
    if config.efficiency.is_some() {
        return Ok(PointResult {
            key: point_key(hash, point),
            point: point.clone(),
            rows: Vec::new(),
            notes: Vec::new(),
            profiles: profile_table,
            latency: Vec::new(),
            scaling: None,
        });
    }
    let (requests, description, rate_rps) = point_requests(config, point)?;
    let memory = instance_options(config);
    let context = RowContext {
        config,
        hash,
        point,
        rate_rps,
        catalog: &catalog,
    };
    let mut rows = Vec::new();
    let mut latency = Vec::new();
    let mut notes = Vec::new();
    let mut scaling = None;
    if let Some(plan_config) = &config.plan {
        let set = point_profiles.ok_or("profiles missing for this point's SLO")?;
        let sim_config = SimConfig {
            engine: config.engine.clone(),
            router: sim::RouterKind::parse(&plan_config.router).ok_or("bad router")?,
            seed: point.seed,
            ..SimConfig::default()
        };
        let edges = parse_edges(&config.profile.buckets)?;
        let histogram = SizeHistogram::from_requests(edges, &requests);
        let settings = PlanSettings {
            slice_factor: plan_config.slice_factor,
            headroom: plan_config.headroom,
            caps: plan_config.caps.clone().into_iter().collect(),
            minimums: plan_config.minimums.clone().into_iter().collect(),
            options: SolveOptions::default(),
            verify: Some(VerifySettings {
                target_attainment: plan_config.target,
                max_rounds: if plan_config.verify {
                    plan_config.max_rounds
                } else {
                    1
                },
                sim: sim_config.clone(),
                ..VerifySettings::default()
            }),
            simulate_baselines: plan_config.simulate_baselines.then(|| sim_config.clone()),
            windows: Vec::new(),
        };
        let report = plan_workload(
            set,
            WorkloadInput {
                requests: &requests,
                description: &description,
                rate_rps,
                histogram: &histogram,
            },
            &settings,
            &catalog,
            &memory,
        )
        .map_err(|err| err.to_string())?;
        if report.beyond_every_type > 0 {
            notes.push(format!(
                "{} of {} requests are longer than any profiled type holds; they are left out \
                 of the simulated fleets (arrived counts exclude them)",
                report.beyond_every_type, report.requests
            ));
        }
        if !report.unservable_buckets.is_empty() {
            notes.push(format!(
                "{:.2}% of requests are in buckets no type can serve under the SLO: {}",
                report.unservable_share * 100.0,
                report.unservable_buckets.join(", ")
            ));
        }
        let verification = report
            .verification
            .as_ref()
            .expect("verification always runs in experiments");
        if let Some(reason) = &verification.gave_up {
            notes.push(format!("mixed fleet: {reason}"));
        }
        // The mixed fleet's row is its last round: the verified fleet, or the last tried.
        let last = verification.rounds.last().expect("at least one round");
        let first = verification.rounds.first().expect("at least one round");
        let mut row = row_from(
            &context,
            ("mixed", ""),
            &last.validation,
            Some(verification.planned_usd_per_hour),
            Some(last.round),
        );
        row.first_plan_attainment = Some(first.validation.attainment);
        row.first_plan_slo_met = Some(first.passed);
        row.first_plan_usd_per_hour = Some(first.planned_usd_per_hour);
        row.first_plan_allocation = Some(first.validation.allocation.clone());
        rows.push(row);
        latency.push(LatencyPercentiles::of(&last.validation));
        for baseline in &report.baseline_validations {
            let planned = report.plan.baselines.iter().find_map(|b| match &b.outcome {
                solver::BaselineOutcome::Possible { hourly_cost, .. }
                    if b.gpu_type == baseline.gpu_type =>
                {
                    Some(*hourly_cost)
                }
                _ => None,
            });
            rows.push(row_from(
                &context,
                ("single", &baseline.gpu_type),
                &baseline.validation,
                planned,
                Some(baseline.rounds),
            ));
            latency.push(LatencyPercentiles::of(&baseline.validation));
        }
        // Derating can overshoot: say so when a simulated single-type fleet did better.
        if let Some(mixed) = rows.first().filter(|r| r.slo_met)
            && let Some(cheaper) = rows
                .iter()
                .filter(|r| r.fleet == "single" && r.slo_met && r.usd_per_hour < mixed.usd_per_hour)
                .min_by(|a, b| a.usd_per_hour.total_cmp(&b.usd_per_hour))
        {
            notes.push(format!(
                "the single-type fleet {} met the SLO in simulation for ${:.2}/h, less than the verified mixed fleet {} at ${:.2}/h",
                cheaper.allocation, cheaper.usd_per_hour, mixed.allocation, mixed.usd_per_hour
            ));
        }
        for baseline in &report.plan.baselines {
            if let solver::BaselineOutcome::NotPossible { reason } = &baseline.outcome {
                notes.push(format!("{} alone: {reason}", baseline.gpu_type));
            }
        }
    } else {
        let spec = point.cluster.as_deref().ok_or("no cluster at this point")?;
        let entries = sim::parse_spec(spec)?;
        let cluster = Cluster::build(
            &entries,
            &catalog,
            &config.model,
            &memory,
            point.price_book.as_deref(),
        )?;
        let router_name = point.router.as_deref().unwrap_or("least-outstanding");
        let mut autoscale = config
            .simulate
            .as_ref()
            .and_then(|s| s.autoscale.clone())
            .unwrap_or_default();
        if let Some(name) = &point.autoscaler {
            autoscale.policy = sim::AutoscalePolicy::parse(name).ok_or("bad autoscaler")?;
        }
        let sim_config = SimConfig {
            autoscale,
            engine: config.engine.clone(),
            router: sim::RouterKind::parse(router_name).ok_or("bad router")?,
            queue: sim::QueueKind::parse(point.queue.as_deref().unwrap_or("fcfs"))
                .ok_or("bad queue")?,
            seed: point.seed,
            ..SimConfig::default()
        };
        let edges = parse_edges(&config.profile.buckets)?;
        let arrivals = if sim_config.autoscale.policy == sim::AutoscalePolicy::Static {
            Vec::new()
        } else {
            arrivals_per_second(requests.iter().map(|r| r.arrival_s))
        };
        let validation = solver::validate(&cluster, None, &sim_config, &slo, &edges, requests)?;
        rows.push(row_from(&context, ("given", ""), &validation, None, None));
        latency.push(LatencyPercentiles::of(&validation));
        scaling = validation
            .scaling
            .as_ref()
            .map(|report| ScalingTrace::new(report, validation.span_s, &arrivals));
    }
    // Rejected requests count as misses in the attainment; say how many, and when none
    // completed (the latency columns are then empty).
    for row in &rows {
        if row.rejected > 0 {
            let fleet = row.fleet_label();
            notes.push(format!(
                "{fleet} ({}): {} of {} requests rejected (counted as misses){}",
                row.allocation,
                row.rejected,
                row.arrived,
                if row.completed == 0 {
                    "; none completed, so its latency columns are empty"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(PointResult {
        key: point_key(hash, point),
        point: point.clone(),
        rows,
        notes,
        profiles: profile_table,
        latency,
        scaling,
    })
}

fn read_point(dir: &Path, key: &str) -> Option<PointResult> {
    let text = std::fs::read_to_string(dir.join(format!("{key}.json"))).ok()?;
    let result: PointResult = serde_json::from_str(&text).ok()?;
    (result.key == key).then_some(result)
}

fn write_point(dir: &Path, result: &PointResult) -> Result<(), String> {
    let path = dir.join(format!("{}.json", result.key));
    let partial = path.with_extension("json.part");
    let text = serde_json::to_string_pretty(result).map_err(|err| err.to_string())?;
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|err| format!("{}: cannot write: {err}", path.display()))
}

/// The hash `medley run` stored in `dir/config.toml`, if any.
pub fn stored_hash(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
    text.lines()
        .next()?
        .strip_prefix("# resolved config, hash ")
        .map(str::to_string)
}

/// The finished points of the config last run into `dir` (by its stored hash; every point
/// when none is stored), and how many points of other configs were left out.
pub fn current_points(dir: &Path) -> Result<(Vec<PointResult>, usize), String> {
    let mut points = read_points(&[dir.to_path_buf()])?;
    let Some(hash) = stored_hash(dir) else {
        return Ok((points, 0));
    };
    let before = points.len();
    points.retain(|p| p.key.starts_with(&format!("{hash}-")));
    let stale = before - points.len();
    Ok((points, stale))
}

/// Every finished point under these result directories (deduplicated by key, ordered by point).
pub fn read_points(dirs: &[PathBuf]) -> Result<Vec<PointResult>, String> {
    let mut by_key: BTreeMap<String, PointResult> = BTreeMap::new();
    for dir in dirs {
        let points = points_dir(dir);
        let entries = std::fs::read_dir(&points)
            .map_err(|err| format!("{}: cannot read: {err}", points.display()))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .map_err(|err| format!("{}: cannot read: {err}", path.display()))?;
            let result: PointResult = serde_json::from_str(&text)
                .map_err(|err| format!("{}: not a medley point result: {err}", path.display()))?;
            by_key.insert(result.key.clone(), result);
        }
    }
    let mut points: Vec<PointResult> = by_key.into_values().collect();
    points.sort_by(|a, b| {
        (a.rows.first().map(|r| &r.config_hash), a.point.index)
            .cmp(&(b.rows.first().map(|r| &r.config_hash), b.point.index))
    });
    Ok(points)
}

/// The finished points of shard directories of one config, and what a merge should say.
#[derive(Debug, Clone)]
pub struct MergeSet {
    /// Every point, once, ordered by grid index.
    pub points: Vec<PointResult>,
    /// Size of the config's grid, when a directory stores the config.
    pub grid_points: Option<usize>,
    /// Grid indices no directory holds (shards not run or not finished).
    pub missing: Vec<usize>,
    /// Points of other configs found beside them and left out.
    pub stale: usize,
}

/// Gathers the points of `dirs` for a merge: refuses directories of different configs (their
/// rows would sit in one table under one stored config), and finds the grid points none holds.
pub fn merge_points(dirs: &[PathBuf]) -> Result<MergeSet, String> {
    let mut by_key: BTreeMap<String, PointResult> = BTreeMap::new();
    let mut hashes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stale = 0;
    for dir in dirs {
        let (points, dir_stale) = current_points(dir)?;
        stale += dir_stale;
        // A directory without a stored config (an older run) speaks through its points' keys.
        let dir_hashes: Vec<String> = match stored_hash(dir) {
            Some(hash) => vec![hash],
            None => {
                let mut keys: Vec<String> = points
                    .iter()
                    .filter_map(|p| p.key.split_once('-').map(|(hash, _)| hash.to_string()))
                    .collect();
                keys.sort();
                keys.dedup();
                keys
            }
        };
        for hash in dir_hashes {
            hashes
                .entry(hash)
                .or_default()
                .push(dir.display().to_string());
        }
        for point in points {
            by_key.insert(point.key.clone(), point);
        }
    }
    if hashes.len() > 1 {
        let listing: Vec<String> = hashes
            .iter()
            .map(|(hash, dirs)| format!("config {hash} in {}", dirs.join(", ")))
            .collect();
        return Err(format!(
            "cannot merge results of different configs ({}): merge the shards of one config \
             (the same file run with --shard I/N)",
            listing.join("; ")
        ));
    }
    if by_key.is_empty() {
        return Err(format!(
            "no finished grid points under points/ in {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut points: Vec<PointResult> = by_key.into_values().collect();
    points.sort_by_key(|p| p.point.index);
    let grid_points = dirs
        .iter()
        .find_map(|dir| ExperimentConfig::stored_in(dir))
        .map(|config| grid(&config).len());
    let missing = grid_points.map_or_else(Vec::new, |n| {
        (0..n)
            .filter(|index| !points.iter().any(|p| p.point.index == *index))
            .collect()
    });
    Ok(MergeSet {
        points,
        grid_points,
        missing,
        stale,
    })
}

/// Writes `results.csv`, `results.parquet` and `notes.txt` in `out` from the points of shard
/// directories `dirs` of one config; returns the number of rows.
pub fn write_tables(dirs: &[PathBuf], out: &Path) -> Result<usize, String> {
    write_tables_of(&merge_points(dirs)?.points, out)
}

/// Writes the tables of these points into `out`; returns the number of rows.
pub fn write_tables_of(points: &[PointResult], out: &Path) -> Result<usize, String> {
    let points = points.to_vec();
    let rows: Vec<&ResultRow> = points.iter().flat_map(|p| &p.rows).collect();
    std::fs::create_dir_all(out).map_err(|err| format!("{}: {err}", out.display()))?;
    crate::tables::write_results(&rows, out).map_err(|err| err.to_string())?;
    let profile_rows = unique_profile_rows(&points);
    if profile_rows.is_empty() {
        // Profile tables left by another config run into this directory would sit beside
        // results they do not belong to.
        for name in ["profiles.csv", "profiles.parquet"] {
            let path = out.join(name);
            if path.exists() {
                std::fs::remove_file(&path)
                    .map_err(|err| format!("{}: cannot remove: {err}", path.display()))?;
            }
        }
    } else {
        crate::tables::write_profiles(&profile_rows, out).map_err(|err| err.to_string())?;
    }
    let mut notes = String::new();
    for note in points.iter().flat_map(PointResult::labelled_notes) {
        notes.push_str(&note);
        notes.push('\n');
    }
    let path = out.join("notes.txt");
    std::fs::write(&path, notes).map_err(|err| format!("{}: {err}", path.display()))?;
    Ok(rows.len())
}

/// The profile rows of every point, once each: points that differ only in rate share them.
pub fn unique_profile_rows(points: &[PointResult]) -> Vec<&ProfileRow> {
    let mut seen = std::collections::BTreeSet::new();
    points
        .iter()
        .flat_map(|p| &p.profiles)
        .filter(|row| {
            seen.insert((
                row.config_hash.clone(),
                row.seed,
                row.tpot_target.clone(),
                row.ttft_target.clone(),
                row.price_book.clone(),
                row.price_overrides.clone(),
                row.instance.clone(),
                row.input_bucket,
                row.output_bucket,
            ))
        })
        .collect()
}

/// Parses `i/n` for `--shard`.
pub fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--shard '{text}': expected I/N with 0 <= I < N, e.g. 0/4");
    let (shard, count) = text.split_once('/').ok_or_else(bad)?;
    let shard: usize = shard.parse().map_err(|_| bad())?;
    let count: usize = count.parse().map_err(|_| bad())?;
    if count == 0 || shard >= count {
        return Err(bad());
    }
    Ok((shard, count))
}
