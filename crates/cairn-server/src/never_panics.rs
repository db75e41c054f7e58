//! Property tests: whatever a client sends as a REST API body, a query string, an
//! `Authorization` header or a signed link's parameters, the parsing behind the routes
//! answers (with a value or an error) and never panics. 10,000 cases each, in about a
//! second.

use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use cairn_channels::{LinkKind, LinkSigner};
use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::Value;

const CASES: u32 = 10_000;

/// Any JSON value, nested a few levels, with the keys the bodies look for among others.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("score".to_string()),
        Just("reason".to_string()),
        Just("expires_at".to_string()),
        Just("days".to_string()),
        Just("by".to_string()),
        Just("userId".to_string()),
        Just("userHash".to_string()),
        Just("RecordType".to_string()),
        Just("Email".to_string()),
        Just("bounce_type".to_string()),
        Just("email".to_string()),
        Just("notificationType".to_string()),
        Just("Message".to_string()),
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        Just(Value::String("9999-12-31T23:59:59Z".into())),
        Just(Value::String("-009999-01-01T00:00:00Z".into())),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bytes a client might send: arbitrary, or JSON text.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..200), json_value().prop_map(|v| v.to_string().into_bytes()),]
}

/// A query string: arbitrary text, or pairs with the names the routes read.
fn query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("as_of"),
        Just("assignee"),
        Just("pool"),
        Just("userId"),
        Just("userHash"),
        Just("key"),
        Just("include_dismissed"),
        Just("limit"),
        Just("e"),
        Just("s"),
        Just("c"),
        Just("u"),
        Just("a"),
        Just("sig"),
        Just("%zz"),
    ];
    prop_oneof![
        any::<String>(),
        prop::collection::vec((name, any::<String>()), 0..6)
            .prop_map(|pairs| { pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&") }),
    ]
}

fn uri(query: &str) -> Option<Uri> {
    format!("/x?{query}").parse().ok()
}

fn now() -> Timestamp {
    Timestamp::from_second(1_772_366_400).unwrap_or(Timestamp::UNIX_EPOCH)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn json_bodies_never_panic(bytes in body()) {
        let _ = crate::api::parse_override(&bytes, now());
        let _ = crate::api::parse_override(&bytes, Timestamp::MAX);
        let _ = crate::tasks::parse_complete(&bytes);
        let _ = crate::inapp::parse_mark_body(&bytes);
        let _ = cairn_channels::parse_feedback(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = crate::links::is_one_click(&text);
    }

    #[test]
    fn query_strings_never_panic(q in query()) {
        if let Some(uri) = uri(&q) {
            let _ = Query::<crate::api::PreviewQuery>::try_from_uri(&uri);
            let _ = Query::<crate::tasks::TaskQuery>::try_from_uri(&uri);
            let _ = Query::<crate::inapp::ListQuery>::try_from_uri(&uri);
            let _ = Query::<crate::inapp::MarkQuery>::try_from_uri(&uri);
        }
        let signer = LinkSigner::new(b"property-test");
        for kind in [LinkKind::Click, LinkKind::Open, LinkKind::Unsubscribe, LinkKind::Survey] {
            let _ = signer.verify(kind, &q);
        }
        let _ = crate::links::location(&q);
    }

    #[test]
    fn authorization_headers_and_user_hashes_never_panic(value in any::<String>(), user in any::<String>()) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::AUTHORIZATION, v);
        }
        let _ = crate::keys::bearer_token(&headers);
        let _ = crate::keys::key_prefix(&value);
        let secret = crate::inapp::identity_secret("master", 1);
        prop_assert!(!crate::inapp::user_hash_matches(&secret, &user, &value) || value.trim().len() == 64);
    }
}
