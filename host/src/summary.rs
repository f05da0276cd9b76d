//! The end-of-run summary and the process exit codes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Every record read was delivered or filtered; nothing dead-lettered.
pub const EXIT_OK: i32 = 0;
/// Any other failure (input unreadable, plugin cannot load, a connection check failed...).
pub const EXIT_FAILURE: i32 = 1;
/// The pipeline file or the plugin's settings are wrong.
pub const EXIT_CONFIG: i32 = 2;
/// The run finished but some records are in the dead letter.
pub const EXIT_DEAD_LETTERED: i32 = 3;

#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Records read from the input (bad lines included).
    pub read: u64,
    pub delivered: u64,
    pub filtered: BTreeMap<String, u64>,
    /// Records sent again (retry verdicts and traps).
    pub retried: u64,
    pub dead_lettered: u64,
    /// Of the dead-lettered: input lines that were not valid records.
    pub bad_lines: u64,
    pub plugin_traps: u64,
    pub elapsed: Duration,
    pub dead_letter: Option<PathBuf>,
    /// Why the run stopped early, if it did.
    pub failure: Option<String>,
}

impl Summary {
    pub fn filtered_total(&self) -> u64 {
        self.filtered.values().sum()
    }

    /// Whether every record read is delivered, filtered or dead-lettered.
    pub fn all_accounted(&self) -> bool {
        self.read == self.delivered + self.filtered_total() + self.dead_lettered
    }

    pub fn events_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.read as f64 / s
        } else {
            0.0
        }
    }

    pub fn exit_code(&self) -> i32 {
        if self.failure.is_some() || !self.all_accounted() {
            EXIT_FAILURE
        } else if self.dead_lettered > 0 {
            EXIT_DEAD_LETTERED
        } else {
            EXIT_OK
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "read           {}", self.read)?;
        writeln!(f, "delivered      {}", self.delivered)?;
        let by: Vec<String> = self
            .filtered
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if by.is_empty() {
            writeln!(f, "filtered       0")?;
        } else {
            writeln!(
                f,
                "filtered       {} ({})",
                self.filtered_total(),
                by.join(", ")
            )?;
        }
        writeln!(f, "retried        {}", self.retried)?;
        write!(f, "dead-lettered  {}", self.dead_lettered)?;
        if self.bad_lines > 0 {
            write!(f, " ({} bad input lines)", self.bad_lines)?;
        }
        if self.dead_lettered > 0 {
            if let Some(p) = &self.dead_letter {
                write!(f, " -> {}", p.display())?;
            }
        }
        writeln!(f)?;
        if self.plugin_traps > 0 {
            writeln!(f, "plugin traps   {}", self.plugin_traps)?;
        }
        write!(
            f,
            "elapsed        {:.2}s ({:.0} events/s)",
            self.elapsed.as_secs_f64(),
            self.events_per_second()
        )?;
        if let Some(e) = &self.failure {
            write!(f, "\nfailed: {e}")?;
        }
        Ok(())
    }
}
