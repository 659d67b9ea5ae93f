//! Renders every figure from small hand-made data and checks the files: both written, PNG of
//! the promised size, SVG carrying the text the data implies. Also checks the error cases.

use std::fs;
use std::path::{Path, PathBuf};

use plots::*;

/// A fresh, empty directory unique to this test process and test, removed when dropped.
struct OutDir(PathBuf);

impl std::ops::Deref for OutDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for OutDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn out_dir(test: &str) -> OutDir {
    let dir = std::env::temp_dir().join(format!("medley-plots-{}-{test}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).expect("remove old test output");
    }
    OutDir(dir)
}

/// Width and height from the PNG signature and IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = fs::read(path).expect("read png");
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (width, height)
}

/// The text content of every `<text>` element in an SVG, unescaped and trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    let mut texts = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        let after_tag = &rest[start..];
        let open_end = after_tag.find('>').expect("unterminated <text> tag") + 1;
        let close = after_tag.find("</text>").expect("unclosed <text>");
        let content = after_tag[open_end..close]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&");
        texts.push(content);
        rest = &after_tag[close + "</text>".len()..];
    }
    texts
}

/// Checks both files and returns the SVG's texts.
fn check_files(figure: &RenderedFigure, dir: &Path, stem: &str, size: (u32, u32)) -> Vec<String> {
    assert_eq!(figure.png, dir.join(format!("{stem}.png")));
    assert_eq!(figure.svg, dir.join(format!("{stem}.svg")));
    let png_bytes = fs::metadata(&figure.png).expect("png written").len();
    let svg_bytes = fs::metadata(&figure.svg).expect("svg written").len();
    // A blank white PNG of this size compresses to a few kB; drawn figures are far larger.
    assert!(png_bytes > 15_000, "png only {png_bytes} bytes");
    assert!(svg_bytes > 5_000, "svg only {svg_bytes} bytes");
    assert_eq!(png_size(&figure.png), size);
    let svg = fs::read_to_string(&figure.svg).expect("read svg");
    assert!(svg.contains(&format!("width=\"{}\"", size.0)));
    svg_texts(&svg)
}

fn assert_has(texts: &[String], wanted: &str) {
    assert!(
        texts.iter().any(|text| text == wanted),
        "no SVG text {wanted:?}; texts: {texts:?}"
    );
}

fn assert_lacks(texts: &[String], unwanted: &str) {
    assert!(
        texts.iter().all(|text| text != unwanted),
        "unexpected SVG text {unwanted:?}"
    );
}

fn fleet(name: &str, costs: &[Option<f64>]) -> FleetCosts {
    FleetCosts {
        fleet: name.to_string(),
        cost_per_hour: costs.to_vec(),
    }
}

fn cost_data() -> CostVsRate {
    CostVsRate {
        title: "Cost at each rate".to_string(),
        rates: vec![2.0, 4.0, 8.0],
        mixed: fleet("Mélange", &[Some(6.5), Some(12.0), Some(30.0)]),
        baselines: vec![
            // 6.5 vs 10 → -35%; 12 vs 10 → +20%; infeasible at 8 req/s.
            fleet("A10G", &[Some(10.0), Some(10.0), None]),
            // 6.5 vs 13 → -50%; 12 vs 16 → -25%; 30 vs 40 → -25%.
            fleet("H100-SXM", &[Some(13.0), Some(16.0), Some(40.0)]),
        ],
    }
}

#[test]
fn cost_vs_rate_writes_bars_with_savings() {
    let dir = out_dir("cost");
    let figure = cost_vs_rate(&cost_data(), &dir, "cost").unwrap();
    let texts = check_files(&figure, &dir, "cost", (1200, 720));
    for wanted in [
        "Cost at each rate",
        "Request rate (req/s)",
        "Cost ($/hour)",
        "Mélange",
        "A10G",
        "H100-SXM",
        "-35%",
        "+20%",
        "-50%",
        "n/a",
        "2",
        "4",
        "8",
    ] {
        assert_has(&texts, wanted);
    }
    let twenty_five = texts.iter().filter(|text| *text == "-25%").count();
    assert_eq!(
        twenty_five, 2,
        "one -25% label per H100-SXM bar at 4 and 8 req/s"
    );
}

