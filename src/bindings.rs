//! The one thin file that touches wit-bindgen and `wasi:http`: WIT <-> plain types, and the
//! `Io` seam implemented over the host's imports.

use crate::io::{Io, Level, Method, Request, Response, TransportError, TransportErrorKind};
use crate::{config, connection, deliver, filter, plugin::Plugin, queries, record, rules};
use std::sync::Mutex;

wit_bindgen::generate!({
    world: "siem-sink",
    path: "wit",
    generate_all,
});

use dbaudit::sink::types as wit;
use exports::dbaudit::sink::sink::Guest;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme as WasiScheme,
};
use wasi::io::streams::StreamError;

static PLUGIN: Mutex<Plugin> = Mutex::new(Plugin::new());

struct Component;

export!(Component);

fn plugin() -> std::sync::MutexGuard<'static, Plugin> {
    // A panic cannot poison anything we rely on: state is replaced by the next configure.
    PLUGIN.lock().unwrap_or_else(|e| e.into_inner())
}

impl Guest for Component {
    fn configure(settings_json: String) -> Result<wit::BatchPlan, Vec<wit::ConfigError>> {
        plugin()
            .configure(&settings_json)
            .map(|p| wit::BatchPlan {
                max_events: p.max_events,
                max_bytes: p.max_bytes,
                flush_interval_ms: p.flush_interval_ms,
                retry_attempts: p.retry_attempts,
            })
            .map_err(|errors| errors.into_iter().map(config_error).collect())
    }

    fn deliver(batch: wit::AuditBatch, attempt: u32) -> wit::Delivery {
        // Each distinct text once; records share it.
        let texts: Vec<record::Text> = batch.texts.into_iter().map(record::Text::from).collect();
        let records: Vec<record::AuditRecord> = batch
            .records
            .into_iter()
            .map(|r| from_wit(r, &texts))
            .collect();
        delivery(plugin().deliver(&mut WasiIo, &records, attempt))
    }

    fn check_connection() -> Vec<wit::Check> {
        plugin()
            .check_connection(&mut WasiIo)
            .into_iter()
            .map(check)
            .collect()
    }

    fn hunting_queries(parameters: Vec<wit::QueryParameter>) -> Vec<wit::HuntingQuery> {
        let given: Vec<(String, String)> =
            parameters.into_iter().map(|p| (p.name, p.value)).collect();
        plugin()
            .hunting_queries(&given)
            .into_iter()
            .map(hunting_query)
            .collect()
    }

    fn detection_rules() -> Vec<wit::DetectionRule> {
        plugin()
            .detection_rules()
            .into_iter()
            .map(detection_rule)
            .collect()
    }

    fn ensure_detection_rules() -> Vec<wit::Check> {
        plugin()
            .ensure_detection_rules(&mut WasiIo)
            .into_iter()
            .map(check)
            .collect()
    }
}

// ---- WIT -> plain ----------------------------------------------------------------------------

fn from_wit(r: wit::AuditRecord, texts: &[record::Text]) -> record::AuditRecord {
    // 0 (and, defensively, any index past the table) is "absent".
    let text = |i: u32| {
        if i == 0 {
            None
        } else {
            texts.get(i as usize).cloned()
        }
    };
    record::AuditRecord {
        id: r.id,
        timestamp_ms: r.timestamp_ms,
        event_type: match r.event_type {
            wit::EventKind::AuditEvent => record::EventKind::AuditEvent,
            wit::EventKind::Alert => record::EventKind::Alert,
            wit::EventKind::AiDetection => record::EventKind::AiDetection,
            wit::EventKind::PolicyViolation => record::EventKind::PolicyViolation,
            wit::EventKind::ClassificationFinding => record::EventKind::ClassificationFinding,
            wit::EventKind::AuthSuccess => record::EventKind::AuthSuccess,
            wit::EventKind::AuthFailure => record::EventKind::AuthFailure,
        },
        severity: match r.severity {
            wit::Severity::Critical => record::Severity::Critical,
            wit::Severity::Warning => record::Severity::Warning,
            wit::Severity::Info => record::Severity::Info,
        },
        database: text(r.database),
        db_type: text(r.db_type),
        db_host: text(r.db_host),
        actor_user: text(r.actor_user),
        client_ip: text(r.client_ip),
        application: text(r.application),
        action_type: text(r.action_type),
        object: text(r.object),
        schema: text(r.schema),
        statement: r.statement,
        rows_affected: r.rows_affected,
        contains_pii: r.contains_pii,
        data_types: r.data_types.into_iter().filter_map(text).collect(),
        session_id: r.session_id,
        extra_json: r.extra_json.unwrap_or_default(),
    }
}

