//! The planning problem: GPU types with prices and limits, workload classes with capacity tables.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::PlanError;

/// Fractions of a class must sum to one within this tolerance (profiles are often rounded).
pub const FRACTION_SUM_TOLERANCE: f64 = 1e-3;

/// One rentable instance type: one GPU, or several GPUs used together (tensor parallel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuType {
    /// Unique name, e.g. `A10G` or `H100x2`.
    pub name: String,
    /// Price of one instance in $/h (for a multi-GPU instance, the whole instance).
    pub hourly_cost: f64,
    /// GPUs in one instance (1 for a single GPU, 2 for a TP=2 pair, ...).
    pub gpus_per_instance: u32,
    /// Least number of instances to rent (0 for none).
    pub min_instances: u32,
    /// Most instances available, `None` for unlimited.
    pub max_instances: Option<u32>,
}

impl GpuType {
    /// A single-GPU type with no limits.
    pub fn new(name: impl Into<String>, hourly_cost: f64) -> Self {
        Self {
            name: name.into(),
            hourly_cost,
            gpus_per_instance: 1,
            min_instances: 0,
            max_instances: None,
        }
    }

    /// A multi-GPU instance type priced as `per_gpu_cost × gpus`.
    pub fn multi_gpu(name: impl Into<String>, per_gpu_cost: f64, gpus: u32) -> Self {
        Self {
            name: name.into(),
            hourly_cost: per_gpu_cost * f64::from(gpus),
            gpus_per_instance: gpus,
            min_instances: 0,
            max_instances: None,
        }
    }
}

/// One class of traffic (e.g. one SLO tier): its bucket mix, its rate, and what each type sustains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadClass {
    /// Name shown in reports.
    pub name: String,
    /// Total request rate of the class (req/s).
    pub request_rate: f64,
    /// Human-readable label per bucket, e.g. `in1/out0`.
    pub bucket_labels: Vec<String>,
    /// Share of the class's requests in each bucket (sums to one).
    pub bucket_fractions: Vec<f64>,
    /// `capacity[type][bucket]`: most req/s one instance sustains under this class's SLO; 0 = cannot serve.
    pub capacity: Vec<Vec<f64>>,
}

/// Which integer program to solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Formulation {
    /// Integer slice counts per (bucket, type): same optimum as Mélange's, far fewer variables.
    #[default]
    Compact,
    /// Mélange's own program: one binary per (slice, type).
    Melange,
}

impl fmt::Display for Formulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compact => write!(f, "compact"),
            Self::Melange => write!(f, "melange"),
        }
    }
}

/// An unknown formulation name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormulation(pub String);

impl fmt::Display for UnknownFormulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown formulation \"{}\"; expected compact or melange",
            self.0
        )
    }
}

impl std::error::Error for UnknownFormulation {}

impl FromStr for Formulation {
    type Err = UnknownFormulation;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "compact" => Ok(Self::Compact),
            "melange" => Ok(Self::Melange),
            other => Err(UnknownFormulation(other.to_string())),
        }
    }
}

/// Which solver runs the integer program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Branch and bound for the compact program, microlp for Mélange's.
    #[default]
    Auto,
    /// medley's own exact branch and bound (compact program only): LP bounds from a dual simplex.
    BranchAndBound,
    /// good_lp's pure-Rust microlp MIP solver (either program).
    Microlp,
}

impl Backend {
    /// The solver `Auto` stands for with `formulation`; an error for a pairing that cannot run.
    pub fn resolve(self, formulation: Formulation) -> Result<Self, PlanError> {
        match (self, formulation) {
            (Self::Auto, Formulation::Compact) => Ok(Self::BranchAndBound),
            (Self::Auto, Formulation::Melange) => Ok(Self::Microlp),
            (Self::BranchAndBound, Formulation::Melange) => Err(PlanError::InvalidInput {
                location: "backend".to_string(),
                message: "branch-and-bound solves the compact program only; use microlp (or auto) \
                          for Mélange's formulation"
                    .to_string(),
            }),
            (backend, _) => Ok(backend),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::BranchAndBound => write!(f, "branch-and-bound"),
            Self::Microlp => write!(f, "microlp"),
        }
    }
}

/// An unknown backend name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBackend(pub String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown backend \"{}\"; expected auto, branch-and-bound (bnb) or microlp",
            self.0
        )
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "branch-and-bound" | "bnb" => Ok(Self::BranchAndBound),
            "microlp" => Ok(Self::Microlp),
            other => Err(UnknownBackend(other.to_string())),
        }
    }
}

