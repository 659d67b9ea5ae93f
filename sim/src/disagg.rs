//! Prefill/decode disaggregation (Splitwise, DistServe): the link a request's KV cache
//! crosses from its prefill replica to its decode replica, and what the transfers did.
//!
//! A request's life in a disaggregated cluster: it is routed to the least-loaded prefill
//! replica (fewest queued and cached tokens); its prefill there produces its first token, so
//! TTFT ends on the prefill replica, as a serving system streams that token at once. Its KV
//! blocks stay held on the prefill replica while a decode replica, picked then by the
//! configured router (DistServe picks the decode instance after prefill, when its load is
//! known), reserves blocks for the prompt's KV; a request that does not fit yet waits in that
//! replica's transfer queue, in arrival order. Once reserved, the cache moves in
//! `prompt KV bytes / bandwidth + latency`, the prefill replica frees its blocks, and the
//! request joins the decode replica's batch. The gap between its first and second token
//! therefore includes the wait for blocks and the transfer.

use serde::{Deserialize, Serialize};

use crate::hist::Quantiles;
use crate::time::{Nanos, from_secs};

/// Slowest KV link accepted, GB/s.
pub const MIN_LINK_GBS: f64 = 0.01;
/// Longest per-transfer link latency accepted, seconds.
pub const MAX_LINK_LATENCY_S: f64 = 10.0;

/// The link between prefill and decode replicas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvLink {
    /// Bandwidth, gigabytes per second. The default, 50 GB/s, is one 400 Gb/s InfiniBand NDR
    /// port per GPU, as in Splitwise's DGX-H100 setting.
    pub bandwidth_gbs: f64,
    /// Latency added to every transfer, seconds (default 1 ms: connection setup and the
    /// first byte, our assumption).
    pub latency_s: f64,
}

impl Default for KvLink {
    fn default() -> Self {
        Self {
            bandwidth_gbs: 50.0,
            latency_s: 1e-3,
        }
    }
}

impl KvLink {
    /// Checks that the bandwidth is positive and the latency non-negative.
    pub fn validate(&self) -> Result<(), String> {
        // Bounds far outside any network between GPUs (1 GbE moves 0.125 GB/s), which keep a
        // transfer's time from running off the simulated clock's range.
        if !(self.bandwidth_gbs.is_finite() && self.bandwidth_gbs >= MIN_LINK_GBS) {
            return Err(format!(
                "kv_link.bandwidth_gbs must be a finite number of GB/s >= {MIN_LINK_GBS}, found {}",
                self.bandwidth_gbs
            ));
        }
        if !(self.latency_s.is_finite() && (0.0..=MAX_LINK_LATENCY_S).contains(&self.latency_s)) {
            return Err(format!(
                "kv_link.latency_s must be a number of seconds from 0 to {MAX_LINK_LATENCY_S}, found {}",
                self.latency_s
            ));
        }
        Ok(())
    }

    /// Time to move `bytes` over the link.
    pub fn transfer_ns(&self, bytes: f64) -> Nanos {
        from_secs(bytes / (self.bandwidth_gbs * 1e9)).saturating_add(from_secs(self.latency_s))
    }
}

/// What the KV transfers of a disaggregated run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DisaggReport {
    /// Prefill pool, `TYPE:COUNT,...`.
    pub prefill_pool: String,
    /// Decode pool, `TYPE:COUNT,...`.
    pub decode_pool: String,
    /// The link.
    pub link: KvLink,
    /// Transfers that landed.
    pub transfers: u64,
    /// Bytes they moved, GB.
    pub transferred_gb: f64,
    /// Link time per transfer (bytes / bandwidth + latency), seconds.
    pub transfer_s: Quantiles,
    /// Prefill end to blocks reserved on the decode replica, per transfer, seconds.
    pub decode_wait_s: Quantiles,
    /// Requests that completed on their prefill replica (one output token: nothing to move).
    pub completed_at_prefill: u64,
    /// Requests still waiting for decode blocks or on the link when the run stopped.
    pub pending_at_end: u64,
}
