//! The pipeline file (TOML): `[input]`, `[sink]` (+ `[sink.config]`, the plugin's settings) and
//! `[delivery]`. `${VAR}` in any string reads the environment (`$${` is a literal `${`); a
//! missing variable is an error naming it; unknown keys are errors. Every problem is reported
//! at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;
use toml::{Table, Value};

/// A problem in the pipeline file: where (dotted key) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// All the problems found in a pipeline file.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
impl std::error::Error for ConfigErrors {}

#[derive(Debug, Clone, PartialEq)]
pub enum InputPath {
    Stdin,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct InputConfig {
    pub path: InputPath,
    /// Tail the file (survives rotation and truncation); runs until shutdown.
    pub follow: bool,
    pub poll_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// A plugin manifest; `None` is the built-in SentinelOne plugin.
    pub plugin: Option<PathBuf>,
    pub allow_hosts: Vec<String>,
    pub memory_limit_bytes: u64,
    pub call_timeout: Duration,
    /// The plugin's settings, as the JSON object passed to `configure`.
    pub settings: Json,
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub dead_letter: PathBuf,
    /// On shutdown, how long to keep delivering (in-flight work, due retries) before what is
    /// left goes to the dead letter.
    pub shutdown_grace: Duration,
    /// How often one batch may trap the plugin before it goes to the dead letter.
    pub max_traps_per_batch: u32,
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub input: InputConfig,
    pub sink: SinkConfig,
    pub delivery: DeliveryConfig,
    /// Directory of the pipeline file; relative paths are resolved against it.
    pub base_dir: PathBuf,
}

pub const DEFAULT_MEMORY_LIMIT_MB: u64 = 64;
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 60.0;
pub const DEFAULT_SHUTDOWN_GRACE_SECONDS: f64 = 10.0;

impl PipelineConfig {
    pub fn load(path: &Path) -> Result<PipelineConfig, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigProblem {
                key: path.display().to_string(),
                message: format!("cannot read the pipeline file: {e}"),
            }])
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        Self::parse(&text, &base, &|k| std::env::var(k).ok())
    }

    /// Parse a pipeline file's text; `env` looks variables up.
    pub fn parse(
        text: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineConfig, ConfigErrors> {
        let mut p = Vec::new();
        let mut root: Table = match text.parse::<Table>() {
            Ok(t) => t,
            Err(e) => {
                return Err(ConfigErrors(vec![ConfigProblem {
                    key: "(file)".into(),
                    message: format!("not valid TOML: {}", e.message()),
                }]))
            }
        };
        expand_table(&mut root, "", env, &mut p);
        let mut r = Reader { problems: &mut p };

        let input_t = r.table(&mut root, "input", true);
        let sink_t = r.table(&mut root, "sink", true);
        let delivery_t = r.table(&mut root, "delivery", false);
        r.no_more(&root, "");

        // [input]
        let mut it = input_t.unwrap_or_default();
        let kind = r
            .string(&mut it, "input", "kind")
            .unwrap_or_else(|| "jsonl".into());
        if kind != "jsonl" {
            r.problem(
                "input.kind",
                format!("unknown input kind `{kind}` (known: jsonl)"),
            );
        }
        let path = match r.string(&mut it, "input", "path") {
            Some(s) if s == "-" => InputPath::Stdin,
            Some(s) if s.is_empty() => {
                r.problem("input.path", "must not be empty (use \"-\" for stdin)");
                InputPath::Stdin
            }
            Some(s) => InputPath::File(base_dir.join(s)),
            None => {
                r.problem("input.path", "missing (a JSONL file, or \"-\" for stdin)");
                InputPath::Stdin
            }
        };
        let follow = r.bool(&mut it, "input", "follow").unwrap_or(false);
        if follow && path == InputPath::Stdin {
            r.problem(
                "input.follow",
                "cannot follow stdin (it is read until it closes anyway)",
            );
        }
        let poll_ms = r
            .number(&mut it, "input", "poll_interval_ms")
            .unwrap_or(250.0);
        if !(10.0..=60_000.0).contains(&poll_ms) {
            r.problem("input.poll_interval_ms", "must be between 10 and 60000");
        }
        r.no_more(&it, "input");

        // [sink]
        let mut st = sink_t.unwrap_or_default();
        let plugin = r
            .string(&mut st, "sink", "plugin")
            .map(|s| base_dir.join(s));
        let allow_hosts = r
            .string_list(&mut st, "sink", "allow_hosts")
            .unwrap_or_default();
        let mem_mb = r
            .number(&mut st, "sink", "memory_limit_mb")
            .unwrap_or(DEFAULT_MEMORY_LIMIT_MB as f64);
        if !(1.0..=4096.0).contains(&mem_mb) {
            r.problem("sink.memory_limit_mb", "must be between 1 and 4096");
        }
        let timeout = r
            .number(&mut st, "sink", "timeout_seconds")
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if !(timeout > 0.0 && timeout <= 3600.0) {
            r.problem(
                "sink.timeout_seconds",
                "must be more than 0 and at most 3600",
            );
        }
        let settings = match st.remove("config") {
            Some(Value::Table(t)) => toml_to_json(&Value::Table(t)),
            Some(_) => {
                r.problem("sink.config", "must be a table of the plugin's settings");
                Json::Object(Default::default())
            }
            None => {
                r.problem(
                    "sink.config",
                    "missing: the plugin's settings ([sink.config])",
                );
                Json::Object(Default::default())
            }
        };
        r.no_more(&st, "sink");

        // [delivery]
        let mut dt = delivery_t.unwrap_or_default();
        let dead_letter = r
            .string(&mut dt, "delivery", "dead_letter")
            .map(|s| base_dir.join(s))
            .unwrap_or_else(|| base_dir.join("dead-letter.jsonl"));
        let grace = r
            .number(&mut dt, "delivery", "shutdown_grace_seconds")
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECONDS);
        if !(0.0..=3600.0).contains(&grace) {
            r.problem(
                "delivery.shutdown_grace_seconds",
                "must be between 0 and 3600",
            );
        }
        let max_traps = r
            .number(&mut dt, "delivery", "max_traps_per_batch")
            .unwrap_or(3.0);
        r.no_more(&dt, "delivery");

        if !p.is_empty() {
            return Err(ConfigErrors(p));
        }
        Ok(PipelineConfig {
            input: InputConfig {
                path,
                follow,
                poll_interval: Duration::from_millis(poll_ms.max(10.0) as u64),
            },
            sink: SinkConfig {
                plugin,
                allow_hosts,
                memory_limit_bytes: (mem_mb * 1024.0 * 1024.0) as u64,
                call_timeout: Duration::from_secs_f64(timeout),
                settings,
            },
            delivery: DeliveryConfig {
                dead_letter,
                shutdown_grace: Duration::from_secs_f64(grace),
                max_traps_per_batch: max_traps.max(1.0) as u32,
            },
            base_dir: base_dir.to_path_buf(),
        })
    }

    /// `console_url` from the plugin settings, when it is a string.
    pub fn console_url(&self) -> Option<&str> {
        self.sink.settings.get("console_url").and_then(Json::as_str)
    }
}

