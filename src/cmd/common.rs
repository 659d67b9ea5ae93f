//! Arguments and helpers shared by the commands that run simulations.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::rc::Rc;

use clap::Args;
use gpu_models::{InstanceOptions, WeightDtype};
use indicatif::{ProgressBar, ProgressStyle};
use sim::{BatchingMode, EngineConfig, PreemptionMode, QueueKind, RouterKind, SloTargets};
use workloads::trace::ReadCounts;
use workloads::{ReadOptions, Request, TraceError, TraceFormat, TraceReader};

/// Where requests come from: a trace file, or a preset at a rate for a duration.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Trace file (normalized CSV/Parquet, Azure, BurstGPT or Mooncake; detected).
    #[arg(long, value_name = "FILE", conflicts_with = "preset")]
    pub trace: Option<PathBuf>,
    /// Force the trace format: normalized, parquet, azure, burstgpt, mooncake.
    // `requires` alone lets these through beside --preset (a present conflicting argument
    // lifts clap's requirement), so they conflict with it too.
    #[arg(long, requires = "trace", conflicts_with = "preset")]
    pub format: Option<TraceFormat>,
    /// Skip malformed trace rows (counted) instead of stopping.
    #[arg(long, requires = "trace", conflicts_with = "preset")]
    pub skip_bad_rows: bool,
    /// Built-in workload preset (see `medley workload presets`).
    #[arg(long)]
    pub preset: Option<String>,
    /// Request rate, requests per second: a preset's (default: its own), or the rate a trace's
    /// arrival times are rescaled to (default: as recorded).
    // Negative numbers reach the rate check (and its clear message) instead of clap's
    // "unexpected argument '-1'".
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Duration of the preset stream, e.g. `10m`, `600s`, `1h` (a trace runs to its end).
    #[arg(long, default_value = "10m", conflicts_with = "trace")]
    pub duration: String,
}

/// A trace reader that leaves its counts (rows read, skipped, excluded) behind when it ends.
struct CountingReader {
    reader: TraceReader,
    counts: Rc<RefCell<Option<ReadCounts>>>,
}

impl Iterator for CountingReader {
    type Item = Result<Request, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.reader.next();
        if !matches!(item, Some(Ok(_))) {
            *self.counts.borrow_mut() = Some(self.reader.counts().clone());
        }
        item
    }
}

/// A request stream that remembers the first read error instead of panicking.
pub struct Stream {
    inner: Box<dyn Iterator<Item = Result<Request, TraceError>>>,
    error: Rc<RefCell<Option<TraceError>>>,
    /// A trace's read counts, once it has been read to its end (or its first error).
    counts: Rc<RefCell<Option<ReadCounts>>>,
    /// What the stream is, for outputs.
    pub description: String,
    /// Expected number of requests, when known (for the progress bar).
    pub expected: Option<u64>,
}

impl Stream {
    /// The requests, stopping at the first read error (kept for [`Stream::error`]).
    pub fn requests(&mut self) -> impl Iterator<Item = Request> + '_ {
        let error = Rc::clone(&self.error);
        self.inner.by_ref().map_while(move |item| match item {
            Ok(request) => Some(request),
            Err(e) => {
                *error.borrow_mut() = Some(e);
                None
            }
        })
    }

    /// The read error that ended the stream early, if any.
    pub fn error(&self) -> Option<TraceError> {
        self.error.borrow_mut().take()
    }

    /// The trace rows left out of the stream, as a sentence (`None` when nothing was): malformed
    /// rows skipped with `--skip-bad-rows`, and failed requests a trace marks (BurstGPT's
    /// zero-token responses), which are not replayed.
    pub fn left_out(&self) -> Option<String> {
        let counts = self.counts.borrow();
        let counts = counts.as_ref()?;
        let mut parts = Vec::new();
        if counts.rows_skipped_bad > 0 {
            parts.push(format!(
                "{} malformed rows skipped (--skip-bad-rows)",
                counts.rows_skipped_bad
            ));
        }
        if counts.failed_excluded > 0 {
            parts.push(format!(
                "{} failed requests (no response tokens), not replayed",
                counts.failed_excluded
            ));
        }
        (!parts.is_empty()).then(|| {
            format!(
                "trace: {} rows read; left out: {}",
                counts.rows_read,
                parts.join(", ")
            )
        })
    }
}

