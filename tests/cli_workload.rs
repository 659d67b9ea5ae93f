//! End-to-end tests of `medley workload presets|gen|stats`.

mod common;

use common::{
    TempDir, assert_close, count, fails, fixture, num, read, read_csv, succeeds, succeeds_json,
};
use serde_json::Value;

/// The presets the README lists.
const PRESETS: [&str; 7] = [
    "azure-conv-2023",
    "azure-code-2023",
    "mooncake-conversation",
    "sharegpt",
    "arena",
    "pubmed",
    "mixed",
];

/// One row of a normalized trace.
#[derive(Debug, Clone, Copy)]
struct Row {
    arrival_s: f64,
    input_tokens: u32,
    output_tokens: u32,
}

/// Reads `tests/fixtures/small_trace.csv` (the test's own parse, independent of medley's).
fn fixture_rows() -> Vec<Row> {
    let (header, rows) = read_csv(&fixture("small_trace.csv"));
    assert_eq!(header, ["arrival_s", "input_tokens", "output_tokens"]);
    rows.iter()
        .map(|r| Row {
            arrival_s: r[0].parse().unwrap(),
            input_tokens: r[1].parse().unwrap(),
            output_tokens: r[2].parse().unwrap(),
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Quantile with linear interpolation between order statistics (numpy's default).
fn quantile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = (sorted.len() - 1) as f64 * p;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    sorted[low] + (position - low as f64) * (sorted[high] - sorted[low])
}

/// Checks `workload stats` figures against the same figures computed from `rows`.
fn assert_stats_match(stats: &Value, rows: &[Row]) {
    assert_eq!(count(&stats["requests"], "requests"), rows.len() as u64);
    let span = rows.last().unwrap().arrival_s - rows[0].arrival_s;
    assert_close(num(&stats["span_s"], "span_s"), span, 1e-12, "span");
    assert_close(
        num(&stats["mean_rate_rps"], "rate"),
        (rows.len() - 1) as f64 / span,
        1e-12,
        "mean rate (n - 1) / span",
    );
    let gaps: Vec<f64> = rows
        .windows(2)
        .map(|w| w[1].arrival_s - w[0].arrival_s)
        .collect();
    let gap_mean = mean(&gaps);
    assert_close(
        num(&stats["interarrival_mean_s"], "gap mean"),
        gap_mean,
        1e-12,
        "inter-arrival mean",
    );
    let gap_std =
        (gaps.iter().map(|g| (g - gap_mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
    assert_close(
        num(&stats["interarrival_cv"], "cv"),
        gap_std / gap_mean,
        1e-9,
        "inter-arrival CV (population)",
    );
    for (key, values) in [
        (
            "input_tokens",
            rows.iter()
                .map(|r| f64::from(r.input_tokens))
                .collect::<Vec<_>>(),
        ),
        (
            "output_tokens",
            rows.iter().map(|r| f64::from(r.output_tokens)).collect(),
        ),
    ] {
        let summary = &stats[key];
        assert_close(num(&summary["mean"], key), mean(&values), 1e-12, key);
        assert_close(
            num(&summary["median"], key),
            quantile(&values, 0.5),
            1e-12,
            key,
        );
        assert_close(num(&summary["p90"], key), quantile(&values, 0.9), 1e-9, key);
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0, f64::max);
        assert_eq!(num(&summary["min"], key), min, "{key} min");
        assert_eq!(num(&summary["max"], key), max, "{key} max");
    }
}

/// Index of the bucket holding `tokens`: bucket i covers (edge[i-1], edge[i]]; None beyond.
fn bucket(edges: &[u64], tokens: u32) -> Option<usize> {
    edges.iter().position(|&edge| u64::from(tokens) <= edge)
}

#[test]
fn stats_of_a_small_trace_match_figures_computed_from_it() {
    let rows = fixture_rows();
    let path = fixture("small_trace.csv");
    let out = succeeds_json(["workload", "stats", path.to_str().unwrap(), "--json"]);
    let summary = &out["summary"];
    assert_eq!(summary["read"]["rows_read"], rows.len());
    assert_eq!(summary["read"]["rows_skipped_bad"], 0);
    assert_stats_match(&summary["stats"], &rows);

    // The Mélange size histogram: each request in its (input, output) bucket, or overflow.
    let melange = &out["melange"];
    let edges = |key: &str| -> Vec<u64> {
        melange[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| count(e, key))
            .collect()
    };
    let (input_edges, output_edges) = (edges("input_edges_tokens"), edges("output_edges_tokens"));
    let mut expected = vec![vec![0u64; output_edges.len()]; input_edges.len()];
    let mut overflow = 0;
    for row in &rows {
        match (
            bucket(&input_edges, row.input_tokens),
            bucket(&output_edges, row.output_tokens),
        ) {
            (Some(i), Some(j)) => expected[i][j] += 1,
            _ => overflow += 1,
        }
    }
    assert!(
        overflow > 0,
        "the fixture has a request beyond the last output edge"
    );
    let counts: Vec<Vec<u64>> = serde_json::from_value(melange["counts"].clone()).unwrap();
    assert_eq!(counts, expected);
    assert_eq!(melange["overflow_requests"], overflow);
    assert_eq!(melange["in_range_requests"], rows.len() as u64 - overflow);
    let fractions: Vec<Vec<f64>> =
        serde_json::from_value(melange["workload_distribution"].clone()).unwrap();
    let in_range = (rows.len() as u64 - overflow) as f64;
    for (fraction_row, count_row) in fractions.iter().zip(&counts) {
        for (fraction, n) in fraction_row.iter().zip(count_row) {
            assert_close(*fraction, *n as f64 / in_range, 1e-12, "bucket fraction");
        }
    }

    let text = succeeds(["workload", "stats", path.to_str().unwrap()]);
    assert!(text.contains("rows read: 10"), "{text}");
}

#[test]
fn stats_transforms_keep_drop_and_window_the_right_requests() {
    let rows = fixture_rows();
    let path = fixture("small_trace.csv");
    let path = path.to_str().unwrap();

    let first = succeeds_json(["workload", "stats", path, "--first", "4", "--json"]);
    assert_stats_match(&first["summary"]["stats"], &rows[..4]);

    // Arrivals in [1, 5) s, counted from the first row (reading rebases it to 0 s).
    let window = succeeds_json(["workload", "stats", path, "--window", "1", "5", "--json"]);
    let origin = rows[0].arrival_s;
    let in_window: Vec<Row> = rows
        .iter()
        .filter(|r| (1.0..5.0).contains(&(r.arrival_s - origin)))
        .copied()
        .collect();
    assert!(in_window.len() > 1 && in_window.len() < rows.len());
    assert_stats_match(&window["summary"]["stats"], &in_window);

    // Requests over a 1000-token context are dropped and counted.
    let limit = 1000;
    let dropped = succeeds_json([
        "workload",
        "stats",
        path,
        "--max-context",
        "1000",
        "--over-limit",
        "drop",
        "--json",
    ]);
    let kept: Vec<Row> = rows
        .iter()
        .filter(|r| r.input_tokens + r.output_tokens <= limit)
        .copied()
        .collect();
    assert!(kept.len() < rows.len());
    assert_eq!(dropped["summary"]["dropped"], rows.len() - kept.len());
    assert_stats_match(&dropped["summary"]["stats"], &kept);
}

#[test]
fn stats_reject_bad_traces_naming_the_line() {
    let dir = TempDir::new("stats-bad");
    let unsorted = dir.write(
        "unsorted.csv",
        "arrival_s,input_tokens,output_tokens\n0.0,10,20\n2.0,30,40\n1.0,5,5\n",
    );
    let unsorted = unsorted.to_str().unwrap();
    let err = fails(["workload", "stats", unsorted]);
    assert!(
        err.contains("unsorted.csv:4") && err.contains("--sort"),
        "{err}"
    );
    let sorted = succeeds_json(["workload", "stats", unsorted, "--sort", "--json"]);
    assert_eq!(sorted["summary"]["stats"]["requests"], 3);
    assert_eq!(sorted["summary"]["stats"]["span_s"], 2.0);
    // Options with nothing to act on are errors, not silently ignored.
    let err = fails(["workload", "stats", unsorted, "--sort", "--seed", "3"]);
    assert!(err.contains("--seed"), "{err}");
    let err = fails(["workload", "stats", unsorted, "--over-limit", "clip"]);
    assert!(err.contains("--max-context"), "{err}");
    for flag in ["--sort", "--skip-bad-rows", "--include-failed"] {
        let err = fails(["workload", "stats", "arena", flag]);
        assert!(err.contains(flag) && err.contains("preset"), "{err}");
    }
    let err = fails([
        "simulate",
        "--preset",
        "arena",
        "--cluster",
        "A10G:1",
        "--skip-bad-rows",
    ]);
    assert!(err.contains("--skip-bad-rows"), "{err}");

    let bad_field = dir.write(
        "bad_field.csv",
        "arrival_s,input_tokens,output_tokens\n0.0,10,20\n1.0,abc,40\n2.0,5,5\n",
    );
    let bad_field = bad_field.to_str().unwrap();
    let err = fails(["workload", "stats", bad_field]);
    assert!(
        err.contains("bad_field.csv:3:2") && err.contains("input_tokens") && err.contains("abc"),
        "{err}"
    );
    let skipped = succeeds_json(["workload", "stats", bad_field, "--skip-bad-rows", "--json"]);
    assert_eq!(skipped["summary"]["read"]["rows_skipped_bad"], 1);
    assert_eq!(skipped["summary"]["stats"]["requests"], 2);

    // Preset-only flags on a trace are errors that name the trace's own flag, not ignored.
    for (flag, value, instead) in [
        ("--rate", "5", "--scale-rate"),
        ("--duration", "60", "--window"),
    ] {
        let err = fails(["workload", "stats", unsorted, "--sort", flag, value]);
        assert!(
            err.contains(flag) && err.contains("presets only") && err.contains(instead),
            "{err}"
        );
    }

    let err = fails(["workload", "stats", "no-such-thing"]);
    assert!(
        err.contains("neither a file nor a preset") && err.contains("arena"),
        "{err}"
    );
}

#[test]
fn presets_are_listed_with_sources_and_generate_what_they_advertise() {
    let presets = succeeds_json(["workload", "presets", "--json"]);
    let names: Vec<&str> = presets
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, PRESETS);
    for preset in presets.as_array().unwrap() {
        let name = preset["name"].as_str().unwrap();
        for key in ["description", "source"] {
            assert!(
                !preset[key].as_str().unwrap_or("").is_empty(),
                "{name}: {key}"
            );
        }
        assert!(num(&preset["default_rate_rps"], "rate") > 0.0, "{name}");
        // About 5000 requests of the preset: their mean lengths are the advertised means.
        // (Over eight seeds the largest deviation seen was about 5%.)
        let stats = succeeds_json([
            "workload",
            "stats",
            name,
            "--rate",
            "20",
            "--duration",
            "250",
            "--json",
        ]);
        let stats = &stats["summary"]["stats"];
        for (stat, advertised) in [
            ("input_tokens", "mean_input_tokens"),
            ("output_tokens", "mean_output_tokens"),
        ] {
            assert_close(
                num(&stats[stat]["mean"], stat),
                num(&preset[advertised], advertised),
                0.12,
                &format!("{name}: generated mean {stat} vs advertised"),
            );
        }
        assert_close(
            count(&stats["requests"], "requests") as f64,
            20.0 * 250.0,
            0.15,
            &format!("{name}: requests at 20 req/s for 250 s"),
        );
    }
    let text = succeeds(["workload", "presets"]);
    for name in PRESETS {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
}

#[test]
fn gen_is_seeded_and_writes_the_rows_it_reports() {
    let dir = TempDir::new("gen");
    let generate = |seed: &str, file: &str| {
        let path = dir.path().join(file);
        let report = succeeds_json([
            "workload",
            "gen",
            "arena",
            "--rate",
            "5",
            "--duration",
            "20",
            "--seed",
            seed,
            "-o",
            path.to_str().unwrap(),
            "--json",
        ]);
        (path, report)
    };
    let (first, report) = generate("7", "first.csv");
    let (again, _) = generate("7", "again.csv");
    let (other, _) = generate("8", "other.csv");
    assert!(read(&first) == read(&again), "same seed, different bytes");
    assert!(read(&first) != read(&other), "different seeds, same bytes");

    assert_eq!(report["format"], "csv");
    assert_eq!(report["generated"]["preset"], "arena");
    assert_eq!(report["generated"]["seed"], 7);
    let (header, rows) = read_csv(&first);
    assert_eq!(header, ["arrival_s", "input_tokens", "output_tokens"]);
    assert_eq!(count(&report["requests"], "requests"), rows.len() as u64);
    assert!(!rows.is_empty());
    let arrivals: Vec<f64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(
        arrivals.windows(2).all(|w| w[0] <= w[1]),
        "arrivals are sorted"
    );
    assert!(
        arrivals.iter().all(|a| (0.0..20.0).contains(a)),
        "arrivals within the duration"
    );

    // The file reads back: stats of it count the same requests.
    let stats = succeeds_json(["workload", "stats", first.to_str().unwrap(), "--json"]);
    assert_eq!(stats["summary"]["stats"]["requests"], report["requests"]);

    // Parquet by extension: the same stream.
    let (parquet, parquet_report) = generate("7", "first.parquet");
    assert_eq!(parquet_report["format"], "parquet");
    assert_eq!(parquet_report["requests"], report["requests"]);
    assert!(read(&parquet).starts_with(b"PAR1"));
    let parquet_stats = succeeds_json(["workload", "stats", parquet.to_str().unwrap(), "--json"]);
    assert_eq!(
        parquet_stats["summary"]["stats"], stats["summary"]["stats"],
        "CSV and Parquet of one stream give the same statistics"
    );
}

#[test]
fn gen_rejects_bad_arguments_clearly() {
    let dir = TempDir::new("gen-bad");
    let out = dir.path().join("out.csv");
    let out = out.to_str().unwrap();
    let gen_with = |rate: &str, duration: &str| {
        fails([
            "workload",
            "gen",
            "arena",
            "--rate",
            rate,
            "--duration",
            duration,
            "-o",
            out,
        ])
    };
    // Negative numbers reach medley's checks instead of clap's "unexpected argument".
    let err = gen_with("-1", "10");
    assert!(err.contains("rate") && err.contains("-1"), "{err}");
    let err = gen_with("1", "-10");
    assert!(err.contains("duration") && err.contains("-10"), "{err}");
    let err = fails([
        "workload",
        "gen",
        "no-such-preset",
        "--rate",
        "1",
        "--duration",
        "1",
        "-o",
        out,
    ]);
    assert!(
        err.contains("no-such-preset") && err.contains("arena"),
        "{err}"
    );
    // A file that cannot be created is a write error (it used to say "cannot read").
    let unwritable = dir.path().join("no-such-dir").join("out.csv");
    let err = fails([
        "workload",
        "gen",
        "arena",
        "--rate",
        "1",
        "--duration",
        "1",
        "-o",
        unwritable.to_str().unwrap(),
    ]);
    assert!(
        err.contains("no-such-dir") && err.contains("cannot write"),
        "{err}"
    );
}
