//! Token-length distributions: fixed, uniform, normal, lognormal, Zipf, empirical quantile
//! tables, resampling from a trace, joint pairs and mixtures.

use std::sync::Arc;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, LogNormal, Normal, Zipf};
use serde::Serialize;

use crate::error::WorkloadError;

/// A piecewise-linear inverse CDF through `(probability, tokens)` points.
///
/// Sampling draws `u ~ U[0,1)` and interpolates linearly between the two points around `u`, so
/// the distribution is uniform between consecutive quantiles. The first point must have
/// probability 0 (the minimum) and the last probability 1 (the maximum).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantileTable {
    points: Vec<(f64, f64)>,
}

impl QuantileTable {
    /// Builds a table; probabilities must rise from 0 to 1 and values must not decrease.
    pub fn new(points: &[(f64, f64)]) -> Result<Self, WorkloadError> {
        if points.len() < 2 {
            return Err(WorkloadError::bad(
                "quantile table",
                points.len(),
                "at least 2 points",
            ));
        }
        if points[0].0 != 0.0 || points[points.len() - 1].0 != 1.0 {
            return Err(WorkloadError::bad(
                "quantile table",
                format!(
                    "probabilities from {} to {}",
                    points[0].0,
                    points[points.len() - 1].0
                ),
                "probabilities from 0 to 1",
            ));
        }
        for pair in points.windows(2) {
            let rising = pair[1].0 > pair[0].0 && pair[1].1 >= pair[0].1;
            if !rising || !pair[0].1.is_finite() || !pair[1].1.is_finite() || pair[0].1 < 0.0 {
                return Err(WorkloadError::bad(
                    "quantile table",
                    format!("{:?} then {:?}", pair[0], pair[1]),
                    "rising probabilities and non-decreasing, non-negative finite values",
                ));
            }
        }
        Ok(Self {
            points: points.to_vec(),
        })
    }

    /// The value at probability `p` (clamped to 0..=1).
    pub fn quantile(&self, p: f64) -> f64 {
        let p = p.clamp(0.0, 1.0);
        let upper = self
            .points
            .partition_point(|(q, _)| *q < p)
            .clamp(1, self.points.len() - 1);
        let (p0, v0) = self.points[upper - 1];
        let (p1, v1) = self.points[upper];
        v0 + (v1 - v0) * (p - p0) / (p1 - p0)
    }

    /// Mean of the continuous piecewise-uniform distribution the table defines.
    pub fn mean(&self) -> f64 {
        self.points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum()
    }

    /// Variance of the continuous piecewise-uniform distribution the table defines.
    pub fn variance(&self) -> f64 {
        let second_moment: f64 = self
            .points
            .windows(2)
            .map(|w| {
                (w[1].0 - w[0].0) * (w[0].1 * w[0].1 + w[0].1 * w[1].1 + w[1].1 * w[1].1) / 3.0
            })
            .sum();
        second_moment - self.mean().powi(2)
    }

    /// The same shape with every value multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            points: self.points.iter().map(|(p, v)| (*p, v * factor)).collect(),
        }
    }

    /// The `(probability, tokens)` points.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }
}

/// One token-length distribution. Samples are rounded to the nearest integer and clamped to at
/// least 1 token (a request has at least one prompt token and generates at least one token).
#[derive(Debug, Clone, PartialEq)]
pub enum LengthDist {
    /// Always the same length.
    Fixed {
        /// Tokens.
        tokens: u32,
    },
    /// Uniform over the integers `min..=max`.
    Uniform {
        /// Smallest length.
        min: u32,
        /// Largest length.
        max: u32,
    },
    /// Normal, rounded and clamped to at least 1.
    Normal {
        /// Mean tokens.
        mean: f64,
        /// Standard deviation in tokens.
        std_dev: f64,
    },
    /// Lognormal with parameters of the underlying normal.
    LogNormal {
        /// Mean of ln(tokens).
        mu: f64,
        /// Standard deviation of ln(tokens).
        sigma: f64,
    },
    /// Zipf over `1..=n` with exponent `s`.
    Zipf {
        /// Largest length.
        n: u32,
        /// Exponent (> 0).
        s: f64,
    },
    /// Piecewise-linear inverse CDF.
    Quantiles(QuantileTable),
    /// Uniform resampling of observed lengths.
    Empirical(Arc<Vec<u32>>),
}

