//! plugin.toml and the component's validation agree: every field, default, range and allowed
//! value the manifest declares is what `Settings` enforces.

mod support;

use dbaudit_sentinelone::config::{Settings, SETTING_NAMES};
use serde_json::{json, Map, Value};
use support::settings_json;

fn manifest() -> toml::Table {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plugin.toml")).unwrap();
    text.parse().unwrap()
}

fn schema() -> toml::Table {
    manifest()["settings"].as_table().unwrap().clone()
}

fn to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn manifest_declares_every_setting_and_no_other() {
    let schema = schema();
    let mut declared: Vec<&str> = schema.keys().map(String::as_str).collect();
    let mut known = SETTING_NAMES.to_vec();
    declared.sort();
    known.sort();
    assert_eq!(declared, known);
}

#[test]
fn required_fields_match() {
    let errs = Settings::from_json("{}").unwrap_err();
    for (name, field) in schema() {
        let required = field["required"].as_bool().unwrap();
        let has_default = field.get("default").is_some();
        let reported = errs.iter().any(|e| e.field == name);
        // Required fields without a default must be reported when missing; nothing else may be.
        assert_eq!(reported, required && !has_default, "{name}");
    }
}

#[test]
fn defaults_match() {
    let base: Value = serde_json::from_str(&settings_json(json!({ "site_id": null }))).unwrap();
    let minimal = Settings::from_json(&base.to_string()).unwrap();
    for (name, field) in schema() {
        let Some(default) = field.get("default") else {
            continue;
        };
        // Spelling the default out must give the same settings as leaving it out.
        let mut explicit: Map<String, Value> = base.as_object().unwrap().clone();
        explicit.insert(name.clone(), to_json(default));
        let with_default =
            Settings::from_map(&explicit).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(with_default, minimal, "{name}");
    }
}

#[test]
fn ranges_match() {
    for (name, field) in schema() {
        let (Some(min), Some(max)) = (field.get("min"), field.get("max")) else {
            continue;
        };
        let (min, max) = (min.as_integer().unwrap(), max.as_integer().unwrap());
        for (value, ok) in [(min - 1, false), (min, true), (max, true), (max + 1, false)] {
            let result = Settings::from_json(&settings_json(json!({ name.clone(): value })));
            assert_eq!(result.is_ok(), ok, "{name} = {value}: {result:?}");
        }
    }
}

#[test]
fn allowed_values_match() {
    for (name, field) in schema() {
        let Some(allowed) = field.get("allowed") else {
            continue;
        };
        let multi = field["type"].as_str() == Some("multiselect");
        for value in allowed.as_array().unwrap() {
            let v = if multi {
                json!([to_json(value)])
            } else {
                to_json(value)
            };
            assert!(
                Settings::from_json(&settings_json(json!({ name.clone(): v }))).is_ok(),
                "{name} = {value}"
            );
        }
        let bogus = if multi {
            json!(["bogus"])
        } else {
            json!("bogus")
        };
        assert!(
            Settings::from_json(&settings_json(json!({ name.clone(): bogus }))).is_err(),
            "{name} = bogus"
        );
    }
}

#[test]
fn types_match() {
    for (name, field) in schema() {
        let wrong = match field["type"].as_str().unwrap() {
            "string" | "select" | "password" => json!(["not", "text"]),
            "boolean" => json!("true"),
            "number" => json!("10"),
            "multiselect" | "array" => json!({ "not": "a list" }),
            other => panic!("{name}: unknown type {other}"),
        };
        let errs = Settings::from_json(&settings_json(json!({ name.clone(): wrong }))).unwrap_err();
        assert!(errs.iter().any(|e| e.field == name), "{name}: {errs:?}");
    }
}

#[test]
fn the_token_is_the_only_secret_and_capabilities_cover_sentinelone() {
    let schema = schema();
    let secrets: Vec<&String> = schema
        .iter()
        .filter(|(_, f)| f.get("secret").and_then(|s| s.as_bool()) == Some(true))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(secrets, ["api_token"]);
    assert_eq!(schema["api_token"]["type"].as_str(), Some("password"));
    let m = manifest();
    assert_eq!(
        m["capabilities"]["outbound_hosts"].as_array().unwrap()[0].as_str(),
        Some("*.sentinelone.net")
    );
    assert_eq!(
        m["plugin"]["world"].as_str(),
        Some("dbaudit:sink/siem-sink@0.1.0")
    );
    assert_eq!(
        m["plugin"]["version"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );
}
