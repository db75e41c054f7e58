//! Exactly once, across crashes: a program over 2,000 contacts (two emails each, 4,000 due
//! messages) runs in the real `cairn serve` binary while the process is killed with
//! SIGKILL at random moments and restarted, or — on PostgreSQL — while one of two nodes
//! sharing the work is killed and never comes back.
//!
//! What "exactly once" can mean here, honestly: the runner records a step in the send
//! ledger in the same transaction as what follows it, and for the outbox in the same
//! transaction as the outbox row, so **outbox delivery is exactly once by construction**
//! and is asserted strictly (every message once, no duplicate). Over real SMTP the send
//! happens before that transaction: a kill after the server accepted the message and
//! before the ledger committed makes the next owner of the step send it again. That
//! resend carries the **same Message-ID** (a hash of the ledger key), so a receiving
//! system can drop it. The SMTP assertions are therefore: no Message-ID is missing, every
//! Message-ID received is one the ledger holds, and there are at most as many duplicate
//! deliveries as kills (a node sends one message at a time, so a kill interrupts at most
//! one send). Any other duplicate — a second node taking over steps whose lease has not
//! really run out — fails the test.
//!
//! The SMTP server is an in-process sink that, like a real server, accepts a message only
//! when its DATA is complete (`common/strict_smtp_sink.rs`). Messages are told apart by
//! Message-ID; what the store holds is read with `cairn_store::Store` and, while the
//! servers run, with plain counts on a connection of the test's own. The launch date is
//! today in UTC when the test starts (a run across midnight UTC would enroll nobody).

mod common;
#[path = "common/strict_smtp_sink.rs"]
mod strict_smtp_sink;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn::demo::Rng;
use cairn_store::{EnrollmentStatus, Store};
use strict_smtp_sink::{StrictSink, spawn_strict_sink};

const ACCOUNTS: usize = 100;
const CONTACTS: usize = 2_000;
/// Two email steps per contact.
const DUE: usize = CONTACTS * 2;
/// How many times the single node is killed while messages flow.
const KILLS: usize = 20;
/// How long the last start has to deliver what is left.
const FINISH_WITHIN: Duration = Duration::from_secs(90);

/// The launch announcement: on the account's launch date, an intro and a follow-up to
/// every contact with an address. No waits, quiet hours or caps: every step is due now.
const WORKSPACE: &str = r#"
workspace:
  time_zone: UTC
traits:
  account:
    launch_date: date
templates:
  intro:
    channel: email
    subject: "Live dashboards are here, {{ contact.name }}"
    text: "Hi {{ contact.name }}, live dashboards are now on for {{ account.name }}."
  follow_up:
    channel: email
    subject: "Did you try live dashboards, {{ contact.name }}?"
    text: "It takes two minutes."
programs:
  - id: launch
    name: Live dashboards launch
    trigger: launch_date
    audience: email is not null
    topic: news
    holdout: 0%
    steps:
      - id: intro
        send: email
        template: intro
      - id: follow_up
        send: email
        template: follow_up
"#;

// -------------------------------------------------------------------------------------
// The customer base and the workspace, on disk and imported with the real CLI.

/// A temporary folder with the workspace, the CSV files and (for SQLite) the database.
struct Scenario {
    dir: tempfile::TempDir,
    db: String,
}