impl LengthDist {
    /// Lognormal with the given mean (tokens) and log-space standard deviation.
    pub fn lognormal_with_mean(mean: f64, sigma: f64) -> Result<Self, WorkloadError> {
        if !(mean > 0.0 && mean.is_finite() && sigma >= 0.0 && sigma.is_finite()) {
            return Err(WorkloadError::bad(
                "lognormal",
                format!("mean {mean}, sigma {sigma}"),
                "mean > 0, sigma >= 0",
            ));
        }
        Ok(LengthDist::LogNormal {
            mu: mean.ln() - sigma * sigma / 2.0,
            sigma,
        })
    }

    /// Checks the parameters (so that sampling cannot fail).
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let ok = match self {
            LengthDist::Fixed { .. } | LengthDist::Quantiles(_) => true,
            LengthDist::Uniform { min, max } => min <= max,
            LengthDist::Normal { mean, std_dev } => {
                mean.is_finite() && std_dev.is_finite() && *std_dev >= 0.0
            }
            LengthDist::LogNormal { mu, sigma } => {
                mu.is_finite() && sigma.is_finite() && *sigma >= 0.0
            }
            LengthDist::Zipf { n, s } => *n >= 1 && s.is_finite() && *s > 0.0,
            LengthDist::Empirical(values) => !values.is_empty(),
        };
        if ok {
            Ok(())
        } else {
            Err(WorkloadError::bad(
                "length distribution",
                format!("{self:?}"),
                "valid parameters",
            ))
        }
    }

    /// Draws one length in tokens.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        let raw = match self {
            LengthDist::Fixed { tokens } => return (*tokens).max(1),
            LengthDist::Uniform { min, max } => return rng.random_range(*min..=*max).max(1),
            LengthDist::Normal { mean, std_dev } => {
                Normal::new(*mean, *std_dev).map_or(*mean, |normal| normal.sample(rng))
            }
            LengthDist::LogNormal { mu, sigma } => {
                LogNormal::new(*mu, *sigma).map_or(mu.exp(), |lognormal| lognormal.sample(rng))
            }
            LengthDist::Zipf { n, s } => {
                Zipf::new(f64::from(*n), *s).map_or(1.0, |zipf| zipf.sample(rng))
            }
            LengthDist::Quantiles(table) => table.quantile(rng.random::<f64>()),
            LengthDist::Empirical(values) => {
                return values
                    .get(rng.random_range(0..values.len().max(1)))
                    .copied()
                    .unwrap_or(1)
                    .max(1);
            }
        };
        to_tokens(raw)
    }

    /// Mean in tokens (before rounding and clamping, which move it by well under a token for
    /// the distributions used here).
    pub fn mean(&self) -> f64 {
        match self {
            LengthDist::Fixed { tokens } => f64::from((*tokens).max(1)),
            LengthDist::Uniform { min, max } => (f64::from(*min) + f64::from(*max)) / 2.0,
            LengthDist::Normal { mean, .. } => *mean,
            LengthDist::LogNormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            LengthDist::Zipf { n, s } => zipf_moment(*n, *s, 1) / zipf_moment(*n, *s, 0),
            LengthDist::Quantiles(table) => table.mean(),
            LengthDist::Empirical(values) => {
                values.iter().map(|v| f64::from(*v)).sum::<f64>() / values.len() as f64
            }
        }
    }

    /// Variance in tokens², on the same terms as [`LengthDist::mean`].
    pub fn variance(&self) -> f64 {
        match self {
            LengthDist::Fixed { .. } => 0.0,
            LengthDist::Uniform { min, max } => {
                let width = f64::from(*max) - f64::from(*min) + 1.0;
                (width * width - 1.0) / 12.0
            }
            LengthDist::Normal { std_dev, .. } => std_dev * std_dev,
            LengthDist::LogNormal { mu, sigma } => {
                ((sigma * sigma).exp() - 1.0) * (2.0 * mu + sigma * sigma).exp()
            }
            LengthDist::Zipf { n, s } => {
                let norm = zipf_moment(*n, *s, 0);
                zipf_moment(*n, *s, 2) / norm - (zipf_moment(*n, *s, 1) / norm).powi(2)
            }
            LengthDist::Quantiles(table) => table.variance(),
            LengthDist::Empirical(values) => {
                let mean = self.mean();
                values
                    .iter()
                    .map(|v| (f64::from(*v) - mean).powi(2))
                    .sum::<f64>()
                    / values.len() as f64
            }
        }
    }
}

fn zipf_moment(n: u32, s: f64, power: i32) -> f64 {
    (1..=n)
        .map(|k| f64::from(k).powi(power) / f64::from(k).powf(s))
        .sum()
}

