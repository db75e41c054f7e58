//! `GET /api/reports/journey|ttv|nps` over real HTTP on loopback, on both backends: the
//! engine running the workspace records the milestone of a tracked event, and the
//! reports read it back with the figures worked out by hand below.

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use serde_json::Value;

const WORKSPACE: &str = r#"
traits:
  account:
    signup_date: date
journey:
  anchor: signup_date
  stages:
    - id: onboarding
      until: milestone('first_report')
      milestones:
        - { id: first_report, when: "count('report_created') >= 1", within: 30d, value: true }
    - id: adoption
"#;

/// Polls `GET path` until `done` holds (or 30 s pass: the engine tails the log, and a
/// loaded CI machine can take seconds); the last body.
async fn wait_for(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = app.api_get(path).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{path} never got there: {status} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn post(app: &TestApp, path: &str, body: &str) {
    let r = app.post(path, body).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
}

async fn journey_ttv_and_nps_are_served_from_the_engines_transitions(app: &TestApp) {
    // Acme signed up 2026-02-20, Beta 2026-02-25; the clock stands at 2026-03-01 12:00 UTC.
    post(app, "/v1/group", r#"{"userId":"u1","groupId":"acme","traits":{"name":"Acme","signup_date":"2026-02-20"}}"#)
        .await;
    post(app, "/v1/group", r#"{"userId":"u2","groupId":"beta","traits":{"name":"Beta","signup_date":"2026-02-25"}}"#)
        .await;
    post(app, "/v1/track", r#"{"userId":"u1","event":"report_created","messageId":"r1"}"#).await;
    post(app, "/v1/track", r#"{"userId":"u1","event":"nps_submitted","messageId":"n1","properties":{"score":9}}"#)
        .await;
    post(app, "/v1/track", r#"{"userId":"u2","event":"nps_submitted","messageId":"n2","properties":{"score":3}}"#)
        .await;

    // Both accounts' anchors are in February; Acme achieved first_report on 03-01 12:00,
    // before its deadline 03-22; Beta's (03-27) is not due. Acme moved on to adoption.
    let path = "/api/reports/journey?from=2026-02-01&to=2026-02-28&as_of=2026-03-01";
    wait_for(app, path, |j| j["stages"][1]["entered"] == 1 && j["accounts"] == 2).await;
    let j = wait_for(app, path, |j| j["stages"][0]["entered"] == 2).await;
    assert_eq!((&j["stages"][0]["entered"], &j["stages"][0]["now_in"]), (&Value::from(2), &Value::from(1)));
    let m = &j["stages"][0]["milestones"][0];
    assert_eq!(
        [&m["due"], &m["on_time"], &m["late"], &m["missed"], &m["pending"]],
        [&Value::from(0), &Value::from(1), &Value::from(0), &Value::from(0), &Value::from(1)]
    );

    // TTV: Acme 9.5 days (02-20 00:00 to 03-01 12:00). Beta is censored at the end of the
    // report day, 5 days after its anchor; Kaplan–Meier: at 9.5 Acme is the one left at
    // risk: S = 0, the median 9.5.
    let (status, t) = app.api_get("/api/reports/ttv?from=2026-02-01&to=2026-02-28&as_of=2026-03-01").await;
    assert_eq!(status, 200, "{t}");
    let feb = &t["cohorts"][0];
    assert_eq!(
        (&feb["accounts"], &feb["reached"], &feb["pending"]),
        (&Value::from(2), &Value::from(1), &Value::from(1))
    );
    assert_eq!((feb["median"].as_f64(), feb["km_median"].as_f64()), (Some(9.5), Some(9.5)));

    // NPS in March: a 9 (promoter) and a 3 (detractor): NPS 100·(1 − 1)/2 = 0.
    let (status, n) = app.api_get("/api/reports/nps?from=2026-03-01&to=2026-03-31").await;
    assert_eq!(status, 200, "{n}");
    assert_eq!((&n["nps"]["responses"], &n["nps"]["promoters"]), (&Value::from(2), &Value::from(1)));
    assert_eq!(n["nps"]["nps"]["value"].as_f64(), Some(0.0));

    let (status, e) = app.api_get("/api/reports/nope").await;
    assert_eq!(status, 404);
    assert!(e.to_string().contains("nps, journey, ttv"), "{e}");
}

on_both_backends! {
    workspace = super::WORKSPACE;
    journey_ttv_and_nps_are_served_from_the_engines_transitions,
}
