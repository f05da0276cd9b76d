//! The built-in plugin: the SentinelOne component built by `build.rs` and its manifest.

/// The component bytes (wasm32-wasip2 component).
pub static COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/plugin.wasm"));

/// The manifest (`plugin.toml` at the workspace root).
pub static MANIFEST: &str = include_str!("../../plugin.toml");
