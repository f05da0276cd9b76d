//! The host's audit record and its crossing into the component: a batch is turned into the
//! WIT `audit-batch`, where text that repeats from record to record (database, host, user,
//! client, application, action, object, schema, data types) is sent once and referred to by
//! index. Every string crossing the boundary is a call into the component; this keeps it to
//! the few strings unique to each record.

use rustc_hash::FxHashMap;

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

/// Builds the WIT batch record by record, moving each record's strings in: repeating text
/// goes into the table once (index 0 meaning "absent"), the rest travels with its record.
#[derive(Debug)]
pub struct BatchBuilder {
    batch: AuditBatch,
    index: FxHashMap<Box<str>, u32>,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder::with_capacity(0)
    }
}

impl BatchBuilder {
    pub fn with_capacity(records: usize) -> Self {
        BatchBuilder {
            batch: AuditBatch {
                texts: vec![String::new()],
                records: Vec::with_capacity(records),
            },
            index: FxHashMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.batch.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.records.is_empty()
    }

    fn text(&mut self, text: String) -> u32 {
        if let Some(&i) = self.index.get(text.as_str()) {
            return i;
        }
        let i = self.batch.texts.len() as u32;
        self.index.insert(text.as_str().into(), i);
        self.batch.texts.push(text);
        i
    }

    fn opt(&mut self, text: Option<String>) -> u32 {
        text.map_or(0, |t| self.text(t))
    }

    pub fn push(&mut self, r: Record) {
        let record = AuditRecord {
            id: r.id,
            timestamp_ms: r.timestamp_ms,
            event_type: r.event_type,
            severity: r.severity,
            database: self.opt(r.database),
            db_type: self.opt(r.db_type),
            db_host: self.opt(r.db_host),
            actor_user: self.opt(r.actor_user),
            client_ip: self.opt(r.client_ip),
            application: self.opt(r.application),
            action_type: self.opt(r.action_type),
            object: self.opt(r.object),
            schema: self.opt(r.schema),
            statement: r.statement,
            rows_affected: r.rows_affected,
            contains_pii: r.contains_pii,
            data_types: r.data_types.into_iter().map(|t| self.text(t)).collect(),
            session_id: r.session_id,
            extra_json: (!r.extra_json.is_empty()).then_some(r.extra_json),
        };
        self.batch.records.push(record);
    }

    pub fn finish(self) -> AuditBatch {
        self.batch
    }
}

/// The WIT batch for `records` (same order: verdict indices refer to it).
pub fn to_batch(records: &[Record]) -> AuditBatch {
    let mut builder = BatchBuilder::with_capacity(records.len());
    for r in records {
        builder.push(r.clone());
    }
    builder.finish()
}

/// The records at `indices` of `batch`, as a batch of their own (for a retry: rare, so it
/// simply shares the whole text table).
pub fn subset(batch: &AuditBatch, indices: &[usize]) -> AuditBatch {
    AuditBatch {
        texts: batch.texts.clone(),
        records: indices.iter().map(|&i| batch.records[i].clone()).collect(),
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
        let again = subset(&batch, &[2]);
        assert_eq!(again.records.len(), 1);
        assert_eq!(again.records[0].id, "c");
        assert_eq!(again.texts, batch.texts);
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
