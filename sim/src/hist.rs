//! A fixed-size logarithmic histogram for latency quantiles: memory does not grow with the
//! number of samples, and any quantile is within 0.2% (relative) of the exact sample quantile.

use serde::Serialize;

/// Values below this are counted in the first bucket (seconds).
const MIN_VALUE: f64 = 1e-7;
/// Relative width of a bucket.
const GROWTH: f64 = 1.004;
/// Buckets cover 1e-7 s to about 1e7 s.
const BUCKETS: usize = 8_100;

/// Streaming summary of non-negative values: exact count, mean, min, max; quantiles to 0.2%.
#[derive(Debug, Clone)]
pub struct LogHistogram {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for LogHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: 0.0,
        }
    }
}

/// Mean and quantiles of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Quantiles {
    /// Number of values.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl LogHistogram {
    fn bucket(value: f64) -> usize {
        if value <= MIN_VALUE {
            return 0;
        }
        let index = ((value / MIN_VALUE).ln() / GROWTH.ln()) as usize + 1;
        index.min(BUCKETS - 1)
    }

    /// Adds one value (negative and NaN values count as 0).
    pub fn record(&mut self, value: f64) {
        let value = if value.is_finite() && value > 0.0 {
            value
        } else {
            0.0
        };
        self.counts[Self::bucket(value)] += 1;
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean of the values (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The `q` quantile (0 ≤ q ≤ 1), nearest-rank, reported at the bucket's geometric centre
    /// and clamped to the observed min and max.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let value = if index == 0 {
                    MIN_VALUE
                } else {
                    MIN_VALUE * GROWTH.powf(index as f64 - 0.5)
                };
                return value.clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Mean, p50, p90, p95, p99 and max.
    pub fn summary(&self) -> Quantiles {
        Quantiles {
            count: self.count,
            mean: self.mean(),
            p50: self.quantile(0.50),
            p90: self.quantile(0.90),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            max: if self.count == 0 { 0.0 } else { self.max },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_bucket_precision() {
        let mut hist = LogHistogram::default();
        let values: Vec<f64> = (1..=10_000).map(|i| f64::from(i) * 1e-3).collect();
        for v in &values {
            hist.record(*v);
        }
        for q in [0.5, 0.9, 0.99] {
            let exact = values[(q * values.len() as f64).ceil() as usize - 1];
            let got = hist.quantile(q);
            assert!(
                (got - exact).abs() / exact < 0.002,
                "q{q}: {got} vs {exact}"
            );
        }
        assert!((hist.mean() - 5.0005).abs() < 1e-9);
        assert_eq!(hist.summary().max, 10.0);
    }
}
