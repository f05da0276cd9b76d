//! The MITRE ATT&CK mapping: which audit events map to which tactic and technique.
//!
//! One table, used for the `mitre_tactic` / `mitre_technique` custom fields and for the
//! detection rules. The README shows it.

use crate::record::{AuditRecord, EventKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mitre {
    pub tactic: &'static str,
    pub tactic_id: &'static str,
    pub technique: &'static str,
    pub technique_id: &'static str,
}

impl Mitre {
    /// As sent in `customFields.mitre_tactic`, e.g. `Collection (TA0009)`.
    pub fn tactic_label(&self) -> String {
        format!("{} ({})", self.tactic, self.tactic_id)
    }

    pub fn technique_label(&self) -> String {
        format!("{} ({})", self.technique, self.technique_id)
    }
}

/// The spec's exfiltration pattern: a large SELECT of PII.
pub const EXFILTRATION: Mitre = Mitre {
    tactic: "Collection",
    tactic_id: "TA0009",
    technique: "Data from Information Repositories",
    technique_id: "T1213",
};

/// Rows above which a PII SELECT counts as possible exfiltration (the spec's rule).
pub const EXFILTRATION_ROWS: u64 = 10_000;

/// Critical event kinds and what they indicate. Audit events and successful logins have no
/// mapping of their own (only the exfiltration pattern).
pub const BY_KIND: [(EventKind, Mitre); 5] = [
    (
        EventKind::AuthFailure,
        Mitre {
            tactic: "Credential Access",
            tactic_id: "TA0006",
            technique: "Brute Force",
            technique_id: "T1110",
        },
    ),
    (
        EventKind::PolicyViolation,
        Mitre {
            tactic: "Privilege Escalation",
            tactic_id: "TA0004",
            technique: "Valid Accounts",
            technique_id: "T1078",
        },
    ),
    (EventKind::AiDetection, EXFILTRATION),
    (
        EventKind::ClassificationFinding,
        Mitre {
            tactic: "Collection",
            tactic_id: "TA0009",
            technique: "Data Staged",
            technique_id: "T1074",
        },
    ),
    (
        EventKind::Alert,
        Mitre {
            tactic: "Impact",
            tactic_id: "TA0040",
            technique: "Data Manipulation",
            technique_id: "T1565",
        },
    ),
];

pub fn for_kind(kind: EventKind) -> Option<&'static Mitre> {
    BY_KIND.iter().find(|(k, _)| *k == kind).map(|(_, m)| m)
}

/// True for the spec's "Suspicious Data Exfiltration" pattern.
pub fn is_exfiltration(record: &AuditRecord) -> bool {
    record
        .action_type
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case("SELECT"))
        && record.rows_affected.is_some_and(|n| n > EXFILTRATION_ROWS)
        && record.contains_pii == Some(true)
}

/// The mapping an event carries, if any: its kind's, else the exfiltration pattern's.
pub fn for_record(record: &AuditRecord) -> Option<&'static Mitre> {
    for_kind(record.event_type).or_else(|| is_exfiltration(record).then_some(&EXFILTRATION))
}
