//! Capacity profiles by simulation: the most requests per second one replica of an instance type
//! sustains for one request-size bucket while meeting a latency SLO.
//!
//! Method (Mélange §5.1 profiles by load tests on real GPUs; medley load-tests the simulator):
//! Poisson arrivals of requests drawn from the bucket are replayed on a single replica. The rate
//! is bracketed between an idle rate (which must pass, or the bucket is unattainable) and the
//! saturation throughput (all requests at once: no stable queue runs faster), then bisected in
//! log space to a relative tolerance. Every trial of one search reuses the same random draws scaled to the rate
//! (common random numbers), so the statistic is smooth in the rate and the bisection is stable.
//! Independent replicates (different seeds) give the answer's spread; the capacity is their mean.
//! The first `warmup_fraction` of requests are left out of the statistic (the cold-start
//! transient of an empty replica would otherwise flatter it).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use gpu_models::{Catalog, InstanceOptions};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sim::{Cluster, ClusterEntry, EngineConfig, RecordSink, RequestRecord, RequestStatus};
use workloads::{BucketEdges, Request};

/// Which statistic of a latency an SLO bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SloStat {
    /// Mélange's: the mean over requests of end-to-end latency ÷ output tokens (TPOT only).
    Melange,
    /// Mean over requests.
    Mean,
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
}

impl SloStat {
    fn quantile(self) -> Option<f64> {
        match self {
            Self::P50 => Some(0.50),
            Self::P90 => Some(0.90),
            Self::P99 => Some(0.99),
            Self::Melange | Self::Mean => None,
        }
    }
}

impl fmt::Display for SloStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Melange => "melange",
            Self::Mean => "mean",
            Self::P50 => "p50",
            Self::P90 => "p90",
            Self::P99 => "p99",
        })
    }
}

impl FromStr for SloStat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "melange" => Ok(Self::Melange),
            "mean" => Ok(Self::Mean),
            "p50" => Ok(Self::P50),
            "p90" => Ok(Self::P90),
            "p99" => Ok(Self::P99),
            other => Err(format!(
                "unknown SLO statistic '{other}'; expected melange, mean, p50, p90 or p99"
            )),
        }
    }
}

/// A latency SLO for profiling: every target set must hold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfileSlo {
    /// TPOT target, seconds, and its statistic. `melange` bounds the mean of e2e ÷ output
    /// tokens (Mélange's "TPOT"); the others bound `(e2e − ttft) / (output − 1)`.
    pub tpot: Option<(SloStat, f64)>,
    /// TTFT target, seconds, and its statistic (`melange` is not allowed here).
    pub ttft: Option<(SloStat, f64)>,
}

impl ProfileSlo {
    /// Mélange's SLO: mean over requests of e2e ÷ output tokens ≤ `target_s`.
    pub fn melange(target_s: f64) -> Self {
        Self {
            tpot: Some((SloStat::Melange, target_s)),
            ttft: None,
        }
    }

    /// Checks that at least one target is set and every target is a positive finite time.
    pub fn validate(&self) -> Result<(), String> {
        if self.tpot.is_none() && self.ttft.is_none() {
            return Err("no SLO target: set a TPOT target, a TTFT target, or both".into());
        }
        for (name, target) in [("TPOT", self.tpot), ("TTFT", self.ttft)] {
            if let Some((stat, seconds)) = target {
                if !(seconds.is_finite() && seconds > 0.0) {
                    return Err(format!(
                        "{name} target {seconds} s: expected a positive duration"
                    ));
                }
                if name == "TTFT" && stat == SloStat::Melange {
                    return Err("the melange statistic applies to TPOT only; use mean, p50, p90 or p99 for TTFT".into());
                }
            }
        }
        Ok(())
    }

    /// The per-request targets of the simulator that correspond to this SLO (for attainment).
    pub fn per_request_targets(&self) -> sim::SloTargets {
        let mut targets = sim::SloTargets::default();
        if let Some((stat, seconds)) = self.tpot {
            if stat == SloStat::Melange {
                targets.norm_latency_s = Some(seconds);
            } else {
                targets.tpot_s = Some(seconds);
            }
        }
        if let Some((_, seconds)) = self.ttft {
            targets.ttft_s = Some(seconds);
        }
        targets
    }

    /// Evaluates the SLO on latency samples; a statistic without samples does not hold.
    pub fn evaluate(&self, samples: &LatencySamples) -> SloVerdict {
        let mut checks = Vec::new();
        if let Some((stat, target_s)) = self.tpot {
            let (metric, values) = if stat == SloStat::Melange {
                ("e2e/output", &samples.norm_latency_s)
            } else {
                ("TPOT", &samples.tpot_s)
            };
            checks.push(SloCheck::new(
                metric,
                stat,
                target_s,
                values,
                samples.unserved,
            ));
        }
        if let Some((stat, target_s)) = self.ttft {
            checks.push(SloCheck::new(
                "TTFT",
                stat,
                target_s,
                &samples.ttft_s,
                samples.unserved,
            ));
        }
        SloVerdict { checks }
    }
}

