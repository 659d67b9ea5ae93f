//! End-to-end tests of `medley plan --melange-json` on Mélange's public example
//! (`tests/fixtures/melange_example.json`: A10G $1.01/h with tputs [[2,1],[5,2]], A100-80GB
//! $3.67/h with [[20,20],[40,20]], workload distribution [[0.2,0.1],[0.5,0.2]], 30 req/s).
//! Mélange's README gives 3 × A10G + 1 × A100 = $6.70/h at slice factor 1 and 2 × A10G +
//! 1 × A100 = $5.69/h at slice factor 2.

mod common;

use std::collections::BTreeMap;

use common::{
    LIGHT_WORKLOAD, TempDir, assert_close, count, fails, fixture, medley, num, succeeds,
    succeeds_json,
};
use serde_json::Value;

const FORMULATIONS: [&str; 2] = ["compact", "melange"];

/// The example's GPU prices, throughput tables and traffic, read from the fixture by the test
/// itself.
struct Example {
    cost: BTreeMap<String, f64>,
    tputs: BTreeMap<String, Vec<Vec<f64>>>,
    distribution: Vec<Vec<f64>>,
    total_rate: f64,
}

fn example() -> Example {
    let text = std::fs::read_to_string(fixture("melange_example.json")).unwrap();
    let input: Value = serde_json::from_str(&text).unwrap();
    let mut cost = BTreeMap::new();
    let mut tputs = BTreeMap::new();
    for (gpu, entry) in input["gpu_info"].as_object().unwrap() {
        cost.insert(gpu.clone(), num(&entry["cost"], "cost"));
        tputs.insert(
            gpu.clone(),
            serde_json::from_value(entry["tputs"].clone()).unwrap(),
        );
    }
    Example {
        cost,
        tputs,
        distribution: serde_json::from_value(input["workload_distribution"].clone()).unwrap(),
        total_rate: num(&input["total_request_rate"], "total_request_rate"),
    }
}

fn plan_json(extra: &[&str]) -> Value {
    let path = fixture("melange_example.json");
    let mut args = vec!["plan", "--melange-json", path.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    succeeds_json(args)
}

fn instances(plan: &Value, gpu: &str) -> u64 {
    plan["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["gpu_type"] == gpu)
        .map_or(0, |a| count(&a["instances"], "instances"))
}

/// Checks a plan against the example: its cost is its instances at the file's prices, and the
/// slices it assigns load no type beyond its instance count.
fn assert_plan_is_feasible_and_priced(plan: &Value, example: &Example) {
    let cost: f64 = example
        .cost
        .iter()
        .map(|(gpu, price)| price * instances(plan, gpu) as f64)
        .sum();
    assert_close(
        num(&plan["hourly_cost"], "hourly_cost"),
        cost,
        1e-9,
        "plan cost",
    );

    let mut load: BTreeMap<String, f64> = BTreeMap::new();
    for class in plan["classes"].as_array().unwrap() {
        for bucket in class["buckets"].as_array().unwrap() {
            // Labels are `in{row}/out{column}` of the throughput table.
            let label = bucket["bucket"].as_str().unwrap();
            let (row, column) = label
                .strip_prefix("in")
                .and_then(|rest| rest.split_once("/out"))
                .map(|(r, c)| (r.parse::<usize>().unwrap(), c.parse::<usize>().unwrap()))
                .unwrap_or_else(|| panic!("bucket label {label}"));
            let rate = num(&bucket["rate"], "rate");
            let shares = bucket["shares"].as_array().unwrap();
            if rate > 0.0 {
                let assigned: f64 = shares.iter().map(|s| num(&s["fraction"], "fraction")).sum();
                assert_close(assigned, 1.0, 1e-12, &format!("{label} fully assigned"));
            }
            for share in shares {
                let gpu = share["gpu_type"].as_str().unwrap();
                *load.entry(gpu.to_string()).or_default() +=
                    rate * num(&share["fraction"], "fraction") / example.tputs[gpu][row][column];
            }
        }
    }
    for (gpu, load) in &load {
        let n = instances(plan, gpu) as f64;
        assert!(*load <= n + 1e-9, "{gpu}: load {load} on {n} instances");
    }
}

#[test]
fn slice_factor_one_buys_three_a10g_and_one_a100_for_6_70() {
    let example = example();
    for formulation in FORMULATIONS {
        let plan = plan_json(&["--formulation", formulation]);
        assert_eq!(plan["formulation"], formulation);
        assert_eq!(plan["slice_factor"], 1, "the file's slice factor");
        assert_eq!(instances(&plan, "A10G"), 3, "{formulation}");
        assert_eq!(instances(&plan, "A100-80GB"), 1, "{formulation}");
        assert_close(num(&plan["hourly_cost"], "cost"), 6.70, 1e-9, formulation);
        assert_plan_is_feasible_and_priced(&plan, &example);
    }
}

#[test]
fn slice_factor_two_buys_two_a10g_and_one_a100_for_5_69() {
    let example = example();
    for formulation in FORMULATIONS {
        let plan = plan_json(&["--slice-factor", "2", "--formulation", formulation]);
        assert_eq!(plan["slice_factor"], 2);
        assert_eq!(instances(&plan, "A10G"), 2, "{formulation}");
        assert_eq!(instances(&plan, "A100-80GB"), 1, "{formulation}");
        assert_close(num(&plan["hourly_cost"], "cost"), 5.69, 1e-9, formulation);
        assert_plan_is_feasible_and_priced(&plan, &example);
    }

    // The same through the file's own `slice_factor`.
    let dir = TempDir::new("plan-slice-file");
    let mut input: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("melange_example.json")).unwrap())
            .unwrap();
    input["slice_factor"] = 2.into();
    let file = dir.write("k2.json", &input.to_string());
    let out = succeeds_json([
        "plan",
        "--melange-json",
        file.to_str().unwrap(),
        "--melange-output",
    ]);
    assert_eq!(out["A10G"], 2.0);
    assert_eq!(out["A100-80GB"], 1.0);
    assert_close(
        num(&out["cost"], "cost"),
        5.69,
        1e-9,
        "Mélange output shape",
    );
}

