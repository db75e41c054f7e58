//! cairn-server: cairn's HTTP surface.
//!
//! It owns the Segment-compatible tracking API (`/v1/identify`, `/v1/track`,
//! `/v1/group`, `/v1/page`, `/v1/screen`, `/v1/alias`, `/v1/batch`), the REST API for
//! secret keys (`/api/*`: the engine's state, CSM tasks, dead letters, the mail
//! provider's bounce and complaint webhook), the routes of signed links in messages
//! (opens, clicks, unsubscribes, survey answers and pages), the in-app inbox for a
//! product's front end (publishable key, CORS), key authentication, the mapping of
//! errors to HTTP statuses (in one place: [`error`]) and the web pages. It holds no
//! business logic: validation lives in `cairn-core`, persistence in `cairn-store`,
//! link signing in `cairn-channels` and engagement recording in `cairn-programs`; this
//! crate translates between HTTP and those.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

mod admin;
mod api;
pub mod audit;
pub mod auth;
mod cached_reports;
mod connections;
mod delivery;
pub mod error;
mod inapp;
mod keys;
mod links;
#[cfg(test)]
mod never_panics;
mod openapi;
mod pages;
mod panics;
mod report_cache;
mod reports;
mod tasks;
mod tracking;
mod ui;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use cairn_channels::LinkSigner;
use cairn_core::Clock;
use cairn_runtime::Runtime;
use cairn_store::{Appender, Store};
use cairn_workspace::{Diagnostic, Workspace};

pub use connections::Limits;
pub use inapp::{identity_secret, user_hash};
pub use keys::{generate_key, hash_key, key_prefix};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The store's group-commit writer.
    pub appender: Appender,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// The engine at run time, when a workspace is loaded.
    pub runtime: Option<Runtime>,
    /// The workspace folder, for reloads.
    pub workspace_dir: Option<PathBuf>,
    /// Verifies (and, for a survey page, signs) the links in messages; without it the
    /// link routes answer 503.
    pub links: Option<Arc<LinkSigner>>,
    /// The dates a tracked event may carry.
    pub plausible: cairn_core::plausible::PlausibleTimes,
    keys: Arc<keys::KeyCache>,
    auth: Arc<auth::Sessions>,
    limits: Limits,
    inapp_identity_verification: bool,
    identity_master: Arc<tokio::sync::OnceCell<String>>,
    /// The reports' figures per data version, shared by the pages and the API.
    reports: report_cache::ReportCache,
}

impl AppState {
    /// Builds the state and starts the writer task (needs a tokio runtime).
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> AppState {
        let appender = Appender::start(store.clone());
        let reports = report_cache::ReportCache::new(store.report_inputs(), clock.clone());
        AppState {
            store,
            appender,
            clock,
            runtime: None,
            workspace_dir: None,
            links: None,
            plausible: cairn_core::plausible::PlausibleTimes::default(),
            keys: Arc::new(keys::KeyCache::default()),
            auth: Arc::new(auth::Sessions::new(true)),
            limits: Limits::default(),
            inapp_identity_verification: true,
            identity_master: Arc::new(tokio::sync::OnceCell::new()),
            reports,
        }
    }

    /// Serves within `limits` (timeouts, connections) instead of [`Limits::default`].
    pub fn with_limits(mut self, limits: Limits) -> AppState {
        self.limits = limits;
        self
    }

    /// Marks the session cookie `Secure` (sent only over https) or not. On by default; a
    /// server on a loopback address serving plain http turns it off, or browsers would
    /// never send the cookie back (see [`auth`]).
    pub fn with_secure_cookies(mut self, secure: bool) -> AppState {
        self.auth = Arc::new(auth::Sessions::new(secure));
        self
    }

    /// Serves the in-app inbox without identity verification: any holder of the
    /// publishable key (which is public) can read any user's inbox. Only for a product
    /// whose users are all trusted with each other's messages.
    pub fn without_inapp_identity_verification(mut self) -> AppState {
        self.inapp_identity_verification = false;
        self
    }

    /// Serves the engine's state (`/api/*`) from `runtime`, reloading from `dir`.
    pub fn with_runtime(mut self, runtime: Runtime, dir: Option<PathBuf>) -> AppState {
        self.runtime = Some(runtime);
        self.workspace_dir = dir;
        self
    }

