//! Mapping: one audit record to one SentinelOne custom event, written as JSON.
//!
//! The format is the spec's "Event Format", plus `event_id` (for de-duplication), the session
//! id and the MITRE fields (for storylines), and any extra input fields.

use crate::config::Settings;
use crate::json::{self, Escaping, Object};
use crate::mitre;
use crate::record::{AuditRecord, EventKind};

/// The customFields keys the plugin writes itself; extra input fields never override them.
pub const KNOWN_FIELDS: [&str; 19] = [
    "event_type",
    "severity",
    "database",
    "db_type",
    "db_host",
    "actor_user",
    "client_ip",
    "application",
    "action_type",
    "object",
    "schema",
    "statement",
    "rows_affected",
    "contains_pii",
    "data_types",
    "event_id",
    "session_id",
    "mitre_tactic",
    "mitre_technique",
];

/// Why a record cannot become an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingError(pub String);

/// Appends the event for `record` to `buf`. On error nothing is appended.
pub fn write_event(
    buf: &mut Vec<u8>,
    settings: &Settings,
    record: &AuditRecord,
) -> Result<(), MappingError> {
    let time = crate::time::format_utc_millis(record.timestamp_ms).ok_or_else(|| {
        MappingError(format!(
            "timestamp {} ms is outside years 0000-9999",
            record.timestamp_ms
        ))
    })?;
    let mut event = Object::begin(buf);
    event.str("eventType", "Custom");
    event.str("eventSource", &settings.event_source);
    let out = event.key("eventTime");
    out.push(b'"');
    out.extend_from_slice(&time);
    out.push(b'"');
    event.str("accountId", &settings.account_id);
    event.opt_str("siteId", settings.site_id.as_deref());
    write_custom_fields(event.key("customFields"), record);
    let out = event.key("description");
    out.push(b'"');
    write_description(&mut Escaping(out), record);
    out.push(b'"');
    event.end();
    Ok(())
}

fn write_custom_fields(buf: &mut Vec<u8>, r: &AuditRecord) {
    let mut f = Object::begin(buf);
    f.str("event_type", r.event_type.as_str());
    f.str("severity", r.severity.as_str());
    f.opt_str("database", r.database.as_deref());
    f.opt_str("db_type", r.db_type.as_deref());
    f.opt_str("db_host", r.db_host.as_deref());
    f.opt_str("actor_user", r.actor_user.as_deref());
    f.opt_str("client_ip", r.client_ip.as_deref());
    f.opt_str("application", r.application.as_deref());
    f.opt_str("action_type", r.action_type.as_deref());
    f.opt_str("object", r.object.as_deref());
    f.opt_str("schema", r.schema.as_deref());
    f.opt_str("statement", r.statement.as_deref());
    if let Some(n) = r.rows_affected {
        f.u64("rows_affected", n);
    }
    if let Some(b) = r.contains_pii {
        f.bool("contains_pii", b);
    }
    if !r.data_types.is_empty() {
        f.str_list("data_types", &r.data_types);
    }
    f.str("event_id", &r.id);
    f.opt_str("session_id", r.session_id.as_deref());
    if let Some(m) = mitre::for_record(r) {
        write_label(f.key("mitre_tactic"), m.tactic, m.tactic_id);
        write_label(f.key("mitre_technique"), m.technique, m.technique_id);
    }
    if !r.extra_json.is_empty() {
        write_extra_fields(&mut f, &r.extra_json);
    }
    f.end();
}

fn write_label(buf: &mut Vec<u8>, name: &str, id: &str) {
    buf.push(b'"');
    json::write_escaped(buf, name);
    buf.extend_from_slice(b" (");
    json::write_escaped(buf, id);
    buf.extend_from_slice(b")\"");
}

