//! `cairn report backtest` and `GET /api/reports/backtest` on a hand-built customer base
//! whose AUCs, churn by band and calibration are worked out by hand below.
//!
//! Ten accounts a0..a9, each with one line from 2025-01-01 to 2025-12-31; a0..a4 renew
//! (a line from 2026-01-01), a5..a9 churn. The workspace scores two pillars of equal
//! weight, each one measure over 365 days with a linear curve 0 → 0 points, 10 → 100:
//! adoption (reports) and engagement (logins). Every account logs in once and files its
//! reports on 2025-09-01, so engagement is 10 for all and overall = (10·reports + 10) / 2;
//! a7 files 14 more reports on 2025-11-15 (between the 60- and the 30-day horizon).
//! Bands: red below 30, green from 50.
//!
//! reports: renewed a0 8, a1 6, a2 4, a3 4, a4 2; churned a5 5, a6 4, a7 1 (15 from
//! 11-15), a8 0, a9 0. Overall: renewed 45, 35, 25, 25, 15; churned 30, 25, 10 (55 from
//! 11-15: adoption is capped at 100), 5, 5.
//!
//! AUC (25 renewed × churned pairs, a tie counting ½):
//! - 90 and 60 days before (10-02, 11-01), overall: 45 beats all 5; 35 all 5; each 25
//!   beats 10, 5, 5 and ties 25: 3.5 twice; 15 beats 10, 5, 5: 3. 20 / 25 = 0.8.
//!   Adoption ranks the same: 0.8. Engagement: all tied, 0.5.
//! - 30 days before (12-01), overall: 45 beats 30, 25, 5, 5 (not 55): 4; 35: 4; 25s: 2.5
//!   each; 15: 2. 15 / 25 = 0.6. Adoption (a7 at 100): 80 and 60 beat all but 100: 4
//!   each; 40s beat 0, 0 and tie 40: 2.5 each; 20: 2. 15 / 25 = 0.6.
//!
//! Churn by band 90 days before: red a2 a3 a4 a6 a7 a8 a9, 4 of 7 churned; yellow a0 a1
//! a5, 1 of 3; green none. 30 days before: red 3 of 6; yellow 1 of 3; green a7, 1 of 1 —
//! green, and churned.
//!
//! Calibration 90 days before: 0–10: 5, 5 (mean 5.0, 0 renewed); 10–20: 15, 10 (12.5, 1
//! of 2); 20–30: 25, 25, 25 (25.0, 2 of 3); 30–40: 35, 30 (32.5, 1 of 2); 40–50: 45 (1 of 1).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use cairn::app::{App, AppConfig, Definitions};
use cairn::loopback::Connection;
use cairn_core::FixedClock;
use cairn_store::{KeyKind, Store};
use serde_json::Value;

const WORKSPACE: &str = r#"
workspace: { time_zone: UTC }
health:
  bands: { red: 30, green: 50 }
  pillars:
    adoption:
      weight: 1
      measures:
        - { id: reports, value: "count('report_created', 365d)", score: { red: 0, green: 10 }, weight: 1 }
    engagement:
      weight: 1
      measures:
        - { id: logins, value: "count('login', 365d)", score: { red: 0, green: 10 }, weight: 1 }
"#;

const REPORTS: [usize; 10] = [8, 6, 4, 4, 2, 5, 4, 1, 0, 0];

struct Base {
    dir: tempfile::TempDir,
}

