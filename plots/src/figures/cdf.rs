//! Figure: empirical CDFs of request latency, one line per series (policy or fleet), with an
//! optional SLO line.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::palette::colours_for;
use crate::render::{
    CHART_MARGIN, Check, DrawFailure, Figure, LINE_WIDTH, LegendEntry, REFERENCE_COLOUR, Swatch,
    X_LABEL_AREA, Y_LABEL_AREA, format_number, frame, house_style, render,
};
use crate::{PlotError, RenderedFigure};

const FIGURE: &str = "latency CDF";
/// Above this many samples a CDF is drawn through this many quantiles instead of every step;
/// the difference is below a pixel.
const MAX_CDF_POINTS: usize = 2000;

/// Latency samples of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySamples {
    /// Legend name (policy or fleet).
    pub name: String,
    /// One latency per request, in the unit named by the x label.
    pub latencies: Vec<f64>,
    /// Fraction of the series' requests these latencies stand for (the completed ones; the
    /// rest were rejected): the curve rises to it, not to 1, so a series that turned requests
    /// away does not look as if it served them all.
    #[serde(default = "all_served")]
    pub served_fraction: f64,
}

fn all_served() -> f64 {
    1.0
}

/// A vertical reference line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloLine {
    /// Position on the x axis, in the x axis unit.
    pub value: f64,
    /// Legend text, e.g. "TTFT SLO (0.5 s)".
    pub label: String,
}

/// Data for [`latency_cdf`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyCdf {
    /// Figure title; empty for none.
    pub title: String,
    /// X axis description with unit, e.g. "TTFT (s)".
    pub x_label: String,
    /// One CDF per series.
    pub series: Vec<LatencySamples>,
    /// Logarithmic x axis (all latencies must then be positive).
    pub log_x: bool,
    /// Optional SLO drawn as a dashed vertical line.
    pub slo: Option<SloLine>,
}

/// Draws the empirical CDF of each series' latencies.
pub fn latency_cdf(data: &LatencyCdf, dir: &Path, stem: &str) -> Result<RenderedFigure, PlotError> {
    validate(data)?;
    render(data, dir, stem)
}

fn validate(data: &LatencyCdf) -> Result<(), PlotError> {
    let check = Check { figure: FIGURE };
    if data.x_label.trim().is_empty() {
        return Err(check.invalid(
            "x_label".to_string(),
            "\"\"".to_string(),
            "an axis label with its unit, e.g. \"TTFT (s)\"",
        ));
    }
    check.non_empty("series", &data.series)?;
    check.distinct_names("series[].name", data.series.iter().map(|s| s.name.as_str()))?;
    let positive = |field: String, value: f64| {
        if data.log_x && value <= 0.0 {
            Err(check.invalid(
                field,
                value.to_string(),
                "a value > 0 on a log-scale x axis",
            ))
        } else {
            Ok(())
        }
    };
    for (index, series) in data.series.iter().enumerate() {
        check.non_empty(&format!("series[{index}].latencies"), &series.latencies)?;
        if !(series.served_fraction > 0.0 && series.served_fraction <= 1.0) {
            return Err(check.invalid(
                format!("series[{index}].served_fraction"),
                series.served_fraction.to_string(),
                "a fraction in (0, 1]",
            ));
        }
        for (sample, latency) in series.latencies.iter().enumerate() {
            let field = format!("series[{index}].latencies[{sample}]");
            check.non_negative(field.clone(), *latency)?;
            positive(field, *latency)?;
        }
    }
    if let Some(slo) = &data.slo {
        check.non_negative("slo.value".to_string(), slo.value)?;
        positive("slo.value".to_string(), slo.value)?;
    }
    Ok(())
}

/// The empirical CDF of `latencies` as a polyline: exact steps for small samples, quantiles
/// otherwise.
pub(crate) fn cdf_points(latencies: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted = latencies.to_vec();
    sorted.sort_by(f64::total_cmp);
    let count = sorted.len();
    let total = count as f64;
    if count <= MAX_CDF_POINTS {
        let mut points = Vec::with_capacity(2 * count);
        for (index, latency) in sorted.iter().enumerate() {
            points.push((*latency, index as f64 / total));
            points.push((*latency, (index + 1) as f64 / total));
        }
        points
    } else {
        let mut points = vec![(sorted[0], 0.0)];
        for step in 0..=MAX_CDF_POINTS {
            let index = (step * (count - 1)) / MAX_CDF_POINTS;
            points.push((sorted[index], (index + 1) as f64 / total));
        }
        points
    }
}

