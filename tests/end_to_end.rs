//! The built component in the real host against the SentinelOne emulator, over loopback.

mod e2e;

use dbaudit_host::commands::test_connection_to;
use dbaudit_host::RunOptions;
use e2e::*;
use s1_emulator::{Emulator, EmulatorConfig, Fault};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const EVENTS: &str = "/web/api/v2.1/cloud-detection/events";

#[test]
fn the_spec_record_arrives_as_the_spec_event() {
    let w = World::new();
    let mut record = spec_record();
    // The same instant with an offset: it must arrive in UTC.
    record["timestamp"] = json!("2024-01-15T12:30:45.123+02:00");
    w.input(&[record]);
    let summary = run(&w.pipeline(""));
    assert_eq!(
        (summary.read, summary.delivered, summary.dead_lettered),
        (1, 1, 0)
    );
    let expected = json!({
        "eventType": "Custom",
        "eventSource": "DBaudit",
        "eventTime": "2024-01-15T10:30:45.123Z",
        "accountId": "123456789",
        "siteId": "987654321",
        "customFields": {
            "event_type": "audit_event", "severity": "warning", "database": "production-postgres",
            "db_type": "postgresql", "db_host": "db.example.com", "actor_user": "app_user",
            "client_ip": "10.0.1.50", "application": "backend-api", "action_type": "SELECT",
            "object": "customers", "schema": "public", "statement": "SELECT * FROM customers WHERE...",
            "rows_affected": 1500, "contains_pii": true, "data_types": ["email", "phone"],
            "event_id": "evt-0001"
        },
        "description": "Database audit event: SELECT on customers (1500 rows)"
    });
    assert_eq!(w.emulator.events(), vec![expected]);
}

