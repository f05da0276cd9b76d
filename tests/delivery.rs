//! Delivery: request shape, splitting and the size cap, and the retry policy for every status
//! class, against a scripted transport.

mod support;

use dbaudit_sentinelone::deliver::{deliver, Verdict};
use dbaudit_sentinelone::io::{Method, TransportErrorKind};
use dbaudit_sentinelone::payload::{encode, MAX_REQUEST_BYTES};
use dbaudit_sentinelone::policy::{self, BACKOFF_CAP_MS, BACKOFF_MIN_MS};
use serde_json::json;
use support::*;

fn s() -> dbaudit_sentinelone::config::Settings {
    settings(json!({ "batch_size": 1000 }))
}

#[test]
fn posts_data_envelope_with_api_token_to_the_events_path() {
    let mut io = FakeIo::new();
    let verdict = deliver(&s(), &mut io, &records(3), 1);
    assert!(
        matches!(verdict, Verdict::Delivered(ref r) if r.sent == 3),
        "{verdict:?}"
    );
    let post = &io.seen[0];
    assert_eq!(post.method, Method::Post);
    assert_eq!(
        post.url,
        "https://usea1.sentinelone.net/web/api/v2.1/cloud-detection/events"
    );
    assert_eq!(
        post.authorization.as_deref(),
        Some(format!("ApiToken {TOKEN}").as_str())
    );
    let body = post.json();
    assert_eq!(body.as_object().unwrap().len(), 1);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["customFields"]["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["rec-0", "rec-1", "rec-2"]);
}

#[test]
fn at_most_batch_size_events_per_request() {
    let mut io = FakeIo::new();
    let verdict = deliver(
        &settings(json!({ "batch_size": 4 })),
        &mut io,
        &records(10),
        1,
    );
    assert_eq!(verdict.report().sent, 10);
    let sizes: Vec<usize> = io.event_posts().iter().map(|p| p.events().len()).collect();
    assert_eq!(sizes, [4, 4, 2]);
}

#[test]
fn requests_stay_under_the_byte_cap_and_keep_every_event() {
    let settings = s();
    let recs = records(200);
    let max = 4096;
    let encoded = encode(
        &settings,
        recs.iter().enumerate().map(|(i, r)| (i as u32, r)),
        1000,
        max,
    );
    assert!(encoded.rejected.is_empty());
    assert!(encoded.chunks.len() > 1);
    let mut seen = Vec::new();
    for chunk in &encoded.chunks {
        assert!(chunk.body.len() <= max, "{} > {max}", chunk.body.len());
        let body: serde_json::Value = serde_json::from_slice(&chunk.body).unwrap();
        for (event, index) in body["data"].as_array().unwrap().iter().zip(chunk.indices()) {
            assert_eq!(event["customFields"]["event_id"], format!("rec-{index}"));
            seen.push(index);
        }
    }
    assert_eq!(seen, (0..200).collect::<Vec<u32>>());
    const { assert!(MAX_REQUEST_BYTES <= 5_000_000) };
}

#[test]
fn one_oversized_record_is_rejected_alone() {
    let mut recs = records(5);
    recs[2].statement = Some("x".repeat(MAX_REQUEST_BYTES));
    let mut io = FakeIo::new();
    let verdict = deliver(&s(), &mut io, &recs, 1);
    let Verdict::Delivered(report) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(report.sent, 4);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].0, 2);
    assert!(report.rejected[0].1.contains("rec-2") && report.rejected[0].1.contains("request cap"));
    let ids: Vec<String> = io.event_posts()[0]
        .events()
        .iter()
        .map(|e| e["customFields"]["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["rec-0", "rec-1", "rec-3", "rec-4"]);
}

#[test]
fn http_413_splits_and_sends_the_halves() {
    let mut io = FakeIo::new();
    // The console takes at most ~3 events a request.
    let three = request_len(&records(3));
    io.max_body = Some(three + 10);
    let verdict = deliver(&s(), &mut io, &records(10), 1);
    let Verdict::Delivered(report) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(report.sent, 10);
    assert!(report.rejected.is_empty());
    let accepted: usize = io
        .event_posts()
        .iter()
        .filter(|p| p.body.len() <= three + 10)
        .map(|p| p.events().len())
        .sum();
    assert_eq!(accepted, 10);
}

#[test]
fn http_413_on_a_single_event_rejects_only_that_event() {
    let mut io = FakeIo::scripted(vec![status(413, ""), ok()]);
    let mut settings = s();
    settings.batch_size = 1;
    let verdict = deliver(&settings, &mut io, &records(2), 1);
    let Verdict::Delivered(report) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(report.sent, 1);
    assert_eq!(report.rejected.len(), 1);
    assert!(report.rejected[0].1.contains("413"));
}

#[test]
fn http_400_isolates_the_bad_event() {
    // The first request (4 events) is refused; halves: [0,1] refused, [0] ok, [1] refused, [2,3] ok.
    let bad = r#"{"errors":[{"code":400,"title":"data[1].customFields.rows_affected: must be an integer","detail":""}]}"#;
    let mut io = FakeIo::scripted(vec![
        status(400, bad),
        status(400, bad),
        ok(),
        status(400, bad),
        ok(),
    ]);
    let verdict = deliver(&s(), &mut io, &records(4), 1);
    let Verdict::Delivered(report) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(report.sent, 3);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].0, 1);
    assert!(
        report.rejected[0].1.contains("must be an integer"),
        "{}",
        report.rejected[0].1
    );
}

