//! Figure: one simulated run over time as three stacked panels sharing the time axis: queue
//! length, running requests and KV-cache use, one line per replica.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::figures::tokens::padded_range;
use crate::palette::{gpu_colour, gpu_type_of_replica, shade};
use crate::render::{
    Check, DrawFailure, Figure, LINE_WIDTH, LegendEntry, Swatch, X_LABEL_AREA, format_number,
    frame, house_style, linear_chart, max_or, render,
};
use crate::{PlotError, RenderedFigure};

const FIGURE: &str = "run time series";
/// Label area under the upper panels: just enough to separate them.
const INNER_X_LABEL_AREA: u32 = 6;
/// Shades applied to the 1st, 2nd, ... replica of one GPU type, so replicas of a type share a
/// hue but stay apart.
const REPLICA_SHADES: [f64; 6] = [0.0, -0.45, 0.4, -0.7, 0.65, -0.25];

/// Time series of one replica, sampled at the run's sample times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSeries {
    /// Replica name, GPU type then `#` and an index ("A10G#0"); the type picks the colour.
    pub replica: String,
    /// Requests waiting in the replica's queue at each sample.
    pub queue_len: Vec<f64>,
    /// Requests being served (in the running batch) at each sample.
    pub running: Vec<f64>,
    /// Fraction of KV-cache blocks in use at each sample, in [0, 1].
    pub kv_use: Vec<f64>,
}

/// Data for [`run_time_series`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTimeSeries {
    /// Figure title; empty for none.
    pub title: String,
    /// Sample times in simulated seconds, increasing.
    pub time_s: Vec<f64>,
    /// One entry per replica.
    pub replicas: Vec<ReplicaSeries>,
}

/// Draws queue length, running requests and KV use over time, one line per replica.
pub fn run_time_series(
    data: &RunTimeSeries,
    dir: &Path,
    stem: &str,
) -> Result<RenderedFigure, PlotError> {
    validate(data)?;
    render(data, dir, stem)
}

fn validate(data: &RunTimeSeries) -> Result<(), PlotError> {
    let check = Check { figure: FIGURE };
    check.non_empty("time_s", &data.time_s)?;
    check.increasing("time_s", &data.time_s)?;
    check.non_empty("replicas", &data.replicas)?;
    check.distinct_names(
        "replicas[].replica",
        data.replicas.iter().map(|r| r.replica.as_str()),
    )?;
    let samples = data.time_s.len();
    for (index, replica) in data.replicas.iter().enumerate() {
        for (name, values) in [
            ("queue_len", &replica.queue_len),
            ("running", &replica.running),
            ("kv_use", &replica.kv_use),
        ] {
            let field = format!("replicas[{index}].{name}");
            check.same_len(format!("{field} (vs time_s)"), samples, values.len())?;
            for (sample, value) in values.iter().enumerate() {
                if name == "kv_use" {
                    check.fraction(format!("{field}[{sample}]"), *value)?;
                } else {
                    check.non_negative(format!("{field}[{sample}]"), *value)?;
                }
            }
        }
    }
    Ok(())
}

/// One of the stacked panels: which metric it shows and how.
struct Panel {
    y_desc: &'static str,
    metric: fn(&ReplicaSeries) -> &Vec<f64>,
    /// A fixed top of the y axis (KV use is a fraction), else fitted to the data.
    fixed_top: Option<f64>,
}

impl RunTimeSeries {
    /// Each replica's colour: its GPU type's colour, shaded by its rank among that type.
    fn colours(&self) -> Vec<RGBColor> {
        let mut seen: Vec<&str> = Vec::new();
        self.replicas
            .iter()
            .map(|replica| {
                let gpu = gpu_type_of_replica(&replica.replica);
                let rank = seen.iter().filter(|other| **other == gpu).count();
                seen.push(gpu);
                shade(gpu_colour(gpu), REPLICA_SHADES[rank % REPLICA_SHADES.len()])
            })
            .collect()
    }
}

impl Figure for RunTimeSeries {
    fn size(&self) -> (u32, u32) {
        (1200, 1100)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        let colours = self.colours();
        let legend: Vec<LegendEntry> = self
            .replicas
            .iter()
            .zip(&colours)
            .map(|(replica, colour)| LegendEntry {
                label: replica.replica.clone(),
                colour: *colour,
                swatch: Swatch::Line(None),
            })
            .collect();
        let area = frame(root, &self.title, &legend)?;
        // Panel heights chosen so the three plotting areas come out equally tall.
        let (_, height) = area.dim_in_pixel();
        let plot_height = (height - X_LABEL_AREA - 2 * INNER_X_LABEL_AREA) / 3;
        let (top, rest) = area.split_vertically(plot_height + INNER_X_LABEL_AREA);
        let (middle, bottom) = rest.split_vertically(plot_height + INNER_X_LABEL_AREA);

        let panels = [
            Panel {
                y_desc: "Queue (requests)",
                metric: |r| &r.queue_len,
                fixed_top: None,
            },
            Panel {
                y_desc: "Running (requests)",
                metric: |r| &r.running,
                fixed_top: None,
            },
            Panel {
                y_desc: "KV cache use (fraction)",
                metric: |r| &r.kv_use,
                fixed_top: Some(1.0),
            },
        ];
        let x_range = padded_range(&self.time_s);
        for (panel_index, (panel, spec)) in
            [&top, &middle, &bottom].into_iter().zip(panels).enumerate()
        {
            let Panel {
                y_desc,
                metric,
                fixed_top,
            } = spec;
            let is_bottom = panel_index == 2;
            let y_top = fixed_top.unwrap_or_else(|| {
                let max = max_or(
                    self.replicas.iter().flat_map(|r| metric(r).iter().copied()),
                    0.0,
                );
                if max > 0.0 { max * 1.08 } else { 1.0 }
            });
            let label_area = if is_bottom {
                X_LABEL_AREA
            } else {
                INNER_X_LABEL_AREA
            };
            let mut chart = linear_chart(panel, x_range.clone(), 0.0..y_top, label_area)?;
            let mut mesh = chart.configure_mesh();
            house_style(&mut mesh)
                .y_labels(5)
                .y_label_formatter(&|value| format_number(*value))
                .y_desc(y_desc);
            if is_bottom {
                mesh.x_label_formatter(&|value| format_number(*value))
                    .x_desc("Simulated time (s)");
            } else {
                mesh.x_label_formatter(&|_| String::new());
            }
            mesh.draw()?;
            for (replica, colour) in self.replicas.iter().zip(&colours) {
                chart.draw_series(LineSeries::new(
                    self.time_s
                        .iter()
                        .copied()
                        .zip(metric(replica).iter().copied()),
                    colour.stroke_width(LINE_WIDTH - 1),
                ))?;
            }
        }
        Ok(())
    }
}