// ---- plain -> WIT ----------------------------------------------------------------------------

fn config_error(e: config::ConfigError) -> wit::ConfigError {
    wit::ConfigError {
        field: e.field,
        message: e.message,
    }
}

fn report(r: deliver::Report) -> wit::Report {
    wit::Report {
        sent: r.sent,
        filtered: r
            .filtered
            .iter()
            .map(|(reason, count)| wit::FilterCount {
                reason: match reason {
                    filter::FilterReason::Disabled => wit::FilterReason::Disabled,
                    filter::FilterReason::EventType => wit::FilterReason::EventType,
                    filter::FilterReason::Severity => wit::FilterReason::Severity,
                    filter::FilterReason::Database => wit::FilterReason::Database,
                },
                count,
            })
            .collect(),
        rejected: r
            .rejected
            .into_iter()
            .map(|(index, reason)| wit::RecordRejection { index, reason })
            .collect(),
    }
}

fn delivery(v: deliver::Verdict) -> wit::Delivery {
    match v {
        deliver::Verdict::Delivered(r) => wit::Delivery::Delivered(report(r)),
        deliver::Verdict::Retry {
            after_ms,
            pending,
            reason,
            report: r,
        } => wit::Delivery::Retry(wit::RetryInfo {
            after_ms,
            pending,
            reason,
            report: report(r),
        }),
        deliver::Verdict::Rejected {
            reason,
            records,
            report: r,
        } => wit::Delivery::Rejected(wit::Rejection {
            reason,
            records,
            report: report(r),
        }),
    }
}

fn check(c: connection::Check) -> wit::Check {
    wit::Check {
        name: c.name.to_string(),
        ok: c.ok,
        message: c.message,
    }
}

fn hunting_query(q: queries::HuntingQuery) -> wit::HuntingQuery {
    wit::HuntingQuery {
        id: q.id.to_string(),
        title: q.title.to_string(),
        description: q.description.to_string(),
        queries: vec![
            wit::QueryText {
                language: "s1ql".into(),
                text: q.s1ql,
            },
            wit::QueryText {
                language: "powerquery".into(),
                text: q.powerquery,
            },
        ],
        parameters: q
            .parameters
            .into_iter()
            .map(|(name, value)| wit::QueryParameter {
                name: name.to_string(),
                value,
            })
            .collect(),
    }
}

fn detection_rule(r: rules::Rule) -> wit::DetectionRule {
    wit::DetectionRule {
        name: r.name,
        description: r.description,
        severity: r.severity.to_string(),
        query: r.s1ql,
    }
}

// ---- Io over the host's imports --------------------------------------------------------------

/// Timeouts for one request to the console.
const CONNECT_TIMEOUT_NS: u64 = 10_000_000_000;
/// Error bodies are read for their message only; successes are tiny.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

struct WasiIo;

impl Io for WasiIo {
    fn send(&mut self, request: &Request<'_>) -> Result<Response, TransportError> {
        send(request)
    }

    fn random_u64(&mut self) -> u64 {
        wasi::random::random::get_random_u64()
    }

    fn monotonic_ms(&self) -> u64 {
        wasi::clocks::monotonic_clock::now() / 1_000_000
    }

    fn now_ms(&self) -> i64 {
        let now = wasi::clocks::wall_clock::now();
        now.seconds as i64 * 1000 + i64::from(now.nanoseconds / 1_000_000)
    }

