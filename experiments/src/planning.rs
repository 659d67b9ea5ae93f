//! Planning for a workload: the planning problem from capacity profiles and a size histogram,
//! and the cluster a plan buys.

use gpu_models::{Catalog, InstanceOptions};
use serde::Serialize;
use sim::{Cluster, ClusterEntry, SimConfig};
use solver::{
    BaselineOutcome, GpuType, MelangeOverrides, Plan, PlanProblem, ProfileSet, SolveOptions,
    Validation, VerifyOutcome, VerifySettings, WorkloadClass,
};
use workloads::{Request, SizeHistogram};

/// Everything planning for a workload found: profiles, the plan, and its verification.
#[derive(Debug, Serialize)]
pub struct WorkloadPlan {
    /// The workload planned for.
    pub workload: String,
    /// Its mean rate, req/s.
    pub rate_rps: f64,
    /// Requests in the workload stream.
    pub requests: u64,
    /// Requests beyond the last bucket edge (not planned for).
    pub beyond_buckets: u64,
    /// Requests longer than every profiled type holds (not planned for, and left out of the
    /// verifying simulations: no fleet of these types serves them).
    pub beyond_every_type: u64,
    /// Buckets holding requests that no instance type can serve under the SLO.
    pub unservable_buckets: Vec<String>,
    /// Share of requests in those buckets (not planned for; they will miss).
    pub unservable_share: f64,
    /// The capacity profiles.
    pub profiles: ProfileSet,
    /// The optimal mix under the profiles, before any verification (with it, the fleet to run
    /// is `verification.final_plan`).
    pub plan: Plan,
    /// Wall-clock time of that solve, seconds (shown to people; result tables leave it out so
    /// they stay byte-identical).
    pub solve_seconds: f64,
    /// With a rate forecast: one plan per window, against one fleet sized for the peak.
    pub schedule: Option<solver::Schedule>,
    /// With verification: every round of simulation and re-planning.
    pub verification: Option<VerifyOutcome>,
    /// Each possible single-type fleet simulated on the workload (when asked).
    pub baseline_validations: Vec<BaselineValidation>,
}

/// A single-type fleet simulated on the workload: the solver's closed-form size, grown one
/// instance a round (with verification) until it meets the SLO or the rounds run out, as the
/// mixed fleet is derated, so savings compare verified fleets.
#[derive(Debug, Serialize)]
pub struct BaselineValidation {
    /// The instance type.
    pub gpu_type: String,
    /// Simulations run (1: the closed-form size passed, or no verification was asked).
    pub rounds: u32,
    /// The last simulation: the fleet that passed, or the largest tried.
    pub validation: Validation,
}

/// How to plan and what to check.
#[derive(Debug, Clone, Default)]
pub struct PlanSettings {
    /// Slices per bucket.
    pub slice_factor: u32,
    /// Extra rate fraction to provision for.
    pub headroom: f64,
    /// Most instances per type.
    pub caps: Vec<(String, u32)>,
    /// Least instances per type.
    pub minimums: Vec<(String, u32)>,
    /// Which program and time limit.
    pub options: SolveOptions,
    /// Verify the plan by simulation (plan → simulate → derate) with these settings.
    pub verify: Option<VerifySettings>,
    /// Also simulate every possible single-type fleet with these simulator settings.
    pub simulate_baselines: Option<SimConfig>,
    /// A rate forecast: plan one fleet per window as well (empty: none).
    pub windows: Vec<solver::TimeWindow>,
}

/// The workload to plan for.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadInput<'a> {
    /// The requests (replayed when verifying).
    pub requests: &'a [Request],
    /// What they are, for reports.
    pub description: &'a str,
    /// Their mean rate, req/s.
    pub rate_rps: f64,
    /// Their size histogram.
    pub histogram: &'a SizeHistogram,
}

