//! One `deliver` call: filter -> map and encode -> POST each request -> classify -> verdict.
//!
//! Requests go out in order; the first that must wait stops the call, and only the records
//! not yet accepted are returned as pending. Nothing is dropped without being counted.

use crate::config::Settings;
use crate::filter::{filter_reason, FilterCounts};
use crate::io::{Io, Level, Method, Request, EVENTS_TIMEOUT_MS};
use crate::payload::{self, Chunk, EVENTS_PATH, MAX_REQUEST_BYTES};
use crate::policy::{self, Outcome};
use crate::record::{AuditRecord, EventKind, Severity};
use std::collections::VecDeque;

/// Stop starting requests after this long in one call (the host's deadline is 60 s by default).
pub const CALL_BUDGET_MS: u64 = 25_000;

/// Set of event kinds, as bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindSet(u8);

impl KindSet {
    pub const EMPTY: KindSet = KindSet(0);

    pub fn insert(&mut self, kind: EventKind) {
        self.0 |= 1 << kind as u8;
    }
    pub fn contains(&self, kind: EventKind) -> bool {
        self.0 & (1 << kind as u8) != 0
    }
    pub fn iter(self) -> impl Iterator<Item = EventKind> {
        EventKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

/// What happened to a batch besides the verdict's main outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub sent: u32,
    pub filtered: FilterCounts,
    /// Records rejected on their own: (batch index, reason).
    pub rejected: Vec<(u32, String)>,
    /// Kinds of the critical events SentinelOne accepted in this call.
    pub critical_kinds_sent: KindSet,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered(Report),
    Retry {
        after_ms: u64,
        pending: Vec<u32>,
        reason: String,
        report: Report,
    },
    Rejected {
        reason: String,
        records: Vec<u32>,
        report: Report,
    },
}

impl Verdict {
    pub fn report(&self) -> &Report {
        match self {
            Verdict::Delivered(r) => r,
            Verdict::Retry { report, .. } | Verdict::Rejected { report, .. } => report,
        }
    }
}

/// Delivers `batch`; `attempt` is 1 for the first try of these records.
pub fn deliver(
    settings: &Settings,
    io: &mut dyn Io,
    batch: &[AuditRecord],
    attempt: u32,
) -> Verdict {
    let mut report = Report::default();
    let selected =
        batch
            .iter()
            .enumerate()
            .filter_map(|(i, record)| match filter_reason(settings, record) {
                Some(reason) => {
                    report.filtered.add(reason);
                    None
                }
                None => Some((i as u32, record)),
            });
    let encoded = payload::encode(
        settings,
        selected,
        settings.batch_size as usize,
        MAX_REQUEST_BYTES,
    );
    report.rejected = encoded.rejected;
    for (index, reason) in &report.rejected {
        io.log(
            Level::Warn,
            &format!("rejected batch record {index}: {reason}"),
        );
    }

    let scope = scope_label(settings);
    let started = io.monotonic_ms();
    let mut requests = 0u32;
    let mut queue: VecDeque<Chunk> = encoded.chunks.into();
    while let Some(chunk) = queue.pop_front() {
        // Splitting on a slow console can take many requests: hand back before the host's call
        // deadline could cut the call short after SentinelOne accepted events.
        if requests > 0 && io.monotonic_ms().saturating_sub(started) >= CALL_BUDGET_MS {
            let pending = remaining(&chunk, &queue);
            let reason = format!(
                "{} events left after {CALL_BUDGET_MS} ms in one call; continuing in the next",
                pending.len()
            );
            io.log(Level::Info, &reason);
            return Verdict::Retry {
                after_ms: policy::BACKOFF_MIN_MS,
                pending,
                reason,
                report,
            };
        }
        requests += 1;
        let request = Request {
            method: Method::Post,
            console: &settings.console_url,
            path: EVENTS_PATH,
            api_token: Some(settings.api_token.expose()),
            body: &chunk.body,
            timeout_ms: EVENTS_TIMEOUT_MS,
        };
        let result = io.send(&request);
        let outcome = redact(settings, policy::classify(&result, io.now_ms(), &scope));
        match outcome {
            Outcome::Delivered => {
                report.sent += chunk.len() as u32;
                for i in chunk.indices() {
                    let record = &batch[i as usize];
                    if record.severity == Severity::Critical {
                        report.critical_kinds_sent.insert(record.event_type);
                    }
                }
                io.log(
                    Level::Debug,
                    &format!(
                        "SentinelOne accepted {} events ({} bytes)",
                        chunk.len(),
                        chunk.body.len()
                    ),
                );
            }
            Outcome::Split { reason } | Outcome::BadRequest { reason } if chunk.len() > 1 => {
                io.log(
                    Level::Info,
                    &format!(
                        "{reason}; splitting {} events into two requests",
                        chunk.len()
                    ),
                );
                let (first, second) = chunk.split();
                queue.push_front(second);
                queue.push_front(first);
            }
            Outcome::Split { reason } | Outcome::BadRequest { reason } => {
                let index = chunk.events[0].0;
                let reason = format!("record {}: {reason}", batch[index as usize].id);
                io.log(Level::Warn, &reason);
                report.rejected.push((index, reason));
            }
            Outcome::Retry { after_ms, reason } => {
                let pending = remaining(&chunk, &queue);
                if attempt > settings.retry_attempts {
                    let reason = format!(
                        "gave up after {} retries: {reason}",
                        settings.retry_attempts
                    );
                    io.log(Level::Error, &reason);
                    return Verdict::Rejected {
                        reason,
                        records: pending,
                        report,
                    };
                }
                let after_ms =
                    after_ms.unwrap_or_else(|| policy::backoff_ms(attempt, io.random_u64()));
                io.log(
                    Level::Warn,
                    &format!(
                        "{reason}; {} events to retry in {after_ms} ms",
                        pending.len()
                    ),
                );
                return Verdict::Retry {
                    after_ms,
                    pending,
                    reason,
                    report,
                };
            }
            Outcome::Reject { reason } => {
                io.log(Level::Error, &reason);
                return Verdict::Rejected {
                    reason,
                    records: remaining(&chunk, &queue),
                    report,
                };
            }
        }
    }
    Verdict::Delivered(report)
}

/// Console error bodies are quoted in reasons; never let them carry the token back out.
fn redact(settings: &Settings, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Delivered => Outcome::Delivered,
        Outcome::Retry { after_ms, reason } => Outcome::Retry {
            after_ms,
            reason: settings.redact(reason),
        },
        Outcome::Split { reason } => Outcome::Split {
            reason: settings.redact(reason),
        },
        Outcome::BadRequest { reason } => Outcome::BadRequest {
            reason: settings.redact(reason),
        },
        Outcome::Reject { reason } => Outcome::Reject {
            reason: settings.redact(reason),
        },
    }
}

/// The records of `chunk` and of every request not sent yet, in batch order.
fn remaining(chunk: &Chunk, queue: &VecDeque<Chunk>) -> Vec<u32> {
    let mut indices: Vec<u32> = chunk
        .indices()
        .chain(queue.iter().flat_map(Chunk::indices))
        .collect();
    indices.sort_unstable();
    indices
}

/// "account 123" or "site 456 of account 123", for messages.
pub fn scope_label(settings: &Settings) -> String {
    match &settings.site_id {
        Some(site) => format!("site {site} of account {}", settings.account_id),
        None => format!("account {}", settings.account_id),
    }
}
