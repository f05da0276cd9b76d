//! The plugin's state and its operations, over plain types: what the `sink` interface does.
//! The bindings translate to and from WIT and nothing else.

use crate::config::{ConfigError, Settings};
use crate::connection::{self, Check};
use crate::deliver::{self, KindSet, Verdict};
use crate::io::{Io, Level};
use crate::payload::MAX_REQUEST_BYTES;
use crate::queries::{self, HuntingQuery};
use crate::record::AuditRecord;
use crate::rules::{self, EnsureResult, Rule, RuleKeeper};

/// How the host should batch (the WIT `batch-plan`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPlan {
    pub max_events: u32,
    pub max_bytes: u64,
    pub flush_interval_ms: u64,
    pub retry_attempts: u32,
}

#[derive(Debug)]
pub struct Plugin {
    settings: Option<Settings>,
    rules: RuleKeeper,
    /// Critical kinds delivered so far: each wants its detection rule.
    kinds_wanting_rules: KindSet,
}

/// Rules are ensured only while the whole deliver call is younger than this.
pub const RULES_AFTER_EVENTS_MS: u64 = 10_000;

impl Default for Plugin {
    fn default() -> Self {
        Plugin::new()
    }
}

const NOT_CONFIGURED: &str = "the plugin is not configured: the host must call configure first";

impl Plugin {
    pub const fn new() -> Self {
        Plugin {
            settings: None,
            rules: RuleKeeper::new(),
            kinds_wanting_rules: KindSet::EMPTY,
        }
    }

    pub fn configure(&mut self, settings_json: &str) -> Result<BatchPlan, Vec<ConfigError>> {
        let settings = Settings::from_json(settings_json)?;
        let plan = BatchPlan {
            max_events: settings.batch_size,
            max_bytes: MAX_REQUEST_BYTES as u64,
            flush_interval_ms: u64::from(settings.flush_interval_seconds) * 1000,
            retry_attempts: settings.retry_attempts,
        };
        if self.settings.as_ref() != Some(&settings) {
            *self = Plugin {
                settings: Some(settings),
                ..Plugin::default()
            };
        }
        Ok(plan)
    }

    pub fn settings(&self) -> Option<&Settings> {
        self.settings.as_ref()
    }

    pub fn deliver(&mut self, io: &mut dyn Io, batch: &[AuditRecord], attempt: u32) -> Verdict {
        let Some(settings) = &self.settings else {
            return Verdict::Rejected {
                reason: NOT_CONFIGURED.into(),
                records: (0..batch.len() as u32).collect(),
                report: Default::default(),
            };
        };
        let started = io.monotonic_ms();
        let verdict = deliver::deliver(settings, io, batch, attempt);
        if settings.custom_detection && verdict.report().sent > 0 {
            for kind in verdict.report().critical_kinds_sent.iter() {
                self.kinds_wanting_rules.insert(kind);
            }
            self.ensure_wanted_rules(io, started);
        }
        verdict
    }

    /// After events went out: the exfiltration rule, and a rule per critical kind seen.
    /// Failures are logged and retried on a later call; they never change the verdict, and
    /// rules work stops once the call is `RULES_AFTER_EVENTS_MS` old, so delivery is never
    /// held up for long.
    fn ensure_wanted_rules(&mut self, io: &mut dyn Io, call_started: u64) {
        let Some(settings) = &self.settings else {
            return;
        };
        let mut wanted = vec![rules::exfiltration_rule(settings)];
        wanted.extend(
            self.kinds_wanting_rules
                .iter()
                .filter_map(|k| rules::kind_rule(settings, k)),
        );
        for rule in wanted {
            if io.monotonic_ms().saturating_sub(call_started) >= RULES_AFTER_EVENTS_MS {
                io.log(
                    Level::Debug,
                    "detection rules: this call's time budget is used; continuing later",
                );
                return;
            }
            if !self.rules.is_ensured(&rule.name) {
                if let EnsureResult::Deferred(why) = self.rules.ensure(settings, io, &rule) {
                    io.log(
                        Level::Debug,
                        &format!("detection rule \"{}\" deferred: {why}", rule.name),
                    );
                }
            }
        }
    }

    pub fn check_connection(&mut self, io: &mut dyn Io) -> Vec<Check> {
        match &self.settings {
            Some(settings) => connection::check_connection(settings, io),
            None => vec![Check {
                name: "configured",
                ok: false,
                message: NOT_CONFIGURED.into(),
            }],
        }
    }

    pub fn hunting_queries(&self, parameters: &[(String, String)]) -> Vec<HuntingQuery> {
        self.settings
            .as_ref()
            .map(|s| queries::hunting_queries(s, parameters))
            .unwrap_or_default()
    }

    pub fn detection_rules(&self) -> Vec<Rule> {
        self.settings
            .as_ref()
            .map(rules::all_rules)
            .unwrap_or_default()
    }

    /// Ensures every rule now (the `rules --apply` command); one check per rule.
    pub fn ensure_detection_rules(&mut self, io: &mut dyn Io) -> Vec<Check> {
        let Some(settings) = &self.settings else {
            return vec![Check {
                name: "configured",
                ok: false,
                message: NOT_CONFIGURED.into(),
            }];
        };
        if !settings.custom_detection {
            return vec![Check {
                name: "custom_detection",
                ok: true,
                message: "custom_detection is false: no rules to ensure".into(),
            }];
        }
        rules::all_rules(settings)
            .iter()
            .map(|rule| {
                let (ok, message) = match self.rules.ensure(settings, io, rule) {
                    EnsureResult::Existed => (true, format!("\"{}\" exists", rule.name)),
                    EnsureResult::Created => (true, format!("\"{}\" created", rule.name)),
                    EnsureResult::Deferred(why) | EnsureResult::Failed(why) => {
                        (false, format!("\"{}\": {why}", rule.name))
                    }
                };
                Check {
                    name: "detection rule",
                    ok,
                    message,
                }
            })
            .collect()
    }
}
