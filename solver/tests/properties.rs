//! Property tests: medley's branch and bound, the compact program solved by good_lp + microlp
//! and Mélange's own program reach the same optimum, which brute force confirms on tiny instances
//! (with caps and minimum counts too), and every plan satisfies its own constraints.

use proptest::prelude::*;
use solver::{
    Backend, BaselineOutcome, Formulation, GpuType, MelangeConfig, Plan, PlanError, PlanProblem,
    SolveOptions, WorkloadClass, solve,
};

fn options(formulation: Formulation) -> SolveOptions {
    SolveOptions {
        formulation,
        ..SolveOptions::default()
    }
}

/// The three ways to solve: branch and bound, the compact program on microlp, Mélange's program.
fn solve_three_ways(problem: &PlanProblem) -> [Result<Plan, PlanError>; 3] {
    let with = |formulation, backend| SolveOptions {
        formulation,
        backend,
        ..SolveOptions::default()
    };
    [
        solve(
            problem,
            &with(Formulation::Compact, Backend::BranchAndBound),
        ),
        solve(problem, &with(Formulation::Compact, Backend::Microlp)),
        solve(problem, &with(Formulation::Melange, Backend::Microlp)),
    ]
}

/// A medium problem (2–4 types, 4–10 buckets, slice factor 1–4): too big for brute force, enough
/// for the search to branch on counts and slices.
fn medium_problem() -> impl Strategy<Value = PlanProblem> {
    (2usize..=4, 4usize..=10, 1u32..=4, 1.0f64..80.0).prop_flat_map(|(types, buckets, k, rate)| {
        let prices = prop::collection::vec(0.2f64..5.0, types);
        let capacities = prop::collection::vec(
            prop::collection::vec(prop_oneof![1 => Just(0.0), 5 => 0.5f64..30.0], buckets),
            types,
        );
        let weights = prop::collection::vec(0.01f64..1.0, buckets);
        (prices, capacities, weights).prop_map(move |(prices, mut capacity, weights)| {
            for bucket in 0..buckets {
                if capacity.iter().all(|table| table[bucket] == 0.0) {
                    capacity[0][bucket] = 3.0;
                }
            }
            problem(&prices, capacity, &weights, rate, k)
        })
    })
}

/// A small problem with random minimum counts (0–2) and caps (none, or 0–6) on its types.
fn limited_problem() -> impl Strategy<Value = PlanProblem> {
    small_problem().prop_flat_map(|problem| {
        let types = problem.gpu_types.len();
        let limits = prop::collection::vec(
            (
                0u32..=2,
                prop_oneof![1 => Just(None), 2 => (0u32..=6).prop_map(Some)],
            ),
            types,
        );
        (Just(problem), limits).prop_map(|(mut problem, limits)| {
            for (gpu, (minimum, cap)) in problem.gpu_types.iter_mut().zip(limits) {
                gpu.min_instances = minimum;
                // A cap below the minimum is a validation error, not a planning question.
                gpu.max_instances = cap.map(|cap| cap.max(minimum));
            }
            problem
        })
    })
}

/// Small random problem: 1–3 types, 1–4 buckets, capacities 0 (can't serve) or 0.5–30 req/s.
fn small_problem() -> impl Strategy<Value = PlanProblem> {
    (1usize..=3, 1usize..=4, 1u32..=3, 0.5f64..40.0).prop_flat_map(|(types, buckets, k, rate)| {
        let prices = prop::collection::vec(0.2f64..5.0, types);
        let capacities = prop::collection::vec(
            prop::collection::vec(prop_oneof![1 => Just(0.0), 4 => 0.5f64..30.0], buckets),
            types,
        );
        let weights =
            prop::collection::vec(prop_oneof![1 => Just(0.0), 4 => 0.05f64..1.0], buckets);
        (prices, capacities, weights).prop_map(move |(prices, mut capacity, mut weights)| {
            // Every bucket servable by someone (type 0 gets a capacity where all are zero) and at
            // least one bucket with traffic.
            for bucket in 0..buckets {
                if capacity.iter().all(|table| table[bucket] == 0.0) {
                    capacity[0][bucket] = 3.0;
                }
            }
            if weights.iter().all(|&w| w == 0.0) {
                weights[0] = 1.0;
            }
            problem(&prices, capacity, &weights, rate, k)
        })
    })
}

