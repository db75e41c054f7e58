//! A program's dry run over history, checked against the real thing: the demo's
//! simulation runs the example workspace live for 60 days (the engine, the runner, people
//! answering, CSMs working tasks), then each program is dry-run over a sub-period of that
//! history on the same database. The dry run must enroll the same subjects at the same
//! instants, hold out the same ones, and make the same sends and tasks (step, recipient,
//! instant, variant) as the simulation recorded for the enrollments it made in that
//! period — while writing nothing to the database it reads.
//!
//! Why it can be exact: the engine is deterministic for the same log and clock; the dry
//! run feeds it the same events at the same passes (every 3 hours from midnight UTC, as the
//! simulation runs); the runner is the same code; holdout and variants are hashes of
//! program and subject; the other programs' real sends count towards the frequency caps;
//! and the engagement people really recorded on the program's sends is replayed onto the
//! dry run's matching sends, so `opened(...)`/`clicked(...)`/`answered(...)` branches
//! take the same path. Enrollments made before the period are not replayed (they are
//! history), so sends of those are not compared.

#[path = "../../cairn-store/tests/common/mod.rs"]
mod store_common;

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn::simulation::{Options, simulate};
use cairn_programs::{DryRun, DryRunOptions};
use cairn_store::{Store, SubjectKind};
use jiff::Timestamp;
use store_common::{Backend, TestDb, date};

