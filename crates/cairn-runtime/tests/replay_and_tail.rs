//! The runtime over a real store, on SQLite and PostgreSQL: history is replayed in time
//! order with every transition stored once at the instant it happened; a restart
//! recomputes and stores nothing twice; a definition change marks its replay as backfill;
//! what happens afterwards is live.

#[path = "../../cairn-store/tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use cairn_core::{FixedClock, Source};
use cairn_runtime::Runtime;
use cairn_store::{Store, StoredTransition};
use cairn_workspace::{SourceFile, check_sources};
use common::{Backend, import_accounts, import_contacts, msg_received_at, run, timestamp};
use serde_json::json;

const WORKSPACE: &str = r#"
segments:
  - { id: reporting, of: account, where: "count('report_created', 7d) >= 2" }
  - { id: admins, of: contact, where: "role = 'admin'" }
journey:
  anchor: start_date
  stages:
    - id: onboarding
      until: milestone('first_report')
      milestones:
        - { id: first_report, when: "count('report_created', since_anchor) >= 1", within: 14d, value: true }
        - { id: invited, when: "count('user_invited', since_anchor) >= 3", within: 7d }
    - id: adoption
"#;

fn files(yaml: &str) -> Vec<SourceFile> {
    vec![SourceFile::new("ws.yaml", yaml)]
}

async fn start(store: &Store, clock: &Arc<FixedClock>, yaml: &str) -> Runtime {
    let files = files(yaml);
    let ws = check_sources(&files).unwrap_or_else(|d| panic!("{d:?}"));
    Runtime::start(store.clone(), clock.clone(), Arc::new(ws), cairn_runtime::definitions_hash(&files))
        .await
        .expect("start the runtime")
}

/// An event of contact u1 (account acme), received when it happened.
async fn track(store: &Store, id: &str, event: &str, at: &str) {
    let m = msg_received_at(
        at,
        json!({"type": "track", "messageId": id, "userId": "u1", "event": event, "timestamp": at, "context": {"groupId": "acme"}}),
    );
    store.append("test", &[m]).await.expect("append");
}

fn lines(ts: &[StoredTransition]) -> Vec<String> {
    ts.iter()
        .map(|t| {
            format!(
                "{} {} {} {}{}",
                t.at,
                t.subject_kind,
                t.kind,
                t.detail,
                if t.backfill { " (backfill)" } else { "" }
            )
        })
        .collect()
}