impl SourceArgs {
    /// Opens the stream; `seed` drives synthetic generation.
    pub fn open(&self, seed: u64) -> Result<Stream, Box<dyn std::error::Error>> {
        let error = Rc::new(RefCell::new(None));
        match (&self.trace, &self.preset) {
            (Some(path), None) => {
                let options = ReadOptions {
                    format: self.format,
                    skip_bad_rows: self.skip_bad_rows,
                    ..ReadOptions::default()
                };
                let reader = TraceReader::open(path, &options)?;
                let description = format!("trace {} ({})", path.display(), reader.format());
                let counts = Rc::new(RefCell::new(None));
                let reader = CountingReader {
                    reader,
                    counts: Rc::clone(&counts),
                };
                let Some(rate) = self.rate else {
                    return Ok(Stream {
                        description,
                        inner: Box::new(reader),
                        error,
                        counts,
                        expected: None,
                    });
                };
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(format!("--rate {rate}: expected requests per second > 0").into());
                }
                // The trace's own rate takes a first pass (streamed, nothing kept).
                let (mut count, mut last_s) = (0u64, 0.0f64);
                for request in TraceReader::open(path, &options)? {
                    let request = request?;
                    count += 1;
                    last_s = request.arrival_s;
                }
                if count < 2 || last_s <= 0.0 {
                    return Err(format!(
                        "--rate with {}: {count} requests over {last_s} s; rescaling needs at \
                         least two requests arriving at different times",
                        path.display()
                    )
                    .into());
                }
                // As `medley workload stats` reports it: gaps per second of span.
                let own_rate = (count - 1) as f64 / last_s;
                let factor = rate / own_rate;
                Ok(Stream {
                    description: format!(
                        "{description}, arrivals rescaled from {own_rate:.3} to {rate} req/s"
                    ),
                    inner: Box::new(reader.map(move |item| {
                        item.map(|mut request| {
                            request.arrival_s /= factor;
                            request
                        })
                    })),
                    error,
                    counts,
                    expected: Some(count),
                })
            }
            (None, Some(name)) => {
                let preset = workloads::presets::get(name)?;
                let rate = self.rate.unwrap_or(preset.default_rate_rps);
                let duration = sim::parse_duration_s(&self.duration)
                    .filter(|seconds| *seconds <= workloads::MAX_ARRIVAL_S)
                    .ok_or_else(|| {
                        format!(
                            "--duration: expected a duration like 600s, 10m or 1h, at most 1e9 s \
                             (about 31 years), found '{}'",
                            self.duration
                        )
                    })?;
                let stream = preset.stream(rate, duration, seed)?;
                Ok(Stream {
                    description: format!(
                        "preset {name} at {rate} req/s for {duration} s (seed {seed})"
                    ),
                    inner: Box::new(stream.map(Ok)),
                    error,
                    counts: Rc::new(RefCell::new(None)),
                    expected: Some((rate * duration).round() as u64),
                })
            }
            (None, None) => Err("give a workload: --trace FILE or --preset NAME".into()),
            (Some(_), Some(_)) => Err("give either --trace or --preset, not both".into()),
        }
    }
}

/// Engine, memory and SLO settings shared by simulation commands.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Model served (see `medley models`).
    #[arg(long, default_value = "Llama-2-7B")]
    pub model: String,
    /// Batching: continuous (vLLM v0), chunked (Sarathi / vLLM v1) or static.
    #[arg(long, default_value = "continuous")]
    pub batching: String,
    /// Most sequences running at once per replica.
    #[arg(long, default_value_t = 256)]
    pub max_num_seqs: u32,
    /// Most tokens per iteration (default: 2048 chunked, else max(model length, 2048)).
    #[arg(long)]
    pub max_batched_tokens: Option<u32>,
    /// Preemption when KV runs out: recompute or swap.
    #[arg(long, default_value = "recompute")]
    pub preemption: String,
    /// Waiting-queue order: fcfs, sjf, sjf-total, srpt, edf, least-slack, priority, mlfq,
    /// slo-odbs.
    #[arg(long, default_value = "fcfs")]
    pub queue: String,
    /// Fraction of GPU memory the engine may use.
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub mem_util: f64,
    /// Longest request accepted, tokens (default: the model's context).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_model_len: Option<u32>,
    /// Weight precision: bf16 or fp8.
    #[arg(long, default_value = "bf16")]
    pub dtype: String,
    /// TTFT target, e.g. `2s` or `500ms`.
    #[arg(long)]
    pub slo_ttft: Option<String>,
    /// TPOT target, e.g. `120ms`. For simulate, each request's time per output token after the
    /// first; for profile, plan, validate and whatif, the statistic --tpot-stat names (default
    /// melange: the mean over requests of e2e ÷ output tokens, the Mélange paper's "TPOT").
    #[arg(long)]
    pub slo_tpot: Option<String>,
    /// Mélange's per-request target on e2e latency / output tokens, e.g. `120ms`.
    #[arg(long)]
    pub slo_norm_latency: Option<String>,
}

fn duration_arg(flag: &str, value: &Option<String>) -> Result<Option<f64>, String> {
    value
        .as_deref()
        .map(|text| {
            sim::parse_duration_s(text).ok_or_else(|| {
                format!("{flag}: expected a duration like 120ms or 2s, found '{text}'")
            })
        })
        .transpose()
}

