//! Property tests: every reader turns arbitrary bytes into requests or errors, never a panic,
//! and valid normalized rows round-trip.

use std::io::Write;
use std::path::PathBuf;

use proptest::prelude::*;
use workloads::Request;
use workloads::trace::{self, ReadOptions, TraceFormat, TraceReader};

fn temp_file(tag: &str, contents: &[u8]) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Files straight in the temp dir (each test removes its own), so no empty folder is left.
    let name = format!(
        "workloads-prop-{}-{tag}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let path = std::env::temp_dir().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(contents)
        .unwrap();
    path
}

/// Reads everything the reader yields (bounded), with and without skipping bad rows.
fn drain(path: &PathBuf, format: Option<TraceFormat>) {
    for skip_bad_rows in [false, true] {
        for allow_unsorted in [false, true] {
            let options = ReadOptions {
                format,
                skip_bad_rows,
                allow_unsorted,
                ..Default::default()
            };
            if let Ok(reader) = TraceReader::open(path, &options) {
                for request in reader.take(10_000).flatten() {
                    assert!(request.arrival_s.is_finite());
                }
            }
        }
    }
    let _ = trace::load(
        path,
        &ReadOptions {
            format,
            allow_unsorted: true,
            skip_bad_rows: true,
            ..Default::default()
        },
    );
}

fn header_strategy() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("arrival_s,input_tokens,output_tokens\n"),
        Just("TIMESTAMP,ContextTokens,GeneratedTokens\n"),
        Just("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"),
        Just(
            "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        ),
        Just(""),
    ]
}

/// Fields that are near-valid: numbers, signs, dates, junk.
fn field_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u32>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        Just("2023-11-16 18:17:03.9799600".to_string()),
        Just("2024-05-10 00:00:00.009930+00:00".to_string()),
        "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,14})?([+-][0-9]{2}:[0-9]{2})?",
        "[ -~]{0,12}",
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn csv_readers_never_panic_on_structured_junk(
        header in header_strategy(),
        rows in prop::collection::vec(prop::collection::vec(field_strategy(), 0..10), 0..20),
        forced in prop::option::of(prop_oneof![Just(TraceFormat::Normalized), Just(TraceFormat::Azure), Just(TraceFormat::BurstGpt)]),
    ) {
        let mut text = header.to_string();
        for row in rows {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        let path = temp_file("csv", text.as_bytes());
        drain(&path, forced);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn every_reader_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let path = temp_file("bytes", &bytes);
        drain(&path, None);
        for format in TraceFormat::ALL {
            drain(&path, Some(format));
        }
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn mooncake_reader_never_panics_on_mutated_lines(
        lines in prop::collection::vec((any::<i64>(), any::<i64>(), any::<i64>(), prop::collection::vec(any::<u64>(), 0..4), 0usize..80), 0..12)
    ) {
        let mut text = String::new();
        for (timestamp, input, output, hashes, cut) in lines {
            let line = format!(
                "{{\"timestamp\": {timestamp}, \"input_length\": {input}, \"output_length\": {output}, \"hash_ids\": {hashes:?}}}"
            );
            // Sometimes truncate a line, as an interrupted download would.
            let keep = if cut < 60 { line.len() } else { cut.min(line.len()) };
            text.push_str(&line[..keep]);
            text.push('\n');
        }
        let path = temp_file("jsonl", text.as_bytes());
        drain(&path, Some(TraceFormat::Mooncake));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn valid_normalized_rows_round_trip(
        mut rows in prop::collection::vec((0.0f64..1e7, any::<u32>(), any::<u32>()), 1..50)
    ) {
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let first = rows[0].0;
        let mut text = String::from("arrival_s,input_tokens,output_tokens\n");
        for (arrival, input, output) in &rows {
            text.push_str(&format!("{arrival},{input},{output}\n"));
        }
        let path = temp_file("valid", text.as_bytes());
        let requests: Vec<Request> = TraceReader::open(&path, &ReadOptions::default()).unwrap().collect::<Result<_, _>>().unwrap();
        std::fs::remove_file(path).unwrap();
        prop_assert_eq!(requests.len(), rows.len());
        for (request, (arrival, input, output)) in requests.iter().zip(&rows) {
            prop_assert_eq!(request.arrival_s, arrival - first);
            prop_assert_eq!((request.input_tokens, request.output_tokens), (*input, *output));
        }
    }
}
