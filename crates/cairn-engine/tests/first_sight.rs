//! An account the engine first meets through something other than its own record — a
//! contact linked to it, an event of one of its people — is evaluated whole when its
//! traits arrive, as if they had come first: the trait reload reads accounts and
//! contacts in two queries, so a contact can name an account the same reload did not see.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_engine::{Engine, EngineEvent};
use cairn_rules::Value;
use cairn_workspace::{SourceFile, check_sources};
use jiff::Timestamp;

const WORKSPACE: &str = r#"
segments:
  - { id: enterprise, of: account, where: "plan = 'enterprise'" }
health:
  pillars:
    adoption:
      weight: 1
      measures:
        - { id: reports, value: "count('report_created', 30d)", score: { red: 0, green: 10 }, weight: 1 }
journey:
  anchor: start_date
  stages:
    - id: onboarding
      until: milestone('first_report')
      milestones:
        - { id: first_report, when: "count('report_created') >= 1", within: 30d }
    - id: adoption
"#;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn engine() -> Engine {
    let ws = check_sources(&[SourceFile::new("ws.yaml", WORKSPACE)]).unwrap_or_else(|d| panic!("{d:?}"));
    Engine::new(Arc::new(ws), t("2026-03-01T00:00:00Z"))
}

fn acme() -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("plan".to_string(), Value::String("enterprise".into())),
        ("start_date".to_string(), Value::Date("2026-02-20".parse().unwrap())),
    ])
}

fn ticket(at: &str) -> EngineEvent {
    EngineEvent { ts: t(at), name: "ticket_opened".into(), contact: Some(7), account: Some(1), numbers: vec![] }
}

/// What a CSM sees of account 1: segments, stage, health score.
fn seen(e: &Engine) -> (Vec<String>, Option<String>, Option<f64>) {
    let a = e.account(1).expect("account 1");
    (a.segments.iter().cloned().collect(), e.stage_of(1).map(str::to_string), a.health.as_ref().and_then(|h| h.score))
}

/// The account's record first, then its contact and the event: the order the tail
/// usually sees.
fn in_order() -> Engine {
    let mut e = engine();
    e.advance_to(t("2026-03-01T12:00:00Z"));
    e.upsert_account(1, acme());
    e.upsert_contact(7, Some(1), BTreeMap::new());
    e.apply(&ticket("2026-03-01T06:00:00Z"));
    e
}

#[test]
fn an_account_first_met_through_its_contact_and_an_event_is_scored_and_staged_when_its_record_arrives() {
    let mut e = engine();
    e.advance_to(t("2026-03-01T12:00:00Z"));
    e.upsert_contact(7, Some(1), BTreeMap::new());
    e.apply(&ticket("2026-03-01T06:00:00Z"));
    e.upsert_account(1, acme());
    let expected = seen(&in_order());
    assert_eq!(expected, (vec!["enterprise".to_string()], Some("onboarding".to_string()), Some(0.0)));
    assert_eq!(seen(&e), expected);
}

#[test]
fn an_account_first_met_through_its_contact_and_a_day_tick_is_scored_and_staged_when_its_record_arrives() {
    let mut e = engine();
    e.advance_to(t("2026-03-01T12:00:00Z"));
    e.upsert_contact(7, Some(1), BTreeMap::new());
    e.advance_to(t("2026-03-02T12:00:00Z"));
    e.upsert_account(1, acme());
    assert_eq!(seen(&e), (vec!["enterprise".to_string()], Some("onboarding".to_string()), Some(0.0)));
}
