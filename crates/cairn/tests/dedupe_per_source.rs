//! `messageId` deduplication over real HTTP, on both backends: per source (the write
//! key's name), so two products that happen to use the same id both keep their event.

mod common;

use common::{TestApp, test_now};
use serde_json::Value;

/// Defect 9: `messageId` deduplication is per source: a second write key's event with an
/// id the first source used is kept; each source's resend is still stored once.
async fn message_ids_are_deduplicated_per_source(app: &TestApp) {
    let mobile_key = cairn_server::generate_key(cairn_store::KeyKind::Write, [9; 32]);
    app.store
        .create_api_key(cairn_store::KeyKind::Write, "mobile", &cairn_server::hash_key(&mobile_key), "m", test_now())
        .await
        .unwrap();
    let body = r#"{"userId":"u","event":"e","messageId":"shared-id"}"#;
    assert_eq!(app.post("/v1/track", body).await.json()["duplicate"], false);
    let mut mobile = app.connection();
    let r = mobile.post_json("/v1/track", Some(&mobile_key), body).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["duplicate"], false, "another source's event is its own");
    let r = mobile.post_json("/v1/track", Some(&mobile_key), body).await.unwrap();
    assert_eq!(r.json()["duplicate"], true, "a resend from the same source is a duplicate");
    assert_eq!(app.post("/v1/track", body).await.json()["duplicate"], true);
    let counts = app.store.count_message_ids(&["shared-id".into()]).await.unwrap();
    assert_eq!(counts["shared-id"], 2);
    let snap = app.store.snapshot().await.unwrap();
    let sources: Vec<&Value> =
        snap["events"].as_array().unwrap().iter().filter(|e| e[0] == "shared-id").map(|e| &e[7]).collect();
    assert_eq!(sources.len(), 2, "{sources:?}");
}

on_both_backends!(message_ids_are_deduplicated_per_source);
