//! The account 360 over real HTTP on both backends: the merged timeline shows each kind
//! of row (grouped product events, a message with its engagement, tasks created and done,
//! a transition, a note, an override) with links to what it talks about, escapes event
//! names and properties, filters by kind and pages with "older"; the contacts table shows
//! each contact's engagement; `GET /api/accounts/{id}/timeline` and `…/contacts` return
//! the same rows.

mod common;

use std::time::{Duration, Instant};

use cairn_store::{LedgerEntry, NewTask, SubjectKind, TaskPriority};
use common::ui::UiSession;
use common::{TestApp, test_now};
use jiff::SignedDuration;
use serde_json::json;

const WORKSPACE: &str = r#"
segments:
  - { id: enterprise, of: account, where: "plan = 'enterprise'" }
"#;

const HOSTILE_EVENT: &str = "<img src=x onerror=alert(1)>";

async fn get(app: &TestApp, s: &UiSession, path: &str) -> cairn::loopback::Response {
    let r = app.raw("GET", path, &[("Cookie", s.cookie().as_str())], b"").await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r
}

/// Acme with Ada and Bob, their events, a message Ada opened, a task, a note and an
/// override: (acme, ada, task).
async fn setup(app: &TestApp) -> (i64, i64, i64) {
    let at = |h: i64| (test_now() - SignedDuration::from_hours(h)).to_string();
    let mut calls = vec![
        json!({"type":"identify","userId":"u1","traits":{"name":"Ada","email":"ada@acme.io","role":"admin"},"timestamp":at(48)}),
        json!({"type":"group","userId":"u1","groupId":"acme","traits":{"name":"Acme","plan":"enterprise"},"timestamp":at(48)}),
        json!({"type":"identify","userId":"u2","traits":{"name":"Bob","email":"bob@acme.io"},"timestamp":at(48)}),
        json!({"type":"group","userId":"u2","groupId":"acme","timestamp":at(48)}),
    ];
    // Ada creates three reports today (with the group); Bob logs in without one.
    for h in [1, 2, 3] {
        calls.push(json!({"type":"track","userId":"u1","event":"report_created","context":{"groupId":"acme"},"timestamp":at(h)}));
    }
    calls.push(json!({"type":"track","userId":"u2","event":"login","timestamp":at(4)}));
    calls.push(json!({"type":"track","userId":"u1","event":HOSTILE_EVENT,"context":{"groupId":"acme"},
        "properties":{"note":"<b>bold</b>"},"timestamp":at(5)}));
    let r = app.post("/v1/batch", &json!({ "batch": calls }).to_string()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let acme = app.wait_for("/api/accounts/acme", |a| a["contacts"].as_array().is_some_and(|c| c.len() == 2)).await;
    let acme = acme["id"].as_i64().expect("acme's id");
    let ada = app.store.resolve_contact("u1").await.expect("store").expect("ada");
    // The engine's transition (Acme entered `enterprise`) is stored.
    let start = Instant::now();
    while app.store.account_transitions(acme, 10).await.expect("transitions").is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "Acme never entered enterprise");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A welcome email to Ada, opened.
    let sent = test_now() - SignedDuration::from_hours(24);
    let e = app
        .store
        .enroll("onboarding", SubjectKind::Contact, ada, "t", sent, false, None)
        .await
        .expect("enroll")
        .expect("new");
    // Due tomorrow, so that the runner (its clock stands at now) leaves it to this test.
    let tomorrow = test_now() + SignedDuration::from_hours(24);
    app.store.schedule_step(e.id, "welcome", tomorrow).await.expect("schedule");
    let due = app.store.claim_due_steps("test", tomorrow, SignedDuration::from_mins(1), 10).await.expect("claim");
    let due = due.into_iter().find(|d| d.enrollment_id == e.id).expect("claimed");
    let entry = LedgerEntry {
        enrollment_id: e.id,
        step_id: "welcome".into(),
        channel: "email".into(),
        outcome: "sent".into(),
        message_id: Some("<m1@acme>".into()),
        detail: json!({"subject": "Welcome <Ada>"}).to_string(),
        at: sent,
    };
    assert!(app.store.complete_step(&due, "test", &entry, None).await.expect("record"));
    let opened = sent + SignedDuration::from_mins(30);
    app.store.record_engagement(e.id, "welcome", "opened", opened, "{}").await.expect("engagement");

    let task = app
        .store
        .create_task(&NewTask {
            enrollment_id: e.id,
            step_id: "call".into(),
            account_id: Some(acme),
            contact_id: Some(ada),
            title: "Call Ada".into(),
            body: String::new(),
            assignee: None,
            pool: Some("team".into()),
            priority: TaskPriority::Normal,
            due_at: None,
            created_at: test_now() - SignedDuration::from_hours(30),
        })
        .await
        .expect("task");
    let done = test_now() - SignedDuration::from_hours(6);
    assert!(app.store.complete_task_with_outcome(task, "csm@example.com", "reached", done).await.expect("complete"));
    app.store
        .add_account_note(acme, "Renewal <soon>", "csm@example.com", test_now() - SignedDuration::from_hours(7))
        .await
        .expect("note");
    app.store
        .insert_health_override(
            acme,
            Some(60.0),
            "call went well",
            "csm@example.com",
            test_now() - SignedDuration::from_hours(8),
            None,
        )
        .await
        .expect("override");
    (acme, ada, task)
}

/// The timeline's rows of `kind` on a page.
fn rows<'a>(body: &'a str, kind: &str) -> Vec<&'a str> {
    let marker = format!("data-kind=\"{kind}\">");
    body.split(&marker).skip(1).map(|rest| rest.split("</li>").next().unwrap_or("")).collect()
}

