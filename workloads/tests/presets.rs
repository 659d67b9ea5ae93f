//! Presets: every one builds, streams at its rate with its length means (5 standard errors), and
//! its tables reproduce the published statistics they were computed from.

use rand::SeedableRng;
use rand_pcg::Pcg64;
use workloads::Request;
use workloads::presets::{self, Burstiness};

const Z: f64 = 5.0;

#[test]
fn all_presets_are_listed_with_sources() {
    let all = presets::all();
    let names: Vec<&str> = all.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        vec![
            "azure-conv-2023",
            "azure-code-2023",
            "mooncake-conversation",
            "sharegpt",
            "arena",
            "pubmed",
            "mixed"
        ]
    );
    for preset in &all {
        assert!(
            !preset.description.is_empty() && preset.source.len() > 40,
            "{}",
            preset.name
        );
        assert_eq!(presets::get(preset.name).unwrap(), *preset);
    }
}

/// Published means the presets must reproduce: (preset, mean input, mean output, relative tolerance).
/// Azure and Mooncake: ../shared/traces/stats.json; ShareGPT: its README (vLLM filter);
/// arena/pubmed: Mélange (Griggs et al. 2024). The tolerance covers the error of interpolating
/// linearly between 26 quantiles; arena's input is the LMSYS sample's 61.7 (see the preset).
const PUBLISHED: &[(&str, f64, f64, f64)] = &[
    ("azure-conv-2023", 1154.7, 211.1, 0.03),
    ("azure-code-2023", 2047.8, 27.9, 0.03),
    ("mooncake-conversation", 12035.1, 342.6, 0.03),
    ("sharegpt", 110.5, 277.2, 0.03),
    ("arena", 61.7, 196.0, 0.03),
    ("pubmed", 4000.0, 314.0, 1e-9),
];

#[test]
fn preset_length_models_reproduce_published_means() {
    for (name, input, output, tolerance) in PUBLISHED {
        let (model_input, model_output) = presets::get(name).unwrap().mean_lengths();
        println!(
            "{name}: model means {model_input:.1} / {model_output:.1}, published {input} / {output}"
        );
        assert!(
            (model_input / input - 1.0).abs() <= *tolerance,
            "{name} input {model_input} vs {input}"
        );
        assert!(
            (model_output / output - 1.0).abs() <= *tolerance,
            "{name} output {model_output} vs {output}"
        );
    }
    let (mixed_input, mixed_output) = presets::get("mixed").unwrap().mean_lengths();
    let arena = presets::get("arena").unwrap().mean_lengths();
    let pubmed = presets::get("pubmed").unwrap().mean_lengths();
    assert!((mixed_input - (0.8 * arena.0 + 0.2 * pubmed.0)).abs() < 1e-6);
    assert!((mixed_output - (0.8 * arena.1 + 0.2 * pubmed.1)).abs() < 1e-6);
}

fn stream_stats(requests: &[Request]) -> (f64, f64) {
    let n = requests.len() as f64;
    let input = requests
        .iter()
        .map(|r| f64::from(r.input_tokens))
        .sum::<f64>()
        / n;
    let output = requests
        .iter()
        .map(|r| f64::from(r.output_tokens))
        .sum::<f64>()
        / n;
    (input, output)
}

#[test]
fn preset_streams_match_rate_and_length_means() {
    for preset in presets::all() {
        let rate = 100.0;
        let duration = 2_000.0;
        let requests: Vec<Request> = preset.stream(rate, duration, 21).unwrap().collect();
        let n = requests.len() as f64;
        let expected = rate * duration;
        // Count of a renewal process over a long window: variance ≈ λT·CV².
        let cv = match preset.burstiness {
            Burstiness::Poisson => 1.0,
            Burstiness::Gamma { cv } => cv,
        };
        let count_tol = Z * (expected * cv * cv).sqrt();
        assert!(
            (n - expected).abs() < count_tol,
            "{}: {n} requests vs {expected} ± {count_tol}",
            preset.name
        );
        let ((mean_in, var_in), (mean_out, var_out)) = preset.lengths.moments();
        let (got_in, got_out) = stream_stats(&requests);
        let tol_in = Z * (var_in / n).sqrt() + 0.5;
        let tol_out = Z * (var_out / n).sqrt() + 0.5;
        println!(
            "{}: {n} requests, input {got_in:.1} (model {mean_in:.1} ± {tol_in:.1}), output {got_out:.1} (model {mean_out:.1} ± {tol_out:.1})",
            preset.name
        );
        assert!(
            (got_in - mean_in).abs() < tol_in,
            "{} input {got_in} vs {mean_in} ± {tol_in}",
            preset.name
        );
        assert!(
            (got_out - mean_out).abs() < tol_out,
            "{} output {got_out} vs {mean_out} ± {tol_out}",
            preset.name
        );
    }
}

#[test]
fn sample_lengths_is_seeded() {
    let preset = presets::get("azure-conv-2023").unwrap();
    let mut a = Pcg64::seed_from_u64(3);
    let mut b = Pcg64::seed_from_u64(3);
    let first: Vec<(u32, u32)> = (0..50).map(|_| preset.sample_lengths(&mut a)).collect();
    let second: Vec<(u32, u32)> = (0..50).map(|_| preset.sample_lengths(&mut b)).collect();
    assert_eq!(first, second);
    assert!(
        first
            .iter()
            .all(|(i, o)| (2..=14050).contains(i) && (7..=1000).contains(o))
    );
}
