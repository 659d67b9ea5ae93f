//! Iteration-latency model: how long one engine iteration takes for a given batch on an
//! instance type.
//!
//! A batch is summarised by a handful of sums ([`BatchSummary`]) so that a prediction costs a
//! few multiply-adds: the simulator keeps those sums up to date as sequences join and leave,
//! and calls the predictor once per iteration.
//!
//! The default predictor ([`Roofline`]) combines, per GPU of the tensor-parallel group:
//! - memory time: weights read once per iteration, plus KV-cache reads and writes, at a
//!   fraction of peak bandwidth;
//! - compute time: linear layers (2 FLOPs per parameter per token), the output head for tokens
//!   that produce logits, and attention (4 FLOPs per query-key pair per head dimension), at a
//!   fraction of peak FLOPS;
//! - tensor-parallel all-reduce: two per layer, ring algorithm, bandwidth and per-step latency;
//! - fixed costs: per iteration, per decoding sequence and per prompt chunk in the batch.
//!
//! Memory and compute time combine as a k-norm, `(memory^k + compute^k)^(1/k)`, between their
//! sum (k = 1, no overlap) and the pure roofline maximum (k → ∞): kernels stream weights while
//! they multiply, but only in part. The rest adds. Fitted to measured Llama-2-70B prefills and
//! decode steps, k comes out near 2.2 (A100) and 2.6 (H100); with k = 1 the fit had to overstate
//! the FLOPS fraction (87% of peak on A100) to match mid-sized prefills and then underpredicted
//! long ones by 20-50% (see `crate::calibrate`).

use std::sync::{Arc, OnceLock};

use crate::gpu::GpuSpec;
use crate::llm::{ModelSpec, WeightDtype};
use crate::measured::MeasuredTable;

/// One prefill chunk of an iteration: new prompt tokens and the context already in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefillChunk {
    /// Prompt tokens computed in this iteration.
    pub new_tokens: u32,
    /// Tokens of the same sequence already in the KV cache (earlier chunks).
    pub context_before: u32,
    /// Whether this chunk finishes the prompt, so the iteration samples a token for it.
    pub completes_prompt: bool,
}

/// One iteration's batch, spelled out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchShape {
    /// Prefill chunks.
    pub prefill: Vec<PrefillChunk>,
    /// Context length (tokens in the KV cache) of each decoding sequence.
    pub decode_contexts: Vec<u32>,
}

/// The sums of a batch that the latency model needs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchSummary {
    /// Prompt tokens computed in this iteration.
    pub prefill_tokens: u64,
    /// Number of prefill chunks.
    pub prefill_seqs: u32,
    /// Causal query-key pairs of the prefill chunks: Σ new × (context_before + (new + 1) / 2).
    pub prefill_attention_pairs: f64,
    /// KV tokens of earlier chunks read by prefill attention: Σ context_before.
    pub prefill_context_read: u64,
    /// Tokens that produce logits (decodes plus prompts that finish in this iteration).
    pub logit_tokens: u32,
    /// Number of decoding sequences.
    pub decode_seqs: u32,
    /// Σ context length over decoding sequences (KV tokens read by decode attention).
    pub decode_context: u64,
}

impl BatchSummary {
    /// Adds one prefill chunk.
    pub fn add_prefill(&mut self, new_tokens: u32, context_before: u32, completes_prompt: bool) {
        let new = f64::from(new_tokens);
        self.prefill_tokens += u64::from(new_tokens);
        self.prefill_seqs += 1;
        self.prefill_attention_pairs += new * (f64::from(context_before) + (new + 1.0) / 2.0);
        self.prefill_context_read += u64::from(context_before);
        self.logit_tokens += u32::from(completes_prompt);
    }

    /// Adds one decoding sequence whose cache holds `context` tokens.
    pub fn add_decode(&mut self, context: u32) {
        self.decode_seqs += 1;
        self.decode_context += u64::from(context);
        self.logit_tokens += 1;
    }

