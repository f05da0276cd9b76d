//! Which records are forwarded: `enabled`, `event_types`, `severity_filter`, `database_filter`.

use crate::config::Settings;
use crate::record::AuditRecord;

/// Why a record was not forwarded, though nothing is wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterReason {
    Disabled,
    EventType,
    Severity,
    Database,
}

impl FilterReason {
    pub const ALL: [FilterReason; 4] = [
        FilterReason::Disabled,
        FilterReason::EventType,
        FilterReason::Severity,
        FilterReason::Database,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FilterReason::Disabled => "disabled",
            FilterReason::EventType => "event_type",
            FilterReason::Severity => "severity",
            FilterReason::Database => "database",
        }
    }
}

/// Counts of filtered records per reason, in `FilterReason::ALL` order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterCounts([u32; 4]);

impl FilterCounts {
    pub fn add(&mut self, reason: FilterReason) {
        self.0[reason as usize] += 1;
    }

    pub fn get(&self, reason: FilterReason) -> u32 {
        self.0[reason as usize]
    }

    pub fn total(&self) -> u32 {
        self.0.iter().sum()
    }

    /// The non-zero counts.
    pub fn iter(&self) -> impl Iterator<Item = (FilterReason, u32)> + '_ {
        FilterReason::ALL
            .into_iter()
            .map(|r| (r, self.get(r)))
            .filter(|(_, n)| *n > 0)
    }
}

/// Why `record` should not be forwarded, or None to forward it.
pub fn filter_reason(settings: &Settings, record: &AuditRecord) -> Option<FilterReason> {
    if !settings.enabled {
        return Some(FilterReason::Disabled);
    }
    if !settings.event_types.contains(&record.event_type.category()) {
        return Some(FilterReason::EventType);
    }
    if !settings.severity_filter.contains(&record.severity) {
        return Some(FilterReason::Severity);
    }
    if !settings.database_filter.is_empty() {
        let wanted = record
            .database
            .as_deref()
            .is_some_and(|db| settings.database_filter.iter().any(|f| f == db));
        if !wanted {
            return Some(FilterReason::Database);
        }
    }
    None
}
