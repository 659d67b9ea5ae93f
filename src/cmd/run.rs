//! `medley run`, `medley merge`, `medley plot`: experiment sweeps, their shards, their figures.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use experiments::config::ExperimentConfig;
use experiments::runner::{self, PointResult, ResultRow, RunOptions, RunProgress};
use gpu_models::Catalog;
use indicatif::{ProgressBar, ProgressStyle};

use super::CmdResult;
use super::figures::draw_figures;
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
    let (points, _) = runner::current_points(&out)?;
    let figures = if args.no_plots {
        Vec::new()
    } else {
        draw_figures(&points, &out.join("figures"), &figure_sizes(&config))?
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
        if report.stale > 0 {
            eprintln!(
                "note: {} holds {} points of other configs (an earlier version of this one?); they are kept in points/ but left out of the tables and figures",
                out.display(),
                report.stale
            );
        }
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
    let set = runner::merge_points(&args.dirs)?;
    let rows = runner::write_tables_of(&set.points, &args.out)?;
    let points = set.points;
    if let Some(grid_points) = set.grid_points
        && !set.missing.is_empty()
    {
        let indices: Vec<String> = set.missing.iter().map(usize::to_string).collect();
        eprintln!(
            "note: {} of {grid_points} grid points are in none of these directories (point {}): run their shards, then merge again",
            set.missing.len(),
            indices.join(", ")
        );
    }
    if set.stale > 0 {
        eprintln!(
            "note: {} points of other configs beside the shards' own were left out",
            set.stale
        );
    }
    // The shards' resolved config goes along, so `plot` and `report` work on the merge too.
    if let Some(config) = args
        .dirs
        .iter()
        .map(|dir| dir.join("config.toml"))
        .find(|config| config.exists())
    {
        std::fs::copy(&config, args.out.join("config.toml"))?;
    }
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
        draw_figures(
            &points,
            &args.out.join("figures"),
            &stored_sizes(&args.dirs[0]),
        )?
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

/// The finished points of the config last run into `dir`; none is an error.
pub fn finished_points(dir: &std::path::Path) -> Result<Vec<PointResult>, String> {
    let (points, _) = runner::current_points(dir)?;
    if points.is_empty() {
        return Err(format!(
            "{}: no finished grid points under points/",
            dir.display()
        ));
    }
    Ok(points)
}

/// Runs `medley plot`.
pub fn plot(args: PlotArgs) -> CmdResult {
    let points = finished_points(&args.dir)?;
    let figures = draw_figures(&points, &args.dir.join("figures"), &stored_sizes(&args.dir))?;
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

/// The results as a text table. Columns a sweep varies that the fixed ones would hide (the TTFT
/// target, router, queue order) are added when the rows differ in them, so every row can be
/// told apart.
pub fn render_results(points: &[PointResult]) -> String {
    let rows: Vec<&ResultRow> = points.iter().flat_map(|p| &p.rows).collect();
    let varies = |value: &dyn Fn(&ResultRow) -> &str| {
        rows.first()
            .is_some_and(|first| rows.iter().any(|row| value(row) != value(first)))
    };
    let with_ttft = rows.iter().any(|row| !row.ttft_target.is_empty());
    let with_router = varies(&|row| row.router.as_str());
    let with_queue = varies(&|row| row.queue.as_str());
    let mut header = vec!["point", "rate", "TPOT SLO"];
    if with_ttft {
        header.push("TTFT SLO");
    }
    header.extend(["prices", "fleet", "allocation"]);
    if with_router {
        header.push("router");
    }
    if with_queue {
        header.push("queue");
    }
    header.extend([
        "planned $/h",
        "$/h",
        "SLO met",
        "attain.",
        "TTFT p90 s",
        "e2e/out s",
    ]);
    let mut table = TextTable::new(header);
    for row in rows {
        let mut cells = vec![
            row.point.to_string(),
            format!("{:.3}", row.rate_rps),
            row.tpot_target.clone(),
        ];
        if with_ttft {
            cells.push(row.ttft_target.clone());
        }
        cells.extend([
            row.prices_label(),
            row.fleet_label(),
            row.allocation.clone(),
        ]);
        if with_router {
            cells.push(row.router.clone());
        }
        if with_queue {
            cells.push(row.queue.clone());
        }
        cells.extend([
            row.planned_usd_per_hour
                .map_or_else(|| "-".into(), |c| format!("{c:.2}")),
            format!("{:.2}", row.usd_per_hour),
            if row.slo_met { "yes" } else { "no" }.into(),
            format!("{:.1}%", row.attainment * 100.0),
            row.ttft_p90_s
                .map_or_else(|| "-".into(), |t| format!("{t:.3}")),
            row.norm_latency_mean_s
                .map_or_else(|| "-".into(), |t| format!("{t:.4}")),
        ]);
        table.row(cells);
    }
    let mut out = table.render();
    let notes: Vec<String> = points
        .iter()
        .flat_map(PointResult::labelled_notes)
        .collect();
    if !notes.is_empty() {
        out.push_str("\nnotes:\n");
        for note in notes {
            out.push_str(&format!("  {note}\n"));
        }
    }
    out
}

/// Request sizes the config asks tokens-per-dollar figures for.
fn figure_sizes(config: &ExperimentConfig) -> Vec<[u32; 2]> {
    config
        .efficiency
        .as_ref()
        .map(|e| e.sizes.clone())
        .unwrap_or_default()
}

/// The figure sizes of the config stored in a results directory (none if it cannot be read:
/// the figures then pick the most common buckets).
pub(crate) fn stored_sizes(dir: &Path) -> Vec<[u32; 2]> {
    ExperimentConfig::stored_in(dir)
        .map(|config| figure_sizes(&config))
        .unwrap_or_default()
}
