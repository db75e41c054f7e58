//! `cairn-bench ingest`: ingestion figures beside a peer measured in the same run.
//!
//! (a) bulk import of an NDJSON file of Segment track calls into SQLite and into
//!     PostgreSQL, beside PostgreSQL `COPY` of the same rows into an equivalent table
//!     (same columns and indexes) — what a team would do by hand;
//! (b) `/v1/batch` over loopback with concurrent keep-alive clients: events/s and the
//!     p50/p99 latency of a request (which is answered only after its commit).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use cairn_core::FixedClock;
use cairn_core::tracking::{Envelope, parse_message};
use cairn_store::Store;
use clap::Args;

use crate::figures::{Row, row};
use jiff::Timestamp;
use serde_json::json;

use cairn::app::{App, AppConfig};
use cairn::demo::{Rng, event_line, event_line_random_id};
use cairn::loopback::Connection;

/// Options of `cairn-bench ingest`.
#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    /// Events in the bulk-import file (0 leaves the import benchmarks out)
    #[arg(long, default_value_t = 5_000_000)]
    pub events: u64,
    /// Accounts the events are spread over
    #[arg(long, default_value_t = 10_000)]
    pub accounts: usize,
    /// PostgreSQL for the PostgreSQL import and the COPY peer ("none" to leave them out)
    #[arg(long, env = "CAIRN_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg: String,
    /// Events sent over HTTP
    #[arg(long, default_value_t = 1_000_000)]
    pub http_events: u64,
    /// Concurrent HTTP clients
    #[arg(long, default_value_t = 16)]
    pub http_clients: usize,
    /// Events per /v1/batch request
    #[arg(long, default_value_t = 200)]
    pub batch_size: usize,
    /// Folder for the generated data and databases (default: a temporary folder)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Give events random 128-bit message ids (as Segment's UUIDs) instead of ids that
    /// grow with the stream
    #[arg(long)]
    pub random_ids: bool,
    /// Print the results as JSON
    #[arg(long)]
    pub json: bool,
}

/// The fixed end of the generated event stream, so every run generates the same data.
fn bench_end() -> Timestamp {
    Timestamp::from_second(1_790_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn generate_ndjson(path: &Path, events: u64, accounts: usize, random_ids: bool) -> Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng::new(42);
    let end = bench_end();
    for k in 0..events {
        let line = if random_ids {
            event_line_random_id(&mut rng, k, accounts, 180, end)
        } else {
            event_line(&mut rng, k, accounts, 180, end)
        };
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The same rows as COPY text, for the peer (prepared before the clock starts).
fn generate_copy_text(ndjson: &Path, out_path: &Path, received_at: Timestamp) -> Result<()> {
    let envelope = Envelope {
        received_at,
        batch_sent_at: None,
        batch_context: None,
        trust_timestamps: true,
        plausible: Default::default(),
    };
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(out_path)?);
    let mut buf = Vec::with_capacity(512);
    for line in BufReader::new(std::fs::File::open(ndjson)?).lines() {
        let line = line?;
        let m = parse_message(&line, None, &envelope, || cairn::import::line_message_id(&line))?;
        buf.clear();
        cairn_store::pg_copy_line(&mut buf, "import", &m);
        out.write_all(&buf)?;
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn unique_schema(tag: &str) -> String {
    format!("bench_{tag}_{}_{}", std::process::id(), Timestamp::now().as_millisecond() % 1_000_000)
}

pub(crate) fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

pub(crate) async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Connection as _;
    if let Ok(mut c) = sqlx::PgConnection::connect(url).await {
        let _ =
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&mut c).await;
    }
}

/// Runs the ingestion benchmark and prints its table.
pub async fn ingest(args: IngestArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    let mut bytes = 0;
    if args.events > 0 {
        let ndjson = dir.join("events.ndjson");
        eprintln!("generating {} events over {} accounts…", args.events, args.accounts);
        bytes = generate_ndjson(&ndjson, args.events, args.accounts, args.random_ids)?;
        bulk_import(&args, &dir, &ndjson, bytes, &mut rows).await?;
        let _ = std::fs::remove_file(&ndjson);
    }

    // (b) /v1/batch over loopback.
    let http_db = fresh_sqlite(&dir, "http.db");
    let (rate, p50, p99, events) = http_batch(&http_db, &args).await?;
    rows.push(row(
        "POST /v1/batch → cairn SQLite",
        events,
        events as f64 / rate,
        format!(
            "{} clients × {} events/request; latency p50 {p50:.1} ms, p99 {p99:.1} ms",
            args.http_clients, args.batch_size
        ),
    ));

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "events": args.events, "ndjson_bytes": bytes, "random_ids": args.random_ids, "rows": rows })
            )?
        );
    } else {
        println!(
            "ingest benchmark: {} events ({:.0} MB NDJSON) over {} accounts",
            args.events,
            bytes as f64 / 1e6,
            args.accounts
        );
        crate::figures::print_table(&rows);
    }
    Ok(())
}

/// The URL of a new, empty SQLite file in `dir`.
pub(crate) fn fresh_sqlite(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    format!("sqlite://{}", path.display())
}

