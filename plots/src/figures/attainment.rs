//! Figure: fraction of requests meeting their SLO as the request rate grows, one line per
//! series, with the attainment target as a dashed line.

use std::path::Path;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::figures::tokens::{
    NamedSeries, check_series, draw_series_lines, padded_range, series_legend,
};
use crate::render::{
    Check, DrawFailure, Figure, LegendEntry, REFERENCE_COLOUR, Swatch, X_LABEL_AREA, format_number,
    frame, house_style, linear_chart, render,
};
use crate::{PlotError, RenderedFigure};

const FIGURE: &str = "SLO attainment vs rate";

/// Data for [`slo_attainment_vs_rate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloAttainmentVsRate {
    /// Figure title; empty for none.
    pub title: String,
    /// Request rates (req/s), increasing.
    pub rates: Vec<f64>,
    /// Attainment (fraction of requests meeting the SLO, in [0, 1]) per rate, one per series.
    pub series: Vec<NamedSeries>,
    /// Attainment target as a fraction (0.99), drawn as a dashed line; `None` for no line.
    pub target: Option<f64>,
    /// Show the y axis in percent rather than as a fraction.
    pub as_percent: bool,
}

/// Draws SLO attainment against request rate, one line per series, with the target line.
pub fn slo_attainment_vs_rate(
    data: &SloAttainmentVsRate,
    dir: &Path,
    stem: &str,
) -> Result<RenderedFigure, PlotError> {
    let check = Check { figure: FIGURE };
    check.non_empty("rates", &data.rates)?;
    check.increasing("rates", &data.rates)?;
    check_series(
        &check,
        &data.series,
        data.rates.len(),
        "rates",
        |field, value| check.fraction(field, value),
    )?;
    if let Some(target) = data.target {
        check.fraction("target".to_string(), target)?;
    }
    render(data, dir, stem)
}

impl SloAttainmentVsRate {
    fn scale(&self) -> f64 {
        if self.as_percent { 100.0 } else { 1.0 }
    }

    fn target_label(&self, target: f64) -> String {
        if self.as_percent {
            format!("Target {}%", format_number(target * 100.0))
        } else {
            format!("Target {}", format_number(target))
        }
    }
}

impl Figure for SloAttainmentVsRate {
    fn size(&self) -> (u32, u32) {
        (1200, 720)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        let mut legend = series_legend(&self.series);
        if let Some(target) = self.target {
            legend.push(LegendEntry {
                label: self.target_label(target),
                colour: REFERENCE_COLOUR,
                swatch: Swatch::Dashed,
            });
        }
        let area = frame(root, &self.title, &legend)?;
        let scale = self.scale();
        let x_range = padded_range(&self.rates);
        // A little room above 100% so lines at full attainment are not drawn on the frame.
        let mut chart = linear_chart(&area, x_range.clone(), 0.0..1.03 * scale, X_LABEL_AREA)?;
        let y_desc = if self.as_percent {
            "SLO attainment (%)"
        } else {
            "SLO attainment (fraction)"
        };
        house_style(&mut chart.configure_mesh())
            .x_label_formatter(&|value| format_number(*value))
            .y_label_formatter(&|value| format_number(*value))
            .x_desc("Request rate (req/s)")
            .y_desc(y_desc)
            .draw()?;
        if let Some(target) = self.target {
            chart.draw_series(std::iter::once(DashedPathElement::new(
                vec![
                    (x_range.start, target * scale),
                    (x_range.end, target * scale),
                ],
                10,
                6,
                REFERENCE_COLOUR.stroke_width(2),
            )))?;
        }
        draw_series_lines(&mut chart, &self.rates, &self.series, scale)
    }
}
