//! Statistics of the real traces in ../shared/traces match their README and stats.json.
//! The repository does not ship these files: each test says so and returns when they are absent.

use std::path::{Path, PathBuf};

use workloads::histogram::BucketEdges;
use workloads::source::{self, Transforms};
use workloads::trace::{ReadOptions, Spread, TraceFormat};

fn shared(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/traces")
        .join(relative);
    if path.exists() {
        Some(path)
    } else {
        println!(
            "SKIPPED: {} is absent (../shared is not beside the checkout); nothing checked",
            path.display()
        );
        None
    }
}

fn near(got: f64, want: f64, relative: f64) -> bool {
    (got - want).abs() <= relative * want.abs()
}

#[test]
fn azure_2023_conv_matches_its_readme() {
    let Some(path) = shared("azure2023/AzureLLMInferenceTrace_conv.csv") else {
        return;
    };
    let summary = source::trace_stats(
        &path,
        &ReadOptions::default(),
        &Transforms::default(),
        BucketEdges::melange(),
    )
    .unwrap();
    let stats = &summary.stats;
    let input = stats.input_tokens.as_ref().unwrap();
    let output = stats.output_tokens.as_ref().unwrap();
    println!("{stats}");
    // README / stats.json: 19,366 requests; 3501.7 s; 5.53 req/s; CV 1.094; input mean 1154.7,
    // median 1020, p90 2734.5, p99 4142, max 14050; output mean 211.1, median 129, p99 601, max 1000.
    assert_eq!(stats.requests, 19_366);
    assert_eq!(summary.read.as_ref().unwrap().rows_skipped_bad, 0);
    assert!(near(stats.span_s, 3501.7, 1e-4), "{}", stats.span_s);
    assert!(
        near(stats.mean_rate_rps, 5.53, 1e-3),
        "{}",
        stats.mean_rate_rps
    );
    assert!(
        near(stats.interarrival_cv, 1.094, 1e-3),
        "{}",
        stats.interarrival_cv
    );
    assert!(near(input.mean, 1154.7, 1e-4), "{}", input.mean);
    assert_eq!(
        (input.median, input.p90, input.p99, input.max),
        (1020.0, 2734.5, 4142.0, 14050)
    );
    assert!(near(output.mean, 211.1, 1e-3), "{}", output.mean);
    assert_eq!(
        (output.median, output.p99, output.max),
        (129.0, 601.0, 1000)
    );
    assert_eq!(stats.histogram.total(), 19_366);
}

#[test]
fn azure_2023_code_raw_and_normalized_agree() {
    let (Some(raw), Some(normalized)) = (
        shared("azure2023/AzureLLMInferenceTrace_code.csv"),
        shared("normalized/azure2023_code.csv"),
    ) else {
        return;
    };
    let edges = BucketEdges::melange;
    let a = source::trace_stats(
        &raw,
        &ReadOptions::default(),
        &Transforms::default(),
        edges(),
    )
    .unwrap()
    .stats;
    let b = source::trace_stats(
        &normalized,
        &ReadOptions::default(),
        &Transforms::default(),
        edges(),
    )
    .unwrap()
    .stats;
    assert_eq!(a.requests, 8_819);
    assert_eq!(a.requests, b.requests);
    assert!(
        near(a.interarrival_cv, 13.151, 1e-3),
        "{}",
        a.interarrival_cv
    );
    assert!(near(a.span_s, b.span_s, 1e-6));
    assert_eq!(a.histogram, b.histogram);
}

#[test]
fn mooncake_conversation_reads_and_spreads() {
    let Some(path) = shared("mooncake/conversation_trace.jsonl") else {
        return;
    };
    let plain = source::trace_stats(
        &path,
        &ReadOptions::default(),
        &Transforms::default(),
        BucketEdges::melange(),
    )
    .unwrap()
    .stats;
    assert_eq!(plain.requests, 12_031);
    assert!(near(
        plain.input_tokens.as_ref().unwrap().mean,
        12_035.1,
        1e-4
    ));
    assert!(
        near(plain.interarrival_cv, 3.034, 1e-3),
        "{}",
        plain.interarrival_cv
    );
    // Input above 16k tokens is Mélange overflow: counted, not dropped.
    assert_eq!(plain.histogram.total(), 12_031);
    assert!(plain.histogram.overflow > 1_000);
    let spread = ReadOptions {
        format: Some(TraceFormat::Mooncake),
        spread: Some(Spread {
            window_s: 3.0,
            seed: 1,
        }),
        ..Default::default()
    };
    let spread = source::trace_stats(
        &path,
        &spread,
        &Transforms::default(),
        BucketEdges::melange(),
    )
    .unwrap()
    .stats;
    assert_eq!(spread.requests, 12_031);
    println!(
        "Mooncake inter-arrival CV: {:.3} as recorded, {:.3} spread over 3 s windows",
        plain.interarrival_cv, spread.interarrival_cv
    );
    assert!(
        spread.interarrival_cv < 1.5,
        "spreading removes the artificial 3 s bursts"
    );
}
