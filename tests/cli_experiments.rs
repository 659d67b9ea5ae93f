//! The shipped experiment configs: each parses, and each runs end to end in a reduced form
//! (fewer profiling requests, shorter streams, two values per sweep axis) producing its tables
//! and figures. Figures are checked for existence and size, and the data each was drawn from
//! (stored beside it as JSON) is checked against the result tables, not pixels.

mod common;

use std::path::{Path, PathBuf};

use common::{TempDir, column, read_csv, succeeds};
use experiments::config::ExperimentConfig;
use serde_json::Value;

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/configs")
}

fn shipped() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(configs_dir())
        .expect("experiments/configs exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths
}

/// Whether `../shared` (the real traces) is beside the checkout.
fn shared_traces() -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/traces/azure2023/AzureLLMInferenceTrace_conv.csv")
        .exists()
}

/// Loads a shipped config; one that reads a real trace from ../shared falls back to the preset
/// its comment names when ../shared is absent (and says so).
fn load(path: &Path) -> ExperimentConfig {
    match ExperimentConfig::load(path) {
        Ok(config) => config,
        Err(err) if !shared_traces() && err.message.contains("workload.source") => {
            eprintln!(
                "NOTE: ../shared is absent, so {} runs on the azure-conv-2023 preset instead of the real trace ({err})",
                path.display()
            );
            let text = std::fs::read_to_string(path).expect("readable").replace(
                "../../../shared/traces/azure2023/AzureLLMInferenceTrace_conv.csv",
                "azure-conv-2023",
            );
            ExperimentConfig::parse(&text, path).expect("parses with the preset")
        }
        Err(err) => panic!("{err}"),
    }
}

fn first_and_last<T: Clone>(values: &[T]) -> Vec<T> {
    match values {
        [] => Vec::new(),
        [only] => vec![only.clone()],
        [first, .., last] => vec![first.clone(), last.clone()],
    }
}

/// The same experiment, smaller: enough to exercise every stage and figure in seconds.
fn reduced(mut config: ExperimentConfig) -> ExperimentConfig {
    // Simulate experiments profile nothing, and refuse profiling keys.
    if config.simulate.is_none() {
        config.profile.requests_per_trial = 120;
        config.profile.replicates = 1;
        config.profile.tolerance = 0.1;
    }
    // A trace runs to its end; only a preset's stream has a length to shorten.
    if workloads::presets::get(&config.workload.source).is_ok() {
        config.workload.duration = Some("1m".into());
    }
    config.sweep.rates = first_and_last(&config.sweep.rates);
    config.sweep.tpot = first_and_last(&config.sweep.tpot);
    config.sweep.routers = first_and_last(&config.sweep.routers);
    config.sweep.queues = first_and_last(&config.sweep.queues);
    for prices in config.sweep.prices.values_mut() {
        *prices = first_and_last(prices);
    }
    if config.simulate.is_some() && !config.workload.source.ends_with(".csv") {
        config.workload.source = "azure-conv-2023".into();
    }
    // The whole rate shape within the minute (the shipped one has 24 steps).
    if !config.workload.rate_shape.is_empty() {
        config.workload.rate_shape_step = "2s".into();
    }
    config
}

fn figure_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("figures"))
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every figure has a PNG (a real image of some size), an SVG and its data.
fn assert_figures_well_formed(dir: &Path, names: &[String]) {
    for name in names.iter().filter(|n| n.ends_with(".png")) {
        let stem = name.trim_end_matches(".png");
        let png = std::fs::read(dir.join("figures").join(name)).expect("png");
        assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
        assert!(png.len() > 10_000, "{name} is only {} bytes", png.len());
        let svg = std::fs::read_to_string(dir.join("figures").join(format!("{stem}.svg")))
            .expect("svg beside the png");
        assert!(svg.contains("<svg") && svg.len() > 2_000, "{stem}.svg");
        let data = std::fs::read_to_string(dir.join("figures").join(format!("{stem}.json")))
            .expect("data beside the png");
        serde_json::from_str::<Value>(&data).expect("figure data is JSON");
    }
}

fn figure_data(dir: &Path, name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(dir.join("figures").join(name)).expect("figure data"),
    )
    .expect("JSON")
}

