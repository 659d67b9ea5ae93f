//! Output-length (demand) predictors. Queue orders and routers that use a request's size see
//! the prediction made when it arrives, never its true output length, unless the oracle is
//! chosen.

use std::fmt;

use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use workloads::{BucketEdges, Request};

/// Spread of the noisy oracle when `noisy` is given without one.
pub const DEFAULT_NOISE_SIGMA: f64 = 0.5;
/// Accuracy of the class predictor when `class` is given without one.
pub const DEFAULT_CLASS_ACCURACY: f64 = 0.8;
/// What the bucket-average predictor says before any request has completed.
pub const DEFAULT_PRIOR_OUTPUT_TOKENS: u32 = 128;

/// Which output-length predictor policies see.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PredictorKind {
    /// The true output length.
    #[default]
    Oracle,
    /// The true length times a lognormal factor with median 1 and log-spread `sigma` (seeded).
    Noisy {
        /// Standard deviation of the log of the error factor.
        sigma: f64,
    },
    /// Running mean output length of completed requests in the same input-size bucket.
    BucketAverage {
        /// Prediction before any request has completed.
        prior_tokens: u32,
    },
    /// The right output-length bucket with probability `accuracy`, else another bucket
    /// uniformly (seeded); predicts the bucket's midpoint.
    Class {
        /// Probability of naming the right bucket.
        accuracy: f64,
    },
}

impl PredictorKind {
    /// Names accepted by [`PredictorKind::parse`], for help texts.
    pub const NAMES: [&'static str; 4] = [
        "oracle",
        "noisy[:SIGMA]",
        "bucket-average[:PRIOR]",
        "class[:ACCURACY]",
    ];