impl EngineArgs {
    /// The engine settings.
    pub fn engine(&self) -> Result<EngineConfig, String> {
        let batching = BatchingMode::parse(&self.batching).ok_or_else(|| {
            format!(
                "--batching: expected continuous, chunked or static, found '{}'",
                self.batching
            )
        })?;
        let preemption = match self.preemption.as_str() {
            "recompute" => PreemptionMode::Recompute,
            "swap" => PreemptionMode::Swap,
            other => {
                return Err(format!(
                    "--preemption: expected recompute or swap, found '{other}'"
                ));
            }
        };
        if self.max_num_seqs == 0 {
            return Err("--max-num-seqs must be positive".into());
        }
        Ok(EngineConfig {
            batching,
            max_num_seqs: self.max_num_seqs,
            max_batched_tokens: self.max_batched_tokens,
            preemption,
            ..EngineConfig::default()
        })
    }

    /// The waiting-queue policy.
    pub fn queue(&self) -> Result<QueueKind, String> {
        QueueKind::parse(&self.queue).ok_or_else(|| {
            format!(
                "--queue: expected one of {}, found '{}'",
                QueueKind::ALL.map(QueueKind::name).join(", "),
                self.queue
            )
        })
    }

    /// The memory settings of every instance.
    pub fn instance_options(&self) -> Result<InstanceOptions, String> {
        if !(self.mem_util > 0.0 && self.mem_util <= 1.0) {
            return Err(format!(
                "--mem-util: expected a fraction in (0, 1], found {}",
                self.mem_util
            ));
        }
        let dtype = WeightDtype::parse(&self.dtype)
            .ok_or_else(|| format!("--dtype: expected bf16 or fp8, found '{}'", self.dtype))?;
        Ok(InstanceOptions {
            mem_utilization: self.mem_util,
            max_model_len: self.max_model_len,
            dtype,
            ..InstanceOptions::default()
        })
    }

    /// The SLO targets given.
    pub fn slo(&self) -> Result<SloTargets, String> {
        Ok(SloTargets {
            ttft_s: duration_arg("--slo-ttft", &self.slo_ttft)?,
            tpot_s: duration_arg("--slo-tpot", &self.slo_tpot)?,
            norm_latency_s: duration_arg("--slo-norm-latency", &self.slo_norm_latency)?,
        })
    }
}

/// Parses a router name with a helpful error.
pub fn router_arg(text: &str) -> Result<RouterKind, String> {
    RouterKind::parse(text).ok_or_else(|| {
        format!(
            "--router: expected one of {}, found '{text}'",
            RouterKind::ALL.map(RouterKind::name).join(", ")
        )
    })
}

/// Refuses a capacity or assignment table the router would not read (it would be ignored).
pub fn check_router_tables(
    router: RouterKind,
    capacity_given: bool,
    assignment_given: bool,
) -> Result<(), String> {
    if capacity_given && router != RouterKind::Melange {
        return Err(format!(
            "--capacity is read by the melange router only, not {router}"
        ));
    }
    if assignment_given
        && !matches!(
            router,
            RouterKind::SizeAware | RouterKind::SolverProportional
        )
    {
        return Err(format!(
            "--assignment is read by the size-aware and solver-proportional routers only, not \
             {router}"
        ));
    }
    Ok(())
}

/// A progress bar on stderr when it is a terminal and not `quiet`; hidden otherwise.
pub fn progress_bar(expected: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match expected {
        Some(total) => {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} requests ({eta} left) {msg}",
                )
                .expect("valid template"),
            );
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} requests {msg}")
                    .expect("valid template"),
            );
            bar
        }
    }
}

/// The requests of a workload named on the command line (a preset or a trace file): a preset
/// at `rate` (default: its own) for `duration` (default 10 minutes), or the whole trace rescaled
/// to `rate`. Returns them, a description and their mean rate; an empty workload, or a duration
/// given with a trace, is an error.
pub fn workload_requests(
    workload: &str,
    rate: Option<f64>,
    duration: Option<&str>,
    seed: u64,
) -> Result<(Vec<Request>, String, f64), Box<dyn std::error::Error>> {
    let source = experiments::workload::WorkloadSource::resolve(workload)?;
    if duration.is_some() && matches!(source, experiments::workload::WorkloadSource::Trace(_)) {
        return Err(format!(
            "--duration applies to presets only; the trace {workload} is replayed to its end"
        )
        .into());
    }
    let duration = duration.unwrap_or("10m");
    let duration_s = sim::parse_duration_s(duration).ok_or_else(|| {
        format!("--duration: expected a duration like 600s, 10m or 1h, found '{duration}'")
    })?;
    let (requests, description, rate_rps) = source.requests(rate, duration_s, seed)?;
    if requests.is_empty() {
        return Err(format!("the workload ({description}) has no requests").into());
    }
    Ok((requests, description, rate_rps))
}
