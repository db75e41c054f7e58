//! The role × route table, generated from [`super::routes`]: every UI route, for every
//! role, through the real router. A role the route's permission allows passes the auth
//! layer (whatever the handler then answers, it is not 401, 403 or a trip to `/login?next=…`);
//! any other role gets 403. Signed out, a GET is sent to `/login?next=…` and anything
//! else gets 401. Every non-GET route refuses a wrong CSRF token with 403. Handlers never
//! answer 403 themselves: that status means the auth layer refused.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use cairn_core::FixedClock;
use cairn_store::Store;
use jiff::{SignedDuration, Timestamp};
use tower::ServiceExt as _;

use super::routes;
use crate::AppState;
use crate::auth::{Permission, Role};

/// A concrete path for a route pattern: each `{param}` becomes `1`.
fn concrete(pattern: &str) -> String {
    pattern.split('/').map(|seg| if seg.starts_with('{') { "1" } else { seg }).collect::<Vec<_>>().join("/")
}

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("roles.db").display())).await.unwrap();
    let clock = Arc::new(FixedClock::new("2026-03-01T12:00:00Z".parse::<Timestamp>().unwrap()));
    (AppState::new(store, clock).with_secure_cookies(false), dir)
}

/// The one method each entry of the list serves (an entry holds one method, by the
/// list's rule): GET unless its handler answers a GET with 405.
async fn method_of(state: &AppState, index: usize) -> Method {
    let route = routes().into_iter().nth(index).unwrap();
    let app: Router = Router::new().route(route.path, route.handler).with_state(state.clone());
    let probe = Request::get(concrete(route.path)).body(Body::empty()).unwrap();
    let status = app.oneshot(probe).await.unwrap().status();
    if status == StatusCode::METHOD_NOT_ALLOWED { Method::POST } else { Method::GET }
}

struct Session {
    token: String,
    csrf: String,
}

/// A fresh session of a user with `role` (a POST may end it: /logout does).
async fn session(state: &AppState, user_id: i64) -> Session {
    let token = crate::auth::cookies::random_token().unwrap();
    let csrf = crate::auth::cookies::random_token().unwrap();
    let now = state.clock.now();
    state
        .store
        .create_session(&crate::keys::hash_key(&token), user_id, &csrf, now, now + SignedDuration::from_hours(1))
        .await
        .unwrap();
    Session { token, csrf }
}

async fn send(
    app: &Router,
    method: &Method,
    path: &str,
    session: Option<&Session>,
    csrf: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method.clone()).uri(path);
    if let Some(s) = session {
        req = req.header(header::COOKIE, format!("theme=x; cairn_session={}", s.token));
    }
    let body = match csrf {
        Some(token) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(format!("csrf={token}"))
        }
        None => Body::empty(),
    };
    let response = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (response.status(), location)
}

#[tokio::test]
async fn every_ui_route_lets_exactly_the_roles_its_permission_allows() {
    let (state, _dir) = state().await;
    let app = crate::router(state.clone());
    let mut users = Vec::new();
    for role in Role::ALL {
        let email = format!("{}@example.com", role.as_str());
        let id = state.store.create_user(&email, "$argon2id$unused", role.as_str(), state.clock.now()).await.unwrap();
        users.push((role, id.unwrap()));
    }
    let list = routes();
    assert!(list.len() >= 8, "the list holds the sign-out and admin routes at least");
    let mut checked = 0;
    for (i, route) in list.iter().enumerate() {
        let method = method_of(&state, i).await;
        let path = concrete(route.path);
        let what = format!("{method} {path} (needs {:?})", route.needs);

        // Signed out.
        let (status, location) = send(&app, &method, &path, None, None).await;
        if method == Method::GET {
            assert_eq!(status, StatusCode::SEE_OTHER, "{what} signed out");
            assert!(location.starts_with("/login?next="), "{what} signed out: to {location}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} signed out");
        }

        for &(role, user_id) in &users {
            let s = session(&state, user_id).await;
            let csrf = (method != Method::GET).then_some(s.csrf.as_str());
            let (status, location) = send(&app, &method, &path, Some(&s), csrf).await;
            if role.allows(route.needs) {
                assert!(
                    status != StatusCode::FORBIDDEN
                        && status != StatusCode::UNAUTHORIZED
                        && !location.starts_with("/login?next="),
                    "{what} as {}: {status} {location}",
                    role.as_str()
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what} as {}", role.as_str());
            }
            checked += 1;
        }

        if method != Method::GET {
            let admin = session(&state, users[0].1).await;
            for wrong in [None, Some("0".repeat(64))] {
                let (status, _) = send(&app, &method, &path, Some(&admin), Some(wrong.as_deref().unwrap_or(""))).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{what} with a wrong CSRF token {wrong:?}");
            }
        }
    }
    assert_eq!(checked, list.len() * Role::ALL.len());
}

#[tokio::test]
async fn the_admin_routes_need_administer_and_sign_out_needs_only_to_be_signed_in() {
    let list = routes();
    for r in &list {
        if r.path.starts_with("/admin/") {
            assert_eq!(r.needs, Permission::Administer, "{}", r.path);
        }
    }
    assert!(list.iter().any(|r| r.path == "/logout" && r.needs == Permission::Read));
}
