//! The one seam between SentinelOne logic and the outside world: HTTP, randomness, the clock
//! and logging. The component implements it over `wasi:http`; tests use a scripted fake.

use crate::config::ConsoleUrl;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A request to the console; `path` includes the query. No Debug: it holds the token.
pub struct Request<'a> {
    pub method: Method,
    pub console: &'a ConsoleUrl,
    pub path: &'a str,
    /// `Authorization: ApiToken ...` is added when set.
    pub api_token: Option<&'a str>,
    pub body: &'a [u8],
    /// How long to wait for the answer (first byte, and between bytes).
    pub timeout_ms: u64,
}

/// Events can be large and a console slow: give them time.
pub const EVENTS_TIMEOUT_MS: u64 = 20_000;
/// Lookups, checks and rules are small: fail fast rather than hold up delivery.
pub const SHORT_TIMEOUT_MS: u64 = 5_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no HTTP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// Connection refused, reset or closed early.
    Connect,
    Timeout,
    /// The console's name does not resolve.
    Dns,
    /// TLS handshake or certificate failure.
    Tls,
    /// The host's sandbox refused the destination.
    Denied,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

pub trait Io {
    fn send(&mut self, request: &Request<'_>) -> Result<Response, TransportError>;
    fn random_u64(&mut self) -> u64;
    /// Wall-clock milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Milliseconds from an arbitrary start that never goes back: for time budgets.
    fn monotonic_ms(&self) -> u64;
    fn log(&self, level: Level, message: &str);
}
