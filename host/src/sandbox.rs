//! What the plugin may reach: the outbound-request hook of `wasi:http`. Only hosts in the
//! allow-list (manifest capabilities + the host of `console_url` + `[sink] allow_hosts`) get a
//! connection; anything else gets `HttpRequestDenied` and a warning naming the host. Plain
//! `http` is allowed to loopback addresses only.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::{Scheme, Uri};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::metrics::Metrics;

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com` (not `example.com` itself).
    Subdomain(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    host: HostPattern,
    port: Option<u16>,
}

/// Hosts the plugin may reach.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<Entry>,
}

fn normalize_host(h: &str) -> String {
    h.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether a host name or address is the local machine.
pub fn is_loopback(host: &str) -> bool {
    let h = normalize_host(host);
    h == "localhost"
        || h.parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl AllowList {
    /// `entries`: `host`, `host:port`, `[v6]:port` or `*.domain` (optionally `:port`).
    pub fn new<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for e in entries {
            list.add(e.as_ref())?;
        }
        Ok(list)
    }

    pub fn add(&mut self, entry: &str) -> Result<(), String> {
        let e = entry.trim();
        if e.is_empty() || e.contains('/') {
            return Err(format!("`{entry}` is not a host or host:port"));
        }
        let (host, port) = split_host_port(e).ok_or_else(|| format!("`{entry}` has a bad port"))?;
        let host = normalize_host(host);
        let pattern = match host.strip_prefix("*.") {
            Some(d) if !d.is_empty() => HostPattern::Subdomain(d.to_string()),
            _ if host.contains('*') => {
                return Err(format!("`{entry}`: only a leading `*.` is allowed"))
            }
            _ => HostPattern::Exact(host),
        };
        self.entries.push(Entry {
            host: pattern,
            port,
        });
        Ok(())
    }

    /// Allow the host (and port, when explicit) of a URL such as `console_url`.
    pub fn add_url(&mut self, url: &str) -> Result<(), String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let host = uri.host().ok_or_else(|| format!("`{url}` has no host"))?;
        let host = normalize_host(host);
        self.entries.push(Entry {
            host: HostPattern::Exact(host),
            port: uri.port_u16(),
        });
        Ok(())
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        self.entries.iter().any(|e| {
            let host_ok = match &e.host {
                HostPattern::Exact(h) => h == host,
                HostPattern::Subdomain(d) => {
                    host.len() > d.len() + 1
                        && host.ends_with(d.as_str())
                        && host.as_bytes()[host.len() - d.len() - 1] == b'.'
                }
            };
            host_ok && e.port.is_none_or(|p| p == port)
        })
    }

    /// Whether a request to `uri` may go out; the error says why not.
    pub fn check(&self, uri: &Uri) -> Result<(), String> {
        let host = uri
            .host()
            .map(normalize_host)
            .ok_or("the request has no host")?;
        let https = uri.scheme() == Some(&Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !https && !is_loopback(&host) {
            return Err(format!(
                "plain http to {host}:{port} refused: only https may leave this machine"
            ));
        }
        if self.matches(&host, port) {
            Ok(())
        } else {
            Err(format!(
                "request to {host}:{port} denied: not in the plugin's allow-list (manifest capabilities, the console_url host, [sink] allow_hosts)"
            ))
        }
    }
}

fn split_host_port(e: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = e.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &e[..end + 2];
        let tail = &rest[end + 1..];
        return match tail.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if tail.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match e.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p.parse().ok()?))),
        Some(_) => Some((e, None)), // a bare IPv6 address
        None => Some((e, None)),
    }
}

/// The `wasi:http` hooks of one plugin instance.
pub struct SandboxHooks {
    pub allow: Arc<AllowList>,
    pub metrics: Arc<Metrics>,
    /// The deadline of a plugin call; no request may wait more than twice that.
    pub call_timeout: Duration,
}

type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for SandboxHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> Box<
        dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>>
            + Send,
    > {
        _ = fut;
        if let Err(why) = self.allow.check(request.uri()) {
            tracing::warn!(target: "sandbox", host = request.uri().host().unwrap_or(""), "{why}");
            self.metrics.requests_denied.inc();
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        // A request that hangs is cut at twice the call deadline; the deadline itself (epoch
        // interruption) fails the call as soon as control is back in the guest.
        let limit = self.call_timeout * 2;
        let cap = |d: Option<Duration>| Some(d.unwrap_or(limit).min(limit));
        let opts = options.unwrap_or_default();
        let opts = RequestOptions {
            connect_timeout: cap(opts.connect_timeout),
            first_byte_timeout: cap(opts.first_byte_timeout),
            between_bytes_timeout: cap(opts.between_bytes_timeout),
        };
        // The default sender opens a connection per request and never reuses it: say so, so the
        // console can free it at once instead of holding it for keep-alive. (The guest may not
        // set this header itself.)
        request.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        let metrics = self.metrics.clone();
        Box::new(async move {
            let start = Instant::now();
            let result = wasmtime_wasi_http::default_send_request(request, Some(opts)).await;
            metrics
                .request_latency
                .observe(start.elapsed().as_secs_f64());
            let (res, io) = result?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn wildcard_and_ports() {
        let mut a = AllowList::new(["*.sentinelone.net", "127.0.0.1:8089"]).unwrap();
        a.add_url("https://console.example.com").unwrap();
        assert!(a
            .check(&uri("https://usea1.sentinelone.net/web/api"))
            .is_ok());
        assert!(a.check(&uri("https://sentinelone.net/")).is_err());
        assert!(a.check(&uri("https://evil-sentinelone.net/")).is_err());
        assert!(a.check(&uri("http://127.0.0.1:8089/x")).is_ok());
        assert!(a.check(&uri("http://127.0.0.1:8090/x")).is_err());
        assert!(a.check(&uri("https://console.example.com:8443/")).is_ok());
        assert!(a.check(&uri("https://other.example.com/")).is_err());
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let a = AllowList::new(["example.com", "[::1]:80"]).unwrap();
        let e = a.check(&uri("http://example.com/")).unwrap_err();
        assert!(e.contains("only https"), "{e}");
        assert!(a.check(&uri("http://[::1]/")).is_ok());
        assert!(is_loopback("localhost") && is_loopback("127.0.0.2") && !is_loopback("10.0.0.1"));
    }
}