fn options() -> Options {
    Options { accounts: 30, seed: 11, today: date("2026-03-01"), days: 60, passes_per_day: 8 }
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// The period dry-run: from the 15th day of the simulation to 10 days before its end.
const FROM: &str = "2026-01-15T00:00:00Z";
const TO: &str = "2026-02-19T00:00:00Z";

type Enrolled = BTreeSet<(Timestamp, String, i64, bool)>;
type Sent = BTreeSet<(Timestamp, String, Option<i64>, String, Option<String>)>;

/// What the simulation recorded for `program`'s enrollments made in [from, to): who was
/// enrolled when (and held out), and every send and task before `to`.
async fn real_run(store: &Store, program: &str, from: Timestamp, to: Timestamp) -> (Enrolled, Sent) {
    let mut enrolled = BTreeSet::new();
    let mut sent = BTreeSet::new();
    for e in store.program_enrollments(program).await.unwrap() {
        if e.enrolled_at < from || e.enrolled_at >= to {
            continue;
        }
        enrolled.insert((e.enrolled_at, e.subject_kind.as_str().to_string(), e.subject_id, e.holdout));
        for l in store.ledger_for_enrollment(e.id).await.unwrap() {
            if l.at >= to || (l.outcome != "sent" && l.outcome != "task_created") {
                continue;
            }
            let detail: serde_json::Value = serde_json::from_str(&l.detail).unwrap();
            let contact = match e.subject_kind {
                SubjectKind::Contact => Some(e.subject_id),
                SubjectKind::Account => detail["contact_id"].as_i64(),
            };
            let variant = detail["variant"].as_str().map(str::to_string);
            sent.insert((l.at, l.step_id.clone(), contact, l.channel.clone(), variant));
        }
    }
    (enrolled, sent)
}

fn dry(report: &DryRun) -> (Enrolled, Sent) {
    let enrolled =
        report.enrollments.iter().map(|e| (e.enrolled_at, e.subject_kind.clone(), e.subject_id, e.holdout)).collect();
    let sent = report
        .sends
        .iter()
        .map(|s| (s.at, s.step.clone(), s.contact_id, s.channel.clone(), s.variant.clone()))
        .collect();
    (enrolled, sent)
}

/// What a dry run must leave alone: the log, the ledger, the enrollments, the outbox.
async fn footprint(store: &Store) -> (i64, usize, Vec<usize>) {
    let (ws, _) = cairn::demo::example_workspace().unwrap();
    let mut enrollments = Vec::new();
    for p in ws.programs() {
        enrollments.push(store.program_enrollments(p.id.as_str()).await.unwrap().len());
    }
    (store.last_seq().await.unwrap(), store.outbox(u32::MAX).await.unwrap().len(), enrollments)
}

#[tokio::test]
async fn the_dry_run_of_each_program_enrolls_and_sends_as_the_simulation_really_did() {
    let db = TestDb::open(Backend::Sqlite).await.unwrap();
    let (ws, hash) = cairn::demo::example_workspace().unwrap();
    let ws = Arc::new(ws);
    simulate(&db.store, Arc::clone(&ws), hash, &options(), |_, _| {}).await.unwrap();
    let (from, to) = (at(FROM), at(TO));
    let before = footprint(&db.store).await;
    let dry_options = DryRunOptions {
        from,
        to,
        now: at("2026-03-01T00:00:00Z"),
        pass_every: cairn_programs::dry_run::DEFAULT_PASS_EVERY,
        public_url: "http://127.0.0.1:8080".to_string(),
    };
    let mut compared_sends = 0;
    let mut engaged = 0;
    for program in ws.programs() {
        let id = program.id.as_str();
        let report = cairn_programs::dry_run(&db.store, Arc::clone(&ws), id, &dry_options).await.unwrap();
        let (real_enrolled, real_sent) = real_run(&db.store, id, from, to).await;
        let (dry_enrolled, dry_sent) = dry(&report);
        eprintln!(
            "{id}: real {} enrolled, {} sends; dry {} enrolled, {} sends; engagement replayed {} (not matched {})",
            real_enrolled.len(),
            real_sent.len(),
            dry_enrolled.len(),
            dry_sent.len(),
            report.engagements_replayed,
            report.engagements_not_matched
        );
        assert_eq!(
            dry_enrolled,
            real_enrolled,
            "{id}: the dry run enrolls the subjects the simulation enrolled\nonly dry: {:?}\nonly real: {:?}",
            dry_enrolled.difference(&real_enrolled).collect::<Vec<_>>(),
            real_enrolled.difference(&dry_enrolled).collect::<Vec<_>>()
        );
        assert_eq!(
            dry_sent,
            real_sent,
            "{id}: the dry run schedules the sends the simulation made\nonly dry: {:?}\nonly real: {:?}",
            dry_sent.difference(&real_sent).collect::<Vec<_>>(),
            real_sent.difference(&dry_sent).collect::<Vec<_>>()
        );
        assert_eq!(report.engagements_not_matched, 0, "{id}: every real engagement found its send");
        // The report's counts are its lists'.
        assert_eq!(report.enrolled, real_enrolled.len() as u64);
        assert_eq!(report.held_out, real_enrolled.iter().filter(|e| e.3).count() as u64);
        assert_eq!(report.sent + report.tasks_created, real_sent.len() as u64);
        let per_step: u64 = report.steps.iter().map(|s| s.outcomes.get("sent").copied().unwrap_or(0)).sum();
        assert_eq!(per_step, report.sent, "{id}: the steps' sends add up");
        compared_sends += real_sent.len();
        engaged += report.engagements_replayed;
    }
    // The comparison is not vacuous: the period holds sends, and engagement that steered
    // branches.
    assert!(compared_sends > 20, "{compared_sends} sends compared");
    assert!(engaged > 0, "no engagement was replayed");
    assert_eq!(footprint(&db.store).await, before, "a dry run writes nothing to the database it reads");
    db.close().await;
}

#[tokio::test]
async fn a_dry_run_refuses_a_period_over_366_days_and_an_unknown_program() {
    let db = TestDb::open(Backend::Sqlite).await.unwrap();
    let (ws, _) = cairn::demo::example_workspace().unwrap();
    let ws = Arc::new(ws);
    let mut o = DryRunOptions {
        from: at("2025-01-01T00:00:00Z"),
        to: at("2026-01-03T00:00:00Z"),
        now: at("2026-03-01T00:00:00Z"),
        pass_every: cairn_programs::dry_run::DEFAULT_PASS_EVERY,
        public_url: "http://127.0.0.1:8080".to_string(),
    };
    let e = cairn_programs::dry_run(&db.store, Arc::clone(&ws), "nps_survey", &o).await.unwrap_err();
    assert!(e.to_string().contains("at most 366 days"), "{e}");
    o.to = at("2025-02-01T00:00:00Z");
    let e = cairn_programs::dry_run(&db.store, Arc::clone(&ws), "nps_survye", &o).await.unwrap_err();
    assert_eq!(e.to_string(), "no program `nps_survye`, did you mean `nps_survey`?");
    db.close().await;
}
