//! `cairn-bench programs`: the program runner at scale, on SQLite, beside a peer.
//!
//! (a) Throughput: N contacts, five programs triggered on the same day (a date trigger, `launch_date + 1d`),
//!     each sending one Liquid email to the outbox: N × 5 enrollments. Measured: the
//!     enrollment pass (audience, re-entry, holdout, first step scheduled) and the next
//!     pass, the sends (claim with a lease, guard rails, render with signed links, record
//!     ledger + outbox + what follows, the `email_sent` event). Beside it, the peer:
//!     PostgreSQL inserting the same number of ledger and outbox rows with one
//!     `INSERT … SELECT generate_series` each (no rendering, no rules): the floor of writing
//!     those rows at all.
//! (b) Latency: a program triggered by an event; events are posted one at a time to
//!     `/v1/track` on a real server on loopback (engine and runner running as in `cairn
//!     serve`), and the time until the message is in the outbox is measured, p50 and p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cairn_core::import::{Header, ImportKind, parse_account, parse_contact};
use cairn_core::{Clock, FixedClock, Source, SystemClock};
use cairn_programs::{Runner, RunnerConfig};
use cairn_runtime::Runtime;
use cairn_store::Store;
use cairn_workspace::{SourceFile, check_sources};
use clap::Args;
use jiff::Timestamp;

use cairn::app::{App, AppConfig, Definitions};
use cairn::loopback::Connection;

/// Options of `cairn-bench programs`.
#[derive(Args, Debug, Clone)]
pub struct ProgramsArgs {
    /// Contacts (each enrolled in all five programs)
    #[arg(long, default_value_t = 200_000)]
    pub contacts: usize,
    /// Accounts they belong to
    #[arg(long, default_value_t = 2_000)]
    pub accounts: usize,
    /// Triggers posted to /v1/track for the latency figures (0 leaves them out)
    #[arg(long, default_value_t = 1_000)]
    pub triggers: usize,
    /// PostgreSQL for the peer ("none" to leave it out)
    #[arg(long, env = "CAIRN_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg: String,
    /// Print the results as JSON
    #[arg(long)]
    pub json: bool,
}

const PROGRAMS: usize = 5;

fn workspace() -> String {
    let mut y = String::from(
        "workspace:\n  time_zone: UTC\ntraits:\n  account:\n    launch_date: date\ntemplates:\n  hello:\n    channel: email\n    subject: \"{{ account.name }} news for {{ contact.name }}\"\n    html: \"<p>Hi {{ contact.name }},</p><p>See <a href='https://acme.example/new'>what is new</a> at {{ account.name }}.</p><p><a href='{{ links.unsubscribe_url }}'>Unsubscribe</a></p>\"\n    text: \"Hi {{ contact.name }}, see what is new: https://acme.example/new\"\nprograms:\n",
    );
    for i in 0..PROGRAMS {
        y += &format!(
            "  - id: launch_{i}\n    trigger: launch_date + 1d\n    audience: email is not null\n    topic: news\n    priority: {}\n    steps:\n      - {{ id: mail, send: email, template: hello }}\n",
            10 + i
        );
    }
    y += "  - id: on_signal\n    trigger: event('asked_for_help')\n    topic: support\n    steps:\n      - { id: mail, send: email, template: hello }\n";
    y
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct Row {
    pub(crate) what: String,
    pub(crate) count: u64,
    pub(crate) seconds: f64,
    pub(crate) per_s: f64,
    pub(crate) note: String,
}

/// What a run measured: the throughput rows (enrollment, sends, the peer when it ran) and
/// the trigger-to-outbox latency (count, p50, p99, max in ms) when triggers were posted.
pub(crate) struct Measured {
    pub(crate) rows: Vec<Row>,
    pub(crate) latency: Option<(usize, f64, f64, f64)>,
}

/// `cairn-bench programs`.
pub async fn run(args: ProgramsArgs) -> Result<()> {
    let Measured { rows, latency } = measure(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "rows": rows, "latency_ms": latency }))?);
    } else {
        println!("| what | count | seconds | per second | note |\n|---|---:|---:|---:|---|");
        for r in &rows {
            println!("| {} | {} | {:.2} | {:.0} | {} |", r.what, r.count, r.seconds, r.per_s, r.note);
        }
        if let Some((n, p50, p99, max)) = latency {
            println!(
                "\ntrigger-to-outbox over HTTP (/v1/track → engine → runner → outbox), {n} triggers one at a time: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
            );
        }
    }
    Ok(())
}

