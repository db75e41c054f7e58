//! `/api/reports/…` over real HTTP on loopback, on both backends, with the engine running:
//! a secret key is required, a bad segment is a 400 that says what the segments are, the
//! KPIs come month by month with `series=true`, and `process` reads the live engine's
//! health beside the task backlog and the tickets.

mod common;

use std::time::{Duration, Instant};

use common::TestApp;

const WORKSPACE: &str = r#"
segments:
  - { id: reporters, of: account, where: "count('report_created', 30d) >= 3" }
  - { id: enterprise, of: account, where: "plan = 'enterprise'" }
  - { id: admins, of: contact, where: "role = 'admin'" }
health:
  pillars:
    adoption:
      weight: 1
      measures:
        - { id: reports, value: "count('report_created', 30d)", score: { red: 0, green: 10 }, weight: 1 }
"#;

/// Acme (enterprise) with Ada, and a ticket opened this morning; waits for the engine.
async fn setup_acme(app: &TestApp) {
    for (path, body) in [
        ("/v1/identify", r#"{"userId":"u1","traits":{"email":"ada@acme.io","role":"admin"}}"#),
        ("/v1/group", r#"{"userId":"u1","groupId":"acme","traits":{"name":"Acme","plan":"enterprise"}}"#),
        (
            "/v1/track",
            r#"{"userId":"u1","event":"ticket_opened","timestamp":"2026-03-01T06:00:00Z","properties":{"ticket_id":"T1"}}"#,
        ),
    ] {
        let r = app.post(path, body).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let start = Instant::now();
    loop {
        let (_, acme) = app.api_get("/api/accounts/acme").await;
        if acme["segments"] == serde_json::json!(["enterprise"]) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the engine never saw Acme: {acme}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn reports_need_a_secret_key_and_say_what_a_bad_segment_is(app: &TestApp) {
    setup_acme(app).await;
    let r = app.raw("GET", "/api/reports/kpis", &[], b"").await;
    assert_eq!(r.status, 401, "{}", r.body);
    let auth = format!("Bearer {}", app.write_key);
    let r = app.raw("GET", "/api/reports/process", &[("authorization", &auth)], b"").await;
    assert!(r.status == 401 || r.status == 403, "a write key cannot read reports: {} {}", r.status, r.body);

    let (status, body) = app.api_get("/api/reports/kpis?segment=nope").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("no segment `nope`: the account segments are enterprise, reporters"), "{body}");
    let (status, body) = app.api_get("/api/reports/movements?segment=admins").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("`admins` is a segment of contacts"), "{body}");
    // Acme entered `enterprise` at noon on March 1: a member for April, not for March.
    let (status, march) = app.api_get("/api/reports/kpis?segment=enterprise&from=2026-03-01&to=2026-03-31").await;
    assert_eq!(status, 200, "{march}");
    assert_eq!(march["cohort_accounts"], 0);
    let (status, _) = app.api_get("/api/reports/kpis?gross_margin=150%25&period=year").await;
    assert_eq!(status, 400);
}

async fn kpis_by_month_and_the_process_report_over_http(app: &TestApp) {
    setup_acme(app).await;
    let (status, series) = app.api_get("/api/reports/kpis?series=true&from=2026-01-01&to=2026-02-28").await;
    assert_eq!(status, 200, "{series}");
    let firsts: Vec<&str> =
        series["months"].as_array().expect("months").iter().filter_map(|m| m["period"]["first"].as_str()).collect();
    assert_eq!(firsts, ["2026-01-01", "2026-02-01"]);
    // The default range: the twelve complete months before the test clock's day.
    let (_, series) = app.api_get("/api/reports/kpis?series=true").await;
    assert_eq!(
        (series["period"]["first"].as_str(), series["months"].as_array().map(Vec::len)),
        (Some("2025-03-01"), Some(12))
    );

    // The process report's health part is the engine's state: wait until Acme is scored
    // (on a loaded machine the segment can be seen before the score).
    let start = Instant::now();
    loop {
        let (_, acme) = app.api_get("/api/accounts/acme").await;
        if acme["health"]["score"].is_number() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the engine never scored Acme: {acme}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, process) = app.api_get("/api/reports/process?from=2026-03-01&to=2026-03-01").await;
    assert_eq!(status, 200, "{process}");
    // Acme has no report_created: score 0, red.
    let health = &process["health"];
    assert_eq!(
        (health["accounts"].as_u64(), health["red"].as_u64(), health["median"].as_f64()),
        (Some(1), Some(1), Some(0.0))
    );
    assert_eq!(process["tasks"]["total"]["open"], 0);
    // The clock stands at noon: the backlog and tickets are measured then, not at midnight.
    assert_eq!(process["tasks"]["at"], "2026-03-01T12:00:00Z");
    assert_eq!(process["tickets"]["opened"], 1);
    assert!(
        process["tickets"]["note"].as_str().is_some_and(|n| n.contains("no ticket_closed or ticket_solved")),
        "{process}"
    );
}

on_both_backends!(
    workspace = super::WORKSPACE;
    reports_need_a_secret_key_and_say_what_a_bad_segment_is,
    kpis_by_month_and_the_process_report_over_http,
);