    /// Short name without parameters.
    pub fn name(self) -> &'static str {
        match self {
            PredictorKind::Oracle => "oracle",
            PredictorKind::Noisy { .. } => "noisy",
            PredictorKind::BucketAverage { .. } => "bucket-average",
            PredictorKind::Class { .. } => "class",
        }
    }

    /// Parses `oracle`, `noisy:0.5`, `bucket-average`, `bucket-average:200` or `class:0.8`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        let (name, parameter) = match text.split_once(':') {
            Some((name, parameter)) => (name, Some(parameter.trim())),
            None => (text.as_str(), None),
        };
        let number = |what: &str| -> Result<Option<f64>, String> {
            parameter
                .map(|p| {
                    p.parse::<f64>().map_err(|_| {
                        format!("predictor '{text}': expected {what} after ':', found '{p}'")
                    })
                })
                .transpose()
        };
        let kind = match name {
            "oracle" if parameter.is_none() => PredictorKind::Oracle,
            "noisy" => PredictorKind::Noisy {
                sigma: number("a lognormal sigma such as 0.5")?.unwrap_or(DEFAULT_NOISE_SIGMA),
            },
            "bucket-average" => {
                let prior = number("a prior output length in tokens")?
                    .unwrap_or(f64::from(DEFAULT_PRIOR_OUTPUT_TOKENS));
                if !(prior >= 1.0 && prior <= f64::from(u32::MAX) && prior.fract() == 0.0) {
                    return Err(format!(
                        "predictor '{text}': the prior must be a whole number of tokens >= 1"
                    ));
                }
                PredictorKind::BucketAverage {
                    prior_tokens: prior as u32,
                }
            }
            "class" => PredictorKind::Class {
                accuracy: number("an accuracy in [0, 1]")?.unwrap_or(DEFAULT_CLASS_ACCURACY),
            },
            _ => {
                return Err(format!(
                    "unknown predictor '{text}': expected one of {}",
                    Self::NAMES.join(", ")
                ));
            }
        };
        kind.validate()?;
        Ok(kind)
    }

    /// Checks the parameters.
    pub fn validate(self) -> Result<(), String> {
        match self {
            PredictorKind::Noisy { sigma } if !(sigma.is_finite() && sigma >= 0.0) => Err(format!(
                "noisy predictor: sigma must be finite and >= 0, found {sigma}"
            )),
            PredictorKind::BucketAverage { prior_tokens: 0 } => {
                Err("bucket-average predictor: the prior must be at least 1 token".into())
            }
            PredictorKind::Class { accuracy } if !(0.0..=1.0).contains(&accuracy) => Err(format!(
                "class predictor: accuracy must be in [0, 1], found {accuracy}"
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for PredictorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PredictorKind::Oracle => write!(f, "oracle"),
            PredictorKind::Noisy { sigma } => write!(f, "noisy:{sigma}"),
            PredictorKind::BucketAverage { prior_tokens } => {
                write!(f, "bucket-average:{prior_tokens}")
            }
            PredictorKind::Class { accuracy } => write!(f, "class:{accuracy}"),
        }
    }
}

/// Predicts each arriving request's output length and learns from completed ones.
pub trait Predictor: Send {
    /// Short name for outputs.
    fn name(&self) -> &'static str;
    /// Predicted output tokens (at least 1) of a request arriving now.
    fn predict(&mut self, request: &Request) -> u32;
    /// Learns from a request that completed with `output_tokens` generated.
    fn observe(&mut self, input_tokens: u32, output_tokens: u32);
}

/// Builds a predictor; `edges` give the input buckets (bucket average) and output buckets
/// (class predictor).
pub fn build(kind: PredictorKind, seed: u64, edges: &BucketEdges) -> Box<dyn Predictor> {
    // A stream of its own, so switching predictors never shifts the routers' draws.
    let rng = Pcg64::seed_from_u64(seed ^ 0x0070_7265_6469_6374);
    match kind {
        PredictorKind::Oracle => Box::new(Oracle),
        PredictorKind::Noisy { sigma } => Box::new(Noisy {
            rng,
            noise: (sigma > 0.0).then(|| LogNormal::new(0.0, sigma).expect("validated sigma")),
        }),
        PredictorKind::BucketAverage { prior_tokens } => Box::new(BucketAverage {
            input_edges: edges.input.clone(),
            sums: vec![(0, 0); edges.input.len() + 1],
            total: (0, 0),
            prior_tokens: prior_tokens.max(1),
        }),
        PredictorKind::Class { accuracy } => Box::new(ClassPredictor {
            rng,
            accuracy,
            output_edges: edges.output.clone(),
            representatives: (0..edges.output.len())
                .map(|j| {
                    let (low, high) = edges.output_range(j).expect("bucket in range");
                    let low = low.max(1);
                    low + (high - low) / 2
                })
                .collect(),
        }),
    }
}

/// Rounds a positive prediction to whole tokens, at least 1.
fn to_tokens(value: f64) -> u32 {
    if value.is_finite() {
        value.round().clamp(1.0, f64::from(u32::MAX)) as u32
    } else {
        u32::MAX
    }
}

/// Index of the bucket whose upper edge first reaches `tokens`; beyond the last edge: the
/// overflow index `edges.len()`.
fn bucket_index(edges: &[u32], tokens: u32) -> usize {
    edges.partition_point(|edge| *edge < tokens)
}

struct Oracle;

impl Predictor for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn predict(&mut self, request: &Request) -> u32 {
        request.output_tokens.max(1)
    }

    fn observe(&mut self, _: u32, _: u32) {}
}

struct Noisy {
    rng: Pcg64,
    noise: Option<LogNormal<f64>>,
}

impl Predictor for Noisy {
    fn name(&self) -> &'static str {
        "noisy"
    }

    fn predict(&mut self, request: &Request) -> u32 {
        let truth = f64::from(request.output_tokens.max(1));
        match &self.noise {
            Some(noise) => to_tokens(truth * noise.sample(&mut self.rng)),
            None => to_tokens(truth),
        }
    }

    fn observe(&mut self, _: u32, _: u32) {}
}

struct BucketAverage {
    input_edges: Vec<u32>,
    /// (Σ output tokens, completed requests) per input bucket, the last for overflow.
    sums: Vec<(u64, u64)>,
    /// Over all buckets, for buckets with no completion yet.
    total: (u64, u64),
    prior_tokens: u32,
}

impl Predictor for BucketAverage {
    fn name(&self) -> &'static str {
        "bucket-average"
    }

    fn predict(&mut self, request: &Request) -> u32 {
        let (sum, count) = self.sums[bucket_index(&self.input_edges, request.input_tokens)];
        if count > 0 {
            return to_tokens(sum as f64 / count as f64);
        }
        let (sum, count) = self.total;
        if count > 0 {
            return to_tokens(sum as f64 / count as f64);
        }
        self.prior_tokens
    }

    fn observe(&mut self, input_tokens: u32, output_tokens: u32) {
        let entry = &mut self.sums[bucket_index(&self.input_edges, input_tokens)];
        entry.0 += u64::from(output_tokens);
        entry.1 += 1;
        self.total.0 += u64::from(output_tokens);
        self.total.1 += 1;
    }
}