/// Seeds, enrolls, sends, runs the peer and the latency run.
pub(crate) async fn measure(args: &ProgramsArgs) -> Result<Measured> {
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::open(&db).await?;
    // The programs trigger the day after `launch_date`: the run's day.
    let day = jiff::civil::date(2026, 3, 1);
    let start: Timestamp = "2026-03-02T10:00:00Z".parse()?;
    eprintln!("generating {} accounts and {} contacts…", args.accounts, args.contacts);
    seed(&store, args.accounts, args.contacts, day).await?;

    let files = vec![SourceFile::new("bench.yaml", workspace())];
    let ws = Arc::new(check_sources(&files).map_err(|d| anyhow::anyhow!("{d:?}"))?);
    let clock = Arc::new(FixedClock::new(start));
    let runtime =
        Runtime::start(store.clone(), clock.clone(), ws.clone(), cairn_runtime::definitions_hash(&files)).await?;
    let mut config = RunnerConfig::new("bench");
    config.batch = 500;
    let runner = Runner::new(store.clone(), runtime.clone(), clock.clone(), config).await?;

    // (a) Enrollment, then sends: the trigger phases alone first, then a whole pass, which
    // finds nothing new to enroll and runs every due step.
    eprintln!("enrolling {} contacts in {PROGRAMS} programs…", args.contacts);
    let t = Instant::now();
    let enrolled = runner.enroll_only().await?.enrolled;
    let enroll_secs = t.elapsed().as_secs_f64();
    eprintln!("sending…");
    let t = Instant::now();
    let report = runner.run_once().await?;
    let send_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(report.enrolled == 0, "the second pass enrolled {} more", report.enrolled);
    let outbox = store.outbox(1).await?;
    anyhow::ensure!(!outbox.is_empty(), "nothing reached the outbox");
    let sent = report.sent;
    let total = enroll_secs + send_secs;
    let mut rows = vec![
        Row {
            what: "cairn: enrollment (audience, re-entry, holdout, first step scheduled)".into(),
            count: enrolled,
            seconds: enroll_secs,
            per_s: enrolled as f64 / enroll_secs.max(1e-9),
            note: format!("{} contacts × {PROGRAMS} programs, SQLite, one transaction per 1,000", args.contacts),
        },
        Row {
            what: "cairn: sends to the outbox (claim, guard rails, render, signed links, ledger + outbox + event)"
                .into(),
            count: sent,
            seconds: send_secs,
            per_s: sent as f64 / send_secs,
            note: format!("the next pass; batches of 500, each written while the next runs; {total:.1} s in all"),
        },
    ];
    if args.pg != "none" {
        match pg_peer(&args.pg, sent).await {
            Ok(secs) => rows.push(Row {
                what: "peer: PostgreSQL INSERT … SELECT of the same ledger + outbox rows".into(),
                count: sent,
                seconds: secs,
                per_s: sent as f64 / secs.max(1e-9),
                note: "no rules, no rendering: the floor of writing those rows".into(),
            }),
            Err(e) => eprintln!("peer skipped: {e:#}"),
        }
    }

    // (b) Latency from /v1/track to the outbox, through a real server.
    let mut latency = None;
    if args.triggers > 0 {
        latency = Some(trigger_latency(&store, ws.clone(), &files, args.triggers.min(args.contacts)).await?);
    }
    Ok(Measured { rows, latency })
}

/// The accounts (all with `launch_date` = `day`) and their contacts.
async fn seed(store: &Store, accounts: usize, contacts: usize, day: jiff::civil::Date) -> Result<()> {
    let mut csv = vec!["external_id,name,launch_date,product_id".to_string()];
    for a in 0..accounts {
        csv.push(format!("A{a},Company {a},{day},acct{a}"));
    }
    upsert(store, ImportKind::Accounts, &csv).await?;
    let mut csv = vec!["external_id,account_external_id,email,name,product_id".to_string()];
    for c in 0..contacts {
        csv.push(format!("C{c},A{},person{c}@company{}.example,Person {c},user{c}", c % accounts, c % accounts));
    }
    upsert(store, ImportKind::Contacts, &csv).await
}

