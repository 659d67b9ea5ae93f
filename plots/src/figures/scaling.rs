//! Figure: an autoscaled run over time: the arrival rate on top and, below, the replicas of
//! each type billed (solid steps) and serving (dashed steps), so one sees the fleet follow
//! the load, the cold starts (billed above serving while models load) and the drains.

use std::path::Path;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::palette::{gpu_colour, shade};
use crate::render::{
    Check, DrawFailure, Figure, LINE_WIDTH, LegendEntry, Swatch, X_LABEL_AREA, format_number,
    frame, house_style, linear_chart, max_or, render,
};
use crate::{PlotError, RenderedFigure};

const FIGURE: &str = "replicas over time";
/// Label area under the upper panel: just enough to separate the panels.
const INNER_X_LABEL_AREA: u32 = 6;

/// Replica counts of one type after each change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeReplicaCounts {
    /// Type name: a GPU instance (`A10G`), or one pool of a disaggregated cluster
    /// (`prefill/H100-SXM`); the GPU picks the colour, the decode pool a darker shade.
    pub name: String,
    /// Replicas billed (starting, serving or draining) from each change time on.
    pub billed: Vec<f64>,
    /// Replicas serving from each change time on.
    pub ready: Vec<f64>,
}

/// Data for [`replicas_over_time`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicasOverTime {
    /// Figure title; empty for none.
    pub title: String,
    /// Times (simulated seconds) at which the counts changed, increasing; the first is the
    /// start of the run.
    pub time_s: Vec<f64>,
    /// End of the run, seconds: the last counts hold until then.
    pub end_s: f64,
    /// One entry per type.
    pub types: Vec<TypeReplicaCounts>,
    /// Arrival rate per window: window start times (seconds, increasing), the window length
    /// and the requests per second in each. Empty for no rate panel.
    pub rate_time_s: Vec<f64>,
    /// Requests per second arriving in each window of `rate_time_s`.
    pub rate_rps: Vec<f64>,
}

/// Draws the arrival rate and the replicas billed and serving per type over time.
pub fn replicas_over_time(
    data: &ReplicasOverTime,
    dir: &Path,
    stem: &str,
) -> Result<RenderedFigure, PlotError> {
    validate(data)?;
    render(data, dir, stem)
}

fn validate(data: &ReplicasOverTime) -> Result<(), PlotError> {
    let check = Check { figure: FIGURE };
    check.non_empty("time_s", &data.time_s)?;
    check.increasing("time_s", &data.time_s)?;
    check.non_negative("end_s".into(), data.end_s)?;
    if let Some(last) = data.time_s.last()
        && data.end_s < *last
    {
        return Err(check.invalid(
            "end_s".into(),
            data.end_s.to_string(),
            &format!("a time at or after the last change ({last})"),
        ));
    }
    check.non_empty("types", &data.types)?;
    check.distinct_names("types[].name", data.types.iter().map(|t| t.name.as_str()))?;
    for (index, counts) in data.types.iter().enumerate() {
        for (name, values) in [("billed", &counts.billed), ("ready", &counts.ready)] {
            let field = format!("types[{index}].{name}");
            check.same_len(
                format!("{field} (vs time_s)"),
                data.time_s.len(),
                values.len(),
            )?;
            for (k, value) in values.iter().enumerate() {
                check.non_negative(format!("{field}[{k}]"), *value)?;
            }
        }
        for (k, (ready, billed)) in counts.ready.iter().zip(&counts.billed).enumerate() {
            if ready > billed {
                return Err(check.invalid(
                    format!("types[{index}].ready[{k}]"),
                    ready.to_string(),
                    &format!("at most the replicas billed then ({billed})"),
                ));
            }
        }
    }
    check.increasing("rate_time_s", &data.rate_time_s)?;
    check.same_len(
        "rate_rps (vs rate_time_s)".into(),
        data.rate_time_s.len(),
        data.rate_rps.len(),
    )?;
    for (k, value) in data.rate_rps.iter().enumerate() {
        check.non_negative(format!("rate_rps[{k}]"), *value)?;
    }
    Ok(())
}

/// The colour of a type: its GPU's, darker for a decode pool.
fn type_colour(name: &str) -> RGBColor {
    match name.split_once('/') {
        Some(("decode", gpu)) => shade(gpu_colour(gpu), -0.45),
        Some((_, gpu)) => gpu_colour(gpu),
        None => gpu_colour(name),
    }
}

/// The corners of a step line holding each value until the next time (the last until `end`).
fn steps(times: &[f64], values: &[f64], end: f64) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(2 * times.len());
    for (k, (&at, &value)) in times.iter().zip(values).enumerate() {
        let until = times.get(k + 1).copied().unwrap_or(end);
        points.push((at, value));
        points.push((until, value));
    }
    points
}

impl ReplicasOverTime {
    fn x_range(&self) -> std::ops::Range<f64> {
        let start = self.time_s[0].min(self.rate_time_s.first().copied().unwrap_or(f64::MAX));
        let end = self.end_s.max(self.time_s[self.time_s.len() - 1]);
        if end > start {
            start..end
        } else {
            start..start + 1.0
        }
    }
}

