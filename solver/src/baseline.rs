//! Single-type baselines in closed form: the fleet of one type alone that carries the whole workload.

use serde::{Deserialize, Serialize};

use crate::problem::PlanProblem;

/// Slack subtracted before rounding a load up to whole instances, so that a load that is an
/// integer in exact arithmetic (e.g. 15 req/s at 5 req/s per instance) but lands a few ulps above it
/// in floating point (3.0000000000000004) does not buy a spare instance. 1e-9 instances is far
/// below any real capacity difference, so it never hides real load.
pub const CEIL_EPSILON: f64 = 1e-9;

/// Whole instances needed for `load` instances of work: `⌈load − ε⌉`, at least 1 when load > 0.
pub fn instances_for_load(load: f64) -> u32 {
    if load <= 0.0 {
        return 0;
    }
    let rounded = (load - CEIL_EPSILON).ceil().max(1.0);
    if rounded >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        rounded as u32
    }
}

/// Relative saving of a plan against a baseline, `(C_base − C) / C_base` as Mélange defines it.
/// `None` when the baseline costs nothing (the ratio is undefined).
pub fn savings(baseline_cost: f64, plan_cost: f64) -> Option<f64> {
    (baseline_cost > 0.0).then(|| (baseline_cost - plan_cost) / baseline_cost)
}

/// What a single-type fleet needs, or why it cannot work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BaselineOutcome {
    /// The type alone can carry the workload.
    Possible {
        /// Instances of the type.
        instances: u32,
        /// GPUs in those instances.
        gpus: u32,
        /// Cost of the fleet, $/h.
        hourly_cost: f64,
        /// Saving of the planned mix against this fleet; `None` when the fleet costs nothing.
        savings: Option<f64>,
    },
    /// The type alone cannot carry it.
    NotPossible {
        /// Why: the bucket it cannot serve, or the cap it would exceed.
        reason: String,
    },
}

/// The single-type baseline of one GPU type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The GPU type.
    pub gpu_type: String,
    /// Its fleet or why there is none.
    #[serde(flatten)]
    pub outcome: BaselineOutcome,
}

/// Baselines for every type: `n = ⌈Σ_classes R·(1+h)·Σ_b p_b / T_b⌉`, savings against `plan_cost`.
///
/// The type's own cap applies (a fleet over it is reported as not possible); minimum counts of
/// other types do not, since the baseline is a fleet of one type only.
pub fn single_type_baselines(problem: &PlanProblem, plan_cost: f64) -> Vec<Baseline> {
    (0..problem.gpu_types.len())
        .map(|type_index| Baseline {
            gpu_type: problem.gpu_types[type_index].name.clone(),
            outcome: single_type_baseline(problem, type_index, plan_cost),
        })
        .collect()
}

fn single_type_baseline(
    problem: &PlanProblem,
    type_index: usize,
    plan_cost: f64,
) -> BaselineOutcome {
    let gpu = &problem.gpu_types[type_index];
    let mut load = 0.0;
    for class in &problem.classes {
        let rates = problem.bucket_rates(class);
        for (bucket, &rate) in rates.iter().enumerate() {
            if rate <= 0.0 {
                continue;
            }
            let capacity = class.capacity[type_index][bucket];
            if capacity <= 0.0 {
                return BaselineOutcome::NotPossible {
                    reason: format!(
                        "cannot serve class \"{}\" bucket {}",
                        class.name, class.bucket_labels[bucket]
                    ),
                };
            }
            load += rate / capacity;
        }
    }
    let instances = instances_for_load(load);
    if let Some(cap) = gpu.max_instances.filter(|&cap| instances > cap) {
        return BaselineOutcome::NotPossible {
            reason: format!("needs {instances} instances, cap is {cap}"),
        };
    }
    let hourly_cost = gpu.hourly_cost * f64::from(instances);
    BaselineOutcome::Possible {
        instances,
        gpus: instances.saturating_mul(gpu.gpus_per_instance),
        hourly_cost,
        savings: savings(hourly_cost, plan_cost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_forgives_float_noise_but_not_real_load() {
        assert_eq!(instances_for_load(0.0), 0);
        assert_eq!(instances_for_load(3.0), 3);
        // 0.1 + 0.2 = 0.30000000000000004: ten of them must still be 3 instances.
        assert_eq!(instances_for_load((0.1 + 0.2) * 10.0), 3);
        assert_eq!(instances_for_load(3.000_001), 4);
        assert_eq!(instances_for_load(1e-12), 1);
    }

    #[test]
    fn savings_follow_melange_definition() {
        assert_eq!(savings(10.0, 7.5), Some(0.25));
        assert_eq!(savings(0.0, 0.0), None);
    }
}
