//! A store holding events dated in year 1, in 1970 and in year 9000 (stored before
//! ingestion refused such dates, or under a wider range) starts in the time its other
//! events take, with sane answers: the centuries between cost nothing, and the
//! year-9000 event waits for its day. A start or reload asked to stop, stops.

#[path = "../../cairn-store/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use cairn_core::{FixedClock, Source};
use cairn_runtime::{Cancel, Runtime, RuntimeError};
use cairn_store::Store;
use cairn_workspace::{SourceFile, Workspace, check_sources};
use common::{Backend, import_accounts, import_contacts, msg_received_at, run};
use jiff::Timestamp;
use serde_json::json;

const WORKSPACE: &str = r#"
segments:
  - { id: reporting, of: account, where: "count('report_created', 7d) >= 2" }
  - { id: quiet, of: account, where: "days_since(last_seen()) > 14" }
  - { id: lapsed_users, of: contact, where: "days_since(last_seen()) > 30" }
journey:
  anchor: start_date
  stages:
    - id: onboarding
      until: milestone('first_report') or age() > 45d
      milestones:
        - { id: first_report, when: "count('report_created', since_anchor) >= 1", within: 14d, value: true }
    - id: adoption
health:
  bands: { red: 40, green: 70 }
  pillars:
    adoption:
      weight: 1
      measures:
        - { id: quiet_days, value: days_since(last_seen()), score: { red: 14, green: 1 }, weight: 1 }
"#;

fn workspace() -> (Arc<Workspace>, String) {
    let files = vec![SourceFile::new("ws.yaml", WORKSPACE)];
    let ws = check_sources(&files).unwrap_or_else(|d| panic!("{d:?}"));
    (Arc::new(ws), cairn_runtime::definitions_hash(&files))
}

/// An event of contact u1 (account acme) dated `at`, stored as it is: whatever range
/// ingestion accepts, the store may hold older rows.
async fn track_dated(store: &Store, id: &str, event: &str, at: &str) {
    let received = "2026-02-01T00:00:00Z";
    let mut m = msg_received_at(
        received,
        json!({"type": "track", "messageId": id, "userId": "u1", "event": event, "timestamp": received, "context": {"groupId": "acme"}}),
    );
    m.timestamp = at.parse::<Timestamp>().expect("a timestamp");
    store.append("test", &[m]).await.expect("append");
}

async fn setup(store: &Store) {
    import_accounts(store, Source::Crm, "external_id,name,seats,start_date,product_id\nA1,Acme,10,2026-01-01,acme")
        .await;
    import_contacts(
        store,
        Source::Crm,
        "external_id,account_external_id,email,role,product_id\nC1,A1,ada@acme.io,admin,u1",
    )
    .await;
    for (k, day) in (5..=25).step_by(2).enumerate() {
        track_dated(store, &format!("e{k}"), "report_created", &format!("2026-01-{day:02}T10:00:00Z")).await;
    }
}

async fn an_outlier_costs_its_own_days_not_the_calendar(store: Store) {
    setup(&store).await;
    let clock = Arc::new(FixedClock::new("2026-02-15T12:00:00Z".parse().unwrap()));
    let (ws, hash) = workspace();
    let timer = std::time::Instant::now();
    let base = Runtime::evaluate(&store, clock.as_ref(), Arc::clone(&ws)).await.expect("evaluate").engine.day_work();
    let base_time = timer.elapsed();

    track_dated(&store, "year-1", "page", "0001-01-01T00:00:00Z").await;
    track_dated(&store, "epoch", "page", "1970-01-01T00:00:00Z").await;
    track_dated(&store, "year-9000", "page", "9000-01-01T00:00:00Z").await;
    // Generous: before, this start did not finish in 11 minutes.
    let timer = std::time::Instant::now();
    let started =
        tokio::time::timeout(Duration::from_secs(120), Runtime::start(store.clone(), clock.clone(), ws, hash))
            .await
            .expect("the runtime starts in time")
            .expect("the runtime starts");
    eprintln!("without the outliers {base_time:?}, with them {:?}", timer.elapsed());
    let (work, held, health, segments) = started
        .read(|live| {
            let a = live.engine.accounts().next().map(|(_, a)| a.clone()).expect("an account");
            (live.engine.day_work(), live.engine.pending_events(), a.health, a.segments)
        })
        .await;
    // 2,000 years of calendar: a few hundred more day ticks than the month of data.
    assert!(work.ticks <= base.ticks + 400, "{work:?} against {base:?}");
    assert!(work.accounts <= base.accounts + 400, "{work:?} against {base:?}");
    // The year-9000 event waits for its day; the last one seen is the January report.
    assert_eq!(held, 1);
    let quiet = health.and_then(|h| h.pillars.iter().flat_map(|p| &p.measures).find(|m| m.id == "quiet_days")?.value);
    assert_eq!(quiet, Some(21.0), "days from 2026-01-25 to 2026-02-15");
    assert!(segments.contains("quiet"), "{segments:?}");
}

#[tokio::test]
async fn sqlite_an_outlier_costs_its_own_days_not_the_calendar() {
    run(Backend::Sqlite, "outliers", an_outlier_costs_its_own_days_not_the_calendar).await;
}

#[tokio::test]
async fn postgres_an_outlier_costs_its_own_days_not_the_calendar() {
    run(Backend::Postgres, "outliers", an_outlier_costs_its_own_days_not_the_calendar).await;
}

async fn a_start_or_reload_asked_to_stop_stops(store: Store) {
    setup(&store).await;
    let clock = Arc::new(FixedClock::new("2026-02-15T12:00:00Z".parse().unwrap()));
    let (ws, hash) = workspace();
    let cancel = Cancel::new();
    cancel.cancel();
    let refused = Runtime::start_cancellable(store.clone(), clock.clone(), Arc::clone(&ws), hash.clone(), cancel).await;
    assert!(matches!(refused, Err(RuntimeError::Cancelled)), "{:?}", refused.err());

    let cancel = Cancel::new();
    let rt = Runtime::start_cancellable(store.clone(), clock.clone(), Arc::clone(&ws), hash, cancel.clone())
        .await
        .expect("start");
    cancel.cancel();
    let reload = rt.reload(ws, "another hash".into()).await;
    assert!(matches!(reload, Err(RuntimeError::Cancelled)), "{reload:?}");
    // The running engine is kept, and `run` returns at once.
    assert_eq!(
        rt.read(|live| live.definitions_hash.clone()).await,
        cairn_runtime::definitions_hash(&[SourceFile::new("ws.yaml", WORKSPACE)])
    );
    tokio::time::timeout(Duration::from_secs(10), rt.clone().run(std::future::pending()))
        .await
        .expect("run returns once cancelled");
}

#[tokio::test]
async fn sqlite_a_start_or_reload_asked_to_stop_stops() {
    run(Backend::Sqlite, "cancel", a_start_or_reload_asked_to_stop_stops).await;
}