    /// Summarises a spelled-out batch.
    pub fn from_shape(shape: &BatchShape) -> Self {
        let mut summary = Self::default();
        for chunk in &shape.prefill {
            summary.add_prefill(
                chunk.new_tokens,
                chunk.context_before,
                chunk.completes_prompt,
            );
        }
        for &context in &shape.decode_contexts {
            summary.add_decode(context);
        }
        summary
    }

    /// Tokens through the transformer layers in this iteration.
    pub fn batch_tokens(&self) -> u64 {
        self.prefill_tokens + u64::from(self.decode_seqs)
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.prefill_seqs == 0 && self.decode_seqs == 0
    }
}

/// The time of one iteration, split by where it goes (seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct IterationBreakdown {
    /// Weight and KV reads at achieved bandwidth.
    pub memory_s: f64,
    /// Linear, output-head and attention FLOPs at achieved FLOPS.
    pub compute_s: f64,
    /// Tensor-parallel all-reduces.
    pub communication_s: f64,
    /// Fixed per-iteration and per-sequence costs.
    pub overhead_s: f64,
}

impl IterationBreakdown {
    /// Total iteration time in seconds.
    pub fn total_s(&self) -> f64 {
        self.memory_s + self.compute_s + self.communication_s + self.overhead_s
    }
}

/// The default predictor: a calibrated roofline with partial overlap of memory and compute,
/// reduced to per-unit coefficients.
#[derive(Debug, Clone, PartialEq)]
pub struct Roofline {
    /// Seconds to read the weights once (per GPU).
    weights_s: f64,
    /// Seconds per KV token read or written.
    kv_token_s: f64,
    /// Seconds of linear-layer compute per token through the layers.
    linear_token_s: f64,
    /// Seconds of output-head compute per logit token.
    logit_token_s: f64,
    /// Seconds of attention compute per query-key pair.
    attention_pair_s: f64,
    /// All-reduce seconds per token through the layers.
    comm_token_s: f64,
    /// All-reduce latency seconds per iteration.
    comm_fixed_s: f64,
    /// Fixed seconds per iteration.
    overhead_s: f64,
    /// Seconds per decoding sequence in the batch.
    per_seq_s: f64,
    /// Seconds per prefill chunk in the batch.
    per_prefill_s: f64,
    /// k of the k-norm combining memory and compute time (1: their sum).
    overlap_exponent: f64,
    /// `(1 + t^k)^(1/k)` at `t = i / OVERLAP_STEPS`, built on first use: two `powf` calls per
    /// iteration were most of the simulator's time per iteration.
    overlap_table: OverlapTable,
}

/// A cache of the overlap k-norm, built on first use. It is a function of the exponent, so it
/// never makes two rooflines differ: equality and debug output ignore it.
#[derive(Clone, Default)]
struct OverlapTable(OnceLock<Arc<[f64]>>);

impl PartialEq for OverlapTable {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for OverlapTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OverlapTable")
    }
}

/// Intervals of the overlap table; linear interpolation between its points is within 3e-7
/// (relative) of the exact k-norm for k >= 2, within 1e-3 for k near 1.
const OVERLAP_STEPS: usize = 1024;

/// The larger and the smaller of two times.
#[inline]
fn ordered(a: f64, b: f64) -> (f64, f64) {
    if a >= b { (a, b) } else { (b, a) }
}

/// The k-norm of memory and compute time, exactly: their sum at k = 1, their maximum as k
/// grows.
fn overlapped_exact(memory_s: f64, compute_s: f64, k: f64) -> f64 {
    if k == 1.0 {
        return memory_s + compute_s;
    }
    let (high, low) = ordered(memory_s, compute_s);
    if low <= 0.0 {
        return high;
    }
    // Scaled by the larger term so the powers cannot overflow or lose the smaller one.
    high * (1.0 + (low / high).powf(k)).powf(1.0 / k)
}

