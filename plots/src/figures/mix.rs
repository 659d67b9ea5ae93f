//! Figure: how many GPUs of each type the chosen fleet holds at each request rate (stacked bars).

use std::path::Path;

use plotters::coord::Shift;
use plotters::element::EmptyElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use serde::{Deserialize, Serialize};

use crate::palette::{gpu_colour, text_colour_on};
use crate::render::{
    ANNOTATION_SIZE, Check, DrawFailure, Figure, LegendEntry, Swatch, WithColour, X_LABEL_AREA,
    anchored, bar_edge, bold, category_label, format_number, frame, house_style, integer_label,
    linear_chart, plot_size, render, text,
};
use crate::{PlotError, RenderedFigure};

const FIGURE: &str = "GPU mix by rate";
const BAR_WIDTH: f64 = 0.6;

/// How many GPUs of one type a fleet holds at each point of a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuCounts {
    /// GPU type name ("A10G").
    pub gpu_type: String,
    /// Number of GPUs of this type at each point (rate or price).
    pub counts: Vec<u32>,
}

/// Data for [`gpu_mix_by_rate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuMixByRate {
    /// Figure title; empty for none.
    pub title: String,
    /// Request rates (req/s), one bar each.
    pub rates: Vec<f64>,
    /// Counts per GPU type, stacked bottom to top in this order.
    pub mix: Vec<GpuCounts>,
}

/// Draws one stacked bar per rate with the count of each GPU type, totals on top.
pub fn gpu_mix_by_rate(
    data: &GpuMixByRate,
    dir: &Path,
    stem: &str,
) -> Result<RenderedFigure, PlotError> {
    validate(data)?;
    render(data, dir, stem)
}

fn validate(data: &GpuMixByRate) -> Result<(), PlotError> {
    let check = Check { figure: FIGURE };
    check.non_empty("rates", &data.rates)?;
    for (index, rate) in data.rates.iter().enumerate() {
        check.non_negative(format!("rates[{index}]"), *rate)?;
    }
    check_mix(&check, &data.mix, data.rates.len(), "rates")
}

/// Checks a stacked mix: present, one count per point, distinct type names.
pub(crate) fn check_mix(
    check: &Check,
    mix: &[GpuCounts],
    points: usize,
    points_field: &str,
) -> Result<(), PlotError> {
    check.non_empty("mix", mix)?;
    for (index, gpu) in mix.iter().enumerate() {
        check.same_len(
            format!("mix[{index}].counts (vs {points_field})"),
            points,
            gpu.counts.len(),
        )?;
    }
    check.distinct_names(
        "mix[].gpu_type",
        mix.iter().map(|gpu| gpu.gpu_type.as_str()),
    )
}

/// Legend entries (boxes) for the GPU types of a mix.
pub(crate) fn mix_legend(mix: &[GpuCounts]) -> Vec<LegendEntry> {
    mix.iter()
        .map(|gpu| LegendEntry {
            label: gpu.gpu_type.clone(),
            colour: gpu_colour(&gpu.gpu_type),
            swatch: Swatch::Box,
        })
        .collect()
}

/// Total GPUs at each point.
pub(crate) fn totals(mix: &[GpuCounts], points: usize) -> Vec<u32> {
    (0..points)
        .map(|point| mix.iter().map(|gpu| gpu.counts[point]).sum())
        .collect()
}

impl Figure for GpuMixByRate {
    fn size(&self) -> (u32, u32) {
        (1200, 720)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        let area = frame(root, &self.title, &mix_legend(&self.mix))?;
        let rate_count = self.rates.len();
        let totals = totals(&self.mix, rate_count);
        let max_total = totals.iter().copied().max().unwrap_or(0).max(1);
        let (plot_width, plot_height) = plot_size(&area);
        // Room above the tallest bar for its total.
        let reserved = (ANNOTATION_SIZE + 16.0).min(f64::from(plot_height) * 0.5);
        let y_max =
            f64::from(max_total) * f64::from(plot_height) / (f64::from(plot_height) - reserved);
        let pixels_per_gpu = f64::from(plot_height) / y_max;
        let bar_pixels = f64::from(plot_width) / rate_count as f64 * BAR_WIDTH;

        let mut chart = linear_chart(
            &area,
            -0.5..rate_count as f64 - 0.5,
            0.0..y_max,
            X_LABEL_AREA,
        )?;
        let rate_labels: Vec<String> = self.rates.iter().map(|r| format_number(*r)).collect();
        house_style(&mut chart.configure_mesh())
            .disable_x_mesh()
            .x_labels(rate_count)
            .x_label_formatter(&|value| category_label(&rate_labels, *value))
            .y_label_formatter(&|value| integer_label(*value))
            .x_desc("Request rate (req/s)")
            .y_desc("GPUs (count)")
            .draw()?;

        let count_style = text(ANNOTATION_SIZE);
        for (rate_index, total) in totals.iter().enumerate() {
            let left = rate_index as f64 - BAR_WIDTH / 2.0;
            let right = rate_index as f64 + BAR_WIDTH / 2.0;
            let mut base = 0.0;
            for gpu in &self.mix {
                let count = gpu.counts[rate_index];
                if count == 0 {
                    continue;
                }
                let top = base + f64::from(count);
                let colour = gpu_colour(&gpu.gpu_type);
                chart.draw_series([
                    Rectangle::new([(left, base), (right, top)], colour.filled()),
                    Rectangle::new([(left, base), (right, top)], bar_edge(colour)),
                ])?;
                // Write the count inside its segment only where it fits.
                let label = count.to_string();
                let (label_width, _) = area.estimate_text_size(&label, &count_style)?;
                if f64::from(count) * pixels_per_gpu >= ANNOTATION_SIZE + 4.0
                    && f64::from(label_width) + 6.0 <= bar_pixels
                {
                    let style = anchored(
                        text(ANNOTATION_SIZE).with_colour(text_colour_on(colour)),
                        HPos::Center,
                        VPos::Center,
                    );
                    chart.draw_series(std::iter::once(Text::new(
                        label,
                        (rate_index as f64, (base + top) / 2.0),
                        style,
                    )))?;
                }
                base = top;
            }
            let total_style = anchored(bold(ANNOTATION_SIZE), HPos::Center, VPos::Bottom);
            chart.draw_series(std::iter::once(
                EmptyElement::at((rate_index as f64, f64::from(*total)))
                    + Text::new(total.to_string(), (0, -6), total_style),
            ))?;
        }
        Ok(())
    }
}
