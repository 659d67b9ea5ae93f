//! `medley report`: one shareable page (Markdown and/or HTML) for a results directory: what was
//! run, the key tables, the notes and every figure.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use experiments::config::ExperimentConfig;
use experiments::efficiency::{ProfileRow, best_of};
use experiments::runner::{self, PointResult, ResultRow};

use super::CmdResult;
use super::figures::draw_figures;

/// Page formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// `report.md`, linking the PNG figures beside it.
    Markdown,
    /// `report.html`, one file with the SVG figures inlined.
    Html,
    /// Both.
    Both,
}

/// Arguments of `medley report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results directory written by `medley run` or `medley merge`.
    pub dir: PathBuf,
    /// Which page to write.
    #[arg(long, value_enum, default_value = "both")]
    pub format: ReportFormat,
    /// Print the paths written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A table: header and rows of cells.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// One section of the page.
enum Block {
    Heading(String),
    Text(String),
    Table(Table),
    Figure {
        png: PathBuf,
        svg: PathBuf,
        caption: String,
    },
}

fn results_table(rows: &[&ResultRow]) -> Table {
    let header = [
        "rate (req/s)",
        "TPOT SLO",
        "TTFT SLO",
        "prices",
        "router",
        "queue",
        "fleet",
        "allocation",
        "planned $/h",
        "$/h",
        "SLO met",
        "attainment",
        "first plan attainment",
        "TTFT p90 (s)",
        "TPOT p90 (s)",
    ];
    Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    format!("{}", r.rate_rps),
                    r.tpot_target.clone(),
                    r.ttft_target.clone(),
                    r.prices_label(),
                    r.router.clone(),
                    r.queue.clone(),
                    r.fleet_label(),
                    r.allocation.clone(),
                    r.planned_usd_per_hour
                        .map_or_else(|| "-".into(), |c| format!("{c:.2}")),
                    format!("{:.2}", r.usd_per_hour),
                    if r.slo_met { "yes" } else { "no" }.into(),
                    format!("{:.1}%", r.attainment * 100.0),
                    r.first_plan_attainment
                        .map_or_else(|| "-".into(), |a| format!("{:.1}%", a * 100.0)),
                    r.ttft_p90_s
                        .map_or_else(|| "-".into(), |t| format!("{t:.3}")),
                    r.tpot_p90_s
                        .map_or_else(|| "-".into(), |t| format!("{t:.4}")),
                ]
            })
            .collect(),
    }
}