#[test]
fn filters_forward_exactly_the_selected_records() {
    let w = World::new();
    let data = dataset(2_000, 11);
    w.input(&data);
    let settings = r#"event_types = ["alerts", "policy_violations", "audit_events"]
severity_filter = ["critical", "warning"]
database_filter = ["production-postgres", "billing-mysql"]"#;
    let summary = run(&w.pipeline(settings));
    let kinds = [
        "alert",
        "policy_violation",
        "audit_event",
        "auth_success",
        "auth_failure",
    ];
    let (mut by_type, mut by_severity, mut by_database, mut wanted) = (0, 0, 0, Vec::new());
    for r in &data {
        if !kinds.contains(&r["event_type"].as_str().unwrap()) {
            by_type += 1;
        } else if r["severity"] == "info" {
            by_severity += 1;
        } else if !["production-postgres", "billing-mysql"]
            .contains(&r["database"].as_str().unwrap())
        {
            by_database += 1;
        } else {
            wanted.push(r["id"].as_str().unwrap().to_string());
        }
    }
    assert!(by_type > 0 && by_severity > 0 && by_database > 0 && !wanted.is_empty());
    assert_eq!(summary.delivered, wanted.len() as u64);
    assert_eq!(summary.filtered.get("event_type"), Some(&by_type));
    assert_eq!(summary.filtered.get("severity"), Some(&by_severity));
    assert_eq!(summary.filtered.get("database"), Some(&by_database));
    let arrived: Vec<String> = w
        .emulator
        .events()
        .iter()
        .map(|e| e["customFields"]["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(arrived, wanted);
}

#[test]
fn batches_hold_at_most_batch_size_events() {
    let w = World::new();
    w.input(&records(25));
    let summary = run(&w.pipeline("batch_size = 10"));
    assert_eq!(summary.delivered, 25);
    assert_eq!(w.event_requests(), 3);
}

#[test]
fn the_flush_timer_sends_a_partial_batch() {
    let w = World::new();
    w.input(&records(3));
    let pipeline = w.pipeline_to(
        &w.emulator.url(),
        "batch_size = 100\nflush_interval_seconds = 5",
        "follow = true",
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let waiter = std::thread::spawn(move || {
        run_with(
            &pipeline,
            RunOptions {
                shutdown: Some(stopped),
                ..RunOptions::default()
            },
        )
    });
    while w.emulator.events().is_empty() && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = started.elapsed();
    stop.send(true).unwrap();
    let summary = waiter.join().unwrap();
    assert_eq!(w.emulator.events().len(), 3);
    assert_eq!(summary.delivered, 3);
    assert!(
        waited >= Duration::from_millis(4_500) && waited < Duration::from_secs(10),
        "flushed after {waited:?}"
    );
}

#[test]
fn throttling_with_retry_after_waits_then_delivers() {
    let w = World::new();
    w.emulator.script(EVENTS, vec![Fault::throttle("2")]);
    w.input(&records(5));
    let started = Instant::now();
    let summary = run(&w.pipeline(""));
    assert!(
        started.elapsed() >= Duration::from_millis(1_900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((summary.delivered, summary.dead_lettered), (5, 0));
    assert!(summary.retried >= 1);
    assert_eq!(w.emulator.events().len(), 5);
}

#[test]
fn server_errors_then_success() {
    let w = World::new();
    w.emulator
        .script(EVENTS, vec![Fault::status(503), Fault::status(500)]);
    w.input(&records(4));
    let summary = run(&w.pipeline(""));
    assert_eq!((summary.delivered, summary.dead_lettered), (4, 0));
    assert!(summary.retried >= 2);
    assert!(w.emulator.stats().duplicate_event_ids.is_empty());
}

#[test]
fn a_bad_token_is_dead_lettered_with_the_spec_message() {
    let w = World::new();
    w.input(&records(3));
    let pipeline = w.pipeline("");
    let text = std::fs::read_to_string(&pipeline)
        .unwrap()
        .replace(TOKEN, "wrong-token-7e1d");
    std::fs::write(&pipeline, text).unwrap();
    let summary = run(&pipeline);
    assert_eq!((summary.delivered, summary.dead_lettered), (0, 3));
    let letters = w.dead_letters();
    assert_eq!(letters.len(), 3);
    for l in &letters {
        assert!(
            l["reason"]
                .as_str()
                .unwrap()
                .contains("verify the API token is valid and not expired"),
            "{l}"
        );
    }
    let raw = std::fs::read_to_string(w.path("dead-letter.jsonl")).unwrap();
    assert!(
        !raw.contains("wrong-token-7e1d"),
        "the token leaked into the dead letter"
    );
    assert_eq!(letters[0]["record"]["id"], "evt-00000");
}

#[test]
fn payload_too_large_splits_the_request() {
    let w = World::new();
    let one_event = serde_json::to_vec(&json!({"data": [spec_record()]}))
        .unwrap()
        .len();
    // Room for about four events a request.
    w.emulator.set_max_body_bytes(one_event * 4 + 400);
    w.input(&records(20));
    let summary = run(&w.pipeline("batch_size = 20"));
    assert_eq!((summary.delivered, summary.dead_lettered), (20, 0));
    assert_eq!(w.emulator.events().len(), 20);
    assert!(
        w.emulator
            .stats()
            .responses_per_status
            .get(&413)
            .copied()
            .unwrap_or(0)
            >= 1
    );
}

#[test]
fn connection_refused_then_recovered() {
    let w = World::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    w.input(&records(5));
    let pipeline = w.pipeline_to(&url, "retry_attempts = 6", "");
    let runner = std::thread::spawn(move || run(&pipeline));
    std::thread::sleep(Duration::from_millis(1_500));
    let late = Emulator::start_on(
        EmulatorConfig::default(),
        format!("127.0.0.1:{port}").parse().unwrap(),
    )
    .unwrap();
    let summary = runner.join().unwrap();
    assert_eq!((summary.delivered, summary.dead_lettered), (5, 0));
    assert!(summary.retried >= 1);
    assert_eq!(late.events().len(), 5);
}

fn connection_output(
    w: &World,
    settings: &str,
    pipeline_edit: impl Fn(String) -> String,
) -> (i32, String) {
    w.input(&records(1));
    let pipeline = w.pipeline(settings);
    let text = pipeline_edit(std::fs::read_to_string(&pipeline).unwrap());
    std::fs::write(&pipeline, text).unwrap();
    let mut out = Vec::new();
    let code = test_connection_to(&pipeline, &mut out);
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn test_connection_all_good() {
    let w = World::new();
    let (code, out) = connection_output(&w, "", |t| t);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with('✓')).count(),
        4,
        "{out}"
    );
}

#[test]
fn test_connection_bad_token() {
    let w = World::new();
    let (code, out) = connection_output(&w, "", |t| t.replace(TOKEN, "not-a-token"));
    assert_ne!(code, 0);
    assert!(out.contains("✓ console reachable"), "{out}");
    assert!(out.contains("✗ API token valid: Authentication failed (401): verify the API token is valid and not expired"), "{out}");
    assert!(!out.contains("not-a-token"));
}

#[test]
fn test_connection_unknown_account() {
    let w = World::new();
    let (code, out) = connection_output(&w, "", |t| {
        t.replace(
            &format!("account_id = \"{ACCOUNT}\""),
            "account_id = \"555\"",
        )
    });
    assert_ne!(code, 0);
    assert!(out.contains("✗ account exists: Account ID 555 not found. Check the account ID in Settings → Account Info."), "{out}");
}

#[test]
fn test_connection_unknown_site() {
    let w = World::new();
    let (code, out) = connection_output(&w, "", |t| {
        t.replace(&format!("site_id = \"{SITE}\""), "site_id = \"444\"")
    });
    assert_ne!(code, 0);
    assert!(out.contains("✓ account exists"), "{out}");
    assert!(
        out.contains("✗ site exists: Site ID 444 not found")
            && out.contains("must be valid if provided"),
        "{out}"
    );
}

#[test]
fn test_connection_console_url_with_trailing_slash() {
    let w = World::new();
    let url = w.emulator.url();
    let (code, out) = connection_output(&w, "", |t| {
        t.replace(
            &format!("console_url = \"{url}\""),
            &format!("console_url = \"{url}/\""),
        )
    });
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("console_url")
            && out.contains("must not end with a slash")
            && out.contains(&format!("use \"{url}\"")),
        "{out}"
    );
    assert!(out.contains("✗"), "{out}");
}

#[test]
fn the_emulator_judges_the_format_independently() {
    // What the plugin sends passes the emulator's validation; a broken event does not.
    let w = World::new();
    w.input(&records(2));
    run(&w.pipeline(""));
    let stored: Vec<Value> = w.emulator.events();
    assert_eq!(stored.len(), 2);
    let mut broken = stored[0].clone();
    broken["eventTime"] = json!("2024-01-15T12:30:45+02:00");
    let response = raw_post(&w, &json!({ "data": [broken] }));
    assert_eq!(response.0, 400);
    assert!(response.1.contains("data[0].eventTime"), "{}", response.1);
}

fn raw_post(w: &World, body: &Value) -> (u16, String) {
    use std::io::{Read, Write};
    // A tiny HTTP/1.1 client: the test must not share the plugin's HTTP code.
    let mut stream = std::net::TcpStream::connect(w.emulator.addr()).unwrap();
    let body = body.to_string();
    write!(
        stream,
        "POST {EVENTS} HTTP/1.1\r\nHost: {}\r\nAuthorization: ApiToken {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        w.emulator.addr(),
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, text)
}

#[test]
fn a_line_that_is_not_utf8_is_dead_lettered_and_nothing_else_is_lost() {
    let w = World::new();
    let recs = records(3);
    let mut bytes = Vec::new();
    bytes.extend_from_slice(format!("{}\n", recs[0]).as_bytes());
    bytes.extend_from_slice(b"{\"id\":\"\xff\xfe broken\"}\n");
    bytes.extend_from_slice(format!("{}\n{}\n", recs[1], recs[2]).as_bytes());
    std::fs::write(w.path("audit.jsonl"), bytes).unwrap();
    let summary = run(&w.pipeline(""));
    assert_eq!(
        (summary.read, summary.delivered, summary.dead_lettered),
        (4, 3, 1)
    );
    let letters = w.dead_letters();
    assert_eq!(letters[0]["line"], 2);
    assert!(
        letters[0]["reason"].as_str().unwrap().contains("UTF-8"),
        "{}",
        letters[0]
    );
}
