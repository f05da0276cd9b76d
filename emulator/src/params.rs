//! Query strings, comma lists, `limit`/`cursor` paging and the pagination object.

use serde_json::{json, Value};
use std::collections::HashMap;

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=b&c=d`; the last value of a repeated key wins.
pub(crate) fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `a,b,c` -> ["a","b","c"]; absent or empty -> None (no filter).
pub(crate) fn list(params: &HashMap<String, String>, key: &str) -> Option<Vec<String>> {
    let v = params.get(key)?;
    let items: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    (!items.is_empty()).then_some(items)
}

/// `limit` in 1..=max (default `default`); the error names the parameter.
pub(crate) fn limit(
    params: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, String> {
    match params.get("limit") {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "limit: must be an integer from 1 to {max} (got \"{s}\")"
            )),
        },
    }
}

/// Cursors are opaque to clients: hex of `<kind>:<offset>`.
pub(crate) fn encode_cursor(kind: &str, offset: usize) -> String {
    format!("{kind}:{offset}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn decode_cursor(kind: &str, cursor: &str) -> Option<usize> {
    if !cursor.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    text.strip_prefix(kind)?.strip_prefix(':')?.parse().ok()
}

/// One page of `items` and the envelope's pagination object.
pub(crate) fn page(
    items: Vec<Value>,
    params: &HashMap<String, String>,
    kind: &str,
    default_limit: usize,
    max_limit: usize,
) -> Result<(Vec<Value>, Value), String> {
    let limit = limit(params, default_limit, max_limit)?;
    let offset = match params.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => {
            decode_cursor(kind, c).ok_or_else(|| format!("cursor: invalid cursor \"{c}\""))?
        }
    };
    let total = items.len();
    let end = (offset + limit).min(total);
    let next = (end < total).then(|| encode_cursor(kind, end));
    let page = items.into_iter().skip(offset).take(limit).collect();
    Ok((page, json!({"totalItems": total, "nextCursor": next})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_lists() {
        let p = parse_query(Some("accountIds=1%2C2,3&name=a+b&x"));
        assert_eq!(list(&p, "accountIds").unwrap(), ["1", "2", "3"]);
        assert_eq!(p["name"], "a b");
        assert_eq!(p["x"], "");
        assert!(list(&p, "x").is_none());
        assert_eq!(parse_query(Some("a=%zz%4"))["a"], "%zz%4");
    }

    #[test]
    fn paging() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let mut p = parse_query(Some("limit=2"));
        let (a, pg) = page(items.clone(), &p, "k", 10, 100).unwrap();
        assert_eq!(a, [json!(0), json!(1)]);
        assert_eq!(pg["totalItems"], 5);
        let c = pg["nextCursor"].as_str().unwrap().to_string();
        p.insert("cursor".into(), c);
        let (b, _) = page(items.clone(), &p, "k", 10, 100).unwrap();
        assert_eq!(b, [json!(2), json!(3)]);
        assert!(page(items.clone(), &p, "other", 10, 100).is_err());
        let (_, last) = page(items.clone(), &parse_query(None), "k", 10, 100).unwrap();
        assert!(last["nextCursor"].is_null());
        assert!(page(items, &parse_query(Some("limit=0")), "k", 10, 100).is_err());
    }
}