#[test]
fn cost_vs_rate_rejects_bad_data() {
    let dir = out_dir("cost-errors");
    let mut empty = cost_data();
    empty.rates.clear();
    assert!(matches!(
        cost_vs_rate(&empty, &dir, "x"),
        Err(PlotError::EmptyData { field, .. }) if field == "rates"
    ));

    let mut short = cost_data();
    short.baselines[1].cost_per_hour.pop();
    match cost_vs_rate(&short, &dir, "x") {
        Err(PlotError::LengthMismatch {
            field,
            expected,
            found,
            ..
        }) => {
            assert_eq!(field, "baselines[1].cost_per_hour");
            assert_eq!((expected, found), (3, 2));
        }
        other => panic!("expected a length mismatch, got {other:?}"),
    }

    let mut negative = cost_data();
    negative.mixed.cost_per_hour[0] = Some(-1.0);
    let error = cost_vs_rate(&negative, &dir, "x").unwrap_err();
    assert!(
        error.to_string().contains("mixed.cost_per_hour[0]"),
        "{error}"
    );

    let mut all_missing = cost_data();
    all_missing.baselines.clear();
    all_missing.mixed.cost_per_hour = vec![None; 3];
    assert!(matches!(
        cost_vs_rate(&all_missing, &dir, "x"),
        Err(PlotError::EmptyData { .. })
    ));

    let mut duplicate = cost_data();
    duplicate.baselines[1].fleet = "A10G".to_string();
    assert!(matches!(
        cost_vs_rate(&duplicate, &dir, "x"),
        Err(PlotError::InvalidValue { .. })
    ));

    for stem in ["", "a/b", ".."] {
        assert!(matches!(
            cost_vs_rate(&cost_data(), &dir, stem),
            Err(PlotError::InvalidStem { .. })
        ));
    }
    assert!(
        !dir.exists(),
        "nothing is written when the data is rejected"
    );
}

#[test]
fn rendering_is_deterministic() {
    let first = out_dir("deterministic-1");
    let second = out_dir("deterministic-2");
    let a = cost_vs_rate(&cost_data(), &first, "cost").unwrap();
    let b = cost_vs_rate(&cost_data(), &second, "cost").unwrap();
    assert_eq!(fs::read(&a.png).unwrap(), fs::read(&b.png).unwrap());
    assert_eq!(fs::read(&a.svg).unwrap(), fs::read(&b.svg).unwrap());
}

#[test]
fn an_unwritable_directory_is_an_error() {
    let dir = out_dir("unwritable");
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    // A file where the output directory should be.
    fs::write(&dir, b"not a directory").unwrap();
    let result = cost_vs_rate(&cost_data(), &dir, "cost");
    fs::remove_file(&dir).unwrap();
    assert!(
        matches!(result, Err(PlotError::CreateDir { .. })),
        "{result:?}"
    );
}

fn counts(gpu: &str, counts: &[u32]) -> GpuCounts {
    GpuCounts {
        gpu_type: gpu.to_string(),
        counts: counts.to_vec(),
    }
}

#[test]
fn gpu_mix_stacks_counts_with_totals() {
    let dir = out_dir("mix");
    let data = GpuMixByRate {
        title: "Fleet mix".to_string(),
        rates: vec![1.0, 2.5, 10.0],
        mix: vec![counts("L4", &[2, 4, 9]), counts("A100-80GB", &[0, 1, 5])],
    };
    let figure = gpu_mix_by_rate(&data, &dir, "mix").unwrap();
    let texts = check_files(&figure, &dir, "mix", (1200, 720));
    for wanted in [
        "Fleet mix",
        "L4",
        "A100-80GB",
        "GPUs (count)",
        "2.5",
        "14",
        "9",
        "5",
    ] {
        assert_has(&texts, wanted);
    }

    let mut short = data.clone();
    short.mix[0].counts.pop();
    assert!(matches!(
        gpu_mix_by_rate(&short, &dir, "x"),
        Err(PlotError::LengthMismatch { .. })
    ));
    let mut empty = data;
    empty.mix.clear();
    assert!(matches!(
        gpu_mix_by_rate(&empty, &dir, "x"),
        Err(PlotError::EmptyData { .. })
    ));
}

