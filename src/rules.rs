//! Custom Detection Rules: the spec's exfiltration rule and one rule per critical event kind.
//!
//! Ensuring is idempotent (look the rule up by name before creating it, so a POST retried after
//! a 5xx never makes a duplicate) and polite (at most 30 requests a minute to the rules path).

use crate::config::Settings;
use crate::io::{Io, Level, Method, Request, SHORT_TIMEOUT_MS};
use crate::mitre::{self, Mitre, EXFILTRATION};
use crate::policy::error_detail;
use crate::queries::quote;
use crate::record::EventKind;
use std::collections::VecDeque;

pub const RULES_PATH: &str = "/web/api/v2.1/cloud-detection/rules";
pub const EXFILTRATION_RULE: &str = "DB Audit - Suspicious Data Exfiltration";
/// SentinelOne allows 30 requests a minute on the rules path.
pub const RULES_REQUESTS_PER_MINUTE: usize = 30;
/// After a failure, wait this long before trying that rule again (the request budget above
/// bounds the load whatever this is).
pub const RETRY_LATER_MS: i64 = 5_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub description: String,
    /// Low | Medium | High | Critical.
    pub severity: &'static str,
    pub s1ql: String,
    /// The event kind it covers; None for the exfiltration rule.
    pub kind: Option<EventKind>,
}

/// Rule title and severity per critical kind.
const KIND_RULES: [(EventKind, &str, &str); 5] = [
    (
        EventKind::AuthFailure,
        "Critical Authentication Failure",
        "High",
    ),
    (
        EventKind::PolicyViolation,
        "Critical Policy Violation",
        "High",
    ),
    (EventKind::AiDetection, "Critical AI Detection", "High"),
    (
        EventKind::ClassificationFinding,
        "Critical Classification Finding",
        "Medium",
    ),
    (EventKind::Alert, "Critical Database Alert", "High"),
];

const ALERT_DETAILS: &str =
    "Alert details: CustomFields.actor_user, CustomFields.database, CustomFields.client_ip, CustomFields.rows_affected.";

fn base_query(settings: &Settings) -> String {
    format!(
        "EventType = \"Custom\" AND EventSource = {}",
        quote(&settings.event_source)
    )
}

fn mitre_text(m: &Mitre) -> String {
    format!(
        "MITRE ATT&CK: Tactic {} ({}), Technique {} ({}).",
        m.tactic, m.tactic_id, m.technique, m.technique_id
    )
}

/// The spec's rule, exactly.
pub fn exfiltration_rule(settings: &Settings) -> Rule {
    Rule {
        name: EXFILTRATION_RULE.to_string(),
        description: format!(
            "Detects queries returning large amounts of sensitive data. {} {ALERT_DETAILS}",
            mitre_text(&EXFILTRATION)
        ),
        severity: "High",
        s1ql: format!(
            "{} AND CustomFields.action_type = \"SELECT\" AND CustomFields.rows_affected > {} AND CustomFields.contains_pii = true",
            base_query(settings),
            mitre::EXFILTRATION_ROWS
        ),
        kind: None,
    }
}

/// The rule for critical events of `kind`, if the kind has one.
pub fn kind_rule(settings: &Settings, kind: EventKind) -> Option<Rule> {
    let (_, title, severity) = KIND_RULES.iter().find(|(k, _, _)| *k == kind)?;
    let m = mitre::for_kind(kind)?;
    Some(Rule {
        name: format!("DB Audit - {title}"),
        description: format!(
            "Detects critical {} events from database audit. {} {ALERT_DETAILS}",
            kind.as_str(),
            mitre_text(m)
        ),
        severity,
        s1ql: format!(
            "{} AND CustomFields.event_type = \"{}\" AND CustomFields.severity = \"critical\"",
            base_query(settings),
            kind.as_str()
        ),
        kind: Some(kind),
    })
}

/// Every rule the plugin may create with these settings.
pub fn all_rules(settings: &Settings) -> Vec<Rule> {
    if !settings.custom_detection {
        return Vec::new();
    }
    let mut rules = vec![exfiltration_rule(settings)];
    rules.extend(
        KIND_RULES
            .iter()
            .filter_map(|(k, _, _)| kind_rule(settings, *k)),
    );
    rules
}

/// The POST body: the reference's shape, scoped to the site when set, else the account.
pub fn create_body(settings: &Settings, rule: &Rule) -> serde_json::Value {
    let filter = match &settings.site_id {
        Some(site) => serde_json::json!({ "siteIds": [site] }),
        None => serde_json::json!({ "accountIds": [settings.account_id] }),
    };
    serde_json::json!({
        "data": {
            "name": rule.name,
            "description": rule.description,
            "severity": rule.severity,
            "expirationMode": "Permanent",
            "queryType": "events",
            "queryLang": "1.0",
            "status": "Active",
            "s1ql": rule.s1ql,
            "treatAsThreat": "UNDEFINED",
            "networkQuarantine": false,
        },
        "filter": filter,
    })
}

