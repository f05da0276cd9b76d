//! Per-path sliding-window limits from SentinelOne's published table.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// (limit, window, per token) for an API path relative to `/web/api/v2.1/`.
fn limit_for(path: &str) -> Option<(usize, Duration, bool)> {
    let sec = Duration::from_secs(1);
    let min = Duration::from_secs(60);
    match path {
        "cloud-detection/rules" => Some((30, min, false)),
        "dv/init-query" => Some((1, min, true)),
        "dv/query-status" => Some((1, sec, false)),
        "system/status" => Some((2, sec, false)),
        "accounts" => Some((100, sec, false)),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    windows: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// Records the request; false when it exceeds the path's limit.
    pub fn allow(&mut self, path: &str, token: Option<&str>, now: Instant) -> bool {
        let Some((limit, window, per_token)) = limit_for(path) else {
            return true;
        };
        let key = if per_token {
            format!("{path}\u{0}{}", token.unwrap_or(""))
        } else {
            path.to_string()
        };
        let hits = self.windows.entry(key).or_default();
        while hits
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            hits.pop_front();
        }
        if hits.len() >= limit {
            return false;
        }
        hits.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let mut r = RateLimiter::default();
        let t = Instant::now();
        assert!(r.allow("system/status", None, t));
        assert!(r.allow("system/status", None, t));
        assert!(!r.allow("system/status", None, t));
        assert!(r.allow("system/status", None, t + Duration::from_secs(1)));
        assert!(r.allow("dv/init-query", Some("a"), t));
        assert!(!r.allow("dv/init-query", Some("a"), t));
        assert!(r.allow("dv/init-query", Some("b"), t));
        assert!(r.allow("cloud-detection/events", None, t));
    }
}