/// Cheapest cost by enumerating every way to split every bucket's slices over the types, each
/// type's count raised to its minimum and checked against its cap; `None` when nothing fits.
fn brute_force_cost(problem: &PlanProblem) -> Option<f64> {
    let class = &problem.classes[0];
    let types = problem.gpu_types.len();
    let k = problem.slice_factor;
    let rates = problem.bucket_rates(class);
    // All splits of k slices over the types that can serve the bucket.
    let splits_of = |bucket: usize| -> Vec<Vec<u32>> {
        let mut splits = vec![vec![]];
        for t in 0..types {
            let mut next = Vec::new();
            for split in &splits {
                let used: u32 = split.iter().sum();
                let max = if class.capacity[t][bucket] > 0.0 {
                    k - used
                } else {
                    0
                };
                for count in 0..=max {
                    let mut extended = split.clone();
                    extended.push(count);
                    next.push(extended);
                }
            }
            splits = next;
        }
        splits
            .into_iter()
            .filter(|s| s.iter().sum::<u32>() == k)
            .collect()
    };
    let options: Vec<Vec<Vec<u32>>> = (0..rates.len())
        .map(|b| {
            if rates[b] > 0.0 {
                splits_of(b)
            } else {
                vec![vec![0; types]]
            }
        })
        .collect();
    let mut best = f64::INFINITY;
    let mut choice = vec![0usize; rates.len()];
    loop {
        let mut loads = vec![0.0; types];
        for (b, &pick) in choice.iter().enumerate() {
            for t in 0..types {
                let slices = options[b][pick][t];
                if slices > 0 {
                    loads[t] += f64::from(slices) * rates[b] / f64::from(k) / class.capacity[t][b];
                }
            }
        }
        let counts: Vec<u32> = loads
            .iter()
            .zip(&problem.gpu_types)
            .map(|(load, gpu)| solver::instances_for_load(*load).max(gpu.min_instances))
            .collect();
        let within_caps = counts
            .iter()
            .zip(&problem.gpu_types)
            .all(|(&n, gpu)| gpu.max_instances.is_none_or(|cap| n <= cap));
        if within_caps {
            let cost: f64 = counts
                .iter()
                .zip(&problem.gpu_types)
                .map(|(&n, gpu)| gpu.hourly_cost * f64::from(n))
                .sum();
            best = best.min(cost);
        }
        // Next combination (odometer).
        let mut position = 0;
        loop {
            if position == choice.len() {
                return best.is_finite().then_some(best);
            }
            choice[position] += 1;
            if choice[position] < options[position].len() {
                break;
            }
            choice[position] = 0;
            position += 1;
        }
    }
}

/// Names of [`solve_three_ways`]'s solvers, for messages.
const SOLVER_NAMES: [&str; 3] = [
    "branch-and-bound",
    "compact on microlp",
    "melange on microlp",
];