impl Figure for ReplicasOverTime {
    fn size(&self) -> (u32, u32) {
        if self.rate_time_s.is_empty() {
            (1200, 720)
        } else {
            (1200, 960)
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        let mut legend: Vec<LegendEntry> = self
            .types
            .iter()
            .map(|t| LegendEntry {
                label: format!("{} billed", t.name),
                colour: type_colour(&t.name),
                swatch: Swatch::Line(None),
            })
            .collect();
        legend.extend(self.types.iter().map(|t| LegendEntry {
            label: format!("{} serving", t.name),
            colour: type_colour(&t.name),
            swatch: Swatch::Dashed,
        }));
        let area = frame(root, &self.title, &legend)?;
        let x_range = self.x_range();
        let counts_area = if self.rate_time_s.is_empty() {
            area
        } else {
            let (_, height) = area.dim_in_pixel();
            let plot_height = (height - X_LABEL_AREA - INNER_X_LABEL_AREA) / 2;
            let (top, bottom) = area.split_vertically(plot_height + INNER_X_LABEL_AREA);
            let window =
                self.rate_time_s.get(1).map_or(self.end_s, |next| *next) - self.rate_time_s[0];
            let rate_end = (self.rate_time_s[self.rate_time_s.len() - 1] + window).max(self.end_s);
            let top_y = max_or(self.rate_rps.iter().copied(), 0.0);
            let top_y = if top_y > 0.0 { top_y * 1.08 } else { 1.0 };
            let mut chart = linear_chart(&top, x_range.clone(), 0.0..top_y, INNER_X_LABEL_AREA)?;
            house_style(&mut chart.configure_mesh())
                .y_labels(5)
                .y_label_formatter(&|value| format_number(*value))
                .x_label_formatter(&|_| String::new())
                .y_desc("Arrivals (req/s)")
                .draw()?;
            chart.draw_series(std::iter::once(PathElement::new(
                steps(&self.rate_time_s, &self.rate_rps, rate_end),
                BLACK.stroke_width(LINE_WIDTH - 1),
            )))?;
            bottom
        };
        let top_count = max_or(
            self.types.iter().flat_map(|t| t.billed.iter().copied()),
            0.0,
        );
        let mut chart = linear_chart(
            &counts_area,
            x_range,
            0.0..(top_count + 1.0).max(2.0),
            X_LABEL_AREA,
        )?;
        house_style(&mut chart.configure_mesh())
            .y_labels(6)
            .y_label_formatter(&|value| format_number(*value))
            .x_label_formatter(&|value| format_number(*value))
            .x_desc("Simulated time (s)")
            .y_desc("Replicas")
            .draw()?;
        for counts in &self.types {
            let colour = type_colour(&counts.name);
            chart.draw_series(std::iter::once(PathElement::new(
                steps(&self.time_s, &counts.billed, self.end_s),
                colour.stroke_width(LINE_WIDTH),
            )))?;
            chart.draw_series(std::iter::once(DashedPathElement::new(
                steps(&self.time_s, &counts.ready, self.end_s),
                8,
                5,
                colour.stroke_width(LINE_WIDTH - 1),
            )))?;
        }
        Ok(())
    }
}

const COST_FIGURE: &str = "cost per policy vs rate";

/// Data for [`cost_per_policy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostPerPolicy {
    /// Figure title; empty for none.
    pub title: String,
    /// Request rates (req/s), increasing.
    pub rates: Vec<f64>,
    /// Cost in $/hour per rate, one series per policy (`None`: not run).
    pub series: Vec<crate::NamedSeries>,
}

/// Draws each policy's hourly cost (what its fleet was billed, per hour) against the rate.
pub fn cost_per_policy(
    data: &CostPerPolicy,
    dir: &Path,
    stem: &str,
) -> Result<RenderedFigure, PlotError> {
    let check = Check {
        figure: COST_FIGURE,
    };
    check.non_empty("rates", &data.rates)?;
    check.increasing("rates", &data.rates)?;
    crate::figures::tokens::check_series(
        &check,
        &data.series,
        data.rates.len(),
        "rates",
        |field, value| check.non_negative(field, value),
    )?;
    render(data, dir, stem)
}

impl Figure for CostPerPolicy {
    fn size(&self) -> (u32, u32) {
        (1200, 720)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        use crate::figures::tokens::{draw_series_lines, padded_range, series_legend};
        let area = frame(root, &self.title, &series_legend(&self.series))?;
        let top = max_or(
            self.series
                .iter()
                .flat_map(|line| line.values.iter().flatten().copied()),
            0.0,
        );
        let mut chart = linear_chart(
            &area,
            padded_range(&self.rates),
            0.0..if top > 0.0 { top * 1.1 } else { 1.0 },
            X_LABEL_AREA,
        )?;
        house_style(&mut chart.configure_mesh())
            .x_label_formatter(&|value| format_number(*value))
            .y_label_formatter(&|value| format_number(*value))
            .x_desc("Mean request rate (req/s)")
            .y_desc("Cost billed ($/hour)")
            .draw()?;
        draw_series_lines(&mut chart, &self.rates, &self.series, 1.0)
    }
}
