//! `/login` (the form, and signing in) and `/logout`.

use std::sync::OnceLock;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use cairn_store::AuditActor;
use serde::Deserialize;
use serde_json::json;

use super::cookies::{self, LOGIN_COOKIE, SESSION_COOKIE};
use super::{ClientIp, SESSION_LIFETIME, SignedIn, password};
use crate::AppState;
use crate::audit::{self, AuditAction};
use crate::error::ApiError;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    chrome: crate::ui::Chrome,
    csrf: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

/// What `/login` is asked.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoginForm {
    email: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

fn page(
    state: &AppState,
    status: StatusCode,
    login_token: &str,
    next: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let html =
        match (LoginPage { chrome: crate::ui::Chrome::signed_out(), csrf: login_token, next, email, error }).render() {
            Ok(html) => html,
            Err(e) => return ApiError::Internal(format!("rendering the sign-in page: {e}")).into_response(),
        };
    let cookie = cookies::set_cookie(LOGIN_COOKIE, login_token, 3600, state.auth.cookie);
    let mut response = (status, Html(html)).into_response();
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// The sign-in form's token: the browser's (when it looks like one of ours) or a new one.
fn login_token(headers: &HeaderMap) -> Result<String, ApiError> {
    match cookies::cookie(headers, LOGIN_COOKIE) {
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(t.to_string()),
        _ => cookies::random_token().map_err(|e| ApiError::Internal(format!("no randomness from the OS: {e}"))),
    }
}

/// `GET /login`: the sign-in form.
pub(crate) async fn form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    match login_token(&headers) {
        Ok(token) => page(&state, StatusCode::OK, &token, cookies::safe_next(q.next.as_deref()), "", None),
        Err(e) => e.into_response(),
    }
}

/// A PHC string to verify against when no such user exists, so that an unknown address
/// takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| password::hash("not anybody's password", &[0x5a; 16]).unwrap_or_default())
}

/// `POST /login`: signs in, or shows the form again with why not.
pub(crate) async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let now = state.clock.now();
    let next = cookies::safe_next(f.next.as_deref()).to_string();
    let token = match login_token(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let email = f.email.trim();
    let key = email.to_lowercase();
    // Login CSRF: the form must come from our page (its token matches the cookie it set).
    let expected = cookies::cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !cookies::constant_time_eq(&f.csrf, expected) {
        let msg = "The sign-in form expired. Please sign in again.";
        return page(&state, StatusCode::FORBIDDEN, &token, &next, email, Some(msg));
    }
    if let Err(refusal) = state.auth.limiter.check(&key, ip, now) {
        return page(&state, StatusCode::TOO_MANY_REQUESTS, &token, &next, email, Some(&refusal.message(now)));
    }
    let found = match state.store.user_for_sign_in(email).await {
        Ok(found) => found,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let user = match found {
        Some((user, hash)) => {
            let matches = password::verify(&f.password, &hash);
            (matches && user.disabled_at.is_none()).then_some(user)
        }
        None => {
            let _ = password::verify(&f.password, decoy_hash());
            None
        }
    };
    let Some(user) = user else {
        state.auth.limiter.failed(&key, ip, now);
        let label: String = email.chars().take(200).collect();
        let actor = AuditActor::Anonymous { label: label.clone() };
        let detail = json!({ "ip": ip.map(|i| i.to_string()) });
        audit::record(&state, &actor, AuditAction::SignInFailed, &label, detail).await;
        let msg = "That address and password do not match an active account.";
        return page(&state, StatusCode::UNAUTHORIZED, &token, &next, email, Some(msg));
    };
    state.auth.limiter.succeeded(&key);
    // A new id every sign-in; the one the browser held before (anybody's) ends here.
    if let Some(old) = cookies::cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.store.end_session(&crate::keys::hash_key(old)).await
    {
        return ApiError::from(e).into_response();
    }
    let (id, csrf) = match (cookies::random_token(), cookies::random_token()) {
        (Ok(id), Ok(csrf)) => (id, csrf),
        _ => return ApiError::Internal("no randomness from the OS".into()).into_response(),
    };
    let expires = now + SESSION_LIFETIME;
    if let Err(e) = state.store.create_session(&crate::keys::hash_key(&id), user.id, &csrf, now, expires).await {
        return ApiError::from(e).into_response();
    }
    let actor = AuditActor::User { id: user.id, email: user.email.clone() };
    audit::record(&state, &actor, AuditAction::SignIn, &user.email, json!({ "ip": ip.map(|i| i.to_string()) })).await;
    let mut response = Redirect::to(&next).into_response();
    let set = [
        cookies::set_cookie(SESSION_COOKIE, &id, SESSION_LIFETIME.as_secs(), state.auth.cookie),
        cookies::set_cookie(LOGIN_COOKIE, "", 0, state.auth.cookie),
    ];
    for c in set {
        if let Ok(v) = c.parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// `POST /logout`: ends the session (a UI route: signed in, with the CSRF token).
pub(crate) async fn logout(State(state): State<AppState>, user: SignedIn, headers: HeaderMap) -> Response {
    if let Some(token) = cookies::cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.store.end_session(&crate::keys::hash_key(token)).await
    {
        return ApiError::from(e).into_response();
    }
    audit::record(&state, &user.actor(), AuditAction::SignOut, &user.email, json!({})).await;
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = cookies::set_cookie(SESSION_COOKIE, "", 0, state.auth.cookie).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
