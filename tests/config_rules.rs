//! Settings validation: one test per rule of the spec's Configuration Reference.

mod support;

use dbaudit_sentinelone::config::{ConfigError, Scheme, Settings};
use dbaudit_sentinelone::record::{EventCategory, Severity};
use serde_json::json;
use support::{settings, settings_json, TOKEN};

fn errors(extra: serde_json::Value) -> Vec<ConfigError> {
    Settings::from_json(&settings_json(extra)).expect_err("settings should be refused")
}

fn error_for<'a>(errors: &'a [ConfigError], field: &str) -> &'a ConfigError {
    errors
        .iter()
        .find(|e| e.field == field)
        .unwrap_or_else(|| panic!("no error for {field}: {errors:?}"))
}

#[test]
fn defaults_follow_the_spec() {
    let s = settings(json!({ "site_id": null }));
    assert!(s.enabled);
    assert_eq!(s.event_source, "DBaudit");
    assert!(s.custom_detection);
    assert_eq!(s.event_types, EventCategory::ALL.to_vec());
    assert_eq!(s.severity_filter, Severity::ALL.to_vec());
    assert!(s.database_filter.is_empty());
    assert_eq!(
        (s.batch_size, s.flush_interval_seconds, s.retry_attempts),
        (100, 30, 3)
    );
    assert_eq!(s.site_id, None);
    assert_eq!(s.console_url.scheme, Scheme::Https);
    assert_eq!(s.console_url.authority, "usea1.sentinelone.net");
}

#[test]
fn every_required_field_is_reported_at_once() {
    let errs = Settings::from_json("{}").unwrap_err();
    for field in ["name", "console_url", "api_token", "account_id"] {
        assert!(
            error_for(&errs, field).message.contains("required"),
            "{field}: {errs:?}"
        );
    }
}

#[test]
fn provider_defaults_to_sentinelone_and_refuses_others() {
    assert!(Settings::from_json(&settings_json(json!({ "provider": null }))).is_ok());
    assert!(Settings::from_json(&settings_json(json!({ "provider": "SentinelOne" }))).is_ok());
    let errs = errors(json!({ "provider": "splunk" }));
    assert!(error_for(&errs, "provider").message.contains("sentinelone"));
}

#[test]
fn unknown_keys_are_errors_with_a_suggestion() {
    let errs = errors(json!({ "batchsize": 10, "site-id": "1" }));
    assert!(error_for(&errs, "batchsize")
        .message
        .contains("did you mean `batch_size`"));
    assert!(error_for(&errs, "site-id")
        .message
        .contains("did you mean `site_id`"));
}

#[test]
fn console_url_with_trailing_slash_says_the_fix() {
    let errs = errors(json!({ "console_url": "https://usea1.sentinelone.net/" }));
    let msg = &error_for(&errs, "console_url").message;
    assert!(
        msg.contains("trailing slash") && msg.contains("\"https://usea1.sentinelone.net\""),
        "{msg}"
    );
}

#[test]
fn console_url_with_a_path_says_the_fix() {
    let errs = errors(json!({ "console_url": "https://usea1.sentinelone.net/web/api/v2.1" }));
    let msg = &error_for(&errs, "console_url").message;
    assert!(
        msg.contains("path") && msg.contains("\"https://usea1.sentinelone.net\""),
        "{msg}"
    );
}

#[test]
fn console_url_must_be_https_except_loopback() {
    let errs = errors(json!({ "console_url": "http://usea1.sentinelone.net" }));
    assert!(error_for(&errs, "console_url")
        .message
        .contains("https://usea1.sentinelone.net"));
    let errs = errors(json!({ "console_url": "usea1.sentinelone.net" }));
    assert!(error_for(&errs, "console_url").message.contains("https://"));
    for loopback in [
        "http://127.0.0.1:8089",
        "http://localhost:9000",
        "http://[::1]:8089",
    ] {
        let s = settings(json!({ "console_url": loopback }));
        assert_eq!(s.console_url.scheme, Scheme::Http, "{loopback}");
    }
}

#[test]
fn enabled_and_custom_detection_must_be_booleans() {
    let errs = errors(json!({ "enabled": "yes", "custom_detection": 1 }));
    error_for(&errs, "enabled");
    error_for(&errs, "custom_detection");
}

#[test]
fn account_and_site_ids_are_id_strings() {
    let errs = errors(json!({ "account_id": 123456789, "site_id": "98 76/54" }));
    assert!(error_for(&errs, "account_id")
        .message
        .contains("\"123456789\""));
    assert!(error_for(&errs, "site_id")
        .message
        .contains("must be valid if provided"));
    // An empty site_id means "account level".
    assert_eq!(settings(json!({ "site_id": "" })).site_id, None);
}

