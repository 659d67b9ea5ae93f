//! Solve time of the GPU-mix programs on seeded instances.
//!
//! Compact program, 60 buckets (10 input × 6 output) × 12 GPU types, slice factor 8: medley's
//! branch and bound at 10, 100, 300 and 1,000 req/s on seed 7, and the same program on good_lp +
//! microlp at 10 and 100 req/s (at 1,000 it fails with "Singular matrix" or runs out of memory).
//! The 1,000 req/s instance of that seed is one the branch and bound does not close: its LP bound
//! ignores that slices come whole, so it stops at the default node limit and returns its best plan
//! marked unproven, with its bound (`Plan::proven_optimal`, `Plan::cost_lower_bound`); other seeds
//! at that rate are proven. So that one seed does not speak for all, seeds 1–10 are also timed
//! together: to a proven 1% gap (`SolveOptions::relative_gap`) at 100, 300 and 1,000 req/s, and to
//! proven optimality at 100 req/s. Mélange's program (microlp only): 60 buckets × 4 types, slice
//! factor 8, the size Mélange reports 0.14–1.14 s for, next to the compact program on the same
//! instance.
//!
//! The synthetic capacities carry independent noise per cell, which makes near-ties between types
//! likelier than real profiles do. So the compact program is also timed on simulated profiles:
//! `fixtures/llama-3.1-8b_12-types_120ms.json`, written by
//! `medley profile --model Llama-3.1-8B --max-model-len 16384 --gpus
//! T4:tp2,L4,A10G,V100-16GB:tp2,A100-40GB,A100-80GB,L40S,H100-SXM,H100-PCIe,H200,MI300X,B200
//! --slo-norm-latency 120ms --out FILE` (hyperscaler prices; 60 buckets × 12 instance types),
//! under ten seeded mixes of request sizes (`solver::synthetic::profiled_problem`), to proven
//! optimality and to a proven 1% gap at 10, 100, 300 and 1,000 req/s.

use std::path::Path;

use solver::synthetic::{profiled_problem, synthetic_problem as synthetic};
use solver::{Backend, Formulation, PlanProblem, SolveOptions, read_gpu_info, solve};

fn main() {
    divan::main();
}

/// Solves every problem in turn; with `proven`, each must be proven optimal.
fn solve_each(problems: &[PlanProblem], options: &SolveOptions, proven: bool) {
    for problem in problems {
        let plan = solve(divan::black_box(problem), options).unwrap();
        assert!(plan.proven_optimal || !proven);
    }
}

fn options(formulation: Formulation, backend: Backend) -> SolveOptions {
    SolveOptions {
        formulation,
        backend,
        ..SolveOptions::default()
    }
}

#[divan::bench(args = [10.0, 100.0, 300.0, 1000.0], sample_count = 5, sample_size = 1)]
fn branch_and_bound_60_buckets_12_types(bencher: divan::Bencher, rate: f64) {
    let problem = synthetic(12, rate, 7);
    let options = options(Formulation::Compact, Backend::BranchAndBound);
    bencher.bench(|| solve(divan::black_box(&problem), &options).unwrap());
}

/// Seeds 1–10 solved one after another per sample, to a proven 1% gap: the time is for all ten.
#[divan::bench(args = [100.0, 300.0, 1000.0], sample_count = 5, sample_size = 1)]
fn branch_and_bound_60_buckets_12_types_ten_seeds_gap_1pct(bencher: divan::Bencher, rate: f64) {
    let problems: Vec<PlanProblem> = (1..=10).map(|seed| synthetic(12, rate, seed)).collect();
    let options = SolveOptions {
        relative_gap: 0.01,
        ..options(Formulation::Compact, Backend::BranchAndBound)
    };
    bencher.bench(|| solve_each(&problems, &options, false));
}

/// Seeds 1–10 solved one after another per sample, to proven optimality (every one of them is
/// proven at this rate): the time is for all ten.
#[divan::bench(args = [100.0], sample_count = 3, sample_size = 1)]
fn branch_and_bound_60_buckets_12_types_ten_seeds_exact(bencher: divan::Bencher, rate: f64) {
    let problems: Vec<PlanProblem> = (1..=10).map(|seed| synthetic(12, rate, seed)).collect();
    let options = options(Formulation::Compact, Backend::BranchAndBound);
    bencher.bench(|| solve_each(&problems, &options, true));
}

#[divan::bench(args = [10.0, 100.0], sample_count = 5, sample_size = 1)]
fn microlp_compact_60_buckets_12_types(bencher: divan::Bencher, rate: f64) {
    let problem = synthetic(12, rate, 7);
    let options = options(Formulation::Compact, Backend::Microlp);
    bencher.bench(|| solve(divan::black_box(&problem), &options).unwrap());
}

#[divan::bench(args = [10.0, 100.0, 1000.0], sample_count = 5, sample_size = 1)]
fn branch_and_bound_60_buckets_4_types(bencher: divan::Bencher, rate: f64) {
    let problem = synthetic(4, rate, 7);
    let options = options(Formulation::Compact, Backend::BranchAndBound);
    bencher.bench(|| solve(divan::black_box(&problem), &options).unwrap());
}

#[divan::bench(args = [10.0, 100.0, 1000.0], sample_count = 5, sample_size = 1)]
fn microlp_compact_60_buckets_4_types(bencher: divan::Bencher, rate: f64) {
    let problem = synthetic(4, rate, 7);
    let options = options(Formulation::Compact, Backend::Microlp);
    bencher.bench(|| solve(divan::black_box(&problem), &options).unwrap());
}

#[divan::bench(args = [10.0, 100.0, 1000.0], sample_count = 3, sample_size = 1)]
fn melange_60_buckets_4_types(bencher: divan::Bencher, rate: f64) {
    let problem = synthetic(4, rate, 7);
    let options = options(Formulation::Melange, Backend::Microlp);
    bencher.bench(|| solve(divan::black_box(&problem), &options).unwrap());
}

/// The ten seeded mixes over the simulated Llama-3.1-8B profiles of 12 instance types.
fn profiled_mixes(rate: f64) -> Vec<PlanProblem> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/fixtures/llama-3.1-8b_12-types_120ms.json");
    let gpu_info = read_gpu_info(&path).unwrap();
    (1..=10)
        .map(|seed| profiled_problem(&gpu_info, rate, seed).unwrap())
        .collect()
}

/// Simulated profiles, ten mixes solved one after another per sample, to proven optimality (all
/// forty are proven within the default node limit): the time is for all ten.
#[divan::bench(args = [10.0, 100.0, 300.0, 1000.0], sample_count = 3, sample_size = 1)]
fn branch_and_bound_profiled_60_buckets_12_types_ten_mixes_exact(
    bencher: divan::Bencher,
    rate: f64,
) {
    let problems = profiled_mixes(rate);
    let options = options(Formulation::Compact, Backend::BranchAndBound);
    bencher.bench(|| solve_each(&problems, &options, true));
}

/// Simulated profiles, ten mixes solved one after another per sample, to a proven 1% gap.
#[divan::bench(args = [10.0, 100.0, 300.0, 1000.0], sample_count = 5, sample_size = 1)]
fn branch_and_bound_profiled_60_buckets_12_types_ten_mixes_gap_1pct(
    bencher: divan::Bencher,
    rate: f64,
) {
    let problems = profiled_mixes(rate);
    let options = SolveOptions {
        relative_gap: 0.01,
        ..options(Formulation::Compact, Backend::BranchAndBound)
    };
    bencher.bench(|| solve_each(&problems, &options, false));
}
