//! Incremental evaluation (only what an event can change) against a full re-evaluation
//! after every event, over random logs: the same transitions at the same instants, and
//! nothing left stale. And the state split into shards, replayed a batch at a time on
//! several threads, against one shard fed one event at a time: the same transitions in
//! the same order, and the same state.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_engine::{Engine, EngineEvent, Transition};
use cairn_rules::Value;
use cairn_workspace::{SourceFile, Workspace, check_sources};
use jiff::Timestamp;
use jiff::civil::Date;
use proptest::prelude::*;

const WORKSPACE: &str = r#"
workspace: { time_zone: Europe/Berlin }
traits:
  account: { tier: string }
segments:
  - { id: busy, of: account, where: "count('report_created', 7d) >= 3" }
  - { id: broad, of: account, where: "distinct_events(['report_created', 'alert_set', 'dashboard_shared'], 30d) >= 2" }
  - { id: team, of: account, where: "active_users(14d) >= 2 and seats > 1" }
  - { id: gold, of: account, where: "tier = 'gold' or segment('busy')" }
  - { id: healthy, of: account, where: "health() >= 60" }
  - { id: sharing_after_reports, of: account, where: "last_seen('dashboard_shared') - first_seen('report_created') > 30h" }
  - { id: steady_inviters, of: account, where: "distinct_users('user_invited', 14d) >= 2 and active_days(since_anchor) >= 3" }
  - { id: engaged_admin, of: contact, where: "role = 'admin' and count('report_created', 14d) >= 1" }
  - { id: in_busy_account, of: contact, where: "segment('busy')" }
  - { id: lapsed, of: contact, where: "days_since(last_seen()) > 4" }
  - { id: new_reporter, of: contact, where: "role = 'admin' and days_since(first_seen('report_created')) between 1 and 6" }
  - { id: lapsed_near_day_20, of: contact, where: "days_until(start_date + 20d) < 5 and segment('lapsed')" }
  - { id: quick_return, of: contact, where: "last_seen() - first_seen() between 1h and 50h" }
journey:
  anchor: start_date
  stages:
    - id: onboarding
      until: milestone('first_report') and milestone('invited')
      milestones:
        - { id: first_report, when: "count('report_created', since_anchor) >= 1", within: 10d }
        - { id: invited, when: "distinct_users('user_invited', since_anchor) >= 2", within: 20d, value: true }
    - id: adoption
    - id: mature
      from: "segment('busy') and active_days(30d) >= 5"
health:
  bands: { red: 30, green: 60 }
  pillars:
    adoption:
      weight: 2
      measures:
        - { id: reports, value: "count('report_created', 30d)", score: { red: 0, green: 8 }, weight: 3 }
        - { id: ratio, value: "active_users(7d) / seats", score: { red: 0.1, green: 0.5 }, weight: 1 }
    value:
      weight: 1
      measures:
        - { id: shared, value: "count('dashboard_shared', 30d)", score: { bands: [ { below: 1, score: 0 }, { below: 3, score: 60 }, { score: 100 } ] }, weight: 1 }
        - { id: recency, value: "days_since(last_seen())", score: { red: 6, green: 1 }, weight: 1 }
        - { id: inviters, value: "distinct_users('user_invited', 30d)", score: { red: 0, green: 3 }, weight: 1 }
"#;

fn workspace() -> Arc<Workspace> {
    workspace_from(WORKSPACE)
}

