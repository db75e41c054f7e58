//! The living demo at a small size: 40 customers, 100 days run through the real engine and
//! program runner on a simulated clock, in a real SQLite file and a real PostgreSQL
//! database. Asserted from the store's own records: programs enrolled people, held some
//! out and sent them email and in-app messages (the outbox holds the emails); people
//! opened, clicked and answered; CSMs completed tasks; the ledger holds renewals and a
//! churn. Then the same seed on a fresh database gives the same year, record for record,
//! and PostgreSQL gives the same year as SQLite.

#[path = "../../cairn-store/tests/common/mod.rs"]
mod store_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn::simulation::{Options, Summary, simulate};
use cairn_store::{Store, SubjectKind};
use store_common::{Backend, TestDb, date};

fn options() -> Options {
    Options { accounts: 40, seed: 3, today: date("2026-03-01"), days: 100, passes_per_day: 8 }
}

/// The year, and what the store says about it beyond the summary: per program the
/// engagements recorded on its enrollments (by kind), and the outbox's subjects.
async fn a_small_year(store: &Store) -> Year {
    let (ws, hash) = cairn::demo::example_workspace().unwrap();
    let (summary, _truth) = simulate(store, Arc::new(ws.clone()), hash, &options(), |_, _| {}).await.unwrap();
    let mut engaged: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for p in ws.programs() {
        for e in store.program_enrollments(p.id.as_str()).await.unwrap() {
            for g in store.engagements(e.id).await.unwrap() {
                *engaged.entry(p.id.as_str().to_string()).or_default().entry(g.kind).or_default() += 1;
            }
        }
    }
    let mut outbox: Vec<String> =
        store.outbox(100_000).await.unwrap().into_iter().map(|m| format!("{} {} {}", m.at, m.to, m.subject)).collect();
    outbox.sort();
    (summary, engaged, outbox)
}

type Year = (Summary, BTreeMap<String, BTreeMap<String, usize>>, Vec<String>);

async fn the_demo_year_runs_through_the_engine_and_the_programs(store: &Store, year: &Year) {
    let (summary, engaged, outbox) = year;
    eprintln!("{}", cairn::simulation::render(summary));
    eprintln!("{engaged:?}");
    let program = |id: &str| summary.programs.iter().find(|p| p.program == id).unwrap();
    // Every program but the at-risk rescue (its audience is accounts of $20k ARR and more
    // turning red, which a 40-account quarter may not have) enrolled and acted.
    for id in ["onboarding_welcome", "invite_your_team", "renewal_sequence", "nps_survey"] {
        let p = program(id);
        assert!(p.enrolled > 0, "{id}: {p:?}");
        assert!(p.sent.values().sum::<u64>() + p.tasks > 0, "{id}: {p:?}");
    }
    // Holdouts are real enrollments that got nothing.
    let held_out: u64 = summary.programs.iter().map(|p| p.held_out).sum();
    assert!(held_out > 0, "{summary:?}");
    for p in ["onboarding_welcome", "nps_survey"] {
        for e in store.program_enrollments(p).await.unwrap().iter().filter(|e| e.holdout) {
            assert!(store.ledger_for_enrollment(e.id).await.unwrap().iter().all(|l| l.outcome != "sent"), "{e:?}");
        }
    }
    assert!(program("onboarding_welcome").sent.contains_key("email"));
    assert!(program("onboarding_welcome").sent.contains_key("in_app"));
    // Email went to the outbox, one message per email send.
    let emails: u64 = summary.programs.iter().map(|p| p.sent.get("email").copied().unwrap_or(0)).sum();
    assert_eq!(outbox.len() as u64, emails);
    // Engagement recorded on the enrollments: opens and clicks, NPS answers.
    assert!(summary.engagements.get("opened").copied().unwrap_or(0) > 0);
    assert!(summary.engagements.get("clicked").copied().unwrap_or(0) > 0);
    assert!(engaged.get("nps_survey").and_then(|k| k.get("answered")).copied().unwrap_or(0) > 0, "{engaged:?}");
    let recorded: usize = engaged.values().flat_map(|k| k.values()).sum();
    assert_eq!(recorded as u64, summary.engagements.values().sum::<u64>());
    // Tasks created by programs, some completed by the simulated CSMs.
    assert!(summary.tasks_created > 0 && summary.tasks_completed > 0, "{summary:?}");
    assert!(summary.tasks_completed <= summary.tasks_created);
    // The ledger: renewal lines (a second or later term) starting in the period, and an
    // account whose line ended in the period with no line after it (a churn).
    let lines = store.subscription_lines().await.unwrap();
    let (first, today) = (summary.first_day, options().today);
    let renewals =
        lines.iter().filter(|l| l.start_date >= first && l.start_date < today && !l.id.ends_with("-1")).count();
    let churned = lines
        .iter()
        .filter(|l| l.end_date >= first && l.end_date < today)
        .filter(|l| !lines.iter().any(|m| m.account_id == l.account_id && m.start_date > l.end_date))
        .count();
    assert_eq!(renewals as u64, summary.renewals_won, "{summary:?}");
    assert_eq!(churned as u64, summary.renewals_lost, "{summary:?}");
    assert!(renewals > 0 && churned > 0, "{summary:?}");
    // Contacts with product use got engine-made enrollments of their own.
    let welcome = store.program_enrollments("onboarding_welcome").await.unwrap();
    assert!(welcome.iter().all(|e| e.subject_kind == SubjectKind::Contact));
}

#[tokio::test]
async fn sqlite_the_demo_year_runs_through_the_engine_and_the_programs_the_same_every_time() {
    let db = TestDb::open(Backend::Sqlite).await.unwrap();
    let first = a_small_year(&db.store).await;
    the_demo_year_runs_through_the_engine_and_the_programs(&db.store, &first).await;
    db.close().await;
    let again = TestDb::open(Backend::Sqlite).await.unwrap();
    let second = a_small_year(&again.store).await;
    again.close().await;
    assert_eq!(first, second, "the same seed on a fresh database gives the same year");
}

#[tokio::test]
async fn postgres_the_demo_year_runs_through_the_engine_and_the_programs() {
    let Some(db) = TestDb::open(Backend::Postgres).await else { return };
    let year = a_small_year(&db.store).await;
    the_demo_year_runs_through_the_engine_and_the_programs(&db.store, &year).await;
    db.close().await;
}

/// `cairn demo` as a person runs it: a summary on stdout (JSON with `--json`), and a
/// clear refusal on a database that holds events already.
#[test]
fn cairn_demo_prints_its_summary_and_refuses_a_database_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let cairn = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("CAIRN_DB", format!("sqlite://{}", dir.path().join("demo.db").display()))
            .env("CAIRN_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = cairn(&["demo", "--accounts", "4", "--days", "3", "--seed", "9", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["accounts"], 4);
    assert!(summary["events"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["programs"].as_array().unwrap().len(), 5, "one row per program of the example workspace");
    let again = cairn(&["demo", "--accounts", "4", "--days", "3"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("holds events already") && err.contains("--db"), "{err}");
}