/// The cost figure's bars are the simulated fleets' costs where they met the SLO.
fn check_cost_figure(dir: &Path, stem: &str) {
    let data = figure_data(dir, &format!("{stem}.json"));
    let (header, rows) = read_csv(&dir.join("results.csv"));
    let (rate, fleet, fleet_type, cost, met, tpot) = (
        column(&header, "rate_rps"),
        column(&header, "fleet"),
        column(&header, "fleet_type"),
        column(&header, "usd_per_hour"),
        column(&header, "slo_met"),
        column(&header, "tpot_target"),
    );
    let slo = stem
        .trim_start_matches("cost_vs_rate_")
        .split('_')
        .next()
        .expect("stem names the SLO");
    let rates: Vec<f64> = data["rates"]
        .as_array()
        .expect("rates")
        .iter()
        .map(|r| r.as_f64().expect("number"))
        .collect();
    assert!(rates.len() >= 2);
    let mut series = vec![("mixed", String::new(), &data["mixed"])];
    for baseline in data["baselines"].as_array().expect("baselines") {
        series.push((
            "single",
            baseline["fleet"].as_str().expect("name").to_string(),
            baseline,
        ));
    }
    let mut checked = 0;
    for (kind, gpu, values) in series {
        for (i, drawn) in values["cost_per_hour"]
            .as_array()
            .expect("costs")
            .iter()
            .enumerate()
        {
            let row = rows.iter().find(|r| {
                r[fleet] == kind
                    && r[fleet_type] == gpu
                    && r[tpot] == slo
                    && r[rate].parse::<f64>().ok() == Some(rates[i])
            });
            let expected = row
                .filter(|r| r[met] == "true")
                .map(|r| r[cost].parse::<f64>().expect("cost"));
            assert_eq!(
                drawn.as_f64(),
                expected,
                "{stem} {kind} {gpu} at {}",
                rates[i]
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "{stem}: only {checked} bars checked");
}

/// The heat map's winners are the types with the most output tokens per dollar in profiles.csv.
fn check_heatmap(dir: &Path, stem: &str) {
    let data = figure_data(dir, &format!("{stem}.json"));
    let (header, rows) = read_csv(&dir.join("profiles.csv"));
    let (input, output, instance, value, tpot) = (
        column(&header, "input_bucket"),
        column(&header, "output_bucket"),
        column(&header, "instance"),
        column(&header, "output_tokens_per_dollar"),
        column(&header, "tpot_target"),
    );
    let slo = stem
        .trim_start_matches("best_gpu_")
        .split('_')
        .next()
        .expect("stem names the SLO");
    let mut winners = 0;
    for (i, cells) in data["cells"].as_array().expect("cells").iter().enumerate() {
        for (j, cell) in cells.as_array().expect("row").iter().enumerate() {
            let candidates: Vec<(&str, f64)> = rows
                .iter()
                .filter(|r| {
                    r[tpot] == slo && r[input] == i.to_string() && r[output] == j.to_string()
                })
                .map(|r| {
                    (
                        r[instance].as_str(),
                        r[value].parse::<f64>().expect("number"),
                    )
                })
                .filter(|(_, v)| *v > 0.0)
                .collect();
            let best = candidates
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(a.0)))
                .map(|(name, _)| *name);
            assert_eq!(cell["winner"].as_str(), best, "{stem} cell ({i}, {j})");
            winners += usize::from(best.is_some());
        }
    }
    assert!(winners > 0, "{stem}: no bucket has a winner");
}

#[test]
fn every_shipped_config_parses() {
    let paths = shipped();
    for expected in [
        "quickstart.toml",
        "melange-arena.toml",
        "melange-pubmed.toml",
        "melange-mixed.toml",
        "gpu-per-bucket.toml",
        "slo-sweep.toml",
        "policy-comparison.toml",
        "whatif-prices.toml",
        "autoscaling.toml",
    ] {
        assert!(
            paths.iter().any(|p| p.ends_with(expected)),
            "{expected} is not shipped"
        );
    }
    for path in &paths {
        let config = load(path);
        assert!(
            !config.description.is_empty(),
            "{}: no description",
            path.display()
        );
        assert!(
            !experiments::runner::grid(&config).is_empty(),
            "{}: an empty grid",
            path.display()
        );
    }
}

