//! Trace statistics, and the trace-or-preset entry points the CLI uses.

use std::path::PathBuf;

use workloads::Request;
use workloads::histogram::BucketEdges;
use workloads::presets;
use workloads::source::{self, Transforms};
use workloads::stats::{TraceStats, quantile_sorted};
use workloads::trace::{ReadOptions, TraceReader};
use workloads::transform::OverLimit;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn quantiles_follow_numpys_linear_rule() {
    let values = [1, 2, 3, 4, 10];
    assert_eq!(quantile_sorted(&values, 0.5), 3.0);
    assert!((quantile_sorted(&values, 0.9) - 7.6).abs() < 1e-12);
    assert_eq!(quantile_sorted(&values, 1.0), 10.0);
}

#[test]
fn stats_of_a_small_stream_are_exact() {
    let requests = vec![
        Request::new(0, 0.0, 10, 1),
        Request::new(1, 1.0, 20, 2),
        Request::new(2, 3.0, 30, 3),
    ];
    let stats = TraceStats::of(&requests, BucketEdges::melange());
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.span_s, 3.0);
    assert!((stats.mean_rate_rps - 2.0 / 3.0).abs() < 1e-12);
    // Gaps 1 and 2: mean 1.5, population std 0.5.
    assert!((stats.interarrival_cv - 0.5 / 1.5).abs() < 1e-12);
    let input = stats.input_tokens.as_ref().unwrap();
    assert_eq!(
        (input.mean, input.median, input.min, input.max),
        (20.0, 20.0, 10, 30)
    );
    let text = stats.to_string();
    assert!(
        text.contains("req/s") && text.contains("tokens") && text.contains(" s "),
        "{text}"
    );
}

#[test]
fn stats_of_an_empty_stream_do_not_divide_by_zero() {
    let stats = TraceStats::of(&[], BucketEdges::melange());
    assert_eq!(
        (stats.requests, stats.mean_rate_rps, stats.interarrival_cv),
        (0, 0.0, 0.0)
    );
    assert!(stats.input_tokens.is_none());
    assert!(!stats.to_string().is_empty());
}

#[test]
fn trace_stats_apply_transforms_and_report_counts() {
    let transforms = Transforms {
        context_limit: Some((10_000, OverLimit::Drop)),
        ..Default::default()
    };
    let summary = source::trace_stats(
        &fixture("normalized.csv"),
        &ReadOptions::default(),
        &transforms,
        BucketEdges::melange(),
    )
    .unwrap();
    assert_eq!(summary.stats.requests, 3);
    assert_eq!(summary.dropped, 1);
    assert_eq!(summary.read.as_ref().unwrap().rows_read, 4);
    assert!(summary.units.contains("seconds") && summary.units.contains("tokens"));

    let windowed = Transforms {
        window_s: Some((0.4, 1.0)),
        rate_factor: Some(2.0),
        ..Default::default()
    };
    let summary = source::trace_stats(
        &fixture("normalized.csv"),
        &ReadOptions::default(),
        &windowed,
        BucketEdges::melange(),
    )
    .unwrap();
    assert_eq!(summary.stats.requests, 2);
    assert_eq!(summary.stats.span_s, 0.0);
    assert!(
        source::trace_stats(
            &fixture("normalized.csv"),
            &ReadOptions::default(),
            &Transforms {
                rate_factor: Some(0.0),
                ..Default::default()
            },
            BucketEdges::melange()
        )
        .is_err()
    );
}

/// Arrivals past the simulator's clock (about 31 years after the first) are errors, whether
/// written in the file or made by a tiny rate factor, instead of infinite spans and rates of 0.
#[test]
fn arrivals_beyond_the_clock_are_errors_naming_the_line_or_factor() {
    let err = source::trace_stats(
        &fixture("bad/far_arrival.csv"),
        &ReadOptions::default(),
        &Transforms::default(),
        BucketEdges::melange(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("far_arrival.csv:4") && err.contains("1e9 s"),
        "{err}"
    );
    let err = source::trace_stats(
        &fixture("normalized.csv"),
        &ReadOptions::default(),
        &Transforms {
            rate_factor: Some(1e-308),
            ..Default::default()
        },
        BucketEdges::melange(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("rate factor") && err.contains("1e9 s"),
        "{err}"
    );
}

#[test]
fn trace_stats_surface_reader_errors() {
    let err = source::trace_stats(
        &fixture("bad/non_numeric.csv"),
        &ReadOptions::default(),
        &Transforms::default(),
        BucketEdges::melange(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("non_numeric.csv:3:2"), "{err}");
    let sorted = ReadOptions {
        allow_unsorted: true,
        ..Default::default()
    };
    let summary = source::trace_stats(
        &fixture("bad/decreasing.csv"),
        &sorted,
        &Transforms::default(),
        BucketEdges::melange(),
    )
    .unwrap();
    assert!(summary.load.as_ref().unwrap().reordered);
    assert_eq!(summary.stats.span_s, 6.0);
}

#[test]
fn preset_stats_match_the_stream() {
    let preset = presets::get("sharegpt").unwrap();
    let summary = source::preset_stats(
        &preset,
        10.0,
        100.0,
        5,
        &Transforms::default(),
        BucketEdges::melange(),
    )
    .unwrap();
    let direct: Vec<Request> = preset.stream(10.0, 100.0, 5).unwrap().collect();
    assert_eq!(
        summary.stats,
        TraceStats::of(&direct, BucketEdges::melange())
    );
    assert_eq!(summary.generated.as_ref().unwrap().seed, 5);
}

#[test]
fn generate_writes_a_trace_that_reads_back_identically() {
    let dir = std::env::temp_dir().join(format!("workloads-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["gen.csv", "gen.parquet"] {
        let path = dir.join(name);
        let report = source::generate("arena", 20.0, 60.0, 3, &path).unwrap();
        let expected: Vec<Request> = presets::get("arena")
            .unwrap()
            .stream(20.0, 60.0, 3)
            .unwrap()
            .collect();
        assert_eq!(report.requests, expected.len() as u64);
        let back: Vec<Request> = TraceReader::open(&path, &ReadOptions::default())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // Rebasing moves the first arrival to 0; lengths and gaps are unchanged.
        let first = expected[0].arrival_s;
        assert_eq!(back.len(), expected.len());
        for (got, want) in back.iter().zip(&expected) {
            assert_eq!(
                (got.input_tokens, got.output_tokens),
                (want.input_tokens, want.output_tokens)
            );
            assert!((got.arrival_s - (want.arrival_s - first)).abs() < 1e-9);
        }
    }
    assert!(source::generate("no-such-preset", 1.0, 1.0, 0, &dir.join("x.csv")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A context limit under two tokens was raised to two while the output claimed the limit given.
#[test]
fn a_context_limit_under_two_tokens_is_an_error() {
    let err = source::trace_stats(
        &fixture("normalized.csv"),
        &ReadOptions::default(),
        &Transforms {
            context_limit: Some((1, OverLimit::Clip)),
            ..Default::default()
        },
        BucketEdges::melange(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("context limit") && err.contains("at least 2"),
        "{err}"
    );
}
