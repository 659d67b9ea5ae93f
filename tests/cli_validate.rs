//! End-to-end tests of `medley validate`: a chosen fleet simulated on a preset workload, with
//! Mélange's router (capacity table profiled on the fly) or another router, its SLO attainment
//! overall, per instance type and per bucket, and its cost from the price book. Small streams and
//! few profiling requests keep them fast.

mod common;

use common::{LIGHT_WORKLOAD, assert_close, count, fails, num, succeeds, succeeds_json};
use serde_json::Value;

fn validate(cluster: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "validate",
        "--cluster",
        cluster,
        "--no-cache",
        "--quiet",
        "--json",
    ];
    args.extend_from_slice(&LIGHT_WORKLOAD);
    args.extend_from_slice(extra);
    succeeds_json(args)
}

/// $/h of one GPU of each named type in the melange-2024 book, as `medley prices` lists them.
fn price_of(gpu: &str) -> f64 {
    let books = succeeds_json(["prices", "--json"]);
    let book = books
        .as_array()
        .unwrap()
        .iter()
        .find(|book| book["name"] == "melange-2024")
        .expect("melange-2024 book");
    num(&book["prices"][gpu]["usd_per_hour"], gpu)
}

/// Checks the counts and groups of a validation add up and stay in range.
fn assert_consistent(validation: &Value) {
    let arrived = count(&validation["arrived"], "arrived");
    let completed = count(&validation["completed"], "completed");
    let rejected = count(&validation["rejected"], "rejected");
    assert!(arrived > 0);
    assert_eq!(
        completed + rejected,
        arrived,
        "no horizon: every request ends"
    );
    let attainment = num(&validation["attainment"], "attainment");
    assert!((0.0..=1.0).contains(&attainment), "{attainment}");
    let by_type: u64 = validation["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| count(&group["completed"], "type completed"))
        .sum();
    assert_eq!(
        by_type, completed,
        "every completed request ran on some type"
    );
    let by_bucket: u64 = validation["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| count(&group["completed"], "bucket completed"))
        .sum();
    assert!(by_bucket <= completed);
    for group in validation["types"]
        .as_array()
        .unwrap()
        .iter()
        .chain(validation["buckets"].as_array().unwrap())
    {
        let share = num(&group["attainment"], "group attainment");
        assert!((0.0..=1.0).contains(&share), "{group}");
        // A group meets its SLO exactly when every checked statistic is within its target.
        let within = group["verdict"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|check| {
                check["value_s"]
                    .as_f64()
                    .is_some_and(|value| value <= num(&check["target_s"], "target"))
            });
        assert_eq!(group["met"].as_bool(), Some(within), "{group}");
    }
}

#[test]
fn melange_router_on_a_profiled_mixed_fleet() {
    let report = validate("A10G:1,A100-80GB:1", &[]);
    assert_eq!(report["router"], "melange");
    assert!(
        report["capacity_table"]
            .as_str()
            .unwrap()
            .starts_with("profiled"),
        "{}",
        report["capacity_table"]
    );
    assert_eq!(report["price_book"], "melange-2024");
    let validation = &report["validation"];
    assert_eq!(validation["allocation"], "A10G:1,A100-80GB:1");
    assert_close(
        num(&validation["usd_per_hour"], "usd_per_hour"),
        price_of("A10G") + price_of("A100-80GB"),
        1e-12,
        "fleet cost from the price book",
    );
    assert_eq!(
        count(&report["requests"], "requests"),
        count(&validation["arrived"], "arrived")
    );
    assert_consistent(validation);
    let types: Vec<&str> = validation["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group["group"].as_str().unwrap())
        .collect();
    assert!(
        types.iter().all(|t| ["A10G", "A100-80GB"].contains(t)),
        "{types:?}"
    );
    // The SLO asked for is the one checked.
    let checks = validation["overall"]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1);
    assert_close(
        num(&checks[0]["target_s"], "target"),
        0.120,
        1e-12,
        "target",
    );
}

#[test]
fn other_routers_need_no_profiles_and_results_are_deterministic() {
    let first = validate("A10G:2", &["--router", "round-robin"]);
    let second = validate("A10G:2", &["--router", "round-robin"]);
    assert_eq!(first, second, "same inputs and seed, same report");
    assert_eq!(first["router"], "round-robin");
    assert!(first["capacity_table"].is_null());
    let validation = &first["validation"];
    assert_consistent(validation);
    assert_close(
        num(&validation["usd_per_hour"], "usd_per_hour"),
        2.0 * price_of("A10G"),
        1e-12,
        "two A10G",
    );

    // The table shows the same fleet, cost and groups.
    let mut args = vec!["validate", "--cluster", "A10G:2", "--router", "round-robin"];
    args.extend_from_slice(&["--no-cache", "--quiet"]);
    args.extend_from_slice(&LIGHT_WORKLOAD);
    let text = succeeds(args);
    assert!(text.contains("fleet A10G:2"), "{text}");
    assert!(
        text.contains(&format!("${:.2}/h", 2.0 * price_of("A10G"))),
        "{text}"
    );
    assert!(
        text.contains("per instance type") && text.contains("per size bucket"),
        "{text}"
    );
    assert!(text.contains("verdict:"), "{text}");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let mut args = vec!["validate", "--cluster", "H900-NOPE:2", "--quiet"];
    args.extend_from_slice(&LIGHT_WORKLOAD);
    let err = fails(args);
    assert!(
        err.contains("H900-NOPE") && err.contains("--cluster"),
        "names the GPU and the flag: {err}"
    );

    let err = fails(["validate", "--cluster", "A10G:1", "--slo-tpot", "120ms"]);
    assert!(err.contains("--workload"), "{err}");

    let err = fails([
        "validate",
        "--cluster",
        "A10G:one",
        "--workload",
        "arena",
        "--slo-tpot",
        "120ms",
    ]);
    assert!(err.contains("A10G:one"), "{err}");

    let mut args = vec!["validate", "--cluster", "A10G:1", "--router", "fastest"];
    args.extend_from_slice(&LIGHT_WORKLOAD);
    let err = fails(args);
    assert!(
        err.contains("fastest") && err.contains("round-robin"),
        "{err}"
    );

    // Inputs the chosen router or the command would not read are errors, not ignored.
    let table = common::fixture("melange_example.json");
    let table = table.to_str().unwrap();
    for (extra, says) in [
        (
            vec!["--router", "random", "--capacity", table],
            "--capacity",
        ),
        (
            vec!["--router", "random", "--assignment", table],
            "--assignment",
        ),
        (vec!["--gpus", "L4"], "--gpus"),
    ] {
        let mut args = vec!["validate", "--cluster", "A10G:1"];
        args.extend(extra);
        args.extend_from_slice(&LIGHT_WORKLOAD);
        let err = fails(args);
        assert!(err.contains(says), "{err}");
    }
}
