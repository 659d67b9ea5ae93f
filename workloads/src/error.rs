//! Errors from reading traces and building workloads.

use std::fmt;
use std::path::PathBuf;

/// Why a trace could not be read: names the file, line and column, what was found and what
/// was expected.
#[derive(Debug)]
pub enum TraceError {
    /// The file could not be opened or read.
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file could not be created or written.
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file holds no header (or no bytes at all).
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The header does not match any known trace format.
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// The header line (or first JSON line) that was found.
        found: String,
        /// Why it matched nothing, with a hint (wrong delimiter, `--format`).
        hint: String,
    },
    /// The format is known but a column it needs is missing from the header.
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: String,
        /// The header that was found.
        header: String,
    },
    /// One field of one row is malformed.
    BadField {
        /// The file.
        path: PathBuf,
        /// 1-based line number (the header is line 1 in CSV files).
        line: u64,
        /// 1-based column number (for JSON lines: the character position).
        column: u64,
        /// Column name, when known.
        column_name: String,
        /// The text found (shortened when long).
        found: String,
        /// What was expected instead.
        expected: String,
    },
    /// Arrival times decrease and sorting was not requested.
    Unsorted {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the earlier-than-before row.
        line: u64,
        /// Its arrival, seconds after the first row.
        found_s: f64,
        /// The arrival of the row before, seconds after the first row.
        previous_s: f64,
    },
    /// Reading through polars (Parquet) failed.
    Polars {
        /// The file.
        path: PathBuf,
        /// The polars message.
        message: String,
    },
    /// A reading option is out of range.
    BadOption {
        /// The file.
        path: PathBuf,
        /// The option, e.g. `spread window`.
        option: &'static str,
        /// The value given.
        found: String,
        /// What was expected instead.
        expected: &'static str,
    },
}

impl TraceError {
    /// Whether this error concerns one bad row (and so may be skipped with `skip_bad_rows`).
    pub fn is_row_error(&self) -> bool {
        matches!(self, TraceError::BadField { .. })
    }
}

/// Shortens long found-text so an error line stays readable.
pub(crate) fn shorten(text: &str) -> String {
    const LIMIT: usize = 60;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        let head: String = text.chars().take(LIMIT).collect();
        format!("{head}…")
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::BadOption {
                path,
                option,
                found,
                expected,
            } => write!(
                f,
                "{}: {option} {found}: expected {expected}",
                path.display()
            ),
            TraceError::Io { path, source } => {
                write!(f, "{}: cannot read: {source}", path.display())
            }
            TraceError::Write { path, source } => {
                write!(f, "{}: cannot write: {source}", path.display())
            }
            TraceError::Empty { path } => {
                write!(
                    f,
                    "{}: empty file: found no header, expected a trace header line",
                    path.display()
                )
            }
            TraceError::UnknownFormat { path, found, hint } => write!(
                f,
                "{}:1: unknown trace format: found `{}`; {hint}",
                path.display(),
                shorten(found)
            ),
            TraceError::MissingColumn {
                path,
                column,
                header,
            } => write!(
                f,
                "{}:1: missing column `{column}`: found header `{}`",
                path.display(),
                shorten(header)
            ),
            TraceError::BadField {
                path,
                line,
                column,
                column_name,
                found,
                expected,
            } => {
                let name = if column_name.is_empty() {
                    String::new()
                } else {
                    format!(" ({column_name})")
                };
                write!(
                    f,
                    "{}:{line}:{column}{name}: found `{}`, expected {expected}",
                    path.display(),
                    shorten(found)
                )
            }
            TraceError::Unsorted {
                path,
                line,
                found_s,
                previous_s,
            } => write!(
                f,
                "{}:{line}: arrival decreases: found {found_s} s after the first row, expected at least \
                 {previous_s} s (the row before); sort the file by arrival time (`medley \
                 workload stats --sort` sorts it as it reads; other commands need it sorted)",
                path.display()
            ),
            TraceError::Polars { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TraceError::Io { source, .. } | TraceError::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a workload (generator, preset, histogram edges) could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadError {
    /// A parameter is out of its valid range.
    BadParameter {
        /// The parameter.
        name: String,
        /// The value given.
        found: String,
        /// The valid range.
        expected: String,
    },
    /// No preset has this name.
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: Vec<String>,
    },
}

impl WorkloadError {
    pub(crate) fn bad(name: &str, found: impl fmt::Display, expected: &str) -> Self {
        WorkloadError::BadParameter {
            name: name.into(),
            found: found.to_string(),
            expected: expected.into(),
        }
    }
}

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadError::BadParameter {
                name,
                found,
                expected,
            } => {
                write!(
                    f,
                    "bad parameter {name}: found {found}, expected {expected}"
                )
            }
            WorkloadError::UnknownPreset { name, known } => {
                write!(
                    f,
                    "unknown preset `{name}`: expected one of {}",
                    known.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for WorkloadError {}

/// Either kind of workload failure, for operations that read traces and build workloads.
#[derive(Debug)]
pub enum Error {
    /// Reading a trace failed.
    Trace(TraceError),
    /// Building a workload failed.
    Workload(WorkloadError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Trace(err) => err.fmt(f),
            Error::Workload(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Trace(err) => Some(err),
            Error::Workload(err) => Some(err),
        }
    }
}

impl From<TraceError> for Error {
    fn from(err: TraceError) -> Self {
        Error::Trace(err)
    }
}

impl From<WorkloadError> for Error {
    fn from(err: WorkloadError) -> Self {
        Error::Workload(err)
    }
}
