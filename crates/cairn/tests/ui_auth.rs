//! Signing in to the web UI, on the real app over a loopback port: sessions and their
//! cookie, session fixation, expiry, CSRF, the sign-in rate limit, disabled users, the
//! admin pages, and secret keys' scopes on the REST API.

mod common;

use common::ui::{UiSession, set_cookie};
use common::{Backend, TestApp};
use jiff::SignedDuration;

async fn app() -> TestApp {
    TestApp::spawn(Backend::Sqlite).await.expect("sqlite app")
}

async fn users(app: &TestApp) -> Vec<String> {
    app.store.list_users().await.expect("users").into_iter().map(|u| u.email).collect()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let q = cairn_store::AuditQuery { limit: 500, ..Default::default() };
    app.store.audit_entries(&q).await.expect("audit").into_iter().rev().map(|e| e.action).collect()
}

#[tokio::test]
async fn signing_in_issues_a_new_session_id_and_the_old_one_dies() {
    let app = app().await;
    app.add_user("Ana@Example.com", "admin", "correct horse battery").await;

    // An id planted in the browser before sign-in (session fixation) is not the one issued.
    let planted = "cairn_session=0000000000000000000000000000000000000000000000000000000000000000";
    let r = app.post_login("ana@example.COM", "correct horse battery", Some(planted)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/admin/users"), "back to the page asked for");
    let cookie = r
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("cairn_session="))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Lax") && cookie.contains("; Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "a loopback server cannot use Secure cookies over http: {cookie}");
    let first = set_cookie(&r, "cairn_session").unwrap().to_string();
    assert_eq!(first.len(), 64);
    assert!(!planted.ends_with(&first));
    let planted_session = UiSession { token: "0".repeat(64), csrf: String::new() };
    assert_eq!(app.ui(&planted_session, "GET", "/admin/users", &[]).await.status, 303, "the planted id is nobody's");

    let s1 = UiSession { token: first.clone(), csrf: String::new() };
    let page = app.ui(&s1, "GET", "/admin/users", &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Ana@Example.com (you)"), "{}", page.body);

    // Signing in again from the same browser: a new id, and the one it held ends.
    let r = app.post_login("ana@example.com", "correct horse battery", Some(&s1.cookie())).await;
    let second = set_cookie(&r, "cairn_session").unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(app.ui(&s1, "GET", "/admin/users", &[]).await.status, 303);
    assert_eq!(app.ui(&UiSession { token: second, csrf: String::new() }, "GET", "/admin/users", &[]).await.status, 200);
    assert_eq!(audit_actions(&app).await, ["session.sign_in", "session.sign_in"]);
    app.finish().await;
}

