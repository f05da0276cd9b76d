//! Real HTTP over loopback against `Emulator::start`.

use s1_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Fault, TokenScope};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOKEN: &str = "s1-demo-token";
const API: &str = "/web/api/v2.1";

const UNAUTHORIZED: &str =
    r#"{"errors":[{"code":4010010,"detail":null,"title":"Authentication Failed"}]}"#;
const FORBIDDEN: &str =
    r#"{"errors":[{"code":4030010,"detail":null,"title":"Insufficient permissions"}]}"#;
const NOT_FOUND: &str =
    r#"{"errors":[{"code":4040010,"detail":"","title":"Requested resource was not found"}]}"#;
const NGINX_429: &str = "<html><head><title>429 Too Many Requests</title></head><body><center><h1>429 Too Many Requests</h1></center><hr><center>nginx</center></body></html>";

struct Resp {
    status: u16,
    body: String,
    content_type: String,
    retry_after: Option<String>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    /// The 400 error titles.
    fn titles(&self) -> Vec<String> {
        assert_eq!(self.status, 400, "{}", self.body);
        self.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["code"], 400);
                assert_eq!(e["detail"], "");
                e["title"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

/// A fresh agent per call: no pooled connection, so no client-side retry hides a reset.
fn send(
    emu: &EmulatorHandle,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<Resp, Box<ureq::Transport>> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let url = if path.starts_with('/') {
        format!("{}{path}", emu.url())
    } else {
        format!("{}{API}/{path}", emu.url())
    };
    let mut req = agent
        .request(method, &url)
        .set("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.set("Authorization", &format!("ApiToken {t}"));
    }
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => return Err(Box::new(t)),
    };
    let status = resp.status();
    let content_type = resp.header("content-type").unwrap_or("").to_string();
    let retry_after = resp.header("retry-after").map(String::from);
    let body = resp.into_string().unwrap();
    Ok(Resp {
        status,
        body,
        content_type,
        retry_after,
    })
}

fn get(emu: &EmulatorHandle, path: &str, token: Option<&str>) -> Resp {
    send(emu, "GET", path, token, None).unwrap()
}

fn post(emu: &EmulatorHandle, path: &str, token: Option<&str>, body: &Value) -> Resp {
    send(emu, "POST", path, token, Some(&body.to_string())).unwrap()
}

fn start() -> EmulatorHandle {
    Emulator::start(EmulatorConfig::default()).unwrap()
}

/// The spec's "Event Format" example, verbatim.
fn spec_event() -> Value {
    json!({
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
            "data_types": ["email", "phone"]
        },
        "description": "Database audit event: SELECT on customers (1500 rows)"
    })
}

fn event_with(cf: Value) -> Value {
    let mut e = spec_event();
    for (k, v) in cf.as_object().unwrap() {
        e["customFields"][k] = v.clone();
    }
    e
}

// ---- system, auth, accounts, sites ----

#[test]
fn status_needs_no_auth() {
    let emu = start();
    let r = get(&emu, "system/status", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"data": {"health": "ok"}}));
    assert!(r.content_type.starts_with("application/json"));
}

#[test]
fn info_needs_auth() {
    let emu = start();
    let r = get(&emu, "system/info", Some(TOKEN));
    assert_eq!(r.status, 200);
    for k in ["build", "version", "release", "patch", "latestAgentVersion"] {
        assert!(r.json()["data"][k].is_string(), "{k}");
    }
    let r = get(&emu, "system/info", None);
    assert_eq!((r.status, r.body.as_str()), (401, UNAUTHORIZED));
}

#[test]
fn exact_error_bodies() {
    let emu = start();
    let r = get(&emu, "accounts", Some("wrong-token"));
    assert_eq!((r.status, r.body.as_str()), (401, UNAUTHORIZED));
    let r = get(&emu, "nope/nothing", Some(TOKEN));
    assert_eq!((r.status, r.body.as_str()), (404, NOT_FOUND));
    let r = get(&emu, "/web/api/v2.0/accounts", Some(TOKEN));
    assert_eq!((r.status, r.body.as_str()), (404, NOT_FOUND));
    // Bearer is not the console's scheme.
    let r = send(&emu, "GET", "accounts", None, None).unwrap();
    assert_eq!(r.status, 401);
}

