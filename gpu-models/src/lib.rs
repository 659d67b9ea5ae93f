//! GPU and LLM catalogs (facts with sources), price books, instance types (model × GPU × TP),
//! KV-cache capacity, and the iteration-latency model the simulator calls once per iteration.

pub mod calibrate;
pub mod catalog;
pub mod error;
pub mod gpu;
pub mod instance;
pub mod latency;
pub mod llm;
pub mod measured;
pub mod prices;

pub use catalog::Catalog;
pub use error::ModelError;
pub use gpu::{Efficiency, GpuSpec};
pub use instance::{BLOCK_TOKENS, FitError, Instance, InstanceOptions};
pub use latency::{
    BatchShape, BatchSummary, IterationBreakdown, LatencyModel, PrefillChunk, Roofline,
};
pub use llm::{ModelSpec, WeightDtype};
pub use measured::{MeasuredTable, TableFilter};
pub use prices::{DEFAULT_BOOK, Price, PriceBook};
