//! Settings: the spec's Configuration Reference, validated all at once.
//!
//! Every error names its field and says the fix. The API token never appears in any message.

use crate::record::{EventCategory, Severity};
use serde_json::{Map, Value};
use std::fmt;

pub const BATCH_SIZE_RANGE: (u64, u64) = (1, 1000);
pub const FLUSH_INTERVAL_RANGE: (u64, u64) = (5, 300);
/// Retries beyond ten only delay the dead letter; the host's retry timer covers longer outages.
pub const RETRY_ATTEMPTS_RANGE: (u64, u64) = (0, 10);
pub const DEFAULT_BATCH_SIZE: u32 = 100;
pub const DEFAULT_FLUSH_INTERVAL_SECONDS: u32 = 30;
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;
pub const DEFAULT_EVENT_SOURCE: &str = "DBaudit";
pub const PROVIDER: &str = "sentinelone";

/// Every setting the plugin accepts, in the spec's order.
pub const SETTING_NAMES: [&str; 15] = [
    "name",
    "provider",
    "enabled",
    "console_url",
    "api_token",
    "site_id",
    "account_id",
    "event_source",
    "custom_detection",
    "event_types",
    "severity_filter",
    "database_filter",
    "batch_size",
    "flush_interval_seconds",
    "retry_attempts",
];

/// A setting that is wrong and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The API token. Its Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Https,
    /// Only for loopback consoles (tests, the emulator).
    Http,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// A validated console URL: scheme and authority only, no path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleUrl {
    pub scheme: Scheme,
    /// `host` or `host:port`.
    pub authority: String,
}

impl ConsoleUrl {
    pub fn url(&self, path_and_query: &str) -> String {
        format!(
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            path_and_query
        )
    }
}

impl fmt::Display for ConsoleUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority)
    }
}

/// The validated settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub name: String,
    pub enabled: bool,
    pub console_url: ConsoleUrl,
    pub api_token: Secret,
    pub site_id: Option<String>,
    pub account_id: String,
    pub event_source: String,
    pub custom_detection: bool,
    /// Empty never happens: omitted means all.
    pub event_types: Vec<EventCategory>,
    pub severity_filter: Vec<Severity>,
    /// Empty means every database.
    pub database_filter: Vec<String>,
    pub batch_size: u32,
    pub flush_interval_seconds: u32,
    pub retry_attempts: u32,
}

impl Settings {
    /// `text` with the API token masked: for anything built from a console's answer.
    pub fn redact(&self, text: String) -> String {
        let token = self.api_token.expose();
        if token.is_empty() || !text.contains(token) {
            return text;
        }
        text.replace(token, "***")
    }

    /// Parse and validate the settings JSON; every problem is reported.
    pub fn from_json(text: &str) -> Result<Settings, Vec<ConfigError>> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            vec![ConfigError::new(
                "settings",
                format!("settings are not valid JSON: {e}"),
            )]
        })?;
        match value {
            Value::Object(map) => Settings::from_map(&map),
            _ => Err(vec![ConfigError::new(
                "settings",
                "settings must be a JSON object of setting names to values",
            )]),
        }
    }

    pub fn from_map(map: &Map<String, Value>) -> Result<Settings, Vec<ConfigError>> {
        let mut v = Validator {
            map,
            errors: Vec::new(),
        };
        v.reject_unknown_keys();

        let name = v.required_string(
            "name",
            "a unique name for this connection, e.g. \"sentinelone-prod\"",
        );
        v.provider();
        let enabled = v.boolean("enabled", true);
        let console_url = v.console_url();
        let api_token = v.api_token();
        let site_id = v.id("site_id", false);
        let account_id = v.id("account_id", true);
        let event_source = v.event_source();
        let custom_detection = v.boolean("custom_detection", true);
        let event_types = v.multiselect(
            "event_types",
            EventCategory::ALL.as_slice(),
            EventCategory::as_str,
        );
        let severity_filter = v.multiselect(
            "severity_filter",
            Severity::ALL.as_slice(),
            Severity::as_str,
        );
        let database_filter = v.database_filter();
        let batch_size = v.number("batch_size", DEFAULT_BATCH_SIZE, BATCH_SIZE_RANGE, "");
        let flush_interval_seconds = v.number(
            "flush_interval_seconds",
            DEFAULT_FLUSH_INTERVAL_SECONDS,
            FLUSH_INTERVAL_RANGE,
            " seconds",
        );
        let retry_attempts = v.number(
            "retry_attempts",
            DEFAULT_RETRY_ATTEMPTS,
            RETRY_ATTEMPTS_RANGE,
            "",
        );

        if !v.errors.is_empty() {
            return Err(v.errors);
        }
        Ok(Settings {
            name: name.unwrap_or_default(),
            enabled,
            console_url: console_url.expect("validated"),
            api_token: api_token.expect("validated"),
            site_id: site_id.flatten(),
            account_id: account_id.flatten().unwrap_or_default(),
            event_source,
            custom_detection,
            event_types,
            severity_filter,
            database_filter,
            batch_size,
            flush_interval_seconds,
            retry_attempts,
        })
    }
}

