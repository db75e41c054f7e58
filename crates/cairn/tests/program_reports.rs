//! `cairn report programs` and `experiments` as a CS leader meets them: through the
//! binary on a database holding a month of enrollments, sends and engagement, and through
//! `GET /api/reports/programs|experiments` on the running server. The figures are the
//! ones counted by hand in the comments.

mod common;

use std::process::{Command, Output};

use cairn_store::{EnrollRequest, LedgerEntry, Store, SubjectKind};
use common::{Backend, TestApp, workspace_dir};
use jiff::{SignedDuration, Timestamp};

const WORKSPACE: &str = r#"
templates:
  welcome: { channel: email, subject: "Welcome", text: "Hello." }
  welcome_b: { channel: email, subject: "Hi there", text: "Hello." }
programs:
  - id: onboarding
    name: Onboarding
    trigger: event('signed_up')
    topic: onboarding
    holdout: 50%
    goal: { when: "count('report_created', 14d) >= 1", within: 14d }
    steps:
      - id: hello
        send: email
        split: { welcome: 50%, welcome_b: 50% }
"#;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// Four treated contacts (7–10) sent `hello`, two per variant, and four held out
/// (11–14), enrolled on 2026-03-02 … 03-09 at 09:00.
async fn a_month_of_onboarding(store: &Store) {
    let mut ids = Vec::new();
    for (i, contact) in (7..=14).enumerate() {
        let at = ts(&format!("2026-03-0{}T09:00:00Z", i + 2));
        let holdout = contact >= 11;
        let e = store
            .enroll("onboarding", SubjectKind::Contact, contact, "k", at, holdout, None)
            .await
            .expect("enroll")
            .expect("new");
        ids.push((e.id, contact, at));
    }
    for (id, contact, at) in ids.iter().copied().filter(|(_, c, _)| *c < 11) {
        let variant = if contact % 2 == 1 { "welcome" } else { "welcome_b" };
        store.schedule_step(id, "hello", at).await.expect("schedule");
        let mut due = store.claim_due_steps("test", at, SignedDuration::from_mins(5), 10).await.expect("claim");
        assert_eq!(due.len(), 1);
        let due = due.remove(0);
        let entry = LedgerEntry {
            enrollment_id: id,
            step_id: "hello".into(),
            channel: "email".into(),
            outcome: "sent".into(),
            message_id: None,
            detail: serde_json::json!({ "variant": variant }).to_string(),
            at,
        };
        assert!(store.complete_step(&due, "test", &entry, None).await.expect("complete"));
        let later = at + SignedDuration::from_mins(1);
        store.record_engagement(id, "hello", "delivered", later, "{}").await.expect("engagement");
        // Contacts 7 and 9 (welcome) click; 7 and 8 meet the goal, and held-out 11.
        if contact == 7 || contact == 9 {
            store.record_engagement(id, "hello", "clicked", later, "{}").await.expect("engagement");
        }
    }
    for (id, contact, at) in ids {
        if [7, 8, 11].contains(&contact) {
            store.mark_goal_met(id, at + SignedDuration::from_hours(48)).await.expect("goal");
        }
    }
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cairn(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("CAIRN_DB", db)
        .env("CAIRN_LOG", "warn")
        .output()
        .expect("cairn runs")
}

#[tokio::test]
async fn the_programs_and_experiments_reports_through_the_binary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("cairn.db").display());
    let store = Store::open(&db).await.expect("store");
    a_month_of_onboarding(&store).await;
    store.close().await;
    let ws = workspace_dir(WORKSPACE);
    let ws_path = ws.path().to_str().expect("path");
    let period = ["--from", "2026-03-01", "--to", "2026-03-31", "--as-of", "2026-04-30", "--workspace", ws_path];
    let run = |report: &str, extra: &[&str]| {
        let out = cairn(&db, &[&["report", report][..], &period, extra].concat());
        assert!(out.status.success(), "{report}: {}", text_of(&out.stderr));
        text_of(&out.stdout)
    };

    let table = run("programs", &[]);
    println!("{table}");
    assert!(table.contains("onboarding (Onboarding): 8 enrollments, 4 held out"), "{table}");
    // welcome: 7, 9 sent, delivered, clicked → 2 of 2 delivered clicked, 100.0%.
    let welcome = table.lines().find(|l| l.trim_start().starts_with("hello / welcome ")).expect("welcome row");
    assert!(welcome.contains("2 100.0%"), "{welcome}");
    // Effect: treated 7, 8 of 7–10 → 2 of 4, 50.0%; held out 11 of 11–14 → 1 of 4, 25.0%.
    let treated = table.lines().find(|l| l.trim_start().starts_with("treated")).expect("treated");
    assert!(treated.contains("2 of 4") && treated.contains("50.0%"), "{treated}");
    let held = table.lines().find(|l| l.trim_start().starts_with("held out")).expect("held out");
    assert!(held.contains("1 of 4") && held.contains("25.0%"), "{held}");

    let json: serde_json::Value = serde_json::from_str(&run("programs", &["--json"])).expect("JSON");
    assert_eq!(json["programs"][0]["effect"]["treated"]["converted"], 2);
    assert_eq!(json["programs"][0]["reach"][1]["variant"], "welcome_b");

    let table = run("experiments", &[]);
    println!("{table}");
    assert!(table.contains("onboarding: A/B split on step `hello`"), "{table}");
    assert!(table.contains("onboarding: holdout"), "{table}");
    assert!(table.contains("Minimum detectable effect 5.0 points"), "{table}");
    // Four against four: never a verdict. Held-out base rate 1/4 needs (Fleiss, 0.25 →
    // 0.30) 1,251 per arm.
    let uplift = table.lines().find(|l| l.contains("uplift, treated vs held out")).expect("the goal's uplift");
    assert!(uplift.contains("+25.0 pts") && uplift.contains("Fisher's exact p 1.000"), "{uplift}");
    assert!(uplift.ends_with("not enough data yet (needs 1251 per arm)"), "{uplift}");
    assert!(!table.contains("better") && !table.contains("no detectable difference"), "{table}");
    let csv = run("experiments", &["--csv", "--mde", "10"]);
    assert!(csv.starts_with("program,experiment,step,metric,arm,n,conversions,rate"), "{csv}");
    assert!(csv.contains("onboarding,holdout,,goal,treated,4,2,0.5,"), "{csv}");

    let out = cairn(&db, &[&["report", "programs"][..], &period, &["--program", "nosuch"]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(text_of(&out.stderr).contains("program `nosuch`"), "{}", text_of(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_are_served_for_a_secret_key() {
    let ws = workspace_dir(WORKSPACE);
    let app = TestApp::spawn_with_workspace(Backend::Sqlite, ws.path()).await.expect("sqlite");
    // Held-out and treated enrollments without steps, so the running program runner has
    // nothing to do with them: 6 treated (2 meet the goal) and 2 held out (none).
    let at = ts("2026-03-05T09:00:00Z");
    let requests: Vec<EnrollRequest> = (0..8)
        .map(|i| EnrollRequest {
            program_id: "onboarding".into(),
            subject_kind: SubjectKind::Contact,
            subject_id: 100 + i,
            trigger_key: "k".into(),
            at,
            holdout: i >= 6,
            first_step: None,
        })
        .collect();
    assert_eq!(app.store.enroll_many(&requests).await.expect("enroll"), 8);
    let all = app.store.program_activity(at, at + SignedDuration::from_secs(1)).await.expect("read").enrollments;
    for m in all.iter().filter(|m| m.enrollment.subject_id < 102) {
        app.store.mark_goal_met(m.enrollment.id, at + SignedDuration::from_hours(1)).await.expect("goal");
    }
    let q = "from=2026-03-01&to=2026-03-31&as_of=2026-04-30";
    let (status, json) = app.api_get(&format!("/api/reports/programs?{q}&program=onboarding")).await;
    assert_eq!(status, 200, "{json}");
    let effect = &json["programs"][0]["effect"];
    assert_eq!((effect["treated"]["converted"].as_u64(), effect["treated"]["measured"].as_u64()), (Some(2), Some(6)));
    assert_eq!(effect["held_out"]["measured"], 2);
    let (status, json) = app.api_get(&format!("/api/reports/experiments?{q}&mde=10")).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["mde"], 0.1);
    // 2 held out and 6 treated against 50/50: chi-square 2·2²/4 = 2, p = 0.157 (SciPy).
    // The split is listed with no members (nothing was sent); then the holdout.
    assert_eq!(json["experiments"][0]["kind"]["type"], "split");
    let holdout = &json["experiments"][1];
    assert_eq!(holdout["kind"]["type"], "holdout");
    assert!((holdout["sample_ratio"]["p_value"].as_f64().expect("p") - 0.157_299_207_050_285_1).abs() < 1e-9);
    let (status, json) = app.api_get(&format!("/api/reports/experiments?{q}&mde=lots")).await;
    assert_eq!(status, 400);
    assert!(json.to_string().contains("mde `lots` is not a number"), "{json}");
    app.finish().await;
}
