//! Solve time of the GPU-mix programs on seeded synthetic instances.
//!
//! Compact program, 60 buckets (10 input × 6 output) × 12 GPU types, slice factor 8: medley's
//! branch and bound at 10, 100, 300 and 1,000 req/s, and the same program on good_lp + microlp at
//! 10 and 100 req/s (at 1,000 it fails with "Singular matrix" or runs out of memory). The
//! 1,000 req/s instance of this seed is one the branch and bound does not close: its LP bound
//! ignores that slices come whole, so it stops at the default node limit and returns its best plan
//! marked unproven, with its bound (`Plan::proven_optimal`, `Plan::cost_lower_bound`); other seeds
//! at that rate are proven. So that one seed does not speak for all, seeds 1–10 are also timed
//! together: to a proven 1% gap (`SolveOptions::relative_gap`) at 100, 300 and 1,000 req/s, and to
//! proven optimality at 100 req/s. Mélange's program (microlp only): 60 buckets × 4 types, slice
//! factor 8, the size Mélange reports 0.14–1.14 s for, next to the compact program on the same
//! instance.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;
use solver::{Backend, Formulation, GpuType, PlanProblem, SolveOptions, WorkloadClass, solve};

fn main() {
    divan::main();
}

const INPUT_BUCKETS: usize = 10;
const OUTPUT_BUCKETS: usize = 6;

/// A seeded instance: bigger GPUs cost more and sustain more; capacity falls with request size;
/// small GPUs cannot hold the longest inputs (capacity 0).
fn synthetic(types: usize, rate: f64, seed: u64) -> PlanProblem {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut gpu_types = Vec::with_capacity(types);
    let mut capacity = Vec::with_capacity(types);
    for t in 0..types {
        // Relative speed 1..~12 across the catalogue; price grows a little slower than speed, with
        // per-type noise so no type dominates everywhere.
        let speed = 1.0 + 11.0 * t as f64 / (types.max(2) - 1) as f64;
        let price = 0.6 * speed.powf(0.85) * rng.random_range(0.85..1.15);
        // Memory class: the smallest GPUs cannot serve the largest input buckets.
        let longest_input_bucket = (4.0 + speed * 0.8).min(INPUT_BUCKETS as f64) as usize;
        let mut table = Vec::with_capacity(INPUT_BUCKETS * OUTPUT_BUCKETS);
        for input in 0..INPUT_BUCKETS {
            for output in 0..OUTPUT_BUCKETS {
                if input >= longest_input_bucket {
                    table.push(0.0);
                    continue;
                }
                let size_penalty = (1.0 + 0.6 * input as f64) * (1.0 + 0.9 * output as f64);
                // Big GPUs gain more on big requests (batching headroom), small ones on small.
                let affinity = 1.0 + 0.05 * speed * input as f64 / INPUT_BUCKETS as f64;
                let noise = rng.random_range(0.8..1.2);
                table.push(20.0 * speed * affinity * noise / size_penalty);
            }
        }
        gpu_types.push(GpuType::new(format!("gpu{t}"), price));
        capacity.push(table);
    }
    let weights: Vec<f64> = (0..INPUT_BUCKETS * OUTPUT_BUCKETS)
        .map(|_| rng.random_range(0.0..1.0_f64).powi(2))
        .collect();
    let total: f64 = weights.iter().sum();
    let bucket_labels = (0..INPUT_BUCKETS)
        .flat_map(|i| (0..OUTPUT_BUCKETS).map(move |j| format!("in{i}/out{j}")))
        .collect();
    PlanProblem {
        gpu_types,
        classes: vec![WorkloadClass {
            name: "synthetic".to_string(),
            request_rate: rate,
            bucket_labels,
            bucket_fractions: weights.iter().map(|w| w / total).collect(),
            capacity,
        }],
        slice_factor: 8,
        headroom: 0.0,
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
    bencher.bench(|| {
        for problem in &problems {
            solve(divan::black_box(problem), &options).unwrap();
        }
    });
}

/// Seeds 1–10 solved one after another per sample, to proven optimality (every one of them is
/// proven at this rate): the time is for all ten.
#[divan::bench(args = [100.0], sample_count = 3, sample_size = 1)]
fn branch_and_bound_60_buckets_12_types_ten_seeds_exact(bencher: divan::Bencher, rate: f64) {
    let problems: Vec<PlanProblem> = (1..=10).map(|seed| synthetic(12, rate, seed)).collect();
    let options = options(Formulation::Compact, Backend::BranchAndBound);
    bencher.bench(|| {
        for problem in &problems {
            assert!(
                solve(divan::black_box(problem), &options)
                    .unwrap()
                    .proven_optimal
            );
        }
    });
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
