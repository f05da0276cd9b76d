//! The spec's Deep Visibility hunting queries (S1QL) with a PowerQuery form of each for
//! Singularity Data Lake, built for the configured event source.

use crate::config::Settings;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HuntingQuery {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub s1ql: String,
    pub powerquery: String,
    /// (name, value) the query was built with.
    pub parameters: Vec<(&'static str, String)>,
}

/// Parameters the queries take, with the spec's literals as defaults.
pub const PARAMETERS: [(&str, &str); 3] = [
    ("severity", "critical"),
    ("actor_user", "app_user"),
    ("client_ip", "10.0.1.50"),
];

/// Builds the seven queries. `given` overrides parameter defaults; unknown names are ignored.
pub fn hunting_queries(settings: &Settings, given: &[(String, String)]) -> Vec<HuntingQuery> {
    let param = |name: &'static str| -> (&'static str, String) {
        let default = PARAMETERS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or_default();
        let value = given
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or(default);
        (name, value.to_string())
    };
    let src = quote(&settings.event_source);
    let base = format!("EventType = \"Custom\" AND EventSource = {src}");
    let pq = format!(
        "eventType = 'Custom' eventSource = {}",
        pq_quote(&settings.event_source)
    );
    let severity = param("severity");
    let user = param("actor_user");
    let ip = param("client_ip");
    vec![
        HuntingQuery {
            id: "all_events",
            title: "All DB Audit events",
            description: "Every database audit event forwarded by this integration; the starting point of a hunt.",
            s1ql: base.clone(),
            powerquery: format!("{pq} | group ct=count() by customFields.event_type | sort -ct"),
            parameters: vec![],
        },
        HuntingQuery {
            id: "by_severity",
            title: "Events by severity",
            description: "Database events of one severity (critical by default): the ones to triage first.",
            s1ql: format!("{base} AND CustomFields.severity = {}", quote(&severity.1)),
            powerquery: format!(
                "{pq} customFields.severity = {} | group ct=count() by customFields.event_type, customFields.database | sort -ct | limit 50",
                pq_quote(&severity.1)
            ),
            parameters: vec![severity],
        },
        HuntingQuery {
            id: "large_data_access",
            title: "Large data access",
            description: "SELECTs returning more than 10,000 rows: bulk reads that may be data collection or exfiltration.",
            s1ql: format!("{base} AND CustomFields.action_type = \"SELECT\" AND CustomFields.rows_affected > 10000"),
            powerquery: format!(
                "{pq} customFields.action_type = 'SELECT' customFields.rows_affected > 10000 | group ct=count(), rows=sum(customFields.rows_affected) by customFields.actor_user, customFields.client_ip | sort -rows | limit 50"
            ),
            parameters: vec![],
        },
        HuntingQuery {
            id: "user_activity",
            title: "Specific user activity",
            description: "Everything one database user did: follow an account across databases and clients.",
            s1ql: format!("{base} AND CustomFields.actor_user = {}", quote(&user.1)),
            powerquery: format!(
                "{pq} customFields.actor_user = {} | group ct=count() by customFields.database, customFields.action_type | sort -ct",
                pq_quote(&user.1)
            ),
            parameters: vec![user],
        },
        HuntingQuery {
            id: "failed_auth",
            title: "Failed authentication attempts",
            description: "Failed database logins: brute force or credential stuffing (MITRE T1110) when many come from one client.",
            s1ql: format!("{base} AND CustomFields.event_type = \"auth_failure\""),
            powerquery: format!(
                "{pq} customFields.event_type = 'auth_failure' | group ct=count() by customFields.client_ip, customFields.actor_user | sort -ct | limit 50"
            ),
            parameters: vec![],
        },
        HuntingQuery {
            id: "pii_access",
            title: "PII access events",
            description: "Queries that touched personal data (contains_pii = true): who reads customer PII, from where.",
            s1ql: format!("{base} AND CustomFields.contains_pii = true"),
            powerquery: format!(
                "{pq} customFields.contains_pii = true | group ct=count() by customFields.actor_user, customFields.object | sort -ct | limit 50"
            ),
            parameters: vec![],
        },
        HuntingQuery {
            id: "endpoint_correlation",
            title: "Correlation with endpoint events",
            description: "Database events and endpoint process events from one client IP: ties a database session to the machine and process behind it (Storyline).",
            s1ql: format!(
                "EventType IN (\"Custom\", \"Process\") AND ((EventSource = {src} AND CustomFields.client_ip = {ip}) OR (SourceIP = {ip}))",
                ip = quote(&ip.1)
            ),
            powerquery: format!(
                "(eventSource = {} customFields.client_ip = {ip}) OR src.ip.address = {ip} | sort eventTime",
                pq_quote(&settings.event_source),
                ip = pq_quote(&ip.1)
            ),
            parameters: vec![ip],
        },
    ]
}

/// An S1QL string literal.
pub fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A PowerQuery string literal.
fn pq_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}
