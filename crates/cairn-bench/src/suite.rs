//! `cairn-bench suite`: the whole suite on workload W1 (DESIGN §14) in one run, one table.
//!
//! The workload is generated first, as `cairn demo --scale` writes it (timed: the
//! generator's rate is a figure too). Then each benchmark of this crate runs on it, each
//! beside its peer measured in the same run:
//!
//! - **ingest** (`ingest`): `cairn import events` of W1's `events.ndjson` (its first
//!   `--ingest-events`) into SQLite and PostgreSQL, beside PostgreSQL `COPY` of the same rows;
//! - **backfill and incremental** (`engine`): W1's events replayed through the engine in
//!   time order with the example workspace, beside the same segments and health as SQL in
//!   DuckDB (at the end instant, and at the end of every day) and PostgreSQL (at the end);
//!   the answers are compared;
//! - **program sends** (`programs`): as many contacts as W1 has, each enrolled in five
//!   programs and sent an email to the outbox, beside PostgreSQL writing the same ledger
//!   and outbox rows;
//! - **reports** (`reports`): W1's subscription ledger through cairn's revenue reports for
//!   every month it covers, beside the same figures as DuckDB SQL, compared figure by figure;
//! - **pages** (`pages`): the ingest rows' events loaded with the CRM files into a store
//!   served as `cairn serve` serves it, every page timed signed in (p95 of 20 visits),
//!   the accounts list beside the same page as PostgreSQL SQL;
//!
//! The ratio is cairn's time over the peer's for the same work (below 1: cairn faster).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use cairn::workload::{ScaleArg, write_w1};
use cairn_sim::w1::{W1, W1Config};
use clap::Args;
use jiff::ToSpan;

use crate::engine::EngineArgs;
use crate::figures::Row;
use crate::ingest::IngestArgs;
use crate::pages::{PagesArgs, PagesOutcome};
use crate::programs::ProgramsArgs;
use crate::reports::{GivenLedger, ReportsArgs};

/// Options of `cairn-bench suite`.
#[derive(Args, Debug, Clone)]
pub struct SuiteArgs {
    /// The workload: w1 (10,000 accounts, 500,000 contacts, 50 million events over 180
    /// days), m (a tenth), s (a hundredth), xs (a thousandth)
    #[arg(long, value_enum, default_value = "w1")]
    pub scale: ScaleArg,
    /// The workload's seed
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// PostgreSQL for the import, the COPY peer and the SQL peers ("none" to leave them out)
    #[arg(long, env = "CAIRN_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg: String,
    /// Leave the DuckDB peers out
    #[arg(long)]
    pub no_duckdb: bool,
    /// Events of the workload imported by the ingest rows: its first N lines (0: all of
    /// them; an import of all 50 million of W1 writes about 25 GB of databases)
    #[arg(long, default_value_t = 5_000_000)]
    pub ingest_events: u64,
    /// Contacts enrolled by the program rows (default: as many as the workload has)
    #[arg(long)]
    pub program_contacts: Option<usize>,
    /// Triggers posted over HTTP for the trigger-to-outbox latency (0 leaves it out)
    #[arg(long, default_value_t = 200)]
    pub triggers: usize,
    /// Folder for the workload and the benchmarks' files (default: a temporary folder,
    /// removed at the end)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the workload's files (by default each is removed once no longer needed)
    #[arg(long)]
    pub keep: bool,
    /// Print the table as JSON
    #[arg(long)]
    pub json: bool,
}

/// One row of the suite's table.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct SuiteRow {
    pub(crate) area: &'static str,
    pub(crate) cairn: String,
    pub(crate) cairn_secs: Option<f64>,
    pub(crate) rate: String,
    pub(crate) peer: String,
    pub(crate) peer_secs: Option<f64>,
    /// cairn's time over the peer's.
    pub(crate) ratio: Option<f64>,
    pub(crate) note: String,
}

impl SuiteRow {
    fn new(area: &'static str, cairn: &str, cairn_secs: Option<f64>, rate: String) -> SuiteRow {
        SuiteRow {
            area,
            cairn: cairn.into(),
            cairn_secs,
            rate,
            peer: String::new(),
            peer_secs: None,
            ratio: None,
            note: String::new(),
        }
    }

