//! Shared helpers for the plugin's native tests: a scripted `Io`, sample records and settings.
#![allow(dead_code)]

use dbaudit_sentinelone::config::Settings;
use dbaudit_sentinelone::io::{
    Io, Level, Method, Request, Response, TransportError, TransportErrorKind,
};
use dbaudit_sentinelone::record::{AuditRecord, EventKind, Severity};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::VecDeque;

pub const TOKEN: &str = "s1-secret-token-DO-NOT-LEAK-42";

/// A request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub url: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
    /// The events of an events POST.
    pub fn events(&self) -> Vec<Value> {
        self.json()["data"].as_array().expect("data array").clone()
    }
}

/// Answers requests from a script (then 200 `{}`), records them and every log line.
#[derive(Default)]
pub struct FakeIo {
    pub script: VecDeque<Result<Response, TransportError>>,
    /// Answer by path prefix instead of the script when set.
    pub routes: Vec<(String, Response)>,
    pub seen: Vec<Seen>,
    pub logs: RefCell<Vec<(Level, String)>>,
    pub now_ms: i64,
    pub random: u64,
    /// Reject (413) any body larger than this.
    pub max_body: Option<usize>,
    /// How long each request seems to take (for time budgets).
    pub request_ms: u64,
}

pub fn ok() -> Result<Response, TransportError> {
    status(200, r#"{"data":{"accepted":1}}"#)
}

pub fn status(code: u16, body: &str) -> Result<Response, TransportError> {
    Ok(Response {
        status: code,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    })
}

pub fn with_header(
    code: u16,
    name: &str,
    value: &str,
    body: &str,
) -> Result<Response, TransportError> {
    Ok(Response {
        status: code,
        headers: vec![(name.to_string(), value.to_string())],
        body: body.as_bytes().to_vec(),
    })
}

pub fn transport(kind: TransportErrorKind, message: &str) -> Result<Response, TransportError> {
    Err(TransportError {
        kind,
        message: message.to_string(),
    })
}

impl FakeIo {
    pub fn new() -> Self {
        FakeIo {
            now_ms: 1_705_314_645_123,
            random: u64::MAX,
            ..Default::default()
        }
    }

    pub fn scripted(responses: Vec<Result<Response, TransportError>>) -> Self {
        FakeIo {
            script: responses.into(),
            ..FakeIo::new()
        }
    }

    pub fn route(mut self, path_prefix: &str, code: u16, body: &str) -> Self {
        self.routes.push((
            path_prefix.to_string(),
            Response {
                status: code,
                headers: vec![],
                body: body.as_bytes().to_vec(),
            },
        ));
        self
    }

    /// Everything the plugin said or sent, as text: for secret-leak checks.
    pub fn all_logs(&self) -> String {
        self.logs
            .borrow()
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn event_posts(&self) -> Vec<&Seen> {
        self.seen
            .iter()
            .filter(|s| s.url.ends_with("/cloud-detection/events"))
            .collect()
    }
}

impl Io for FakeIo {
    fn send(&mut self, request: &Request<'_>) -> Result<Response, TransportError> {
        let url = request.console.url(request.path);
        self.seen.push(Seen {
            method: request.method,
            url: url.clone(),
            authorization: request.api_token.map(|t| format!("ApiToken {t}")),
            body: request.body.to_vec(),
        });
        if let Some(max) = self.max_body {
            if request.body.len() > max {
                return status(
                    413,
                    "<html><head><title>413 Request Entity Too Large</title></head></html>",
                );
            }
        }
        if let Some((_, r)) = self
            .routes
            .iter()
            .find(|(p, _)| request.path.starts_with(p.as_str()))
        {
            return Ok(r.clone());
        }
        self.script.pop_front().unwrap_or_else(ok)
    }

    fn random_u64(&mut self) -> u64 {
        self.random
    }

    fn now_ms(&self) -> i64 {
        self.now_ms
    }

    fn monotonic_ms(&self) -> u64 {
        // Each request "takes" `request_ms`.
        self.seen.len() as u64 * self.request_ms
    }

    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }
}

/// Settings JSON with the required fields; `extra` overrides or adds keys.
pub fn settings_json(extra: Value) -> String {
    let mut base = json!({
        "name": "sentinelone-test",
        "provider": "sentinelone",
        "console_url": "https://usea1.sentinelone.net",
        "api_token": TOKEN,
        "account_id": "123456789",
        "site_id": "987654321",
    });
    for (k, v) in extra.as_object().expect("object").clone() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(&k);
        } else {
            base[k] = v;
        }
    }
    base.to_string()
}

pub fn settings(extra: Value) -> Settings {
    Settings::from_json(&settings_json(extra)).expect("valid settings")
}

/// The record of DESIGN.md "The input record" (the spec's example), as the host passes it.
pub fn spec_record() -> AuditRecord {
    AuditRecord {
        database: Some("production-postgres".into()),
        db_type: Some("postgresql".into()),
        db_host: Some("db.example.com".into()),
        actor_user: Some("app_user".into()),
        client_ip: Some("10.0.1.50".into()),
        application: Some("backend-api".into()),
        action_type: Some("SELECT".into()),
        object: Some("customers".into()),
        schema: Some("public".into()),
        statement: Some("SELECT * FROM customers WHERE...".into()),
        rows_affected: Some(1500),
        contains_pii: Some(true),
        data_types: vec!["email".into(), "phone".into()],
        // 2024-01-15T10:30:45.123Z
        ..AuditRecord::new(
            "evt-0001",
            1_705_314_645_123,
            EventKind::AuditEvent,
            Severity::Warning,
        )
    }
}

pub fn record(i: usize, kind: EventKind, severity: Severity) -> AuditRecord {
    AuditRecord {
        database: Some(format!("db-{}", i % 3).into()),
        actor_user: Some(format!("user{}", i % 7).into()),
        client_ip: Some(format!("10.0.{}.{}", i % 5, i % 250).into()),
        action_type: Some("SELECT".into()),
        object: Some("orders".into()),
        statement: Some(format!("SELECT * FROM orders WHERE id = {i}")),
        rows_affected: Some(i as u64),
        contains_pii: Some(i.is_multiple_of(2)),
        ..AuditRecord::new(
            format!("rec-{i}"),
            1_705_314_645_000 + i as i64,
            kind,
            severity,
        )
    }
}

pub fn records(n: usize) -> Vec<AuditRecord> {
    (0..n)
        .map(|i| record(i, EventKind::AuditEvent, Severity::Info))
        .collect()
}
