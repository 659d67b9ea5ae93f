//! Engine and simulation settings.

use serde::{Deserialize, Serialize};

/// How a replica forms batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BatchingMode {
    /// vLLM v0 iteration-level batching: waiting prompts are prefilled in an iteration of their
    /// own (running decodes stall), then decoded together.
    #[default]
    Continuous,
    /// Sarathi-Serve / vLLM v1: each iteration has a token budget, filled with running decodes
    /// first, then chunks of waiting prefills.
    Chunked,
    /// Request-level batching: a batch is formed when the replica is idle and runs until all
    /// its requests finish; finished requests stay in the batch as padding.
    Static,
}

impl BatchingMode {
    /// Parses `continuous`, `chunked` or `static`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "continuous" => Some(Self::Continuous),
            "chunked" => Some(Self::Chunked),
            "static" => Some(Self::Static),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Continuous => "continuous",
            Self::Chunked => "chunked",
            Self::Static => "static",
        }
    }
}

/// What happens to a running request evicted when decode runs out of KV blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PreemptionMode {
    /// Free its blocks and recompute its prompt and generated tokens later (vLLM default).
    #[default]
    Recompute,
    /// Copy its blocks to host memory over PCIe and back later, paying the transfer time.
    Swap,
}

/// Settings of every replica's serving engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Batching mode.
    pub batching: BatchingMode,
    /// Most sequences running at once (vLLM `max_num_seqs`).
    pub max_num_seqs: u32,
    /// Most tokens in one iteration; unset: 2048 when chunked, else max(max model length, 2048).
    pub max_batched_tokens: Option<u32>,
    /// Fraction of KV blocks kept free when admitting new requests (vLLM watermark 0.01).
    pub watermark: f64,
    /// Preemption mode.
    pub preemption: PreemptionMode,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            batching: BatchingMode::Continuous,
            max_num_seqs: 256,
            max_batched_tokens: None,
            watermark: 0.01,
            preemption: PreemptionMode::Recompute,
        }
    }
}

impl EngineConfig {
    /// The token budget of one iteration for an instance accepting `max_model_len` tokens.
    pub fn token_budget(&self, max_model_len: u32) -> u32 {
        match (self.max_batched_tokens, self.batching) {
            (Some(tokens), _) => tokens,
            (None, BatchingMode::Chunked) => 2048,
            (None, _) => max_model_len.max(2048),
        }
    }
}

/// Latency targets a request must meet to count as served within its SLO.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SloTargets {
    /// Time to first token, seconds.
    pub ttft_s: Option<f64>,
    /// Mean time per output token after the first, `(e2e − ttft) / (out − 1)`, seconds.
    pub tpot_s: Option<f64>,
    /// Mélange's per-request "TPOT": end-to-end latency divided by output tokens, seconds.
    pub norm_latency_s: Option<f64>,
}

impl SloTargets {
    /// Whether any target is set.
    pub fn any(&self) -> bool {
        self.ttft_s.is_some() || self.tpot_s.is_some() || self.norm_latency_s.is_some()
    }

    /// Whether a completed request with these latencies meets every target set.
    pub fn met(&self, ttft_s: f64, tpot_s: f64, norm_latency_s: f64) -> bool {
        self.ttft_s.is_none_or(|t| ttft_s <= t)
            && self.tpot_s.is_none_or(|t| tpot_s <= t)
            && self.norm_latency_s.is_none_or(|t| norm_latency_s <= t)
    }
}

/// Parses a duration such as `2s`, `120ms`, `500us` or a bare number of seconds.
pub fn parse_duration_s(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * scale)
}