    fn peer(mut self, peer: &str, secs: f64) -> SuiteRow {
        self.peer = peer.into();
        self.peer_secs = Some(secs);
        self.ratio = self.cairn_secs.map(|c| c / secs.max(1e-9));
        self
    }

    fn note(mut self, note: impl Into<String>) -> SuiteRow {
        self.note = note.into();
        self
    }
}

/// What the suite measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct SuiteOutcome {
    pub(crate) workload: String,
    pub(crate) rows: Vec<SuiteRow>,
    /// How the peers' answers compare with cairn's, a line each.
    pub(crate) agreement: Vec<String>,
    /// Every compared answer agrees.
    pub(crate) agree: bool,
}

fn per_s(n: u64, secs: f64) -> String {
    format!("{:.0}/s", n as f64 / secs.max(1e-9))
}

fn find<'a>(rows: &'a [Row], what: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.what.starts_with(what))
}

/// Runs the suite and prints its table.
pub async fn run(args: SuiteArgs) -> Result<()> {
    let o = measure(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&o)?);
    } else {
        println!("benchmark suite on {}", o.workload);
        print_table(&o.rows);
        println!();
        for a in &o.agreement {
            println!("agreement: {a}");
        }
    }
    anyhow::ensure!(o.agree, "a peer's answer differs from cairn's (see the agreement lines)");
    Ok(())
}

/// The rows as a Markdown table.
pub(crate) fn print_table(rows: &[SuiteRow]) {
    println!("| area | cairn | seconds | rate | peer | seconds | cairn ÷ peer | note |");
    println!("|---|---|---:|---:|---|---:|---:|---|");
    for r in rows {
        println!("{}", row_line(r));
    }
}

/// One row as a line of the Markdown table.
fn row_line(r: &SuiteRow) -> String {
    let secs =
        |s: Option<f64>| s.map_or(String::new(), |s| if s < 10.0 { format!("{s:.3}") } else { format!("{s:.1}") });
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        r.area,
        r.cairn,
        secs(r.cairn_secs),
        r.rate,
        r.peer,
        secs(r.peer_secs),
        r.ratio.map_or(String::new(), |x| format!("{x:.2}×")),
        r.note
    )
}

/// The rows measured so far, each also written to stderr when it is measured, so that a
/// run that fails late (a W1 run takes half an hour) keeps what it measured.
struct Rows(Vec<SuiteRow>);

impl Rows {
    fn push(&mut self, r: SuiteRow) {
        eprintln!("suite: measured {}", row_line(&r));
        self.0.push(r);
    }

    fn extend(&mut self, rows: impl IntoIterator<Item = SuiteRow>) {
        for r in rows {
            self.push(r);
        }
    }
}

