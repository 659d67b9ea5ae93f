//! Size histograms over input × output bucket edges (Mélange's by default), the
//! `workload_distribution` matrix Mélange's solver reads, and per-bucket samplers.
//!
//! Bucket `i` of an edge list `e` covers lengths in `(e[i-1], e[i]]`, with `e[-1] = 0` and the
//! first bucket also holding 0: for Mélange's input edges bucket 0 is `0..=25`, bucket 1 is
//! `26..=100`, …, bucket 9 is `12001..=16000`. A request whose input or output exceeds the last
//! edge is in no bucket: [`BucketEdges::bucket_of`] returns `None` and [`SizeHistogram`] counts it
//! in an explicit overflow tally, never dropping it silently.

use std::fmt;

use rand::{Rng, RngExt};
use serde::Serialize;

use crate::error::WorkloadError;
use crate::lengths::LengthModel;
use crate::request::Request;

/// Upper edges (inclusive) of the input and output length buckets, in tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketEdges {
    /// Input (prompt) bucket upper edges, strictly increasing.
    pub input: Vec<u32>,
    /// Output (generated) bucket upper edges, strictly increasing.
    pub output: Vec<u32>,
}

impl Default for BucketEdges {
    fn default() -> Self {
        Self::melange()
    }
}

impl BucketEdges {
    /// Mélange's edges (Griggs et al. 2024, arXiv 2404.14527): 10 input × 6 output = 60 buckets.
    pub fn melange() -> Self {
        Self {
            input: vec![25, 100, 250, 500, 1000, 2000, 4000, 8000, 12000, 16000],
            output: vec![25, 100, 250, 500, 1000, 2000],
        }
    }

    /// Custom edges; each list must be non-empty and strictly increasing.
    pub fn new(input: Vec<u32>, output: Vec<u32>) -> Result<Self, WorkloadError> {
        for (name, edges) in [("input edges", &input), ("output edges", &output)] {
            if edges.is_empty() || edges.windows(2).any(|w| w[1] <= w[0]) {
                return Err(WorkloadError::bad(
                    name,
                    format!("{edges:?}"),
                    "a non-empty, strictly increasing list",
                ));
            }
        }
        Ok(Self { input, output })
    }

    /// Number of (input, output) buckets.
    pub fn shape(&self) -> (usize, usize) {
        (self.input.len(), self.output.len())
    }

    /// The bucket holding these lengths, or `None` if either exceeds its last edge.
    pub fn bucket_of(&self, input_tokens: u32, output_tokens: u32) -> Option<(usize, usize)> {
        Some((
            index_of(&self.input, input_tokens)?,
            index_of(&self.output, output_tokens)?,
        ))
    }

    /// Inclusive token range `(low, high)` of input bucket `i` (None if out of range).
    pub fn input_range(&self, i: usize) -> Option<(u32, u32)> {
        range_of(&self.input, i)
    }

    /// Inclusive token range `(low, high)` of output bucket `j` (None if out of range).
    pub fn output_range(&self, j: usize) -> Option<(u32, u32)> {
        range_of(&self.output, j)
    }

    /// A representative (input, output) pair for bucket (i, j): the midpoint of each range,
    /// rounded down. Panics if the bucket does not exist.
    pub fn representative(&self, i: usize, j: usize) -> (u32, u32) {
        let (in_low, in_high) = self.input_range(i).expect("input bucket index in range");
        let (out_low, out_high) = self.output_range(j).expect("output bucket index in range");
        (
            midpoint(in_low.max(1), in_high),
            midpoint(out_low.max(1), out_high),
        )
    }
}

fn midpoint(low: u32, high: u32) -> u32 {
    low + (high - low) / 2
}

fn index_of(edges: &[u32], tokens: u32) -> Option<usize> {
    let index = edges.partition_point(|edge| *edge < tokens);
    (index < edges.len()).then_some(index)
}

fn range_of(edges: &[u32], index: usize) -> Option<(u32, u32)> {
    let high = *edges.get(index)?;
    let low = if index == 0 { 0 } else { edges[index - 1] + 1 };
    Some((low, high))
}

fn range_label(edges: &[u32], index: usize) -> String {
    let (low, high) = range_of(edges, index).expect("index in range");
    format!("{low}-{high}")
}

/// Counts of requests per (input, output) bucket, plus those beyond the last edges.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeHistogram {
    /// The bucket edges.
    pub edges: BucketEdges,
    /// `counts[i][j]`: requests in input bucket i and output bucket j.
    pub counts: Vec<Vec<u64>>,
    /// Requests beyond the last input or output edge (in no bucket).
    pub overflow: u64,
    /// Of the overflow, requests whose input exceeds the last input edge.
    pub overflow_input: u64,
    /// Of the overflow, requests whose output exceeds the last output edge.
    pub overflow_output: u64,
}

impl SizeHistogram {
    /// An empty histogram over these edges.
    pub fn new(edges: BucketEdges) -> Self {
        let (rows, cols) = edges.shape();
        Self {
            counts: vec![vec![0; cols]; rows],
            edges,
            overflow: 0,
            overflow_input: 0,
            overflow_output: 0,
        }
    }

    /// Counts one request by its lengths.
    pub fn add(&mut self, input_tokens: u32, output_tokens: u32) {
        match self.edges.bucket_of(input_tokens, output_tokens) {
            Some((i, j)) => self.counts[i][j] += 1,
            None => {
                self.overflow += 1;
                if index_of(&self.edges.input, input_tokens).is_none() {
                    self.overflow_input += 1;
                }
                if index_of(&self.edges.output, output_tokens).is_none() {
                    self.overflow_output += 1;
                }
            }
        }
    }