impl Roofline {
    /// Builds the coefficients for a model on `tp` GPUs of one type.
    pub fn new(model: &ModelSpec, gpu: &GpuSpec, tp: u32, dtype: WeightDtype) -> Self {
        let tp_f = f64::from(tp.max(1));
        let eff = &gpu.efficiency;
        let peak_tflops = match dtype {
            WeightDtype::Fp8 => gpu.fp8_tflops.unwrap_or(gpu.dense_tflops),
            WeightDtype::Bf16 => gpu.dense_tflops,
        };
        let flops_per_s = peak_tflops * 1e12 * eff.flops_fraction;
        let bytes_per_s = gpu.mem_bw_gbs * 1e9 * eff.bandwidth_fraction;
        let attention_flops_per_pair =
            4.0 * f64::from(model.layers) * f64::from(model.heads) * f64::from(model.head_dim);
        // Ring all-reduce: 2(tp-1)/tp of the message crosses each link, in 2(tp-1) steps; two
        // all-reduces per layer (after attention and after the MLP) of bf16 activations.
        let (comm_token_s, comm_fixed_s) = if tp > 1 {
            let link_bytes_per_s = gpu.link_gbs_bidir / 2.0 * 1e9 * eff.link_fraction;
            let per_allreduce_bytes_per_token = f64::from(model.hidden) * 2.0;
            let allreduces = 2.0 * f64::from(model.layers);
            let ring_factor = 2.0 * (tp_f - 1.0) / tp_f;
            (
                allreduces * ring_factor * per_allreduce_bytes_per_token / link_bytes_per_s,
                allreduces * 2.0 * (tp_f - 1.0) * eff.allreduce_step_us * 1e-6,
            )
        } else {
            (0.0, 0.0)
        };
        Self {
            weights_s: model.weight_bytes(dtype) / tp_f / bytes_per_s,
            kv_token_s: model.kv_bytes_per_token() / tp_f / bytes_per_s,
            linear_token_s: 2.0 * model.layer_params() / tp_f / flops_per_s,
            logit_token_s: 2.0 * model.lm_head_params() / tp_f / flops_per_s,
            attention_pair_s: attention_flops_per_pair / tp_f / flops_per_s,
            comm_token_s,
            comm_fixed_s,
            overhead_s: eff.iteration_overhead_us * 1e-6,
            per_seq_s: eff.per_sequence_overhead_us * 1e-6,
            per_prefill_s: eff.per_prefill_overhead_us * 1e-6,
            overlap_exponent: eff.overlap_exponent.max(1.0),
            overlap_table: OverlapTable::default(),
        }
    }

    /// The k-norm of memory and compute time, fast: exact for k = 1 and 2, interpolated in
    /// the overlap table otherwise.
    #[inline]
    fn overlapped(&self, memory_s: f64, compute_s: f64) -> f64 {
        let k = self.overlap_exponent;
        if k == 1.0 {
            return memory_s + compute_s;
        }
        let (high, low) = ordered(memory_s, compute_s);
        if low <= 0.0 {
            return high;
        }
        let t = low / high;
        if k == 2.0 {
            return high * (1.0 + t * t).sqrt();
        }
        let table = self.overlap_table.0.get_or_init(|| {
            (0..=OVERLAP_STEPS)
                .map(|i| {
                    let t = i as f64 / OVERLAP_STEPS as f64;
                    (1.0 + t.powf(k)).powf(1.0 / k)
                })
                .collect()
        });
        let position = t * OVERLAP_STEPS as f64;
        let index = (position as usize).min(OVERLAP_STEPS - 1);
        let fraction = position - index as f64;
        high * (table[index] + fraction * (table[index + 1] - table[index]))
    }

