//! One input line (a JSON object) -> the WIT `audit-record`, keeping the original text for
//! the dead letter. Unknown keys travel as one JSON object text in `extra-json`.

use serde_json::{Map, Value};

use crate::runtime::{AuditRecord, EventKind, Severity};

/// A record on its way through the pipeline.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub record: AuditRecord,
    /// The input as read (a JSON object).
    pub raw: Value,
    /// Size of the input line in bytes (what the batch plan's max-bytes counts).
    pub size: u64,
    /// Line number in the input, when it came from one.
    pub line: Option<u64>,
}

const KNOWN: [&str; 19] = [
    "id",
    "timestamp",
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
    "session_id",
    "extra_json",
];

pub fn parse_event_kind(s: &str) -> Option<EventKind> {
    Some(match s {
        "audit_event" => EventKind::AuditEvent,
        "alert" => EventKind::Alert,
        "ai_detection" => EventKind::AiDetection,
        "policy_violation" => EventKind::PolicyViolation,
        "classification_finding" => EventKind::ClassificationFinding,
        "auth_success" => EventKind::AuthSuccess,
        "auth_failure" => EventKind::AuthFailure,
        _ => return None,
    })
}

pub fn parse_severity(s: &str) -> Option<Severity> {
    Some(match s {
        "critical" => Severity::Critical,
        "warning" => Severity::Warning,
        "info" => Severity::Info,
        _ => return None,
    })
}

/// RFC 3339 with any offset -> milliseconds since the epoch, UTC.
pub fn parse_timestamp_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn opt_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn required_string<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    match m.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(format!("`{key}` is empty")),
        None | Some(Value::Null) => Err(format!("missing `{key}`")),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

/// Turn a JSON object into a record; the error says what is wrong with it.
pub fn from_json(v: &Value) -> Result<AuditRecord, String> {
    let m = v.as_object().ok_or("not a JSON object")?;
    let id = required_string(m, "id")?.to_string();
    let ts = required_string(m, "timestamp")?;
    let timestamp_ms = parse_timestamp_ms(ts).ok_or_else(|| {
        format!("`timestamp` {ts:?} is not RFC 3339 (e.g. 2024-01-15T10:30:45.123Z)")
    })?;
    let et = required_string(m, "event_type")?;
    let event_type = parse_event_kind(et).ok_or_else(|| {
        format!("unknown `event_type` {et:?} (audit_event, alert, ai_detection, policy_violation, classification_finding, auth_success, auth_failure)")
    })?;
    let sev = required_string(m, "severity")?;
    let severity = parse_severity(sev)
        .ok_or_else(|| format!("unknown `severity` {sev:?} (critical, warning, info)"))?;
    let rows_affected = match m.get("rows_affected") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .ok_or("`rows_affected` must be a whole number >= 0")?,
        ),
        Some(_) => return Err("`rows_affected` must be a number".into()),
    };
    let contains_pii = match m.get("contains_pii") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err("`contains_pii` must be true or false".into()),
    };
    let data_types = match m.get("data_types") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or("`data_types` must be a list of strings")
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`data_types` must be a list of strings".into()),
    };
    let extra: Map<String, Value> = m
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(AuditRecord {
        id,
        timestamp_ms,
        event_type,
        severity,
        database: opt_string(m, "database")?,
        db_type: opt_string(m, "db_type")?,
        db_host: opt_string(m, "db_host")?,
        actor_user: opt_string(m, "actor_user")?,
        client_ip: opt_string(m, "client_ip")?,
        application: opt_string(m, "application")?,
        action_type: opt_string(m, "action_type")?,
        object: opt_string(m, "object")?,
        schema: opt_string(m, "schema")?,
        statement: opt_string(m, "statement")?,
        rows_affected,
        contains_pii,
        data_types,
        session_id: opt_string(m, "session_id")?,
        extra_json: if extra.is_empty() {
            String::new()
        } else {
            Value::Object(extra).to_string()
        },
    })
}

/// Parse one input line.
pub fn parse_line(line: &str, line_no: Option<u64>) -> Result<Envelope, String> {
    let raw: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let record = from_json(&raw)?;
    Ok(Envelope {
        record,
        raw,
        size: line.len() as u64,
        line: line_no,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"id":"a1","timestamp":"2024-01-15T12:30:45.123+02:00","event_type":"audit_event","severity":"warning","database":"production-postgres","db_type":"postgresql","db_host":"db.example.com","actor_user":"app_user","client_ip":"10.0.1.50","application":"backend-api","action_type":"SELECT","object":"customers","schema":"public","statement":"SELECT * FROM customers WHERE...","rows_affected":1500,"contains_pii":true,"data_types":["email","phone"],"ticket":"JIRA-1","score":0.9}"#;

    #[test]
    fn parses_the_design_example() {
        let e = parse_line(EXAMPLE, Some(7)).unwrap();
        let r = &e.record;
        assert_eq!(r.id, "a1");
        assert_eq!(r.timestamp_ms, 1705314645123);
        assert!(matches!(r.event_type, EventKind::AuditEvent));
        assert!(matches!(r.severity, Severity::Warning));
        assert_eq!(r.rows_affected, Some(1500));
        assert_eq!(r.data_types, vec!["email", "phone"]);
        assert_eq!(r.extra_json, r#"{"ticket":"JIRA-1","score":0.9}"#);
        assert_eq!(e.line, Some(7));
    }

    #[test]
    fn says_what_is_wrong() {
        assert!(parse_line("{nope", None)
            .unwrap_err()
            .starts_with("not valid JSON"));
        let bad = EXAMPLE.replace("\"warning\"", "\"loud\"");
        assert!(parse_line(&bad, None)
            .unwrap_err()
            .contains("unknown `severity` \"loud\""));
        let bad = EXAMPLE.replace("2024-01-15T12:30:45.123+02:00", "yesterday");
        assert!(parse_line(&bad, None).unwrap_err().contains("`timestamp`"));
        let bad = EXAMPLE.replace("1500", "-1");
        assert!(parse_line(&bad, None)
            .unwrap_err()
            .contains("rows_affected"));
        assert_eq!(parse_line("[]", None).unwrap_err(), "not a JSON object");
        assert_eq!(
            parse_line(r#"{"timestamp":"x"}"#, None).unwrap_err(),
            "missing `id`"
        );
    }
}