/// Remembers which rules exist and how many rules requests were made lately.
#[derive(Debug, Default)]
pub struct RuleKeeper {
    ensured: Vec<String>,
    /// Rule name -> earliest time to try again after a failure.
    backoff: Vec<(String, i64)>,
    recent_requests: VecDeque<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnsureResult {
    Existed,
    Created,
    /// Not tried now: the request budget or a recent failure says wait.
    Deferred(String),
    Failed(String),
}

impl RuleKeeper {
    pub const fn new() -> Self {
        RuleKeeper {
            ensured: Vec::new(),
            backoff: Vec::new(),
            recent_requests: VecDeque::new(),
        }
    }

    pub fn is_ensured(&self, name: &str) -> bool {
        self.ensured.iter().any(|n| n == name)
    }

    /// Makes sure `rule` exists: look it up by name, create it only if absent.
    pub fn ensure(&mut self, settings: &Settings, io: &mut dyn Io, rule: &Rule) -> EnsureResult {
        if self.is_ensured(&rule.name) {
            return EnsureResult::Existed;
        }
        let now = io.now_ms();
        if let Some((_, until)) = self.backoff.iter().find(|(n, _)| *n == rule.name) {
            if now < *until {
                return EnsureResult::Deferred(format!(
                    "retrying after an earlier failure in {} s",
                    (until - now) / 1000
                ));
            }
        }
        // Looking up and creating take two requests.
        if !self.budget_allows(now, 2) {
            return EnsureResult::Deferred(
                "rules API budget (30 requests/minute) used up; will retry".into(),
            );
        }
        let result = self.lookup(settings, io, &rule.name).and_then(|exists| {
            if exists {
                Ok(EnsureResult::Existed)
            } else {
                self.create(settings, io, rule)
                    .map(|_| EnsureResult::Created)
            }
        });
        match result {
            Ok(r) => {
                self.ensured.push(rule.name.clone());
                self.backoff.retain(|(n, _)| *n != rule.name);
                r
            }
            Err(message) => {
                let message = settings.redact(message);
                self.backoff.retain(|(n, _)| *n != rule.name);
                self.backoff.push((rule.name.clone(), now + RETRY_LATER_MS));
                io.log(
                    Level::Warn,
                    &format!(
                        "detection rule \"{}\": {message}; events keep flowing, will retry",
                        rule.name
                    ),
                );
                EnsureResult::Failed(message)
            }
        }
    }

    fn budget_allows(&mut self, now: i64, requests: usize) -> bool {
        while self
            .recent_requests
            .front()
            .is_some_and(|t| now - t >= 60_000)
        {
            self.recent_requests.pop_front();
        }
        if self.recent_requests.len() + requests > RULES_REQUESTS_PER_MINUTE {
            return false;
        }
        self.recent_requests
            .extend(std::iter::repeat_n(now, requests));
        true
    }

    fn lookup(&mut self, settings: &Settings, io: &mut dyn Io, name: &str) -> Result<bool, String> {
        let scope = match &settings.site_id {
            Some(site) => format!("siteIds={site}"),
            None => format!("accountIds={}", settings.account_id),
        };
        let path = format!("{RULES_PATH}?name={}&{scope}", percent_encode(name));
        let response = io
            .send(&Request {
                method: Method::Get,
                console: &settings.console_url,
                path: &path,
                api_token: Some(settings.api_token.expose()),
                body: &[],
                timeout_ms: SHORT_TIMEOUT_MS,
            })
            .map_err(|e| format!("lookup failed: {}", e.message))?;
        if !(200..300).contains(&response.status) {
            return Err(http_failure("lookup", response.status, &response.body));
        }
        let body: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| format!("lookup answer unreadable: {e}"))?;
        Ok(body["data"]
            .as_array()
            .is_some_and(|rules| rules.iter().any(|r| r["name"].as_str() == Some(name))))
    }

    fn create(&mut self, settings: &Settings, io: &mut dyn Io, rule: &Rule) -> Result<(), String> {
        let body = create_body(settings, rule).to_string();
        let response = io
            .send(&Request {
                method: Method::Post,
                console: &settings.console_url,
                path: RULES_PATH,
                api_token: Some(settings.api_token.expose()),
                body: body.as_bytes(),
                timeout_ms: SHORT_TIMEOUT_MS,
            })
            .map_err(|e| format!("create failed: {}", e.message))?;
        if !(200..300).contains(&response.status) {
            return Err(http_failure("create", response.status, &response.body));
        }
        io.log(
            Level::Info,
            &format!("created detection rule \"{}\"", rule.name),
        );
        Ok(())
    }
}

fn http_failure(what: &str, status: u16, body: &[u8]) -> String {
    let hint = match status {
        401 => ": verify the API token is valid and not expired",
        403 => ": the token's user needs the Custom Detection Rules permission",
        _ => "",
    };
    let detail = error_detail(body)
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    format!("{what} answered HTTP {status}{detail}{hint}")
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
