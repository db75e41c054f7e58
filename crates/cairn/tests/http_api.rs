//! The tracking API over real HTTP on loopback, on both backends: the Segment spec's own
//! examples are accepted and mean what the spec says; malformed and hostile payloads get
//! a clear error and change nothing.

mod common;

use common::{TestApp, test_now};
use serde_json::Value;

fn today() -> jiff::civil::Date {
    test_now().to_zoned(jiff::tz::TimeZone::UTC).date()
}

async fn segment_spec_identify_creates_a_contact_with_its_traits(app: &TestApp) {
    let r = app
        .post(
            "/v1/identify",
            r#"{"userId":"019mr8mf4r","anonymousId":"507f191e810c19729de860ea","traits":{"email":"Peter@Example.com","name":"Peter Gibbons","industry":"Technology","role":"Admin"},"context":{"ip":"24.5.68.47"},"timestamp":"2012-12-02T00:30:08.276Z","messageId":"id-1"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["success"], true);
    let snap = app.store.snapshot().await.unwrap();
    let contact = &snap["contacts"][0];
    assert_eq!(contact["email"], "peter@example.com");
    assert_eq!(contact["name"], "Peter Gibbons");
    assert_eq!(contact["role"], "admin");
    assert_eq!(contact["traits"]["industry"], "Technology");
    assert_eq!(contact["ids"][0], "product:019mr8mf4r(identify)");
    assert_eq!(contact["aliases"][0], "507f191e810c19729de860ea(identify)");
}

async fn segment_spec_group_creates_the_account_and_links_the_user(app: &TestApp) {
    let r = app
        .post(
            "/v1/group",
            r#"{"userId":"019mr8mf4r","groupId":"8e9df332ac","traits":{"name":"Initech","industry":"Technology","employees":329,"plan":"enterprise","total billed":830},"messageId":"g-1"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let snap = app.store.snapshot().await.unwrap();
    let account = &snap["accounts"][0];
    assert_eq!(account["name"], "Initech");
    assert_eq!(account["employees"], 329);
    assert_eq!(account["plan"], "enterprise");
    assert_eq!(account["traits"]["total billed"], 830);
    assert_eq!(account["ids"][0], "product:8e9df332ac(group)");
    let contact = &snap["contacts"][0];
    assert_eq!(contact["account"][0], "product:8e9df332ac(group)");
    assert_eq!(contact["account_match_basis"], "group_call");
}

async fn track_with_context_group_id_is_bound_to_the_account(app: &TestApp) {
    app.post("/v1/group", r#"{"userId":"u1","groupId":"acme","traits":{"name":"Acme"}}"#).await;
    let r = app
        .post(
            "/v1/track",
            r#"{"userId":"someone-else","event":"Item Purchased","properties":{"name":"Leap to Conclusions Mat","revenue":14.99},"context":{"groupId":"acme"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let report = app.store.doctor(today()).await.unwrap();
    assert_eq!(report.unmatched.events_without_contact, 1, "someone-else is unknown");
    assert_eq!(report.unmatched.events_without_account, 0, "context.groupId ties it to Acme");
    assert_eq!(report.unmatched.events_matched_to_nobody, 0);
}

async fn anonymous_events_join_the_contact_once_identified(app: &TestApp) {
    app.post("/v1/page", r#"{"anonymousId":"anon-7","name":"Pricing","properties":{"url":"https://x.io/pricing"}}"#)
        .await;
    app.post("/v1/track", r#"{"anonymousId":"anon-7","event":"Signup Started"}"#).await;
    assert_eq!(app.store.doctor(today()).await.unwrap().unmatched.events_without_contact, 2);
    app.post("/v1/identify", r#"{"userId":"u-7","anonymousId":"anon-7","traits":{"email":"ann@acme.io"}}"#).await;
    assert_eq!(app.store.doctor(today()).await.unwrap().unmatched.events_without_contact, 0);
}

async fn batch_level_sent_at_corrects_clock_skew(app: &TestApp) {
    // The device's clock runs one hour fast: it says it sent at 13:00 what arrived at 12:00.
    let r = app
        .post(
            "/v1/batch",
            r#"{"batch":[
                {"type":"identify","userId":"u1","traits":{"email":"ada@acme.io"},"messageId":"b1"},
                {"type":"track","userId":"u1","event":"report_created","timestamp":"2026-03-01T12:59:00Z","messageId":"b2"},
                {"type":"page","userId":"u1","name":"Home","messageId":"b3"},
                {"type":"group","userId":"u1","groupId":"acme","traits":{"name":"Acme"},"messageId":"b4"}
              ],
              "sentAt":"2026-03-01T13:00:00Z","context":{"library":{"name":"analytics-node"}}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["accepted"], 4);
    let snap = app.store.snapshot().await.unwrap();
    let track = snap["events"].as_array().unwrap().iter().find(|e| e[0] == "b2").expect("b2 stored");
    let expected: jiff::Timestamp = "2026-03-01T11:59:00Z".parse().unwrap();
    assert_eq!(track[6], expected.as_millisecond());
}

async fn a_resent_message_is_acknowledged_and_stored_once(app: &TestApp) {
    let body = r#"{"userId":"u1","event":"report_created","messageId":"same"}"#;
    assert_eq!(app.post("/v1/track", body).await.json()["duplicate"], false);
    assert_eq!(app.post("/v1/track", body).await.json()["duplicate"], true);
    let batch = r#"{"batch":[{"type":"track","userId":"u1","event":"e","messageId":"same"},{"type":"track","userId":"u1","event":"e","messageId":"new"},{"type":"track","userId":"u1","event":"e","messageId":"new"}]}"#;
    let r = app.post("/v1/batch", batch).await.json();
    assert_eq!((r["accepted"].clone(), r["duplicates"].clone()), (Value::from(1), Value::from(2)));
    let counts = app.store.count_message_ids(&["same".into(), "new".into()]).await.unwrap();
    assert_eq!((counts["same"], counts["new"]), (1, 1));
}

async fn the_write_key_may_come_in_the_body(app: &TestApp) {
    let body = format!(r#"{{"writeKey":"{}","userId":"u1","event":"e"}}"#, app.write_key);
    let r = app.raw("POST", "/v1/track", &[("Content-Type", "application/json")], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn a_batch_with_one_bad_message_keeps_the_others(app: &TestApp) {
    let r = app
        .post(
            "/v1/batch",
            r#"{"batch":[{"type":"track","userId":"u1","event":"ok-1","messageId":"k1"},{"type":"purchase","userId":"u1","messageId":"bad"},{"type":"track","userId":"u1","event":"ok-2","messageId":"k2"}]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["rejected"][0]["index"], 1);
    assert_eq!(v["rejected"][0]["messageId"], "bad");
    assert!(v["rejected"][0]["error"].as_str().unwrap().contains("`type` `purchase` is not a known type"));
    let counts = app.store.count_message_ids(&["k1".into(), "k2".into(), "bad".into()]).await.unwrap();
    assert_eq!((counts["k1"], counts["k2"], counts["bad"]), (1, 1, 0));
}

/// One hostile or malformed request and what it must get.
struct Case {
    name: &'static str,
    path: &'static str,
    auth: Auth,
    body: Vec<u8>,
    status: u16,
    error: &'static str,
}

enum Auth {
    Write,
    Secret,
    None,
    Header(&'static str),
}

fn case(name: &'static str, path: &'static str, body: &str, status: u16, error: &'static str) -> Case {
    Case { name, path, auth: Auth::Write, body: body.as_bytes().to_vec(), status, error }
}

fn hostile_cases() -> Vec<Case> {
    let big_property = "x".repeat(33 * 1024);
    let deep = format!(r#"{{"userId":"u","event":"e","properties":{}1{}}}"#, r#"{"a":"#.repeat(200), "}".repeat(200));
    let mut cases = vec![
        case("bad JSON", "/v1/track", r#"{"userId": "u", "event": }"#, 400, "invalid JSON"),
        case("truncated JSON", "/v1/track", r#"{"userId":"u","event":"e""#, 400, "invalid JSON"),
        case(
            "array instead of object",
            "/v1/track",
            r#"[{"userId":"u","event":"e"}]"#,
            400,
            "a message must be a JSON object",
        ),
        case(
            "userId is an object",
            "/v1/track",
            r#"{"userId":{"id":1},"event":"e"}"#,
            400,
            "`userId` must be a string, got an object",
        ),
        case(
            "userId is a boolean",
            "/v1/track",
            r#"{"userId":true,"event":"e"}"#,
            400,
            "`userId` must be a string, got a boolean",
        ),
        case(
            "userId is an array",
            "/v1/identify",
            r#"{"userId":["u"]}"#,
            400,
            "`userId` must be a string, got an array",
        ),
        case(
            "event is a number",
            "/v1/track",
            r#"{"userId":"u","event":42}"#,
            400,
            "`event` must be a string, got a number",
        ),
        case(
            "properties is a string",
            "/v1/track",
            r#"{"userId":"u","event":"e","properties":"x"}"#,
            400,
            "`properties` must be an object, got a string",
        ),
        case(
            "properties is an array",
            "/v1/track",
            r#"{"userId":"u","event":"e","properties":[1]}"#,
            400,
            "`properties` must be an object, got an array",
        ),
        case(
            "traits is an array",
            "/v1/identify",
            r#"{"userId":"u","traits":["a"]}"#,
            400,
            "`traits` must be an object, got an array",
        ),
        case(
            "timestamp is not ISO-8601",
            "/v1/track",
            r#"{"userId":"u","event":"e","timestamp":"last tuesday"}"#,
            400,
            "`timestamp` `last tuesday` is not an ISO-8601 timestamp",
        ),
        case(
            "timestamp is a number",
            "/v1/track",
            r#"{"userId":"u","event":"e","timestamp":1700000000}"#,
            400,
            "`timestamp` must be a string, got a number",
        ),
        case(
            "context is a string",
            "/v1/track",
            r#"{"userId":"u","event":"e","context":"web"}"#,
            400,
            "`context` must be an object, got a string",
        ),
        case(
            "no userId nor anonymousId",
            "/v1/track",
            r#"{"event":"e"}"#,
            400,
            "`userId` or `anonymousId` is required",
        ),
        case("empty event", "/v1/track", r#"{"userId":"u","event":"  "}"#, 400, "`event` must not be empty"),
        case(
            "group without groupId",
            "/v1/group",
            r#"{"userId":"u","traits":{"name":"x"}}"#,
            400,
            "`groupId` is required for a group call",
        ),
        case(
            "alias without previousId",
            "/v1/alias",
            r#"{"userId":"u"}"#,
            400,
            "`previousId` is required for an alias call",
        ),
        case(
            "type does not match the endpoint",
            "/v1/track",
            r#"{"type":"identify","userId":"u"}"#,
            400,
            "`type` is `identify` but this endpoint takes `track` calls",
        ),
        case(
            "every batch message invalid",
            "/v1/batch",
            r#"{"batch":[{"type":"nope","userId":"u"},{"userId":"u"}]}"#,
            400,
            "every message in the batch was rejected",
        ),
        case("batch is not an array", "/v1/batch", r#"{"batch":{"type":"track"}}"#, 400, "`batch` must be an array"),
        case("batch is missing", "/v1/batch", r#"{"messages":[]}"#, 400, "`batch` is required"),
        case(
            "message over 32 KB",
            "/v1/track",
            &format!(r#"{{"userId":"u","event":"e","properties":{{"x":"{big_property}"}}}}"#),
            413,
            "the limit is 32768 bytes",
        ),
        case(
            "batch over 500 KB",
            "/v1/batch",
            &format!(r#"{{"batch":[{}]}}"#, vec![r#"{"type":"track","userId":"u","event":"e"}"#; 14_000].join(",")),
            413,
            "the limit is 512000 bytes",
        ),
        case("deeply nested properties", "/v1/track", &deep, 400, "nested at least 65 levels deep; the limit is 64"),
        case(
            "deeply nested batch",
            "/v1/batch",
            &format!(r#"{{"batch":[{}]}}"#, "[".repeat(100_000)),
            400,
            "nested at least 67 levels deep",
        ),
        case("empty body", "/v1/track", "", 400, "invalid JSON"),
        case(
            "duplicate JSON keys",
            "/v1/track",
            r#"{"userId":"a","userId":"b","event":"e"}"#,
            400,
            "duplicate field `userId`",
        ),
        case(
            "userId over 512 bytes",
            "/v1/track",
            &format!(r#"{{"userId":"{}","event":"e"}}"#, "u".repeat(600)),
            400,
            "`userId` is longer than 512 bytes",
        ),
        case(
            "control characters in userId",
            "/v1/track",
            r#"{"userId":"a\u0000b","event":"e"}"#,
            400,
            "`userId` must not contain control characters",
        ),
        case("unknown endpoint", "/v1/purchase", r#"{"userId":"u"}"#, 404, "no such endpoint `/v1/purchase`"),
    ];
    cases.push(Case {
        name: "invalid UTF-8",
        path: "/v1/track",
        auth: Auth::Write,
        body: b"{\"userId\":\"\xff\xfe\",\"event\":\"e\"}".to_vec(),
        status: 400,
        error: "not valid UTF-8",
    });
    cases.push(Case {
        name: "no auth",
        path: "/v1/track",
        auth: Auth::None,
        body: br#"{"userId":"u","event":"e"}"#.to_vec(),
        status: 401,
        error: "missing write key",
    });
    cases.push(Case {
        name: "unknown write key",
        path: "/v1/track",
        auth: Auth::Header("Basic Y2Fpcm5fd2tfbm9wZTo="),
        body: br#"{"userId":"u","event":"e"}"#.to_vec(),
        status: 401,
        error: "unknown or revoked write key",
    });
    cases.push(Case {
        name: "secret key used for tracking",
        path: "/v1/track",
        auth: Auth::Secret,
        body: br#"{"userId":"u","event":"e"}"#.to_vec(),
        status: 401,
        error: "tracking calls need a write key",
    });
    cases.push(Case {
        name: "bearer instead of basic",
        path: "/v1/track",
        auth: Auth::Header("Bearer abc"),
        body: br#"{"userId":"u","event":"e"}"#.to_vec(),
        status: 401,
        error: "must be `Basic base64(WRITE_KEY:)`",
    });
    cases.push(Case {
        name: "basic credentials not base64",
        path: "/v1/track",
        auth: Auth::Header("Basic %%%"),
        body: br#"{"userId":"u","event":"e"}"#.to_vec(),
        status: 401,
        error: "not valid base64",
    });
    cases
}

async fn hostile_payloads_get_clear_errors_and_change_nothing(app: &TestApp) {
    app.post("/v1/identify", r#"{"userId":"u0","traits":{"email":"zoe@acme.io"}}"#).await;
    let before = app.store.snapshot().await.unwrap();
    let secret = cairn::loopback::basic_auth(&app.secret_key);
    let write = cairn::loopback::basic_auth(&app.write_key);
    let cases = hostile_cases();
    assert!(cases.len() >= 25);
    for c in &cases {
        let auth = match c.auth {
            Auth::Write => Some(write.as_str()),
            Auth::Secret => Some(secret.as_str()),
            Auth::None => None,
            Auth::Header(h) => Some(h),
        };
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let r = app.raw("POST", c.path, &headers, &c.body).await;
        assert_eq!(r.status, c.status, "{}: {}", c.name, r.body);
        assert!(r.body.contains(c.error), "{}: expected `{}` in {}", c.name, c.error, r.body);
        assert_eq!(r.json()["success"], false, "{}: {}", c.name, r.body);
        if r.status == 401 {
            assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"cairn\""), "{}", c.name);
        }
    }
    let get = app.raw("GET", "/v1/track", &[], b"").await;
    assert!(!(200..300).contains(&get.status), "GET /v1/track must not succeed");
    assert_eq!(app.store.snapshot().await.unwrap(), before, "a refused request changed stored data");
    let ok = app.post("/v1/track", r#"{"userId":"u0","event":"still_alive"}"#).await;
    assert_eq!(ok.status, 200, "the server still serves after the barrage: {}", ok.body);
}

async fn an_oversize_message_inside_a_batch_is_rejected_alone(app: &TestApp) {
    let big = "x".repeat(33 * 1024);
    let body = format!(
        r#"{{"batch":[{{"type":"track","userId":"u","event":"e","messageId":"small"}},{{"type":"track","userId":"u","event":"e","properties":{{"x":"{big}"}}}}]}}"#
    );
    let r = app.post("/v1/batch", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected"][0]["index"], 1);
    assert!(v["rejected"][0]["error"].as_str().unwrap().contains("the limit is 32768 bytes"));
}

on_both_backends!(
    segment_spec_identify_creates_a_contact_with_its_traits,
    segment_spec_group_creates_the_account_and_links_the_user,
    track_with_context_group_id_is_bound_to_the_account,
    anonymous_events_join_the_contact_once_identified,
    batch_level_sent_at_corrects_clock_skew,
    a_resent_message_is_acknowledged_and_stored_once,
    the_write_key_may_come_in_the_body,
    a_batch_with_one_bad_message_keeps_the_others,
    hostile_payloads_get_clear_errors_and_change_nothing,
    an_oversize_message_inside_a_batch_is_rejected_alone,
);
