//! cairn-server: cairn's HTTP surface.
//!
//! It owns the Segment-compatible tracking API (`/v1/identify`, `/v1/track`,
//! `/v1/group`, `/v1/page`, `/v1/screen`, `/v1/alias`, `/v1/batch`), key
//! authentication, the mapping of errors to HTTP statuses (in one place: [`error`]) and
//! the web pages. It holds no business logic: validation lives in `cairn-core`,
//! persistence in `cairn-store`; this crate translates between HTTP and those.

pub mod error;
mod keys;
mod pages;
mod tracking;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use cairn_core::Clock;
use cairn_store::{Appender, Store};

pub use keys::{generate_key, hash_key};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The store's group-commit writer.
    pub appender: Appender,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    keys: Arc<keys::KeyCache>,
}

impl AppState {
    /// Builds the state and starts the writer task (needs a tokio runtime).
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> AppState {
        let appender = Appender::start(store.clone());
        AppState { store, appender, clock, keys: Arc::new(keys::KeyCache::default()) }
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/healthz", get(pages::healthz))
        .route("/v1/identify", post(tracking::identify))
        .route("/v1/track", post(tracking::track))
        .route("/v1/group", post(tracking::group))
        .route("/v1/page", post(tracking::page))
        .route("/v1/screen", post(tracking::screen))
        .route("/v1/alias", post(tracking::alias))
        .route("/v1/batch", post(tracking::batch))
        .route("/v1/import", post(tracking::batch))
        .fallback(error::not_found)
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