impl Base {
    fn db(&self) -> PathBuf {
        self.dir.path().join("cairn.db")
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    fn cairn(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("CAIRN_DB", format!("sqlite://{}", self.db().display()))
            .env("CAIRN_WORKSPACE", self.workspace())
            .env("CAIRN_LOG", "warn")
            .output()
            .expect("cairn runs")
    }

    fn report(&self, args: &[&str]) -> String {
        let out = self.cairn(&[&["report", "backtest"], args].concat());
        assert!(out.status.success(), "backtest {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The customer base of the module doc, imported through the binary.
fn base() -> Base {
    let b = Base { dir: tempfile::tempdir().expect("temp dir") };
    std::fs::create_dir(b.workspace()).expect("ws dir");
    std::fs::write(b.workspace().join("workspace.yaml"), WORKSPACE).expect("ws");
    let mut accounts = "external_id,name,product_id\n".to_string();
    let mut lines = "id,account_id,start_date,end_date,arr\n".to_string();
    let mut events = String::new();
    let mut n = 0;
    let mut event = |events: &mut String, account: usize, name: &str, at: &str| {
        n += 1;
        events.push_str(&format!(
            "{{\"type\":\"track\",\"messageId\":\"m{n}\",\"userId\":\"u{account}\",\"event\":\"{name}\",\"timestamp\":\"{at}\",\"context\":{{\"groupId\":\"a{account}\"}}}}\n"
        ));
    };
    for (a, reports) in REPORTS.iter().enumerate() {
        accounts.push_str(&format!("a{a},Account {a},a{a}\n"));
        lines.push_str(&format!("L{a},a{a},2025-01-01,2025-12-31,1000\n"));
        if a < 5 {
            lines.push_str(&format!("R{a},a{a},2026-01-01,2026-12-31,1000\n"));
        }
        event(&mut events, a, "login", "2025-09-01T09:00:00Z");
        for _ in 0..*reports {
            event(&mut events, a, "report_created", "2025-09-01T10:00:00Z");
        }
    }
    for _ in 0..14 {
        event(&mut events, 7, "report_created", "2025-11-15T10:00:00Z");
    }
    for (kind, file, text) in [
        ("accounts", "accounts.csv", accounts),
        ("subscriptions", "lines.csv", lines),
        ("events", "events.ndjson", events),
    ] {
        let path = b.dir.path().join(file);
        std::fs::write(&path, text).expect("write");
        let out = b.cairn(&["import", kind, path.to_str().expect("path")]);
        assert!(out.status.success(), "import {kind}: {}", String::from_utf8_lossy(&out.stderr));
    }
    b
}

fn auc(v: &Value) -> Option<f64> {
    v["auc"].as_f64()
}

/// The figures of the module doc, whichever way the health was read.
fn check_figures(json: &Value) {
    assert_eq!(
        (json["lines"].as_u64(), json["renewed"].as_u64(), json["churned"].as_u64()),
        (Some(10), Some(5), Some(5))
    );
    assert_eq!(json["period"]["first"], "2025-01-01");
    let h = &json["horizons"];
    assert_eq!(h.as_array().map(Vec::len), Some(3));
    let close = |x: Option<f64>, want: f64, what: &str| {
        assert!(x.is_some_and(|x| (x - want).abs() < 1e-12), "{what}: {x:?}, want {want}");
    };
    for (i, days, overall, adoption) in [(0, 30, 0.6, 0.6), (1, 60, 0.8, 0.8), (2, 90, 0.8, 0.8)] {
        assert_eq!(h[i]["days_before"], days);
        close(auc(&h[i]["overall"]), overall, &format!("overall AUC {days} days before"));
        assert_eq!(h[i]["pillars"][0]["id"], "adoption");
        close(auc(&h[i]["pillars"][0]), adoption, &format!("adoption {days}"));
        assert_eq!(h[i]["pillars"][1]["id"], "engagement");
        close(auc(&h[i]["pillars"][1]), 0.5, &format!("engagement {days}"));
        assert_eq!(h[i]["measures"][0]["id"], "adoption.reports");
        close(auc(&h[i]["measures"][0]), adoption, &format!("reports {days}"));
        close(auc(&h[i]["measures"][1]), 0.5, &format!("logins {days}"));
    }
    let bands = |i: usize| -> Vec<(u64, u64)> {
        h[i]["bands"]
            .as_array()
            .expect("bands")
            .iter()
            .map(|b| (b["lines"].as_u64().unwrap_or(99), b["churned"].as_u64().unwrap_or(99)))
            .collect()
    };
    assert_eq!(bands(2), [(7, 4), (3, 1), (0, 0)], "red, yellow, green 90 days before");
    assert_eq!(bands(0), [(6, 3), (3, 1), (1, 1)], "red, yellow, green 30 days before");
    assert_eq!(h[0]["green_then_churned"], 1);
    let calibration: Vec<(u64, u64, f64, u64)> = h[2]["calibration"]
        .as_array()
        .expect("calibration")
        .iter()
        .map(|c| {
            (
                c["from"].as_u64().unwrap_or(99),
                c["lines"].as_u64().unwrap_or(99),
                c["mean_score"].as_f64().unwrap_or(-1.0),
                c["renewed"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    assert_eq!(calibration, [(0, 2, 5.0, 0), (10, 2, 12.5, 1), (20, 3, 25.0, 2), (30, 2, 32.5, 1), (40, 1, 45.0, 1)]);
}

#[test]
fn the_backtest_replays_the_log_when_no_snapshot_is_stored() {
    let b = base();
    let json: Value = serde_json::from_str(&b.report(&["--as-of", "2026-03-01", "--json"])).expect("JSON");
    check_figures(&json);
    // Nothing ran `cairn serve`: every reading came from a replay of the log.
    assert_eq!(json["source"]["from_replay"], 30);
    assert_eq!(json["source"]["from_store"], 0);

    let table = b.report(&["--as-of", "2026-03-01"]);
    assert!(table.contains("Health backtest: 10 subscription lines ending 2025-01-01 to 2025-12-31"), "{table}");
    assert!(table.contains("our health score went green right up to the day they churned"), "{table}");
    let row = |label: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("{label}: {table}"))
            .to_string()
    };
    let overall: Vec<String> = row("overall").split_whitespace().skip(1).map(str::to_string).collect();
    assert_eq!(overall, ["0.600", "0.800", "0.800"]);
    assert!(row("churned while green").ends_with('0'), "{table}");
    assert!(row("green").contains("1 of 1 100.0%"), "{table}");
    println!("{table}");

    let csv = b.report(&["--as-of", "2026-03-01", "--csv"]);
    assert!(csv.starts_with("line,account,end,renewed,score_30d,band_30d,score_60d,band_60d,score_90d,band_90d\n"));
    assert!(csv.contains(",2025-12-31,false,55,green,10,red,10,red\n"), "a7's line: {csv}");

    // Before the renewal windows closed, nothing can be told.
    let early = b.report(&["--as-of", "2026-01-15"]);
    assert!(early.contains("left out: 10 lines whose renewal window was still open on 2026-01-15"), "{early}");
    assert!(early.contains("too few renewals"), "{early}");
}

#[tokio::test]
async fn the_api_reads_the_snapshots_the_runtime_stored() {
    let b = base();
    let store = Store::open(&format!("sqlite://{}", b.db().display())).await.expect("store");
    let secret = cairn_server::generate_key(KeyKind::Secret, [2; 32]);
    let now = "2026-03-01T12:00:00Z".parse().expect("now");
    store.create_api_key(KeyKind::Secret, "api", &cairn_server::hash_key(&secret), "s", now).await.expect("key");
    let clock = Arc::new(FixedClock::new(now));
    let config = AppConfig::new("127.0.0.1:0", Some(Definitions::Folder(b.workspace())));
    // The engine's start replays the log and stores every day's health.
    let app = App::build(store.clone(), clock, config).await.expect("app");
    let addr = app.addr().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    assert_eq!(store.health_snapshots_through().await.unwrap().map(|d| d.to_string()).as_deref(), Some("2026-02-28"));

    let get = |path: &str| {
        let auth = format!("Bearer {secret}");
        let path = path.to_string();
        let addr = addr.clone();
        async move {
            let r = Connection::new(&addr).request("GET", &path, &[("authorization", &auth)], b"").await.expect("GET");
            (r.status, serde_json::from_str::<Value>(&r.body).unwrap_or(Value::Null))
        }
    };
    let (status, json) = get("/api/reports/backtest").await;
    assert_eq!(status, 200, "{json}");
    check_figures(&json);
    assert_eq!(json["source"]["from_store"], 30);
    assert_eq!(json["source"]["from_replay"], 0);
    // The CLI's replay and the API's stored snapshots agree line by line.
    let cli: Value = serde_json::from_str(&b.report(&["--as-of", "2026-03-01", "--json"])).expect("JSON");
    assert_eq!(json["line_health"], cli["line_health"]);
    let (status, body) = get("/api/reports/backtest?as_of=2026-02-30").await;
    assert_eq!(status, 400, "{body}");
    let _ = stop.send(());
    let _ = running.await;
    store.close().await;
}
