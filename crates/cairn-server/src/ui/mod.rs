//! The web UI: server-rendered pages.
//!
//! [`routes`] is the one list of UI routes, each with the [`Permission`] it needs; the
//! router is built from it and the role × route tests enumerate it.

use axum::Router;
use axum::middleware;
use axum::routing::{MethodRouter, get};

use crate::AppState;
use crate::auth::Permission;

/// One UI route.
pub(crate) struct UiRoute {
    /// The path, in axum's syntax (`/accounts/{id}`).
    pub path: &'static str,
    /// What it needs.
    pub needs: Permission,
    /// Its handlers (one method per entry: a path with GET and POST is listed twice).
    pub handler: MethodRouter<AppState>,
}

/// Every UI route.
pub(crate) fn routes() -> Vec<UiRoute> {
    vec![UiRoute { path: "/", needs: Permission::Read, handler: get(crate::pages::home) }]
}

/// The UI's router, built from [`routes`]: each route behind the check of its permission.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    routes().into_iter().fold(Router::new(), |r, route| {
        let needs = route.needs;
        let guard = middleware::from_fn_with_state(state.clone(), move |s, req, next| {
            crate::auth::require(needs, s, req, next)
        });
        r.route(route.path, route.handler.route_layer(guard))
    })
}
