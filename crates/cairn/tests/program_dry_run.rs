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
//!
//! The one principled difference: traits have no history. The store keeps an account's
//! CRM record as it is now, so the dry run evaluates the whole period with today's seats,
//! renewal date and NPS answer, where the simulation's engine saw each change the moment
//! the CRM import brought it (a renewal's new seats, an NPS answer's `nps_last`, a new
//! customer's record the day before it starts). Health reads seats and `nps_last`, so an
//! account whose record changed in the period may turn red on another day. So a program
//! that reads health is compared on the accounts whose record did not change in the
//! period (the NPS answers of early January touch most of them, the test prints which);
//! every other program is compared on every subject.

#[path = "../../cairn-store/tests/common/mod.rs"]
mod store_common;

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn::simulation::{Options, simulate};
use cairn_programs::{DryRun, DryRunOptions};
use cairn_store::{Store, SubjectKind};
use jiff::Timestamp;
use store_common::{Backend, TestDb, date};

mod common;

use common::{TestApp, workspace_dir};

fn options() -> Options {
    Options { accounts: 30, seed: 11, today: date("2026-03-01"), days: 60, passes_per_day: 8 }
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// The period dry-run: from the first day of the quarter (the NPS survey's tick) to 10
/// days before the simulation's end (49 days).
const FROM: &str = "2026-01-01T00:00:00Z";
const TO: &str = "2026-02-19T00:00:00Z";

type Enrolled = BTreeSet<(Timestamp, String, i64, bool)>;

/// The accounts whose CRM record changed during [from, to): a term ended (a renewal's new
/// seats and renewal date, or a churn), a new customer was imported, or a contact's NPS
/// answer set `nps_last`; with the contacts of all accounts, for telling subjects apart.
async fn changed_in_period(
    store: &Store,
    truth: &cairn_sim::Truth,
    from: Timestamp,
    to: Timestamp,
) -> (BTreeSet<i64>, std::collections::HashMap<i64, i64>) {
    let utc = |t: Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
    let (first, last) = (utc(from).yesterday().unwrap(), utc(to));
    let accounts = store.engine_accounts(date("2026-03-01")).await.unwrap();
    let by_crm: std::collections::HashMap<String, i64> =
        accounts.iter().filter_map(|a| Some((a.crm_id.clone()?, a.id))).collect();
    let mut changed: BTreeSet<i64> = truth
        .renewals
        .iter()
        .filter(|r| r.term_end >= first && r.term_end <= last)
        .filter_map(|r| by_crm.get(&r.account).copied())
        .collect();
    changed.extend(accounts.iter().filter(|a| a.start_date.is_some_and(|d| d >= first && d <= last)).map(|a| a.id));
    let account_of: std::collections::HashMap<i64, i64> =
        store.engine_contacts().await.unwrap().into_iter().filter_map(|c| Some((c.id, c.account_id?))).collect();
    let activity = store.program_activity(Timestamp::MIN, to).await.unwrap();
    let enrolled: std::collections::HashMap<i64, &cairn_store::Enrollment> =
        activity.enrollments.iter().map(|m| (m.enrollment.id, &m.enrollment)).collect();
    for g in activity.engagements.iter().filter(|g| g.kind == "answered" && g.at >= from && g.at < to) {
        if let Some(e) = enrolled.get(&g.enrollment_id)
            && let Some(account) = account_of.get(&e.subject_id)
        {
            changed.insert(*account);
        }
    }
    (changed, account_of)
}
type Sent = BTreeSet<(Timestamp, String, Option<i64>, String, Option<String>, (String, i64))>;

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
            let subject = (e.subject_kind.as_str().to_string(), e.subject_id);
            sent.insert((l.at, l.step_id.clone(), contact, l.channel.clone(), variant, subject));
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
        .map(|s| {
            let (kind, id) = s.enrollment.split_once(':').unwrap();
            let subject = (kind.to_string(), id.parse().unwrap());
            (s.at, s.step.clone(), s.contact_id, s.channel.clone(), s.variant.clone(), subject)
        })
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
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let store = Store::open(&url).await.unwrap();
    let (ws, hash) = cairn::demo::example_workspace().unwrap();
    let ws = Arc::new(ws);
    let (summary, truth) = simulate(&store, Arc::clone(&ws), hash, &options(), |_, _| {}).await.unwrap();
    let (from, to) = (at(FROM), at(TO));
    let before = footprint(&store).await;
    let (changed, account_of) = changed_in_period(&store, &truth, from, to).await;
    eprintln!("accounts whose CRM record changed in the period (not compared): {changed:?}");
    assert!(changed.len() < summary.accounts, "some accounts are compared for every program: {changed:?}");
    // Whether an enrollment's subject belongs to an account whose record changed.
    let left_out = |kind: &str, id: i64| {
        let account = if kind == "account" { Some(id) } else { account_of.get(&id).copied() };
        account.is_some_and(|a| changed.contains(&a))
    };
    let dry_options = DryRunOptions {
        from,
        to,
        now: at("2026-03-01T00:00:00Z"),
        pass_every: cairn_programs::dry_run::DEFAULT_PASS_EVERY,
        public_url: "http://127.0.0.1:8080".to_string(),
    };
    let mut compared_sends = 0;
    let mut engaged = 0;
    let mut quiet = 0;
    for program in ws.programs() {
        let id = program.id.as_str();
        let report = cairn_programs::dry_run(&store, Arc::clone(&ws), id, &dry_options).await.unwrap();
        let (mut real_enrolled, mut real_sent) = real_run(&store, id, from, to).await;
        let (mut dry_enrolled, mut dry_sent) = dry(&report);
        let (all_real, all_dry) = (real_enrolled.len(), dry_enrolled.len());
        // Health reads seats and `nps_last`: a program that reads health (its trigger,
        // audience, a wait, a branch, an exit or its goal) is compared on the accounts whose
        // record did not change; every other program on all of them.
        let reads_health = format!("{program:?}").to_lowercase().contains("health");
        eprintln!("{id}: reads health: {reads_health}");
        let keep = |kind: &str, id: i64| !(reads_health && left_out(kind, id));
        for set in [&mut real_enrolled, &mut dry_enrolled] {
            set.retain(|e| keep(&e.1, e.2));
        }
        for set in [&mut real_sent, &mut dry_sent] {
            set.retain(|s| keep(&s.5.0, s.5.1));
        }
        eprintln!(
            "{id}: real {} enrolled, {} sends; dry {} enrolled, {} sends; engagement replayed {} (not matched {})",
            real_enrolled.len(),
            real_sent.len(),
            dry_enrolled.len(),
            dry_sent.len(),
            report.engagements_replayed,
            report.engagements_not_matched
        );
        eprintln!(
            "{id}: quiet hours held {}, caps held {} and dropped {}",
            report.quiet_hours_deferrals, report.cap_deferrals, report.cap_skips
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
        // The report's counts are its lists'.
        assert_eq!(report.enrolled, all_dry as u64);
        assert_eq!(report.held_out, report.enrollments.iter().filter(|e| e.holdout).count() as u64);
        assert_eq!(report.sent + report.tasks_created, report.sends.len() as u64);
        eprintln!("{id}: compared {} enrollments of {all_real} real", real_enrolled.len());
        let per_step: u64 = report.steps.iter().map(|s| s.outcomes.get("sent").copied().unwrap_or(0)).sum();
        assert_eq!(per_step, report.sent, "{id}: the steps' sends add up");
        compared_sends += real_sent.len();
        engaged += report.engagements_replayed;
        quiet += report.quiet_hours_deferrals;
    }
    // The comparison is not vacuous: the period holds sends, and engagement that steered
    // branches.
    assert!(compared_sends > 20, "{compared_sends} sends compared");
    assert!(engaged > 0, "no engagement was replayed");
    assert!(quiet > 0, "quiet hours held sends (the NPS survey goes out at 10:00 in Berlin, night in America)");
    assert_eq!(footprint(&store).await, before, "a dry run writes nothing to the database it reads");
    store.close().await;
    the_cli_prints_the_dry_run_for_people_and_as_json(&url, &ws).await;
}

/// `cairn program preview ID --from --to`, on the simulated database: the JSON is the
/// library's report, the human output its load, samples and notes; mistakes are named.
async fn the_cli_prints_the_dry_run_for_people_and_as_json(url: &str, ws: &Arc<cairn_workspace::Workspace>) {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/workspace");
    let cairn = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["program", "preview"])
            .args(args)
            .args(["--db", url, "--workspace", workspace])
            .env("CAIRN_LOG", "warn")
            .output()
            .unwrap()
    };
    let period = ["--from", "2026-01-15", "--to", "2026-02-17"];
    let out = cairn(&[&["onboarding_welcome", "--json"][..], &period[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The same dry run through the library, the days read in the workspace's time zone.
    let (from, to) = cairn_programs::dry_run::parse_period("2026-01-15", "2026-02-17", ws.time_zone()).unwrap();
    let store = Store::open(url).await.unwrap();
    let options = DryRunOptions {
        from,
        to,
        now: Timestamp::now(),
        pass_every: cairn_programs::dry_run::DEFAULT_PASS_EVERY,
        public_url: "http://127.0.0.1:8080".to_string(),
    };
    let report = cairn_programs::dry_run(&store, Arc::clone(ws), "onboarding_welcome", &options).await.unwrap();
    store.close().await;
    assert_eq!(json["from"], "2026-01-14T23:00:00Z", "a day starts in the workspace time zone (Berlin)");
    assert_eq!(json["to"], "2026-02-17T23:00:00Z", "--to's day is included");
    assert_eq!(json["enrolled"], report.enrolled);
    assert_eq!(json["sent"], report.sent);
    assert_eq!(json["sends"], serde_json::to_value(&report.sends).unwrap());
    assert!(report.enrolled > 0 && report.sent > 0, "{json}");
    assert!(!report.samples.is_empty() && report.samples.len() <= 3);
    assert!(report.samples.iter().all(|s| !s.subject.is_empty() && !s.excerpt.is_empty()), "{:?}", report.samples);
    let out = cairn(&[&["onboarding_welcome"][..], &period[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    eprintln!("{text}");
    assert!(text.starts_with("dry run of program onboarding_welcome (Welcome new users) from 2026-01-14T23:00:00Z"));
    assert!(text.contains(&format!("enrolled {} ({} held out)", report.enrolled, report.held_out)), "{text}");
    assert!(text.contains(&format!("sent {} messages, created {} tasks", report.sent, report.tasks_created)));
    assert!(text.contains("guard rails: quiet hours held a send"), "{text}");
    assert!(text.contains(&format!("sample 1 — {} to {}", report.samples[0].channel, report.samples[0].to)), "{text}");
    assert!(text.contains(&format!("  subject: {}", report.samples[0].subject)), "{text}");
    assert!(text.contains("note: traits have no history"), "{text}");
    // Mistakes, named.
    let out = cairn(&["onboardng_welcome", "--from", "2026-01-15", "--to", "2026-02-17"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no program `onboardng_welcome`, did you mean `onboarding_welcome`?"), "{err}");
    let out = cairn(&["onboarding_welcome", "--from", "2025-01-01", "--to", "2026-02-17"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a dry run replays at most 366 days"), "{err}");
    let out = cairn(&["onboarding_welcome", "--from", "15/01/2026", "--to", "2026-02-17"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("from `15/01/2026` is neither a date (2026-03-10) nor an instant"), "{err}");
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

/// `GET /api/programs/{id}/dry-run` on the real server: the report as JSON, a period or a
/// program that is wrong named in a 400 or a 404, and a secret key required.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_api_dry_runs_a_program_over_history() {
    the_api_dry_runs_a_program_over_history(common::Backend::Sqlite).await;
}

/// The same on PostgreSQL: the real store read is PostgreSQL, the scratch one SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_api_dry_runs_a_program_over_history() {
    the_api_dry_runs_a_program_over_history(common::Backend::Postgres).await;
}

async fn the_api_dry_runs_a_program_over_history(backend: common::Backend) {
    let dir = workspace_dir(
        r#"
segments:
  - { id: reporters, of: contact, where: "count('report_created', 30d) >= 1" }
templates:
  tips:
    channel: email
    subject: "Tips for {{ contact.name }}"
    text: Hello
programs:
  - id: report_tips
    trigger: segment_entered('reporters')
    topic: product_tips
    steps:
      - send: email
        template: tips
"#,
    );
    let Some(app) = TestApp::spawn_with_workspace(backend, dir.path()).await else { return };
    let body = serde_json::json!({
        "userId": "u1",
        "event": "report_created",
        "timestamp": "2026-03-01T09:00:00Z",
    });
    let identify = serde_json::json!({ "userId": "u1", "traits": { "email": "ada@acme.io", "name": "Ada" } });
    assert_eq!(app.post("/v1/identify", &identify.to_string()).await.status, 200);
    assert_eq!(app.post("/v1/track", &body.to_string()).await.status, 200);
    // Three hours later (the server's clock), the morning is history.
    app.clock.set(at("2026-03-01T15:00:00Z"));
    let (status, json) = app.api_get("/api/programs/report_tips/dry-run?from=2026-02-01&to=2026-03-01").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["program"], "report_tips");
    assert_eq!(json["enrolled"], 1, "{json}");
    assert_eq!(json["sent"], 1, "{json}");
    assert_eq!(json["samples"][0]["subject"], "Tips for Ada", "{json}");
    assert_eq!(json["to"], "2026-03-01T15:00:00Z", "a period reaching past now ends now");
    let (status, json) = app.api_get("/api/programs/report_tip/dry-run?from=2026-02-01&to=2026-03-01").await;
    assert_eq!(status, 404, "{json}");
    assert!(json["error"].as_str().unwrap().contains("did you mean `report_tips`?"), "{json}");
    let (status, json) = app.api_get("/api/programs/report_tips/dry-run?from=2024-01-01&to=2026-03-01").await;
    assert_eq!(status, 400, "{json}");
    assert!(json["error"].as_str().unwrap().contains("at most 366 days"), "{json}");
    let (status, json) = app.api_get("/api/programs/report_tips/dry-run?from=2026-02-01").await;
    assert_eq!(status, 400, "{json}");
    assert!(json["error"].as_str().unwrap().contains("from= and to="), "{json}");
    let r = app.raw("GET", "/api/programs/report_tips/dry-run?from=2026-02-01&to=2026-03-01", &[], b"").await;
    assert_eq!(r.status, 401);
    app.finish().await;
}
