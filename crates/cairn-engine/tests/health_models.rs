//! Health models by segment, and CSM overrides that evaluations never touch.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_engine::{Engine, EngineEvent, HealthOverride};
use cairn_rules::Value;
use cairn_workspace::{SourceFile, check_sources};
use jiff::{SignedDuration, Timestamp};

const WORKSPACE: &str = r#"
segments:
  - { id: big, of: account, where: "seats >= 50" }
health:
  pillars:
    adoption:
      weight: 1
      measures:
        - { id: reports, value: "count('report_created', 30d)", score: { red: 0, green: 10 }, weight: 1 }
  models:
    - id: big_accounts
      for: "segment('big')"
      pillars:
        adoption:
          weight: 1
          measures:
            - { id: reports, value: "count('report_created', 30d)", score: { red: 0, green: 100 }, weight: 1 }
"#;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn engine() -> Engine {
    let ws = check_sources(&[SourceFile::new("ws.yaml", WORKSPACE)]).unwrap_or_else(|d| panic!("{d:?}"));
    let mut e = Engine::new(Arc::new(ws), t("2026-03-01T00:00:00Z"));
    for (id, seats) in [(1, 10.0), (2, 80.0)] {
        e.upsert_account(id, BTreeMap::from([("seats".to_string(), Value::Number(seats))]));
    }
    e
}

fn report(e: &mut Engine, account: u64, at: &str) {
    e.advance_to(t(at));
    e.apply(&EngineEvent {
        ts: t(at),
        name: "report_created".into(),
        contact: None,
        account: Some(account),
        numbers: vec![],
    });
}

#[test]
fn each_account_is_scored_by_the_first_model_whose_condition_holds() {
    let mut e = engine();
    for minute in 0..5 {
        report(&mut e, 1, &format!("2026-03-01T10:0{minute}:00Z"));
        report(&mut e, 2, &format!("2026-03-01T10:0{minute}:00Z"));
    }
    let small = e.account(1).unwrap().health.as_ref().unwrap();
    let big = e.account(2).unwrap().health.as_ref().unwrap();
    assert_eq!((small.model.as_str(), small.score), ("default", Some(50.0)));
    assert_eq!((big.model.as_str(), big.score), ("big_accounts", Some(5.0)));
}

#[test]
fn an_override_is_shown_until_it_expires_and_never_overwritten_by_an_evaluation() {
    let mut e = engine();
    report(&mut e, 1, "2026-03-01T10:00:00Z");
    let o = HealthOverride {
        score: 80.0,
        reason: "renewal signed verbally".into(),
        by: "csm@vendor.io".into(),
        set_at: t("2026-03-01T11:00:00Z"),
        expires_at: t("2026-03-08T00:00:00Z"),
    };
    e.set_health_override(1, Some(o.clone()));
    for minute in 1..4 {
        report(&mut e, 1, &format!("2026-03-02T10:0{minute}:00Z"));
    }
    assert_eq!(e.account(1).unwrap().health.as_ref().unwrap().score, Some(40.0), "the computed score moves on");
    assert_eq!(e.health_override(1), Some(&o), "the override stays beside it");
    e.advance_to(t("2026-03-08T00:00:00Z") + SignedDuration::from_secs(1));
    assert_eq!(e.health_override(1), None, "expired");
}
