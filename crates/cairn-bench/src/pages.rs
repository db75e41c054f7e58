//! `cairn-bench pages`: the web UI's server time per page on workload W1 (issue 17).
//!
//! The workload's files, as `cairn demo --scale` writes them (optionally only the events
//! of its last `--days` days), are loaded into a fresh SQLite store through `cairn import`
//! (accounts, contacts, subscription lines, events). The server is built and run as
//! `cairn serve` runs it ([`App::build`]: the engine replays the log and is current
//! before the first request), an admin is created with the store's API and signs in
//! through the `/login` form, and every page that needs no form input is requested over
//! one keep-alive loopback connection: the time is from the request's first byte to the
//! body's last. Each page's first visit is reported on its own; the `--runs` visits after
//! it give p50, p95 and max.
//!
//! The peer is the accounts list as SQL: the same rows the page lists (read through
//! `/api/views/accounts`, untimed) in a PostgreSQL table with indexes on the sort keys,
//! and the page's three answers (the page's 50 rows, the matching count, the owners the
//! filter offers) as queries over one connection, for the same three list pages.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use cairn::app::{App, AppConfig, Definitions};
use cairn::loopback::{Connection, Response};
use cairn::workload::{ScaleArg, write_w1_days};
use cairn_core::import::ImportKind;
use cairn_core::{Clock, FixedClock, Source};
use cairn_sim::w1::{W1, W1Config};
use clap::Args;

/// Options of `cairn-bench pages`.
#[derive(Args, Debug, Clone)]
pub struct PagesArgs {
    /// The workload: w1 (10,000 accounts), m (a tenth), s (a hundredth), xs (a thousandth)
    #[arg(long, value_enum, default_value = "m")]
    pub scale: ScaleArg,
    /// The workload's seed
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Load only the events of the workload's last N days (default: all 180; the CRM and
    /// the ledger are whole either way)
    #[arg(long)]
    pub days: Option<u32>,
    /// Timed visits of each page after its first
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Accounts whose 360 is timed (spread over the list)
    #[arg(long, default_value_t = 5)]
    pub accounts: usize,
    /// PostgreSQL for the SQL peer of the accounts list ("none" to leave it out)
    #[arg(long, env = "CAIRN_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg: String,
    /// Folder for the workload and the store (default: a temporary folder, removed at the end)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the table as JSON
    #[arg(long)]
    pub json: bool,
}

/// One page's times, in milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PageTime {
    pub(crate) page: String,
    pub(crate) path: String,
    pub(crate) first_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) runs: usize,
    /// The body's size.
    pub(crate) bytes: usize,
}

/// What the page benchmark measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct PagesOutcome {
    pub(crate) workload: String,
    /// Seconds loading the files through `cairn import`.
    pub(crate) load_secs: f64,
    /// Seconds building the app: the engine replaying the log to now.
    pub(crate) start_secs: f64,
    pub(crate) pages: Vec<PageTime>,
    /// The accounts list's SQL peer, by the same page names (empty when left out).
    pub(crate) peer: Vec<PageTime>,
    pub(crate) peer_note: String,
}

/// Runs the benchmark and prints its table.
pub async fn run(args: PagesArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let w1 = W1::new(W1Config::new(args.scale.scale(), args.seed));
    eprintln!("pages: writing the workload to {}…", dir.display());
    let written = write_w1_days(&w1, &dir, args.days, false)?;
    let _ = std::fs::remove_file(dir.join("events.csv"));
    let workload = written.describe(args.scale, args.seed);
    let o = measure(&args, &w1, &dir, &dir.join("events.ndjson"), workload).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&o)?);
    } else {
        println!("web UI pages on {}", o.workload);
        println!("loaded in {:.1} s; the server started (engine current) in {:.1} s", o.load_secs, o.start_secs);
        print_table(&o.pages, &o.peer);
        if !o.peer_note.is_empty() {
            println!("\npeer: {}", o.peer_note);
        }
    }
    Ok(())
}

