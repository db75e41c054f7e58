//! The journey funnel, Time to Value and NPS/CSAT on a hand-built SQLite store: accounts
//! imported as the importer does, the engine's transitions written as it writes them, and
//! survey answers tracked as the HTTP API takes them. Every expected figure is worked out
//! in the comments.

use cairn_core::Source;
use cairn_core::import::{Header, ImportKind, parse_account, parse_contact};
use cairn_core::tracking::{Envelope, parse_message};
use cairn_measure::Period;
use cairn_reports::{Query, Store};
use jiff::Timestamp;
use jiff::civil::{Date, date};
use serde_json::{Value, json};

const WORKSPACE: &str = "
journey:
  anchor: start_date
  stages:
    - id: onboarding
      name: Onboarding
      until: milestone('first_value')
      milestones:
        - { id: admin_active, when: \"count('page_viewed', since_anchor) >= 1\", within: 3d }
        - { id: first_value, name: First value, when: \"count('dashboard_shared', since_anchor) >= 1\", within: 30d, value: true }
        - { id: tour_done, when: \"count('tour_finished', since_anchor) >= 1\", within: 60d }
    - id: adoption
      from: milestone('first_value')
      milestones:
        - { id: habit, when: \"count('page_viewed', 30d) >= 12\" }
";

fn workspace() -> cairn_workspace::Workspace {
    cairn_workspace::check_sources(&[cairn_workspace::SourceFile::new("journey.yaml", WORKSPACE)])
        .unwrap_or_else(|d| panic!("{d:?}"))
}

fn rows<T>(
    kind: ImportKind,
    csv: &str,
    parse: fn(&Header, u64, &[&str]) -> Result<T, cairn_core::import::RowError>,
) -> Vec<T> {
    let mut lines = csv.lines().map(str::trim).filter(|l| !l.is_empty());
    let header = Header::parse(kind, &lines.next().unwrap().split(',').collect::<Vec<_>>()).unwrap();
    lines.zip(2..).map(|(l, n)| parse(&header, n, &l.split(',').collect::<Vec<_>>()).unwrap()).collect()
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("cairn.db").display())).await.unwrap();
    let accounts = "external_id,name,start_date
        A1,One,2026-01-05
        A2,Two,2026-01-20
        A3,Three,2026-02-10
        A4,Four,2026-02-25
        A5,Five,2025-12-31
        A6,Six,
        A7,Seven,2026-03-20";
    let results =
        store.upsert_accounts(Source::Crm, &rows(ImportKind::Accounts, accounts, parse_account)).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    (dir, store)
}

async fn id(store: &Store, external: &str) -> i64 {
    store.resolve_account(external).await.unwrap().unwrap()
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// The transitions the engine would have written for the accounts (detail as it
/// serialises them: `milestone`, or `from`/`to`).
async fn transitions(store: &Store) {
    let mut list = Vec::new();
    let mut add = |account: i64, when: &str, kind: &str, detail: Value| {
        list.push(cairn_store::NewTransition {
            key: format!("{account}:{kind}:{when}:{detail}"),
            at: at(when),
            subject_kind: "account".into(),
            subject_id: account,
            kind: kind.into(),
            detail: detail.to_string(),
            backfill: false,
        });
    };
    let (a1, a2, a3, a4, a5) = (
        id(store, "A1").await,
        id(store, "A2").await,
        id(store, "A3").await,
        id(store, "A4").await,
        id(store, "A5").await,
    );
    let stage = |from: Option<&str>, to: &str| json!({ "from": from, "to": to });
    let milestone = |m: &str| json!({ "milestone": m });
    // A1: admin on time (deadline 01-08), value after 10.5 days, then adoption.
    add(a1, "2026-01-05T00:00:00Z", "stage_changed", stage(None, "onboarding"));
    add(a1, "2026-01-06T12:00:00Z", "milestone_achieved", milestone("admin_active"));
    add(a1, "2026-01-15T12:00:00Z", "milestone_achieved", milestone("first_value"));
    add(a1, "2026-01-15T12:00:00Z", "stage_changed", stage(Some("onboarding"), "adoption"));
    // A2: admin missed at its deadline 01-23, value after 6 days, then adoption.
    add(a2, "2026-01-20T00:00:00Z", "stage_changed", stage(None, "onboarding"));
    add(a2, "2026-01-23T00:00:00Z", "milestone_missed", milestone("admin_active"));
    add(a2, "2026-01-26T00:00:00Z", "milestone_achieved", milestone("first_value"));
    add(a2, "2026-01-26T00:00:00Z", "stage_changed", stage(Some("onboarding"), "adoption"));
    // A3: admin recorded a day after its deadline 02-13 (late); value missed at 03-12.
    add(a3, "2026-02-10T00:00:00Z", "stage_changed", stage(None, "onboarding"));
    add(a3, "2026-02-14T00:00:00Z", "milestone_achieved", milestone("admin_active"));
    add(a3, "2026-03-12T00:00:00Z", "milestone_missed", milestone("first_value"));
    // A4: admin on time; value only after the report day (not seen).
    add(a4, "2026-02-25T00:00:00Z", "stage_changed", stage(None, "onboarding"));
    add(a4, "2026-02-25T08:00:00Z", "milestone_achieved", milestone("admin_active"));
    add(a4, "2026-03-20T00:00:00Z", "milestone_achieved", milestone("first_value"));
    // The 60-day tour: A1 on 01-10 (deadline 03-06), A4 on 02-26 (deadline 04-26).
    add(a1, "2026-01-10T00:00:00Z", "milestone_achieved", milestone("tour_done"));
    add(a4, "2026-02-26T00:00:00Z", "milestone_achieved", milestone("tour_done"));
    // A5 started before the period: never counted.
    add(a5, "2025-12-31T00:00:00Z", "stage_changed", stage(None, "onboarding"));
    add(a5, "2026-01-02T00:00:00Z", "milestone_achieved", milestone("first_value"));
    store.append_transitions(&list).await.unwrap();
}

fn query(first: Date, last: Date, as_of: Date) -> Query {
    Query { period: Period::new(first, last).unwrap(), as_of, segment: None }
}

#[tokio::test]
async fn the_funnel_counts_the_start_cohort_per_stage_and_milestone() {
    let (_dir, store) = store().await;
    transitions(&store).await;
    let ws = workspace();
    // Anchors in Q1 2026 up to the report day 03-15: A1–A4 (A5 before, A7 after the
    // report day, A6 has no start date).
    let r =
        cairn_reports::journey::journey(&store, &ws, &query(date(2026, 1, 1), date(2026, 3, 31), date(2026, 3, 15)))
            .await
            .unwrap();
    assert_eq!((r.accounts, r.without_anchor), (4, 1));
    let onboarding = &r.stages[0];
    // All four entered onboarding; A1 and A2 moved on, so A3 and A4 are in it now.
    assert_eq!((onboarding.id.as_str(), onboarding.entered, onboarding.now_in), ("onboarding", 4, 2));
    let counts = |m: &cairn_reports::journey::MilestoneRow| (m.due, m.on_time, m.late, m.missed, m.pending);
    // admin_active (3 days): every deadline (01-08, 01-23, 02-13, 02-28) is past 03-16
    // 00:00: due 4; on time A1, A4; late A3; missed A2. On time 2 of 4 due.
    let admin = &onboarding.milestones[0];
    assert_eq!(counts(admin), (4, 2, 1, 1, 0));
    assert_eq!(admin.on_time_rate.map(|r| (r.numerator(), r.denominator())), Some((2, 4)));
    // first_value (30 days): deadlines 02-04, 02-19, 03-12 past, 03-27 not: due 3; on time
    // A1, A2; missed A3; A4 pending (its achievement on 03-20 is after the report day).
    let value = &onboarding.milestones[1];
    assert_eq!(counts(value), (3, 2, 0, 1, 1));
    assert_eq!(value.within_days, Some(30.0));
    // tour_done (60 days): only A1's deadline (03-06) has passed: due 1. A1 and A4
    // achieved it on time, A2 and A3 are pending. The on-time rate counts the due
    // accounts only: 1 of 1, not 2 of 1.
    let tour = &onboarding.milestones[2];
    assert_eq!(counts(tour), (1, 2, 0, 0, 2));
    assert_eq!(tour.on_time_rate.map(|r| (r.numerator(), r.denominator())), Some((1, 1)));
    // adoption: A1 and A2 entered and are in it; habit has no deadline: never due.
    let adoption = &r.stages[1];
    assert_eq!((adoption.entered, adoption.now_in), (2, 2));
    assert_eq!(counts(&adoption.milestones[0]), (0, 0, 0, 0, 4));
    assert_eq!(adoption.milestones[0].on_time_rate, None);
}

#[tokio::test]
async fn time_to_value_by_start_month_with_the_censored_median() {
    let (_dir, store) = store().await;
    transitions(&store).await;
    let ws = workspace();
    let r = cairn_reports::ttv::ttv(&store, &ws, &query(date(2026, 1, 1), date(2026, 3, 31), date(2026, 3, 15)))
        .await
        .unwrap();
    assert_eq!((r.milestone.as_str(), r.within_days), ("first_value", Some(30.0)));
    assert_eq!(r.cohorts.len(), 3);
    // January: A1 after 10.5 days, A2 after 6. Sorted [6, 10.5]; type 7 quantiles:
    // median 6 + 0.5·4.5 = 8.25, p75 6 + 0.75·4.5 = 9.375, p90 6 + 0.9·4.5 = 10.05.
    // Kaplan–Meier: at 6, 1 of 2 at risk: S = 0.5, the median is 6.
    let jan = &r.cohorts[0];
    assert_eq!((jan.accounts, jan.ttv.reached, jan.missed, jan.pending), (2, 2, 0, 0));
    assert_eq!((jan.ttv.median, jan.ttv.p75), (Some(8.25), Some(9.375)));
    assert!((jan.ttv.p90.unwrap() - 10.05).abs() < 1e-12);
    assert_eq!(jan.km_median, Some(6.0));
    // February: nobody reached value: A3 missed (censored at its 30-day deadline), A4
    // pending (censored at 03-16 00:00, 19 days after 02-25). No median of either kind.
    let feb = &r.cohorts[1];
    assert_eq!((feb.accounts, feb.ttv.reached, feb.missed, feb.pending), (2, 0, 1, 1));
    assert_eq!((feb.ttv.median, feb.km_median), (None, None));
    assert_eq!(feb.reached_rate.map(|r| r.to_f64()), Some(0.0));
    // March: no account yet (A7 starts after the report day).
    assert_eq!((r.cohorts[2].accounts, r.cohorts[2].reached_rate), (0, None));
    // All four: the reached-only median is still 8.25, but Kaplan–Meier counts the two
    // censored at 19 and 30 days: at 6, 4 at risk: S = 0.75; at 10.5, 3 at risk:
    // S = 0.75 · 2/3 = 0.5: the median is 10.5.
    assert_eq!((r.total.accounts, r.total.ttv.reached, r.total.ttv.median), (4, 2, Some(8.25)));
    assert_eq!(r.total.km_median, Some(10.5));
}

#[tokio::test]
async fn a_workspace_without_a_value_milestone_says_how_to_mark_one() {
    let (_dir, store) = store().await;
    let text = WORKSPACE.replace(", value: true", "");
    let ws = cairn_workspace::check_sources(&[cairn_workspace::SourceFile::new("journey.yaml", text)]).unwrap();
    let err = cairn_reports::ttv::ttv(&store, &ws, &query(date(2026, 1, 1), date(2026, 3, 31), date(2026, 3, 15)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`value: true`"), "{err}");
}

fn track(json: Value) -> cairn_core::tracking::TrackingMessage {
    let envelope = Envelope {
        received_at: at("2026-04-01T12:00:00Z"),
        batch_sent_at: None,
        batch_context: None,
        trust_timestamps: false,
        plausible: Default::default(),
    };
    parse_message(&json.to_string(), None, &envelope, || unreachable!()).unwrap()
}

#[tokio::test]
async fn nps_and_csat_count_each_contacts_latest_answer_of_the_month() {
    let (_dir, store) = store().await;
    let contacts = "external_id,account_external_id,email
        C1,A1,ada@one.test
        C2,A1,bob@one.test
        C3,A2,cy@two.test";
    store.upsert_contacts(Source::Crm, &rows(ImportKind::Contacts, contacts, parse_contact)).await.unwrap();
    let mut messages = Vec::new();
    for (i, (user, email)) in
        [("u-ada", "ada@one.test"), ("u-bob", "bob@one.test"), ("u-cy", "cy@two.test")].iter().enumerate()
    {
        messages.push(track(
            json!({ "type": "identify", "messageId": format!("i{i}"), "userId": user, "traits": { "email": email } }),
        ));
    }
    let answers = [
        ("u-ada", "nps_submitted", "2026-03-02T10:00:00Z", 10),
        ("u-ada", "nps_submitted", "2026-03-25T10:00:00Z", 6),
        ("u-bob", "nps_submitted", "2026-03-10T10:00:00Z", 9),
        ("u-cy", "nps_submitted", "2026-03-11T10:00:00Z", 7),
        ("u-cy", "csat_submitted", "2026-03-11T10:05:00Z", 5),
        ("u-ada", "csat_submitted", "2026-03-12T10:00:00Z", 2),
        ("u-bob", "nps_submitted", "2026-02-10T10:00:00Z", 9),
    ];
    for (i, (user, event, when, score)) in answers.iter().enumerate() {
        messages.push(track(json!({ "type": "track", "messageId": format!("a{i}"), "userId": user, "event": event, "timestamp": when, "properties": { "score": score } })));
    }
    messages.push(track(json!({ "type": "track", "messageId": "anon", "anonymousId": "x", "event": "nps_submitted", "timestamp": "2026-03-05T10:00:00Z", "properties": { "score": 10 } })));
    store.append("web", &messages).await.unwrap();

    let r =
        cairn_reports::nps::nps(&store, &query(date(2026, 3, 1), date(2026, 3, 31), date(2026, 4, 1))).await.unwrap();
    // March, the latest NPS answer of each: ada 6 (detractor; her 10 of 03-02 is
    // replaced), bob 9 (promoter), cy 7 (passive): NPS 100·(1 − 1)/3 = 0. Interval:
    // p = d = 1/3, variance (p + d) − 0² = 2/3, SE √(2/9) = 0.4714, half-width
    // 1.96 · 0.4714 = 0.924: 0 ± 92.4.
    assert_eq!((r.nps.responses, r.nps.promoters, r.nps.passives, r.nps.detractors), (3, 1, 1, 1));
    assert_eq!(r.nps.nps.map(|n| n.to_f64()), Some(0.0));
    let i = r.nps.interval.unwrap();
    let half = 100.0 * 1.959963984540054 * (2.0f64 / 9.0).sqrt();
    assert!((i.low + half).abs() < 1e-9 && (i.high - half).abs() < 1e-9, "{i:?}");
    // CSAT: cy 5 (satisfied), ada 2: 1 of 2.
    assert_eq!((r.csat.responses, r.csat.satisfied), (2, 1));
    // The anonymous answer has no contact.
    assert_eq!(r.skipped.without_contact, 1);
    // The trend: twelve months to March; February has bob's 9 alone: NPS 100.
    assert_eq!(r.trend.len(), 12);
    let feb = &r.trend[10];
    assert_eq!(
        (feb.month.first(), feb.nps.responses, feb.nps.nps.map(|n| n.to_f64())),
        (date(2026, 2, 1), 1, Some(100.0))
    );
    assert_eq!(r.trend[11].nps.responses, 3);
    assert_eq!(r.trend[0].nps.nps, None, "no answer in April 2025");
}
