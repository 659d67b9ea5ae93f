//! Errors of the planner: bad problems, infeasible problems, solver failures, bad files.

use std::fmt;

/// Everything that can go wrong while building or solving a GPU-mix plan.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanError {
    /// The problem lists no GPU types.
    NoGpuTypes,
    /// The problem lists no workload classes.
    NoClasses,
    /// Two GPU types share a name.
    DuplicateGpuType {
        /// The repeated name.
        name: String,
    },
    /// The slice factor is zero.
    ZeroSliceFactor,
    /// A number is negative, NaN or infinite where a finite non-negative value is required.
    InvalidNumber {
        /// Where the number sits, e.g. `gpu type "A10G": hourly_cost`.
        location: String,
        /// The offending value.
        value: f64,
        /// What was expected.
        expected: &'static str,
    },
    /// A vector or table has the wrong length.
    ShapeMismatch {
        /// Where the mismatch sits.
        location: String,
        /// The expected length.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A class's bucket fractions do not sum to one.
    FractionsDoNotSumToOne {
        /// The class.
        class: String,
        /// The sum found.
        sum: f64,
    },
    /// A type's minimum count exceeds its cap.
    MinAboveCap {
        /// The GPU type.
        gpu_type: String,
        /// Its minimum.
        min_instances: u32,
        /// Its cap.
        max_instances: u32,
    },
    /// A bucket with traffic that no GPU type can serve (all capacities zero or capped at zero).
    UnservableBucket {
        /// The class.
        class: String,
        /// The bucket's label.
        bucket: String,
        /// Its request rate (req/s).
        rate: f64,
        /// Types that could serve it but are capped at zero instances.
        capped_out: Vec<String>,
    },
    /// A bucket's traffic alone exceeds what the capped types could carry.
    BucketExceedsCaps {
        /// The class.
        class: String,
        /// The bucket's label.
        bucket: String,
        /// Its request rate (req/s).
        rate: f64,
        /// The most the capped fleet could carry of this bucket alone (req/s).
        max_rate: f64,
    },
    /// The caps are too small for the whole workload, though each bucket alone would fit.
    CapsTooSmall {
        /// `(type, cap)` for every capped type.
        caps: Vec<(String, u32)>,
        /// The uncapped optimum `(type, instances)`, when it could be computed, to show what the caps cut.
        uncapped: Option<Vec<(String, u32)>>,
    },
    /// The ILP solver failed or did not prove optimality.
    Solver {
        /// What happened.
        message: String,
    },
    /// A time-varying schedule was asked of a problem with other than one workload class.
    ScheduleNeedsOneClass {
        /// How many classes the problem has.
        classes: usize,
    },
    /// A schedule with no time windows.
    NoWindows,
    /// An input value is unusable for a reason other than its number or shape.
    InvalidInput {
        /// Where the value sits.
        location: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A file could not be read or written.
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// A JSON document did not parse or had the wrong shape.
    Json {
        /// The file (or `<string>`).
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoGpuTypes => write!(f, "the problem lists no GPU types; expected at least one"),
            Self::NoClasses => {
                write!(
                    f,
                    "the problem lists no workload classes; expected at least one"
                )
            }
            Self::DuplicateGpuType { name } => {
                write!(f, "GPU type \"{name}\" appears twice; names must be unique")
            }
            Self::ZeroSliceFactor => write!(f, "slice factor is 0; expected an integer >= 1"),
            Self::InvalidNumber {
                location,
                value,
                expected,
            } => write!(f, "{location}: got {value}, expected {expected}"),
            Self::ShapeMismatch {
                location,
                expected,
                found,
            } => write!(f, "{location}: has {found} entries, expected {expected}"),
            Self::FractionsDoNotSumToOne { class, sum } => write!(
                f,
                "class \"{class}\": bucket fractions sum to {sum}, expected 1 (within 1e-3)"
            ),
            Self::MinAboveCap {
                gpu_type,
                min_instances,
                max_instances,
            } => write!(
                f,
                "GPU type \"{gpu_type}\": minimum {min_instances} instances exceeds its cap of {max_instances}"
            ),
            Self::UnservableBucket {
                class,
                bucket,
                rate,
                capped_out,
            } => {
                write!(
                    f,
                    "infeasible: class \"{class}\" bucket {bucket} has {rate} req/s but "
                )?;
                if capped_out.is_empty() {
                    write!(f, "no GPU type can serve it (capacity 0 on every type)")
                } else {
                    write!(
                        f,
                        "the only types that can serve it ({}) are capped at 0 instances",
                        capped_out.join(", ")
                    )
                }
            }
            Self::BucketExceedsCaps {
                class,
                bucket,
                rate,
                max_rate,
            } => write!(
                f,
                "infeasible: class \"{class}\" bucket {bucket} alone needs {rate} req/s but the capped fleet \
                 can carry at most {max_rate} req/s of it; raise the caps"
            ),
            Self::CapsTooSmall { caps, uncapped } => {
                let caps_text: Vec<String> = caps
                    .iter()
                    .map(|(name, cap)| format!("{name} <= {cap}"))
                    .collect();
                write!(
                    f,
                    "infeasible: the caps ({}) cannot carry the whole workload",
                    caps_text.join(", ")
                )?;
                if let Some(uncapped) = uncapped {
                    let counts: Vec<String> = uncapped
                        .iter()
                        .map(|(name, n)| format!("{name} = {n}"))
                        .collect();
                    write!(f, "; without caps the optimum uses {}", counts.join(", "))?;
                }
                Ok(())
            }
            Self::Solver { message } => write!(f, "ILP solver: {message}"),
            Self::ScheduleNeedsOneClass { classes } => write!(
                f,
                "a time-window schedule needs exactly one workload class, the problem has {classes}"
            ),
            Self::NoWindows => write!(
                f,
                "the schedule lists no time windows; expected at least one"
            ),
            Self::InvalidInput { location, message } => write!(f, "{location}: {message}"),
            Self::Io { path, message } => write!(f, "{path}: {message}"),
            Self::Json { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for PlanError {}
