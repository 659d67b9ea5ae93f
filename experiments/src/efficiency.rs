//! Per-bucket efficiency of each instance type under an SLO: capacity, cost and tokens per
//! dollar, from capacity profiles. These rows feed the best-GPU-per-bucket heat map (Mélange's
//! Figure 5) and the tokens-per-dollar-vs-SLO lines.

use serde::{Deserialize, Serialize};
use solver::{BucketLengths, CellStatus, ProfileSet};
use workloads::BucketEdges;

/// The lengths each bucket's profile used, and how much of the workload falls in it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BucketStats {
    /// `mean_input[i][j]`: mean input tokens of the requests profiled in bucket (i, j).
    pub mean_input: Vec<Vec<f64>>,
    /// `mean_output[i][j]`: mean output tokens of the requests profiled in bucket (i, j).
    pub mean_output: Vec<Vec<f64>>,
    /// `share[i][j]`: fraction of the workload's in-range requests in bucket (i, j).
    pub share: Vec<Vec<f64>>,
}

impl BucketStats {
    /// Stats of the lengths a profile draws: the workload's pairs resampled per bucket, or the
    /// bucket midpoints (also for buckets the pairs never reach, as the profiler does).
    pub fn new(edges: &BucketEdges, lengths: &BucketLengths, workload: &[(u32, u32)]) -> Self {
        let (rows, columns) = edges.shape();
        let mut sums = vec![vec![(0.0_f64, 0.0_f64, 0_u64); columns]; rows];
        for &(input, output) in workload {
            if let Some((i, j)) = edges.bucket_of(input, output) {
                let cell = &mut sums[i][j];
                cell.0 += f64::from(input);
                cell.1 += f64::from(output);
                cell.2 += 1;
            }
        }
        let in_range: u64 = sums.iter().flatten().map(|cell| cell.2).sum();
        let mut stats = Self::default();
        for (i, row) in sums.iter().enumerate() {
            let mut inputs = Vec::with_capacity(columns);
            let mut outputs = Vec::with_capacity(columns);
            let mut shares = Vec::with_capacity(columns);
            for (j, &(input_sum, output_sum, count)) in row.iter().enumerate() {
                let sampled = matches!(lengths, BucketLengths::Sampled(_)) && count > 0;
                if sampled {
                    inputs.push(input_sum / count as f64);
                    outputs.push(output_sum / count as f64);
                } else {
                    let (input, output) = edges.representative(i, j);
                    inputs.push(f64::from(input));
                    outputs.push(f64::from(output));
                }
                shares.push(if in_range == 0 {
                    0.0
                } else {
                    count as f64 / in_range as f64
                });
            }
            stats.mean_input.push(inputs);
            stats.mean_output.push(outputs);
            stats.share.push(shares);
        }
        stats
    }
}

/// One instance type's efficiency on one bucket under one SLO and price book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRow {
    /// Experiment name.
    pub experiment: String,
    /// Hash of the resolved config.
    pub config_hash: String,
    /// medley version that produced the row.
    pub medley_version: String,
    /// Seed of the profile.
    pub seed: u64,
    /// TPOT target (text, empty for none).
    pub tpot_target: String,
    /// TTFT target (text, empty for none).
    pub ttft_target: String,
    /// The SLO in words, with its statistics.
    pub slo: String,
    /// Price book.
    pub price_book: String,
    /// What-if prices (`GPU=price`, empty for none).
    pub price_overrides: String,
    /// Instance type (`A10G`, `H100-SXMx2`).
    pub instance: String,
    /// GPU type.
    pub gpu: String,
    /// GPUs per instance.
    pub tp: u32,
    /// Input bucket index.
    pub input_bucket: u32,
    /// Output bucket index.
    pub output_bucket: u32,
    /// Input bucket range, tokens (`lo-hi`).
    pub input_range: String,
    /// Output bucket range, tokens (`lo-hi`).
    pub output_range: String,
    /// Fraction of the workload in this bucket.
    pub bucket_share: f64,
    /// Mean input tokens of the profiled requests.
    pub mean_input_tokens: f64,
    /// Mean output tokens of the profiled requests.
    pub mean_output_tokens: f64,
    /// How the capacity came about: profiled, too-long, slo-unattainable, skipped.
    pub status: String,
    /// Max req/s one instance sustains under the SLO.
    pub capacity_rps: f64,
    /// Standard error of the capacity over replicates, req/s.
    pub capacity_std_error_rps: f64,
    /// Price of one instance, $/h.
    pub usd_per_hour: f64,
    /// Requests served per dollar at capacity (0 when it cannot serve the bucket).
    pub requests_per_dollar: f64,
    /// Output tokens generated per dollar at capacity.
    pub output_tokens_per_dollar: f64,
    /// Input plus output tokens per dollar at capacity.
    pub total_tokens_per_dollar: f64,
}

