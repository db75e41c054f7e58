//! The session cookie and the other small parsers of sign-in: reading a cookie from a
//! `Cookie` header, writing `Set-Cookie`, random tokens, the CSRF field of a form body,
//! and the `next` page a sign-in returns to (only a path on this site: no open redirect).
//! Every function here takes what the network sent and never panics (property-tested).

use axum::http::{HeaderMap, header};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cairn_session";
/// The sign-in form's double-submit cookie (against signing a victim in as someone else).
pub const LOGIN_COOKIE: &str = "cairn_login";

/// The value of cookie `name` in the request's `Cookie` headers (RFC 6265 §5.4: pairs
/// separated by `;`, the first of the name wins). A value in double quotes is unquoted.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| {
            let v = v.trim();
            v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v)
        })
}

/// How a cookie is set.
#[derive(Debug, Clone, Copy)]
pub struct CookieOptions {
    /// Sent only over https.
    pub secure: bool,
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure when asked, living
/// `max_age_secs` (0 deletes it).
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, options: CookieOptions) -> String {
    let secure = if options.secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", max_age_secs.max(0))
}

/// A random 256-bit token, hex: session ids and CSRF tokens.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(crate::keys::hex(&bytes))
}

/// Whether `a` and `b` are equal, taking the same time wherever they differ (the length
/// is not secret: tokens have one length).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of field `name` in an `application/x-www-form-urlencoded` body (the first).
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body).find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

/// Where a sign-in returns to: `next` when it is a path on this site (`/accounts?q=a`),
/// else `/`. `//host`, `/\host`, schemes and control characters are refused: browsers
/// read them as another site.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 2048
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::COOKIE, c.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_cookie_is_found_among_others_and_across_headers() {
        let h = headers(&["theme=dark; cairn_session=abc123 ; x=1", "cairn_login=\"q\""]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc123"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), Some("q"));
        assert_eq!(cookie(&h, "theme"), Some("dark"));
        assert_eq!(cookie(&h, "cairn"), None);
        assert_eq!(cookie(&headers(&["cairn_session_x=1"]), SESSION_COOKIE), None);
        assert_eq!(
            cookie(&headers(&["a=1; cairn_session=first; cairn_session=second"]), SESSION_COOKIE),
            Some("first")
        );
    }

    #[test]
    fn set_cookie_carries_the_flags() {
        assert_eq!(
            set_cookie(SESSION_COOKIE, "t", 3600, CookieOptions { secure: true }),
            "cairn_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600; Secure"
        );
        assert_eq!(
            set_cookie(SESSION_COOKIE, "", -5, CookieOptions { secure: false }),
            "cairn_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }

    #[test]
    fn only_paths_on_this_site_are_returned_to() {
        assert_eq!(safe_next(Some("/accounts?q=a%20b")), "/accounts?q=a%20b");
        for bad in
            ["//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", "", "accounts"]
        {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(Some("/a\nb")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn tokens_compare_by_value_and_form_fields_decode() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert_eq!(form_field(b"a=1&csrf=x%2By+z&csrf=2", "csrf").as_deref(), Some("x+y z"));
        assert_eq!(form_field(b"a=1", "csrf"), None);
        let t = random_token().unwrap();
        assert_eq!(t.len(), 64);
        assert_ne!(t, random_token().unwrap());
    }

    proptest! {
        #[test]
        fn any_cookie_header_is_read_without_panicking(raw in "[ -~]{0,200}", name in "[a-z_]{1,12}") {
            let mut h = HeaderMap::new();
            if let Ok(v) = raw.parse() {
                h.insert(header::COOKIE, v);
            }
            if let Some(v) = cookie(&h, &name) {
                prop_assert!(raw.contains(v));
            }
        }

        #[test]
        fn a_cookie_that_was_set_is_read_back(name in "[a-z_]{1,12}", value in "[A-Za-z0-9]{0,64}", before in "[a-y]{1,8}") {
            let h = headers(&[&format!("{before}z=1; {name}={value}")]);
            prop_assert_eq!(cookie(&h, &name), Some(value.as_str()));
        }

        #[test]
        fn any_form_body_is_read_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = form_field(&body, "csrf");
        }

        #[test]
        fn a_field_that_was_encoded_is_decoded(value in "\\PC{0,40}") {
            let body: String = form_urlencoded::Serializer::new(String::new()).append_pair("x", "1").append_pair("csrf", &value).finish();
            prop_assert_eq!(form_field(body.as_bytes(), "csrf"), Some(value));
        }

        #[test]
        fn next_is_always_a_local_path(next in "\\PC{0,60}") {
            let n = safe_next(Some(&next));
            prop_assert!(n == "/" || n == next);
            prop_assert!(n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\"));
        }
    }
}
