//! Trace readers on small hand-written fixtures: every format, rebasing, failed rows,
//! spreading, sorting, and every kind of bad input.

use std::path::PathBuf;

use workloads::trace::{self, ReadOptions, Spread, TraceFormat, TraceReader};
use workloads::{Request, TraceError};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read_all(name: &str, options: &ReadOptions) -> Result<Vec<Request>, TraceError> {
    TraceReader::open(fixture(name), options)?.collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn normalized_csv_rebases_to_zero_and_ignores_extra_columns() {
    let requests = read_all("normalized.csv", &ReadOptions::default()).unwrap();
    let arrivals: Vec<f64> = requests.iter().map(|r| r.arrival_s).collect();
    assert_eq!(arrivals, vec![0.0, 0.5, 0.5, 1.75]);
    assert_eq!(requests[1].input_tokens, 2000);
    assert_eq!(requests[1].output_tokens, 300);
    assert_eq!(
        requests.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        trace::detect_format(&fixture("normalized.csv")).unwrap(),
        TraceFormat::Normalized
    );
}

#[test]
fn azure_2023_timestamps_parse_across_midnight() {
    let requests = read_all("azure2023.csv", &ReadOptions::default()).unwrap();
    assert_eq!(requests.len(), 4);
    assert!(close(requests[1].arrival_s, 50.995169 - 46.68059));
    // 23:59:59.5 on the 16th to 00:00:00.25 on the 17th is 0.75 s.
    assert!(close(requests[3].arrival_s - requests[2].arrival_s, 0.75));
    assert_eq!(
        (requests[0].input_tokens, requests[0].output_tokens),
        (374, 44)
    );
}

#[test]
fn azure_2024_timestamps_with_zone_and_without_fraction_parse() {
    let requests = read_all("azure2024.csv", &ReadOptions::default()).unwrap();
    assert_eq!(
        trace::detect_format(&fixture("azure2024.csv")).unwrap(),
        TraceFormat::Azure
    );
    assert!(close(requests[1].arrival_s, 1.0 - 0.009930));
    // 02:00:02.5+02:00 is 00:00:02.5 UTC.
    assert!(close(requests[2].arrival_s, 2.5 - 0.009930));
}

#[test]
fn burstgpt_failed_rows_are_counted_and_excluded_unless_asked() {
    let mut reader = TraceReader::open(fixture("burstgpt.csv"), &ReadOptions::default()).unwrap();
    let requests: Vec<Request> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(reader.counts().rows_read, 4);
    assert_eq!(reader.counts().failed_excluded, 2);
    assert_eq!(requests[1].arrival_s, 113.0);

    let options = ReadOptions {
        include_failed: true,
        ..Default::default()
    };
    let mut reader = TraceReader::open(fixture("burstgpt.csv"), &options).unwrap();
    let requests: Vec<Request> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(requests.len(), 4);
    assert_eq!(reader.counts().failed_included, 2);
    assert_eq!(requests[1].output_tokens, 0);
}

#[test]
fn burstgpt_release_3_reads_session_ids() {
    let requests = read_all(
        "burstgpt_release3.csv",
        &ReadOptions {
            include_failed: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(requests[0].session_id, Some(1001));
    assert_eq!(requests[2].session_id, Some(1001));
    let hashed = requests[1].session_id.unwrap();
    assert_ne!(hashed, 1001);
    // Same text, same id: the hash is stable.
    let again = read_all(
        "burstgpt_release3.csv",
        &ReadOptions {
            include_failed: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(again[1].session_id, Some(hashed));
}

#[test]
fn mooncake_reads_milliseconds_and_prefix_hashes() {
    let requests = read_all("mooncake.jsonl", &ReadOptions::default()).unwrap();
    assert_eq!(requests.len(), 6, "the blank line is not a row");
    assert_eq!(requests[3].arrival_s, 3.0);
    assert_eq!(requests[5].arrival_s, 6.0);
    assert_eq!(requests[1].prefix_hashes.len(), 15);
    assert!(requests[5].prefix_hashes.is_empty());
}

#[test]
fn mooncake_spreading_stays_in_each_window_sorted_and_seeded() {
    let options = ReadOptions {
        spread: Some(Spread {
            window_s: 3.0,
            seed: 7,
        }),
        ..Default::default()
    };
    let requests = read_all("mooncake.jsonl", &options).unwrap();
    assert_eq!(requests.len(), 6);
    for pair in requests.windows(2) {
        assert!(pair[1].arrival_s >= pair[0].arrival_s);
    }
    assert!(
        requests[..3]
            .iter()
            .all(|r| (0.0..3.0).contains(&r.arrival_s))
    );
    assert!(
        requests[3..5]
            .iter()
            .all(|r| (3.0..6.0).contains(&r.arrival_s))
    );
    assert!(
        requests[..3].iter().any(|r| r.arrival_s > 0.0),
        "a bucket of three is spread, not left at 0"
    );
    // Lengths stay attached to their rows (spreading sorts offsets, not rows).
    assert_eq!(requests[0].input_tokens, 6758);
    assert_eq!(read_all("mooncake.jsonl", &options).unwrap(), requests);
    let other = ReadOptions {
        spread: Some(Spread {
            window_s: 3.0,
            seed: 8,
        }),
        ..Default::default()
    };
    assert_ne!(read_all("mooncake.jsonl", &other).unwrap(), requests);
    // A window that would quietly turn spreading off, or send arrivals to infinity, is refused.
    for window_s in [-1.0, 0.0, f64::NAN, f64::INFINITY] {
        let bad = ReadOptions {
            spread: Some(Spread { window_s, seed: 7 }),
            ..Default::default()
        };
        let err = TraceReader::open(fixture("mooncake.jsonl"), &bad)
            .err()
            .unwrap();
        assert!(matches!(err, TraceError::BadOption { .. }), "{err}");
        assert!(
            err.to_string().contains("mooncake.jsonl") && err.to_string().contains("spread window"),
            "{err}"
        );
    }
}

#[test]
fn forcing_a_format_checks_its_columns() {
    let options = ReadOptions {
        format: Some(TraceFormat::Azure),
        ..Default::default()
    };
    let err = TraceReader::open(fixture("normalized.csv"), &options)
        .err()
        .unwrap();
    assert!(
        matches!(err, TraceError::MissingColumn { ref column, .. } if column == "TIMESTAMP"),
        "{err}"
    );
}

#[test]
fn load_reports_rows_and_rebasing() {
    let loaded = trace::load(fixture("burstgpt.csv"), &ReadOptions::default()).unwrap();
    assert_eq!(loaded.report.requests, 2);
    assert_eq!(loaded.report.counts.failed_excluded, 2);
    assert_eq!(loaded.report.counts.origin.as_deref(), Some("5"));
    let text = loaded.report.to_string();
    assert!(text.contains("failed requests excluded: 2"), "{text}");
    assert!(text.contains("seconds"), "{text}");
}

#[test]
fn parquet_round_trips_through_polars() {
    let dir = std::env::temp_dir().join(format!("workloads-parquet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.parquet");
    let source = read_all("normalized.csv", &ReadOptions::default()).unwrap();
    let written = trace::write_normalized(&path, source.clone()).unwrap();
    assert_eq!(written, 4);
    assert_eq!(trace::detect_format(&path).unwrap(), TraceFormat::Parquet);
    let back = TraceReader::open(&path, &ReadOptions::default())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(back, source);
    // Sessions and SLO classes survive too (a request without a session stays without one).
    let mut tagged = source.clone();
    tagged[0].session_id = Some(7);
    tagged[1].session_id = Some(7);
    tagged[2].slo_class = 3;
    tagged[3].session_id = Some(u64::MAX);
    trace::write_normalized(&path, tagged.clone()).unwrap();
    let back = TraceReader::open(&path, &ReadOptions::default())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(back, tagged);
    // CSV has no columns for them: writing them there is an error, not a silent loss.
    let csv = dir.join("tagged.csv");
    let err = trace::write_normalized(&csv, tagged.clone())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tagged.csv") && err.contains("session_id 7") && err.contains(".parquet"),
        "{err}"
    );
    assert!(!csv.exists());
    assert_eq!(trace::write_normalized(&csv, source.clone()).unwrap(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_parquet_slo_class_out_of_range_is_a_bad_field() {
    use polars::prelude::*;
    let dir = std::env::temp_dir().join(format!("workloads-parquet-class-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.parquet");
    let mut frame = DataFrame::new_infer_height(vec![
        Column::new("arrival_s".into(), [0.0, 1.0]),
        Column::new("input_tokens".into(), [10_u32, 20]),
        Column::new("output_tokens".into(), [5_u32, 6]),
        Column::new("slo_class".into(), [1_i64, 70_000]),
    ])
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut frame)
        .unwrap();
    let err = TraceReader::open(&path, &ReadOptions::default())
        .unwrap()
        .filter_map(Result::err)
        .next()
        .expect("an error");
    let (line, _, found, expected) = bad_field(&err);
    assert_eq!((line, found.as_str()), (2, "70000"), "{err}");
    assert!(expected.contains("0..=65535"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn csv_round_trips_exactly() {
    let dir = std::env::temp_dir().join(format!("workloads-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.csv");
    let source = vec![
        Request::new(0, 0.0, 5, 6),
        Request::new(1, 0.1 + 0.2, 7, 8),
        Request::new(2, 1e-7 + 3.0, 9, 10),
    ];
    trace::write_normalized(&path, source.clone()).unwrap();
    let back = TraceReader::open(&path, &ReadOptions::default())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(back, source);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- bad input ----

fn first_error(name: &str, options: &ReadOptions) -> TraceError {
    match TraceReader::open(fixture(name), options) {
        Err(err) => err,
        Ok(reader) => reader.filter_map(Result::err).next().expect("an error"),
    }
}

fn bad_field(err: &TraceError) -> (u64, u64, String, String) {
    match err {
        TraceError::BadField {
            line,
            column,
            found,
            expected,
            ..
        } => (*line, *column, found.clone(), expected.clone()),
        other => panic!("expected a bad field, got {other}"),
    }
}

#[test]
fn empty_file_is_an_error_naming_the_file() {
    for name in ["bad/empty.csv", "bad/blank_lines.csv"] {
        let err = first_error(name, &ReadOptions::default());
        assert!(matches!(err, TraceError::Empty { .. }), "{name}: {err}");
        assert!(
            err.to_string().contains(name.trim_start_matches("bad/")),
            "{err}"
        );
    }
    let forced = ReadOptions {
        format: Some(TraceFormat::Mooncake),
        ..Default::default()
    };
    assert!(matches!(
        first_error("bad/empty.csv", &forced),
        TraceError::Empty { .. }
    ));
}

#[test]
fn missing_column_is_named() {
    let options = ReadOptions {
        format: Some(TraceFormat::Normalized),
        ..Default::default()
    };
    let err = first_error("bad/missing_column.csv", &options);
    assert!(
        matches!(err, TraceError::MissingColumn { ref column, .. } if column == "output_tokens"),
        "{err}"
    );
    // Without forcing, detection fails and says what headers it knows.
    let err = first_error("bad/missing_column.csv", &ReadOptions::default());
    assert!(matches!(err, TraceError::UnknownFormat { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("arrival_s,input_tokens,output_tokens"),
        "{err}"
    );
}

#[test]
fn non_numeric_length_names_line_column_found_and_expected() {
    let err = first_error("bad/non_numeric.csv", &ReadOptions::default());
    let (line, column, found, expected) = bad_field(&err);
    assert_eq!((line, column, found.as_str()), (3, 2, "ten"));
    assert!(expected.contains("non-negative integer"), "{expected}");
    let text = err.to_string();
    assert!(
        text.contains("non_numeric.csv:3:2") && text.contains("input_tokens"),
        "{text}"
    );
}

#[test]
fn negative_length_is_rejected() {
    let (line, column, found, _) =
        bad_field(&first_error("bad/negative.csv", &ReadOptions::default()));
    assert_eq!((line, column, found.as_str()), (3, 3, "-5"));
    let err = first_error("bad/negative.jsonl", &ReadOptions::default());
    let (line, _, found, expected) = bad_field(&err);
    assert_eq!(line, 1);
    assert!(found.contains("-10"), "{found}");
    assert!(expected.contains("u64"), "{expected}");
}

#[test]
fn nan_timestamp_is_rejected() {
    let (line, column, found, expected) =
        bad_field(&first_error("bad/nan_time.csv", &ReadOptions::default()));
    assert_eq!((line, column, found.as_str()), (3, 1, "NaN"));
    assert!(expected.contains("finite"), "{expected}");
    let (line, column, found, _) = bad_field(&first_error(
        "bad/azure_bad_time.csv",
        &ReadOptions::default(),
    ));
    assert_eq!((line, column), (3, 1));
    assert!(found.contains("25:15"), "{found}");
}

#[test]
fn decreasing_timestamps_are_an_error_unless_sorting() {
    let err = first_error("bad/decreasing.csv", &ReadOptions::default());
    assert!(matches!(err, TraceError::Unsorted { line: 4, .. }), "{err}");
    assert!(err.to_string().contains("--sort"), "{err}");

    let options = ReadOptions {
        allow_unsorted: true,
        ..Default::default()
    };
    let loaded = trace::load(fixture("bad/decreasing.csv"), &options).unwrap();
    let arrivals: Vec<f64> = loaded.requests.iter().map(|r| r.arrival_s).collect();
    assert_eq!(arrivals, vec![0.0, 3.0, 5.0, 6.0]);
    assert_eq!(
        loaded.requests.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert!(loaded.report.reordered);
}

#[test]
fn truncated_json_line_names_its_line() {
    let err = first_error("bad/truncated.jsonl", &ReadOptions::default());
    let (line, column, _, expected) = bad_field(&err);
    assert_eq!(line, 2);
    assert!(column > 0);
    assert!(expected.contains("EOF"), "{expected}");
}

#[test]
fn wrong_delimiter_is_diagnosed() {
    let err = first_error("bad/semicolon.csv", &ReadOptions::default());
    assert!(matches!(err, TraceError::UnknownFormat { .. }), "{err}");
    assert!(err.to_string().contains("';'"), "{err}");
    let forced = ReadOptions {
        format: Some(TraceFormat::Normalized),
        ..Default::default()
    };
    let err = first_error("bad/semicolon.csv", &forced);
    assert!(err.to_string().contains("';'"), "{err}");
}

#[test]
fn huge_number_is_rejected_not_wrapped() {
    let (line, column, found, expected) =
        bad_field(&first_error("bad/huge.csv", &ReadOptions::default()));
    assert_eq!((line, column), (3, 2));
    assert_eq!(found, "99999999999999999999");
    assert!(expected.contains("4294967295"), "{expected}");
}

#[test]
fn short_row_names_the_missing_field() {
    let (line, column, _, expected) =
        bad_field(&first_error("bad/short_row.csv", &ReadOptions::default()));
    assert_eq!((line, column), (3, 3));
    assert!(expected.contains("3 comma-separated fields"), "{expected}");
}

#[test]
fn skip_bad_rows_counts_what_it_skips() {
    let options = ReadOptions {
        skip_bad_rows: true,
        ..Default::default()
    };
    for (name, good, bad) in [
        ("bad/non_numeric.csv", 2, 1),
        ("bad/negative.csv", 1, 1),
        ("bad/nan_time.csv", 2, 1),
        ("bad/huge.csv", 1, 1),
        ("bad/short_row.csv", 2, 1),
        ("bad/truncated.jsonl", 1, 1),
    ] {
        let mut reader = TraceReader::open(fixture(name), &options).unwrap();
        let requests: Vec<Request> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(requests.len(), good, "{name}");
        assert_eq!(reader.counts().rows_skipped_bad, bad, "{name}");
        assert_eq!(reader.counts().rows_read, good as u64 + bad, "{name}");
    }
}

#[test]
fn a_reader_stops_after_its_first_unskipped_error() {
    let reader =
        TraceReader::open(fixture("bad/non_numeric.csv"), &ReadOptions::default()).unwrap();
    let items: Vec<_> = reader.collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok() && items[1].is_err());
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = TraceReader::open(fixture("no-such-file.csv"), &ReadOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, TraceError::Io { .. }));
    assert!(err.to_string().contains("no-such-file.csv"));
}

/// Format detection looks past blank lines before the header, as the readers do (it called such
/// a file empty), and a JSON-lines file may start with a byte-order mark, as a CSV file may.
#[test]
fn detection_skips_leading_blank_lines_and_jsonl_takes_a_byte_order_mark() {
    let requests = read_all("leading_blank_lines.csv", &ReadOptions::default()).unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].input_tokens, 200);
    let requests = read_all("bom.jsonl", &ReadOptions::default()).unwrap();
    assert_eq!(requests.len(), 2);
    assert!(close(requests[1].arrival_s, 1.0));
    assert_eq!(requests[1].output_tokens, 6);
}
