//! `POST cloud-detection/events`: strict validation of the custom event format (spec "Event
//! Format"). A request is atomic: every problem is reported and nothing is stored on failure.

use crate::auth::Scope;
use serde_json::{Map, Value};

/// Why a batch was refused.
#[derive(Debug, PartialEq)]
pub(crate) enum Rejection {
    /// Every problem found, each naming its field and index.
    BadRequest(Vec<String>),
    /// A known account or site outside the token's scope.
    Forbidden,
}

pub(crate) const EVENT_TIME_HINT: &str =
    "must be RFC 3339 UTC with milliseconds and Z, e.g. 2024-01-15T10:30:45.123Z";

const TOP_LEVEL: &[&str] = &[
    "eventType",
    "eventSource",
    "eventTime",
    "accountId",
    "siteId",
    "customFields",
    "description",
];

const EVENT_TYPES: &[&str] = &[
    "audit_event",
    "alert",
    "ai_detection",
    "policy_violation",
    "classification_finding",
    "auth_success",
    "auth_failure",
];
const SEVERITIES: &[&str] = &["critical", "warning", "info"];
const STRING_FIELDS: &[&str] = &[
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
    "event_id",
    "session_id",
    "mitre_tactic",
    "mitre_technique",
];

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` and a real calendar date.
pub(crate) fn is_event_time(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    shape && chrono::NaiveDateTime::parse_from_str(&s[..23], "%Y-%m-%dT%H:%M:%S%.3f").is_ok()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn one_of(v: &Value, allowed: &[&str]) -> Result<(), String> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(()),
        _ => Err(format!("must be one of {} (got {v})", allowed.join(", "))),
    }
}

fn custom_field(key: &str, v: &Value) -> Result<(), String> {
    match key {
        "event_type" => one_of(v, EVENT_TYPES),
        "severity" => one_of(v, SEVERITIES),
        k if STRING_FIELDS.contains(&k) => match v {
            Value::String(_) => Ok(()),
            _ => Err(format!("must be a string (got {})", type_name(v))),
        },
        "rows_affected" => match v.as_u64() {
            Some(_) => Ok(()),
            None => Err(format!("must be a non-negative integer (got {v})")),
        },
        "contains_pii" => match v {
            Value::Bool(_) => Ok(()),
            _ => Err(format!("must be a boolean (got {})", type_name(v))),
        },
        "data_types" => match v {
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(()),
            _ => Err("must be an array of strings".to_string()),
        },
        _ => match v {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
            Value::Array(items)
                if items
                    .iter()
                    .all(|i| matches!(i, Value::String(_) | Value::Number(_) | Value::Bool(_))) =>
            {
                Ok(())
            }
            _ => Err(format!(
                "must be a string, number, boolean or array of scalars (got {})",
                type_name(v)
            )),
        },
    }
}

/// Checks one event; pushes problems and notes scope violations.
fn check_event(
    i: usize,
    ev: &Map<String, Value>,
    scope: &Scope<'_>,
    validate: bool,
    errs: &mut Vec<String>,
    forbidden: &mut bool,
) {
    let at = |field: &str, msg: &str| format!("data[{i}].{field}: {msg}");
    let account = ev.get("accountId");
    let site = ev.get("siteId");
    if validate {
        for key in ev.keys() {
            if !TOP_LEVEL.contains(&key.as_str()) {
                errs.push(at(key, "unknown field"));
            }
        }
        match ev.get("eventType") {
            Some(Value::String(s)) if s == "Custom" => {}
            None => errs.push(at("eventType", "required, must be \"Custom\"")),
            Some(v) => errs.push(at("eventType", &format!("must be \"Custom\" (got {v})"))),
        }
        match ev.get("eventSource") {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            None => errs.push(at("eventSource", "required non-empty string")),
            Some(_) => errs.push(at("eventSource", "must be a non-empty string")),
        }
        match ev.get("eventTime") {
            None => {}
            Some(Value::String(s)) if is_event_time(s) => {}
            Some(_) => errs.push(at("eventTime", EVENT_TIME_HINT)),
        }
        if let Some(d) = ev.get("description") {
            if !d.is_string() {
                errs.push(at("description", "must be a string"));
            }
        }
        match ev.get("customFields") {
            Some(Value::Object(cf)) => {
                for (k, v) in cf {
                    if let Err(m) = custom_field(k, v) {
                        errs.push(at(&format!("customFields.{k}"), &m));
                    }
                }
            }
            None => errs.push(at("customFields", "required object")),
            Some(v) => errs.push(at(
                "customFields",
                &format!("must be an object (got {})", type_name(v)),
            )),
        }
    }
    let cfg = scope.config;
    let account_id = match account {
        None => None,
        Some(Value::String(a)) => {
            if cfg.account(a).is_none() {
                if validate {
                    errs.push(at("accountId", &format!("unknown account \"{a}\"")));
                }
            } else if !scope.can_account(a) {
                *forbidden = true;
            }
            Some(a.as_str())
        }
        Some(_) => {
            if validate {
                errs.push(at("accountId", "must be a string"));
            }
            None
        }
    };
    match site {
        None => {}
        Some(Value::String(s)) => match cfg.site(s) {
            None if validate => errs.push(at("siteId", &format!("unknown site \"{s}\""))),
            None => {}
            Some(site) => {
                if let Some(a) = account_id {
                    if validate && site.account_id != a && cfg.account(a).is_some() {
                        errs.push(at(
                            "siteId",
                            &format!("site \"{s}\" does not belong to account \"{a}\""),
                        ));
                    }
                }
                if !scope.can_site(s) {
                    *forbidden = true;
                }
            }
        },
        Some(_) if validate => errs.push(at("siteId", "must be a string")),
        Some(_) => {}
    }
}

/// Validates a whole request body; on success returns the events to store, as received.
pub(crate) fn check_batch(
    body: &[u8],
    scope: &Scope<'_>,
    validate: bool,
) -> Result<Vec<Value>, Rejection> {
    let bad = |m: String| Rejection::BadRequest(vec![m]);
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("request body: invalid JSON ({e})")))?;
    let obj = parsed
        .as_object()
        .ok_or_else(|| bad("request body: must be a JSON object {\"data\":[...]}".into()))?;
    let mut errs = Vec::new();
    if validate {
        for key in obj.keys().filter(|k| *k != "data") {
            errs.push(format!("{key}: unknown field"));
        }
    }
    let events = match obj.get("data") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            errs.push("data: must be a non-empty array of events".into());
            return Err(Rejection::BadRequest(errs));
        }
    };
    let mut forbidden = false;
    for (i, ev) in events.iter().enumerate() {
        match ev.as_object() {
            Some(map) => check_event(i, map, scope, validate, &mut errs, &mut forbidden),
            None if validate => errs.push(format!("data[{i}]: must be an object")),
            None => {}
        }
    }
    if !errs.is_empty() {
        Err(Rejection::BadRequest(errs))
    } else if forbidden {
        Err(Rejection::Forbidden)
    } else {
        Ok(events.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmulatorConfig;
    use serde_json::json;

    fn run(body: Value) -> Result<Vec<Value>, Rejection> {
        let cfg = EmulatorConfig::default()
            .with_account("555", "Other")
            .with_site("556", "555", "Other site");
        let scope = Scope::resolve(&cfg, Some("s1-demo-token")).unwrap();
        check_batch(body.to_string().as_bytes(), &scope, true)
    }

    fn errors(body: Value) -> Vec<String> {
        match run(body) {
            Err(Rejection::BadRequest(e)) => e,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn event_time_format() {
        assert!(is_event_time("2024-01-15T10:30:45.123Z"));
        for bad in [
            "2024-01-15T10:30:45Z",
            "2024-01-15T10:30:45.123+02:00",
            "2024-01-15T10:30:45.1234Z",
            "2024-02-30T10:30:45.123Z",
            "2024-01-15 10:30:45.123Z",
        ] {
            assert!(!is_event_time(bad), "{bad}");
        }
    }

    #[test]
    fn spec_curl_example_accepted() {
        let ok = run(
            json!({"data":[{"eventType":"Custom","eventSource":"DBaudit","customFields":{"test":"event"}}]}),
        );
        assert_eq!(ok.unwrap().len(), 1);
    }

    #[test]
    fn every_problem_is_listed() {
        let e = errors(json!({"data":[
            {"eventType":"Custom","eventSource":"DBaudit","customFields":{}},
            {"eventType":"custom","eventSource":"","eventTime":"2024-01-15T10:30:45+02:00",
             "customFields":{"severity":"high","rows_affected":-1,"contains_pii":"yes",
                             "data_types":["a",1],"database":5,"extra":null,"obj":{"a":1}},
             "foo":1}
        ]}));
        let want = [
            "data[1].foo: unknown field",
            "data[1].eventType:",
            "data[1].eventSource:",
            "data[1].eventTime: must be RFC 3339",
            "data[1].customFields.severity:",
            "data[1].customFields.rows_affected:",
            "data[1].customFields.contains_pii:",
            "data[1].customFields.data_types:",
            "data[1].customFields.database:",
            "data[1].customFields.extra:",
            "data[1].customFields.obj:",
        ];
        for w in want {
            assert!(e.iter().any(|m| m.starts_with(w)), "missing {w} in {e:?}");
        }
        assert_eq!(e.len(), want.len(), "{e:?}");
    }

    #[test]
    fn body_shape() {
        assert_eq!(
            errors(json!({"data":[]})),
            ["data: must be a non-empty array of events"]
        );
        assert_eq!(errors(json!({"events":[{}]})).len(), 2);
        assert!(errors(json!([1]))[0].starts_with("request body"));
    }

    #[test]
    fn account_and_site_checks() {
        let base = |extra: Value| {
            let mut ev = json!({"eventType":"Custom","eventSource":"DBaudit","customFields":{}});
            for (k, v) in extra.as_object().unwrap() {
                ev[k] = v.clone();
            }
            json!({ "data": [ev] })
        };
        assert!(run(base(json!({"accountId":"123456789","siteId":"987654321"}))).is_ok());
        assert!(errors(base(json!({"accountId":"1"})))[0].contains("unknown account"));
        assert!(errors(base(json!({"siteId":"1"})))[0].contains("unknown site"));
        assert!(
            errors(base(json!({"accountId":"123456789","siteId":"556"})))[0]
                .contains("does not belong")
        );
        assert_eq!(
            run(base(json!({"accountId":"555"}))),
            Err(Rejection::Forbidden)
        );
        assert_eq!(
            run(base(json!({"siteId":"556"}))),
            Err(Rejection::Forbidden)
        );
    }
}