/// Plans the cheapest fleet for the workload under `profiles`, then verifies it (and the
/// single-type fleets) by simulation as `settings` ask.
pub fn plan_workload(
    profiles: ProfileSet,
    workload: WorkloadInput<'_>,
    settings: &PlanSettings,
    catalog: &Catalog,
    instance_options: &InstanceOptions,
) -> Result<WorkloadPlan, Box<dyn std::error::Error + Send + Sync>> {
    let WorkloadInput {
        requests,
        description,
        rate_rps,
        histogram,
    } = workload;
    let (mut problem, unservable, unservable_share) =
        problem_from_profiles(&profiles, histogram, rate_rps)?;
    MelangeOverrides {
        slice_factor: Some(settings.slice_factor),
        total_request_rate: None,
        headroom: settings.headroom,
        caps: settings.caps.clone(),
        minimums: settings.minimums.clone(),
    }
    .apply(&mut problem)?;
    let solver::TimedPlan {
        plan,
        solve_seconds,
    } = solver::solve_timed(&problem, &settings.options)?;
    let schedule = if settings.windows.is_empty() {
        None
    } else {
        // The plan's class carries only the share of the rate it can plan for (buckets some
        // type serves, requests within the edges); each window's rate takes the same share, so
        // a window at the workload's own rate buys the same fleet.
        let planned_share = if rate_rps > 0.0 {
            problem.classes[0].request_rate / rate_rps
        } else {
            1.0
        };
        let windows: Vec<solver::TimeWindow> = settings
            .windows
            .iter()
            .map(|window| solver::TimeWindow {
                request_rate: window.request_rate * planned_share,
                ..window.clone()
            })
            .collect();
        Some(solver::plan_schedule(
            &problem,
            &windows,
            &settings.options,
        )?)
    };
    let capacity = profiles.capacity_table();
    // Requests longer than every profiled type holds are outside what any fleet of these types
    // can serve: counted and reported, and left out of the simulations that judge the fleets,
    // which would otherwise miss a mean-latency SLO whatever they bought.
    let engine = settings
        .verify
        .as_ref()
        .map(|v| &v.sim.engine)
        .or(settings.simulate_baselines.as_ref().map(|c| &c.engine));
    let longest = match engine {
        Some(engine) => Some(longest_request(
            &profiles,
            catalog,
            instance_options,
            engine,
        )?),
        None => None,
    };
    let in_scope: Vec<Request> = requests
        .iter()
        .filter(|r| longest.is_none_or(|limit| sim::replica::footprint_tokens(r) <= limit))
        .cloned()
        .collect();
    let beyond_every_type = (requests.len() - in_scope.len()) as u64;
    let verification = match &settings.verify {
        Some(verify) => Some(solver::plan_and_verify(
            &problem,
            &settings.options,
            &capacity,
            &profiles.slo,
            &in_scope,
            verify,
            &|plan| cluster_of(plan, &profiles, catalog, instance_options),
        )?),
        None => None,
    };
    let mut baseline_validations = Vec::new();
    if let Some(config) = &settings.simulate_baselines {
        let (target, max_rounds) = settings
            .verify
            .as_ref()
            .map_or((None, 1), |v| (v.target_attainment, v.max_rounds.max(1)));
        for baseline in &plan.baselines {
            let BaselineOutcome::Possible { instances, .. } = baseline.outcome else {
                continue;
            };
            let table = profiles
                .types
                .iter()
                .find(|t| t.instance == baseline.gpu_type)
                .ok_or_else(|| format!("baseline of an unprofiled type {}", baseline.gpu_type))?;
            let cap = problem
                .gpu_types
                .iter()
                .find(|t| t.name == baseline.gpu_type)
                .and_then(|t| t.max_instances);
            // A fleet of one type sends it every bucket (what the size-aware and
            // solver-proportional routers read).
            let mut whole = sim::AssignmentTable::new(capacity.edges.clone());
            let (rows, columns) = capacity.edges.shape();
            for i in 0..rows {
                for j in 0..columns {
                    whole.set(&table.instance, i, j, 1.0)?;
                }
            }
            let single_config = sim::SimConfig {
                assignment: config.assignment.clone().or(Some(whole)),
                ..config.clone()
            };
            let mut count = instances;
            let mut rounds = 0;
            let validation = loop {
                rounds += 1;
                let cluster = Cluster::build(
                    &[ClusterEntry {
                        gpu: table.gpu.clone(),
                        count,
                        tp: table.tp,
                    }],
                    catalog,
                    &profiles.model,
                    instance_options,
                    Some(&profiles.price_book),
                )?;
                let validation = solver::validate(
                    &cluster,
                    Some(&capacity),
                    &single_config,
                    &profiles.slo,
                    &capacity.edges,
                    in_scope.iter().cloned(),
                )?;
                let capped = cap.is_some_and(|cap| count >= cap);
                // Requests this type cannot hold (others can) are never served by its fleet:
                // when they alone fail the SLO, more instances cannot help.
                let hopeless = validation
                    .overall
                    .checks
                    .iter()
                    .any(|check| check.fails_on_unserved_alone);
                if validation.passes(target) || rounds >= max_rounds || capped || hopeless {
                    break validation;
                }
                count += 1;
            };
            baseline_validations.push(BaselineValidation {
                gpu_type: baseline.gpu_type.clone(),
                rounds,
                validation,
            });
        }
    }
    Ok(WorkloadPlan {
        workload: description.to_string(),
        rate_rps,
        requests: requests.len() as u64,
        beyond_every_type,
        beyond_buckets: histogram.overflow,
        unservable_buckets: unservable,
        unservable_share,
        profiles,
        plan,
        solve_seconds,
        schedule,
        verification,
        baseline_validations,
    })
}

