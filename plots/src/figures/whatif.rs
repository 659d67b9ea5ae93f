//! Figure: what-if sweep over one GPU type's price: the optimal fleet's hourly cost (top) and
//! its GPU mix (bottom), with the prices where the mix changes marked.

use std::path::Path;

use plotters::coord::Shift;
use plotters::element::{DashedPathElement, EmptyElement};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use serde::{Deserialize, Serialize};

use crate::figures::mix::{GpuCounts, check_mix, mix_legend, totals};
use crate::palette::{MIXED_COLOUR, gpu_colour};
use crate::render::{
    ANNOTATION_SIZE, CHART_MARGIN, Check, DrawFailure, Figure, LINE_WIDTH, LegendEntry,
    MarkerShape, REFERENCE_COLOUR, Swatch, WithColour, X_LABEL_AREA, Y_LABEL_AREA, anchored,
    bar_edge, format_number, frame, house_style, integer_label, max_or, render, text,
};
use crate::{PlotError, RenderedFigure};

const FIGURE: &str = "price what-if";
/// Space above the top panel for crossover labels (two staggered rows).
const CROSSOVER_LABEL_ROWS: i32 = 2;
const CROSSOVER_ROW_HEIGHT: i32 = 24;
/// Fraction of the narrowest price step a bar takes.
const BAR_FRACTION: f64 = 0.7;

/// Data for [`price_what_if`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceWhatIf {
    /// Figure title; empty for none.
    pub title: String,
    /// The GPU type whose price is varied.
    pub gpu_type: String,
    /// Prices tried for that GPU type, $/hour, increasing.
    pub prices_per_hour: Vec<f64>,
    /// Hourly cost of the optimal fleet at each price, $/hour.
    pub optimal_cost_per_hour: Vec<f64>,
    /// GPU counts of the optimal fleet at each price, stacked in this order.
    pub mix: Vec<GpuCounts>,
}

/// Draws the optimal cost (top) and GPU mix (bottom) against the price, marking mix changes.
pub fn price_what_if(
    data: &PriceWhatIf,
    dir: &Path,
    stem: &str,
) -> Result<RenderedFigure, PlotError> {
    validate(data)?;
    render(data, dir, stem)
}

fn validate(data: &PriceWhatIf) -> Result<(), PlotError> {
    let check = Check { figure: FIGURE };
    if data.gpu_type.trim().is_empty() {
        return Err(check.invalid(
            "gpu_type".to_string(),
            "\"\"".to_string(),
            "a GPU type name",
        ));
    }
    check.non_empty("prices_per_hour", &data.prices_per_hour)?;
    check.increasing("prices_per_hour", &data.prices_per_hour)?;
    let points = data.prices_per_hour.len();
    check.same_len(
        "optimal_cost_per_hour (vs prices_per_hour)".to_string(),
        points,
        data.optimal_cost_per_hour.len(),
    )?;
    for (index, cost) in data.optimal_cost_per_hour.iter().enumerate() {
        check.non_negative(format!("optimal_cost_per_hour[{index}]"), *cost)?;
    }
    check_mix(&check, &data.mix, points, "prices_per_hour")
}

/// The label of a crossover bracket, e.g. "$1.20–1.25".
pub(crate) fn crossover_label((below, above): (f64, f64)) -> String {
    format!("${below:.2}\u{2013}{above:.2}")
}

/// Where a crossover's dashed line goes: midway between the two sampled prices.
fn crossover_x((below, above): (f64, f64)) -> f64 {
    (below + above) / 2.0
}

impl PriceWhatIf {
    /// Where the optimal mix changes between neighbouring sampled prices, as (last price with
    /// the old mix, first price with the new mix); the true crossover lies in between.
    pub fn crossovers(&self) -> Vec<(f64, f64)> {
        (1..self.prices_per_hour.len())
            .filter(|&point| {
                self.mix
                    .iter()
                    .any(|gpu| gpu.counts.get(point) != gpu.counts.get(point - 1))
            })
            .map(|point| (self.prices_per_hour[point - 1], self.prices_per_hour[point]))
            .collect()
    }

    fn x_range(&self) -> (std::ops::Range<f64>, f64) {
        let prices = &self.prices_per_hour;
        let step = prices
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .fold(f64::INFINITY, f64::min);
        let step = if step.is_finite() {
            step
        } else {
            prices[0].abs().max(1.0) * 0.2
        };
        (
            prices[0] - step / 2.0..prices[prices.len() - 1] + step / 2.0,
            step,
        )
    }
}

