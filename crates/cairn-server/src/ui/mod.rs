//! The web UI: server-rendered pages.
//!
//! [`routes`] is the one list of UI routes, each with the [`Permission`] it needs; the
//! router is built from it and the role × route tests enumerate it. Each page family is a
//! module with a function building the page's data as a `Serialize` struct (what
//! `GET /api/views/…` returns as JSON, [`views_api`]) and an askama template rendering
//! it (`templates/`, extending `base.html`). Templates escape with cairn's one escaper
//! ([`CairnHtml`], configured in `askama.toml`). Every UI response carries a strict
//! Content-Security-Policy: no inline script or style, assets only from cairn itself
//! (`/static/cairn.css`, `/static/app.js`, embedded in the binary).
//! The sign-in page (`/login`, GET and POST) is the one UI route outside the list: the
//! signed-out use it.
//! The report pages (insights, KPIs, journey, programs, data, a segment's sizes) read their
//! figures from the report cache ([`crate::report_cache`]): a page waits as
//! [`crate::report_cache::Wait::PAGE`] says at most, then shows the last complete figures
//! with their time, or "computing"; their
//! JSON views wait for current figures. [`warm`] starts their default figures' computation.

pub(crate) mod account;
pub(crate) mod account_timeline;
pub(crate) mod accounts;
pub(crate) mod chart;
mod data;
mod insights;
mod journey;
mod kpis;
mod morning;
mod programs;
mod segments;
mod staffing;
mod tasks;
pub(crate) mod views_api;

use std::fmt;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};

use crate::AppState;
use crate::auth::{Permission, Role, SignedIn};
use crate::error::ApiError;

#[cfg(test)]
mod role_table;

/// Starts computing the report pages' default figures that are not current (the
/// insights, KPIs, journey and programs pages, and each program's), without waiting.
pub(crate) async fn warm(state: &AppState) {
    let now = crate::report_cache::Wait::START;
    let mut failures = Vec::new();
    // Computations run a few at a time, in the order they are asked for: the quick ones
    // first (the ledger's, the programs'), the insights (which read the whole log) last.
    // Not the doctor (`/data`): it reads every event, so it is computed when asked for.
    failures.push(morning::data(state, now).await.err());
    failures.push(kpis::data(state, &Default::default(), now).await.err());
    failures.push(programs::list_data(state, now).await.err());
    failures.push(journey::data(state, &Default::default(), now).await.err());
    if let Some(ws) = crate::api::live_workspace(state).await {
        for p in ws.programs() {
            failures.push(programs::data(state, p.id.as_str(), now).await.err());
        }
    }
    failures.push(insights::data(state, &insights::InsightsQuery::default(), now).await.err());
    for e in failures.into_iter().flatten() {
        // A workspace without a journey has no journey page: nothing to warn about.
        if !matches!(e, ApiError::NotFound(_)) {
            tracing::warn!("warming the report pages: {e}");
        }
    }
}

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
    use Permission::{Administer, Operate, Read, Work};
    let r = |path, needs, handler| UiRoute { path, needs, handler };
    vec![
        r("/", Read, get(morning::page)),
        r("/accounts", Read, get(accounts::page)),
        r("/accounts/{id}", Read, get(account::page)),
        r("/accounts/{id}/health-override", Work, post(account::override_health)),
        r("/accounts/{id}/notes", Work, post(account::add_note)),
        r("/segments", Read, get(segments::page)),
        r("/segments/check", Read, get(segments::check)),
        r("/journey", Read, get(journey::page)),
        r("/programs", Read, get(programs::list)),
        r("/programs/{id}", Read, get(programs::page)),
        r("/programs/{id}/dry-run", Operate, get(programs::dry_run_page)),
        r("/programs/{id}/pause", Operate, post(programs::pause)),
        r("/programs/{id}/resume", Operate, post(programs::resume)),
        r("/tasks", Read, get(tasks::page)),
        r("/tasks/{id}/claim", Work, post(tasks::claim)),
        r("/tasks/{id}/complete", Work, post(tasks::complete)),
        r("/insights", Read, get(insights::page)),
        r("/kpis", Read, get(kpis::page)),
        r("/staffing", Read, get(staffing::page)),
        r("/data", Read, get(data::page)),
        r("/logout", Read, post(crate::auth::sign_in::logout)),
        r("/admin/users", Administer, get(admin::users).post(admin::add_user)),
        r("/admin/users/{id}/role", Administer, post(admin::change_role)),
        r("/admin/users/{id}/disable", Administer, post(admin::disable_user)),
        r("/admin/keys", Administer, get(admin::keys).post(admin::create_key)),
        r("/admin/keys/{id}/revoke", Administer, post(admin::revoke_key)),
        r("/admin/audit", Administer, get(admin::audit)),
    ]
}

/// The UI's router, built from [`routes`]: each route behind the check of its permission,
/// the static assets (no sign-in needed), and the security headers on every response.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let sign_in = Router::new().route("/login", get(crate::auth::sign_in::form).post(crate::auth::sign_in::submit));
    let pages = routes().into_iter().fold(sign_in, |r, route| {
        let needs = route.needs;
        let guard = middleware::from_fn_with_state(state.clone(), move |s, req, next| {
            crate::auth::require(needs, s, req, next)
        });
        r.route(route.path, route.handler.route_layer(guard))
    });
    pages
        .route("/static/cairn.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/static/app.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .route("/static/favicon.svg", get(|| async { asset("image/svg+xml", ICON) }))
        .route("/favicon.ico", get(|| async { asset("image/svg+xml", ICON) }))
        .layer(middleware::map_response(security_headers))
}