#[test]
fn the_mix_is_cheaper_than_either_single_type_fleet() {
    let example = example();
    let plan = plan_json(&[]);
    let mix_cost = num(&plan["hourly_cost"], "cost");
    let baselines = plan["baselines"].as_array().unwrap();
    assert_eq!(baselines.len(), example.cost.len(), "one baseline per type");
    for baseline in baselines {
        let gpu = baseline["gpu_type"].as_str().unwrap();
        // One type alone carries every bucket: it needs ceil(sum of rate / throughput) instances.
        let mut load = 0.0;
        for (row, fractions) in example.distribution.iter().enumerate() {
            for (column, fraction) in fractions.iter().enumerate() {
                load += fraction * example.total_rate / example.tputs[gpu][row][column];
            }
        }
        let needed = (load - 1e-9).ceil() as u64;
        assert_eq!(
            count(&baseline["instances"], "instances"),
            needed,
            "{gpu} alone"
        );
        let cost = num(&baseline["hourly_cost"], "hourly_cost");
        assert_close(cost, needed as f64 * example.cost[gpu], 1e-9, gpu);
        assert!(
            cost > mix_cost,
            "{gpu} alone costs {cost}, the mix {mix_cost}"
        );
        assert_close(
            num(&baseline["savings"], "savings"),
            1.0 - mix_cost / cost,
            1e-9,
            gpu,
        );
    }
    let text = succeeds([
        "plan",
        "--melange-json",
        fixture("melange_example.json").to_str().unwrap(),
    ]);
    assert!(text.contains("$6.70/h"), "{text}");
    assert!(
        text.contains("A10G") && text.contains("A100-80GB"),
        "{text}"
    );

    // More traffic never costs less; headroom plans for more traffic.
    let doubled = plan_json(&["--rate", "60"]);
    let headroom = plan_json(&["--headroom", "1"]);
    assert!(num(&doubled["hourly_cost"], "cost") >= mix_cost);
    assert_close(
        num(&headroom["hourly_cost"], "cost"),
        num(&doubled["hourly_cost"], "cost"),
        1e-9,
        "100% headroom = twice the rate",
    );
    assert_plan_is_feasible_and_priced(&doubled, &example);

    // A cap on A100s forces the rest onto A10Gs.
    let capped = plan_json(&["--cap", "A100-80GB=0"]);
    assert_eq!(instances(&capped, "A100-80GB"), 0);
    assert_plan_is_feasible_and_priced(&capped, &example);
    assert!(num(&capped["hourly_cost"], "cost") > mix_cost);
}

