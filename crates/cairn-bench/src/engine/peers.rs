//! The SQL peers: DuckDB (through `python3`) and PostgreSQL load the workload's CSV and
//! run the same computation as SQL (`sql.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use jiff::Timestamp;
use serde_json::json;

use super::answer::{Answer, History};
use super::sql::PeerSql;

/// A peer's run: load time (not counted), query time, and its answer; the same for the
/// history when it was asked for.
pub(super) struct PeerRun {
    pub(super) name: String,
    pub(super) load_secs: f64,
    pub(super) query_secs: f64,
    pub(super) note: String,
    pub(super) answer: Answer,
    pub(super) history: Option<(f64, History)>,
}

pub(super) const DUCKDB_SCRIPT: &str = r#"
import json, sys, time
try:
    import duckdb
except ImportError:
    print(json.dumps({"missing": True}))
    sys.exit(0)
spec = json.load(sys.stdin)
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
con.execute("CREATE TABLE events AS SELECT * FROM read_csv(?, header = true, columns = {'ts': 'TIMESTAMPTZ', 'account_id': 'INTEGER', 'contact_id': 'INTEGER', 'event': 'VARCHAR'})", [spec["events"]])
con.execute("CREATE TABLE accounts AS SELECT * FROM read_csv(?, header = true, columns = {'account_id': 'INTEGER', 'plan': 'VARCHAR', 'seats': 'INTEGER', 'arr': 'DOUBLE', 'start_date': 'DATE', 'renewal_date': 'DATE', 'region': 'VARCHAR', 'csm_pool': 'VARCHAR', 'nps_last': 'INTEGER'})", [spec["accounts"]])
con.execute("CREATE TABLE contacts AS SELECT * FROM read_csv(?, header = true, columns = {'contact_id': 'INTEGER', 'account_id': 'INTEGER', 'role': 'VARCHAR'})", [spec["contacts"]])
load = time.perf_counter() - t
jobs = []
for job in spec["jobs"]:
    t = time.perf_counter()
    for s in job["setup"]:
        con.execute(s)
    segments = con.execute(job["segments"]).fetchall()
    health = con.execute(job["health"]).fetchall()
    jobs.append({"query_s": time.perf_counter() - t, "segments": segments, "health": health})
threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
print(json.dumps({"version": duckdb.__version__, "threads": threads, "load_s": load, "jobs": jobs}))
"#;

/// Reads a job's rows as the end answer.
pub(super) fn end_answer(
    segments: impl Iterator<Item = (String, i64)>,
    health: impl Iterator<Item = (u64, Option<f64>)>,
) -> Answer {
    Answer { segments: segments.map(|(id, n)| (id, n.max(0) as u64)).collect(), health: health.collect() }
}

pub(super) fn run_duckdb(dir: &Path, end: &PeerSql, history: Option<&PeerSql>) -> Result<Option<PeerRun>> {
    let job = |sql: &PeerSql| json!({"setup": sql.setup, "segments": sql.segments, "health": sql.health});
    let mut jobs = vec![job(end)];
    jobs.extend(history.map(job));
    let spec = json!({
        "events": dir.join("events.csv"),
        "accounts": dir.join("accounts.csv"),
        "contacts": dir.join("contacts.csv"),
        "jobs": jobs,
    });
    let mut child = match std::process::Command::new("python3")
        .arg("-c")
        .arg(DUCKDB_SCRIPT)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("DuckDB peer left out: python3 could not be started ({e})");
            return Ok(None);
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(spec.to_string().as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        eprintln!("DuckDB peer left out: it failed ({}); its error is above", output.status);
        return Ok(None);
    }
    // The answer is the last line (anything DuckDB itself prints comes before it).
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let v: serde_json::Value = match serde_json::from_str(last) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "DuckDB peer left out: its answer could not be read ({e}): {}",
                last.chars().take(200).collect::<String>()
            );
            return Ok(None);
        }
    };
    if v.get("missing").is_some() {
        eprintln!("DuckDB peer left out: the Python package is missing; install it with `pip install duckdb`");
        return Ok(None);
    }
    let rows = |job: &serde_json::Value, key: &str| -> Vec<serde_json::Value> {
        job[key].as_array().cloned().unwrap_or_default()
    };
    let end_job = &v["jobs"][0];
    let answer = end_answer(
        rows(end_job, "segments").iter().filter_map(|s| Some((s[0].as_str()?.to_string(), s[1].as_i64()?))),
        rows(end_job, "health").iter().filter_map(|h| Some((h[0].as_u64()?, h[1].as_f64()))),
    );
    let history = history.and_then(|_| {
        let job = &v["jobs"][1];
        let segments = rows(job, "segments")
            .iter()
            .filter_map(|s| Some(((s[0].as_str()?.to_string(), s[1].as_i64()? as i32), s[2].as_i64()?)))
            .collect();
        let health = rows(job, "health")
            .iter()
            .filter_map(|h| Some(((h[0].as_i64()? as i32, h[1].as_u64()?), h[2].as_f64())))
            .collect();
        Some((job["query_s"].as_f64()?, History { segments, health, bands: BTreeMap::new() }))
    });
    Ok(Some(PeerRun {
        name: "DuckDB".into(),
        load_secs: v["load_s"].as_f64().unwrap_or(0.0),
        query_secs: end_job["query_s"].as_f64().unwrap_or(0.0),
        note: format!(
            "DuckDB {} (python3), {} threads",
            v["version"].as_str().unwrap_or("?"),
            v["threads"].as_i64().map_or("?".to_string(), |t| t.to_string())
        ),
        answer,
        history,
    }))
}