/// Log-axis tick label: only 1, 2 and 5 times a power of ten are labelled, so labels near the
/// top of each decade do not run together.
pub(crate) fn log_tick_label(value: f64) -> String {
    if value <= 0.0 {
        return String::new();
    }
    let mantissa = value / 10f64.powf(value.log10().floor());
    let nearest = mantissa.round();
    if (mantissa - nearest).abs() < 1e-6 && [1.0, 2.0, 5.0, 10.0].contains(&nearest) {
        format_number(value)
    } else {
        String::new()
    }
}

impl LatencyCdf {
    fn legend(&self) -> Vec<LegendEntry> {
        let names: Vec<String> = self.series.iter().map(|s| s.name.clone()).collect();
        let mut legend: Vec<LegendEntry> = colours_for(&names)
            .into_iter()
            .zip(names)
            .map(|(colour, label)| LegendEntry {
                label,
                colour,
                swatch: Swatch::Line(None),
            })
            .collect();
        if let Some(slo) = &self.slo {
            legend.push(LegendEntry {
                label: slo.label.clone(),
                colour: REFERENCE_COLOUR,
                swatch: Swatch::Dashed,
            });
        }
        legend
    }

    fn draw_chart<DB: DrawingBackend, X>(
        &self,
        area: &DrawingArea<DB, Shift>,
        x_range: X,
        curves: &[(Vec<(f64, f64)>, RGBColor)],
    ) -> Result<(), DrawFailure>
    where
        X: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .margin(CHART_MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x_range, 0.0..1.02)?;
        let log_x = self.log_x;
        house_style(&mut chart.configure_mesh())
            .x_label_formatter(&|value| {
                if log_x {
                    log_tick_label(*value)
                } else {
                    format_number(*value)
                }
            })
            .y_label_formatter(&|value| format_number(*value))
            .x_desc(self.x_label.as_str())
            .y_desc("Fraction of requests")
            .draw()?;
        if let Some(slo) = &self.slo {
            chart.draw_series(std::iter::once(DashedPathElement::new(
                vec![(slo.value, 0.0), (slo.value, 1.02)],
                10,
                6,
                REFERENCE_COLOUR.stroke_width(2),
            )))?;
        }
        for (points, colour) in curves {
            chart.draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(LINE_WIDTH),
            ))?;
        }
        Ok(())
    }
}

impl Figure for LatencyCdf {
    fn size(&self) -> (u32, u32) {
        (1200, 720)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        let legend = self.legend();
        let area = frame(root, &self.title, &legend)?;
        let curves: Vec<(Vec<(f64, f64)>, RGBColor)> = self
            .series
            .iter()
            .zip(&legend)
            .map(|(series, entry)| {
                let points = cdf_points(&series.latencies)
                    .into_iter()
                    .map(|(x, y)| (x, y * series.served_fraction))
                    .collect();
                (points, entry.colour)
            })
            .collect();
        let xs = curves
            .iter()
            .flat_map(|(points, _)| points.iter().map(|(x, _)| *x))
            .chain(self.slo.iter().map(|slo| slo.value));
        let (low, high) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), x| {
            (low.min(x), high.max(x))
        });
        if self.log_x {
            // Half a step beyond the data on each side, in log space.
            let (low, high) = if high > low {
                (low / 1.25, high * 1.25)
            } else {
                (low / 2.0, high * 2.0)
            };
            self.draw_chart(&area, (low..high).log_scale(), &curves)
        } else {
            let high = if high > 0.0 { high * 1.04 } else { 1.0 };
            self.draw_chart(&area, 0.0..high, &curves)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cdf_points, log_tick_label};

    #[test]
    fn log_ticks_label_one_two_five() {
        assert_eq!(log_tick_label(0.2), "0.2");
        assert_eq!(log_tick_label(0.5), "0.5");
        assert_eq!(log_tick_label(10.0), "10");
        assert_eq!(log_tick_label(0.7), "");
        assert_eq!(log_tick_label(3.0), "");
    }

    #[test]
    fn small_samples_give_exact_steps() {
        let points = cdf_points(&[3.0, 1.0, 2.0, 4.0]);
        assert_eq!(points.first(), Some(&(1.0, 0.0)));
        assert_eq!(points[1], (1.0, 0.25));
        assert_eq!(points.last(), Some(&(4.0, 1.0)));
    }

    #[test]
    fn large_samples_are_thinned_but_reach_one() {
        let latencies: Vec<f64> = (0..10_000).map(f64::from).collect();
        let points = cdf_points(&latencies);
        assert!(points.len() <= 2002);
        assert_eq!(points.last(), Some(&(9999.0, 1.0)));
        assert!(points.windows(2).all(|pair| pair[0].1 <= pair[1].1));
    }
}