#[test]
fn bad_plan_input_is_a_clear_error() {
    let path = fixture("melange_example.json");
    let path = path.to_str().unwrap();
    let err = fails(["plan"]);
    assert!(err.contains("--melange-json"), "{err}");
    let err = fails(["plan", "--melange-json", "/no/such/input.json"]);
    assert!(err.contains("/no/such/input.json"), "{err}");
    let err = fails(["plan", "--melange-json", path, "--slice-factor", "0"]);
    assert!(err.contains("slice factor"), "{err}");
    // Negative numbers reach the planner's checks, not clap's "unexpected argument".
    let err = fails(["plan", "--melange-json", path, "--rate", "-5"]);
    assert!(
        err.contains("-5") && !err.contains("unexpected argument"),
        "{err}"
    );
    let err = fails(["plan", "--melange-json", path, "--headroom", "-0.5"]);
    assert!(err.contains("headroom") && err.contains("-0.5"), "{err}");
    // A rate no plan can hold says so, instead of the solvers' "infeasible (numerical
    // trouble?)" or an integer-bound error.
    let err = fails(["plan", "--melange-json", path, "--rate", "1e11"]);
    assert!(err.contains("instances") && err.contains("1e7"), "{err}");
    let err = fails(["plan", "--melange-json", path, "--headroom", "1e9"]);
    assert!(err.contains("headroom") && err.contains("0 to 10"), "{err}");
    // The file holds capacities, prices and the mix: profiling and workload flags, which it
    // would silently ignore, cannot come with it; nor verification settings without --verify.
    for flag in [
        ["--gpus", "L4"],
        ["--slo-tpot", "40ms"],
        ["--prices", "neocloud"],
        // Verification and windows: their `requires` alone let them through here, ignored.
        ["--windows", "6h=2"],
        ["--target", "0.99"],
        ["--router", "size-aware"],
    ] {
        let err = fails(["plan", "--melange-json", path].into_iter().chain(flag));
        assert!(
            err.contains("cannot be used with") && err.contains(flag[0]),
            "{err}"
        );
    }
    let err = fails(["plan", "--melange-json", path, "--verify"]);
    assert!(err.contains("cannot be used with"), "{err}");
    for flag in [["--router", "random"], ["--max-rounds", "3"]] {
        let err = fails(["plan", "--workload", "arena"].into_iter().chain(flag));
        assert!(err.contains("--verify"), "{err}");
    }
    let err = fails(["plan", "--melange-json", path, "--time-limit", "-1"]);
    assert!(err.contains("--time-limit"), "{err}");
    // Too large for a duration: an error, not an overflow panic.
    let err = fails(["plan", "--melange-json", path, "--time-limit", "1e30"]);
    assert!(
        err.contains("--time-limit") && err.contains("too large"),
        "{err}"
    );
    // With --workload, bad solver options fail before the (slow) profiling starts.
    for (flag, value) in [("--gap", "100"), ("--time-limit", "0"), ("--target", "2")] {
        let run = medley(["plan", "--workload", "arena", flag, value]);
        assert!(!run.output.status.success(), "{flag} {value} was accepted");
        assert!(run.stderr().contains(flag), "{}", run.stderr());
        assert!(!run.stderr().contains("profil"), "{}", run.stderr());
    }
    let err = fails(["plan", "--melange-json", path, "--cap", "H100=1"]);
    assert!(err.contains("H100") && err.contains("A10G"), "{err}");
    let err = fails(["plan", "--melange-json", path, "--cap", "A10G"]);
    assert!(err.contains("NAME=COUNT"), "{err}");
    let err = fails([
        "plan",
        "--melange-json",
        path,
        "--cap",
        "A10G=0",
        "--cap",
        "A100-80GB=0",
    ]);
    assert!(err.contains("infeasible"), "{err}");

    let dir = TempDir::new("plan-bad");
    let unknown_key = dir.write(
        "unknown_key.json",
        r#"{"gpu_info": {"A10G": {"cost": 1.01, "tputs": [[1]]}}, "workload_distribution": [[1.0]],
            "total_request_rate": 1, "slice_factorr": 2}"#,
    );
    let err = fails(["plan", "--melange-json", unknown_key.to_str().unwrap()]);
    assert!(
        err.contains("unknown_key.json") && err.contains("slice_factorr"),
        "{err}"
    );
    let wrong_shape = dir.write(
        "wrong_shape.json",
        r#"{"gpu_info": {"A10G": {"cost": 1.01, "tputs": [[1, 2]]}}, "workload_distribution": [[1.0]],
            "total_request_rate": 1}"#,
    );
    let err = fails(["plan", "--melange-json", wrong_shape.to_str().unwrap()]);
    assert!(err.contains("A10G") && err.contains("tputs"), "{err}");
    let not_json = dir.write("not_json.json", "gpu_info = 3");
    let err = fails(["plan", "--melange-json", not_json.to_str().unwrap()]);
    assert!(
        err.contains("not_json.json") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn every_backend_agrees_and_a_node_limit_is_reported_honestly() {
    let example = example();
    for backend in ["auto", "branch-and-bound", "microlp"] {
        let plan = plan_json(&["--slice-factor", "8", "--backend", backend]);
        assert_eq!(plan["proven_optimal"], true, "{backend}");
        assert_close(num(&plan["hourly_cost"], "cost"), 5.69, 1e-9, backend);
        assert_close(num(&plan["cost_lower_bound"], "bound"), 5.69, 1e-9, backend);
        assert!(num(&plan["solve_seconds"], "solve_seconds") >= 0.0);
        assert_plan_is_feasible_and_priced(&plan, &example);
    }
    // One node cannot prove the optimum (its relaxation puts everything on the A100 for
    // $4.13/h): the plan says so, with a bound below the optimum.
    let plan = plan_json(&["--slice-factor", "8", "--node-limit", "1"]);
    assert_eq!(plan["proven_optimal"], false);
    assert_eq!(count(&plan["search_nodes"], "nodes"), 1);
    let bound = num(&plan["cost_lower_bound"], "bound");
    assert!(bound < 5.69 - 1e-6, "{bound}");
    assert!(num(&plan["hourly_cost"], "cost") >= 5.69 - 1e-9);
    assert_plan_is_feasible_and_priced(&plan, &example);
    let path = fixture("melange_example.json");
    let one_node = [
        "plan",
        "--melange-json",
        path.to_str().unwrap(),
        "--slice-factor",
        "8",
        "--node-limit",
        "1",
    ];
    let text = succeeds(one_node);
    assert!(text.contains("NOT PROVEN OPTIMAL"), "{text}");
    // Mélange's output shape has no field for it, so the same warning goes to stderr.
    let run = medley(one_node.iter().chain(&["--melange-output"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(
        run.stderr().contains("not proven optimal"),
        "{}",
        run.stderr()
    );
    let output: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert!(output["cost"].as_f64().unwrap() >= 5.69 - 1e-9);

    // A 40% gap tolerance: the search may stop once its plan is proven within 40% of optimal,
    // and reports the bound it proved, which brackets the optimum with the plan.
    let plan = plan_json(&["--slice-factor", "8", "--gap", "40"]);
    assert_close(
        num(&plan["relative_gap"], "relative_gap"),
        0.4,
        1e-12,
        "gap",
    );
    let cost = num(&plan["hourly_cost"], "cost");
    let bound = num(&plan["cost_lower_bound"], "bound");
    assert!(
        bound <= 5.69 + 1e-9 && cost >= 5.69 - 1e-9,
        "{bound} {cost}"
    );
    assert!((cost - bound) / cost <= 0.4 + 1e-12, "{bound} {cost}");
    assert_plan_is_feasible_and_priced(&plan, &example);
    for gap in ["100", "-1", "nan"] {
        let err = fails([
            "plan",
            "--melange-json",
            fixture("melange_example.json").to_str().unwrap(),
            "--gap",
            gap,
        ]);
        assert!(err.contains("--gap") && err.contains("percentage"), "{err}");
    }

    let err = fails([
        "plan",
        "--melange-json",
        fixture("melange_example.json").to_str().unwrap(),
        "--formulation",
        "melange",
        "--backend",
        "branch-and-bound",
    ]);
    assert!(err.contains("microlp"), "{err}");
}

/// `plan --workload` on a light arena stream over L4 and A10G (profiles in a second or so).
fn light_plan() -> Vec<&'static str> {
    let mut args = vec!["plan"];
    args.extend_from_slice(&LIGHT_WORKLOAD);
    args.extend_from_slice(&["--gpus", "L4,A10G", "--no-cache"]);
    args
}

#[test]
fn a_rate_forecast_gives_a_schedule_the_autoscaler_replays() {
    let dir = TempDir::new("plan-windows");
    let file = dir.path().join("schedule.toml");
    let mut args = light_plan();
    args.extend_from_slice(&[
        "--quiet",
        "--json",
        "--windows",
        "2m=0.5,2m=3,2m=1",
        "--schedule-out",
        file.to_str().unwrap(),
    ]);
    let report = succeeds_json(args);
    let schedule = &report["schedule"];
    let windows = schedule["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    let labels: Vec<&str> = windows
        .iter()
        .map(|w| w["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["0-2m", "2m-4m", "4m-6m"]);
    // The schedule costs each window's plan over its hours, and never more than the peak fleet.
    let mut total = 0.0;
    for window in windows {
        let cost = num(&window["plan"]["hourly_cost"], "window $/h") * num(&window["hours"], "h");
        assert_close(num(&window["cost"], "window $"), cost, 1e-9, "window cost");
        total += cost;
    }
    assert_close(
        num(&schedule["schedule_cost"], "schedule $"),
        total,
        1e-9,
        "schedule",
    );
    assert!(total <= num(&schedule["peak_cost"], "peak $") + 1e-9);
    assert!(
        num(&windows[1]["plan"]["hourly_cost"], "peak window")
            > num(&windows[0]["plan"]["hourly_cost"], "first window"),
        "six times the rate must cost more"
    );

    // The file lists every type of the peak fleet in every window, starting where the window
    // before ended; `medley simulate` replays it and scales to those counts.
    let text = std::fs::read_to_string(&file).unwrap();
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    let file_windows = parsed["window"].as_array().unwrap();
    let starts: Vec<i64> = file_windows
        .iter()
        .map(|w| w["start"].as_integer().unwrap())
        .collect();
    assert_eq!(starts, [0, 120, 240]);
    let types: Vec<String> = schedule["peak_fleet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["gpu_type"].as_str().unwrap().to_string())
        .collect();
    let mut peaks = BTreeMap::new();
    for (window, planned) in file_windows.iter().zip(windows) {
        for gpu in &types {
            let count = window[gpu.as_str()].as_integer().unwrap();
            let in_plan = planned["plan"]["allocations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["gpu_type"] == gpu.as_str())
                .map_or(0, |a| count_of(&a["instances"]));
            assert_eq!(count, in_plan, "{gpu} in {}", planned["label"]);
            let peak = peaks.entry(gpu.clone()).or_insert(0);
            *peak = (*peak).max(count);
        }
    }
    let cluster = types
        .iter()
        .enumerate()
        .map(|(k, gpu)| format!("{gpu}:{}", u32::from(k == 0)))
        .collect::<Vec<_>>()
        .join(",");
    let summary = succeeds_json([
        "simulate",
        "--preset",
        "arena",
        "--rate",
        "1.5",
        "--duration",
        "6m",
        "--cluster",
        &cluster,
        "--autoscale",
        "schedule",
        "--schedule",
        file.to_str().unwrap(),
        "--json",
    ]);
    for scaled in summary["autoscale"]["types"].as_array().unwrap() {
        let gpu = scaled["instance"].as_str().unwrap();
        let final_ready = count(&scaled["final_ready"], "final");
        let last = file_windows[2][gpu].as_integer().unwrap() as u64;
        assert_eq!(final_ready, last, "{gpu} ends at the last window's count");
        assert!(count(&scaled["peak"], "peak") >= peaks[gpu] as u64, "{gpu}");
    }

    let err = fails(light_plan().into_iter().chain(["--windows", "2m=fast"]));
    assert!(err.contains("--windows entry '2m=fast'"), "{err}");
}

#[test]
fn a_stream_length_given_with_a_trace_is_an_error() {
    // A trace is replayed to its end; a stream length for it would be ignored, so it is refused.
    let trace = fixture("small_trace.csv");
    let err = fails([
        "plan",
        "--workload",
        trace.to_str().unwrap(),
        "--duration",
        "5m",
        "--gpus",
        "L4,A10G",
        "--slo-tpot",
        "120ms",
        "--no-cache",
    ]);
    assert!(
        err.contains("--duration") && err.contains("presets only"),
        "{err}"
    );
}

fn count_of(value: &Value) -> i64 {
    value.as_i64().expect("a whole number")
}

/// With --verify the fleet to run is the verified one: Mélange's output shape once printed the
/// solver's first plan even when simulation had rejected it and a later round passed.
#[test]
fn verified_plans_print_the_fleet_that_passed() {
    let mut args = quick_plan("arena", "24");
    args.push("--verify");
    let report = succeeds_json(args.iter().copied().chain(["--json"]));
    let rounds = report["verification"]["rounds"].as_array().unwrap();
    // This instance's first plan misses the SLO and a derated one passes.
    assert!(!rounds[0]["passed"].as_bool().unwrap(), "{rounds:?}");
    assert!(rounds.last().unwrap()["passed"].as_bool().unwrap());
    let final_plan = &report["verification"]["final_plan"];
    let melange = succeeds_json(args.iter().copied().chain(["--melange-output"]));
    for allocation in final_plan["allocations"].as_array().unwrap() {
        let gpu = allocation["gpu_type"].as_str().unwrap();
        let instances = allocation["instances"].as_f64().unwrap();
        if instances > 0.0 {
            assert_eq!(melange[gpu].as_f64(), Some(instances), "{gpu}: {melange}");
        }
    }
    assert_close(
        num(&melange["cost"], "cost"),
        num(&final_plan["hourly_cost"], "final $/h"),
        1e-3,
        "cost",
    );
    let text = succeeds(&args);
    let last = rounds.last().unwrap()["validation"]["allocation"]
        .as_str()
        .unwrap();
    assert!(
        text.contains(&format!("the fleet to run is {last}")),
        "{text}"
    );
}

/// `plan` for `workload` at `rate` req/s on L4 and A10G, with light, uncached profiles.
fn quick_plan(workload: &'static str, rate: &'static str) -> Vec<&'static str> {
    vec![
        "plan",
        "--workload",
        workload,
        "--rate",
        rate,
        "--gpus",
        "L4,A10G",
        "--slo-tpot",
        "120ms",
        "--requests-per-trial",
        "150",
        "--replicates",
        "1",
        "--no-cache",
        "--quiet",
    ]
}

/// A window at the workload's own rate buys the plan's own fleet: windows once planned for the
/// whole rate while the plan covers only the share in buckets some type serves (here the mixed
/// workload's longest requests, which neither type serves under the SLO).
#[test]
fn a_window_at_the_workloads_rate_buys_the_plans_fleet() {
    let report =
        succeeds_json(
            quick_plan("mixed", "4")
                .into_iter()
                .chain(["--windows", "1h=4", "--json"]),
        );
    assert!(
        num(&report["unservable_share"], "unservable share") > 0.0,
        "this instance must leave some of the workload unplanned"
    );
    let window = &report["schedule"]["windows"][0];
    assert_close(
        num(&window["plan"]["hourly_cost"], "window $/h"),
        num(&report["plan"]["hourly_cost"], "plan $/h"),
        1e-9,
        "window and plan",
    );
    assert_close(
        num(&window["request_rate"], "window rate"),
        num(&report["plan"]["classes"][0]["rate"], "planned rate"),
        1e-9,
        "planned rates",
    );
}

/// Requests longer than every profiled type holds are counted and left out of the verifying
/// simulations (no fleet of these types serves them), and a bucket is too long for a type only
/// when none of its requests fits: one long prompt once took the whole bucket out of the plan,
/// and the rejected requests then failed every fleet whatever it bought.
#[test]
fn requests_no_type_holds_are_set_aside_not_held_against_the_fleet() {
    let report = succeeds_json(
        quick_plan("mixed", "4")
            .into_iter()
            .chain(["--verify", "--json"]),
    );
    let beyond = count(&report["beyond_every_type"], "beyond every type");
    assert!(
        beyond > 0,
        "mixed holds prompts longer than L4 and A10G take"
    );
    let first = &report["verification"]["rounds"][0]["validation"];
    assert_eq!(count(&first["rejected"], "rejected"), 0);
    assert_eq!(
        count(&first["arrived"], "arrived") + beyond,
        count(&report["requests"], "requests")
    );
    // Only the buckets whose every request is too long, or that miss the SLO at any load,
    // are left unplanned: well under the 15.9% that any long request once dropped.
    assert!(
        num(&report["unservable_share"], "unservable share") < 0.10,
        "{}",
        report["unservable_share"]
    );
}
