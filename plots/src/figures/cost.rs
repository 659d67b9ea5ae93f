//! Figure: hourly cost of each fleet vs request rate, as grouped bars, with the mixed fleet's
//! savings over each single-type fleet written above that fleet's bar.

use std::path::Path;

use plotters::coord::Shift;
use plotters::element::EmptyElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use serde::{Deserialize, Serialize};

use crate::palette::gpu_colour;
use crate::render::{
    ANNOTATION_SIZE, Check, DrawFailure, Figure, LegendEntry, Swatch, WithColour, X_LABEL_AREA,
    anchored, bar_edge, category_label, format_number, frame, house_style, linear_chart, max_or,
    plot_size, render, text, vertical_text,
};
use crate::{PlotError, RenderedFigure};

const FIGURE: &str = "cost vs rate";
/// Fraction of each rate's slot taken by its group of bars.
const GROUP_WIDTH: f64 = 0.8;
const NOT_AVAILABLE: &str = "n/a";
const LABEL_COLOUR: RGBColor = RGBColor(0x22, 0x22, 0x22);
const NOT_AVAILABLE_COLOUR: RGBColor = RGBColor(0x77, 0x77, 0x77);

/// One fleet's hourly cost at each request rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetCosts {
    /// Fleet name: a GPU type ("A10G") for a single-type fleet, or "Mélange"/"mixed".
    pub fleet: String,
    /// Cost in $/hour at each rate; `None` where the fleet cannot meet the SLO (drawn "n/a").
    pub cost_per_hour: Vec<Option<f64>>,
}

/// Data for [`cost_vs_rate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostVsRate {
    /// Figure title; empty for none.
    pub title: String,
    /// Request rates (req/s), one group of bars each.
    pub rates: Vec<f64>,
    /// The mixed fleet, drawn first in each group; savings are relative to it.
    pub mixed: FleetCosts,
    /// Single-type fleets to compare against.
    pub baselines: Vec<FleetCosts>,
}

/// Draws grouped bars of $/hour per fleet at each rate, labelling the mixed fleet's savings.
pub fn cost_vs_rate(
    data: &CostVsRate,
    dir: &Path,
    stem: &str,
) -> Result<RenderedFigure, PlotError> {
    validate(data)?;
    render(data, dir, stem)
}

fn validate(data: &CostVsRate) -> Result<(), PlotError> {
    let check = Check { figure: FIGURE };
    check.non_empty("rates", &data.rates)?;
    for (index, rate) in data.rates.iter().enumerate() {
        check.non_negative(format!("rates[{index}]"), *rate)?;
    }
    let fleets = std::iter::once(("mixed".to_string(), &data.mixed)).chain(
        data.baselines
            .iter()
            .enumerate()
            .map(|(index, fleet)| (format!("baselines[{index}]"), fleet)),
    );
    let mut any_cost = false;
    for (field, fleet) in fleets {
        check.same_len(
            format!("{field}.cost_per_hour"),
            data.rates.len(),
            fleet.cost_per_hour.len(),
        )?;
        for (index, cost) in fleet.cost_per_hour.iter().enumerate() {
            if let Some(cost) = cost {
                check.non_negative(format!("{field}.cost_per_hour[{index}]"), *cost)?;
                any_cost = true;
            }
        }
    }
    check.distinct_names(
        "fleet names (mixed, then baselines)",
        std::iter::once(data.mixed.fleet.as_str())
            .chain(data.baselines.iter().map(|fleet| fleet.fleet.as_str())),
    )?;
    if !any_cost {
        return Err(PlotError::EmptyData {
            figure: FIGURE,
            field: "cost_per_hour (every fleet is n/a at every rate)".to_string(),
        });
    }
    Ok(())
}

/// The mixed fleet's cost change relative to `baseline`, e.g. "-35%"; `None` for a zero baseline.
pub(crate) fn savings_label(mixed: f64, baseline: f64) -> Option<String> {
    if baseline <= 0.0 {
        return None;
    }
    let percent = ((mixed - baseline) / baseline * 100.0).round();
    Some(if percent == 0.0 {
        "0%".to_string()
    } else {
        format!("{percent:+.0}%")
    })
}

impl CostVsRate {
    fn fleets(&self) -> Vec<&FleetCosts> {
        std::iter::once(&self.mixed)
            .chain(&self.baselines)
            .collect()
    }