/// Runs a reduced copy of a shipped config; returns its results directory.
fn run_reduced(name: &str, scratch: &TempDir) -> PathBuf {
    let config = reduced(load(&configs_dir().join(name)));
    let path = scratch.write(name, &config.to_toml().expect("serializes"));
    let out = scratch.path().join(name.trim_end_matches(".toml"));
    succeeds([
        "run".as_ref(),
        path.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--no-cache".as_ref(),
        "--quiet".as_ref(),
    ]);
    out
}

#[test]
fn planning_configs_run_and_draw_costs_from_their_tables() {
    let scratch = TempDir::new("plan-configs");
    for name in [
        "quickstart.toml",
        "melange-arena.toml",
        "melange-pubmed.toml",
        "melange-mixed.toml",
    ] {
        let out = run_reduced(name, &scratch);
        let figures = figure_files(&out);
        assert_figures_well_formed(&out, &figures);
        let costs: Vec<&String> = figures
            .iter()
            .filter(|f| f.starts_with("cost_vs_rate_") && f.ends_with(".json"))
            .collect();
        assert!(!costs.is_empty(), "{name}: no cost figure in {figures:?}");
        for figure in costs {
            check_cost_figure(&out, figure.trim_end_matches(".json"));
        }
        for prefix in ["gpu_mix_", "attainment_vs_rate_", "best_gpu_"] {
            assert!(
                figures.iter().any(|f| f.starts_with(prefix)),
                "{name}: no {prefix} figure in {figures:?}"
            );
        }
        // The mixed rows carry the first plan's simulated attainment (the additive-load check).
        let (header, rows) = read_csv(&out.join("results.csv"));
        let (fleet, first) = (
            column(&header, "fleet"),
            column(&header, "first_plan_attainment"),
        );
        for row in rows.iter().filter(|r| r[fleet] == "mixed") {
            let value: f64 = row[first].parse().expect("first plan attainment");
            assert!((0.0..=1.0).contains(&value), "{name}: {value}");
        }
    }
}

#[test]
fn efficiency_configs_draw_winners_and_slo_curves_from_profiles() {
    let scratch = TempDir::new("efficiency-configs");
    let out = run_reduced("gpu-per-bucket.toml", &scratch);
    let figures = figure_files(&out);
    assert_figures_well_formed(&out, &figures);
    check_heatmap(&out, "best_gpu_120ms_melange-2024");

    let out = run_reduced("slo-sweep.toml", &scratch);
    let figures = figure_files(&out);
    assert_figures_well_formed(&out, &figures);
    let curves: Vec<&String> = figures
        .iter()
        .filter(|f| f.starts_with("tokens_per_dollar_vs_slo_") && f.ends_with(".json"))
        .collect();
    assert!(
        !curves.is_empty(),
        "no tokens-per-dollar figure in {figures:?}"
    );
    let (header, rows) = read_csv(&out.join("profiles.csv"));
    let (instance, value, tpot) = (
        column(&header, "instance"),
        column(&header, "output_tokens_per_dollar"),
        column(&header, "tpot_target"),
    );
    for curve in curves {
        let data = figure_data(&out, curve);
        let targets = data["tpot_targets_ms"].as_array().expect("targets");
        assert_eq!(targets.len(), 2, "reduced to two TPOT targets");
        for series in data["series"].as_array().expect("series") {
            let name = series["name"].as_str().expect("name");
            for (k, drawn) in series["values"]
                .as_array()
                .expect("values")
                .iter()
                .enumerate()
            {
                let Some(drawn) = drawn.as_f64() else {
                    continue;
                };
                let target = format!("{}ms", targets[k].as_f64().expect("ms"));
                // The drawn value is one of that type's rows at that target.
                assert!(
                    rows.iter().any(|r| r[instance] == name
                        && r[tpot] == target
                        && (r[value].parse::<f64>().expect("number") - drawn).abs()
                            <= 1e-9 * drawn),
                    "{curve}: {name} at {target} = {drawn} is not in profiles.csv"
                );
            }
        }
    }
}

