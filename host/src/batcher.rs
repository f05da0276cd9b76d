//! Groups records into batches by the plugin's batch plan: at most `max-events` records and
//! `max-bytes` of input per batch, and a non-empty batch is flushed `flush-interval-ms` after
//! its first record arrived.

use std::time::{Duration, Instant};

use crate::boundary::BatchBuilder;
use crate::record::{Entry, Meta};
use crate::runtime::BatchPlan;

/// Records to deliver together (already in the form that crosses into the plugin) and what
/// the pipeline keeps of each (same order).
#[derive(Debug, Default)]
pub struct Batch {
    pub records: BatchBuilder,
    pub metas: Vec<Meta>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.metas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    fn with_capacity(n: usize) -> Batch {
        Batch {
            records: BatchBuilder::with_capacity(n),
            metas: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, e: Entry) {
        self.records.push(e.record);
        self.metas.push(e.meta);
    }
}

pub struct Batcher {
    max_events: usize,
    max_bytes: u64,
    interval: Duration,
    items: Batch,
    bytes: u64,
    opened: Option<Instant>,
}

impl Batcher {
    pub fn new(plan: &BatchPlan) -> Batcher {
        Batcher {
            max_events: plan.max_events.max(1) as usize,
            max_bytes: plan.max_bytes.max(1),
            interval: Duration::from_millis(plan.flush_interval_ms.max(1)),
            items: Batch::default(),
            bytes: 0,
            opened: None,
        }
    }

    /// Add a record; returns the batches it closed (the open one when this record would not
    /// fit in its bytes, and the new one when it is full).
    pub fn push(&mut self, e: Entry) -> Vec<Batch> {
        let mut out = Vec::new();
        if !self.items.is_empty() && self.bytes + e.meta.size > self.max_bytes {
            out.extend(self.take());
        }
        if self.items.is_empty() {
            self.opened = Some(Instant::now());
        }
        self.bytes += e.meta.size;
        self.items.push(e);
        if self.items.len() >= self.max_events || self.bytes >= self.max_bytes {
            out.extend(self.take());
        }
        out
    }

    /// When the open batch is due (none when empty).
    pub fn deadline(&self) -> Option<Instant> {
        self.opened.map(|t| t + self.interval)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Close the open batch (none when empty).
    pub fn take(&mut self) -> Option<Batch> {
        if self.items.is_empty() {
            return None;
        }
        self.bytes = 0;
        self.opened = None;
        let next = Batch::with_capacity(self.max_events.min(4096));
        Some(std::mem::replace(&mut self.items, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(i: usize, size: u64) -> Entry {
        let line = format!(
            r#"{{"id":"{i}","timestamp":"2024-01-15T10:30:45Z","event_type":"alert","severity":"info"}}"#
        );
        let mut e = crate::record::parse_entry(line, Some(i as u64)).unwrap();
        e.meta.size = size;
        e
    }

    fn plan(events: u32, bytes: u64) -> BatchPlan {
        BatchPlan {
            max_events: events,
            max_bytes: bytes,
            flush_interval_ms: 1000,
            retry_attempts: 3,
        }
    }

    #[test]
    fn by_count() {
        let mut b = Batcher::new(&plan(3, 1 << 20));
        assert!(b.push(env(1, 10)).is_empty());
        assert!(b.push(env(2, 10)).is_empty());
        assert!(b.deadline().is_some());
        assert_eq!(b.push(env(3, 10))[0].len(), 3);
        assert!(b.is_empty() && b.deadline().is_none());
    }

    #[test]
    fn by_bytes() {
        let mut b = Batcher::new(&plan(100, 25));
        assert!(b.push(env(1, 10)).is_empty());
        assert!(b.push(env(2, 10)).is_empty());
        // 30 > 25: the open batch goes, the third record opens the next.
        assert_eq!(b.push(env(3, 10))[0].len(), 2);
        // A record larger than max-bytes closes the open batch and travels alone.
        let out = b.push(env(4, 100));
        assert_eq!(out.iter().map(Batch::len).collect::<Vec<_>>(), vec![1, 1]);
        assert!(b.is_empty());
    }
}
