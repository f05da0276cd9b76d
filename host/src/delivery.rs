//! What a verdict means for each record of the batch it answers: delivered, filtered, dead
//! (with its reason), or pending a retry after some time.

use crate::runtime::{Delivery, FilterReason, Report};

pub fn filter_reason_name(r: FilterReason) -> &'static str {
    match r {
        FilterReason::Disabled => "disabled",
        FilterReason::EventType => "event_type",
        FilterReason::Severity => "severity",
        FilterReason::Database => "database",
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub delivered: u64,
    pub filtered: Vec<(&'static str, u64)>,
    /// Batch index and reason.
    pub dead: Vec<(usize, String)>,
    /// Batch indices to send again after `after_ms`.
    pub retry: Option<Retry>,
}

#[derive(Debug, PartialEq)]
pub struct Retry {
    pub indices: Vec<usize>,
    pub after_ms: u64,
    pub reason: String,
}

/// Interpret a verdict on a batch of `len` records.
pub fn interpret(len: usize, verdict: &Delivery) -> Outcome {
    let mut taken = vec![false; len];
    let mut out = Outcome::default();
    let report: &Report = match verdict {
        Delivery::Delivered(r) => r,
        Delivery::Retry(i) => &i.report,
        Delivery::Rejected(r) => &r.report,
    };
    for rj in &report.rejected {
        let i = rj.index as usize;
        if i < len && !taken[i] {
            taken[i] = true;
            out.dead.push((i, rj.reason.clone()));
        }
    }
    let mut filtered_total = 0u64;
    for f in &report.filtered {
        if f.count > 0 {
            out.filtered
                .push((filter_reason_name(f.reason), f.count as u64));
            filtered_total += f.count as u64;
        }
    }
    let mut pending = Vec::new();
    match verdict {
        Delivery::Delivered(_) => {}
        Delivery::Retry(info) => {
            for &p in &info.pending {
                let i = p as usize;
                if i < len && !taken[i] {
                    taken[i] = true;
                    pending.push(i);
                }
            }
            if !pending.is_empty() {
                out.retry = Some(Retry {
                    indices: pending.clone(),
                    after_ms: info.after_ms,
                    reason: info.reason.clone(),
                });
            }
        }
        Delivery::Rejected(rej) => {
            for &p in &rej.records {
                let i = p as usize;
                if i < len && !taken[i] {
                    taken[i] = true;
                    out.dead.push((i, rej.reason.clone()));
                }
            }
        }
    }
    let rest = taken.iter().filter(|t| !**t).count() as u64;
    // Records not listed anywhere were sent or filtered (the report counts them).
    out.delivered = rest.saturating_sub(filtered_total);
    if report.sent as u64 != out.delivered {
        tracing::debug!(
            target: "dbaudit::delivery",
            "plugin reported {} sent, the verdict's indices leave {}",
            report.sent,
            out.delivered
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{FilterCount, RecordRejection, Rejection, RetryInfo};

    fn report(sent: u32, filtered: u32, rejected: &[u32]) -> Report {
        Report {
            sent,
            filtered: vec![FilterCount {
                reason: FilterReason::Severity,
                count: filtered,
            }],
            rejected: rejected
                .iter()
                .map(|&i| RecordRejection {
                    index: i,
                    reason: format!("too big {i}"),
                })
                .collect(),
        }
    }

    #[test]
    fn delivered_with_individual_rejections() {
        let o = interpret(5, &Delivery::Delivered(report(3, 1, &[4])));
        assert_eq!(o.delivered, 3);
        assert_eq!(o.filtered, vec![("severity", 1)]);
        assert_eq!(o.dead, vec![(4, "too big 4".to_string())]);
        assert!(o.retry.is_none());
    }

    #[test]
    fn retry_only_pending() {
        let v = Delivery::Retry(RetryInfo {
            after_ms: 1500,
            pending: vec![2, 3, 9],
            reason: "429".into(),
            report: report(2, 0, &[]),
        });
        let o = interpret(4, &v);
        assert_eq!(o.delivered, 2);
        assert_eq!(o.retry.unwrap().indices, vec![2, 3]);
    }

    #[test]
    fn rejected_records() {
        let v = Delivery::Rejected(Rejection {
            reason: "401 bad token".into(),
            records: vec![0, 1],
            report: report(0, 1, &[]),
        });
        let o = interpret(3, &v);
        assert_eq!(o.dead.len(), 2);
        assert_eq!(o.delivered, 0);
    }
}