    /// Serves the signed-link routes (`/t/o`, `/t/c`, `/u`, `/s`, `/s/page`) with
    /// `signer`: the database's signer (`cairn_programs::link_signer`), so links in mail
    /// sent by any node verify.
    pub fn with_links(mut self, signer: LinkSigner) -> AppState {
        self.links = Some(Arc::new(signer));
        self
    }
}

/// Reads and checks a workspace folder: the checked definitions and their content hash,
/// or every problem found.
pub fn load_workspace(dir: &Path) -> Result<(Workspace, String), Vec<Diagnostic>> {
    let files = cairn_workspace::read_dir(dir)?;
    let ws = cairn_workspace::check_sources(&files)?;
    Ok((ws, cairn_runtime::definitions_hash(&files)))
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(pages::healthz))
        .route("/v1/identify", post(tracking::identify))
        .route("/v1/track", post(tracking::track))
        .route("/v1/group", post(tracking::group))
        .route("/v1/page", post(tracking::page))
        .route("/v1/screen", post(tracking::screen))
        .route("/v1/alias", post(tracking::alias))
        .route("/v1/batch", post(tracking::batch))
        .route("/v1/import", post(tracking::batch))
        .route("/api/openapi.json", get(openapi::serve))
        .route("/api/accounts", get(api::accounts))
        .route("/api/accounts/{id}", get(api::account))
        .route("/api/accounts/{id}/health/override", post(api::health_override))
        .route("/api/accounts/{id}/timeline", get(api::account_timeline))
        .route("/api/accounts/{id}/contacts", get(api::account_contacts))
        .route("/api/segments", get(api::segments))
        .route("/api/segments/{id}/members", get(api::segment_members))
        .route("/api/workspace/reload", post(api::reload))
        .route("/api/email/feedback", post(delivery::feedback))
        .route("/api/programs/dead-letters", get(delivery::dead_letters))
        .route("/api/programs/{id}/preview", get(api::program_preview))
        .route("/api/programs/{id}/dry-run", get(api::program_dry_run))
        .route("/api/reports/{name}", get(reports::report))
        .route("/api/tasks", get(tasks::open_tasks))
        .route("/api/views/{page}", get(ui::views_api::view))
        .route("/api/views/accounts/{id}", get(ui::views_api::account))
        .route("/api/views/programs/{id}", get(ui::views_api::program))
        .route("/api/tasks/{id}/complete", post(tasks::complete))
        .route("/t/o", get(links::open))
        .route("/t/c", get(links::click))
        .route("/u", get(links::unsubscribe_page).post(links::unsubscribe))
        .route("/s", get(links::survey_answer))
        .route("/s/page", get(links::survey_page))
        .route("/v1/inapp/messages", get(inapp::messages).options(inapp::preflight))
        .route("/v1/inapp/messages/{id}/{action}", post(inapp::mark).options(inapp::preflight))
        .merge(ui::router(&state))
        .fallback(error::not_found)
        .with_state(state)
}

/// Keeps the report pages' default figures current until `shutdown` completes: computes
/// them now, then again after the data changes (at most once per `every`, so a stream of
/// writes costs one computation per report at a time), so a visitor finds them ready
/// (see [`report_cache`]).
pub async fn keep_reports_warm(
    state: AppState,
    every: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut changes = state.store.report_inputs();
    tokio::pin!(shutdown);
    loop {
        ui::warm(&state).await;
        tokio::select! {
            _ = &mut shutdown => return,
            r = changes.changed() => if r.is_err() { return },
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Serves `router(state)` on `listener` within the state's [`Limits`] until `shutdown`
/// completes, then lets the requests in flight finish (see [`connections`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits;
    connections::serve_router(listener, router(state), limits, shutdown).await
}

/// The identity secret of the publishable key with row id `key_id` (what a product's
/// backend signs user ids with for the in-app inbox), creating the database's master
/// secret if needed.
pub async fn inapp_identity_secret(store: &Store, key_id: i64) -> Result<String, error::ApiError> {
    let master = inapp::identity_master(store).await?;
    Ok(identity_secret(&master, key_id))
}
