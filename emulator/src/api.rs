//! Routing and the small handlers of `/web/api/v2.1/*` (system, accounts, sites, events).

use crate::auth::Scope;
use crate::errors::{self, Reply};
use crate::events::{self, Rejection};
use crate::faults::API_PREFIX;
use crate::state::Inner;
use crate::{dv, params, rules};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;

/// A request after the body has been read.
pub(crate) struct ApiRequest<'a> {
    pub method: &'a str,
    /// Full path, e.g. `/web/api/v2.1/accounts`.
    pub path: &'a str,
    pub query: HashMap<String, String>,
    pub token: Option<&'a str>,
    pub body: &'a [u8],
}

const FIXED_TIME: &str = "2024-01-01T00:00:00.000000Z";

fn methods(route: &str) -> Option<&'static [&'static str]> {
    Some(match route {
        "system/status" | "system/info" | "accounts" | "sites" => &["GET"],
        "dv/query-status" | "dv/events" => &["GET"],
        "cloud-detection/events" | "dv/init-query" => &["POST"],
        "cloud-detection/rules" => &["GET", "POST"],
        "cloud-detection/rules/enable" | "cloud-detection/rules/disable" => &["PUT"],
        _ => return None,
    })
}

pub(crate) fn handle(inner: &mut Inner, req: &ApiRequest<'_>) -> Reply {
    let Some(route) = req
        .path
        .strip_prefix(API_PREFIX)
        .map(|r| r.trim_end_matches('/'))
    else {
        return errors::not_found();
    };
    let Some(allowed) = methods(route) else {
        return errors::not_found();
    };
    if !allowed.contains(&req.method) {
        return errors::method_not_allowed();
    }
    if inner.config.rate_limits && !inner.rate.allow(route, req.token, Instant::now()) {
        return errors::too_many_requests();
    }
    if route == "system/status" {
        return Reply::ok(json!({"data": {"health": "ok"}}));
    }
    // A snapshot, so the scope can be held while the state is mutated.
    let config = inner.config.clone();
    let Some(scope) = Scope::resolve(&config, req.token) else {
        return errors::unauthorized();
    };
    let q = &req.query;
    match (req.method, route) {
        (_, "system/info") => Reply::ok(json!({"data": {
            "build": "s1-emulator",
            "version": "24.1.2",
            "release": "24.1.2",
            "patch": "0",
            "latestAgentVersion": "24.1.2.6",
        }})),
        (_, "accounts") => accounts(&scope, q),
        (_, "sites") => sites(&scope, q),
        (_, "cloud-detection/events") => ingest(inner, &scope, req.body),
        ("GET", "cloud-detection/rules") => rules::list(inner, &scope, q),
        (_, "cloud-detection/rules") => rules::create(inner, &scope, req.body),
        (_, "cloud-detection/rules/enable") => rules::set_status(inner, &scope, req.body, "Active"),
        (_, "cloud-detection/rules/disable") => {
            rules::set_status(inner, &scope, req.body, "Disabled")
        }
        (_, "dv/init-query") => dv::init_query(inner, &scope, req.body),
        (_, "dv/query-status") => dv::status(inner, q),
        (_, "dv/events") => dv::events(inner, q),
        _ => errors::not_found(),
    }
}

fn envelope(
    items: Vec<Value>,
    q: &HashMap<String, String>,
    kind: &str,
    wrap: impl FnOnce(Vec<Value>) -> Value,
) -> Reply {
    match params::page(items, q, kind, 10, 1000) {
        Ok((data, pagination)) => Reply::ok(json!({"data": wrap(data), "pagination": pagination})),
        Err(e) => errors::bad_request1(e),
    }
}

/// Our accounts and sites are all active, so a `states` filter without "active" empties the list.
fn state_ok(q: &HashMap<String, String>) -> bool {
    params::list(q, "states").is_none_or(|s| s.iter().any(|s| s == "active"))
}

fn accounts(scope: &Scope<'_>, q: &HashMap<String, String>) -> Reply {
    let ids = params::list(q, "accountIds");
    let cfg = scope.config;
    let items = scope
        .visible_accounts()
        .into_iter()
        .filter(|a| ids.as_ref().is_none_or(|ids| ids.contains(&a.id)))
        .filter(|a| q.get("name").is_none_or(|n| *n == a.name))
        .filter(|_| state_ok(q))
        .map(|a| {
            json!({
                "id": a.id, "name": a.name, "state": "active", "accountType": "Paid",
                "createdAt": FIXED_TIME, "updatedAt": FIXED_TIME, "expiration": null,
                "unlimitedExpiration": true, "activeAgents": 0,
                "numberOfSites": cfg.sites.iter().filter(|s| s.account_id == a.id).count(),
            })
        })
        .collect();
    envelope(items, q, "accounts", Value::Array)
}

fn sites(scope: &Scope<'_>, q: &HashMap<String, String>) -> Reply {
    let ids = params::list(q, "siteIds");
    let accounts = params::list(q, "accountIds");
    let cfg = scope.config;
    let items: Vec<Value> = scope
        .visible_sites()
        .into_iter()
        .filter(|s| ids.as_ref().is_none_or(|ids| ids.contains(&s.id)))
        .filter(|s| accounts.as_ref().is_none_or(|a| a.contains(&s.account_id)))
        .filter(|s| q.get("name").is_none_or(|n| *n == s.name))
        .filter(|_| state_ok(q))
        .map(|s| {
            json!({
                "id": s.id, "name": s.name, "accountId": s.account_id,
                "accountName": cfg.account(&s.account_id).map(|a| a.name.as_str()),
                "state": "active", "siteType": "Paid", "sku": "Complete", "isDefault": false,
                "createdAt": FIXED_TIME, "updatedAt": FIXED_TIME,
                "activeLicenses": 0, "totalLicenses": 0, "unlimitedLicenses": true,
            })
        })
        .collect();
    envelope(
        items,
        q,
        "sites",
        |sites| json!({"allSites": {"totalLicenses": 0, "activeLicenses": 0}, "sites": sites}),
    )
}

fn ingest(inner: &mut Inner, scope: &Scope<'_>, body: &[u8]) -> Reply {
    match events::check_batch(body, scope, inner.config.validate) {
        Ok(batch) => {
            let n = batch.len();
            for ev in batch {
                let account = ev
                    .get("accountId")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .or_else(|| {
                        let site = ev.get("siteId").and_then(Value::as_str)?;
                        scope.config.site(site).map(|s| s.account_id.clone())
                    })
                    .or_else(|| scope.default_account().map(String::from));
                inner.store_event(ev, account);
            }
            Reply::ok(json!({"data": {"accepted": n}}))
        }
        Err(Rejection::BadRequest(errs)) => errors::bad_request(&errs),
        Err(Rejection::Forbidden) => errors::forbidden(),
    }
}
