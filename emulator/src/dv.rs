//! Deep Visibility: `dv/init-query`, `dv/query-status`, `dv/events` over the stored events.
//!
//! Each stored event is shown (and queried) as a DV view:
//! `{"id","eventType","eventSource","eventTime","createdAt","accountId","accountName",
//!   "siteId","siteName","description","customFields"}` where `eventTime` is the event's own
//! time or, when it sent none, its arrival time; `createdAt` is the arrival time; `accountId` is
//! the event's account, its site's account, or the token's only account; keys without a value
//! are left out. `fromDate`/`toDate` (optional) bound `eventTime`. S1QL field names resolve case-insensitively against this view, so `EventSource`
//! is `eventSource` and `CustomFields.x` is `customFields.x`.

use crate::auth::Scope;
use crate::errors::{self, Reply};
use crate::params;
use crate::s1ql;
use crate::state::{DvQuery, Inner, StoredEvent};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const MAX_QUERY_LIMIT: u64 = 20_000;
const IGNORED_FIELDS: &[&str] = &["queryType", "isVerbose", "timeFrame", "tenant"];

fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn event_time(e: &StoredEvent) -> DateTime<Utc> {
    e.event
        .get("eventTime")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(e.received_at)
}

/// The DV view of a stored event (see the module docs).
pub(crate) fn view(e: &StoredEvent, inner: &Inner) -> Value {
    let cfg = &inner.config;
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            m.insert(k.to_string(), v);
        }
    };
    let get = |k: &str| e.event.get(k).cloned();
    put(
        "id",
        Some(json!((1_800_000_000_000_000_000u64 + e.arrival).to_string())),
    );
    put("eventType", get("eventType"));
    put("eventSource", get("eventSource"));
    put("eventTime", Some(json!(millis(event_time(e)))));
    put("createdAt", Some(json!(millis(e.received_at))));
    put("accountId", e.account_id.clone().map(Value::from));
    put(
        "accountName",
        e.account_id
            .as_deref()
            .and_then(|a| cfg.account(a))
            .map(|a| json!(a.name)),
    );
    let site = e.event.get("siteId").and_then(Value::as_str);
    put("siteId", site.map(Value::from));
    put(
        "siteName",
        site.and_then(|s| cfg.site(s)).map(|s| json!(s.name)),
    );
    put("description", get("description"));
    put("customFields", get("customFields"));
    Value::Object(m)
}

fn string_list(
    body: &Map<String, Value>,
    key: &str,
    errs: &mut Vec<String>,
) -> Option<Vec<String>> {
    match body.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
        ),
        Some(_) => {
            errs.push(format!("{key}: must be an array of strings"));
            None
        }
    }
}

/// An optional date bound; `Err(())` after recording a problem.
fn date(
    body: &Map<String, Value>,
    key: &str,
    errs: &mut Vec<String>,
) -> Result<Option<DateTime<Utc>>, ()> {
    let parsed = match body.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s).ok(),
        Some(_) => None,
    };
    match parsed {
        Some(t) => Ok(Some(t.with_timezone(&Utc))),
        None => {
            errs.push(format!(
                "{key}: must be an RFC 3339 date, e.g. 2024-01-15T00:00:00.000Z"
            ));
            Err(())
        }
    }
}

