//! The connection test, the hunting queries and the detection rules.

mod support;

use dbaudit_sentinelone::connection::{
    check_connection, ACCOUNT_EXISTS, CONSOLE_REACHABLE, SITE_EXISTS, TOKEN_VALID,
};
use dbaudit_sentinelone::io::{Method, TransportErrorKind};
use dbaudit_sentinelone::plugin::Plugin;
use dbaudit_sentinelone::queries::hunting_queries;
use dbaudit_sentinelone::record::{EventKind, Severity};
use dbaudit_sentinelone::rules::{all_rules, create_body, exfiltration_rule, EXFILTRATION_RULE};
use serde_json::json;
use support::*;

const STATUS_OK: &str = r#"{"data":{"health":"ok"}}"#;
const INFO_OK: &str = r#"{"data":{"build":"1","version":"24.1.2","release":"1","patch":"0","latestAgentVersion":"24.1"}}"#;
const ACCOUNT_OK: &str = r#"{"data":[{"id":"123456789","name":"DB Audit Demo","state":"active"}],"pagination":{"totalItems":1,"nextCursor":null}}"#;
const SITE_OK: &str = r#"{"data":{"allSites":{"totalLicenses":0,"activeLicenses":0},"sites":[{"id":"987654321","name":"Default site","accountId":"123456789","state":"active"}]},"pagination":{"totalItems":1,"nextCursor":null}}"#;
const EMPTY_LIST: &str = r#"{"data":[],"pagination":{"totalItems":0,"nextCursor":null}}"#;
const AUTH_FAILED: &str =
    r#"{"errors":[{"code":4010010,"detail":null,"title":"Authentication Failed"}]}"#;

fn healthy() -> FakeIo {
    FakeIo::new()
        .route("/web/api/v2.1/system/status", 200, STATUS_OK)
        .route("/web/api/v2.1/system/info", 200, INFO_OK)
        .route("/web/api/v2.1/accounts", 200, ACCOUNT_OK)
        .route("/web/api/v2.1/sites", 200, SITE_OK)
}

#[test]
fn all_checks_pass_against_a_healthy_console() {
    let mut io = healthy();
    let checks = check_connection(&settings(json!({})), &mut io);
    let names: Vec<&str> = checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [CONSOLE_REACHABLE, TOKEN_VALID, ACCOUNT_EXISTS, SITE_EXISTS]
    );
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    // status needs no auth; the others carry the token.
    assert_eq!(io.seen[0].authorization, None);
    assert!(io.seen[1..].iter().all(|s| s.authorization.is_some()));
    assert!(io.seen[2].url.ends_with("/accounts?accountIds=123456789"));
    assert!(io.seen[3].url.contains("siteIds=987654321"));
}

#[test]
fn no_site_check_without_site_id() {
    let checks = check_connection(&settings(json!({ "site_id": null })), &mut healthy());
    assert_eq!(checks.len(), 3);
}

#[test]
fn bad_token_fails_with_the_spec_message() {
    let mut io = FakeIo::new()
        .route("/web/api/v2.1/system/status", 200, STATUS_OK)
        .route("/web/api/v2.1/", 401, AUTH_FAILED);
    let checks = check_connection(&settings(json!({})), &mut io);
    assert!(checks[0].ok);
    assert!(!checks[1].ok);
    assert!(
        checks[1]
            .message
            .contains("Verify the API token is valid and not expired")
            || checks[1]
                .message
                .contains("verify the API token is valid and not expired")
    );
}

#[test]
fn unknown_account_and_site_say_where_to_look() {
    let mut io = FakeIo::new()
        .route("/web/api/v2.1/system/status", 200, STATUS_OK)
        .route("/web/api/v2.1/system/info", 200, INFO_OK)
        .route("/web/api/v2.1/accounts", 200, EMPTY_LIST)
        .route(
            "/web/api/v2.1/sites",
            200,
            r#"{"data":{"allSites":{},"sites":[]},"pagination":{"totalItems":0}}"#,
        );
    let checks = check_connection(&settings(json!({})), &mut io);
    assert!(
        !checks[2].ok && checks[2].message.contains("Settings → Account Info"),
        "{:?}",
        checks[2]
    );
    assert!(
        !checks[3].ok && checks[3].message.contains("must be valid if provided"),
        "{:?}",
        checks[3]
    );
}

#[test]
fn unreachable_console_points_at_the_url() {
    let mut io = FakeIo::scripted(vec![transport(
        TransportErrorKind::Connect,
        "connection refused",
    )]);
    let checks = check_connection(&settings(json!({})), &mut io);
    assert!(!checks[0].ok);
    assert!(
        checks[0].message.contains("matches your region"),
        "{}",
        checks[0].message
    );
}

