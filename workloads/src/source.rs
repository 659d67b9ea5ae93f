//! One entry point for "a trace path or a preset name": statistics and generation, with the
//! transformations applied in a fixed order (window, rate scaling, first N, context limit).

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, WorkloadError};
use crate::histogram::BucketEdges;
use crate::presets::{self, Preset};
use crate::request::Request;
use crate::stats::{StatsBuilder, TraceStats};
use crate::trace::{self, LoadReport, ReadCounts, ReadOptions, TraceReader};
use crate::transform::{self, ContextLimit, OverLimit};

/// Optional transformations of a stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Transforms {
    /// Keep arrivals in `[start, end)` seconds, rebased to start at 0.
    pub window_s: Option<(f64, f64)>,
    /// Multiply the rate (divide arrival times) by this factor.
    pub rate_factor: Option<f64>,
    /// Keep only the first N requests.
    pub first: Option<u64>,
    /// Clip or drop requests whose input + output exceeds this many tokens.
    pub context_limit: Option<(u32, OverLimit)>,
}

impl Transforms {
    fn validate(&self) -> Result<(), WorkloadError> {
        if let Some(factor) = self.rate_factor
            && !(factor > 0.0 && factor.is_finite())
        {
            return Err(WorkloadError::bad(
                "rate factor",
                factor,
                "a positive finite number",
            ));
        }
        // A request holds at least one prompt and one output token.
        if let Some((limit, _)) = self.context_limit
            && limit < 2
        {
            return Err(WorkloadError::bad(
                "context limit",
                limit,
                "at least 2 tokens (one prompt and one output token)",
            ));
        }
        if let Some((start, end)) = self.window_s
            && !(start >= 0.0 && end > start)
        {
            return Err(WorkloadError::bad(
                "window",
                format!("[{start}, {end})"),
                "0 <= start < end seconds",
            ));
        }
        Ok(())
    }
}

/// How a synthetic stream was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generated {
    /// Preset name.
    pub preset: String,
    /// Requests per second asked for.
    pub rate_rps: f64,
    /// Seconds of arrivals.
    pub duration_s: f64,
    /// Seed of the Pcg64 streams.
    pub seed: u64,
}

/// Statistics of a source plus everything done to it on the way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStats {
    /// The trace path or preset name.
    pub source: String,
    /// Trace reading tallies (for traces).
    pub read: Option<ReadCounts>,
    /// What loading did (only when the trace had to be materialized to sort it).
    pub load: Option<LoadReport>,
    /// Generation parameters (for presets).
    pub generated: Option<Generated>,
    /// Transformations applied.
    pub transforms: Transforms,
    /// Requests clipped to the context limit.
    pub clipped: u64,
    /// Requests dropped for exceeding the context limit.
    pub dropped: u64,
    /// Units of every number.
    pub units: &'static str,
    /// The statistics.
    pub stats: TraceStats,
}

const UNITS: &str = "times in seconds (arrivals rebased so the first is 0 s), rates in requests/second, lengths in tokens";

fn apply<'a, I: Iterator<Item = Request> + 'a>(
    requests: I,
    transforms: &Transforms,
    edges: BucketEdges,
) -> Result<(TraceStats, u64, u64), WorkloadError> {
    let windowed: Box<dyn Iterator<Item = Request> + 'a> = match transforms.window_s {
        Some((start, end)) => Box::new(transform::window(requests, start, end)),
        None => Box::new(requests),
    };
    let scaled: Box<dyn Iterator<Item = Request> + 'a> = match transforms.rate_factor {
        Some(factor) => Box::new(transform::scale_rate(windowed, factor)),
        None => windowed,
    };
    let first: Box<dyn Iterator<Item = Request> + 'a> = match transforms.first {
        Some(n) => Box::new(scaled.take(usize::try_from(n).unwrap_or(usize::MAX))),
        None => scaled,
    };
    let mut builder = StatsBuilder::new(edges);
    let (clipped, dropped) = match transforms.context_limit {
        Some((limit, policy)) => {
            let mut limited = ContextLimit::new(first, limit, policy);
            for request in limited.by_ref() {
                builder.push(&request);
            }
            (limited.clipped(), limited.dropped())
        }
        None => {
            for request in first {
                builder.push(&request);
            }
            (0, 0)
        }
    };
    let stats = builder.finish();
    // A small rate factor stretches time past the simulator's range (to infinity, at worst):
    // refuse it rather than report such a span. Streams start near 0 s, so the span is about
    // the last arrival.
    if let Some(factor) = transforms.rate_factor
        && !(0.0..=crate::request::MAX_ARRIVAL_S).contains(&stats.span_s)
    {
        return Err(WorkloadError::bad(
            "rate factor",
            format!("{factor:e}"),
            &format!(
                "a factor that keeps arrivals within {:e} s (they would span {:e} s)",
                crate::request::MAX_ARRIVAL_S,
                stats.span_s
            ),
        ));
    }
    Ok((stats, clipped, dropped))
}

