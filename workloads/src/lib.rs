//! Request streams for medley: the request record, trace readers for the formats the field
//! publishes, seeded synthetic generators, named presets built from public statistics,
//! stream transformations, and size histograms over Mélange's bucket edges.
//!
//! Units everywhere: arrival times in seconds from the start of the stream (readers rebase the
//! first row to 0), rates in requests per second, lengths in tokens.

#![warn(missing_docs)]

pub mod arrivals;
pub mod error;
pub mod histogram;
pub mod lengths;
pub mod presets;
pub mod request;
pub mod source;
pub mod stats;
pub mod synthetic;
pub mod trace;
pub mod transform;

pub use arrivals::{ArrivalProcess, RateProfile};
pub use error::{Error, TraceError, WorkloadError};
pub use histogram::{BucketEdges, BucketSampler, SizeHistogram};
pub use lengths::{LengthDist, LengthModel, QuantileTable};
pub use presets::Preset;
pub use request::{MAX_ARRIVAL_S, Request};
pub use stats::{LengthSummary, StatsBuilder, TraceStats};
pub use synthetic::{SyntheticStream, Workload};
pub use trace::{
    LoadReport, LoadedTrace, ReadOptions, TraceFormat, TraceReader, load, write_normalized,
};
