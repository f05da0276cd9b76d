//! Everything the emulator remembers, behind one mutex.

use crate::config::EmulatorConfig;
use crate::faults::FaultQueues;
use crate::ratelimit::RateLimiter;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// Counters for tests and the demo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Events stored (accepted requests only).
    pub accepted_events: u64,
    /// Requests per API path (control API not counted), faults and rejections included.
    pub requests_per_path: BTreeMap<String, u64>,
    /// Responses per status code for API paths (a connection reset counts as status 0).
    pub responses_per_status: BTreeMap<u16, u64>,
    /// `customFields.event_id` values stored more than once.
    pub duplicate_event_ids: Vec<String>,
    /// Rules created.
    pub rules_created: u64,
    /// Rule names created more than once in the same scope.
    pub duplicate_rule_names: Vec<String>,
}

/// A stored event: the JSON as received plus where and when it landed.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub arrival: u64,
    pub received_at: DateTime<Utc>,
    /// The account it belongs to: its accountId, its site's account, or the token's only account.
    pub account_id: Option<String>,
    pub event: Value,
}

/// A Deep Visibility query's snapshot of results (DV views).
#[derive(Debug, Clone)]
pub(crate) struct DvQuery {
    pub results: Vec<Value>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: EmulatorConfig,
    pub events: Vec<StoredEvent>,
    pub rules: Vec<Value>,
    pub faults: FaultQueues,
    pub rate: RateLimiter,
    pub queries: HashMap<String, DvQuery>,
    pub stats: Stats,
    pub event_ids: HashMap<String, u64>,
    pub next_id: u64,
}

impl Inner {
    pub fn new(config: EmulatorConfig) -> Inner {
        Inner {
            config,
            events: Vec::new(),
            rules: Vec::new(),
            faults: FaultQueues::default(),
            rate: RateLimiter::default(),
            queries: HashMap::new(),
            stats: Stats::default(),
            event_ids: HashMap::new(),
            next_id: 0,
        }
    }

    /// Clears events, rules, faults, queries, rate windows and stats; keeps the config.
    pub fn reset(&mut self) {
        *self = Inner::new(self.config.clone());
    }

    /// A fresh numeric id in the style of SentinelOne's 18-19 digit ids.
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        (1_900_000_000_000_000_000u64 + self.next_id).to_string()
    }

    pub fn count_request(&mut self, path: &str) {
        *self
            .stats
            .requests_per_path
            .entry(path.to_string())
            .or_default() += 1;
    }

    pub fn count_status(&mut self, status: u16) {
        *self.stats.responses_per_status.entry(status).or_default() += 1;
    }

    pub fn store_event(&mut self, event: Value, account_id: Option<String>) {
        if let Some(id) = event
            .pointer("/customFields/event_id")
            .and_then(Value::as_str)
        {
            let n = self.event_ids.entry(id.to_string()).or_default();
            *n += 1;
            if *n == 2 {
                self.stats.duplicate_event_ids.push(id.to_string());
            }
        }
        self.stats.accepted_events += 1;
        let arrival = self.events.len() as u64;
        self.events.push(StoredEvent {
            arrival,
            received_at: Utc::now(),
            account_id,
            event,
        });
    }
}

/// Shared between the server tasks and the handle.
#[derive(Debug, Clone)]
pub(crate) struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    pub fn new(config: EmulatorConfig) -> Shared {
        Shared(Arc::new(Mutex::new(Inner::new(config))))
    }

    /// A panic in one request must not wedge the emulator, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
