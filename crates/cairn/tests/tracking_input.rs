//! Issue 14's tracking-input defects, each through the real server on loopback and on
//! both backends: what once crashed a connection, was dropped without a word, or was
//! misreported is now refused with an error naming the field — or kept whole.

mod common;

use std::io::Write as _;

use common::TestApp;

async fn post_with(app: &TestApp, path: &str, extra: &[(&str, &str)], body: &[u8]) -> cairn::loopback::Response {
    let auth = cairn::loopback::basic_auth(&app.write_key);
    let mut headers = vec![("Content-Type", "application/json"), ("Authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    app.raw("POST", path, &headers, body).await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Defect 1: a multi-byte character where the `+0000` offset would be once split the
/// text inside a character and panicked, closing the connection without an answer.
async fn a_timestamp_with_a_multibyte_character_is_a_400_not_a_panic(app: &TestApp) {
    for ts in ["aa€0000", "€€€€€€", "2026-03-01T12:00:00+€000", "ü+0000"] {
        let body = format!(r#"{{"userId":"u","event":"e","timestamp":"{ts}"}}"#);
        let r = app.post("/v1/track", &body).await;
        assert_eq!(r.status, 400, "{ts}: {}", r.body);
        assert_eq!(r.json()["field"], "timestamp", "{ts}: {}", r.body);
        assert!(r.body.contains("is not an ISO-8601 timestamp"), "{ts}: {}", r.body);
    }
    let ok = app.post("/v1/track", r#"{"userId":"u","event":"e","timestamp":"2026-03-01T14:00:00+0200"}"#).await;
    assert_eq!(ok.status, 200, "the server still answers: {}", ok.body);
}

/// Defects 2 and 10: a date outside the plausible range is refused, with a message that
/// names the range (not "not an ISO-8601 timestamp"); inside a batch only that message.
async fn an_implausible_date_is_refused_with_the_range_named(app: &TestApp) {
    let before = app.store.snapshot().await.unwrap();
    for (ts, expected) in [
        ("0001-01-01T00:00:00Z", "before the earliest accepted date 2000-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00Z", "--earliest-event"),
        ("9000-01-01T00:00:00Z", "later than 2026-03-02T12:00:00Z"),
    ] {
        let body = format!(r#"{{"userId":"u","event":"e","timestamp":"{ts}"}}"#);
        let r = app.post("/v1/track", &body).await;
        assert_eq!(r.status, 400, "{ts}: {}", r.body);
        assert_eq!(r.json()["field"], "timestamp", "{ts}: {}", r.body);
        assert!(r.body.contains(expected), "{ts}: expected `{expected}` in {}", r.body);
        assert!(!r.body.contains("ISO-8601"), "{ts}: a valid date is not reported as unparseable: {}", r.body);
    }
    // The device's clock says 9000 for both: after skew correction the date is plausible.
    let skewed = app
        .post(
            "/v1/track",
            r#"{"userId":"u","event":"e","timestamp":"9000-01-01T00:00:00Z","sentAt":"9000-01-01T00:00:01Z"}"#,
        )
        .await;
    assert_eq!(skewed.status, 400, "the sent timestamp itself is implausible: {}", skewed.body);
    assert_eq!(app.store.snapshot().await.unwrap(), before, "a refused message changed stored data");
    let batch = r#"{"batch":[
        {"type":"track","userId":"u","event":"e","messageId":"ok","timestamp":"2026-02-01T00:00:00Z"},
        {"type":"track","userId":"u","event":"e","messageId":"old","timestamp":"0001-01-01T00:00:00Z"}]}"#;
    let r = app.post("/v1/batch", batch).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected"][0]["index"], 1);
    assert_eq!(v["rejected"][0]["field"], "timestamp");
}

/// Defect 5: traits that JSON text can hold but a JSON reader cannot (a number beyond a
/// double, a lone surrogate) were acknowledged and then lost; now the call is refused with
/// the path of the value, and nothing is stored.
async fn traits_that_cannot_be_read_back_are_refused_not_lost(app: &TestApp) {
    let before = app.store.snapshot().await.unwrap();
    let cases = [
        (r#"{"userId":"u1","traits":{"email":"ada@acme.io","name":"Ada","score":1e400}}"#, "traits.score", "too large"),
        (
            r#"{"userId":"u1","traits":{"email":"ada@acme.io","name":"Ada","nick":"\ud800"}}"#,
            "traits.nick",
            "lone UTF-16 surrogate",
        ),
        (r#"{"userId":"u1","traits":{"email":"ada@acme.io","list":[1,2,-1e999]}}"#, "traits.list.[2]", "too large"),
    ];
    for (body, field, reason) in cases {
        let r = app.post("/v1/identify", body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json()["field"], field, "{body}: {}", r.body);
        assert!(r.body.contains(reason), "{body}: expected `{reason}` in {}", r.body);
    }
    assert_eq!(app.store.snapshot().await.unwrap(), before, "a refused identify changed stored data");

    let batch = r#"{"batch":[
        {"type":"identify","userId":"u2","traits":{"email":"bo@acme.io","n":1e400},"messageId":"lossy"},
        {"type":"identify","userId":"u3","traits":{"email":"cy@acme.io","name":"Cy"},"messageId":"fine"}]}"#;
    let r = app.post("/v1/batch", batch).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected"][0]["index"], 0);
    assert_eq!(v["rejected"][0]["field"], "traits.n");

    // A large but representable number and an escaped pair are kept whole.
    let ok = app
        .post("/v1/identify", r#"{"userId":"u4","traits":{"email":"di@acme.io","name":"Di \ud83d\ude00","big":1e300}}"#)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let snap = app.store.snapshot().await.unwrap();
    let di = snap["contacts"].as_array().unwrap().iter().find(|c| c["email"] == "di@acme.io").expect("stored");
    assert_eq!(di["name"], "Di 😀");
    assert_eq!(di["traits"]["big"], 1e300);
}

/// Defect 9: control characters in an event or page name are refused with the field named.
async fn control_characters_in_names_are_refused(app: &TestApp) {
    let before = app.store.snapshot().await.unwrap();
    for (path, body, field) in [
        ("/v1/track", r#"{"userId":"u","event":"a\u0000b"}"#, "event"),
        ("/v1/track", r#"{"userId":"u","event":"red\u001b[31m"}"#, "event"),
        ("/v1/track", r#"{"userId":"u","event":"two\r\nlines"}"#, "event"),
        ("/v1/track", r#"{"userId":"u","event":"c1\u0085c1"}"#, "event"),
        ("/v1/page", r#"{"userId":"u","name":"Home\u0007"}"#, "name"),
        ("/v1/group", r#"{"userId":"u","groupId":"ac\nme"}"#, "groupId"),
        ("/v1/track", r#"{"userId":"u","event":"e","messageId":"m\t1"}"#, "messageId"),
    ] {
        let r = app.post(path, body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json()["field"], field, "{body}: {}", r.body);
        assert!(r.body.contains("must not contain control characters"), "{body}: {}", r.body);
    }
    assert_eq!(app.store.snapshot().await.unwrap(), before);
}

/// Defect 10: a length limit is stated in the unit it measures. 67 three-byte characters
/// (201 bytes) are within 200 characters; 201 characters are not.
async fn name_limits_count_characters(app: &TestApp) {
    let ok = app.post("/v1/track", &format!(r#"{{"userId":"u","event":"{}"}}"#, "€".repeat(67))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let long = app.post("/v1/track", &format!(r#"{{"userId":"u","event":"{}"}}"#, "é".repeat(201))).await;
    assert_eq!(long.status, 400, "{}", long.body);
    assert!(long.body.contains("is 201 characters long; the limit is 200 characters"), "{}", long.body);
}

/// Defect 9: gzip and deflate bodies are read; the size limit applies to the decoded
/// body (a zip bomb is a 413); an unknown encoding is a 415 naming it.
async fn compressed_bodies_are_read_and_bounded(app: &TestApp) {
    let track = br#"{"userId":"u","event":"zipped","messageId":"gz-1"}"#;
    let r = post_with(app, "/v1/track", &[("Content-Encoding", "gzip")], &gzip(track)).await;
    assert_eq!(r.status, 200, "gzip: {}", r.body);
    let batch = br#"{"batch":[{"type":"track","userId":"u","event":"deflated","messageId":"df-1"}]}"#;
    let r = post_with(app, "/v1/batch", &[("Content-Encoding", "deflate")], &zlib(batch)).await;
    assert_eq!(r.status, 200, "deflate: {}", r.body);
    assert_eq!(r.json()["accepted"], 1);
    let counts = app.store.count_message_ids(&["gz-1".into(), "df-1".into()]).await.unwrap();
    assert_eq!((counts["gz-1"], counts["df-1"]), (1, 1));

    let before = app.store.snapshot().await.unwrap();
    // 100 MB of zeros inside a JSON string compress to about 100 KB.
    let bomb_text = format!(r#"{{"batch":[{{"type":"track","userId":"u","event":"{}"}}]}}"#, "0".repeat(100 << 20));
    let bomb = gzip(bomb_text.as_bytes());
    assert!(bomb.len() < 500 * 1024, "the bomb itself is under the batch limit");
    let r = post_with(app, "/v1/batch", &[("Content-Encoding", "gzip")], &bomb).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("once gzip-decoded"), "{}", r.body);
    let small_bomb = gzip(format!(r#"{{"userId":"u","event":"{}"}}"#, "0".repeat(40 * 1024)).as_bytes());
    let r = post_with(app, "/v1/track", &[("Content-Encoding", "gzip")], &small_bomb).await;
    assert_eq!(r.status, 413, "the 32 KB message limit counts decoded bytes: {}", r.body);

    let r = post_with(app, "/v1/track", &[("Content-Encoding", "br")], track).await;
    assert_eq!(r.status, 415, "{}", r.body);
    assert!(r.body.contains("Content-Encoding `br` is not supported"), "{}", r.body);
    let r = post_with(app, "/v1/track", &[("Content-Encoding", "gzip")], track).await;
    assert_eq!(r.status, 400, "plain text labelled gzip: {}", r.body);
    assert!(r.body.contains("not valid gzip data"), "{}", r.body);
    assert_eq!(app.store.snapshot().await.unwrap(), before, "a refused body changed stored data");
}

on_both_backends!(
    a_timestamp_with_a_multibyte_character_is_a_400_not_a_panic,
    an_implausible_date_is_refused_with_the_range_named,
    traits_that_cannot_be_read_back_are_refused_not_lost,
    control_characters_in_names_are_refused,
    name_limits_count_characters,
    compressed_bodies_are_read_and_bounded,
);
