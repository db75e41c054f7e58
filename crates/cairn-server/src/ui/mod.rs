//! The web UI: server-rendered pages.
//!
//! [`routes`] is the one list of UI routes, each with the [`Permission`] it needs; the
//! router is built from it and the role × route tests enumerate it. The sign-in page
//! (`/login`, GET and POST) is the one UI route outside the list: the signed-out use it.

use axum::Router;
use axum::middleware;
use axum::routing::{MethodRouter, get, post};

use crate::AppState;
use crate::auth::Permission;

#[cfg(test)]
mod role_table;

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
    use crate::admin;
    use Permission::*;
    let route = |path, needs, handler| UiRoute { path, needs, handler };
    vec![
        route("/", Read, get(crate::pages::home)),
        route("/logout", Read, post(crate::auth::sign_in::logout)),
        route("/admin/users", Administer, get(admin::users).post(admin::add_user)),
        route("/admin/users/{id}/role", Administer, post(admin::change_role)),
        route("/admin/users/{id}/disable", Administer, post(admin::disable_user)),
        route("/admin/keys", Administer, get(admin::keys).post(admin::create_key)),
        route("/admin/keys/{id}/revoke", Administer, post(admin::revoke_key)),
        route("/admin/audit", Administer, get(admin::audit)),
    ]
}

/// The UI's router, built from [`routes`]: each route behind the check of its permission.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let sign_in = Router::new().route("/login", get(crate::auth::sign_in::form).post(crate::auth::sign_in::submit));
    routes().into_iter().fold(sign_in, |r, route| {
        let needs = route.needs;
        let guard = middleware::from_fn_with_state(state.clone(), move |s, req, next| {
            crate::auth::require(needs, s, req, next)
        });
        r.route(route.path, route.handler.route_layer(guard))
    })
}
