//! The runtime writes each account's daily health to the store as the engine's days pass,
//! on SQLite and PostgreSQL: during the backfill replay, then live; a restart writes
//! nothing new; a change of definitions rewrites the history; and the replay the health
//! backtest falls back on gives the same history without writing it.

#[path = "../../cairn-store/tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use cairn_core::{FixedClock, Source};
use cairn_runtime::Runtime;
use cairn_store::{HealthSnapshotRecord, Store};
use cairn_workspace::{SourceFile, check_sources};
use common::{Backend, date, import_accounts, msg_received_at, run, timestamp};
use serde_json::json;

/// One measure: reports in the last 30 days (today included), 0 → 0 points, 10 → 100.
const WORKSPACE: &str = r#"
workspace: { time_zone: UTC }
health:
  bands: { red: 40, green: 70 }
  pillars:
    adoption:
      weight: 1
      measures:
        - { id: reports, value: "count('report_created', 30d)", score: { red: 0, green: 10 }, weight: 1 }
"#;

async fn start(store: &Store, clock: &Arc<FixedClock>, yaml: &str) -> Runtime {
    let files = vec![SourceFile::new("ws.yaml", yaml)];
    let ws = check_sources(&files).unwrap_or_else(|d| panic!("{d:?}"));
    Runtime::start(store.clone(), clock.clone(), Arc::new(ws), cairn_runtime::definitions_hash(&files))
        .await
        .expect("start the runtime")
}

fn report(n: usize, at: &str) -> cairn_core::tracking::TrackingMessage {
    msg_received_at(
        at,
        json!({"type": "track", "messageId": format!("r{n}"), "userId": "u1", "event": "report_created", "timestamp": at, "context": {"groupId": "acme"}}),
    )
}

fn runs(rows: &[HealthSnapshotRecord]) -> Vec<String> {
    rows.iter()
        .map(|s| format!("{} {:?} {} {:?}", s.day, s.score, s.band.as_deref().unwrap_or("-"), s.measures))
        .collect()
}

async fn the_runtime_writes_daily_health_as_days_pass(store: Store) {
    import_accounts(&store, Source::Crm, "external_id,name,seats,start_date,product_id\nA1,Acme,10,2026-01-01,acme")
        .await;
    // The log starts on 2026-01-03 (a report on the 5th, then seven on 2026-02-01).
    let mut messages = vec![
        msg_received_at(
            "2026-01-03T10:00:00Z",
            json!({"type": "track", "messageId": "i1", "userId": "u1", "event": "user_invited", "timestamp": "2026-01-03T10:00:00Z", "context": {"groupId": "acme"}}),
        ),
        report(0, "2026-01-05T09:00:00Z"),
    ];
    for minute in 0..7 {
        messages.push(report(minute + 1, &format!("2026-02-01T10:0{minute}:00Z")));
    }
    store.append("test", &messages).await.expect("append");
    let account = store.resolve_account("A1").await.unwrap().expect("account A1");

    let clock = Arc::new(FixedClock::new(timestamp("2026-05-01T12:00:00Z")));
    let rt = start(&store, &clock, WORKSPACE).await;
    // End-of-day scores, worked out by hand (10 points a report in the 30-day window):
    // 01-03 no report: 0 (the account is scored when the replay starts, on the log's
    //   first day);
    // 01-05 one report: 10;
    // 02-01 the 5th's report and seven: 8 → 80, green (scored 20, 30, … 80 during the
    //   day: only the day's last score is kept);
    // 02-04 the window is 01-06..02-04: the 5th's report drops out, 7 → 70, green;
    // 03-03 the window is 02-02..03-03: none, 0, red.
    let m = |s: f64| format!("[(\"adoption\", \"reports\", Some({s:?}))]");
    let expected = [
        format!("2026-01-03 Some(0.0) red {}", m(0.0)),
        format!("2026-01-05 Some(10.0) red {}", m(10.0)),
        format!("2026-02-01 Some(80.0) green {}", m(80.0)),
        format!("2026-02-04 Some(70.0) green {}", m(70.0)),
        format!("2026-03-03 Some(0.0) red {}", m(0.0)),
    ];
    let stored = store.account_health_snapshots(account, date("2026-01-01"), date("2026-12-31")).await.unwrap();
    assert_eq!(runs(&stored), expected, "\n{}", runs(&stored).join("\n"));
    // The clock is on 05-01: the days up to 04-30 are complete.
    assert_eq!(store.health_snapshots_through().await.unwrap(), Some(date("2026-04-30")));
    assert_eq!(store.health_snapshots_on(&[date("2026-02-03")]).await.unwrap()[0].1.score, Some(80.0));
    drop(rt);

    // A restart with the same definitions recomputes the same runs: nothing is new.
    let rt = start(&store, &clock, WORKSPACE).await;
    let again = store.account_health_snapshots(account, date("2026-01-01"), date("2026-12-31")).await.unwrap();
    assert_eq!(again, stored);

    // Live: two reports on 05-02, the days move on.
    clock.set(timestamp("2026-05-02T12:00:00Z"));
    store.append("test", &[report(20, "2026-05-02T11:00:00Z"), report(21, "2026-05-02T11:30:00Z")]).await.unwrap();
    rt.catch_up().await.expect("catch up");
    let live = store.account_health_snapshots(account, date("2026-05-01"), date("2026-05-31")).await.unwrap();
    assert_eq!(
        runs(&live),
        [format!("2026-03-03 Some(0.0) red {}", m(0.0)), format!("2026-05-02 Some(20.0) red {}", m(20.0))]
    );
    assert_eq!(store.health_snapshots_through().await.unwrap(), Some(date("2026-05-01")));
    clock.set(timestamp("2026-05-04T00:00:01Z"));
    rt.catch_up().await.expect("tick");
    assert_eq!(store.health_snapshots_through().await.unwrap(), Some(date("2026-05-03")));

    // The replay the backtest falls back on gives the stored history, writing nothing.
    let files = vec![SourceFile::new("ws.yaml", WORKSPACE)];
    let ws = Arc::new(check_sources(&files).unwrap());
    let replayed = Runtime::health_history(&store, clock.as_ref(), ws).await.unwrap();
    let all = store.account_health_snapshots(account, date("2026-01-01"), date("2026-12-31")).await.unwrap();
    assert_eq!(replayed, all);
    drop(rt);

    // Changed definitions: the history is the new definitions' view of the past.
    let changed = WORKSPACE.replace("green: 10 }", "green: 20 }");
    let _rt = start(&store, &clock, &changed).await;
    let rewritten = store.account_health_snapshots(account, date("2026-01-01"), date("2026-12-31")).await.unwrap();
    let scores: Vec<(String, Option<f64>)> = rewritten.iter().map(|s| (s.day.to_string(), s.score)).collect();
    let expected: Vec<(String, Option<f64>)> = [
        ("2026-01-03", 0.0),
        ("2026-01-05", 5.0),
        ("2026-02-01", 40.0),
        ("2026-02-04", 35.0),
        ("2026-03-03", 0.0),
        ("2026-05-02", 10.0),
    ]
    .iter()
    .map(|(d, s)| (d.to_string(), Some(*s)))
    .collect();
    assert_eq!(scores, expected);
}

#[tokio::test]
async fn sqlite_the_runtime_writes_daily_health_as_days_pass() {
    run(Backend::Sqlite, "health snapshots", the_runtime_writes_daily_health_as_days_pass).await;
}

#[tokio::test]
async fn postgres_the_runtime_writes_daily_health_as_days_pass() {
    run(Backend::Postgres, "health snapshots", the_runtime_writes_daily_health_as_days_pass).await;
}
