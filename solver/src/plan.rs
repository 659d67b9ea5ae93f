//! Solving a [`PlanProblem`] into a [`Plan`]: counts, slice assignment, loads, baselines; and
//! [`solve_timed`], which adds the wall-clock solve time kept out of the plan itself.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, BaselineOutcome, single_type_baselines};
use crate::error::PlanError;
use crate::ilp::{CoreSolution, Demand, solve_core};
use crate::problem::{Backend, Formulation, GpuType, PlanProblem, SolveOptions};

/// Slack allowed between a type's recomputed load and its count before the solution is rejected.
const LOAD_CHECK_TOLERANCE: f64 = 1e-6;

/// How many instances (and GPUs) of one type the plan rents, and how busy they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeAllocation {
    /// The GPU type.
    pub gpu_type: String,
    /// Instances rented.
    pub instances: u32,
    /// GPUs in those instances.
    pub gpus: u32,
    /// Price of one instance, $/h.
    pub instance_hourly_cost: f64,
    /// Cost of these instances, $/h.
    pub hourly_cost: f64,
    /// Work assigned, in instances' worth of capacity (Σ slice rate / capacity).
    pub load: f64,
    /// `load / instances`: the share of the rented capacity in use; `None` with no instances.
    pub utilisation: Option<f64>,
}

/// The slices of one bucket that one type takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceShare {
    /// The GPU type.
    pub gpu_type: String,
    /// Slices (out of the slice factor).
    pub slices: u32,
    /// Fraction of the bucket's rate, `slices / slice_factor`.
    pub fraction: f64,
}

/// Where one bucket's traffic goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketAssignment {
    /// The bucket's label.
    pub bucket: String,
    /// Planned rate of the bucket (req/s, headroom included).
    pub rate: f64,
    /// Types with at least one slice (empty when the rate is zero).
    pub shares: Vec<SliceShare>,
}

/// Where one class's traffic goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAssignment {
    /// The class.
    pub class: String,
    /// Planned rate of the class (req/s, headroom included).
    pub rate: f64,
    /// One entry per bucket, in input order.
    pub buckets: Vec<BucketAssignment>,
}

/// The cheapest GPU mix the solver found, with how far from optimal it may be (nothing, unless a
/// node limit or gap tolerance ended the search first). Everything in it follows from the problem and options alone, so equal
/// inputs give byte-identical serialisations; the solve time lives in [`TimedPlan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The integer program solved.
    pub formulation: Formulation,
    /// The solver that ran (never `auto`).
    pub backend: Backend,
    /// Branch-and-bound nodes solved (`None` with microlp, which does not report them).
    pub search_nodes: Option<u64>,
    /// Whether the cost is proven optimal (to a relative 1e-9). `false` when the node limit
    /// stopped the search first, or when a relative gap tolerance let it stop early; the plan is
    /// then the best found and `cost_lower_bound` says how far from optimal it may be.
    pub proven_optimal: bool,
    /// The relative gap tolerance the search was given (0: prove optimality).
    #[serde(default)]
    pub relative_gap: f64,
    /// No plan costs less than this, $/h (the cost itself when proven optimal).
    pub cost_lower_bound: f64,
    /// Slices per bucket.
    pub slice_factor: u32,
    /// Extra rate fraction provisioned for.
    pub headroom: f64,
    /// Cost of the mix, $/h.
    pub hourly_cost: f64,
    /// Instances over all types.
    pub total_instances: u32,
    /// GPUs over all types.
    pub total_gpus: u32,
    /// One entry per GPU type, in input order.
    pub allocations: Vec<TypeAllocation>,
    /// Slice assignment per class and bucket.
    pub classes: Vec<ClassAssignment>,
    /// Single-type fleets and the mix's savings against each.
    pub baselines: Vec<Baseline>,
}

/// A plan and the wall-clock time its solve took. The time varies run to run, so it is kept out
/// of [`Plan`]: write `timed.plan` to deterministic result files, show `solve_seconds` to people.
/// Serialises as the plan's fields plus `solve_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedPlan {
    /// The plan.
    #[serde(flatten)]
    pub plan: Plan,
    /// Wall-clock seconds to build and solve the program.
    pub solve_seconds: f64,
}

impl Plan {
    /// `(cost − lower bound) / cost`: 0 when proven optimal.
    pub fn optimality_gap(&self) -> f64 {
        if self.hourly_cost > 0.0 {
            (self.hourly_cost - self.cost_lower_bound) / self.hourly_cost
        } else {
            0.0
        }
    }

    /// Instances of the named type (0 if absent).
    pub fn instances_of(&self, gpu_type: &str) -> u32 {
        self.allocations
            .iter()
            .find(|allocation| allocation.gpu_type == gpu_type)
            .map_or(0, |allocation| allocation.instances)
    }
}