impl Scenario {
    /// Writes the workspace and the CSV files and imports them into `db` (or, when `db`
    /// is `None`, into a new SQLite file in the folder).
    fn new(db: Option<String>) -> Scenario {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = db.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("cairn.db").display()));
        let scenario = Scenario { dir, db };
        std::fs::create_dir(scenario.workspace()).expect("workspace folder");
        std::fs::write(scenario.workspace().join("workspace.yaml"), WORKSPACE).expect("write the workspace");
        // The launch is today (UTC), whenever the test runs.
        let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let mut accounts = String::from("external_id,name,launch_date\n");
        for a in 0..ACCOUNTS {
            accounts.push_str(&format!("A{a},Account {a},{today}\n"));
        }
        let mut contacts = String::from("external_id,account_external_id,email,name\n");
        for c in 0..CONTACTS {
            contacts.push_str(&format!("C{c},A{},c{c}@example.com,Contact {c}\n", c % ACCOUNTS));
        }
        for (kind, text) in [("accounts", accounts), ("contacts", contacts)] {
            let file = scenario.dir.path().join(format!("{kind}.csv"));
            std::fs::write(&file, text).expect("write the CSV");
            let out = cairn()
                .args(["import", kind, file.to_str().expect("path"), "--db", &scenario.db])
                .env("CAIRN_LOG", "warn")
                .output()
                .expect("cairn import runs");
            assert!(out.status.success(), "cairn import {kind} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        scenario
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// Starts `cairn serve` as node `node`, delivering over SMTP to `smtp` or to the outbox.
    fn serve(&self, node: &str, smtp: Option<&StrictSink>) -> Server {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log()).expect("server log");
        let mut command = cairn();
        // Nothing from the environment the test runs in: only what the scenario sets.
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("CAIRN_")) {
            command.env_remove(name);
        }
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--db", &self.db, "--workspace"])
            .arg(self.workspace())
            .env("CAIRN_LOG", "warn")
            .env("CAIRN_NODE", node)
            .env("CAIRN_STEP_LEASE_SECS", "2")
            .env("CAIRN_STEP_BATCH", "20")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if let Some(sink) = smtp {
            command.env("CAIRN_SMTP_URL", format!("smtp://127.0.0.1:{}?security=none", sink.port));
        }
        Server { child: command.spawn().expect("cairn serve starts"), node: node.to_string(), log: self.log() }
    }
}

fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

/// A running `cairn serve`; killed (SIGKILL) when dropped, so a failing test leaves none.
struct Server {
    child: Child,
    node: String,
    log: PathBuf,
}

impl Server {
    fn sigkill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// Panics (with the end of the server log) if the process has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("cairn serve ({}) exited with {status}:\n{}", self.node, log_tail(&self.log));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

// -------------------------------------------------------------------------------------
// Watching the database from outside the server.

/// Counts read from the server's tables, on a connection of the test's own.
enum Probe {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Probe {
    async fn open(db: &str) -> Probe {
        use std::str::FromStr as _;
        if let Some(path) = db.strip_prefix("sqlite://") {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await;
            Probe::Sqlite(pool.expect("open the SQLite file"))
        } else {
            let (base, schema) = db.rsplit_once("schema=").expect("a PostgreSQL URL with ?schema=");
            let base = base.trim_end_matches(['?', '&']);
            let options = sqlx::postgres::PgConnectOptions::from_str(base)
                .expect("a PostgreSQL URL")
                .options([("search_path", schema)]);
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(options).await;
            Probe::Postgres(pool.expect("connect to PostgreSQL"))
        }
    }

    /// Messages the ledger records as sent.
    async fn sent(&self) -> usize {
        const SQL: &str = "SELECT COUNT(*) FROM send_ledger WHERE outcome = 'sent'";
        let n: i64 = match self {
            Probe::Sqlite(p) => sqlx::query_scalar(SQL).fetch_one(p).await,
            Probe::Postgres(p) => sqlx::query_scalar(SQL).fetch_one(p).await,
        }
        .expect("count the ledger");
        n as usize
    }

    /// Steps recorded, by the node that recorded them: a step is marked done only by the
    /// holder of its lease, and `lease_owner` stays on the done row.
    async fn done_by_node(&self) -> BTreeMap<String, usize> {
        const SQL: &str = "SELECT lease_owner, COUNT(*) FROM due_steps WHERE status = 'done' GROUP BY lease_owner";
        let rows: Vec<(Option<String>, i64)> = match self {
            Probe::Sqlite(p) => sqlx::query_as(SQL).fetch_all(p).await,
            Probe::Postgres(p) => sqlx::query_as(SQL).fetch_all(p).await,
        }
        .expect("count done steps by node");
        rows.into_iter().map(|(node, n)| (node.unwrap_or_default(), n as usize)).collect()
    }