fn heatmap_data() -> BestGpuHeatmap {
    let cell = |winner: &str, advantage_pct: Option<f64>| {
        Some(BestGpuCell {
            winner: winner.to_string(),
            advantage_pct,
        })
    };
    BestGpuHeatmap {
        title: "Best GPU".to_string(),
        metric: "tokens per $".to_string(),
        input_buckets: vec!["short in".to_string(), "long in".to_string()],
        output_buckets: vec![
            "short out".to_string(),
            "mid out".to_string(),
            "long out".to_string(),
        ],
        cells: vec![
            vec![cell("L4", Some(23.0)), cell("A10G", Some(4.46)), None],
            vec![
                cell("A10G", Some(61.2)),
                cell("H100-SXM", None),
                cell("Gaudi3", Some(10.0)),
            ],
        ],
    }
}

#[test]
fn heatmap_writes_winners_and_advantages() {
    let dir = out_dir("heatmap");
    let figure = best_gpu_heatmap(&heatmap_data(), &dir, "heat").unwrap();
    let texts = check_files(&figure, &dir, "heat", (1100, 820));
    for wanted in [
        "Best GPU",
        "+23%",
        "+4.5%",
        "+61%",
        "+10%",
        "only",
        "no data",
        "short in",
        "long out",
        "Gaudi3",
        "Input length (tokens)",
        "Output length (tokens)",
    ] {
        assert_has(&texts, wanted);
    }
    assert_has(
        &texts,
        "Cell: best GPU and its advantage in tokens per $ over the runner-up",
    );
}

#[test]
fn heatmap_rejects_bad_shapes() {
    let dir = out_dir("heatmap-errors");
    let mut ragged = heatmap_data();
    ragged.cells[1].pop();
    match best_gpu_heatmap(&ragged, &dir, "x") {
        Err(PlotError::LengthMismatch {
            field,
            expected,
            found,
            ..
        }) => {
            assert!(field.starts_with("cells[1]"), "{field}");
            assert_eq!((expected, found), (3, 2));
        }
        other => panic!("expected a length mismatch, got {other:?}"),
    }
    let mut no_rows = heatmap_data();
    no_rows.input_buckets.clear();
    assert!(matches!(
        best_gpu_heatmap(&no_rows, &dir, "x"),
        Err(PlotError::EmptyData { .. })
    ));
    let mut negative = heatmap_data();
    negative.cells[0][0] = Some(BestGpuCell {
        winner: "L4".to_string(),
        advantage_pct: Some(-3.0),
    });
    assert!(matches!(
        best_gpu_heatmap(&negative, &dir, "x"),
        Err(PlotError::InvalidValue { .. })
    ));
}

fn line(name: &str, values: &[Option<f64>]) -> NamedSeries {
    NamedSeries {
        name: name.to_string(),
        values: values.to_vec(),
    }
}

#[test]
fn tokens_per_dollar_draws_one_line_per_gpu() {
    let dir = out_dir("tokens");
    let data = TokensPerDollarVsSlo {
        title: "Tokens per dollar".to_string(),
        tpot_targets_ms: vec![25.0, 50.0, 100.0],
        series: vec![
            line("L4", &[None, Some(1.5e6), Some(2.0e6)]),
            line("A100-80GB", &[Some(1.0e6), Some(1.2e6), Some(1.3e6)]),
        ],
    };
    let figure = tokens_per_dollar_vs_slo(&data, &dir, "tokens").unwrap();
    let texts = check_files(&figure, &dir, "tokens", (1200, 720));
    for wanted in [
        "Tokens per dollar",
        "TPOT SLO target (ms)",
        "Tokens per dollar (tokens/$)",
        "L4",
        "A100-80GB",
    ] {
        assert_has(&texts, wanted);
    }

    let mut unsorted = data.clone();
    unsorted.tpot_targets_ms = vec![50.0, 25.0, 100.0];
    assert!(matches!(
        tokens_per_dollar_vs_slo(&unsorted, &dir, "x"),
        Err(PlotError::InvalidValue { .. })
    ));
    let mut short = data.clone();
    short.series[1].values.pop();
    assert!(matches!(
        tokens_per_dollar_vs_slo(&short, &dir, "x"),
        Err(PlotError::LengthMismatch { .. })
    ));
    let mut empty = data;
    empty.series.clear();
    assert!(matches!(
        tokens_per_dollar_vs_slo(&empty, &dir, "x"),
        Err(PlotError::EmptyData { .. })
    ));
}