#[test]
fn forbidden_outside_scope() {
    let cfg = EmulatorConfig::default()
        .with_account("555", "Other")
        .with_site("556", "555", "Other site");
    let emu = Emulator::start(cfg).unwrap();
    let mut ev = spec_event();
    ev["accountId"] = json!("555");
    ev["siteId"] = json!("556");
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [ev]}),
    );
    assert_eq!((r.status, r.body.as_str()), (403, FORBIDDEN));
    let rule = json!({"data": rule_data("r"), "filter": {"accountIds": ["555"]}});
    let r = post(&emu, "cloud-detection/rules", Some(TOKEN), &rule);
    assert_eq!((r.status, r.body.as_str()), (403, FORBIDDEN));
    assert!(emu.events().is_empty() && emu.rules().is_empty());
    // Out-of-scope accounts are simply not listed.
    let r = get(&emu, "accounts?accountIds=555", Some(TOKEN));
    assert_eq!(r.json()["data"], json!([]));
}

#[test]
fn accounts_by_id() {
    let emu = start();
    let r = get(&emu, "accounts?accountIds=123456789", Some(TOKEN));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["data"][0]["id"], "123456789");
    assert_eq!(v["data"][0]["name"], "DB Audit Demo");
    assert_eq!(v["data"][0]["state"], "active");
    assert_eq!(
        v["pagination"],
        json!({"totalItems": 1, "nextCursor": null})
    );
    let r = get(&emu, "accounts?accountIds=000", Some(TOKEN));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"], json!([]));
    assert_eq!(r.json()["pagination"]["totalItems"], 0);
    let r = get(&emu, "accounts?limit=0", Some(TOKEN));
    assert!(r.titles()[0].starts_with("limit:"));
}

#[test]
fn sites_shape() {
    let emu = start();
    let r = get(
        &emu,
        "sites?siteIds=987654321&accountIds=123456789",
        Some(TOKEN),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(v["data"]["allSites"]["totalLicenses"].is_number());
    assert!(v["data"]["allSites"]["activeLicenses"].is_number());
    let site = &v["data"]["sites"][0];
    assert_eq!(site["id"], "987654321");
    assert_eq!(site["accountId"], "123456789");
    assert_eq!(site["state"], "active");
    assert_eq!(v["pagination"]["totalItems"], 1);
    let r = get(&emu, "sites?siteIds=1", Some(TOKEN));
    assert_eq!(r.json()["data"]["sites"], json!([]));
}

// ---- events ----

#[test]
fn events_accepted_and_stored() {
    let emu = start();
    let body = json!({"data": [spec_event(), event_with(json!({"event_id": "e2"}))]});
    let r = post(&emu, "cloud-detection/events", Some(TOKEN), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"data": {"accepted": 2}}));
    assert_eq!(emu.events(), body["data"].as_array().unwrap().clone());
    let stats = emu.stats();
    assert_eq!(stats.accepted_events, 2);
    assert_eq!(
        stats.requests_per_path[&format!("{API}/cloud-detection/events")],
        1
    );
    assert_eq!(stats.responses_per_status[&200], 1);
    // The control API sees the same.
    let c = get(&emu, "/_emulator/events", None).json();
    assert_eq!(c["data"], body["data"]);
}

#[test]
fn spec_examples_accepted() {
    let emu = start();
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [spec_event()]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The spec's curl example.
    let curl = r#"{
"data": [{
"eventType": "Custom",
"eventSource": "DBaudit",
"customFields": {"test": "event"}
}]
}"#;
    let r = send(
        &emu,
        "POST",
        "cloud-detection/events",
        Some(TOKEN),
        Some(curl),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(emu.events().len(), 2);
}

