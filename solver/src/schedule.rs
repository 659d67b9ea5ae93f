//! Time-varying workloads: one plan per time window, against one static fleet sized for the peak.

use std::fmt;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::baseline::savings;
use crate::error::PlanError;
use crate::ilp::{Demand, solve_core};
use crate::plan::{Plan, demands, fleet_cost, solve};
use crate::problem::{PlanProblem, SolveOptions};

/// One stretch of time with its own rate (and optionally its own bucket mix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeWindow {
    /// Name shown in reports, e.g. `09:00-12:00`.
    pub label: String,
    /// Length of the window, hours.
    pub hours: f64,
    /// Request rate during the window, req/s.
    pub request_rate: f64,
    /// Bucket mix during the window; `None` keeps the problem's.
    pub bucket_fractions: Option<Vec<f64>>,
}

/// The plan of one window and what it costs over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowPlan {
    /// The window's label.
    pub label: String,
    /// Its length, hours.
    pub hours: f64,
    /// Its request rate, req/s.
    pub request_rate: f64,
    /// The cheapest mix for it (proven, or within the gap tolerance; see `plan.proven_optimal`).
    pub plan: Plan,
    /// `hours × plan.hourly_cost`, $.
    pub cost: f64,
}

/// Instances of one type in the static fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetEntry {
    /// The GPU type.
    pub gpu_type: String,
    /// Instances.
    pub instances: u32,
    /// GPUs in them.
    pub gpus: u32,
}

/// Per-window allocations against one fleet provisioned for the peak all the time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// One plan per window, in input order.
    pub windows: Vec<WindowPlan>,
    /// Σ window hours.
    pub total_hours: f64,
    /// Σ window hours × window $/h, $.
    pub schedule_cost: f64,
    /// The window with the highest rate (first on ties).
    pub peak_window: String,
    /// Cheapest single fleet that serves every window (each on its own), proven or within the gap
    /// tolerance; with one shared bucket mix this is exactly the plan of the highest-rate window.
    pub peak_fleet: Vec<FleetEntry>,
    /// $/h of the peak fleet.
    pub peak_hourly_cost: f64,
    /// No fleet serving every window costs less than this, $/h (`peak_hourly_cost` when proven).
    #[serde(default)]
    pub peak_cost_lower_bound: f64,
    /// `peak_hourly_cost × total_hours`, $.
    pub peak_cost: f64,
    /// `(peak_cost − schedule_cost) / peak_cost`; `None` when the peak costs nothing.
    pub savings_vs_peak: Option<f64>,
}

/// The problem for one window: the single class's rate and mix replaced.
fn window_problem(problem: &PlanProblem, window: &TimeWindow) -> Result<PlanProblem, PlanError> {
    if !(window.hours.is_finite() && window.hours >= 0.0) {
        return Err(PlanError::InvalidNumber {
            location: format!("window \"{}\": hours", window.label),
            value: window.hours,
            expected: "a finite number >= 0",
        });
    }
    let mut windowed = problem.clone();
    let class = &mut windowed.classes[0];
    class.request_rate = window.request_rate;
    if let Some(fractions) = &window.bucket_fractions {
        class.bucket_fractions.clone_from(fractions);
    }
    class.name = format!("{} @ {}", class.name, window.label);
    windowed.validate()?;
    Ok(windowed)
}