/// Generates the workload and runs every benchmark on it.
pub(crate) async fn measure(args: &SuiteArgs) -> Result<SuiteOutcome> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let w1_dir = dir.join("w1");
    let scale = args.scale.scale();
    let mut rows = Rows(Vec::new());
    let mut agreement = Vec::new();
    let mut agree = true;

    // The workload, as `cairn demo --scale` writes it.
    eprintln!(
        "suite: generating {} accounts, {} contacts, ~{} events over {} days in {}…",
        scale.accounts,
        scale.contacts,
        scale.events,
        scale.days,
        w1_dir.display()
    );
    let t = Instant::now();
    let w1 = Arc::new(W1::new(W1Config::new(scale, args.seed)));
    let drawn = t.elapsed().as_secs_f64();
    let written = write_w1(&w1, &w1_dir, true)?;
    let workload = written.describe(args.scale, args.seed);
    rows.push(
        SuiteRow::new(
            "generate",
            "cairn demo --scale: events.ndjson + events.csv",
            Some(written.events_secs),
            per_s(written.events, written.events_secs),
        )
        .note(format!(
            "{} events, {:.0} MB NDJSON + {:.0} MB CSV, {} threads; customers, people and ledger {:.1} s before",
            written.events,
            written.ndjson_bytes as f64 / 1e6,
            written.csv_bytes as f64 / 1e6,
            written.threads,
            drawn + written.setup_secs
        )),
    );
    if !args.keep {
        // The events CSV is for loading by hand; the peers below load their own files.
        let _ = std::fs::remove_file(w1_dir.join("events.csv"));
    }

    // Ingest: W1's NDJSON (its first --ingest-events) through `cairn import`, beside COPY.
    let ndjson = w1_dir.join("events.ndjson");
    let take = if args.ingest_events == 0 { written.events } else { args.ingest_events.min(written.events) };
    let ingest_file = if take < written.events {
        let prefix = dir.join("ingest.ndjson");
        head(&ndjson, &prefix, take)?;
        prefix
    } else {
        ndjson.clone()
    };
    let bytes = std::fs::metadata(&ingest_file)?.len();
    let ingest_args = IngestArgs {
        events: take,
        accounts: written.accounts,
        pg: args.pg.clone(),
        http_events: 0,
        http_clients: 1,
        batch_size: 1,
        dir: Some(dir.join("ingest")),
        random_ids: false,
        json: false,
    };
    std::fs::create_dir_all(dir.join("ingest"))?;
    let mut ingest_rows = Vec::new();
    crate::ingest::bulk_import(&ingest_args, &dir.join("ingest"), &ingest_file, bytes, &mut ingest_rows).await?;
    let _ = std::fs::remove_dir_all(dir.join("ingest"));

    // Pages: the same events served by `cairn serve`'s app, every page timed signed in.
    let pages_args = PagesArgs {
        scale: args.scale,
        seed: args.seed,
        days: None,
        runs: 20,
        accounts: 5,
        pg: args.pg.clone(),
        dir: None,
        json: false,
    };
    let pages = crate::pages::measure(&pages_args, &w1, &w1_dir, &ingest_file, String::new()).await?;
    crate::ingest::fresh_sqlite(&w1_dir, "pages.db");
    let pages_rows = page_rows(&pages, take);
    if ingest_file != ndjson {
        let _ = std::fs::remove_file(&ingest_file);
    }
    if !args.keep {
        let _ = std::fs::remove_file(&ndjson);
    }
    let part = if take < written.events {
        format!("the first {take} of the workload's events")
    } else {
        "all the workload's events".into()
    };
    let copy = find(&ingest_rows, "peer: PostgreSQL COPY");
    if let Some(r) = find(&ingest_rows, "import NDJSON → cairn SQLite") {
        let row = SuiteRow::new("ingest", "cairn import events → SQLite", Some(r.seconds), per_s(r.events, r.seconds));
        let row = match copy {
            Some(c) => row.peer("PostgreSQL COPY", c.seconds),
            None => row,
        };
        rows.push(row.note(format!("{part} ({:.0} MB of NDJSON); {}", bytes as f64 / 1e6, r.note)));
    }
    if let Some(r) = find(&ingest_rows, "import NDJSON → cairn PostgreSQL") {
        let row =
            SuiteRow::new("ingest", "cairn import events → PostgreSQL", Some(r.seconds), per_s(r.events, r.seconds));
        let row = match copy {
            Some(c) => row.peer("PostgreSQL COPY", c.seconds),
            None => row,
        };
        rows.push(
            row.note("COPY: the same rows, pre-converted to COPY text (not timed), into a table with the same indexes"),
        );
    }

    // Backfill and incremental: the engine over W1's events, beside the SQL peers.
    let (ws, _) = cairn::demo::example_workspace()?;
    let ws = Arc::new(ws);
    let mut engine_args = EngineArgs {
        accounts: 0,
        contacts: 0,
        events: 0,
        days: 0,
        pg: args.pg.clone(),
        duckdb: !args.no_duckdb,
        no_duckdb: args.no_duckdb,
        no_history: false,
        pg_history: false,
        dir: Some(dir.join("engine")),
        json: false,
        shards: None,
    };
    eprintln!("suite: counting the workload's events by the workspace's days…");
    let w = crate::engine::w1_workload(w1.clone(), &ws, &mut engine_args)?;
    let m = crate::engine::measure(&engine_args, ws.clone(), &w).await?;
    drop(w);
    let _ = std::fs::remove_dir_all(dir.join("engine"));
    let backfill = m.rows.first();
    let incremental = m.rows.get(1);
    let events = engine_args.events;
    if let Some(b) = backfill {
        let base = SuiteRow::new(
            "backfill",
            "engine: replay of every event in time order",
            Some(b.seconds),
            per_s(events, b.seconds),
        );
        let mut any = false;
        for peer in ["DuckDB", "PostgreSQL"] {
            let what = format!("peer: {peer} SQL, segments + health at the end");
            if let Some(p) = m.rows.iter().find(|r| r.what == what) {
                any = true;
                rows.push(
                    base.clone()
                        .peer(&format!("{peer} SQL, segments + health at the end instant"), p.seconds)
                        .note(format!("{events} events; cairn: every definition at every event's instant, {}", b.note)),
                );
            }
        }
        if !any {
            rows.push(base.note(b.note.clone()));
        }
    }
    if let Some(i) = incremental {
        let row = SuiteRow::new(
            "incremental",
            "engine: every event applied, all state current",
            Some(i.seconds),
            per_s(events, i.seconds),
        );
        let row = match find(&m.rows, "peer: DuckDB SQL, segments + health at the end of each day") {
            Some(p) => row.peer("DuckDB SQL, the same state at the end of every day", p.seconds),
            None => row,
        };
        rows.push(row.note(i.note.clone()));
    }
    for a in &m.agreements {
        agreement.push(format!("engine, {}", a.summary()));
    }
    for a in &m.history_agreements {
        agreement.push(format!("engine, {}", a.summary()));
    }
    agree &= m.agree();

    // Program sends: as many contacts as the workload has, five programs each.
    let programs_args = ProgramsArgs {
        contacts: args.program_contacts.unwrap_or(written.contacts),
        accounts: written.accounts,
        triggers: args.triggers.min(args.program_contacts.unwrap_or(written.contacts)),
        pg: args.pg.clone(),
        json: false,
    };
    let p = crate::programs::measure(&programs_args).await?;
    let peer = p.rows.iter().find(|r| r.what.starts_with("peer:"));
    if let Some(e) = p.rows.iter().find(|r| r.what.starts_with("cairn: enrollment")) {
        rows.push(
            SuiteRow::new(
                "programs",
                "enrollment (audience, holdout, first step)",
                Some(e.seconds),
                format!("{:.0}/s", e.per_s),
            )
            .note(format!("{} enrollments: {}", e.count, e.note)),
        );
    }
    if let Some(s) = p.rows.iter().find(|r| r.what.starts_with("cairn: sends")) {
        let row = SuiteRow::new(
            "programs",
            "sends to the outbox (guard rails, render, ledger)",
            Some(s.seconds),
            format!("{:.0}/s", s.per_s),
        );
        let row = match peer {
            Some(q) => row.peer("PostgreSQL INSERT … SELECT of the same rows", q.seconds),
            None => row,
        };
        rows.push(row.note(format!(
            "{} sends; the program bench's own contacts ({} over {} accounts, W1's counts), not W1's people",
            s.count, programs_args.contacts, programs_args.accounts
        )));
    }
    if let Some((n, p50, p99, _)) = p.latency {
        rows.push(
            SuiteRow::new("programs", "trigger → outbox over HTTP", None, format!("p99 {p99:.1} ms"))
                .note(format!("{n} triggers one at a time, p50 {p50:.1} ms")),
        );
    }

    // Reports: W1's ledger, every whole month it covers.
    let reports_dir = dir.join("reports");
    let given = ledger_files(&w1, &reports_dir)?;
    let months = format!("{} to {}", given.first, given.last);
    let lines = given.lines;
    let reports_args = ReportsArgs {
        accounts: written.accounts as u32,
        years: 0,
        seed: args.seed,
        runs: 3,
        no_per_request: true,
        no_duckdb: args.no_duckdb,
        dir: Some(reports_dir.clone()),
        ledger: Some(given),
    };
    let r = crate::reports::measure(&reports_args).await?;
    let _ = std::fs::remove_dir_all(&reports_dir);
    let duck = r.duck.as_ref().ok().map(|d| crate::reports::best(&d.query_secs));
    for (what, secs) in [
        ("revenue KPIs, renewals, movements, cohorts: compute", r.compute_secs),
        ("the same, reading the ledger from SQLite first", r.read_compute_secs),
    ] {
        let row = SuiteRow::new("reports", what, Some(secs), String::new());
        let row = match duck {
            Some(d) => row.peer("DuckDB SQL of the same figures", d),
            None => row,
        };
        rows.push(row.note(format!(
            "{} months ({months}), {lines} subscription lines, {} figures; fastest of 3",
            r.months, r.figures
        )));
    }
    match &r.duck {
        Ok(_) => {
            agreement.push(format!(
                "reports, {} DuckDB: {} of {} figures differ",
                if r.differences.is_empty() { "MATCH" } else { "MISMATCH" },
                r.differences.len(),
                r.figures
            ));
            agree &= r.differences.is_empty();
        }
        Err(why) => agreement.push(format!("reports: DuckDB peer left out: {why}")),
    }

    rows.extend(pages_rows);
    if !args.keep {
        let _ = std::fs::remove_dir_all(&w1_dir);
    }
    Ok(SuiteOutcome { workload, rows: rows.0, agreement, agree })
}