fn relative_gap(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn three_solvers_agree_and_match_brute_force(problem in small_problem()) {
        let brute = brute_force_cost(&problem).expect("no caps: always feasible");
        for (plan, name) in solve_three_ways(&problem).into_iter().zip(SOLVER_NAMES) {
            let plan = plan.unwrap();
            prop_assert!(plan.proven_optimal, "{}", name);
            prop_assert!(relative_gap(plan.hourly_cost, brute) <= 1e-6,
                "{} {} vs brute force {}", name, plan.hourly_cost, brute);
        }
    }

    #[test]
    fn three_solvers_agree_under_caps_and_minimums(problem in limited_problem()) {
        let brute = brute_force_cost(&problem);
        for (plan, name) in solve_three_ways(&problem).into_iter().zip(SOLVER_NAMES) {
            match (plan, brute) {
                (Ok(plan), Some(brute)) => {
                    prop_assert!(relative_gap(plan.hourly_cost, brute) <= 1e-6,
                        "{} {} vs brute force {}", name, plan.hourly_cost, brute);
                    for (allocation, gpu) in plan.allocations.iter().zip(&problem.gpu_types) {
                        prop_assert!(allocation.instances >= gpu.min_instances, "{}", name);
                        prop_assert!(gpu.max_instances.is_none_or(|cap| allocation.instances <= cap),
                            "{}", name);
                        prop_assert!(allocation.load <= f64::from(allocation.instances) + 1e-6);
                    }
                }
                (Err(_), None) => {}
                (plan, brute) => prop_assert!(false,
                    "{}: {:?} but brute force says {:?}", name, plan.map(|p| p.hourly_cost), brute),
            }
        }
    }

    #[test]
    fn three_solvers_agree_on_medium_problems(problem in medium_problem()) {
        let [fast, compact, melange] = solve_three_ways(&problem).map(Result::unwrap);
        prop_assert!(fast.proven_optimal);
        prop_assert!(relative_gap(fast.hourly_cost, compact.hourly_cost) <= 1e-6,
            "branch and bound {} vs compact on microlp {}", fast.hourly_cost, compact.hourly_cost);
        prop_assert!(relative_gap(fast.hourly_cost, melange.hourly_cost) <= 1e-6,
            "branch and bound {} vs melange on microlp {}", fast.hourly_cost, melange.hourly_cost);
    }

    #[test]
    fn a_gap_tolerance_brackets_the_optimum(problem in medium_problem(), percent in 1_u32..=10) {
        let tolerance = f64::from(percent) / 100.0;
        let exact = solve(&problem, &options(Formulation::Compact)).unwrap();
        let loose = solve(&problem, &SolveOptions {
            relative_gap: tolerance,
            ..options(Formulation::Compact)
        }).unwrap();
        // The bound it proves is below the optimum, its plan above, and the two within tolerance.
        prop_assert!(loose.cost_lower_bound <= exact.hourly_cost + 1e-9,
            "bound {} above the optimum {}", loose.cost_lower_bound, exact.hourly_cost);
        prop_assert!(loose.hourly_cost >= exact.hourly_cost - 1e-9);
        prop_assert!(loose.optimality_gap() <= tolerance + 1e-12,
            "gap {} over the tolerance {}", loose.optimality_gap(), tolerance);
        prop_assert_eq!(loose.relative_gap, tolerance);
        if loose.proven_optimal {
            prop_assert!(relative_gap(loose.hourly_cost, exact.hourly_cost) <= 1e-6);
        }
    }

    #[test]
    fn plans_respect_their_constraints(problem in small_problem()) {
        let plan = solve(&problem, &options(Formulation::Compact)).unwrap();
        let k = problem.slice_factor;
        let mut cost = 0.0;
        for (allocation, gpu) in plan.allocations.iter().zip(&problem.gpu_types) {
            prop_assert!(allocation.load <= f64::from(allocation.instances) + 1e-6);
            prop_assert_eq!(allocation.gpus, allocation.instances * gpu.gpus_per_instance);
            cost += gpu.hourly_cost * f64::from(allocation.instances);
        }
        prop_assert!((cost - plan.hourly_cost).abs() < 1e-9);
        for bucket in &plan.classes[0].buckets {
            let slices: u32 = bucket.shares.iter().map(|s| s.slices).sum();
            prop_assert_eq!(slices, if bucket.rate > 0.0 { k } else { 0 });
        }
        // Every single-type fleet is a feasible plan, so the optimum is no dearer.
        for baseline in &plan.baselines {
            if let BaselineOutcome::Possible { hourly_cost, savings, .. } = &baseline.outcome {
                prop_assert!(plan.hourly_cost <= hourly_cost + 1e-9);
                prop_assert!(savings.unwrap_or(0.0) >= -1e-12);
            }
        }
    }

    #[test]
    fn headroom_never_makes_a_plan_cheaper(problem in small_problem(), headroom in 0.0f64..1.0) {
        let base = solve(&problem, &options(Formulation::Compact)).unwrap();
        let padded = solve(&PlanProblem { headroom, ..problem.clone() }, &options(Formulation::Compact)).unwrap();
        prop_assert!(padded.hourly_cost >= base.hourly_cost - 1e-9);
    }

    #[test]
    fn melange_config_round_trips(problem in small_problem()) {
        let buckets = problem.classes[0].bucket_fractions.len();
        let config = MelangeConfig::from_problem(&problem, buckets).unwrap();
        let text = serde_json::to_string(&config).unwrap();
        let parsed = MelangeConfig::from_json(&text, "<test>").unwrap();
        prop_assert_eq!(&parsed, &config);
        let back = parsed.to_problem().unwrap();
        prop_assert_eq!(&back.gpu_types, &problem.gpu_types);
        prop_assert_eq!(&back.classes[0].capacity, &problem.classes[0].capacity);
        prop_assert_eq!(&back.classes[0].bucket_fractions, &problem.classes[0].bucket_fractions);
    }
}

/// A one-class problem with types `g0, g1, …` at `prices` and buckets `b0, b1, …` weighted by
/// `weights` (normalised).
fn problem(
    prices: &[f64],
    capacity: Vec<Vec<f64>>,
    weights: &[f64],
    rate: f64,
    slice_factor: u32,
) -> PlanProblem {
    let total: f64 = weights.iter().sum();
    PlanProblem {
        gpu_types: prices
            .iter()
            .enumerate()
            .map(|(t, &price)| GpuType::new(format!("g{t}"), price))
            .collect(),
        classes: vec![WorkloadClass {
            name: "c".to_string(),
            request_rate: rate,
            bucket_labels: (0..weights.len()).map(|b| format!("b{b}")).collect(),
            bucket_fractions: weights.iter().map(|w| w / total).collect(),
            capacity,
        }],
        slice_factor,
        headroom: 0.0,
    }
}
