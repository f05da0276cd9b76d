//! A realistic, reproducible audit data set: for the demo, the end-to-end tests and the
//! benchmarks. Same seed, same records.
//!
//! Every event type and severity appears, over several databases, users and clients, and the
//! spec's storyline is in it: `app_user` logs in from 10.0.1.50, then SELECTs 15,000 rows of
//! customer PII.

use serde_json::{json, Value};
use std::io::Write;

/// The storyline's actors (the spec's "Storyline Correlation Example").
pub const STORYLINE_USER: &str = "app_user";
pub const STORYLINE_IP: &str = "10.0.1.50";
pub const STORYLINE_ROWS: u64 = 15_000;

struct Database {
    name: &'static str,
    db_type: &'static str,
    host: &'static str,
    schema: &'static str,
}

const DATABASES: [Database; 5] = [
    Database {
        name: "production-postgres",
        db_type: "postgresql",
        host: "db.example.com",
        schema: "public",
    },
    Database {
        name: "billing-mysql",
        db_type: "mysql",
        host: "billing-db.internal",
        schema: "billing",
    },
    Database {
        name: "hr-sqlserver",
        db_type: "sqlserver",
        host: "hr-sql.corp.local",
        schema: "dbo",
    },
    Database {
        name: "orders-oracle",
        db_type: "oracle",
        host: "ora-orders.internal",
        schema: "SALES",
    },
    Database {
        name: "analytics-snowflake",
        db_type: "snowflake",
        host: "acme.snowflakecomputing.com",
        schema: "ANALYTICS",
    },
];

/// (table, PII data types it holds).
const TABLES: [(&str, &[&str]); 7] = [
    ("customers", &["email", "phone", "address"]),
    ("employees", &["ssn", "salary"]),
    ("payments", &["credit_card"]),
    ("orders", &[]),
    ("products", &[]),
    ("sessions", &[]),
    ("audit_log", &[]),
];

/// (user, usual client IP, application).
const USERS: [(&str, &str, &str); 7] = [
    ("app_user", "10.0.1.50", "backend-api"),
    ("etl_service", "10.0.3.20", "airflow"),
    ("jdoe", "10.0.5.101", "dbeaver"),
    ("asmith", "10.0.5.102", "psql"),
    ("dba_admin", "10.0.9.5", "psql"),
    ("report_bot", "10.0.4.40", "tableau"),
    ("svc_backup", "10.0.8.8", "backup-agent"),
];

const ACTIONS: [&str; 6] = ["SELECT", "SELECT", "SELECT", "INSERT", "UPDATE", "DELETE"];

/// splitmix64: tiny, fast and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// 2024-01-15T08:00:00Z: where the data set's clock starts.
const START_MS: i64 = 1_705_305_600_000;

/// Generates `count` records (JSON objects in the host's input format).
pub struct Generator {
    rng: Rng,
    seed: u64,
    index: u64,
    count: u64,
    now_ms: i64,
    /// Where the storyline's two events go.
    storyline_at: u64,
}

impl Generator {
    pub fn new(count: u64, seed: u64) -> Generator {
        Generator {
            rng: Rng(seed),
            seed,
            index: 0,
            count,
            now_ms: START_MS,
            storyline_at: count / 3,
        }
    }

    fn record(&mut self) -> Value {
        let i = self.index;
        self.index += 1;
        self.now_ms += 100 + self.rng.below(1500) as i64;
        if self.count >= 2 && i == self.storyline_at {
            return self.storyline_login(i);
        }
        if self.count >= 2 && i == self.storyline_at + 1 {
            return self.storyline_exfiltration(i);
        }
        let roll = self.rng.below(100);
        let kind = match roll {
            0..=69 => "audit_event",
            70..=79 => "auth_success",
            80..=85 => "auth_failure",
            86..=89 => "alert",
            90..=93 => "policy_violation",
            94..=96 => "ai_detection",
            _ => "classification_finding",
        };
        let db = self.rng.pick(&DATABASES);
        let &(user, usual_ip, app) = self.rng.pick(&USERS);
        // One login in ten comes from somewhere unusual.
        let ip = if self.rng.below(10) == 0 {
            format!("203.0.113.{}", self.rng.below(254) + 1)
        } else {
            usual_ip.to_string()
        };
        let &(table, pii) = self.rng.pick(&TABLES);
        let severity = self.severity(kind);
        let mut r = json!({
            "id": format!("evt-{:x}-{i:08}", self.seed),
            "timestamp": self.timestamp(),
            "event_type": kind,
            "severity": severity,
            "database": db.name,
            "db_type": db.db_type,
            "db_host": db.host,
            "actor_user": user,
            "client_ip": ip,
            "application": app,
            "session_id": format!("sess-{:06}", self.rng.below(50_000)),
        });
        match kind {
            "auth_success" | "auth_failure" => {
                r["action_type"] = json!("LOGIN");
            }
            _ => {
                let action = *self.rng.pick(&ACTIONS);
                let rows = match (action, self.rng.below(100)) {
                    ("SELECT", 0..=1) => 10_001 + self.rng.below(90_000),
                    ("SELECT", _) => self.rng.below(5_000),
                    (_, _) => self.rng.below(200),
                };
                let statement = match action {
                    "SELECT" => format!(
                        "SELECT * FROM {}.{table} WHERE updated_at > $1 LIMIT {}",
                        db.schema,
                        rows.max(1)
                    ),
                    "INSERT" => format!("INSERT INTO {}.{table} VALUES ($1, $2, $3)", db.schema),
                    "UPDATE" => {
                        format!("UPDATE {}.{table} SET status = $1 WHERE id = $2", db.schema)
                    }
                    _ => format!("DELETE FROM {}.{table} WHERE id = $1", db.schema),
                };
                r["action_type"] = json!(action);
                r["object"] = json!(table);
                r["schema"] = json!(db.schema);
                r["statement"] = json!(statement);
                r["rows_affected"] = json!(rows);
                r["contains_pii"] = json!(!pii.is_empty());
                r["data_types"] = json!(pii);
            }
        }
        if kind == "alert" || kind == "ai_detection" {
            r["rule_name"] = json!(if kind == "alert" {
                "mass-delete"
            } else {
                "anomalous-volume"
            });
        }
        r
    }

