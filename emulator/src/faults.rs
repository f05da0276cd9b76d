//! Scripted misbehaviour: per-path queues of faults, consumed one per request.

use crate::errors::{self, Reply, HTML, JSON, TEXT};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

pub const API_PREFIX: &str = "/web/api/v2.1/";

/// One scripted answer. `status` answers that status without touching state; `delay_ms`
/// waits first (alone: then normal processing); `reset` drops the connection unanswered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `Retry-After` header value, sent verbatim (seconds or an HTTP date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// Overrides the realistic default body for `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    /// Only requests with this method (e.g. "POST") consume the fault; others pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Process the request normally (state changes happen), then answer `status` anyway:
    /// a lost answer, as when a load balancer fails after the console did the work.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_processing: bool,
}

impl Fault {
    pub fn status(status: u16) -> Fault {
        Fault {
            status: Some(status),
            ..Fault::default()
        }
    }
    /// 429 with a `Retry-After` header.
    pub fn throttle(retry_after: impl Into<String>) -> Fault {
        Fault {
            status: Some(429),
            retry_after: Some(retry_after.into()),
            ..Fault::default()
        }
    }
    pub fn delay(ms: u64) -> Fault {
        Fault {
            delay_ms: Some(ms),
            ..Fault::default()
        }
    }
    pub fn reset() -> Fault {
        Fault {
            reset: true,
            ..Fault::default()
        }
    }
    /// Applies only to requests with `method`.
    pub fn for_method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_ascii_uppercase());
        self
    }
    /// Does the work, then answers the fault's status (the client sees a failure).
    pub fn after_processing(mut self) -> Fault {
        self.after_processing = true;
        self
    }
    pub fn with_body(mut self, body: impl Into<String>) -> Fault {
        self.body = Some(body.into());
        self
    }

    /// The reply for a status fault (None when the fault has no status).
    pub(crate) fn reply(&self, path: &str) -> Option<Reply> {
        let status = self.status?;
        let mut reply = match (&self.body, status) {
            (Some(body), _) => {
                let t = body.trim_start();
                let ct = if t.starts_with('<') {
                    HTML
                } else if serde_json::from_str::<serde_json::Value>(t).is_ok() {
                    JSON
                } else {
                    TEXT
                };
                Reply::new(status, ct, body.clone())
            }
            (None, 401) => errors::unauthorized(),
            (None, 403) => errors::forbidden(),
            (None, 404) => errors::not_found(),
            (None, 400) => errors::bad_request1("Bad Request (scripted fault)"),
            (None, 413 | 429) => errors::nginx_page(status),
            (None, 500) => errors::internal_error(path),
            (None, s) => Reply::new(s, TEXT, errors::reason(s)),
        };
        reply.status = status;
        if let Some(ra) = &self.retry_after {
            reply = reply.with_header("retry-after", ra);
        }
        Some(reply)
    }
}

/// `cloud-detection/events` and `/web/api/v2.1/cloud-detection/events` name the same path;
/// `*` matches any API path (consulted after the exact path's queue).
pub fn normalize_path(path: &str) -> String {
    let p = path.trim().trim_end_matches('/');
    if p == "*" || p.starts_with('/') {
        p.to_string()
    } else {
        format!("{API_PREFIX}{p}")
    }
}

#[derive(Debug, Default)]
pub(crate) struct FaultQueues {
    queues: BTreeMap<String, VecDeque<Fault>>,
}

impl FaultQueues {
    pub fn push(&mut self, path: &str, faults: Vec<Fault>) -> usize {
        let q = self.queues.entry(normalize_path(path)).or_default();
        q.extend(faults);
        q.len()
    }

    /// The next fault for a request, if any; a fault for another method stays queued.
    pub fn pop(&mut self, path: &str, method: &str) -> Option<Fault> {
        let path = normalize_path(path);
        for key in [path.as_str(), "*"] {
            let Some(queue) = self.queues.get_mut(key) else {
                continue;
            };
            let applies = |f: &Fault| {
                f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
            };
            if let Some(i) = queue.iter().position(applies) {
                return queue.remove(i);
            }
        }
        None
    }

    pub fn pending(&self) -> BTreeMap<String, Vec<Fault>> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, q)| (k.clone(), q.iter().cloned().collect()))
            .collect()
    }

    pub fn clear(&mut self) {
        self.queues.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_consume_in_order_with_wildcard_last() {
        let mut q = FaultQueues::default();
        q.push(
            "cloud-detection/events",
            vec![Fault::status(503), Fault::delay(1)],
        );
        q.push("*", vec![Fault::reset()]);
        let p = "/web/api/v2.1/cloud-detection/events";
        assert_eq!(q.pop(p, "POST"), Some(Fault::status(503)));
        assert_eq!(q.pop(&format!("{p}/"), "POST"), Some(Fault::delay(1)));
        assert_eq!(q.pop(p, "POST"), Some(Fault::reset()));
        assert_eq!(q.pop(p, "POST"), None);
    }

    #[test]
    fn method_specific_faults_wait_for_their_method() {
        let mut q = FaultQueues::default();
        q.push(
            "cloud-detection/rules",
            vec![Fault::status(503).for_method("post")],
        );
        let p = "/web/api/v2.1/cloud-detection/rules";
        assert_eq!(q.pop(p, "GET"), None);
        assert_eq!(
            q.pop(p, "POST"),
            Some(Fault::status(503).for_method("POST"))
        );
        assert_eq!(q.pop(p, "POST"), None);
    }

    #[test]
    fn realistic_bodies() {
        let r = Fault::throttle("2").reply("/x").unwrap();
        assert_eq!((r.status, r.content_type), (429, HTML));
        assert!(r
            .body
            .starts_with("<html><head><title>429 Too Many Requests</title>"));
        assert_eq!(r.headers, [("retry-after".to_string(), "2".to_string())]);
        let r = Fault::status(502).reply("/x").unwrap();
        assert_eq!((r.body.as_str(), r.content_type), ("Bad Gateway", TEXT));
        let r = Fault::status(500).reply("/web/x").unwrap();
        assert!(r.body.contains("\"path\":\"/web/x\""));
        let r = Fault::status(503)
            .with_body("Service Unavailable")
            .reply("/x")
            .unwrap();
        assert_eq!(r.body, "Service Unavailable");
        assert!(Fault::delay(5).reply("/x").is_none());
        let parsed: Fault = serde_json::from_str(r#"{"status":429,"retry_after":"2"}"#).unwrap();
        assert_eq!(parsed, Fault::throttle("2"));
        assert!(serde_json::from_str::<Fault>(r#"{"stauts":429}"#).is_err());
    }
}
