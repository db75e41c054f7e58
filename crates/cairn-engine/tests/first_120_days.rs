//! An account's first 120 days on a simulated clock: every transition and its instant.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_engine::{Engine, EngineEvent, MilestoneStatus, SubjectRef, Transition, TransitionKind};
use cairn_rules::Value;
use cairn_workspace::{Band, SourceFile, Workspace, check_sources};
use jiff::Timestamp;
use jiff::civil::Date;

const WORKSPACE: &str = r#"
workspace: { time_zone: UTC }
segments:
  - id: active
    of: account
    where: active_days(7d) >= 3
  - id: big
    of: account
    where: seats >= 20
  - id: admins
    of: contact
    where: role = 'admin'
journey:
  anchor: start_date
  stages:
    - id: onboarding
      until: milestone('first_report')
      milestones:
        - id: first_report
          when: count('report_created', since_anchor) >= 1
          within: 14d
          value: true
        - id: invited_team
          when: distinct_users('user_invited', since_anchor) >= 3
          within: 7d
    - id: adoption
    - id: renewal
      from: days_until(renewal_date) <= 90
health:
  bands: { red: 40, green: 70 }
  pillars:
    adoption:
      weight: 1
      measures:
        - id: reports
          value: count('report_created', 30d)
          score: { red: 0, green: 10 }
          weight: 1
"#;

pub fn workspace(yaml: &str) -> Arc<Workspace> {
    match check_sources(&[SourceFile { name: "ws.yaml".into(), text: yaml.into() }]) {
        Ok(ws) => Arc::new(ws),
        Err(diags) => panic!("{}", diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn event(ts: &str, name: &str, contact: u64) -> EngineEvent {
    EngineEvent { ts: t(ts), name: name.into(), contact: Some(contact), account: Some(1), numbers: vec![] }
}

fn account_traits() -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("name".to_string(), Value::String("Acme".into())),
        ("seats".to_string(), Value::Number(25.0)),
        ("start_date".to_string(), Value::Date(Date::constant(2026, 1, 1))),
        ("renewal_date".to_string(), Value::Date(Date::constant(2026, 6, 1))),
    ])
}

/// Runs the scenario: the events in time order, the clock advanced to each, then to day 120.
fn run() -> (Engine, Vec<Transition>) {
    let mut engine = Engine::new(workspace(WORKSPACE), t("2026-01-01T00:00:00Z"));
    let mut log = engine.upsert_account(1, account_traits());
    for (c, role) in [(1, "admin"), (2, "user"), (3, "user")] {
        log.extend(engine.upsert_contact(
            c,
            Some(1),
            BTreeMap::from([("role".to_string(), Value::String(role.into()))]),
        ));
    }
    let mut events = vec![
        event("2026-01-03T10:00:00Z", "user_invited", 1),
        event("2026-01-04T10:00:00Z", "user_invited", 2),
        event("2026-01-05T09:00:00Z", "report_created", 1),
    ];
    for minute in 0..7 {
        events.push(event(&format!("2026-02-01T10:0{minute}:00Z"), "report_created", 2));
    }
    for e in &events {
        log.extend(engine.advance_to(e.ts));
        log.extend(engine.apply(e));
    }
    log.extend(engine.advance_to(t("2026-05-01T00:00:00Z")));
    (engine, log)
}

fn account(kind: TransitionKind, at: &str) -> Transition {
    Transition { at: t(at), subject: SubjectRef::Account(1), kind, backfill: false }
}