fn cdf_data(log_x: bool) -> LatencyCdf {
    LatencyCdf {
        title: "TTFT distribution".to_string(),
        x_label: "TTFT (s)".to_string(),
        series: vec![
            LatencySamples {
                name: "least-loaded".to_string(),
                latencies: vec![0.1, 0.2, 0.25, 0.4, 0.9],
                served_fraction: 1.0,
            },
            LatencySamples {
                name: "round-robin".to_string(),
                latencies: (1..=3000).map(|i| f64::from(i) / 1000.0).collect(),
                // A tenth rejected: the curve stops at 0.9.
                served_fraction: 0.9,
            },
        ],
        log_x,
        slo: Some(SloLine {
            value: 0.5,
            label: "SLO (0.5 s)".to_string(),
        }),
    }
}

#[test]
fn latency_cdf_linear_and_log() {
    for (log_x, stem) in [(false, "cdf-linear"), (true, "cdf-log")] {
        let dir = out_dir(stem);
        let figure = latency_cdf(&cdf_data(log_x), &dir, stem).unwrap();
        let texts = check_files(&figure, &dir, stem, (1200, 720));
        for wanted in [
            "TTFT distribution",
            "TTFT (s)",
            "Fraction of requests",
            "least-loaded",
            "round-robin",
            "SLO (0.5 s)",
        ] {
            assert_has(&texts, wanted);
        }
        if log_x {
            // Decades are labelled (0.01 only exists on a log x axis); 3 never is (the y axis
            // only spans 0..1).
            assert_has(&texts, "0.01");
            assert_lacks(&texts, "3");
        }
    }
}

#[test]
fn latency_cdf_rejects_bad_data() {
    let dir = out_dir("cdf-errors");
    let mut zero_on_log = cdf_data(true);
    zero_on_log.series[0].latencies[0] = 0.0;
    let error = latency_cdf(&zero_on_log, &dir, "x").unwrap_err();
    assert!(
        error.to_string().contains("series[0].latencies[0]"),
        "{error}"
    );
    let mut no_samples = cdf_data(false);
    no_samples.series[1].latencies.clear();
    assert!(matches!(
        latency_cdf(&no_samples, &dir, "x"),
        Err(PlotError::EmptyData { .. })
    ));
    let mut nan = cdf_data(false);
    nan.series[0].latencies[2] = f64::NAN;
    assert!(matches!(
        latency_cdf(&nan, &dir, "x"),
        Err(PlotError::InvalidValue { .. })
    ));
    let mut no_label = cdf_data(false);
    no_label.x_label.clear();
    assert!(matches!(
        latency_cdf(&no_label, &dir, "x"),
        Err(PlotError::InvalidValue { .. })
    ));
    for fraction in [0.0, 1.5, f64::NAN] {
        let mut served = cdf_data(false);
        served.series[1].served_fraction = fraction;
        let error = latency_cdf(&served, &dir, "x").unwrap_err();
        assert!(
            error.to_string().contains("series[1].served_fraction"),
            "{error}"
        );
    }
}

fn attainment_data(as_percent: bool) -> SloAttainmentVsRate {
    SloAttainmentVsRate {
        title: "Attainment".to_string(),
        rates: vec![1.0, 2.0, 4.0, 8.0],
        series: vec![
            line("Mélange", &[Some(1.0), Some(0.99), Some(0.97), Some(0.9)]),
            line("A10G", &[Some(1.0), Some(0.95), None, None]),
        ],
        target: Some(0.95),
        as_percent,
    }
}

#[test]
fn slo_attainment_in_percent_and_fraction() {
    for (as_percent, y_label, target) in [
        (true, "SLO attainment (%)", "Target 95%"),
        (false, "SLO attainment (fraction)", "Target 0.95"),
    ] {
        let stem = if as_percent {
            "attain-pct"
        } else {
            "attain-frac"
        };
        let dir = out_dir(stem);
        let figure = slo_attainment_vs_rate(&attainment_data(as_percent), &dir, stem).unwrap();
        let texts = check_files(&figure, &dir, stem, (1200, 720));
        for wanted in [
            "Attainment",
            y_label,
            target,
            "Mélange",
            "A10G",
            "Request rate (req/s)",
        ] {
            assert_has(&texts, wanted);
        }
    }
    let dir = out_dir("attain-errors");
    let mut above_one = attainment_data(true);
    above_one.series[0].values[0] = Some(1.5);
    assert!(matches!(
        slo_attainment_vs_rate(&above_one, &dir, "x"),
        Err(PlotError::InvalidValue { .. })
    ));
    let mut bad_target = attainment_data(true);
    bad_target.target = Some(95.0);
    assert!(matches!(
        slo_attainment_vs_rate(&bad_target, &dir, "x"),
        Err(PlotError::InvalidValue { .. })
    ));
}

