//! The discrete-event simulator of LLM serving on heterogeneous GPU clusters: an exact
//! integer-time event core, a vLLM-like replica engine (continuous, chunked or static
//! batching; paged KV cache; preemption by recompute or swap), routing across replicas of
//! different GPU types, scheduling and routing policies fed by output-length predictors, and
//! metrics (TTFT, TPOT, SLO attainment, utilisation, cost, energy), autoscaling with cold
//! starts and billed lives, and prefill/decode disaggregation with KV-cache transfers.

pub mod autoscale;
pub mod cluster;
pub mod config;
pub mod disagg;
pub mod energy;
pub mod engine;
pub mod events;
pub mod hist;
pub mod metrics;
pub mod predict;
pub mod queue;
pub mod replica;
pub mod router;
pub mod sink;
pub mod time;

pub use autoscale::{
    AutoscaleConfig, AutoscalePolicy, ScaleLimits, ScaleMetric, ScalingReport, ScheduleWindow,
};
pub use cluster::{
    Cluster, ClusterEntry, ReplicaRole, ReplicaType, parse_spec, parse_spec_types, type_name,
};
pub use config::{BatchingMode, EngineConfig, PreemptionMode, SloTargets, parse_duration_s};
pub use disagg::{DisaggReport, KvLink};
pub use energy::{EnergyReport, PowerConfig};
pub use engine::{Progress, REJECT_NO_REPLICA, REJECT_TOO_LONG, SimConfig, SimError, simulate};
pub use metrics::{ReplicaLife, Summary};
pub use predict::PredictorKind;
pub use queue::{QueueKind, QueueParams, QueuePolicy};
pub use router::{AssignmentTable, CapacityTable, RouteRequest, RouterKind};
pub use sink::{
    CsvSink, NullSink, RecordSink, RequestRecord, RequestStatus, SampleRecord, VecSink,
};
