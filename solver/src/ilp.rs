//! The integer programs (Mélange's and the compact one), solved by good_lp + microlp or, for the
//! compact program, by medley's own branch and bound ([`crate::branch_bound`]).
//!
//! Both programs choose integer instance counts `n_t` and send each of the `k` equal slices of every
//! bucket's rate to one type. Mélange uses a binary `x[b,s,t]` per slice; the compact program uses
//! an integer `y[b,t] ∈ 0..=k` counting slices, which removes the slices' symmetry. The two have the
//! same optimal cost: any `x` maps to `y[b,t] = Σ_s x[b,s,t]` and back.
//!
//! Several demand *scenarios* may share one set of counts (each must fit on its own); that gives the
//! fleet that covers every window of a time-varying workload.

use good_lp::solvers::microlp::microlp;
use good_lp::{
    Expression, ProblemVariables, Solution, SolutionStatus, SolverModel, Variable,
    WithInitialSolution, WithTimeLimit, variable,
};

use crate::branch_bound::solve_branch_and_bound;
use crate::error::PlanError;
use crate::problem::{Backend, Formulation, GpuType, SolveOptions};

/// One class's demand in one scenario: planned req/s per bucket and `capacity[type][bucket]`.
#[derive(Debug, Clone)]
pub(crate) struct Demand<'a> {
    pub class_name: &'a str,
    pub bucket_labels: &'a [String],
    pub rates: Vec<f64>,
    pub capacity: &'a [Vec<f64>],
}

/// A solved program: counts per type and slices per `[scenario][class][bucket][type]`.
#[derive(Debug, Clone)]
pub(crate) struct CoreSolution {
    pub instances: Vec<u32>,
    pub slices: Vec<Vec<Vec<Vec<u32>>>>,
    /// Branch-and-bound nodes solved (`None` from microlp, which does not say).
    pub search_nodes: Option<u64>,
    /// `Some(bound)` when the node limit or the gap tolerance ended the search before optimality
    /// was proven: the least cost any plan could still have.
    pub unproven_bound: Option<f64>,
}

/// Load one slice of `rate` puts on one instance of a type of `capacity`, in instances.
fn slice_load(rate: f64, slice_factor: u32, capacity: f64) -> f64 {
    rate / f64::from(slice_factor) / capacity
}

/// Whether type `t` may take traffic of this bucket at all.
pub(crate) fn can_serve(gpu: &GpuType, capacity: f64) -> bool {
    capacity > 0.0 && gpu.max_instances != Some(0)
}

