//! The CLI's commands, callable in-process. Each returns the process exit code.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::config::{ConfigErrors, PipelineConfig};
use crate::deadletter;
use crate::input::InputItem;
use crate::metrics::{self, Metrics};
use crate::pipeline::{run_pipeline, RunError, RunOptions, Source};
use crate::plugin;
use crate::record::{from_json, Envelope};
use crate::runtime::QueryParameter;
use crate::summary::{EXIT_CONFIG, EXIT_FAILURE, EXIT_OK};

fn load_config(path: &Path) -> Result<PipelineConfig, i32> {
    load_config_to(path, &mut std::io::stderr())
}

fn load_config_to(path: &Path, err: &mut dyn Write) -> Result<PipelineConfig, i32> {
    PipelineConfig::load(path).map_err(|e: ConfigErrors| {
        let _ = writeln!(err, "{}: configuration errors:", path.display());
        for p in &e.0 {
            let _ = writeln!(err, "  {p}");
        }
        EXIT_CONFIG
    })
}

/// A configured plugin for the one-shot commands (blocking; call outside async code).
fn configured(cfg: &PipelineConfig) -> Result<plugin::Loaded, i32> {
    configured_to(cfg, &mut std::io::stderr())
}

fn configured_to(cfg: &PipelineConfig, err: &mut dyn Write) -> Result<plugin::Loaded, i32> {
    let mut loaded = plugin::load(cfg, Metrics::new()).map_err(|e| {
        let _ = writeln!(err, "error: {e:#}");
        EXIT_FAILURE
    })?;
    match loaded.plugin.configure() {
        Ok(Ok(_)) => Ok(loaded),
        Ok(Err(errs)) => {
            let _ = writeln!(err, "the plugin refused its settings:");
            for e in errs {
                let _ = writeln!(err, "  sink.config.{}: {}", e.field, e.message);
            }
            Err(EXIT_CONFIG)
        }
        Err(t) => {
            let _ = writeln!(err, "error: {t}");
            Err(EXIT_FAILURE)
        }
    }
}

/// `validate`: every problem of the pipeline file and of the plugin's settings, all at once.
/// Exit 1 when anything is wrong.
pub fn validate(path: &Path) -> i32 {
    let cfg = match PipelineConfig::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{}: configuration errors:", path.display());
            for p in &errors.0 {
                eprintln!("  {p}");
            }
            // The file is broken, yet its plugin settings may have problems of their own:
            // report those too, so one run shows everything to fix.
            for problem in plugin_settings_problems(path) {
                eprintln!("  {problem}");
            }
            return EXIT_FAILURE;
        }
    };
    match configured(&cfg) {
        Ok(loaded) => {
            let plan = loaded.plugin.plan().copied();
            let shown = loaded
                .masker
                .mask_settings(&cfg.sink.settings, &loaded.secret_names);
            println!("{}: OK", path.display());
            println!(
                "plugin   {} {}",
                loaded.manifest.plugin.name, loaded.manifest.plugin.version
            );
            println!("settings {}", loaded.masker.mask(&shown.to_string()));
            if let Some(p) = plan {
                println!(
                    "batches  {} events / {} bytes, flushed every {} ms, {} retries",
                    p.max_events, p.max_bytes, p.flush_interval_ms, p.retry_attempts
                );
            }
            EXIT_OK
        }
        Err(_) => EXIT_FAILURE,
    }
}

