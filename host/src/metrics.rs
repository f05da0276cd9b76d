//! Counters of the pipeline and their Prometheus text exposition (`--metrics-addr`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds (seconds) of the request latency histogram.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default)]
pub struct Histogram {
    inner: Mutex<HistogramData>,
}

#[derive(Debug, Default, Clone)]
struct HistogramData {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        let mut h = self.inner.lock().unwrap();
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }
    pub fn count(&self) -> u64 {
        self.inner.lock().unwrap().count
    }
}

/// Everything the pipeline counts. Shared (`Arc`) between the pipeline, the plugin's HTTP
/// hook and the metrics server; a caller can also watch it for progress.
#[derive(Debug, Default)]
pub struct Metrics {
    pub records_read: Counter,
    pub records_delivered: Counter,
    pub records_retried: Counter,
    pub records_dead_lettered: Counter,
    pub bad_lines: Counter,
    pub plugin_traps: Counter,
    pub requests_denied: Counter,
    filtered: Mutex<BTreeMap<String, u64>>,
    pub request_latency: Histogram,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub fn add_filtered(&self, reason: &str, n: u64) {
        *self
            .filtered
            .lock()
            .unwrap()
            .entry(reason.to_string())
            .or_default() += n;
    }

    pub fn filtered(&self) -> BTreeMap<String, u64> {
        self.filtered.lock().unwrap().clone()
    }

    pub fn filtered_total(&self) -> u64 {
        self.filtered.lock().unwrap().values().sum()
    }

    /// Records that are delivered, filtered or dead-lettered.
    pub fn accounted(&self) -> u64 {
        self.records_delivered.get() + self.filtered_total() + self.records_dead_lettered.get()
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        };
        counter(
            "dbaudit_records_read_total",
            "Input lines read.",
            self.records_read.get(),
        );
        counter(
            "dbaudit_records_delivered_total",
            "Records the SIEM accepted.",
            self.records_delivered.get(),
        );
        counter(
            "dbaudit_records_retried_total",
            "Records sent again after a retry verdict or a trap.",
            self.records_retried.get(),
        );
        counter(
            "dbaudit_records_dead_lettered_total",
            "Records written to the dead letter.",
            self.records_dead_lettered.get(),
        );
        counter(
            "dbaudit_bad_lines_total",
            "Input lines that are not valid records.",
            self.bad_lines.get(),
        );
        counter(
            "dbaudit_plugin_traps_total",
            "Plugin calls that trapped (instance re-created).",
            self.plugin_traps.get(),
        );
        counter(
            "dbaudit_requests_denied_total",
            "Outbound requests refused by the allow-list.",
            self.requests_denied.get(),
        );
        s.push_str("# HELP dbaudit_records_filtered_total Records not sent by configuration, per reason.\n# TYPE dbaudit_records_filtered_total counter\n");
        for (reason, n) in self.filtered() {
            s.push_str(&format!(
                "dbaudit_records_filtered_total{{reason=\"{reason}\"}} {n}\n"
            ));
        }
        let h = self.request_latency.inner.lock().unwrap().clone();
        s.push_str("# HELP dbaudit_request_duration_seconds Latency of the plugin's outbound HTTP requests.\n# TYPE dbaudit_request_duration_seconds histogram\n");
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            s.push_str(&format!(
                "dbaudit_request_duration_seconds_bucket{{le=\"{b}\"}} {}\n",
                h.buckets[i]
            ));
        }
        s.push_str(&format!(
            "dbaudit_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\ndbaudit_request_duration_seconds_sum {}\ndbaudit_request_duration_seconds_count {}\n",
            h.count, h.sum, h.count
        ));
        s
    }
}

/// Serve `GET /metrics` (any path) on `addr` until the runtime stops. Returns the bound address.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<SocketAddr> {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let body = metrics.render();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "text/plain; version=0.0.4")
                                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.records_read.add(3);
        m.add_filtered("severity", 2);
        m.request_latency.observe(0.02);
        let t = m.render();
        assert!(t.contains("dbaudit_records_read_total 3"));
        assert!(t.contains("dbaudit_records_filtered_total{reason=\"severity\"} 2"));
        assert!(t.contains("dbaudit_request_duration_seconds_bucket{le=\"0.025\"} 1"));
        assert!(t.contains("dbaudit_request_duration_seconds_bucket{le=\"0.01\"} 0"));
    }
}