fn workspace_from(text: &str) -> Arc<Workspace> {
    match check_sources(&[SourceFile { name: "ws.yaml".into(), text: text.into() }]) {
        Ok(ws) => Arc::new(ws),
        Err(diags) => panic!("{}", diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

const NAMES: [&str; 5] = ["report_created", "alert_set", "dashboard_shared", "user_invited", "page"];
const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn setup(engine: &mut Engine) -> Vec<Transition> {
    setup_accounts(engine, 3, 6, 6)
}

/// Accounts 1..=`accounts`, and contacts 1..=`contacts`, two per account in order up to
/// contact `with_account`, the rest without an account.
fn setup_accounts(engine: &mut Engine, accounts: u64, contacts: u64, with_account: u64) -> Vec<Transition> {
    let mut out = Vec::new();
    for a in 1..=accounts {
        let traits = BTreeMap::from([
            ("seats".to_string(), Value::Number(a as f64 * 2.0)),
            ("start_date".to_string(), Value::Date(Date::constant(2026, 1, a as i8))),
            ("tier".to_string(), Value::String(if a == 3 { "gold" } else { "silver" }.into())),
        ]);
        out.extend(engine.upsert_account(a, traits));
    }
    for c in 1..=contacts {
        let account = (c <= with_account).then_some((c - 1) / 2 + 1);
        out.extend(engine.upsert_contact(c, account, role_of(c)));
    }
    out
}

fn role_of(c: u64) -> BTreeMap<String, Value> {
    let role = if c.is_multiple_of(2) { "admin" } else { "user" };
    BTreeMap::from([("role".into(), Value::String(role.into()))])
}

fn events() -> impl Strategy<Value = Vec<EngineEvent>> {
    prop::collection::vec((0i64..50 * 86_400, 0usize..NAMES.len(), 1u64..=6), 1..120).prop_map(|mut raw| {
        raw.sort();
        raw.into_iter()
            .map(|(offset, n, c)| EngineEvent {
                ts: Timestamp::from_second(START + offset).unwrap(),
                name: NAMES[n].to_string(),
                contact: Some(c),
                account: Some((c - 1) / 2 + 1),
                numbers: vec![],
            })
            .collect()
    })
}

fn sorted(mut v: Vec<Transition>) -> Vec<String> {
    let mut out: Vec<String> = v.drain(..).map(|t| format!("{} {:?} {:?}", t.at, t.subject, t.kind)).collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn incremental_equals_full_evaluation_after_every_event(events in events()) {
        let start = Timestamp::from_second(START).unwrap();
        let end = Timestamp::from_second(START + 60 * 86_400).unwrap();

        let mut inc = Engine::new(workspace(), start);
        let mut inc_log = setup(&mut inc);
        for e in &events {
            inc_log.extend(inc.advance_to(e.ts));
            inc_log.extend(inc.apply(e));
        }
        inc_log.extend(inc.advance_to(end));

        let mut full = Engine::new(workspace(), start);
        let mut full_log = setup(&mut full);
        for e in &events {
            full_log.extend(full.advance_to(e.ts));
            full_log.extend(full.apply(e));
            full_log.extend(full.evaluate_all());
        }
        full_log.extend(full.advance_to(end));
        full_log.extend(full.evaluate_all());

        prop_assert_eq!(sorted(inc_log), sorted(full_log));
        prop_assert!(inc.evaluate_all().is_empty(), "incremental state was stale");
        prop_assert_eq!(format!("{:?}", inc.accounts().collect::<Vec<_>>()), format!("{:?}", full.accounts().collect::<Vec<_>>()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// The day ticks look only at the contacts filed under their day (a day count
    /// reaching a bound, a day with data leaving a window): the same transitions as
    /// looking at every contact every day, which a contact segment reading `age()`
    /// forces (its own transitions left out of the comparison).
    #[test]
    fn contacts_woken_on_their_day_equal_every_contact_every_day(events in events()) {
        let start = Timestamp::from_second(START).unwrap();
        let end = Timestamp::from_second(START + 60 * 86_400).unwrap();
        let daily = WORKSPACE.replace(
            "segments:\n",
            "segments:\n  - { id: clocked, of: contact, where: \"age() >= 0d\" }\n",
        );
        let mut logs = Vec::new();
        for ws in [workspace(), workspace_from(&daily)] {
            let mut engine = Engine::with_shards(ws, start, 1);
            let mut log = setup(&mut engine);
            for e in &events {
                log.extend(engine.advance_to(e.ts));
                log.extend(engine.apply(e));
            }
            log.extend(engine.advance_to(end));
            prop_assert!(engine.evaluate_all().is_empty(), "state was stale");
            let log: Vec<String> = log.iter().map(|t| format!("{} {:?} {:?}", t.at, t.subject, t.kind)).filter(|t| !t.contains("clocked")).collect();
            logs.push(log);
        }
        prop_assert_eq!(&logs[0], &logs[1]);
    }
}

/// A log with everything that crosses shards: contacts acting for another account,
/// contacts without an account, contacts never upserted, and events without a contact.
fn mixed_events() -> impl Strategy<Value = Vec<(EngineEvent, Option<u64>)>> {
    prop::collection::vec((0i64..50 * 86_400, 0usize..NAMES.len(), 1u64..=12, 0u8..10, 0u8..20), 1..700).prop_map(
        |mut raw| {
            raw.sort();
            raw.into_iter()
                .map(|(offset, n, c, how, moves)| {
                    let own = (c - 1) / 2 + 1;
                    let (contact, account) = match how {
                        0 => (Some(c), Some(own % 6 + 1)),
                        1 => (Some(c), None),
                        2 => (None, Some(own)),
                        3 => (Some(100 + c), Some(own)),
                        _ => (Some(c), Some(own)),
                    };
                    let event = EngineEvent {
                        ts: Timestamp::from_second(START + offset).unwrap(),
                        name: NAMES[n].to_string(),
                        contact,
                        account,
                        numbers: vec![],
                    };
                    // Now and then the contact moves to another account (or to none) first.
                    let moved = (moves == 0).then_some(c).filter(|_| contact == Some(c));
                    (event, moved)
                })
                .collect()
        },
    )
}

fn setup_many(engine: &mut Engine) -> Vec<Transition> {
    // Contacts 11 and 12 have no account.
    setup_accounts(engine, 6, 12, 10)
}

fn move_contact(engine: &mut Engine, c: u64, k: usize) -> Vec<Transition> {
    let account = (!k.is_multiple_of(4)).then_some((c + k as u64) % 6 + 1);
    engine.upsert_contact(c, account, role_of(c))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn shards_replaying_batches_equal_one_shard_event_by_event(log in mixed_events(), shards in 2usize..=4, cut in 1usize..400) {
        let start = Timestamp::from_second(START).unwrap();
        let end = Timestamp::from_second(START + 60 * 86_400).unwrap();

        let mut one = Engine::with_shards(workspace(), start, 1);
        let mut one_log = setup_many(&mut one);
        for (k, (e, moved)) in log.iter().enumerate() {
            if let Some(c) = moved {
                one_log.extend(one.advance_to(e.ts));
                one_log.extend(move_contact(&mut one, *c, k));
            }
            one_log.extend(one.advance_to(e.ts));
            one_log.extend(one.apply(e));
        }
        one_log.extend(one.advance_to(end));

        // The same log in batches cut where a contact moves, and at `cut` events.
        let mut many = Engine::with_shards(workspace(), start, shards);
        let mut many_log = setup_many(&mut many);
        let mut batch: Vec<EngineEvent> = Vec::new();
        for (k, (e, moved)) in log.iter().enumerate() {
            if let Some(c) = moved {
                many_log.extend(many.apply_all(&batch, end));
                batch.clear();
                many_log.extend(many.advance_to(e.ts));
                many_log.extend(move_contact(&mut many, *c, k));
            }
            batch.push(e.clone());
            if batch.len() == cut {
                many_log.extend(many.apply_all(&batch, end));
                batch.clear();
            }
        }
        many_log.extend(many.apply_all(&batch, end));
        many_log.extend(many.advance_to(end));

        prop_assert_eq!(format!("{one_log:?}"), format!("{many_log:?}"));
        prop_assert_eq!(format!("{:?}", one.accounts().collect::<Vec<_>>()), format!("{:?}", many.accounts().collect::<Vec<_>>()));
        prop_assert_eq!(format!("{:?}", one.contacts().collect::<Vec<_>>()), format!("{:?}", many.contacts().collect::<Vec<_>>()));
        prop_assert!(one.evaluate_all().is_empty(), "one shard's state was stale");
        prop_assert!(many.evaluate_all().is_empty(), "sharded state was stale");
        // The sizes kept as members came and went (and moved shards) are the members
        // counted now.
        for engine in [&one, &many] {
            let sizes = engine.segment_sizes();
            for s in engine.workspace().segments() {
                prop_assert_eq!(sizes[s.id.as_str()], engine.segment_members(s.id.as_str()).len(), "{}", s.id.as_str());
            }
        }
    }
}

#[test]
fn an_account_first_seen_in_an_event_reports_what_it_entered() {
    let start = Timestamp::from_second(START).unwrap();
    let event = EngineEvent {
        ts: Timestamp::from_second(START + 3600).unwrap(),
        name: "report_created".into(),
        contact: Some(50),
        account: Some(9),
        numbers: vec![],
    };
    let mut inc = Engine::new(workspace(), start);
    let mut inc_log = inc.advance_to(event.ts);
    inc_log.extend(inc.apply(&event));

    let mut full = Engine::new(workspace(), start);
    let mut full_log = full.advance_to(event.ts);
    full_log.extend(full.apply(&event));
    full_log.extend(full.evaluate_all());

    // The journey's first stage, at least: entered when the account appeared.
    assert!(inc_log.iter().any(|t| t.kind.event_name() == "stage_changed"), "{inc_log:?}");
    assert_eq!(sorted(inc_log), sorted(full_log));
}