#[tokio::test]
async fn the_signed_out_are_sent_to_sign_in_and_their_posts_refused() {
    let app = app().await;
    let r = app.raw("GET", "/admin/audit?action=key.created", &[], b"").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login?next=%2Fadmin%2Faudit%3Faction%3Dkey.created"));
    let r = app
        .raw(
            "POST",
            "/admin/users",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"email=x%40y.io&role=admin",
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("nothing was changed"), "{}", r.body);
    assert!(users(&app).await.is_empty());
    // Sign-out ends the session; its cookie is cleared.
    let s = app.signed_in_as("viewer").await;
    let r = app.ui(&s, "POST", "/logout", &[]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    assert_eq!(set_cookie(&r, "cairn_session"), Some(""));
    assert_eq!(app.ui(&s, "GET", "/", &[]).await.status, 303);
    assert_eq!(audit_actions(&app).await, ["session.sign_in", "session.sign_out"]);
    app.finish().await;
}

#[tokio::test]
async fn a_form_without_the_sessions_token_changes_nothing() {
    let app = app().await;
    let admin = app.signed_in_as("admin").await;
    let other = app.signed_in_as("ops").await;
    let add = |csrf: &str| {
        common::ui::form(&[
            ("csrf", csrf),
            ("email", "new@example.com"),
            ("role", "csm"),
            ("password", "ten chars or more"),
        ])
    };
    let cookie = admin.cookie();
    let form_type = ("Content-Type", "application/x-www-form-urlencoded");
    for (label, body) in [
        (
            "missing",
            common::ui::form(&[("email", "new@example.com"), ("role", "csm"), ("password", "ten chars or more")]),
        ),
        ("wrong", add(&"f".repeat(64))),
        ("another session's", add(&other.csrf)),
        ("empty", add("")),
    ] {
        let r = app.raw("POST", "/admin/users", &[("Cookie", &cookie), form_type], body.as_bytes()).await;
        assert_eq!(r.status, 403, "{label} token: {}", r.body);
        assert!(r.body.contains("nothing was changed"), "{}", r.body);
    }
    // A JSON body (no form) without the header is refused too.
    let r = app.raw("POST", "/logout", &[("Cookie", &cookie), ("Content-Type", "application/json")], b"{}").await;
    assert_eq!(r.status, 403);
    assert_eq!(users(&app).await, ["admin@example.com", "ops@example.com"]);
    // The header works in place of the field; the right field works.
    let body = common::ui::form(&[("email", "new@example.com"), ("role", "csm"), ("password", "ten chars or more")]);
    let r = app
        .raw("POST", "/admin/users", &[("Cookie", &cookie), form_type, ("X-CSRF-Token", &admin.csrf)], body.as_bytes())
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = app
        .ui(
            &admin,
            "POST",
            "/admin/users",
            &[("email", "two@example.com"), ("role", "viewer"), ("password", "ten chars or more")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(users(&app).await, ["admin@example.com", "new@example.com", "ops@example.com", "two@example.com"]);
    app.finish().await;
}

#[tokio::test]
async fn a_session_ends_twelve_hours_after_sign_in() {
    let app = app().await;
    let s = app.signed_in_as("csm").await;
    app.clock.advance(SignedDuration::from_hours(12) - SignedDuration::from_secs(1));
    assert_eq!(app.ui(&s, "GET", "/", &[]).await.status, 200);
    app.clock.advance(SignedDuration::from_secs(1));
    let r = app.ui(&s, "GET", "/", &[]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/login?next=%2F")));
    app.finish().await;
}

#[tokio::test]
async fn sign_ins_are_limited_per_address_and_counted_in_the_audit_log() {
    let app = app().await;
    app.add_user("ana@example.com", "csm", "correct horse battery").await;
    for _ in 0..5 {
        let r = app.post_login("ana@example.com", "wrong password!", None).await;
        assert_eq!(r.status, 401);
        assert!(r.body.contains("do not match an active account"), "{}", r.body);
    }
    // The sixth, even with the right password, is refused until the window ends.
    let r = app.post_login("ANA@example.com", "correct horse battery", None).await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("Too many failed sign-ins for this address. Try again in 15 minutes"), "{}", r.body);
    // An unknown address fails the same way as a wrong password.
    let r = app.post_login("nobody@example.com", "whatever it is", None).await;
    assert_eq!(r.status, 401);
    app.clock.advance(SignedDuration::from_mins(15));
    assert_eq!(app.post_login("ana@example.com", "correct horse battery", None).await.status, 303);
    let actions = audit_actions(&app).await;
    assert_eq!(actions.iter().filter(|a| *a == "session.sign_in_failed").count(), 6);
    assert_eq!(actions.last().map(String::as_str), Some("session.sign_in"));
    app.finish().await;
}

#[tokio::test]
async fn a_disabled_user_is_signed_out_and_cannot_sign_in() {
    let app = app().await;
    let admin = app.signed_in_as("admin").await;
    let csm = app.signed_in_as("csm").await;
    let id = app.store.user_for_sign_in("csm@example.com").await.unwrap().unwrap().0.id;
    assert_eq!(app.ui(&csm, "GET", "/", &[]).await.status, 200);
    // No admin may disable or demote themselves.
    let me = app.store.user_for_sign_in("admin@example.com").await.unwrap().unwrap().0.id;
    assert_eq!(app.ui(&admin, "POST", &format!("/admin/users/{me}/disable"), &[]).await.status, 409);
    assert_eq!(app.ui(&admin, "POST", &format!("/admin/users/{me}/role"), &[("role", "viewer")]).await.status, 409);
    let r = app.ui(&admin, "POST", &format!("/admin/users/{id}/role"), &[("role", "vewer")]).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("did you mean `viewer`?"), "{}", r.body);
    assert_eq!(app.ui(&admin, "POST", &format!("/admin/users/{id}/role"), &[("role", "viewer")]).await.status, 303);
    assert_eq!(app.ui(&admin, "POST", &format!("/admin/users/{id}/disable"), &[]).await.status, 303);
    assert_eq!(app.ui(&csm, "GET", "/", &[]).await.status, 303, "the session ended");
    assert_eq!(app.post_login("csm@example.com", "a long enough password", None).await.status, 401);
    let page = app.ui(&admin, "GET", "/admin/audit?action=user.disabled", &[]).await;
    assert!(
        page.body.contains("<td>user.disabled</td>") && !page.body.contains("<td>user.role_changed</td>"),
        "{}",
        page.body
    );
    app.finish().await;
}

async fn call(app: &TestApp, key: &str, method: &str, path: &str) -> u16 {
    let auth = format!("Bearer {key}");
    app.raw(method, path, &[("Authorization", &auth)], b"{}").await.status
}

#[tokio::test]
async fn secret_keys_made_in_the_ui_work_within_their_scope_and_stop_when_revoked() {
    let app = app().await;
    let admin = app.signed_in_as("admin").await;
    let mut keys = std::collections::HashMap::new();
    for scope in ["read", "write", "admin"] {
        let r = app.ui(&admin, "POST", "/admin/keys", &[("kind", "secret"), ("scope", scope), ("name", scope)]).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let at = r.body.find("cairn_sk_").expect("the key is shown");
        keys.insert(scope, r.body[at..at + 73].to_string());
    }
    let listing = app.ui(&admin, "GET", "/admin/keys", &[]).await;
    assert!(keys.values().all(|k| !listing.body.contains(k.as_str())), "a key is shown only once");
    // (method, path, the least scope): reads, a CSM's write, a reload.
    let table = [
        ("GET", "/api/tasks", "read"),
        ("POST", "/api/tasks/1/complete", "write"),
        ("POST", "/api/workspace/reload", "admin"),
    ];
    for (method, path, least) in table {
        for scope in ["read", "write", "admin"] {
            let status = call(&app, &keys[scope], method, path).await;
            let allowed = ["read", "write", "admin"].iter().position(|s| *s == scope)
                >= ["read", "write", "admin"].iter().position(|s| *s == least);
            if allowed {
                assert!(status != 401 && status != 403, "{scope} key on {method} {path}: {status}");
            } else {
                assert_eq!(status, 403, "{scope} key on {method} {path}");
            }
        }
    }
    let id = app.store.list_api_keys().await.unwrap().into_iter().find(|k| k.name == "read").unwrap().id;
    assert_eq!(app.ui(&admin, "POST", &format!("/admin/keys/{id}/revoke"), &[]).await.status, 303);
    assert_eq!(call(&app, &keys["read"], "GET", "/api/tasks").await, 401);
    let actions = audit_actions(&app).await;
    assert_eq!(actions.iter().filter(|a| *a == "key.created").count(), 3);
    assert_eq!(actions.last().map(String::as_str), Some("key.revoked"));
    app.finish().await;
}
