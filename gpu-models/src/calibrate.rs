//! Fitting a GPU's efficiency factors to measured prefill and decode times.
//!
//! Input: a splitwise-sim style table (`model,hardware,prompt_size,batch_size,token_size,
//! prompt_time,token_time,tensor_parallel`, times in ms). Each row gives two measurements:
//! the prefill of `batch_size` prompts of `prompt_size` tokens, and the mean decode step of
//! `batch_size` sequences over `token_size` generated tokens (mean context
//! `prompt_size + token_size / 2`).
//!
//! The fit adjusts eight physical quantities per GPU — achieved fractions of peak FLOPS,
//! memory bandwidth and link bandwidth; overheads per iteration, per decoding sequence and
//! per prompt (at most 2 ms); the all-reduce step latency; and how far memory and compute
//! time overlap —
//! shared by every tensor-parallel degree, to minimise the sum of the prefill and decode mean
//! absolute percentage errors (Nelder–Mead on transformed parameters, deterministic start).
//!
//! Rows that no GPU could produce are excluded and reported: a prefill faster than the FLOPs
//! at 100% of peak, or a decode step faster than reading the weights at 100% of peak bandwidth.
//! Such a run did not do the work its row claims (the splitwise table has ten: the batch-64
//! TP2 points on both GPUs, five runs each).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::ModelError;
use crate::gpu::{Efficiency, GpuSpec};
use crate::latency::{BatchSummary, Roofline};
use crate::llm::{ModelSpec, WeightDtype};

/// One measured row, resolved to catalog names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// Line in the file (1-based).
    pub line: usize,
    /// Catalog model name.
    pub model: String,
    /// Catalog GPU name.
    pub gpu: String,
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Tokens per prompt.
    pub prompt_size: u32,
    /// Prompts (and decoding sequences) in the batch.
    pub batch_size: u32,
    /// Tokens generated per sequence.
    pub token_size: u32,
    /// Measured prefill time of the whole batch, seconds.
    pub prefill_s: f64,
    /// Measured mean decode step, seconds.
    pub decode_s: f64,
}

impl Measurement {
    fn prefill_batch(&self) -> BatchSummary {
        let mut batch = BatchSummary::default();
        for _ in 0..self.batch_size {
            batch.add_prefill(self.prompt_size, 0, true);
        }
        batch
    }

    fn decode_batch(&self) -> BatchSummary {
        let mut batch = BatchSummary::default();
        let context = self.prompt_size + self.token_size / 2;
        for _ in 0..self.batch_size {
            batch.add_decode(context);
        }
        batch
    }
}

/// A row left out of the fit, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Excluded {
    /// Line in the file.
    pub line: usize,
    /// GPU and TP of the row.
    pub what: String,
    /// Why it cannot be a real measurement.
    pub reason: String,
}

/// Errors of one (GPU, TP) group before and after the fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupError {
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Rows used.
    pub rows: usize,
    /// Prefill MAPE with the catalog's factors, percent.
    pub prefill_mape_before: f64,
    /// Decode MAPE with the catalog's factors, percent.
    pub decode_mape_before: f64,
    /// Prefill MAPE with the fitted factors, percent.
    pub prefill_mape_after: f64,
    /// Decode MAPE with the fitted factors, percent.
    pub decode_mape_after: f64,
}

/// The fit of one GPU type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuFit {
    /// Catalog GPU name.
    pub gpu: String,
    /// Catalog model the measurements are of.
    pub model: String,
    /// The catalog's factors before fitting.
    pub before: Efficiency,
    /// The fitted factors.
    pub after: Efficiency,
    /// Errors per tensor-parallel degree.
    pub groups: Vec<GroupError>,
    /// Prefill MAPE over all rows with the catalog's factors, percent.
    pub prefill_mape_before: f64,
    /// Decode MAPE over all rows with the catalog's factors, percent.
    pub decode_mape_before: f64,
    /// Prefill MAPE over all rows after fitting, percent.
    pub prefill_mape_after: f64,
    /// Decode MAPE over all rows after fitting, percent.
    pub decode_mape_after: f64,
}

