//! Custom detection ("STAR") rules: create with the real required fields and enums, list.

use crate::auth::Scope;
use crate::errors::{self, Reply};
use crate::events::is_event_time;
use crate::params;
use crate::s1ql;
use crate::state::Inner;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const CREATOR: &str = "API Token User";

/// Field -> allowed values (None: free-form, type checked separately).
fn check_field(key: &str, v: &Value) -> Option<Result<(), String>> {
    let one_of = |allowed: &[&str]| match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(()),
        _ => Err(format!("must be one of {} (got {v})", allowed.join(", "))),
    };
    let string = || match v {
        Value::String(_) => Ok(()),
        _ => Err("must be a string".to_string()),
    };
    Some(match key {
        "name" => match v.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(()),
            _ => Err("must be a non-empty string".into()),
        },
        "severity" => one_of(&["Low", "Medium", "High", "Critical"]),
        "expirationMode" => one_of(&["Permanent", "Temporary"]),
        "queryType" => one_of(&["events"]),
        "status" => one_of(&["Active", "Draft", "Disabled"]),
        "queryLang" => one_of(&["1.0"]),
        "treatAsThreat" => one_of(&["UNDEFINED", "Suspicious", "Malicious"]),
        "networkQuarantine" => match v {
            Value::Bool(_) => Ok(()),
            _ => Err("must be a boolean".into()),
        },
        "description" => string(),
        "s1ql" => match v.as_str() {
            Some(q) => s1ql::parse(q).map(|_| ()).map_err(|e| e.to_string()),
            None => Err("must be a string".into()),
        },
        "expiration" => match v.as_str() {
            Some(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() || is_event_time(s) => {
                Ok(())
            }
            _ => Err("must be an RFC 3339 date".into()),
        },
        _ => return None,
    })
}

const REQUIRED: &[&str] = &["name", "severity", "expirationMode", "queryType", "status"];

/// The rule scope from `filter`: ("account"|"site", id), after existence and scope checks.
fn rule_scope(
    filter: Option<&Value>,
    scope: &Scope<'_>,
    errs: &mut Vec<String>,
) -> Result<Option<(&'static str, String)>, Reply> {
    let Some(filter) = filter.and_then(Value::as_object) else {
        errs.push("filter: required object with accountIds or siteIds".into());
        return Ok(None);
    };
    for k in filter.keys() {
        if k != "accountIds" && k != "siteIds" {
            errs.push(format!("Unknown field: filter.{k}"));
        }
    }
    let (key, kind) = match (filter.get("accountIds"), filter.get("siteIds")) {
        (Some(_), Some(_)) => {
            errs.push("filter: give either accountIds or siteIds, not both".into());
            return Ok(None);
        }
        (Some(_), None) => ("accountIds", "account"),
        (None, Some(_)) => ("siteIds", "site"),
        (None, None) => {
            errs.push("filter: required accountIds or siteIds".into());
            return Ok(None);
        }
    };
    let ids: Vec<&str> = match filter.get(key).and_then(Value::as_array) {
        Some(a) if !a.is_empty() && a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).collect()
        }
        _ => {
            errs.push(format!(
                "filter.{key}: must be a non-empty array of strings"
            ));
            return Ok(None);
        }
    };
    if ids.len() > 1 {
        // One rule per request keeps the response a single object, as the reference shows.
        errs.push(format!("filter.{key}: the emulator takes exactly one id"));
        return Ok(None);
    }
    let id = ids[0];
    let cfg = scope.config;
    let (exists, allowed) = if kind == "account" {
        (cfg.account(id).is_some(), scope.can_account(id))
    } else {
        (cfg.site(id).is_some(), scope.can_site(id))
    };
    if !exists {
        errs.push(format!("filter.{key}[0]: unknown {kind} \"{id}\""));
        return Ok(None);
    }
    if !allowed {
        return Err(errors::forbidden());
    }
    Ok(Some((kind, id.to_string())))
}