fn run_data() -> RunTimeSeries {
    let time_s: Vec<f64> = (0..50).map(|t| f64::from(t) * 2.0).collect();
    let replica = |name: &str, offset: f64| ReplicaSeries {
        replica: name.to_string(),
        queue_len: time_s
            .iter()
            .map(|t| ((t / 10.0 + offset) % 7.0).floor())
            .collect(),
        running: time_s
            .iter()
            .map(|t| ((t / 5.0 + offset) % 12.0).floor())
            .collect(),
        kv_use: time_s
            .iter()
            .map(|t| (t / 100.0 + offset / 10.0) % 1.0)
            .collect(),
    };
    RunTimeSeries {
        title: "One run".to_string(),
        time_s: time_s.clone(),
        replicas: vec![
            replica("A10G#0", 0.0),
            replica("A10G#1", 3.0),
            replica("L4#0", 5.0),
        ],
    }
}

#[test]
fn run_time_series_draws_three_panels() {
    let dir = out_dir("run");
    let figure = run_time_series(&run_data(), &dir, "run").unwrap();
    let texts = check_files(&figure, &dir, "run", (1200, 1100));
    for wanted in [
        "One run",
        "A10G#0",
        "A10G#1",
        "L4#0",
        "Queue (requests)",
        "Running (requests)",
        "KV cache use (fraction)",
        "Simulated time (s)",
    ] {
        assert_has(&texts, wanted);
    }
    let mut too_full = run_data();
    too_full.replicas[2].kv_use[4] = 1.2;
    let error = run_time_series(&too_full, &dir, "x").unwrap_err();
    assert!(
        error.to_string().contains("replicas[2].kv_use[4]"),
        "{error}"
    );
    let mut short = run_data();
    short.replicas[0].running.truncate(10);
    assert!(matches!(
        run_time_series(&short, &dir, "x"),
        Err(PlotError::LengthMismatch { .. })
    ));
    let mut none = run_data();
    none.replicas.clear();
    assert!(matches!(
        run_time_series(&none, &dir, "x"),
        Err(PlotError::EmptyData { .. })
    ));
}

fn what_if_data() -> PriceWhatIf {
    PriceWhatIf {
        title: "A10G price sweep".to_string(),
        gpu_type: "A10G".to_string(),
        prices_per_hour: vec![0.5, 0.75, 1.0, 1.25, 1.5],
        optimal_cost_per_hour: vec![4.0, 5.0, 5.6, 5.8, 5.8],
        mix: vec![
            counts("A10G", &[6, 6, 3, 0, 0]),
            counts("L4", &[0, 0, 3, 7, 7]),
        ],
    }
}

#[test]
fn price_what_if_marks_mix_changes() {
    let data = what_if_data();
    assert_eq!(data.crossovers(), vec![(0.75, 1.0), (1.0, 1.25)]);
    let dir = out_dir("whatif");
    let figure = price_what_if(&data, &dir, "whatif").unwrap();
    let texts = check_files(&figure, &dir, "whatif", (1200, 1000));
    for wanted in [
        "A10G price sweep",
        "A10G price ($/hour)",
        "Optimal cost ($/hour)",
        "GPUs (count)",
        "Optimal cost",
        "Mix changes",
        "$0.75\u{2013}1.00",
        "$1.00\u{2013}1.25",
        "L4",
    ] {
        assert_has(&texts, wanted);
    }

    let mut unchanged = data.clone();
    unchanged.mix = vec![counts("A10G", &[2; 5])];
    assert!(unchanged.crossovers().is_empty());
    let figure = price_what_if(&unchanged, &dir, "flat").unwrap();
    let texts = check_files(&figure, &dir, "flat", (1200, 1000));
    assert_lacks(&texts, "Mix changes");

    let mut short = data.clone();
    short.optimal_cost_per_hour.pop();
    assert!(matches!(
        price_what_if(&short, &dir, "x"),
        Err(PlotError::LengthMismatch { .. })
    ));
    let mut empty = data;
    empty.prices_per_hour.clear();
    assert!(matches!(
        price_what_if(&empty, &dir, "x"),
        Err(PlotError::EmptyData { .. })
    ));
}

