//! Paper-style figures (PNG and SVG) of medley results, drawn with plotters from plain data.
//!
//! Every figure function validates its data, writes `<stem>.png` and `<stem>.svg` into a
//! directory, and returns both paths. Text uses the bundled DejaVu Sans font, so no system fonts
//! are needed; colours come from [`palette`], so a GPU type has the same colour in every figure.

#![warn(missing_docs)]

mod error;
mod figures;
mod fonts;
pub mod palette;
mod render;

pub use error::PlotError;
pub use figures::attainment::{SloAttainmentVsRate, slo_attainment_vs_rate};
pub use figures::cdf::{LatencyCdf, LatencySamples, SloLine, latency_cdf};
pub use figures::cost::{CostVsRate, FleetCosts, cost_vs_rate};
pub use figures::heatmap::{BestGpuCell, BestGpuHeatmap, best_gpu_heatmap};
pub use figures::mix::{GpuCounts, GpuMixByRate, gpu_mix_by_rate};
pub use figures::scaling::{
    CostPerPolicy, ReplicasOverTime, TypeReplicaCounts, cost_per_policy, replicas_over_time,
};
pub use figures::timeseries::{ReplicaSeries, RunTimeSeries, run_time_series};
pub use figures::tokens::{NamedSeries, TokensPerDollarVsSlo, tokens_per_dollar_vs_slo};
pub use figures::whatif::{PriceWhatIf, price_what_if};
pub use fonts::{FONT_FAMILY, ensure_fonts};
pub use render::RenderedFigure;