struct Reader<'a> {
    problems: &'a mut Vec<ConfigProblem>,
}

impl Reader<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn table(&mut self, t: &mut Table, key: &str, required: bool) -> Option<Table> {
        match t.remove(key) {
            Some(Value::Table(t)) => Some(t),
            Some(_) => {
                self.problem(key, "must be a table");
                None
            }
            None => {
                if required {
                    self.problem(key, format!("missing section [{key}]"));
                }
                None
            }
        }
    }

    fn no_more(&mut self, t: &Table, section: &str) {
        for k in t.keys() {
            let key = if section.is_empty() {
                k.clone()
            } else {
                format!("{section}.{k}")
            };
            self.problem(&key, "unknown key");
        }
    }

    fn string(&mut self, t: &mut Table, section: &str, key: &str) -> Option<String> {
        match t.remove(key)? {
            Value::String(s) => Some(s),
            _ => {
                self.problem(&format!("{section}.{key}"), "must be a string");
                None
            }
        }
    }

    fn bool(&mut self, t: &mut Table, section: &str, key: &str) -> Option<bool> {
        match t.remove(key)? {
            Value::Boolean(b) => Some(b),
            _ => {
                self.problem(&format!("{section}.{key}"), "must be true or false");
                None
            }
        }
    }

    fn number(&mut self, t: &mut Table, section: &str, key: &str) -> Option<f64> {
        match t.remove(key)? {
            Value::Integer(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => {
                self.problem(&format!("{section}.{key}"), "must be a number");
                None
            }
        }
    }

    fn string_list(&mut self, t: &mut Table, section: &str, key: &str) -> Option<Vec<String>> {
        match t.remove(key)? {
            Value::Array(a) => {
                let mut out = Vec::new();
                for v in a {
                    match v {
                        Value::String(s) => out.push(s),
                        _ => self.problem(&format!("{section}.{key}"), "must be a list of strings"),
                    }
                }
                Some(out)
            }
            _ => {
                self.problem(&format!("{section}.{key}"), "must be a list of strings");
                None
            }
        }
    }
}

