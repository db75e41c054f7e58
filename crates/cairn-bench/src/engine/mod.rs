//! `cairn-bench engine`: the engine's figures beside the same computation as SQL,
//! measured in the same run on the same data.
//!
//! A deterministic workload (accounts with plans, seats and start dates spread over more
//! than a year, contacts with roles, product events over `--days` days with a skew: a few
//! heavy accounts, page views dominating, rare events rare) is generated one day at a
//! time and fed in time order through the engine built with the example workspace —
//! every segment, milestone, stage and health score kept current after every event and
//! every day boundary. The same events are written once to CSV, which DuckDB (through
//! `python3`) and PostgreSQL load (not timed) and then evaluate as SQL (`sql.rs`) at the
//! end instant: the account and contact segments that SQL can express over events and
//! attributes, and the default health model with its no-data weight redistribution.
//! DuckDB (and PostgreSQL with `--pg-history`) also computes the same at the end of every
//! day, which is what the backfill holds by day; cairn's side of that is the member
//! counts added up from its segment transitions and the health read from its state at
//! each day's end. The results are compared with cairn's, and any mismatch is printed.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cairn_engine::days::date_of_day;
use clap::Args;

use crate::figures::{Row, row};
use cairn_workspace::Workspace;
use serde_json::json;

mod answer;
mod compare;
mod count_bar;
mod peers;
mod replay;
mod sql;
mod workload;

use compare::{Agreement, HistoryAgreement, compare, compare_history};
use peers::{run_duckdb, run_postgres};
use replay::run_cairn;
use sql::{LEFT_OUT, end_sql, history_sql, sql_segment_ids};
pub(crate) use workload::Workload;
#[cfg(test)]
use workload::end_date;
use workload::write_csv;

/// Options of `cairn-bench engine`.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Accounts
    #[arg(long, default_value_t = 10_000)]
    pub accounts: usize,
    /// Contacts, spread over the accounts (heavier accounts have more)
    #[arg(long, default_value_t = 500_000)]
    pub contacts: usize,
    /// Product events
    #[arg(long, default_value_t = 50_000_000)]
    pub events: u64,
    /// Days the events span (ending at the benchmark's fixed end instant)
    #[arg(long, default_value_t = 180)]
    pub days: u32,
    /// PostgreSQL for the SQL peer ("none" to leave it out)
    #[arg(long, env = "CAIRN_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg: String,
    /// Run the DuckDB peer through python3 (the default)
    #[arg(long, overrides_with = "no_duckdb")]
    pub duckdb: bool,
    /// Leave the DuckDB peer out
    #[arg(long, overrides_with = "duckdb")]
    pub no_duckdb: bool,
    /// Leave out DuckDB's second computation: segments and health at the end of every day,
    /// compared with cairn's day by day
    #[arg(long)]
    pub no_history: bool,
    /// Run that computation on PostgreSQL too (about 3 times as long as its end-instant
    /// query, measured at 1,000 accounts and 5 million events)
    #[arg(long)]
    pub pg_history: bool,
    /// Folder for the peers' CSV files (default: a temporary folder)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the results as JSON
    #[arg(long)]
    pub json: bool,
    /// Shards of the engine's state, each evaluated on its own thread (default: one per
    /// core, 1 to 8); the transitions are the same for any number
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub shards: Option<u8>,
}

/// What a run measured, for the table and the agreement lines.
pub(crate) struct Measured {
    pub(crate) rows: Vec<Row>,
    pub(crate) agreements: Vec<Agreement>,
    pub(crate) history_agreements: Vec<HistoryAgreement>,
    tally: replay::Tally,
    peak_rss_mb: Option<f64>,
    csv_bytes: u64,
    sql_ids: Vec<&'static str>,
}

impl Measured {
    /// Every peer's answer agrees with cairn's.
    pub(crate) fn agree(&self) -> bool {
        self.agreements.iter().all(Agreement::ok) && self.history_agreements.iter().all(HistoryAgreement::ok)
    }
}

