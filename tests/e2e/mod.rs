//! End-to-end support: the built component in the real host, against the emulator, over
//! loopback HTTP.
#![allow(dead_code)]

use dbaudit_host::{run_pipeline, PipelineConfig, RunOptions, Summary};
use s1_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub const TOKEN: &str = s1_emulator::DEFAULT_TOKEN;
pub const ACCOUNT: &str = s1_emulator::DEFAULT_ACCOUNT_ID;
pub const SITE: &str = s1_emulator::DEFAULT_SITE_ID;

/// One test's world: an emulator and a scratch directory.
pub struct World {
    pub emulator: EmulatorHandle,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> World {
        World {
            emulator: Emulator::start(EmulatorConfig::default()).expect("emulator"),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes records (one JSON value a line) as the input file.
    pub fn input(&self, records: &[Value]) -> PathBuf {
        let text: String = records.iter().map(|r| format!("{r}\n")).collect();
        let path = self.path("audit.jsonl");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A pipeline file to this world's emulator. `settings` are extra `[sink.config]` lines;
    /// `input_extra` extra `[input]` lines.
    pub fn pipeline_to(&self, console_url: &str, settings: &str, input_extra: &str) -> PathBuf {
        let path = self.path("pipeline.toml");
        let text = format!(
            r#"[input]
kind = "jsonl"
path = "audit.jsonl"
{input_extra}

[sink]
allow_hosts = ["{addr}"]

[sink.config]
name = "e2e"
console_url = "{console_url}"
api_token = "{TOKEN}"
account_id = "{ACCOUNT}"
site_id = "{SITE}"
{settings}

[delivery]
dead_letter = "dead-letter.jsonl"
shutdown_grace_seconds = 5
"#,
            addr = self.emulator.addr(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn pipeline(&self, settings: &str) -> PathBuf {
        self.pipeline_to(&self.emulator.url(), settings, "")
    }

    /// The dead letter's entries.
    pub fn dead_letters(&self) -> Vec<Value> {
        match std::fs::read_to_string(self.path("dead-letter.jsonl")) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn event_requests(&self) -> u64 {
        let stats = self.emulator.stats();
        stats
            .requests_per_path
            .iter()
            .filter(|(p, _)| p.ends_with("cloud-detection/events"))
            .map(|(_, n)| *n)
            .sum()
    }
}

/// Runs a pipeline file to its end.
pub fn run(pipeline: &Path) -> Summary {
    run_with(pipeline, RunOptions::default())
}

pub fn run_with(pipeline: &Path, options: RunOptions) -> Summary {
    let cfg = PipelineConfig::load(pipeline).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run_pipeline(&cfg, options))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The record of DESIGN.md "The input record" (the spec's example).
pub fn spec_record() -> Value {
    json!({"id":"evt-0001","timestamp":"2024-01-15T10:30:45.123Z","event_type":"audit_event","severity":"warning",
        "database":"production-postgres","db_type":"postgresql","db_host":"db.example.com","actor_user":"app_user",
        "client_ip":"10.0.1.50","application":"backend-api","action_type":"SELECT","object":"customers",
        "schema":"public","statement":"SELECT * FROM customers WHERE...","rows_affected":1500,
        "contains_pii":true,"data_types":["email","phone"]})
}

pub fn records(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut r = spec_record();
            r["id"] = json!(format!("evt-{i:05}"));
            r["rows_affected"] = json!(i);
            r
        })
        .collect()
}

/// A generated, realistic data set (dbaudit's own generator).
pub fn dataset(n: u64, seed: u64) -> Vec<Value> {
    dbaudit_host::dataset::Generator::new(n, seed).collect()
}
