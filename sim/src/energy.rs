//! GPU energy: each replica's GPUs draw a fraction of their board power (TDP) while idle, in
//! prefill-heavy iterations and in decode-heavy iterations; the simulator integrates that
//! power over the run.
//!
//! An iteration is prefill-heavy when its prompt tokens outnumber its decode tokens (one per
//! decoding sequence): then the GPU is compute-bound; otherwise it is memory-bound. Iterations
//! that only move swapped KV blocks count as decode-heavy (the GPU mostly waits on memory
//! traffic). The fractions are coarse by design: decode power in particular rises with batch
//! size, and one number has to stand for the typical batch.

use serde::{Deserialize, Serialize};

use crate::cluster::Cluster;
use crate::metrics::ReplicaLife;
use crate::replica::Replica;
use crate::time::to_secs;

/// Power of one GPU as fractions of its TDP.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowerConfig {
    /// While no iteration runs, with the model loaded.
    pub idle_fraction: f64,
    /// During prefill-heavy (compute-bound) iterations.
    pub prefill_fraction: f64,
    /// During decode-heavy (memory-bound) iterations.
    pub decode_fraction: f64,
}

impl Default for PowerConfig {
    fn default() -> Self {
        Self {
            // Idle with a CUDA context and the weights resident: a flat draw, independent of
            // memory use, 26-50 W above bare idle on HBM GPUs (Vadari, "The Model Parking
            // Tax", arXiv 2605.23918). 0.15 of TDP (60 W on an A100, 105 W on an H100) is our
            // assumption for that state, not a measurement; configure it where one exists.
            idle_fraction: 0.15,
            // Prefill is compute-bound and runs near the power limit: Splitwise (Patel et al.,
            // ISCA 2024) measures the prompt phase close to TDP and the token phase well below
            // it; ML.ENERGY Benchmark v3.0 reads 600 W of 700 W on an H100 at batch 128.
            prefill_fraction: 0.9,
            // Decode is memory-bound: 137-300 W of 700 W on an H200 (Ma et al., "The Illusion
            // of Power Capping in LLM Decode", arXiv 2605.11999, 0.2-0.43 of TDP); 300 W at
            // batch 1 rising to 600 W at batch 128 on an H100 (ML.ENERGY v3.0). 0.5 stands for
            // a moderately batched decode.
            decode_fraction: 0.5,
        }
    }
}

impl PowerConfig {
    /// Checks that every fraction is in [0, 1].
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("power.idle_fraction", self.idle_fraction),
            ("power.prefill_fraction", self.prefill_fraction),
            ("power.decode_fraction", self.decode_fraction),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!(
                    "{name} must be a fraction of TDP in [0, 1], found {value}"
                ));
            }
        }
        Ok(())
    }
}

/// Energy used over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnergyReport {
    /// The power fractions used.
    pub power: PowerConfig,
    /// All replicas' GPUs over the span, joules.
    pub total_j: f64,
    /// Of which while idle.
    pub idle_j: f64,
    /// Of which in prefill-heavy iterations.
    pub prefill_j: f64,
    /// Of which in decode-heavy iterations.
    pub decode_j: f64,
    /// The same total in kilowatt-hours.
    pub total_kwh: f64,
    /// total / span, watts.
    pub mean_power_w: f64,
    /// Joules per completed request (none without completions).
    pub j_per_request: Option<f64>,
    /// Joules per output token of completed requests (none without any).
    pub j_per_output_token: Option<f64>,
    /// Instance types whose GPU has no TDP in the catalog: their energy is not counted.
    pub types_without_tdp: Vec<String>,
}

/// Energy of one replica that lived `life_ns` (the run's span, or its billed life under
/// autoscaling; a starting replica counts as idle): idle, prefill-heavy and decode-heavy joules.
pub fn replica_energy_j(replica: &Replica, power: &PowerConfig, life_ns: u64) -> (f64, f64, f64) {
    let instance = &replica.instance;
    let watts = instance.gpu.tdp_w.max(0.0) * f64::from(instance.tp);
    let c = &replica.counters;
    let idle_ns = life_ns.saturating_sub(c.busy_ns);
    (
        watts * power.idle_fraction * to_secs(idle_ns),
        watts * power.prefill_fraction * to_secs(c.prefill_heavy_ns),
        watts * power.decode_fraction * to_secs(c.decode_heavy_ns),
    )
}

/// The energy report of a run of `span_ns` whose replicas lived `lives` and whose completed
/// requests produced `output_tokens`.
pub fn report(
    cluster: &Cluster,
    replicas: &[Replica],
    lives: &[ReplicaLife],
    power: &PowerConfig,
    span_ns: u64,
    completed: u64,
    output_tokens: u64,
) -> EnergyReport {
    let mut out = EnergyReport {
        power: *power,
        ..EnergyReport::default()
    };
    for (replica, life) in replicas.iter().zip(lives) {
        let (idle, prefill, decode) = replica_energy_j(replica, power, life.billed_ns(span_ns));
        out.idle_j += idle;
        out.prefill_j += prefill;
        out.decode_j += decode;
    }
    out.total_j = out.idle_j + out.prefill_j + out.decode_j;
    out.total_kwh = out.total_j / 3.6e6;
    let span_s = to_secs(span_ns);
    out.mean_power_w = if span_s > 0.0 {
        out.total_j / span_s
    } else {
        0.0
    };
    out.j_per_request = (completed > 0).then(|| out.total_j / completed as f64);
    out.j_per_output_token = (output_tokens > 0).then(|| out.total_j / output_tokens as f64);
    out.types_without_tdp = cluster
        .types
        .iter()
        .filter(|t| t.instance.gpu.tdp_w.is_nan() || t.instance.gpu.tdp_w <= 0.0)
        .map(|t| t.name.clone())
        .collect();
    out
}
