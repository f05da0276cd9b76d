//! What a response means: delivered, retry (and when), split, or reject (and why).
//!
//! Retry 408, 429 and 5xx except 501, and connection failures, with capped exponential backoff
//! and full jitter; honour `Retry-After` (seconds or HTTP date). Split on 413. Other 4xx are
//! not retried: they get a message from the spec's troubleshooting.

use crate::io::{Response, TransportError, TransportErrorKind};

/// First backoff step and cap.
pub const BACKOFF_BASE_MS: u64 = 1_000;
pub const BACKOFF_CAP_MS: u64 = 60_000;
/// Never retry sooner than this, even when jitter rolls zero.
pub const BACKOFF_MIN_MS: u64 = 100;
/// A Retry-After longer than this is clamped: an hour-long stall is worse than a retry.
pub const RETRY_AFTER_CAP_MS: u64 = 15 * 60_000;

pub const UNAUTHORIZED: &str =
    "Authentication failed (401): verify the API token is valid and not expired. Tokens may need to be regenerated periodically.";
pub const WRONG_CONSOLE: &str = "Wrong console URL: ensure the console URL matches your region (e.g. https://usea1.sentinelone.net). The URL should not include trailing slashes or paths.";
pub const NOT_FOUND: &str = "Not found (404): the console has no such API path. Ensure the console URL matches your region (e.g. https://usea1.sentinelone.net); the URL should not include trailing slashes or paths.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again later. `after_ms` is None when the caller should back off.
    Retry {
        after_ms: Option<u64>,
        reason: String,
    },
    /// The request was too large: send its halves.
    Split {
        reason: String,
    },
    /// Per-event problem (400): halve to find the bad event, reject it alone.
    BadRequest {
        reason: String,
    },
    /// Nothing sent this way will succeed (401, 403, 404...): reject it and what is left.
    Reject {
        reason: String,
    },
}

/// Classifies one events POST.
pub fn classify(result: &Result<Response, TransportError>, now_ms: i64, scope: &str) -> Outcome {
    let response = match result {
        Ok(r) => r,
        Err(e) => return classify_transport(e),
    };
    let status = response.status;
    let detail = error_detail(&response.body);
    match status {
        200..=299 => Outcome::Delivered,
        429 => Outcome::Retry {
            after_ms: response.header("retry-after").and_then(|v| parse_retry_after(v, now_ms)),
            reason: "SentinelOne throttled the request (429 Too Many Requests)".into(),
        },
        408 => Outcome::Retry { after_ms: None, reason: "the console timed out reading the request (408)".into() },
        413 => Outcome::Split { reason: "the request was too large for SentinelOne (413 Payload Too Large)".into() },
        400 => Outcome::BadRequest { reason: format!("SentinelOne rejected the event (400){}", suffix(&detail)) },
        401 => Outcome::Reject { reason: UNAUTHORIZED.into() },
        403 => Outcome::Reject {
            reason: format!(
                "Insufficient permissions (403){}: the API token's user needs event ingestion permissions for {scope}. Check the account ID in Settings → Account Info; the site ID is optional but must be valid if provided.",
                suffix(&detail)
            ),
        },
        404 => Outcome::Reject { reason: NOT_FOUND.into() },
        501 => Outcome::Reject { reason: format!("the console does not implement event ingestion (501){}", suffix(&detail)) },
        500..=599 => Outcome::Retry {
            after_ms: None,
            reason: format!("SentinelOne server error ({status}){}", suffix(&detail)),
        },
        _ => Outcome::Reject { reason: format!("SentinelOne answered HTTP {status}{}", suffix(&detail)) },
    }
}

fn suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

pub fn classify_transport(e: &TransportError) -> Outcome {
    match e.kind {
        TransportErrorKind::Denied => Outcome::Reject {
            reason: format!(
                "the pipeline host refused the outbound request ({}): allow the console's host in [sink] allow_hosts or fix console_url",
                e.message
            ),
        },
        TransportErrorKind::Tls => {
            Outcome::Reject { reason: format!("TLS failure talking to the console ({}). {WRONG_CONSOLE}", e.message) }
        }
        TransportErrorKind::Dns => Outcome::Retry {
            after_ms: None,
            reason: format!("could not resolve the console's name ({}). {WRONG_CONSOLE}", e.message),
        },
        TransportErrorKind::Timeout => {
            Outcome::Retry { after_ms: None, reason: format!("the request to the console timed out ({})", e.message) }
        }
        TransportErrorKind::Connect | TransportErrorKind::Other => {
            Outcome::Retry { after_ms: None, reason: format!("could not reach the console ({})", e.message) }
        }
    }
}

/// The wait before retry number `attempt` (1 = first retry): full jitter over a capped
/// exponential, at least `BACKOFF_MIN_MS`.
pub fn backoff_ms(attempt: u32, random: u64) -> u64 {
    let exp = attempt.saturating_sub(1).min(16);
    let ceiling = BACKOFF_BASE_MS
        .saturating_mul(1u64 << exp)
        .min(BACKOFF_CAP_MS);
    (random % (ceiling + 1)).max(BACKOFF_MIN_MS)
}

/// `Retry-After` as delay-seconds or an HTTP date, in milliseconds from `now_ms`.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let value = value.trim();
    let ms = if let Ok(secs) = value.parse::<u64>() {
        secs.saturating_mul(1000)
    } else {
        let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        date.timestamp_millis().saturating_sub(now_ms).max(0) as u64
    };
    Some(ms.min(RETRY_AFTER_CAP_MS))
}

/// The useful part of an error body, whatever its shape: SentinelOne's `{"errors":[...]}`,
/// a Spring-style `{"error":..}`, an HTML page's title, or short plain text.
pub fn error_detail(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(errors) = value.get("errors").and_then(|e| e.as_array()) {
            let parts: Vec<String> = errors
                .iter()
                .filter_map(|e| {
                    let title = e.get("title").and_then(|t| t.as_str()).unwrap_or("").trim();
                    let detail = e
                        .get("detail")
                        .and_then(|t| t.as_str())
                        .unwrap_or("")
                        .trim();
                    match (title.is_empty(), detail.is_empty()) {
                        (true, true) => None,
                        (false, true) => Some(title.to_string()),
                        (true, false) => Some(detail.to_string()),
                        (false, false) => Some(format!("{title} ({detail})")),
                    }
                })
                .collect();
            if !parts.is_empty() {
                return Some(clip(&parts.join("; ")));
            }
        }
        for key in ["error", "message", "title"] {
            if let Some(s) = value.get(key).and_then(|v| v.as_str()) {
                return Some(clip(s));
            }
        }
        return Some(clip(text));
    }
    if let Some(start) = text.find("<title>") {
        let rest = &text[start + 7..];
        if let Some(end) = rest.find("</title>") {
            return Some(clip(rest[..end].trim()));
        }
    }
    if text.starts_with('<') {
        return None;
    }
    Some(clip(text))
}

/// Error text goes into logs and dead letters: keep it to one short line.
fn clip(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}
