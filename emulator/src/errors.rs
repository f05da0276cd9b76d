//! Response bodies as a live console (and the nginx in front of it) sends them.

use serde::Serialize;
use serde_json::Value;

/// A response to send, or a connection to drop without answering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Reply(Reply),
    Reset,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }
    pub fn json(status: u16, value: &Value) -> Reply {
        Reply::new(status, JSON, value.to_string())
    }
    pub fn ok(value: Value) -> Reply {
        Reply::json(200, &value)
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

pub(crate) const JSON: &str = "application/json";
pub(crate) const HTML: &str = "text/html";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

// Exact bodies seen from a live tenant (reference/sentinelone-api.md).
pub(crate) const UNAUTHORIZED: &str =
    r#"{"errors":[{"code":4010010,"detail":null,"title":"Authentication Failed"}]}"#;
pub(crate) const FORBIDDEN: &str =
    r#"{"errors":[{"code":4030010,"detail":null,"title":"Insufficient permissions"}]}"#;
pub(crate) const NOT_FOUND: &str =
    r#"{"errors":[{"code":4040010,"detail":"","title":"Requested resource was not found"}]}"#;
/// Unconfirmed shape; modelled on the 404.
pub(crate) const METHOD_NOT_ALLOWED: &str =
    r#"{"errors":[{"code":4050010,"detail":"","title":"Method Not Allowed"}]}"#;

pub(crate) fn unauthorized() -> Reply {
    Reply::new(401, JSON, UNAUTHORIZED)
}
pub(crate) fn forbidden() -> Reply {
    Reply::new(403, JSON, FORBIDDEN)
}
pub(crate) fn not_found() -> Reply {
    Reply::new(404, JSON, NOT_FOUND)
}
pub(crate) fn method_not_allowed() -> Reply {
    Reply::new(405, JSON, METHOD_NOT_ALLOWED)
}

#[derive(Serialize)]
struct ErrorItem<'a> {
    code: u16,
    title: &'a str,
    detail: &'a str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    errors: Vec<ErrorItem<'a>>,
}

/// 400 with one error item per problem, in the order found.
pub(crate) fn bad_request<S: AsRef<str>>(titles: &[S]) -> Reply {
    let body = ErrorBody {
        errors: titles
            .iter()
            .map(|t| ErrorItem {
                code: 400,
                title: t.as_ref(),
                detail: "",
            })
            .collect(),
    };
    Reply::new(
        400,
        JSON,
        serde_json::to_string(&body).expect("serializable"),
    )
}

pub(crate) fn bad_request1(title: impl AsRef<str>) -> Reply {
    bad_request(&[title])
}

/// The nginx error page for a status, e.g. 429 or 413.
pub(crate) fn nginx_page(status: u16) -> Reply {
    let line = format!("{status} {}", reason(status));
    Reply::new(
        status,
        HTML,
        format!(
            "<html><head><title>{line}</title></head><body><center><h1>{line}</h1></center><hr><center>nginx</center></body></html>"
        ),
    )
}

pub(crate) fn too_many_requests() -> Reply {
    nginx_page(429)
}

pub(crate) fn payload_too_large() -> Reply {
    nginx_page(413)
}

/// The Spring-style 500 body the console sometimes sends.
pub(crate) fn internal_error(path: &str) -> Reply {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Reply::json(
        500,
        &serde_json::json!({"timestamp": now, "status": 500, "error": "Internal Server Error", "path": path}),
    )
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}