/// Everything `medley calibrate` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationReport {
    /// The table fitted.
    pub table: PathBuf,
    /// Rows read.
    pub rows_read: usize,
    /// Rows left out, with reasons.
    pub excluded: Vec<Excluded>,
    /// One fit per GPU type.
    pub fits: Vec<GpuFit>,
}

/// Maps a table's hardware or model label to a catalog name.
fn resolve_label<'a>(label: &str, names: impl Iterator<Item = &'a String>) -> Option<String> {
    // splitwise-sim calls the SXM H100 `h100-80gb`; its README says so.
    let label = match label.to_ascii_lowercase().as_str() {
        "h100-80gb" | "h100" => "h100-sxm".to_string(),
        "a100" => "a100-80gb".to_string(),
        other => other.to_string(),
    };
    let normalize = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let wanted = normalize(&label);
    names.into_iter().find(|n| normalize(n) == wanted).cloned()
}

/// Reads a splitwise-sim style measurement table.
pub fn read_measurements(path: &Path, catalog: &Catalog) -> Result<Vec<Measurement>, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::Table {
        path: path.to_path_buf(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse_measurements(&text, path, catalog)
}

/// Parses measurement CSV text; `path` is used in messages only.
pub fn parse_measurements(
    text: &str,
    path: &Path,
    catalog: &Catalog,
) -> Result<Vec<Measurement>, ModelError> {
    let err = |line: usize, message: String| ModelError::Table {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate();
    let (_, header) = lines
        .next()
        .ok_or_else(|| err(1, "empty file: expected a header row".into()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| err(1, format!("missing column '{name}'")))
    };
    let model_c = col("model")?;
    let hw_c = col("hardware")?;
    let prompt_c = col("prompt_size")?;
    let batch_c = col("batch_size")?;
    let token_c = col("token_size")?;
    let prompt_t = col("prompt_time")?;
    let token_t = col("token_time")?;
    let tp_c = col("tensor_parallel")?;
    let model_names: Vec<String> = catalog.models().iter().map(|m| m.name.clone()).collect();
    let gpu_names: Vec<String> = catalog.gpus().iter().map(|g| g.name.clone()).collect();
    let mut out = Vec::new();
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
        let model = resolve_label(fields[model_c], model_names.iter()).ok_or_else(|| {
            err(
                line_no,
                format!("model '{}' is not in the catalog", fields[model_c]),
            )
        })?;
        let gpu = resolve_label(fields[hw_c], gpu_names.iter()).ok_or_else(|| {
            err(
                line_no,
                format!("hardware '{}' is not in the catalog", fields[hw_c]),
            )
        })?;
        let integer = |c: usize| -> Result<u32, ModelError> {
            fields[c]
                .parse::<u32>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    err(
                        line_no,
                        format!(
                            "column '{}': expected a positive integer, found '{}'",
                            columns[c], fields[c]
                        ),
                    )
                })
        };
        let millis = |c: usize| -> Result<f64, ModelError> {
            fields[c]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(|v| v / 1e3)
                .ok_or_else(|| {
                    err(
                        line_no,
                        format!(
                            "column '{}': expected a positive time in ms, found '{}'",
                            columns[c], fields[c]
                        ),
                    )
                })
        };
        out.push(Measurement {
            line: line_no,
            model,
            gpu,
            tp: integer(tp_c)?,
            prompt_size: integer(prompt_c)?,
            batch_size: integer(batch_c)?,
            token_size: integer(token_c)?,
            prefill_s: millis(prompt_t)?,
            decode_s: millis(token_t)?,
        });
    }
    Ok(out)
}