impl fmt::Display for ProfileSlo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some((stat, seconds)) = self.tpot {
            parts.push(if stat == SloStat::Melange {
                format!("mean e2e/output ≤ {:.0} ms (Mélange)", seconds * 1e3)
            } else {
                format!("{stat} TPOT ≤ {:.0} ms", seconds * 1e3)
            });
        }
        if let Some((stat, seconds)) = self.ttft {
            parts.push(format!("{stat} TTFT ≤ {:.0} ms", seconds * 1e3));
        }
        f.write_str(&parts.join(" and "))
    }
}

/// One statistic of one latency checked against its target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloCheck {
    /// `TPOT`, `TTFT` or `e2e/output`.
    pub metric: String,
    /// The statistic.
    pub stat: SloStat,
    /// The target, seconds.
    pub target_s: f64,
    /// The statistic over completed requests, seconds (`None`: no samples).
    pub value_s: Option<f64>,
    /// Requests never served (rejected): they count as slower than any target.
    pub unserved: u64,
    /// Whether the target holds with the unserved requests counted.
    pub met: bool,
    /// Whether the unserved requests alone make it fail, however fast the rest were: a mean
    /// with any of them, or a percentile whose rank falls among them.
    pub fails_on_unserved_alone: bool,
}

impl SloCheck {
    fn new(metric: &str, stat: SloStat, target_s: f64, values: &[f64], unserved: u64) -> Self {
        let value_s = statistic(values, stat);
        let (met, fails_on_unserved_alone) = match stat.quantile() {
            None => (
                unserved == 0 && value_s.is_some_and(|value| value <= target_s),
                unserved > 0,
            ),
            Some(q) => {
                // The nearest rank among completed and unserved requests together; unserved
                // ones sort last (slower than any target).
                let rank = nearest_rank(q, values.len() + unserved as usize);
                let alone = unserved > 0 && rank > values.len();
                let holds = rank >= 1
                    && !alone
                    && nearest_rank_value(values, rank).is_some_and(|value| value <= target_s);
                (holds, alone)
            }
        };
        SloCheck {
            metric: metric.to_string(),
            stat,
            target_s,
            value_s,
            unserved,
            met,
            fails_on_unserved_alone,
        }
    }
}

/// The outcome of checking an SLO on a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloVerdict {
    /// One entry per target.
    pub checks: Vec<SloCheck>,
}

impl SloVerdict {
    /// Whether every target holds (a statistic without samples does not hold).
    pub fn met(&self) -> bool {
        self.checks.iter().all(|check| check.met)
    }
}

/// The 1-based nearest rank of quantile `q` among `n` values (0 when there are none).
fn nearest_rank(q: f64, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    ((q * n as f64).ceil() as usize).clamp(1, n)
}

/// Nearest-rank statistic of `values`.
fn statistic(values: &[f64], stat: SloStat) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    match stat.quantile() {
        None => Some(values.iter().sum::<f64>() / values.len() as f64),
        Some(q) => nearest_rank_value(values, nearest_rank(q, values.len())),
    }
}

/// The `rank`-th smallest of `values` (1-based), without sorting them all; `None` past the end.
fn nearest_rank_value(values: &[f64], rank: usize) -> Option<f64> {
    if rank == 0 || rank > values.len() {
        return None;
    }
    let mut scratch = values.to_vec();
    let (_, value, _) = scratch.select_nth_unstable_by(rank - 1, f64::total_cmp);
    Some(*value)
}

/// Per-request latencies of completed requests, for SLO statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySamples {
    /// Time to first token, seconds.
    pub ttft_s: Vec<f64>,
    /// `(e2e − ttft) / (out − 1)`, seconds (requests with one output token have none).
    pub tpot_s: Vec<f64>,
    /// e2e ÷ output tokens, seconds.
    pub norm_latency_s: Vec<f64>,
    /// Requests never served (rejected), which no statistic may leave out.
    pub unserved: u64,
}

impl LatencySamples {
    /// Adds one completed request's latencies.
    pub fn add(&mut self, record: &RequestRecord) {
        if let Some(ttft) = record.ttft_s {
            self.ttft_s.push(ttft);
        }
        if let Some(tpot) = record.tpot_s {
            self.tpot_s.push(tpot);
        }
        if let Some(norm) = record.norm_latency_s {
            self.norm_latency_s.push(norm);
        }
    }
}

/// Collects the latencies of requests past the warm-up, and counts what did not complete.
struct ProfileSink {
    first_measured_id: u64,
    samples: LatencySamples,
    rejected: u64,
    unfinished: u64,
    e2e_sum_s: f64,
    completed: u64,
    last_completion_s: f64,
}

