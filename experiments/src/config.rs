//! Experiment config files (TOML): what to run, and the sweep axes whose cartesian product is
//! the grid. Everything is checked before any run starts; errors name the file, the key and
//! what was expected, with the nearest valid key for a misspelt one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sim::EngineConfig;
use solver::{ProfileSlo, SloStat};

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name, used in outputs.
    pub name: String,
    /// What the experiment shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every draw (the `seeds` axis replaces it).
    #[serde(default)]
    pub seed: u64,
    /// Model served.
    #[serde(default = "default_model")]
    pub model: String,
    /// Price book (the `price_books` axis replaces it).
    #[serde(default)]
    pub prices: Option<String>,
    /// The request stream.
    pub workload: WorkloadConfig,
    /// The latency SLO (the `tpot` and `ttft` axes replace its targets).
    #[serde(default)]
    pub slo: SloConfig,
    /// Serving-engine settings of every replica.
    #[serde(default)]
    pub engine: EngineConfig,
    /// Memory settings of every instance.
    #[serde(default)]
    pub memory: MemoryConfig,
    /// Capacity profiling (plan experiments).
    #[serde(default)]
    pub profile: ProfileConfig,
    /// Let the solver choose the fleet, then check it by simulation.
    #[serde(default)]
    pub plan: Option<PlanConfig>,
    /// Simulate given clusters instead of planning.
    #[serde(default)]
    pub simulate: Option<SimulateConfig>,
    /// Only profile: tokens per dollar of each instance type per bucket (no fleet, no rates).
    #[serde(default)]
    pub efficiency: Option<EfficiencyConfig>,
    /// Sweep axes.
    #[serde(default)]
    pub sweep: SweepConfig,
}

fn default_model() -> String {
    "Llama-2-7B".into()
}

/// The request stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// A built-in preset, or a trace file (relative paths are relative to the config file).
    pub source: String,
    /// Request rate, req/s (the `rates` axis replaces it). Default: the preset's own rate, or
    /// the trace's.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Length of a preset stream (default `10m`); an error with a trace, which runs to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Relative request rate over time (presets only), one value per `rate_shape_step`,
    /// repeating: a daily curve, say. Scaled so its mean is the rate; empty: a steady rate.
    #[serde(default)]
    pub rate_shape: Vec<f64>,
    /// How long each `rate_shape` value lasts.
    #[serde(default = "default_shape_step")]
    pub rate_shape_step: String,
}

fn default_shape_step() -> String {
    "1m".into()
}

/// A preset stream's length when `workload.duration` is not given.
pub const DEFAULT_PRESET_DURATION: &str = "10m";

impl WorkloadConfig {
    /// The preset stream's length in seconds: `duration`, or [`DEFAULT_PRESET_DURATION`].
    pub fn duration_s(&self) -> Result<f64, String> {
        let text = self.duration.as_deref().unwrap_or(DEFAULT_PRESET_DURATION);
        let seconds = parse_duration("workload.duration", text)?;
        if seconds > workloads::MAX_ARRIVAL_S {
            return Err(format!(
                "workload.duration = \"{text}\": expected at most {:e} s (about 31 years)",
                workloads::MAX_ARRIVAL_S
            ));
        }
        Ok(seconds)
    }
}

/// The SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloConfig {
    /// TPOT target, e.g. `120ms`.
    pub tpot: Option<String>,
    /// Its statistic: `melange` (mean of e2e ÷ output tokens, as the Mélange paper), `mean`,
    /// `p50`, `p90` or `p99` of (e2e − TTFT) ÷ (output − 1).
    pub tpot_stat: SloStat,
    /// TTFT target, e.g. `2s`.
    pub ttft: Option<String>,
    /// Its statistic: `mean`, `p50`, `p90` or `p99`.
    pub ttft_stat: SloStat,
}

impl Default for SloConfig {
    fn default() -> Self {
        Self {
            tpot: None,
            tpot_stat: SloStat::Melange,
            ttft: None,
            ttft_stat: SloStat::P90,
        }
    }
}

/// Memory settings of every instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Fraction of GPU memory the engine may use.
    pub mem_util: f64,
    /// Longest request accepted, tokens (default: the model's context).
    pub max_model_len: Option<u32>,
    /// Weight precision: `bf16` (or `fp16`, the same size) or `fp8`.
    pub dtype: String,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            mem_util: 0.9,
            max_model_len: None,
            dtype: "bf16".into(),
        }
    }
}

/// Capacity profiling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileConfig {
    /// Instance types (`GPU` or `GPU:tpN`); the `gpu_sets` axis replaces them.
    pub gpus: Vec<String>,
    /// Bucket edges: `melange` or `IN,IN,...;OUT,OUT,...`.
    pub buckets: String,
    /// `workload` (lengths resampled from the workload) or `representative` (midpoints).
    pub lengths: String,
    /// Requests per simulated trial.
    pub requests_per_trial: usize,
    /// Independent searches per cell.
    pub replicates: u32,
    /// Relative width at which the rate search stops.
    pub tolerance: f64,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        Self {
            gpus: ["L4", "A10G", "A100-80GB", "H100-SXM"]
                .map(String::from)
                .to_vec(),
            buckets: "melange".into(),
            lengths: "workload".into(),
            requests_per_trial: 600,
            replicates: 3,
            tolerance: 0.02,
        }
    }
}