async fn history_replays_in_time_order_and_restarts_store_nothing_twice(store: Store) {
    import_accounts(&store, Source::Crm, "external_id,name,seats,start_date,product_id\nA1,Acme,10,2026-01-01,acme")
        .await;
    import_contacts(
        &store,
        Source::Crm,
        "external_id,account_external_id,email,role,product_id\nC1,A1,ada@acme.io,admin,u1",
    )
    .await;
    // History arrives out of order: the later report first.
    track(&store, "e2", "report_created", "2026-01-06T10:00:00Z").await;
    track(&store, "e1", "report_created", "2026-01-05T09:00:00Z").await;
    track(&store, "e3", "user_invited", "2026-01-03T08:00:00Z").await;

    let clock = Arc::new(FixedClock::new(timestamp("2026-01-20T00:00:00Z")));
    let rt = start(&store, &clock, WORKSPACE).await;
    let stored = store.transitions_after(0, 100).await.expect("transitions");
    let expected = [
        "2026-01-03T08:00:00Z account stage_changed {\"from\":null,\"to\":\"onboarding\",\"type\":\"stage_changed\"} (backfill)".to_string(),
        "2026-01-03T08:00:00Z contact segment_entered {\"segment\":\"admins\",\"type\":\"segment_entered\"} (backfill)".to_string(),
        "2026-01-05T09:00:00Z account milestone_achieved {\"milestone\":\"first_report\",\"type\":\"milestone_achieved\"} (backfill)".to_string(),
        "2026-01-05T09:00:00Z account stage_changed {\"from\":\"onboarding\",\"to\":\"adoption\",\"type\":\"stage_changed\"} (backfill)".to_string(),
        "2026-01-06T10:00:00Z account segment_entered {\"segment\":\"reporting\",\"type\":\"segment_entered\"} (backfill)".to_string(),
        "2026-01-08T00:00:00Z account milestone_missed {\"milestone\":\"invited\",\"type\":\"milestone_missed\"} (backfill)".to_string(),
        "2026-01-12T00:00:00Z account segment_exited {\"segment\":\"reporting\",\"type\":\"segment_exited\"} (backfill)".to_string(),
    ];
    assert_eq!(lines(&stored), expected, "\n{}", lines(&stored).join("\n"));
    drop(rt);

    // A restart with the same definitions recomputes the same transitions: none is new.
    clock.set(timestamp("2026-01-21T00:00:00Z"));
    let rt = start(&store, &clock, WORKSPACE).await;
    assert_eq!(store.transitions_after(0, 100).await.unwrap().len(), expected.len());

    // Live: an event now is applied at once and its transitions are not backfill.
    track(&store, "e4", "report_created", "2026-01-21T00:00:00Z").await;
    track(&store, "e5", "report_created", "2026-01-21T00:00:00Z").await;
    rt.catch_up().await.expect("catch up");
    let new = store.transitions_after(stored.last().unwrap().seq, 100).await.unwrap();
    assert_eq!(
        lines(&new),
        ["2026-01-21T00:00:00Z account segment_entered {\"segment\":\"reporting\",\"type\":\"segment_entered\"}"
            .to_string()]
    );
    // The clock moves on a week: the window slides, live.
    clock.set(timestamp("2026-01-28T00:00:00Z"));
    rt.catch_up().await.expect("tick");
    let new = store.transitions_after(stored.last().unwrap().seq, 100).await.unwrap();
    assert_eq!(
        lines(&new)[1],
        "2026-01-28T00:00:00Z account segment_exited {\"segment\":\"reporting\",\"type\":\"segment_exited\"}"
            .to_string()
    );
    drop(rt);

    // Changed definitions: their replay is a backfill, and the change is recorded.
    let changed = WORKSPACE.replace(">= 2\"", ">= 1\"");
    let _rt = start(&store, &clock, &changed).await;
    let after = store.transitions_after(new.last().unwrap().seq, 100).await.unwrap();
    assert!(!after.is_empty());
    assert!(after.iter().all(|t| t.backfill), "{:#?}", lines(&after));
    assert_eq!(store.last_definitions_hash().await.unwrap(), Some(cairn_runtime::definitions_hash(&files(&changed))));
}

#[tokio::test]
async fn sqlite_history_replays_in_time_order_and_restarts_store_nothing_twice() {
    run(Backend::Sqlite, "history", history_replays_in_time_order_and_restarts_store_nothing_twice).await;
}

#[tokio::test]
async fn postgres_history_replays_in_time_order_and_restarts_store_nothing_twice() {
    run(Backend::Postgres, "history", history_replays_in_time_order_and_restarts_store_nothing_twice).await;
}

