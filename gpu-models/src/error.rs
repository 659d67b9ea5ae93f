//! Errors of the gpu-models crate.

use std::fmt;
use std::path::PathBuf;

/// What went wrong while loading a catalog, building an instance or reading a table.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    /// A name that is not in the catalog; `known` lists the valid names.
    Unknown {
        kind: &'static str,
        name: String,
        known: Vec<String>,
    },
    /// A catalog file could not be read or parsed.
    CatalogFile { path: PathBuf, message: String },
    /// A value that is out of its valid range.
    Invalid { what: String, message: String },
    /// A measured table could not be read: file, line, what was wrong.
    Table {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Unknown { kind, name, known } => {
                write!(f, "unknown {kind} '{name}'")?;
                if let Some(near) = nearest(name, known) {
                    write!(f, " (did you mean '{near}'?)")?;
                }
                write!(f, "; known: {}", known.join(", "))
            }
            ModelError::CatalogFile { path, message } => {
                write!(f, "catalog file {}: {message}", path.display())
            }
            ModelError::Invalid { what, message } => write!(f, "invalid {what}: {message}"),
            ModelError::Table {
                path,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
        }
    }
}

impl std::error::Error for ModelError {}

/// The known name closest to `name` (case-insensitive edit distance), if any is close enough.
pub fn nearest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    let wanted = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&wanted, &k.to_ascii_lowercase()), k))
        .filter(|(d, k)| *d <= (k.len() / 2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance between two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b_chars.len()).collect();
    let mut cur = vec![0; b_chars.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b_chars.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b_chars.len()]
}