#[test]
fn the_seven_spec_queries_with_the_configured_source() {
    let qs = hunting_queries(&settings(json!({})), &[]);
    let s1ql: Vec<&str> = qs.iter().map(|q| q.s1ql.as_str()).collect();
    let base = "EventType = \"Custom\" AND EventSource = \"DBaudit\"";
    assert_eq!(
        s1ql,
        [
            base.to_string(),
            format!("{base} AND CustomFields.severity = \"critical\""),
            format!("{base} AND CustomFields.action_type = \"SELECT\" AND CustomFields.rows_affected > 10000"),
            format!("{base} AND CustomFields.actor_user = \"app_user\""),
            format!("{base} AND CustomFields.event_type = \"auth_failure\""),
            format!("{base} AND CustomFields.contains_pii = true"),
            "EventType IN (\"Custom\", \"Process\") AND ((EventSource = \"DBaudit\" AND CustomFields.client_ip = \"10.0.1.50\") OR (SourceIP = \"10.0.1.50\"))".to_string(),
        ]
    );
    assert!(qs
        .iter()
        .all(|q| !q.title.is_empty() && !q.description.is_empty() && !q.powerquery.is_empty()));
}

#[test]
fn query_parameters_replace_the_spec_literals_and_are_quoted() {
    let given = vec![
        ("client_ip".to_string(), "192.168.1.9".to_string()),
        ("actor_user".to_string(), "ev\"il".to_string()),
    ];
    let qs = hunting_queries(&settings(json!({ "event_source": "PgAudit" })), &given);
    let user = qs.iter().find(|q| q.id == "user_activity").unwrap();
    assert!(
        user.s1ql.contains("EventSource = \"PgAudit\"")
            && user.s1ql.contains("CustomFields.actor_user = \"ev\\\"il\""),
        "{}",
        user.s1ql
    );
    let corr = qs.iter().find(|q| q.id == "endpoint_correlation").unwrap();
    assert_eq!(corr.s1ql.matches("192.168.1.9").count(), 2);
    assert_eq!(
        corr.parameters,
        vec![("client_ip", "192.168.1.9".to_string())]
    );
}

#[test]
fn the_exfiltration_rule_is_the_spec_rule() {
    let s = settings(json!({ "site_id": null }));
    let rule = exfiltration_rule(&s);
    assert_eq!(rule.name, "DB Audit - Suspicious Data Exfiltration");
    assert_eq!(rule.severity, "High");
    assert_eq!(
        rule.s1ql,
        "EventType = \"Custom\" AND EventSource = \"DBaudit\" AND CustomFields.action_type = \"SELECT\" AND CustomFields.rows_affected > 10000 AND CustomFields.contains_pii = true"
    );
    for needle in [
        "Collection (TA0009)",
        "T1213",
        "actor_user",
        "database",
        "client_ip",
        "rows_affected",
    ] {
        assert!(rule.description.contains(needle), "{needle}");
    }
    let body = create_body(&s, &rule);
    assert_eq!(body["filter"], json!({ "accountIds": ["123456789"] }));
    let data = &body["data"];
    assert_eq!(
        (
            data["status"].as_str(),
            data["expirationMode"].as_str(),
            data["queryType"].as_str()
        ),
        (Some("Active"), Some("Permanent"), Some("events"))
    );
    assert_eq!(data["treatAsThreat"], "UNDEFINED");
    // A site, when set, scopes the rule.
    assert_eq!(
        create_body(&settings(json!({})), &rule)["filter"],
        json!({ "siteIds": ["987654321"] })
    );
}

#[test]
fn no_rules_without_custom_detection() {
    assert!(all_rules(&settings(json!({ "custom_detection": false }))).is_empty());
    assert_eq!(all_rules(&settings(json!({}))).len(), 6);
}

#[test]
fn rules_are_ensured_once_after_critical_events_even_after_a_5xx() {
    let mut plugin = Plugin::default();
    plugin.configure(&settings_json(json!({}))).unwrap();
    let mut io = FakeIo::new().route("/web/api/v2.1/cloud-detection/rules?", 200, EMPTY_LIST);
    // The first rules POST fails with a 503: the events still go out.
    io.script = vec![ok(), status(503, "Service Unavailable")].into();
    let batch = vec![record(1, EventKind::AuthFailure, Severity::Critical)];
    let verdict = plugin.deliver(&mut io, &batch, 1);
    assert_eq!(verdict.report().sent, 1);
    let posts = |io: &FakeIo| {
        io.seen
            .iter()
            .filter(|s| s.method == Method::Post && s.url.ends_with("/rules"))
            .count()
    };
    // The exfiltration rule failed; the auth_failure rule did not wait for it.
    assert_eq!(posts(&io), 2);
    plugin.deliver(&mut io, &batch, 1);
    assert_eq!(posts(&io), 2, "the failed rule waits out its back-off");
    // After the back-off the failed rule is created; then nothing more is created.
    io.now_ms += dbaudit_sentinelone::rules::RETRY_LATER_MS + 1;
    plugin.deliver(&mut io, &batch, 1);
    let created: Vec<String> = io
        .seen
        .iter()
        .filter(|s| s.method == Method::Post && s.url.ends_with("/rules"))
        .map(|s| s.json()["data"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        created,
        [
            EXFILTRATION_RULE,
            "DB Audit - Critical Authentication Failure",
            EXFILTRATION_RULE
        ]
    );
    plugin.deliver(&mut io, &batch, 1);
    assert_eq!(posts(&io), 3);
}
