//! The audit record as the plugin sees it: plain Rust, mirroring the WIT `audit-record`.
//! The bindings move the WIT record's strings in here without copying them.

/// Audit severity as the collector reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// The kind of audit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    AuditEvent,
    Alert,
    AiDetection,
    PolicyViolation,
    ClassificationFinding,
    AuthSuccess,
    AuthFailure,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::AuditEvent,
        EventKind::Alert,
        EventKind::AiDetection,
        EventKind::PolicyViolation,
        EventKind::ClassificationFinding,
        EventKind::AuthSuccess,
        EventKind::AuthFailure,
    ];

    /// The name used in input records and in `customFields.event_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AuditEvent => "audit_event",
            EventKind::Alert => "alert",
            EventKind::AiDetection => "ai_detection",
            EventKind::PolicyViolation => "policy_violation",
            EventKind::ClassificationFinding => "classification_finding",
            EventKind::AuthSuccess => "auth_success",
            EventKind::AuthFailure => "auth_failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The `event_types` setting this kind is filtered by: logins are audit events.
    pub fn category(self) -> EventCategory {
        match self {
            EventKind::AuditEvent | EventKind::AuthSuccess | EventKind::AuthFailure => {
                EventCategory::AuditEvents
            }
            EventKind::Alert => EventCategory::Alerts,
            EventKind::AiDetection => EventCategory::AiDetections,
            EventKind::PolicyViolation => EventCategory::PolicyViolations,
            EventKind::ClassificationFinding => EventCategory::ClassificationFindings,
        }
    }
}

/// The values of the `event_types` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventCategory {
    AuditEvents,
    Alerts,
    AiDetections,
    PolicyViolations,
    ClassificationFindings,
}

impl EventCategory {
    pub const ALL: [EventCategory; 5] = [
        EventCategory::AuditEvents,
        EventCategory::Alerts,
        EventCategory::AiDetections,
        EventCategory::PolicyViolations,
        EventCategory::ClassificationFindings,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventCategory::AuditEvents => "audit_events",
            EventCategory::Alerts => "alerts",
            EventCategory::AiDetections => "ai_detections",
            EventCategory::PolicyViolations => "policy_violations",
            EventCategory::ClassificationFindings => "classification_findings",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Text shared by the records of a batch (a database name, a user...): cloning it is a
/// reference-count increment, so the bindings hand each record the batch's text, not a copy.
pub type Text = std::rc::Rc<str>;

/// One database audit record.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub id: String,
    /// Milliseconds since the Unix epoch, UTC.
    pub timestamp_ms: i64,
    pub event_type: EventKind,
    pub severity: Severity,
    pub database: Option<Text>,
    pub db_type: Option<Text>,
    pub db_host: Option<Text>,
    pub actor_user: Option<Text>,
    pub client_ip: Option<Text>,
    pub application: Option<Text>,
    pub action_type: Option<Text>,
    pub object: Option<Text>,
    pub schema: Option<Text>,
    pub statement: Option<String>,
    pub rows_affected: Option<u64>,
    pub contains_pii: Option<bool>,
    pub data_types: Vec<Text>,
    pub session_id: Option<String>,
    /// Unknown input keys as one JSON object text; empty when none.
    pub extra_json: String,
}

impl AuditRecord {
    /// A record with only the required fields set.
    pub fn new(
        id: impl Into<String>,
        timestamp_ms: i64,
        event_type: EventKind,
        severity: Severity,
    ) -> Self {
        AuditRecord {
            id: id.into(),
            timestamp_ms,
            event_type,
            severity,
            database: None,
            db_type: None,
            db_host: None,
            actor_user: None,
            client_ip: None,
            application: None,
            action_type: None,
            object: None,
            schema: None,
            statement: None,
            rows_affected: None,
            contains_pii: None,
            data_types: Vec::new(),
            session_id: None,
            extra_json: String::new(),
        }
    }
}
