//! Beyond Mélange: caps, minimums, headroom, multi-GPU instance types, several SLO classes, time
//! windows; and clear errors for infeasible or malformed input.

use std::path::Path;

use solver::{
    BaselineOutcome, Formulation, GpuType, MelangeConfig, PlanError, PlanProblem, SolveOptions,
    TimeWindow, WorkloadClass, plan_schedule, read_gpu_info, solve, write_gpu_info,
};

fn options() -> SolveOptions {
    SolveOptions::default()
}

/// Mélange's public example as a problem (see tests/fixtures/melange_example.json).
fn example() -> PlanProblem {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/melange_example.json");
    MelangeConfig::from_path(&path)
        .unwrap()
        .to_problem()
        .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn cap_forces_the_dearer_type() {
    // k = 1 optimum is 3 × A10G + 1 × A100 ($6.70). With A10G ≤ 2, the A10G can take in0/out0
    // (6/2 = 3 instances: too many) or in1/out0 (15/5 = 3: too many) or in0/out1 (3/1 = 3) or
    // in1/out1 (6/2 = 3): none fits, so everything goes to A100: 1.125 → 2 × A100 = $7.34.
    let mut problem = example();
    problem.gpu_types[0].max_instances = Some(2);
    for formulation in [Formulation::Compact, Formulation::Melange] {
        let plan = solve(
            &problem,
            &SolveOptions {
                formulation,
                ..SolveOptions::default()
            },
        )
        .unwrap();
        assert_eq!(plan.instances_of("A10G"), 0);
        assert_eq!(plan.instances_of("A100-80GB"), 2);
        assert!(close(plan.hourly_cost, 7.34));
    }
}

#[test]
fn caps_too_small_name_the_caps_and_the_uncapped_optimum() {
    let mut problem = example();
    problem.gpu_types[0].max_instances = Some(2);
    problem.gpu_types[1].max_instances = Some(1);
    let err = solve(&problem, &options()).unwrap_err();
    match &err {
        PlanError::CapsTooSmall { caps, uncapped } => {
            assert_eq!(
                caps,
                &[("A10G".to_string(), 2), ("A100-80GB".to_string(), 1)]
            );
            assert_eq!(
                uncapped.as_deref(),
                Some(&[("A10G".to_string(), 3), ("A100-80GB".to_string(), 1)][..])
            );
        }
        other => panic!("unexpected error {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("A10G <= 2") && text.contains("A100-80GB <= 1"),
        "{text}"
    );
}

#[test]
fn bucket_beyond_the_caps_is_named() {
    // in1/out0 carries 15 req/s; A10G ≤ 1 (5 req/s) + A100 ≤ 0 leaves 5 req/s for it.
    let mut problem = example();
    problem.gpu_types[0].max_instances = Some(1);
    problem.gpu_types[1].max_instances = Some(0);
    let err = solve(&problem, &options()).unwrap_err();
    assert!(
        matches!(&err, PlanError::BucketExceedsCaps { bucket, .. } if bucket == "in0/out0"),
        "{err}"
    );
}

#[test]
fn bucket_no_type_can_serve_is_named() {
    let mut problem = example();
    for table in &mut problem.classes[0].capacity {
        table[3] = 0.0; // in1/out1
    }
    let err = solve(&problem, &options()).unwrap_err();
    assert!(
        matches!(&err, PlanError::UnservableBucket { bucket, capped_out, .. }
            if bucket == "in1/out1" && capped_out.is_empty()),
        "{err}"
    );
    assert!(err.to_string().contains("in1/out1"));
    // Baselines report, not fail, when a type cannot serve a bucket.
    let mut problem = example();
    problem.classes[0].capacity[0][3] = 0.0;
    let plan = solve(&problem, &options()).unwrap();
    assert!(matches!(&plan.baselines[0].outcome,
        BaselineOutcome::NotPossible { reason } if reason.contains("in1/out1")));
}

#[test]
fn minimum_count_is_kept() {
    let mut problem = example();
    problem.gpu_types[1].min_instances = 2;
    let plan = solve(&problem, &options()).unwrap();
    // Two A100s carry the whole 1.125 instances of load, so no A10G is needed.
    assert_eq!(plan.instances_of("A100-80GB"), 2);
    assert_eq!(plan.instances_of("A10G"), 0);
    assert!(close(plan.hourly_cost, 7.34));
}

#[test]
fn headroom_equals_planning_for_the_higher_rate() {
    let mut padded = example();
    padded.headroom = 0.5;
    let mut faster = example();
    faster.classes[0].request_rate = 45.0;
    let a = solve(&padded, &options()).unwrap();
    let b = solve(&faster, &options()).unwrap();
    assert!(close(a.hourly_cost, b.hourly_cost));
    assert!(close(a.classes[0].rate, 45.0));
}

#[test]
fn multi_gpu_instance_types_report_gpus() {
    // A pair of A10Gs run tensor parallel: twice the price, assumed 2.5× the throughput.
    let mut problem = example();
    problem
        .gpu_types
        .push(GpuType::multi_gpu("A10Gx2", 1.01, 2));
    let pair: Vec<f64> = problem.classes[0].capacity[0]
        .iter()
        .map(|t| t * 2.5)
        .collect();
    problem.classes[0].capacity.push(pair);
    let plan = solve(&problem, &options()).unwrap();
    for allocation in &plan.allocations {
        let per_instance = if allocation.gpu_type == "A10Gx2" {
            2
        } else {
            1
        };
        assert_eq!(allocation.gpus, allocation.instances * per_instance);
    }
    assert_eq!(
        plan.total_gpus,
        plan.allocations.iter().map(|a| a.gpus).sum::<u32>()
    );
    assert!(close(problem.gpu_types[2].hourly_cost, 2.02));
    // The pair is cheaper per request than single A10Gs, so it cannot make the plan dearer.
    assert!(plan.hourly_cost <= 6.70 + 1e-9);
    // With only pairs allowed: loads 6/5 + 3/2.5 + 15/12.5 + 6/5 = 4.8 → 5 pairs, 10 GPUs, $10.10.
    problem.gpu_types[0].max_instances = Some(0);
    problem.gpu_types[1].max_instances = Some(0);
    let plan = solve(&problem, &options()).unwrap();
    assert_eq!(plan.instances_of("A10Gx2"), 5);
    assert_eq!(plan.total_gpus, 10);
    assert!(close(plan.hourly_cost, 10.10));
}

#[test]
fn slo_classes_share_the_fleet() {
    // A strict class sees half the capacities of the relaxed one.
    let relaxed = example();
    let mut strict = example();
    strict.classes[0].name = "strict".to_string();
    strict.classes[0].request_rate = 10.0;
    for table in &mut strict.classes[0].capacity {
        for capacity in table.iter_mut() {
            *capacity /= 2.0;
        }
    }
    let mut both = relaxed.clone();
    both.classes.push(strict.classes[0].clone());
    let alone_relaxed = solve(&relaxed, &options()).unwrap().hourly_cost;
    let alone_strict = solve(&strict, &options()).unwrap().hourly_cost;
    let shared = solve(&both, &options()).unwrap();
    assert_eq!(shared.classes.len(), 2);
    assert!(shared.hourly_cost <= alone_relaxed + alone_strict + 1e-9);
    assert!(shared.hourly_cost >= alone_relaxed.max(alone_strict) - 1e-9);
    let compact = shared.hourly_cost;
    let melange = solve(
        &both,
        &SolveOptions {
            formulation: Formulation::Melange,
            ..SolveOptions::default()
        },
    )
    .unwrap()
    .hourly_cost;
    assert!(close(compact, melange));
}

#[test]
fn schedule_costs_windows_against_the_peak() {
    let problem = example();
    let windows = [
        TimeWindow {
            label: "night".into(),
            hours: 8.0,
            request_rate: 6.0,
            bucket_fractions: None,
        },
        TimeWindow {
            label: "day".into(),
            hours: 12.0,
            request_rate: 30.0,
            bucket_fractions: None,
        },
        TimeWindow {
            label: "evening".into(),
            hours: 4.0,
            request_rate: 15.0,
            bucket_fractions: None,
        },
    ];
    let schedule = plan_schedule(&problem, &windows, &options()).unwrap();
    assert_eq!(schedule.peak_window, "day");
    assert!(close(schedule.total_hours, 24.0));
    // One mix for the whole day must cover the day window: the day plan is the peak fleet.
    let day = solve(&problem, &options()).unwrap();
    assert!(close(schedule.peak_hourly_cost, day.hourly_cost));
    assert!(close(schedule.peak_cost, day.hourly_cost * 24.0));
    let by_hand: f64 = schedule
        .windows
        .iter()
        .map(|w| w.hours * w.plan.hourly_cost)
        .sum();
    assert!(close(schedule.schedule_cost, by_hand));
    assert!(schedule.schedule_cost < schedule.peak_cost);
    let saving = schedule.savings_vs_peak.unwrap();
    assert!(close(
        saving,
        (schedule.peak_cost - schedule.schedule_cost) / schedule.peak_cost
    ));
    assert!(schedule.to_string().contains("evening"));
    // Proven: the peak fleet's bound is its cost, and nothing is flagged.
    assert_eq!(schedule.peak_cost_lower_bound, schedule.peak_hourly_cost);
    assert!(!schedule.to_string().contains("not proven"));

    // A 40% gap tolerance: every plan in it may stop early, and then says how far it may be off.
    let loose = plan_schedule(
        &problem,
        &windows,
        &SolveOptions {
            relative_gap: 0.4,
            ..options()
        },
    )
    .unwrap();
    assert!(loose.peak_cost_lower_bound <= schedule.peak_hourly_cost + 1e-9);
    assert!(loose.peak_hourly_cost >= schedule.peak_hourly_cost - 1e-9);
    assert!(loose.peak_hourly_cost - loose.peak_cost_lower_bound <= 0.4 * loose.peak_hourly_cost);
    let text = loose.to_string();
    let flagged = loose.peak_cost_lower_bound < loose.peak_hourly_cost - 1e-9
        || loose.windows.iter().any(|w| !w.plan.proven_optimal);
    assert_eq!(text.contains("not proven optimal"), flagged, "{text}");
    assert!(
        flagged,
        "a 40% tolerance should end one of these searches before its proof"
    );
}

#[test]
fn schedule_with_shifting_mix_covers_every_window() {
    // Night traffic is all in0/out1, where A10G is weakest; the peak fleet must still carry it.
    let problem = example();
    let windows = [
        TimeWindow {
            label: "night".into(),
            hours: 10.0,
            request_rate: 25.0,
            bucket_fractions: Some(vec![0.0, 1.0, 0.0, 0.0]),
        },
        TimeWindow {
            label: "day".into(),
            hours: 14.0,
            request_rate: 30.0,
            bucket_fractions: None,
        },
    ];
    let schedule = plan_schedule(&problem, &windows, &options()).unwrap();
    for window in &schedule.windows {
        for (entry, allocation) in schedule.peak_fleet.iter().zip(&window.plan.allocations) {
            assert_eq!(entry.gpu_type, allocation.gpu_type);
        }
        // Each window's own optimum is no dearer than the fleet that covers all windows.
        assert!(window.plan.hourly_cost <= schedule.peak_hourly_cost + 1e-9);
    }
}

#[test]
fn schedule_needs_one_class_and_windows() {
    let mut problem = example();
    assert_eq!(
        plan_schedule(&problem, &[], &options()).unwrap_err(),
        PlanError::NoWindows
    );
    problem.classes.push(problem.classes[0].clone());
    let window = TimeWindow {
        label: "w".into(),
        hours: 1.0,
        request_rate: 1.0,
        bucket_fractions: None,
    };
    assert_eq!(
        plan_schedule(&problem, &[window], &options()).unwrap_err(),
        PlanError::ScheduleNeedsOneClass { classes: 2 }
    );
}

#[test]
fn zero_rate_needs_nothing_and_reports_no_savings() {
    let mut problem = example();
    problem.classes[0].request_rate = 0.0;
    let plan = solve(&problem, &options()).unwrap();
    assert_eq!(plan.total_instances, 0);
    for baseline in &plan.baselines {
        assert!(matches!(
            baseline.outcome,
            BaselineOutcome::Possible {
                instances: 0,
                savings: None,
                ..
            }
        ));
    }
}

#[test]
fn invalid_problems_are_refused_with_the_place_named() {
    let mut problem = example();
    problem.slice_factor = 0;
    assert_eq!(problem.validate().unwrap_err(), PlanError::ZeroSliceFactor);
    // A slice factor in the billions once ran for minutes with no output.
    let mut problem = example();
    problem.slice_factor = 4_000_000_000;
    let text = problem.validate().unwrap_err().to_string();
    assert!(
        text.contains("slice_factor") && text.contains("1 to 1000"),
        "{text}"
    );

    let mut problem = example();
    problem.gpu_types[1].hourly_cost = f64::NAN;
    let text = solve(&problem, &options()).unwrap_err().to_string();
    assert!(
        text.contains("A100-80GB") && text.contains("hourly_cost"),
        "{text}"
    );

    let mut problem = example();
    problem.classes[0].bucket_fractions[0] = 0.5;
    assert!(matches!(
        problem.validate(),
        Err(PlanError::FractionsDoNotSumToOne { .. })
    ));

    let mut problem = example();
    problem.classes[0].capacity[1].pop();
    let text = problem.validate().unwrap_err().to_string();
    assert!(
        text.contains("A100-80GB") && text.contains("expected 4"),
        "{text}"
    );

    let mut problem = example();
    problem.gpu_types[0].min_instances = 3;
    problem.gpu_types[0].max_instances = Some(2);
    assert!(matches!(
        problem.validate(),
        Err(PlanError::MinAboveCap { .. })
    ));

    let mut problem = example();
    problem.gpu_types[1].name = "A10G".to_string();
    assert!(matches!(
        problem.validate(),
        Err(PlanError::DuplicateGpuType { .. })
    ));
}

#[test]
fn bad_melange_json_is_refused_with_the_key_named() {
    let ragged = r#"{"gpu_info": {"A": {"cost": 1, "tputs": [[1, 2], [3]]}},
        "workload_distribution": [[0.5, 0.5], [0, 0]], "total_request_rate": 1}"#;
    let text = MelangeConfig::from_json(ragged, "ragged.json")
        .unwrap()
        .to_problem()
        .unwrap_err()
        .to_string();
    assert!(text.contains("gpu_info.A.tputs[1]"), "{text}");

    let missing = r#"{"gpu_info": {}, "workload_distribution": [[1]]}"#;
    let text = MelangeConfig::from_json(missing, "missing.json")
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("missing.json") && text.contains("total_request_rate"),
        "{text}"
    );

    let unknown =
        r#"{"gpu_info": {}, "workload_distribution": [[1]], "total_request_rate": 1, "rate": 2}"#;
    let text = MelangeConfig::from_json(unknown, "unknown.json")
        .unwrap_err()
        .to_string();
    assert!(text.contains("rate") && text.contains("line"), "{text}");

    let reserved = r#"{"gpu_info": {"cost": {"cost": 1, "tputs": [[1]]}},
        "workload_distribution": [[1]], "total_request_rate": 1}"#;
    let text = MelangeConfig::from_json(reserved, "r.json")
        .unwrap()
        .to_problem()
        .unwrap_err()
        .to_string();
    assert!(text.contains("reserved"), "{text}");

    let twice = r#"{"gpu_info": {"A": {"cost": 1, "tputs": [[1]]}, "A": {"cost": 2, "tputs": [[1]]}},
        "workload_distribution": [[1]], "total_request_rate": 1}"#;
    let text = MelangeConfig::from_json(twice, "twice.json")
        .unwrap_err()
        .to_string();
    assert!(text.contains("twice"), "{text}");
}