/// Planning and its verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanConfig {
    /// Slices per bucket (Mélange's slice factor).
    pub slice_factor: u32,
    /// Extra rate fraction to provision for.
    pub headroom: f64,
    /// Verify the plan by simulation, derating and re-planning until it meets the SLO.
    pub verify: bool,
    /// Per-request attainment the verified fleet must reach besides the SLO statistics.
    pub target: Option<f64>,
    /// Rounds of derating before giving up.
    pub max_rounds: u32,
    /// Router of the simulated fleets.
    pub router: String,
    /// Also simulate each single-type fleet the solver sizes.
    pub simulate_baselines: bool,
    /// Most instances per type.
    pub caps: BTreeMap<String, u32>,
    /// Least instances per type.
    pub minimums: BTreeMap<String, u32>,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            slice_factor: 8,
            headroom: 0.0,
            verify: true,
            target: None,
            max_rounds: 6,
            router: "melange".into(),
            simulate_baselines: true,
            caps: BTreeMap::new(),
            minimums: BTreeMap::new(),
        }
    }
}

/// Simulating given clusters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulateConfig {
    /// Cluster spec, e.g. `A10G:2,A100-80GB:1` (the `clusters` axis replaces it).
    pub cluster: String,
    /// Router (the `routers` axis replaces it).
    pub router: String,
    /// Waiting-queue order (the `queues` axis replaces it).
    pub queue: String,
    /// Autoscaling (medley simulate's settings; the `autoscalers` axis replaces its policy).
    /// None: the cluster as given.
    pub autoscale: Option<sim::AutoscaleConfig>,
}

impl Default for SimulateConfig {
    fn default() -> Self {
        Self {
            cluster: String::new(),
            router: "least-outstanding".into(),
            queue: "fcfs".into(),
            autoscale: None,
        }
    }
}

/// Profiling-only experiments: which GPU serves each request size most cheaply under the SLO.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EfficiencyConfig {
    /// Request sizes `[input, output]` in tokens whose buckets get a tokens-per-dollar-vs-SLO
    /// figure (when the sweep has several TPOT targets); empty: the three most common buckets.
    #[serde(deserialize_with = "token_pairs")]
    pub sizes: Vec<[u32; 2]>,
}

/// `[[input, output], ...]`, refusing entries of another length (a fixed-size array read from
/// TOML would quietly drop a third number).
fn token_pairs<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<[u32; 2]>, D::Error> {
    let entries = Vec::<Vec<u32>>::deserialize(deserializer)?;
    entries
        .into_iter()
        .map(|entry| match entry[..] {
            [input, output] => Ok([input, output]),
            _ => Err(serde::de::Error::custom(format!(
                "{entry:?}: expected [input, output] tokens, two numbers"
            ))),
        })
        .collect()
}

/// Sweep axes; an empty axis keeps the base value. The grid is their cartesian product.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    /// Request rates, req/s.
    pub rates: Vec<f64>,
    /// TPOT targets, e.g. `["40ms", "120ms"]`.
    pub tpot: Vec<String>,
    /// TTFT targets.
    pub ttft: Vec<String>,
    /// Sets of instance types to plan over.
    pub gpu_sets: Vec<Vec<String>>,
    /// Price books.
    pub price_books: Vec<String>,
    /// What-if prices: GPU name → $/GPU-hour values, each replacing the book's price.
    pub prices: BTreeMap<String, Vec<f64>>,
    /// Cluster specs (simulate experiments).
    pub clusters: Vec<String>,
    /// Routers (simulate experiments).
    pub routers: Vec<String>,
    /// Queue orders (simulate experiments).
    pub queues: Vec<String>,
    /// Autoscaling policies (simulate experiments): static, reactive, hpa or schedule, each
    /// with the rest of `simulate.autoscale`.
    pub autoscalers: Vec<String>,
    /// Seeds.
    pub seeds: Vec<u64>,
}

/// The names the autoscaler knows a cluster spec's types by (`A10G`, `H100-SXMx4` for a
/// tensor-parallel group).
fn scaling_names(spec: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for entry in sim::parse_spec(spec).map_err(|err| format!("simulate.cluster: {err}"))? {
        let name = sim::type_name(&entry.gpu, entry.tp);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// A config that could not be read or is invalid.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Edit distance between two keys (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Adds "did you mean `x`?" to serde's unknown-field messages.
fn suggest(message: &str) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return message.to_string();
    };
    let Some((unknown, rest)) = rest.split_once('`') else {
        return message.to_string();
    };
    let candidates: Vec<&str> = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|candidate| !candidate.is_empty())
        .collect();
    match candidates
        .iter()
        .min_by_key(|candidate| edit_distance(unknown, candidate))
    {
        Some(best) if edit_distance(unknown, best) <= unknown.len().max(2) / 2 + 1 => {
            format!("{}\ndid you mean `{best}`?", message.trim_end())
        }
        _ => message.to_string(),
    }
}

