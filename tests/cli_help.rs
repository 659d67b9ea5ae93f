//! Every command of the `medley` binary documents itself: `--help` works everywhere, the
//! version is the package's, and a missing command is a usage error.

mod common;

use common::{fails, medley, succeeds};

/// Command names listed under `Commands:` in a help text (without clap's own `help`).
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        // Command names sit at two spaces; wrapped descriptions are indented further.
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Asserts `medley <path> --help` succeeds and shows the usage line and the description.
fn assert_helpful(path: &[&str]) -> String {
    let mut args = path.to_vec();
    args.push("--help");
    let help = succeeds(&args);
    let usage = format!(
        "Usage: {}",
        ["medley"]
            .iter()
            .chain(path)
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(help.contains(&usage), "`{args:?}` lacks `{usage}`:\n{help}");
    // Beyond the usage line: a description and at least the help option itself.
    assert!(help.contains("-h, --help"), "{args:?}:\n{help}");
    let description = help.lines().next().unwrap_or("").trim();
    assert!(
        !description.is_empty() && !description.starts_with("Usage"),
        "{args:?} has no description:\n{help}"
    );
    help
}

#[test]
fn every_command_and_subcommand_has_help() {
    let top = assert_helpful(&[]);
    let commands = listed_commands(&top);
    // The commands the README documents must all be there.
    for expected in [
        "gpus",
        "models",
        "prices",
        "instance",
        "calibrate",
        "simulate",
        "bench",
        "workload",
        "plan",
        "validate",
        "run",
        "merge",
        "plot",
        "profile",
        "whatif",
        "report",
    ] {
        assert!(
            commands.iter().any(|c| c == expected),
            "{expected} not in {commands:?}"
        );
    }
    let mut checked = 0;
    for command in &commands {
        let help = assert_helpful(&[command]);
        checked += 1;
        for sub in listed_commands(&help) {
            assert_helpful(&[command, &sub]);
            checked += 1;
        }
    }
    // 9 commands plus workload's stats, gen and presets.
    assert!(checked >= 12, "only {checked} help texts found");
}

#[test]
fn commands_that_print_results_offer_json() {
    for path in [
        &["gpus"][..],
        &["models"],
        &["prices"],
        &["instance"],
        &["calibrate"],
        &["simulate"],
        &["bench"],
        &["workload", "stats"],
        &["workload", "gen"],
        &["workload", "presets"],
        &["plan"],
        &["validate"],
        &["whatif"],
        &["report"],
        &["run"],
    ] {
        let help = assert_helpful(path);
        assert!(help.contains("--json"), "{path:?} has no --json:\n{help}");
    }
}

#[test]
fn version_and_usage_errors() {
    let version = succeeds(["--version"]);
    assert_eq!(
        version.trim(),
        format!("medley {}", env!("CARGO_PKG_VERSION"))
    );

    let run = medley(std::iter::empty::<&str>());
    assert_eq!(
        run.output.status.code(),
        Some(2),
        "no command is a usage error"
    );
    assert!(run.stderr().contains("Usage: medley"), "{}", run.stderr());

    let err = fails(["simulatee"]);
    assert!(
        err.contains("simulatee") && err.contains("simulate"),
        "suggests the command: {err}"
    );
    let err = fails(["gpus", "--jsn"]);
    assert!(err.contains("--jsn"), "{err}");
}

/// A reader that goes away (`medley gpus | head -1`) ends the run quietly with the status a
/// shell gives a process stopped by SIGPIPE, not with a panic and its backtrace.
#[test]
fn a_closed_output_pipe_ends_the_run_quietly() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_medley"))
        .arg("gpus")
        .stdout(writer)
        .output()
        .expect("medley starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
