//! `medley run`, `medley merge`, `medley plot`: experiment sweeps, their shards, their figures.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use experiments::config::ExperimentConfig;
use experiments::runner::{self, PointResult, ResultRow, RunOptions, RunProgress};
use gpu_models::Catalog;
use indicatif::{ProgressBar, ProgressStyle};

use super::CmdResult;
use super::table::TextTable;

/// The quick-start experiment, built in so `medley run` works with no files at all.
pub const QUICKSTART: &str = include_str!("../../experiments/configs/quickstart.toml");

/// Arguments of `medley run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Experiment config (TOML); default: the built-in quick start
    /// (experiments/configs/quickstart.toml).
    pub config: Option<PathBuf>,
    /// Results directory (default: results/<experiment name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run one slice of the grid, `I/N` (points with index % N == I), e.g. for a job array.
    #[arg(long)]
    pub shard: Option<String>,
    /// Run only the first N points of the grid (or of the shard).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Where capacity profiles are cached.
    #[arg(long, default_value = ".medley-cache/profiles")]
    pub cache_dir: PathBuf,
    /// Neither read nor write the profile cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Skip drawing figures.
    #[arg(long)]
    pub no_plots: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Print the run report and results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `medley merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Result directories of shards (each holding `points/`).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Directory for the merged tables and figures.
    #[arg(long)]
    pub out: PathBuf,
    /// Skip drawing figures.
    #[arg(long)]
    pub no_plots: bool,
    /// Print the merged rows as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `medley plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A results directory written by `medley run` or `medley merge`.
    pub dir: PathBuf,
    /// Print the figures written as JSON.
    #[arg(long)]
    pub json: bool,
}

fn bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{elapsed_precise}] {bar:40} {pos}/{len} ({eta} left)",
        )
        .expect("valid template"),
    );
    bar
}

/// Runs `medley run`.
pub fn run(args: RunArgs, catalog: &Catalog) -> CmdResult {
    let config = match &args.config {
        Some(path) => ExperimentConfig::load(path)?,
        None => {
            ExperimentConfig::parse(QUICKSTART, Path::new("experiments/configs/quickstart.toml"))?
        }
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&config.name));
    let options = RunOptions {
        out: out.clone(),
        shard: args.shard.as_deref().map(runner::parse_shard).transpose()?,
        cache_dir: (!args.no_cache).then(|| args.cache_dir.clone()),
        limit: args.limit,
    };
    let quiet = args.quiet || args.json;
    let progress = bar(quiet);
    let started = std::time::Instant::now();
    let report = runner::run(&config, catalog, &options, &|event| match event {
        RunProgress::Profiling { slo, done, total } => {
            progress.set_message(format!("profiling ({slo})"));
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        }
        RunProgress::Points { done, total } => {
            progress.set_message("grid points");
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        }
    })?;
    progress.finish_and_clear();
    let points = runner::read_points(std::slice::from_ref(&out))?;
    let figures = if args.no_plots {
        Vec::new()
    } else {
        draw_figures(&points, &out.join("figures"))?
    };
    if args.json {
        let rows: Vec<&ResultRow> = points.iter().flat_map(|p| &p.rows).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "experiment": config.name,
                "out": out,
                "grid_points": report.grid_points,
                "selected": report.selected,
                "resumed": report.resumed,
                "ran": report.ran,
                "rows": rows,
                "figures": figures,
            }))?
        );
        return Ok(());
    }
    if !args.quiet {
        eprintln!(
            "{}: {} of {} grid points selected, {} resumed from {}, {} run in {:.1} s",
            config.name,
            report.selected,
            report.grid_points,
            report.resumed,
            out.display(),
            report.ran,
            started.elapsed().as_secs_f64()
        );
    }
    print!("{}", render_results(&points));
    println!(
        "\ntables: {0}/results.csv, {0}/results.parquet; notes: {0}/notes.txt; config: {0}/config.toml",
        out.display()
    );
    if !figures.is_empty() {
        println!("figures ({}):", figures.len());
        for figure in &figures {
            println!("  {}", figure.display());
        }
    }
    Ok(())
}