/// Expand `${VAR}` in one string. Unknown variables are reported by name.
pub fn expand_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(s.len());
    let mut missing = Vec::new();
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(body) = after.strip_prefix("${") {
            match body.find('}') {
                Some(end) => {
                    let name = &body[..end];
                    match env(name) {
                        Some(v) => out.push_str(&v),
                        None => missing.push(name.to_string()),
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str(after);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

fn expand_value(
    v: &mut Value,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Vec<ConfigProblem>,
) {
    match v {
        Value::String(s) => match expand_env(s, env) {
            Ok(x) => *s = x,
            Err(missing) => {
                for m in missing {
                    p.push(ConfigProblem {
                        key: key.into(),
                        message: format!("environment variable `{m}` is not set"),
                    });
                }
            }
        },
        Value::Array(a) => {
            for x in a {
                expand_value(x, key, env, p);
            }
        }
        Value::Table(t) => expand_table(t, key, env, p),
        _ => {}
    }
}

fn expand_table(
    t: &mut Table,
    prefix: &str,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Vec<ConfigProblem>,
) {
    for (k, v) in t.iter_mut() {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        expand_value(v, &key, env, p);
    }
}

/// TOML settings to the JSON object the plugin's `configure` takes.
pub fn toml_to_json(v: &Value) -> Json {
    match v {
        Value::String(s) => Json::String(s.clone()),
        Value::Integer(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Datetime(d) => Json::String(d.to_string()),
        Value::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        Value::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "TOKEN" => Some("tok-123".into()),
            _ => None,
        }
    }

    const GOOD: &str = r#"
[input]
path = "audit.jsonl"
[sink]
allow_hosts = ["127.0.0.1:8089"]
[sink.config]
name = "x"
api_token = "${TOKEN}"
batch_size = 10
[delivery]
dead_letter = "dl.jsonl"
"#;

    #[test]
    fn parses_and_expands() {
        let c = PipelineConfig::parse(GOOD, Path::new("/etc/p"), &env).unwrap();
        assert_eq!(c.input.path, InputPath::File("/etc/p/audit.jsonl".into()));
        assert_eq!(c.sink.settings["api_token"], "tok-123");
        assert_eq!(c.sink.settings["batch_size"], 10);
        assert_eq!(c.delivery.dead_letter, PathBuf::from("/etc/p/dl.jsonl"));
        assert_eq!(c.sink.memory_limit_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn reports_every_problem() {
        let text = GOOD
            .replace("${TOKEN}", "${NOPE}")
            .replace("[delivery]", "[delivery]\nbogus = 1")
            + "\n[extra]\n";
        let e = PipelineConfig::parse(&text, Path::new("."), &env).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("sink.config.api_token: environment variable `NOPE` is not set"),
            "{s}"
        );
        assert!(s.contains("delivery.bogus: unknown key"), "{s}");
        assert!(s.contains("extra: unknown key"), "{s}");
    }

    #[test]
    fn expand_escapes() {
        assert_eq!(expand_env("a$${B}c$d", &env).unwrap(), "a${B}c$d");
        assert_eq!(expand_env("${X}${Y}", &env).unwrap_err(), vec!["X", "Y"]);
    }
}
