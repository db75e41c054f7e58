//! What the account 360 reads of one account (migration 0010), on both backends: its
//! product events by groupId and, without one, by its contacts' userIds (never another
//! account's, never cairn's own), a page at a time before a cursor; the messages sent to
//! its contacts with their engagement; tasks by creation and completion; notes,
//! overrides and transitions before a cursor; its contacts' activity counted exactly.

mod common;

use cairn_core::tracking::TrackingMessage;
use cairn_store::{ContactActivity, LedgerEntry, NewTask, NewTransition, Store, SubjectKind, TaskPriority};
use common::*;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            use crate::common::{run, Backend};
            $(
                #[tokio::test]
                async fn $scenario() {
                    run(Backend::Sqlite, stringify!($scenario), super::$scenario).await;
                }
            )*
        }
        mod postgres {
            use crate::common::{run, Backend};
            $(
                #[tokio::test]
                async fn $scenario() {
                    run(Backend::Postgres, stringify!($scenario), super::$scenario).await;
                }
            )*
        }
    };
}

on_both_backends! {
    an_accounts_events_come_by_group_and_by_its_contacts_without_one,
    messages_carry_their_program_subject_and_engagement,
    tasks_notes_overrides_and_transitions_page_before_a_cursor,
    contact_activity_counts_events_days_and_messages,
}

/// Ada and Bob of Acme (product id `acme`), Cy of Globex (`globex`).
async fn people(store: &Store) -> (i64, i64, i64, i64) {
    let mut m = Vec::new();
    for (i, (user, group)) in [("u-ada", "acme"), ("u-bob", "acme"), ("u-cy", "globex")].into_iter().enumerate() {
        m.push(msg(json!({"type": "identify", "messageId": format!("id{i}"), "userId": user,
            "traits": {"email": format!("{user}@example.com")}, "timestamp": "2025-06-01T00:00:00Z"})));
        m.push(msg(json!({"type": "group", "messageId": format!("g{i}"), "userId": user, "groupId": group,
            "traits": {"name": group}, "timestamp": "2025-06-01T00:00:00Z"})));
    }
    append_new(store, "web", m).await;
    let acme = store.resolve_account("acme").await.unwrap().expect("acme");
    let ada = store.resolve_contact("u-ada").await.unwrap().expect("ada");
    let bob = store.resolve_contact("u-bob").await.unwrap().expect("bob");
    let cy = store.resolve_contact("u-cy").await.unwrap().expect("cy");
    (acme, ada, bob, cy)
}

fn track(id: &str, user: &str, group: Option<&str>, event: &str, at: &str) -> TrackingMessage {
    let mut m = json!({"type": "track", "messageId": id, "userId": user, "event": event, "timestamp": at,
        "properties": {"id": id}});
    if let Some(g) = group {
        m["context"] = json!({"groupId": g});
    }
    msg(m)
}

