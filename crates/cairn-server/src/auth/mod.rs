//! Who is signed in to the web UI, and what their role allows.
//!
//! Every UI route is declared once, in [`crate::ui::routes`], with the [`Permission`] it
//! needs; `ui::router` puts each behind [`require`], and the role × route tests enumerate
//! the same list, so a new page cannot be added without saying who may use it. Only the
//! sign-in page (`/login`) is outside it: it is where the signed-out go.
//!
//! [`require`], for every UI request:
//! 1. finds the session from the `cairn_session` cookie (a random 256-bit id; the store
//!    keeps only its SHA-256) — none, expired, or its user disabled: a GET is sent to
//!    `/login?next=…`, anything else is answered 401;
//! 2. checks the role against the route's [`Permission`]: 403 page when it does not allow;
//! 3. on every method but GET and HEAD, checks the session's CSRF token, sent as the form
//!    field `csrf` or the header `X-CSRF-Token`, compared in constant time: 403 and the
//!    handler never runs when it is missing or wrong;
//! 4. hands the handler a [`SignedIn`] (as a request extension, read by the extractor).
//!
//! Sessions last [`SESSION_LIFETIME`] from sign-in, whatever happens; signing in always
//! issues a new id and ends the session the browser held before (no session fixation).
//! The cookie is `HttpOnly; SameSite=Lax; Path=/`, and `Secure` unless the server listens
//! on a loopback address (a browser does not send a `Secure` cookie to
//! `http://127.0.0.1`): `cairn serve --secure-cookies on|off` overrides the guess.

pub mod cookies;
pub mod password;
pub mod rate_limit;
pub(crate) mod sign_in;

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use cairn_store::AuditActor;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;

/// How long a session lasts from sign-in.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(12);
/// The largest form body the CSRF check reads (UI forms are small).
const FORM_LIMIT: usize = 256 * 1024;
/// `last_seen` is written at most this often per session.
const TOUCH_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, and users, API keys and the audit log.
    Admin,
    /// Definitions and programs (reload, pause, resume), and everything a viewer sees.
    Ops,
    /// Accounts and tasks: health overrides, notes, claiming and completing tasks.
    Csm,
    /// Reads every page; changes nothing.
    Viewer,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read any page or report.
    Read,
    /// A CSM's work: health overrides, notes, claiming and completing tasks.
    Work,
    /// Operations: workspace reloads, pausing and resuming programs.
    Operate,
    /// Administration: users, API keys, the audit log.
    Administer,
}

/// A role name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{given}`: use admin, ops, csm or viewer{hint}")]
pub struct UnknownRole {
    given: String,
    hint: String,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Ops, Role::Csm, Role::Viewer];

    /// Whether this role may use a route that needs `p`.
    pub fn allows(self, p: Permission) -> bool {
        matches!(
            (self, p),
            (_, Permission::Read) | (Role::Admin, _) | (Role::Ops, Permission::Operate) | (Role::Csm, Permission::Work)
        )
    }

    /// The role's name as users type it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ops => "ops",
            Role::Csm => "csm",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a role name (any case), with a did-you-mean when it is close to one.
    pub fn parse(s: &str) -> Result<Role, UnknownRole> {
        let lower = s.trim().to_lowercase();
        Role::ALL.into_iter().find(|r| r.as_str() == lower).ok_or_else(|| UnknownRole {
            given: s.to_string(),
            hint: cairn_core::suggest::closest(&lower, Role::ALL.iter().map(|r| r.as_str()))
                .map(|near| format!(" (did you mean `{near}`?)"))
                .unwrap_or_default(),
        })
    }
}

/// The person behind a UI request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user's row id.
    pub user_id: i64,
    /// Their sign-in address.
    pub email: String,
    /// Their role.
    pub role: Role,
    /// The session's CSRF token: every form carries it as the hidden field `csrf`.
    pub csrf: String,
}

impl SignedIn {
    /// The user as the audit log names them.
    pub fn actor(&self) -> AuditActor {
        AuditActor::User { id: self.user_id, email: self.email.clone() }
    }
}

/// The node's sign-in settings and attempt counts.
pub(crate) struct Sessions {
    pub cookie: cookies::CookieOptions,
    pub limiter: rate_limit::SignInLimiter,
}

impl Sessions {
    pub(crate) fn new(secure: bool) -> Sessions {
        Sessions { cookie: cookies::CookieOptions { secure }, limiter: rate_limit::SignInLimiter::default() }
    }
}

