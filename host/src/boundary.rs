//! The host's audit record and its crossing into the component: a batch is turned into the
//! WIT `audit-batch`, where text that repeats from record to record (database, host, user,
//! client, application, action, object, schema, data types) is sent once and referred to by
//! index. Every string crossing the boundary is a call into the component; this keeps it to
//! the few strings unique to each record.

use std::collections::HashMap;

use crate::runtime::{AuditBatch, AuditRecord, EventKind, Severity};

/// One audit record as the host holds it (parsed from input, kept for retries).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: String,
    /// Milliseconds since the Unix epoch, UTC.
    pub timestamp_ms: i64,
    pub event_type: EventKind,
    pub severity: Severity,
    pub database: Option<String>,
    pub db_type: Option<String>,
    pub db_host: Option<String>,
    pub actor_user: Option<String>,
    pub client_ip: Option<String>,
    pub application: Option<String>,
    pub action_type: Option<String>,
    pub object: Option<String>,
    pub schema: Option<String>,
    pub statement: Option<String>,
    pub rows_affected: Option<u64>,
    pub contains_pii: Option<bool>,
    pub data_types: Vec<String>,
    pub session_id: Option<String>,
    /// Unknown input keys as one JSON object text; empty when none.
    pub extra_json: String,
}

/// Builds a batch's text table: each distinct text once, index 0 meaning "absent".
struct Texts<'a> {
    texts: Vec<String>,
    index: HashMap<&'a str, u32>,
}

impl<'a> Texts<'a> {
    fn new() -> Self {
        Texts {
            texts: vec![String::new()],
            index: HashMap::new(),
        }
    }

    fn put(&mut self, text: &'a str) -> u32 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = self.texts.len() as u32;
        self.texts.push(text.to_string());
        self.index.insert(text, i);
        i
    }

    fn opt(&mut self, text: &'a Option<String>) -> u32 {
        text.as_deref().map_or(0, |t| self.put(t))
    }
}

/// The WIT batch for `records` (same order: verdict indices refer to it).
pub fn to_batch(records: &[Record]) -> AuditBatch {
    let mut texts = Texts::new();
    let records = records
        .iter()
        .map(|r| AuditRecord {
            id: r.id.clone(),
            timestamp_ms: r.timestamp_ms,
            event_type: r.event_type,
            severity: r.severity,
            database: texts.opt(&r.database),
            db_type: texts.opt(&r.db_type),
            db_host: texts.opt(&r.db_host),
            actor_user: texts.opt(&r.actor_user),
            client_ip: texts.opt(&r.client_ip),
            application: texts.opt(&r.application),
            action_type: texts.opt(&r.action_type),
            object: texts.opt(&r.object),
            schema: texts.opt(&r.schema),
            statement: r.statement.clone(),
            rows_affected: r.rows_affected,
            contains_pii: r.contains_pii,
            data_types: r.data_types.iter().map(|t| texts.put(t)).collect(),
            session_id: r.session_id.clone(),
            extra_json: (!r.extra_json.is_empty()).then(|| r.extra_json.clone()),
        })
        .collect();
    AuditBatch {
        texts: texts.texts,
        records,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, db: &str, user: Option<&str>) -> Record {
        Record {
            id: id.into(),
            timestamp_ms: 1,
            event_type: EventKind::AuditEvent,
            severity: Severity::Info,
            database: Some(db.into()),
            db_type: None,
            db_host: None,
            actor_user: user.map(Into::into),
            client_ip: None,
            application: None,
            action_type: None,
            object: None,
            schema: None,
            statement: Some(format!("SELECT {id}")),
            rows_affected: None,
            contains_pii: None,
            data_types: vec!["email".into(), db.into()],
            session_id: None,
            extra_json: String::new(),
        }
    }

    #[test]
    fn repeating_text_is_sent_once_and_every_field_resolves() {
        let records = [
            record("a", "prod", Some("app")),
            record("b", "prod", None),
            record("c", "stage", Some("app")),
        ];
        let batch = to_batch(&records);
        assert_eq!(batch.texts, ["", "prod", "app", "email", "stage"]);
        let text = |i: u32| (i != 0).then(|| batch.texts[i as usize].as_str());
        for (wit, host) in batch.records.iter().zip(&records) {
            assert_eq!(wit.id, host.id);
            assert_eq!(text(wit.database), host.database.as_deref());
            assert_eq!(text(wit.actor_user), host.actor_user.as_deref());
            assert_eq!(wit.db_type, 0);
            let types: Vec<&str> = wit.data_types.iter().map(|&i| text(i).unwrap()).collect();
            assert_eq!(types, host.data_types);
            assert_eq!(wit.statement, host.statement);
            assert_eq!(wit.extra_json, None);
        }
    }
}
