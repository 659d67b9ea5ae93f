//! `medley profile`: each instance type's max req/s per request-size bucket under an SLO, by
//! simulated load tests; also the profiling half of `medley plan --workload`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use experiments::workload::WorkloadSource;
use gpu_models::Catalog;
use indicatif::{ProgressBar, ProgressStyle};
use solver::{
    BucketLengths, CellStatus, ProfileRequest, ProfileSet, ProfileSettings, ProfileSlo,
    ProfileTarget, SloStat,
};
use workloads::{BucketEdges, Request, SizeHistogram};

use super::CmdResult;
use super::common::EngineArgs;

/// Profiling inputs shared by `medley profile` and `medley plan --workload`.
#[derive(Debug, Clone, Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Instance types: GPU names, `:tpN` for tensor-parallel groups (e.g. `A10G,H100-SXM:tp2`).
    #[arg(long, default_value = "L4,A10G,A100-80GB,H100-SXM")]
    pub gpus: String,
    /// Statistic bounded by --slo-tpot: melange (mean over requests of e2e ÷ output tokens, the
    /// Mélange paper's "TPOT"), or mean, p50, p90, p99 of (e2e − TTFT) ÷ (output − 1).
    #[arg(long, default_value = "melange")]
    pub tpot_stat: SloStat,
    /// Statistic bounded by --slo-ttft: mean, p50, p90 or p99.
    #[arg(long, default_value = "p90")]
    pub ttft_stat: SloStat,
    /// Workload: a preset name (see `medley workload presets`) or a trace file. It fills each
    /// bucket with real lengths and picks the buckets worth profiling.
    #[arg(long)]
    pub workload: Option<String>,
    /// Bucket edges: `melange` (10 input × 6 output buckets) or `IN,IN,...;OUT,OUT,...` (tokens).
    #[arg(long, default_value = "melange")]
    pub buckets: String,
    /// Lengths within a bucket: `workload` (resampled from --workload) or `representative`
    /// (each bucket's midpoint, as Mélange profiled). Default: workload when one is given.
    #[arg(long)]
    pub lengths: Option<String>,
    /// Requests per simulated trial.
    #[arg(long, default_value_t = 600)]
    pub requests_per_trial: usize,
    /// Independent searches per cell (the capacity is their mean; their spread is reported).
    #[arg(long, default_value_t = 3)]
    pub replicates: u32,
    /// Relative width at which the rate search stops.
    #[arg(long, default_value_t = 0.02)]
    pub tolerance: f64,
    /// Price book for $/h.
    #[arg(long)]
    pub prices: Option<String>,
    /// Seed of every draw (workload streams and profiles).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where profiled cells are cached (keyed by everything that affects them).
    #[arg(long, default_value = ".medley-cache/profiles")]
    pub cache_dir: PathBuf,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `medley profile`.
#[derive(Debug, Args)]
pub struct ProfileCmdArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Write the profiles as Mélange `gpu_info` JSON (`cost`, `tputs`) to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the full profiles (every cell, replicate and status) as JSON.
    #[arg(long)]
    pub json: bool,
}

impl ProfileArgs {
    /// The SLO to profile for, from --slo-tpot/--tpot-stat, --slo-norm-latency and --slo-ttft.
    pub fn slo(&self) -> Result<ProfileSlo, String> {
        let targets = self.engine.slo()?;
        let tpot = match (targets.tpot_s, targets.norm_latency_s) {
            (Some(_), Some(_)) => {
                return Err(
                    "give --slo-tpot (with --tpot-stat) or --slo-norm-latency, not both".into(),
                );
            }
            (Some(seconds), None) => Some((self.tpot_stat, seconds)),
            (None, Some(seconds)) => Some((SloStat::Melange, seconds)),
            (None, None) => None,
        };
        let slo = ProfileSlo {
            tpot,
            ttft: targets.ttft_s.map(|seconds| (self.ttft_stat, seconds)),
        };
        slo.validate().map_err(|message| {
            format!("{message} (e.g. --slo-tpot 120ms, or --slo-ttft 2s --ttft-stat p99)")
        })?;
        Ok(slo)
    }