#[test]
fn policy_and_price_configs_run_with_their_figures() {
    let scratch = TempDir::new("policy-price-configs");
    let out = run_reduced("policy-comparison.toml", &scratch);
    let figures = figure_files(&out);
    assert_figures_well_formed(&out, &figures);
    for prefix in [
        "attainment_vs_rate_routers",
        "attainment_vs_rate_queues",
        "attainment_vs_rate_autoscalers",
        "cost_vs_rate_autoscalers",
        "cdf_ttft_routers_",
        "cdf_tpot_queues_",
        "replicas_hpa_",
    ] {
        assert!(
            figures.iter().any(|f| f.starts_with(prefix)),
            "no {prefix} figure in {figures:?}"
        );
    }
    let cdf = figures
        .iter()
        .find(|f| f.starts_with("cdf_ttft_routers_") && f.ends_with(".json"))
        .expect("a TTFT CDF");
    for series in figure_data(&out, cdf)["series"].as_array().expect("series") {
        let latencies: Vec<f64> = series["latencies"]
            .as_array()
            .expect("latencies")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        assert_eq!(latencies.len(), 101, "percentiles 0..=100");
        assert!(latencies.windows(2).all(|w| w[0] <= w[1]), "sorted");
        // The curve rises to the share of requests completed (rejected ones have no latency).
        let served = series["served_fraction"].as_f64().expect("served fraction");
        assert!(served > 0.0 && served <= 1.0, "{served}");
    }

    let out = run_reduced("whatif-prices.toml", &scratch);
    let figures = figure_files(&out);
    assert_figures_well_formed(&out, &figures);
    let what_if = figures
        .iter()
        .find(|f| f.starts_with("whatif_H100-SXM") && f.ends_with(".json"))
        .unwrap_or_else(|| panic!("no what-if figure in {figures:?}"));
    let data = figure_data(&out, what_if);
    assert_eq!(data["prices_per_hour"], serde_json::json!([1.5, 8.0]));
    let (header, rows) = read_csv(&out.join("results.csv"));
    let (fleet, overrides, cost) = (
        column(&header, "fleet"),
        column(&header, "price_overrides"),
        column(&header, "usd_per_hour"),
    );
    for (k, price) in ["1.5", "8"].iter().enumerate() {
        let row = rows
            .iter()
            .find(|r| r[fleet] == "mixed" && r[overrides] == format!("H100-SXM={price}"))
            .expect("a mixed row per price");
        assert_eq!(
            data["optimal_cost_per_hour"][k].as_f64(),
            Some(row[cost].parse::<f64>().expect("cost"))
        );
    }
}