    fn log(&self, level: Level, message: &str) {
        use dbaudit::sink::log::{log, Level as L};
        let level = match level {
            Level::Trace => L::Trace,
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        log(level, message);
    }
}

fn other(message: impl Into<String>) -> TransportError {
    TransportError {
        kind: TransportErrorKind::Other,
        message: message.into(),
    }
}

fn send(request: &Request<'_>) -> Result<Response, TransportError> {
    let headers = Fields::new();
    let append = |name: &str, value: &[u8]| {
        headers
            .append(name, value)
            .map_err(|e| other(format!("bad header {name}: {e:?}")))
    };
    append("accept", b"application/json")?;
    append("content-type", b"application/json")?;
    append(
        "user-agent",
        concat!("dbaudit-sentinelone/", env!("CARGO_PKG_VERSION")).as_bytes(),
    )?;
    if !request.body.is_empty() {
        // A known length lets the request go out unchunked.
        append("content-length", request.body.len().to_string().as_bytes())?;
    }
    if let Some(token) = request.api_token {
        append("authorization", format!("ApiToken {token}").as_bytes())?;
    }

    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Post => WasiMethod::Post,
    };
    let scheme = match request.console.scheme {
        config::Scheme::Https => WasiScheme::Https,
        config::Scheme::Http => WasiScheme::Http,
    };
    outgoing
        .set_method(&method)
        .map_err(|_| other("method refused"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|_| other("scheme refused"))?;
    outgoing
        .set_authority(Some(&request.console.authority))
        .map_err(|_| other("console host refused"))?;
    outgoing
        .set_path_with_query(Some(request.path))
        .map_err(|_| other("path refused"))?;
    let body = outgoing
        .body()
        .map_err(|_| other("request body unavailable"))?;

    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS));
    let timeout_ns = request.timeout_ms.saturating_mul(1_000_000);
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));

    // Hand the request over first, then stream the body: the host reads it as we write.
    let future =
        wasi::http::outgoing_handler::handle(outgoing, Some(options)).map_err(transport_error)?;
    // A console may answer (413, 401...) before reading the whole body and close the stream;
    // its answer is what matters then, so a write failure is only reported if none arrives.
    let written = if request.body.is_empty() {
        Ok(())
    } else {
        write_body(&body, request.body)
    };
    let finished = OutgoingBody::finish(body, None).map_err(transport_error);

    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(transport_error(code)),
        Some(Err(())) | None => {
            written?;
            finished?;
            return Err(other("response already taken"));
        }
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| other("response body unavailable"))?;
    let body = read_body(&incoming)?;
    let _ = IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), TransportError> {
    let stream = body
        .write()
        .map_err(|_| other("request body stream unavailable"))?;
    let mut rest = bytes;
    while !rest.is_empty() {
        let permit = stream.check_write().map_err(stream_error)? as usize;
        if permit == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = permit.min(rest.len());
        stream.write(&rest[..n]).map_err(stream_error)?;
        rest = &rest[n..];
    }
    stream.blocking_flush().map_err(stream_error)?;
    Ok(())
}

fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, TransportError> {
    let stream = incoming
        .stream()
        .map_err(|_| other("response body stream unavailable"))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if body.len() < MAX_RESPONSE_BYTES {
                    body.extend_from_slice(&chunk);
                }
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(e) => return Err(stream_error(e)),
        }
    }
}

fn stream_error(e: StreamError) -> TransportError {
    match e {
        StreamError::Closed => TransportError {
            kind: TransportErrorKind::Connect,
            message: "connection closed".into(),
        },
        StreamError::LastOperationFailed(err) => match wasi::http::types::http_error_code(&err) {
            Some(code) => transport_error(code),
            None => TransportError {
                kind: TransportErrorKind::Connect,
                message: err.to_debug_string(),
            },
        },
    }
}

fn transport_error(code: ErrorCode) -> TransportError {
    use TransportErrorKind as K;
    let kind = match &code {
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => K::Dns,
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout => K::Timeout,
        ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionLimitReached
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::HttpResponseIncomplete => K::Connect,
        ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => K::Tls,
        ErrorCode::HttpRequestDenied => K::Denied,
        _ => K::Other,
    };
    TransportError {
        kind,
        message: describe(&code),
    }
}

fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::HttpRequestDenied => "request denied by the host's allow-list".into(),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTerminated => "connection closed by the console".into(),
        ErrorCode::ConnectionTimeout => "connect timed out".into(),
        ErrorCode::ConnectionReadTimeout => "no response in time".into(),
        other => format!("{other:?}"),
    }
}