/// Why a row cannot be a real measurement, if it cannot.
fn impossibility(m: &Measurement, model: &ModelSpec, gpu: &GpuSpec) -> Option<String> {
    let ideal = Efficiency {
        flops_fraction: 1.0,
        bandwidth_fraction: 1.0,
        iteration_overhead_us: 0.0,
        per_sequence_overhead_us: 0.0,
        per_prefill_overhead_us: 0.0,
        allreduce_step_us: 0.0,
        link_fraction: 1.0,
        overlap_exponent: 1.0,
        provenance: String::new(),
    };
    let peak_gpu = GpuSpec {
        efficiency: ideal,
        ..gpu.clone()
    };
    let roofline = Roofline::new(model, &peak_gpu, m.tp, WeightDtype::Bf16);
    let prefill = roofline.breakdown(&m.prefill_batch());
    if m.prefill_s < prefill.compute_s {
        return Some(format!(
            "prefill of {} x {} tokens measured {:.0} ms, below the {:.0} ms its FLOPs take at \
             100% of peak on {} GPUs",
            m.batch_size,
            m.prompt_size,
            m.prefill_s * 1e3,
            prefill.compute_s * 1e3,
            m.tp
        ));
    }
    if m.decode_s < roofline.weights_read_s() {
        return Some(format!(
            "decode step measured {:.1} ms, below the {:.1} ms to read the weights at 100% of \
             peak bandwidth",
            m.decode_s * 1e3,
            roofline.weights_read_s() * 1e3
        ));
    }
    None
}

/// Mean absolute percentage errors (prefill, decode) of `rows` under `efficiency`, percent.
pub fn mape(
    rows: &[&Measurement],
    model: &ModelSpec,
    gpu: &GpuSpec,
    efficiency: &Efficiency,
) -> (f64, f64) {
    if rows.is_empty() {
        return (0.0, 0.0);
    }
    let spec = GpuSpec {
        efficiency: efficiency.clone(),
        ..gpu.clone()
    };
    let mut rooflines: BTreeMap<u32, Roofline> = BTreeMap::new();
    let (mut prefill_err, mut decode_err) = (0.0, 0.0);
    for m in rows {
        let roofline = rooflines
            .entry(m.tp)
            .or_insert_with(|| Roofline::new(model, &spec, m.tp, WeightDtype::Bf16));
        prefill_err +=
            (roofline.iteration_s_exact(&m.prefill_batch()) - m.prefill_s).abs() / m.prefill_s;
        decode_err +=
            (roofline.iteration_s_exact(&m.decode_batch()) - m.decode_s).abs() / m.decode_s;
    }
    let n = rows.len() as f64;
    (100.0 * prefill_err / n, 100.0 * decode_err / n)
}

/// The logistic function, kept strictly inside (0, 1) for any input.
fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x.clamp(-20.0, 20.0)).exp())
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// Parameters the fit searches: the seven factors and the overlap exponent.
const PARAMS: usize = 8;

/// Most per-prompt cost the fit may use, microseconds: preparing a prompt's block table and
/// inputs takes well under this. Left free, the fit absorbs the table's batch effects into it
/// instead (A100's batches of 512-token prompts run slower than one prompt of the same tokens,
/// H100's faster), about 14 ms per prompt on A100, which would then charge every prefill chunk
/// the simulator runs.
const MAX_PER_PREFILL_US: f64 = 2000.0;

/// Efficiency factors from the unconstrained search vector. A parameter the table cannot pin
/// down (the all-reduce step without tensor parallelism, say) may drift far; the bounds keep
/// it finite: overheads under about a second, the overlap exponent under 1 + e^6.
fn decode_params(theta: &[f64; PARAMS], provenance: &str) -> Efficiency {
    let us = |x: f64| x.clamp(-20.0, 14.0).exp();
    Efficiency {
        flops_fraction: logistic(theta[0]),
        bandwidth_fraction: logistic(theta[1]),
        iteration_overhead_us: us(theta[2]),
        per_sequence_overhead_us: us(theta[3]),
        allreduce_step_us: us(theta[4]),
        link_fraction: logistic(theta[5]),
        per_prefill_overhead_us: MAX_PER_PREFILL_US * logistic(theta[6]),
        overlap_exponent: 1.0 + theta[7].clamp(-20.0, 6.0).exp(),
        provenance: provenance.to_string(),
    }
}

fn encode_params(e: &Efficiency) -> [f64; PARAMS] {
    [
        logit(e.flops_fraction.clamp(0.01, 0.99)),
        logit(e.bandwidth_fraction.clamp(0.01, 0.99)),
        e.iteration_overhead_us.max(1.0).ln(),
        e.per_sequence_overhead_us.max(1.0).ln(),
        e.allreduce_step_us.max(0.1).ln(),
        logit(e.link_fraction.clamp(0.01, 0.99)),
        logit((e.per_prefill_overhead_us / MAX_PER_PREFILL_US).clamp(0.001, 0.999)),
        (e.overlap_exponent - 1.0).max(0.01).ln(),
    ]
}