const CSS: &str = include_str!("../../static/cairn.css");
const JS: &str = include_str!("../../static/app.js");
const ICON: &str = include_str!("../../static/favicon.svg");

/// What the pages link their assets with: the version busts the long cache on upgrade.
pub(crate) const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=604800")),
        ],
        body,
    )
        .into_response()
}

/// The Content-Security-Policy of every UI response: everything from cairn itself, no
/// inline script or style, no framing, forms posting only back to cairn.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// askama's escaper for the UI's `.html` templates: cairn's one HTML escaper.
#[derive(Debug, Clone, Copy, Default)]
pub struct CairnHtml;

impl askama::filters::Escaper for CairnHtml {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, string: &str) -> fmt::Result {
        cairn_core::html::write_escaped_html(&mut dest, string)
    }
}

/// A link of the main navigation.
pub(crate) struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every page's frame shows: who is signed in, the navigation, the CSRF token forms
/// carry.
pub(crate) struct Chrome {
    pub email: String,
    pub role: &'static str,
    pub csrf: String,
    pub nav: Vec<NavLink>,
    /// Whether the user may change accounts and tasks (forms are shown, not just data).
    pub can_work: bool,
    /// Whether the user may pause and resume programs.
    pub can_operate: bool,
    pub version: &'static str,
}

const NAV: &[(&str, &str)] = &[
    ("/", "Today"),
    ("/accounts", "Accounts"),
    ("/segments", "Segments"),
    ("/journey", "Journey"),
    ("/programs", "Programs"),
    ("/tasks", "Tasks"),
    ("/insights", "Insights"),
    ("/kpis", "KPIs"),
    ("/staffing", "Staffing"),
    ("/data", "Data"),
];

const ADMIN_NAV: &[(&str, &str)] = &[("/admin/users", "Users"), ("/admin/keys", "Keys"), ("/admin/audit", "Audit")];

impl Chrome {
    /// The frame of a page for someone not (or no longer) signed in: no navigation, no user.
    pub(crate) fn signed_out() -> Chrome {
        Chrome {
            email: String::new(),
            role: "",
            csrf: String::new(),
            nav: Vec::new(),
            can_work: false,
            can_operate: false,
            version: ASSET_VERSION,
        }
    }

    /// The frame for `user` on the page under `current` (a top-level path).
    pub(crate) fn new(user: &SignedIn, current: &str) -> Chrome {
        let admin = if user.role == Role::Admin { ADMIN_NAV } else { &[] };
        Chrome {
            email: user.email.clone(),
            role: user.role.as_str(),
            csrf: user.csrf.clone(),
            nav: NAV
                .iter()
                .chain(admin)
                .map(|(href, label)| NavLink { href, label, current: *href == current })
                .collect(),
            can_work: user.role.allows(Permission::Work),
            can_operate: user.role.allows(Permission::Operate),
            version: ASSET_VERSION,
        }
    }
}

/// A failure shown as a page (the status of the [`ApiError`] it wraps, its message).
pub(crate) struct UiError(pub ApiError);

impl<E: Into<ApiError>> From<E> for UiError {
    fn from(e: E) -> UiError {
        UiError(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    message: String,
    version: &'static str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let message = self.0.to_string();
        let status = self.0.into_response().status();
        let page = ErrorPage { status: status.as_u16(), message, version: ASSET_VERSION };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        }
    }
}

/// A page's HTML, or a 500 naming the template that failed.
pub(crate) fn render(t: &impl Template) -> Result<Html<String>, UiError> {
    t.render().map(Html).map_err(|e| UiError(ApiError::Internal(format!("a page did not render: {e}"))))
}

/// Where a form sends the browser back to (303, so a reload does not post again).
pub(crate) fn back_to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// The query's value, trimmed, or `None` when empty.
pub(crate) fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A status for a refused form (e.g. a missing reason), as a page.
pub(crate) fn bad_form(message: impl Into<String>) -> UiError {
    UiError(ApiError::BadRequest(message.into()))
}

/// Days from `from` to `to` (negative when `to` is earlier).
pub(crate) fn days_until(from: jiff::civil::Date, to: jiff::civil::Date) -> i64 {
    (to - from).get_days().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_exactly_as_cairn_core_does() {
        let hostile = r#"<img src=x onerror="alert('x')"> & é"#;
        let page = ErrorPage { status: 400, message: hostile.into(), version: ASSET_VERSION };
        let html = page.render().expect("renders");
        let escaped = cairn_core::html::escape_html(hostile);
        assert!(html.contains(&format!("<p class=error-message>{escaped}</p>")), "{html}");
        assert!(!html.contains("<img"));
    }

    #[test]
    fn every_route_says_what_it_needs_and_posts_need_more_than_reading() {
        for route in routes() {
            assert!(route.path.starts_with('/'), "{}", route.path);
            let posts = ["/health-override", "/notes", "/claim", "/complete", "/pause", "/resume"];
            if posts.iter().any(|p| route.path.ends_with(p)) {
                assert_ne!(route.needs, Permission::Read, "{} changes things", route.path);
            }
        }
    }
}
