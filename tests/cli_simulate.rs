//! End-to-end tests of `medley simulate` (and `medley bench`): conservation of requests,
//! determinism, the tables `--out` writes, the fast path, rejections and bad input.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{
    TempDir, assert_close, column, count, fails, fixture, medley, num, read, read_csv, succeeds,
    succeeds_json,
};
use serde_json::Value;

/// A short, light run: about 120 arena requests on one L4 and one A10G.
const BASE: [&str; 10] = [
    "simulate",
    "--preset",
    "arena",
    "--rate",
    "4",
    "--duration",
    "30s",
    "--cluster",
    "L4:1,A10G:1",
    "--json",
];

/// The files `--out DIR` promises (see `medley simulate --help`).
const OUT_FILES: [&str; 8] = [
    "requests.csv",
    "requests.parquet",
    "timeseries.csv",
    "timeseries.parquet",
    "summary.json",
    "figures/timeseries.png",
    "figures/timeseries.svg",
    "figures/timeseries.json",
];

fn simulate(extra: &[&str]) -> Value {
    let mut args = BASE.to_vec();
    args.extend_from_slice(extra);
    succeeds_json(args)
}

fn simulate_raw(extra: &[&str]) -> Vec<u8> {
    let mut args = BASE.to_vec();
    args.extend_from_slice(extra);
    let run = medley(args);
    assert!(run.output.status.success(), "{}", run.stderr());
    run.output.stdout
}