/// Plans every window (to optimality, or within the options' gap tolerance) and compares the
/// schedule with one peak-sized fleet.
pub fn plan_schedule(
    problem: &PlanProblem,
    windows: &[TimeWindow],
    options: &SolveOptions,
) -> Result<Schedule, PlanError> {
    problem.validate()?;
    if problem.classes.len() != 1 {
        return Err(PlanError::ScheduleNeedsOneClass {
            classes: problem.classes.len(),
        });
    }
    if windows.is_empty() {
        return Err(PlanError::NoWindows);
    }
    let window_problems = windows
        .iter()
        .map(|window| window_problem(problem, window))
        .collect::<Result<Vec<_>, _>>()?;
    let plans = window_problems
        .par_iter()
        .map(|windowed| solve(windowed, options))
        .collect::<Result<Vec<_>, _>>()?;

    // One fleet that must carry every window on its own: scenarios sharing the counts.
    let scenarios: Vec<Vec<Demand<'_>>> = window_problems.iter().map(demands).collect();
    let peak = solve_core(
        &problem.gpu_types,
        &scenarios,
        problem.slice_factor,
        options,
    )?;
    let peak_hourly_cost = fleet_cost(&problem.gpu_types, &peak.instances);
    if let Some(bound) = peak.unproven_bound
        && peak_hourly_cost - bound > options.relative_gap * peak_hourly_cost + 1e-9
    {
        return Err(PlanError::Solver {
            message: format!(
                "the peak fleet (${peak_hourly_cost:.4}/h) was not proven optimal within the node \
                 limit (no fleet costs less than ${bound:.4}/h); raise the node limit, or accept \
                 a stated gap (`--gap`)"
            ),
        });
    }
    let peak_fleet = problem
        .gpu_types
        .iter()
        .zip(&peak.instances)
        .map(|(gpu, &instances)| FleetEntry {
            gpu_type: gpu.name.clone(),
            instances,
            gpus: instances.saturating_mul(gpu.gpus_per_instance),
        })
        .collect();

    let mut peak_index = 0;
    for (index, window) in windows.iter().enumerate() {
        if window.request_rate > windows[peak_index].request_rate {
            peak_index = index;
        }
    }
    let window_plans: Vec<WindowPlan> = windows
        .iter()
        .zip(plans)
        .map(|(window, plan)| WindowPlan {
            label: window.label.clone(),
            hours: window.hours,
            request_rate: window.request_rate,
            cost: window.hours * plan.hourly_cost,
            plan,
        })
        .collect();
    let total_hours: f64 = windows.iter().map(|window| window.hours).sum();
    let schedule_cost: f64 = window_plans.iter().map(|window| window.cost).sum();
    let peak_cost = peak_hourly_cost * total_hours;
    Ok(Schedule {
        windows: window_plans,
        total_hours,
        schedule_cost,
        peak_window: windows[peak_index].label.clone(),
        peak_fleet,
        peak_hourly_cost,
        peak_cost_lower_bound: peak
            .unproven_bound
            .unwrap_or(peak_hourly_cost)
            .min(peak_hourly_cost),
        peak_cost,
        savings_vs_peak: savings(peak_cost, schedule_cost),
    })
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label_width = self
            .windows
            .iter()
            .map(|w| w.label.len())
            .max()
            .unwrap_or(6)
            .max(6);
        write!(
            f,
            "{:<label_width$}  {:>7}  {:>10}  {:>9}  {:>10}",
            "window", "hours", "req/s", "$/h", "cost $"
        )?;
        for entry in &self.peak_fleet {
            write!(
                f,
                "  {:>w$}",
                entry.gpu_type,
                w = entry.gpu_type.len().max(4)
            )?;
        }
        writeln!(f)?;
        for window in &self.windows {
            write!(
                f,
                "{:<label_width$}  {:>7.2}  {:>10.3}  {:>9.2}  {:>10.2}",
                window.label,
                window.hours,
                window.request_rate,
                window.plan.hourly_cost,
                window.cost
            )?;
            for entry in &self.peak_fleet {
                write!(
                    f,
                    "  {:>w$}",
                    window.plan.instances_of(&entry.gpu_type),
                    w = entry.gpu_type.len().max(4)
                )?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "schedule: ${:.2} over {:.2} h; peak fleet (covers every window, peak {}): ${:.2}/h = ${:.2}; savings {}",
            self.schedule_cost,
            self.total_hours,
            self.peak_window,
            self.peak_hourly_cost,
            self.peak_cost,
            self.savings_vs_peak
                .map_or_else(|| "-".to_string(), |s| format!("{:.1}%", s * 100.0))
        )?;
        // Plans that stopped within a gap tolerance say how far from optimal they may be.
        if self.peak_cost_lower_bound < self.peak_hourly_cost - 1e-9 {
            writeln!(
                f,
                "peak fleet not proven optimal: no such fleet costs less than ${:.4}/h",
                self.peak_cost_lower_bound
            )?;
        }
        for window in self.windows.iter().filter(|w| !w.plan.proven_optimal) {
            writeln!(
                f,
                "window {} not proven optimal: no plan costs less than ${:.4}/h (gap {:.3}%)",
                window.label,
                window.plan.cost_lower_bound,
                window.plan.optimality_gap() * 100.0
            )?;
        }
        Ok(())
    }
}