async fn the_timeline_shows_every_kind_escaped_and_linked(app: &TestApp) {
    let s = app.signed_in_as("admin").await;
    let (acme, ada, task) = setup(app).await;
    let page = get(app, &s, &format!("/accounts/{acme}")).await;
    let body = &page.body;

    let events = rows(body, "event");
    assert!(events.iter().any(|r| r.contains("Ada: report_created ×3 today")), "{events:#?}");
    assert!(events.iter().any(|r| r.contains("Bob: login today")), "an event without a group: {events:#?}");
    assert!(!body.contains("<img src=x"), "an event name went out unescaped");
    assert!(!body.contains("<b>bold</b>"), "properties went out unescaped");
    let hostile = events.iter().find(|r| r.contains("&lt;img src=x")).expect("the hostile event is listed, escaped");
    assert!(hostile.contains("&lt;b&gt;bold&lt;/b&gt;"), "with its properties: {hostile}");
    assert!(events.iter().all(|r| r.contains(&format!("href=\"/accounts/{acme}?contact="))), "each names its contact");

    let messages = rows(body, "message");
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(messages[0].contains("email sent “Welcome &lt;Ada&gt;” (step welcome)"), "{}", messages[0]);
    assert!(
        messages[0].contains("opened ") && messages[0].contains("href=\"/programs/onboarding\""),
        "{}",
        messages[0]
    );

    let tasks = rows(body, "task");
    assert_eq!(tasks.len(), 2, "created and done: {tasks:#?}");
    assert!(tasks.iter().any(|r| r.contains("task done: Call Ada (reached)")));
    assert!(tasks.iter().any(|r| r.contains("task created: Call Ada")));
    assert!(tasks.iter().all(|r| r.contains(&format!("href=\"/tasks#task-{task}\""))));

    assert!(rows(body, "transition").iter().any(|r| r.contains("segment entered enterprise")), "{body}");
    assert!(rows(body, "note").iter().any(|r| r.contains("Renewal &lt;soon&gt;")));
    assert!(rows(body, "override").iter().any(|r| r.contains("health overridden to 60: call went well")));
    assert!(!body.contains("id=timeline-older"), "everything fits on one page");

    // Contacts with their engagement.
    let contacts = body.split("id=contact-table").nth(1).expect("the contacts table");
    let ada_row = contacts
        .split(&format!("id=\"contact-{ada}\""))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("Ada's row");
    assert!(ada_row.contains("<td class=n>4 / 1</td>"), "4 events on one day: {ada_row}");
    assert!(ada_row.contains("1/1 (100%)") && ada_row.contains("0/1 (0%)"), "opened and clicked: {ada_row}");

    // One kind only.
    let notes = get(app, &s, &format!("/accounts/{acme}?kind=note")).await;
    assert_eq!(rows(&notes.body, "note").len(), 1);
    for other in ["event", "message", "task", "transition", "override"] {
        assert!(rows(&notes.body, other).is_empty(), "kind=note shows a {other}");
    }
    let bad = app.raw("GET", &format!("/accounts/{acme}?kind=emails"), &[("Cookie", s.cookie().as_str())], b"").await;
    assert_eq!(bad.status, 400);

    // The same through the API.
    let (status, timeline) = app.api_get(&format!("/api/accounts/{acme}/timeline?kind=event,message")).await;
    assert_eq!(status, 200, "{timeline}");
    let entries = timeline["entries"].as_array().expect("entries");
    assert!(entries.iter().all(|e| e["kind"] == "event" || e["kind"] == "message"));
    let grouped = entries.iter().find(|e| e["text"] == "Ada: report_created ×3 today").expect("the group");
    assert_eq!(grouped["count"], 3);
    assert!(timeline["older"].is_null());
    let (status, listed) = app.api_get(&format!("/api/accounts/{acme}/contacts?sort=name")).await;
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> =
        listed["contacts"]["lines"].as_array().expect("lines").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["Ada", "Bob"]);
    assert_eq!(listed["contacts"]["lines"][0]["activity"]["received"], 1);
}

async fn the_timeline_pages_back_with_older(app: &TestApp) {
    let s = app.signed_in_as("admin").await;
    let (acme, _, _) = setup(app).await;
    // 60 notes an hour apart, older than everything else: more than a page.
    for i in 0..60 {
        let at = test_now() - SignedDuration::from_hours(100 + i);
        app.store.add_account_note(acme, &format!("old note {i}"), "csm@example.com", at).await.expect("note");
    }
    let mut seen: Vec<String> = Vec::new();
    let mut path = format!("/accounts/{acme}?kind=note");
    for _ in 0..5 {
        let page = get(app, &s, &path).await;
        let notes = rows(&page.body, "note");
        assert!(notes.len() <= 50, "a page is bounded");
        seen.extend(
            notes
                .iter()
                .map(|r| r.split("<div>").nth(1).and_then(|t| t.split("</div>").next()).unwrap_or("").to_string()),
        );
        match page.body.split("id=timeline-older href=\"").nth(1).and_then(|r| r.split('"').next()) {
            Some(next) => path = next.replace("&amp;", "&").split('#').next().unwrap_or("").to_string(),
            None => break,
        }
    }
    let mut expected: Vec<String> = vec!["Renewal &lt;soon&gt;".to_string()];
    expected.extend((0..60).map(|i| format!("old note {i}")));
    assert_eq!(seen, expected, "every note once, newest first, across pages");
}

on_both_backends!(
    workspace = super::WORKSPACE;
    the_timeline_shows_every_kind_escaped_and_linked,
    the_timeline_pages_back_with_older,
);