#[test]
fn autoscaling_config_draws_cost_and_replicas_per_policy_from_its_runs() {
    let scratch = TempDir::new("autoscaling-config");
    let out = run_reduced("autoscaling.toml", &scratch);
    let figures = figure_files(&out);
    assert_figures_well_formed(&out, &figures);
    let (header, rows) = read_csv(&out.join("results.csv"));
    let (autoscaler, rate, cost, arrived) = (
        column(&header, "autoscaler"),
        column(&header, "rate_rps"),
        column(&header, "usd_per_hour"),
        column(&header, "arrived"),
    );
    let mut policies: Vec<&str> = rows.iter().map(|r| r[autoscaler].as_str()).collect();
    policies.dedup();
    assert_eq!(policies, ["static", "reactive", "hpa"]);
    // The static fleet is billed as given: four A10Gs at melange-2024's $1.01.
    for row in rows.iter().filter(|r| r[autoscaler] == "static") {
        let usd: f64 = row[cost].parse().expect("cost");
        assert!((usd - 4.04).abs() < 1e-9, "{row:?}");
    }
    // The cost figure's lines are the rows' billed $/h, per policy and rate.
    let data = figure_data(&out, "cost_vs_rate_autoscalers.json");
    let rates: Vec<f64> = data["rates"]
        .as_array()
        .expect("rates")
        .iter()
        .map(|v| v.as_f64().expect("rate"))
        .collect();
    for series in data["series"].as_array().expect("series") {
        let policy = series["name"].as_str().expect("name");
        for (k, value) in series["values"]
            .as_array()
            .expect("values")
            .iter()
            .enumerate()
        {
            let row = rows
                .iter()
                .find(|r| r[autoscaler] == policy && r[rate].parse::<f64>().ok() == Some(rates[k]))
                .expect("a row per policy and rate");
            assert_eq!(
                value.as_f64(),
                Some(row[cost].parse::<f64>().expect("cost"))
            );
        }
    }
    assert!(figures.contains(&"attainment_vs_rate_autoscalers.json".to_string()));
    // A replicas figure per autoscaled run: its arrivals add up to the run's, and no more
    // replicas serve than are billed.
    for policy in ["reactive", "hpa"] {
        for row in rows.iter().filter(|r| r[autoscaler] == policy) {
            let rps: f64 = row[rate].parse().expect("rate");
            let stem = format!("replicas_{policy}_{rps}rps").replace('.', "_");
            let data = figure_data(&out, &format!("{stem}.json"));
            let arrivals: f64 = data["rate_rps"]
                .as_array()
                .expect("rate")
                .iter()
                .map(|v| v.as_f64().expect("rps"))
                .sum::<f64>()
                * (data["rate_time_s"][1].as_f64().expect("window")
                    - data["rate_time_s"][0].as_f64().expect("start"));
            let expected: f64 = row[arrived].parse().expect("arrived");
            assert!(
                (arrivals - expected).abs() < 1e-6,
                "{stem}: {arrivals} vs {expected}"
            );
            for counts in data["types"].as_array().expect("types") {
                let billed = counts["billed"].as_array().expect("billed");
                let ready = counts["ready"].as_array().expect("ready");
                assert!(
                    billed
                        .iter()
                        .zip(ready)
                        .all(|(b, r)| b.as_f64() >= r.as_f64())
                );
            }
        }
    }
}

#[test]
fn report_writes_markdown_and_self_contained_html() {
    let scratch = TempDir::new("report");
    let out = run_reduced("quickstart.toml", &scratch);
    succeeds(["report".as_ref(), out.as_os_str()]);
    let markdown = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(
        markdown.starts_with("# medley report: quickstart"),
        "{markdown}"
    );
    assert!(markdown.contains("| mixed |"), "the results table");
    assert!(markdown.contains("![cost vs rate"), "links the cost figure");
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(
        html.contains("<table>") && html.contains("<svg"),
        "tables and inline SVG"
    );
    assert!(!html.contains(".png"), "no external images");
}