/// The plugin's own verdict on `[sink.config]` of a pipeline file that has other problems:
/// the rest of the file is set aside and unset `${VAR}`s get a placeholder.
fn plugin_settings_problems(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(mut root) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(toml::Value::Table(mut sink)) = root.remove("sink") else {
        return Vec::new();
    };
    sink.retain(|k, _| k == "plugin" || k == "config");
    let mut minimal = toml::Table::new();
    let mut input = toml::Table::new();
    input.insert("path".into(), toml::Value::String("-".into()));
    minimal.insert("input".into(), toml::Value::Table(input));
    minimal.insert("sink".into(), toml::Value::Table(sink));
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let lenient = |k: &str| Some(std::env::var(k).unwrap_or_else(|_| format!("unset-{k}")));
    let Ok(cfg) = PipelineConfig::parse(&minimal.to_string(), base, &lenient) else {
        return Vec::new();
    };
    let Ok(mut loaded) = plugin::load(&cfg, Metrics::new()) else {
        return Vec::new();
    };
    match loaded.plugin.configure() {
        Ok(Err(errors)) => errors
            .into_iter()
            .map(|e| {
                format!(
                    "sink.config.{}: {}",
                    e.field,
                    loaded.masker.mask(&e.message)
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `test-connection`: one line per check, ✓ or ✗.
pub fn test_connection(path: &Path) -> i32 {
    test_connection_to(path, &mut std::io::stdout())
}

/// `test-connection` writing everything (settings errors included) to `out`; exit 1 on any
/// failure.
pub fn test_connection_to(path: &Path, out: &mut dyn Write) -> i32 {
    let cfg = match load_config_to(path, out) {
        Ok(c) => c,
        Err(_) => {
            let _ = writeln!(
                out,
                "✗ pipeline file: fix the problems above, then test again"
            );
            return EXIT_FAILURE;
        }
    };
    let mut loaded = match configured_to(&cfg, out) {
        Ok(l) => l,
        Err(_) => {
            let _ = writeln!(out, "✗ settings: fix the settings above, then test again");
            return EXIT_FAILURE;
        }
    };
    match loaded.plugin.check_connection() {
        Ok(checks) => {
            let mut ok = true;
            for c in &checks {
                ok &= c.ok;
                let mark = if c.ok { "✓" } else { "✗" };
                let _ = writeln!(out, "{mark} {}: {}", c.name, c.message);
            }
            if ok && !checks.is_empty() {
                EXIT_OK
            } else {
                EXIT_FAILURE
            }
        }
        Err(t) => {
            let _ = writeln!(out, "error: {t}");
            EXIT_FAILURE
        }
    }
}

/// `queries`: the plugin's hunting queries, as text or JSON.
pub fn queries(path: &Path, json: bool, params: &[(String, String)]) -> i32 {
    let cfg = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut loaded = match configured(&cfg) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let params: Vec<QueryParameter> = params
        .iter()
        .map(|(n, v)| QueryParameter {
            name: n.clone(),
            value: v.clone(),
        })
        .collect();
    let qs = match loaded.plugin.hunting_queries(&params) {
        Ok(q) => q,
        Err(t) => {
            eprintln!("error: {t}");
            return EXIT_FAILURE;
        }
    };
    if json {
        let v: Vec<_> = qs
            .iter()
            .map(|q| {
                serde_json::json!({
                    "id": q.id, "title": q.title, "description": q.description,
                    "queries": q.queries.iter().map(|t| serde_json::json!({"language": t.language, "text": t.text})).collect::<Vec<_>>(),
                    "parameters": q.parameters.iter().map(|p| serde_json::json!({"name": p.name, "value": p.value})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap());
    } else {
        for q in &qs {
            println!("{} — {}\n  {}", q.id, q.title, q.description);
            for t in &q.queries {
                println!("  [{}] {}", t.language, t.text);
            }
            println!();
        }
    }
    EXIT_OK
}

/// `rules`: the detection rules; with `apply`, ensure they exist.
pub fn rules(path: &Path, apply: bool) -> i32 {
    let cfg = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut loaded = match configured(&cfg) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if apply {
        match loaded.plugin.ensure_detection_rules() {
            Ok(checks) => {
                let mut ok = true;
                for c in &checks {
                    ok &= c.ok;
                    println!("{} {}: {}", if c.ok { "✓" } else { "✗" }, c.name, c.message);
                }
                if ok {
                    EXIT_OK
                } else {
                    EXIT_FAILURE
                }
            }
            Err(t) => {
                eprintln!("error: {t}");
                EXIT_FAILURE
            }
        }
    } else {
        match loaded.plugin.detection_rules() {
            Ok(rules) => {
                for r in rules {
                    println!(
                        "{} [{}]\n  {}\n  {}\n",
                        r.name, r.severity, r.description, r.query
                    );
                }
                EXIT_OK
            }
            Err(t) => {
                eprintln!("error: {t}");
                EXIT_FAILURE
            }
        }
    }
}

/// A shutdown channel fed by SIGINT and SIGTERM.
pub fn signal_shutdown() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        let _ = tx.send(true);
    });
    rx
}

async fn run_with(
    cfg: PipelineConfig,
    source: Source,
    metrics_addr: Option<SocketAddr>,
    progress: bool,
) -> i32 {
    let metrics = Metrics::new();
    if let Some(addr) = metrics_addr {
        match metrics::serve(addr, metrics.clone()).await {
            Ok(a) => tracing::info!("metrics on http://{a}/metrics"),
            Err(e) => {
                eprintln!("error: cannot serve metrics on {addr}: {e}");
                return EXIT_FAILURE;
            }
        }
    }
    let total = match &source {
        Source::Items(i) => Some(i.len() as u64),
        Source::Configured => None,
    };
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let (b, m) = (bar.clone(), metrics.clone());
        tokio::spawn(async move {
            loop {
                b.set_position(m.accounted());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Some(bar)
    } else {
        None
    };
    let opts = RunOptions {
        metrics: metrics.clone(),
        shutdown: Some(signal_shutdown()),
        source,
    };
    let r = run_pipeline(&cfg, opts).await;
    if let Some(b) = bar {
        b.set_position(metrics.accounted());
        b.finish();
    }
    match r {
        Ok(summary) => {
            println!("{summary}");
            summary.exit_code()
        }
        Err(RunError::Config(errs)) => {
            eprintln!("the plugin refused its settings:");
            for e in errs {
                eprintln!("  sink.config.{}: {}", e.field, e.message);
            }
            EXIT_CONFIG
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `run`: forward the input until it ends (or until SIGINT/SIGTERM when following).
pub fn run(path: &Path, metrics_addr: Option<SocketAddr>) -> i32 {
    let cfg = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    runtime().block_on(run_with(cfg, Source::Configured, metrics_addr, false))
}

/// Dead letters back into input items: records are re-parsed, bad lines stay bad.
pub fn replay_items(letters: Vec<deadletter::DeadLetter>) -> Vec<InputItem> {
    letters
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let line = d.line.unwrap_or(i as u64 + 1);
            let value = match d.record {
                serde_json::Value::String(s) => match serde_json::from_str(&s) {
                    Ok(v) => v,
                    Err(e) => {
                        return InputItem::Bad {
                            raw: s,
                            line,
                            reason: format!("not valid JSON: {e}"),
                        }
                    }
                },
                v => v,
            };
            match from_json(&value) {
                Ok(record) => InputItem::Record(Box::new(Envelope {
                    record,
                    size: value.to_string().len() as u64,
                    raw: value,
                    line: d.line,
                })),
                Err(reason) => InputItem::Bad {
                    raw: value.to_string(),
                    line,
                    reason,
                },
            }
        })
        .collect()
}

/// `replay`: send the records of a dead-letter file again (new failures go to the configured
/// dead letter, or to `<file>.replay.jsonl` when that is the file being replayed).
pub fn replay(path: &Path, dead_letter: &Path, metrics_addr: Option<SocketAddr>) -> i32 {
    let mut cfg = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let letters = match deadletter::read(dead_letter) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
            return EXIT_FAILURE;
        }
    };
    let same = std::fs::canonicalize(&cfg.delivery.dead_letter).ok()
        == std::fs::canonicalize(dead_letter).ok();
    if same {
        let mut p = dead_letter.as_os_str().to_owned();
        p.push(".replay.jsonl");
        cfg.delivery.dead_letter = p.into();
        eprintln!(
            "records that fail again go to {}",
            cfg.delivery.dead_letter.display()
        );
    }
    let items = replay_items(letters);
    runtime().block_on(run_with(cfg, Source::Items(items), metrics_addr, true))
}

/// `generate`: a reproducible audit data set as JSON Lines (for trials and benchmarks).
pub fn generate(records: u64, seed: u64, output: &Path) -> i32 {
    let result = if output == Path::new("-") {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        crate::dataset::write_jsonl(&mut out, records, seed).and_then(|_| out.flush())
    } else {
        std::fs::File::create(output).and_then(|f| {
            let mut out = std::io::BufWriter::new(f);
            crate::dataset::write_jsonl(&mut out, records, seed)?;
            out.flush()
        })
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", output.display());
            EXIT_FAILURE
        }
    }
}
