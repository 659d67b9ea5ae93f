//! A latency predictor from a user's own measurements, interpolated deterministically.
//!
//! Two CSV layouts are read (header names decide which):
//! - medley's: `phase,batch_size,tokens,context,time_ms`, where `phase` is `prefill` (time of
//!   one prefill iteration of `tokens` prompt tokens in total) or `decode` (time of one decode
//!   step of `batch_size` sequences whose mean context is `context` tokens);
//! - splitwise-sim's `perf_model.csv`: `prompt_size,batch_size,token_size,prompt_time,
//!   token_time,...` (prefill of batch_size × prompt_size tokens; mean decode step at mean
//!   context prompt_size + token_size / 2). Rows for other model/hardware/TP can be filtered
//!   with [`TableFilter`].
//!
//! Prefill time is piecewise linear in total prompt tokens. Decode time is piecewise linear in
//! batch size along the context where most batch sizes were measured, shifted by the measured
//! effect of context (at the smallest batch). Outside the measured range the end segments are
//! extended, never below half the nearest measurement. A mixed iteration is charged the sum of
//! its prefill and decode parts, which overstates it by one weight read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::ModelError;
use crate::latency::BatchSummary;

/// Which rows of a splitwise-format table to keep (empty fields keep everything).
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    /// Keep rows whose `model` column equals this (case-insensitive).
    pub model: Option<String>,
    /// Keep rows whose `hardware` column equals this (case-insensitive).
    pub hardware: Option<String>,
    /// Keep rows whose `tensor_parallel` column equals this.
    pub tensor_parallel: Option<u32>,
}

/// Measured prefill and decode times, ready to interpolate.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredTable {
    /// (total prompt tokens, seconds), sorted by tokens.
    prefill: Vec<(f64, f64)>,
    /// (batch size, seconds) at `reference_context`, sorted.
    decode_by_batch: Vec<(f64, f64)>,
    /// The context at which the batch sweep was measured.
    reference_context: f64,
    /// (context, seconds) at the smallest measured batch, sorted.
    decode_by_context: Vec<(f64, f64)>,
    /// Where the table came from.
    pub source: PathBuf,
}

/// One measurement row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Point {
    Prefill {
        tokens: f64,
        seconds: f64,
    },
    Decode {
        batch: f64,
        context: f64,
        seconds: f64,
    },
}

impl MeasuredTable {
    /// Reads a table from a CSV file.
    pub fn from_csv(path: &Path, filter: &TableFilter) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Table {
            path: path.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::from_csv_text(&text, path, filter)
    }

