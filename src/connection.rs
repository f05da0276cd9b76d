//! The connection test: console reachable, token valid, account exists, site exists.
//! One check each; a failure says how to fix it, in the words of the spec's troubleshooting.

use crate::config::Settings;
use crate::io::{Io, Method, Request, Response, TransportError, SHORT_TIMEOUT_MS};
use crate::policy::{error_detail, UNAUTHORIZED, WRONG_CONSOLE};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub message: String,
}

pub const CONSOLE_REACHABLE: &str = "console reachable";
pub const TOKEN_VALID: &str = "API token valid";
pub const ACCOUNT_EXISTS: &str = "account exists";
pub const SITE_EXISTS: &str = "site exists";

const ACCOUNT_FIX: &str = "Check the account ID in Settings → Account Info.";
const SITE_FIX: &str = "Site ID is optional but must be valid if provided: check it under Settings → Sites, or leave site_id empty to send at account level.";

pub fn check_connection(settings: &Settings, io: &mut dyn Io) -> Vec<Check> {
    let mut checks = vec![
        console_reachable(settings, io),
        token_valid(settings, io),
        account_exists(settings, io),
    ];
    if let Some(site) = &settings.site_id {
        checks.push(site_exists(settings, site, io));
    }
    for check in &mut checks {
        check.message = settings.redact(std::mem::take(&mut check.message));
    }
    checks
}

fn get(
    settings: &Settings,
    io: &mut dyn Io,
    path: &str,
    auth: bool,
) -> Result<Response, TransportError> {
    io.send(&Request {
        method: Method::Get,
        console: &settings.console_url,
        path,
        api_token: auth.then(|| settings.api_token.expose()),
        body: &[],
        timeout_ms: SHORT_TIMEOUT_MS,
    })
}

fn console_reachable(settings: &Settings, io: &mut dyn Io) -> Check {
    let url = &settings.console_url;
    let fail = |message: String| Check {
        name: CONSOLE_REACHABLE,
        ok: false,
        message,
    };
    match get(settings, io, "/web/api/v2.1/system/status", false) {
        Err(e) => fail(format!(
            "could not reach {url}: {}. {WRONG_CONSOLE}",
            e.message
        )),
        Ok(r) if r.status == 404 => fail(format!(
            "{url} has no SentinelOne API (404). {WRONG_CONSOLE}"
        )),
        Ok(r) if !(200..300).contains(&r.status) => {
            fail(format!("{url} answered {}{}", r.status, detail(&r)))
        }
        Ok(r) => {
            let health = serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| {
                    v.pointer("/data/health")
                        .and_then(|h| h.as_str())
                        .map(str::to_string)
                });
            match health.as_deref() {
                Some("ok") => Check {
                    name: CONSOLE_REACHABLE,
                    ok: true,
                    message: format!("{url} is up (health ok)"),
                },
                Some(other) => fail(format!("{url} reports health \"{other}\"; try again later")),
                None => fail(format!(
                    "{url} answered, but not like a SentinelOne console. {WRONG_CONSOLE}"
                )),
            }
        }
    }
}

fn token_valid(settings: &Settings, io: &mut dyn Io) -> Check {
    let fail = |message: String| Check {
        name: TOKEN_VALID,
        ok: false,
        message,
    };
    match get(settings, io, "/web/api/v2.1/system/info", true) {
        Err(e) => fail(format!("could not ask the console: {}", e.message)),
        Ok(r) if r.status == 401 => fail(UNAUTHORIZED.to_string()),
        Ok(r) if r.status == 403 => fail(format!(
            "the token was accepted but lacks permissions (403){}: give its user the Deep Visibility and Custom Detection Rules permissions",
            detail(&r)
        )),
        Ok(r) if (200..300).contains(&r.status) => {
            let version = serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| v.pointer("/data/version").and_then(|h| h.as_str()).map(str::to_string));
            let message = match version {
                Some(v) => format!("the console accepted the token (console version {v})"),
                None => "the console accepted the token".to_string(),
            };
            Check { name: TOKEN_VALID, ok: true, message }
        }
        Ok(r) => fail(format!("the console answered {}{}", r.status, detail(&r))),
    }
}

fn account_exists(settings: &Settings, io: &mut dyn Io) -> Check {
    let id = &settings.account_id;
    let path = format!("/web/api/v2.1/accounts?accountIds={id}");
    let fail = |message: String| Check {
        name: ACCOUNT_EXISTS,
        ok: false,
        message,
    };
    match get(settings, io, &path, true) {
        Err(e) => fail(format!("could not ask the console: {}", e.message)),
        Ok(r) if r.status == 401 => fail(format!("cannot look up account {id}: {UNAUTHORIZED}")),
        Ok(r) if r.status == 403 => fail(format!(
            "the token may not read account {id} (403). {ACCOUNT_FIX}"
        )),
        Ok(r) if (200..300).contains(&r.status) => {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let found = body["data"]
                .as_array()
                .and_then(|list| list.iter().find(|a| a["id"].as_str() == Some(id)));
            match found {
                Some(account) => {
                    let name = account["name"].as_str().unwrap_or("unnamed");
                    Check {
                        name: ACCOUNT_EXISTS,
                        ok: true,
                        message: format!("account {id} (\"{name}\") found"),
                    }
                }
                None => fail(format!("Account ID {id} not found. {ACCOUNT_FIX}")),
            }
        }
        Ok(r) => fail(format!("the console answered {}{}", r.status, detail(&r))),
    }
}

fn site_exists(settings: &Settings, site: &str, io: &mut dyn Io) -> Check {
    let account = &settings.account_id;
    let path = format!("/web/api/v2.1/sites?siteIds={site}&accountIds={account}");
    let fail = |message: String| Check {
        name: SITE_EXISTS,
        ok: false,
        message,
    };
    match get(settings, io, &path, true) {
        Err(e) => fail(format!("could not ask the console: {}", e.message)),
        Ok(r) if r.status == 401 => fail(format!("cannot look up site {site}: {UNAUTHORIZED}")),
        Ok(r) if r.status == 403 => fail(format!(
            "the token may not read site {site} (403). {SITE_FIX}"
        )),
        Ok(r) if (200..300).contains(&r.status) => {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let found = body
                .pointer("/data/sites")
                .and_then(|s| s.as_array())
                .and_then(|list| list.iter().find(|s| s["id"].as_str() == Some(site)));
            match found {
                Some(s) => {
                    let name = s["name"].as_str().unwrap_or("unnamed");
                    Check {
                        name: SITE_EXISTS,
                        ok: true,
                        message: format!("site {site} (\"{name}\") found in account {account}"),
                    }
                }
                None => fail(format!(
                    "Site ID {site} not found in account {account}. {SITE_FIX}"
                )),
            }
        }
        Ok(r) => fail(format!("the console answered {}{}", r.status, detail(&r))),
    }
}

fn detail(r: &Response) -> String {
    error_detail(&r.body)
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}