    /// The instance types to profile.
    pub fn targets(&self) -> Result<Vec<ProfileTarget>, String> {
        let mut targets = Vec::new();
        for part in self
            .gpus
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (gpu, tp) = match part.split_once(':') {
                None => (part, 1),
                Some((gpu, tp)) => {
                    let tp = tp
                        .strip_prefix("tp")
                        .and_then(|t| t.parse().ok())
                        .filter(|t: &u32| *t > 0)
                        .ok_or_else(|| {
                            format!(
                                "--gpus entry '{part}': expected GPU or GPU:tpN (e.g. H100-SXM:tp2)"
                            )
                        })?;
                    (gpu, tp)
                }
            };
            targets.push(ProfileTarget {
                gpu: gpu.to_string(),
                tp,
            });
        }
        if targets.is_empty() {
            return Err("--gpus: expected at least one GPU type".into());
        }
        Ok(targets)
    }

    /// The bucket grid.
    pub fn edges(&self) -> Result<BucketEdges, String> {
        if self.buckets == "melange" {
            return Ok(BucketEdges::melange());
        }
        let bad = || {
            format!(
                "--buckets '{}': expected melange or IN,IN,...;OUT,OUT,... in tokens (e.g. 100,1000,4000;100,500)",
                self.buckets
            )
        };
        let (input, output) = self.buckets.split_once(';').ok_or_else(bad)?;
        let parse = |text: &str| -> Result<Vec<u32>, String> {
            text.split(',')
                .map(|t| t.trim().parse::<u32>().map_err(|_| bad()))
                .collect()
        };
        BucketEdges::new(parse(input)?, parse(output)?).map_err(|err| format!("--buckets: {err}"))
    }

    /// Search settings.
    pub fn settings(&self) -> Result<ProfileSettings, String> {
        Ok(ProfileSettings {
            requests_per_trial: self.requests_per_trial,
            replicates: self.replicates,
            tolerance: self.tolerance,
            seed: self.seed,
            queue: self.engine.queue()?,
            ..ProfileSettings::default()
        })
    }

    /// Profiles the instance types; `requests` (a workload) supplies lengths and picks buckets.
    pub fn run(
        &self,
        catalog: &Catalog,
        requests: Option<&[Request]>,
    ) -> Result<ProfileSet, Box<dyn std::error::Error>> {
        let slo = self.slo()?;
        let targets = self.targets()?;
        let edges = self.edges()?;
        let engine = self.engine.engine()?;
        let instance_options = self.engine.instance_options()?;
        let lengths = match (self.lengths.as_deref(), requests) {
            (Some("representative"), _) | (None, None) => BucketLengths::Representative,
            (Some("workload") | None, Some(requests)) => BucketLengths::Sampled(
                requests
                    .iter()
                    .map(|r| (r.input_tokens, r.output_tokens))
                    .collect(),
            ),
            (Some("workload"), None) => {
                return Err("--lengths workload needs --workload".into());
            }
            (Some(other), _) => {
                return Err(format!(
                    "--lengths: expected workload or representative, found '{other}'"
                )
                .into());
            }
        };
        let needed: Option<Vec<Vec<bool>>> = requests.map(|requests| {
            SizeHistogram::from_requests(edges.clone(), requests)
                .counts
                .iter()
                .map(|row| row.iter().map(|count| *count > 0).collect())
                .collect()
        });
        let settings = self.settings()?;
        let request = ProfileRequest {
            catalog,
            model: &self.engine.model,
            instance_options: &instance_options,
            engine: &engine,
            price_book: self.prices.as_deref(),
            targets: &targets,
            edges: &edges,
            lengths: &lengths,
            needed: needed.as_deref(),
            slo,
            settings: &settings,
            cache_dir: (!self.no_cache).then_some(self.cache_dir.as_path()),
        };
        let bar = if self.quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} profiling [{elapsed_precise}] {bar:40} {pos}/{len} cells ({eta} left)",
                )
                .expect("valid template"),
            );
            bar
        };
        let (set, stats) = solver::profile(&request, &|progress| {
            bar.set_length(progress.total as u64);
            bar.set_position(progress.done as u64);
        })?;
        bar.finish_and_clear();
        if !self.quiet {
            eprintln!(
                "profiled {} cells ({} simulated in {} trials, {} from the cache{})",
                stats.cached_cells + stats.simulated_cells,
                stats.simulated_cells,
                stats.trials,
                stats.cached_cells,
                if self.no_cache {
                    String::new()
                } else {
                    format!(" in {}", self.cache_dir.display())
                }
            );
        }
        Ok(set)
    }
}

