//! Argument parsing and the subcommands' top level.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cairn_core::{Clock, Source, SystemClock};
use cairn_store::{KeyKind, Store};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// The database used when neither --db nor CAIRN_DB says otherwise.
pub const DEFAULT_DB: &str = "sqlite://cairn.db";

#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = "cairn: Digital Customer Success — every signal about each account, in one place",
    long_about = "cairn consolidates product usage (Segment-spec tracking API), CRM and billing exports \
(CSV) into one event log and account state, on an embedded SQLite file by default or on PostgreSQL.\n\n\
Start with `cairn serve --demo`, then open http://127.0.0.1:8080/."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct DbArg {
    /// Database URL: sqlite://PATH (embedded, the default) or postgres://USER@HOST:PORT/DB
    #[arg(long, env = "CAIRN_DB", default_value = DEFAULT_DB, hide_env_values = true)]
    pub db: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: tracking API (/v1/*) and web UI
    Serve {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        #[command(flatten)]
        db: DbArg,
        /// Folder of workspace definitions (YAML: segments, journey, health), evaluated
        /// live by the engine; reloaded on SIGHUP or POST /api/workspace/reload. With
        /// --demo and no folder, the built-in example workspace
        #[arg(long, env = "CAIRN_WORKSPACE")]
        workspace: Option<PathBuf>,
        /// Fill an empty database with the demo customer base (as `cairn demo` does)
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        delivery: crate::delivery::DeliveryArgs,
        #[command(flatten)]
        events: crate::import::EventRangeArg,
    },
    /// Import a CSV export (accounts, contacts, subscriptions) or NDJSON events.
    ///
    /// Re-importing the same file changes nothing. Rows that cannot be imported are
    /// listed with line, column and reason. Exit status: 0 when every row was imported,
    /// 2 when some rows were rejected (the others are imported), 1 when nothing could be
    /// imported (unreadable file, bad header, database down).
    Import {
        /// What the file holds
        kind: ImportWhat,
        /// The file (CSV with a header row; NDJSON for events: one Segment message per line)
        file: PathBuf,
        /// The system the file's ids come from (crm, billing, product, support)
        #[arg(long, default_value = "crm")]
        source: String,
        /// Check the file and show the column mapping and first rows; write nothing
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        events: crate::import::EventRangeArg,
    },
    /// Data readiness: missing ids, ARR and renewal dates, unmatched events, duplicates
    Doctor {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// The day to judge ARR and renewals on (YYYY-MM-DD; default: today, UTC)
        #[arg(long)]
        as_of: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Show what the engine knows of one account: traits, segments, journey stage,
    /// milestones with dates, health by pillar with its explanation and trend, contacts
    Show {
        #[command(subcommand)]
        command: ShowCommand,
    },
    /// List the workspace's segments with their rules and how many members each has now
    Segments {
        #[command(flatten)]
        ws: WorkspaceArg,
        /// Print the list as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Programs: dry runs
    Program {
        #[command(subcommand)]
        command: ProgramCommand,
    },
    /// Manage API keys
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Fill the database with a generated demo customer base (accounts, contacts,
    /// subscriptions and 90 days of product events)
    Demo {
        /// How many accounts
        #[arg(long, default_value_t = 200)]
        accounts: usize,
        #[command(flatten)]
        db: DbArg,
    },
    /// Check a workspace folder (segments, journey, health as YAML) and report every problem.
    ///
    /// Reads the folder's *.yaml and *.yml files (in name order, not recursively), checks
    /// their keys and values and compiles every rule. Each problem is printed to stderr as
    /// FILE:LINE:COLUMN: error: MESSAGE, with a hint when there is one, then a count
    /// (`3 errors in 2 files`). Exit status: 0 when the workspace is valid (a summary of
    /// what it holds goes to stdout), 1 when there is any problem.
    Check {
        /// The workspace folder
        dir: PathBuf,
        /// Print the diagnostics or the summary as JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks that print cairn's figures beside a peer's, measured in the same run
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Args, Debug, Clone)]
pub struct WorkspaceArg {
    /// Folder of workspace definitions (YAML)
    #[arg(long, env = "CAIRN_WORKSPACE")]
    pub workspace: PathBuf,
}

#[derive(Subcommand, Debug)]
enum ProgramCommand {
    /// What a program would do: its audience (and holdout) as of an instant, the audience
    /// by segment, and three rendered first messages. Writes nothing, sends nothing
    Preview {
        /// The program's id
        id: String,
        /// The instant (2026-03-10T09:00:00Z) or day (2026-03-10, its start in the workspace
        /// time zone) to preview at; default now
        #[arg(long)]
        as_of: Option<String>,
        #[command(flatten)]
        ws: WorkspaceArg,
        /// Print the preview as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand, Debug)]
enum ShowCommand {
    /// One account (by cairn id, CRM id or product id), evaluated as of now
    Account {
        /// The account's id
        id: String,
        #[command(flatten)]
        ws: WorkspaceArg,
        /// Print the account as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create a key and print it on stdout (it is shown only this once)
    Create {
        /// write (tracking API), publishable (in-app, browser) or secret (REST API)
        #[arg(long)]
        kind: KindArg,
        /// A name; for write keys, the source name recorded on their events
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Ingestion: bulk NDJSON import into SQLite and PostgreSQL beside PostgreSQL COPY,
    /// and /v1/batch over loopback with concurrent clients
    Ingest(crate::bench::IngestArgs),
    /// The engine: backfill and incremental throughput on a generated workload, beside
    /// the same segments and health as SQL in DuckDB and PostgreSQL
    Engine(crate::bench_engine::EngineArgs),
    /// Programs: a million enrollments across five programs sent to the outbox, beside
    /// PostgreSQL writing the same rows, and trigger-to-outbox latency over HTTP
    Programs(crate::bench_programs::ProgramsArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportWhat {
    Accounts,
    Contacts,
    Subscriptions,
    Events,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum KindArg {
    Write,
    Publishable,
    Secret,
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| "info,sqlx=warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Opens the store named by a URL, with the URL (password removed) in the error.
pub async fn open_store(url: &str) -> Result<Store> {
    Store::open(url).await.with_context(|| format!("opening {}", cairn_store::redact_url(url)))
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve { listen, db, workspace, demo, delivery, events } => {
            let plausible = events.plausible_times()?;
            if let Some(dir) = &workspace
                && !dir.is_dir()
            {
                bail!("workspace folder {} does not exist", dir.display());
            }
            let store = open_store(&db.db).await?;
            if demo && store.last_seq().await? == 0 {
                eprintln!("filling the empty database with the demo customer base…");
                crate::demo::seed(&store, 200, clock.now()).await?;
            }
            let listener =
                tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr()?;
            let runner_config = delivery.runner_config(&addr.to_string())?;
            let mut state = cairn_server::AppState::new(store.clone(), clock.clone())
                .with_links(cairn_programs::link_signer(&store).await.context("creating the link signer")?);
            state.plausible = plausible;
            let (stop_engine, engine_stopped) = tokio::sync::oneshot::channel::<()>();
            let definitions = match (&workspace, demo) {
                (Some(dir), _) => Some((crate::show::load_workspace(dir)?, Some(dir.clone()))),
                (None, true) => Some((crate::demo::example_workspace()?, None)),
                (None, false) => None,
            };
            if let Some(((ws, hash), dir)) = definitions {
                eprintln!("evaluating the workspace ({}) over the event log…", ws.summary());
                let runtime = cairn_runtime::Runtime::start(store.clone(), clock.clone(), Arc::new(ws), hash).await?;
                let (stop_runner, runner_stopped) = tokio::sync::oneshot::channel::<()>();
                tokio::spawn(runtime.clone().run(async {
                    let _ = engine_stopped.await;
                    let _ = stop_runner.send(());
                }));
                // Programs run beside the engine: triggers, due steps, delivery.
                let runner = cairn_programs::Runner::new(store.clone(), runtime.clone(), clock.clone(), runner_config)
                    .await
                    .context("starting the program runner")?;
                tokio::spawn(runner.run(async {
                    let _ = runner_stopped.await;
                }));
                if let Some(dir) = &dir {
                    tokio::spawn(reload_on_sighup(runtime.clone(), dir.clone()));
                }
                state = state.with_runtime(runtime, dir);
            }
            eprintln!("cairn is serving on http://{addr}/ ({} database)", store.backend());
            cairn_server::serve(listener, state, shutdown_signal()).await.context("serving HTTP")?;
            let _ = stop_engine.send(());
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { kind, file, source, dry_run, json, db, events } => {
            let source = Source::parse(&source).map_err(|e| anyhow::anyhow!("--source: {e}"))?;
            let options = crate::import::RunOptions { dry_run, json, plausible: events.plausible_times()? };
            crate::import::run(kind, &file, source, options, &db.db, clock.as_ref()).await
        }
        Command::Doctor { json, as_of, db } => {
            let day = match as_of {
                Some(d) => cairn_core::values::parse_date(&d).map_err(|e| anyhow::anyhow!("--as-of: {e}"))?,
                None => clock.now().to_zoned(jiff::tz::TimeZone::UTC).date(),
            };
            let store = open_store(&db.db).await?;
            let report = store.doctor(day).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render_doctor(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { command: ShowCommand::Account { id, ws, json, db } } => {
            crate::show::account(&id, &db.db, &ws.workspace, json, clock.as_ref()).await
        }
        Command::Program { command: ProgramCommand::Preview { id, as_of, ws, json, db } } => {
            crate::program::preview(&id, &db.db, &ws.workspace, as_of.as_deref(), json, clock.as_ref()).await
        }
        Command::Segments { ws, json, db } => crate::show::segments(&db.db, &ws.workspace, json, clock.as_ref()).await,
        Command::Keys { command: KeysCommand::Create { kind, name, db } } => {
            let kind = match kind {
                KindArg::Write => KeyKind::Write,
                KindArg::Publishable => KeyKind::Publishable,
                KindArg::Secret => KeyKind::Secret,
            };
            let name = name.unwrap_or_else(|| kind.as_str().to_string());
            let store = open_store(&db.db).await?;
            let mut random = [0u8; 32];
            getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
            let key = cairn_server::generate_key(kind, random);
            store.create_api_key(kind, &name, &cairn_server::hash_key(&key), &key[..13], clock.now()).await?;
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { accounts, db } => {
            let store = open_store(&db.db).await?;
            let summary = crate::demo::seed(&store, accounts, clock.now()).await?;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { dir, json } => Ok(crate::check::run(&dir, json)),
        Command::Bench { command: BenchCommand::Ingest(args) } => {
            crate::bench::ingest(args).await.map(|_| ExitCode::SUCCESS)
        }
        Command::Bench { command: BenchCommand::Programs(args) } => {
            crate::bench_programs::run(args).await.map(|_| ExitCode::SUCCESS)
        }
        Command::Bench { command: BenchCommand::Engine(args) } => {
            crate::bench_engine::run(args).await.map(|_| ExitCode::SUCCESS)
        }
    }
}

/// Reloads the workspace on every SIGHUP; invalid definitions are logged and the
/// running ones kept.
async fn reload_on_sighup(runtime: cairn_runtime::Runtime, dir: PathBuf) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        match cairn_server::load_workspace(&dir) {
            Ok((ws, hash)) => {
                let summary = ws.summary().to_string();
                match runtime.reload(Arc::new(ws), hash).await {
                    Ok(()) => tracing::info!("workspace reloaded: {summary}"),
                    Err(e) => tracing::error!("workspace reload failed, the running definitions are kept: {e}"),
                }
            }
            Err(diags) => {
                for d in &diags {
                    tracing::error!("{d}");
                }
                tracing::error!("the workspace has {} problem(s); the running definitions are kept", diags.len());
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// The doctor report for a terminal.
pub fn render_doctor(r: &cairn_core::doctor::DoctorReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "Data readiness as of {}", r.as_of);
    let _ = writeln!(
        out,
        "  {} accounts, {} contacts, {} subscription lines, {} events\n",
        r.totals.accounts, r.totals.contacts, r.totals.subscription_lines, r.totals.events
    );
    let mut line = |label: &str, n: u64, examples: &[String]| {
        let mark = if n == 0 { "ok " } else { "!! " };
        let ex = if examples.is_empty() { String::new() } else { format!("  e.g. {}", examples.join(", ")) };
        let _ = writeln!(out, "  {mark}{label:<40} {n:>10}{ex}");
    };
    line("events matched to nobody", r.unmatched.events_matched_to_nobody, &[]);
    line("events without a contact", r.unmatched.events_without_contact, &[]);
    line("events without an account", r.unmatched.events_without_account, &[]);
    line("contacts without an account", r.contacts_without_account.count, &r.contacts_without_account.examples);
    line("accounts without a CRM id", r.accounts_without_crm_id.count, &r.accounts_without_crm_id.examples);
    line("accounts without ARR on that day", r.accounts_without_arr.count, &r.accounts_without_arr.examples);
    line(
        "accounts without a renewal date",
        r.accounts_without_renewal_date.count,
        &r.accounts_without_renewal_date.examples,
    );
    line("emails on more than one contact", r.duplicate_emails.count, &r.duplicate_emails.examples);
    let _ = writeln!(out, "\nSources (newest event):");
    if r.sources.is_empty() {
        let _ = writeln!(out, "  none yet: send events to /v1/* or run `cairn import events FILE`");
    }
    for s in &r.sources {
        let _ = writeln!(
            out,
            "  {:<20} {:>10} events, newest at {} (received {})",
            s.source, s.events, s.newest_event_at, s.newest_received_at
        );
    }
    out
}