/// The live session of a request, if any.
pub(crate) async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<SignedIn>, ApiError> {
    let Some(token) = cookies::cookie(headers, cookies::SESSION_COOKIE) else { return Ok(None) };
    let id_hash = crate::keys::hash_key(token);
    let now = state.clock.now();
    let Some(s) = state.store.find_session(&id_hash, now).await? else { return Ok(None) };
    if now.duration_since(s.last_seen) >= TOUCH_EVERY {
        state.store.touch_session(&id_hash, now).await?;
    }
    let role = Role::parse(&s.user.role)
        .map_err(|e| ApiError::Internal(format!("user {} has a stored role cairn does not know: {e}", s.user.id)))?;
    Ok(Some(SignedIn { user_id: s.user.id, email: s.user.email, role, csrf: s.csrf }))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    /// The user [`require`] found; outside a UI route, the session's user (no CSRF check).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<SignedIn>() {
            return Ok(user.clone());
        }
        match session(state, &parts.headers).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(signed_out(&parts.method, parts.uri.path_and_query().map(|p| p.as_str()))),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The network address of the client (none when not served by `cairn_server::serve`).
pub(crate) struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// A page that says why the request was refused, with a way on.
#[derive(Template)]
#[template(path = "refused.html")]
struct Refused<'a> {
    chrome: crate::ui::Chrome,
    title: &'a str,
    message: &'a str,
    link: &'a str,
    link_text: &'a str,
}

pub(crate) fn refused(status: StatusCode, title: &str, message: &str, link: &str, link_text: &str) -> Response {
    match (Refused { chrome: crate::ui::Chrome::signed_out(), title, message, link, link_text }).render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => ApiError::Internal(format!("rendering a refusal: {e}")).into_response(),
    }
}

/// The answer to a signed-out request: a GET goes to the sign-in page and comes back after;
/// anything else is refused (its form cannot be replayed after signing in).
fn signed_out(method: &Method, path_and_query: Option<&str>) -> Response {
    if method == Method::GET || method == Method::HEAD {
        let next: String = form_urlencoded::byte_serialize(path_and_query.unwrap_or("/").as_bytes()).collect();
        return Redirect::to(&format!("/login?next={next}")).into_response();
    }
    refused(
        StatusCode::UNAUTHORIZED,
        "Signed out",
        "You are not signed in (or your session ended), so nothing was changed. Sign in and try again.",
        "/login",
        "Sign in",
    )
}

/// Lets the request through when a session's role allows `needs` and, for a method that
/// changes something, the session's CSRF token came with it.
pub(crate) async fn require(needs: Permission, State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let user = match session(&state, &parts.headers).await {
        Ok(Some(user)) => user,
        Ok(None) => return signed_out(&parts.method, parts.uri.path_and_query().map(|p| p.as_str())),
        Err(e) => return e.into_response(),
    };
    if !user.role.allows(needs) {
        let message = format!(
            "Your role ({}) may not use this page or action. Ask an admin for a role that may.",
            user.role.as_str()
        );
        return refused(StatusCode::FORBIDDEN, "Not allowed", &message, "/", "Back to the morning view");
    }
    let body = if parts.method == Method::GET || parts.method == Method::HEAD {
        body
    } else {
        match checked_csrf(&parts.headers, body, &user.csrf).await {
            Ok(body) => body,
            Err(response) => return response,
        }
    };
    parts.extensions.insert(user);
    next.run(Request::from_parts(parts, body)).await
}

/// The body again when the request carries `expected` as `X-CSRF-Token` or as the form
/// field `csrf`; the refusal otherwise.
async fn checked_csrf(headers: &HeaderMap, body: Body, expected: &str) -> Result<Body, Response> {
    let stale = || {
        refused(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form did not carry your session's security token (it may come from an older session or \
another site), so nothing was changed. Reload the page and try again.",
            "/",
            "Back to the morning view",
        )
    };
    if let Some(token) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return if cookies::constant_time_eq(token, expected) { Ok(body) } else { Err(stale()) };
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(stale());
    }
    let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
        refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Form too large",
            "The form sent more than 256 KiB; nothing was changed.",
            "/",
            "Back to the morning view",
        )
    })?;
    match cookies::form_field(&bytes, "csrf") {
        Some(token) if cookies::constant_time_eq(&token, expected) => Ok(Body::from(bytes)),
        _ => Err(stale()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_in_any_case_and_a_near_miss_gets_a_suggestion() {
        assert_eq!(Role::parse("Admin"), Ok(Role::Admin));
        assert_eq!(Role::parse(" csm "), Ok(Role::Csm));
        assert_eq!(
            Role::parse("viewr").unwrap_err().to_string(),
            "unknown role `viewr`: use admin, ops, csm or viewer (did you mean `viewer`?)"
        );
        assert_eq!(Role::parse("root").unwrap_err().to_string(), "unknown role `root`: use admin, ops, csm or viewer");
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
    }

    #[test]
    fn each_role_has_its_permissions() {
        use Permission::*;
        let table = [
            (Role::Admin, [true, true, true, true]),
            (Role::Ops, [true, false, true, false]),
            (Role::Csm, [true, true, false, false]),
            (Role::Viewer, [true, false, false, false]),
        ];
        for (role, expected) in table {
            let got = [Read, Work, Operate, Administer].map(|p| role.allows(p));
            assert_eq!(got, expected, "{role:?}");
        }
    }
}