/// Nelder–Mead minimisation from `start` with a fixed initial step; deterministic.
fn nelder_mead(
    objective: impl Fn(&[f64; PARAMS]) -> f64,
    start: [f64; PARAMS],
    step: f64,
) -> [f64; PARAMS] {
    const N: usize = PARAMS;
    let mut simplex: Vec<([f64; N], f64)> = Vec::with_capacity(N + 1);
    simplex.push((start, objective(&start)));
    for i in 0..N {
        let mut point = start;
        point[i] += step;
        simplex.push((point, objective(&point)));
    }
    for _ in 0..4000 {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        if (simplex[N].1 - simplex[0].1).abs() < 1e-10 {
            break;
        }
        let mut centroid = [0.0; N];
        for (point, _) in &simplex[..N] {
            for (c, p) in centroid.iter_mut().zip(point) {
                *c += p / N as f64;
            }
        }
        let worst = simplex[N].0;
        let along = |t: f64| {
            let mut p = [0.0; N];
            for ((value, c), w) in p.iter_mut().zip(&centroid).zip(&worst) {
                *value = c + t * (w - c);
            }
            p
        };
        let reflected = along(-1.0);
        let reflected_value = objective(&reflected);
        if reflected_value < simplex[0].1 {
            let expanded = along(-2.0);
            let expanded_value = objective(&expanded);
            simplex[N] = if expanded_value < reflected_value {
                (expanded, expanded_value)
            } else {
                (reflected, reflected_value)
            };
        } else if reflected_value < simplex[N - 1].1 {
            simplex[N] = (reflected, reflected_value);
        } else {
            let contracted = if reflected_value < simplex[N].1 {
                along(-0.5)
            } else {
                along(0.5)
            };
            let contracted_value = objective(&contracted);
            if contracted_value < simplex[N].1.min(reflected_value) {
                simplex[N] = (contracted, contracted_value);
            } else {
                let best = simplex[0].0;
                for entry in simplex.iter_mut().skip(1) {
                    for (value, b) in entry.0.iter_mut().zip(&best) {
                        *value = b + 0.5 * (*value - b);
                    }
                    entry.1 = objective(&entry.0);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex[0].0
}

/// Time components of a batch with every efficiency at 1 and every overhead at 0, in the
/// order of the linear parameters: memory, compute, link transfer, all-reduce steps (per µs of
/// step latency), iteration (per µs), decoding sequences (per µs), prompt chunks (per µs).
fn features(model: &ModelSpec, gpu: &GpuSpec, tp: u32, batch: &BatchSummary) -> [f64; 7] {
    let unit = |allreduce_step_us: f64| GpuSpec {
        efficiency: Efficiency {
            flops_fraction: 1.0,
            bandwidth_fraction: 1.0,
            link_fraction: 1.0,
            iteration_overhead_us: 0.0,
            per_sequence_overhead_us: 0.0,
            per_prefill_overhead_us: 0.0,
            allreduce_step_us,
            overlap_exponent: 1.0,
            provenance: String::new(),
        },
        ..gpu.clone()
    };
    let plain = Roofline::new(model, &unit(0.0), tp, WeightDtype::Bf16).breakdown(batch);
    let stepped = Roofline::new(model, &unit(1.0), tp, WeightDtype::Bf16).breakdown(batch);
    [
        plain.memory_s,
        plain.compute_s,
        plain.communication_s,
        stepped.communication_s - plain.communication_s,
        1e-6,
        1e-6 * f64::from(batch.decode_seqs),
        1e-6 * f64::from(batch.prefill_seqs),
    ]
}

/// The global minimum of the relative squared error of the additive model (overlap exponent
/// 1), which is convex because that model is linear in (1/flops fraction, 1/bandwidth
/// fraction, 1/link fraction, step latency and the three overheads); solved by exact
/// coordinate descent within physical bounds. A start for the full fit.
fn least_squares_start(rows: &[&Measurement], model: &ModelSpec, gpu: &GpuSpec) -> Efficiency {
    let mut samples: Vec<([f64; 7], f64, f64)> = Vec::new();
    let prefill_weight = 1.0 / rows.len().max(1) as f64;
    for m in rows {
        for (batch, measured) in [
            (m.prefill_batch(), m.prefill_s),
            (m.decode_batch(), m.decode_s),
        ] {
            let weight = prefill_weight / (measured * measured);
            samples.push((features(model, gpu, m.tp, &batch), measured, weight));
        }
    }
    let lower = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    let upper = [100.0, 100.0, 1000.0, 1e4, 1e6, 1e5, 1e6];
    let mut u = [
        1.0 / 0.75,
        1.0 / 0.6,
        1.0 / 0.7,
        10.0,
        3000.0,
        150.0,
        1000.0,
    ];
    let mut residual: Vec<f64> = samples
        .iter()
        .map(|(f, y, _)| y - f.iter().zip(&u).map(|(a, b)| a * b).sum::<f64>())
        .collect();
    for _ in 0..3000 {
        for k in 0..7 {
            let (mut numerator, mut denominator) = (0.0, 0.0);
            for ((f, _, w), r) in samples.iter().zip(&residual) {
                numerator += w * f[k] * (r + u[k] * f[k]);
                denominator += w * f[k] * f[k];
            }
            if denominator <= 0.0 {
                continue;
            }
            let updated = (numerator / denominator).clamp(lower[k], upper[k]);
            let delta = updated - u[k];
            if delta != 0.0 {
                for ((f, _, _), r) in samples.iter().zip(residual.iter_mut()) {
                    *r -= delta * f[k];
                }
                u[k] = updated;
            }
        }
    }
    Efficiency {
        bandwidth_fraction: 1.0 / u[0],
        flops_fraction: 1.0 / u[1],
        link_fraction: 1.0 / u[2],
        allreduce_step_us: u[3],
        iteration_overhead_us: u[4],
        per_sequence_overhead_us: u[5],
        per_prefill_overhead_us: u[6].min(MAX_PER_PREFILL_US),
        overlap_exponent: 1.0,
        provenance: String::new(),
    }
}

/// Fits every GPU in the table (or only `only_gpu`) and reports errors before and after.
pub fn calibrate(
    table: &Path,
    catalog: &Catalog,
    only_gpu: Option<&str>,
) -> Result<CalibrationReport, ModelError> {
    let rows = read_measurements(table, catalog)?;
    let only = match only_gpu {
        Some(name) => Some(catalog.gpu(name)?.name.clone()),
        None => None,
    };
    let mut excluded = Vec::new();
    let mut by_gpu: BTreeMap<(String, String), Vec<&Measurement>> = BTreeMap::new();
    for m in &rows {
        if only.as_ref().is_some_and(|g| *g != m.gpu) {
            continue;
        }
        let model = catalog.model(&m.model)?;
        let gpu = catalog.gpu(&m.gpu)?;
        if let Some(reason) = impossibility(m, model, gpu) {
            excluded.push(Excluded {
                line: m.line,
                what: format!("{} TP{}", m.gpu, m.tp),
                reason,
            });
            continue;
        }
        by_gpu
            .entry((m.gpu.clone(), m.model.clone()))
            .or_default()
            .push(m);
    }
    if by_gpu.is_empty() {
        return Err(ModelError::Table {
            path: table.to_path_buf(),
            line: 0,
            message: "no usable rows (check --gpu and the table's hardware column)".into(),
        });
    }
    let file_name = table
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut fits = Vec::new();
    for ((gpu_name, model_name), group) in &by_gpu {
        let model = catalog.model(model_name)?;
        let gpu = catalog.gpu(gpu_name)?;
        let before = gpu.efficiency.clone();
        let objective = |theta: &[f64; PARAMS]| {
            let (p, d) = mape(group, model, gpu, &decode_params(theta, ""));
            p + d
        };
        // Nelder-Mead finds local minima: start from the current factors, the datasheet
        // defaults, and a grid over the FLOPS and link fractions (the two that trade off
        // against each other in large prefills); polish the best.
        let mut starts = vec![
            encode_params(&before),
            encode_params(&Efficiency::datasheet_default()),
        ];
        for flops_fraction in [0.4, 0.6, 0.8] {
            for link_fraction in [0.05, 0.15, 0.4, 0.8] {
                for overlap_exponent in [1.2, 2.0, 4.0] {
                    starts.push(encode_params(&Efficiency {
                        flops_fraction,
                        link_fraction,
                        overlap_exponent,
                        ..Efficiency::datasheet_default()
                    }));
                }
            }
        }
        starts.push(encode_params(&least_squares_start(group, model, gpu)));
        let mut best = encode_params(&before);
        for start in starts {
            let mut candidate = nelder_mead(objective, start, 0.5);
            candidate = nelder_mead(objective, candidate, 0.1);
            if objective(&candidate) < objective(&best) {
                best = candidate;
            }
        }
        let mut tps: Vec<u32> = group.iter().map(|m| m.tp).collect();
        tps.sort_unstable();
        tps.dedup();
        let fitted = decode_params(&best, "");
        let (prefill_all, decode_all) = mape(group, model, gpu, &fitted);
        let provenance = format!(
            "fitted by medley calibrate to {file_name} ({model_name}, TP {}; {} rows): prefill \
             MAPE {prefill_all:.1}%, decode MAPE {decode_all:.1}%",
            tps.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" and "),
            group.len()
        );
        let after = Efficiency {
            provenance,
            ..fitted
        };
        let groups = tps
            .iter()
            .map(|&tp| {
                let rows: Vec<&Measurement> =
                    group.iter().copied().filter(|m| m.tp == tp).collect();
                let (pb, db) = mape(&rows, model, gpu, &before);
                let (pa, da) = mape(&rows, model, gpu, &after);
                GroupError {
                    tp,
                    rows: rows.len(),
                    prefill_mape_before: pb,
                    decode_mape_before: db,
                    prefill_mape_after: pa,
                    decode_mape_after: da,
                }
            })
            .collect();
        let (prefill_before, decode_before) = mape(group, model, gpu, &before);
        fits.push(GpuFit {
            gpu: gpu_name.clone(),
            model: model_name.clone(),
            before,
            after,
            groups,
            prefill_mape_before: prefill_before,
            decode_mape_before: decode_before,
            prefill_mape_after: prefill_all,
            decode_mape_after: decode_all,
        });
    }
    Ok(CalibrationReport {
        table: table.to_path_buf(),
        rows_read: rows.len(),
        excluded,
        fits,
    })
}

/// Rust source for `gpu-models/src/fitted.rs` holding the fitted factors of A100-80GB and
/// H100-SXM (GPUs missing from the report keep their current factors).
pub fn fitted_rust(report: &CalibrationReport, catalog: &Catalog) -> String {
    let mut out = String::from(
        "// Efficiency factors fitted by `medley calibrate` (see crate::calibrate). Regenerate with\n\
         // `medley calibrate --table ../shared/gpus/splitwise_sim_perf_model.csv --emit-rust`.\n",
    );
    for (gpu, constant) in [("A100-80GB", "FITTED_A100"), ("H100-SXM", "FITTED_H100")] {
        let efficiency = report
            .fits
            .iter()
            .find(|f| f.gpu == gpu)
            .map(|f| f.after.clone())
            .or_else(|| catalog.gpu(gpu).ok().map(|g| g.efficiency.clone()))
            .unwrap_or_else(Efficiency::datasheet_default);
        out.push_str(&format!(
            "\nstatic {constant}: std::sync::LazyLock<Efficiency> = std::sync::LazyLock::new(|| Efficiency {{\n    \
             flops_fraction: {:.4},\n    bandwidth_fraction: {:.4},\n    iteration_overhead_us: {:.1},\n    \
             per_sequence_overhead_us: {:.1},\n    per_prefill_overhead_us: {:.1},\n    allreduce_step_us: {:.2},\n    link_fraction: {:.4},\n    overlap_exponent: {:.3},\n    provenance: {:?}.to_string(),\n}});\n",
            efficiency.flops_fraction,
            efficiency.bandwidth_fraction,
            efficiency.iteration_overhead_us,
            efficiency.per_sequence_overhead_us,
            efficiency.per_prefill_overhead_us,
            efficiency.allreduce_step_us,
            efficiency.link_fraction,
            efficiency.overlap_exponent,
            efficiency.provenance,
        ));
    }
    out
}