async fn upsert(store: &Store, kind: ImportKind, lines: &[String]) -> Result<()> {
    let header = Header::parse(kind, &lines[0].split(',').collect::<Vec<_>>()).map_err(|e| anyhow::anyhow!("{e}"))?;
    for chunk in lines[1..].chunks(10_000) {
        match kind {
            ImportKind::Accounts => {
                let rows: Vec<_> = chunk
                    .iter()
                    .zip(2..)
                    .map(|(l, n)| parse_account(&header, n, &l.split(',').collect::<Vec<_>>()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                store.upsert_accounts(Source::Crm, &rows).await?;
            }
            _ => {
                let rows: Vec<_> = chunk
                    .iter()
                    .zip(2..)
                    .map(|(l, n)| parse_contact(&header, n, &l.split(',').collect::<Vec<_>>()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                store.upsert_contacts(Source::Crm, &rows).await?;
            }
        }
    }
    Ok(())
}

/// The peer: the same number of ledger and outbox rows written by PostgreSQL itself.
async fn pg_peer(url: &str, rows: u64) -> Result<f64> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.context("connecting to PostgreSQL")?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS bench_ledger, bench_outbox;
         CREATE TABLE bench_ledger (enrollment_id BIGINT, step_id TEXT, channel TEXT, outcome TEXT, message_id TEXT, contact_id BIGINT, detail TEXT, at BIGINT, PRIMARY KEY (enrollment_id, step_id));
         CREATE TABLE bench_outbox (id BIGSERIAL PRIMARY KEY, message_id TEXT UNIQUE, enrollment_id BIGINT, step_id TEXT, to_address TEXT, subject TEXT, html TEXT, text TEXT, headers TEXT, created_at BIGINT);",
    )
    .execute(&mut conn)
    .await?;
    let t = Instant::now();
    let n = rows as i64;
    sqlx::query(
        "INSERT INTO bench_ledger SELECT g, 'mail', 'email', 'sent', '<' || md5(g::text) || '@cairn.localhost>', g, '{\"contact_id\":' || g || '}', 1772445600000 FROM generate_series(1, $1) g",
    )
    .bind(n)
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO bench_outbox (message_id, enrollment_id, step_id, to_address, subject, html, text, headers, created_at)
         SELECT '<' || md5(g::text) || '@cairn.localhost>', g, 'mail', 'person' || g || '@company.example', 'Company news for Person ' || g,
                repeat('<p>html</p>', 40), repeat('text ', 30), '{}', 1772445600000 FROM generate_series(1, $1) g",
    )
    .bind(n)
    .execute(&mut conn)
    .await?;
    let secs = t.elapsed().as_secs_f64();
    sqlx::raw_sql("DROP TABLE bench_ledger, bench_outbox").execute(&mut conn).await?;
    Ok(secs)
}

/// Posts `n` `asked_for_help` events one at a time and times each until its message is
/// in the outbox. (count, p50 ms, p99 ms, max ms).
async fn trigger_latency(
    store: &Store,
    ws: Arc<cairn_workspace::Workspace>,
    files: &[SourceFile],
    n: usize,
) -> Result<(usize, f64, f64, f64)> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let key = crate::keys::bench_write_key(store, clock.now()).await?;
    // The server, engine and program runner as `cairn serve` wires them.
    let mut config =
        AppConfig::new("127.0.0.1:0", Some(Definitions::Loaded(ws, cairn_runtime::definitions_hash(files))));
    config.delivery.node = Some("bench-live".into());
    config.delivery.step_batch = 500;
    let app = App::build(store.clone(), clock.clone(), config).await?;
    let addr = app.addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    // The runner's first pass moves its event cursor to the end of the log, past the
    // sends' own events (history does not trigger): wait for it before the first trigger.
    let end = store.last_seq().await?;
    let waiting = Instant::now();
    while store.setting("runner.events").await?.and_then(|v| v.parse::<i64>().ok()).is_none_or(|c| c < end) {
        anyhow::ensure!(waiting.elapsed() < Duration::from_secs(60), "the program runner did not catch up within 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "the runner caught up with the log ({end} events) {:.1} s after the server started",
        waiting.elapsed().as_secs_f64()
    );
    let mut conn = Connection::new(&addr.to_string());
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let body = serde_json::json!({"userId": format!("user{i}"), "event": "asked_for_help", "messageId": format!("help-{i}")}).to_string();
        let t = Instant::now();
        let r = conn.post_json("/v1/track", Some(&key), &body).await?;
        anyhow::ensure!(r.status == 200, "track answered {}: {}", r.status, r.body);
        loop {
            let e = store
                .last_enrollment("on_signal", cairn_store::SubjectKind::Contact, contact_of(store, i).await?)
                .await?;
            if let Some(e) = e
                && store.ledger_entry(e.id, "mail").await?.is_some()
            {
                break;
            }
            anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "trigger {i} did not reach the outbox within 30 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = stop.send(());
    server.await??;
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    Ok((n, pick(0.5), pick(0.99), *times.last().unwrap_or(&0.0)))
}

async fn contact_of(store: &Store, i: usize) -> Result<i64> {
    store.resolve_contact(&format!("user{i}")).await?.with_context(|| format!("no contact user{i}"))
}