#[test]
fn http_429_honours_retry_after_seconds() {
    let mut io = FakeIo::scripted(vec![with_header(
        429,
        "retry-after",
        "7",
        "<html><head><title>429 Too Many Requests</title></head></html>",
    )]);
    let verdict = deliver(&s(), &mut io, &records(3), 1);
    let Verdict::Retry {
        after_ms,
        pending,
        reason,
        ..
    } = verdict
    else {
        panic!("{verdict:?}")
    };
    assert_eq!(after_ms, 7000);
    assert_eq!(pending, [0, 1, 2]);
    assert!(reason.contains("429"));
}

#[test]
fn http_429_honours_retry_after_http_date() {
    let mut io = FakeIo::scripted(vec![with_header(
        429,
        "Retry-After",
        "Mon, 15 Jan 2024 10:31:00 GMT",
        "",
    )]);
    io.now_ms = 1_705_314_645_000; // 10:30:45.000
    let verdict = deliver(&s(), &mut io, &records(1), 1);
    let Verdict::Retry { after_ms, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(after_ms, 15_000);
}

#[test]
fn http_429_without_retry_after_backs_off() {
    let mut io = FakeIo::scripted(vec![status(429, "")]);
    io.random = 1234;
    let verdict = deliver(&s(), &mut io, &records(1), 1);
    let Verdict::Retry { after_ms, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(after_ms, policy::backoff_ms(1, 1234));
}

#[test]
fn retryable_statuses_and_transport_errors_retry() {
    let cases = vec![
        status(408, ""),
        status(
            500,
            r#"{"timestamp":1,"status":500,"error":"Internal Server Error","path":"/x"}"#,
        ),
        status(502, "Bad Gateway"),
        status(503, ""),
        status(504, ""),
        transport(TransportErrorKind::Connect, "connection refused"),
        transport(TransportErrorKind::Timeout, "no response in time"),
    ];
    for case in cases {
        let label = format!("{case:?}");
        let mut io = FakeIo::scripted(vec![case]);
        let verdict = deliver(&s(), &mut io, &records(2), 1);
        assert!(
            matches!(verdict, Verdict::Retry { ref pending, .. } if pending == &[0, 1]),
            "{label}: {verdict:?}"
        );
    }
}

#[test]
fn server_error_bodies_are_read_leniently() {
    let mut io = FakeIo::scripted(vec![status(502, "Bad Gateway")]);
    let Verdict::Retry { reason, .. } = deliver(&s(), &mut io, &records(1), 1) else {
        panic!()
    };
    assert!(
        reason.contains("502") && reason.contains("Bad Gateway"),
        "{reason}"
    );
    let mut io = FakeIo::scripted(vec![status(
        500,
        r#"{"timestamp":1,"status":500,"error":"Internal Server Error"}"#,
    )]);
    let Verdict::Retry { reason, .. } = deliver(&s(), &mut io, &records(1), 1) else {
        panic!()
    };
    assert!(reason.contains("Internal Server Error"), "{reason}");
}

#[test]
fn backoff_is_exponential_jittered_and_capped() {
    for attempt in 1..20 {
        let ceiling = (1000u64 << (attempt - 1).min(16)).min(BACKOFF_CAP_MS);
        for r in [0u64, 1, 999, 123_456, u64::MAX] {
            let d = policy::backoff_ms(attempt, r);
            assert!(
                (BACKOFF_MIN_MS..=ceiling.max(BACKOFF_MIN_MS)).contains(&d),
                "attempt {attempt} r {r}: {d}"
            );
        }
    }
    assert_eq!(policy::backoff_ms(30, BACKOFF_CAP_MS), BACKOFF_CAP_MS);
}

#[test]
fn client_errors_reject_with_the_troubleshooting_message() {
    let cases = [
        (
            401,
            r#"{"errors":[{"code":4010010,"detail":null,"title":"Authentication Failed"}]}"#,
            "verify the API token is valid and not expired",
        ),
        (
            403,
            r#"{"errors":[{"code":4030010,"detail":null,"title":"Insufficient permissions"}]}"#,
            "Check the account ID in Settings → Account Info",
        ),
        (
            404,
            r#"{"errors":[{"code":4040010,"detail":"","title":"Requested resource was not found"}]}"#,
            "console URL matches your region",
        ),
        (422, "nope", "HTTP 422"),
        (501, "", "501"),
    ];
    for (code, body, needle) in cases {
        let mut io = FakeIo::scripted(vec![status(code, body)]);
        let verdict = deliver(
            &settings(json!({ "batch_size": 2 })),
            &mut io,
            &records(5),
            1,
        );
        let Verdict::Rejected {
            reason,
            records: rejected,
            ..
        } = verdict
        else {
            panic!("{code}: {verdict:?}")
        };
        assert!(reason.contains(needle), "{code}: {reason}");
        // The whole remainder is rejected without hammering the console.
        assert_eq!(rejected, [0, 1, 2, 3, 4]);
        assert_eq!(io.seen.len(), 1, "{code}");
    }
}

#[test]
fn attempts_exhausted_turn_retry_into_reject() {
    let settings = settings(json!({ "retry_attempts": 2 }));
    for attempt in 1..=2 {
        let mut io = FakeIo::scripted(vec![status(503, "")]);
        assert!(
            matches!(
                deliver(&settings, &mut io, &records(1), attempt),
                Verdict::Retry { .. }
            ),
            "attempt {attempt}"
        );
    }
    let mut io = FakeIo::scripted(vec![status(503, "")]);
    let verdict = deliver(&settings, &mut io, &records(1), 3);
    let Verdict::Rejected {
        reason,
        records: rejected,
        ..
    } = verdict
    else {
        panic!("{verdict:?}")
    };
    assert!(
        reason.starts_with("gave up after 2 retries") && reason.contains("503"),
        "{reason}"
    );
    assert_eq!(rejected, [0]);

    let no_retries = dbaudit_sentinelone::config::Settings {
        retry_attempts: 0,
        ..s()
    };
    let mut io = FakeIo::scripted(vec![status(429, "")]);
    assert!(matches!(
        deliver(&no_retries, &mut io, &records(1), 1),
        Verdict::Rejected { .. }
    ));
}

#[test]
fn partial_success_returns_only_the_pending_records() {
    // Three requests of two: the first accepted, the second throttled.
    let mut io = FakeIo::scripted(vec![ok(), with_header(429, "retry-after", "1", "")]);
    let verdict = deliver(
        &settings(json!({ "batch_size": 2 })),
        &mut io,
        &records(6),
        1,
    );
    let Verdict::Retry {
        pending,
        report,
        after_ms,
        ..
    } = verdict
    else {
        panic!("{verdict:?}")
    };
    assert_eq!(pending, [2, 3, 4, 5]);
    assert_eq!(report.sent, 2);
    assert_eq!(after_ms, 1000);
    assert_eq!(io.seen.len(), 2, "stops at the first throttled request");
}

#[test]
fn pending_indices_skip_filtered_records() {
    let mut recs = records(4);
    recs[1].severity = dbaudit_sentinelone::record::Severity::Critical;
    let mut io = FakeIo::scripted(vec![status(503, "")]);
    let verdict = deliver(
        &settings(json!({ "severity_filter": ["info"] })),
        &mut io,
        &recs,
        1,
    );
    let Verdict::Retry {
        pending, report, ..
    } = verdict
    else {
        panic!("{verdict:?}")
    };
    assert_eq!(pending, [0, 2, 3]);
    assert_eq!(report.filtered.total(), 1);
}

#[test]
fn denied_by_the_host_is_rejected_with_the_fix() {
    let mut io = FakeIo::scripted(vec![transport(
        TransportErrorKind::Denied,
        "request denied by the host's allow-list",
    )]);
    let Verdict::Rejected { reason, .. } = deliver(&s(), &mut io, &records(1), 1) else {
        panic!()
    };
    assert!(reason.contains("allow_hosts"), "{reason}");
}

#[test]
fn the_token_never_appears_in_any_message() {
    let responses = vec![
        status(
            401,
            r#"{"errors":[{"code":4010010,"detail":null,"title":"Authentication Failed"}]}"#,
        ),
        status(403, ""),
        status(400, TOKEN),
        status(503, ""),
        with_header(429, "retry-after", "3", ""),
        transport(TransportErrorKind::Connect, "refused"),
    ];
    for response in responses {
        let mut io = FakeIo::scripted(vec![response]);
        let verdict = deliver(&s(), &mut io, &records(1), 1);
        // Even a console that echoes the token back in an error body does not make us print it.
        let text = format!("{verdict:?}\n{}", io.all_logs());
        assert!(!text.contains(TOKEN), "{text}");
    }
    let mut plugin = dbaudit_sentinelone::plugin::Plugin::default();
    let mut io = FakeIo::new().route("/web/api/v2.1/system", 401, "");
    plugin.configure(&settings_json(json!({}))).unwrap();
    let checks = plugin.check_connection(&mut io);
    assert!(!format!("{checks:?}{}", io.all_logs()).contains(TOKEN));
}

#[test]
fn a_slow_console_never_keeps_a_call_past_its_budget() {
    // Each request takes 10 s and the console wants small requests: after the budget the call
    // hands back what is left instead of running into the host's deadline.
    let mut io = FakeIo::new();
    io.request_ms = 10_000;
    let recs = records(3);
    let one = request_len(&recs[..1]);
    io.max_body = Some(one + 10);
    let verdict = deliver(&s(), &mut io, &records(8), 1);
    let Verdict::Retry {
        pending, report, ..
    } = verdict
    else {
        panic!("{verdict:?}")
    };
    // Nothing is lost: what was not accepted yet is pending.
    assert_eq!(report.sent as usize + pending.len(), 8);
    let elapsed = io.seen.len() as u64 * io.request_ms;
    assert!(
        elapsed <= dbaudit_sentinelone::deliver::CALL_BUDGET_MS + io.request_ms,
        "{elapsed} ms"
    );
}

#[test]
fn rules_work_stops_when_the_call_is_old() {
    let mut plugin = dbaudit_sentinelone::plugin::Plugin::default();
    plugin.configure(&settings_json(json!({}))).unwrap();
    let mut io = FakeIo::new();
    io.request_ms = 6_000;
    let batch = vec![record(
        1,
        dbaudit_sentinelone::record::EventKind::AuthFailure,
        dbaudit_sentinelone::record::Severity::Critical,
    )];
    plugin.deliver(&mut io, &batch, 1);
    // One events POST, then at most the rules requests that fit the budget.
    let rules_requests = io.seen.iter().filter(|s| s.url.contains("/rules")).count() as u64;
    assert!(
        rules_requests * io.request_ms
            <= dbaudit_sentinelone::plugin::RULES_AFTER_EVENTS_MS + io.request_ms,
        "{rules_requests}"
    );
    assert!(rules_requests < 4, "{rules_requests}");
}

#[test]
fn tiny_byte_caps_still_encode() {
    let recs = records(3);
    let one = request_len(&recs[..1]);
    let encoded = encode(
        &s(),
        recs.iter().enumerate().map(|(i, r)| (i as u32, r)),
        1000,
        one,
    );
    assert_eq!(encoded.chunks.len(), 3);
    assert!(encoded.rejected.is_empty());
}

/// The size of one request holding `recs`.
fn request_len(recs: &[dbaudit_sentinelone::record::AuditRecord]) -> usize {
    let indexed = recs.iter().enumerate().map(|(i, r)| (i as u32, r));
    encode(&s(), indexed, 1000, usize::MAX).chunks[0].body.len()
}
