//! `medley workload`: trace statistics, synthetic generation and presets.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use workloads::histogram::BucketEdges;
use workloads::presets;
use workloads::source::{self, Transforms};
use workloads::trace::{ReadOptions, Spread, TraceFormat};
use workloads::transform::OverLimit;

use super::CmdResult;

/// Workload subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkloadCmd {
    /// Statistics of a trace file or a preset: count, span, rate, inter-arrival CV, length
    /// quantiles and the size histogram (Mélange buckets).
    Stats(StatsArgs),
    /// Write a preset's stream as a normalized trace (CSV, or Parquet by `.parquet` extension).
    Gen(GenArgs),
    /// List the built-in presets with their sources.
    Presets(PresetsArgs),
}

/// Trace formats accepted by `--format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// `arrival_s,input_tokens,output_tokens` CSV.
    Normalized,
    /// Normalized Parquet.
    Parquet,
    /// Azure LLM inference trace 2023/2024.
    Azure,
    /// BurstGPT CSV.
    Burstgpt,
    /// Mooncake JSONL.
    Mooncake,
}

impl From<FormatArg> for TraceFormat {
    fn from(arg: FormatArg) -> Self {
        match arg {
            FormatArg::Normalized => TraceFormat::Normalized,
            FormatArg::Parquet => TraceFormat::Parquet,
            FormatArg::Azure => TraceFormat::Azure,
            FormatArg::Burstgpt => TraceFormat::BurstGpt,
            FormatArg::Mooncake => TraceFormat::Mooncake,
        }
    }
}

/// A duration flag: `90s`, `10m`, `1h`, `500ms`, or a bare number of seconds, as elsewhere.
fn duration_arg(text: &str) -> Result<f64, String> {
    sim::parse_duration_s(text).ok_or_else(|| {
        format!("expected a duration like 90s, 10m or 1h (or seconds), found '{text}'")
    })
}

/// What to do with requests over `--max-context`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OverLimitArg {
    /// Shorten the prompt (counted as clipped).
    Clip,
    /// Remove the request (counted as dropped).
    Drop,
}