#[test]
fn an_accounts_first_120_days_produce_each_transition_at_the_moment_it_happened() {
    let (engine, log) = run();
    let seg = |id: &str, entered: bool| {
        if entered {
            TransitionKind::SegmentEntered { segment: id.into() }
        } else {
            TransitionKind::SegmentExited { segment: id.into() }
        }
    };
    let band = |from: Option<Band>, to: Band, score: f64| TransitionKind::HealthBandChanged { from, to, score };
    let expected = vec![
        // Day 0: the account appears: big (25 seats), onboarding, health red (no reports).
        account(seg("big", true), "2026-01-01T00:00:00Z"),
        account(TransitionKind::StageChanged { from: None, to: "onboarding".into() }, "2026-01-01T00:00:00Z"),
        account(band(None, Band::Red, 0.0), "2026-01-01T00:00:00Z"),
        Transition {
            at: t("2026-01-01T00:00:00Z"),
            subject: SubjectRef::Contact(1),
            kind: seg("admins", true),
            backfill: false,
        },
        // Jan 5, 09:00: the first report — active on a third day in a week, the value
        // milestone achieved, so onboarding ends; 1 report in 30 days scores 10: still red.
        account(seg("active", true), "2026-01-05T09:00:00Z"),
        account(TransitionKind::MilestoneAchieved { milestone: "first_report".into() }, "2026-01-05T09:00:00Z"),
        account(
            TransitionKind::StageChanged { from: Some("onboarding".into()), to: "adoption".into() },
            "2026-01-05T09:00:00Z",
        ),
        // Only two teammates invited by the 7-day deadline (start of Jan 8).
        account(TransitionKind::MilestoneMissed { milestone: "invited_team".into() }, "2026-01-08T00:00:00Z"),
        // Jan 10: the 7-day window (Jan 4–10) holds two active days.
        account(seg("active", false), "2026-01-10T00:00:00Z"),
        // Feb 1: the third report of the day makes 4 in 30 days (with Jan 5's): 40,
        // yellow; the sixth makes 7: 70, green.
        account(band(Some(Band::Red), Band::Yellow, 40.0), "2026-02-01T10:02:00Z"),
        account(band(Some(Band::Yellow), Band::Green, 70.0), "2026-02-01T10:05:00Z"),
        // Feb 1's reports are on the same day, so one active day: not active again.
        // Mar 3: Feb 1 leaves the 30-day window (Feb 2 – Mar 3): 0 reports, red; and
        // 1 June is 90 days away: renewal.
        account(
            TransitionKind::StageChanged { from: Some("adoption".into()), to: "renewal".into() },
            "2026-03-03T00:00:00Z",
        ),
        account(band(Some(Band::Green), Band::Red, 0.0), "2026-03-03T00:00:00Z"),
    ];
    assert_eq!(log, expected, "\n{}", log.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join("\n"));
    let a = engine.account(1).unwrap();
    assert_eq!(a.milestones["first_report"], MilestoneStatus::Achieved(t("2026-01-05T09:00:00Z")));
    assert_eq!(a.milestones["invited_team"], MilestoneStatus::Missed(t("2026-01-08T00:00:00Z")));
    assert_eq!(engine.stage_of(1), Some("renewal"));
    // Time to Value: anchor (Jan 1, 00:00) to the first report: 4 days 9 hours.
    assert_eq!(engine.time_to_value(1).map(|d| d.as_secs()), Some(4 * 86_400 + 9 * 3600));
    // Trends from the daily snapshots: 0 now, 0 a week ago; 30 days ago (Apr 1) also 0.
    assert_eq!(engine.health_trend(1, 7), Some(0.0));
    assert_eq!(engine.segment_members("admins"), vec![SubjectRef::Contact(1)]);
    assert_eq!(engine.segment_members("big"), vec![SubjectRef::Account(1)]);
    // The sizes counted in one pass are the members counted one segment at a time.
    let sizes = engine.segment_sizes();
    assert_eq!(sizes.len(), engine.workspace().segments().len());
    for s in engine.workspace().segments() {
        assert_eq!(sizes[s.id.as_str()], engine.segment_members(s.id.as_str()).len(), "{}", s.id.as_str());
    }
    assert_eq!((sizes["admins"], sizes["big"]), (1, 1));
}

#[test]
fn the_same_log_and_clock_give_the_same_state_and_transitions_every_run() {
    let (a, log_a) = run();
    let (b, log_b) = run();
    assert_eq!(format!("{log_a:?}"), format!("{log_b:?}"));
    assert_eq!(format!("{:?}", a.accounts().collect::<Vec<_>>()), format!("{:?}", b.accounts().collect::<Vec<_>>()));
    assert_eq!(format!("{:?}", a.contacts().collect::<Vec<_>>()), format!("{:?}", b.contacts().collect::<Vec<_>>()));
}

#[test]
fn a_full_recompute_after_incremental_evaluation_changes_nothing() {
    let (mut engine, _) = run();
    assert_eq!(engine.evaluate_all(), vec![]);
}