#[test]
fn whatif_finds_where_the_mix_changes() {
    let scratch = TempDir::new("whatif");
    let out = scratch.path().join("figures");
    let text = succeeds([
        "whatif".as_ref(),
        "--workload".as_ref(),
        "arena".as_ref(),
        "--rate".as_ref(),
        "8".as_ref(),
        "--slo-tpot".as_ref(),
        "120ms".as_ref(),
        "--vary".as_ref(),
        "A100-80GB=0.5:4:0.5".as_ref(),
        "--price-books".as_ref(),
        "melange-2024,neocloud".as_ref(),
        "--requests-per-trial".as_ref(),
        "120".as_ref(),
        "--replicates".as_ref(),
        "1".as_ref(),
        "--no-cache".as_ref(),
        "--quiet".as_ref(),
        "--json".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let result: Value = serde_json::from_str(&text).expect("JSON");
    let sweep = result["sweep"].as_array().expect("sweep");
    assert_eq!(sweep.len(), 2 * 8, "8 prices under 2 books");
    // Cheaper A100s can only lower the optimal cost.
    for book in ["melange-2024", "neocloud"] {
        let costs: Vec<f64> = sweep
            .iter()
            .filter(|p| p["price_book"] == book)
            .map(|p| p["usd_per_hour"].as_f64().expect("cost"))
            .collect();
        assert!(
            costs.windows(2).all(|w| w[0] <= w[1] + 1e-9),
            "{book}: cost falls as the A100 price rises: {costs:?}"
        );
    }
    // Each crossover names one change, to within a cent; between two swept prices whose mixes
    // differ, the crossovers chain from the lower one's mix to the higher one's (a bracket may
    // hold several changes, and each is found).
    let crossovers = result["crossovers"].as_array().expect("crossovers");
    for crossover in crossovers {
        assert_ne!(crossover["below"], crossover["above"]);
        assert!(crossover["resolution"].as_f64().expect("resolution") <= 0.01);
    }
    for book in ["melange-2024", "neocloud"] {
        let points: Vec<&Value> = sweep.iter().filter(|p| p["price_book"] == book).collect();
        for pair in points.windows(2) {
            let (low, high) = (pair[0]["price"].as_f64(), pair[1]["price"].as_f64());
            let inside: Vec<&Value> = crossovers
                .iter()
                .filter(|c| c["price_book"] == book)
                .filter(|c| c["price"].as_f64() > low && c["price"].as_f64() < high)
                .collect();
            if pair[0]["mix"] == pair[1]["mix"] {
                continue;
            }
            assert!(
                !inside.is_empty(),
                "{book}: a change between {low:?} and {high:?}"
            );
            assert_eq!(inside[0]["below"], pair[0]["mix"], "{book}");
            assert_eq!(inside[inside.len() - 1]["above"], pair[1]["mix"], "{book}");
            for step in inside.windows(2) {
                assert_eq!(step[0]["above"], step[1]["below"], "{book}");
            }
        }
    }
    assert!(out.join("whatif_A100-80GB_neocloud.png").exists());
    let err = common::fails(["whatif", "--workload", "arena", "--vary", "A100-80GB=4:1:1"]);
    assert!(err.contains("GPU=LOW:HIGH:STEP"), "{err}");
}

#[test]
fn rerunning_a_changed_config_keeps_old_points_out_of_the_tables() {
    let scratch = TempDir::new("stale");
    let mut config = reduced(load(&configs_dir().join("quickstart.toml")));
    config.sweep.rates = vec![2.0];
    let out = scratch.path().join("results");
    for seed in [0, 1] {
        config.seed = seed;
        let path = scratch.write("config.toml", &config.to_toml().expect("serializes"));
        let run = common::medley([
            "run".as_ref(),
            path.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--no-cache".as_ref(),
            "--no-plots".as_ref(),
        ]);
        assert!(run.output.status.success(), "{}", run.stderr());
        if seed == 1 {
            assert!(
                run.stderr().contains("1 points of other configs"),
                "{}",
                run.stderr()
            );
        }
    }
    let (header, rows) = read_csv(&out.join("results.csv"));
    let (hash, seed) = (column(&header, "config_hash"), column(&header, "seed"));
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r[seed] == "1" && r[hash] == rows[0][hash])
    );
}

/// The printed table of a simulate sweep shows what tells its rows apart: the router and queue
/// columns (and the TTFT target) appear when the rows differ in them.
#[test]
fn a_simulate_sweep_prints_the_policies_its_rows_differ_in() {
    let scratch = TempDir::new("sweep-table");
    let config = scratch.write(
        "sweep.toml",
        "name = \"sweep-table\"\n[workload]\nsource = \"arena\"\nrate = 2.0\nduration = \"30s\"\n\
         [slo]\ntpot = \"100ms\"\nttft = \"2s\"\n[simulate]\ncluster = \"A10G:1\"\n[sweep]\n\
         routers = [\"round-robin\", \"least-outstanding\"]\nqueues = [\"fcfs\", \"sjf\"]\n",
    );
    let out = scratch.path().join("results");
    let text = succeeds([
        "run".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--no-plots".as_ref(),
        "--quiet".as_ref(),
    ]);
    let header = text.lines().next().expect("a table");
    for column in ["TTFT SLO", "router", "queue"] {
        assert!(header.contains(column), "{header}");
    }
    for (router, queue) in [
        ("round-robin", "fcfs"),
        ("round-robin", "sjf"),
        ("least-outstanding", "fcfs"),
        ("least-outstanding", "sjf"),
    ] {
        assert!(
            text.lines()
                .any(|line| line.contains(&format!(" {router} "))
                    && line.contains(&format!(" {queue} "))),
            "no row for {router} with {queue}:\n{text}"
        );
    }
}