async fn an_accounts_events_come_by_group_and_by_its_contacts_without_one(store: Store) {
    let (acme, ada, bob, _) = people(&store).await;
    append_new(
        &store,
        "web",
        vec![
            track("e1", "u-ada", Some("acme"), "report_created", "2026-02-01T10:00:00Z"),
            track("e2", "u-bob", None, "login", "2026-02-01T11:00:00Z"),
            track("e3", "u-cy", Some("globex"), "login", "2026-02-01T12:00:00Z"),
            // Ada working for Globex for once: Globex's event, not Acme's.
            track("e4", "u-ada", Some("globex"), "export", "2026-02-01T13:00:00Z"),
            track("e5", "u-ada", Some("acme"), "report_created", "2026-02-01T14:00:00Z"),
        ],
    )
    .await;
    // cairn's own event about Ada (a send) is a message, not a product event.
    store.contact_aliases(&[ada]).await.unwrap();
    let own = msg(json!({"type": "track", "messageId": "c1", "userId": cairn_store::contact_alias_of(ada),
        "event": "email_sent", "timestamp": "2026-02-01T15:00:00Z"}));
    append_new(&store, "cairn", vec![own]).await;

    let all = store.account_events_before(acme, Timestamp::MAX, 100).await.unwrap();
    // Only product events: the identify and group calls are not among them.
    let seen: Vec<(&str, Option<i64>)> =
        all.iter().map(|e| (e.name.as_deref().unwrap_or(&e.kind), e.contact_id)).collect();
    assert_eq!(seen, [("report_created", Some(ada)), ("login", Some(bob)), ("report_created", Some(ada))]);
    assert!(all.windows(2).all(|w| (w[0].at, w[0].seq) > (w[1].at, w[1].seq)), "newest first");
    assert_eq!(all[0].properties.as_deref(), Some(r#"{"id":"e5"}"#));

    // A page before 14:00, of at most 2.
    let page = store.account_events_before(acme, timestamp("2026-02-01T14:00:00Z"), 2).await.unwrap();
    let names: Vec<&str> = page.iter().map(|e| e.name.as_deref().unwrap_or("")).collect();
    assert_eq!(names, ["login", "report_created"]);
    assert!(store.account_events_before(acme + 1000, Timestamp::MAX, 10).await.unwrap().is_empty());
}

/// A sent email of `program` to `contact` at `at`, recorded as the runner records it.
async fn send(store: &Store, program: &str, contact: i64, at: &str, subject: &str) -> i64 {
    let at = timestamp(at);
    let e = store
        .enroll(program, SubjectKind::Contact, contact, &format!("t-{at}"), at, false, None)
        .await
        .unwrap()
        .expect("new");
    store.schedule_step(e.id, "welcome", at).await.unwrap();
    let due = store.claim_due_steps("w", at, SignedDuration::from_mins(1), 10).await.unwrap();
    let due = due.into_iter().find(|d| d.enrollment_id == e.id).expect("claimed");
    let entry = LedgerEntry {
        enrollment_id: e.id,
        step_id: "welcome".into(),
        channel: "email".into(),
        outcome: "sent".into(),
        message_id: Some(format!("<{}@x>", e.id)),
        detail: json!({"subject": subject}).to_string(),
        at,
    };
    assert!(store.complete_step(&due, "w", &entry, None).await.unwrap());
    e.id
}

async fn messages_carry_their_program_subject_and_engagement(store: Store) {
    let (acme, ada, bob, cy) = people(&store).await;
    let first = send(&store, "onboarding", ada, "2026-02-01T10:00:00Z", "Welcome <Ada>").await;
    send(&store, "onboarding", bob, "2026-02-02T10:00:00Z", "Welcome Bob").await;
    send(&store, "onboarding", cy, "2026-02-03T10:00:00Z", "Welcome Cy").await;
    store.record_engagement(first, "welcome", "opened", timestamp("2026-02-01T11:00:00Z"), "{}").await.unwrap();
    store.record_engagement(first, "welcome", "clicked", timestamp("2026-02-01T11:05:00Z"), "{}").await.unwrap();

    let messages = store.account_messages_before(acme, Timestamp::MAX, 10).await.unwrap();
    let shown: Vec<(Option<i64>, Option<&str>)> =
        messages.iter().map(|m| (m.contact_id, m.subject.as_deref())).collect();
    assert_eq!(shown, [(Some(bob), Some("Welcome Bob")), (Some(ada), Some("Welcome <Ada>"))], "not Cy's: Globex");
    let ada_msg = &messages[1];
    assert_eq!(
        (ada_msg.program_id.as_str(), ada_msg.step_id.as_str(), ada_msg.channel.as_str()),
        ("onboarding", "welcome", "email")
    );
    assert_eq!(
        ada_msg.engagements,
        [
            ("opened".to_string(), timestamp("2026-02-01T11:00:00Z")),
            ("clicked".to_string(), timestamp("2026-02-01T11:05:00Z"))
        ]
    );
    assert!(messages[0].engagements.is_empty());
    let older = store.account_messages_before(acme, timestamp("2026-02-02T10:00:00Z"), 10).await.unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].contact_id, Some(ada));
}

