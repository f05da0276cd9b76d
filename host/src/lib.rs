//! `dbaudit`: a log pipeline that forwards database audit records to a SIEM through a sink
//! plugin (a WebAssembly component implementing `dbaudit:sink/siem-sink`).
//!
//! Data flow, one module per step: [`config`] (pipeline file) and [`manifest`] (plugin.toml)
//! -> [`runtime`] (wasmtime, limits) + [`sandbox`] (allow-list) -> [`input`] (JSONL) ->
//! [`record`] (line -> audit-record) -> [`batcher`] -> [`delivery`] (verdicts) ->
//! [`deadletter`] -> [`summary`]; [`pipeline`] wires them, [`metrics`] counts.

pub mod batcher;
pub mod boundary;
pub mod builtin;
pub mod commands;
pub mod config;
pub mod dataset;
pub mod deadletter;
pub mod delivery;
pub mod demo;
pub mod input;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod pipeline;
pub mod plugin;
pub mod record;
pub mod runtime;
pub mod sandbox;
pub mod secrets;
pub mod summary;

pub use config::PipelineConfig;
pub use metrics::Metrics;
pub use pipeline::{run_pipeline, RunError, RunOptions, Source};
pub use summary::Summary;
