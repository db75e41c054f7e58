//! The one app builder: `cairn serve`, the behaviour tests and the benchmarks all start
//! cairn through [`App::build`] and [`App::run`], so the wiring they test is the wiring
//! that ships — the store's group-commit writer, the engine runtime, the program runner,
//! the database's link signer, the in-app identity check, the connection limits and the
//! server.
//!
//! Building binds the listener (`127.0.0.1:0` picks a free port: [`App::addr`] says which)
//! and evaluates the workspace over the event log, which can take a while on a large
//! history: a caller that must stay responsive to a shutdown races it against the
//! shutdown (dropping the build cancels it at its next await). Running serves until the
//! shutdown future completes, lets requests in flight finish within
//! [`Limits::shutdown_grace`], then stops the runner and the engine. Every event the
//! server acknowledged was committed before its answer, so stopping loses none.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use cairn_core::Clock;
use cairn_core::plausible::PlausibleTimes;
use cairn_programs::Runner;
use cairn_runtime::Runtime;
use cairn_server::{AppState, Limits};
use cairn_store::Store;
use cairn_workspace::Workspace;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::delivery::DeliveryArgs;

/// How long, after the server stopped, the runner and the engine get to finish what they
/// are doing (a delivery pass, an evaluation step) before they are abandoned.
const STOP_BACKGROUND_WITHIN: Duration = Duration::from_secs(3);

/// The report pages' figures are recomputed at most this often while data keeps changing
/// (operational pacing: each computation may read the whole log).
const WARM_REPORTS_EVERY: Duration = Duration::from_secs(10);

/// The definitions the engine runs.
pub enum Definitions {
    /// A workspace folder, reloaded on SIGHUP and `POST /api/workspace/reload`.
    Folder(PathBuf),
    /// Checked definitions and their content hash (the demo's built-in example
    /// workspace, a benchmark's generated one); never reloaded.
    Loaded(Arc<Workspace>, String),
}

/// What to build.
pub struct AppConfig {
    /// Address to listen on; port 0 picks a free one.
    pub listen: String,
    /// The workspace; without one, only the tracking API, the in-app inbox and the link
    /// routes are served (no engine, no programs).
    pub workspace: Option<Definitions>,
    /// The program runner's delivery settings.
    pub delivery: DeliveryArgs,
    /// Timeouts and the bound on connections.
    pub limits: Limits,
    /// Whether the in-app inbox requires `userHash` (on unless turned off explicitly).
    pub inapp_identity_verification: bool,
    /// The dates an event may carry; the tracking API refuses others.
    pub plausible: PlausibleTimes,
    /// Whether the session cookie is `Secure`; `None` guesses: yes, unless the server
    /// listens on a loopback address (plain http on 127.0.0.1, where browsers would not
    /// send a `Secure` cookie back).
    pub secure_cookies: Option<bool>,
}

impl AppConfig {
    /// Listens on `listen` with the given workspace and every other setting at its default.
    pub fn new(listen: impl Into<String>, workspace: Option<Definitions>) -> AppConfig {
        AppConfig {
            listen: listen.into(),
            workspace,
            delivery: DeliveryArgs::default(),
            limits: Limits::default(),
            inapp_identity_verification: true,
            plausible: PlausibleTimes::default(),
            secure_cookies: None,
        }
    }
}

/// A built app, listening, not yet serving.
pub struct App {
    addr: SocketAddr,
    listener: TcpListener,
    store: Store,
    state: AppState,
    engine: Option<(Runtime, Runner)>,
    reload_dir: Option<PathBuf>,
}