    fn severity(&mut self, kind: &str) -> &'static str {
        let roll = self.rng.below(100);
        match kind {
            "audit_event" | "auth_success" => match roll {
                0..=84 => "info",
                85..=97 => "warning",
                _ => "critical",
            },
            _ => match roll {
                0..=19 => "info",
                20..=59 => "warning",
                _ => "critical",
            },
        }
    }

    /// Mostly UTC, some with an offset: the plugin must normalise both.
    fn timestamp(&mut self) -> String {
        let t = chrono::DateTime::from_timestamp_millis(self.now_ms).expect("in range");
        if self.rng.below(5) == 0 {
            let offset = chrono::FixedOffset::east_opt(2 * 3600).expect("valid offset");
            t.with_timezone(&offset)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
        } else {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        }
    }

    fn storyline_login(&mut self, i: u64) -> Value {
        json!({
            "id": format!("evt-{:x}-{i:08}", self.seed),
            "timestamp": self.timestamp(),
            "event_type": "auth_success",
            "severity": "info",
            "database": "production-postgres",
            "db_type": "postgresql",
            "db_host": "db.example.com",
            "actor_user": STORYLINE_USER,
            "client_ip": STORYLINE_IP,
            "application": "python",
            "action_type": "LOGIN",
            "session_id": "sess-storyline",
        })
    }

    fn storyline_exfiltration(&mut self, i: u64) -> Value {
        json!({
            "id": format!("evt-{:x}-{i:08}", self.seed),
            "timestamp": self.timestamp(),
            "event_type": "audit_event",
            "severity": "critical",
            "database": "production-postgres",
            "db_type": "postgresql",
            "db_host": "db.example.com",
            "actor_user": STORYLINE_USER,
            "client_ip": STORYLINE_IP,
            "application": "python",
            "action_type": "SELECT",
            "object": "customers",
            "schema": "public",
            "statement": "SELECT id, name, email, phone, address FROM public.customers",
            "rows_affected": STORYLINE_ROWS,
            "contains_pii": true,
            "data_types": ["email", "phone", "address"],
            "session_id": "sess-storyline",
        })
    }
}

impl Iterator for Generator {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        (self.index < self.count).then(|| self.record())
    }
}

/// Writes `count` records as JSON Lines.
pub fn write_jsonl(out: &mut impl Write, count: u64, seed: u64) -> std::io::Result<()> {
    for record in Generator::new(count, seed) {
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_complete() {
        let a: Vec<Value> = Generator::new(10_000, 7).collect();
        let b: Vec<Value> = Generator::new(10_000, 7).collect();
        assert_eq!(a, b);
        for kind in [
            "audit_event",
            "alert",
            "ai_detection",
            "policy_violation",
            "classification_finding",
            "auth_success",
            "auth_failure",
        ] {
            for severity in ["critical", "warning", "info"] {
                assert!(
                    a.iter()
                        .any(|r| r["event_type"] == kind && r["severity"] == severity),
                    "{kind}/{severity}"
                );
            }
        }
        let login = a
            .iter()
            .position(|r| r["session_id"] == "sess-storyline" && r["event_type"] == "auth_success")
            .unwrap();
        let select = &a[login + 1];
        assert_eq!(
            (
                select["rows_affected"].as_u64(),
                select["client_ip"].as_str()
            ),
            (Some(STORYLINE_ROWS), Some(STORYLINE_IP))
        );
    }
}