/// Runs `config` into `out` (no cache, quiet); returns its figures, checked well formed.
fn run_with_figures(config: &Path, out: &Path) -> Vec<String> {
    succeeds([
        "run".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--no-cache".as_ref(),
        "--quiet".as_ref(),
    ]);
    let figures = figure_files(out);
    assert_figures_well_formed(out, &figures);
    figures
}

/// Figures hold every swept axis fixed but the one they compare: a simulate sweep of TPOT
/// targets × routers, and a plan sweep of GPU sets, used to fail after every point had run
/// (a CDF named one router twice; one cost figure mixed both sets).
#[test]
fn figures_of_a_multi_axis_sweep_hold_the_other_axes_fixed() {
    let scratch = TempDir::new("multi-axis");
    let config = scratch.write(
        "routers.toml",
        "name = \"routers-by-slo\"\n[workload]\nsource = \"arena\"\nduration = \"30s\"\n\
         [slo]\ntpot_stat = \"p90\"\n[simulate]\ncluster = \"A10G:1\"\n[sweep]\n\
         rates = [2.0, 3.0]\ntpot = [\"40ms\", \"120ms\"]\n\
         routers = [\"round-robin\", \"least-outstanding\"]\n",
    );
    let out = scratch.path().join("routers");
    run_with_figures(&config, &out);
    let attainment = figure_data(&out, "attainment_vs_rate_routers.json");
    assert!(
        attainment["title"]
            .as_str()
            .is_some_and(|t| t.contains("SLO 120ms")),
        "{attainment}"
    );
    assert_eq!(attainment["series"].as_array().map(Vec::len), Some(2));

    let config = scratch.write(
        "sets.toml",
        "name = \"sets\"\nprices = \"melange-2024\"\n[workload]\nsource = \"arena\"\n\
         duration = \"1m\"\n[slo]\ntpot = \"120ms\"\n[profile]\n\
         buckets = \"500,2000,8000;250,1000,4000\"\nrequests_per_trial = 100\nreplicates = 1\n\
         tolerance = 0.1\n[plan]\nmax_rounds = 2\n[sweep]\nrates = [2.0, 4.0]\n\
         gpu_sets = [[\"A10G\"], [\"A10G\", \"A100-80GB\"]]\n",
    );
    let out = scratch.path().join("sets");
    let figures = run_with_figures(&config, &out);
    for set in ["A10G", "A10G_A100-80GB"] {
        let name = format!("cost_vs_rate_120ms_melange-2024_{set}.json");
        assert!(figures.contains(&name), "no {name} in {figures:?}");
    }
    let (header, rows) = read_csv(&out.join("results.csv"));
    let (set, fleet) = (column(&header, "gpu_set"), column(&header, "fleet"));
    let mut sets: Vec<&str> = rows
        .iter()
        .filter(|r| r[fleet] == "mixed")
        .map(|r| r[set].as_str())
        .collect();
    sets.sort_unstable();
    assert_eq!(sets, ["A10G", "A10G", "A10G,A100-80GB", "A10G,A100-80GB"]);
}

/// A run into a directory another config used leaves none of that config's profile tables or
/// figures behind (they stayed beside the new results as if drawn from them).
#[test]
fn a_reused_results_directory_keeps_no_other_configs_tables_or_figures() {
    let scratch = TempDir::new("reused-dir");
    let out = run_reduced("gpu-per-bucket.toml", &scratch);
    assert!(out.join("profiles.csv").exists());
    assert!(
        figure_files(&out)
            .iter()
            .any(|f| f.starts_with("best_gpu_"))
    );
    let config = scratch.write(
        "sim.toml",
        "name = \"reuse\"\n[workload]\nsource = \"arena\"\nduration = \"30s\"\n\
         [slo]\ntpot = \"100ms\"\ntpot_stat = \"p90\"\n[simulate]\ncluster = \"A10G:1\"\n\
         [sweep]\nrates = [2.0, 3.0]\n",
    );
    succeeds([
        "run".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(!out.join("profiles.csv").exists());
    assert!(!out.join("profiles.parquet").exists());
    let figures = figure_files(&out);
    assert!(
        figures.iter().all(|f| !f.starts_with("best_gpu_")),
        "{figures:?}"
    );
}