/// The planning problem from profiles and a histogram; buckets nobody can serve are left out
/// (returned, with their share) rather than making the program infeasible.
pub fn problem_from_profiles(
    profiles: &ProfileSet,
    histogram: &SizeHistogram,
    rate_rps: f64,
) -> Result<(PlanProblem, Vec<String>, f64), String> {
    let usable: Vec<_> = profiles
        .types
        .iter()
        .filter(|t| t.unusable.is_none())
        .collect();
    if usable.is_empty() {
        let reasons: Vec<String> = profiles
            .types
            .iter()
            .map(|t| format!("{}: {}", t.instance, t.unusable.as_deref().unwrap_or("")))
            .collect();
        return Err(format!(
            "no instance type can serve {}: {}",
            profiles.model,
            reasons.join("; ")
        ));
    }
    let fractions = histogram.fractions();
    let mut labels = Vec::new();
    let mut kept_fractions = Vec::new();
    let mut capacity: Vec<Vec<f64>> = vec![Vec::new(); usable.len()];
    let mut unservable = Vec::new();
    let mut unservable_share = 0.0;
    for (i, row) in fractions.iter().enumerate() {
        for (j, &fraction) in row.iter().enumerate() {
            if fraction <= 0.0 {
                continue;
            }
            let label = solver::melange::bucket_label(i, j);
            if usable.iter().all(|t| t.cells[i][j].capacity_rps <= 0.0) {
                unservable.push(label);
                unservable_share += fraction;
                continue;
            }
            labels.push(label);
            kept_fractions.push(fraction);
            for (table, profile) in capacity.iter_mut().zip(&usable) {
                table.push(profile.cells[i][j].capacity_rps);
            }
        }
    }
    let kept: f64 = kept_fractions.iter().sum();
    if kept <= 0.0 {
        return Err(format!(
            "no request of the workload can be served under {} by {}",
            profiles.slo_text,
            usable
                .iter()
                .map(|t| t.instance.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    kept_fractions.iter_mut().for_each(|f| *f /= kept);
    let problem = PlanProblem {
        gpu_types: usable
            .iter()
            .map(|t| GpuType {
                gpus_per_instance: t.tp,
                ..GpuType::new(t.instance.clone(), t.usd_per_hour)
            })
            .collect(),
        classes: vec![WorkloadClass {
            name: "workload".into(),
            request_rate: rate_rps
                * kept
                * (histogram.in_range() as f64 / histogram.total().max(1) as f64),
            bucket_labels: labels,
            bucket_fractions: kept_fractions,
            capacity,
        }],
        slice_factor: 8,
        headroom: 0.0,
    };
    Ok((problem, unservable, unservable_share))
}

/// The longest request (prompt + output tokens) any profiled type holds under `engine`.
fn longest_request(
    profiles: &ProfileSet,
    catalog: &Catalog,
    instance_options: &InstanceOptions,
    engine: &sim::EngineConfig,
) -> Result<u64, String> {
    let entries: Vec<ClusterEntry> = profiles
        .types
        .iter()
        .filter(|t| t.unusable.is_none())
        .map(|t| ClusterEntry {
            gpu: t.gpu.clone(),
            count: 1,
            tp: t.tp,
        })
        .collect();
    if entries.is_empty() {
        return Ok(0);
    }
    let cluster = Cluster::build(
        &entries,
        catalog,
        &profiles.model,
        instance_options,
        Some(&profiles.price_book),
    )?;
    Ok(cluster
        .types
        .iter()
        .map(|ty| sim::replica::max_request_tokens(&ty.instance, engine))
        .max()
        .unwrap_or(0))
}

/// The cluster a plan buys, for simulation.
pub fn cluster_of(
    plan: &Plan,
    profiles: &ProfileSet,
    catalog: &Catalog,
    instance_options: &InstanceOptions,
) -> Result<Cluster, String> {
    let entries: Vec<ClusterEntry> = plan
        .allocations
        .iter()
        .filter(|a| a.instances > 0)
        .map(|a| {
            let table = profiles
                .types
                .iter()
                .find(|t| t.instance == a.gpu_type)
                .ok_or_else(|| format!("plan names an unprofiled type {}", a.gpu_type))?;
            Ok(ClusterEntry {
                gpu: table.gpu.clone(),
                count: a.instances,
                tp: table.tp,
            })
        })
        .collect::<Result<_, String>>()?;
    if entries.is_empty() {
        return Err("the plan buys no instances (is the rate zero?)".into());
    }
    Cluster::build(
        &entries,
        catalog,
        &profiles.model,
        instance_options,
        Some(&profiles.price_book),
    )
}

/// The profile set priced under `book`, with `overrides` ($/GPU-hour by GPU name) replacing
/// the book's prices: capacities do not depend on prices, so what-if pricing re-plans on the
/// same profiles.
pub fn reprice(
    profiles: &ProfileSet,
    book: &gpu_models::PriceBook,
    overrides: &[(String, f64)],
) -> Result<ProfileSet, String> {
    let mut priced = profiles.clone();
    priced.price_book = book.name.clone();
    for table in &mut priced.types {
        let per_gpu = overrides
            .iter()
            .find(|(gpu, _)| gpu.eq_ignore_ascii_case(&table.gpu))
            .map(|(_, price)| *price)
            .or_else(|| book.usd_per_gpu_hour(&table.gpu))
            .ok_or_else(|| format!("price book '{}' has no price for {}", book.name, table.gpu))?;
        table.usd_per_hour = per_gpu * f64::from(table.tp);
    }
    Ok(priced)
}

/// A schedule's per-window fleets as a `medley simulate --autoscale schedule --schedule FILE`
/// file (TOML): each window starts where the one before it ended and names every type of the
/// peak fleet, so types a window does not use are scaled to zero.
pub fn schedule_toml(schedule: &solver::Schedule) -> String {
    let mut out = String::from(
        "# Replicas per window, planned by medley plan --windows; replay with\n\
         # medley simulate --autoscale schedule --schedule THIS_FILE (a window of more than\n\
         # 64 replicas of a type also needs --scale-limits TYPE=0:N)\n",
    );
    let mut start_s = 0.0;
    for window in &schedule.windows {
        out.push_str(&format!(
            "\n[[window]]\n# {} at {} req/s planned (the share of the forecast rate the plan covers), ${:.2}/h\nstart = {}\n",
            window.label, window.request_rate, window.plan.hourly_cost, start_s
        ));
        for entry in &schedule.peak_fleet {
            out.push_str(&format!(
                "\"{}\" = {}\n",
                entry.gpu_type,
                window.plan.instances_of(&entry.gpu_type)
            ));
        }
        start_s += window.hours * 3600.0;
    }
    out
}
