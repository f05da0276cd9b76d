//! `dbaudit demo`: the whole job on a built-in SentinelOne emulator, with no set-up and no
//! network. Starts the emulator on a free loopback port, checks the connection, ensures the
//! detection rules, forwards a bundled data set with a progress bar, runs every hunting query
//! in Deep Visibility and prints the hits, then the delivery summary.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use s1_emulator::{Emulator, EmulatorConfig, EmulatorHandle};

use crate::commands;
use crate::config::PipelineConfig;
use crate::dataset;
use crate::metrics::Metrics;
use crate::pipeline::{run_pipeline, RunOptions};
use crate::plugin;
use crate::summary::{EXIT_FAILURE, EXIT_OK};

/// Records in the demo data set.
pub const DEMO_RECORDS: u64 = 12_000;
const DEMO_SEED: u64 = 2024;

pub fn run() -> i32 {
    match demo() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            EXIT_FAILURE
        }
    }
}

fn demo() -> Result<i32> {
    let emulator =
        Emulator::start(EmulatorConfig::default()).context("starting the SentinelOne emulator")?;
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let input = dir.path().join("audit.jsonl");
    let file = std::fs::File::create(&input)?;
    let mut out = std::io::BufWriter::new(file);
    dataset::write_jsonl(&mut out, DEMO_RECORDS, DEMO_SEED)?;
    drop(out);
    let pipeline = write_pipeline(dir.path(), &input, &emulator)?;

    println!(
        "dbaudit demo: {DEMO_RECORDS} database audit records -> SentinelOne emulator at {}",
        emulator.url()
    );
    println!();
    println!("== Connection checks");
    if commands::test_connection(&pipeline) != EXIT_OK {
        bail!("the connection checks failed against the emulator");
    }

    let cfg = PipelineConfig::load(&pipeline).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut loaded = plugin::load(&cfg, Metrics::new())?;
    loaded
        .plugin
        .configure()
        .map_err(|t| anyhow::anyhow!("{t}"))?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    println!();
    println!("== Detection rules the plugin ensures as critical events arrive");
    for rule in loaded
        .plugin
        .detection_rules()
        .map_err(|t| anyhow::anyhow!("{t}"))?
    {
        println!("  {} [{}]", rule.name, rule.severity);
    }

    println!();
    println!("== Forwarding {DEMO_RECORDS} records");
    let summary = forward(&cfg)?;

    println!();
    println!("== Detection rules now in SentinelOne (the emulator)");
    for rule in emulator.rules() {
        let data = |k: &str| rule[k].as_str().unwrap_or("").to_string();
        println!(
            "  {} [{}; {} {}]",
            data("name"),
            data("severity"),
            data("scope"),
            data("scopeId")
        );
    }

    println!();
    println!("== Hunting queries (Deep Visibility, on the emulator)");
    run_queries(&mut loaded.plugin, &emulator)?;

    let stats = emulator.stats();
    println!();
    println!("== Delivery summary");
    println!("{summary}");
    println!(
        "emulator: {} events stored, {} rules ({} duplicate names), {} duplicate event ids",
        stats.accepted_events,
        emulator.rules().len(),
        stats.duplicate_rule_names.len(),
        stats.duplicate_event_ids.len()
    );
    Ok(summary.exit_code())
}

