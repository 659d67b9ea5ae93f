//! One module per figure kind.

pub mod attainment;
pub mod cdf;
pub mod cost;
pub mod heatmap;
pub mod mix;
pub mod scaling;
pub mod timeseries;
pub mod tokens;
pub mod whatif;
