//! Summary statistics of a request stream: count, span, rate, inter-arrival burstiness,
//! length quantiles and the size histogram. Built in one streaming pass that keeps only the
//! two length columns (8 bytes per request) for exact quantiles.

use std::fmt;

use serde::Serialize;

use crate::histogram::{BucketEdges, SizeHistogram};
use crate::request::Request;

/// Mean, median, p90, p99, min and max of a token-length column, in tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LengthSummary {
    /// Mean tokens.
    pub mean: f64,
    /// Median tokens (linear interpolation, as numpy).
    pub median: f64,
    /// 90th percentile tokens.
    pub p90: f64,
    /// 99th percentile tokens.
    pub p99: f64,
    /// Smallest length.
    pub min: u32,
    /// Largest length.
    pub max: u32,
}

impl LengthSummary {
    /// Summarizes lengths (sorts them in place); `None` when empty.
    pub fn of(values: &mut [u32]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let mean = values.iter().map(|v| f64::from(*v)).sum::<f64>() / values.len() as f64;
        Some(Self {
            mean,
            median: quantile_sorted(values, 0.5),
            p90: quantile_sorted(values, 0.9),
            p99: quantile_sorted(values, 0.99),
            min: values[0],
            max: values[values.len() - 1],
        })
    }
}

/// The `p` quantile of sorted values with linear interpolation (numpy's default rule).
pub fn quantile_sorted(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let low = position.floor() as usize;
    let high = (low + 1).min(sorted.len() - 1);
    let weight = position - low as f64;
    f64::from(sorted[low]) + weight * (f64::from(sorted[high]) - f64::from(sorted[low]))
}

/// Statistics of a request stream. Times in seconds, rates in requests per second, lengths in tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceStats {
    /// Requests counted.
    pub requests: u64,
    /// Last arrival minus first arrival, seconds.
    pub span_s: f64,
    /// (requests − 1) / span, requests per second (as stats.json computes it); 0 when span is 0.
    pub mean_rate_rps: f64,
    /// Mean inter-arrival time, seconds.
    pub interarrival_mean_s: f64,
    /// Population standard deviation / mean of inter-arrival times (1 for Poisson).
    pub interarrival_cv: f64,
    /// Prompt lengths.
    pub input_tokens: Option<LengthSummary>,
    /// Generated lengths.
    pub output_tokens: Option<LengthSummary>,
    /// Size histogram over the chosen edges.
    pub histogram: SizeHistogram,
}

/// Accumulates [`TraceStats`] one request at a time.
#[derive(Debug, Clone)]
pub struct StatsBuilder {
    inputs: Vec<u32>,
    outputs: Vec<u32>,
    first_s: Option<f64>,
    last_s: f64,
    gaps: u64,
    gap_mean: f64,
    gap_m2: f64,
    histogram: SizeHistogram,
}

impl StatsBuilder {
    /// An empty accumulator with these histogram edges.
    pub fn new(edges: BucketEdges) -> Self {
        Self {
            inputs: Vec::new(),
            outputs: Vec::new(),
            first_s: None,
            last_s: 0.0,
            gaps: 0,
            gap_mean: 0.0,
            gap_m2: 0.0,
            histogram: SizeHistogram::new(edges),
        }
    }

    /// Adds one request (arrivals should not decrease; gaps are taken between consecutive pushes).
    pub fn push(&mut self, request: &Request) {
        self.inputs.push(request.input_tokens);
        self.outputs.push(request.output_tokens);
        self.histogram
            .add(request.input_tokens, request.output_tokens);
        if self.first_s.is_some() {
            // Welford's update: stable for millions of gaps.
            let gap = request.arrival_s - self.last_s;
            self.gaps += 1;
            let delta = gap - self.gap_mean;
            self.gap_mean += delta / self.gaps as f64;
            self.gap_m2 += delta * (gap - self.gap_mean);
        } else {
            self.first_s = Some(request.arrival_s);
        }
        self.last_s = request.arrival_s;
    }

    /// The statistics so far.
    pub fn finish(mut self) -> TraceStats {
        let requests = self.inputs.len() as u64;
        let span_s = self.first_s.map_or(0.0, |first| self.last_s - first);
        let std_dev = if self.gaps > 0 {
            (self.gap_m2 / self.gaps as f64).sqrt()
        } else {
            0.0
        };
        TraceStats {
            requests,
            span_s,
            mean_rate_rps: if span_s > 0.0 {
                (requests - 1) as f64 / span_s
            } else {
                0.0
            },
            interarrival_mean_s: self.gap_mean,
            interarrival_cv: if self.gap_mean > 0.0 {
                std_dev / self.gap_mean
            } else {
                0.0
            },
            input_tokens: LengthSummary::of(&mut self.inputs),
            output_tokens: LengthSummary::of(&mut self.outputs),
            histogram: self.histogram,
        }
    }
}

impl TraceStats {
    /// Statistics of these requests.
    pub fn of<'a>(requests: impl IntoIterator<Item = &'a Request>, edges: BucketEdges) -> Self {
        let mut builder = StatsBuilder::new(edges);
        for request in requests {
            builder.push(request);
        }
        builder.finish()
    }
}

impl fmt::Display for TraceStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "requests:            {}", self.requests)?;
        writeln!(
            f,
            "span:                {:.1} s ({:.1} min)",
            self.span_s,
            self.span_s / 60.0
        )?;
        writeln!(f, "mean rate:           {:.3} req/s", self.mean_rate_rps)?;
        writeln!(f, "inter-arrival mean:  {:.4} s", self.interarrival_mean_s)?;
        writeln!(
            f,
            "inter-arrival CV:    {:.3} (1 = Poisson)",
            self.interarrival_cv
        )?;
        writeln!(
            f,
            "{:<14} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "tokens", "mean", "median", "p90", "p99", "min", "max"
        )?;
        for (name, summary) in [
            ("input", &self.input_tokens),
            ("output", &self.output_tokens),
        ] {
            match summary {
                Some(s) => writeln!(
                    f,
                    "{:<14} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10} {:>10}",
                    name, s.mean, s.median, s.p90, s.p99, s.min, s.max
                )?,
                None => writeln!(f, "{name:<14} (no requests)")?,
            }
        }
        writeln!(
            f,
            "size histogram (requests and % of in-bucket requests; lengths in tokens):"
        )?;
        write!(f, "{}", self.histogram)
    }
}
