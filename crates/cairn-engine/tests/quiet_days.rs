//! The engine's cost follows the data, not the calendar: a day on which nothing can
//! change costs nothing, so an event dated in year 1 (or 1970, or on every plausible
//! date) adds the work of its own days, not of the centuries between; an event dated
//! after the clock waits for its instant. Work is counted (day ticks, accounts evaluated
//! at them), not timed: a timed test on a shared machine would be flaky.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_engine::{DayWork, Engine, EngineEvent, Transition, TransitionKind};
use cairn_rules::Value;
use cairn_workspace::{SourceFile, Workspace, check_sources};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

/// The example workspace's definitions (programs and templates aside).
fn example() -> Arc<Workspace> {
    let files = [
        ("workspace.yaml", include_str!("../../../examples/workspace/workspace.yaml")),
        ("segments.yaml", include_str!("../../../examples/workspace/segments.yaml")),
        ("journey.yaml", include_str!("../../../examples/workspace/journey.yaml")),
        ("health.yaml", include_str!("../../../examples/workspace/health.yaml")),
    ];
    let files: Vec<SourceFile> = files.iter().map(|(n, t)| SourceFile::new(*n, *t)).collect();
    match check_sources(&files) {
        Ok(ws) => Arc::new(ws),
        Err(diags) => panic!("{}", diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

fn workspace(yaml: &str) -> Arc<Workspace> {
    match check_sources(&[SourceFile::new("ws.yaml", yaml)]) {
        Ok(ws) => Arc::new(ws),
        Err(diags) => panic!("{}", diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const ACCOUNTS: u64 = 40;
const NOW: &str = "2026-05-01T12:00:00Z";
const NAMES: [&str; 8] = [
    "page_viewed",
    "report_created",
    "user_invited",
    "dashboard_shared",
    "alert_set",
    "export_downloaded",
    "integration_connected",
    "ticket_opened",
];

fn account_traits(a: u64) -> BTreeMap<String, Value> {
    let start = Date::constant(2026, 1, 1).checked_add(SignedDuration::from_hours(24 * (a % 30) as i64)).unwrap();
    let renewal = Date::constant(2026, 12, 1).checked_sub(SignedDuration::from_hours(24 * 5 * a as i64)).unwrap();
    BTreeMap::from([
        ("seats".to_string(), Value::Number(5.0 + (a % 7) as f64)),
        ("arr".to_string(), Value::Number(10_000.0 * (a % 12) as f64)),
        ("plan".to_string(), Value::String(if a.is_multiple_of(3) { "enterprise" } else { "team" }.into())),
        ("start_date".to_string(), Value::Date(start)),
        ("renewal_date".to_string(), Value::Date(renewal)),
    ])
}

/// 120 days of usage: each account's three contacts, on most days, a few events.
fn usage() -> Vec<EngineEvent> {
    let mut events = Vec::new();
    let mut seed = 11u64;
    let start = t("2026-01-01T00:00:00Z");
    for day in 0..120i64 {
        for a in 1..=ACCOUNTS {
            for k in 0..3 {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let r = seed >> 33;
                if r.is_multiple_of(3) {
                    continue;
                }
                let at = start + SignedDuration::from_secs(day * 86_400 + 3_600 + (r % 70_000) as i64);
                events.push(EngineEvent {
                    ts: at,
                    name: NAMES[(r / 7 % NAMES.len() as u64) as usize].to_string(),
                    contact: Some(a * 10 + k),
                    account: Some(a),
                    numbers: vec![],
                });
            }
        }
    }
    events
}

/// Replays `events` as the runtime does at start: in time order, from the first one's
/// instant, in batches, then to now.
fn replay(ws: &Arc<Workspace>, mut events: Vec<EngineEvent>) -> (Engine, Vec<Transition>) {
    events.sort_by_key(|e| e.ts);
    let now = t(NOW);
    let start = events.first().map_or(now, |e| e.ts.min(now));
    let mut engine = Engine::with_shards(Arc::clone(ws), start, 2);
    let mut log = Vec::new();
    for a in 1..=ACCOUNTS {
        log.extend(engine.upsert_account(a, account_traits(a)));
        for k in 0..3 {
            let role = if k == 0 { "admin" } else { "user" };
            let traits = BTreeMap::from([("role".to_string(), Value::String(role.into()))]);
            log.extend(engine.upsert_contact(a * 10 + k, Some(a), traits));
        }
    }
    for batch in events.chunks(1_000) {
        log.extend(engine.apply_all(batch, now));
    }
    log.extend(engine.advance_to(now));
    (engine, log)
}

fn outlier(ts: &str, account: u64) -> EngineEvent {
    EngineEvent {
        ts: t(ts),
        name: "page_viewed".into(),
        contact: Some(account * 10),
        account: Some(account),
        numbers: vec![],
    }
}

/// A health measure's raw value for an account.
fn measure(engine: &Engine, account: u64, id: &str) -> Option<f64> {
    let h = engine.account(account)?.health.as_ref()?;
    h.pillars.iter().flat_map(|p| &p.measures).find(|m| m.id == id)?.value
}

fn extra(with: DayWork, without: DayWork) -> (u64, u64) {
    (with.ticks.saturating_sub(without.ticks), with.accounts.saturating_sub(without.accounts))
}

#[test]
fn events_dated_in_year_1_1970_and_9000_cost_their_own_days_not_the_calendar() {
    let ws = example();
    let (base, _) = replay(&ws, usage());
    let mut events = usage();
    events.push(outlier("0001-01-01T00:00:00Z", 1));
    events.push(outlier("1970-01-01T00:00:00Z", 2));
    events.push(outlier("9000-01-01T00:00:00Z", 3));
    let (with, _) = replay(&ws, events);

    // The base: 120 days of data and the month after, every account on most days.
    let base_work = base.day_work();
    assert!(base_work.ticks >= 120 && base_work.accounts >= 120 * ACCOUNTS, "{base_work:?}");
    // Two events two thousand years apart add the days their windows and day counts
    // move on (a few hundred), not the 740,000 days since year 1.
    let (ticks, accounts) = extra(with.day_work(), base_work);
    assert!(ticks <= 600, "{ticks} more day ticks: {:?} against {base_work:?}", with.day_work());
    assert!(accounts <= 2_000, "{accounts} more account evaluations: {:?} against {base_work:?}", with.day_work());

    // The year-9000 event waits for its day: nothing reads it, no day count runs backwards.
    assert_eq!(with.pending_events(), 1);
    assert_eq!(base.pending_events(), 0);
    for a in 1..=ACCOUNTS {
        if let Some(days) = measure(&with, a, "days_since_last_seen") {
            assert!((0.0..=200.0).contains(&days), "account {a}: days since last seen {days}");
        }
    }
    // Accounts the outliers did not touch end as they do without them.
    for a in 4..=ACCOUNTS {
        let (x, y) = (base.account(a).unwrap(), with.account(a).unwrap());
        assert_eq!(x.segments, y.segments, "account {a}");
        assert_eq!(x.milestones, y.milestones, "account {a}");
        assert_eq!(x.health, y.health, "account {a}");
    }
    // Nothing was left stale by the days crossed in one step.
    let mut with = with;
    assert_eq!(with.evaluate_all(), Vec::new());
}

#[test]
fn an_event_on_every_plausible_date_costs_about_what_its_events_do() {
    let ws = example();
    let started = std::time::Instant::now();
    let (base, _) = replay(&ws, usage());
    let base_time = started.elapsed();
    let mut events = usage();
    let mut day = Date::constant(2000, 1, 1);
    let mut outliers = 0u64;
    while day < Date::constant(2026, 1, 1) {
        // From a few accounts' broken clocks, or an import of their old history.
        events.push(outlier(&format!("{day}T12:00:00Z"), 1 + outliers % 4));
        outliers += 1;
        day = day.tomorrow().unwrap();
    }
    let started = std::time::Instant::now();
    let (with, _) = replay(&ws, events);
    let with_time = started.elapsed();
    eprintln!(
        "base {:?} in {base_time:?}; with {outliers} outliers {:?} in {with_time:?}",
        base.day_work(),
        with.day_work()
    );
    // Each outlier's day is a tick, at which its account is looked at, and the days
    // after it on which its windows and day counts move: the work grows with the
    // outliers (a few evaluations each), not with the accounts or the span.
    let (ticks, accounts) = extra(with.day_work(), base.day_work());
    assert!(ticks <= outliers + 300, "{ticks} more day ticks for {outliers} outliers");
    assert!(accounts <= 8 * outliers, "{accounts} more account evaluations for {outliers} outliers");
    let mut with = with;
    assert_eq!(with.evaluate_all(), Vec::new());
}

const GAPS: &str = r#"
workspace: { time_zone: Europe/Berlin }
segments:
  - { id: recent, of: account, where: "count('x', 30d) >= 1" }
  - { id: lapsed, of: account, where: "days_since(last_seen()) > 100" }
  - { id: lapsed_users, of: contact, where: "days_since(last_seen()) > 60" }
journey:
  anchor: start_date
  stages:
    - id: onboarding
      until: age() > 45d
    - id: adoption
health:
  bands: { red: 40, green: 70 }
  pillars:
    renewal:
      weight: 1
      measures:
        - id: quiet_days
          value: days_since(last_seen())
          score: { red: 14, green: 1 }
          weight: 1
"#;

fn at(day: Date, time: &str) -> Timestamp {
    t(&format!("{day}T{time}"))
}

#[test]
fn days_crossed_in_one_step_lose_no_transition_nor_its_instant() {
    let ws = workspace(GAPS);
    let tz = ws.time_zone().clone();
    let d0 = Date::constant(2020, 3, 1);
    let days = |n: i64| d0.checked_add(SignedDuration::from_hours(24 * n)).unwrap();
    let midnight = |n: i64| days(n).to_zoned(tz.clone()).unwrap().timestamp();
    let mut engine = Engine::with_shards(Arc::clone(&ws), at(d0, "08:00:00Z"), 2);
    let traits = BTreeMap::from([("start_date".to_string(), Value::Date(days(10)))]);
    let mut log = engine.upsert_account(1, traits);
    log.extend(engine.upsert_contact(7, Some(1), BTreeMap::new()));
    let event = |n: i64| EngineEvent {
        ts: at(days(n), "09:00:00Z"),
        name: "x".into(),
        contact: Some(7),
        account: Some(1),
        numbers: vec![],
    };
    log.extend(engine.apply_all(&[event(0), event(500), event(2_000)], at(days(3_000), "00:00:00Z")));
    log.extend(engine.advance_to(at(days(3_000), "12:00:00Z")));

    let when =
        |kind: &TransitionKind| -> Vec<Timestamp> { log.iter().filter(|t| &t.kind == kind).map(|t| t.at).collect() };
    let segment = |s: &str, entered: bool| {
        when(&if entered {
            TransitionKind::SegmentEntered { segment: s.into() }
        } else {
            TransitionKind::SegmentExited { segment: s.into() }
        })
    };
    // A window empties 30 days after the event's day, at the start of that day.
    let e = |n: i64| at(days(n), "09:00:00Z");
    assert_eq!(segment("recent", true), vec![e(0), e(500), e(2_000)]);
    assert_eq!(segment("recent", false), vec![midnight(30), midnight(530), midnight(2_030)]);
    // A day count passes its bound on its day, for the account and for its contact.
    assert_eq!(segment("lapsed", true), vec![midnight(101), midnight(601), midnight(2_101)]);
    assert_eq!(segment("lapsed", false), vec![e(500), e(2_000)]);
    assert_eq!(segment("lapsed_users", true), vec![midnight(61), midnight(561), midnight(2_061)]);
    // The stage moves on the first day start after 45 days from the anchor.
    let stage = log.iter().filter(|t| matches!(t.kind, TransitionKind::StageChanged { .. })).count();
    assert_eq!(stage, 2, "{log:?}");
    // The health band follows the days since the last event: green on its day, red 14
    // days later; each time.
    let bands: Vec<(Timestamp, String)> = log
        .iter()
        .filter_map(|t| match &t.kind {
            TransitionKind::HealthBandChanged { to, .. } => Some((t.at, format!("{to:?}"))),
            _ => None,
        })
        .collect();
    assert!(bands.len() >= 6, "{bands:?}");
    assert!(bands.iter().all(|(t, _)| *t <= midnight(2_020)), "{bands:?}");
    // The shown value is the day's, after 1,000 quiet days.
    let quiet = measure(&engine, 1, "quiet_days");
    assert_eq!(quiet, Some(1_000.0));
    assert_eq!(engine.evaluate_all(), Vec::new());
    // 3,000 days, three events: a few hundred ticks at most.
    assert!(engine.day_work().ticks < 400, "{:?}", engine.day_work());
}

#[test]
fn an_event_dated_after_the_clock_waits_for_its_instant() {
    let ws = workspace(GAPS);
    let d0 = Date::constant(2026, 3, 1);
    let mut engine = Engine::new(Arc::clone(&ws), at(d0, "08:00:00Z"));
    engine.upsert_account(1, BTreeMap::new());
    let later = EngineEvent {
        ts: t("2026-03-05T09:00:00Z"),
        name: "x".into(),
        contact: None,
        account: Some(1),
        numbers: vec![],
    };
    assert_eq!(engine.apply_all(std::slice::from_ref(&later), at(d0, "09:00:00Z")), Vec::new());
    assert_eq!(engine.pending_events(), 1);
    assert!(!engine.account(1).unwrap().segments.contains("recent"));
    // Its instant comes: applied then, and stamped then.
    let log = engine.advance_to(t("2026-03-06T00:00:00Z"));
    assert_eq!(engine.pending_events(), 0);
    let entered: Vec<Timestamp> = log
        .iter()
        .filter(|t| t.kind == TransitionKind::SegmentEntered { segment: "recent".into() })
        .map(|t| t.at)
        .collect();
    assert_eq!(entered, vec![later.ts]);
    assert_eq!(measure(&engine, 1, "quiet_days"), Some(1.0));
}