/// Fails early, with the bucket named, when a bucket cannot be served however large the fleet.
fn check_buckets(types: &[GpuType], scenarios: &[Vec<Demand<'_>>]) -> Result<(), PlanError> {
    for scenario in scenarios {
        for demand in scenario {
            for (bucket, &rate) in demand.rates.iter().enumerate() {
                if rate <= 0.0 {
                    continue;
                }
                let servable =
                    (0..types.len()).any(|t| can_serve(&types[t], demand.capacity[t][bucket]));
                if !servable {
                    let capped_out = (0..types.len())
                        .filter(|&t| demand.capacity[t][bucket] > 0.0)
                        .map(|t| types[t].name.clone())
                        .collect();
                    return Err(PlanError::UnservableBucket {
                        class: demand.class_name.to_string(),
                        bucket: demand.bucket_labels[bucket].clone(),
                        rate,
                        capped_out,
                    });
                }
                // If every capable type is capped, the bucket alone must fit in the caps.
                let mut max_rate = 0.0;
                let mut bounded = true;
                for (t, gpu) in types.iter().enumerate() {
                    let capacity = demand.capacity[t][bucket];
                    if capacity > 0.0 {
                        match gpu.max_instances {
                            Some(cap) => max_rate += f64::from(cap) * capacity,
                            None => bounded = false,
                        }
                    }
                }
                if bounded && rate > max_rate * (1.0 + 1e-9) {
                    return Err(PlanError::BucketExceedsCaps {
                        class: demand.class_name.to_string(),
                        bucket: demand.bucket_labels[bucket].clone(),
                        rate,
                        max_rate,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Cheapest-per-unit-of-work greedy: every bucket wholly on the type with least `cost / capacity`.
/// Gives a feasible incumbent (unless caps bite) to seed the search and bound the counts.
pub(crate) fn greedy(
    types: &[GpuType],
    scenarios: &[Vec<Demand<'_>>],
    slice_factor: u32,
) -> Option<CoreSolution> {
    let mut instances: Vec<u32> = types.iter().map(|gpu| gpu.min_instances).collect();
    let mut slices = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        let mut loads = vec![0.0_f64; types.len()];
        let mut scenario_slices = Vec::with_capacity(scenario.len());
        for demand in scenario {
            let mut class_slices = Vec::with_capacity(demand.rates.len());
            for (bucket, &rate) in demand.rates.iter().enumerate() {
                let mut counts = vec![0_u32; types.len()];
                if rate > 0.0 {
                    let best = (0..types.len())
                        .filter(|&t| can_serve(&types[t], demand.capacity[t][bucket]))
                        .min_by(|&a, &b| {
                            let cost_a = types[a].hourly_cost / demand.capacity[a][bucket];
                            let cost_b = types[b].hourly_cost / demand.capacity[b][bucket];
                            cost_a.total_cmp(&cost_b)
                        })?;
                    counts[best] = slice_factor;
                    loads[best] += f64::from(slice_factor)
                        * slice_load(rate, slice_factor, demand.capacity[best][bucket]);
                }
                class_slices.push(counts);
            }
            scenario_slices.push(class_slices);
        }
        for (count, load) in instances.iter_mut().zip(&loads) {
            // Plain ceil (no epsilon): a float-inflated load only makes the incumbent dearer, never wrong.
            let needed = load.ceil();
            if needed > f64::from(u32::MAX) {
                return None;
            }
            *count = (*count).max(needed as u32);
        }
        slices.push(scenario_slices);
    }
    let within_caps = types
        .iter()
        .zip(&instances)
        .all(|(gpu, &n)| gpu.max_instances.is_none_or(|cap| n <= cap));
    within_caps.then_some(CoreSolution {
        instances,
        slices,
        search_nodes: None,
        unproven_bound: None,
    })
}

/// Upper bound on `n_t` that keeps at least one optimal solution: no more than the load of every
/// bucket it can serve, no more than the cap, and no dearer alone than a known feasible plan.
fn count_upper_bound(
    types: &[GpuType],
    scenarios: &[Vec<Demand<'_>>],
    incumbent_cost: Option<f64>,
    type_index: usize,
) -> f64 {
    let gpu = &types[type_index];
    let mut most_load = 0.0_f64;
    for scenario in scenarios {
        let mut load = 0.0;
        for demand in scenario {
            for (bucket, &rate) in demand.rates.iter().enumerate() {
                let capacity = demand.capacity[type_index][bucket];
                if rate > 0.0 && capacity > 0.0 {
                    load += rate / capacity;
                }
            }
        }
        most_load = most_load.max(load);
    }
    let mut bound = most_load.ceil().max(f64::from(gpu.min_instances));
    if let Some(cap) = gpu.max_instances {
        bound = bound.min(f64::from(cap));
    }
    if let Some(cost) = incumbent_cost.filter(|_| gpu.hourly_cost > 0.0) {
        // An optimum costs at most the incumbent, so c_t·n_t ≤ incumbent; the 1e-9 absorbs rounding.
        let by_cost = (cost / gpu.hourly_cost + 1e-9).floor();
        bound = bound.min(by_cost.max(f64::from(gpu.min_instances)));
    }
    bound
}

/// Solves the chosen program for scenarios sharing counts; errors name the bucket/type/cap at fault.
pub(crate) fn solve_core(
    types: &[GpuType],
    scenarios: &[Vec<Demand<'_>>],
    slice_factor: u32,
    options: &SolveOptions,
) -> Result<CoreSolution, PlanError> {
    options.validate()?;
    check_buckets(types, scenarios)?;
    match solve_with_backend(types, scenarios, slice_factor, options)? {
        Some(solution) => Ok(solution),
        None => Err(diagnose_infeasible(types, scenarios, slice_factor, options)),
    }
}

/// Runs the solver `options` asks for; `Ok(None)` when the program is infeasible.
fn solve_with_backend(
    types: &[GpuType],
    scenarios: &[Vec<Demand<'_>>],
    slice_factor: u32,
    options: &SolveOptions,
) -> Result<Option<CoreSolution>, PlanError> {
    match options.backend.resolve(options.formulation)? {
        Backend::BranchAndBound => {
            let solved = solve_branch_and_bound(
                types,
                scenarios,
                slice_factor,
                options.time_limit,
                options.node_limit,
                options.relative_gap,
            )?;
            Ok(solved.map(|(mut solution, stats)| {
                solution.search_nodes = Some(stats.nodes);
                solution.unproven_bound = stats.unproven_bound;
                solution
            }))
        }
        Backend::Microlp | Backend::Auto => solve_program(types, scenarios, slice_factor, options),
    }
}

/// Explains an infeasible program: only caps can make it so once every bucket is servable.
fn diagnose_infeasible(
    types: &[GpuType],
    scenarios: &[Vec<Demand<'_>>],
    slice_factor: u32,
    options: &SolveOptions,
) -> PlanError {
    let caps: Vec<(String, u32)> = types
        .iter()
        .filter_map(|gpu| gpu.max_instances.map(|cap| (gpu.name.clone(), cap)))
        .collect();
    if caps.is_empty() {
        return PlanError::Solver {
            message: "the program is infeasible although no type is capped (numerical trouble?)"
                .to_string(),
        };
    }
    let uncapped_types: Vec<GpuType> = types
        .iter()
        .map(|gpu| GpuType {
            max_instances: None,
            ..gpu.clone()
        })
        .collect();
    let uncapped = solve_with_backend(&uncapped_types, scenarios, slice_factor, options)
        .ok()
        .flatten()
        .map(|solution| {
            types
                .iter()
                .zip(solution.instances)
                .map(|(gpu, n)| (gpu.name.clone(), n))
                .collect()
        });
    PlanError::CapsTooSmall { caps, uncapped }
}

/// One assignment variable: which scenario/class/bucket/type it belongs to and its slice load.
struct AssignVar {
    scenario: usize,
    class: usize,
    bucket: usize,
    gpu: usize,
    variable: Variable,
    /// Instances of load per slice the variable carries.
    load: f64,
}

/// Builds and solves the program; `Ok(None)` when it is infeasible.
fn solve_program(
    types: &[GpuType],
    scenarios: &[Vec<Demand<'_>>],
    slice_factor: u32,
    options: &SolveOptions,
) -> Result<Option<CoreSolution>, PlanError> {
    let incumbent = greedy(types, scenarios, slice_factor);
    let incumbent_cost = incumbent.as_ref().map(|solution| {
        types
            .iter()
            .zip(&solution.instances)
            .map(|(gpu, &n)| gpu.hourly_cost * f64::from(n))
            .sum::<f64>()
    });

    let mut variables = ProblemVariables::new();
    let counts: Vec<Variable> = (0..types.len())
        .map(|t| {
            let upper = count_upper_bound(types, scenarios, incumbent_cost, t);
            variables.add(
                variable()
                    .integer()
                    .min(f64::from(types[t].min_instances))
                    .max(upper),
            )
        })
        .collect();

    let mut assignments: Vec<AssignVar> = Vec::new();
    // Per scenario, per (class, bucket): the variables whose slices must add up to k.
    let mut covers: Vec<(Expression, f64)> = Vec::new();
    let mut fixed_loads = vec![vec![0.0_f64; types.len()]; scenarios.len()];
    let mut fixed_slices: Vec<(usize, usize, usize, usize)> = Vec::new();
    for (scenario_index, scenario) in scenarios.iter().enumerate() {
        for (class_index, demand) in scenario.iter().enumerate() {
            for (bucket, &rate) in demand.rates.iter().enumerate() {
                if rate <= 0.0 {
                    continue;
                }
                let servers: Vec<usize> = (0..types.len())
                    .filter(|&t| can_serve(&types[t], demand.capacity[t][bucket]))
                    .collect();
                if servers.len() == 1 {
                    // One type can serve the bucket: its load is a constant, no variable needed.
                    let t = servers[0];
                    fixed_loads[scenario_index][t] += rate / demand.capacity[t][bucket];
                    fixed_slices.push((scenario_index, class_index, bucket, t));
                    continue;
                }
                match options.formulation {
                    Formulation::Compact => {
                        let mut cover = Expression::with_capacity(servers.len());
                        for &t in &servers {
                            let var = variables
                                .add(variable().integer().min(0).max(f64::from(slice_factor)));
                            cover.add_mul(1.0, var);
                            assignments.push(AssignVar {
                                scenario: scenario_index,
                                class: class_index,
                                bucket,
                                gpu: t,
                                variable: var,
                                load: slice_load(rate, slice_factor, demand.capacity[t][bucket]),
                            });
                        }
                        covers.push((cover, f64::from(slice_factor)));
                    }
                    Formulation::Melange => {
                        for _slice in 0..slice_factor {
                            let mut cover = Expression::with_capacity(servers.len());
                            for &t in &servers {
                                let var = variables.add(variable().binary());
                                cover.add_mul(1.0, var);
                                assignments.push(AssignVar {
                                    scenario: scenario_index,
                                    class: class_index,
                                    bucket,
                                    gpu: t,
                                    variable: var,
                                    load: slice_load(
                                        rate,
                                        slice_factor,
                                        demand.capacity[t][bucket],
                                    ),
                                });
                            }
                            covers.push((cover, 1.0));
                        }
                    }
                }
            }
        }
    }

    let mut objective = Expression::with_capacity(types.len());
    for (gpu, &count) in types.iter().zip(&counts) {
        objective.add_mul(gpu.hourly_cost, count);
    }
    let mut loads: Vec<Vec<Expression>> =
        vec![vec![Expression::default(); types.len()]; scenarios.len()];
    for assign in &assignments {
        loads[assign.scenario][assign.gpu].add_mul(assign.load, assign.variable);
    }

    let warm_start = incumbent
        .as_ref()
        .map(|solution| warm_start_values(solution, &counts, &assignments, options.formulation));

    let mut model = variables.minimise(objective).using(microlp);
    for (cover, slices) in covers {
        model = model.with(cover.eq(slices));
    }
    for (scenario_loads, fixed) in loads.into_iter().zip(&fixed_loads) {
        for ((load, &count), &fixed_load) in scenario_loads.into_iter().zip(&counts).zip(fixed) {
            model = model.with((load + fixed_load).leq(count));
        }
    }
    if let Some(values) = warm_start {
        model = model.with_initial_solution(values);
    }
    if let Some(limit) = options.time_limit {
        model = model.with_time_limit(limit.as_secs_f64());
    }
    let solution = match model.solve() {
        Ok(solution) => solution,
        Err(good_lp::ResolutionError::Infeasible) => return Ok(None),
        Err(other) => {
            return Err(PlanError::Solver {
                message: other.to_string(),
            });
        }
    };
    let status = solution.status();
    if !matches!(status, SolutionStatus::Optimal) {
        return Err(PlanError::Solver {
            message: format!(
                "stopped before proving optimality ({status:?}); raise or drop the time limit"
            ),
        });
    }

    let instances: Vec<u32> = counts
        .iter()
        .map(|&count| solution.value(count).round().max(0.0) as u32)
        .collect();
    let mut slices: Vec<Vec<Vec<Vec<u32>>>> = scenarios
        .iter()
        .map(|scenario| {
            scenario
                .iter()
                .map(|demand| vec![vec![0_u32; types.len()]; demand.rates.len()])
                .collect()
        })
        .collect();
    for &(scenario, class, bucket, t) in &fixed_slices {
        slices[scenario][class][bucket][t] = slice_factor;
    }
    for assign in &assignments {
        let units = solution.value(assign.variable).round().max(0.0) as u32;
        slices[assign.scenario][assign.class][assign.bucket][assign.gpu] += units;
    }
    Ok(Some(CoreSolution {
        instances,
        slices,
        search_nodes: None,
        unproven_bound: None,
    }))
}

/// Maps the greedy solution onto the program's variables.
fn warm_start_values(
    solution: &CoreSolution,
    counts: &[Variable],
    assignments: &[AssignVar],
    formulation: Formulation,
) -> Vec<(Variable, f64)> {
    let mut values: Vec<(Variable, f64)> = counts
        .iter()
        .zip(&solution.instances)
        .map(|(&var, &n)| (var, f64::from(n)))
        .collect();
    // Mélange's binaries: hand out each bucket's slices to its variables in order.
    let mut handed: std::collections::BTreeMap<(usize, usize, usize, usize), u32> =
        std::collections::BTreeMap::new();
    for assign in assignments {
        let wanted = solution.slices[assign.scenario][assign.class][assign.bucket][assign.gpu];
        let value = match formulation {
            Formulation::Compact => f64::from(wanted),
            Formulation::Melange => {
                let given = handed
                    .entry((assign.scenario, assign.class, assign.bucket, assign.gpu))
                    .or_insert(0);
                if *given < wanted {
                    *given += 1;
                    1.0
                } else {
                    0.0
                }
            }
        };
        values.push((assign.variable, value));
    }
    values
}
