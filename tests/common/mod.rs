//! Helpers shared by the end-to-end tests: run the `medley` binary, check how it exited, parse
//! its JSON, and hold scratch files in a temporary directory.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

/// What one run of the binary produced.
pub struct Run {
    /// The command line, for failure messages.
    pub command_line: String,
    /// The raw process output.
    pub output: Output,
}

impl Run {
    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

/// Runs `medley` with `args`.
pub fn medley<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
    let command_line = std::iter::once("medley".to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(env!("CARGO_BIN_EXE_medley"))
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{command_line}`: {e}"));
    Run {
        command_line,
        output,
    }
}

/// Runs `medley`, asserts it succeeded, and returns its standard output.
pub fn succeeds<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let run = medley(args);
    assert!(
        run.output.status.success(),
        "`{}` failed with {}\nstderr:\n{}",
        run.command_line,
        run.output.status,
        run.stderr()
    );
    assert_no_panic(&run);
    run.stdout()
}

/// Runs `medley`, asserts it succeeded, and parses its standard output as JSON.
pub fn succeeds_json<I, S>(args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let run = medley(args);
    assert!(
        run.output.status.success(),
        "`{}` failed with {}\nstderr:\n{}",
        run.command_line,
        run.output.status,
        run.stderr()
    );
    assert_no_panic(&run);
    serde_json::from_slice(&run.output.stdout).unwrap_or_else(|e| {
        panic!(
            "`{}` printed invalid JSON ({e}):\n{}",
            run.command_line,
            run.stdout()
        )
    })
}

/// Runs `medley`, asserts it failed cleanly (non-zero exit, an `error:` line, no panic, nothing
/// on standard output), and returns its standard error.
pub fn fails<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let run = medley(args);
    let stderr = run.stderr();
    assert!(
        !run.output.status.success(),
        "`{}` should have failed but succeeded; stdout:\n{}",
        run.command_line,
        run.stdout()
    );
    // 1: our own errors; 2: clap's usage errors. Anything else (101 = panic, signals) is a bug.
    let code = run.output.status.code();
    assert!(
        matches!(code, Some(1) | Some(2)),
        "`{}` exited with {:?}; stderr:\n{stderr}",
        run.command_line,
        code
    );
    assert_no_panic(&run);
    assert!(
        stderr.contains("error"),
        "`{}` failed without an error message; stderr:\n{stderr}",
        run.command_line
    );
    assert!(
        run.output.stdout.is_empty(),
        "`{}` failed but printed to stdout:\n{}",
        run.command_line,
        run.stdout()
    );
    stderr
}

/// Asserts that neither output stream mentions a panic.
pub fn assert_no_panic(run: &Run) {
    for (name, text) in [("stdout", run.stdout()), ("stderr", run.stderr())] {
        assert!(
            !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
            "`{}` panicked ({name}):\n{text}",
            run.command_line
        );
    }
}

/// A file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `medley-cli-<label>-<pid>-<n>` (unique within and across test processes).
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("medley-cli-{label}-{}-{n}", std::process::id()));
        // A leftover from a killed earlier run with the same pid would confuse the test.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Reads a file, naming it on failure.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Splits one CSV line into fields, unquoting `"a,b"` fields (polars quotes fields holding
/// commas, such as cluster specs; no field spans lines).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Reads a CSV file as a header and rows of fields.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = String::from_utf8(read(path)).expect("CSV is UTF-8");
    let mut lines = text.lines();
    let header = csv_fields(
        lines
            .next()
            .unwrap_or_else(|| panic!("{} is empty", path.display())),
    );
    let rows = lines
        .filter(|line| !line.is_empty())
        .map(csv_fields)
        .collect::<Vec<_>>();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row.len(),
            header.len(),
            "{} line {}: {} fields, header has {}",
            path.display(),
            i + 2,
            row.len(),
            header.len()
        );
    }
    (header, rows)
}

/// Index of `name` in a CSV header.
pub fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// A JSON number as f64, naming the field on failure.
pub fn num(value: &Value, what: &str) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: expected a number, found {value}"))
}

/// A JSON number as u64, naming the field on failure.
pub fn count(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: expected a whole number, found {value}"))
}

/// Asserts `a` and `b` agree to a relative tolerance.
pub fn assert_close(a: f64, b: f64, relative: f64, what: &str) {
    let scale = a.abs().max(b.abs()).max(1e-300);
    assert!(
        (a - b).abs() <= relative * scale,
        "{what}: {a} and {b} differ by more than {relative} relative"
    );
}

/// A short, light arena stream and quick profiling flags, for commands that profile.
pub const LIGHT_WORKLOAD: [&str; 16] = [
    "--workload",
    "arena",
    "--rate",
    "0.5",
    "--duration",
    "60s",
    "--slo-tpot",
    "120ms",
    "--requests-per-trial",
    "60",
    "--replicates",
    "1",
    "--tolerance",
    "0.25",
    "--prices",
    "melange-2024",
];