impl ExperimentConfig {
    /// Parses and checks a config; `path` names it in errors and anchors relative trace paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let error = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let mut config: Self =
            toml::from_str(text).map_err(|err| error(suggest(&err.to_string())))?;
        // A trace path is relative to the config file, so configs run from any directory.
        if workloads::presets::get(&config.workload.source).is_err() {
            let trace = Path::new(&config.workload.source);
            if trace.is_relative()
                && let Some(dir) = path.parent()
            {
                let anchored = dir.join(trace);
                if anchored.exists() {
                    // Canonical, so the config hash (and resuming) does not depend on the path
                    // the config was run by.
                    let anchored = anchored.canonicalize().unwrap_or(anchored);
                    config.workload.source = anchored.display().to_string();
                }
            }
        }
        config.validate().map_err(error)?;
        // Keys as written, for settings serde fills with defaults; only keys set away from
        // their defaults count, since a resolved config (`config.toml` of a results directory,
        // re-run as it is) writes every key, the unread ones at their defaults.
        let written = toml::from_str::<toml::Table>(text).unwrap_or_default();
        let defaults = toml::Table::try_from(sim::AutoscaleConfig::default()).unwrap_or_default();
        let autoscale_keys: Vec<String> = written
            .get("simulate")
            .and_then(|simulate| simulate.get("autoscale"))
            .and_then(toml::Value::as_table)
            .map(|autoscale| {
                autoscale
                    .iter()
                    .filter(|(key, value)| defaults.get(*key) != Some(value))
                    .map(|(key, _)| key.clone())
                    .collect()
            })
            .unwrap_or_default();
        config
            .check_autoscale_keys(&autoscale_keys)
            .map_err(error)?;
        // A step for a shape that is not there would change nothing.
        let step_given = written
            .get("workload")
            .and_then(|workload| workload.get("rate_shape_step"))
            .and_then(toml::Value::as_str)
            .is_some_and(|step| step != default_shape_step());
        if step_given && config.workload.rate_shape.is_empty() {
            return Err(error(
                "workload.rate_shape_step: applies to a workload.rate_shape, and there is none \
                 (the rate is steady); remove the key or give the shape"
                    .into(),
            ));
        }
        Ok(config)
    }

    /// Refuses `[simulate.autoscale]` keys (as written in the file) that no policy the config
    /// runs reads: with `policy = "static"`, say, a `cooldown_s` would change nothing.
    fn check_autoscale_keys(&self, keys: &[String]) -> Result<(), String> {
        let Some(simulate) = &self.simulate else {
            return Ok(());
        };
        let base = simulate.autoscale.clone().unwrap_or_default();
        // The policies that run: the sweep's, which replace the table's, or the table's.
        let running: Vec<sim::AutoscalePolicy> = if self.sweep.autoscalers.is_empty() {
            vec![base.policy]
        } else {
            self.sweep
                .autoscalers
                .iter()
                .filter_map(|name| sim::AutoscalePolicy::parse(name))
                .collect()
        };
        let names = |policies: &[sim::AutoscalePolicy]| {
            policies
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for key in keys {
            let Some(readers) = sim::AutoscaleConfig::readers_of(key) else {
                continue;
            };
            if !running.iter().any(|policy| readers.contains(policy)) {
                return Err(format!(
                    "simulate.autoscale.{key} has no effect: only {} read it, and this config \
                     runs {}",
                    names(readers),
                    names(&running)
                ));
            }
        }
        Ok(())
    }

    /// The resolved config a run stored in its results directory (`config.toml`), unchecked:
    /// a trace it names may since have moved. `None` if absent or unreadable.
    pub fn stored_in(results_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(results_dir.join("config.toml")).ok()?;
        toml::from_str(&text).ok()
    }

    /// The config as TOML (what `medley run` stores as `config.toml`).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|err| err.to_string())
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            path: path.to_path_buf(),
            message: format!("cannot read: {err}"),
        })?;
        Self::parse(&text, path)
    }

    /// Checks values serde cannot: ranges, names, and that the experiment has something to do.
    /// Refuses a value listed twice on one sweep axis: the grid would run the same point twice
    /// and the figures, which draw one series per value, would fail after every point had run.
    fn check_sweep_duplicates(&self) -> Result<(), String> {
        fn first_repeat<T: PartialEq + std::fmt::Debug>(
            key: &str,
            values: &[T],
        ) -> Result<(), String> {
            for (index, value) in values.iter().enumerate() {
                if values[..index].contains(value) {
                    return Err(format!(
                        "{key}: {value:?} is listed twice; expected each value once"
                    ));
                }
            }
            Ok(())
        }
        let sweep = &self.sweep;
        first_repeat("sweep.rates", &sweep.rates)?;
        first_repeat("sweep.tpot", &sweep.tpot)?;
        first_repeat("sweep.ttft", &sweep.ttft)?;
        first_repeat("sweep.gpu_sets", &sweep.gpu_sets)?;
        first_repeat("sweep.price_books", &sweep.price_books)?;
        for (gpu, prices) in &sweep.prices {
            first_repeat(&format!("sweep.prices.{gpu}"), prices)?;
        }
        first_repeat("sweep.clusters", &sweep.clusters)?;
        first_repeat("sweep.routers", &sweep.routers)?;
        first_repeat("sweep.queues", &sweep.queues)?;
        first_repeat("sweep.autoscalers", &sweep.autoscalers)?;
        first_repeat("sweep.seeds", &sweep.seeds)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name: expected a non-empty name".into());
        }
        let kinds = usize::from(self.plan.is_some())
            + usize::from(self.simulate.is_some())
            + usize::from(self.efficiency.is_some());
        if kinds == 0 {
            return Err(
                "nothing to run: add a [plan] table (let the solver choose the fleet), a [simulate] table (given clusters) or an [efficiency] table (profile only)"
                    .into(),
            );
        }
        if kinds > 1 {
            return Err("[plan], [simulate] and [efficiency]: give exactly one of them".into());
        }
        crate::workload::WorkloadSource::resolve(&self.workload.source)
            .map_err(|err| format!("workload.source: {err}"))?;
        if let Some(rate) = self.workload.rate {
            check_rate("workload.rate", rate)?;
        }
        for rate in &self.sweep.rates {
            check_rate("sweep.rates", *rate)?;
        }
        self.check_sweep_duplicates()?;
        if self.slo.ttft_stat == SloStat::Melange {
            return Err(
                "slo.ttft_stat = \"melange\": Mélange's statistic (e2e ÷ output tokens) \
                        bounds TPOT only; expected mean, p50, p90 or p99"
                    .into(),
            );
        }
        if self.slo.ttft_stat != SloConfig::default().ttft_stat
            && self.slo.ttft.is_none()
            && self.sweep.ttft.is_empty()
        {
            return Err(
                "slo.ttft_stat: no TTFT target (slo.ttft or sweep.ttft) for it to bound; \
                        set one or remove the key"
                    .into(),
            );
        }
        self.workload.duration_s()?;
        if self.workload.duration.is_some()
            && workloads::presets::get(&self.workload.source).is_err()
        {
            return Err(format!(
                "workload.duration: applies to presets only, and '{}' is a trace (it is replayed \
                 to its end; remove the key)",
                self.workload.source
            ));
        }
        if !self.workload.rate_shape.is_empty() {
            if workloads::presets::get(&self.workload.source).is_err() {
                return Err(format!(
                    "workload.rate_shape: applies to presets only, and '{}' is a trace (its \
                     arrival times are its own)",
                    self.workload.source
                ));
            }
            let shape = &self.workload.rate_shape;
            if shape.iter().any(|v| !(v.is_finite() && *v >= 0.0))
                || shape.iter().all(|v| *v == 0.0)
            {
                return Err(format!(
                    "workload.rate_shape = {shape:?}: expected relative rates, finite and >= 0, \
                     not all zero"
                ));
            }
            let step = parse_duration("workload.rate_shape_step", &self.workload.rate_shape_step)?;
            if step <= 0.0 {
                return Err("workload.rate_shape_step: expected a positive duration".into());
            }
            // The shape is scaled so its mean over one pass is the rate; a stream shorter than
            // a pass would run at another mean rate than the one its rows report.
            let pass_s = step * shape.len() as f64;
            let duration_s = self.workload.duration_s()?;
            if duration_s < pass_s {
                return Err(format!(
                    "workload.rate_shape: {} steps of {} take {pass_s} s, longer than the \
                     {duration_s} s stream, so it would not run at workload.rate on average: \
                     lengthen workload.duration or shorten workload.rate_shape_step",
                    shape.len(),
                    self.workload.rate_shape_step
                ));
            }
        }
        if self.simulate.is_none() {
            for (key, given) in [
                ("sweep.clusters", !self.sweep.clusters.is_empty()),
                ("sweep.routers", !self.sweep.routers.is_empty()),
                ("sweep.queues", !self.sweep.queues.is_empty()),
                ("sweep.autoscalers", !self.sweep.autoscalers.is_empty()),
            ] {
                if given {
                    return Err(format!(
                        "{key}: only [simulate] experiments sweep it; add a [simulate] table or \
                         remove the axis"
                    ));
                }
            }
        }
        for (key, value) in [("slo.tpot", &self.slo.tpot), ("slo.ttft", &self.slo.ttft)] {
            if let Some(text) = value {
                parse_duration(key, text)?;
            }
        }
        for text in &self.sweep.tpot {
            parse_duration("sweep.tpot", text)?;
        }
        for text in &self.sweep.ttft {
            parse_duration("sweep.ttft", text)?;
        }
        if !(self.memory.mem_util > 0.0 && self.memory.mem_util <= 1.0) {
            return Err(format!(
                "memory.mem_util = {}: expected a fraction in (0, 1]",
                self.memory.mem_util
            ));
        }
        if gpu_models::WeightDtype::parse(&self.memory.dtype).is_none() {
            return Err(format!(
                "memory.dtype = \"{}\": expected bf16 (or fp16, the same size) or fp8",
                self.memory.dtype
            ));
        }
        if self.memory.max_model_len == Some(0) {
            return Err("memory.max_model_len: expected at least 1 token".into());
        }
        if self.engine.max_num_seqs == 0 {
            return Err("engine.max_num_seqs: expected at least 1".into());
        }
        // Every kind of experiment buckets requests by size (profiles, per-bucket tables) and
        // measures them against an SLO target (capacity under it, attainment of it).
        let edges =
            parse_edges(&self.profile.buckets).map_err(|err| format!("profile.buckets: {err}"))?;
        if self.slo.tpot.is_none()
            && self.slo.ttft.is_none()
            && self.sweep.tpot.is_empty()
            && self.sweep.ttft.is_empty()
        {
            return Err(
                "slo: profiles and attainment are measured against a target: set slo.tpot \
                 (e.g. \"120ms\") or slo.ttft"
                    .into(),
            );
        }
        if let Some(efficiency) = &self.efficiency {
            if !self.sweep.rates.is_empty() || self.workload.rate.is_some() {
                return Err("sweep.rates / workload.rate: an [efficiency] experiment profiles one replica per bucket and simulates no fleet at a rate; remove them".into());
            }
            for [input, output] in &efficiency.sizes {
                if edges.bucket_of(*input, *output).is_none() {
                    return Err(format!(
                        "efficiency.sizes: [{input}, {output}] lies beyond the last bucket edges (input {:?}, output {:?})",
                        edges.input.last(),
                        edges.output.last()
                    ));
                }
            }
        }
        if self.plan.is_some() || self.efficiency.is_some() {
            if self.profile.gpus.is_empty() && self.sweep.gpu_sets.is_empty() {
                return Err("profile.gpus: expected at least one GPU type".into());
            }
            if self.sweep.gpu_sets.iter().any(Vec::is_empty) {
                return Err("sweep.gpu_sets: a GPU set is empty".into());
            }
            let plan = self.plan.clone().unwrap_or_default();
            if self.plan.is_some() && plan.max_rounds == 0 {
                return Err(
                    "plan.max_rounds = 0: expected at least 1 (the first plan's own \
                            simulation is round 1)"
                        .into(),
                );
            }
            // A minimum must fit its cap (the names are checked against each point's types
            // before the run starts, where the catalog is known).
            for (gpu, minimum) in &plan.minimums {
                if let Some(cap) = plan.caps.get(gpu)
                    && minimum > cap
                {
                    return Err(format!(
                        "plan.minimums.{gpu} = {minimum} exceeds plan.caps.{gpu} = {cap}"
                    ));
                }
            }
            if plan.slice_factor == 0 || plan.slice_factor > solver::problem::MAX_SLICE_FACTOR {
                return Err(format!(
                    "plan.slice_factor = {}: expected 1 to {} slices per bucket",
                    plan.slice_factor,
                    solver::problem::MAX_SLICE_FACTOR
                ));
            }
            if !(plan.headroom >= 0.0 && plan.headroom <= solver::problem::MAX_HEADROOM) {
                return Err(format!(
                    "plan.headroom = {}: expected a fraction from 0 to {} (plan for up to {} times the rate)",
                    plan.headroom,
                    solver::problem::MAX_HEADROOM,
                    solver::problem::MAX_HEADROOM + 1.0
                ));
            }
            if let Some(target) = plan.target
                && !(target > 0.0 && target <= 1.0)
            {
                return Err(format!(
                    "plan.target = {target}: expected a fraction in (0, 1]"
                ));
            }
            if self.plan.is_some() {
                check_router("plan.router", &plan.router)?;
            }
            if !["workload", "representative"].contains(&self.profile.lengths.as_str()) {
                return Err(format!(
                    "profile.lengths = \"{}\": expected workload or representative",
                    self.profile.lengths
                ));
            }
            let settings = solver::ProfileSettings {
                requests_per_trial: self.profile.requests_per_trial,
                replicates: self.profile.replicates,
                tolerance: self.profile.tolerance,
                ..solver::ProfileSettings::default()
            };
            settings
                .validate()
                .map_err(|err| format!("profile: {err}"))?;
        }
        if let Some(simulate) = &self.simulate {
            if !self.sweep.gpu_sets.is_empty() {
                return Err(
                    "sweep.gpu_sets: a [simulate] experiment runs the clusters it names \
                     (simulate.cluster, sweep.clusters); GPU sets are for [plan] and [efficiency] \
                     experiments"
                        .into(),
                );
            }
            if simulate.cluster.is_empty() && self.sweep.clusters.is_empty() {
                return Err("simulate.cluster: expected a cluster spec like \"A10G:2,A100-80GB:1\" (or a sweep.clusters list)".into());
            }
            for spec in std::iter::once(&simulate.cluster)
                .filter(|s| !s.is_empty())
                .chain(&self.sweep.clusters)
            {
                sim::parse_spec(spec).map_err(|err| format!("simulate.cluster: {err}"))?;
            }
            // Each value is named by the key it came from: the base setting or the sweep axis.
            let routers = std::iter::once(("simulate.router", &simulate.router))
                .chain(self.sweep.routers.iter().map(|r| ("sweep.routers", r)));
            for (key, router) in routers {
                check_router(key, router)?;
                if sim::RouterKind::parse(router).is_some_and(sim::RouterKind::needs_table) {
                    return Err(format!(
                        "{key}: \"{router}\" needs capacity profiles, which only [plan] experiments make; use it as plan.router"
                    ));
                }
            }
            // A simulate experiment profiles nothing (the routers above need no capacity
            // table), so profile keys other than the bucket edges of its per-bucket report would
            // be ignored. Those at their defaults are allowed: a results directory's config.toml
            // spells every key out.
            let defaults = ProfileConfig::default();
            let unread = [
                ("profile.gpus", self.profile.gpus != defaults.gpus),
                ("profile.lengths", self.profile.lengths != defaults.lengths),
                (
                    "profile.requests_per_trial",
                    self.profile.requests_per_trial != defaults.requests_per_trial,
                ),
                (
                    "profile.replicates",
                    self.profile.replicates != defaults.replicates,
                ),
                (
                    "profile.tolerance",
                    self.profile.tolerance != defaults.tolerance,
                ),
            ];
            if let Some((key, _)) = unread.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "{key}: a [simulate] experiment profiles nothing, so this key would be \
                     ignored; remove it (profile.buckets still sets its per-bucket report)"
                ));
            }
            let queues = std::iter::once(("simulate.queue", &simulate.queue))
                .chain(self.sweep.queues.iter().map(|q| ("sweep.queues", q)));
            for (key, queue) in queues {
                let Some(kind) = sim::QueueKind::parse(queue) else {
                    return Err(format!(
                        "{key}: \"{queue}\" is not a queue order; expected one of {}",
                        sim::QueueKind::ALL.map(sim::QueueKind::name).join(", ")
                    ));
                };
                if kind.needs_ttft_target() && self.slo.ttft.is_none() && self.sweep.ttft.is_empty()
                {
                    return Err(format!(
                        "{key}: \"{queue}\" orders by TTFT deadlines: set slo.ttft (or sweep.ttft)"
                    ));
                }
            }
            let base = simulate.autoscale.clone().unwrap_or_default();
            let mut policies = vec![base.policy];
            for name in &self.sweep.autoscalers {
                policies.push(sim::AutoscalePolicy::parse(name).ok_or_else(|| {
                    format!(
                        "sweep.autoscalers: '{name}' is not an autoscaler; expected one of {}",
                        sim::AutoscalePolicy::ALL
                            .map(sim::AutoscalePolicy::name)
                            .join(", ")
                    )
                })?);
            }
            for spec in std::iter::once(&simulate.cluster)
                .filter(|s| !s.is_empty())
                .chain(&self.sweep.clusters)
            {
                let names = scaling_names(spec)?;
                for policy in &policies {
                    let autoscale = sim::AutoscaleConfig {
                        policy: *policy,
                        ..base.clone()
                    };
                    if *policy != sim::AutoscalePolicy::Static {
                        autoscale.validate(&names).map_err(|err| {
                            format!("simulate.autoscale (policy {policy}, cluster {spec}): {err}")
                        })?;
                    }
                }
            }
        }
        for (gpu, prices) in &self.sweep.prices {
            if prices.is_empty() {
                return Err(format!("sweep.prices.{gpu}: expected at least one price"));
            }
            for price in prices {
                if !(price.is_finite() && *price > 0.0) {
                    return Err(format!(
                        "sweep.prices.{gpu}: {price} is not a positive $/GPU-hour"
                    ));
                }
            }
        }
        self.check_priced_gpus_are_used()
    }

    /// Refuses what-if prices for a GPU no fleet of the config has: its rows would be labelled
    /// with a price that changes nothing.
    fn check_priced_gpus_are_used(&self) -> Result<(), String> {
        if self.sweep.prices.is_empty() {
            return Ok(());
        }
        // Names as the built-in catalog spells them (`H100` is `H100-SXM`); a GPU only a
        // user's catalog file knows is compared as written.
        let catalog = gpu_models::Catalog::builtin();
        let canonical = |name: &str| {
            let gpu = name.split(':').next().unwrap_or(name).trim();
            catalog
                .gpu(gpu)
                .map_or_else(|_| gpu.to_string(), |spec| spec.name.clone())
        };
        let mut used: Vec<String> = Vec::new();
        if let Some(simulate) = &self.simulate {
            for spec in std::iter::once(&simulate.cluster).chain(&self.sweep.clusters) {
                for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
                    used.push(canonical(part));
                }
            }
        } else {
            for name in self
                .profile
                .gpus
                .iter()
                .chain(self.sweep.gpu_sets.iter().flatten())
            {
                used.push(canonical(name));
            }
        }
        for gpu in self.sweep.prices.keys() {
            if !used.contains(&canonical(gpu)) {
                used.sort();
                used.dedup();
                return Err(format!(
                    "sweep.prices.{gpu}: no fleet of this config has that GPU (it uses {}), so \
                     its prices would change nothing",
                    used.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The SLO at a grid point (its TPOT and TTFT targets, base statistics).
    pub fn slo_for(&self, tpot: Option<&str>, ttft: Option<&str>) -> Result<ProfileSlo, String> {
        let tpot = tpot
            .map(|text| parse_duration("slo.tpot", text))
            .transpose()?;
        let ttft = ttft
            .map(|text| parse_duration("slo.ttft", text))
            .transpose()?;
        let slo = ProfileSlo {
            tpot: tpot.map(|seconds| (self.slo.tpot_stat, seconds)),
            ttft: ttft.map(|seconds| (self.slo.ttft_stat, seconds)),
        };
        slo.validate()?;
        Ok(slo)
    }
}

fn check_rate(key: &str, rate: f64) -> Result<(), String> {
    if rate.is_finite() && rate > 0.0 && rate <= workloads::arrivals::MAX_RATE_RPS {
        Ok(())
    } else {
        Err(format!(
            "{key}: {rate} is not a request rate; expected above 0 and at most {:e} req/s",
            workloads::arrivals::MAX_RATE_RPS
        ))
    }
}

fn check_router(key: &str, name: &str) -> Result<(), String> {
    sim::RouterKind::parse(name).map(|_| ()).ok_or_else(|| {
        format!(
            "{key}: \"{name}\" is not a router; expected one of {}",
            sim::RouterKind::ALL.map(sim::RouterKind::name).join(", ")
        )
    })
}

/// Parses a duration like `120ms` or `10m`, naming the key on failure.
pub fn parse_duration(key: &str, text: &str) -> Result<f64, String> {
    sim::parse_duration_s(text)
        .filter(|seconds| *seconds > 0.0)
        .ok_or_else(|| {
            format!("{key} = \"{text}\": expected a positive duration like 120ms, 2s or 10m")
        })
}

/// Parses bucket edges: `melange` or `IN,IN,...;OUT,OUT,...`.
pub fn parse_edges(text: &str) -> Result<workloads::BucketEdges, String> {
    if text == "melange" {
        return Ok(workloads::BucketEdges::melange());
    }
    let bad = || {
        format!(
            "'{text}': expected melange or IN,IN,...;OUT,OUT,... in tokens (e.g. 100,1000,4000;100,500)"
        )
    };
    let (input, output) = text.split_once(';').ok_or_else(bad)?;
    let parse = |part: &str| -> Result<Vec<u32>, String> {
        part.split(',')
            .map(|t| t.trim().parse::<u32>().map_err(|_| bad()))
            .collect()
    };
    workloads::BucketEdges::new(parse(input)?, parse(output)?).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_names_the_nearest_valid_one() {
        let text = "name = \"x\"\n[workload]\nsource = \"arena\"\n[plan]\n[sweep]\nrats = [1.0]\n";
        let err = ExperimentConfig::parse(text, Path::new("x.toml")).unwrap_err();
        assert!(err.message.contains("rats"), "{err}");
        assert!(err.message.contains("did you mean `rates`?"), "{err}");
    }

    #[test]
    fn ttft_statistics_need_a_ttft_target_and_cannot_be_melange() {
        let base =
            "name = \"x\"\n[workload]\nsource = \"arena\"\n[plan]\n[slo]\ntpot = \"120ms\"\n";
        for (extra, expected) in [
            ("ttft_stat = \"p99\"\n", "slo.ttft_stat: no TTFT target"),
            (
                "ttft = \"2s\"\nttft_stat = \"melange\"\n",
                "bounds TPOT only",
            ),
        ] {
            let err = ExperimentConfig::parse(&format!("{base}{extra}"), Path::new("x.toml"))
                .unwrap_err();
            assert!(err.message.contains(expected), "{err}");
        }
        let with_target = format!("{base}ttft = \"2s\"\nttft_stat = \"p99\"\n");
        ExperimentConfig::parse(&with_target, Path::new("x.toml")).expect("valid");
    }

    #[test]
    fn impossible_values_are_caught_before_running() {
        let base =
            "name = \"x\"\n[workload]\nsource = \"arena\"\n[slo]\ntpot = \"120ms\"\n[plan]\n";
        let cases = [
            ("[sweep]\nrates = [-1.0]\n", "sweep.rates"),
            ("[sweep]\nrates = [1e9]\n", "at most 1e7"),
            ("max_rounds = 0\n", "plan.max_rounds"),
            (
                "minimums = { A100-80GB = 5 }\ncaps = { A100-80GB = 2 }\n",
                "plan.minimums.A100-80GB = 5 exceeds plan.caps.A100-80GB = 2",
            ),
            ("[sweep]\nrates = [1.0, 2.0, 1.0]\n", "listed twice"),
            ("[sweep]\ntpot = [\"40ms\", \"40ms\"]\n", "sweep.tpot"),
            (
                "[sweep]\nprices = { A100-80GB = [2.0, 2.0, 9.0] }\n",
                "sweep.prices.A100-80GB: 2.0 is listed twice",
            ),
            ("[sweep]\ngpu_sets = [[]]\n", "sweep.gpu_sets"),
            ("[sweep]\ntpot = [\"fast\"]\n", "sweep.tpot"),
            ("[profile]\ngpus = []\n", "profile.gpus"),
            (
                "[sweep]\nprices = { H100-SXM = [0.0] }\n",
                "sweep.prices.H100-SXM",
            ),
            // Prices for a GPU no fleet has would label rows with a change that changes nothing.
            (
                "[profile]\ngpus = [\"L4\", \"A10G\"]\n[sweep]\nprices = { H100 = [2.0] }\n",
                "sweep.prices.H100",
            ),
            ("[memory]\nmax_model_len = 0\n", "memory.max_model_len"),
            ("[efficiency]\nsizes = [[100, 100, 5]]\n", "[100, 100, 5]"),
        ];
        for (extra, key) in cases {
            let err = ExperimentConfig::parse(&format!("{base}{extra}"), Path::new("x.toml"))
                .unwrap_err();
            assert!(err.message.contains(key), "{key}: {err}");
        }
        let err = ExperimentConfig::parse(
            "name = \"x\"\n[workload]\nsource = \"no-such-preset\"\n[plan]\n",
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(err.message.contains("workload.source"), "{err}");
        let err = ExperimentConfig::parse(
            "name = \"x\"\n[workload]\nsource = \"arena\"\nrate = \"fast\"\n[plan]\n",
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(err.message.contains("rate"), "{err}");
        // A rate shape longer than the stream never reaches its later steps, so the stream
        // would not run at the rate its rows report.
        let err = ExperimentConfig::parse(
            "name = \"x\"\n[workload]\nsource = \"arena\"\nduration = \"30s\"\n\
             rate_shape = [1.0, 3.0]\nrate_shape_step = \"1h\"\n[slo]\ntpot = \"120ms\"\n[plan]\n",
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(err.message.contains("workload.rate_shape"), "{err}");
        let err = ExperimentConfig::parse(
            "name = \"x\"\n[workload]\nsource = \"arena\"\nrate_shape_step = \"5m\"\n[slo]\n\
             tpot = \"120ms\"\n[plan]\n",
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(err.message.contains("workload.rate_shape_step"), "{err}");
        let err = ExperimentConfig::parse(&format!("{base}headroom = 1e9\n"), Path::new("x.toml"))
            .unwrap_err();
        assert!(err.message.contains("plan.headroom"), "{err}");
        let long = base.replace(
            "source = \"arena\"\n",
            "source = \"arena\"\nduration = \"1000000h\"\n",
        );
        let err = ExperimentConfig::parse(&long, Path::new("x.toml")).unwrap_err();
        assert!(err.message.contains("workload.duration"), "{err}");
        let err = ExperimentConfig::parse(
            &format!("{base}slice_factor = 4000000000\n"),
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(err.message.contains("plan.slice_factor"), "{err}");
    }

    #[test]
    fn simulate_experiments_check_their_slo_buckets_and_axes_before_running() {
        let base =
            "name = \"x\"\n[workload]\nsource = \"arena\"\n[simulate]\ncluster = \"A10G:1\"\n";
        let with_slo = format!("{base}[slo]\ntpot = \"120ms\"\n");
        ExperimentConfig::parse(&with_slo, Path::new("x.toml")).unwrap();
        let cases = [
            (base.to_string(), "slo"),
            (
                format!("{with_slo}[sweep]\ngpu_sets = [[\"A10G\"]]\n"),
                "sweep.gpu_sets",
            ),
            (
                format!("{with_slo}[profile]\nbuckets = \"nonsense\"\n"),
                "profile.buckets",
            ),
            // Profiling keys a simulate experiment would ignore.
            (
                format!("{with_slo}[profile]\nrequests_per_trial = 5\n"),
                "profile.requests_per_trial",
            ),
            (
                format!("{with_slo}[profile]\ngpus = [\"A10G\"]\n"),
                "profile.gpus",
            ),
            // A bad value names the key it came from, and a deadline queue needs a TTFT target.
            (
                format!("{with_slo}[sweep]\nrouters = [\"bogus\"]\n"),
                "sweep.routers",
            ),
            (
                base.replace("cluster = ", "queue = \"edf\"\ncluster = ")
                    + "[slo]\ntpot = \"120ms\"\n",
                "slo.ttft",
            ),
        ];
        for (text, key) in cases {
            let err = ExperimentConfig::parse(&text, Path::new("x.toml")).unwrap_err();
            assert!(err.message.contains(key), "{key}: {err}");
        }
        // An autoscaler setting that no policy the config runs reads would change nothing.
        let idle =
            format!("{with_slo}[simulate.autoscale]\npolicy = \"static\"\ncooldown_s = 30.0\n");
        let err = ExperimentConfig::parse(&idle, Path::new("x.toml")).unwrap_err();
        assert!(
            err.message.contains("simulate.autoscale.cooldown_s") && err.message.contains("static"),
            "{err}"
        );
        let hpa_only =
            format!("{with_slo}[simulate.autoscale]\npolicy = \"reactive\"\nhpa_target = 4.0\n");
        let err = ExperimentConfig::parse(&hpa_only, Path::new("x.toml")).unwrap_err();
        assert!(err.message.contains("hpa_target"), "{err}");
        // Swept, the policies that run are the sweep's: one of them reads it.
        let swept = format!("{idle}[sweep]\nautoscalers = [\"static\", \"reactive\"]\n");
        ExperimentConfig::parse(&swept, Path::new("x.toml")).unwrap();
    }

    #[test]
    fn a_trace_named_relative_to_the_config_resolves_the_same_by_any_path() {
        let dir = std::env::temp_dir().join(format!("medley-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(
            dir.join("trace.csv"),
            "arrival_s,input_tokens,output_tokens\n0,10,5\n1,20,5\n",
        )
        .unwrap();
        let text =
            "name = \"x\"\n[workload]\nsource = \"trace.csv\"\n[slo]\ntpot = \"120ms\"\n[plan]\n";
        let direct = ExperimentConfig::parse(text, &dir.join("x.toml")).unwrap();
        let roundabout = ExperimentConfig::parse(text, &dir.join("sub/../x.toml")).unwrap();
        assert_eq!(direct.workload.source, roundabout.workload.source);
        assert!(Path::new(&direct.workload.source).is_absolute());
        // A trace is replayed to its end: a stream length would be ignored, so it is an error.
        let with_duration = text.replace(
            "source = \"trace.csv\"",
            "source = \"trace.csv\"\nduration = \"5m\"",
        );
        let err = ExperimentConfig::parse(&with_duration, &dir.join("x.toml")).unwrap_err();
        assert!(
            err.message.contains("workload.duration") && err.message.contains("presets only"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("rates", "rates"), 0);
        assert_eq!(edit_distance("rats", "rates"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