    /// The iteration time split into memory, compute, communication and overhead; memory and
    /// compute are their shares of the overlapped time (they sum to it).
    pub fn breakdown(&self, batch: &BatchSummary) -> IterationBreakdown {
        if batch.is_empty() {
            return IterationBreakdown::default();
        }
        let (memory_s, compute_s) = self.memory_and_compute_s(batch);
        let both = overlapped_exact(memory_s, compute_s, self.overlap_exponent);
        let share = if memory_s + compute_s > 0.0 {
            both / (memory_s + compute_s)
        } else {
            0.0
        };
        let tokens = batch.batch_tokens() as f64;
        IterationBreakdown {
            memory_s: memory_s * share,
            compute_s: compute_s * share,
            communication_s: self.comm_fixed_s + self.comm_token_s * tokens,
            overhead_s: self.overhead_s
                + self.per_seq_s * f64::from(batch.decode_seqs)
                + self.per_prefill_s * f64::from(batch.prefill_seqs),
        }
    }

    /// Seconds reading weights and KV, and seconds of FLOPs, each on its own.
    #[inline]
    fn memory_and_compute_s(&self, batch: &BatchSummary) -> (f64, f64) {
        let tokens = batch.batch_tokens() as f64;
        let kv_tokens = (batch.decode_context + batch.prefill_context_read) as f64 + tokens;
        (
            self.weights_s + self.kv_token_s * kv_tokens,
            self.linear_token_s * tokens
                + self.logit_token_s * f64::from(batch.logit_tokens)
                + self.attention_pair_s
                    * (batch.prefill_attention_pairs + batch.decode_context as f64),
        )
    }

    /// Iteration time in seconds (the simulator's; memory and compute overlap by the table).
    #[inline]
    pub fn iteration_s(&self, batch: &BatchSummary) -> f64 {
        if batch.is_empty() {
            return 0.0;
        }
        let (memory_s, compute_s) = self.memory_and_compute_s(batch);
        self.overlapped(memory_s, compute_s) + self.rest_s(batch)
    }

    /// Iteration time in seconds with the overlap computed exactly (for fitting, where a
    /// table per trial of the exponent would cost more than it saves).
    pub fn iteration_s_exact(&self, batch: &BatchSummary) -> f64 {
        if batch.is_empty() {
            return 0.0;
        }
        let (memory_s, compute_s) = self.memory_and_compute_s(batch);
        overlapped_exact(memory_s, compute_s, self.overlap_exponent) + self.rest_s(batch)
    }

    /// Communication and fixed costs: what adds to the overlapped memory and compute time.
    #[inline]
    fn rest_s(&self, batch: &BatchSummary) -> f64 {
        let tokens = batch.batch_tokens() as f64;
        self.overhead_s
            + self.comm_fixed_s
            + tokens * self.comm_token_s
            + self.per_seq_s * f64::from(batch.decode_seqs)
            + self.per_prefill_s * f64::from(batch.prefill_seqs)
    }

    /// Seconds to read the weights once: the floor of any decode step.
    pub fn weights_read_s(&self) -> f64 {
        self.weights_s
    }
}

/// Which predictor an instance uses.
#[derive(Debug, Clone)]
pub enum LatencyModel {
    /// The calibrated roofline (default).
    Roofline(Roofline),
    /// A user-supplied table of measured times, interpolated.
    Measured(Arc<MeasuredTable>),
}

impl LatencyModel {
    /// Predicted wall time of one iteration, seconds.
    #[inline]
    pub fn iteration_s(&self, batch: &BatchSummary) -> f64 {
        match self {
            LatencyModel::Roofline(roofline) => roofline.iteration_s(batch),
            LatencyModel::Measured(table) => table.iteration_s(batch),
        }
    }

    /// Predicted wall time of one iteration, nanoseconds (rounded, at least 1 for a non-empty batch).
    #[inline]
    pub fn iteration_ns(&self, batch: &BatchSummary) -> u64 {
        if batch.is_empty() {
            return 0;
        }
        ((self.iteration_s(batch) * 1e9).round() as u64).max(1)
    }

    /// Short name of the predictor for outputs.
    pub fn name(&self) -> &'static str {
        match self {
            LatencyModel::Roofline(_) => "roofline",
            LatencyModel::Measured(_) => "measured-table",
        }
    }
}