/// Checks arrived = completed + rejected + in flight, and that every breakdown adds up.
fn assert_conserved(summary: &Value) {
    let requests = &summary["requests"];
    let arrived = count(&requests["arrived"], "arrived");
    let completed = count(&requests["completed"], "completed");
    let rejected = count(&requests["rejected"], "rejected");
    let in_flight = count(&requests["in_flight"], "in_flight");
    assert!(arrived > 0, "{requests}");
    assert_eq!(
        arrived,
        completed + rejected + in_flight,
        "conservation: {requests}"
    );
    let by_reason: u64 = requests["rejected_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| count(n, "rejected by reason"))
        .sum();
    assert_eq!(by_reason, rejected, "every rejection has a reason");
    let per_type: u64 = summary["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| count(&t["completed"], "type completed"))
        .sum();
    assert_eq!(per_type, completed, "completions per GPU type");
    let replicas = summary["replicas"].as_array().unwrap();
    let routed: u64 = replicas.iter().map(|r| count(&r["routed"], "routed")).sum();
    assert_eq!(
        routed,
        arrived - rejected,
        "every accepted request is routed once"
    );
    let per_replica: u64 = replicas
        .iter()
        .map(|r| count(&r["completed"], "replica completed"))
        .sum();
    assert_eq!(per_replica, completed);
    assert_eq!(
        count(&summary["latency"]["ttft_s"]["count"], "ttft count"),
        completed,
        "latency is measured over completed requests"
    );
}

#[test]
fn requests_are_conserved_whether_they_finish_are_rejected_or_are_cut_off() {
    let finished = simulate(&[]);
    assert_conserved(&finished);
    assert_eq!(
        finished["requests"]["in_flight"], 0,
        "no horizon: all finish"
    );
    assert_eq!(finished["cluster"], "L4:1,A10G:1");

    // A horizon cuts the run: what is unfinished is reported in flight, not lost.
    let cut = simulate(&["--horizon", "8s"]);
    assert_conserved(&cut);
    assert!(
        count(&cut["requests"]["in_flight"], "in flight") > 0,
        "{}",
        cut["requests"]
    );
    assert_eq!(cut["span_s"], 8.0);

    // A short length limit rejects the long requests; they are counted.
    let limited = simulate(&["--max-model-len", "512"]);
    assert_conserved(&limited);
    assert!(count(&limited["requests"]["rejected"], "rejected") > 0);

    for router in ["round-robin", "random", "least-tokens", "power-of-two"] {
        let routed = simulate(&["--router", router]);
        assert_conserved(&routed);
        assert_eq!(routed["router"], router);
        assert_eq!(
            routed["requests"]["arrived"],
            finished["requests"]["arrived"]
        );
    }
    for batching in ["chunked", "static"] {
        let batched = simulate(&["--batching", batching]);
        assert_conserved(&batched);
        assert_eq!(batched["batching"], batching);
    }
}

#[test]
fn cost_is_the_price_book_rate_over_the_span() {
    let summary = simulate(&["--prices", "melange-2024"]);
    let cost = &summary["cost"];
    assert_eq!(cost["price_book"], "melange-2024");
    // Mélange Table 1: L4 $0.70/h, A10G $1.01/h.
    assert_close(
        num(&cost["usd_per_hour"], "usd/h"),
        0.70 + 1.01,
        1e-12,
        "$/h",
    );
    let span_s = num(&summary["span_s"], "span");
    assert_close(
        num(&cost["total_usd"], "total"),
        (0.70 + 1.01) * span_s / 3600.0,
        1e-9,
        "total $ over the span",
    );
    let output_tokens = num(&summary["output_tokens_per_s"], "tokens/s") * span_s;
    assert_close(
        num(&cost["usd_per_million_output_tokens"], "$/Mtok"),
        num(&cost["total_usd"], "total") / output_tokens * 1e6,
        1e-9,
        "$ per million output tokens",
    );
}

#[test]
fn the_same_inputs_give_byte_identical_outputs() {
    let dir = TempDir::new("determinism");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let first_stdout = simulate_raw(&["--out", first.to_str().unwrap()]);
    let second_stdout = simulate_raw(&["--out", second.to_str().unwrap()]);
    assert!(
        first_stdout == second_stdout,
        "stdout differs between two runs"
    );
    for file in OUT_FILES {
        assert!(
            read(&first.join(file)) == read(&second.join(file)),
            "{file} differs between two runs"
        );
    }
    // The seed matters: a different one draws a different stream.
    let other_seed = simulate_raw(&["--seed", "1"]);
    assert!(
        other_seed != first_stdout,
        "--seed 1 gave the same output as seed 0"
    );
}

/// Counts of each `status` value in requests.csv.
fn status_counts(dir: &Path) -> BTreeMap<String, u64> {
    let (header, rows) = read_csv(&dir.join("requests.csv"));
    let status = column(&header, "status");
    let mut counts = BTreeMap::new();
    for row in &rows {
        *counts.entry(row[status].clone()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn out_dir_holds_the_promised_tables_matching_the_summary() {
    let dir = TempDir::new("out-tables");
    let out = dir.path().join("run");
    // A horizon leaves some requests in flight so all statuses appear in the table.
    let stdout = simulate_raw(&["--out", out.to_str().unwrap(), "--horizon", "20s"]);
    let summary: Value = serde_json::from_slice(&stdout).unwrap();
    assert_conserved(&summary);

    for file in OUT_FILES {
        let bytes = read(&out.join(file));
        assert!(!bytes.is_empty(), "{file} is empty");
        if file.ends_with(".parquet") {
            assert!(
                bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"),
                "{file} is not a Parquet file"
            );
        }
    }
    assert!(
        read(&out.join("summary.json")) == stdout,
        "summary.json is the printed JSON"
    );

    let requests = &summary["requests"];
    let (header, rows) = read_csv(&out.join("requests.csv"));
    assert_eq!(
        rows.len() as u64,
        count(&requests["arrived"], "arrived"),
        "one row a request"
    );
    let id = column(&header, "id");
    let mut ids: Vec<u64> = rows.iter().map(|r| r[id].parse().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "request ids are unique");
    let statuses = status_counts(&out);
    for (status, key) in [
        ("completed", "completed"),
        ("rejected", "rejected"),
        ("in_flight", "in_flight"),
    ] {
        assert_eq!(
            statuses.get(status).copied().unwrap_or(0),
            count(&requests[key], key),
            "rows with status {status}; all statuses: {statuses:?}"
        );
    }
    // Completed rows carry their latencies; the mean TTFT is the summary's.
    let (ttft, status) = (column(&header, "ttft_s"), column(&header, "status"));
    let ttfts: Vec<f64> = rows
        .iter()
        .filter(|r| r[status] == "completed")
        .map(|r| r[ttft].parse().expect("a completed request has a TTFT"))
        .collect();
    let mean_ttft = ttfts.iter().sum::<f64>() / ttfts.len() as f64;
    // The CSV rounds to nanoseconds.
    assert_close(
        mean_ttft,
        num(&summary["latency"]["ttft_s"]["mean"], "mean ttft"),
        1e-6,
        "mean TTFT from requests.csv",
    );

    // The time series samples every replica once a second up to the end of the span.
    let (header, rows) = read_csv(&out.join("timeseries.csv"));
    let (time, replica) = (column(&header, "time_s"), column(&header, "replica"));
    let replicas = summary["replicas"].as_array().unwrap().len();
    assert!(!rows.is_empty());
    assert_eq!(
        rows.len() % replicas,
        0,
        "every sample covers every replica"
    );
    let span_s = num(&summary["span_s"], "span");
    for row in &rows {
        let t: f64 = row[time].parse().unwrap();
        assert!(
            t > 0.0 && t <= span_s && (t - t.round()).abs() < 1e-9,
            "sample at {t} s"
        );
        assert!(row[replica].parse::<usize>().unwrap() < replicas);
    }
    assert_eq!(
        rows.len() / replicas,
        span_s.floor() as usize,
        "one sample a second"
    );

    // The time-series figure is drawn from exactly those samples.
    let figure: Value = serde_json::from_slice(&read(&out.join("figures/timeseries.json")))
        .expect("figure data is JSON");
    let times = figure["time_s"].as_array().expect("time_s");
    assert_eq!(times.len(), rows.len() / replicas);
    let lines = figure["replicas"].as_array().expect("replicas");
    assert_eq!(lines.len(), replicas);
    let (waiting, running) = (column(&header, "waiting"), column(&header, "running"));
    for row in &rows {
        let t: f64 = row[time].parse().unwrap();
        let k = times
            .iter()
            .position(|v| (v.as_f64().unwrap() - t).abs() < 1e-9)
            .expect("every sample time is on the figure");
        let line = &lines[row[replica].parse::<usize>().unwrap()];
        assert_eq!(line["queue_len"][k].as_f64(), row[waiting].parse().ok());
        assert_eq!(line["running"][k].as_f64(), row[running].parse().ok());
    }
}

#[test]
fn the_fast_path_changes_nothing_but_the_queue_event_count() {
    let dir = TempDir::new("fast-path");
    let (fast_dir, slow_dir) = (dir.path().join("fast"), dir.path().join("slow"));
    let mut fast = simulate(&["--out", fast_dir.to_str().unwrap()]);
    let mut slow = simulate(&["--out", slow_dir.to_str().unwrap(), "--no-fast-path"]);
    let fast_queue = count(&fast["queue_events"], "fast queue events");
    let slow_queue = count(&slow["queue_events"], "slow queue events");
    // Without the fast path every event goes through the queue; with it, fewer do.
    assert_eq!(slow_queue, count(&slow["events"], "events"));
    assert!(
        fast_queue < slow_queue,
        "fast {fast_queue} vs slow {slow_queue}"
    );
    fast.as_object_mut().unwrap().remove("queue_events");
    slow.as_object_mut().unwrap().remove("queue_events");
    assert_eq!(fast, slow, "summaries differ beyond queue_events");
    for file in [
        "requests.csv",
        "requests.parquet",
        "timeseries.csv",
        "timeseries.parquet",
    ] {
        assert!(
            read(&fast_dir.join(file)) == read(&slow_dir.join(file)),
            "{file} differs between fast path and --no-fast-path"
        );
    }
}

#[test]
fn requests_longer_than_the_model_context_are_rejected_and_counted() {
    let dir = TempDir::new("short-context");
    // Llama-2-7B's architecture with a 512-token context.
    let catalog = dir.write(
        "short.toml",
        "[[model]]\nname = \"Short-Context-7B\"\nlayers = 32\nhidden = 4096\nheads = 32\n\
         ffn = 11008\nvocab = 32000\nmax_context = 512\nsource = \"medley CLI test\"\n",
    );
    let out = dir.path().join("run");
    let summary = simulate(&[
        "--catalog",
        catalog.to_str().unwrap(),
        "--model",
        "Short-Context-7B",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_conserved(&summary);
    let rejected = count(&summary["requests"]["rejected"], "rejected");
    assert!(rejected > 0, "arena has prompts + answers over 512 tokens");

    // Exactly the requests over the limit are rejected, with the reason, and the rest served.
    let (header, rows) = read_csv(&out.join("requests.csv"));
    let (input, output) = (
        column(&header, "input_tokens"),
        column(&header, "output_tokens"),
    );
    let (status, reason) = (column(&header, "status"), column(&header, "reject_reason"));
    let mut over_limit = 0;
    for row in &rows {
        let total: u64 = row[input].parse::<u64>().unwrap() + row[output].parse::<u64>().unwrap();
        if total > 512 {
            over_limit += 1;
            assert_eq!(row[status], "rejected", "{row:?}");
            assert_eq!(row[reason], "longer than any replica can hold", "{row:?}");
        } else {
            assert_eq!(row[status], "completed", "{row:?}");
        }
    }
    assert_eq!(rejected, over_limit);
    assert_eq!(
        summary["requests"]["rejected_by_reason"]["longer than any replica can hold"],
        over_limit
    );

    // The same limit set on Llama-2-7B by flag rejects the same requests.
    let by_flag = simulate(&["--max-model-len", "512"]);
    assert_eq!(by_flag["requests"], summary["requests"]);
}

#[test]
fn a_generated_trace_replays_like_the_preset_it_came_from() {
    let dir = TempDir::new("trace-replay");
    let trace = dir.path().join("arena.csv");
    succeeds([
        "workload",
        "gen",
        "arena",
        "--rate",
        "4",
        "--duration",
        "30",
        "-o",
        trace.to_str().unwrap(),
    ]);
    let from_preset = simulate(&[]);
    let from_trace = succeeds_json([
        "simulate",
        "--trace",
        trace.to_str().unwrap(),
        "--cluster",
        "L4:1,A10G:1",
        "--json",
    ]);
    assert_conserved(&from_trace);
    assert_eq!(from_trace["requests"], from_preset["requests"]);
    // The CSV prints arrivals in full, so latencies agree to the simulator's nanosecond clock.
    assert_close(
        num(&from_trace["latency"]["e2e_s"]["mean"], "trace e2e"),
        num(&from_preset["latency"]["e2e_s"]["mean"], "preset e2e"),
        1e-6,
        "mean end-to-end latency",
    );

    // --rate rescales a trace's arrival times: the trace's own rate is its gaps per second of
    // span, (requests − 1) ÷ last arrival as `workload stats` reports it, so asking for twice
    // that halves every arrival time.
    let (header, rows) = read_csv(&trace);
    let arrival = column(&header, "arrival_s");
    let arrivals: Vec<f64> = rows.iter().map(|r| r[arrival].parse().unwrap()).collect();
    let first = arrivals[0];
    let last = arrivals[arrivals.len() - 1] - first;
    let own_rate = (arrivals.len() - 1) as f64 / last;
    let out = dir.path().join("rescaled");
    succeeds([
        "simulate",
        "--trace",
        trace.to_str().unwrap(),
        "--rate",
        &format!("{}", 2.0 * own_rate),
        "--cluster",
        "L4:1,A10G:1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (header, rows) = read_csv(&out.join("requests.csv"));
    let arrival = column(&header, "arrival_s");
    let mut rescaled: Vec<f64> = rows.iter().map(|r| r[arrival].parse().unwrap()).collect();
    rescaled.sort_by(f64::total_cmp);
    assert_eq!(rescaled.len(), arrivals.len(), "every request replayed");
    for (k, (was, now)) in arrivals.iter().zip(&rescaled).enumerate() {
        assert!(
            (now - (was - first) / 2.0).abs() < 1e-6,
            "arrival {k}: {was} became {now}"
        );
    }
    let err = fails_on_trace(&trace, &["--rate", "0", "--cluster", "L4:1"]);
    assert!(err.contains("--rate 0"), "{err}");

    let bad = dir.write(
        "bad.csv",
        "arrival_s,input_tokens,output_tokens\n0.0,10,20\n1.0,many,40\n",
    );
    let err = fails([
        "simulate",
        "--trace",
        bad.to_str().unwrap(),
        "--cluster",
        "L4:1",
    ]);
    assert!(
        err.contains("bad.csv:3:2") && err.contains("input_tokens"),
        "{err}"
    );
}

#[test]
fn bad_simulate_input_is_a_clear_error() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--preset",
            "arena",
            "--rate",
            "1",
            "--duration",
            "5s",
        ];
        args.extend_from_slice(extra);
        fails(args)
    };
    for spec in ["L4", "L4:x", "L4:1:tp0", "L4:1:4", ":1"] {
        let err = run(&["--cluster", spec]);
        assert!(err.contains("expected GPU:COUNT"), "{spec}: {err}");
    }
    let err = run(&["--cluster", "L4:0"]);
    assert!(err.contains("no replicas"), "{err}");
    let err = run(&["--cluster", "Z9:1"]);
    assert!(
        err.contains("unknown GPU 'Z9'") && err.contains("A100-80GB"),
        "{err}"
    );
    let err = run(&["--cluster", "L4:1", "--router", "fastest"]);
    assert!(err.contains("--router") && err.contains("fastest"), "{err}");
    assert!(
        err.contains("least-outstanding"),
        "lists the routers: {err}"
    );
    let err = run(&["--cluster", "L4:1", "--router", "melange"]);
    assert!(err.contains("capacity"), "{err}");
    let err = run(&["--cluster", "L4:1", "--model", "Llama-2-70B"]);
    assert!(err.contains("does not fit"), "{err}");
    let err = run(&["--cluster", "L4:1", "--batching", "eager"]);
    assert!(err.contains("--batching"), "{err}");
    let err = run(&["--cluster", "L4:1", "--prices", "no-such-book"]);
    assert!(err.contains("no-such-book"), "{err}");
    let err = run(&["--cluster", "L4:1", "--horizon", "soon"]);
    assert!(err.contains("--horizon") && err.contains("soon"), "{err}");
    let err = run(&["--cluster", "L4:1", "--max-model-len", "0"]);
    assert!(err.contains("--max-model-len"), "{err}");

    // Rates: a negative number reaches the rate check (not clap's "unexpected argument").
    for rate in ["-1", "0", "NaN", "inf"] {
        let err = fails([
            "simulate",
            "--preset",
            "arena",
            "--rate",
            rate,
            "--duration",
            "5s",
            "--cluster",
            "L4:1",
        ]);
        assert!(
            err.contains("rate") && !err.contains("unexpected argument"),
            "{rate}: {err}"
        );
    }
    let err = fails([
        "simulate",
        "--preset",
        "arena",
        "--duration",
        "forever",
        "--cluster",
        "L4:1",
    ]);
    assert!(
        err.contains("--duration") && err.contains("forever"),
        "{err}"
    );
    let err = fails([
        "simulate",
        "--preset",
        "no-such-preset",
        "--cluster",
        "L4:1",
    ]);
    assert!(
        err.contains("no-such-preset") && err.contains("arena"),
        "{err}"
    );
    let err = fails(["simulate", "--cluster", "L4:1"]);
    assert!(err.contains("--trace") && err.contains("--preset"), "{err}");
    let err = fails([
        "simulate",
        "--trace",
        "/no/such/trace.csv",
        "--cluster",
        "L4:1",
    ]);
    assert!(err.contains("/no/such/trace.csv"), "{err}");
}

#[test]
fn bench_reports_consistent_speeds_without_the_shared_trace() {
    let dir = TempDir::new("bench");
    let absent = dir.path().join("absent.csv");
    let run = medley([
        "bench",
        "--synthetic-requests",
        "2000",
        "--azure-trace",
        absent.to_str().unwrap(),
        "--json",
    ]);
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(
        run.stderr().contains("skipped the Azure benchmark") && run.stderr().contains("absent.csv"),
        "says what it skipped: {}",
        run.stderr()
    );
    let rows: Value = serde_json::from_slice(&run.output.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "only the synthetic scenario runs");
    let row = &rows[0];
    let requests = count(&row["requests"], "requests");
    // A Poisson stream expecting 2000 requests: ±10% is over four standard deviations.
    assert!((1800..=2200).contains(&requests), "{requests} requests");
    assert!(
        row["scenario"]
            .as_str()
            .unwrap()
            .contains("about 2000 requests"),
        "{row}"
    );
    let wall_s = num(&row["wall_s"], "wall_s");
    assert!(wall_s > 0.0);
    for (total, rate) in [
        ("requests", "requests_per_s"),
        ("iterations", "iterations_per_s"),
        ("events", "events_per_s"),
    ] {
        assert_close(
            num(&row[rate], rate),
            num(&row[total], total) / wall_s,
            1e-9,
            rate,
        );
    }
    assert!(count(&row["iterations"], "iterations") > 0);
}

/// Checks `medley bench --solver` rows: one seed per rate, and each exact plan bracketed by its
/// 1% plan.
fn check_solver_bench_rows(rows: &Value) {
    let rows = rows.as_array().unwrap();
    // One seed at each of 10, 100, 300 and 1,000 req/s.
    let rates: Vec<f64> = rows
        .iter()
        .map(|r| num(&r["request_rate"], "rate"))
        .collect();
    assert_eq!(rates, [10.0, 100.0, 300.0, 1000.0]);
    for row in rows {
        let exact_cost = num(&row["exact_cost"], "exact_cost");
        let exact_gap = num(&row["exact_gap"], "exact_gap");
        let loose_cost = num(&row["gap_1pct_cost"], "gap_1pct_cost");
        let loose_gap = num(&row["gap_1pct_gap"], "gap_1pct_gap");
        assert!(loose_gap <= 0.01 + 1e-12, "{row}");
        assert!(count(&row["exact_nodes"], "nodes") <= 300, "{row}");
        if row["exact_proven"] == true {
            assert_eq!(exact_gap, 0.0, "{row}");
            // The optimum is no dearer than the 1% plan, and at most 1% cheaper.
            assert!(exact_cost <= loose_cost + 1e-9, "{row}");
            assert!(loose_cost - exact_cost <= 0.01 * loose_cost + 1e-9, "{row}");
        } else {
            assert!(exact_gap > 0.0, "{row}");
        }
    }
}

/// `medley bench --solver` on one seed per rate, 300 nodes at most.
const SOLVER_BENCH: [&str; 6] = [
    "bench",
    "--solver",
    "--solver-seeds",
    "1",
    "--solver-node-limit",
    "300",
];

/// [`SOLVER_BENCH`] with `extra` arguments; its JSON rows, checked by
/// [`check_solver_bench_rows`].
fn solver_bench(extra: &[&str]) -> Value {
    let mut args = SOLVER_BENCH.to_vec();
    args.push("--json");
    args.extend_from_slice(extra);
    let run = medley(args);
    assert!(run.output.status.success(), "{}", run.stderr());
    let rows: Value = serde_json::from_slice(&run.output.stdout).unwrap();
    check_solver_bench_rows(&rows);
    rows
}

#[test]
fn solver_bench_brackets_each_exact_plan_with_its_one_percent_plan() {
    solver_bench(&[]);
    // The text summary gives the median exact solve per rate.
    let text = succeeds(SOLVER_BENCH);
    let summary = text.lines().last().unwrap_or_default();
    assert!(
        summary.contains("(median ") && summary.contains(" ms at 1000 req/s; slowest"),
        "{summary}"
    );
    let err = fails(["bench", "--solver", "--solver-seeds", "0"]);
    assert!(err.contains("--solver-seeds"), "{err}");
}

#[test]
fn solver_bench_plans_on_given_profiles() {
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("solver/benches/fixtures/llama-3.1-8b_12-types_120ms.json");
    let profiles = profiles.to_str().unwrap();
    let rows = solver_bench(&["--solver-profiles", profiles]);
    // The first row is the profiles under mix 1 at 10 req/s: microlp finds the same optimum.
    let gpu_info = solver::read_gpu_info(Path::new(profiles)).unwrap();
    let problem = solver::synthetic::profiled_problem(&gpu_info, 10.0, 1).unwrap();
    let reference = solver::solve(
        &problem,
        &solver::SolveOptions {
            formulation: solver::Formulation::Compact,
            backend: solver::Backend::Microlp,
            ..solver::SolveOptions::default()
        },
    )
    .unwrap();
    assert_eq!(rows[0]["exact_proven"], true, "{rows}");
    let exact_cost = num(&rows[0]["exact_cost"], "exact_cost");
    assert!((exact_cost - reference.hourly_cost).abs() < 1e-6, "{rows}");
    let err = fails(["bench", "--solver", "--solver-profiles", "missing.json"]);
    assert!(err.contains("missing.json"), "{err}");
    let err = fails(["bench", "--solver-profiles", profiles]);
    assert!(err.contains("--solver"), "{err}");
}

/// `medley simulate --trace TRACE EXTRA...`, which must fail; its error.
fn fails_on_trace(trace: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["simulate", "--trace", trace.to_str().unwrap()];
    args.extend_from_slice(extra);
    fails(args)
}

/// The arena run of [`BASE`] without its cluster, for disaggregated runs.
const ARENA: [&str; 8] = [
    "simulate",
    "--preset",
    "arena",
    "--rate",
    "4",
    "--duration",
    "30s",
    "--json",
];

#[test]
fn autoscaling_reports_billed_cost_and_replica_counts() {
    // A target of two requests in flight per replica is far below what arena traffic keeps
    // there: the HPA scales both types up to their limits.
    let hpa = simulate(&[
        "--autoscale",
        "hpa",
        "--hpa-target",
        "2",
        "--autoscale-interval",
        "5s",
        "--cooldown",
        "10s",
        "--scale-limits",
        "L4=1:3,A10G=1:2",
        "--cold-start-gbs",
        "4",
    ]);
    assert_conserved(&hpa);
    let report = &hpa["autoscale"];
    assert_eq!(report["policy"], "hpa");
    assert_eq!(report["metric"], "outstanding");
    assert!(
        count(&report["replicas_started"], "started") >= 3,
        "{report}"
    );
    let types = report["types"].as_array().unwrap();
    let peaks: Vec<u64> = types.iter().map(|t| count(&t["peak"], "peak")).collect();
    assert_eq!(peaks, [3, 2], "{report}");
    // Llama-2-7B's 6,738,415,616 BF16 parameters loaded at 4 GB/s.
    let cold_start = 6_738_415_616.0 * 2.0 / 4e9;
    for t in types {
        assert_close(
            num(&t["cold_start_s"], "cold start"),
            cold_start,
            // The JSON rounds seconds to the millisecond.
            1e-3,
            "cold start",
        );
    }
    let series = report["series"].as_array().unwrap();
    assert_eq!(num(&series[0]["time_s"], "first point"), 0.0);
    for point in series {
        for (t, max) in [(0, 3), (1, 2)] {
            let current = count(&point["ready"][t], "ready") + count(&point["starting"][t], "s");
            assert!((1..=max).contains(&current), "{point}");
        }
    }
    // Billed cost integrates each replica's life; the static cost of the cluster as given
    // is reported beside it.
    let replicas = hpa["replicas"].as_array().unwrap();
    let billed: f64 = replicas.iter().map(|r| num(&r["cost_usd"], "cost")).sum();
    assert_close(
        num(&hpa["cost"]["billed_usd"], "billed"),
        billed,
        1e-9,
        "billed",
    );
    assert!(billed > num(&hpa["cost"]["total_usd"], "static"));
    assert!(replicas.iter().any(|r| num(&r["started_s"], "start") > 0.0));

    let text = succeeds(BASE.iter().filter(|a| **a != "--json").chain(&[
        "--autoscale",
        "reactive",
        "--scale-metric",
        "queue",
    ]));
    assert!(text.contains("autoscale (reactive on queue)"), "{text}");
    assert!(text.contains("billed over the replicas' lives"), "{text}");
}

#[test]
fn each_pool_of_a_disaggregated_cluster_autoscales_and_its_replicas_are_drawn() {
    let dir = TempDir::new("disagg-autoscale");
    let out = dir.path().join("run");
    let mut args = ARENA.to_vec();
    args.extend_from_slice(&[
        "--prefill-cluster",
        "A10G:1",
        "--decode-cluster",
        "L4:1",
        "--autoscale",
        "hpa",
        "--hpa-target",
        "2",
        "--autoscale-interval",
        "5s",
        "--scale-limits",
        "prefill/A10G=1:2,decode/L4=1:3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary = succeeds_json(args);
    // (Each request is routed twice here, to a prefill and to a decode replica.)
    let c = &summary["requests"];
    assert_eq!(
        count(&c["arrived"], "arrived"),
        count(&c["completed"], "completed")
            + count(&c["rejected"], "rejected")
            + count(&c["in_flight"], "in flight"),
        "{c}"
    );
    let types = summary["autoscale"]["types"].as_array().unwrap();
    let names: Vec<&str> = types
        .iter()
        .map(|t| t["instance"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prefill/A10G", "decode/L4"]);
    let peaks: Vec<u64> = types.iter().map(|t| count(&t["peak"], "peak")).collect();
    assert!(peaks[1] > 1, "the decode pool never grew: {types:?}");
    assert!(peaks[0] <= 2 && peaks[1] <= 3, "limits broken: {peaks:?}");
    // The replicas figure: its arrivals add up to the run's, and no pool serves more replicas
    // than it is billed for.
    let figure: Value = serde_json::from_slice(&read(&out.join("figures/replicas.json")))
        .expect("replicas figure data");
    let window = num(&figure["rate_time_s"][1], "window") - num(&figure["rate_time_s"][0], "0");
    let arrived: f64 = figure["rate_rps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() * window)
        .sum();
    assert_close(
        arrived,
        num(&summary["requests"]["arrived"], "arrived"),
        1e-9,
        "arrivals",
    );
    for counts in figure["types"].as_array().unwrap() {
        for (billed, ready) in counts["billed"]
            .as_array()
            .unwrap()
            .iter()
            .zip(counts["ready"].as_array().unwrap())
        {
            assert!(billed.as_f64() >= ready.as_f64(), "{counts}");
        }
    }
    assert!(out.join("figures/replicas.png").exists());
    // Limits name the pool: a bare type name is not one of the cluster's.
    let mut bare = ARENA.to_vec();
    bare.extend_from_slice(&[
        "--prefill-cluster",
        "A10G:1",
        "--decode-cluster",
        "L4:1",
        "--autoscale",
        "hpa",
        "--scale-limits",
        "L4=1:3",
    ]);
    let err = fails(bare);
    assert!(err.contains("decode/L4"), "{err}");
}

#[test]
fn a_schedule_file_in_csv_or_toml_drives_the_fleet() {
    let dir = TempDir::new("schedule");
    let csv = dir.write(
        "schedule.csv",
        "start,L4,A10G\n# one more L4 between 10 s and 20 s\n0s,1,1\n10s,2,1\n20,1,1\n",
    );
    let toml = dir.write(
        "schedule.toml",
        "[[window]]\nstart = \"0s\"\nL4 = 1\nA10G = 1\n\n[[window]]\nstart = 10\nL4 = 2\nA10G = 1\n\n\
         [[window]]\nstart = \"20s\"\nL4 = 1\nA10G = 1\n",
    );
    let from_csv = simulate(&[
        "--autoscale",
        "schedule",
        "--schedule",
        csv.to_str().unwrap(),
    ]);
    let from_toml = simulate(&[
        "--autoscale",
        "schedule",
        "--schedule",
        toml.to_str().unwrap(),
    ]);
    assert_eq!(from_csv, from_toml, "the same schedule in either format");
    assert_conserved(&from_csv);
    let report = &from_csv["autoscale"];
    assert_eq!(count(&report["replicas_started"], "started"), 1);
    assert_eq!(count(&report["replicas_drained"], "drained"), 1);
    let added = &from_csv["replicas"][2];
    assert_eq!(added["instance"], "L4");
    assert_eq!(num(&added["started_s"], "started"), 10.0);
    let drained: Vec<&Value> = from_csv["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["drain_s"].is_null())
        .collect();
    assert_eq!(drained.len(), 1, "{}", from_csv["replicas"]);
    assert_eq!(drained[0]["instance"], "L4");
    assert_eq!(num(&drained[0]["drain_s"], "drained"), 20.0);

    let bad = dir.write("bad.csv", "start,L4\n0s,1\n10s,many\n");
    let err = fails(BASE.iter().chain(&[
        "--autoscale",
        "schedule",
        "--schedule",
        bad.to_str().unwrap(),
    ]));
    assert!(err.contains("line 3") && err.contains("many"), "{err}");
    let unknown = dir.write("unknown.csv", "start,H100-SXM\n0s,1\n");
    let err = fails(BASE.iter().chain(&[
        "--autoscale",
        "schedule",
        "--schedule",
        unknown.to_str().unwrap(),
    ]));
    assert!(
        err.contains("'H100-SXM'") && err.contains("0 replicas"),
        "{err}"
    );
    // A schedule may bring the first replicas to an empty cluster; requests that arrive before
    // they are ready wait, and every one is accounted for.
    let from_empty = dir.write("from_empty.csv", "start,L4,A10G\n0s,0,1\n10s,1,1\n");
    // BASE with every count of its cluster at 0.
    let empty: Vec<&str> = BASE
        .iter()
        .map(|arg| {
            if *arg == "L4:1,A10G:1" {
                "L4:0,A10G:0"
            } else {
                arg
            }
        })
        .collect();
    let mut scheduled = empty.clone();
    scheduled.extend([
        "--autoscale",
        "schedule",
        "--schedule",
        from_empty.to_str().unwrap(),
    ]);
    let summary = succeeds_json(scheduled);
    assert_conserved(&summary);
    assert_eq!(
        count(&summary["autoscale"]["replicas_started"], "started"),
        2
    );
    assert!(count(&summary["requests"]["completed"], "completed") > 0);
    assert_eq!(num(&summary["cost"]["usd_per_hour"], "static $/h"), 0.0);
    let err = fails(empty);
    assert!(
        err.contains("no replicas") && err.contains("--autoscale schedule"),
        "{err}"
    );
    // A type given two columns would have one silently overwrite the other.
    let twice = dir.write("twice.csv", "start,L4,L4\n0s,1,2\n");
    let err = fails(BASE.iter().chain(&[
        "--autoscale",
        "schedule",
        "--schedule",
        twice.to_str().unwrap(),
    ]));
    assert!(err.contains("L4 appears twice"), "{err}");
}

#[test]
fn a_disaggregated_cluster_reports_its_kv_transfers() {
    let mut args = ARENA.to_vec();
    args.extend([
        "--prefill-cluster",
        "A10G:1",
        "--decode-cluster",
        "L4:2",
        "--kv-link-gbs",
        "25",
        "--kv-link-latency",
        "2ms",
    ]);
    let split = succeeds_json(&args);
    let requests = &split["requests"];
    assert_eq!(
        count(&requests["arrived"], "arrived"),
        count(&requests["completed"], "completed")
            + count(&requests["rejected"], "rejected")
            + count(&requests["in_flight"], "in flight")
    );
    assert_eq!(split["cluster"], "prefill A10G:1 | decode L4:2");
    let report = &split["disaggregation"];
    assert_eq!(num(&report["link"]["bandwidth_gbs"], "bandwidth"), 25.0);
    assert_eq!(num(&report["link"]["latency_s"], "latency"), 0.002);
    let transfers = count(&report["transfers"], "transfers");
    let at_prefill = count(&report["completed_at_prefill"], "at prefill");
    assert_eq!(
        transfers + at_prefill,
        count(&requests["completed"], "completed"),
        "each completed request moved once, unless it ended at prefill: {report}"
    );
    assert!(num(&report["transfer_s"]["mean"], "mean") > 0.002);
    let roles: Vec<&str> = split["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["prefill", "decode", "decode"]);

    let text = succeeds(args.iter().filter(|a| **a != "--json"));
    assert!(text.contains("KV transfers:"), "{text}");
    assert!(
        text.contains("A10G (prefill)") && text.contains("L4 (decode)"),
        "{text}"
    );
    assert!(
        text.contains("disaggregated: prefill A10G:1 | decode L4:2"),
        "{text}"
    );
}

#[test]
fn bad_autoscaling_and_disaggregation_input_is_a_clear_error() {
    let base = |extra: &[&str]| {
        let mut args = BASE.to_vec();
        args.extend_from_slice(extra);
        fails(args)
    };
    let err = base(&["--autoscale", "sometimes"]);
    assert!(err.contains("--autoscale") && err.contains("hpa"), "{err}");
    let err = base(&["--autoscale", "hpa", "--scale-metric", "vibes"]);
    assert!(
        err.contains("--scale-metric") && err.contains("outstanding"),
        "{err}"
    );
    let err = base(&["--autoscale", "hpa", "--scale-limits", "A10G=3:1"]);
    assert!(err.contains("min 3 is above max 1"), "{err}");
    let err = base(&["--autoscale", "hpa", "--scale-limits", "A10G:1-3"]);
    assert!(err.contains("TYPE=MIN:MAX"), "{err}");
    let err = base(&["--autoscale", "hpa", "--scale-limits", "H100-SXM=1:2"]);
    assert!(err.contains("'H100-SXM'"), "{err}");
    let err = base(&["--hpa-target", "4"]);
    assert!(
        err.contains("--hpa-target") && err.contains("static"),
        "{err}"
    );
    let err = base(&["--autoscale", "schedule"]);
    assert!(err.contains("--schedule FILE"), "{err}");
    let err = base(&["--autoscale", "hpa", "--autoscale-interval", "often"]);
    assert!(
        err.contains("--autoscale-interval") && err.contains("often"),
        "{err}"
    );
    let err = base(&[
        "--autoscale",
        "reactive",
        "--scale-up",
        "1",
        "--scale-down",
        "2",
    ]);
    assert!(err.contains("below"), "{err}");
    let err = base(&["--autoscale", "hpa", "--cold-start-gbs", "0"]);
    assert!(err.contains("--cold-start-gbs"), "{err}");
    let trace = fixture("small_trace.csv");
    let err = fails_on_trace(&trace, &["--duration", "10s", "--cluster", "A10G:1"]);
    assert!(err.contains("--duration"), "{err}");
    // KV-link and stream-length flags that the run would ignore.
    for flag in ["--kv-link-gbs", "--kv-link-latency"] {
        let value = if flag == "--kv-link-gbs" { "5" } else { "2ms" };
        let err = base(&[flag, value]);
        assert!(
            err.contains(flag) && err.contains("--prefill-cluster"),
            "{err}"
        );
    }
    // A flag the chosen policy does not read is an error, not a silent no-op.
    for (policy, flag, value) in [
        ("hpa", "--scale-up", "5"),
        ("hpa", "--scale-down", "1"),
        ("reactive", "--hpa-target", "3"),
        ("schedule", "--cooldown", "30s"),
        ("schedule", "--autoscale-interval", "10s"),
        ("static", "--scale-metric", "queue"),
        ("schedule", "--scale-metric", "kv"),
        ("hpa", "--schedule-lead", "5m"),
        ("static", "--cold-start-gbs", "4"),
    ] {
        let err = base(&["--autoscale", policy, flag, value]);
        assert!(
            err.contains(flag) && err.contains(&format!("--autoscale {policy}")),
            "{err}"
        );
    }
    // Out-of-range numbers name the flag, not a config key.
    let err = base(&["--autoscale", "hpa", "--hpa-target", "0"]);
    assert!(err.contains("--hpa-target") && err.contains("> 0"), "{err}");
    let err = base(&["--autoscale", "reactive", "--scale-up", "1e12"]);
    assert!(err.contains("--scale-up") && err.contains("1e8"), "{err}");
    assert!(!err.contains("autoscale."), "{err}");

    let split = |extra: &[&str]| {
        let mut args = ARENA.to_vec();
        args.extend_from_slice(extra);
        fails(args)
    };
    let err = split(&["--prefill-cluster", "A10G:1"]);
    assert!(err.contains("--decode-cluster"), "{err}");
    let err = split(&["--prefill-cluster", "A10G:1", "--decode-cluster", "L4:x"]);
    assert!(
        err.contains("--decode-cluster") && err.contains("GPU:COUNT"),
        "{err}"
    );
    let err = split(&[
        "--prefill-cluster",
        "A10G:1",
        "--decode-cluster",
        "L4:1",
        "--kv-link-gbs",
        "-5",
    ]);
    assert!(err.contains("bandwidth"), "{err}");
    let err = split(&[
        "--prefill-cluster",
        "A10G:1",
        "--decode-cluster",
        "L4:1",
        "--batching",
        "static",
    ]);
    assert!(err.contains("continuous or chunked"), "{err}");
    let err = split(&[
        "--prefill-cluster",
        "A10G:1",
        "--decode-cluster",
        "L4:1",
        "--cluster",
        "L4:1",
    ]);
    assert!(err.contains("--cluster"), "{err}");
}

#[test]
fn a_fleet_too_large_to_draw_keeps_its_tables_and_says_why_there_is_no_figure() {
    let dir = TempDir::new("many-replicas");
    let out = dir.path().join("run");
    let stdout = succeeds([
        "simulate",
        "--preset",
        "arena",
        "--rate",
        "4",
        "--duration",
        "20s",
        "--cluster",
        "L4:25",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("no time-series figure"), "{stdout}");
    assert!(!out.join("figures/timeseries.png").exists());
    let (_, rows) = read_csv(&out.join("timeseries.csv"));
    assert!(rows.len() >= 25, "every replica is still sampled");
}

/// Trace rows the replay leaves out are reported, not dropped in silence: BurstGPT's failed
/// requests (no response tokens) and, with `--skip-bad-rows`, malformed rows.
#[test]
fn trace_rows_left_out_of_a_replay_are_reported() {
    let burstgpt =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/tests/fixtures/burstgpt.csv");
    let text = succeeds([
        "simulate".as_ref(),
        "--trace".as_ref(),
        burstgpt.as_os_str(),
        "--cluster".as_ref(),
        "A10G:1".as_ref(),
    ]);
    assert!(
        text.contains("4 rows read; left out: 2 failed requests"),
        "{text}"
    );
    let scratch = TempDir::new("left-out");
    let bad = scratch.write(
        "bad.csv",
        "arrival_s,input_tokens,output_tokens\n0,100,10\n1,x,10\n2,100,10\n",
    );
    let run = medley([
        "simulate".as_ref(),
        "--trace".as_ref(),
        bad.as_os_str(),
        "--skip-bad-rows".as_ref(),
        "--cluster".as_ref(),
        "A10G:1".as_ref(),
        "--json".as_ref(),
    ]);
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(
        run.stderr().contains("1 malformed rows skipped"),
        "{}",
        run.stderr()
    );
    let summary: Value = serde_json::from_slice(&run.output.stdout).expect("JSON on stdout");
    assert_eq!(summary["requests"]["arrived"], 2);
}

/// A trace that stops the run on a bad row leaves no tables of the partial replay in `--out`.
#[test]
fn a_trace_error_leaves_no_partial_tables() {
    let scratch = TempDir::new("partial");
    let bad = scratch.write(
        "bad.csv",
        "arrival_s,input_tokens,output_tokens\n0,100,10\n1,x,10\n2,100,10\n",
    );
    let out = scratch.path().join("out");
    let run = medley([
        "simulate".as_ref(),
        "--trace".as_ref(),
        bad.as_os_str(),
        "--cluster".as_ref(),
        "A10G:1".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(!run.output.status.success());
    assert!(run.stderr().contains("bad.csv:3"), "{}", run.stderr());
    for name in [
        "requests.csv",
        "requests.parquet",
        "timeseries.csv",
        "summary.json",
    ] {
        assert!(!out.join(name).exists(), "{name} left behind");
    }
}