/// Unknown input fields, forwarded as custom fields: scalars and lists as they are, objects as
/// their JSON text (customFields are flat), nulls left out.
fn write_extra_fields(f: &mut Object<'_>, extra_json: &str) {
    let extra: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(extra_json) {
        Ok(map) => map,
        // The host promises an object; if it is not one, keep the text rather than lose it.
        Err(_) => {
            f.str("extra", extra_json);
            return;
        }
    };
    for (key, value) in &extra {
        if value.is_null() {
            continue;
        }
        // An input field named like one of ours (e.g. its own `event_id`) is kept, renamed.
        let renamed;
        let key = if KNOWN_FIELDS.contains(&key.as_str()) {
            renamed = format!("input_{key}");
            &renamed
        } else {
            key
        };
        match value {
            // customFields are flat: nested values travel as their JSON text.
            serde_json::Value::Object(_) => f.str(key, &value.to_string()),
            serde_json::Value::Array(items) if !items.iter().all(is_plain_scalar) => {
                f.str(key, &value.to_string())
            }
            _ => {
                let buf = f.key(key);
                serde_json::to_writer(buf, value).expect("writing to a Vec cannot fail");
            }
        }
    }
}

fn is_plain_scalar(v: &serde_json::Value) -> bool {
    matches!(
        v,
        serde_json::Value::String(_) | serde_json::Value::Number(_) | serde_json::Value::Bool(_)
    )
}

/// A sentence an analyst can read in the console, e.g.
/// "Database audit event: SELECT on customers (1500 rows)".
pub fn write_description(out: &mut Escaping<'_>, r: &AuditRecord) {
    let user = r.actor_user.as_deref().unwrap_or("unknown user");
    let db = r.database.as_deref().unwrap_or("unknown database");
    match r.event_type {
        EventKind::AuditEvent => {
            put(out, &["Database audit event: "]);
            write_action(out, r, db);
        }
        EventKind::Alert => {
            put(out, &["Database alert (", r.severity.as_str(), "): "]);
            write_action(out, r, db);
            put(out, &[" by ", user]);
        }
        EventKind::AiDetection => {
            put(out, &["AI detection: anomalous "]);
            write_action(out, r, db);
            put(out, &[" by ", user]);
        }
        EventKind::PolicyViolation => {
            put(out, &["Policy violation: "]);
            write_action(out, r, db);
            put(out, &[" by ", user]);
        }
        EventKind::ClassificationFinding => {
            put(out, &["Classification finding: "]);
            if r.data_types.is_empty() {
                put(out, &["sensitive data"]);
            }
            for (i, t) in r.data_types.iter().enumerate() {
                put(out, &[if i > 0 { ", " } else { "" }, t]);
            }
            match r.object.as_deref() {
                Some(object) => put(out, &[" in ", object, " (", db, ")"]),
                None => put(out, &[" in ", db]),
            }
        }
        EventKind::AuthSuccess => write_login(out, "succeeded", user, r, db),
        EventKind::AuthFailure => write_login(out, "failed", user, r, db),
    }
}

/// Appends each part, escaped (no `fmt` machinery: this runs for every event).
fn put(out: &mut Escaping<'_>, parts: &[&str]) {
    for p in parts {
        json::write_escaped(out.0, p);
    }
}

/// "SELECT on customers (1500 rows)", with what is known.
fn write_action(out: &mut Escaping<'_>, r: &AuditRecord, db: &str) {
    match (r.action_type.as_deref(), r.object.as_deref()) {
        (Some(action), Some(object)) => put(out, &[action, " on ", object]),
        (Some(action), None) => put(out, &[action, " on ", db]),
        (None, Some(object)) => put(out, &["activity on ", object]),
        (None, None) => put(out, &["activity on ", db]),
    }
    match r.rows_affected {
        Some(1) => put(out, &[" (1 row)"]),
        Some(n) => {
            put(out, &[" ("]);
            json::write_u64(out.0, n);
            put(out, &[" rows)"]);
        }
        None => {}
    }
}

fn write_login(out: &mut Escaping<'_>, outcome: &str, user: &str, r: &AuditRecord, db: &str) {
    put(out, &["Database login ", outcome, ": ", user]);
    if let Some(ip) = r.client_ip.as_deref() {
        put(out, &[" from ", ip]);
    }
    put(out, &[" to ", db]);
}