/// A row per page: its p95 server time over loopback (and the accounts list's SQL peer).
fn page_rows(o: &PagesOutcome, events: u64) -> Vec<SuiteRow> {
    o.pages
        .iter()
        .map(|p| {
            let row = SuiteRow::new(
                "pages",
                &format!("{}: p95 of {} visits", p.page, p.runs),
                Some(p.p95_ms / 1e3),
                format!("p50 {:.1} ms", p.p50_ms),
            )
            .note(format!(
                "`{}`, first visit {:.1} ms, max {:.1} ms; the store holds the ingest rows' {events} events",
                p.path, p.first_ms, p.max_ms
            ));
            match o.peer.iter().find(|q| q.page == p.page) {
                Some(q) => row.peer("PostgreSQL SQL of the same list page (rows, count, owners)", q.p95_ms / 1e3),
                None => row,
            }
        })
        .collect()
}

/// Copies the first `n` lines of `from` to `to`.
fn head(from: &Path, to: &Path, n: u64) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(from)?);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(to)?);
    let mut line = Vec::new();
    for _ in 0..n {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(())
}

/// W1's ledger as the reports benchmark reads it, and the whole months it covers: from
/// the month of the first line's start to the month before the workload's end.
fn ledger_files(w1: &W1, dir: &Path) -> Result<GivenLedger> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let accounts_csv = dir.join("accounts.csv");
    let mut out = BufWriter::new(std::fs::File::create(&accounts_csv)?);
    writeln!(out, "external_id,name")?;
    for a in &w1.accounts {
        writeln!(out, "{},{}", a.external_id, a.name)?;
    }
    out.flush()?;
    let subscriptions_csv = dir.join("subscriptions.csv");
    let mut out = BufWriter::new(std::fs::File::create(&subscriptions_csv)?);
    writeln!(out, "id,account_id,start_date,end_date,arr")?;
    for l in &w1.lines {
        let account = w1.accounts.get(l.account).map_or("", |a| a.external_id.as_str());
        writeln!(out, "{},{account},{},{},{}.00", l.id, l.start, l.end, l.arr)?;
    }
    out.flush()?;
    let earliest = w1.lines.iter().map(|l| l.start).min().unwrap_or(w1.first_day());
    let first = earliest.first_of_month();
    let end = w1.config().end;
    let last = end.first_of_month().checked_sub(1.day()).unwrap_or(end);
    anyhow::ensure!(first < last, "the ledger covers no whole month");
    Ok(GivenLedger { accounts_csv, subscriptions_csv, lines: w1.lines.len(), first, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole suite at a thousandth of W1, without PostgreSQL: every area has its row,
    /// and every peer that ran agrees with cairn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_suite_runs_end_to_end_at_a_thousandth_of_w1() {
        let args = SuiteArgs {
            scale: ScaleArg::Xs,
            seed: 3,
            pg: "none".into(),
            no_duckdb: false,
            ingest_events: 20_000,
            program_contacts: Some(200),
            triggers: 0,
            dir: None,
            keep: false,
            json: false,
        };
        let o = measure(&args).await.unwrap();
        print_table(&o.rows);
        for area in ["generate", "ingest", "backfill", "incremental", "programs", "reports", "pages"] {
            assert!(o.rows.iter().any(|r| r.area == area), "no {area} row");
        }
        assert!(o.agree, "{:#?}", o.agreement);
        assert!(o.workload.contains("10 accounts, 500 contacts"), "{}", o.workload);
    }
}
