//! The error type returned by every figure function.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a figure could not be drawn or written.
#[derive(Debug)]
pub enum PlotError {
    /// The output directory could not be created.
    CreateDir {
        /// The directory that was being created.
        dir: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The file stem is not a plain file name.
    InvalidStem {
        /// The stem as given.
        stem: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A list that must hold at least one item was empty.
    EmptyData {
        /// The figure being drawn.
        figure: &'static str,
        /// The field (path inside the data struct) that was empty.
        field: String,
    },
    /// Two lists that must line up have different lengths.
    LengthMismatch {
        /// The figure being drawn.
        figure: &'static str,
        /// The field whose length is wrong.
        field: String,
        /// The length it must have (that of the list it lines up with).
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// A value was out of range, non-finite, duplicated or otherwise unusable.
    InvalidValue {
        /// The figure being drawn.
        figure: &'static str,
        /// The field (path inside the data struct) holding the value.
        field: String,
        /// The offending value, as text.
        value: String,
        /// What was expected instead.
        expected: String,
    },
    /// The bundled font could not be registered with the renderer.
    Font {
        /// The font file that failed to parse.
        file: &'static str,
    },
    /// Drawing the figure or writing its file failed.
    Render {
        /// The file being written.
        path: PathBuf,
        /// The renderer's message.
        message: String,
    },
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::CreateDir { dir, source } => {
                write!(
                    f,
                    "cannot create output directory {}: {source}",
                    dir.display()
                )
            }
            PlotError::InvalidStem { stem, reason } => {
                write!(f, "invalid file stem {stem:?}: {reason}")
            }
            PlotError::EmptyData { figure, field } => {
                write!(
                    f,
                    "{figure}: `{field}` is empty; expected at least one item"
                )
            }
            PlotError::LengthMismatch {
                figure,
                field,
                expected,
                found,
            } => write!(
                f,
                "{figure}: `{field}` has {found} items; expected {expected} to line up with the categories"
            ),
            PlotError::InvalidValue {
                figure,
                field,
                value,
                expected,
            } => write!(f, "{figure}: `{field}` is {value}; expected {expected}"),
            PlotError::Font { file } => {
                write!(f, "bundled font {file} could not be parsed")
            }
            PlotError::Render { path, message } => {
                write!(f, "drawing {} failed: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for PlotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlotError::CreateDir { source, .. } => Some(source),
            _ => None,
        }
    }
}