/// Runs the engine benchmark and prints its table.
pub async fn run(args: EngineArgs) -> Result<()> {
    let (ws, _hash) = cairn::demo::example_workspace()?;
    let ws = Arc::new(ws);
    let w = Workload::new(&args, ws.time_zone().clone())?;
    let m = measure(&args, ws.clone(), &w).await?;
    print(&args, &ws, &m)
}

/// The engine's workload made of workload W1: `args`' sizes are set from it.
pub(crate) fn w1_workload(w1: Arc<cairn_sim::w1::W1>, ws: &Workspace, args: &mut EngineArgs) -> Result<Workload> {
    let w = Workload::from_w1(w1.clone(), ws.time_zone().clone())?;
    args.accounts = w1.accounts.len();
    args.contacts = w1.contacts.len();
    args.events = w.per_day.iter().sum();
    args.days = w.per_day.len() as u32;
    Ok(w)
}

/// Replays `w` through the engine, runs the peers on the same events and compares.
pub(crate) async fn measure(args: &EngineArgs, ws: Arc<Workspace>, w: &Workload) -> Result<Measured> {
    let today = w.end_date();
    let with_duckdb = !args.no_duckdb;
    let with_pg = args.pg != "none";
    if args.pg_history && !with_pg {
        bail!("--pg-history runs the history on PostgreSQL, but --pg is none: give --pg a URL or drop --pg-history");
    }
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let sql = end_sql(&ws, today)?;
    let sql_ids = sql_segment_ids();
    let bands = ws.health().context("the example workspace has no health model")?.bands;
    let last = w.per_day.len() as i32;
    let history = history_sql(&ws, date_of_day(w.first_day), last)?;

    // The peers' files, written before any clock starts.
    let mut csv_bytes = 0;
    if with_duckdb || with_pg {
        eprintln!("writing {} events for the peers to {}…", args.events, dir.display());
        csv_bytes = write_csv(w, &dir, args.events)?;
    }

    eprintln!(
        "cairn: {} accounts, {} contacts, {} events over {} days…",
        args.accounts, args.contacts, args.events, args.days
    );
    let cairn = run_cairn(w, ws.clone(), args.shards, args.events, &sql_ids)?;

    let mut peers = Vec::new();
    if with_duckdb {
        eprintln!("DuckDB peer…");
        if let Some(p) = run_duckdb(&dir, &sql, Some(&history).filter(|_| !args.no_history))? {
            peers.push(p);
        }
    }
    if with_pg {
        eprintln!("PostgreSQL peer…");
        peers.push(run_postgres(&args.pg, &dir, &sql, Some(&history).filter(|_| args.pg_history)).await?);
    }
    for f in ["events.csv", "accounts.csv", "contacts.csv"] {
        let _ = std::fs::remove_file(dir.join(f));
    }

    let replay = cairn.event_secs + cairn.tick_secs;
    let rss =
        cairn.peak_rss_mb.map_or("peak RSS unknown".to_string(), |m| format!("peak RSS {m:.0} MB (whole process)"));
    let mut rows = vec![
        row(
            "cairn: full backfill (replay in time order)",
            args.events,
            cairn.setup_secs + replay,
            format!(
                "upsert of {} accounts + {} contacts {:.1} s, then the replay; {} transitions; {rss}",
                args.accounts, args.contacts, cairn.setup_secs, cairn.tally.total
            ),
        ),
        row(
            "cairn: incremental, all state current",
            args.events,
            replay,
            format!(
                "events (apply_all, a day at a time) {:.1} s, {} day ticks {:.1} s; {} shard(s), a thread each",
                cairn.event_secs,
                w.per_day.len() + 1,
                cairn.tick_secs,
                cairn.shards
            ),
        ),
    ];
    for p in &peers {
        rows.push(row(
            &format!("peer: {} SQL, segments + health at the end", p.name),
            args.events,
            p.query_secs,
            format!("{}; loading the CSV {:.1} s not counted", p.note, p.load_secs),
        ));
    }
    for p in &peers {
        if let Some((secs, _)) = &p.history {
            rows.push(row(
                &format!("peer: {} SQL, segments + health at the end of each day", p.name),
                args.events,
                *secs,
                format!(
                    "{} days, from the same loaded tables; what cairn's backfill holds, by day (cairn's is by instant)",
                    last + 1
                ),
            ));
        }
    }
    let agreements: Vec<Agreement> = peers.iter().map(|p| compare(&cairn, p)).collect();
    let history_agreements: Vec<HistoryAgreement> = peers
        .iter()
        .filter_map(|p| Some(compare_history(&cairn.history, &p.name, &p.history.as_ref()?.1, &bands)))
        .collect();
    Ok(Measured {
        rows,
        agreements,
        history_agreements,
        tally: cairn.tally,
        peak_rss_mb: cairn.peak_rss_mb,
        csv_bytes,
        sql_ids,
    })
}

