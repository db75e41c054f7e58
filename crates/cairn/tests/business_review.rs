//! The example workspace's quarterly business review tells its story with the account's
//! own numbers: its benchmark against the accounts on its plan and of its size, and the
//! leaderboard of its own most active people (examples/workspace/insights.yaml), as the
//! program preview renders it. The numbers are worked out by hand below.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use cairn_channels::LinkSigner;
use cairn_engine::{Engine, EngineEvent};
use cairn_programs::{PREVIEW_SECRET, preview};
use cairn_rules::Value;
use jiff::{SignedDuration, Timestamp};

fn text(s: &str) -> Value {
    Value::String(s.into())
}

/// Seven accounts on the `team` plan with 10 seats each. Account 1's admins Ann, Bo and
/// Cy created 4, 2 and 0 reports in the last 30 days, each on a day of its own; every
/// other account has one user who created its reports (1, 2, 3, 4, 5 and 8).
fn engine() -> Engine {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/workspace");
    let ws = cairn_workspace::load_dir(&dir).unwrap_or_else(|e| panic!("{e:#?}"));
    let now: Timestamp = "2026-04-20T10:00:00Z".parse().unwrap();
    let start = now - SignedDuration::from_hours(24 * 20);
    let mut engine = Engine::with_shards(Arc::new(ws), start, 2);
    let started: jiff::civil::Date = "2025-06-01".parse().unwrap();
    for account in 1..=7u64 {
        let traits = BTreeMap::from([
            ("name".into(), text(&format!("Team {account}"))),
            ("plan".into(), text("team")),
            ("seats".into(), Value::Number(10.0)),
            ("start_date".into(), Value::Date(started)),
        ]);
        engine.upsert_account(account, traits);
    }
    let people = [
        (11, 1, "Ann Admin", "admin", 4),
        (12, 1, "Bo Admin", "admin", 2),
        (13, 1, "Cy Admin", "admin", 0),
        (21, 2, "Di User", "user", 1),
        (31, 3, "Ed User", "user", 2),
        (41, 4, "Flo User", "user", 3),
        (51, 5, "Gus User", "user", 4),
        (61, 6, "Hal User", "user", 5),
        (71, 7, "Ivy User", "user", 8),
    ];
    let mut events = Vec::new();
    for (contact, account, name, role, reports) in people {
        let first = name.split(' ').next().unwrap_or_default().to_lowercase();
        let traits = BTreeMap::from([
            ("name".into(), text(name)),
            ("email".into(), text(&format!("{first}@team{account}.test"))),
            ("role".into(), text(role)),
        ]);
        engine.upsert_contact(contact, Some(account), traits);
        for day in 0..reports {
            events.push(EngineEvent {
                ts: start + SignedDuration::from_hours(24 * day + 12),
                name: "report_created".into(),
                contact: Some(contact),
                account: Some(account),
                numbers: Vec::new(),
            });
        }
    }
    events.sort_by_key(|e| e.ts);
    engine.apply_all(&events, now);
    engine.advance_to(now);
    engine
}

#[test]
fn the_business_review_quotes_the_benchmarks_and_the_accounts_own_leaderboard() {
    let engine = engine();
    let program = engine.workspace().programs().iter().find(|p| p.id.as_str() == "business_review").unwrap().clone();
    let p = preview(&engine, &program, &LinkSigner::new(PREVIEW_SECRET), "https://cs.example").unwrap();
    // The audience is the admins of account 1 (the others' people are users).
    assert!(!p.samples.is_empty(), "{p:#?}");
    for sample in &p.samples {
        assert_eq!(sample.error, None, "{sample:#?}");
        let html = sample.html.split_whitespace().collect::<Vec<_>>().join(" ");
        // Account 1's 6 reports against its plan's six others 1, 2, 3, 4, 5, 8: five
        // below → 5 / 6 = 83.3 %, shown rounded.
        assert!(
            html.contains("Team 1 created more reports in the last 30 days than 83% of the teams on the team plan"),
            "{html}"
        );
        assert!(
            html.contains(
                "<strong>6 reports in 30 days.</strong> That is more than 83% of the 6 other teams on your plan."
            ),
            "{html}"
        );
        // 2 of 10 seats active (Ann and Bo) against six accounts of the same size with 1
        // of 10 each: ahead of all of them.
        assert!(html.contains("<strong>20% of your 10 seats were used this month.</strong> More than in 100% of the teams of your size."), "{html}");
        // Only account 1's own people who were active, most active first; Cy made nothing.
        assert!(html.contains("<ol><li>Ann Admin: 4 active days</li><li>Bo Admin: 2 active days</li></ol>"), "{html}");
        assert!(!html.contains("Cy Admin:") && !html.contains("Ivy"), "{html}");
        // The first call to action names the most active person, unless that is the reader.
        let asks_ann = html.contains("Ask Ann Admin to share their most-used dashboard");
        assert_eq!(asks_ann, sample.to.as_deref() != Some("ann@team1.test"), "{html}");
    }
}