/// (a) bulk import into SQLite and PostgreSQL, and PostgreSQL COPY as the peer.
pub(crate) async fn bulk_import(
    args: &IngestArgs,
    dir: &Path,
    ndjson: &Path,
    bytes: u64,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let received_at = bench_end();
    let store = Store::open(&fresh_sqlite(dir, "bench.db")).await?;
    eprintln!("importing into SQLite…");
    let t = Instant::now();
    let s = cairn::import::import_events(Some(&store), ndjson, received_at, Default::default()).await?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(s.imported == args.events, "SQLite import stored {} of {} events", s.imported, args.events);
    rows.push(row(
        "import NDJSON → cairn SQLite",
        s.imported,
        secs,
        format!("{:.0} MB/s of NDJSON", bytes as f64 / 1e6 / secs),
    ));
    store.close().await;

    if args.pg == "none" {
        return Ok(());
    }
    let schema = unique_schema("import");
    let url = with_schema(&args.pg, &schema);
    let store = Store::open(&url).await.context("opening the benchmark PostgreSQL (pass --pg none to leave it out)")?;
    eprintln!("importing into PostgreSQL…");
    let t = Instant::now();
    let s = cairn::import::import_events(Some(&store), ndjson, received_at, Default::default()).await?;
    let pg_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(s.imported == args.events, "PostgreSQL import stored {} of {} events", s.imported, args.events);
    store.close().await;

    eprintln!("preparing the COPY peer's file (not timed)…");
    let copy_file = dir.join("events.copy");
    generate_copy_text(ndjson, &copy_file, received_at)?;
    let peer_schema = unique_schema("copy");
    let peer_secs = copy_peer(&args.pg, &peer_schema, &schema, &copy_file).await?;
    rows.push(row(
        "import NDJSON → cairn PostgreSQL",
        args.events,
        pg_secs,
        format!("{:.2}× the COPY time", pg_secs / peer_secs),
    ));
    rows.push(row(
        "peer: PostgreSQL COPY of the same rows",
        args.events,
        peer_secs,
        "same columns and indexes, rows pre-converted".into(),
    ));
    drop_schema(&args.pg, &schema).await;
    drop_schema(&args.pg, &peer_schema).await;
    let _ = std::fs::remove_file(&copy_file);
    Ok(())
}

/// COPY of the prepared rows into a table like cairn's `events` (same indexes), timed.
async fn copy_peer(pg: &str, schema: &str, like_schema: &str, copy_file: &Path) -> Result<f64> {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(pg).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.events (LIKE {like_schema}.events INCLUDING ALL);
         CREATE SEQUENCE {schema}.events_seq; ALTER TABLE {schema}.events ALTER COLUMN seq SET DEFAULT nextval('{schema}.events_seq');"
    )))
    .execute(&mut c)
    .await?;
    eprintln!("COPY peer…");
    let t = Instant::now();
    let mut copy = c
        .copy_in_raw(&format!(
            "COPY {schema}.events (message_id, kind, event, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at, received_at, source, properties, context) FROM STDIN"
        ))
        .await?;
    let file = tokio::fs::File::open(copy_file).await?;
    copy.read_from(file).await?;
    copy.finish().await?;
    Ok(t.elapsed().as_secs_f64())
}

/// Runs the server in-process on a loopback port and drives it with keep-alive clients.
/// Returns (events/s, p50 ms, p99 ms, events sent).
async fn http_batch(db: &str, args: &IngestArgs) -> Result<(f64, f64, f64, u64)> {
    let store = Store::open(db).await?;
    let clock = Arc::new(FixedClock::new(bench_end()));
    let key = crate::keys::bench_write_key(&store, bench_end()).await?;
    // The server as `cairn serve` wires it, without a workspace (ingestion alone).
    let app = App::build(store.clone(), clock, AppConfig::new("127.0.0.1:0", None)).await?;
    let addr = app.addr().to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stop_rx.await;
    }));
    let requests_per_client = (args.http_events as usize).div_ceil(args.batch_size * args.http_clients);
    eprintln!("HTTP: {} clients × {requests_per_client} requests × {} events…", args.http_clients, args.batch_size);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.http_clients {
        let addr = addr.clone();
        let key = key.clone();
        let (batch_size, accounts) = (args.batch_size, args.accounts);
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::new(&addr);
            let mut rng = Rng::new(1000 + c as u64);
            let mut latencies = Vec::with_capacity(requests_per_client);
            for r in 0..requests_per_client {
                let mut body = String::from(r#"{"batch":["#);
                for i in 0..batch_size {
                    if i > 0 {
                        body.push(',');
                    }
                    let k = ((c * requests_per_client + r) * batch_size + i) as u64;
                    body.push_str(&event_line(&mut rng, k, accounts, 180, bench_end()));
                }
                body.push_str("]}");
                let t = Instant::now();
                let resp = conn.post_json("/v1/batch", Some(&key), &body).await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                anyhow::ensure!(resp.status == 200, "batch answered {}: {}", resp.status, resp.body);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    let _ = server.await;
    let events = (latencies.len() * args.batch_size) as u64;
    let stored = store.last_seq().await? as u64;
    anyhow::ensure!(stored == events, "the server stored {stored} of {events} acknowledged events");
    store.close().await;
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Ok((events as f64 / secs, pct(0.50), pct(0.99), events))
}
