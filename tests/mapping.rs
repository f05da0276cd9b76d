//! The event format: the spec's example record becomes the spec's example event, exactly.

mod support;

use dbaudit_sentinelone::deliver::{deliver, Verdict};
use dbaudit_sentinelone::event::write_event;
use dbaudit_sentinelone::filter::FilterReason;
use dbaudit_sentinelone::record::{AuditRecord, EventKind, Severity};
use serde_json::{json, Value};
use support::{settings, spec_record, FakeIo};

fn event_of(record: &AuditRecord, extra: Value) -> Value {
    let mut buf = Vec::new();
    write_event(&mut buf, &settings(extra), record).expect("maps");
    serde_json::from_slice(&buf).expect("valid JSON")
}

/// The spec's "Event Format" example, plus event_id.
#[test]
fn golden_spec_record_maps_to_spec_event() {
    let expected = json!({
        "eventType": "Custom",
        "eventSource": "DBaudit",
        "eventTime": "2024-01-15T10:30:45.123Z",
        "accountId": "123456789",
        "siteId": "987654321",
        "customFields": {
            "event_type": "audit_event",
            "severity": "warning",
            "database": "production-postgres",
            "db_type": "postgresql",
            "db_host": "db.example.com",
            "actor_user": "app_user",
            "client_ip": "10.0.1.50",
            "application": "backend-api",
            "action_type": "SELECT",
            "object": "customers",
            "schema": "public",
            "statement": "SELECT * FROM customers WHERE...",
            "rows_affected": 1500,
            "contains_pii": true,
            "data_types": ["email", "phone"],
            "event_id": "evt-0001"
        },
        "description": "Database audit event: SELECT on customers (1500 rows)"
    });
    assert_eq!(event_of(&spec_record(), json!({})), expected);
}

#[test]
fn event_time_is_utc_millis_whatever_the_offset() {
    // 2024-01-15T12:30:45.1+02:00 arrives from the host as epoch millis.
    let mut r = spec_record();
    r.timestamp_ms = 1_705_314_645_100;
    assert_eq!(
        event_of(&r, json!({}))["eventTime"],
        "2024-01-15T10:30:45.100Z"
    );
}

#[test]
fn site_id_is_omitted_when_not_configured() {
    let e = event_of(&spec_record(), json!({ "site_id": null }));
    assert!(e.get("siteId").is_none());
    assert_eq!(e["accountId"], "123456789");
}

#[test]
fn event_source_comes_from_settings() {
    assert_eq!(
        event_of(&spec_record(), json!({ "event_source": "PgAudit" }))["eventSource"],
        "PgAudit"
    );
}

#[test]
fn a_description_per_event_type() {
    let mut r = spec_record();
    let cases = [
        (
            EventKind::AuditEvent,
            "Database audit event: SELECT on customers (1500 rows)",
        ),
        (
            EventKind::Alert,
            "Database alert (warning): SELECT on customers (1500 rows) by app_user",
        ),
        (
            EventKind::AiDetection,
            "AI detection: anomalous SELECT on customers (1500 rows) by app_user",
        ),
        (
            EventKind::PolicyViolation,
            "Policy violation: SELECT on customers (1500 rows) by app_user",
        ),
        (
            EventKind::ClassificationFinding,
            "Classification finding: email, phone in customers (production-postgres)",
        ),
        (
            EventKind::AuthSuccess,
            "Database login succeeded: app_user from 10.0.1.50 to production-postgres",
        ),
        (
            EventKind::AuthFailure,
            "Database login failed: app_user from 10.0.1.50 to production-postgres",
        ),
    ];
    for (kind, text) in cases {
        r.event_type = kind;
        let e = event_of(&r, json!({}));
        assert_eq!(e["description"], text, "{kind:?}");
        assert_eq!(e["customFields"]["event_type"], kind.as_str());
    }
}

#[test]
fn storyline_and_mitre_fields() {
    let mut r = spec_record();
    r.session_id = Some("sess-77".into());
    r.event_type = EventKind::AuthFailure;
    let f = &event_of(&r, json!({}))["customFields"];
    assert_eq!(f["session_id"], "sess-77");
    assert_eq!(f["mitre_tactic"], "Credential Access (TA0006)");
    assert_eq!(f["mitre_technique"], "Brute Force (T1110)");

    // The spec's exfiltration pattern carries Collection / T1213.
    let mut r = spec_record();
    r.rows_affected = Some(15_000);
    let f = &event_of(&r, json!({}))["customFields"];
    assert_eq!(f["mitre_tactic"], "Collection (TA0009)");
    assert_eq!(
        f["mitre_technique"],
        "Data from Information Repositories (T1213)"
    );
    // A plain audit event carries none.
    assert!(event_of(&spec_record(), json!({}))["customFields"]
        .get("mitre_tactic")
        .is_none());
}