#[test]
fn offset_event_time_rejected_and_nothing_stored() {
    let emu = start();
    let mut bad = spec_event();
    bad["eventTime"] = json!("2024-01-15T10:30:45+02:00");
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [bad]}),
    );
    let titles = r.titles();
    assert_eq!(titles.len(), 1);
    assert!(titles[0].starts_with("data[0].eventTime: "), "{titles:?}");
    assert!(emu.events().is_empty());
    // Atomic: one bad event among good ones stores nothing.
    let mut bad = spec_event();
    bad["eventTime"] = json!("2024-01-15T10:30:45Z");
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [spec_event(), spec_event(), bad]}),
    );
    assert!(r.titles()[0].starts_with("data[2].eventTime"));
    assert!(emu.events().is_empty());
    assert_eq!(emu.stats().accepted_events, 0);
}

#[test]
fn wrong_custom_field_types_rejected() {
    let emu = start();
    let cases = [
        (
            json!({"rows_affected": "1500"}),
            "data[0].customFields.rows_affected",
        ),
        (
            json!({"rows_affected": -3}),
            "data[0].customFields.rows_affected",
        ),
        (
            json!({"contains_pii": "true"}),
            "data[0].customFields.contains_pii",
        ),
        (
            json!({"data_types": "email"}),
            "data[0].customFields.data_types",
        ),
        (json!({"severity": "high"}), "data[0].customFields.severity"),
        (
            json!({"event_type": "audit_events"}),
            "data[0].customFields.event_type",
        ),
        (json!({"database": 5}), "data[0].customFields.database"),
        (json!({"extra": null}), "data[0].customFields.extra"),
        (json!({"extra": {"a": 1}}), "data[0].customFields.extra"),
    ];
    for (cf, field) in cases {
        let r = post(
            &emu,
            "cloud-detection/events",
            Some(TOKEN),
            &json!({"data": [event_with(cf.clone())]}),
        );
        let titles = r.titles();
        assert!(
            titles.len() == 1 && titles[0].starts_with(&format!("{field}: ")),
            "{cf}: {titles:?}"
        );
    }
    // Every problem is listed.
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [event_with(json!({"rows_affected": "x", "contains_pii": 1}))]}),
    );
    assert_eq!(r.titles().len(), 2);
    assert!(emu.events().is_empty());
    // Extra scalar and array-of-scalar keys are fine.
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [event_with(json!({"extra": 1.5, "tags": ["a", 1, true]}))]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn unknown_fields_and_bad_bodies_rejected() {
    let emu = start();
    let mut ev = spec_event();
    ev["severity"] = json!("warning");
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [ev]}),
    );
    assert_eq!(r.titles(), ["data[0].severity: unknown field"]);
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": []}),
    );
    assert!(r.titles()[0].starts_with("data:"));
    let r = send(
        &emu,
        "POST",
        "cloud-detection/events",
        Some(TOKEN),
        Some("{not json"),
    )
    .unwrap();
    assert!(r.titles()[0].contains("invalid JSON"));
    let mut ev = spec_event();
    ev["eventType"] = json!("custom");
    ev.as_object_mut().unwrap().remove("eventSource");
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [ev]}),
    );
    assert_eq!(r.titles().len(), 2);
    let mut ev = spec_event();
    ev["accountId"] = json!("42");
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [ev]}),
    );
    assert!(r.titles()[0].starts_with("data[0].accountId"));
    assert!(emu.events().is_empty());
}

#[test]
fn validation_can_be_switched_off() {
    let emu = start();
    let r = post(&emu, "/_emulator/config", None, &json!({"validate": false}));
    assert_eq!(r.json()["data"]["validate"], false);
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [{"anything": 1}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn body_above_limit_is_413() {
    let emu = Emulator::start(EmulatorConfig::default().max_body_bytes(2048)).unwrap();
    let mut ev = spec_event();
    ev["customFields"]["statement"] = json!("x".repeat(4096));
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [ev]}),
    );
    assert_eq!(r.status, 413);
    assert!(r.content_type.starts_with("text/html"));
    assert!(r.body.contains("413 Request Entity Too Large"));
    assert!(emu.events().is_empty());
    // Raised through the control API, the same body passes.
    post(
        &emu,
        "/_emulator/config",
        None,
        &json!({"max_body_bytes": 1 << 20}),
    );
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [ev]}),
    );
    assert_eq!(r.status, 200);
    // And the default (5 MiB) rejects 6 MB.
    let emu = start();
    ev["customFields"]["statement"] = json!("x".repeat(6_000_000));
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [ev]}),
    );
    assert_eq!(r.status, 413);
}

