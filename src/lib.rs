//! SentinelOne sink plugin: forwards database audit records to SentinelOne as custom events.
//!
//! Plain-Rust SentinelOne logic in small modules; `bindings` (wasm only) is the one file that
//! touches wit-bindgen and `wasi:http`.

pub mod alloc;
pub mod config;
pub mod connection;
pub mod deliver;
pub mod event;
pub mod filter;
pub mod io;
mod json;
pub mod mitre;
pub mod payload;
pub mod plugin;
pub mod policy;
pub mod queries;
pub mod record;
pub mod rules;
pub mod time;

#[cfg(target_arch = "wasm32")]
mod bindings;

/// Small blocks by size class (see [`alloc`]); the component is single-threaded.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: alloc::SizeClasses = alloc::SizeClasses::new();
