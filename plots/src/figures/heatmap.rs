//! Figure: the cheapest GPU type for each (input length, output length) bucket, as a heat map
//! coloured by the winner, with its advantage over the runner-up written in each cell.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use serde::{Deserialize, Serialize};

use crate::palette::{NO_DATA_COLOUR, gpu_colour, text_colour_on};
use crate::render::{
    ANNOTATION_SIZE, CHART_MARGIN, Check, DrawFailure, Figure, LegendEntry, Swatch, TICK_SIZE,
    WithColour, X_LABEL_AREA, Y_LABEL_AREA, anchored, bold, category_label, frame, house_style,
    render, text,
};
use crate::{PlotError, RenderedFigure};

const FIGURE: &str = "best GPU heat map";
const NO_RUNNER_UP: &str = "only";

/// The winner of one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestGpuCell {
    /// The best GPU type for this bucket.
    pub winner: String,
    /// How much better the winner is than the runner-up, in percent of the runner-up's value;
    /// `None` when no other GPU type could serve the bucket (written "only").
    pub advantage_pct: Option<f64>,
}

/// Data for [`best_gpu_heatmap`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestGpuHeatmap {
    /// Figure title; empty for none.
    pub title: String,
    /// What the advantage measures ("tokens per $"); shown in a note; empty for no note.
    pub metric: String,
    /// Input-length bucket labels (rows, drawn bottom to top), e.g. "1-256".
    pub input_buckets: Vec<String>,
    /// Output-length bucket labels (columns, left to right).
    pub output_buckets: Vec<String>,
    /// `cells[row][column]`; `None` where there is no data (drawn grey).
    pub cells: Vec<Vec<Option<BestGpuCell>>>,
}

/// Draws the heat map of winning GPU types per size bucket.
pub fn best_gpu_heatmap(
    data: &BestGpuHeatmap,
    dir: &Path,
    stem: &str,
) -> Result<RenderedFigure, PlotError> {
    validate(data)?;
    render(data, dir, stem)
}

fn validate(data: &BestGpuHeatmap) -> Result<(), PlotError> {
    let check = Check { figure: FIGURE };
    check.non_empty("input_buckets", &data.input_buckets)?;
    check.non_empty("output_buckets", &data.output_buckets)?;
    check.same_len(
        "cells (rows, vs input_buckets)".to_string(),
        data.input_buckets.len(),
        data.cells.len(),
    )?;
    for (row, cells) in data.cells.iter().enumerate() {
        check.same_len(
            format!("cells[{row}] (columns, vs output_buckets)"),
            data.output_buckets.len(),
            cells.len(),
        )?;
        for (column, cell) in cells.iter().enumerate() {
            let Some(cell) = cell else { continue };
            if cell.winner.trim().is_empty() {
                return Err(check.invalid(
                    format!("cells[{row}][{column}].winner"),
                    format!("{:?}", cell.winner),
                    "a GPU type name",
                ));
            }
            if let Some(advantage) = cell.advantage_pct {
                check.non_negative(format!("cells[{row}][{column}].advantage_pct"), advantage)?;
            }
        }
    }
    Ok(())
}

/// The text written in a cell for the winner's advantage, e.g. "+23%" or "+4.5%".
pub(crate) fn advantage_label(advantage_pct: Option<f64>) -> String {
    match advantage_pct {
        None => NO_RUNNER_UP.to_string(),
        Some(percent) if percent >= 9.95 => format!("+{percent:.0}%"),
        Some(percent) => format!("+{percent:.1}%"),
    }
}

impl BestGpuHeatmap {
    /// Winning types in order of first appearance, so the legend is stable.
    fn winners(&self) -> Vec<&str> {
        let mut winners: Vec<&str> = Vec::new();
        for cell in self.cells.iter().flatten().flatten() {
            if !winners.contains(&cell.winner.as_str()) {
                winners.push(&cell.winner);
            }
        }
        winners
    }
}