impl RecordSink for ProfileSink {
    fn request(&mut self, record: &RequestRecord) -> std::io::Result<()> {
        match record.status {
            RequestStatus::Rejected => self.rejected += 1,
            RequestStatus::InFlight => self.unfinished += 1,
            RequestStatus::Completed => {
                self.completed += 1;
                self.e2e_sum_s += record.e2e_s.unwrap_or(0.0);
                self.last_completion_s = self
                    .last_completion_s
                    .max(record.completion_s.unwrap_or(0.0));
                if record.id >= self.first_measured_id {
                    self.samples.add(record);
                }
            }
        }
        Ok(())
    }
    fn sample(&mut self, _: &sim::SampleRecord) -> std::io::Result<()> {
        Ok(())
    }
}

/// How request lengths within a bucket are drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketLengths {
    /// Every request has the bucket's representative (midpoint) lengths, as Mélange profiled.
    Representative,
    /// Resampled from these (input, output) pairs, e.g. a workload's; buckets the pairs never
    /// reach fall back to the representative lengths.
    Sampled(Vec<(u32, u32)>),
}

/// Knobs of the rate search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileSettings {
    /// Requests per trial (more: a steadier statistic, slower).
    pub requests_per_trial: usize,
    /// Leading fraction of each trial's requests left out of the statistic.
    pub warmup_fraction: f64,
    /// Independent searches with different seeds; the capacity is their mean.
    pub replicates: u32,
    /// The search stops when the failing and passing rates differ by less than this fraction.
    pub tolerance: f64,
    /// Seed of every draw.
    pub seed: u64,
    /// Queue order of the replica under test: a capacity holds for the order it was measured
    /// under, so profiles and the simulations that check a plan must use the same one.
    pub queue: sim::QueueKind,
}

impl Default for ProfileSettings {
    fn default() -> Self {
        Self {
            requests_per_trial: 600,
            warmup_fraction: 0.2,
            replicates: 3,
            tolerance: 0.02,
            seed: 0,
            queue: sim::QueueKind::default(),
        }
    }
}

impl ProfileSettings {
    /// Checks every knob.
    pub fn validate(&self) -> Result<(), String> {
        if self.requests_per_trial < 20 {
            return Err(format!(
                "requests per trial {}: expected at least 20",
                self.requests_per_trial
            ));
        }
        if !(0.0..0.9).contains(&self.warmup_fraction) {
            return Err(format!(
                "warm-up fraction {}: expected a value in [0, 0.9)",
                self.warmup_fraction
            ));
        }
        if self.replicates == 0 {
            return Err("replicates: expected at least 1".into());
        }
        if !(self.tolerance > 0.0 && self.tolerance < 1.0) {
            return Err(format!(
                "tolerance {}: expected a fraction in (0, 1)",
                self.tolerance
            ));
        }
        Ok(())
    }
}

/// Why a bucket has the capacity it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellStatus {
    /// Profiled by the rate search.
    Profiled,
    /// Requests of the bucket do not fit the instance (context or KV cache): capacity 0.
    TooLong,
    /// The SLO fails even with no queueing (a lone request is too slow): capacity 0.
    SloUnattainable,
    /// Not profiled because the workload has no requests there (capacity 0, never used).
    Skipped,
}

/// The capacity of one instance type for one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellProfile {
    /// Input bucket (row).
    pub input_bucket: usize,
    /// Output bucket (column).
    pub output_bucket: usize,
    /// How the value came about.
    pub status: CellStatus,
    /// Max sustainable rate, req/s (mean over replicates; 0 unless profiled).
    pub capacity_rps: f64,
    /// Each replicate's answer (its highest passing rate), req/s.
    pub replicate_rps: Vec<f64>,
    /// Standard error of the mean over replicates, req/s (0 with one replicate).
    pub std_error_rps: f64,
    /// Simulated trials run.
    pub trials: u32,
}

/// The capacity table of one instance type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeProfile {
    /// Instance name (`A10G`, `H100-SXMx2`).
    pub instance: String,
    /// GPU name.
    pub gpu: String,
    /// GPUs per instance.
    pub tp: u32,
    /// $/hour of one instance under the price book.
    pub usd_per_hour: f64,
    /// Why the type serves nothing (does not fit), when it does not.
    pub unusable: Option<String>,
    /// `cells[input bucket][output bucket]`.
    pub cells: Vec<Vec<CellProfile>>,
}

impl TypeProfile {
    /// The capacity grid, req/s.
    pub fn tputs(&self) -> Vec<Vec<f64>> {
        self.cells
            .iter()
            .map(|row| row.iter().map(|cell| cell.capacity_rps).collect())
            .collect()
    }
}

/// Capacity tables of several instance types for one model, engine, SLO and bucket grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileSet {
    /// Model served.
    pub model: String,
    /// The SLO profiled for.
    pub slo: ProfileSlo,
    /// Human-readable SLO.
    pub slo_text: String,
    /// Price book of `usd_per_hour`.
    pub price_book: String,
    /// Input bucket upper edges, tokens.
    pub input_edges: Vec<u32>,
    /// Output bucket upper edges, tokens.
    pub output_edges: Vec<u32>,
    /// Search settings.
    pub settings: ProfileSettings,
    /// One table per instance type, in the order asked.
    pub types: Vec<TypeProfile>,
}