/// `POST cloud-detection/rules`.
pub(crate) fn create(inner: &mut Inner, scope: &Scope<'_>, body: &[u8]) -> Reply {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return errors::bad_request1(format!("request body: invalid JSON ({e})")),
    };
    let Some(obj) = parsed.as_object() else {
        return errors::bad_request1(
            "request body: must be a JSON object {\"data\":{..},\"filter\":{..}}",
        );
    };
    let validate = inner.config.validate;
    let mut errs = Vec::new();
    for k in obj.keys() {
        if k != "data" && k != "filter" {
            errs.push(format!("Unknown field: {k}"));
        }
    }
    let empty = Map::new();
    let data = match obj.get("data") {
        Some(Value::Object(d)) => d,
        _ => {
            errs.push("data: required object".into());
            &empty
        }
    };
    if validate {
        for (k, v) in data {
            match check_field(k, v) {
                None => errs.push(format!("Unknown field: {k}")),
                Some(Err(m)) => errs.push(format!("data.{k}: {m}")),
                Some(Ok(())) => {}
            }
        }
        for r in REQUIRED {
            if !data.contains_key(*r) {
                errs.push(format!("data.{r}: required"));
            }
        }
        if data.get("expirationMode").and_then(Value::as_str) == Some("Temporary")
            && !data.contains_key("expiration")
        {
            errs.push("data.expiration: required when expirationMode is Temporary".into());
        }
    }
    let rule_scope = match rule_scope(obj.get("filter"), scope, &mut errs) {
        Ok(s) => s,
        Err(forbidden) if errs.is_empty() => return forbidden,
        Err(_) => None,
    };
    let Some((kind, scope_id)) = rule_scope.filter(|_| errs.is_empty()) else {
        return errors::bad_request(&errs);
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut rule = data.clone();
    let name = data
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let id = inner.new_id();
    for (k, v) in [
        ("id", json!(id)),
        ("scope", json!(kind)),
        ("scopeId", json!(scope_id)),
        (
            "status",
            data.get("status").cloned().unwrap_or(json!("Draft")),
        ),
        ("createdAt", json!(now)),
        ("updatedAt", json!(now)),
        ("creator", json!(CREATOR)),
    ] {
        rule.insert(k.into(), v);
    }
    let duplicate = inner.rules.iter().any(|r| {
        r["name"] == json!(name) && r["scopeId"] == json!(scope_id) && r["scope"] == json!(kind)
    });
    if duplicate && !inner.stats.duplicate_rule_names.contains(&name) {
        inner.stats.duplicate_rule_names.push(name);
    }
    inner.stats.rules_created += 1;
    let rule = Value::Object(rule);
    inner.rules.push(rule.clone());
    Reply::ok(json!({ "data": rule }))
}

fn visible(rule: &Value, scope: &Scope<'_>) -> bool {
    let id = rule["scopeId"].as_str().unwrap_or("");
    match rule["scope"].as_str() {
        Some("account") => scope.can_account(id),
        Some("site") => scope.can_site(id),
        _ => false,
    }
}

/// `GET cloud-detection/rules?name=&accountIds=&siteIds=&ids=&limit=&cursor=`.
pub(crate) fn list(inner: &Inner, scope: &Scope<'_>, q: &HashMap<String, String>) -> Reply {
    let accounts = params::list(q, "accountIds");
    let sites = params::list(q, "siteIds");
    let ids = params::list(q, "ids");
    let cfg = scope.config;
    let matching: Vec<Value> = inner
        .rules
        .iter()
        .filter(|r| visible(r, scope))
        .filter(|r| q.get("name").is_none_or(|n| r["name"].as_str() == Some(n)))
        .filter(|r| {
            ids.as_ref()
                .is_none_or(|ids| ids.iter().any(|i| r["id"] == json!(i)))
        })
        .filter(|r| {
            let id = r["scopeId"].as_str().unwrap_or("");
            let site_account = cfg.site(id).map(|s| s.account_id.as_str());
            let by_account = accounts.as_ref().is_none_or(|a| {
                a.iter()
                    .any(|a| a == id || (r["scope"] == "site" && Some(a.as_str()) == site_account))
            });
            let by_site = sites
                .as_ref()
                .is_none_or(|s| r["scope"] == "site" && s.iter().any(|s| s == id));
            by_account && by_site
        })
        .cloned()
        .collect();
    match params::page(matching, q, "rules", 10, 1000) {
        Ok((data, pagination)) => Reply::ok(json!({"data": data, "pagination": pagination})),
        Err(e) => errors::bad_request1(e),
    }
}

/// `PUT cloud-detection/rules/enable|disable` with `{"filter":{"ids":[..]}}`.
pub(crate) fn set_status(inner: &mut Inner, scope: &Scope<'_>, body: &[u8], status: &str) -> Reply {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return errors::bad_request1(format!("request body: invalid JSON ({e})")),
    };
    let ids: Vec<&str> = match parsed.pointer("/filter/ids").and_then(Value::as_array) {
        Some(a) if !a.is_empty() && a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).collect()
        }
        _ => return errors::bad_request1("filter.ids: required non-empty array of strings"),
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut affected = 0;
    for rule in inner.rules.iter_mut() {
        let hit = rule["id"].as_str().is_some_and(|id| ids.contains(&id));
        if hit && visible(rule, scope) {
            rule["status"] = json!(status);
            rule["updatedAt"] = json!(now);
            affected += 1;
        }
    }
    Reply::ok(json!({"data": {"affected": affected}}))
}
