//! Seeded planning problems for measuring the solver (`benches/ilp.rs`, `medley bench --solver`),
//! so solve times can be measured and compared on the same instances:
//! - [`synthetic_problem`]: 60 request-size buckets (10 input × 6 output) and any number of GPU
//!   types, with prices and capacities shaped like a real catalogue (bigger GPUs cost more and
//!   sustain more; capacity falls with request size; small GPUs cannot hold the longest inputs),
//!   with independent noise per cell. They stand for no real GPU or model.
//! - [`profiled_problem`]: measured or simulated capacity profiles (Mélange's `gpu_info`, as
//!   `medley profile --out` writes them) under a seeded mix of request sizes.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::PlanError;
use crate::melange::{GpuInfo, MelangeConfig};
use crate::problem::{GpuType, PlanProblem, WorkloadClass};

const INPUT_BUCKETS: usize = 10;
const OUTPUT_BUCKETS: usize = 6;

/// A seeded problem: `types` GPU types (`gpu0`, `gpu1`, ...), one class of `rate` req/s spread
/// over 60 buckets, slice factor 8. Buckets a small type cannot hold have capacity 0.
pub fn synthetic_problem(types: usize, rate: f64, seed: u64) -> PlanProblem {
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
    let bucket_fractions = seeded_mix(&mut rng, INPUT_BUCKETS * OUTPUT_BUCKETS);
    let bucket_labels = (0..INPUT_BUCKETS)
        .flat_map(|i| (0..OUTPUT_BUCKETS).map(move |j| format!("in{i}/out{j}")))
        .collect();
    PlanProblem {
        gpu_types,
        classes: vec![WorkloadClass {
            name: "synthetic".to_string(),
            request_rate: rate,
            bucket_labels,
            bucket_fractions,
            capacity,
        }],
        slice_factor: 8,
        headroom: 0.0,
    }
}

/// Bucket fractions summing to 1, skewed (squares of uniform draws) so that some buckets carry
/// much more traffic than others, as in real traces.
fn seeded_mix(rng: &mut Pcg64, buckets: usize) -> Vec<f64> {
    let weights: Vec<f64> = (0..buckets)
        .map(|_| rng.random_range(0.0..1.0_f64).powi(2))
        .collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// The problem of serving `rate` req/s, spread over `gpu_info`'s bucket grid by a mix drawn from
/// `seed`, on its GPU types at its prices; slice factor 8. Buckets no type can serve (capacity 0
/// everywhere, as profiles report requests too long for every GPU) get no traffic.
pub fn profiled_problem(
    gpu_info: &GpuInfo,
    rate: f64,
    seed: u64,
) -> Result<PlanProblem, PlanError> {
    let (rows, columns) = gpu_info
        .0
        .first()
        .map(|(_, gpu)| (gpu.tputs.len(), gpu.tputs.first().map_or(0, Vec::len)))
        .ok_or_else(|| PlanError::InvalidInput {
            location: "gpu_info".to_string(),
            message: "has no GPU; expected at least one".to_string(),
        })?;
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut mix = seeded_mix(&mut rng, rows * columns);
    let mut dropped = false;
    for (bucket, share) in mix.iter_mut().enumerate() {
        let servable = gpu_info.0.iter().any(|(_, gpu)| {
            gpu.tputs
                .get(bucket / columns.max(1))
                .and_then(|row| row.get(bucket % columns.max(1)))
                .is_some_and(|&capacity| capacity > 0.0)
        });
        if !servable {
            *share = 0.0;
            dropped = true;
        }
    }
    if dropped {
        let total: f64 = mix.iter().sum();
        if total <= 0.0 {
            return Err(PlanError::InvalidInput {
                location: "gpu_info".to_string(),
                message: "no bucket has a GPU with capacity above 0; expected at least one"
                    .to_string(),
            });
        }
        mix.iter_mut().for_each(|share| *share /= total);
    }
    let config = MelangeConfig {
        gpu_info: gpu_info.clone(),
        workload_distribution: mix.chunks(columns.max(1)).map(<[f64]>::to_vec).collect(),
        total_request_rate: rate,
        slice_factor: 8,
    };
    config.to_problem()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::melange::MelangeGpu;

    fn info(tputs: [[f64; 2]; 2]) -> GpuInfo {
        GpuInfo(
            tputs
                .iter()
                .enumerate()
                .map(|(gpu, row)| {
                    (
                        format!("g{gpu}"),
                        MelangeGpu {
                            cost: 1.0 + gpu as f64,
                            tputs: vec![row.to_vec()],
                        },
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn buckets_no_gpu_serves_get_no_traffic() {
        let problem = profiled_problem(&info([[2.0, 0.0], [5.0, 0.0]]), 10.0, 3).unwrap();
        let fractions = &problem.classes[0].bucket_fractions;
        assert_eq!(fractions[1], 0.0);
        assert!((fractions[0] - 1.0).abs() < 1e-12);
        assert!(crate::solve(&problem, &crate::SolveOptions::default()).is_ok());
        let err = profiled_problem(&info([[0.0; 2]; 2]), 10.0, 3).unwrap_err();
        assert!(err.to_string().contains("capacity above 0"), "{err}");
    }
}
