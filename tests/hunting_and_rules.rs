//! Issue 5 end to end: every hunting query's hits in the emulator's Deep Visibility equal the
//! count computed independently from the input; the storyline is found; detection rules exist
//! exactly once even when the console failed the first attempt.

mod e2e;

use dbaudit_host::demo::DeepVisibility;
use e2e::*;
use s1_emulator::Fault;
use serde_json::Value;
use std::collections::BTreeMap;

const RULES: &str = "/web/api/v2.1/cloud-detection/rules";

fn dv(w: &World) -> DeepVisibility {
    DeepVisibility {
        base: w.emulator.url(),
        token: TOKEN.to_string(),
    }
}

/// The queries' meaning, written from the spec, over the input records.
fn expected(id: &str, r: &Value, user: &str, ip: &str) -> bool {
    match id {
        "all_events" => true,
        "by_severity" => r["severity"] == "critical",
        "large_data_access" => {
            r["action_type"] == "SELECT" && r["rows_affected"].as_u64().unwrap_or(0) > 10_000
        }
        "user_activity" => r["actor_user"] == user,
        "failed_auth" => r["event_type"] == "auth_failure",
        "pii_access" => r["contains_pii"] == true,
        "endpoint_correlation" => r["client_ip"] == ip,
        other => panic!("a query the test does not know: {other}"),
    }
}

#[test]
fn every_hunting_query_finds_what_the_input_says_it_should() {
    let w = World::new();
    let data = dataset(3_000, 5);
    w.input(&data);
    let pipeline = w.pipeline("batch_size = 1000");
    let summary = run(&pipeline);
    assert_eq!(summary.delivered, 3_000);

    let cfg = dbaudit_host::PipelineConfig::load(&pipeline).unwrap();
    let mut loaded = dbaudit_host::plugin::load(&cfg, dbaudit_host::Metrics::new()).unwrap();
    loaded.plugin.configure().unwrap().unwrap();
    let (user, ip) = ("jdoe", "10.0.5.101");
    let params = [("actor_user", user), ("client_ip", ip)].map(|(name, value)| {
        dbaudit_host::runtime::QueryParameter {
            name: name.into(),
            value: value.into(),
        }
    });
    let queries = loaded.plugin.hunting_queries(&params).unwrap();
    assert_eq!(queries.len(), 7);
    let mut hits = BTreeMap::new();
    for q in &queries {
        let s1ql = &q
            .queries
            .iter()
            .find(|t| t.language == "s1ql")
            .unwrap()
            .text;
        let want = data.iter().filter(|r| expected(&q.id, r, user, ip)).count() as u64;
        let got = dv(&w).count(s1ql).unwrap();
        assert_eq!(got, want, "{}: {s1ql}", q.id);
        hits.insert(q.id.clone(), got);
    }
    // The data set makes every query find something.
    assert!(hits.values().all(|&n| n > 0), "{hits:?}");
}

#[test]
fn the_correlation_query_finds_the_storyline() {
    let w = World::new();
    w.input(&dataset(600, 9));
    run(&w.pipeline(""));
    let cfg = dbaudit_host::PipelineConfig::load(&w.path("pipeline.toml")).unwrap();
    let mut loaded = dbaudit_host::plugin::load(&cfg, dbaudit_host::Metrics::new()).unwrap();
    loaded.plugin.configure().unwrap().unwrap();
    let queries = loaded.plugin.hunting_queries(&[]).unwrap();
    let correlation = queries
        .iter()
        .find(|q| q.id == "endpoint_correlation")
        .unwrap();
    let events = dv(&w).events(&correlation.queries[0].text).unwrap();
    let story: Vec<&Value> = events
        .iter()
        .filter(|e| e["customFields"]["session_id"] == "sess-storyline")
        .collect();
    assert_eq!(story.len(), 2, "{story:?}");
    assert_eq!(story[0]["customFields"]["event_type"], "auth_success");
    assert_eq!(story[0]["customFields"]["actor_user"], "app_user");
    assert_eq!(story[1]["customFields"]["rows_affected"], 15_000);
    assert_eq!(story[1]["customFields"]["contains_pii"], true);
    assert_eq!(
        story[1]["customFields"]["mitre_technique"],
        "Data from Information Repositories (T1213)"
    );
    assert!(events
        .iter()
        .all(|e| e["customFields"]["client_ip"] == "10.0.1.50"));
}

