//! The control API under `/_emulator/` (no auth): script faults, change switches, inspect, reset.

use crate::errors::{self, Reply};
use crate::faults::Fault;
use crate::state::Inner;
use serde::Deserialize;
use serde_json::{json, Value};

pub const CONTROL_PREFIX: &str = "/_emulator/";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptBody {
    path: String,
    faults: Vec<Fault>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    max_body_bytes: Option<usize>,
    validate: Option<bool>,
    rate_limits: Option<bool>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| errors::bad_request1(format!("request body: {e}")))
}

fn switches(inner: &Inner) -> Value {
    let c = &inner.config;
    json!({"max_body_bytes": c.max_body_bytes, "validate": c.validate, "rate_limits": c.rate_limits})
}

pub(crate) fn handle(inner: &mut Inner, method: &str, path: &str, body: &[u8]) -> Reply {
    let route = path
        .strip_prefix(CONTROL_PREFIX)
        .unwrap_or("")
        .trim_end_matches('/');
    match (method, route) {
        ("POST", "faults") => match parse::<ScriptBody>(body) {
            Ok(s) => {
                let queued = inner.faults.push(&s.path, s.faults);
                Reply::ok(
                    json!({"data": {"path": crate::faults::normalize_path(&s.path), "queued": queued}}),
                )
            }
            Err(r) => r,
        },
        ("GET", "faults") => Reply::ok(json!({"data": inner.faults.pending()})),
        ("DELETE", "faults") => {
            inner.faults.clear();
            Reply::ok(json!({"data": {}}))
        }
        ("POST", "config") => match parse::<ConfigBody>(body) {
            Ok(c) => {
                if let Some(n) = c.max_body_bytes {
                    inner.config.max_body_bytes = n;
                }
                if let Some(v) = c.validate {
                    inner.config.validate = v;
                }
                if let Some(r) = c.rate_limits {
                    inner.config.rate_limits = r;
                }
                Reply::ok(json!({"data": switches(inner)}))
            }
            Err(r) => r,
        },
        ("GET", "config") => Reply::ok(json!({"data": switches(inner)})),
        ("GET", "events") => {
            let events: Vec<&Value> = inner.events.iter().map(|e| &e.event).collect();
            Reply::ok(json!({"data": events, "totalItems": events.len()}))
        }
        ("GET", "rules") => {
            Reply::ok(json!({"data": inner.rules, "totalItems": inner.rules.len()}))
        }
        ("GET", "stats") => Reply::ok(json!({"data": inner.stats})),
        ("POST", "reset") => {
            inner.reset();
            Reply::ok(json!({"data": {"reset": true}}))
        }
        _ => errors::not_found(),
    }
}