/// What every profile row of one grid point shares.
#[derive(Debug, Clone)]
pub struct ProfileRowContext<'a> {
    /// Experiment name.
    pub experiment: &'a str,
    /// Config hash.
    pub config_hash: &'a str,
    /// Seed.
    pub seed: u64,
    /// TPOT target text.
    pub tpot_target: &'a str,
    /// TTFT target text.
    pub ttft_target: &'a str,
    /// What-if prices text.
    pub price_overrides: &'a str,
}

fn range_label(range: Option<(u32, u32)>) -> String {
    range.map_or_else(String::new, |(low, high)| format!("{low}-{high}"))
}

/// One row per (instance type, bucket) of a profile set priced under its book.
pub fn profile_rows(
    context: &ProfileRowContext<'_>,
    set: &ProfileSet,
    stats: &BucketStats,
) -> Vec<ProfileRow> {
    let edges = BucketEdges {
        input: set.input_edges.clone(),
        output: set.output_edges.clone(),
    };
    let mut rows = Vec::new();
    for table in &set.types {
        for (i, cells) in table.cells.iter().enumerate() {
            for (j, cell) in cells.iter().enumerate() {
                let mean_input = stats.mean_input[i][j];
                let mean_output = stats.mean_output[i][j];
                // Requests per dollar: an hour at capacity over the hour's price.
                let requests_per_dollar = if table.usd_per_hour > 0.0 {
                    cell.capacity_rps * 3600.0 / table.usd_per_hour
                } else {
                    0.0
                };
                rows.push(ProfileRow {
                    experiment: context.experiment.to_string(),
                    config_hash: context.config_hash.to_string(),
                    medley_version: crate::runner::MEDLEY_VERSION.to_string(),
                    seed: context.seed,
                    tpot_target: context.tpot_target.to_string(),
                    ttft_target: context.ttft_target.to_string(),
                    slo: set.slo_text.clone(),
                    price_book: set.price_book.clone(),
                    price_overrides: context.price_overrides.to_string(),
                    instance: table.instance.clone(),
                    gpu: table.gpu.clone(),
                    tp: table.tp,
                    input_bucket: i as u32,
                    output_bucket: j as u32,
                    input_range: range_label(edges.input_range(i)),
                    output_range: range_label(edges.output_range(j)),
                    bucket_share: stats.share[i][j],
                    mean_input_tokens: mean_input,
                    mean_output_tokens: mean_output,
                    status: status_name(cell.status).to_string(),
                    capacity_rps: cell.capacity_rps,
                    capacity_std_error_rps: cell.std_error_rps,
                    usd_per_hour: table.usd_per_hour,
                    requests_per_dollar,
                    output_tokens_per_dollar: requests_per_dollar * mean_output,
                    total_tokens_per_dollar: requests_per_dollar * (mean_input + mean_output),
                });
            }
        }
    }
    rows
}

/// The status as written in tables.
pub fn status_name(status: CellStatus) -> &'static str {
    match status {
        CellStatus::Profiled => "profiled",
        CellStatus::TooLong => "too-long",
        CellStatus::SloUnattainable => "slo-unattainable",
        CellStatus::Skipped => "skipped",
    }
}

/// The best instance type of one bucket by output tokens per dollar, and its advantage over the
/// runner-up in percent (`None` when no other type serves the bucket). `None` when no type does.
pub fn best_of(rows: &[&ProfileRow]) -> Option<(String, Option<f64>)> {
    let mut serving: Vec<&&ProfileRow> = rows
        .iter()
        .filter(|r| r.output_tokens_per_dollar > 0.0)
        .collect();
    // Ties break by instance name so the winner is stable.
    serving.sort_by(|a, b| {
        b.output_tokens_per_dollar
            .total_cmp(&a.output_tokens_per_dollar)
            .then_with(|| a.instance.cmp(&b.instance))
    });
    let winner = serving.first()?;
    let advantage = serving.get(1).map(|runner_up| {
        (winner.output_tokens_per_dollar / runner_up.output_tokens_per_dollar - 1.0) * 100.0
    });
    Some((winner.instance.clone(), advantage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_average_the_sampled_lengths_and_fall_back_to_midpoints() {
        let edges = BucketEdges::new(vec![100, 1000], vec![50, 500]).unwrap();
        let pairs = vec![(10, 20), (30, 40), (500, 300)];
        let stats = BucketStats::new(&edges, &BucketLengths::Sampled(pairs.clone()), &pairs);
        assert_eq!(stats.mean_input[0][0], 20.0);
        assert_eq!(stats.mean_output[0][0], 30.0);
        assert_eq!(stats.mean_output[1][1], 300.0);
        // Never reached: the representative midpoint, as the profiler uses.
        assert_eq!(
            stats.mean_output[0][1],
            f64::from(edges.representative(0, 1).1)
        );
        assert!((stats.share[0][0] - 2.0 / 3.0).abs() < 1e-12);
        let representative = BucketStats::new(&edges, &BucketLengths::Representative, &pairs);
        assert_eq!(
            representative.mean_input[0][0],
            f64::from(edges.representative(0, 0).0)
        );
    }
}
