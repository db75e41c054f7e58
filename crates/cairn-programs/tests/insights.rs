//! Insights in messages, on a small engine state whose numbers are worked out by hand:
//! six accounts on two plans, their contacts' reports, the benchmarks against same-plan
//! and all peers, the leaderboard of an account's own people, and a program preview that
//! renders them.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_channels::LinkSigner;
use cairn_engine::{Engine, EngineEvent};
use cairn_programs::{PREVIEW_SECRET, PeerGroups, preview};
use cairn_rules::Value;
use cairn_workspace::{SourceFile, check_sources};
use jiff::Timestamp;

const WORKSPACE: &str = r#"
insights:
  metrics:
    - { id: reports_30d, value: "count('report_created', 30d)" }
  benchmarks:
    - { id: reports_vs_plan, value: "count('report_created', 30d)", peers: { trait: plan }, min_peers: 2 }
    - { id: reports_vs_all, value: "count('report_created', 30d)", peers: all, min_peers: 2 }
  leaderboards:
    - { id: reporters, value: "count('report_created', 30d)", top: 2 }
templates:
  review:
    channel: email
    subject: "{{ metrics.reports_30d }} reports"
    text: |-
      {% assign plan = insights.benchmark.reports_vs_plan | default: nil %}{% assign all = insights.benchmark.reports_vs_all | default: nil %}{% if plan %}plan: P{{ plan.percentile }} rank {{ plan.rank }} of {{ plan.peers }} peers, median {{ plan.median }}{% else %}plan: withheld{% endif %};
      all: P{{ all.percentile }};
      top:{% for p in insights.leaderboard.reporters.top %} {{ p.rank }}. {{ p.name }} ({{ p.count }}){% endfor %}
programs:
  - id: review
    trigger: event('review_requested')
    audience: role = 'admin'
    holdout: 0%
    topic: reviews
    steps:
      - { id: review, send: email, template: review }
"#;

fn now() -> Timestamp {
    "2026-03-10T12:00:00Z".parse().unwrap()
}

fn text(s: &str) -> Value {
    Value::String(s.into())
}

