//! Webhooks against a real receiver: an axum server on loopback that checks the
//! signature as a customer's endpoint would, and answers what each test asks for.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cairn_channels::{
    ChannelError, RetryPolicy, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookClient, verify_webhook_signature,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

const SECRET: &[u8] = b"whsec-customer-endpoint";

fn at() -> Timestamp {
    "2026-03-02T09:30:00Z".parse().unwrap()
}

#[derive(Debug, Clone)]
struct Seen {
    verified: bool,
    content_type: String,
    body: serde_json::Value,
}

#[derive(Clone)]
struct Receiver {
    answer: StatusCode,
    delay: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn hook(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // The receiver's clock is the instant the test signed at: no wall-clock in the check.
    let verified = verify_webhook_signature(
        SECRET,
        &body,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        at(),
        SignedDuration::from_mins(5),
    )
    .is_ok();
    receiver.seen.lock().unwrap().push(Seen {
        verified,
        content_type: header("content-type").unwrap_or_default().to_string(),
        body: serde_json::from_slice(&body).unwrap_or_default(),
    });
    tokio::time::sleep(receiver.delay).await;
    if !verified {
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    (receiver.answer, "noted")
}

/// Spawns a receiver answering `answer` after `delay`; returns its URL and what it saw.
async fn spawn_receiver(answer: StatusCode, delay: Duration) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().route("/hook", post(hook)).with_state(Receiver { answer, delay, seen: seen.clone() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn client() -> WebhookClient {
    WebhookClient::new(Duration::from_secs(5)).unwrap()
}

fn payload() -> serde_json::Value {
    json!({"event": "milestone_missed", "account": "acme", "milestone": "first_report", "text": "Acme — late"})
}

#[tokio::test]
async fn a_2xx_is_delivered_and_the_receiver_verifies_the_signature() {
    let (url, seen) = spawn_receiver(StatusCode::OK, Duration::ZERO).await;
    let response = client().post_webhook(&url, &payload(), SECRET, at()).await.unwrap();
    assert_eq!((response.status, response.body.as_str()), (200, "noted"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].verified);
    assert_eq!(seen[0].content_type, "application/json");
    assert_eq!(seen[0].body, payload());
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_receiver_and_that_is_permanent() {
    let (url, seen) = spawn_receiver(StatusCode::OK, Duration::ZERO).await;
    let error = client().post_webhook(&url, &payload(), b"rotated-away", at()).await.unwrap_err();
    assert!(matches!(error, ChannelError::Permanent { code: Some(401), .. }), "{error:?}");
    assert!(!seen.lock().unwrap()[0].verified);
}

#[tokio::test]
async fn a_stale_timestamp_is_refused_by_the_receiver() {
    let (url, seen) = spawn_receiver(StatusCode::OK, Duration::ZERO).await;
    let an_hour_ago = at() - SignedDuration::from_hours(1);
    let error = client().post_webhook(&url, &payload(), SECRET, an_hour_ago).await.unwrap_err();
    assert_eq!(error.code(), Some(401));
    assert!(!seen.lock().unwrap()[0].verified);
}

#[tokio::test]
async fn server_errors_and_throttling_are_transient() {
    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::REQUEST_TIMEOUT,
    ] {
        let (url, seen) = spawn_receiver(status, Duration::ZERO).await;
        let error = client().post_webhook(&url, &payload(), SECRET, at()).await.unwrap_err();
        assert!(error.is_transient(), "{status}: {error:?}");
        assert_eq!(error.code(), Some(status.as_u16()));
        assert!(seen.lock().unwrap()[0].verified);
        assert!(RetryPolicy::default().should_retry(1, &error));
    }
}

#[tokio::test]
async fn other_client_errors_and_redirects_are_permanent() {
    for status in [StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND, StatusCode::GONE, StatusCode::MOVED_PERMANENTLY] {
        let (url, _) = spawn_receiver(status, Duration::ZERO).await;
        let error = client().post_webhook(&url, &payload(), SECRET, at()).await.unwrap_err();
        assert!(matches!(error, ChannelError::Permanent { .. }), "{status}: {error:?}");
        assert_eq!(error.code(), Some(status.as_u16()));
        assert!(!RetryPolicy::default().should_retry(1, &error));
    }
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let error = client().post_webhook(&url, &payload(), SECRET, at()).await.unwrap_err();
    assert!(matches!(error, ChannelError::Transient { code: None, .. }), "{error:?}");
    assert!(error.to_string().contains("connection failed"), "{error}");
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_transient() {
    let (url, _) = spawn_receiver(StatusCode::OK, Duration::from_secs(3)).await;
    let impatient = WebhookClient::new(Duration::from_millis(200)).unwrap();
    let error = impatient.post_webhook(&url, &payload(), SECRET, at()).await.unwrap_err();
    assert!(matches!(error, ChannelError::Transient { code: None, .. }), "{error:?}");
}
