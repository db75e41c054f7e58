//! The OpenAPI document against the live server: over a small simulated demo, every
//! operation of `GET /api/openapi.json` is called as the document describes it (its
//! parameters' examples or a live value, its request body's example, its security
//! scheme's key), and every response — successes, the 401 without a key, the 404 of an
//! unknown id — must have a status the operation documents and a body that its schema
//! accepts. Every operation must succeed at least once, so none is left unchecked.

#[path = "support/demo_server.rs"]
mod demo_server;
#[path = "support/json_schema.rs"]
mod json_schema;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use base64::Engine as _;
use cairn::loopback::{Connection, Response};
use demo_server::DemoServer;
use serde_json::{Value, json};

/// Values from the demo for path parameters whose examples cannot name them (an open
/// task, a message in someone's inbox), by (path, parameter).
type Live = BTreeMap<(String, String), String>;

struct Call {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn param_value(op: &Value, path: &str, p: &Value, live: &Live) -> String {
    let name = p["name"].as_str().unwrap_or_default();
    live.get(&(path.to_string(), name.to_string()))
        .cloned()
        .or_else(|| p["example"].as_str().map(str::to_string))
        .or_else(|| p["schema"]["enum"].get(0).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| panic!("{path}: no value for the parameter `{name}` of {}", op["operationId"]))
}

/// The calls the document describes for one operation: one per value of an enumerated
/// path parameter, else one.
fn calls(
    server: &DemoServer,
    method: &str,
    path: &str,
    op: &Value,
    live: &Live,
    user_hash: &str,
    optional: Option<&Value>,
) -> Vec<Call> {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let mut paths = vec![path.to_string()];
    for p in params.iter().filter(|p| p["in"] == "path") {
        let name = p["name"].as_str().expect("a name");
        let values: Vec<String> = match p["schema"]["enum"].as_array() {
            Some(list) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            None => vec![param_value(op, path, p, live)],
        };
        paths =
            paths.iter().flat_map(|pth| values.iter().map(move |v| pth.replace(&format!("{{{name}}}"), v))).collect();
    }
    let mut query: Vec<String> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    for p in params.iter().filter(|p| p["in"] == "query" && p["required"] == true) {
        let value = param_value(op, path, p, live);
        query.push(format!("{}={value}", p["name"].as_str().expect("a name")));
    }
    if let Some(p) = optional {
        query.push(format!("{}={}", p["name"].as_str().expect("a name"), p["example"].as_str().expect("an example")));
    }
    let security = op["security"].as_array().cloned().unwrap_or_default();
    let scheme = security.first().and_then(|s| s.as_object()).and_then(|s| s.keys().next().cloned());
    match scheme.as_deref() {
        Some("secretKey") => headers.push(("authorization".into(), format!("Bearer {}", server.secret_key))),
        Some("writeKey") => {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:", server.write_key));
            headers.push(("authorization".into(), format!("Basic {basic}")));
        }
        Some("publishableKey") => {
            headers.push(("authorization".into(), format!("Bearer {}", server.publishable_key)));
            headers.push(("x-cairn-user-hash".into(), user_hash.to_string()));
        }
        None => {}
        Some(other) => panic!("{path}: the security scheme {other} is not known to this test"),
    }
    let content = &op["requestBody"]["content"]["application/json"];
    let mut body = Vec::new();
    if !content.is_null() {
        let mut example = content["example"].clone();
        // The body's userHash stands for the real one (the header carries it too).
        if let Some(hash) = example.get_mut("userHash") {
            *hash = json!(user_hash);
        }
        body = serde_json::to_vec(&example).expect("json");
        headers.push(("content-type".into(), "application/json".into()));
    }
    let suffix = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
    paths
        .into_iter()
        .map(|p| Call {
            method: method.to_uppercase(),
            path: format!("{p}{suffix}"),
            headers: headers.clone(),
            body: body.clone(),
        })
        .collect()
}

async fn send(addr: &str, call: &Call) -> Response {
    let headers: Vec<(&str, &str)> = call.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Connection::new(addr).request(&call.method, &call.path, &headers, &call.body).await.expect("a response")
}

/// The problems with `response` as an answer to `op`: a status it does not document, a
/// body its schema refuses.
fn check_response(doc: &Value, op: &Value, response: &Response) -> Vec<String> {
    let status = response.status.to_string();
    let Some(mut documented) = op["responses"].get(&status).cloned() else {
        return vec![format!("status {status} is not documented ({})", response.body)];
    };
    if let Some(r) = documented.get("$ref").and_then(Value::as_str) {
        documented = doc.pointer(r.trim_start_matches('#')).cloned().expect("a response reference");
    }
    let schema = &documented["content"]["application/json"]["schema"];
    if schema.is_null() {
        return Vec::new();
    }
    let Ok(body) = serde_json::from_str::<Value>(&response.body) else {
        return vec![format!("status {status}: the body is not JSON: {}", response.body)];
    };
    json_schema::validate(doc, schema, &body).into_iter().map(|e| format!("status {status}: {e}")).collect()
}

/// An in-app message in the inbox of the user the document's examples name (`u-42`,
/// identified through the tracking API), for the mark operation to act on.
async fn inapp_message_for_u42(server: &DemoServer) -> i64 {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:", server.write_key));
    let auth = format!("Basic {basic}");
    let r = Connection::new(&server.addr)
        .request(
            "POST",
            "/v1/identify",
            &[("authorization", &auth), ("content-type", "application/json")],
            br#"{"userId":"u-42","messageId":"openapi-u42","traits":{"email":"u42@openapi.example"}}"#,
        )
        .await
        .expect("identify");
    assert_eq!(r.status, 200, "{}", r.body);
    let contact = server.store.resolve_contact("u-42").await.expect("store").expect("u-42 is a contact");
    let enrollment = server.store.program_enrollments("onboarding_welcome").await.expect("store");
    let enrollment = enrollment.first().expect("the demo enrolled someone in onboarding_welcome").id;
    let at = "2026-03-01T08:00:00Z".parse().expect("timestamp");
    server.store.add_inapp_message(contact, enrollment, "openapi_check", "Hello", "<p>Hi</p>", at).await.expect("store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_its_schema_says() {
    let server = DemoServer::start(24, 60).await;
    let r = Connection::new(&server.addr).request("GET", "/api/openapi.json", &[], b"").await.expect("document");
    assert_eq!(r.status, 200, "{}", r.body);
    let doc: Value = serde_json::from_str(&r.body).expect("the document is JSON");

    // Live values: an account, an open task, a message in u-42's inbox.
    let secret = format!("Bearer {}", server.secret_key);
    let get = |path: &'static str| {
        let (addr, secret) = (server.addr.clone(), secret.clone());
        async move {
            let r = Connection::new(&addr).request("GET", path, &[("authorization", &secret)], b"").await.expect("get");
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            serde_json::from_str::<Value>(&r.body).expect("json")
        }
    };
    let accounts = get("/api/accounts").await;
    let account = accounts["accounts"][0]["id"].as_u64().expect("the demo has accounts").to_string();
    let tasks = get("/api/tasks").await;
    let task = tasks["tasks"][0]["id"].as_i64().expect("the demo has open tasks").to_string();
    let message = inapp_message_for_u42(&server).await.to_string();
    let mut live = Live::new();
    for path in [
        "/api/accounts/{id}",
        "/api/accounts/{id}/timeline",
        "/api/accounts/{id}/contacts",
        "/api/accounts/{id}/health/override",
    ] {
        live.insert((path.into(), "id".into()), account.clone());
    }
    live.insert(("/api/tasks/{id}/complete".into(), "id".into()), task);
    live.insert(("/v1/inapp/messages/{id}/{action}".into(), "id".into()), message);
    let user_hash = {
        let key = server.store.find_api_key(&cairn_server::hash_key(&server.publishable_key)).await.expect("store");
        let secret =
            cairn_server::inapp_identity_secret(&server.store, key.expect("the key").id).await.expect("secret");
        cairn_server::user_hash(&secret, "u-42")
    };

    let mut problems: Vec<String> = Vec::new();
    let mut succeeded: BTreeSet<String> = BTreeSet::new();
    let mut operations = 0;
    let started = Instant::now();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            operations += 1;
            let name = format!("{} {path}", method.to_uppercase());
            // As is, and once with each optional query parameter that has an example.
            let optional: Vec<Option<&Value>> = std::iter::once(None)
                .chain(
                    op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| p["in"] == "query" && p["required"] != true && p["example"].is_string())
                        .map(Some),
                )
                .collect();
            let all: Vec<Call> =
                optional.into_iter().flat_map(|o| calls(&server, method, path, op, &live, &user_hash, o)).collect();
            for call in all {
                let response = send(&server.addr, &call).await;
                if (200..300).contains(&response.status) {
                    succeeded.insert(name.clone());
                } else {
                    // The document's examples are meant to work on the demo.
                    problems.push(format!("{} {}: {} {}", call.method, call.path, response.status, response.body));
                }
                for p in check_response(&doc, op, &response) {
                    problems.push(format!("{} {}: {p}", call.method, call.path));
                }
                // Without a key: the documented 401.
                if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                    let bare = Call { headers: Vec::new(), ..call };
                    let response = send(&server.addr, &bare).await;
                    if response.status != 401 {
                        problems.push(format!(
                            "{} {} without a key: {} {}",
                            bare.method, bare.path, response.status, response.body
                        ));
                    }
                    for p in check_response(&doc, op, &response) {
                        problems.push(format!("{} {} without a key: {p}", bare.method, bare.path));
                    }
                }
            }
            // An id that names nothing: a documented error, not a 500.
            let has_id = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" && p["schema"]["enum"].is_null()));
            if has_id && method != "options" {
                let mut nowhere = live.clone();
                for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path") {
                    if p["schema"]["enum"].is_null() {
                        nowhere.insert((path.clone(), p["name"].as_str().unwrap_or("").into()), "no-such-thing".into());
                    }
                }
                for call in calls(&server, method, path, op, &nowhere, &user_hash, None) {
                    let response = send(&server.addr, &call).await;
                    if !(400..500).contains(&response.status) {
                        problems.push(format!(
                            "{} {}: expected a 4xx for an unknown id, got {}",
                            call.method, call.path, response.status
                        ));
                    }
                    for p in check_response(&doc, op, &response) {
                        problems.push(format!("{} {}: {p}", call.method, call.path));
                    }
                }
            }
        }
    }
    eprintln!("{operations} operations checked in {:.1?}", started.elapsed());
    let never: Vec<String> = doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(p, item)| {
            item.as_object().into_iter().flatten().map(move |(m, _)| format!("{} {p}", m.to_uppercase()))
        })
        .filter(|name| !succeeded.contains(name))
        .collect();
    assert!(never.is_empty(), "operations that never succeeded, so their success schema is unchecked: {never:?}");
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    assert!(operations >= 30, "only {operations} operations in the document");
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_that_breaks_its_schema_is_caught() {
    // The check above is only as good as the validator's reading of the real document:
    // a real account 360 passes, and the same with a member renamed or a type changed
    // does not.
    let server = DemoServer::start(6, 20).await;
    let doc: Value =
        Connection::new(&server.addr).request("GET", "/api/openapi.json", &[], b"").await.expect("document").json();
    let secret = format!("Bearer {}", server.secret_key);
    let list = Connection::new(&server.addr)
        .request("GET", "/api/accounts", &[("authorization", &secret)], b"")
        .await
        .expect("accounts")
        .json();
    let id = list["accounts"][0]["id"].as_u64().expect("the demo has accounts");
    let account = Connection::new(&server.addr)
        .request("GET", &format!("/api/accounts/{id}"), &[("authorization", &secret)], b"")
        .await
        .expect("account")
        .json();
    let schema =
        &doc["paths"]["/api/accounts/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(json_schema::validate(&doc, schema, &account), Vec::<String>::new());
    let mut renamed = account.clone();
    let stage = renamed.as_object_mut().expect("object").remove("stage").expect("stage");
    renamed["journey_stage"] = stage;
    assert!(!json_schema::validate(&doc, schema, &renamed).is_empty());
    let mut retyped = account.clone();
    retyped["segments"] = json!("enterprise");
    assert!(!json_schema::validate(&doc, schema, &retyped).is_empty());
    server.finish().await;
}