struct Validator<'a> {
    map: &'a Map<String, Value>,
    errors: Vec<ConfigError>,
}

impl<'a> Validator<'a> {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(ConfigError::new(field, message));
    }

    /// A present, non-null value.
    fn get(&self, field: &str) -> Option<&'a Value> {
        let map: &'a Map<String, Value> = self.map;
        map.get(field).filter(|v| !v.is_null())
    }

    fn reject_unknown_keys(&mut self) {
        let unknown: Vec<String> = self
            .map
            .keys()
            .filter(|k| !SETTING_NAMES.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            let hint = match closest_setting(&key) {
                Some(name) => format!("unknown setting; did you mean `{name}`?"),
                None => format!(
                    "unknown setting; the settings are: {}",
                    SETTING_NAMES.join(", ")
                ),
            };
            self.error(&key, hint);
        }
    }

    fn string(&mut self, field: &str) -> Option<&'a str> {
        match self.get(field) {
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                let kind = json_kind(other);
                self.error(field, format!("must be a string, not {kind}"));
                None
            }
        }
    }

    fn required_string(&mut self, field: &str, what: &str) -> Option<String> {
        if self.get(field).is_none() {
            self.error(field, format!("is required: {what}"));
            return None;
        }
        let s = self.string(field)?.trim().to_string();
        if s.is_empty() {
            self.error(field, format!("must not be empty: {what}"));
            return None;
        }
        Some(s)
    }

    fn provider(&mut self) {
        if let Some(p) = self.string("provider") {
            // The spec's UI says "SentinelOne"; the value is "sentinelone".
            if !p.trim().eq_ignore_ascii_case(PROVIDER) {
                let msg = format!("must be \"{PROVIDER}\" for this plugin, not \"{p}\"");
                self.error("provider", msg);
            }
        }
    }

    fn boolean(&mut self, field: &str, default: bool) -> bool {
        match self.get(field) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                let kind = json_kind(other);
                self.error(field, format!("must be true or false, not {kind}"));
                default
            }
        }
    }

    fn console_url(&mut self) -> Option<ConsoleUrl> {
        let example = "e.g. \"https://usea1.sentinelone.net\" (US East), \"https://euce1.sentinelone.net\" (EU)";
        let raw = self.required_string(
            "console_url",
            &format!("your region's SentinelOne console URL, {example}"),
        )?;
        match parse_console_url(&raw) {
            Ok(url) => Some(url),
            Err(message) => {
                self.error("console_url", message);
                None
            }
        }
    }

    fn api_token(&mut self) -> Option<Secret> {
        let fix =
            "generate one in the console under Settings → Users → Options → API Token Operations";
        if self.get("api_token").is_none() {
            self.error("api_token", format!("is required: {fix}"));
            return None;
        }
        let token = self.string("api_token")?.to_string();
        let token = token.trim();
        if token.is_empty() {
            self.error("api_token", format!("must not be empty: {fix}"));
            return None;
        }
        // Never echo the token: it may be a real secret pasted in the wrong place.
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error("api_token", "contains spaces or control characters; paste only the token itself (without \"ApiToken \")");
            return None;
        }
        Some(Secret::new(token))
    }

    /// A SentinelOne object id: a string of digits. Outer None: invalid or missing.
    fn id(&mut self, field: &str, required: bool) -> Option<Option<String>> {
        let fix = if field == "account_id" {
            "check the account ID in Settings → Account Info"
        } else {
            "site ID is optional but must be valid if provided (Settings → Sites)"
        };
        let value = match self.get(field) {
            None if required => {
                self.error(field, format!("is required: {fix}"));
                return None;
            }
            None => return Some(None),
            Some(Value::Number(n)) => {
                let msg = format!("must be a string: write \"{n}\" in quotes ({fix})");
                self.error(field, msg);
                return None;
            }
            Some(_) => self.string(field)?.trim().to_string(),
        };
        if value.is_empty() {
            if required {
                self.error(field, format!("must not be empty: {fix}"));
                return None;
            }
            return Some(None);
        }
        // IDs go into API paths: letters, digits, '-' and '_' only (SentinelOne's are digits).
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            self.error(
                field,
                format!("must be an ID such as \"123456789\", not \"{value}\": {fix}"),
            );
            return None;
        }
        Some(Some(value))
    }

    fn event_source(&mut self) -> String {
        match self.string("event_source") {
            None => DEFAULT_EVENT_SOURCE.to_string(),
            Some(s) if s.trim().is_empty() => {
                self.error(
                    "event_source",
                    format!("must not be empty; omit it to use \"{DEFAULT_EVENT_SOURCE}\""),
                );
                DEFAULT_EVENT_SOURCE.to_string()
            }
            Some(s) if s.contains('"') || s.contains('\\') => {
                self.error("event_source", "must not contain quotes or backslashes: it is used inside Deep Visibility queries");
                DEFAULT_EVENT_SOURCE.to_string()
            }
            Some(s) => s.trim().to_string(),
        }
    }

    /// A multiselect: a list of allowed values; omitted or "all" means every value.
    fn multiselect<T: Copy + PartialEq>(
        &mut self,
        field: &str,
        all: &[T],
        name: fn(T) -> &'static str,
    ) -> Vec<T> {
        let allowed = all.iter().map(|v| name(*v)).collect::<Vec<_>>().join(", ");
        let items = match self.get(field) {
            None => return all.to_vec(),
            Some(Value::String(s)) if s == "all" => return all.to_vec(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                let kind = json_kind(other);
                self.error(
                    field,
                    format!(
                        "must be a list of values from: {allowed} (not {kind}); omit it for all"
                    ),
                );
                return all.to_vec();
            }
        };
        if items.is_empty() {
            self.error(field, format!("selects nothing, so nothing would be forwarded; omit it for all, or pick from: {allowed}"));
            return all.to_vec();
        }
        let mut chosen = Vec::new();
        for item in items {
            match item.as_str() {
                Some("all") => return all.to_vec(),
                Some(s) => match all.iter().find(|v| name(**v) == s) {
                    Some(v) if !chosen.contains(v) => chosen.push(*v),
                    Some(_) => {}
                    None => self.error(field, format!("unknown value \"{s}\"; allowed: {allowed}")),
                },
                None => self.error(
                    field,
                    format!("every value must be a string from: {allowed}"),
                ),
            }
        }
        if chosen.is_empty() {
            return all.to_vec();
        }
        chosen
    }

    fn database_filter(&mut self) -> Vec<String> {
        let items = match self.get("database_filter") {
            None => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                let kind = json_kind(other);
                self.error(
                    "database_filter",
                    format!(
                        "must be a list of database names (not {kind}); empty means all databases"
                    ),
                );
                return Vec::new();
            }
        };
        let mut names = Vec::new();
        for item in items {
            match item.as_str().map(str::trim) {
                Some(s) if !s.is_empty() => names.push(s.to_string()),
                _ => self.error(
                    "database_filter",
                    "every entry must be a non-empty database name",
                ),
            }
        }
        names
    }

    fn number(&mut self, field: &str, default: u32, (min, max): (u64, u64), unit: &str) -> u32 {
        let n = match self.get(field) {
            None => return default,
            Some(Value::Number(n)) => n,
            Some(other) => {
                let kind = json_kind(other);
                self.error(
                    field,
                    format!("must be a whole number from {min} to {max}{unit}, not {kind}"),
                );
                return default;
            }
        };
        match n.as_u64() {
            Some(v) if (min..=max).contains(&v) => v as u32,
            _ => {
                self.error(
                    field,
                    format!("must be a whole number from {min} to {max}{unit}, not {n}"),
                );
                default
            }
        }
    }
}

