//! The cost-minimising GPU mix for LLM serving: Mélange's integer program (Griggs et al. 2024,
//! arXiv 2404.14527), an equivalent compact program, single-type baselines, Mélange's JSON formats,
//! and extensions (caps, minimums, headroom, multi-GPU instances, several SLO classes, time windows).
//!
//! The planner takes capacity tables (max req/s per instance per request-size bucket under an SLO)
//! as plain input; [`profile`] measures them by load-testing the simulator.

pub mod baseline;
mod branch_bound;
pub mod error;
mod ilp;
mod lp;
pub mod melange;
pub mod plan;
pub mod problem;
pub mod profile;
pub mod schedule;
pub mod synthetic;
pub mod verify;

pub use baseline::{Baseline, BaselineOutcome, instances_for_load, savings, single_type_baselines};
pub use error::PlanError;
pub use melange::{
    GpuInfo, MelangeConfig, MelangeGpu, MelangeOutput, MelangeOverrides, plan_melange_file,
    read_gpu_info, write_gpu_info,
};
pub use plan::{
    BucketAssignment, ClassAssignment, Plan, SliceShare, TimedPlan, TypeAllocation, solve,
    solve_timed,
};
pub use problem::{
    Backend, DEFAULT_NODE_LIMIT, Formulation, GpuType, PlanProblem, SolveOptions, WorkloadClass,
};
pub use profile::{
    BucketLengths, CellProfile, CellStatus, LatencySamples, ProfileError, ProfileProgress,
    ProfileRequest, ProfileRunStats, ProfileSet, ProfileSettings, ProfileSlo, ProfileTarget,
    SloCheck, SloStat, SloVerdict, TypeProfile, fnv1a, profile,
};
pub use schedule::{FleetEntry, Schedule, TimeWindow, WindowPlan, plan_schedule};
pub use verify::{
    GroupValidation, Validation, VerifyOutcome, VerifyRound, VerifySettings, plan_and_verify,
    validate,
};