/// Arguments of `medley workload stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// A trace file (format detected from extension and header) or a preset name.
    pub source: String,
    /// Force the trace format.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Skip malformed rows (counted) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Sort arrivals (the trace is loaded into memory); otherwise decreasing arrivals are an error.
    #[arg(long)]
    pub sort: bool,
    /// Keep failed requests (BurstGPT rows with zero response tokens) instead of excluding them.
    #[arg(long)]
    pub include_failed: bool,
    /// Spread requests sharing a timestamp across this many seconds (Mooncake: 3).
    #[arg(long, value_name = "SECONDS")]
    pub spread_window: Option<f64>,
    /// Preset only: requests per second (default: the preset's own rate; for a trace,
    /// `--scale-rate`).
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Preset only: length of the stream, e.g. `30m` or `3600` seconds (default 1h; for a
    /// trace, `--window`).
    #[arg(long, allow_negative_numbers = true, value_parser = duration_arg)]
    pub duration: Option<f64>,
    /// Seed for presets and for --spread-window (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep arrivals in [START, END) seconds, rebased to 0.
    #[arg(long, num_args = 2, value_names = ["START", "END"])]
    pub window: Option<Vec<f64>>,
    /// Multiply the rate by this factor (arrival times divided by it).
    #[arg(long, allow_negative_numbers = true)]
    pub scale_rate: Option<f64>,
    /// Keep only the first N requests.
    #[arg(long)]
    pub first: Option<u64>,
    /// Context limit in tokens (input + output, at least 2); see --over-limit.
    #[arg(long)]
    pub max_context: Option<u32>,
    /// What to do with requests over --max-context.
    #[arg(long, value_enum, default_value = "drop", requires = "max_context")]
    pub over_limit: OverLimitArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `medley workload gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Preset name (see `medley workload presets`).
    pub preset: String,
    /// Requests per second.
    #[arg(long, allow_negative_numbers = true)]
    pub rate: f64,
    /// Length of the stream, e.g. `10m` or `600` seconds.
    #[arg(long, allow_negative_numbers = true, value_parser = duration_arg)]
    pub duration: f64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file: `.parquet` for Parquet, anything else for CSV.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `medley workload presets`.
#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a workload subcommand.
pub fn run(cmd: WorkloadCmd) -> CmdResult {
    match cmd {
        WorkloadCmd::Stats(args) => stats(args),
        WorkloadCmd::Gen(args) => gen_trace(args),
        WorkloadCmd::Presets(args) => list_presets(args),
    }
}

fn stats(args: StatsArgs) -> CmdResult {
    let mut out = String::new();
    let transforms = Transforms {
        window_s: args.window.as_ref().map(|w| (w[0], w[1])),
        rate_factor: args.scale_rate,
        first: args.first,
        context_limit: args.max_context.map(|limit| {
            (
                limit,
                match args.over_limit {
                    OverLimitArg::Clip => OverLimit::Clip,
                    OverLimitArg::Drop => OverLimit::Drop,
                },
            )
        }),
    };
    let path = PathBuf::from(&args.source);
    let summary = match presets::get(&args.source) {
        Ok(preset) if !path.exists() => {
            // Reading options have nothing to read in a generated stream.
            for (flag, given) in [
                ("--format", args.format.is_some()),
                ("--skip-bad-rows", args.skip_bad_rows),
                ("--sort", args.sort),
                ("--include-failed", args.include_failed),
                ("--spread-window", args.spread_window.is_some()),
            ] {
                if given {
                    return Err(format!(
                        "{flag} applies to trace files only, and {} is a preset",
                        args.source
                    )
                    .into());
                }
            }
            let rate = args.rate.unwrap_or(preset.default_rate_rps);
            source::preset_stats(
                &preset,
                rate,
                args.duration.unwrap_or(3600.0),
                args.seed.unwrap_or(0),
                &transforms,
                BucketEdges::melange(),
            )?
        }
        _ if path.exists() => {
            for (flag, given, instead) in [
                ("--rate", args.rate.is_some(), "--scale-rate"),
                ("--duration", args.duration.is_some(), "--window"),
            ] {
                if given {
                    return Err(format!(
                        "{flag} applies to presets only; for the trace {} use {instead}",
                        args.source
                    )
                    .into());
                }
            }
            if args.seed.is_some() && args.spread_window.is_none() {
                return Err(format!(
                    "--seed draws a preset's stream or --spread-window's offsets, and the trace \
                     {} has neither",
                    args.source
                )
                .into());
            }
            let options = ReadOptions {
                format: args.format.map(TraceFormat::from),
                skip_bad_rows: args.skip_bad_rows,
                allow_unsorted: args.sort,
                include_failed: args.include_failed,
                spread: args.spread_window.map(|window_s| Spread {
                    window_s,
                    seed: args.seed.unwrap_or(0),
                }),
            };
            source::trace_stats(&path, &options, &transforms, BucketEdges::melange())?
        }
        _ => {
            return Err(format!(
                "`{}` is neither a file nor a preset; presets: {}",
                args.source,
                presets::NAMES.join(", ")
            )
            .into());
        }
    };
    if args.json {
        let distribution = summary.stats.histogram.melange_json();
        let output = serde_json::json!({ "summary": summary, "melange": distribution });
        writeln!(out, "{}", serde_json::to_string_pretty(&output)?)?;
        return emit(&out);
    }
    writeln!(out, "source: {}", summary.source)?;
    writeln!(out, "units: {}", summary.units)?;
    if let Some(generated) = &summary.generated {
        writeln!(
            out,
            "generated: preset {} at {} req/s for {} s, seed {}",
            generated.preset, generated.rate_rps, generated.duration_s, generated.seed
        )?;
    }
    if let Some(load) = &summary.load {
        writeln!(out, "{load}")?;
    } else if let Some(read) = &summary.read {
        writeln!(
            out,
            "rows read: {}; bad rows skipped: {}; failed requests excluded: {}; failed kept: {}; first row's timestamp \
             (now 0 s): {}",
            read.rows_read,
            read.rows_skipped_bad,
            read.failed_excluded,
            read.failed_included,
            read.origin.as_deref().unwrap_or("none")
        )?;
    }
    if summary.transforms.context_limit.is_some() {
        writeln!(
            out,
            "context limit: {} clipped, {} dropped",
            summary.clipped, summary.dropped
        )?;
    }
    writeln!(out, "{}", summary.stats)?;
    emit(&out)
}

fn gen_trace(args: GenArgs) -> CmdResult {
    let mut out = String::new();
    let report = source::generate(
        &args.preset,
        args.rate,
        args.duration,
        args.seed,
        &args.output,
    )?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(
            out,
            "wrote {} requests to {} ({}; {}) from preset {} at {} req/s for {} s, seed {}",
            report.requests,
            report.path,
            report.format,
            report.columns,
            report.generated.preset,
            report.generated.rate_rps,
            report.generated.duration_s,
            report.generated.seed
        )?;
    }
    emit(&out)
}

fn list_presets(args: PresetsArgs) -> CmdResult {
    let mut out = String::new();
    let all = presets::all();
    if args.json {
        let listing: Vec<_> = all
            .iter()
            .map(|p| {
                let (mean_input, mean_output) = p.mean_lengths();
                serde_json::json!({
                    "name": p.name,
                    "description": p.description,
                    "source": p.source,
                    "burstiness": p.burstiness,
                    "default_rate_rps": p.default_rate_rps,
                    "mean_input_tokens": mean_input,
                    "mean_output_tokens": mean_output,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&listing)?)?;
        return emit(&out);
    }
    for preset in all {
        let (mean_input, mean_output) = preset.mean_lengths();
        writeln!(out, "{}", preset.name)?;
        writeln!(out, "  {}", preset.description)?;
        writeln!(
            out,
            "  mean input {mean_input:.0} tokens, mean output {mean_output:.0} tokens; default rate {} req/s; arrivals {:?}",
            preset.default_rate_rps, preset.burstiness
        )?;
        writeln!(out, "  source: {}", preset.source)?;
    }
    emit(&out)
}

/// Writes a command's output; a closed pipe (`| head`) ends quietly instead of panicking.
fn emit(text: &str) -> CmdResult {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
