//! Mélange's public example: 3 × A10G + 1 × A100 = $6.70 at slice factor 1, 2 × A10G + 1 × A100 =
//! $5.69 at slice factors 2, 4 and 8, for both programs and every solver (medley's branch and
//! bound and microlp). Not at every k ≥ 2: at k = 3 a finer split is cheaper still (see
//! `slice_factor_three_is_cheaper`).

use std::path::{Path, PathBuf};

use solver::{
    Backend, BaselineOutcome, Formulation, MelangeConfig, MelangeOutput, MelangeOverrides,
    SolveOptions, plan_melange_file, solve,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/melange_example.json")
}

fn options(formulation: Formulation) -> SolveOptions {
    SolveOptions {
        formulation,
        ..SolveOptions::default()
    }
}

/// Every (program, solver) pair that can run.
const SOLVERS: [(Formulation, Backend); 3] = [
    (Formulation::Compact, Backend::BranchAndBound),
    (Formulation::Compact, Backend::Microlp),
    (Formulation::Melange, Backend::Microlp),
];

fn check(slice_factor: u32, formulation: Formulation, a10g: u32, a100: u32, cost: f64) {
    for (program, backend) in SOLVERS.into_iter().filter(|(f, _)| *f == formulation) {
        check_with(slice_factor, program, backend, a10g, a100, cost);
    }
}

fn check_with(
    slice_factor: u32,
    formulation: Formulation,
    backend: Backend,
    a10g: u32,
    a100: u32,
    cost: f64,
) {
    let overrides = MelangeOverrides {
        slice_factor: Some(slice_factor),
        ..MelangeOverrides::default()
    };
    let options = SolveOptions {
        backend,
        ..options(formulation)
    };
    let plan = plan_melange_file(&fixture(), &overrides, &options).unwrap();
    assert_eq!(plan.backend, backend, "k={slice_factor} {formulation}");
    assert!(
        plan.proven_optimal,
        "k={slice_factor} {formulation} {backend}"
    );
    assert_eq!(
        plan.instances_of("A10G"),
        a10g,
        "k={slice_factor} {formulation}"
    );
    assert_eq!(
        plan.instances_of("A100-80GB"),
        a100,
        "k={slice_factor} {formulation}"
    );
    assert!(
        (plan.hourly_cost - cost).abs() < 1e-9,
        "k={slice_factor} {formulation}: cost {}",
        plan.hourly_cost
    );
    assert_eq!(plan.formulation, formulation);
    assert_eq!(plan.total_gpus, a10g + a100);
    for allocation in &plan.allocations {
        assert!(allocation.load <= f64::from(allocation.instances) + 1e-9);
    }
}

#[test]
fn slice_factor_one_gives_three_a10g_one_a100() {
    for formulation in [Formulation::Compact, Formulation::Melange] {
        check(1, formulation, 3, 1, 6.70);
    }
}

#[test]
fn slice_factor_two_and_more_gives_two_a10g_one_a100() {
    for slice_factor in [2, 4, 8] {
        for formulation in [Formulation::Compact, Formulation::Melange] {
            check(slice_factor, formulation, 2, 1, 5.69);
        }
    }
}

#[test]
fn fixture_parses_with_file_order_kept() {
    let config = MelangeConfig::from_path(&fixture()).unwrap();
    let names: Vec<&str> = config
        .gpu_info
        .0
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(names, ["A10G", "A100-80GB"]);
    assert_eq!(config.slice_factor, 1);
    assert_eq!(config.grid_shape().unwrap(), (2, 2));
}

#[test]
fn baselines_and_savings_match_hand_computation() {
    // Bucket rates 6, 3, 15, 6 req/s. A10G alone: 6/2 + 3/1 + 15/5 + 6/2 = 12 instances = $12.12.
    // A100 alone: 6/20 + 3/20 + 15/40 + 6/20 = 1.125 → 2 instances = $7.34.
    let problem = MelangeConfig::from_path(&fixture())
        .unwrap()
        .to_problem()
        .unwrap();
    let plan = solve(&problem, &options(Formulation::Compact)).unwrap();
    let expected = [("A10G", 12, 12.12), ("A100-80GB", 2, 7.34)];
    for (baseline, (name, instances, cost)) in plan.baselines.iter().zip(expected) {
        assert_eq!(baseline.gpu_type, name);
        match &baseline.outcome {
            BaselineOutcome::Possible {
                instances: got,
                hourly_cost,
                savings,
                ..
            } => {
                assert_eq!(*got, instances);
                assert!((hourly_cost - cost).abs() < 1e-9);
                let want = (cost - 6.70) / cost;
                assert!((savings.unwrap() - want).abs() < 1e-9);
            }
            BaselineOutcome::NotPossible { reason } => panic!("{name}: {reason}"),
        }
    }
}

#[test]
fn melange_output_shape() {
    let problem = MelangeConfig::from_path(&fixture())
        .unwrap()
        .to_problem()
        .unwrap();
    let plan = solve(&problem, &options(Formulation::Compact)).unwrap();
    let output = serde_json::to_value(MelangeOutput::from_plan(&plan)).unwrap();
    let object = output.as_object().unwrap();
    assert_eq!(object.len(), 3);
    assert_eq!(object["A10G"].as_f64(), Some(3.0));
    assert_eq!(object["A100-80GB"].as_f64(), Some(1.0));
    assert!((object["cost"].as_f64().unwrap() - 6.70).abs() < 1e-9);
}

#[test]
fn slice_assignment_accounts_for_every_slice_and_display_names_types() {
    let overrides = MelangeOverrides {
        slice_factor: Some(2),
        ..MelangeOverrides::default()
    };
    let plan = plan_melange_file(&fixture(), &overrides, &options(Formulation::Compact)).unwrap();
    for bucket in &plan.classes[0].buckets {
        let slices: u32 = bucket.shares.iter().map(|share| share.slices).sum();
        assert_eq!(slices, 2, "bucket {}", bucket.bucket);
        let fraction: f64 = bucket.shares.iter().map(|share| share.fraction).sum();
        assert!((fraction - 1.0).abs() < 1e-12);
    }
    let table = plan.to_string();
    assert!(
        table.contains("A10G") && table.contains("A100-80GB"),
        "{table}"
    );
    assert!(table.contains("5.69"), "{table}");
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["formulation"], "compact");
    assert_eq!(json["allocations"][0]["instances"], 2);
}

#[test]
fn slice_factor_three_is_cheaper() {
    // Bucket rates 6, 3, 15, 6 req/s. All on one A100 is 1.125 instances of load. At k = 3 one slice
    // of in1/out0 (5 req/s) fills one A10G exactly (5/5 = 1) and takes 5/40 = 0.125 off the A100,
    // leaving exactly 1.0: 1 × A10G + 1 × A100 = $4.68. (At k = 2 or 4 no slice set that fits one
    // A10G takes 0.125 off the A100, hence 2 × A10G.)
    for formulation in [Formulation::Compact, Formulation::Melange] {
        check(3, formulation, 1, 1, 4.68);
    }
}