/// The profiles as text: one grid per instance type (req/s; `-` too long, `x` SLO unattainable,
/// `.` not profiled).
pub fn render_profiles(set: &ProfileSet) -> String {
    let mut out = format!(
        "capacity profiles: {} under {} ({} price book); max req/s of one instance per bucket\n\
         rows: input tokens, columns: output tokens; '-' too long for the instance, 'x' SLO unattainable even unloaded, '.' not profiled (no requests there)\n",
        set.model, set.slo_text, set.price_book
    );
    let ranges = |edges: &[u32]| -> Vec<String> {
        edges
            .iter()
            .enumerate()
            .map(|(k, high)| {
                let low = if k == 0 { 0 } else { edges[k - 1] + 1 };
                format!("{low}-{high}")
            })
            .collect()
    };
    let inputs = ranges(&set.input_edges);
    let outputs = ranges(&set.output_edges);
    for table in &set.types {
        out.push_str(&format!(
            "\n{} (${:.2}/h per instance)",
            table.instance, table.usd_per_hour
        ));
        if let Some(reason) = &table.unusable {
            out.push_str(&format!(": cannot serve: {reason}\n"));
            continue;
        }
        out.push('\n');
        out.push_str(&format!("{:>12}", "in \\ out"));
        for label in &outputs {
            out.push_str(&format!("  {label:>10}"));
        }
        out.push('\n');
        let mut relative_errors = Vec::new();
        for (row, label) in table.cells.iter().zip(&inputs) {
            out.push_str(&format!("{label:>12}"));
            for cell in row {
                let text = match cell.status {
                    CellStatus::Profiled => {
                        if cell.capacity_rps > 0.0 && cell.replicate_rps.len() > 1 {
                            relative_errors.push(cell.std_error_rps / cell.capacity_rps);
                        }
                        format!("{:.3}", cell.capacity_rps)
                    }
                    CellStatus::TooLong => "-".into(),
                    CellStatus::SloUnattainable => "x".into(),
                    CellStatus::Skipped => ".".into(),
                };
                out.push_str(&format!("  {text:>10}"));
            }
            out.push('\n');
        }
        if !relative_errors.is_empty() {
            relative_errors.sort_by(f64::total_cmp);
            out.push_str(&format!(
                "standard error over {} replicates: median {:.1}%, worst {:.1}% of the capacity\n",
                set.settings.replicates,
                relative_errors[relative_errors.len() / 2] * 100.0,
                relative_errors.last().copied().unwrap_or(0.0) * 100.0
            ));
        }
    }
    out
}

/// Runs `medley profile`.
pub fn run(args: ProfileCmdArgs, catalog: &Catalog) -> CmdResult {
    let requests = match &args.profile.workload {
        Some(text) => {
            let source = WorkloadSource::resolve(text)?;
            // Lengths only: a long preset stream gives every bucket a deep pool.
            let (requests, description, _) = source.requests(None, 3600.0, args.profile.seed)?;
            if !args.profile.quiet {
                eprintln!("lengths from {description}");
            }
            Some(requests)
        }
        None => None,
    };
    let set = args.profile.run(catalog, requests.as_deref())?;
    if let Some(path) = &args.out {
        solver::write_gpu_info(path, &set.gpu_info())?;
        if !args.profile.quiet {
            eprintln!("wrote Mélange gpu_info to {}", path.display());
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&set)?);
    } else {
        print!("{}", render_profiles(&set));
    }
    Ok(())
}