#[test]
fn missing_fields_are_left_out_and_text_is_escaped() {
    let mut r = AuditRecord::new("x\"1", 0, EventKind::AuditEvent, Severity::Info);
    r.statement = Some("SELECT '\n\"quoted\"\\' -- ✓".into());
    let e = event_of(&r, json!({}));
    let f = e["customFields"].as_object().unwrap();
    assert_eq!(f.len(), 4, "{f:?}"); // event_type, severity, statement, event_id
    assert_eq!(f["statement"], "SELECT '\n\"quoted\"\\' -- ✓");
    assert_eq!(f["event_id"], "x\"1");
    assert_eq!(
        e["description"],
        "Database audit event: activity on unknown database"
    );
}

#[test]
fn extra_input_fields_are_forwarded_without_overriding_known_ones() {
    let mut r = spec_record();
    r.extra_json = r#"{"tenant":"acme","query_ms":12.5,"tags":["a","b"],"ctx":{"k":1},"gone":null,"severity":"info","rows":[{"id":1}],"maybe":[1,null]}"#.into();
    let f = event_of(&r, json!({}))["customFields"].clone();
    assert_eq!(f["tenant"], "acme");
    assert_eq!(f["query_ms"], 12.5);
    assert_eq!(f["tags"], json!(["a", "b"]));
    assert_eq!(f["ctx"], "{\"k\":1}");
    assert_eq!(f["rows"], "[{\"id\":1}]");
    assert_eq!(f["maybe"], "[1,null]");
    assert!(f.get("gone").is_none());
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["input_severity"], "info");
}

// ---- filters ------------------------------------------------------------------------------------

fn filtered(extra: Value, batch: &[AuditRecord]) -> (u32, Vec<(FilterReason, u32)>, usize) {
    let mut io = FakeIo::new();
    let verdict = deliver(&settings(extra), &mut io, batch, 1);
    let Verdict::Delivered(report) = verdict else {
        panic!("{verdict:?}")
    };
    let sent_events: usize = io.event_posts().iter().map(|s| s.events().len()).sum();
    (report.sent, report.filtered.iter().collect(), sent_events)
}

fn mixed_batch() -> Vec<AuditRecord> {
    let mut out = Vec::new();
    for (i, kind) in EventKind::ALL.into_iter().enumerate() {
        for severity in Severity::ALL {
            let mut r = spec_record();
            r.id = format!("{i}-{severity:?}");
            r.event_type = kind;
            r.severity = severity;
            r.database = Some(if i % 2 == 0 { "prod" } else { "staging" }.into());
            out.push(r);
        }
    }
    out // 21 records
}

#[test]
fn disabled_sends_nothing_and_filters_everything() {
    let (sent, reasons, events) = filtered(json!({ "enabled": false }), &mixed_batch());
    assert_eq!((sent, events), (0, 0));
    assert_eq!(reasons, vec![(FilterReason::Disabled, 21)]);
}

#[test]
fn event_types_filter_counts_logins_as_audit_events() {
    let (sent, reasons, events) =
        filtered(json!({ "event_types": ["audit_events"] }), &mixed_batch());
    // audit_event, auth_success, auth_failure x 3 severities.
    assert_eq!((sent, events), (9, 9));
    assert_eq!(reasons, vec![(FilterReason::EventType, 12)]);
}

#[test]
fn severity_filter() {
    let (sent, reasons, _) = filtered(
        json!({ "severity_filter": ["critical", "warning"] }),
        &mixed_batch(),
    );
    assert_eq!(sent, 14);
    assert_eq!(reasons, vec![(FilterReason::Severity, 7)]);
}

#[test]
fn database_filter_and_counts_per_reason() {
    let (sent, reasons, _) = filtered(
        json!({ "database_filter": ["prod"], "severity_filter": ["critical"] }),
        &mixed_batch(),
    );
    // prod: kinds 0,2,4,6 -> 4 critical records.
    assert_eq!(sent, 4);
    assert_eq!(
        reasons,
        vec![(FilterReason::Severity, 14), (FilterReason::Database, 3)]
    );
}