/// Accepts `https://host[:port]`; plain http only for loopback hosts (tests, the emulator).
pub fn parse_console_url(raw: &str) -> Result<ConsoleUrl, String> {
    let (scheme, rest) = if let Some(rest) = raw.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = raw.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(format!(
            "must start with https://, e.g. \"https://usea1.sentinelone.net\"; got \"{raw}\""
        ));
    };
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let fixed = format!("{}://{}", scheme.as_str(), authority);
    if tail == "/" {
        return Err(format!(
            "must not end with a slash: use \"{fixed}\" (the URL should not include trailing slashes or paths)"
        ));
    }
    if !tail.is_empty() {
        return Err(format!(
            "must not include a path or query (\"{tail}\"): use \"{fixed}\" (the URL should not include trailing slashes or paths)"
        ));
    }
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(format!("has no valid host: use your region's console, e.g. \"https://usea1.sentinelone.net\"; got \"{raw}\""));
    }
    if let Some((_, port)) = split_port(authority) {
        if port.parse::<u16>().is_err() {
            return Err(format!("has an invalid port \"{port}\""));
        }
    }
    if scheme == Scheme::Http && !is_loopback(authority) {
        return Err(format!(
            "must use https (plain http is allowed only for loopback test consoles): use \"https://{authority}\""
        ));
    }
    Ok(ConsoleUrl {
        scheme,
        authority: authority.to_ascii_lowercase(),
    })
}

fn split_port(authority: &str) -> Option<(&str, &str)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        return authority[end + 1..]
            .strip_prefix(':')
            .map(|p| (&authority[..=end], p));
    }
    authority.rsplit_once(':')
}

fn is_loopback(authority: &str) -> bool {
    let host = split_port(authority).map_or(authority, |(h, _)| h);
    host == "localhost" || host == "[::1]" || host.starts_with("127.")
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The setting closest to a misspelt key, when it is close enough to be a typo.
fn closest_setting(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase().replace('-', "_");
    SETTING_NAMES
        .iter()
        .map(|name| (edit_distance(&key, name), *name))
        .filter(|(d, name)| *d <= 2.max(name.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
