//! One input line (a JSON object) -> the WIT `audit-record`, keeping the original text for
//! the dead letter. Unknown keys travel as one JSON object text in `extra-json`.

use serde_json::{Map, Value};

use crate::boundary::Record;
use crate::runtime::{EventKind, Severity};

/// A record on its way through the pipeline.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub record: Record,
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
pub fn from_json(v: &Value) -> Result<Record, String> {
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
    Ok(Record {
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

/// The input a record came from, for the dead letter: the line as read (parsed again only
/// when a record is dead-lettered) or an already parsed object (replay).
#[derive(Debug, Clone)]
pub enum Raw {
    Text(String),
    Json(Value),
}

impl Raw {
    /// The original input as a JSON value (an object for every record that parsed).
    pub fn to_value(&self) -> Value {
        match self {
            Raw::Text(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
            Raw::Json(v) => v.clone(),
        }
    }
}

/// What the pipeline keeps of a record besides the record itself.
#[derive(Debug, Clone)]
pub struct Meta {
    pub raw: Raw,
    /// Size of the input line in bytes (what the batch plan's max-bytes counts).
    pub size: u64,
    pub line: Option<u64>,
}

/// A record read from the input, with its [`Meta`].
#[derive(Debug, Clone)]
pub struct Entry {
    pub record: Record,
    pub meta: Meta,
}

impl From<Envelope> for Entry {
    fn from(e: Envelope) -> Entry {
        Entry {
            record: e.record,
            meta: Meta {
                raw: Raw::Json(e.raw),
                size: e.size,
                line: e.line,
            },
        }
    }
}

/// Parse one input line, keeping the line itself (not a parsed copy) for the dead letter.
///
/// The fast path reads the object straight into the record (no `serde_json::Value` for the
/// known keys); anything it does not accept goes through [`parse_line`], so the errors are
/// exactly the ones [`from_json`] gives.
///
/// On error: the reason, and the line given back.
pub fn parse_entry(line: String, line_no: Option<u64>) -> Result<Entry, (String, String)> {
    let size = line.len() as u64;
    let record = match fast::parse(&line) {
        Some(r) => r,
        None => match parse_line(&line, line_no) {
            Ok(e) => e.record,
            Err(reason) => return Err((reason, line)),
        },
    };
    Ok(Entry {
        record,
        meta: Meta {
            raw: Raw::Text(line),
            size,
            line: line_no,
        },
    })
}

mod fast {
    //! One pass over a line into typed fields with borrowed strings.

    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    use super::{parse_event_kind, parse_severity, parse_timestamp_ms, KNOWN};
    use crate::boundary::Record;

    /// A known key's value, as far as the checks need it.
    enum Field<'a> {
        Null,
        Str(Cow<'a, str>),
        U64(u64),
        Bool(bool),
        Strings(Vec<String>),
        /// Anything else: the slow path says what is wrong.
        Other,
    }

    struct FieldVisitor;

    impl<'de> Visitor<'de> for FieldVisitor {
        type Value = Field<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Field<'de>, E> {
            Ok(Field::Str(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Field<'de>, E> {
            Ok(Field::Str(Cow::Owned(v.to_string())))
        }
        fn visit_string<E>(self, v: String) -> Result<Field<'de>, E> {
            Ok(Field::Str(Cow::Owned(v)))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Field<'de>, E> {
            Ok(Field::U64(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Field<'de>, E> {
            Ok(if v >= 0 {
                Field::U64(v as u64)
            } else {
                Field::Other
            })
        }
        fn visit_f64<E>(self, _: f64) -> Result<Field<'de>, E> {
            Ok(Field::Other)
        }
        fn visit_bool<E>(self, v: bool) -> Result<Field<'de>, E> {
            Ok(Field::Bool(v))
        }
        fn visit_unit<E>(self) -> Result<Field<'de>, E> {
            Ok(Field::Null)
        }
        fn visit_none<E>(self) -> Result<Field<'de>, E> {
            Ok(Field::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
            let mut out = Vec::new();
            let mut ok = true;
            while let Some(f) = seq.next_element_seed(FieldSeed)? {
                match f {
                    Field::Str(s) if ok => out.push(s.into_owned()),
                    _ => ok = false,
                }
            }
            Ok(if ok {
                Field::Strings(out)
            } else {
                Field::Other
            })
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Field::Other)
        }
    }

    struct FieldSeed;

    impl<'de> de::DeserializeSeed<'de> for FieldSeed {
        type Value = Field<'de>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field<'de>, D::Error> {
            d.deserialize_any(FieldVisitor)
        }
    }

    const N: usize = KNOWN.len();

    struct Line<'a> {
        known: [Option<Field<'a>>; N],
        extra: Map<String, Value>,
    }

    struct LineVisitor;

    impl<'de> Visitor<'de> for LineVisitor {
        type Value = Line<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line<'de>, A::Error> {
            let mut line = Line {
                known: Default::default(),
                extra: Map::new(),
            };
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match KNOWN.iter().position(|k| *k == key) {
                    Some(i) => line.known[i] = Some(map.next_value_seed(FieldSeed)?),
                    None => {
                        let v: Value = map.next_value()?;
                        line.extra.insert(key.into_owned(), v);
                    }
                }
            }
            Ok(line)
        }
    }

    fn take<'a>(line: &mut Line<'a>, key: &str) -> Field<'a> {
        let i = KNOWN.iter().position(|k| *k == key).expect("a known key");
        line.known[i].take().unwrap_or(Field::Null)
    }

    fn required<'a>(line: &mut Line<'a>, key: &str) -> Option<Cow<'a, str>> {
        match take(line, key) {
            Field::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    fn optional(line: &mut Line<'_>, key: &str) -> Option<Option<String>> {
        match take(line, key) {
            Field::Null => Some(None),
            Field::Str(s) => Some(Some(s.into_owned())),
            _ => None,
        }
    }

    /// The record of a valid line; None when anything is off (the slow path explains).
    pub(super) fn parse(text: &str) -> Option<Record> {
        let mut de = serde_json::Deserializer::from_str(text);
        let mut line = de.deserialize_map(LineVisitor).ok()?;
        de.end().ok()?;
        let id = required(&mut line, "id")?.into_owned();
        let timestamp_ms = parse_timestamp_ms(&required(&mut line, "timestamp")?)?;
        let event_type = parse_event_kind(&required(&mut line, "event_type")?)?;
        let severity = parse_severity(&required(&mut line, "severity")?)?;
        let rows_affected = match take(&mut line, "rows_affected") {
            Field::Null => None,
            Field::U64(n) => Some(n),
            _ => return None,
        };
        let contains_pii = match take(&mut line, "contains_pii") {
            Field::Null => None,
            Field::Bool(b) => Some(b),
            _ => return None,
        };
        let data_types = match take(&mut line, "data_types") {
            Field::Null => Vec::new(),
            Field::Strings(v) => v,
            _ => return None,
        };
        Some(Record {
            id,
            timestamp_ms,
            event_type,
            severity,
            database: optional(&mut line, "database")?,
            db_type: optional(&mut line, "db_type")?,
            db_host: optional(&mut line, "db_host")?,
            actor_user: optional(&mut line, "actor_user")?,
            client_ip: optional(&mut line, "client_ip")?,
            application: optional(&mut line, "application")?,
            action_type: optional(&mut line, "action_type")?,
            object: optional(&mut line, "object")?,
            schema: optional(&mut line, "schema")?,
            statement: optional(&mut line, "statement")?,
            rows_affected,
            contains_pii,
            data_types,
            session_id: optional(&mut line, "session_id")?,
            extra_json: if line.extra.is_empty() {
                String::new()
            } else {
                Value::Object(line.extra).to_string()
            },
        })
    }
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
    fn the_fast_path_agrees_with_from_json() {
        let mut lines: Vec<String> = crate::dataset::Generator::new(3000, 5)
            .map(|v| v.to_string())
            .collect();
        lines.push(EXAMPLE.to_string());
        lines.push(EXAMPLE.replace("\"ticket\"", "\"t\\u00e9\\\"x\""));
        lines.push(EXAMPLE.replace("\"a1\"", "\"a\\n1\"").replace(
            ",\"score\":0.9",
            ",\"n\":null,\"o\":{\"k\":[1]},\"id\":\"dup\"",
        ));
        for line in &lines {
            let slow = parse_line(line, Some(1)).unwrap();
            let fast = parse_entry(line.clone(), Some(1)).unwrap();
            assert_eq!(
                format!("{:?}", fast.record),
                format!("{:?}", slow.record),
                "{line}"
            );
            assert_eq!(fast.meta.raw.to_value(), slow.raw);
            assert_eq!((fast.meta.size, fast.meta.line), (slow.size, slow.line));
        }
        let bad = EXAMPLE.replace("1500", "-1");
        assert_eq!(
            parse_entry(bad.clone(), None).unwrap_err(),
            (parse_line(&bad, None).unwrap_err(), bad)
        );
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
