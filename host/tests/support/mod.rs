//! Test support: an in-process loopback HTTP receiver with scripted responses, and pipeline
//! files pointing at it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply {
            status: 200,
            retry_after: None,
            body: r#"{"data":{"success":true}}"#.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

impl Request {
    /// The events of a `{"data":[...]}` body.
    pub fn events(&self) -> Vec<serde_json::Value> {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("data").and_then(|d| d.as_array().cloned()))
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    requests: Vec<Request>,
}

/// A loopback HTTP server on its own thread; answers from its script, then 200.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub fn start(script: Vec<Reply>) -> Receiver {
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            requests: Vec::new(),
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let st = st.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let st = st.clone();
                            async move {
                                let method = req.method().to_string();
                                let path = req.uri().path().to_string();
                                let authorization = req
                                    .headers()
                                    .get("authorization")
                                    .map(|v| v.to_str().unwrap_or("").to_string());
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let reply = {
                                    let mut s = st.lock().unwrap();
                                    s.requests.push(Request {
                                        at: Instant::now(),
                                        method,
                                        path,
                                        authorization,
                                        body: String::from_utf8_lossy(&body).into_owned(),
                                    });
                                    s.script.pop_front().unwrap_or_else(Reply::ok)
                                };
                                if !reply.delay.is_zero() {
                                    tokio::time::sleep(reply.delay).await;
                                }
                                let mut b = hyper::Response::builder()
                                    .status(reply.status)
                                    .header("content-type", "application/json");
                                if let Some(s) = reply.retry_after {
                                    b = b.header("retry-after", s.to_string());
                                }
                                Ok::<_, std::convert::Infallible>(
                                    b.body(Full::new(bytes::Bytes::from(reply.body))).unwrap(),
                                )
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        Receiver { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests to the events endpoint.
    pub fn event_posts(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/cloud-detection/events"))
            .collect()
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        self.event_posts().iter().flat_map(|r| r.events()).collect()
    }
}

pub const TOKEN: &str = "test-token-0123456789";

/// One valid input line.
pub fn record_line(i: usize) -> String {
    serde_json::json!({
        "id": format!("rec-{i}"),
        "timestamp": "2024-01-15T10:30:45.123Z",
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
        "statement": "SELECT * FROM customers",
        "rows_affected": 1500,
        "contains_pii": true,
        "data_types": ["email", "phone"]
    })
    .to_string()
}

pub fn write_input(dir: &Path, n: usize) -> PathBuf {
    let p = dir.join("audit.jsonl");
    let text: String = (0..n).map(|i| record_line(i) + "\n").collect();
    std::fs::write(&p, text).unwrap();
    p
}

/// A pipeline file for `console_url` (allowed through `allow_hosts`), with extra lines for
/// `[sink]`, `[sink.config]` and `[input]`.
pub fn pipeline(
    dir: &Path,
    console_url: &str,
    allow: &[String],
    input_extra: &str,
    sink_extra: &str,
    settings_extra: &str,
) -> PathBuf {
    let allow: Vec<String> = allow.iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        r#"[input]
kind = "jsonl"
path = "audit.jsonl"
{input_extra}

[sink]
allow_hosts = [{allow}]
{sink_extra}

[sink.config]
name = "test"
provider = "sentinelone"
console_url = "{console_url}"
api_token = "{TOKEN}"
account_id = "123456789"
{settings_extra}

[delivery]
dead_letter = "dead-letter.jsonl"
shutdown_grace_seconds = 5
"#,
        allow = allow.join(", ")
    );
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).unwrap();
    p
}

pub fn dead_letters(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("dead-letter.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn run(cfg: &Path) -> dbaudit_host::Summary {
    let cfg = dbaudit_host::PipelineConfig::load(cfg).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(dbaudit_host::run_pipeline(&cfg, Default::default()))
        .unwrap()
}