/// The times as a Markdown table, each list page followed by its peer when there is one.
pub(crate) fn print_table(pages: &[PageTime], peer: &[PageTime]) {
    println!("| page | path | first visit ms | p50 ms | p95 ms | max ms | runs | KB |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let line = |p: &PageTime, name: &str| {
        println!(
            "| {name} | `{}` | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.0} |",
            p.path,
            p.first_ms,
            p.p50_ms,
            p.p95_ms,
            p.max_ms,
            p.runs,
            p.bytes as f64 / 1e3
        );
    };
    for p in pages {
        line(p, &p.page);
        if let Some(q) = peer.iter().find(|q| q.page == p.page) {
            line(q, &format!("peer: {}", q.page));
        }
    }
}

/// Loads the workload's files (`events` being its events) into a fresh SQLite store in
/// `dir`, starts the server on it and times every page.
pub(crate) async fn measure(
    args: &PagesArgs,
    w1: &W1,
    dir: &Path,
    events: &Path,
    workload: String,
) -> Result<PagesOutcome> {
    let end = w1.config().end;
    let now = end.at(9, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC)?.timestamp();
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(now));
    let store = cairn_store::Store::open(&crate::ingest::fresh_sqlite(dir, "pages.db")).await?;
    eprintln!("pages: importing the workload…");
    let t = Instant::now();
    for (file, kind) in [
        ("accounts.csv", ImportKind::Accounts),
        ("contacts.csv", ImportKind::Contacts),
        ("subscriptions.csv", ImportKind::Subscriptions),
    ] {
        let s = cairn::import::import_csv(Some(&store), &dir.join(file), kind, Source::Crm, false).await?;
        anyhow::ensure!(s.rejected == 0, "{file}: {} rows rejected: {:?}", s.rejected, s.rejects.first());
    }
    let s = cairn::import::import_events(Some(&store), events, now, Default::default()).await?;
    anyhow::ensure!(s.rejected == 0, "events: {} rejected: {:?}", s.rejected, s.rejects.first());
    let load_secs = t.elapsed().as_secs_f64();

    eprintln!("pages: starting the server (the engine replays {} events)…", s.imported);
    let (ws, hash) = cairn::demo::example_workspace()?;
    let t = Instant::now();
    let app = App::build(
        store.clone(),
        clock.clone(),
        AppConfig::new("127.0.0.1:0", Some(Definitions::Loaded(Arc::new(ws), hash))),
    )
    .await?;
    let start_secs = t.elapsed().as_secs_f64();
    let addr = app.addr().to_string();
    let runtime = app.runtime().context("the app has no engine")?.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));

    let measured = async {
        let mut browser = Browser::sign_in(&store, clock.as_ref(), &addr).await?;
        let asked = pages(&runtime, args.accounts).await;
        let mut times = Vec::new();
        for p in &asked {
            eprintln!("pages: {}", p.path);
            match browser.time(&p.name, &p.path, args.runs).await {
                Ok(t) => times.push(t),
                // A page past the client's 60 s is a figure too: reported, not fatal.
                Err(e) => {
                    eprintln!("pages: {} failed: {e:#}", p.path);
                    times.push(summarise(&p.name, &p.path, f64::NAN, Vec::new(), 0));
                }
            }
        }
        let (peer, peer_note) = if args.pg == "none" {
            (Vec::new(), "left out (--pg none)".to_string())
        } else {
            let key = crate::keys::bench_key(&store, cairn_store::KeyKind::Secret, clock.now()).await?;
            crate::pages_peer::accounts_list(&args.pg, &addr, &key, &asked, args.runs).await?
        };
        anyhow::Ok((times, peer, peer_note))
    }
    .await;
    let _ = stop.send(());
    server.await??;
    store.close().await;
    let (pages, peer, peer_note) = measured?;
    Ok(PagesOutcome { workload, load_secs, start_secs, pages, peer, peer_note })
}

/// A page to time, and for the accounts list the same page as SQL.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) sql: Option<ListSql>,
}

