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

// Parsed once at start: the size of the `serve` variant's flags costs nothing.
#[allow(clippy::large_enum_variant)]
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
        /// On an empty database, simulate a year of the demo company first (as `cairn demo`
        /// does: 500 accounts, seed 1); a database that holds events is served as it is
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        delivery: crate::delivery::DeliveryArgs,
        #[command(flatten)]
        limits: LimitArgs,
        /// Whether the in-app inbox requires `userHash`, the HMAC of the userId that your
        /// backend computes with the publishable key's identity secret (`cairn keys
        /// identity-secret`). `off` lets anyone holding the (public) publishable key read
        /// any user's inbox
        #[arg(long, env = "CAIRN_INAPP_IDENTITY_VERIFICATION", default_value = "on")]
        inapp_identity_verification: OnOff,
        #[command(flatten)]
        events: crate::import::EventRangeArg,
        /// Whether the session cookie is `Secure` (sent over https only). `auto`: yes,
        /// unless cairn listens on a loopback address (plain http on 127.0.0.1, where a
        /// browser would never send a `Secure` cookie back); say `on` behind a TLS proxy
        /// on the same host
        #[arg(long, env = "CAIRN_SECURE_COOKIES", default_value = "auto")]
        secure_cookies: AutoOnOff,
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
    /// Manage the users of the web UI
    User {
        #[command(subcommand)]
        command: crate::users::UserCommand,
    },
    /// Simulate a year of a SaaS company through cairn: the example workspace's engine and
    /// programs run live on a simulated clock over a generated customer base (accounts,
    /// contacts, contracts and renewals, product use, tickets, surveys), simulated people
    /// answer the messages and simulated CSMs work their tasks; then print a summary.
    /// Use an empty database: the same seed gives the same year.
    Demo {
        /// How many customers (old and new)
        #[arg(long, default_value_t = DEMO_ACCOUNTS)]
        accounts: usize,
        /// The seed of the simulated company
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many days to simulate, ending yesterday
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Print the summary as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
        /// Instead of simulating, write a benchmark workload as files in --out: w1 is
        /// DESIGN's W1 (10,000 accounts, 500,000 contacts, 50 million events over 180
        /// days, about 11 GB), m a tenth of it, s a hundredth, xs a thousandth; --seed
        /// applies, --accounts and --days do not
        #[arg(long, value_enum, requires = "out")]
        scale: Option<crate::workload::ScaleArg>,
        /// The folder --scale writes accounts.csv, contacts.csv, subscriptions.csv,
        /// events.ndjson and events.csv into
        #[arg(long, requires = "scale")]
        out: Option<PathBuf>,
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
    /// Reports: revenue and retention from the subscription ledger, programs and
    /// experiments (docs/metrics.md)
    Report {
        #[command(subcommand)]
        command: crate::report::ReportCommand,
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
    /// by segment, and three rendered first messages; or, with --from and --to, what it
    /// would have done over that period of history (the log replayed through the engine
    /// and the runner on a simulated clock: enrollments, holdout, sends per step and
    /// variant, caps and quiet hours hit, tasks, sample messages). Writes nothing, sends
    /// nothing
    Preview {
        /// The program's id
        id: String,
        /// The instant (2026-03-10T09:00:00Z) or day (2026-03-10, its start in the workspace
        /// time zone) to preview at; default now
        #[arg(long, conflicts_with_all = ["from", "to"])]
        as_of: Option<String>,
        /// Dry-run over history from this day (its start in the workspace time zone) or
        /// instant
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// … to this day (included) or instant; at most 366 days after --from
        #[arg(long, requires = "from")]
        to: Option<String>,
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
        /// A secret key's scope on the REST API: read (GET), write (and overrides, task
        /// completion, mail feedback) or admin (and workspace reloads, the default)
        #[arg(long)]
        scope: Option<ScopeArg>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List the keys: id, kind, name, prefix, when created and, if so, when revoked
    List {
        /// Print the list as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke a key, by its prefix, its name or the whole key; it stops working at once
    /// on every server using the database
    Revoke {
        /// The key's prefix (as `cairn keys list` shows it), name, or the key itself
        key: Option<String>,
        /// The key's id (as `cairn keys list` shows it), when a name or prefix is shared
        #[arg(long, conflicts_with = "key")]
        id: Option<i64>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Print a publishable key's identity secret: your backend signs user ids with it
    /// (hex HMAC-SHA256 of the userId), and your product passes the result to the in-app
    /// inbox as `userHash`. Keep it on your servers, never in the browser
    IdentitySecret {
        /// The publishable key's prefix, name, or the key itself
        key: Option<String>,
        /// The key's id, when a name or prefix is shared
        #[arg(long, conflicts_with = "key")]
        id: Option<i64>,
        #[command(flatten)]
        db: DbArg,
    },
}

/// Timeouts and the bound on connections of `cairn serve`.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Seconds a client has to send a request's headers; also how long an idle
    /// keep-alive connection stays open
    #[arg(long, env = "CAIRN_HEADER_TIMEOUT_SECS", default_value_t = 20)]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body
    #[arg(long, env = "CAIRN_BODY_TIMEOUT_SECS", default_value_t = 60)]
    pub body_timeout_secs: u64,
    /// Connections served at once (more wait to be accepted). Default: 1000, or fewer
    /// when the process may open fewer files
    #[arg(long, env = "CAIRN_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a shutdown (SIGTERM) waits for requests in flight
    #[arg(long, env = "CAIRN_SHUTDOWN_GRACE_SECS", default_value_t = 5)]
    pub shutdown_grace_secs: u64,
}

impl LimitArgs {
    fn limits(&self) -> Result<cairn_server::Limits> {
        use std::time::Duration;
        if self.header_timeout_secs == 0 || self.body_timeout_secs == 0 || self.max_connections == Some(0) {
            bail!("--header-timeout-secs, --body-timeout-secs and --max-connections must be at least 1");
        }
        Ok(cairn_server::Limits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            max_connections: self.max_connections.unwrap_or_else(crate::app::default_max_connections),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        })
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum AutoOnOff {
    Auto,
    On,
    Off,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OnOff {
    On,
    Off,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportWhat {
    Accounts,
    Contacts,
    Subscriptions,
    Events,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ScopeArg {
    Read,
    Write,
    Admin,
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
    let result = runtime.block_on(run(cli));
    // Work abandoned at shutdown (a request past its grace) does not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Customers of `cairn demo`'s company by default.
const DEMO_ACCOUNTS: usize = 500;
/// Customers of `cairn serve --demo`'s company: fewer than `cairn demo`'s until a year of
/// 500 simulates within a minute (about three today, bound by the SQLite driver's
/// per-statement thread hand-offs; see BENCHMARKS.md, "Demo year"). 300 is the fewest at
/// which the first start's insights find the simulation's hidden truth (200 miss one of
/// its three behaviours, 120 all three).
const SERVE_DEMO_ACCOUNTS: usize = 300;

/// The store a simulation writes into: on SQLite, a commit survives a crash of the
/// process but not a power loss (no sync per commit), which is honest for data made
/// again from a seed, and makes the simulated year several times faster.
async fn open_simulation_store(url: &str) -> Result<Store> {
    Store::open_with(url, cairn_store::Durability::SurvivesProcessCrash)
        .await
        .with_context(|| format!("opening {}", cairn_store::redact_url(url)))
}

/// Opens the store named by a URL, with the URL (password removed) in the error.
pub async fn open_store(url: &str) -> Result<Store> {
    Store::open(url).await.with_context(|| format!("opening {}", cairn_store::redact_url(url)))
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve {
            listen,
            db,
            workspace,
            demo,
            delivery,
            limits,
            inapp_identity_verification,
            events,
            secure_cookies,
        } => {
            let plausible = events.plausible_times()?;
            if let Some(dir) = &workspace
                && !dir.is_dir()
            {
                bail!("workspace folder {} does not exist", dir.display());
            }
            let limits = limits.limits()?;
            // Past the grace for requests, 5 s more for the runner, the engine and the
            // database; then the process exits whatever it is doing.
            let stop = crate::app::Shutdown::on_signals(limits.shutdown_grace + std::time::Duration::from_secs(5));
            let store = open_store(&db.db).await?;
            if demo && store.last_seq().await? == 0 {
                eprintln!(
                    "the database is empty: simulating a year of a {SERVE_DEMO_ACCOUNTS}-account demo company through cairn…"
                );
                let today = clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
                let options = crate::simulation::Options::new(SERVE_DEMO_ACCOUNTS, 1, today);
                let sim = open_simulation_store(&db.db).await?;
                let summary = crate::simulation::run(&sim, &options).await;
                close_store(&sim).await;
                eprint!("{}", crate::simulation::render(&summary?));
            }
            let definitions = match (workspace, demo) {
                (Some(dir), _) => Some(crate::app::Definitions::Folder(dir)),
                (None, true) => {
                    let (ws, hash) = crate::demo::example_workspace()?;
                    Some(crate::app::Definitions::Loaded(Arc::new(ws), hash))
                }
                (None, false) => None,
            };
            let config = crate::app::AppConfig {
                listen,
                workspace: definitions,
                delivery,
                limits,
                inapp_identity_verification: inapp_identity_verification == OnOff::On,
                plausible,
                secure_cookies: match secure_cookies {
                    AutoOnOff::Auto => None,
                    AutoOnOff::On => Some(true),
                    AutoOnOff::Off => Some(false),
                },
            };
            // A shutdown while the engine is still evaluating the history stops it there.
            let built = tokio::select! {
                built = crate::app::App::build(store.clone(), clock.clone(), config) => built?,
                () = stop.wait() => {
                    close_store(&store).await;
                    return Ok(ExitCode::SUCCESS);
                }
            };
            eprintln!("cairn is serving on http://{}/ ({} database)", built.addr(), store.backend());
            if demo {
                let password = crate::users::demo_admin(&store, clock.as_ref()).await?;
                eprintln!(
                    "sign in at http://{}/login as {} with the password {password} (new at every start)",
                    built.addr(),
                    crate::users::DEMO_ADMIN
                );
            }
            built.run(stop.wait()).await?;
            close_store(&store).await;
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
        Command::Program { command: ProgramCommand::Preview { id, as_of, from, to, ws, json, db } } => match (from, to)
        {
            (Some(from), Some(to)) => {
                crate::program::dry_run(&id, &db.db, &ws.workspace, (&from, &to), json, clock.as_ref()).await
            }
            _ => crate::program::preview(&id, &db.db, &ws.workspace, as_of.as_deref(), json, clock.as_ref()).await,
        },
        Command::Segments { ws, json, db } => crate::show::segments(&db.db, &ws.workspace, json, clock.as_ref()).await,
        Command::Keys { command } => keys(command, clock.as_ref()).await,
        Command::User { command } => crate::users::run(command, clock.as_ref()).await,
        Command::Demo { scale: Some(scale), out: Some(out), seed, json, .. } => {
            crate::workload::run(scale, seed, &out, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { accounts, seed, days, json, db, .. } => {
            let store = open_simulation_store(&db.db).await?;
            let today = clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
            let options = crate::simulation::Options { days, ..crate::simulation::Options::new(accounts, seed, today) };
            let summary = crate::simulation::run(&store, &options).await;
            close_store(&store).await;
            let summary = summary?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", crate::simulation::render(&summary));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { dir, json } => Ok(crate::check::run(&dir, json)),
        Command::Report { command } => crate::report::run(command, clock.as_ref()).await,
    }
}

/// Closes the store's connections, without waiting long for any still held by work that
/// was abandoned at shutdown.
async fn close_store(store: &Store) {
    if tokio::time::timeout(std::time::Duration::from_secs(2), store.close()).await.is_err() {
        tracing::warn!("database connections still busy at exit: closed with the process");
    }
}

async fn keys(command: KeysCommand, clock: &dyn Clock) -> Result<ExitCode> {
    match command {
        KeysCommand::Create { kind, name, scope, db } => {
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
            let prefix = cairn_server::key_prefix(&key);
            let hash = cairn_server::hash_key(&key);
            match (kind, scope) {
                (KeyKind::Secret, Some(scope)) => {
                    let scope = match scope {
                        ScopeArg::Read => cairn_store::KeyScope::Read,
                        ScopeArg::Write => cairn_store::KeyScope::Write,
                        ScopeArg::Admin => cairn_store::KeyScope::Admin,
                    };
                    store.create_secret_key(scope, &name, &hash, prefix, clock.now()).await?;
                }
                (_, Some(_)) => bail!("--scope is for secret keys: write and publishable keys have one use each"),
                (_, None) => store.create_api_key(kind, &name, &hash, prefix, clock.now()).await?,
            }
            println!("{key}");
            if kind == KeyKind::Publishable {
                eprintln!(
                    "the in-app inbox verifies users: print this key's identity secret for your backend with \
`cairn keys identity-secret {prefix}`"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List { json, db } => {
            let store = open_store(&db.db).await?;
            let keys = store.list_api_keys().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "keys": keys }))?);
            } else {
                print!("{}", render_keys(&keys));
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Revoke { key, id, db } => {
            let store = open_store(&db.db).await?;
            let found = find_key(&store, key.as_deref(), id).await?;
            if found.revoked_at.is_some() || !store.revoke_api_key(found.id, clock.now()).await? {
                bail!("key {} ({} `{}`) is already revoked", found.id, found.kind.as_str(), found.name);
            }
            eprintln!("revoked key {} ({} `{}`, {})", found.id, found.kind.as_str(), found.name, found.prefix);
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::IdentitySecret { key, id, db } => {
            let store = open_store(&db.db).await?;
            let found = find_key(&store, key.as_deref(), id).await?;
            if found.kind != KeyKind::Publishable {
                bail!(
                    "key {} is a {} key: identity secrets belong to publishable keys (`cairn keys list`)",
                    found.id,
                    found.kind.as_str()
                );
            }
            if found.revoked_at.is_some() {
                bail!("key {} is revoked: create a new publishable key", found.id);
            }
            let secret = cairn_server::inapp_identity_secret(&store, found.id).await?;
            println!("{secret}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The one key that `text` (prefix, name or the key itself) or `id` names, or an error
/// that says what matched.
async fn find_key(store: &Store, text: Option<&str>, id: Option<i64>) -> Result<cairn_store::ApiKeyListing> {
    let keys = store.list_api_keys().await?;
    let matches: Vec<&cairn_store::ApiKeyListing> = match (text, id) {
        (_, Some(id)) => keys.iter().filter(|k| k.id == id).collect(),
        (Some(text), None) => {
            // The whole key is found by its hash (only while it is live).
            let whole = store.find_api_key(&cairn_server::hash_key(text)).await?.map(|k| k.id);
            keys.iter().filter(|k| Some(k.id) == whole || k.name == text || k.prefix == text).collect()
        }
        (None, None) => bail!("name the key: its prefix, its name, the key itself, or --id N (`cairn keys list`)"),
    };
    // A revoked key matching too is no ambiguity when exactly one live key matches.
    let live: Vec<&cairn_store::ApiKeyListing> = matches.iter().copied().filter(|k| k.revoked_at.is_none()).collect();
    if let [only] = matches.as_slice() {
        return Ok(cairn_store::ApiKeyListing::clone(only));
    }
    if let [only] = live.as_slice() {
        return Ok(cairn_store::ApiKeyListing::clone(only));
    }
    if matches.is_empty() {
        let which = match (text, id) {
            (_, Some(id)) => format!("with id {id}"),
            (Some(t), None) => format!("named `{t}` or with that prefix"),
            (None, None) => String::new(),
        };
        bail!("no key {which}: `cairn keys list` shows the keys");
    }
    let list: Vec<String> =
        matches.iter().map(|k| format!("{} ({} `{}`, {})", k.id, k.kind.as_str(), k.name, k.prefix)).collect();
    bail!("{} keys match: {}; give one with --id N", matches.len(), list.join(", "))
}

/// The key list for a terminal.
fn render_keys(keys: &[cairn_store::ApiKeyListing]) -> String {
    use std::fmt::Write as _;
    if keys.is_empty() {
        return "no keys yet: `cairn keys create --kind write|publishable|secret`\n".to_string();
    }
    let mut out =
        format!("{:>4}  {:<12} {:<20} {:<18} {:<25} {}\n", "id", "kind", "name", "prefix", "created", "revoked");
    for k in keys {
        let revoked = k.revoked_at.map(|t| t.to_string()).unwrap_or_else(|| "-".to_string());
        let _ = writeln!(
            out,
            "{:>4}  {:<12} {:<20} {:<18} {:<25} {}",
            k.id,
            k.kind.as_str(),
            k.name,
            k.prefix,
            k.created_at.to_string(),
            revoked
        );
    }
    out
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