/// `POST dv/init-query`: runs the query now and keeps the results under a new queryId.
pub(crate) fn init_query(inner: &mut Inner, scope: &Scope<'_>, body: &[u8]) -> Reply {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return errors::bad_request1(format!("request body: invalid JSON ({e})")),
    };
    let Some(body) = parsed.as_object() else {
        return errors::bad_request1("request body: must be a JSON object");
    };
    let mut errs = Vec::new();
    for k in body.keys() {
        let known = [
            "query",
            "fromDate",
            "toDate",
            "accountIds",
            "siteIds",
            "limit",
        ];
        if !known.contains(&k.as_str()) && !IGNORED_FIELDS.contains(&k.as_str()) {
            errs.push(format!("Unknown field: {k}"));
        }
    }
    let expr = match body.get("query").and_then(Value::as_str) {
        Some(q) => match s1ql::parse(q) {
            Ok(e) => Some(e),
            Err(e) => {
                errs.push(format!("query: {e}"));
                None
            }
        },
        None => {
            errs.push("query: required string".into());
            None
        }
    };
    let from = date(body, "fromDate", &mut errs);
    let to = date(body, "toDate", &mut errs);
    if let (Ok(Some(f)), Ok(Some(t))) = (from, to) {
        if f > t {
            errs.push("fromDate: must not be after toDate".into());
        }
    }
    let accounts = string_list(body, "accountIds", &mut errs);
    let sites = string_list(body, "siteIds", &mut errs);
    let limit = match body.get("limit") {
        None => MAX_QUERY_LIMIT,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_QUERY_LIMIT).contains(&n) => n,
            _ => {
                errs.push(format!(
                    "limit: must be an integer from 1 to {MAX_QUERY_LIMIT}"
                ));
                MAX_QUERY_LIMIT
            }
        },
    };
    let cfg = scope.config;
    let mut forbidden = false;
    for a in accounts.iter().flatten() {
        if cfg.account(a).is_none() {
            errs.push(format!("accountIds: unknown account \"{a}\""));
        } else if !scope.can_account(a) {
            forbidden = true;
        }
    }
    for s in sites.iter().flatten() {
        if cfg.site(s).is_none() {
            errs.push(format!("siteIds: unknown site \"{s}\""));
        } else if !scope.can_site(s) {
            forbidden = true;
        }
    }
    let (Some(expr), Ok(from), Ok(to), true) = (expr, from, to, errs.is_empty()) else {
        return errors::bad_request(&errs);
    };
    if forbidden {
        return errors::forbidden();
    }
    let results: Vec<Value> = inner
        .events
        .iter()
        .filter(|e| {
            let site = e.event.get("siteId").and_then(Value::as_str);
            let acct = e.account_id.as_deref();
            let visible = match (acct, site) {
                (None, None) => true,
                _ => {
                    site.is_some_and(|s| scope.can_site(s))
                        || acct.is_some_and(|a| scope.can_account(a))
                }
            };
            let t = event_time(e);
            visible
                && from.is_none_or(|f| t >= f)
                && to.is_none_or(|x| t <= x)
                && accounts
                    .as_ref()
                    .is_none_or(|l| acct.is_some_and(|a| l.iter().any(|x| x == a)))
                && sites
                    .as_ref()
                    .is_none_or(|l| site.is_some_and(|s| l.iter().any(|x| x == s)))
        })
        .map(|e| view(e, inner))
        .filter(|v| expr.matches(v))
        .take(limit as usize)
        .collect();
    let query_id = format!("q{}", inner.new_id());
    inner.queries.insert(query_id.clone(), DvQuery { results });
    Reply::ok(json!({"data": {"queryId": query_id}}))
}

fn query<'a>(inner: &'a Inner, q: &HashMap<String, String>) -> Result<&'a DvQuery, Reply> {
    match q.get("queryId").filter(|s| !s.is_empty()) {
        None => Err(errors::bad_request1("queryId: required")),
        Some(id) => inner
            .queries
            .get(id)
            .ok_or_else(|| errors::bad_request1(format!("queryId: unknown query \"{id}\""))),
    }
}

/// `GET dv/query-status?queryId=`: queries finish at once.
pub(crate) fn status(inner: &Inner, q: &HashMap<String, String>) -> Reply {
    match query(inner, q) {
        Ok(_) => Reply::ok(json!({"data": {"responseState": "FINISHED", "progressStatus": 100}})),
        Err(r) => r,
    }
}

/// `GET dv/events?queryId=&limit=&cursor=` (limit default 100, max 1000).
pub(crate) fn events(inner: &Inner, q: &HashMap<String, String>) -> Reply {
    let found = match query(inner, q) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let kind = format!("dv-{}", q["queryId"]);
    match params::page(found.results.clone(), q, &kind, 100, 1000) {
        Ok((data, pagination)) => Reply::ok(json!({"data": data, "pagination": pagination})),
        Err(e) => errors::bad_request1(e),
    }
}
