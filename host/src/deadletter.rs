//! The dead letter: one JSON object a line, `{record, reason, time, attempts, line?}`, where
//! `record` is the original input (a JSON object, or the raw text of a line that was not one).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secrets::Masker;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    pub record: Value,
    pub reason: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// How many times delivery was attempted (0: never sent, e.g. a bad line).
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

/// Appends dead letters to a file (created on the first letter), flushed per letter.
pub struct DeadLetterWriter {
    path: PathBuf,
    file: Option<File>,
    masker: Masker,
    written: u64,
}

impl DeadLetterWriter {
    pub fn new(path: PathBuf, masker: Masker) -> DeadLetterWriter {
        DeadLetterWriter {
            path,
            file: None,
            masker,
            written: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn write(
        &mut self,
        record: Value,
        reason: &str,
        attempts: u32,
        line: Option<u64>,
    ) -> Result<()> {
        let letter = DeadLetter {
            record,
            reason: self.masker.mask(reason),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            attempts,
            line,
        };
        let text = self.masker.mask(&serde_json::to_string(&letter)?);
        if self.file.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).ok();
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("cannot open the dead letter {}", self.path.display()))?;
            self.file = Some(f);
        }
        let f = self.file.as_mut().unwrap();
        writeln!(f, "{text}")
            .and_then(|_| f.flush())
            .with_context(|| format!("cannot write to the dead letter {}", self.path.display()))?;
        tracing::warn!(target: "dbaudit::deadletter", line = letter.line, attempts, "dead-lettered: {}", letter.reason);
        self.written += 1;
        Ok(())
    }
}

/// Read a dead-letter file (for `replay`); a line that is not a dead letter is an error.
pub fn read(path: &Path) -> Result<Vec<DeadLetter>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let d: DeadLetter = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a dead letter", path.display(), i + 1))?;
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_masking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dl.jsonl");
        let mut w = DeadLetterWriter::new(p.clone(), Masker::new(["tok-secret".to_string()]));
        w.write(
            serde_json::json!({"id":"1"}),
            "401: token tok-secret refused",
            2,
            None,
        )
        .unwrap();
        w.write(Value::String("{bad".into()), "not valid JSON", 0, Some(3))
            .unwrap();
        let all = read(&p).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].reason, "401: token ******** refused");
        assert_eq!(all[1].line, Some(3));
        assert!(!std::fs::read_to_string(&p).unwrap().contains("tok-secret"));
    }
}