/// How a profile run went (kept out of [`ProfileSet`] so that its output is the same whether
/// cells came from the cache or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProfileRunStats {
    /// Cells answered from the on-disk cache.
    pub cached_cells: usize,
    /// Cells simulated in this run.
    pub simulated_cells: usize,
    /// Simulated trials in this run.
    pub trials: u64,
}

impl ProfileSet {
    /// Mélange's `gpu_info` (cost and tputs per type), for the planner or other tools.
    pub fn gpu_info(&self) -> crate::GpuInfo {
        crate::GpuInfo(
            self.types
                .iter()
                .map(|t| {
                    (
                        t.instance.clone(),
                        crate::MelangeGpu {
                            cost: t.usd_per_hour,
                            tputs: t.tputs(),
                        },
                    )
                })
                .collect(),
        )
    }

    /// The simulator's capacity table (for Mélange's router).
    pub fn capacity_table(&self) -> sim::CapacityTable {
        sim::CapacityTable {
            edges: BucketEdges {
                input: self.input_edges.clone(),
                output: self.output_edges.clone(),
            },
            tputs: self
                .types
                .iter()
                .map(|t| (t.instance.clone(), t.tputs()))
                .collect::<BTreeMap<_, _>>(),
        }
    }
}

/// One instance type to profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileTarget {
    /// GPU name (catalog name or alias).
    pub gpu: String,
    /// GPUs per instance (tensor parallel).
    pub tp: u32,
}

/// Everything a profile depends on.
#[derive(Debug, Clone)]
pub struct ProfileRequest<'a> {
    /// Catalog of GPUs, models and prices.
    pub catalog: &'a Catalog,
    /// Model name.
    pub model: &'a str,
    /// Instance memory options.
    pub instance_options: &'a InstanceOptions,
    /// Engine settings of the replica.
    pub engine: &'a EngineConfig,
    /// Price book name (`None`: the default).
    pub price_book: Option<&'a str>,
    /// Instance types.
    pub targets: &'a [ProfileTarget],
    /// Bucket grid.
    pub edges: &'a BucketEdges,
    /// How lengths are drawn within a bucket.
    pub lengths: &'a BucketLengths,
    /// `needed[i][j]`: profile this bucket (others are skipped); `None` profiles all.
    pub needed: Option<&'a [Vec<bool>]>,
    /// The SLO.
    pub slo: ProfileSlo,
    /// Search settings.
    pub settings: &'a ProfileSettings,
    /// Directory of cached cells (`None`: no cache).
    pub cache_dir: Option<&'a Path>,
}

/// Progress of a profile run: cells finished out of all.
#[derive(Debug, Clone, Copy)]
pub struct ProfileProgress {
    /// Cells finished (cached or simulated).
    pub done: usize,
    /// Cells in all.
    pub total: usize,
}