/// Runs a peer's setup statements in turn.
pub(super) async fn execute_all(c: &mut sqlx::PgConnection, statements: &[String]) -> Result<()> {
    for s in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s.clone())).execute(&mut *c).await?;
    }
    Ok(())
}

pub(super) async fn run_postgres(url: &str, dir: &Path, sql: &PeerSql, history: Option<&PeerSql>) -> Result<PeerRun> {
    use sqlx::{ConnectOptions as _, Row as _};
    // The peer's statements are slow by design: keep sqlx's slow-statement warnings quiet.
    let options =
        url.parse::<sqlx::postgres::PgConnectOptions>().context("reading the --pg URL")?.disable_statement_logging();
    let mut c =
        options.connect().await.context("connecting to the benchmark PostgreSQL (pass --pg none to leave it out)")?;
    let schema = format!("bench_engine_{}_{}", std::process::id(), Timestamp::now().as_millisecond() % 1_000_000);
    let result = async {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema};
             CREATE TABLE events (ts timestamptz NOT NULL, account_id integer NOT NULL, contact_id integer, event text NOT NULL);
             CREATE TABLE accounts (account_id integer PRIMARY KEY, plan text, seats integer, arr double precision,
               start_date date, renewal_date date, region text, csm_pool text, nps_last integer);
             CREATE TABLE contacts (contact_id integer PRIMARY KEY, account_id integer, role text);"
        )))
        .execute(&mut c)
        .await?;
        let t = Instant::now();
        for (table, file) in [("events", "events.csv"), ("accounts", "accounts.csv"), ("contacts", "contacts.csv")] {
            let mut copy =
                c.copy_in_raw(&format!("COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)")).await?;
            let f = tokio::fs::File::open(dir.join(file)).await?;
            copy.read_from(f).await?;
            copy.finish().await?;
        }
        sqlx::raw_sql("ANALYZE events; ANALYZE accounts; ANALYZE contacts").execute(&mut c).await?;
        let load_secs = t.elapsed().as_secs_f64();
        let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut c).await?;
        let workers: String =
            sqlx::query_scalar("SHOW max_parallel_workers_per_gather").fetch_one(&mut c).await?;
        let t = Instant::now();
        execute_all(&mut c, &sql.setup).await?;
        let mut segments = Vec::new();
        for r in sqlx::raw_sql(sqlx::AssertSqlSafe(sql.segments.clone())).fetch_all(&mut c).await? {
            segments.push((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?));
        }
        let mut health = Vec::new();
        for r in sqlx::raw_sql(sqlx::AssertSqlSafe(sql.health.clone())).fetch_all(&mut c).await? {
            health.push((r.try_get::<i32, _>(0)?.max(0) as u64, r.try_get::<Option<f64>, _>(1)?));
        }
        let answer = end_answer(segments.into_iter(), health.into_iter());
        let query_secs = t.elapsed().as_secs_f64();
        let history = match history {
            None => None,
            Some(h) => {
                let t = Instant::now();
                execute_all(&mut c, &h.setup).await?;
                let mut answer = History::default();
                for r in sqlx::raw_sql(sqlx::AssertSqlSafe(h.segments.clone())).fetch_all(&mut c).await? {
                    answer.segments.insert((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?);
                }
                for r in sqlx::raw_sql(sqlx::AssertSqlSafe(h.health.clone())).fetch_all(&mut c).await? {
                    answer.health.insert((r.try_get(0)?, r.try_get::<i32, _>(1)?.max(0) as u64), r.try_get(2)?);
                }
                Some((t.elapsed().as_secs_f64(), answer))
            }
        };
        Ok::<_, anyhow::Error>(PeerRun {
            name: "PostgreSQL".into(),
            load_secs,
            query_secs,
            note: format!("PostgreSQL {version}, max_parallel_workers_per_gather {workers}"),
            answer,
            history,
        })
    }
    .await;
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&mut c).await;
    result
}