    /// Reads a table from CSV text; `path` is only used in messages.
    pub fn from_csv_text(
        text: &str,
        path: &Path,
        filter: &TableFilter,
    ) -> Result<Self, ModelError> {
        let err = |line: usize, message: String| ModelError::Table {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut lines = text.lines().enumerate();
        let (_, header) = lines
            .next()
            .ok_or_else(|| err(1, "empty file: expected a header row".to_string()))?;
        let columns: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
        let find = |name: &str| columns.iter().position(|c| c == name);
        let splitwise = find("prompt_size").is_some();
        let mut points = Vec::new();
        if splitwise {
            let need = |name: &str| {
                find(name).ok_or_else(|| {
                    err(
                        1,
                        format!("missing column '{name}' (splitwise layout: prompt_size, batch_size, token_size, prompt_time, token_time)"),
                    )
                })
            };
            let (prompt, batch, tokens) = (
                need("prompt_size")?,
                need("batch_size")?,
                need("token_size")?,
            );
            let (prompt_time, token_time) = (need("prompt_time")?, need("token_time")?);
            let (model_col, hw_col, tp_col) =
                (find("model"), find("hardware"), find("tensor_parallel"));
            for (index, line) in lines {
                let line_no = index + 1;
                if line.trim().is_empty() {
                    continue;
                }
                let fields: Vec<&str> = line.split(',').map(str::trim).collect();
                if fields.len() != columns.len() {
                    return Err(err(
                        line_no,
                        format!("expected {} fields, found {}", columns.len(), fields.len()),
                    ));
                }
                let keep = |col: Option<usize>, wanted: &Option<String>| match (col, wanted) {
                    (Some(c), Some(w)) => fields[c].eq_ignore_ascii_case(w),
                    _ => true,
                };
                if !keep(model_col, &filter.model) || !keep(hw_col, &filter.hardware) {
                    continue;
                }
                if let (Some(c), Some(tp)) = (tp_col, filter.tensor_parallel)
                    && fields[c] != tp.to_string()
                {
                    continue;
                }
                let number = |col: usize| -> Result<f64, ModelError> {
                    let value: f64 = fields[col].parse().map_err(|_| {
                        err(
                            line_no,
                            format!(
                                "column '{}': expected a number, found '{}'",
                                columns[col], fields[col]
                            ),
                        )
                    })?;
                    if !(value.is_finite() && value > 0.0) {
                        return Err(err(
                            line_no,
                            format!(
                                "column '{}': expected a positive number, found '{}'",
                                columns[col], fields[col]
                            ),
                        ));
                    }
                    Ok(value)
                };
                let (p, b, t) = (number(prompt)?, number(batch)?, number(tokens)?);
                points.push(Point::Prefill {
                    tokens: p * b,
                    seconds: number(prompt_time)? / 1e3,
                });
                points.push(Point::Decode {
                    batch: b,
                    context: p + t / 2.0,
                    seconds: number(token_time)? / 1e3,
                });
            }
        } else {
            let need = |name: &str| {
                find(name).ok_or_else(|| {
                    err(
                        1,
                        format!("missing column '{name}' (expected phase,batch_size,tokens,context,time_ms or splitwise's prompt_size,batch_size,token_size,prompt_time,token_time)"),
                    )
                })
            };
            let (phase, batch, tokens, context, time) = (
                need("phase")?,
                need("batch_size")?,
                need("tokens")?,
                need("context")?,
                need("time_ms")?,
            );
            for (index, line) in lines {
                let line_no = index + 1;
                if line.trim().is_empty() {
                    continue;
                }
                let fields: Vec<&str> = line.split(',').map(str::trim).collect();
                if fields.len() != columns.len() {
                    return Err(err(
                        line_no,
                        format!("expected {} fields, found {}", columns.len(), fields.len()),
                    ));
                }
                let number = |col: usize| -> Result<f64, ModelError> {
                    let value: f64 = fields[col].parse().map_err(|_| {
                        err(
                            line_no,
                            format!(
                                "column '{}': expected a number, found '{}'",
                                columns[col], fields[col]
                            ),
                        )
                    })?;
                    if !(value.is_finite() && value >= 0.0) {
                        return Err(err(
                            line_no,
                            format!(
                                "column '{}': expected a non-negative number, found '{}'",
                                columns[col], fields[col]
                            ),
                        ));
                    }
                    Ok(value)
                };
                let seconds = number(time)? / 1e3;
                if seconds <= 0.0 {
                    return Err(err(line_no, "time_ms must be positive".to_string()));
                }
                match fields[phase] {
                    "prefill" => points.push(Point::Prefill {
                        tokens: number(tokens)?,
                        seconds,
                    }),
                    "decode" => points.push(Point::Decode {
                        batch: number(batch)?,
                        context: number(context)?,
                        seconds,
                    }),
                    other => {
                        return Err(err(
                            line_no,
                            format!(
                                "column 'phase': expected 'prefill' or 'decode', found '{other}'"
                            ),
                        ));
                    }
                }
            }
        }
        Self::from_points(&points, path)
    }

    fn from_points(points: &[Point], path: &Path) -> Result<Self, ModelError> {
        let key = |x: f64| (x * 1000.0).round() as i64;
        let mut prefill: BTreeMap<i64, (f64, f64, usize)> = BTreeMap::new();
        let mut decode: BTreeMap<(i64, i64), (f64, f64, f64, usize)> = BTreeMap::new();
        for point in points {
            match *point {
                Point::Prefill { tokens, seconds } => {
                    let entry = prefill.entry(key(tokens)).or_insert((tokens, 0.0, 0));
                    entry.1 += seconds;
                    entry.2 += 1;
                }
                Point::Decode {
                    batch,
                    context,
                    seconds,
                } => {
                    let entry = decode
                        .entry((key(context), key(batch)))
                        .or_insert((batch, context, 0.0, 0));
                    entry.2 += seconds;
                    entry.3 += 1;
                }
            }
        }
        let table_error = |message: &str| ModelError::Table {
            path: path.to_path_buf(),
            line: 0,
            message: message.to_string(),
        };
        if prefill.is_empty() || decode.is_empty() {
            return Err(table_error(
                "the table needs at least one prefill and one decode measurement (after filtering)",
            ));
        }
        let prefill: Vec<(f64, f64)> = prefill
            .values()
            .map(|(tokens, sum, n)| (*tokens, sum / *n as f64))
            .collect();
        // The reference context is the one with the most batch sizes measured (ties: smallest).
        let mut batches_per_context: BTreeMap<i64, usize> = BTreeMap::new();
        for (context_key, _) in decode.keys() {
            *batches_per_context.entry(*context_key).or_default() += 1;
        }
        let reference_key = batches_per_context
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| *k)
            .unwrap_or_default();
        let mut decode_by_batch: Vec<(f64, f64)> = decode
            .iter()
            .filter(|((c, _), _)| *c == reference_key)
            .map(|(_, (batch, _, sum, n))| (*batch, sum / *n as f64))
            .collect();
        decode_by_batch.sort_by(|a, b| a.0.total_cmp(&b.0));
        let reference_context = decode
            .iter()
            .find(|((c, _), _)| *c == reference_key)
            .map(|(_, v)| v.1)
            .unwrap_or_default();
        let smallest_batch = decode.keys().map(|(_, b)| *b).min().unwrap_or_default();
        let mut decode_by_context: Vec<(f64, f64)> = decode
            .iter()
            .filter(|((_, b), _)| *b == smallest_batch)
            .map(|(_, (_, context, sum, n))| (*context, sum / *n as f64))
            .collect();
        decode_by_context.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Self {
            prefill,
            decode_by_batch,
            reference_context,
            decode_by_context,
            source: path.to_path_buf(),
        })
    }

    /// Interpolated prefill time of `tokens` prompt tokens, seconds.
    pub fn prefill_s(&self, tokens: f64) -> f64 {
        interpolate(&self.prefill, tokens)
    }

    /// Interpolated decode-step time of `batch` sequences at mean context `context`, seconds.
    pub fn decode_s(&self, batch: f64, context: f64) -> f64 {
        let at_reference = interpolate(&self.decode_by_batch, batch);
        let shift = if self.decode_by_context.len() >= 2 {
            interpolate(&self.decode_by_context, context)
                - interpolate(&self.decode_by_context, self.reference_context)
        } else {
            0.0
        };
        (at_reference + shift).max(at_reference * 0.5)
    }

    /// Predicted iteration time, seconds.
    pub fn iteration_s(&self, batch: &BatchSummary) -> f64 {
        let mut seconds = 0.0;
        if batch.prefill_tokens > 0 {
            seconds += self.prefill_s(batch.prefill_tokens as f64);
        }
        if batch.decode_seqs > 0 {
            let seqs = f64::from(batch.decode_seqs);
            seconds += self.decode_s(seqs, batch.decode_context as f64 / seqs);
        }
        seconds
    }
}

/// Piecewise-linear interpolation over sorted points, extending the end segments, floored at
/// half the nearest measurement.
fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    match points {
        [] => 0.0,
        [(_, y)] => *y,
        _ => {
            let segment = points
                .windows(2)
                .position(|w| x <= w[1].0)
                .unwrap_or(points.len() - 2);
            let (x0, y0) = points[segment];
            let (x1, y1) = points[segment + 1];
            let y = y0 + (y1 - y0) * (x - x0) / (x1 - x0);
            let nearest = if x < x0 {
                y0
            } else if x > x1 {
                y1
            } else {
                y0.min(y1)
            };
            y.max(0.5 * nearest)
        }
    }
}