/// Prints a run's table and agreement lines (or JSON).
fn print(args: &EngineArgs, ws: &Workspace, m: &Measured) -> Result<()> {
    let Measured { rows, agreements, history_agreements, tally, peak_rss_mb, csv_bytes, sql_ids } = m;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "accounts": args.accounts, "contacts": args.contacts, "events": args.events, "days": args.days,
                "csv_bytes": csv_bytes, "peak_rss_mb": peak_rss_mb, "transitions": tally,
                "rows": rows, "agreement": agreements, "history_agreement": history_agreements,
                "sql_segments": sql_ids, "left_out": LEFT_OUT,
            }))?
        );
    } else {
        println!(
            "engine benchmark: {} accounts, {} contacts, {} events over {} days, example workspace ({} segments, {} milestones)",
            args.accounts,
            args.contacts,
            args.events,
            args.days,
            ws.segments().len(),
            ws.journey().map_or(0, |j| j.milestones().count())
        );
        crate::figures::print_table(rows);
        println!();
        println!("transitions: {} (digest {}) {:?}", tally.total, tally.digest, tally.by_kind);
        println!("compared: {} segments in SQL ({}); left out: {LEFT_OUT}", sql_ids.len(), sql_ids.join(", "));
        for a in agreements {
            println!(
                "agreement cairn vs {}: {} — {}/{} segment member counts match; health (default model, {} accounts): mean {:.4} vs {:.4}, {} accounts differ by more than 1e-6 (max {:.2e})",
                a.peer,
                if a.ok() { "MATCH" } else { "MISMATCH" },
                a.segments_matching,
                a.segments_compared,
                a.health_accounts,
                a.health_mean_cairn,
                a.health_mean_peer,
                a.health_accounts_differing,
                a.health_max_difference
            );
            for m in &a.mismatches {
                println!("  MISMATCH {m}");
            }
        }
        for a in history_agreements {
            println!(
                "agreement over the history, cairn vs {}: {} — {} segments × {} days, {} member counts differ; health (default model, {} account-days): {} differ by more than 1e-6 (max {:.2e}); bands from cairn's transitions against the SQL's scores: {} of {} differ",
                a.peer,
                if a.ok() { "MATCH" } else { "MISMATCH" },
                a.segments,
                a.days,
                a.segment_days_differing,
                a.health_points,
                a.health_differing,
                a.health_max_difference,
                a.bands_differing,
                a.bands_compared
            );
            for m in &a.mismatches {
                println!("  MISMATCH {m}");
            }
        }
    }
    if !m.agree() {
        eprintln!("warning: a peer's answer differs from cairn's (see the MISMATCH lines)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;

    fn args(accounts: usize, contacts: usize, events: u64) -> EngineArgs {
        EngineArgs {
            accounts,
            contacts,
            events,
            days: 30,
            pg: "none".into(),
            duckdb: false,
            no_duckdb: true,
            no_history: false,
            pg_history: false,
            dir: None,
            json: false,
            shards: None,
        }
    }

    #[test]
    fn the_workload_is_deterministic_in_time_order_and_adds_up() {
        let w = Workload::new(&args(50, 400, 20_000), TimeZone::UTC).unwrap();
        assert_eq!(w.roles.len(), 400);
        assert_eq!(w.accounts.iter().map(|a| u64::from(a.contacts)).sum::<u64>(), 400);
        assert_eq!(w.per_day.iter().sum::<u64>(), 20_000);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut total = 0;
        for k in 0..w.per_day.len() {
            w.day_events(k, &mut a);
            w.day_events(k, &mut b);
            assert!(a.windows(2).all(|p| p[0].ts <= p[1].ts));
            assert_eq!(
                a.iter().map(|e| (e.ts, e.contact)).collect::<Vec<_>>(),
                b.iter().map(|e| (e.ts, e.contact)).collect::<Vec<_>>()
            );
            total += a.len();
        }
        assert!(total > 0 && total <= 20_000);
    }

    /// The engine's history equals the same computation as SQL in PostgreSQL, day by
    /// day, over a small workload of 120 days: every compared segment's member count on
    /// every day (added up from the engine's transitions) and every default-model health
    /// score at each day's end (from its state), besides the answer at the end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_engines_history_agrees_with_sql_on_every_day() {
        let url = std::env::var("CAIRN_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        if url == "skip" {
            eprintln!("CAIRN_TEST_PG=skip: the history check against PostgreSQL not run");
            return;
        }
        let (ws, _) = cairn::demo::example_workspace().unwrap();
        let ws = Arc::new(ws);
        let a = EngineArgs { days: 120, ..args(60, 900, 60_000) };
        let w = Workload::new(&a, ws.time_zone().clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_csv(&w, dir.path(), a.events).unwrap();
        let ids = sql_segment_ids();
        let cairn = run_cairn(&w, ws.clone(), Some(2), a.events, &ids).unwrap();
        let end = end_sql(&ws, end_date()).unwrap();
        let last = w.per_day.len() as i32;
        let history = history_sql(&ws, date_of_day(w.first_day), last).unwrap();
        let pg = run_postgres(&url, dir.path(), &end, Some(&history)).await.unwrap();
        let at_end = compare(&cairn, &pg);
        assert!(at_end.ok(), "{at_end:?}");
        let bands = ws.health().unwrap().bands;
        let by_day = compare_history(&cairn.history, &pg.name, &pg.history.as_ref().unwrap().1, &bands);
        assert!(by_day.ok(), "{by_day:?}");
        assert_eq!((by_day.segments, by_day.days), (ids.len(), 121));
        assert!(by_day.health_points > 121 * 30 && by_day.bands_compared > 121 * 30, "{by_day:?}");
        // Not a still picture: most compared segments change size during the history.
        let moving = ids
            .iter()
            .filter(|id| {
                let sizes: std::collections::BTreeSet<i64> =
                    (0..=last).filter_map(|d| cairn.history.segments.get(&(id.to_string(), d)).copied()).collect();
                sizes.len() > 1
            })
            .count();
        assert!(moving >= 12, "only {moving} segments change size over the history");
    }

    #[test]
    fn too_few_contacts_is_an_error_not_a_panic() {
        assert!(Workload::new(&args(10, 5, 100), TimeZone::UTC).is_err());
    }

    #[test]
    fn the_sql_covers_every_measure_of_the_default_health_model() {
        let (ws, _) = cairn::demo::example_workspace().unwrap();
        let sql = end_sql(&ws, end_date()).unwrap();
        assert!(sql.health.contains("nps_last"));
        assert!(sql_segment_ids().len() >= 20);
        let history = history_sql(&ws, end_date(), 30).unwrap();
        assert!(history.health.contains("nps_last") && history.health.contains("FROM acc_h"));
    }
}