/// An accounts list page as the peer's SQL: which rows, in which order, from where.
#[derive(Debug, Clone)]
pub(crate) struct ListSql {
    /// A condition over the peer's `accounts` table.
    pub(crate) filter: String,
    /// Its `ORDER BY`, the id last as the page's tie-break.
    pub(crate) order: &'static str,
    pub(crate) offset: usize,
}

/// `'text'` as an SQL literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Every GET page of the UI that needs no form input.
async fn pages(runtime: &cairn_runtime::Runtime, sampled: usize) -> Vec<Page> {
    let (ids, segment, program, owner, today) = runtime
        .read(|live| {
            let e = &live.engine;
            let ids: Vec<u64> = e.accounts().map(|(id, _)| id).collect();
            let ws = e.workspace();
            let segment = ws
                .segments()
                .iter()
                .find(|s| matches!(s.subject, cairn_rules::Subject::Account))
                .map(|s| s.id.as_str().to_string());
            let program = ws.programs().first().map(|p| p.id.as_str().to_string());
            let owner = e.accounts().find_map(|(_, a)| match a.traits.get("owner_email") {
                Some(cairn_rules::Value::String(s)) => Some(s.to_string()),
                _ => None,
            });
            let today = e.now().to_zoned(ws.time_zone().clone()).date();
            (ids, segment, program, owner, today)
        })
        .await;
    let page = |name: &str, path: String| Page { name: name.into(), path, sql: None };
    let list = |name: &str, path: String, filter: String, order: &'static str, offset: usize| Page {
        name: name.into(),
        path,
        sql: Some(ListSql { filter, order, offset }),
    };
    let by_health = "health ASC NULLS LAST, id";
    let late = ids.len().div_ceil(50).saturating_sub(1).max(1);
    let mut out = vec![
        page("morning", "/".into()),
        list("accounts list", "/accounts".into(), "true".into(), by_health, 0),
        list(
            "accounts list, filtered + sorted",
            "/accounts?band=yellow&renewal=365&sort=-arr".into(),
            format!("band = 'yellow' AND renewal_date BETWEEN DATE '{today}' AND DATE '{today}' + 365"),
            "COALESCE(arr, 0) DESC, id",
            0,
        ),
        list(
            "accounts list, a late page",
            format!("/accounts?sort=name&page={late}"),
            "true".into(),
            "lower(name) COLLATE \"C\", id",
            (late - 1) * 50,
        ),
    ];
    if let Some(o) = owner {
        out.push(list(
            "accounts list, search + owner",
            format!("/accounts?q=a&owner={}", encode(&o)),
            format!("owner = {} AND (strpos(lower(name), 'a') > 0 OR id::text = 'a')", literal(&o)),
            by_health,
            0,
        ));
    }
    let step = (ids.len() / sampled.max(1)).max(1);
    for id in ids.iter().step_by(step).take(sampled) {
        out.push(page(&format!("account 360 ({id})"), format!("/accounts/{id}")));
    }
    out.push(page("segments", "/segments".into()));
    if let Some(s) = segment {
        out.push(page("segment", format!("/segments?segment={}", encode(&s))));
    }
    out.push(page("journey", "/journey".into()));
    out.push(page("programs", "/programs".into()));
    if let Some(p) = program {
        out.push(page("program", format!("/programs/{}", encode(&p))));
    }
    for p in ["tasks", "insights", "kpis", "staffing", "data"] {
        out.push(page(p, format!("/{p}")));
    }
    for p in ["users", "keys", "audit"] {
        out.push(page(&format!("admin {p}"), format!("/admin/{p}")));
    }
    out
}

fn encode(s: &str) -> String {
    cairn_channels::encode_query_value(s)
}

/// A signed-in admin's keep-alive connection.
struct Browser {
    conn: Connection,
    cookie: String,
}

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "the page benchmark's password";