/// Branch-and-bound nodes [`SolveOptions::default`] allows before returning its best plan unproven.
pub const DEFAULT_NODE_LIMIT: u64 = 50_000;

/// How to solve: which program, which solver, and its limits.
///
/// Hitting the time limit is an error that states the remaining gap (wall-clock limits would make
/// results vary run to run). Hitting the node limit (branch and bound only; deterministic) returns
/// the best plan found, marked as not proven optimal, with the bound and gap that remain; so does
/// a relative gap tolerance, once every plan it leaves unexplored is within it.
#[derive(Debug, Clone, PartialEq)]
pub struct SolveOptions {
    /// The integer program.
    pub formulation: Formulation,
    /// The solver.
    pub backend: Backend,
    /// Wall-clock limit for the solver; `None` for none.
    pub time_limit: Option<Duration>,
    /// Most branch-and-bound nodes; `None` for no limit.
    pub node_limit: Option<u64>,
    /// Branch and bound: stop once no plan can cost less than the best found by more than this
    /// fraction of its cost (0 proves optimality). The plan then reports the bound it proved.
    pub relative_gap: f64,
}

impl Default for SolveOptions {
    fn default() -> Self {
        Self {
            formulation: Formulation::default(),
            backend: Backend::default(),
            time_limit: None,
            node_limit: Some(DEFAULT_NODE_LIMIT),
            relative_gap: 0.0,
        }
    }
}

impl SolveOptions {
    /// Checks the options' numbers: the relative gap must lie in `[0, 1)`.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.relative_gap.is_finite() && (0.0..1.0).contains(&self.relative_gap) {
            Ok(())
        } else {
            Err(PlanError::InvalidNumber {
                location: "solve options: relative_gap".to_string(),
                value: self.relative_gap,
                expected: "a fraction in [0, 1), e.g. 0.01 for 1%",
            })
        }
    }
}

/// A complete GPU-mix planning problem; capacity tables are input (measured or simulated elsewhere).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanProblem {
    /// Candidate instance types.
    pub gpu_types: Vec<GpuType>,
    /// Traffic classes; all share the instance counts.
    pub classes: Vec<WorkloadClass>,
    /// Slices per bucket (Mélange's `slice_factor`).
    pub slice_factor: u32,
    /// Extra fraction of rate to provision for: plan for `rate × (1 + headroom)`.
    pub headroom: f64,
}

/// Most instances a plan may hold (of all types together): a million times a large fleet, and
/// well inside the integer range of every solver.
pub const MAX_INSTANCES: f64 = 1e7;

/// Most slices per bucket: Mélange used up to 8 (its slice factor); a thousand splits any
/// bucket finer than its profiled capacity can tell apart, and far larger values only make the
/// solver and the router's assignment slower.
pub const MAX_SLICE_FACTOR: u32 = 1000;

/// Largest headroom accepted: a plan for up to 11 times the rate. Far beyond any margin a
/// planner wants, and it keeps fleets (simulated by `--verify`) within memory.
pub const MAX_HEADROOM: f64 = 10.0;

fn check_non_negative(location: impl FnOnce() -> String, value: f64) -> Result<(), PlanError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(PlanError::InvalidNumber {
            location: location(),
            value,
            expected: "a finite number >= 0",
        })
    }
}