    /// The due steps by status, attempt and lease owner, for a failure message.
    async fn due_steps_summary(&self) -> String {
        const SQL: &str = "SELECT status || ', attempt ' || attempt || ', owner ' || COALESCE(lease_owner, '-') || ': '
             || COUNT(*) || ' (last error: ' || COALESCE(MAX(last_error), '-') || ')'
             FROM due_steps GROUP BY status, attempt, lease_owner";
        let rows: Vec<String> = match self {
            Probe::Sqlite(p) => sqlx::query_scalar(SQL).fetch_all(p).await,
            Probe::Postgres(p) => sqlx::query_scalar(SQL).fetch_all(p).await,
        }
        .unwrap_or_else(|e| vec![format!("cannot read due_steps: {e}")]);
        rows.join("\n")
    }

    async fn close(self) {
        match self {
            Probe::Sqlite(p) => p.close().await,
            Probe::Postgres(p) => p.close().await,
        }
    }
}

/// Polls `probe.sent()` until `done` holds, the server dies, or `within` runs out.
async fn wait_for_sent(
    probe: &Probe,
    server: &mut Server,
    within: Duration,
    what: &str,
    done: impl Fn(usize) -> bool,
) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let sent = probe.sent().await;
        if done(sent) {
            return sent;
        }
        server.assert_running();
        if Instant::now() >= deadline {
            let steps = probe.due_steps_summary().await;
            panic!(
                "{what}: still {sent} sent after {within:?}\ndue steps:\n{steps}\nserver log:\n{}",
                log_tail(&server.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// -------------------------------------------------------------------------------------
// What must hold afterwards.

/// Every enrollment completed and the ledger holding exactly one `sent` entry per due
/// message; the ledger's Message-IDs.
async fn every_enrollment_completed_with_one_ledger_entry_per_message(store: &Store) -> BTreeSet<String> {
    let enrollments = store.program_enrollments("launch").await.expect("enrollments");
    assert_eq!(enrollments.len(), CONTACTS, "one enrollment per contact");
    let mut ids = BTreeSet::new();
    let mut entries = 0;
    for e in &enrollments {
        assert_eq!(e.status, EnrollmentStatus::Completed, "{e:?}");
        for l in store.ledger_for_enrollment(e.id).await.expect("ledger") {
            assert_eq!(l.outcome, "sent", "{l:?}");
            entries += 1;
            ids.insert(l.message_id.clone().expect("a sent email has a Message-ID"));
        }
    }
    assert_eq!((entries, ids.len()), (DUE, DUE), "the ledger holds each message once, under its own Message-ID");
    ids
}

/// Over SMTP: nothing missing, nothing unknown, at most one duplicate per kill. The
/// number of duplicates.
fn smtp_received_each_message_with_resends_bounded_by_kills(
    sink: &StrictSink,
    ledger: &BTreeSet<String>,
    kills: usize,
) -> usize {
    let deliveries = sink.deliveries();
    let received: BTreeSet<String> = deliveries.keys().cloned().collect();
    let missing: Vec<&String> = ledger.difference(&received).collect();
    assert!(
        missing.is_empty(),
        "{} messages never reached SMTP, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let unknown: Vec<&String> = received.difference(ledger).collect();
    assert!(unknown.is_empty(), "SMTP got Message-IDs the ledger does not hold: {unknown:?}");
    let duplicates: usize = deliveries.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= kills,
        "{duplicates} duplicate deliveries for {kills} kills: {:?}",
        deliveries.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    // Each recipient got two different messages (intro, follow-up).
    let mut per_recipient: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in sink.accepted() {
        assert_eq!(m.rcpt_to.len(), 1, "{m:?}");
        per_recipient.entry(m.rcpt_to[0].clone()).or_default().insert(m.message_id);
    }
    assert_eq!(per_recipient.len(), CONTACTS);
    assert!(per_recipient.values().all(|ids| ids.len() == 2), "every contact gets the intro and the follow-up");
    duplicates
}

/// The outbox: one row per due message, each Message-ID once, exactly the ledger's.
async fn outbox_holds_each_message_once(store: &Store, ledger: &BTreeSet<String>) {
    let outbox = store.outbox(u32::try_from(DUE * 2).expect("small")).await.expect("outbox");
    assert_eq!(outbox.len(), DUE, "outbox rows");
    let ids: BTreeSet<String> = outbox.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids.len(), DUE, "distinct Message-IDs in the outbox");
    assert_eq!(&ids, ledger, "the outbox holds exactly the ledger's messages");
}

// -------------------------------------------------------------------------------------
// One node, killed and restarted.

/// Starts the node, lets it record a random 1–100 more messages and then run on for a
/// random 0–50 ms (so the kill lands anywhere in the deliver-then-record cycle), kills it;
/// `KILLS` times. Then one last start delivers the rest. Counting progress rather than
/// time keeps every kill in the middle of the run however fast the runner is. The kills
/// and the seconds it took.
async fn kill_and_restart_while_delivering(
    scenario: &Scenario,
    sink: Option<&StrictSink>,
    seed: u64,
) -> (usize, Duration) {
    let started = Instant::now();
    let probe = Probe::open(&scenario.db).await;
    let mut rng = Rng::new(seed);
    let mut kills = 0;
    for life in 0..KILLS {
        let mut server = scenario.serve(&format!("life-{life}"), sink);
        let target = probe.sent().await + 1 + rng.below(100) as usize;
        // The first start enrolls 2,000 contacts before it sends anything.
        wait_for_sent(&probe, &mut server, Duration::from_secs(60), "a start that never sends", |n| n >= target).await;
        tokio::time::sleep(Duration::from_millis(rng.below(50))).await;
        server.sigkill();
        kills += 1;
        let sent = probe.sent().await;
        assert!(sent < DUE, "kill {kills} came after everything was sent: the test must kill while messages flow");
    }
    let mut last = scenario.serve("last", sink);
    wait_for_sent(&probe, &mut last, FINISH_WITHIN, "the last start", |n| n == DUE).await;
    if let Some(sink) = sink {
        // The ledger commits after SMTP accepted: by now every message has arrived.
        assert_eq!(sink.distinct(), DUE, "distinct Message-IDs at the sink once the ledger is complete");
    }
    drop(last);
    probe.close().await;
    (kills, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_twenty_times_every_due_message_reaches_smtp_once_by_message_id() {
    // Over SMTP: every message arrives; a resend after a kill carries its Message-ID.
    let scenario = Scenario::new(None);
    let sink = spawn_strict_sink().await;
    let (kills, took) = kill_and_restart_while_delivering(&scenario, Some(&sink), 7).await;
    let store = Store::open(&scenario.db).await.expect("the store opens after the kills");
    let ledger = every_enrollment_completed_with_one_ledger_entry_per_message(&store).await;
    let duplicates = smtp_received_each_message_with_resends_bounded_by_kills(&sink, &ledger, kills);
    store.close().await;
    eprintln!(
        "smtp: {DUE} messages, {kills} kills, {} deliveries, {duplicates} duplicates (same Message-ID), {:.1}s",
        sink.accepted().len(),
        took.as_secs_f64()
    );

    // To the outbox: strictly exactly once.
    let scenario = Scenario::new(None);
    let (kills, took) = kill_and_restart_while_delivering(&scenario, None, 11).await;
    let store = Store::open(&scenario.db).await.expect("the store opens after the kills");
    let ledger = every_enrollment_completed_with_one_ledger_entry_per_message(&store).await;
    outbox_holds_each_message_once(&store, &ledger).await;
    store.close().await;
    eprintln!("outbox: {DUE} messages, {kills} kills, 0 duplicates, {:.1}s", took.as_secs_f64());
}

// -------------------------------------------------------------------------------------
// Two nodes on PostgreSQL, one killed for good.

/// What a two-node run did: steps recorded per node, messages sent when node A was
/// killed, seconds.
struct TwoNodeRun {
    done_by_node: BTreeMap<String, usize>,
    sent_at_kill: usize,
    took: Duration,
}

/// Node A starts alone; B joins once A has sent 300 messages — in the middle of A's first
/// pass, which has run for longer than a lease by then, so a lease reckoned from the start
/// of the pass rather than from the claim would let B take over (and resend) the batch A
/// is delivering. Once both have recorded steps, A is killed at a random moment and never
/// restarted; B delivers the rest (A's claimed steps once their lease runs out).
async fn two_nodes_one_killed_mid_run(scenario: &Scenario, sink: Option<&StrictSink>, seed: u64) -> TwoNodeRun {
    let started = Instant::now();
    let probe = Probe::open(&scenario.db).await;
    let mut rng = Rng::new(seed);
    let mut a = scenario.serve("node-a", sink);
    wait_for_sent(&probe, &mut a, Duration::from_secs(60), "node A alone", |n| n >= 300).await;
    let mut b = scenario.serve("node-b", sink);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = probe.done_by_node().await;
        let by = |node: &str| done.get(node).copied().unwrap_or(0);
        if by("node-a") >= 20 && by("node-b") >= 20 {
            break;
        }
        a.assert_running();
        b.assert_running();
        assert!(
            Instant::now() < deadline,
            "both nodes should be delivering by now: {done:?}\n{}",
            log_tail(&scenario.log())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(100 + rng.below(500))).await;
    a.sigkill();
    let sent_at_kill = probe.sent().await;
    assert!(sent_at_kill < DUE, "node A must be killed mid-run, not after everything was sent");
    wait_for_sent(&probe, &mut b, FINISH_WITHIN, "node B alone", |n| n == DUE).await;
    if let Some(sink) = sink {
        assert_eq!(sink.distinct(), DUE, "distinct Message-IDs at the sink once the ledger is complete");
    }
    let done_by_node = probe.done_by_node().await;
    drop(b);
    probe.close().await;
    TwoNodeRun { done_by_node, sent_at_kill, took: started.elapsed() }
}

/// Both nodes recorded a share of the steps, and together all of them, each once. Who did
/// what is read from `due_steps`: a step is marked done only by the node holding its lease
/// (`lease_owner`), which stays on the done row. (Neither the ledger, the outbox nor the
/// sink can tell nodes apart.) Over SMTP, a step A sent just before it was killed counts
/// for B, which recorded it after sending it again.
fn both_nodes_did_part_of_the_work(run: &TwoNodeRun) {
    let nodes: Vec<&str> = run.done_by_node.keys().map(String::as_str).collect();
    assert_eq!(nodes, ["node-a", "node-b"], "{:?}", run.done_by_node);
    assert!(run.done_by_node.values().all(|n| *n > 0), "{:?}", run.done_by_node);
    assert_eq!(run.done_by_node.values().sum::<usize>(), DUE, "{:?}", run.done_by_node);
}

async fn two_nodes_scenario(db: String, smtp: bool) {
    let scenario = Scenario::new(Some(db));
    let sink = if smtp { Some(spawn_strict_sink().await) } else { None };
    let run = two_nodes_one_killed_mid_run(&scenario, sink.as_ref(), if smtp { 5 } else { 3 }).await;
    both_nodes_did_part_of_the_work(&run);
    let store = Store::open(&scenario.db).await.expect("the store opens");
    let ledger = every_enrollment_completed_with_one_ledger_entry_per_message(&store).await;
    let summary = match &sink {
        Some(sink) => {
            let duplicates = smtp_received_each_message_with_resends_bounded_by_kills(sink, &ledger, 1);
            format!("smtp: {} deliveries, {duplicates} duplicates (same Message-ID)", sink.accepted().len())
        }
        None => {
            outbox_holds_each_message_once(&store, &ledger).await;
            "outbox: 0 duplicates".to_string()
        }
    };
    store.close().await;
    eprintln!(
        "two nodes, {summary}; {DUE} messages, steps recorded by node {:?}, {} sent when node-a was killed, {:.1}s",
        run.done_by_node,
        run.sent_at_kill,
        run.took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgresql_share_the_work_and_one_killed_mid_run_loses_nothing() {
    let Some(base) = common::postgres_base() else {
        eprintln!("CAIRN_TEST_PG=skip: PostgreSQL variant not run");
        return;
    };
    for smtp in [false, true] {
        let nanos = jiff::Timestamp::now().as_nanosecond().rem_euclid(1_000_000_000_000);
        let schema = format!("exactly_once_{}_{nanos}", std::process::id());
        let sep = if base.contains('?') { '&' } else { '?' };
        // Run in a task so the schema is dropped whether the scenario passes or panics.
        let result = tokio::spawn(two_nodes_scenario(format!("{base}{sep}schema={schema}"), smtp)).await;
        use sqlx::Connection as _;
        if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                .execute(&mut c)
                .await;
        }
        if let Err(e) = result {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
