//! Encoding events into request bodies `{"data":[...]}` within the count and byte limits.
//!
//! Each event is written once, straight into its request body. A request holds at most
//! `batch_size` events and `MAX_REQUEST_BYTES` bytes; an event that alone exceeds the cap is
//! rejected alone.

use crate::config::Settings;
use crate::event;
use crate::record::AuditRecord;
use std::ops::Range;

/// The documented cap on one request body: 4 MiB, under the 5 MB SentinelOne accepts.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
pub const EVENTS_PATH: &str = "/web/api/v2.1/cloud-detection/events";

const HEAD: &[u8] = b"{\"data\":[";
const TAIL: &[u8] = b"]}";

/// One request: its body and where each record's event sits in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    pub body: Vec<u8>,
    /// (index of the record in the delivered batch, byte range of its event in `body`).
    pub events: Vec<(u32, Range<usize>)>,
}

impl Chunk {
    fn new(capacity: usize) -> Self {
        let mut body = Vec::with_capacity(capacity);
        body.extend_from_slice(HEAD);
        Chunk {
            body,
            events: Vec::new(),
        }
    }

    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.events.iter().map(|(i, _)| *i)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn push_separator(&mut self) {
        if !self.events.is_empty() {
            self.body.push(b',');
        }
    }

    fn finish(mut self) -> Chunk {
        self.body.extend_from_slice(TAIL);
        self
    }

    /// Two requests holding the first and second half of this one's events.
    pub fn split(&self) -> (Chunk, Chunk) {
        let mid = self.events.len() / 2;
        (
            self.subset(&self.events[..mid]),
            self.subset(&self.events[mid..]),
        )
    }

    fn subset(&self, events: &[(u32, Range<usize>)]) -> Chunk {
        let bytes: usize = events.iter().map(|(_, r)| r.len() + 1).sum();
        let mut out = Chunk::new(HEAD.len() + bytes + TAIL.len());
        for (index, range) in events {
            out.push_separator();
            let start = out.body.len();
            out.body.extend_from_slice(&self.body[range.clone()]);
            out.events.push((*index, start..out.body.len()));
        }
        out.finish()
    }
}

/// The requests for a batch, and the records that cannot be sent at all.
#[derive(Debug, Default)]
pub struct Encoded {
    pub chunks: Vec<Chunk>,
    pub rejected: Vec<(u32, String)>,
}

/// Encodes `records` (with their batch indices) into requests of at most `max_events` events
/// and `max_bytes` bytes each.
pub fn encode<'r>(
    settings: &Settings,
    records: impl Iterator<Item = (u32, &'r AuditRecord)>,
    max_events: usize,
    max_bytes: usize,
) -> Encoded {
    let mut out = Encoded::default();
    // Room for the whole request up front (events are ~0.5-1 KiB): no regrowth while writing.
    let expected = records.size_hint().1.unwrap_or(256).min(max_events);
    let capacity = (expected.saturating_mul(1024) + HEAD.len() + TAIL.len()).min(max_bytes);
    let mut current = Chunk::new(capacity);
    for (index, record) in records {
        current.push_separator();
        let start = current.body.len();
        if let Err(e) = event::write_event(&mut current.body, settings, record) {
            current
                .body
                .truncate(start.saturating_sub(usize::from(!current.events.is_empty())));
            out.rejected
                .push((index, format!("record {}: {}", record.id, e.0)));
            continue;
        }
        let event_len = current.body.len() - start;
        if HEAD.len() + event_len + TAIL.len() > max_bytes {
            current
                .body
                .truncate(start.saturating_sub(usize::from(!current.events.is_empty())));
            out.rejected.push((
                index,
                format!(
                    "record {}: its event is {event_len} bytes, more than the {max_bytes}-byte request cap; shorten the statement or drop large extra fields at the source",
                    record.id
                ),
            ));
            continue;
        }
        if current.body.len() + TAIL.len() > max_bytes {
            // This event starts the next request: move its bytes there.
            let mut next = Chunk::new(capacity);
            next.body.extend_from_slice(&current.body[start..]);
            next.events.push((index, HEAD.len()..next.body.len()));
            current.body.truncate(start - 1);
            out.chunks
                .push(std::mem::replace(&mut current, next).finish());
        } else {
            current.events.push((index, start..current.body.len()));
        }
        if current.events.len() >= max_events {
            let next = Chunk::new(current.body.capacity());
            out.chunks
                .push(std::mem::replace(&mut current, next).finish());
        }
    }
    if !current.events.is_empty() {
        out.chunks.push(current.finish());
    }
    out
}