async fn tasks_notes_overrides_and_transitions_page_before_a_cursor(store: Store) {
    let (acme, ada, _, cy) = people(&store).await;
    let globex = store.resolve_account("globex").await.unwrap().expect("globex");
    let e = store
        .enroll("calls", SubjectKind::Account, acme, "t", timestamp("2026-02-01T00:00:00Z"), false, None)
        .await
        .unwrap()
        .expect("new");
    let mut ids = Vec::new();
    for (i, day) in ["2026-02-01", "2026-02-02", "2026-02-03"].into_iter().enumerate() {
        let id = store
            .create_task(&NewTask {
                enrollment_id: e.id,
                step_id: format!("call{i}"),
                account_id: Some(acme),
                contact_id: Some(ada),
                title: format!("Call {i}"),
                body: String::new(),
                assignee: None,
                pool: Some("team".into()),
                priority: TaskPriority::Normal,
                due_at: None,
                created_at: timestamp(&format!("{day}T09:00:00Z")),
            })
            .await
            .unwrap();
        ids.push(id);
    }
    // The first task is completed last.
    assert!(
        store
            .complete_task_with_outcome(ids[0], "csm@example.com", "reached", timestamp("2026-02-05T09:00:00Z"))
            .await
            .unwrap()
    );
    let created: Vec<i64> = store
        .account_tasks_before(acme, timestamp("2026-02-03T09:00:00Z"), 10)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(created, [ids[1], ids[0]]);
    let done = store.account_tasks_completed_before(acme, Timestamp::MAX, 10).await.unwrap();
    assert_eq!((done.len(), done[0].id, done[0].outcome.as_deref()), (1, ids[0], Some("reached")));
    assert!(
        store.account_tasks_completed_before(acme, timestamp("2026-02-05T09:00:00Z"), 10).await.unwrap().is_empty()
    );

    for (i, at) in ["2026-02-01T08:00:00Z", "2026-02-02T08:00:00Z", "2026-02-03T08:00:00Z"].into_iter().enumerate() {
        store.add_account_note(acme, &format!("note {i}"), "csm@example.com", timestamp(at)).await.unwrap();
    }
    store.add_account_note(globex, "not Acme's", "csm@example.com", timestamp("2026-02-02T12:00:00Z")).await.unwrap();
    let notes = store.account_notes_before(acme, timestamp("2026-02-03T08:00:00Z"), 1).await.unwrap();
    assert_eq!(notes.iter().map(|n| n.body.as_str()).collect::<Vec<_>>(), ["note 1"]);

    for (score, at) in [(Some(40.0), "2026-02-01T00:00:00Z"), (None, "2026-02-02T00:00:00Z")] {
        store.insert_health_override(acme, score, "why", "csm@example.com", timestamp(at), None).await.unwrap();
    }
    let overrides = store.health_overrides_before(acme, Timestamp::MAX, 10).await.unwrap();
    assert_eq!(overrides.iter().map(|o| o.score).collect::<Vec<_>>(), [None, Some(40.0)], "newest first");
    assert_eq!(store.health_overrides_before(acme, timestamp("2026-02-02T00:00:00Z"), 10).await.unwrap().len(), 1);

    let transition = |key: &str, at: &str, kind: &str, id: i64| NewTransition {
        key: key.into(),
        at: timestamp(at),
        subject_kind: kind.into(),
        subject_id: id,
        kind: "segment_entered".into(),
        detail: json!({"key": key}).to_string(),
        backfill: false,
    };
    store
        .append_transitions(&[
            transition("a", "2026-02-01T00:00:00Z", "account", acme),
            transition("b", "2026-02-02T00:00:00Z", "contact", ada),
            transition("c", "2026-02-03T00:00:00Z", "contact", cy),
            transition("d", "2026-02-04T00:00:00Z", "account", acme),
        ])
        .await
        .unwrap();
    let keys = |ts: Vec<cairn_store::StoredTransition>| {
        ts.iter().map(|t| t.detail["key"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>()
    };
    assert_eq!(keys(store.account_transitions_before(acme, Timestamp::MAX, 10).await.unwrap()), ["d", "b", "a"]);
    assert_eq!(
        keys(store.account_transitions_before(acme, timestamp("2026-02-04T00:00:00Z"), 1).await.unwrap()),
        ["b"]
    );
}

async fn contact_activity_counts_events_days_and_messages(store: Store) {
    let (acme, ada, bob, _) = people(&store).await;
    let now = timestamp("2026-03-01T12:00:00Z");
    let day = |d: i64, h: i64| (now - SignedDuration::from_hours(24 * d + h)).to_string();
    append_new(
        &store,
        "web",
        vec![
            // Ada: three events on two days within 30 days, one 40 days ago.
            track("a1", "u-ada", Some("acme"), "x", &day(1, 0)),
            track("a2", "u-ada", Some("acme"), "x", &day(1, 1)),
            track("a3", "u-ada", None, "y", &day(3, 0)),
            track("a4", "u-ada", Some("acme"), "x", &day(40, 0)),
            // Bob: only 100 days ago (outside the last-seen window too).
            track("b1", "u-bob", Some("acme"), "x", &day(100, 0)),
        ],
    )
    .await;
    let m1 = send(&store, "p", ada, &day(5, 0), "one").await;
    send(&store, "p", ada, &day(4, 0), "two").await;
    store.record_engagement(m1, "welcome", "opened", timestamp(&day(5, 0)), "{}").await.unwrap();
    store.record_engagement(m1, "welcome", "bounced", timestamp(&day(5, 0)), "{}").await.unwrap();

    let activity = store.account_contact_activity(acme, now).await.unwrap();
    // The identify and group calls of `people` are older than the windows, and not
    // product events.
    assert_eq!(
        activity,
        [ContactActivity {
            contact_id: ada,
            events_30d: 3,
            active_days_30d: 2,
            last_seen: Some(timestamp(&day(1, 0))),
            received: 2,
            opened: 1,
            clicked: 0,
            bounced: 1,
            last_message_at: Some(timestamp(&day(4, 0))),
        }]
    );
    assert!(activity.iter().all(|a| a.contact_id != bob), "Bob did nothing in 90 days and got nothing");
}
