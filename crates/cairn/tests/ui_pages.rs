//! The web UI over real HTTP on loopback, on both backends, with the engine and the
//! program runner running: every page answers with the navigation and a strict CSP, a
//! hostile account name is escaped everywhere, the accounts list filters and pages, the
//! account 360's forms (note, health override), the task forms (claim, complete with an
//! outcome) and pause/resume change the store, a paused program enrolls nobody and its
//! due steps are not handed out, the rule box checks a rule as `cairn check` does, and
//! `/api/views/…` returns the pages' data for a secret key.

mod common;

use std::time::{Duration, Instant};

use cairn_store::{NewTask, SubjectKind, TaskPriority};
use common::ui::UiSession;
use common::{TestApp, test_now};
use jiff::SignedDuration;

const WORKSPACE: &str = r#"
segments:
  - { id: enterprise, of: account, where: "plan = 'enterprise'" }
  - { id: admins, of: contact, where: "role = 'admin'" }
journey:
  anchor: start_date
  stages:
    - id: onboarding
      milestones:
        - { id: first_report, when: "count('report_created', since_anchor) >= 1", within: 7d }
health:
  pillars:
    adoption:
      weight: 1
      measures:
        - { id: reports, value: "count('report_created', 30d)", score: { red: 0, green: 10 }, weight: 1 }
templates:
  welcome:
    channel: email
    subject: Welcome
    text: Hello
programs:
  - id: onboarding
    trigger: segment_entered('enterprise')
    topic: product_tips
    steps:
      - send: email
        template: welcome
"#;

const HOSTILE: &str = "<script>alert(1)</script> & Co";

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

async fn get(app: &TestApp, s: &UiSession, path: &str) -> cairn::loopback::Response {
    app.raw("GET", path, &[("Cookie", s.cookie().as_str())], b"").await
}

/// The CSRF token a page's forms carry.
fn csrf(page: &str) -> String {
    page.split("name=csrf value=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("").to_string()
}

async fn post_form(
    app: &TestApp,
    s: &UiSession,
    path: &str,
    page: &str,
    pairs: &[(&str, &str)],
) -> cairn::loopback::Response {
    let token = csrf(page);
    assert_eq!(token, s.csrf, "the page's forms carry the session's CSRF token");
    let mut all = vec![("csrf", token.as_str())];
    all.extend_from_slice(pairs);
    let cookie = s.cookie();
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("Cookie", cookie.as_str())];
    app.raw("POST", path, &headers, &form(&all)).await
}