impl Figure for BestGpuHeatmap {
    fn size(&self) -> (u32, u32) {
        (1100, 820)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        let mut legend: Vec<LegendEntry> = self
            .winners()
            .into_iter()
            .map(|winner| LegendEntry {
                label: winner.to_string(),
                colour: gpu_colour(winner),
                swatch: Swatch::Box,
            })
            .collect();
        if self.cells.iter().flatten().any(Option::is_none) {
            legend.push(LegendEntry {
                label: "no data".to_string(),
                colour: NO_DATA_COLOUR,
                swatch: Swatch::Box,
            });
        }
        let mut area = frame(root, &self.title, &legend)?;
        if !self.metric.is_empty() {
            let (note, below) = area.split_vertically(30);
            let (width, _) = note.dim_in_pixel();
            note.draw_text(
                &format!(
                    "Cell: best GPU and its advantage in {} over the runner-up",
                    self.metric
                ),
                &anchored(
                    text(TICK_SIZE).with_colour(RGBColor(0x44, 0x44, 0x44)),
                    HPos::Center,
                    VPos::Center,
                ),
                (width as i32 / 2, 14),
            )?;
            area = below;
        }

        let rows = self.input_buckets.len();
        let columns = self.output_buckets.len();
        let tick_style = text(TICK_SIZE);
        let mut widest_row_label = 0;
        for label in &self.input_buckets {
            widest_row_label = widest_row_label.max(area.estimate_text_size(label, &tick_style)?.0);
        }
        let y_label_area = Y_LABEL_AREA.max(widest_row_label + 60);
        let mut chart = ChartBuilder::on(&area)
            .margin(CHART_MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(y_label_area)
            .build_cartesian_2d(-0.5..columns as f64 - 0.5, -0.5..rows as f64 - 0.5)?;
        house_style(&mut chart.configure_mesh())
            .disable_mesh()
            .x_labels(columns)
            .y_labels(rows)
            .x_label_formatter(&|value| category_label(&self.output_buckets, *value))
            .y_label_formatter(&|value| category_label(&self.input_buckets, *value))
            .x_desc("Output length (tokens)")
            .y_desc("Input length (tokens)")
            .draw()?;

        let (plot_x, plot_y) = chart.plotting_area().get_pixel_range();
        let cell_width = f64::from(plot_x.end - plot_x.start) / columns as f64;
        let cell_height = f64::from(plot_y.end - plot_y.start) / rows as f64;
        let name_style = text(ANNOTATION_SIZE);
        let percent_style = bold(ANNOTATION_SIZE + 2.0);
        for (row, cells) in self.cells.iter().enumerate() {
            for (column, cell) in cells.iter().enumerate() {
                let (x, y) = (column as f64, row as f64);
                let corners = [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)];
                let fill = cell
                    .as_ref()
                    .map_or(NO_DATA_COLOUR, |cell| gpu_colour(&cell.winner));
                chart.draw_series([
                    Rectangle::new(corners, fill.filled()),
                    Rectangle::new(corners, WHITE.stroke_width(3)),
                ])?;
                let Some(cell) = cell else { continue };
                let ink = text_colour_on(fill);
                let percent = advantage_label(cell.advantage_pct);
                let (name_width, name_height) =
                    area.estimate_text_size(&cell.winner, &name_style)?;
                let (percent_width, percent_height) =
                    area.estimate_text_size(&percent, &percent_style)?;
                // The name is dropped first when a cell is too small for both lines.
                let fits_both = f64::from(name_width.max(percent_width)) + 8.0 <= cell_width
                    && f64::from(name_height + percent_height) + 14.0 <= cell_height;
                if fits_both {
                    let gap = f64::from(name_height + percent_height + 6) / 2.0;
                    chart.draw_series([plotters::element::EmptyElement::at((x, y))
                        + Text::new(
                            cell.winner.clone(),
                            (0, -(gap as i32) + name_height as i32 / 2),
                            anchored(
                                name_style.clone().with_colour(ink),
                                HPos::Center,
                                VPos::Center,
                            ),
                        )])?;
                    chart.draw_series([plotters::element::EmptyElement::at((x, y))
                        + Text::new(
                            percent,
                            (0, gap as i32 - percent_height as i32 / 2),
                            anchored(
                                percent_style.clone().with_colour(ink),
                                HPos::Center,
                                VPos::Center,
                            ),
                        )])?;
                } else {
                    chart.draw_series([Text::new(
                        percent,
                        (x, y),
                        anchored(
                            percent_style.clone().with_colour(ink),
                            HPos::Center,
                            VPos::Center,
                        ),
                    )])?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::advantage_label;

    #[test]
    fn advantage_labels() {
        assert_eq!(advantage_label(Some(23.4)), "+23%");
        assert_eq!(advantage_label(Some(4.46)), "+4.5%");
        assert_eq!(advantage_label(None), "only");
    }
}
