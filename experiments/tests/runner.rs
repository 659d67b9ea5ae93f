//! The sweep runner end to end on a tiny grid: results are deterministic, a re-run resumes
//! instead of recomputing, and shards merged give exactly the unsharded tables.

use std::path::{Path, PathBuf};

use experiments::config::ExperimentConfig;
use experiments::runner::{self, RunOptions};
use gpu_models::Catalog;

const TINY_PLAN: &str = r#"
name = "tiny-plan"
seed = 3
prices = "melange-2024"
[workload]
source = "arena"
duration = "1m"
[slo]
tpot = "120ms"
[profile]
gpus = ["A10G", "A100-80GB"]
buckets = "100,1000,4000;100,500,2000"
requests_per_trial = 120
replicates = 1
tolerance = 0.05
[plan]
slice_factor = 4
max_rounds = 3
[sweep]
rates = [1.0, 3.0]
tpot = ["80ms", "160ms"]
"#;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("medley-runner-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options(out: &Path, shard: Option<(usize, usize)>) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        shard,
        cache_dir: None,
        limit: None,
    }
}

#[test]
fn runs_resume_and_shards_merge_to_the_same_tables() {
    let config = ExperimentConfig::parse(TINY_PLAN, Path::new("tiny.toml")).expect("valid config");
    assert_eq!(runner::grid(&config).len(), 4, "2 rates x 2 TPOT targets");
    let catalog = Catalog::builtin();
    let whole = temp_dir("whole");
    let first = runner::run(&config, &catalog, &options(&whole, None), &|_| {}).expect("runs");
    assert_eq!((first.grid_points, first.ran, first.resumed), (4, 4, 0));
    let table = std::fs::read(whole.join("results.csv")).expect("results.csv written");
    assert!(whole.join("results.parquet").exists());

    // Every point has the mixed fleet and the single-type fleets the solver sized, all tagged
    // with the config hash and version so they can be re-run.
    let points = runner::read_points(std::slice::from_ref(&whole)).expect("points readable");
    assert_eq!(points.len(), 4);
    for point in &points {
        let mixed: Vec<_> = point.rows.iter().filter(|r| r.fleet == "mixed").collect();
        assert_eq!(mixed.len(), 1);
        let mixed = mixed[0];
        let planned = mixed
            .planned_usd_per_hour
            .expect("mixed rows carry the planned cost");
        // Derating only ever removes capacity, so the verified fleet never costs less.
        assert!(mixed.usd_per_hour >= planned - 1e-9, "{mixed:?}");
        assert!(point.rows.iter().any(|r| r.fleet == "single"));
        for row in &point.rows {
            assert_eq!(
                row.config_hash,
                runner::config_hash(&config, &Catalog::builtin()).unwrap()
            );
            assert_eq!(row.medley_version, runner::MEDLEY_VERSION);
            assert_eq!(row.arrived, row.completed + row.rejected, "{row:?}");
        }
    }

    // A re-run finds every point done and writes identical tables.
    let again = runner::run(&config, &catalog, &options(&whole, None), &|_| {}).expect("runs");
    assert_eq!((again.ran, again.resumed), (0, 4));
    assert_eq!(std::fs::read(whole.join("results.csv")).unwrap(), table);

    // Two shards, merged, give the same table; and a fresh run gives the same bytes.
    let shard_a = temp_dir("shard-a");
    let shard_b = temp_dir("shard-b");
    let a = runner::run(&config, &catalog, &options(&shard_a, Some((0, 2))), &|_| {}).unwrap();
    let b = runner::run(&config, &catalog, &options(&shard_b, Some((1, 2))), &|_| {}).unwrap();
    assert_eq!((a.ran, b.ran), (2, 2));
    let merged = temp_dir("merged");
    runner::write_tables(&[shard_a.clone(), shard_b.clone()], &merged).expect("merges");
    assert_eq!(std::fs::read(merged.join("results.csv")).unwrap(), table);
    assert_eq!(
        std::fs::read(merged.join("profiles.csv")).unwrap(),
        std::fs::read(whole.join("profiles.csv")).unwrap()
    );
    for dir in [whole, shard_a, shard_b, merged] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_simulate_experiment_sweeps_routers_on_a_given_cluster() {
    let text = r#"
name = "tiny-policies"
[workload]
source = "arena"
rate = 4.0
duration = "1m"
[slo]
tpot = "100ms"
tpot_stat = "p90"
[simulate]
cluster = "A10G:1,A100-80GB:1"
[sweep]
routers = ["round-robin", "least-outstanding"]
"#;
    let config = ExperimentConfig::parse(text, Path::new("policies.toml")).expect("valid");
    let out = temp_dir("policies");
    let report = runner::run(&config, &Catalog::builtin(), &options(&out, None), &|_| {}).unwrap();
    assert_eq!(report.rows, 2);
    let points = runner::read_points(std::slice::from_ref(&out)).unwrap();
    let routers: Vec<&str> = points.iter().map(|p| p.rows[0].router.as_str()).collect();
    assert_eq!(routers, ["round-robin", "least-outstanding"]);
    for point in &points {
        let row = &point.rows[0];
        assert_eq!(row.fleet, "given");
        assert_eq!(row.allocation, "A10G:1,A100-80GB:1");
        assert!(row.completed > 0 && row.attainment > 0.0);
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn an_unknown_gpu_fails_before_any_point_runs() {
    let text = TINY_PLAN.replace(
        r#"gpus = ["A10G", "A100-80GB"]"#,
        r#"gpus = ["A10G", "A100-80GB:tp2", "NoSuchGPU"]"#,
    );
    let config = ExperimentConfig::parse(&text, Path::new("tiny.toml")).expect("valid config");
    let out = temp_dir("unknown-gpu");
    let profiled = std::sync::atomic::AtomicBool::new(false);
    let err = runner::run(
        &config,
        &Catalog::builtin(),
        &options(&out, None),
        &|event| {
            if matches!(event, runner::RunProgress::Profiling { .. }) {
                profiled.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        },
    )
    .unwrap_err();
    assert!(
        err.contains("NoSuchGPU") && err.contains("grid point"),
        "{err}"
    );
    assert!(
        !profiled.load(std::sync::atomic::Ordering::Relaxed),
        "profiling started before the unknown GPU was found"
    );
    let _ = std::fs::remove_dir_all(out);
}

/// Shards of different configs are refused (their rows would share one table under one stored
/// config), and a merge missing a shard names the grid points it lacks.
#[test]
fn merges_refuse_mixed_configs_and_name_missing_points() {
    let config_at = |rate: f64| {
        let text = format!(
            r#"
name = "tiny-merge"
[workload]
source = "arena"
rate = {rate}
duration = "30s"
[slo]
tpot = "100ms"
[simulate]
cluster = "A10G:1"
[sweep]
routers = ["round-robin", "least-outstanding"]
"#
        );
        ExperimentConfig::parse(&text, Path::new("merge.toml")).expect("valid")
    };
    let catalog = Catalog::builtin();
    let first = temp_dir("merge-first");
    let second = temp_dir("merge-second");
    let other = temp_dir("merge-other");
    runner::run(
        &config_at(2.0),
        &catalog,
        &options(&first, Some((0, 2))),
        &|_| {},
    )
    .unwrap();
    runner::run(
        &config_at(2.0),
        &catalog,
        &options(&second, Some((1, 2))),
        &|_| {},
    )
    .unwrap();
    runner::run(
        &config_at(3.0),
        &catalog,
        &options(&other, Some((1, 2))),
        &|_| {},
    )
    .unwrap();

    let whole = runner::merge_points(&[first.clone(), second.clone()]).expect("one config");
    assert_eq!(whole.points.len(), 2);
    assert_eq!(whole.grid_points, Some(2));
    assert!(whole.missing.is_empty());

    let half = runner::merge_points(std::slice::from_ref(&first)).expect("one shard merges");
    assert_eq!(half.missing, [1]);

    let err = runner::merge_points(&[first.clone(), other.clone()]).unwrap_err();
    assert!(err.contains("different configs"), "{err}");
    assert!(err.contains(&other.display().to_string()), "{err}");
    let merged = temp_dir("merge-out");
    assert!(runner::write_tables(&[first.clone(), other.clone()], &merged).is_err());
    for dir in [first, second, other, merged] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The routers that follow an assignment route by the plan itself in a plan experiment (the
/// mixed fleet by its slices, a single-type fleet sends its one type everything); they once
/// failed for want of an `--assignment` file.
#[test]
fn plan_experiments_route_by_the_plans_own_assignment() {
    for router in ["size-aware", "solver-proportional"] {
        let text = TINY_PLAN
            .replace("[plan]\n", &format!("[plan]\nrouter = \"{router}\"\n"))
            .replace("rates = [1.0, 3.0]", "rates = [3.0]")
            .replace("tpot = [\"80ms\", \"160ms\"]", "tpot = [\"160ms\"]");
        let config = ExperimentConfig::parse(&text, Path::new("tiny.toml")).expect("valid config");
        let out = temp_dir(router);
        runner::run(&config, &Catalog::builtin(), &options(&out, None), &|_| {})
            .unwrap_or_else(|err| panic!("{router}: {err}"));
        let points = runner::read_points(std::slice::from_ref(&out)).unwrap();
        let rows: Vec<_> = points.iter().flat_map(|p| &p.rows).collect();
        assert!(rows.iter().any(|r| r.fleet == "mixed"), "{router}");
        assert!(rows.iter().any(|r| r.fleet == "single"), "{router}");
        for row in rows {
            assert_eq!(row.router, router);
            assert!(row.completed > 0, "{router}: {row:?}");
        }
        let _ = std::fs::remove_dir_all(out);
    }
}

/// Each shard profiles every bucket the whole grid reaches, so merged profile tables equal the
/// unsharded run's. Here the fast point's stream reaches buckets the slow point's and the base
/// stream never do; the slow point's shard once marked them skipped, and the merge kept that.
#[test]
fn shards_profile_what_the_whole_grid_needs() {
    let text = TINY_PLAN
        .replace("duration = \"1m\"", "duration = \"1m\"\nrate = 0.002")
        .replace("rates = [1.0, 3.0]", "rates = [0.1, 12.0]")
        .replace("tpot = [\"80ms\", \"160ms\"]", "tpot = [\"160ms\"]");
    let config = ExperimentConfig::parse(&text, Path::new("tiny.toml")).expect("valid config");
    let catalog = Catalog::builtin();
    let whole = temp_dir("needs-whole");
    let slow = temp_dir("needs-slow");
    let fast = temp_dir("needs-fast");
    runner::run(&config, &catalog, &options(&whole, None), &|_| {}).unwrap();
    runner::run(&config, &catalog, &options(&slow, Some((0, 2))), &|_| {}).unwrap();
    runner::run(&config, &catalog, &options(&fast, Some((1, 2))), &|_| {}).unwrap();
    let profiles = |dir: &Path| std::fs::read_to_string(dir.join("profiles.csv")).unwrap();
    assert_eq!(profiles(&slow), profiles(&whole), "the slow point's shard");
    let merged = temp_dir("needs-merged");
    runner::write_tables(&[slow.clone(), fast.clone()], &merged).unwrap();
    assert_eq!(profiles(&merged), profiles(&whole));
    for dir in [whole, slow, fast, merged] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A resumed run reuses only points whose inputs are unchanged: editing the trace or a catalog
/// file behind the same config runs every point again (each used to be reused, with the old
/// numbers).
#[test]
fn a_changed_trace_or_catalog_file_is_not_resumed() {
    let dir = temp_dir("inputs");
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.csv");
    let write_trace = |output: u32| {
        let mut text = String::from("arrival_s,input_tokens,output_tokens\n");
        for i in 0..20 {
            text.push_str(&format!("{},{},{output}\n", f64::from(i) * 0.5, 100 + i));
        }
        std::fs::write(&trace, text).unwrap();
    };
    write_trace(50);
    let text = format!(
        r#"
name = "tiny-trace"
[workload]
source = "{}"
[slo]
tpot = "100ms"
tpot_stat = "p90"
[simulate]
cluster = "A10G:1"
"#,
        trace.display()
    );
    let config = ExperimentConfig::parse(&text, &dir.join("trace.toml")).expect("valid");
    let out = dir.join("out");
    let builtin = Catalog::builtin();
    let first = runner::run(&config, &builtin, &options(&out, None), &|_| {}).unwrap();
    assert_eq!((first.ran, first.resumed), (1, 0));
    let again = runner::run(&config, &builtin, &options(&out, None), &|_| {}).unwrap();
    assert_eq!((again.ran, again.resumed), (0, 1));

    write_trace(60);
    let edited = runner::run(&config, &builtin, &options(&out, None), &|_| {}).unwrap();
    assert_eq!((edited.ran, edited.resumed, edited.stale), (1, 0, 1));
    let points = runner::read_points(std::slice::from_ref(&out)).unwrap();
    let current = runner::config_hash(&config, &builtin).unwrap();
    let row = points
        .iter()
        .flat_map(|p| &p.rows)
        .find(|r| r.config_hash == current)
        .expect("the re-run point");
    assert_eq!(row.arrived, 20);

    let overlay = dir.join("prices.toml");
    std::fs::write(&overlay, "[price_books.hyperscaler.prices]\nA10G = 50.0\n").unwrap();
    let catalog = Catalog::load(std::slice::from_ref(&overlay)).expect("catalog loads");
    let priced = runner::run(&config, &catalog, &options(&out, None), &|_| {}).unwrap();
    assert_eq!((priced.ran, priced.resumed), (1, 0));
    let hash = runner::config_hash(&config, &catalog).unwrap();
    let row = runner::read_points(std::slice::from_ref(&out))
        .unwrap()
        .into_iter()
        .flat_map(|p| p.rows)
        .find(|r| r.config_hash == hash)
        .expect("the re-priced point");
    assert!((row.usd_per_hour - 50.0).abs() < 1e-9, "{row:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// With every request rejected there is no latency: the row's latency statistics are empty
/// (they read 0, as if every request were instant), and a note says how many were rejected.
#[test]
fn a_fleet_that_completes_nothing_reports_no_latency() {
    let text = r#"
name = "all-rejected"
[workload]
source = "arena"
rate = 2.0
duration = "20s"
[slo]
tpot = "120ms"
[simulate]
cluster = "A10G:1"
[memory]
max_model_len = 10
"#;
    let config = ExperimentConfig::parse(text, Path::new("rejected.toml")).expect("valid");
    let out = temp_dir("all-rejected");
    runner::run(&config, &Catalog::builtin(), &options(&out, None), &|_| {}).unwrap();
    let points = runner::read_points(std::slice::from_ref(&out)).unwrap();
    let row = &points[0].rows[0];
    assert!(row.arrived > 0 && row.completed == 0, "{row:?}");
    assert_eq!(row.rejected, row.arrived);
    assert_eq!(row.ttft_p90_s, None);
    assert_eq!(row.norm_latency_mean_s, None);
    let notes = std::fs::read_to_string(out.join("notes.txt")).unwrap();
    assert!(
        notes.contains(&format!("{0} of {0} requests rejected", row.arrived))
            && notes.contains("latency columns are empty"),
        "{notes}"
    );
    let _ = std::fs::remove_dir_all(out);
}

/// A cap or minimum naming a type the point does not plan over fails before profiling (it
/// failed in the solver, after the profiles), and a tensor-parallel type is named `GPUxN`.
#[test]
fn caps_name_the_planned_types_before_anything_runs() {
    let with_caps = |caps: &str| {
        TINY_PLAN
            .replace(
                r#"gpus = ["A10G", "A100-80GB"]"#,
                r#"gpus = ["A10G", "A100-80GB:tp2"]"#,
            )
            .replace("[plan]\n", &format!("[plan]\n{caps}\n"))
    };
    let config =
        ExperimentConfig::parse(&with_caps("caps = { H100-SXM = 1 }"), Path::new("c.toml"))
            .expect("valid config");
    let out = temp_dir("caps");
    let err = runner::run(&config, &Catalog::builtin(), &options(&out, None), &|_| {}).unwrap_err();
    assert!(
        err.contains("plan.caps.H100-SXM") && err.contains("A10G, A100-80GBx2"),
        "{err}"
    );
    let config = ExperimentConfig::parse(
        &with_caps("minimums = { A100-80GBx2 = 1 }"),
        Path::new("c.toml"),
    )
    .expect("valid config");
    let planned = runner::run(
        &config,
        &Catalog::builtin(),
        &options(&out, Some((0, 4))),
        &|_| {},
    )
    .expect("a minimum on the tensor-parallel type is accepted");
    assert_eq!(planned.ran, 1);
    let _ = std::fs::remove_dir_all(out);
}