fn rule_names(w: &World) -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    for rule in w.emulator.rules() {
        *names
            .entry(rule["name"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    names
}

#[test]
fn rules_exist_exactly_once_even_when_the_first_create_failed() {
    let w = World::new();
    // The console creates the first rule but the answer is lost (503): a retry must not
    // create it again.
    w.emulator.script(
        RULES,
        vec![Fault::status(503).for_method("POST").after_processing()],
    );
    w.input(&dataset(2_000, 3));
    let pipeline = w.pipeline("batch_size = 200");
    assert_ne!(
        dbaudit_host::commands::rules(&pipeline, true),
        0,
        "the first apply reports the failure"
    );
    assert_eq!(
        dbaudit_host::commands::rules(&pipeline, true),
        0,
        "the second apply succeeds"
    );
    let summary = run(&pipeline);
    assert_eq!(summary.delivered, 2_000);
    let names = rule_names(&w);
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.values().all(|&n| n == 1), "{names:?}");
    assert!(w.emulator.stats().duplicate_rule_names.is_empty());
    let exfil = w
        .emulator
        .rules()
        .into_iter()
        .find(|r| r["name"] == "DB Audit - Suspicious Data Exfiltration")
        .unwrap();
    assert_eq!(
        (
            exfil["status"].as_str(),
            exfil["scope"].as_str(),
            exfil["scopeId"].as_str()
        ),
        (Some("Active"), Some("site"), Some(SITE))
    );
}

#[test]
fn delivery_creates_one_rule_per_critical_kind_seen_and_survives_a_5xx() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let w = World::new();
    // Only critical auth failures: the exfiltration rule and the auth_failure rule, no others.
    let data: Vec<Value> = dataset(3_000, 8)
        .into_iter()
        .filter(|r| r["event_type"] == "auth_failure" && r["severity"] == "critical")
        .collect();
    assert!(data.len() > 10);
    // The first rule create fails (502, nothing created).
    w.emulator
        .script(RULES, vec![Fault::status(502).for_method("POST")]);
    let (first, later) = data.split_at(data.len() - 1);
    w.input(first);
    let pipeline = w.pipeline_to(&w.emulator.url(), "batch_size = 1", "follow = true");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = std::thread::spawn(move || {
        run_with(
            &pipeline,
            dbaudit_host::RunOptions {
                shutdown: Some(stopped),
                ..Default::default()
            },
        )
    });
    let started = Instant::now();
    let wait_for = |done: &dyn Fn() -> bool| {
        while !done() && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&|| w.emulator.events().len() == first.len());
    assert_eq!(
        rule_names(&w).len(),
        1,
        "one rule created, the failed one waits"
    );
    // After the plugin's retry delay, the next critical event brings the missing rule.
    std::thread::sleep(Duration::from_millis(
        dbaudit_sentinelone::rules::RETRY_LATER_MS as u64 + 300,
    ));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(w.path("audit.jsonl"))
        .unwrap();
    writeln!(file, "{}", later[0]).unwrap();
    drop(file);
    wait_for(&|| rule_names(&w).len() == 2);
    stop.send(true).unwrap();
    let summary = runner.join().unwrap();
    assert_eq!(
        summary.delivered as usize,
        data.len(),
        "events kept flowing while rules failed"
    );
    let names = rule_names(&w);
    let expected: BTreeMap<String, usize> = [
        ("DB Audit - Critical Authentication Failure".to_string(), 1),
        ("DB Audit - Suspicious Data Exfiltration".to_string(), 1),
    ]
    .into();
    assert_eq!(names, expected);
}
