//! Experiment configs, the sweep runner, planning for a workload, and result tables (CSV and
//! Parquet via polars).

pub mod config;
pub mod efficiency;
pub mod planning;
pub mod runner;
pub mod tables;
pub mod workload;