/// Accounts 1–4 on `team` with 4, 2, 4 and 7 reports in 30 days; 5 and 6 on `starter`
/// with 1 and 3. Account 1's people: Ann (admin, 3 reports), Bo (1), Cy (none); each other
/// account has one person, an admin for account 5, who made all its reports.
fn engine() -> Engine {
    let ws = check_sources(&[SourceFile::new("ws.yaml", WORKSPACE)]).unwrap_or_else(|e| panic!("{e:#?}"));
    let start = now() - jiff::SignedDuration::from_hours(24 * 10);
    let mut engine = Engine::with_shards(Arc::new(ws), start, 2);
    let plans = [(1, "team"), (2, "team"), (3, "team"), (4, "team"), (5, "starter"), (6, "starter")];
    for (id, plan) in plans {
        let name = format!("Account {id}");
        engine.upsert_account(id, BTreeMap::from([("plan".into(), text(plan)), ("name".into(), text(&name))]));
    }
    let people = [(11, 1, "Ann", "admin", 3), (12, 1, "Bo", "user", 1), (13, 1, "Cy", "user", 0)];
    let others = [(21, 2, "Di", "user", 2), (31, 3, "Ed", "user", 4), (41, 4, "Flo", "user", 7)];
    let more = [(51, 5, "Gus", "admin", 1), (61, 6, "Hal", "user", 3)];
    let mut events = Vec::new();
    for (contact, account, name, role, reports) in people.into_iter().chain(others).chain(more) {
        let traits = BTreeMap::from([
            ("name".into(), text(name)),
            ("email".into(), text(&format!("{}@a{account}.test", name.to_lowercase()))),
            ("role".into(), text(role)),
        ]);
        engine.upsert_contact(contact, Some(account), traits);
        for i in 0..reports {
            events.push(EngineEvent {
                ts: start + jiff::SignedDuration::from_hours(i + 1),
                name: "report_created".into(),
                contact: Some(contact),
                account: Some(account),
                numbers: Vec::new(),
            });
        }
    }
    events.sort_by_key(|e| e.ts);
    engine.apply_all(&events, now());
    engine.advance_to(now());
    engine
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn benchmarks_match_the_hand_computation() {
    let engine = engine();
    let peers = PeerGroups::gather(&engine);
    // Account 1 (4) among its plan's others 2, 4, 7: one below, one level
    // → (1 + 1/2) / 3 = 50 %; rank 2 (only 7 above); median 4; p75 at position 1.5 of
    // 2, 4, 7 → 4 + 0.5 × 3 = 5.5.
    let b = peers.benchmark("reports_vs_plan", 1).unwrap();
    assert_eq!((b.value, b.rank, b.peers), (4.0, 2, 3));
    assert!(close(b.percentile, 50.0) && close(b.median, 4.0) && close(b.p75, 5.5), "{b:?}");
    // Account 4 (7) is ahead of all three: 100 %, rank 1.
    let b = peers.benchmark("reports_vs_plan", 4).unwrap();
    assert!(close(b.percentile, 100.0) && b.rank == 1, "{b:?}");
    // Account 2 (2) is behind all three: 0 %, rank 4.
    let b = peers.benchmark("reports_vs_plan", 2).unwrap();
    assert!(close(b.percentile, 0.0) && b.rank == 4, "{b:?}");
    // The starter plan has two accounts: one peer each, fewer than `min_peers: 2`.
    assert_eq!(peers.benchmark("reports_vs_plan", 5), None);
    assert_eq!(peers.benchmark("reports_vs_plan", 6), None);
    // Against all: account 1 (4) among 2, 4, 7, 1, 3 → (3 + 1/2) / 5 = 70 %.
    let b = peers.benchmark("reports_vs_all", 1).unwrap();
    assert!(close(b.percentile, 70.0) && b.peers == 5 && b.rank == 2, "{b:?}");
    // Account 5 (1) among 4, 2, 4, 7, 3 → 0 %; median 4, p75 4.
    let b = peers.benchmark("reports_vs_all", 5).unwrap();
    assert!(close(b.percentile, 0.0) && close(b.median, 4.0) && close(b.p75, 4.0), "{b:?}");
    assert_eq!(peers.benchmark("nope", 1), None);
    assert_eq!(peers.benchmark("reports_vs_all", 99), None);
}

#[test]
fn a_preview_renders_the_benchmarks_and_the_accounts_own_leaderboard() {
    let engine = engine();
    let program = engine.workspace().programs()[0].clone();
    let signer = LinkSigner::new(PREVIEW_SECRET);
    let p = preview(&engine, &program, &signer, "https://cs.example").unwrap();
    let samples: BTreeMap<String, (String, String)> = p
        .samples
        .iter()
        .map(|s| (s.to.clone().unwrap_or_default(), (s.subject_line.clone(), s.text.clone())))
        .collect();
    assert!(p.samples.iter().all(|s| s.error.is_none()), "{:#?}", p.samples);
    // Ann's account: 4 reports; the leaderboard lists only its own people with a report
    // (Cy made none), highest first, two at most.
    let (subject, text) = &samples["ann@a1.test"];
    assert_eq!(subject, "4 reports");
    assert_eq!(
        text.split('\n').map(str::trim).collect::<Vec<_>>(),
        ["plan: P50 rank 2 of 3 peers, median 4;", "all: P70;", "top: 1. Ann (3) 2. Bo (1)"]
    );
    // Gus's account has one peer on its plan: that benchmark is withheld, the other shown.
    let (_, text) = &samples["gus@a5.test"];
    assert_eq!(text.split('\n').map(str::trim).collect::<Vec<_>>(), ["plan: withheld;", "all: P0;", "top: 1. Gus (1)"]);
}