/// Per SLO and prices: the best instance type per bucket that holds requests.
fn best_gpu_table(rows: &[&ProfileRow]) -> Table {
    let mut keys: Vec<(String, String, String, u32, u32)> = rows
        .iter()
        .filter(|r| r.bucket_share > 0.0)
        .map(|r| {
            (
                r.slo.clone(),
                format!("{} {}", r.price_book, r.price_overrides)
                    .trim()
                    .to_string(),
                r.config_hash.clone(),
                r.input_bucket,
                r.output_bucket,
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    let mut table = Table {
        header: [
            "SLO",
            "prices",
            "input tokens",
            "output tokens",
            "share of requests",
            "best GPU",
            "advantage over runner-up",
        ]
        .iter()
        .map(|h| h.to_string())
        .collect(),
        rows: Vec::new(),
    };
    for (slo, prices, hash, input, output) in keys {
        let cell: Vec<&ProfileRow> = rows
            .iter()
            .filter(|r| {
                r.slo == slo
                    && format!("{} {}", r.price_book, r.price_overrides).trim() == prices
                    && r.config_hash == hash
                    && r.input_bucket == input
                    && r.output_bucket == output
            })
            .copied()
            .collect();
        let Some(first) = cell.first() else { continue };
        let (winner, advantage) = match best_of(&cell) {
            Some((winner, Some(pct))) => (winner, format!("+{pct:.1}%")),
            Some((winner, None)) => (winner, "only one serves it".into()),
            None => ("none".into(), "-".into()),
        };
        table.rows.push(vec![
            slo.clone(),
            prices.clone(),
            first.input_range.clone(),
            first.output_range.clone(),
            format!("{:.2}%", first.bucket_share * 100.0),
            winner,
            advantage,
        ]);
    }
    table
}

fn caption_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().replace('_', " "))
        .unwrap_or_default()
}

/// The page's blocks, from the finished points, the stored config and the figures.
fn blocks(dir: &Path, points: &[PointResult], figures: &[PathBuf]) -> Vec<Block> {
    let mut out = Vec::new();
    let config = ExperimentConfig::stored_in(dir);
    let name = config
        .as_ref()
        .map_or_else(|| dir.display().to_string(), |c| c.name.clone());
    out.push(Block::Heading(format!("medley report: {name}")));
    if let Some(config) = &config
        && !config.description.is_empty()
    {
        out.push(Block::Text(config.description.clone()));
    }
    let rows: Vec<&ResultRow> = points.iter().flat_map(|p| &p.rows).collect();
    let version = rows
        .first()
        .map(|r| r.medley_version.clone())
        .or_else(|| {
            points
                .iter()
                .flat_map(|p| &p.profiles)
                .next()
                .map(|r| r.medley_version.clone())
        })
        .unwrap_or_else(|| runner::MEDLEY_VERSION.to_string());
    out.push(Block::Text(format!(
        "{} grid points, {} simulated fleets; medley {version}. Tables: `results.csv`/`results.parquet`{}; resolved config: `config.toml` (re-run with `medley run {}/config.toml`).",
        points.len(),
        rows.len(),
        if points.iter().any(|p| !p.profiles.is_empty()) {
            ", `profiles.csv`/`profiles.parquet`"
        } else {
            ""
        },
        dir.display()
    )));
    if !rows.is_empty() {
        out.push(Block::Heading("Simulated fleets".into()));
        out.push(Block::Text(
            "attainment: fraction of requests meeting every per-request target; SLO met: the SLO statistics (e.g. Mélange's mean e2e/output tokens) hold; first plan: the solver's plan before any derating.".into(),
        ));
        out.push(Block::Table(results_table(&rows)));
    }
    let profile_rows = runner::unique_profile_rows(points);
    if !profile_rows.is_empty() {
        out.push(Block::Heading("Best GPU per request size".into()));
        out.push(Block::Text(
            "By output tokens per dollar at each type's profiled capacity under the SLO.".into(),
        ));
        out.push(Block::Table(best_gpu_table(&profile_rows)));
    }
    let notes: Vec<String> = points
        .iter()
        .flat_map(PointResult::labelled_notes)
        .collect();
    if !notes.is_empty() {
        out.push(Block::Heading("Notes".into()));
        out.push(Block::Text(notes.join("\n")));
    }
    let pngs: Vec<&PathBuf> = figures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    if !pngs.is_empty() {
        out.push(Block::Heading("Figures".into()));
        for png in pngs {
            out.push(Block::Figure {
                png: png.clone(),
                svg: png.with_extension("svg"),
                caption: caption_of(png),
            });
        }
    }
    out
}

fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn markdown(dir: &Path, blocks: &[Block]) -> String {
    let mut page = String::new();
    let mut first = true;
    for block in blocks {
        match block {
            Block::Heading(text) => {
                let level = if first { "#" } else { "##" };
                first = false;
                let _ = writeln!(page, "{level} {text}\n");
            }
            Block::Text(text) => {
                for line in text.lines() {
                    let _ = writeln!(page, "{line}  ");
                }
                page.push('\n');
            }
            Block::Table(table) => {
                let _ = writeln!(
                    page,
                    "| {} |",
                    table
                        .header
                        .iter()
                        .map(|h| markdown_cell(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
                let _ = writeln!(page, "|{}", " --- |".repeat(table.header.len()));
                for row in &table.rows {
                    let _ = writeln!(
                        page,
                        "| {} |",
                        row.iter()
                            .map(|c| markdown_cell(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                }
                page.push('\n');
            }
            Block::Figure { png, caption, .. } => {
                let relative = png.strip_prefix(dir).unwrap_or(png);
                let _ = writeln!(page, "![{caption}]({})\n", relative.display());
            }
        }
    }
    page
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(blocks: &[Block]) -> Result<String, std::io::Error> {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>medley report</title>\n<style>\nbody { font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }\ntable { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }\nth, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }\nth { background: #f0f0f0; }\nfigure { margin: 2em 0; }\nfigure svg { max-width: 100%; height: auto; }\nfigcaption { color: #555; }\n</style>\n</head>\n<body>\n",
    );
    let mut first = true;
    for block in blocks {
        match block {
            Block::Heading(text) => {
                let tag = if first { "h1" } else { "h2" };
                first = false;
                let _ = writeln!(page, "<{tag}>{}</{tag}>", escape(text));
            }
            Block::Text(text) => {
                let _ = writeln!(page, "<p>{}</p>", escape(text).replace('\n', "<br>\n"));
            }
            Block::Table(table) => {
                page.push_str("<table>\n<tr>");
                for h in &table.header {
                    let _ = write!(page, "<th>{}</th>", escape(h));
                }
                page.push_str("</tr>\n");
                for row in &table.rows {
                    page.push_str("<tr>");
                    for cell in row {
                        let _ = write!(page, "<td>{}</td>", escape(cell));
                    }
                    page.push_str("</tr>\n");
                }
                page.push_str("</table>\n");
            }
            Block::Figure { svg, caption, .. } => {
                // Inline SVG keeps the page one self-contained file.
                let text = std::fs::read_to_string(svg)?;
                let body = text
                    .find("<svg")
                    .map_or(text.as_str(), |start| &text[start..]);
                let _ = writeln!(
                    page,
                    "<figure>\n{body}\n<figcaption>{}</figcaption>\n</figure>",
                    escape(caption)
                );
            }
        }
    }
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

/// Runs `medley report`.
pub fn run(args: ReportArgs) -> CmdResult {
    let points = super::run::finished_points(&args.dir)?;
    let sizes = super::run::stored_sizes(&args.dir);
    // Redraw so the page and its figures agree with the points on disk.
    let figures = draw_figures(&points, &args.dir.join("figures"), &sizes)?;
    let blocks = blocks(&args.dir, &points, &figures);
    let mut written = Vec::new();
    if matches!(args.format, ReportFormat::Markdown | ReportFormat::Both) {
        let path = args.dir.join("report.md");
        std::fs::write(&path, markdown(&args.dir, &blocks))?;
        written.push(path);
    }
    if matches!(args.format, ReportFormat::Html | ReportFormat::Both) {
        let path = args.dir.join("report.html");
        std::fs::write(&path, html(&blocks)?)?;
        written.push(path);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    } else {
        for path in &written {
            println!("{}", path.display());
        }
    }
    Ok(())
}
