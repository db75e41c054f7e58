//! Signing in to the web UI from a test, through the real `/login` form.

use cairn::loopback::Response;
use cairn_core::Clock as _;
use cairn_server::auth::password;

use super::TestApp;

/// A signed-in browser: its session cookie and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct UiSession {
    /// The `cairn_session` cookie's value.
    pub token: String,
    /// The token its forms carry.
    pub csrf: String,
}

impl UiSession {
    /// The `Cookie` header value.
    pub fn cookie(&self) -> String {
        format!("cairn_session={}", self.token)
    }
}

/// The value of a `Set-Cookie` header for cookie `name`, if the response sets it.
pub fn set_cookie<'r>(r: &'r Response, name: &str) -> Option<&'r str> {
    r.headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .find_map(|(_, v)| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or(""))
}

/// The `value` of the hidden input `name` in an HTML page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    rest.split('"').next().map(str::to_string)
}

/// A form body.
pub fn form(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded_pairs(fields);
    if s.ends_with('&') {
        s.pop();
    }
    s
}

fn form_urlencoded_pairs(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}&", encode(k), encode(v))).collect()
}

fn encode(s: &str) -> String {
    cairn_channels::encode_query_value(s)
}

impl TestApp {
    /// Adds a user straight to the store (as `cairn user add` does).
    pub async fn add_user(&self, email: &str, role: &str, pw: &str) -> i64 {
        let hash = password::hash(pw, &[3; 16]).expect("hash");
        self.store.create_user(email, &hash, role, self.clock.now()).await.expect("store").expect("new user")
    }

    /// Opens the sign-in page and posts the form with `extra_cookie` (e.g. an old
    /// session) as a browser would; the response to the post.
    pub async fn post_login(&self, email: &str, pw: &str, extra_cookie: Option<&str>) -> Response {
        let page = self.raw("GET", "/login?next=%2Fadmin%2Fusers", &[], b"").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let login = set_cookie(&page, "cairn_login").expect("the sign-in page sets its cookie").to_string();
        let csrf = hidden(&page.body, "csrf").expect("the sign-in form carries a token");
        assert_eq!(csrf, login, "the form's token is the cookie's (double submit)");
        let mut cookie = format!("cairn_login={login}");
        if let Some(extra) = extra_cookie {
            cookie = format!("{cookie}; {extra}");
        }
        let body = form(&[("email", email), ("password", pw), ("csrf", &csrf), ("next", "/admin/users")]);
        let headers = [("Cookie", cookie.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
        self.raw("POST", "/login", &headers, body.as_bytes()).await
    }

    /// Signs in through the form; the session (its CSRF token read from the store, as a
    /// page's hidden field would give it).
    pub async fn sign_in(&self, email: &str, pw: &str) -> UiSession {
        let r = self.post_login(email, pw, None).await;
        assert_eq!(r.status, 303, "sign-in failed: {}", r.body);
        let token = set_cookie(&r, "cairn_session").expect("a session cookie").to_string();
        let s = self
            .store
            .find_session(&cairn_server::hash_key(&token), self.clock.now())
            .await
            .expect("store")
            .expect("the new session is stored");
        UiSession { token, csrf: s.csrf }
    }

    /// A user with `role` (named `{role}@example.com`), signed in.
    pub async fn signed_in_as(&self, role: &str) -> UiSession {
        let email = format!("{role}@example.com");
        self.add_user(&email, role, "a long enough password").await;
        self.sign_in(&email, "a long enough password").await
    }

    /// A UI request of `session`: a GET, or a form post carrying the session's token.
    pub async fn ui(&self, session: &UiSession, method: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        let cookie = session.cookie();
        if method == "GET" {
            return self.raw("GET", path, &[("Cookie", cookie.as_str())], b"").await;
        }
        let mut all = vec![("csrf", session.csrf.as_str())];
        all.extend_from_slice(fields);
        let body = form(&all);
        let headers = [("Cookie", cookie.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
        self.raw(method, path, &headers, body.as_bytes()).await
    }
}
