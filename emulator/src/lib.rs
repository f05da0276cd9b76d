//! SentinelOne Management API emulator for tests and demos.
//!
//! Faithful to the shapes in `shared/reference/sentinelone-api.md` (paths, envelopes, exact
//! error bodies, nginx 413/429 pages, rate limits), strict about what it accepts, and able to
//! misbehave on demand through fault scripts. It shares no code with the plugin on purpose.
//!
//! ```no_run
//! use s1_emulator::{Emulator, EmulatorConfig, Fault};
//! let emu = Emulator::start(EmulatorConfig::default()).unwrap();
//! emu.script("cloud-detection/events", vec![Fault::throttle("2")]);
//! println!("console_url = {}", emu.url());
//! ```

mod api;
mod auth;
mod config;
mod control;
mod dv;
mod errors;
mod events;
mod faults;
mod params;
mod ratelimit;
mod rules;
pub mod s1ql;
mod server;
mod state;

pub use config::{
    Account, EmulatorConfig, Site, TokenScope, DEFAULT_ACCOUNT_ID, DEFAULT_ACCOUNT_NAME,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_SITE_ID, DEFAULT_SITE_NAME, DEFAULT_TOKEN,
};
pub use faults::{Fault, API_PREFIX};
pub use server::{serve, serve_with_shutdown, Emulator, EmulatorHandle};
pub use state::Stats;