#[test]
fn event_source_defaults_and_must_be_plain_text() {
    assert_eq!(
        settings(json!({ "event_source": "PgAudit" })).event_source,
        "PgAudit"
    );
    error_for(&errors(json!({ "event_source": "" })), "event_source");
    error_for(&errors(json!({ "event_source": "a\"b" })), "event_source");
}

#[test]
fn event_types_accept_the_spec_values_only() {
    let s = settings(json!({ "event_types": ["alerts", "policy_violations"] }));
    assert_eq!(
        s.event_types,
        vec![EventCategory::Alerts, EventCategory::PolicyViolations]
    );
    let errs = errors(json!({ "event_types": ["alerts", "audit_event"] }));
    assert!(error_for(&errs, "event_types")
        .message
        .contains("\"audit_event\""));
    error_for(&errors(json!({ "event_types": [] })), "event_types");
    error_for(&errors(json!({ "event_types": "alerts" })), "event_types");
    assert_eq!(
        settings(json!({ "event_types": "all" })).event_types,
        EventCategory::ALL.to_vec()
    );
}

#[test]
fn severity_filter_accepts_critical_warning_info() {
    assert_eq!(
        settings(json!({ "severity_filter": ["critical"] })).severity_filter,
        vec![Severity::Critical]
    );
    let errs = errors(json!({ "severity_filter": ["high"] }));
    assert!(error_for(&errs, "severity_filter")
        .message
        .contains("critical, warning, info"));
}

#[test]
fn database_filter_is_a_list_of_names() {
    assert_eq!(
        settings(json!({ "database_filter": ["a", "b"] })).database_filter,
        vec!["a", "b"]
    );
    error_for(
        &errors(json!({ "database_filter": "a" })),
        "database_filter",
    );
    error_for(
        &errors(json!({ "database_filter": [""] })),
        "database_filter",
    );
}

#[test]
fn batch_size_is_1_to_1000() {
    assert_eq!(settings(json!({ "batch_size": 1 })).batch_size, 1);
    assert_eq!(settings(json!({ "batch_size": 1000 })).batch_size, 1000);
    for bad in [json!(0), json!(1001), json!(10.5), json!("100"), json!(-1)] {
        let errs = errors(json!({ "batch_size": bad }));
        assert!(
            error_for(&errs, "batch_size").message.contains("1 to 1000"),
            "{bad}"
        );
    }
}

#[test]
fn flush_interval_is_5_to_300_seconds() {
    assert_eq!(
        settings(json!({ "flush_interval_seconds": 5 })).flush_interval_seconds,
        5
    );
    assert_eq!(
        settings(json!({ "flush_interval_seconds": 300 })).flush_interval_seconds,
        300
    );
    for bad in [4, 301] {
        let errs = errors(json!({ "flush_interval_seconds": bad }));
        assert!(error_for(&errs, "flush_interval_seconds")
            .message
            .contains("5 to 300"));
    }
}

#[test]
fn retry_attempts_is_0_to_10() {
    assert_eq!(settings(json!({ "retry_attempts": 0 })).retry_attempts, 0);
    assert_eq!(settings(json!({ "retry_attempts": 10 })).retry_attempts, 10);
    for bad in [json!(11), json!(-1)] {
        let errs = errors(json!({ "retry_attempts": bad }));
        assert!(error_for(&errs, "retry_attempts")
            .message
            .contains("0 to 10"));
    }
}

#[test]
fn all_errors_come_back_together() {
    let errs = errors(json!({
        "console_url": "https://x.sentinelone.net/",
        "batch_size": 0,
        "retry_attempts": 99,
        "severity_filter": ["loud"],
        "colour": "blue",
    }));
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    for f in [
        "console_url",
        "batch_size",
        "retry_attempts",
        "severity_filter",
        "colour",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
}

#[test]
fn the_token_is_never_echoed() {
    let bad_token = format!("ApiToken {TOKEN}");
    let errs = errors(json!({ "api_token": bad_token, "batch_size": 0 }));
    assert!(error_for(&errs, "api_token")
        .message
        .contains("without \"ApiToken \""));
    for e in &errs {
        assert!(
            !e.message.contains(TOKEN) && !e.field.contains(TOKEN),
            "{e:?}"
        );
    }
    let s = settings(json!({}));
    assert!(
        !format!("{s:?}").contains(TOKEN),
        "Debug of settings shows the token"
    );
}

#[test]
fn settings_must_be_a_json_object() {
    let errs = Settings::from_json("[1,2]").unwrap_err();
    assert_eq!(errs[0].field, "settings");
    let errs = Settings::from_json("{not json").unwrap_err();
    assert_eq!(errs[0].field, "settings");
}