    /// A histogram of these requests.
    pub fn from_requests<'a>(
        edges: BucketEdges,
        requests: impl IntoIterator<Item = &'a Request>,
    ) -> Self {
        let mut histogram = Self::new(edges);
        for request in requests {
            histogram.add(request.input_tokens, request.output_tokens);
        }
        histogram
    }

    /// Requests inside some bucket.
    pub fn in_range(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// All requests counted, overflow included.
    pub fn total(&self) -> u64 {
        self.in_range() + self.overflow
    }

    /// Fractions of in-range requests per bucket (sum to 1 when any request is in range).
    pub fn fractions(&self) -> Vec<Vec<f64>> {
        let in_range = self.in_range();
        self.counts
            .iter()
            .map(|row| {
                row.iter()
                    .map(|c| {
                        if in_range == 0 {
                            0.0
                        } else {
                            *c as f64 / in_range as f64
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The JSON Mélange's solver reads: `workload_distribution` (rows = input buckets, columns =
    /// output buckets, fractions of in-range requests), with edges and the overflow tally.
    pub fn melange_json(&self) -> serde_json::Value {
        serde_json::json!({
            "workload_distribution": self.fractions(),
            "input_edges_tokens": self.edges.input,
            "output_edges_tokens": self.edges.output,
            "bucket_rule": "bucket i covers (edge[i-1], edge[i]] tokens; bucket 0 covers 0..=edge[0]",
            "counts": self.counts,
            "in_range_requests": self.in_range(),
            "overflow_requests": self.overflow,
            "overflow_input": self.overflow_input,
            "overflow_output": self.overflow_output,
        })
    }
}

impl fmt::Display for SizeHistogram {
    /// A table of counts and percentages of in-range requests (rows: input tokens, columns: output tokens).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fractions = self.fractions();
        write!(f, "{:>13} |", "in \\ out tok")?;
        for j in 0..self.edges.output.len() {
            write!(f, " {:>15}", range_label(&self.edges.output, j))?;
        }
        writeln!(f)?;
        for (i, row) in self.counts.iter().enumerate() {
            write!(f, "{:>13} |", range_label(&self.edges.input, i))?;
            for (j, count) in row.iter().enumerate() {
                write!(f, " {:>7} {:>6.2}%", count, fractions[i][j] * 100.0)?;
            }
            writeln!(f)?;
        }
        write!(
            f,
            "in buckets: {} requests; overflow (beyond the last edge, in no bucket): {} (input > {}: {}, output > {}: {})",
            self.in_range(),
            self.overflow,
            self.edges.input.last().copied().unwrap_or(0),
            self.overflow_input,
            self.edges.output.last().copied().unwrap_or(0),
            self.overflow_output
        )
    }
}

/// Draws (input, output) lengths that fall in one bucket, for capacity profiling.
#[derive(Debug, Clone)]
pub struct BucketSampler {
    bucket: (usize, usize),
    pool: Vec<(u32, u32)>,
}

impl BucketSampler {
    /// Resamples uniformly from the given pairs (e.g. a trace's) that fall in `bucket`.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (u32, u32)>,
        edges: &BucketEdges,
        bucket: (usize, usize),
    ) -> Result<Self, WorkloadError> {
        Self::check_bucket(edges, bucket)?;
        let pool: Vec<_> = pairs
            .into_iter()
            .filter(|(i, o)| edges.bucket_of(*i, *o) == Some(bucket))
            .collect();
        if pool.is_empty() {
            return Err(WorkloadError::bad(
                "bucket",
                format!("{bucket:?}"),
                "a bucket holding at least one source request",
            ));
        }
        Ok(Self { bucket, pool })
    }

    /// Draws `draws` pairs from a length model (a preset's) and keeps those in `bucket`
    /// (rejection sampling, so the within-bucket shape follows the model).
    pub fn from_model<R: Rng + ?Sized>(
        model: &LengthModel,
        edges: &BucketEdges,
        bucket: (usize, usize),
        draws: usize,
        rng: &mut R,
    ) -> Result<Self, WorkloadError> {
        Self::check_bucket(edges, bucket)?;
        let pool: Vec<_> = (0..draws)
            .map(|_| model.sample(rng))
            .filter(|(i, o)| edges.bucket_of(*i, *o) == Some(bucket))
            .collect();
        if pool.is_empty() {
            return Err(WorkloadError::bad(
                "bucket",
                format!("{bucket:?} (no hits in {draws} draws)"),
                "a bucket the model reaches; draw more or pick another bucket",
            ));
        }
        Ok(Self { bucket, pool })
    }

    fn check_bucket(edges: &BucketEdges, bucket: (usize, usize)) -> Result<(), WorkloadError> {
        let (rows, cols) = edges.shape();
        if bucket.0 >= rows || bucket.1 >= cols {
            return Err(WorkloadError::bad(
                "bucket",
                format!("{bucket:?}"),
                &format!("indices below ({rows}, {cols})"),
            ));
        }
        Ok(())
    }

    /// The bucket sampled.
    pub fn bucket(&self) -> (usize, usize) {
        self.bucket
    }

    /// Distinct source pairs available.
    pub fn pool_size(&self) -> usize {
        self.pool.len()
    }

    /// One (input, output) pair in the bucket.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> (u32, u32) {
        self.pool[rng.random_range(0..self.pool.len())]
    }

    /// `count` requests, all arriving at 0 s (a closed batch for profiling).
    pub fn batch<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<Request> {
        (0..count)
            .map(|id| {
                let (input, output) = self.sample(rng);
                Request::new(id as u64, 0.0, input, output)
            })
            .collect()
    }
}