/// What can go wrong while profiling.
#[derive(Debug)]
pub enum ProfileError {
    /// A setting, SLO or name is invalid.
    Invalid(String),
    /// The simulator failed.
    Sim(String),
    /// The cache could not be written.
    Cache {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(message) => write!(f, "{message}"),
            Self::Sim(message) => write!(f, "simulation failed while profiling: {message}"),
            Self::Cache { path, message } => {
                write!(f, "profile cache {}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for ProfileError {}

/// 64-bit FNV-1a: a stable hash for cache keys and seeds (std's hashers may change).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A built single-replica cluster for one target, or why it cannot serve.
struct TypeSetup {
    cluster: Option<Cluster>,
    instance: String,
    gpu: String,
    tp: u32,
    usd_per_hour: f64,
    unusable: Option<String>,
    /// Everything about the instance type that affects a profile (cache key part).
    fingerprint: String,
}

fn setup_type(
    request: &ProfileRequest<'_>,
    target: &ProfileTarget,
) -> Result<TypeSetup, ProfileError> {
    let gpu = request
        .catalog
        .gpu(&target.gpu)
        .map_err(|err| ProfileError::Invalid(err.to_string()))?;
    let book = request
        .catalog
        .price_book(request.price_book)
        .map_err(|err| ProfileError::Invalid(err.to_string()))?;
    let per_gpu = book.usd_per_gpu_hour(&gpu.name).ok_or_else(|| {
        ProfileError::Invalid(format!(
            "price book '{}' has no price for {}",
            book.name, gpu.name
        ))
    })?;
    let instance = sim::type_name(&gpu.name, target.tp);
    let entry = ClusterEntry {
        gpu: gpu.name.clone(),
        count: 1,
        tp: target.tp,
    };
    let usd_per_hour = per_gpu * f64::from(target.tp);
    match Cluster::build(
        &[entry],
        request.catalog,
        request.model,
        request.instance_options,
        request.price_book,
    ) {
        Ok(cluster) => {
            let fingerprint = format!("{:?}", cluster.types[0].instance);
            Ok(TypeSetup {
                cluster: Some(cluster),
                instance,
                gpu: gpu.name.clone(),
                tp: target.tp,
                usd_per_hour,
                unusable: None,
                fingerprint,
            })
        }
        Err(reason) => Ok(TypeSetup {
            cluster: None,
            instance,
            gpu: gpu.name.clone(),
            tp: target.tp,
            usd_per_hour,
            unusable: Some(reason),
            fingerprint: String::new(),
        }),
    }
}

/// Pools of (input, output) pairs per bucket, and a fingerprint of each for the cache key.
/// Length pairs to draw from in one bucket, and their fingerprint (a cache-key part).
type BucketPool = (Vec<(u32, u32)>, u64);

fn bucket_pools(edges: &BucketEdges, lengths: &BucketLengths) -> Vec<Vec<BucketPool>> {
    let (rows, columns) = edges.shape();
    let mut pools = vec![vec![(Vec::new(), 0u64); columns]; rows];
    if let BucketLengths::Sampled(pairs) = lengths {
        for &(input, output) in pairs {
            if let Some((i, j)) = edges.bucket_of(input, output) {
                pools[i][j].0.push((input, output));
            }
        }
    }
    for (i, row) in pools.iter_mut().enumerate() {
        for (j, (pool, fingerprint)) in row.iter_mut().enumerate() {
            if pool.is_empty() {
                pool.push(edges.representative(i, j));
            }
            let bytes: Vec<u8> = pool
                .iter()
                .flat_map(|(a, b)| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
                .collect();
            *fingerprint = fnv1a(&bytes);
        }
    }
    pools
}

/// Result of one trial at one rate.
enum Trial {
    Pass,
    Fail,
    Rejected,
}

/// One search: fixed draws (common random numbers), rate varied.
struct Search<'a> {
    cluster: &'a Cluster,
    config: sim::SimConfig,
    slo: ProfileSlo,
    unit_gaps: Vec<f64>,
    lengths: Vec<(u32, u32)>,
    first_measured_id: u64,
    trials: u32,
}

impl Search<'_> {
    /// Simulates the trial's requests with arrivals scaled to `rate` (`None`: all at time 0).
    fn simulate(&mut self, rate: Option<f64>) -> Result<ProfileSink, ProfileError> {
        self.trials += 1;
        let mut clock = 0.0;
        let requests = self.unit_gaps.iter().zip(&self.lengths).enumerate().map(
            |(id, (gap, &(input, output)))| {
                if let Some(rate) = rate {
                    clock += gap / rate;
                }
                Request::new(id as u64, clock, input, output)
            },
        );
        let mut sink = ProfileSink {
            first_measured_id: self.first_measured_id,
            samples: LatencySamples::default(),
            rejected: 0,
            unfinished: 0,
            e2e_sum_s: 0.0,
            completed: 0,
            last_completion_s: 0.0,
        };
        sim::simulate(self.cluster, &self.config, None, requests, &mut sink, None)
            .map_err(|err| ProfileError::Sim(err.to_string()))?;
        Ok(sink)
    }

    /// Requests per second when all arrive at once (an upper bound on any stable rate).
    fn saturation(&mut self) -> Result<f64, ProfileError> {
        let sink = self.simulate(None)?;
        Ok(sink.completed as f64 / sink.last_completion_s.max(1e-9))
    }

    /// Whether the SLO holds at `rate`, and the mean e2e latency of completed requests.
    fn run(&mut self, rate: f64) -> Result<(Trial, f64), ProfileError> {
        let sink = self.simulate(Some(rate))?;
        let mean_e2e = sink.e2e_sum_s / sink.completed.max(1) as f64;
        if sink.rejected > 0 {
            return Ok((Trial::Rejected, mean_e2e));
        }
        let met = sink.unfinished == 0 && self.slo.evaluate(&sink.samples).met();
        Ok((if met { Trial::Pass } else { Trial::Fail }, mean_e2e))
    }
}

/// Outcome of one replicate's search.
struct SearchOutcome {
    status: CellStatus,
    capacity_rps: f64,
    trials: u32,
}

fn search_capacity(
    cluster: &Cluster,
    engine: &EngineConfig,
    slo: ProfileSlo,
    settings: &ProfileSettings,
    pool: &[(u32, u32)],
    seed: u64,
) -> Result<SearchOutcome, ProfileError> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let count = settings.requests_per_trial;
    let unit_gaps: Vec<f64> = (0..count)
        .map(|_| -(1.0 - rng.random::<f64>()).ln())
        .collect();
    let lengths: Vec<(u32, u32)> = (0..count)
        .map(|_| pool[rng.random_range(0..pool.len())])
        .collect();
    let mut search = Search {
        cluster,
        config: sim::SimConfig {
            engine: engine.clone(),
            queue: settings.queue,
            ..sim::SimConfig::default()
        },
        slo,
        unit_gaps,
        lengths,
        first_measured_id: (settings.warmup_fraction * count as f64).floor() as u64,
        trials: 0,
    };
    // An almost idle replica: one request at a time. Its e2e latency sets the first guess.
    let mean_len = search
        .lengths
        .iter()
        .map(|(i, o)| f64::from(i + o))
        .sum::<f64>()
        / count as f64;
    let idle_rate = 1e-3 / (1.0 + mean_len * 1e-3);
    let (idle, idle_e2e) = search.run(idle_rate)?;
    match idle {
        Trial::Rejected => {
            return Ok(SearchOutcome {
                status: CellStatus::TooLong,
                capacity_rps: 0.0,
                trials: search.trials,
            });
        }
        Trial::Fail => {
            return Ok(SearchOutcome {
                status: CellStatus::SloUnattainable,
                capacity_rps: 0.0,
                trials: search.trials,
            });
        }
        Trial::Pass => {}
    }
    // Saturation: every request at once keeps the replica as full as it can be, so requests
    // over the makespan bound its service rate. A queue is stable only below that rate, so the
    // bound is a failing rate by definition (a finite trial above it could still pass: with few
    // requests, a backlog never grows long enough to show).
    let saturation_rps = search.saturation()?;
    let mut low = idle_rate;
    let mut high = saturation_rps;
    if low >= high {
        return Ok(SearchOutcome {
            status: CellStatus::SloUnattainable,
            capacity_rps: 0.0,
            trials: search.trials,
        });
    }
    // The sequential rate (one request at a time) is a good first split of the bracket.
    let sequential = 1.0 / idle_e2e.max(1e-9);
    if sequential > low && sequential < high {
        match search.run(sequential)?.0 {
            Trial::Pass => low = sequential,
            Trial::Fail | Trial::Rejected => high = sequential,
        }
    }
    while high / low > 1.0 + settings.tolerance {
        let middle = (low * high).sqrt();
        match search.run(middle)?.0 {
            Trial::Pass => low = middle,
            Trial::Fail | Trial::Rejected => high = middle,
        }
    }
    Ok(SearchOutcome {
        status: CellStatus::Profiled,
        capacity_rps: low,
        trials: search.trials,
    })
}

/// Revision of how a cell is measured, in its cache key: cells cached by an earlier revision
/// are measured again. 2: a bucket's requests that no profiled type holds are left out of its
/// load tests (the bucket was too long for every type if any one was). 3: a cell's draws are
/// seeded by the cell alone (revision 2 briefly also seeded them by the longest request the
/// types profiled beside it hold, and such cached cells would stand in for fresh ones).
const CELL_REVISION: u32 = 3;

/// The cache key of one cell: every input that can change its answer, as text.
fn cell_key(
    request: &ProfileRequest<'_>,
    setup: &TypeSetup,
    bucket: (usize, usize),
    pool_fingerprint: u64,
) -> String {
    format!(
        "medley {} (cells v{CELL_REVISION})\ninstance {}\nengine {:?}\nslo {:?}\nsettings {:?}\nedges {:?}\nbucket {:?}\nlengths {}:{pool_fingerprint:016x}",
        env!("CARGO_PKG_VERSION"),
        setup.fingerprint,
        request.engine,
        request.slo,
        request.settings,
        request.edges,
        bucket,
        match request.lengths {
            BucketLengths::Representative => "representative",
            BucketLengths::Sampled(_) => "sampled",
        },
    )
}

#[derive(Serialize, Deserialize)]
struct CachedCell {
    key: String,
    cell: CellProfile,
}

fn cache_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{:016x}.json", fnv1a(key.as_bytes())))
}

fn read_cached(dir: &Path, key: &str) -> Option<CellProfile> {
    let text = std::fs::read_to_string(cache_path(dir, key)).ok()?;
    let cached: CachedCell = serde_json::from_str(&text).ok()?;
    (cached.key == key).then_some(cached.cell)
}

fn write_cached(dir: &Path, key: &str, cell: &CellProfile) -> Result<(), ProfileError> {
    let path = cache_path(dir, key);
    let error = |message: String| ProfileError::Cache {
        path: path.clone(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|err| error(err.to_string()))?;
    let text = serde_json::to_string(&CachedCell {
        key: key.to_string(),
        cell: cell.clone(),
    })
    .map_err(|err| error(err.to_string()))?;
    // Write then rename, so a parallel or interrupted run never leaves half a file.
    let partial = path.with_extension(format!("json.{}.part", std::process::id()));
    std::fs::write(&partial, text).map_err(|err| error(err.to_string()))?;
    std::fs::rename(&partial, &path).map_err(|err| error(err.to_string()))
}

fn profile_cell(
    request: &ProfileRequest<'_>,
    cluster: &Cluster,
    bucket: (usize, usize),
    pool: &[(u32, u32)],
    longest: u64,
    seed: u64,
) -> Result<CellProfile, ProfileError> {
    // Requests no profiled type holds leave the pool: one such prompt among thousands once
    // made every type too long for the whole bucket, and its load left the plan. A request some
    // other type holds stays, so a type that cannot hold it is too long for the bucket, and the
    // planner sends the bucket where all of it fits.
    let fitting: Vec<(u32, u32)> = pool
        .iter()
        .copied()
        .filter(|&(input, output)| sim::replica::footprint(input, output) <= longest)
        .collect();
    let own_limit = cluster.types.first().map_or(0, |ty| {
        sim::replica::max_request_tokens(&ty.instance, request.engine)
    });
    let too_long_here = fitting
        .iter()
        .any(|&(input, output)| sim::replica::footprint(input, output) > own_limit);
    let mut replicate_rps = Vec::new();
    let mut trials = 0;
    let mut status = CellStatus::Profiled;
    if fitting.is_empty() || too_long_here {
        return Ok(CellProfile {
            input_bucket: bucket.0,
            output_bucket: bucket.1,
            status: CellStatus::TooLong,
            capacity_rps: 0.0,
            replicate_rps,
            std_error_rps: 0.0,
            trials,
        });
    }
    for replicate in 0..request.settings.replicates {
        let outcome = search_capacity(
            cluster,
            request.engine,
            request.slo,
            request.settings,
            &fitting,
            seed ^ u64::from(replicate).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        )?;
        trials += outcome.trials;
        if outcome.status != CellStatus::Profiled {
            // Too long or hopeless at zero load: no other seed changes that.
            status = outcome.status;
            replicate_rps.clear();
            break;
        }
        replicate_rps.push(outcome.capacity_rps);
    }
    let n = replicate_rps.len() as f64;
    let (capacity_rps, std_error_rps) = if replicate_rps.is_empty() {
        (0.0, 0.0)
    } else {
        let mean = replicate_rps.iter().sum::<f64>() / n;
        let variance = if replicate_rps.len() > 1 {
            replicate_rps
                .iter()
                .map(|r| (r - mean).powi(2))
                .sum::<f64>()
                / (n - 1.0)
        } else {
            0.0
        };
        (mean, (variance / n).sqrt())
    };
    Ok(CellProfile {
        input_bucket: bucket.0,
        output_bucket: bucket.1,
        status,
        capacity_rps,
        replicate_rps,
        std_error_rps,
        trials,
    })
}

/// Profiles every (instance type, bucket) cell in parallel, reusing cached cells.
pub fn profile(
    request: &ProfileRequest<'_>,
    progress: &(dyn Fn(ProfileProgress) + Sync),
) -> Result<(ProfileSet, ProfileRunStats), ProfileError> {
    request.slo.validate().map_err(ProfileError::Invalid)?;
    request.settings.validate().map_err(ProfileError::Invalid)?;
    if request.targets.is_empty() {
        return Err(ProfileError::Invalid("no instance types to profile".into()));
    }
    let (rows, columns) = request.edges.shape();
    if let Some(needed) = request.needed
        && (needed.len() != rows || needed.iter().any(|row| row.len() != columns))
    {
        return Err(ProfileError::Invalid(format!(
            "the needed-bucket mask is not {rows} × {columns}"
        )));
    }
    let setups = request
        .targets
        .iter()
        .map(|target| setup_type(request, target))
        .collect::<Result<Vec<_>, _>>()?;
    let pools = bucket_pools(request.edges, request.lengths);
    // The longest request any of the profiled types holds: longer ones no fleet of them serves
    // (the planner sets them aside), so they leave every load test.
    let longest = setups
        .iter()
        .filter_map(|setup| setup.cluster.as_ref())
        .filter_map(|cluster| cluster.types.first())
        .map(|ty| sim::replica::max_request_tokens(&ty.instance, request.engine))
        .max()
        .unwrap_or(0);
    let is_needed = |i: usize, j: usize| request.needed.is_none_or(|needed| needed[i][j]);
    let tasks: Vec<(usize, usize, usize)> = setups
        .iter()
        .enumerate()
        .filter(|(_, setup)| setup.cluster.is_some())
        .flat_map(|(t, _)| (0..rows).flat_map(move |i| (0..columns).map(move |j| (t, i, j))))
        .filter(|&(_, i, j)| is_needed(i, j))
        .collect();
    let total = tasks.len();
    let done = AtomicUsize::new(0);
    let cached = AtomicUsize::new(0);
    let trials_run = AtomicU64::new(0);
    progress(ProfileProgress { done: 0, total });
    let results: Vec<CellProfile> = tasks
        .par_iter()
        .map(|&(t, i, j)| {
            let setup = &setups[t];
            let cluster = setup.cluster.as_ref().expect("tasks only for usable types");
            let (pool, pool_fingerprint) = &pools[i][j];
            // The draws are seeded by the cell itself, not by which other types it was
            // profiled beside; the cache key adds those (through the longest request they hold).
            let cell_text = cell_key(request, setup, (i, j), *pool_fingerprint);
            let key = format!("{cell_text}\nlongest held {longest}");
            let cell = match request.cache_dir.and_then(|dir| read_cached(dir, &key)) {
                Some(cell) => {
                    cached.fetch_add(1, Ordering::Relaxed);
                    cell
                }
                None => {
                    let seed = fnv1a(cell_text.as_bytes()) ^ request.settings.seed;
                    let cell = profile_cell(request, cluster, (i, j), pool, longest, seed)?;
                    trials_run.fetch_add(u64::from(cell.trials), Ordering::Relaxed);
                    if let Some(dir) = request.cache_dir {
                        write_cached(dir, &key, &cell)?;
                    }
                    cell
                }
            };
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(ProfileProgress {
                done: finished,
                total,
            });
            Ok(cell)
        })
        .collect::<Result<_, ProfileError>>()?;
    let mut by_cell: BTreeMap<(usize, usize, usize), CellProfile> =
        tasks.iter().copied().zip(results).collect();
    let types = setups
        .iter()
        .enumerate()
        .map(|(t, setup)| TypeProfile {
            instance: setup.instance.clone(),
            gpu: setup.gpu.clone(),
            tp: setup.tp,
            usd_per_hour: setup.usd_per_hour,
            unusable: setup.unusable.clone(),
            cells: (0..rows)
                .map(|i| {
                    (0..columns)
                        .map(|j| {
                            by_cell.remove(&(t, i, j)).unwrap_or_else(|| CellProfile {
                                input_bucket: i,
                                output_bucket: j,
                                status: if setup.cluster.is_none() {
                                    CellStatus::TooLong
                                } else {
                                    CellStatus::Skipped
                                },
                                capacity_rps: 0.0,
                                replicate_rps: Vec::new(),
                                std_error_rps: 0.0,
                                trials: 0,
                            })
                        })
                        .collect()
                })
                .collect(),
        })
        .collect();
    let book = request
        .catalog
        .price_book(request.price_book)
        .map_err(|err| ProfileError::Invalid(err.to_string()))?;
    let cached_cells = cached.into_inner();
    let stats = ProfileRunStats {
        cached_cells,
        simulated_cells: total - cached_cells,
        trials: trials_run.into_inner(),
    };
    let set = ProfileSet {
        model: request.model.to_string(),
        slo: request.slo,
        slo_text: request.slo.to_string(),
        price_book: book.name.clone(),
        input_edges: request.edges.input.clone(),
        output_edges: request.edges.output.clone(),
        settings: request.settings.clone(),
        types,
    };
    Ok((set, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(ttft_s: Vec<f64>, unserved: u64) -> LatencySamples {
        LatencySamples {
            norm_latency_s: ttft_s.clone(),
            ttft_s,
            tpot_s: Vec::new(),
            unserved,
        }
    }

    /// Requests never served count as slower than any target: a mean fails with any of them,
    /// a percentile when they push its rank past a slow request or past every served one.
    #[test]
    fn unserved_requests_count_against_every_statistic() {
        let melange = ProfileSlo::melange(0.12);
        let fast = vec![0.05; 10];
        assert!(melange.evaluate(&samples(fast.clone(), 0)).met());
        let verdict = melange.evaluate(&samples(fast, 1));
        assert!(!verdict.met());
        assert!(verdict.checks[0].fails_on_unserved_alone);
        assert!((verdict.checks[0].value_s.unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(verdict.checks[0].unserved, 1);

        let p90 = ProfileSlo {
            tpot: None,
            ttft: Some((SloStat::P90, 0.5)),
        };
        // 90 fast and 9 slow: the 90th of 99 is fast, the 91st of 101 is slow.
        let mut mixed = vec![0.1; 90];
        mixed.extend([1.0; 9]);
        assert!(p90.evaluate(&samples(mixed.clone(), 0)).met());
        let verdict = p90.evaluate(&samples(mixed, 2));
        assert!(!verdict.met());
        assert!(!verdict.checks[0].fails_on_unserved_alone);
        // 99 fast: one unserved in 100 leaves the 90th fast; 20 in 119 put it among them.
        let all_fast = vec![0.1; 99];
        assert!(p90.evaluate(&samples(all_fast.clone(), 1)).met());
        let verdict = p90.evaluate(&samples(all_fast, 20));
        assert!(!verdict.met());
        assert!(verdict.checks[0].fails_on_unserved_alone);
        // Nothing served at all: no statistic holds.
        let verdict = p90.evaluate(&samples(Vec::new(), 3));
        assert!(!verdict.met() && verdict.checks[0].fails_on_unserved_alone);
        assert!(!p90.evaluate(&samples(Vec::new(), 0)).met());
    }
}
