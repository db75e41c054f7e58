//! `cairn report journey`, `ttv` and `nps` through the binary, as a CS leader runs them:
//! accounts imported with `cairn import`, the engine's journey transitions and survey
//! answers in the database, the journey from `--workspace`. Figures worked out below.

use std::process::{Command, Output};

use cairn_core::tracking::{Envelope, parse_message};
use cairn_store::{NewTransition, Store};
use serde_json::{Value, json};

const JOURNEY: &str = "
journey:
  anchor: start_date
  stages:
    - id: onboarding
      name: Onboarding
      until: milestone('first_value')
      milestones:
        - { id: admin_active, name: Admin active, when: \"count('page_viewed', since_anchor) >= 1\", within: 3d }
        - { id: first_value, name: First value, when: \"count('dashboard_shared', since_anchor) >= 1\", within: 30d, value: true }
    - id: adoption
      name: Adoption
      from: milestone('first_value')
";

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn db(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("cairn.db").display())
    }

    fn workspace(&self) -> String {
        self.dir.path().join("ws").display().to_string()
    }

    fn cairn(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("CAIRN_DB", self.db())
            .env("CAIRN_LOG", "warn")
            .output()
            .expect("cairn runs")
    }

    fn report(&self, args: &[&str]) -> String {
        let out = self.cairn(&[&["report"], args].concat());
        assert!(out.status.success(), "report {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Three accounts starting in January and February 2026, the transitions the engine would
/// have recorded for them, and four NPS answers and a CSAT answer.
async fn setup() -> Setup {
    let s = Setup { dir: tempfile::tempdir().expect("temp dir") };
    std::fs::create_dir(s.dir.path().join("ws")).expect("ws dir");
    std::fs::write(s.dir.path().join("ws/journey.yaml"), JOURNEY).expect("journey");
    let accounts = s.dir.path().join("accounts.csv");
    std::fs::write(
        &accounts,
        "external_id,name,start_date\nacme,Acme,2026-01-05\nbeta,Beta,2026-01-20\ncyan,Cyan,2026-02-10\n",
    )
    .expect("csv");
    let out = s.cairn(&["import", "accounts", accounts.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let store = Store::open(&s.db()).await.expect("store");
    let id = |x: &'static str| {
        let store = store.clone();
        async move { store.resolve_account(x).await.expect("read").expect("account") }
    };
    let (acme, beta, cyan) = (id("acme").await, id("beta").await, id("cyan").await);
    let t = |account: i64, at: &str, kind: &str, detail: Value| NewTransition {
        key: format!("{account}:{at}:{kind}:{detail}"),
        at: at.parse().expect("instant"),
        subject_kind: "account".into(),
        subject_id: account,
        kind: kind.into(),
        detail: detail.to_string(),
        backfill: false,
    };
    let stage = |to: &str| json!({ "from": null, "to": to });
    let m = |id: &str| json!({ "milestone": id });
    store
        .append_transitions(&[
            // Acme: admin on time, value after 4 days (01-09 00:00), then adoption.
            t(acme, "2026-01-05T00:00:00Z", "stage_changed", stage("onboarding")),
            t(acme, "2026-01-06T00:00:00Z", "milestone_achieved", m("admin_active")),
            t(acme, "2026-01-09T00:00:00Z", "milestone_achieved", m("first_value")),
            t(acme, "2026-01-09T00:00:00Z", "stage_changed", json!({ "from": "onboarding", "to": "adoption" })),
            // Beta: admin missed (deadline 01-23), value after 12 days (02-01).
            t(beta, "2026-01-20T00:00:00Z", "stage_changed", stage("onboarding")),
            t(beta, "2026-01-23T00:00:00Z", "milestone_missed", m("admin_active")),
            t(beta, "2026-02-01T00:00:00Z", "milestone_achieved", m("first_value")),
            t(beta, "2026-02-01T00:00:00Z", "stage_changed", json!({ "from": "onboarding", "to": "adoption" })),
            // Cyan: admin on time; value still pending on 2026-02-28.
            t(cyan, "2026-02-10T00:00:00Z", "stage_changed", stage("onboarding")),
            t(cyan, "2026-02-11T00:00:00Z", "milestone_achieved", m("admin_active")),
        ])
        .await
        .expect("transitions");
    let envelope = Envelope {
        received_at: "2026-03-01T00:00:00Z".parse().expect("instant"),
        batch_sent_at: None,
        batch_context: None,
        trust_timestamps: false,
        plausible: Default::default(),
    };
    let msg = |v: Value| parse_message(&v.to_string(), None, &envelope, || unreachable!()).expect("message");
    let mut messages = Vec::new();
    for u in ["u1", "u2", "u3", "u4"] {
        messages.push(msg(json!({ "type": "identify", "messageId": format!("i-{u}"), "userId": u })));
    }
    // February: 10, 9 (promoters), 8 (passive), 2 (detractor): NPS 100·(2 − 1)/4 = 25.
    for (u, score) in [("u1", 10), ("u2", 9), ("u3", 8), ("u4", 2)] {
        messages.push(msg(json!({ "type": "track", "messageId": format!("n-{u}"), "userId": u, "event": "nps_submitted", "timestamp": "2026-02-15T10:00:00Z", "properties": { "score": score } })));
    }
    messages.push(msg(json!({ "type": "track", "messageId": "c-u1", "userId": "u1", "event": "csat_submitted", "timestamp": "2026-02-16T10:00:00Z", "properties": { "score": 4 } })));
    store.append("web", &messages).await.expect("answers");
    store.close().await;
    s
}

#[tokio::test]
async fn the_journey_funnel_and_time_to_value_of_the_start_cohorts() {
    let s = setup().await;
    let ws = s.workspace();
    let range = ["--from", "2026-01-01", "--to", "2026-02-28", "--as-of", "2026-02-28", "--workspace", ws.as_str()];

    let table = s.report(&[&["journey"], &range[..]].concat());
    assert!(table.contains("Journey funnel: 3 accounts whose anchor is 2026-01-01 to 2026-02-28"), "{table}");
    // admin_active (3d): all three due; on time Acme, Cyan; Beta missed: 66.7%.
    let admin = table.lines().find(|l| l.trim_start().starts_with("admin_active")).expect("admin row");
    let cells: Vec<&str> = admin.split_whitespace().collect();
    assert_eq!(cells, ["admin_active", "3d", "3", "2", "0", "1", "0", "66.7%"], "{table}");
    // first_value (30d): deadlines 02-04 and 02-19 past, Cyan's 03-12 not: due 2, both
    // on time; Cyan pending.
    let value = table.lines().find(|l| l.trim_start().starts_with("first_value")).expect("value row");
    let cells: Vec<&str> = value.split_whitespace().collect();
    assert_eq!(cells, ["first_value", "30d", "2", "2", "0", "0", "1", "100.0%"], "{table}");
    let adoption = table.lines().find(|l| l.trim_start().starts_with("Adoption")).expect("adoption row");
    assert!(adoption.contains("2") && adoption.contains("(now in: 2)"), "{adoption}");

    // TTV: January Acme 4 days, Beta 12: median 8, p75 10, p90 11.2; KM median 4 (at 4,
    // 1 of 2: S = 0.5). February: Cyan pending, censored at 03-01 00:00 (19 days).
    let csv = s.report(&[&["ttv"], &range[..], &["--csv"]].concat());
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "first,last,accounts,reached,reached_rate,missed,pending,median,p75,p90,km_median");
    assert_eq!(rows[1], "2026-01-01,2026-01-31,2,2,1,0,0,8,10,11.2,4");
    assert_eq!(rows[2], "2026-02-01,2026-02-28,1,0,0,0,1,,,,");
    // All three: KM at 4: 2/3; at 12: 2/3 · 1/2 = 1/3 ≤ 0.5: the median is 12 where the
    // reached-only median is 8.
    assert_eq!(rows[3], "2026-01-01,2026-02-28,3,2,0.6666666666666666,0,1,8,10,11.2,12");
    let json: Value = serde_json::from_str(&s.report(&[&["ttv"], &range[..], &["--json"]].concat())).expect("JSON");
    assert_eq!(json["milestone"], "first_value");
    assert_eq!(json["total"]["km_median"], 12.0);
    let table = s.report(&[&["ttv"], &range[..]].concat());
    assert!(table.contains("Time to Value (days to `first_value`, due within 30 days)"), "{table}");
}

#[tokio::test]
async fn nps_and_csat_of_february_with_the_interval() {
    let s = setup().await;
    let table = s.report(&["nps", "--period", "month", "--as-of", "2026-03-01"]);
    // p = 2/4, d = 1/4: mean 0.25, variance 0.75 − 0.0625 = 0.6875, SE √(0.6875/4) =
    // 0.41458, half-width 1.96 · 0.41458 = 0.81257: 25 ± 81.3 → [−56.3, 100.0] (clamped).
    let nps = table.lines().find(|l| l.trim_start().starts_with("NPS  ")).expect("NPS line");
    assert!(nps.contains("25.0") && nps.contains("[-56.3, 100.0]") && nps.contains("4 responses"), "{table}");
    let csat = table.lines().find(|l| l.trim_start().starts_with("CSAT ")).expect("CSAT line");
    assert!(csat.contains("100.0%") && csat.contains("1 of 1"), "{table}");
    let feb = table.lines().find(|l| l.trim_start().starts_with("2026-02")).expect("February in the trend");
    assert_eq!(feb.split_whitespace().collect::<Vec<_>>(), ["2026-02", "4", "25.0", "2", "1", "1", "1", "100.0%"]);
    assert_eq!(
        table.lines().filter(|l| l.trim_start().starts_with("2025-") || l.trim_start().starts_with("2026-")).count(),
        12
    );
}

#[tokio::test]
async fn a_journey_report_needs_a_workspace_whose_journey_has_a_value_milestone() {
    let s = setup().await;
    std::fs::write(s.dir.path().join("ws/journey.yaml"), JOURNEY.replace(", value: true", "")).expect("journey");
    let out = s.cairn(&["report", "ttv", "--workspace", &s.workspace(), "--from", "2026-01-01", "--to", "2026-02-28"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mark the milestone that means value with `value: true`"));
    let out = s.cairn(&["report", "journey", "--from", "2026-01-01", "--to", "2026-02-28"]);
    assert_eq!(out.status.code(), Some(1), "a missing --workspace is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --workspace DIR"), "{out:?}");
}