/// The engine's 120-day scenario (crates/cairn-engine/tests/first_120_days.rs) through a
/// real store: the same transitions at the same instants, stored once each.
async fn an_accounts_first_120_days_through_the_store(store: Store) {
    const FIRST_120_DAYS: &str = r#"
workspace: { time_zone: UTC }
segments:
  - { id: active, of: account, where: "active_days(7d) >= 3" }
  - { id: big, of: account, where: "seats >= 20" }
  - { id: admins, of: contact, where: "role = 'admin'" }
journey:
  anchor: start_date
  stages:
    - id: onboarding
      until: milestone('first_report')
      milestones:
        - { id: first_report, when: "count('report_created', since_anchor) >= 1", within: 14d, value: true }
        - { id: invited_team, when: "distinct_users('user_invited', since_anchor) >= 3", within: 7d }
    - id: adoption
    - id: renewal
      from: days_until(renewal_date) <= 90
health:
  bands: { red: 40, green: 70 }
  pillars:
    adoption:
      weight: 1
      measures:
        - { id: reports, value: "count('report_created', 30d)", score: { red: 0, green: 10 }, weight: 1 }
"#;
    import_accounts(
        &store,
        Source::Crm,
        "external_id,name,seats,start_date,renewal_date,product_id\nA1,Acme,25,2026-01-01,2026-06-01,acme",
    )
    .await;
    import_contacts(
        &store,
        Source::Crm,
        "external_id,account_external_id,email,role,product_id\nC1,A1,ada@acme.io,admin,u1\nC2,A1,bob@acme.io,user,u2\nC3,A1,cy@acme.io,user,u3",
    )
    .await;
    let mut n = 0;
    let mut send = |user: &str, event: &str, at: String| {
        n += 1;
        msg_received_at(
            &at,
            json!({"type": "track", "messageId": format!("m{n}"), "userId": user, "event": event, "timestamp": at, "context": {"groupId": "acme"}}),
        )
    };
    let mut messages = vec![
        send("u1", "user_invited", "2026-01-03T10:00:00Z".into()),
        send("u2", "user_invited", "2026-01-04T10:00:00Z".into()),
        send("u1", "report_created", "2026-01-05T09:00:00Z".into()),
    ];
    for minute in 0..7 {
        messages.push(send("u2", "report_created", format!("2026-02-01T10:0{minute}:00Z")));
    }
    // Stored newest first: the replay must put them back in time order.
    messages.reverse();
    store.append("test", &messages).await.expect("append");
    let clock = Arc::new(FixedClock::new(timestamp("2026-05-01T00:00:00Z")));
    let _rt = start(&store, &clock, FIRST_120_DAYS).await;
    let stored = store.transitions_after(0, 100).await.expect("transitions");
    let after_start: Vec<String> =
        lines(&stored).into_iter().filter(|l| !l.starts_with("2026-01-03T10:00:00Z")).collect();
    let b = " (backfill)";
    let expected = [
        format!(
            "2026-01-05T09:00:00Z account segment_entered {{\"segment\":\"active\",\"type\":\"segment_entered\"}}{b}"
        ),
        format!(
            "2026-01-05T09:00:00Z account milestone_achieved {{\"milestone\":\"first_report\",\"type\":\"milestone_achieved\"}}{b}"
        ),
        format!(
            "2026-01-05T09:00:00Z account stage_changed {{\"from\":\"onboarding\",\"to\":\"adoption\",\"type\":\"stage_changed\"}}{b}"
        ),
        format!(
            "2026-01-08T00:00:00Z account milestone_missed {{\"milestone\":\"invited_team\",\"type\":\"milestone_missed\"}}{b}"
        ),
        format!(
            "2026-01-10T00:00:00Z account segment_exited {{\"segment\":\"active\",\"type\":\"segment_exited\"}}{b}"
        ),
        format!(
            "2026-02-01T10:02:00Z account health_band_changed {{\"from\":\"red\",\"score\":40.0,\"to\":\"yellow\",\"type\":\"health_band_changed\"}}{b}"
        ),
        format!(
            "2026-02-01T10:05:00Z account health_band_changed {{\"from\":\"yellow\",\"score\":70.0,\"to\":\"green\",\"type\":\"health_band_changed\"}}{b}"
        ),
        format!(
            "2026-03-03T00:00:00Z account stage_changed {{\"from\":\"adoption\",\"to\":\"renewal\",\"type\":\"stage_changed\"}}{b}"
        ),
        format!(
            "2026-03-03T00:00:00Z account health_band_changed {{\"from\":\"green\",\"score\":0.0,\"to\":\"red\",\"type\":\"health_band_changed\"}}{b}"
        ),
    ];
    assert_eq!(after_start, expected, "\n{}", lines(&stored).join("\n"));
}

#[tokio::test]
async fn sqlite_an_accounts_first_120_days_through_the_store() {
    run(Backend::Sqlite, "120 days", an_accounts_first_120_days_through_the_store).await;
}

#[tokio::test]
async fn postgres_an_accounts_first_120_days_through_the_store() {
    run(Backend::Postgres, "120 days", an_accounts_first_120_days_through_the_store).await;
}