fn write_pipeline(
    dir: &Path,
    input: &Path,
    emulator: &EmulatorHandle,
) -> Result<std::path::PathBuf> {
    let path = dir.join("pipeline.toml");
    let text = format!(
        r#"[input]
kind = "jsonl"
path = "{input}"

[sink]
allow_hosts = ["{addr}"]

[sink.config]
name = "sentinelone-demo"
provider = "sentinelone"
console_url = "{url}"
api_token = "{token}"
account_id = "{account}"
site_id = "{site}"
batch_size = 500
flush_interval_seconds = 5

[delivery]
dead_letter = "{dead_letter}"
"#,
        input = input.display(),
        addr = emulator.addr(),
        url = emulator.url(),
        token = s1_emulator::DEFAULT_TOKEN,
        account = s1_emulator::DEFAULT_ACCOUNT_ID,
        site = s1_emulator::DEFAULT_SITE_ID,
        dead_letter = dir.join("dead-letter.jsonl").display(),
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

fn forward(cfg: &PipelineConfig) -> Result<crate::summary::Summary> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let metrics = Metrics::new();
        let bar = indicatif::ProgressBar::new(DEMO_RECORDS);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40.cyan/blue} {pos}/{len} records {per_sec} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let (b, m) = (bar.clone(), metrics.clone());
        let ticker = tokio::spawn(async move {
            loop {
                b.set_position(m.accounted());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let result = run_pipeline(
            cfg,
            RunOptions {
                metrics: metrics.clone(),
                ..RunOptions::default()
            },
        )
        .await;
        ticker.abort();
        bar.set_position(metrics.accounted());
        bar.finish();
        result.map_err(|e| anyhow::anyhow!("{e}"))
    })
}

fn run_queries(plugin: &mut crate::runtime::Plugin, emulator: &EmulatorHandle) -> Result<()> {
    let queries = plugin
        .hunting_queries(&[])
        .map_err(|t| anyhow::anyhow!("{t}"))?;
    let dv = DeepVisibility {
        base: emulator.url(),
        token: s1_emulator::DEFAULT_TOKEN.to_string(),
    };
    for q in &queries {
        let s1ql = q
            .queries
            .iter()
            .find(|t| t.language == "s1ql")
            .context("query without S1QL")?;
        let hits = dv.count(&s1ql.text)?;
        println!("{hits:>7} hits  {}", q.title);
        println!("           {}", s1ql.text);
    }
    Ok(())
}

/// A minimal Deep Visibility client: init-query, poll status, page through events.
pub struct DeepVisibility {
    pub base: String,
    pub token: String,
}

impl DeepVisibility {
    fn get(&self, path: &str) -> Result<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        let response = ureq::get(&url)
            .set("Authorization", &format!("ApiToken {}", self.token))
            .call()?;
        Ok(response.into_json()?)
    }

    /// How many stored events the S1QL query matches.
    pub fn count(&self, s1ql: &str) -> Result<u64> {
        let id = self.start(s1ql)?;
        let first = self.get(&format!("/web/api/v2.1/dv/events?queryId={id}&limit=1"))?;
        first["pagination"]["totalItems"]
            .as_u64()
            .context("no totalItems")
    }

    /// Every stored event the S1QL query matches, following the cursor.
    pub fn events(&self, s1ql: &str) -> Result<Vec<serde_json::Value>> {
        let id = self.start(s1ql)?;
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/web/api/v2.1/dv/events?queryId={id}&limit=1000");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&path)?;
            out.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["pagination"]["nextCursor"].as_str() {
                Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// Starts a query and waits until it has finished; returns its id.
    fn start(&self, s1ql: &str) -> Result<String> {
        let url = format!("{}/web/api/v2.1/dv/init-query", self.base);
        let body = serde_json::json!({
            "query": s1ql,
            "fromDate": "2000-01-01T00:00:00.000Z",
            "toDate": "2100-01-01T00:00:00.000Z",
            "limit": 20000,
        });
        let init: serde_json::Value = ureq::post(&url)
            .set("Authorization", &format!("ApiToken {}", self.token))
            .send_json(body)
            .map_err(|e| match e {
                ureq::Error::Status(code, r) => {
                    anyhow::anyhow!("init-query {code}: {}", r.into_string().unwrap_or_default())
                }
                other => other.into(),
            })?
            .into_json()?;
        let id = init["data"]["queryId"]
            .as_str()
            .context("no queryId")?
            .to_string();
        for _ in 0..100 {
            let status = self.get(&format!("/web/api/v2.1/dv/query-status?queryId={id}"))?;
            match status["data"]["responseState"].as_str() {
                Some("FINISHED") => return Ok(id),
                Some("FAILED") => bail!("query failed: {s1ql}"),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        bail!("query did not finish: {s1ql}")
    }
}