fn header<'a>(r: &'a cairn::loopback::Response, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Acme (enterprise, with Ada) and a hostile name; waits for the engine to know both.
async fn setup(app: &TestApp) -> i64 {
    for (path, body) in [
        ("/v1/identify", r#"{"userId":"u1","traits":{"email":"ada@acme.io","role":"admin"}}"#.to_string()),
        ("/v1/group", r#"{"userId":"u1","groupId":"acme","traits":{"name":"Acme","plan":"enterprise"}}"#.to_string()),
        (
            "/v1/group",
            serde_json::json!({"userId":"u2","groupId":"evil","traits":{"name": HOSTILE,"plan":"team"}}).to_string(),
        ),
    ] {
        let r = app.post(path, &body).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    app.wait_for("/api/accounts/evil", |a| a["traits"]["name"] == HOSTILE).await;
    let acme = app.wait_for("/api/accounts/acme", |a| a["segments"] == serde_json::json!(["enterprise"])).await;
    acme["id"].as_i64().expect("acme's id")
}

async fn every_page_has_the_frame_a_strict_csp_and_escapes_names(app: &TestApp) {
    let s = app.signed_in_as("admin").await;
    setup(app).await;
    for path in
        ["/", "/accounts", "/segments", "/journey", "/programs", "/tasks", "/insights", "/kpis", "/staffing", "/data"]
    {
        let r = get(app, &s, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let csp = header(&r, "content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(r.body.contains("<nav id=main-nav"), "{path}");
        for link in
            ["/accounts", "/segments", "/journey", "/programs", "/tasks", "/insights", "/kpis", "/staffing", "/data"]
        {
            assert!(r.body.contains(&format!("href=\"{link}\"")), "{path} lacks a link to {link}");
        }
        assert!(r.body.contains("<main") && r.body.contains("<h1>"), "{path}");
        assert!(!r.body.contains("<script>alert"), "{path} let a name through unescaped");
        assert!(!r.body.contains(" style="), "{path} has an inline style");
        assert!(!r.body.contains("<script>"), "{path} has an inline script");
    }
    let list = get(app, &s, "/accounts").await;
    assert!(list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"), "{}", list.body);
    let css = get(app, &s, "/static/cairn.css").await;
    assert_eq!((css.status, header(&css, "content-type")), (200, Some("text/css; charset=utf-8")));
    assert!(header(&css, "cache-control").is_some_and(|c| c.contains("max-age")));
    let js = get(app, &s, "/static/app.js").await;
    assert_eq!(js.status, 200);
    let missing = get(app, &s, "/accounts/nobody").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("<h1>404</h1>") && missing.body.contains("no account `nobody`"), "{}", missing.body);
}

async fn the_accounts_list_filters_sorts_and_pages(app: &TestApp) {
    let s = app.signed_in_as("admin").await;
    setup(app).await;
    let enterprise = get(app, &s, "/accounts?segment=enterprise").await;
    assert!(enterprise.body.contains(">Acme</a>") && !enterprise.body.contains("&amp; Co"), "{}", enterprise.body);
    let searched = get(app, &s, "/accounts?q=acm").await;
    assert!(searched.body.contains(">Acme</a>") && !searched.body.contains("&amp; Co"));
    let bad = get(app, &s, "/accounts?page=x").await;
    assert_eq!(bad.status, 400);
    // 55 more accounts: two pages of 50.
    let batch: Vec<serde_json::Value> = (0..55)
        .map(|i| serde_json::json!({"type":"group","userId":format!("p{i}"),"groupId":format!("g{i:02}"),"traits":{"name":format!("Filler {i:02}")}}))
        .collect();
    let r = app.post("/v1/batch", &serde_json::json!({ "batch": batch }).to_string()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.wait_for("/api/accounts/g54", |a| a["traits"]["name"] == "Filler 54").await;
    let first = get(app, &s, "/accounts?sort=name").await;
    assert_eq!(first.body.matches("<a href=\"/accounts/").count(), 50, "page one holds 50 rows");
    assert!(first.body.contains("rel=next href=\"/accounts?sort=name&amp;page=2\""), "{}", first.body);
    assert!(!first.body.contains("rel=prev"));
    let second = get(app, &s, "/accounts?sort=name&page=2").await;
    // 57 accounts by name: the hostile name sorts first, then Acme and the fillers.
    assert_eq!(second.body.matches("<a href=\"/accounts/").count(), 7);
    assert!(second.body.contains("rel=prev") && !second.body.contains("rel=next"));
    assert!(second.body.contains("Filler 54"));
}

async fn the_account_forms_add_a_note_and_override_health(app: &TestApp) {
    let s = app.signed_in_as("admin").await;
    let acme = setup(app).await;
    let page = get(app, &s, &format!("/accounts/{acme}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<form id=health-override") && page.body.contains("<form id=add-note"));
    let r = post_form(app, &s, &format!("/accounts/{acme}/notes"), &page.body, &[("body", "Called <b>Ada</b>")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let notes = app.store.account_notes(acme, 10).await.expect("notes");
    assert_eq!(notes.len(), 1);
    assert_eq!((notes[0].body.as_str(), notes[0].author.as_str()), ("Called <b>Ada</b>", "admin@example.com"));
    let page = get(app, &s, &format!("/accounts/{acme}")).await;
    let listed = page.body.split("id=notes").nth(1).unwrap_or_default();
    assert!(listed.contains("Called &lt;b&gt;Ada&lt;/b&gt;"), "{}", page.body);
    let empty = post_form(app, &s, &format!("/accounts/{acme}/notes"), &page.body, &[("body", "  ")]).await;
    assert_eq!(empty.status, 400);

    let no_reason = post_form(
        app,
        &s,
        &format!("/accounts/{acme}/health-override"),
        &page.body,
        &[("score", "55"), ("reason", "")],
    )
    .await;
    assert_eq!(no_reason.status, 400, "{}", no_reason.body);
    let r = post_form(
        app,
        &s,
        &format!("/accounts/{acme}/health-override"),
        &page.body,
        &[("score", "55"), ("reason", "the renewal call went well"), ("expires", "2026-03-20")],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let history = app.store.health_overrides(acme).await.expect("overrides");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].score, Some(55.0));
    assert_eq!(history[0].set_by, "admin@example.com");
    // Until the end of March 20 in the workspace's zone (UTC here).
    assert_eq!(history[0].expires_at.map(|t| t.to_string()), Some("2026-03-21T00:00:00Z".to_string()));
    app.wait_for("/api/accounts/acme", |a| a["health_override"]["score"] == 55.0).await;
    let page = get(app, &s, &format!("/accounts/{acme}")).await;
    assert!(page.body.contains("Overridden: 55 set by admin@example.com"), "{}", page.body);
}

async fn tasks_are_claimed_and_completed_with_an_outcome(app: &TestApp) {
    let s = app.signed_in_as("admin").await;
    let acme = setup(app).await;
    let enrollment = app
        .store
        .enroll("onboarding", SubjectKind::Account, acme, "test", test_now(), false, None)
        .await
        .expect("enroll")
        .expect("a new enrollment");
    let task = app
        .store
        .create_task(&NewTask {
            enrollment_id: enrollment.id,
            step_id: "call".into(),
            account_id: Some(acme),
            contact_id: None,
            title: "Call <Acme>".into(),
            body: "about the renewal".into(),
            assignee: None,
            pool: Some("team".into()),
            priority: TaskPriority::High,
            due_at: Some(test_now()),
            created_at: test_now(),
        })
        .await
        .expect("task");
    let page = get(app, &s, "/tasks").await;
    assert!(page.body.contains(&format!("<tr class=task id=\"task-{task}\"")), "{}", page.body);
    assert!(page.body.contains("Call &lt;Acme&gt;") && page.body.contains("Pool: team"));
    assert!(page.body.contains("class=\"claim-task") && page.body.contains("class=\"complete-task"));
    let morning = get(app, &s, "/").await;
    assert!(morning.body.contains("Call &lt;Acme&gt;"), "the morning view lists tasks due today");

    let r = post_form(app, &s, &format!("/tasks/{task}/claim"), &page.body, &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let claimed = app.store.task(task).await.expect("task").expect("exists");
    assert_eq!(claimed.assignee.as_deref(), Some("admin@example.com"));
    let page = get(app, &s, "/tasks").await;
    let mine = page.body.split("My tasks").nth(1).and_then(|s| s.split("Pool:").next()).unwrap_or_default();
    assert!(mine.contains("Call &lt;Acme&gt;"), "a claimed task is under My tasks");

    let bad = post_form(app, &s, &format!("/tasks/{task}/complete"), &page.body, &[("outcome", "vanished")]).await;
    assert_eq!(bad.status, 400);
    let r = post_form(app, &s, &format!("/tasks/{task}/complete"), &page.body, &[("outcome", "no answer")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let done = app.store.task(task).await.expect("task").expect("exists");
    assert_eq!((done.completed_by.as_deref(), done.outcome.as_deref()), (Some("admin@example.com"), Some("no answer")));
    let again = post_form(app, &s, &format!("/tasks/{task}/complete"), &page.body, &[("outcome", "done")]).await;
    assert_eq!(again.status, 409);
    let account = get(app, &s, &format!("/accounts/{acme}")).await;
    assert!(account.body.contains("task done: Call &lt;Acme&gt; (no answer)"), "the timeline shows it");
}

async fn a_paused_program_enrolls_nobody_and_its_steps_wait(app: &TestApp) {
    let s = app.signed_in_as("admin").await;
    let acme = setup(app).await;
    wait_for_enrollment(app, acme).await;
    let page = get(app, &s, "/programs/onboarding").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<form id=pause-program"), "{}", page.body);
    let r = post_form(app, &s, "/programs/onboarding/pause", &page.body, &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(app.store.paused_programs().await.expect("pauses").len(), 1);
    let page = get(app, &s, "/programs/onboarding").await;
    assert!(page.body.contains("<form id=resume-program") && !page.body.contains("<form id=pause-program"));

    // Beta enters the segment while the program is paused: once the runner has passed its
    // transition, Beta is not enrolled.
    let r =
        app.post("/v1/group", r#"{"userId":"u3","groupId":"beta","traits":{"name":"Beta","plan":"enterprise"}}"#).await;
    assert_eq!(r.status, 200);
    let beta = app.wait_for("/api/accounts/beta", |a| a["segments"] == serde_json::json!(["enterprise"])).await;
    let beta = beta["id"].as_i64().expect("id");
    let start = Instant::now();
    let seq = loop {
        let entered = app.store.account_transitions(beta, 10).await.expect("transitions");
        if let Some(seq) = entered.iter().filter(|t| t.kind == "segment_entered").map(|t| t.seq).max() {
            break seq;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "Beta's transition was never stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    loop {
        let cursor = app.store.setting("runner.transitions").await.expect("cursor").and_then(|c| c.parse::<i64>().ok());
        if cursor.is_some_and(|c| c >= seq) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the runner never passed Beta's transition");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let enrolled = app.store.program_enrollments("onboarding").await.expect("enrollments");
    assert!(enrolled.iter().all(|e| e.subject_id != beta), "a paused program enrolled Beta");

    // Its due steps are not handed out while paused, and are after a resume.
    let due = test_now().checked_add(SignedDuration::from_hours(24 * 400)).expect("later");
    let claimed = app.store.claim_due_steps("test", due, SignedDuration::from_secs(60), 100).await.expect("claim");
    assert!(claimed.iter().all(|d| d.program_id != "onboarding"), "{claimed:?}");
    let r = post_form(app, &s, "/programs/onboarding/resume", &page.body, &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(app.store.paused_programs().await.expect("pauses").is_empty());
}

async fn a_program_is_dry_run_over_history_from_its_page(app: &TestApp) {
    let s = app.signed_in_as("ops").await;
    let acme = setup(app).await;
    wait_for_enrollment(app, acme).await;
    let page = get(app, &s, "/programs/onboarding").await;
    assert!(page.body.contains("href=\"/programs/onboarding/dry-run\""), "{}", page.body);
    // The form alone, with the last 90 days filled in.
    let form = get(app, &s, "/programs/onboarding/dry-run").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("<form id=dry-run") && !form.body.contains("messages sent"), "{}", form.body);
    // Over the last two days: the replay's figures (what it enrolls is the dry run's own
    // tests' matter, `program_dry_run.rs`), and the real store gains nothing. (Acme
    // entered its segment by a trait, and traits have no history: it is in the segment
    // from the period's start, so nobody enters it in the period.)
    let today = test_now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let before = app.store.program_enrollments("onboarding").await.expect("enrollments").len();
    let run =
        get(app, &s, &format!("/programs/onboarding/dry-run?from={}&to={today}", today.yesterday().expect("day")))
            .await;
    assert_eq!(run.status, 200, "{}", run.body);
    assert!(run.body.contains("<span class=label>enrolled</span><span class=value>0</span>"), "{}", run.body);
    assert!(
        run.body.contains("messages sent") && run.body.contains("passes of the engine and the runner"),
        "{}",
        run.body
    );
    assert!(run.body.contains("traits have no history"), "the dry run's notes are shown: {}", run.body);
    assert_eq!(app.store.program_enrollments("onboarding").await.expect("enrollments").len(), before);
    // A period that is not one is said, above the form.
    let bad = get(app, &s, "/programs/onboarding/dry-run?from=yesterday&to=2026-01-02").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.body.contains("from `yesterday` is neither a date") && bad.body.contains("<form id=dry-run"),
        "{}",
        bad.body
    );
    // A viewer may look at the program, not run it.
    let viewer = app.signed_in_as("viewer").await;
    assert_eq!(get(app, &viewer, "/programs/onboarding/dry-run").await.status, 403);
}

async fn wait_for_enrollment(app: &TestApp, account: i64) {
    let start = Instant::now();
    loop {
        let e = app.store.program_enrollments("onboarding").await.expect("enrollments");
        if e.iter().any(|e| e.subject_id == account) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the runner never enrolled Acme");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn the_rule_box_checks_as_cairn_check_does_and_views_are_json(app: &TestApp) {
    let s = app.signed_in_as("admin").await;
    setup(app).await;
    let (status, bad) = {
        let r = get(app, &s, "/segments/check?rule=plann%20%3D%20%27enterprise%27").await;
        (r.status, r.json())
    };
    assert_eq!(status, 200);
    assert_eq!(bad["ok"], false);
    let first = bad["diagnostics"][0].as_str().unwrap_or_default();
    assert!(first.starts_with("--rule:1:1"), "{bad}");
    assert!(first.contains("plan"), "a did-you-mean: {bad}");
    let good = get(app, &s, "/segments/check?rule=plan%20%3D%20%27enterprise%27").await.json();
    assert_eq!(
        (good["ok"].as_bool(), good["count"].as_u64(), good["of_total"].as_u64()),
        (Some(true), Some(1), Some(2))
    );
    assert_eq!(good["sample"][0]["label"], "Acme");
    assert!(good["yaml"].as_str().is_some_and(|y| y.contains("where: \"plan = 'enterprise'\"")));
    // Without JavaScript: the form's GET renders the same check.
    let page = get(app, &s, "/segments?rule=plan%20%3D%20%27enterprise%27").await;
    assert!(page.body.contains("1 of 2 accounts match now."), "{}", page.body);

    let r = app.raw("GET", "/api/views/accounts", &[], b"").await;
    assert_eq!(r.status, 401);
    let (status, view) = app.api_get("/api/views/accounts?segment=enterprise").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!((view["total"].as_u64(), view["rows"][0]["name"].as_str()), (Some(1), Some("Acme")));
    for page in ["morning", "segments", "journey", "programs", "tasks", "kpis", "staffing", "data", "insights"] {
        let (status, body) = app.api_get(&format!("/api/views/{page}")).await;
        assert_eq!(status, 200, "{page}: {body}");
    }
    let (status, account) = app.api_get("/api/views/accounts/acme").await;
    assert_eq!((status, account["summary"]["name"].as_str()), (200, Some("Acme")));
    let (status, _) = app.api_get("/api/views/nope").await;
    assert_eq!(status, 404);
}

on_both_backends!(
    workspace = super::WORKSPACE;
    every_page_has_the_frame_a_strict_csp_and_escapes_names,
    the_accounts_list_filters_sorts_and_pages,
    the_account_forms_add_a_note_and_override_health,
    tasks_are_claimed_and_completed_with_an_outcome,
    a_paused_program_enrolls_nobody_and_its_steps_wait,
    a_program_is_dry_run_over_history_from_its_page,
    the_rule_box_checks_as_cairn_check_does_and_views_are_json,
);