fn to_tokens(raw: f64) -> u32 {
    if raw.is_nan() {
        return 1;
    }
    raw.round().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// How a request's (input, output) lengths are drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum LengthModel {
    /// Input and output drawn independently (for sources whose lengths are uncorrelated).
    Independent {
        /// Prompt length.
        input: LengthDist,
        /// Generated length.
        output: LengthDist,
    },
    /// Pairs resampled jointly from a trace, keeping any coupling between input and output.
    Pairs(Arc<Vec<(u32, u32)>>),
    /// A weighted mixture (for example 80% chat + 20% long documents); weights sum to 1.
    Mixture(Vec<(f64, LengthModel)>),
}

impl LengthModel {
    /// Independent input and output distributions.
    pub fn independent(input: LengthDist, output: LengthDist) -> Result<Self, WorkloadError> {
        input.validate()?;
        output.validate()?;
        Ok(LengthModel::Independent { input, output })
    }

    /// Joint resampling of observed (input, output) pairs.
    pub fn pairs(pairs: Vec<(u32, u32)>) -> Result<Self, WorkloadError> {
        if pairs.is_empty() {
            return Err(WorkloadError::bad(
                "length pairs",
                0,
                "at least one (input, output) pair",
            ));
        }
        Ok(LengthModel::Pairs(Arc::new(pairs)))
    }

    /// Joint resampling of the (input, output) pairs of a loaded trace.
    pub fn from_requests(requests: &[crate::request::Request]) -> Result<Self, WorkloadError> {
        Self::pairs(
            requests
                .iter()
                .map(|r| (r.input_tokens, r.output_tokens))
                .collect(),
        )
    }

    /// A mixture; weights must be positive and are normalised to sum to 1.
    pub fn mixture(parts: Vec<(f64, LengthModel)>) -> Result<Self, WorkloadError> {
        let total: f64 = parts.iter().map(|(w, _)| *w).sum();
        if parts.is_empty() || parts.iter().any(|(w, _)| !(*w > 0.0 && w.is_finite())) {
            return Err(WorkloadError::bad(
                "mixture weights",
                format!("{:?}", parts.iter().map(|p| p.0).collect::<Vec<_>>()),
                "positive finite weights",
            ));
        }
        Ok(LengthModel::Mixture(
            parts.into_iter().map(|(w, m)| (w / total, m)).collect(),
        ))
    }

    /// Draws one (input, output) pair in tokens.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> (u32, u32) {
        match self {
            LengthModel::Independent { input, output } => (input.sample(rng), output.sample(rng)),
            LengthModel::Pairs(pairs) => {
                let (input, output) = pairs[rng.random_range(0..pairs.len())];
                (input.max(1), output.max(1))
            }
            LengthModel::Mixture(parts) => {
                let mut u = rng.random::<f64>();
                for (weight, model) in parts {
                    if u < *weight {
                        return model.sample(rng);
                    }
                    u -= weight;
                }
                // Rounding left `u` just above the last cumulative weight.
                parts.last().map_or((1, 1), |(_, model)| model.sample(rng))
            }
        }
    }

    /// Mean and variance of (input, output) tokens.
    pub fn moments(&self) -> ((f64, f64), (f64, f64)) {
        match self {
            LengthModel::Independent { input, output } => (
                (input.mean(), input.variance()),
                (output.mean(), output.variance()),
            ),
            LengthModel::Pairs(pairs) => {
                let n = pairs.len() as f64;
                let stats = |pick: fn(&(u32, u32)) -> u32| {
                    let mean = pairs.iter().map(|p| f64::from(pick(p).max(1))).sum::<f64>() / n;
                    let var = pairs
                        .iter()
                        .map(|p| (f64::from(pick(p).max(1)) - mean).powi(2))
                        .sum::<f64>()
                        / n;
                    (mean, var)
                };
                (stats(|p| p.0), stats(|p| p.1))
            }
            LengthModel::Mixture(parts) => {
                // Law of total variance over the components.
                let mut means = (0.0, 0.0);
                let mut second = (0.0, 0.0);
                for (weight, model) in parts {
                    let ((mi, vi), (mo, vo)) = model.moments();
                    means.0 += weight * mi;
                    means.1 += weight * mo;
                    second.0 += weight * (vi + mi * mi);
                    second.1 += weight * (vo + mo * mo);
                }
                (
                    (means.0, second.0 - means.0 * means.0),
                    (means.1, second.1 - means.1 * means.1),
                )
            }
        }
    }
}
