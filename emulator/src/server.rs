//! The HTTP/1.1 server: our own accept loop (so a fault can drop a connection unanswered),
//! request plumbing, and the background-thread handle used by tests and the demo.

use crate::api::{self, ApiRequest};
use crate::auth::token_from_header;
use crate::config::EmulatorConfig;
use crate::control::{self, CONTROL_PREFIX};
use crate::errors::{self, Outcome, Reply};
use crate::faults::Fault;
use crate::params::parse_query;
use crate::state::{Shared, Stats};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};

/// Past this we stop draining an oversized body and just answer 413.
const DRAIN_CAP: usize = 256 * 1024 * 1024;
const CONTROL_BODY_CAP: usize = 16 * 1024 * 1024;

/// Reads the body; `Ok(None)` when it exceeds `limit` (drained up to [`DRAIN_CAP`] so the
/// client can read our 413 instead of failing on a reset while still sending).
async fn read_body(mut body: Incoming, limit: usize) -> Result<Option<Vec<u8>>, hyper::Error> {
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > DRAIN_CAP {
                break;
            }
        }
    }
    Ok((seen <= limit).then_some(buf))
}

fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            headers.append(k, v);
        }
    }
    resp
}

async fn process(shared: &Shared, req: Request<Incoming>) -> Outcome {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let method = parts.method.as_str().to_string();
    if path.starts_with(CONTROL_PREFIX) {
        let reply = match read_body(body, CONTROL_BODY_CAP).await {
            Ok(Some(b)) => control::handle(&mut shared.lock(), &method, &path, &b),
            Ok(None) => errors::payload_too_large(),
            Err(_) => errors::bad_request1("request body: could not be read"),
        };
        return Outcome::Reply(reply);
    }
    let (fault, limit) = {
        let mut inner = shared.lock();
        inner.count_request(&path);
        (
            inner.faults.pop(&path, &method),
            inner.config.max_body_bytes,
        )
    };
    let outcome = match fault {
        Some(f) => run_fault(shared, f, &path, &method, &parts, body, limit).await,
        None => normal(shared, &path, &method, &parts, body, limit).await,
    };
    let status = match &outcome {
        Outcome::Reply(r) => r.status,
        Outcome::Reset => 0,
    };
    shared.lock().count_status(status);
    outcome
}

async fn run_fault(
    shared: &Shared,
    fault: Fault,
    path: &str,
    method: &str,
    parts: &hyper::http::request::Parts,
    body: Incoming,
    limit: usize,
) -> Outcome {
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if fault.reset {
        return Outcome::Reset;
    }
    if fault.after_processing {
        let done = normal(shared, path, method, parts, body, limit).await;
        return match fault.reply(path) {
            Some(reply) => Outcome::Reply(reply),
            None => done,
        };
    }
    match fault.reply(path) {
        Some(reply) => {
            // Drain so the client sees our answer rather than a broken pipe.
            let _ = read_body(body, 0).await;
            Outcome::Reply(reply)
        }
        None => normal(shared, path, method, parts, body, limit).await,
    }
}

async fn normal(
    shared: &Shared,
    path: &str,
    method: &str,
    parts: &hyper::http::request::Parts,
    body: Incoming,
    limit: usize,
) -> Outcome {
    let body = match read_body(body, limit).await {
        Ok(Some(b)) => b,
        Ok(None) => return Outcome::Reply(errors::payload_too_large()),
        Err(_) => return Outcome::Reply(errors::bad_request1("request body: could not be read")),
    };
    let auth = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let req = ApiRequest {
        method,
        path,
        query: parse_query(parts.uri.query()),
        token: token_from_header(auth),
        body: &body,
    };
    Outcome::Reply(api::handle(&mut shared.lock(), &req))
}

/// Serves until `shutdown` resolves.
pub(crate) async fn run(
    shared: Shared,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                // Transient accept errors (e.g. too many open files) must not kill the server.
                Err(_) => { tokio::time::sleep(Duration::from_millis(10)).await; continue; }
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let k = kill.clone();
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                let kill = k.clone();
                async move {
                    match process(&shared, req).await {
                        Outcome::Reply(r) => Ok::<_, Infallible>(to_response(r)),
                        Outcome::Reset => {
                            kill.notify_one();
                            std::future::pending().await
                        }
                    }
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            // Dropping the connection closes the socket without an answer.
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
            }
        });
    }
}

/// Serves `config` on `listener` forever (the binary adds Ctrl-C handling on top).
pub async fn serve(config: EmulatorConfig, listener: TcpListener) -> anyhow::Result<()> {
    serve_with_shutdown(config, listener, std::future::pending()).await
}

/// Serves `config` on `listener` until `shutdown` resolves.
pub async fn serve_with_shutdown(
    config: EmulatorConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    config.check()?;
    run(Shared::new(config), listener, shutdown).await
}

/// Entry point for tests and the demo.
pub struct Emulator;

impl Emulator {
    /// Starts on 127.0.0.1 with a free port.
    pub fn start(config: EmulatorConfig) -> anyhow::Result<EmulatorHandle> {
        Emulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts on `addr` in a background thread that owns its own tokio runtime, so it works
    /// from synchronous code and from inside another runtime alike.
    pub fn start_on(config: EmulatorConfig, addr: SocketAddr) -> anyhow::Result<EmulatorHandle> {
        config.check()?;
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Shared::new(config);
        let (tx, rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let server_state = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("s1-emulator-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.into()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let _ = run(server_state, listener, async {
                        let _ = rx.await;
                    })
                    .await;
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("emulator thread died during start-up"))??;
        Ok(EmulatorHandle {
            addr,
            shared,
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

/// A running emulator. Dropping it shuts the server down.
pub struct EmulatorHandle {
    addr: SocketAddr,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the console URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes connections and joins the server thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Accepted events as received, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.shared
            .lock()
            .events
            .iter()
            .map(|e| e.event.clone())
            .collect()
    }

    /// Rules as the create call answered them, in creation order.
    pub fn rules(&self) -> Vec<Value> {
        self.shared.lock().rules.clone()
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Queues faults for `path` (`/web/api/v2.1/...`, relative like `cloud-detection/events`,
    /// or `*` for any API path); one is consumed per request.
    pub fn script(&self, path: &str, faults: Vec<Fault>) {
        self.shared.lock().faults.push(path, faults);
    }

    /// Clears events, rules, faults, queries and stats (the configuration stays).
    pub fn reset(&self) {
        self.shared.lock().reset();
    }

    pub fn set_max_body_bytes(&self, n: usize) {
        self.shared.lock().config.max_body_bytes = n;
    }

    pub fn set_validate(&self, on: bool) {
        self.shared.lock().config.validate = on;
    }

    pub fn set_rate_limits(&self, on: bool) {
        self.shared.lock().config.rate_limits = on;
    }

    /// The current configuration (including switches changed at run time).
    pub fn config(&self) -> EmulatorConfig {
        self.shared.lock().config.clone()
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}