#[test]
fn data_structs_round_trip_through_json() {
    let cost = cost_data();
    let json = serde_json::to_string(&cost).unwrap();
    assert_eq!(serde_json::from_str::<CostVsRate>(&json).unwrap(), cost);
    let heat = heatmap_data();
    let json = serde_json::to_string(&heat).unwrap();
    assert_eq!(serde_json::from_str::<BestGpuHeatmap>(&json).unwrap(), heat);
}

#[test]
fn fonts_register_once_and_again() {
    ensure_fonts().unwrap();
    ensure_fonts().unwrap();
}

fn scaling_data() -> ReplicasOverTime {
    ReplicasOverTime {
        title: "HPA on a rising rate".into(),
        time_s: vec![0.0, 30.0, 37.0, 120.0, 150.0],
        end_s: 200.0,
        types: vec![
            TypeReplicaCounts {
                name: "prefill/H100-SXM".into(),
                billed: vec![1.0, 1.0, 1.0, 1.0, 1.0],
                ready: vec![1.0, 1.0, 1.0, 1.0, 1.0],
            },
            TypeReplicaCounts {
                name: "decode/A10G".into(),
                billed: vec![1.0, 3.0, 3.0, 2.0, 1.0],
                ready: vec![1.0, 1.0, 3.0, 2.0, 1.0],
            },
        ],
        rate_time_s: vec![0.0, 60.0, 120.0],
        rate_rps: vec![1.0, 6.5, 2.0],
    }
}

#[test]
fn replicas_over_time_draws_rate_and_counts() {
    let dir = out_dir("replicas");
    let figure = replicas_over_time(&scaling_data(), &dir, "replicas").unwrap();
    let texts = check_files(&figure, &dir, "replicas", (1200, 960));
    for wanted in [
        "HPA on a rising rate",
        "Arrivals (req/s)",
        "Replicas",
        "Simulated time (s)",
        "decode/A10G billed",
        "decode/A10G serving",
        "prefill/H100-SXM billed",
    ] {
        assert_has(&texts, wanted);
    }
    // Without a rate the figure is one panel.
    let mut counts_only = scaling_data();
    counts_only.rate_time_s.clear();
    counts_only.rate_rps.clear();
    let figure = replicas_over_time(&counts_only, &dir, "counts").unwrap();
    let texts = check_files(&figure, &dir, "counts", (1200, 720));
    assert_lacks(&texts, "Arrivals (req/s)");
}

#[test]
fn replicas_over_time_rejects_bad_data() {
    let dir = out_dir("replicas-errors");
    let mut serving_unbilled = scaling_data();
    serving_unbilled.types[1].ready[1] = 4.0;
    let error = replicas_over_time(&serving_unbilled, &dir, "x").unwrap_err();
    assert!(error.to_string().contains("types[1].ready[1]"), "{error}");
    let mut early_end = scaling_data();
    early_end.end_s = 100.0;
    let error = replicas_over_time(&early_end, &dir, "x").unwrap_err();
    assert!(error.to_string().contains("end_s"), "{error}");
    let mut short = scaling_data();
    short.types[0].billed.pop();
    assert!(matches!(
        replicas_over_time(&short, &dir, "x"),
        Err(PlotError::LengthMismatch { .. })
    ));
    let mut unsorted = scaling_data();
    unsorted.rate_time_s = vec![0.0, 120.0, 60.0];
    let error = replicas_over_time(&unsorted, &dir, "x").unwrap_err();
    assert!(error.to_string().contains("rate_time_s[2]"), "{error}");
}

#[test]
fn cost_per_policy_draws_one_line_per_policy() {
    let dir = out_dir("policy-cost");
    let data = CostPerPolicy {
        title: "Cost by autoscaler".into(),
        rates: vec![2.0, 4.0, 8.0],
        series: vec![
            line("static", &[Some(12.0), Some(12.0), Some(12.0)]),
            line("hpa", &[Some(3.5), Some(6.1), None]),
        ],
    };
    let figure = cost_per_policy(&data, &dir, "cost").unwrap();
    let texts = check_files(&figure, &dir, "cost", (1200, 720));
    for wanted in [
        "Cost by autoscaler",
        "static",
        "hpa",
        "Cost billed ($/hour)",
        "Mean request rate (req/s)",
    ] {
        assert_has(&texts, wanted);
    }
    let mut negative = data.clone();
    negative.series[1].values[0] = Some(-1.0);
    let error = cost_per_policy(&negative, &dir, "x").unwrap_err();
    assert!(error.to_string().contains("series[1].values[0]"), "{error}");
}