/// Runs `medley merge`.
pub fn merge(args: MergeArgs) -> CmdResult {
    let rows = runner::write_tables(&args.dirs, &args.out)?;
    let points = runner::read_points(&args.dirs)?;
    // The merged directory holds every point too, so it can be plotted or merged again.
    let merged = args.out.join("points");
    std::fs::create_dir_all(&merged)?;
    for point in &points {
        std::fs::write(
            merged.join(format!("{}.json", point.key)),
            serde_json::to_string_pretty(point)?,
        )?;
    }
    let figures = if args.no_plots {
        Vec::new()
    } else {
        draw_figures(&points, &args.out.join("figures"))?
    };
    if args.json {
        let rows: Vec<&ResultRow> = points.iter().flat_map(|p| &p.rows).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "merged {} points ({rows} rows) from {} directories into {}",
        points.len(),
        args.dirs.len(),
        args.out.display()
    );
    print!("{}", render_results(&points));
    for figure in &figures {
        println!("  {}", figure.display());
    }
    Ok(())
}

/// Runs `medley plot`.
pub fn plot(args: PlotArgs) -> CmdResult {
    let points = runner::read_points(std::slice::from_ref(&args.dir))?;
    if points.is_empty() {
        return Err(format!(
            "{}: no finished grid points under points/",
            args.dir.display()
        )
        .into());
    }
    let figures = draw_figures(&points, &args.dir.join("figures"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else if figures.is_empty() {
        println!("the results support no figure (a sweep over rates or prices draws them)");
    } else {
        for figure in &figures {
            println!("{}", figure.display());
        }
    }
    Ok(())
}

/// The results as a text table.
pub fn render_results(points: &[PointResult]) -> String {
    let mut table = TextTable::new([
        "point",
        "rate",
        "TPOT SLO",
        "prices",
        "fleet",
        "allocation",
        "planned $/h",
        "$/h",
        "SLO met",
        "attain.",
        "TTFT p90 s",
        "e2e/out s",
    ]);
    for point in points {
        for row in &point.rows {
            table.row([
                row.point.to_string(),
                format!("{:.3}", row.rate_rps),
                row.tpot_target.clone(),
                if row.price_overrides.is_empty() {
                    row.price_book.clone()
                } else {
                    format!("{} ({})", row.price_book, row.price_overrides)
                },
                if row.fleet_type.is_empty() {
                    row.fleet.clone()
                } else {
                    format!("{} {}", row.fleet, row.fleet_type)
                },
                row.allocation.clone(),
                row.planned_usd_per_hour
                    .map_or_else(|| "-".into(), |c| format!("{c:.2}")),
                format!("{:.2}", row.usd_per_hour),
                if row.slo_met { "yes" } else { "no" }.into(),
                format!("{:.1}%", row.attainment * 100.0),
                format!("{:.3}", row.ttft_p90_s),
                format!("{:.4}", row.norm_latency_mean_s),
            ]);
        }
    }
    let mut out = table.render();
    let notes: Vec<String> = points
        .iter()
        .flat_map(|p| {
            p.notes
                .iter()
                .map(move |n| format!("point {}: {n}", p.point.index))
        })
        .collect();
    if !notes.is_empty() {
        out.push_str("\nnotes:\n");
        for note in notes {
            out.push_str(&format!("  {note}\n"));
        }
    }
    out
}

/// GPU count per type in a cluster spec.
fn counts(allocation: &str) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for entry in sim::parse_spec(allocation).unwrap_or_default() {
        let name = if entry.tp == 1 {
            entry.gpu.clone()
        } else {
            format!("{}x{}", entry.gpu, entry.tp)
        };
        *counts.entry(name).or_insert(0) += entry.count;
    }
    counts
}

fn file_stem(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Draws every figure the results support into `dir`; returns the files written.
pub fn draw_figures(
    points: &[PointResult],
    dir: &Path,
) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let rows: Vec<&ResultRow> = points.iter().flat_map(|p| &p.rows).collect();
    let mut written = Vec::new();
    let mut push = |figure: plots::RenderedFigure| {
        written.push(figure.png);
        written.push(figure.svg);
    };
    // Plan experiments over rates: one set of figures per (SLO, prices, seed).
    let mut by_group: BTreeMap<(String, String, String, String, u64), Vec<&ResultRow>> =
        BTreeMap::new();
    for row in rows.iter().filter(|r| r.fleet != "given") {
        by_group
            .entry((
                row.tpot_target.clone(),
                row.ttft_target.clone(),
                row.price_book.clone(),
                row.price_overrides.clone(),
                row.seed,
            ))
            .or_default()
            .push(row);
    }
    for ((tpot, ttft, book, overrides, seed), group) in &by_group {
        let mut rates: Vec<f64> = group.iter().map(|r| r.rate_rps).collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        if rates.len() < 2 {
            continue;
        }
        let slo = [tpot.as_str(), ttft.as_str()]
            .iter()
            .filter(|t| !t.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("+");
        let stem = file_stem(&format!(
            "{slo}_{book}{}{}",
            if overrides.is_empty() { "" } else { "_" },
            overrides
        ));
        let stem = if *seed == 0 {
            stem
        } else {
            format!("{stem}_seed{seed}")
        };
        let cost_of = |fleet: &str, fleet_type: &str, rate: f64| {
            group
                .iter()
                .find(|r| r.fleet == fleet && r.fleet_type == fleet_type && r.rate_rps == rate)
                .and_then(|r| r.slo_met.then_some(r.usd_per_hour))
        };
        let mut types: Vec<String> = group
            .iter()
            .filter(|r| r.fleet == "single")
            .map(|r| r.fleet_type.clone())
            .collect();
        types.sort();
        types.dedup();
        let title_suffix = format!("SLO {slo}, {book} prices");
        push(plots::cost_vs_rate(
            &plots::CostVsRate {
                title: format!("Cost of fleets that met the SLO in simulation ({title_suffix})"),
                rates: rates.clone(),
                mixed: plots::FleetCosts {
                    fleet: "mixed (verified)".into(),
                    cost_per_hour: rates.iter().map(|r| cost_of("mixed", "", *r)).collect(),
                },
                baselines: types
                    .iter()
                    .map(|t| plots::FleetCosts {
                        fleet: t.clone(),
                        cost_per_hour: rates.iter().map(|r| cost_of("single", t, *r)).collect(),
                    })
                    .collect(),
            },
            dir,
            &format!("cost_vs_rate_{stem}"),
        )?);
        let mixed_counts: Vec<BTreeMap<String, u32>> = rates
            .iter()
            .map(|rate| {
                group
                    .iter()
                    .find(|r| r.fleet == "mixed" && r.rate_rps == *rate)
                    .map(|r| counts(&r.allocation))
                    .unwrap_or_default()
            })
            .collect();
        let mut mix_types: Vec<String> = mixed_counts
            .iter()
            .flat_map(|c| c.keys().cloned())
            .collect();
        mix_types.sort();
        mix_types.dedup();
        push(plots::gpu_mix_by_rate(
            &plots::GpuMixByRate {
                title: format!("Verified mixed fleet ({title_suffix})"),
                rates: rates.clone(),
                mix: mix_types
                    .iter()
                    .map(|t| plots::GpuCounts {
                        gpu_type: t.clone(),
                        counts: mixed_counts
                            .iter()
                            .map(|c| c.get(t).copied().unwrap_or(0))
                            .collect(),
                    })
                    .collect(),
            },
            dir,
            &format!("gpu_mix_{stem}"),
        )?);
        let attainment = |fleet: &str, fleet_type: &str| -> Vec<Option<f64>> {
            rates
                .iter()
                .map(|rate| {
                    group
                        .iter()
                        .find(|r| {
                            r.fleet == fleet && r.fleet_type == fleet_type && r.rate_rps == *rate
                        })
                        .map(|r| r.attainment)
                })
                .collect()
        };
        let mut series = vec![plots::NamedSeries {
            name: "mixed (verified)".into(),
            values: attainment("mixed", ""),
        }];
        series.extend(types.iter().map(|t| plots::NamedSeries {
            name: t.clone(),
            values: attainment("single", t),
        }));
        push(plots::slo_attainment_vs_rate(
            &plots::SloAttainmentVsRate {
                title: format!("Per-request SLO attainment in simulation ({title_suffix})"),
                rates: rates.clone(),
                series,
                target: None,
                as_percent: true,
            },
            dir,
            &format!("attainment_vs_rate_{stem}"),
        )?);
    }
    // What-if prices: the mixed fleet against one GPU's price, per (SLO, rate).
    let mut by_price: BTreeMap<(String, String, String), Vec<&ResultRow>> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| r.fleet == "mixed" && !r.price_overrides.is_empty())
    {
        let Some((gpu, _)) = row.price_overrides.split_once('=') else {
            continue;
        };
        if row.price_overrides.contains(',') {
            continue; // several GPUs varied at once: no single price axis
        }
        by_price
            .entry((
                gpu.to_string(),
                row.tpot_target.clone(),
                format!("{}", row.rate_rps),
            ))
            .or_default()
            .push(row);
    }
    for ((gpu, tpot, rate), mut group) in by_price {
        let price = |row: &ResultRow| {
            row.price_overrides
                .split_once('=')
                .and_then(|(_, p)| p.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        group.sort_by(|a, b| price(a).total_cmp(&price(b)));
        if group.len() < 2 {
            continue;
        }
        let all_counts: Vec<BTreeMap<String, u32>> =
            group.iter().map(|r| counts(&r.allocation)).collect();
        let mut mix_types: Vec<String> =
            all_counts.iter().flat_map(|c| c.keys().cloned()).collect();
        mix_types.sort();
        mix_types.dedup();
        push(plots::price_what_if(
            &plots::PriceWhatIf {
                title: format!(
                    "Verified mixed fleet as the {gpu} price varies (SLO {tpot}, {rate} req/s)"
                ),
                gpu_type: gpu.clone(),
                prices_per_hour: group.iter().map(|r| price(r)).collect(),
                optimal_cost_per_hour: group.iter().map(|r| r.usd_per_hour).collect(),
                mix: mix_types
                    .iter()
                    .map(|t| plots::GpuCounts {
                        gpu_type: t.clone(),
                        counts: all_counts
                            .iter()
                            .map(|c| c.get(t).copied().unwrap_or(0))
                            .collect(),
                    })
                    .collect(),
            },
            dir,
            &file_stem(&format!("whatif_{gpu}_{tpot}_{rate}rps")),
        )?);
    }
    // Simulate experiments: attainment vs rate per (cluster, router, queue).
    let given: Vec<&&ResultRow> = rows.iter().filter(|r| r.fleet == "given").collect();
    let mut rates: Vec<f64> = given.iter().map(|r| r.rate_rps).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    if rates.len() >= 2 {
        let mut names: Vec<String> = given
            .iter()
            .map(|r| format!("{} {} {}", r.allocation, r.router, r.queue))
            .collect();
        names.sort();
        names.dedup();
        let series = names
            .iter()
            .map(|name| plots::NamedSeries {
                name: name.clone(),
                values: rates
                    .iter()
                    .map(|rate| {
                        given
                            .iter()
                            .find(|r| {
                                format!("{} {} {}", r.allocation, r.router, r.queue) == *name
                                    && r.rate_rps == *rate
                            })
                            .map(|r| r.attainment)
                    })
                    .collect(),
            })
            .collect();
        push(plots::slo_attainment_vs_rate(
            &plots::SloAttainmentVsRate {
                title: "Per-request SLO attainment by fleet and policy".into(),
                rates,
                series,
                target: None,
                as_percent: true,
            },
            dir,
            "attainment_vs_rate_policies",
        )?);
    }
    Ok(written)
}