    /// Every label drawn above a bar, for sizing.
    fn bar_labels(&self) -> Vec<String> {
        let mut labels = vec![NOT_AVAILABLE.to_string()];
        for (rate_index, mixed) in self.mixed.cost_per_hour.iter().enumerate() {
            for baseline in &self.baselines {
                if let (Some(mixed), Some(base)) = (mixed, baseline.cost_per_hour[rate_index]) {
                    labels.extend(savings_label(*mixed, base));
                }
            }
        }
        labels
    }
}

impl Figure for CostVsRate {
    fn size(&self) -> (u32, u32) {
        (1200, 720)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        let fleets = self.fleets();
        let legend: Vec<LegendEntry> = fleets
            .iter()
            .map(|fleet| LegendEntry {
                label: fleet.fleet.clone(),
                colour: gpu_colour(&fleet.fleet),
                swatch: Swatch::Box,
            })
            .collect();
        let area = frame(root, &self.title, &legend)?;

        let rate_count = self.rates.len();
        let bar_width = GROUP_WIDTH / fleets.len() as f64;
        let (plot_width, plot_height) = plot_size(&area);
        let bar_pixels = f64::from(plot_width) / rate_count as f64 * bar_width;
        let label_style = text(ANNOTATION_SIZE);
        let mut widest_label = 0;
        for label in self.bar_labels() {
            widest_label = widest_label.max(area.estimate_text_size(&label, &label_style)?.0);
        }
        // Labels wider than a bar are turned to read upwards so neighbours never overlap.
        let vertical_labels = f64::from(widest_label) + 4.0 > bar_pixels;
        let label_pixels = if vertical_labels {
            widest_label as i32
        } else {
            ANNOTATION_SIZE as i32
        };
        let max_cost = max_or(
            fleets
                .iter()
                .flat_map(|fleet| fleet.cost_per_hour.iter().flatten().copied()),
            0.0,
        );
        let max_cost = if max_cost > 0.0 { max_cost } else { 1.0 };
        let reserved = f64::from(label_pixels + 14).min(f64::from(plot_height) * 0.5);
        let y_max = max_cost * f64::from(plot_height) / (f64::from(plot_height) - reserved);

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
            .y_label_formatter(&|value| format_number(*value))
            .x_desc("Request rate (req/s)")
            .y_desc("Cost ($/hour)")
            .draw()?;

        let label_at = |label: String, x: f64, y: f64, colour: RGBColor| {
            let style = if vertical_labels {
                anchored(
                    vertical_text(ANNOTATION_SIZE, colour),
                    HPos::Left,
                    VPos::Center,
                )
            } else {
                anchored(
                    text(ANNOTATION_SIZE).with_colour(colour),
                    HPos::Center,
                    VPos::Bottom,
                )
            };
            EmptyElement::at((x, y)) + Text::new(label, (0, -6), style)
        };

        for (rate_index, _) in self.rates.iter().enumerate() {
            let group_left = rate_index as f64 - GROUP_WIDTH / 2.0;
            for (fleet_index, fleet) in fleets.iter().enumerate() {
                let left = group_left + fleet_index as f64 * bar_width;
                let right = left + bar_width;
                let centre = (left + right) / 2.0;
                let colour = gpu_colour(&fleet.fleet);
                match fleet.cost_per_hour[rate_index] {
                    Some(cost) => {
                        let corners = [
                            (left + bar_width * 0.04, 0.0),
                            (right - bar_width * 0.04, cost),
                        ];
                        chart.draw_series([
                            Rectangle::new(corners, colour.filled()),
                            Rectangle::new(corners, bar_edge(colour)),
                        ])?;
                        // Savings go above each baseline bar (fleet 0 is the mixed fleet).
                        let mixed = self.mixed.cost_per_hour[rate_index];
                        if let (true, Some(mixed)) = (fleet_index > 0, mixed)
                            && let Some(label) = savings_label(mixed, cost)
                        {
                            chart.draw_series(std::iter::once(label_at(
                                label,
                                centre,
                                cost,
                                LABEL_COLOUR,
                            )))?;
                        }
                    }
                    None => {
                        chart.draw_series(std::iter::once(label_at(
                            NOT_AVAILABLE.to_string(),
                            centre,
                            0.0,
                            NOT_AVAILABLE_COLOUR,
                        )))?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::savings_label;

    #[test]
    fn savings_are_relative_to_the_baseline() {
        assert_eq!(savings_label(65.0, 100.0).as_deref(), Some("-35%"));
        assert_eq!(savings_label(120.0, 100.0).as_deref(), Some("+20%"));
        assert_eq!(savings_label(100.2, 100.0).as_deref(), Some("0%"));
        assert_eq!(savings_label(1.0, 0.0), None);
    }
}