impl PlanProblem {
    /// Checks shapes, numbers and limits; returns the first problem found.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.gpu_types.is_empty() {
            return Err(PlanError::NoGpuTypes);
        }
        if self.classes.is_empty() {
            return Err(PlanError::NoClasses);
        }
        if self.slice_factor == 0 {
            return Err(PlanError::ZeroSliceFactor);
        }
        if self.slice_factor > MAX_SLICE_FACTOR {
            return Err(PlanError::InvalidNumber {
                location: "slice_factor".to_string(),
                value: f64::from(self.slice_factor),
                expected: "1 to 1000 slices per bucket",
            });
        }
        check_non_negative(|| "headroom".to_string(), self.headroom)?;
        if self.headroom > MAX_HEADROOM {
            return Err(PlanError::InvalidNumber {
                location: "headroom".to_string(),
                value: self.headroom,
                expected: "a fraction from 0 to 10 (plan for up to 11 times the rate)",
            });
        }
        for (index, gpu) in self.gpu_types.iter().enumerate() {
            if self.gpu_types[..index]
                .iter()
                .any(|other| other.name == gpu.name)
            {
                return Err(PlanError::DuplicateGpuType {
                    name: gpu.name.clone(),
                });
            }
            check_non_negative(
                || format!("GPU type \"{}\": hourly_cost", gpu.name),
                gpu.hourly_cost,
            )?;
            if gpu.gpus_per_instance == 0 {
                return Err(PlanError::InvalidNumber {
                    location: format!("GPU type \"{}\": gpus_per_instance", gpu.name),
                    value: 0.0,
                    expected: "an integer >= 1",
                });
            }
            if let Some(cap) = gpu.max_instances.filter(|&cap| gpu.min_instances > cap) {
                return Err(PlanError::MinAboveCap {
                    gpu_type: gpu.name.clone(),
                    min_instances: gpu.min_instances,
                    max_instances: cap,
                });
            }
        }
        for class in &self.classes {
            self.validate_class(class)?;
        }
        Ok(())
    }

    fn validate_class(&self, class: &WorkloadClass) -> Result<(), PlanError> {
        let buckets = class.bucket_fractions.len();
        check_non_negative(
            || format!("class \"{}\": request_rate", class.name),
            class.request_rate,
        )?;
        if class.bucket_labels.len() != buckets {
            return Err(PlanError::ShapeMismatch {
                location: format!("class \"{}\": bucket_labels", class.name),
                expected: buckets,
                found: class.bucket_labels.len(),
            });
        }
        for (label, &fraction) in class.bucket_labels.iter().zip(&class.bucket_fractions) {
            check_non_negative(
                || format!("class \"{}\": fraction of bucket {label}", class.name),
                fraction,
            )?;
        }
        let sum: f64 = class.bucket_fractions.iter().sum();
        if (sum - 1.0).abs() > FRACTION_SUM_TOLERANCE {
            return Err(PlanError::FractionsDoNotSumToOne {
                class: class.name.clone(),
                sum,
            });
        }
        if class.capacity.len() != self.gpu_types.len() {
            return Err(PlanError::ShapeMismatch {
                location: format!(
                    "class \"{}\": capacity (one table per GPU type)",
                    class.name
                ),
                expected: self.gpu_types.len(),
                found: class.capacity.len(),
            });
        }
        for (gpu, table) in self.gpu_types.iter().zip(&class.capacity) {
            if table.len() != buckets {
                return Err(PlanError::ShapeMismatch {
                    location: format!(
                        "class \"{}\": capacity of GPU type \"{}\"",
                        class.name, gpu.name
                    ),
                    expected: buckets,
                    found: table.len(),
                });
            }
            for (label, &capacity) in class.bucket_labels.iter().zip(table) {
                check_non_negative(
                    || {
                        format!(
                            "class \"{}\": capacity of \"{}\" for bucket {label}",
                            class.name, gpu.name
                        )
                    },
                    capacity,
                )?;
            }
        }
        // Even on the fastest type for every bucket, the class needs this many instances; past
        // the ceiling the counts leave the range the solvers work in, and an "infeasible" from
        // them would hide the reason.
        let rates = self.bucket_rates(class);
        let least_instances: f64 = rates
            .iter()
            .enumerate()
            .map(|(bucket, rate)| {
                let fastest = class
                    .capacity
                    .iter()
                    .map(|table| table[bucket])
                    .fold(0.0, f64::max);
                if fastest > 0.0 { rate / fastest } else { 0.0 }
            })
            .sum();
        if least_instances > MAX_INSTANCES {
            return Err(PlanError::InvalidInput {
                location: format!("class \"{}\": request_rate", class.name),
                message: format!(
                    "{} req/s needs at least {least_instances:.3e} instances even on the fastest \
                     type for every bucket, more than the {MAX_INSTANCES:e} a plan may hold",
                    class.request_rate
                ),
            });
        }
        Ok(())
    }

    /// Request rate to plan for in each bucket of a class: `rate × (1 + headroom) × fraction`.
    pub fn bucket_rates(&self, class: &WorkloadClass) -> Vec<f64> {
        let planned_rate = class.request_rate * (1.0 + self.headroom);
        class
            .bucket_fractions
            .iter()
            .map(|fraction| planned_rate * fraction)
            .collect()
    }
}
