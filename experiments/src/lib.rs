//! Experiment configs, the sweep runner and result tables (CSV and Parquet via polars).

pub mod tables;
