//! Stream transformations: rate scaling, time windows, context-limit clipping or dropping
//! (counted), tiling a trace to a longer duration, and id renumbering.

use serde::{Deserialize, Serialize};

use crate::request::Request;

/// Compresses time by `factor` (2 doubles the rate: every arrival time is halved).
pub fn scale_rate<I: Iterator<Item = Request>>(
    requests: I,
    factor: f64,
) -> impl Iterator<Item = Request> {
    requests.map(move |mut request| {
        request.arrival_s /= factor;
        request
    })
}

/// Keeps arrivals in `[start_s, end_s)`, rebased so `start_s` becomes 0. Stops reading at the
/// first arrival at or past `end_s` (arrivals must not decrease).
pub fn window<I: Iterator<Item = Request>>(
    requests: I,
    start_s: f64,
    end_s: f64,
) -> impl Iterator<Item = Request> {
    requests
        .skip_while(move |r| r.arrival_s < start_s)
        .take_while(move |r| r.arrival_s < end_s)
        .map(move |mut r| {
            r.arrival_s -= start_s;
            r
        })
}

/// Renumbers ids 0, 1, 2, … in stream order (after filtering or tiling).
pub fn renumber<I: Iterator<Item = Request>>(requests: I) -> impl Iterator<Item = Request> {
    requests.enumerate().map(|(id, mut request)| {
        request.id = id as u64;
        request
    })
}

/// What to do with a request whose input + output exceeds the context limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    /// Shorten it: the prompt keeps its most recent `limit − output` tokens (at least 1); if the
    /// output alone is too long it is cut to `limit − input`.
    Clip,
    /// Remove it from the stream (counted as dropped).
    Drop,
}

/// Applies a context limit to a stream, counting what it clips or drops.
#[derive(Debug, Clone)]
pub struct ContextLimit<I> {
    inner: I,
    limit_tokens: u32,
    policy: OverLimit,
    clipped: u64,
    dropped: u64,
}

impl<I> ContextLimit<I> {
    /// Wraps a stream; `limit_tokens` is the largest allowed input + output (at least 2; the
    /// transforms refuse a smaller limit).
    pub fn new(inner: I, limit_tokens: u32, policy: OverLimit) -> Self {
        Self {
            inner,
            limit_tokens: limit_tokens.max(2),
            policy,
            clipped: 0,
            dropped: 0,
        }
    }

    /// Requests shortened so far.
    pub fn clipped(&self) -> u64 {
        self.clipped
    }

    /// Requests removed so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl<I: Iterator<Item = Request>> Iterator for ContextLimit<I> {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        loop {
            let mut request = self.inner.next()?;
            if request.total_tokens() <= u64::from(self.limit_tokens) {
                return Some(request);
            }
            match self.policy {
                OverLimit::Drop => self.dropped += 1,
                OverLimit::Clip => {
                    self.clipped += 1;
                    let limit = self.limit_tokens;
                    request.input_tokens = limit.saturating_sub(request.output_tokens).max(1);
                    request.output_tokens = request.output_tokens.min(limit - request.input_tokens);
                    return Some(request);
                }
            }
        }
    }
}

/// Repeats a materialized trace back to back until `duration_s`. Each copy is shifted by the
/// trace's span plus its mean inter-arrival gap, so the seam looks like an ordinary gap (a second,
/// when every request arrives at once). Ids run on across copies; session ids are kept as in the
/// source (sessions repeat in each copy).
pub fn tile(requests: &[Request], duration_s: f64) -> impl Iterator<Item = Request> + '_ {
    let span = match (requests.first(), requests.last()) {
        (Some(first), Some(last)) => last.arrival_s - first.arrival_s,
        _ => 0.0,
    };
    // A trace whose requests all arrive at once has no gap to copy: its copies come a second
    // apart (a zero period would repeat it forever within the duration).
    let gap = if requests.len() > 1 && span > 0.0 {
        span / (requests.len() - 1) as f64
    } else {
        1.0
    };
    let period = span + gap;
    let start = requests.first().map_or(0.0, |r| r.arrival_s);
    (0u64..)
        .map_while(move |copy| {
            let offset = copy as f64 * period;
            (!requests.is_empty() && offset < duration_s).then_some(offset)
        })
        .flat_map(move |offset| {
            requests.iter().map(move |request| {
                let mut copy = request.clone();
                copy.arrival_s = request.arrival_s - start + offset;
                copy
            })
        })
        .take_while(move |request| request.arrival_s < duration_s)
        .enumerate()
        .map(|(id, mut request)| {
            request.id = id as u64;
            request
        })
}