/// The demands of a problem's classes, headroom included, as one scenario.
pub(crate) fn demands(problem: &PlanProblem) -> Vec<Demand<'_>> {
    problem
        .classes
        .iter()
        .map(|class| Demand {
            class_name: &class.name,
            bucket_labels: &class.bucket_labels,
            rates: problem.bucket_rates(class),
            capacity: &class.capacity,
        })
        .collect()
}

/// Solves the GPU-mix program (to proven optimality unless the options' node limit or gap tolerance
/// ends the search first) and reports the mix against single-type fleets.
pub fn solve(problem: &PlanProblem, options: &SolveOptions) -> Result<Plan, PlanError> {
    problem.validate()?;
    let scenario = demands(problem);
    let core = solve_core(
        &problem.gpu_types,
        std::slice::from_ref(&scenario),
        problem.slice_factor,
        options,
    )?;
    build_plan(problem, &scenario, &core, 0, options)
}

/// [`solve`], also measuring the wall-clock time of the whole solve.
pub fn solve_timed(problem: &PlanProblem, options: &SolveOptions) -> Result<TimedPlan, PlanError> {
    let start = Instant::now();
    let plan = solve(problem, options)?;
    Ok(TimedPlan {
        plan,
        solve_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Hourly cost of `instances` of `types`.
pub(crate) fn fleet_cost(types: &[GpuType], instances: &[u32]) -> f64 {
    types
        .iter()
        .zip(instances)
        .map(|(gpu, &n)| gpu.hourly_cost * f64::from(n))
        .sum()
}

/// Turns scenario `scenario_index` of a solution into a checked [`Plan`].
pub(crate) fn build_plan(
    problem: &PlanProblem,
    scenario: &[Demand<'_>],
    core: &CoreSolution,
    scenario_index: usize,
    options: &SolveOptions,
) -> Result<Plan, PlanError> {
    let types = &problem.gpu_types;
    let slice_factor = problem.slice_factor;
    let slices = &core.slices[scenario_index];
    let mut loads = vec![0.0_f64; types.len()];
    let mut classes = Vec::with_capacity(scenario.len());
    for (class_index, demand) in scenario.iter().enumerate() {
        let mut buckets = Vec::with_capacity(demand.rates.len());
        for (bucket, &rate) in demand.rates.iter().enumerate() {
            let counts = &slices[class_index][bucket];
            let assigned: u32 = counts.iter().sum();
            let expected = if rate > 0.0 { slice_factor } else { 0 };
            if assigned != expected {
                return Err(PlanError::Solver {
                    message: format!(
                        "class \"{}\" bucket {} got {assigned} slices, expected {expected}",
                        demand.class_name, demand.bucket_labels[bucket]
                    ),
                });
            }
            let mut shares = Vec::new();
            for (t, &count) in counts.iter().enumerate() {
                if count == 0 {
                    continue;
                }
                loads[t] +=
                    f64::from(count) * rate / f64::from(slice_factor) / demand.capacity[t][bucket];
                shares.push(SliceShare {
                    gpu_type: types[t].name.clone(),
                    slices: count,
                    fraction: f64::from(count) / f64::from(slice_factor),
                });
            }
            buckets.push(BucketAssignment {
                bucket: demand.bucket_labels[bucket].clone(),
                rate,
                shares,
            });
        }
        classes.push(ClassAssignment {
            class: demand.class_name.to_string(),
            rate: demand.rates.iter().sum(),
            buckets,
        });
    }
    let mut allocations = Vec::with_capacity(types.len());
    for ((gpu, &instances), &load) in types.iter().zip(&core.instances).zip(&loads) {
        if load > f64::from(instances) + LOAD_CHECK_TOLERANCE {
            return Err(PlanError::Solver {
                message: format!(
                    "type \"{}\" carries {load} instances of load on {instances} instances",
                    gpu.name
                ),
            });
        }
        allocations.push(TypeAllocation {
            gpu_type: gpu.name.clone(),
            instances,
            gpus: instances.saturating_mul(gpu.gpus_per_instance),
            instance_hourly_cost: gpu.hourly_cost,
            hourly_cost: gpu.hourly_cost * f64::from(instances),
            load,
            utilisation: (instances > 0).then(|| load / f64::from(instances)),
        });
    }
    let hourly_cost = fleet_cost(types, &core.instances);
    let backend = options.backend.resolve(options.formulation)?;
    Ok(Plan {
        formulation: options.formulation,
        backend,
        search_nodes: core.search_nodes,
        proven_optimal: core.unproven_bound.is_none(),
        // Only the branch and bound stops at a gap; microlp always proves the optimum.
        relative_gap: if backend == Backend::BranchAndBound {
            options.relative_gap
        } else {
            0.0
        },
        cost_lower_bound: core.unproven_bound.unwrap_or(hourly_cost).min(hourly_cost),
        slice_factor,
        headroom: problem.headroom,
        hourly_cost,
        total_instances: allocations.iter().map(|a| a.instances).sum(),
        total_gpus: allocations.iter().map(|a| a.gpus).sum(),
        allocations,
        classes,
        baselines: single_type_baselines(problem, hourly_cost),
    })
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{:.1}%", v * 100.0))
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "GPU mix: ${:.2}/h, {} instances, {} GPUs ({} formulation by {}{}, slice factor {}, headroom {:.1}%)",
            self.hourly_cost,
            self.total_instances,
            self.total_gpus,
            self.formulation,
            self.backend,
            self.search_nodes
                .map_or_else(String::new, |nodes| format!(" in {nodes} nodes")),
            self.slice_factor,
            self.headroom * 100.0,
        )?;
        if !self.proven_optimal {
            // The slack keeps a search that stopped exactly at the tolerance on this side.
            if self.relative_gap > 0.0 && self.optimality_gap() <= self.relative_gap + 1e-12 {
                writeln!(
                    f,
                    "within the requested gap: no plan costs less than ${:.4}/h (gap {:.3}%, \
                     requested at most {:.3}%)",
                    self.cost_lower_bound,
                    self.optimality_gap() * 100.0,
                    self.relative_gap * 100.0
                )?;
            } else {
                writeln!(
                    f,
                    "NOT PROVEN OPTIMAL: the node limit stopped the search; no plan costs less than \
                     ${:.4}/h (gap {:.3}%); raise the node limit{} to close it",
                    self.cost_lower_bound,
                    self.optimality_gap() * 100.0,
                    if self.relative_gap > 0.0 {
                        " or the gap tolerance"
                    } else {
                        ", or accept a stated gap (`medley plan --gap PCT`),"
                    }
                )?;
            }
        }
        let name_width = self
            .allocations
            .iter()
            .map(|a| a.gpu_type.len())
            .chain(
                self.classes
                    .iter()
                    .flat_map(|c| c.buckets.iter().map(|b| b.bucket.len())),
            )
            .max()
            .unwrap_or(4)
            .max(8);
        writeln!(
            f,
            "{:<name_width$}  {:>9}  {:>6}  {:>9}  {:>10}  {:>8}  {:>6}",
            "type", "instances", "GPUs", "$/h each", "$/h total", "load", "util"
        )?;
        for a in &self.allocations {
            writeln!(
                f,
                "{:<name_width$}  {:>9}  {:>6}  {:>9.2}  {:>10.2}  {:>8.3}  {:>6}",
                a.gpu_type,
                a.instances,
                a.gpus,
                a.instance_hourly_cost,
                a.hourly_cost,
                a.load,
                percent(a.utilisation)
            )?;
        }
        writeln!(
            f,
            "{:<name_width$}  {:>9}  {:>6}  {:>9}  {:>10.2}",
            "total", self.total_instances, self.total_gpus, "", self.hourly_cost
        )?;
        for class in &self.classes {
            writeln!(
                f,
                "\nslices per bucket, class \"{}\" ({:.3} req/s):",
                class.class, class.rate
            )?;
            write!(f, "{:<name_width$}  {:>10}", "bucket", "req/s")?;
            for a in &self.allocations {
                write!(f, "  {:>w$}", a.gpu_type, w = a.gpu_type.len().max(5))?;
            }
            writeln!(f)?;
            for bucket in &class.buckets {
                write!(f, "{:<name_width$}  {:>10.3}", bucket.bucket, bucket.rate)?;
                for a in &self.allocations {
                    let slices = bucket
                        .shares
                        .iter()
                        .find(|share| share.gpu_type == a.gpu_type)
                        .map_or(0, |share| share.slices);
                    let cell = if bucket.rate > 0.0 {
                        format!("{slices}/{}", self.slice_factor)
                    } else {
                        "-".to_string()
                    };
                    write!(f, "  {:>w$}", cell, w = a.gpu_type.len().max(5))?;
                }
                writeln!(f)?;
            }
        }
        writeln!(f, "\nsingle-type baselines:")?;
        writeln!(
            f,
            "{:<name_width$}  {:>9}  {:>6}  {:>10}  {:>8}",
            "type", "instances", "GPUs", "$/h", "savings"
        )?;
        for baseline in &self.baselines {
            match &baseline.outcome {
                BaselineOutcome::Possible {
                    instances,
                    gpus,
                    hourly_cost,
                    savings,
                } => writeln!(
                    f,
                    "{:<name_width$}  {:>9}  {:>6}  {:>10.2}  {:>8}",
                    baseline.gpu_type,
                    instances,
                    gpus,
                    hourly_cost,
                    percent(*savings)
                )?,
                BaselineOutcome::NotPossible { reason } => writeln!(
                    f,
                    "{:<name_width$}  not possible: {reason}",
                    baseline.gpu_type
                )?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for TimedPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.plan)?;
        writeln!(
            f,
            "\nsolved in {:.1} ms (wall clock)",
            self.solve_seconds * 1e3
        )
    }
}