impl App {
    /// Binds the listener, loads the workspace and builds the engine over the event log,
    /// and readies the program runner.
    pub async fn build(store: Store, clock: Arc<dyn Clock>, config: AppConfig) -> Result<App> {
        let listener =
            TcpListener::bind(&config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let signer = cairn_programs::link_signer(&store).await.context("creating the link signer")?;
        let secure_cookies = config.secure_cookies.unwrap_or(!addr.ip().is_loopback());
        let mut state = AppState::new(store.clone(), Arc::clone(&clock))
            .with_links(signer)
            .with_limits(config.limits)
            .with_secure_cookies(secure_cookies);
        state.plausible = config.plausible;
        if !config.inapp_identity_verification {
            tracing::warn!(
                "in-app identity verification is OFF: anyone holding the publishable key (it ships in your product's \
front end) can read and mark any user's in-app messages. Turn it on unless every user may see every inbox."
            );
            state = state.without_inapp_identity_verification();
        }
        let (definitions, reload_dir) = match config.workspace {
            None => (None, None),
            Some(Definitions::Folder(dir)) => {
                let (ws, hash) = crate::show::load_workspace(&dir)?;
                (Some((Arc::new(ws), hash)), Some(dir))
            }
            Some(Definitions::Loaded(ws, hash)) => (Some((ws, hash)), None),
        };
        let mut engine = None;
        if let Some((ws, hash)) = definitions {
            tracing::info!("evaluating the workspace ({}) over the event log…", ws.summary());
            let runtime = Runtime::start(store.clone(), Arc::clone(&clock), ws, hash).await?;
            let runner_config = config.delivery.runner_config(&addr.to_string())?;
            let runner = Runner::new(store.clone(), runtime.clone(), Arc::clone(&clock), runner_config)
                .await
                .context("starting the program runner")?;
            state = state.with_runtime(runtime.clone(), reload_dir.clone());
            engine = Some((runtime, runner));
        }
        Ok(App { addr, listener, store, state, engine, reload_dir })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store it runs on.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The engine at run time, when a workspace is loaded.
    pub fn runtime(&self) -> Option<&Runtime> {
        self.engine.as_ref().map(|(runtime, _)| runtime)
    }

    /// Serves until `shutdown` completes, then stops: requests in flight finish (within
    /// the limits' grace), then the runner and the engine stop.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let App { listener, state, engine, reload_dir, .. } = self;
        let (stop, stopping) = watch::channel(false);
        let mut background = Vec::new();
        if let Some((runtime, runner)) = engine {
            background.push(tokio::spawn(runtime.clone().run(stopped(stopping.clone()))));
            background.push(tokio::spawn(runner.run(stopped(stopping.clone()))));
            if let Some(dir) = reload_dir {
                tokio::spawn(reload_on_sighup(runtime, dir, stopping.clone()));
            }
            tokio::spawn(cairn_server::keep_reports_warm(state.clone(), WARM_REPORTS_EVERY, stopped(stopping.clone())));
        }
        let served = cairn_server::serve(listener, state, shutdown).await.context("serving HTTP");
        let _ = stop.send(true);
        for task in background {
            if tokio::time::timeout(STOP_BACKGROUND_WITHIN, task).await.is_err() {
                tracing::warn!("a background task did not stop within {STOP_BACKGROUND_WITHIN:?}: abandoned");
            }
        }
        served
    }
}

/// Completes once `stopping` turns true (or its sender is gone).
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// Reloads the workspace on every SIGHUP until stopped; invalid definitions are logged
/// and the running ones kept.
async fn reload_on_sighup(runtime: Runtime, dir: PathBuf, stopping: watch::Receiver<bool>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
    let stop = stopped(stopping);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            signal = hup.recv() => if signal.is_none() { return },
        }
        match cairn_server::load_workspace(&dir) {
            Ok((ws, hash)) => {
                let summary = ws.summary().to_string();
                let reload = runtime.reload(Arc::new(ws), hash);
                tokio::select! {
                    () = &mut stop => return,
                    result = reload => match result {
                        Ok(()) => tracing::info!("workspace reloaded: {summary}"),
                        Err(e) => tracing::error!("workspace reload failed, the running definitions are kept: {e}"),
                    },
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

/// A shutdown that can be awaited by several parties: the build, the server.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Completes on SIGTERM or Ctrl-C (SIGINT). Should the process still run `hard_stop`
    /// later (work that never yields, such as an evaluation that does not check for
    /// cancellation), it exits with status 1 from a thread of its own.
    pub fn on_signals(hard_stop: Duration) -> Shutdown {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = term => {}
            }
            tracing::info!("stopping: finishing the requests in flight");
            let _ = tx.send(true);
            std::thread::spawn(move || {
                std::thread::sleep(hard_stop);
                eprintln!("error: cairn did not stop within {hard_stop:?} of the signal: exiting now");
                std::process::exit(1);
            });
        });
        Shutdown(rx)
    }

    /// Completes once the shutdown began.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        stopped(self.0.clone())
    }
}

/// How many connections to serve at once: the default, or fewer when the process may
/// open fewer files (each connection is one; 64 stay for the database and the rest).
pub fn default_max_connections() -> usize {
    let fallback = Limits::default().max_connections;
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else { return fallback };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    match soft {
        Some(n) => n.saturating_sub(64).clamp(16, fallback),
        None => fallback,
    }
}