/// Statistics of a trace file, streamed (or loaded and sorted when `options.allow_unsorted`).
pub fn trace_stats(
    path: &Path,
    options: &ReadOptions,
    transforms: &Transforms,
    edges: BucketEdges,
) -> Result<SourceStats, Error> {
    transforms.validate()?;
    let source = path.display().to_string();
    if options.allow_unsorted {
        let loaded = trace::load(path, options)?;
        let (stats, clipped, dropped) = apply(loaded.requests.into_iter(), transforms, edges)?;
        return Ok(SourceStats {
            source,
            read: Some(loaded.report.counts.clone()),
            load: Some(loaded.report),
            generated: None,
            transforms: transforms.clone(),
            clipped,
            dropped,
            units: UNITS,
            stats,
        });
    }
    let mut reader = TraceReader::open(path, options)?;
    // Stop at the first error, keeping it, while the transforms consume a plain Request stream.
    let mut failure = None;
    let requests = reader
        .by_ref()
        .map_while(|item| item.map_err(|err| failure = Some(err)).ok());
    let applied = apply(requests, transforms, edges);
    if let Some(err) = failure {
        return Err(err.into());
    }
    let (stats, clipped, dropped) = applied?;
    Ok(SourceStats {
        source,
        read: Some(reader.counts().clone()),
        load: None,
        generated: None,
        transforms: transforms.clone(),
        clipped,
        dropped,
        units: UNITS,
        stats,
    })
}

/// Statistics of a preset's stream at this rate, duration and seed.
pub fn preset_stats(
    preset: &Preset,
    rate_rps: f64,
    duration_s: f64,
    seed: u64,
    transforms: &Transforms,
    edges: BucketEdges,
) -> Result<SourceStats, Error> {
    transforms.validate()?;
    let stream = preset.stream(rate_rps, duration_s, seed)?;
    let (stats, clipped, dropped) = apply(stream, transforms, edges)?;
    Ok(SourceStats {
        source: preset.name.to_string(),
        read: None,
        load: None,
        generated: Some(Generated {
            preset: preset.name.to_string(),
            rate_rps,
            duration_s,
            seed,
        }),
        transforms: transforms.clone(),
        clipped,
        dropped,
        units: UNITS,
        stats,
    })
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerateReport {
    /// The file written.
    pub path: String,
    /// `csv` or `parquet`.
    pub format: &'static str,
    /// Rows written.
    pub requests: u64,
    /// Generation parameters.
    pub generated: Generated,
    /// Columns and units.
    pub columns: &'static str,
}

/// Writes a preset's stream as a normalized trace (CSV, or Parquet by `.parquet` extension).
pub fn generate(
    preset_name: &str,
    rate_rps: f64,
    duration_s: f64,
    seed: u64,
    path: &Path,
) -> Result<GenerateReport, Error> {
    let preset = presets::get(preset_name)?;
    let stream = preset.stream(rate_rps, duration_s, seed)?;
    let requests = trace::write_normalized(path, stream)?;
    let is_parquet = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    Ok(GenerateReport {
        path: path.display().to_string(),
        format: if is_parquet { "parquet" } else { "csv" },
        requests,
        generated: Generated {
            preset: preset.name.to_string(),
            rate_rps,
            duration_s,
            seed,
        },
        columns: "arrival_s (seconds from 0), input_tokens (tokens), output_tokens (tokens)",
    })
}