impl Browser {
    /// Adds an admin with the store's API (as `cairn user add` does) and signs in through
    /// the `/login` form.
    async fn sign_in(store: &cairn_store::Store, clock: &dyn Clock, addr: &str) -> Result<Browser> {
        let hash = cairn_server::auth::password::hash_new(PASSWORD)?;
        store.create_user(EMAIL, &hash, "admin", clock.now()).await?;
        let mut conn = Connection::new(addr);
        let page = conn.request("GET", "/login", &[], b"").await?;
        anyhow::ensure!(page.status == 200, "/login answered {}", page.status);
        let login = set_cookie(&page, "cairn_login").context("the sign-in page set no cookie")?;
        let csrf = hidden(&page.body, "csrf").context("the sign-in form carries no token")?;
        let body = format!("email={}&password={}&csrf={}&next=%2F", encode(EMAIL), encode(PASSWORD), encode(&csrf));
        let cookie = format!("cairn_login={login}");
        let headers = [("Cookie", cookie.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
        let r = conn.request("POST", "/login", &headers, body.as_bytes()).await?;
        anyhow::ensure!(r.status == 303, "signing in answered {}: {}", r.status, r.body);
        let session = set_cookie(&r, "cairn_session").context("signing in set no session cookie")?;
        Ok(Browser { conn, cookie: format!("cairn_session={session}") })
    }

    async fn get(&mut self, path: &str) -> Result<(f64, Response)> {
        let t = Instant::now();
        let r = self.conn.request("GET", path, &[("Cookie", self.cookie.as_str())], b"").await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(
            r.status == 200,
            "{path} answered {}: {}",
            r.status,
            r.body.chars().take(300).collect::<String>()
        );
        Ok((ms, r))
    }

    /// A first visit, then `runs` timed ones.
    async fn time(&mut self, page: &str, path: &str, runs: usize) -> Result<PageTime> {
        let (first_ms, r) = self.get(path).await?;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            times.push(self.get(path).await?.0);
        }
        Ok(summarise(page, path, first_ms, times, r.body.len()))
    }
}

/// The p50, p95 and max of `times` (ms, the first visit apart).
pub(crate) fn summarise(page: &str, path: &str, first_ms: f64, mut times: Vec<f64>, bytes: usize) -> PageTime {
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        if times.is_empty() {
            return first_ms;
        }
        times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1]
    };
    PageTime {
        page: page.into(),
        path: path.into(),
        first_ms,
        p50_ms: pick(0.5),
        p95_ms: pick(0.95),
        max_ms: times.last().copied().unwrap_or(first_ms),
        runs: times.len(),
        bytes,
    }
}

fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .find_map(|(_, v)| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let (_, rest) = html.split_once(&marker)?;
    rest.split('"').next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_of_the_runs_after_the_first_visit() {
        let times: Vec<f64> = (1..=20).map(f64::from).collect();
        let p = summarise("x", "/x", 500.0, times, 10);
        assert_eq!((p.p50_ms, p.p95_ms, p.max_ms, p.runs), (10.0, 19.0, 20.0, 20));
        assert_eq!(p.first_ms, 500.0);
    }

    /// Every page at a thousandth of W1, without PostgreSQL: each answers 200 to the
    /// signed-in admin and is timed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_page_is_timed_at_a_thousandth_of_w1() {
        let args = PagesArgs {
            scale: ScaleArg::Xs,
            seed: 3,
            days: Some(30),
            runs: 3,
            accounts: 2,
            pg: "none".into(),
            dir: None,
            json: false,
        };
        let dir = tempfile::tempdir().unwrap();
        let w1 = W1::new(W1Config::new(args.scale.scale(), args.seed));
        let written = write_w1_days(&w1, dir.path(), args.days, false).unwrap();
        assert_eq!(written.days, 30);
        let o = measure(&args, &w1, dir.path(), &dir.path().join("events.ndjson"), "xs".into()).await.unwrap();
        print_table(&o.pages, &o.peer);
        for page in
            ["morning", "accounts list", "account 360", "segment", "tasks", "insights", "staffing", "admin audit"]
        {
            assert!(o.pages.iter().any(|p| p.page.starts_with(page)), "no {page} row");
        }
        assert!(o.pages.iter().all(|p| p.runs == 3 && p.bytes > 0));
    }
}
