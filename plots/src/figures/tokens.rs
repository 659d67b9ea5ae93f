//! Figure: tokens per dollar each GPU type achieves as the TPOT (time per output token) SLO
//! target is relaxed; one line per GPU type.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::EmptyElement;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::palette::colours_for;
use crate::render::{
    Check, DrawFailure, Figure, LINE_WIDTH, LegendEntry, MarkerShape, Swatch, X_LABEL_AREA,
    format_number, frame, house_style, linear_chart, max_or, render,
};
use crate::{PlotError, RenderedFigure};

const FIGURE: &str = "tokens per dollar vs SLO";

/// One named line: a value per x position, `None` where there is no point (the line breaks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedSeries {
    /// Legend name: a GPU type, fleet or policy.
    pub name: String,
    /// One value per x position; `None` where infeasible or not measured.
    pub values: Vec<Option<f64>>,
}

/// Data for [`tokens_per_dollar_vs_slo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokensPerDollarVsSlo {
    /// Figure title; empty for none.
    pub title: String,
    /// TPOT SLO targets in milliseconds, increasing.
    pub tpot_targets_ms: Vec<f64>,
    /// Tokens per dollar at each target, one series per GPU type.
    pub series: Vec<NamedSeries>,
}

/// Draws tokens per dollar against the TPOT target, one line with markers per GPU type.
pub fn tokens_per_dollar_vs_slo(
    data: &TokensPerDollarVsSlo,
    dir: &Path,
    stem: &str,
) -> Result<RenderedFigure, PlotError> {
    let check = Check { figure: FIGURE };
    check.non_empty("tpot_targets_ms", &data.tpot_targets_ms)?;
    check.increasing("tpot_targets_ms", &data.tpot_targets_ms)?;
    check_series(
        &check,
        &data.series,
        data.tpot_targets_ms.len(),
        "tpot_targets_ms",
        |field, value| check.non_negative(field, value),
    )?;
    render(data, dir, stem)
}

/// Checks named series against an x axis of `points` values; `check_value` validates each value.
pub(crate) fn check_series(
    check: &Check,
    series: &[NamedSeries],
    points: usize,
    x_field: &str,
    check_value: impl Fn(String, f64) -> Result<(), PlotError>,
) -> Result<(), PlotError> {
    check.non_empty("series", series)?;
    check.distinct_names(
        "series[].name",
        series.iter().map(|line| line.name.as_str()),
    )?;
    for (index, line) in series.iter().enumerate() {
        check.same_len(
            format!("series[{index}].values (vs {x_field})"),
            points,
            line.values.len(),
        )?;
        for (point, value) in line.values.iter().enumerate() {
            if let Some(value) = value {
                check_value(format!("series[{index}].values[{point}]"), *value)?;
            }
        }
    }
    if series
        .iter()
        .all(|line| line.values.iter().all(Option::is_none))
    {
        return Err(PlotError::EmptyData {
            figure: check.figure,
            field: "series[].values (no series has any value)".to_string(),
        });
    }
    Ok(())
}

/// Legend entries (line with marker) for named series, in the colours `draw_series_lines` uses.
pub(crate) fn series_legend(series: &[NamedSeries]) -> Vec<LegendEntry> {
    let names: Vec<String> = series.iter().map(|line| line.name.clone()).collect();
    colours_for(&names)
        .into_iter()
        .zip(series)
        .enumerate()
        .map(|(index, (colour, line))| LegendEntry {
            label: line.name.clone(),
            colour,
            swatch: Swatch::Line(Some(MarkerShape::for_index(index))),
        })
        .collect()
}

/// Draws each series as lines (broken at missing values) with a marker on every point;
/// values are multiplied by `scale`.
pub(crate) fn draw_series_lines<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    xs: &[f64],
    series: &[NamedSeries],
    scale: f64,
) -> Result<(), DrawFailure> {
    for (index, entry) in series_legend(series).iter().enumerate() {
        let values = &series[index].values;
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
        for (x, value) in xs.iter().zip(values) {
            match value {
                Some(value) => run.push((*x, value * scale)),
                None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                None => {}
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
        let shape = MarkerShape::for_index(index);
        for run in runs {
            chart.draw_series(LineSeries::new(
                run.clone(),
                entry.colour.stroke_width(LINE_WIDTH),
            ))?;
            chart.draw_series(run.into_iter().map(|point| {
                EmptyElement::at(point) + Polygon::new(shape.outline(), entry.colour.filled())
            }))?;
        }
    }
    Ok(())
}

/// An x range covering `xs` with a little padding so end markers are not cut.
pub(crate) fn padded_range(xs: &[f64]) -> std::ops::Range<f64> {
    let low = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let high = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if high > low {
        high - low
    } else {
        low.abs().max(1.0)
    };
    (low - span * 0.04)..(high + span * 0.04)
}

impl Figure for TokensPerDollarVsSlo {
    fn size(&self) -> (u32, u32) {
        (1200, 720)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        let area = frame(root, &self.title, &series_legend(&self.series))?;
        let max_value = max_or(
            self.series
                .iter()
                .flat_map(|line| line.values.iter().flatten().copied()),
            0.0,
        );
        let y_max = if max_value > 0.0 {
            max_value * 1.08
        } else {
            1.0
        };
        let mut chart = linear_chart(
            &area,
            padded_range(&self.tpot_targets_ms),
            0.0..y_max,
            X_LABEL_AREA,
        )?;
        house_style(&mut chart.configure_mesh())
            .x_label_formatter(&|value| format_number(*value))
            .y_label_formatter(&|value| format_number(*value))
            .x_desc("TPOT SLO target (ms)")
            .y_desc("Tokens per dollar (tokens/$)")
            .draw()?;
        draw_series_lines(&mut chart, &self.tpot_targets_ms, &self.series, 1.0)
    }
}