struct ClassPredictor {
    rng: Pcg64,
    accuracy: f64,
    output_edges: Vec<u32>,
    /// Midpoint of each output bucket: the length predicted for it.
    representatives: Vec<u32>,
}

impl Predictor for ClassPredictor {
    fn name(&self) -> &'static str {
        "class"
    }

    fn predict(&mut self, request: &Request) -> u32 {
        let buckets = self.representatives.len();
        // Lengths beyond the last edge belong to the last bucket: the classifier has no other.
        let truth = bucket_index(&self.output_edges, request.output_tokens).min(buckets - 1);
        // Both draws are always taken, so the stream advances the same way at any accuracy.
        let right = self.rng.random::<f64>() < self.accuracy;
        let other = self.rng.random_range(0..buckets.max(2) - 1);
        let bucket = if right || buckets == 1 {
            truth
        } else if other >= truth {
            other + 1
        } else {
            other
        };
        self.representatives[bucket]
    }

    fn observe(&mut self, _: u32, _: u32) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(input: u32, output: u32) -> Request {
        Request::new(0, 0.0, input, output)
    }

    #[test]
    fn parse_round_trips_through_display() {
        for text in ["oracle", "noisy:0.3", "bucket-average:64", "class:0.9"] {
            let kind = PredictorKind::parse(text).unwrap();
            assert_eq!(kind.to_string(), text);
            assert_eq!(PredictorKind::parse(&kind.to_string()).unwrap(), kind);
        }
        assert_eq!(
            PredictorKind::parse("noisy").unwrap(),
            PredictorKind::Noisy {
                sigma: DEFAULT_NOISE_SIGMA
            }
        );
        for bad in [
            "psychic",
            "noisy:-1",
            "noisy:x",
            "class:1.5",
            "bucket-average:0",
            "oracle:1",
        ] {
            assert!(PredictorKind::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn oracle_is_exact_and_noisy_has_the_asked_spread() {
        let edges = BucketEdges::melange();
        let mut oracle = build(PredictorKind::Oracle, 1, &edges);
        assert_eq!(oracle.predict(&request(10, 321)), 321);
        assert_eq!(oracle.predict(&request(10, 0)), 1);
        let sigma = 0.4;
        let mut noisy = build(PredictorKind::Noisy { sigma }, 1, &edges);
        let logs: Vec<f64> = (0..20_000)
            .map(|_| (f64::from(noisy.predict(&request(10, 1000))) / 1000.0).ln())
            .collect();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        let sd = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
        assert!(
            mean.abs() < 0.02,
            "median factor should be 1: mean log {mean}"
        );
        assert!((sd - sigma).abs() < 0.02, "log spread {sd} vs {sigma}");
    }

    #[test]
    fn bucket_average_only_learns_from_completions() {
        let edges = BucketEdges::melange();
        let mut average = build(PredictorKind::BucketAverage { prior_tokens: 77 }, 0, &edges);
        // Nothing completed: the prior, whatever the request's true length.
        assert_eq!(average.predict(&request(50, 900)), 77);
        average.observe(50, 100);
        average.observe(60, 300);
        // Same input bucket (26-100): its mean.
        assert_eq!(average.predict(&request(70, 5)), 200);
        // Another bucket with no completion yet: the mean over all completions.
        assert_eq!(average.predict(&request(3000, 5)), 200);
        average.observe(3000, 1000);
        assert_eq!(average.predict(&request(2500, 5)), 1000);
        assert_eq!(average.predict(&request(70, 5)), 200);
    }

    #[test]
    fn class_predictor_is_right_at_the_asked_rate() {
        let edges = BucketEdges::melange();
        for accuracy in [0.0, 0.3, 0.8, 1.0] {
            let mut class = build(PredictorKind::Class { accuracy }, 5, &edges);
            let n = 20_000;
            let mut right = 0;
            for _ in 0..n {
                // 300 tokens lie in bucket 251-500, whose midpoint is 375.
                let predicted = class.predict(&request(10, 300));
                right += u32::from(predicted == 375);
                assert!(
                    [13, 63, 175, 375, 750, 1500].contains(&predicted),
                    "{predicted} is no bucket midpoint"
                );
            }
            let rate = f64::from(right) / f64::from(n);
            assert!((rate - accuracy).abs() < 0.015, "{accuracy}: {rate}");
        }
    }
}