impl Figure for PriceWhatIf {
    fn size(&self) -> (u32, u32) {
        (1200, 1000)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        let crossovers = self.crossovers();
        let mut legend = vec![LegendEntry {
            label: "Optimal cost".to_string(),
            colour: MIXED_COLOUR,
            swatch: Swatch::Line(Some(MarkerShape::Circle)),
        }];
        legend.extend(mix_legend(&self.mix));
        if !crossovers.is_empty() {
            legend.push(LegendEntry {
                label: "Mix changes".to_string(),
                colour: REFERENCE_COLOUR,
                swatch: Swatch::Dashed,
            });
        }
        let area = frame(root, &self.title, &legend)?;
        let (_, height) = area.dim_in_pixel();
        let (top, bottom) = area.split_vertically(height * 9 / 20);
        let (x_range, step) = self.x_range();
        let bar_half_width = step * BAR_FRACTION / 2.0;

        // Top panel: optimal cost.
        let max_cost = max_or(self.optimal_cost_per_hour.iter().copied(), 0.0);
        let cost_top = if max_cost > 0.0 { max_cost * 1.1 } else { 1.0 };
        let label_room = if crossovers.is_empty() {
            0
        } else {
            CROSSOVER_LABEL_ROWS * CROSSOVER_ROW_HEIGHT + 6
        };
        let mut cost_chart = ChartBuilder::on(&top)
            .margin(CHART_MARGIN)
            .margin_top(CHART_MARGIN as i32 + label_room)
            .x_label_area_size(6)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x_range.clone(), 0.0..cost_top)?;
        house_style(&mut cost_chart.configure_mesh())
            .x_label_formatter(&|_| String::new())
            .y_labels(6)
            .y_label_formatter(&|value| format_number(*value))
            .y_desc("Optimal cost ($/hour)")
            .draw()?;
        for crossover in &crossovers {
            let x = crossover_x(*crossover);
            cost_chart.draw_series(std::iter::once(DashedPathElement::new(
                vec![(x, 0.0), (x, cost_top)],
                10,
                6,
                REFERENCE_COLOUR.stroke_width(2),
            )))?;
        }
        let points: Vec<(f64, f64)> = self
            .prices_per_hour
            .iter()
            .copied()
            .zip(self.optimal_cost_per_hour.iter().copied())
            .collect();
        cost_chart.draw_series(LineSeries::new(
            points.clone(),
            MIXED_COLOUR.stroke_width(LINE_WIDTH),
        ))?;
        cost_chart.draw_series(points.into_iter().map(|point| {
            EmptyElement::at(point)
                + Polygon::new(MarkerShape::Circle.outline(), MIXED_COLOUR.filled())
        }))?;

        // Crossover labels above the top panel, staggered into rows where they would collide.
        let label_style = anchored(
            text(ANNOTATION_SIZE).with_colour(REFERENCE_COLOUR),
            HPos::Center,
            VPos::Bottom,
        );
        let mut row_right_edges = vec![i32::MIN; CROSSOVER_LABEL_ROWS as usize];
        for crossover in &crossovers {
            let label = crossover_label(*crossover);
            let (width, _) = root.estimate_text_size(&label, &label_style)?;
            let (x, y_top) = cost_chart.backend_coord(&(crossover_x(*crossover), cost_top));
            let left = x - width as i32 / 2;
            let row = row_right_edges
                .iter()
                .position(|right| left > right + 8)
                .unwrap_or(CROSSOVER_LABEL_ROWS as usize - 1);
            row_right_edges[row] = x + width as i32 / 2;
            let y = y_top - 6 - row as i32 * CROSSOVER_ROW_HEIGHT;
            root.draw_text(&label, &label_style, (x, y))?;
        }

        // Bottom panel: the mix as stacked bars.
        let point_count = self.prices_per_hour.len();
        let totals = totals(&self.mix, point_count);
        let max_total = f64::from(totals.iter().copied().max().unwrap_or(0).max(1));
        let mut mix_chart = ChartBuilder::on(&bottom)
            .margin(CHART_MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x_range, 0.0..max_total * 1.1)?;
        let x_desc = format!("{} price ($/hour)", self.gpu_type);
        house_style(&mut mix_chart.configure_mesh())
            .x_label_formatter(&|value| format_number(*value))
            .y_label_formatter(&|value| integer_label(*value))
            .x_desc(x_desc.as_str())
            .y_desc("GPUs (count)")
            .draw()?;
        for (point, price) in self.prices_per_hour.iter().enumerate() {
            let mut base = 0.0;
            for gpu in &self.mix {
                let count = f64::from(gpu.counts[point]);
                if count == 0.0 {
                    continue;
                }
                let corners = [
                    (price - bar_half_width, base),
                    (price + bar_half_width, base + count),
                ];
                let colour = gpu_colour(&gpu.gpu_type);
                mix_chart.draw_series([
                    Rectangle::new(corners, colour.filled()),
                    Rectangle::new(corners, bar_edge(colour)),
                ])?;
                base += count;
            }
        }
        for crossover in &crossovers {
            let x = crossover_x(*crossover);
            mix_chart.draw_series(std::iter::once(DashedPathElement::new(
                vec![(x, 0.0), (x, max_total * 1.1)],
                10,
                6,
                REFERENCE_COLOUR.stroke_width(2),
            )))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{GpuCounts, PriceWhatIf, crossover_label};

    #[test]
    fn crossovers_bracket_each_mix_change() {
        let data = PriceWhatIf {
            title: String::new(),
            gpu_type: "A10G".to_string(),
            prices_per_hour: vec![0.5, 1.0, 1.5, 2.0],
            optimal_cost_per_hour: vec![2.0, 3.0, 3.5, 3.5],
            mix: vec![
                GpuCounts {
                    gpu_type: "A10G".to_string(),
                    counts: vec![4, 3, 0, 0],
                },
                GpuCounts {
                    gpu_type: "L4".to_string(),
                    counts: vec![0, 1, 5, 5],
                },
            ],
        };
        assert_eq!(data.crossovers(), vec![(0.5, 1.0), (1.0, 1.5)]);
        assert_eq!(crossover_label((1.0, 1.5)), "$1.00\u{2013}1.50");
    }
}