#[test]
fn gpu_info_profiles_round_trip_through_a_file() {
    let path = std::env::temp_dir().join(format!(
        "medley-solver-profiles-{}.json",
        std::process::id()
    ));
    let problem = example();
    let gpu_info = solver::melange::gpu_info_from_tables(&problem, 0, 2).unwrap();
    write_gpu_info(&path, &gpu_info).unwrap();
    let read = read_gpu_info(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(read, gpu_info);
    assert_eq!(read.0[0].1.tputs, vec![vec![2.0, 1.0], vec![5.0, 2.0]]);
    assert!(matches!(read_gpu_info(&path), Err(PlanError::Io { .. })));
}

#[test]
fn hand_built_problem_without_json() {
    // Capacity tables come from elsewhere (profiling by simulation); the planner takes them as-is.
    let problem = PlanProblem {
        gpu_types: vec![GpuType::new("small", 1.0), GpuType::new("big", 3.0)],
        classes: vec![WorkloadClass {
            name: "chat".into(),
            request_rate: 10.0,
            bucket_labels: vec!["short".into(), "long".into()],
            bucket_fractions: vec![0.5, 0.5],
            capacity: vec![vec![5.0, 0.0], vec![10.0, 5.0]],
        }],
        slice_factor: 4,
        headroom: 0.0,
    };
    // long (5 req/s) only fits on big: 1 big. short (5 req/s): 1 small ($1) beats spare big room (none).
    let plan = solve(&problem, &options()).unwrap();
    assert_eq!(plan.instances_of("big"), 1);
    assert_eq!(plan.instances_of("small"), 1);
    assert!(close(plan.hourly_cost, 4.0));
}