#[test]
fn duplicate_event_ids_counted() {
    let emu = start();
    let ev = event_with(json!({"event_id": "same"}));
    for _ in 0..3 {
        post(
            &emu,
            "cloud-detection/events",
            Some(TOKEN),
            &json!({"data": [ev]}),
        );
    }
    assert_eq!(emu.stats().duplicate_event_ids, ["same"]);
    let s = get(&emu, "/_emulator/stats", None).json();
    assert_eq!(s["data"]["duplicate_event_ids"], json!(["same"]));
    assert_eq!(s["data"]["accepted_events"], 3);
    post(&emu, "/_emulator/reset", None, &json!({}));
    assert_eq!(emu.stats().accepted_events, 0);
    assert!(emu.events().is_empty());
}

// ---- faults ----

#[test]
fn scripted_429_with_retry_after_then_success() {
    let emu = start();
    let r = post(
        &emu,
        "/_emulator/faults",
        None,
        &json!({"path": "/web/api/v2.1/cloud-detection/events",
                "faults": [{"status": 429, "retry_after": "2"},
                           {"status": 429, "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT"},
                           {"status": 503, "body": "Service Unavailable"}]}),
    );
    assert_eq!(r.json()["data"]["queued"], 3);
    let body = json!({"data": [spec_event()]});
    let r = post(&emu, "cloud-detection/events", Some(TOKEN), &body);
    assert_eq!((r.status, r.body.as_str()), (429, NGINX_429));
    assert_eq!(r.retry_after.as_deref(), Some("2"));
    assert!(r.content_type.starts_with("text/html"));
    let r = post(&emu, "cloud-detection/events", Some(TOKEN), &body);
    assert_eq!(
        r.retry_after.as_deref(),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    let r = post(&emu, "cloud-detection/events", Some(TOKEN), &body);
    assert_eq!((r.status, r.body.as_str()), (503, "Service Unavailable"));
    assert!(emu.events().is_empty());
    let r = post(&emu, "cloud-detection/events", Some(TOKEN), &body);
    assert_eq!(r.status, 200);
    assert_eq!(emu.events().len(), 1);
    let stats = emu.stats();
    assert_eq!(stats.responses_per_status[&429], 2);
    assert_eq!(stats.responses_per_status[&503], 1);
    assert_eq!(stats.responses_per_status[&200], 1);
}

#[test]
fn scripted_5xx_bodies_and_auth_faults() {
    let emu = start();
    emu.script(
        "cloud-detection/events",
        vec![Fault::status(502), Fault::status(500), Fault::status(401)],
    );
    let body = json!({"data": [spec_event()]});
    let r = post(&emu, "cloud-detection/events", Some(TOKEN), &body);
    assert_eq!((r.status, r.body.as_str()), (502, "Bad Gateway"));
    let r = post(&emu, "cloud-detection/events", Some(TOKEN), &body);
    let v = r.json();
    assert_eq!(
        (v["status"].clone(), v["error"].clone()),
        (json!(500), json!("Internal Server Error"))
    );
    assert_eq!(v["path"], format!("{API}/cloud-detection/events"));
    let r = post(&emu, "cloud-detection/events", Some(TOKEN), &body);
    assert_eq!((r.status, r.body.as_str()), (401, UNAUTHORIZED));
    assert!(emu.events().is_empty());
}

#[test]
fn reset_fault_gives_connection_error() {
    let emu = start();
    emu.script("cloud-detection/events", vec![Fault::reset()]);
    let body = json!({"data": [spec_event()]}).to_string();
    let err = send(
        &emu,
        "POST",
        "cloud-detection/events",
        Some(TOKEN),
        Some(&body),
    );
    assert!(err.is_err(), "expected a transport error");
    assert!(emu.events().is_empty());
    assert_eq!(emu.stats().responses_per_status[&0], 1);
    let r = send(
        &emu,
        "POST",
        "cloud-detection/events",
        Some(TOKEN),
        Some(&body),
    )
    .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn delay_fault_then_normal_processing() {
    let emu = start();
    post(
        &emu,
        "/_emulator/faults",
        None,
        &json!({"path": "system/status", "faults": [{"delay_ms": 300}]}),
    );
    let t = Instant::now();
    let r = get(&emu, "system/status", None);
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let r = post(
        &emu,
        "/_emulator/faults",
        None,
        &json!({"path": "x", "faults": [{"stauts": 1}]}),
    );
    assert_eq!(r.status, 400);
}

// ---- rules ----

fn rule_data(name: &str) -> Value {
    json!({"name": name, "description": "Detects queries returning large amounts of sensitive data",
           "severity": "High", "expirationMode": "Permanent", "queryType": "events", "status": "Active",
           "s1ql": "EventType = \"Custom\" AND EventSource = \"DBaudit\" AND CustomFields.action_type = \"SELECT\" AND CustomFields.rows_affected > 10000 AND CustomFields.contains_pii = true",
           "queryLang": "1.0", "treatAsThreat": "UNDEFINED", "networkQuarantine": false})
}

#[test]
fn rules_create_and_get_by_name() {
    let emu = start();
    let name = "DB Audit - Suspicious Data Exfiltration";
    let body = json!({"data": rule_data(name), "filter": {"accountIds": ["123456789"]}});
    let r = post(&emu, "cloud-detection/rules", Some(TOKEN), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json()["data"].clone();
    for k in ["id", "createdAt", "updatedAt", "creator"] {
        assert!(d[k].is_string(), "{k}");
    }
    assert_eq!(d["scope"], "account");
    assert_eq!(d["scopeId"], "123456789");
    assert_eq!(d["status"], "Active");
    assert_eq!(d["severity"], "High");
    // The reference's working body (site scope, Draft).
    let live = json!({"data":{"name":"my-star-rule","description":"optional","severity":"Low","expirationMode":"Permanent","queryType":"events","status":"Draft","s1ql":"EventType = \"Process Creation\" AND ProcessName = \"suspicious.exe\"","treatAsThreat":"UNDEFINED","networkQuarantine":false},"filter":{"siteIds":["987654321"]}});
    let r = post(&emu, "cloud-detection/rules", Some(TOKEN), &live);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["scope"], "site");

    let q = format!("cloud-detection/rules?name={}", name.replace(' ', "%20"));
    let r = get(&emu, &q, Some(TOKEN));
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["id"], d["id"]);
    assert_eq!(v["pagination"]["totalItems"], 1);
    let r = get(&emu, "cloud-detection/rules?name=nothing", Some(TOKEN));
    assert_eq!(r.json()["data"], json!([]));
    let r = get(&emu, "cloud-detection/rules?siteIds=987654321", Some(TOKEN));
    assert_eq!(r.json()["data"][0]["name"], "my-star-rule");

    // Duplicates are allowed, as on the real API, and visible in stats.
    post(&emu, "cloud-detection/rules", Some(TOKEN), &body);
    assert_eq!(emu.rules().len(), 3);
    assert_eq!(emu.stats().duplicate_rule_names, [name]);
    assert_eq!(
        get(&emu, &q, Some(TOKEN)).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Disable, then enable.
    let filter = json!({"filter": {"ids": [d["id"]]}}).to_string();
    let r = send(
        &emu,
        "PUT",
        "cloud-detection/rules/disable",
        Some(TOKEN),
        Some(&filter),
    )
    .unwrap();
    assert_eq!(r.json(), json!({"data": {"affected": 1}}));
    assert_eq!(emu.rules()[0]["status"], "Disabled");
    let r = send(
        &emu,
        "PUT",
        "cloud-detection/rules/enable",
        Some(TOKEN),
        Some(&filter),
    )
    .unwrap();
    assert_eq!(r.json()["data"]["affected"], 1);
    assert_eq!(emu.rules()[0]["status"], "Active");
}

#[test]
fn rules_unknown_field_and_bad_enums() {
    let emu = start();
    let mut data = rule_data("r");
    data["activeResponse"] = json!(true);
    let r = post(
        &emu,
        "cloud-detection/rules",
        Some(TOKEN),
        &json!({"data": data, "filter": {"accountIds": ["123456789"]}}),
    );
    assert_eq!(r.titles(), ["Unknown field: activeResponse"]);
    let mut data = rule_data("r");
    data["severity"] = json!("HIGH");
    data["treatAsThreat"] = Value::Null;
    data.as_object_mut().unwrap().remove("queryType");
    let r = post(
        &emu,
        "cloud-detection/rules",
        Some(TOKEN),
        &json!({"data": data, "filter": {"accountIds": ["123456789"]}}),
    );
    let titles = r.titles();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(titles.iter().any(|t| t.starts_with("data.severity:")));
    assert!(titles.iter().any(|t| t.starts_with("data.treatAsThreat:")));
    assert!(titles.iter().any(|t| t == "data.queryType: required"));
    let r = post(
        &emu,
        "cloud-detection/rules",
        Some(TOKEN),
        &json!({"data": rule_data("r")}),
    );
    assert!(r.titles()[0].starts_with("filter:"));
    let mut data = rule_data("r");
    data["s1ql"] = json!("EventType = ");
    let r = post(
        &emu,
        "cloud-detection/rules",
        Some(TOKEN),
        &json!({"data": data, "filter": {"siteIds": ["987654321"]}}),
    );
    assert!(r.titles()[0].starts_with("data.s1ql:"));
    assert!(emu.rules().is_empty());
}

// ---- Deep Visibility ----

/// The spec's "Deep Visibility Queries", comments removed.
const SPEC_QUERIES: [&str; 7] = [
    r#"EventType = "Custom" AND EventSource = "DBaudit""#,
    r#"EventType = "Custom" AND EventSource = "DBaudit" AND CustomFields.severity = "critical""#,
    "EventType = \"Custom\" AND EventSource = \"DBaudit\"\nAND CustomFields.action_type = \"SELECT\"\nAND CustomFields.rows_affected > 10000",
    "EventType = \"Custom\" AND EventSource = \"DBaudit\"\nAND CustomFields.actor_user = \"app_user\"",
    "EventType = \"Custom\" AND EventSource = \"DBaudit\"\nAND CustomFields.event_type = \"auth_failure\"",
    "EventType = \"Custom\" AND EventSource = \"DBaudit\"\nAND CustomFields.contains_pii = true",
    "EventType IN (\"Custom\", \"Process\")\nAND (\n(EventSource = \"DBaudit\" AND CustomFields.client_ip = \"10.0.1.50\")\nOR (SourceIP = \"10.0.1.50\")\n)",
];

fn dv_query(emu: &EmulatorHandle, query: &str, extra: Value) -> Vec<Value> {
    let mut body = json!({"query": query, "fromDate": "2024-01-01T00:00:00.000Z",
                          "toDate": "2030-01-01T00:00:00.000Z"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = post(emu, "dv/init-query", Some(TOKEN), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["data"]["queryId"].as_str().unwrap().to_string();
    let s = get(emu, &format!("dv/query-status?queryId={id}"), Some(TOKEN)).json();
    assert_eq!(s["data"]["responseState"], "FINISHED");
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("dv/events?queryId={id}&limit=2");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let v = get(emu, &path, Some(TOKEN)).json();
        out.extend(v["data"].as_array().unwrap().iter().cloned());
        match v["pagination"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                assert_eq!(v["pagination"]["totalItems"], out.len());
                return out;
            }
        }
    }
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e["customFields"]["event_id"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

#[test]
fn dv_spec_queries_return_exactly_the_matching_events() {
    let emu = start();
    let mk = |id: &str, cf: Value| {
        let mut e = event_with(cf);
        e["customFields"]["event_id"] = json!(id);
        e
    };
    let mut other_source = mk("other", json!({}));
    other_source["eventSource"] = json!("OtherTool");
    let events = json!({"data": [
        mk("spec", json!({})),                                                     // warning, app_user, 1500 rows, pii, 10.0.1.50
        mk("crit", json!({"severity": "critical", "actor_user": "dba", "contains_pii": false, "client_ip": "10.0.9.9"})),
        mk("big", json!({"rows_affected": 15000, "actor_user": "etl", "client_ip": "10.0.2.2"})),
        mk("bigupd", json!({"action_type": "UPDATE", "rows_affected": 20000, "actor_user": "etl", "contains_pii": false})),
        mk("authfail", json!({"event_type": "auth_failure", "action_type": "LOGIN", "actor_user": "mallory",
                              "rows_affected": 0, "contains_pii": false, "client_ip": "203.0.113.5"})),
        other_source,
    ]});
    let r = post(&emu, "cloud-detection/events", Some(TOKEN), &events);
    assert_eq!(r.status, 200, "{}", r.body);
    // Without eventTime the arrival time is used.
    let r = post(
        &emu,
        "cloud-detection/events",
        Some(TOKEN),
        &json!({"data": [{"eventType": "Custom", "eventSource": "DBaudit",
                          "customFields": {"event_id": "notime", "severity": "critical", "contains_pii": true}}]}),
    );
    assert_eq!(r.status, 200);

    let want: [&[&str]; 7] = [
        &["spec", "crit", "big", "bigupd", "authfail", "notime"],
        &["crit", "notime"],
        &["big"],
        &["spec"],
        &["authfail"],
        &["spec", "big", "notime"],
        &["spec", "bigupd"],
    ];
    for (q, want) in SPEC_QUERIES.iter().zip(want) {
        assert_eq!(ids(&dv_query(&emu, q, json!({}))), want, "{q}");
    }
    // The spec's rule query.
    let rule = "EventType = \"Custom\"\nAND EventSource = \"DBaudit\"\nAND CustomFields.action_type = \"SELECT\"\nAND CustomFields.rows_affected > 10000\nAND CustomFields.contains_pii = true";
    assert_eq!(ids(&dv_query(&emu, rule, json!({}))), ["big"]);

    // The DV view.
    let spec = &dv_query(&emu, r#"CustomFields.event_id = "spec""#, json!({}))[0];
    assert_eq!(spec["eventType"], "Custom");
    assert_eq!(spec["eventSource"], "DBaudit");
    assert_eq!(spec["eventTime"], "2024-01-15T10:30:45.123Z");
    assert_eq!(spec["accountId"], "123456789");
    assert_eq!(spec["accountName"], "DB Audit Demo");
    assert_eq!(spec["siteId"], "987654321");
    assert_eq!(spec["customFields"]["rows_affected"], 1500);
    assert!(spec["id"].is_string() && spec["createdAt"].is_string());

    // Dates, account filter, other operators.
    let q = SPEC_QUERIES[0];
    let narrow =
        json!({"fromDate": "2024-01-15T00:00:00.000Z", "toDate": "2024-01-16T00:00:00.000Z"});
    assert_eq!(dv_query(&emu, q, narrow).len(), 5);
    assert_eq!(
        dv_query(&emu, q, json!({"accountIds": ["123456789"]})).len(),
        6
    );
    assert_eq!(
        dv_query(&emu, q, json!({"siteIds": ["987654321"]})).len(),
        5
    );
    assert_eq!(dv_query(&emu, q, json!({"limit": 2})).len(), 2);
    let q = r#"CustomFields.actor_user ContainsCIS "ET" OR (CustomFields.actor_user StartsWithCIS "MAL" AND NOT CustomFields.contains_pii = true)"#;
    assert_eq!(
        ids(&dv_query(&emu, q, json!({}))),
        ["big", "bigupd", "authfail"]
    );
    let q = r#"CustomFields.event_id IN ("spec", "crit") AND CustomFields.rows_affected <= 1500 AND CustomFields.data_types EXISTS"#;
    assert_eq!(ids(&dv_query(&emu, q, json!({}))), ["spec", "crit"]);
}

#[test]
fn dv_errors() {
    let emu = start();
    let r = post(
        &emu,
        "dv/init-query",
        Some(TOKEN),
        &json!({"query": "EventType = = \"x\"", "fromDate": "2024-01-01T00:00:00.000Z", "toDate": "2024-01-02T00:00:00.000Z"}),
    );
    assert!(r.titles()[0].starts_with("query: S1QL syntax error at position"));
    let r = post(
        &emu,
        "dv/init-query",
        Some(TOKEN),
        &json!({"query": "a = 1", "fromDate": "yesterday", "toDate": 5, "color": "red"}),
    );
    assert_eq!(r.titles().len(), 3);
    // Dates are optional.
    let r = post(
        &emu,
        "dv/init-query",
        Some(TOKEN),
        &json!({"query": "a = 1"}),
    );
    assert_eq!(r.status, 200);
    let r = get(&emu, "dv/query-status?queryId=nope", Some(TOKEN));
    assert!(r.titles()[0].starts_with("queryId:"));
    let r = post(&emu, "dv/init-query", None, &json!({}));
    assert_eq!(r.status, 401);
    let id = {
        let body = json!({"query": "a = 1", "fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-01-02T00:00:00Z"});
        post(&emu, "dv/init-query", Some(TOKEN), &body).json()["data"]["queryId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let r = get(
        &emu,
        &format!("dv/events?queryId={id}&limit=1001"),
        Some(TOKEN),
    );
    assert!(r.titles()[0].starts_with("limit:"));
}

// ---- rate limits ----

#[test]
fn rate_limits_when_enabled() {
    let emu = start();
    for _ in 0..5 {
        assert_eq!(get(&emu, "system/status", None).status, 200);
    }
    let emu = Emulator::start(EmulatorConfig::default().rate_limits(true)).unwrap();
    let codes: Vec<u16> = (0..3)
        .map(|_| get(&emu, "system/status", None).status)
        .collect();
    assert_eq!(codes[2], 429, "{codes:?}");
    let r = get(&emu, "system/status", None);
    assert_eq!((r.status, r.body.as_str()), (429, NGINX_429));
    assert!(r.content_type.starts_with("text/html"));
    // dv/init-query: 1 per minute per token.
    let body = json!({"query": "a = 1", "fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-01-02T00:00:00Z"});
    assert_eq!(post(&emu, "dv/init-query", Some(TOKEN), &body).status, 200);
    assert_eq!(post(&emu, "dv/init-query", Some(TOKEN), &body).status, 429);
}

#[test]
fn token_scoped_to_one_site_only() {
    let cfg = EmulatorConfig::default().with_token(
        "site-token",
        TokenScope {
            account_ids: vec![],
            site_ids: vec!["987654321".into()],
        },
    );
    let emu = Emulator::start(cfg).unwrap();
    let mut ev = spec_event();
    ev.as_object_mut().unwrap().remove("accountId");
    let r = post(
        &emu,
        "cloud-detection/events",
        Some("site-token"),
        &json!({"data": [ev]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &emu,
        "cloud-detection/events",
        Some("site-token"),
        &json!({"data": [spec_event()]}),
    );
    assert_eq!((r.status, r.body.as_str()), (403, FORBIDDEN));
}

#[test]
fn works_inside_another_runtime_and_shuts_down() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(async {
        let emu = start();
        let url = emu.url();
        let r = tokio::task::spawn_blocking(move || {
            let r = get(&emu, "system/status", None).status;
            emu.shutdown();
            r
        })
        .await
        .unwrap();
        assert_eq!(r, 200);
        url
    });
    assert!(ureq::get(&format!("{url}{API}/system/status"))
        .call()
        .is_err());
}
