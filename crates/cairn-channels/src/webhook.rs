//! Webhooks (and, through them, SMS and Slack): a JSON POST signed with HMAC-SHA256.
//!
//! The receiver recomputes `hex(hmac_sha256(secret, "{timestamp}.{body}"))` over the
//! exact body bytes and the `X-Cairn-Timestamp` header (Unix seconds), compares it in
//! constant time with the `v1=` value of `X-Cairn-Signature`, and refuses timestamps
//! too far from its own clock so a captured request cannot be replayed later.

use std::fmt;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jiff::{SignedDuration, Timestamp};
use thiserror::Error;

use crate::error::ChannelError;
use crate::mac::{Keyed, hex, unhex};

/// Header carrying the signing instant, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Cairn-Timestamp";
/// Header carrying `v1=` and the hex HMAC-SHA256; several comma-separated values are
/// allowed while a secret is being rotated.
pub const SIGNATURE_HEADER: &str = "X-Cairn-Signature";

/// Response bodies are read up to this size (the rest is not waited for).
const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// How much of a response body is kept for the caller's record.
const KEPT_RESPONSE_BODY: usize = 2048;

/// The `X-Cairn-Signature` value for `body` signed at `unix_seconds`: `v1=` and 64 hex
/// digits.
pub fn sign_webhook(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    format!("v1={}", hex(&Keyed::new(secret).raw(&signed_bytes(unix_seconds, body))))
}

fn signed_bytes(unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{unix_seconds}.").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Why a receiver refused a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebhookSignatureError {
    /// No `X-Cairn-Timestamp`, or not a whole number of seconds.
    #[error("missing or malformed X-Cairn-Timestamp header")]
    BadTimestamp,
    /// The timestamp is further from the receiver's clock than the tolerance allows.
    #[error("the webhook's timestamp is outside the accepted window")]
    Stale,
    /// No `X-Cairn-Signature`, or no `v1=` value in it.
    #[error("missing or malformed X-Cairn-Signature header")]
    Unsigned,
    /// No `v1=` value matches the body and timestamp.
    #[error("the webhook's signature does not match its body")]
    Mismatch,
}

/// Checks a received webhook: the timestamp within `tolerance` of `now` (the receiver's
/// clock, passed in) and one `v1=` signature matching `body`, compared in constant time.
pub fn verify_webhook_signature(
    secret: &[u8],
    body: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    now: Timestamp,
    tolerance: SignedDuration,
) -> Result<(), WebhookSignatureError> {
    let seconds: i64 = timestamp.and_then(|t| t.trim().parse().ok()).ok_or(WebhookSignatureError::BadTimestamp)?;
    let sent = Timestamp::from_second(seconds).map_err(|_| WebhookSignatureError::BadTimestamp)?;
    // A negative tolerance means none; both instants are valid, so the difference is small.
    if now.duration_since(sent).abs() > tolerance.max(SignedDuration::ZERO) {
        return Err(WebhookSignatureError::Stale);
    }
    let tags: Vec<Vec<u8>> = signature
        .unwrap_or_default()
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(unhex)
        .collect();
    if tags.is_empty() {
        return Err(WebhookSignatureError::Unsigned);
    }
    let key = Keyed::new(secret);
    let signed = signed_bytes(seconds, body);
    // Check every candidate (no early exit) so timing says nothing about which matched.
    let matched = tags.iter().fold(false, |found, tag| key.raw_matches(&signed, tag) | found);
    if matched { Ok(()) } else { Err(WebhookSignatureError::Mismatch) }
}

/// A 2xx answer to a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// The HTTP status.
    pub status: u16,
    /// The start of the response body (at most 2 KiB, lossy UTF-8), for the record.
    pub body: String,
}

/// An HTTP/1.1 client for webhooks over http or https (rustls with the `ring` provider
/// and the bundled web PKI roots), connections kept alive between calls. Redirects are
/// not followed: a signed POST goes where it was configured to go, or fails.
#[derive(Clone)]
pub struct WebhookClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookClient").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl WebhookClient {
    /// A client whose every call (connect, send, read the answer) ends within `timeout`.
    pub fn new(timeout: Duration) -> Result<WebhookClient, ChannelError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| ChannelError::Config(format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(WebhookClient { client: Client::builder(TokioExecutor::new()).build(connector), timeout })
    }

    /// POSTs `body` as JSON to `url` with `X-Cairn-Timestamp` (`at`, in Unix seconds) and
    /// `X-Cairn-Signature`. A 2xx is success; timeouts, connection failures, 5xx, 408 and
    /// 429 are transient; other answers (4xx, a redirect) are permanent; a URL that is not
    /// `http(s)://host…` is a configuration error.
    pub async fn post_webhook(
        &self,
        url: &str,
        body: &serde_json::Value,
        secret: &[u8],
        at: Timestamp,
    ) -> Result<WebhookResponse, ChannelError> {
        // Errors name the host at most: webhook URLs (Slack's, say) carry secrets in their
        // path and query.
        let uri: Uri = url.parse().map_err(|_| ChannelError::Config("the webhook URL does not parse".into()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(ChannelError::Config("the webhook URL is not an absolute http(s) URL".into()));
        }
        let host = uri.host().unwrap_or_default().to_string();
        let bytes = serde_json::to_vec(body).map_err(|e| ChannelError::invalid("body", e.to_string()))?;
        let seconds = at.as_second();
        let signature = sign_webhook(secret, seconds, &bytes);
        let header =
            |text: String| HeaderValue::try_from(text).map_err(|e| ChannelError::invalid("header", e.to_string()));
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, HeaderValue::from_static(concat!("cairn/", env!("CARGO_PKG_VERSION"))))
            .header(TIMESTAMP_HEADER, header(seconds.to_string())?)
            .header(SIGNATURE_HEADER, header(signature)?)
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| ChannelError::Config(format!("request to {host}: {e}")))?;

        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| ChannelError::Transient {
                code: None,
                detail: format!(
                    "{}: {}",
                    if e.is_connect() { "connection failed" } else { "request failed" },
                    chain(&e)
                ),
            })?;
            let status = response.status().as_u16();
            // The answer's body is only a note for the record: a failure to read it, or
            // one too long, does not change the outcome.
            let body = match Limited::new(response.into_body(), MAX_RESPONSE_BODY).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::new(),
            };
            let text: String = String::from_utf8_lossy(&body).chars().take(KEPT_RESPONSE_BODY).collect();
            Ok::<_, ChannelError>((status, text))
        };
        let (status, text) = tokio::time::timeout(self.timeout, exchange).await.map_err(|_| {
            ChannelError::Transient { code: None, detail: format!("no answer within {:?}", self.timeout) }
        })??;
        match status {
            200..=299 => Ok(WebhookResponse { status, body: text }),
            408 | 429 | 500..=599 => Err(ChannelError::Transient { code: Some(status), detail: text }),
            _ => Err(ChannelError::Permanent { code: Some(status), detail: text }),
        }
    }
}

/// An error and its causes on one line ("connection failed: tcp connect error: …").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec-test";

    fn at() -> Timestamp {
        Timestamp::from_second(1_767_225_600).unwrap()
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Known answer computed independently:
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec-test
        let sig = sign_webhook(SECRET, 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(sig, "v1=fed7a1a6c799a6367d73724d76bc70c16678908a32a879cd1ded6565ac05cece");
        assert_eq!(sig, sign_webhook(SECRET, 1_700_000_000, br#"{"a":1}"#));
        assert_ne!(sig, sign_webhook(SECRET, 1_700_000_001, br#"{"a":1}"#));
    }

    #[test]
    fn receivers_accept_a_fresh_genuine_webhook_and_refuse_the_rest() {
        let body = br#"{"event":"milestone_missed"}"#;
        let ts = at().as_second().to_string();
        let sig = sign_webhook(SECRET, at().as_second(), body);
        let window = SignedDuration::from_mins(5);
        let verify = |body: &[u8], ts: Option<&str>, sig: Option<&str>, now: Timestamp| {
            verify_webhook_signature(SECRET, body, ts, sig, now, window)
        };
        assert_eq!(verify(body, Some(&ts), Some(&sig), at()), Ok(()));
        let later = at() + SignedDuration::from_mins(4);
        assert_eq!(verify(body, Some(&ts), Some(&sig), later), Ok(()));
        let rotated = format!("v1={}, {sig}", "0".repeat(64));
        assert_eq!(verify(body, Some(&ts), Some(&rotated), at()), Ok(()));

        assert_eq!(verify(b"{}", Some(&ts), Some(&sig), at()), Err(WebhookSignatureError::Mismatch));
        let next = (at().as_second() + 1).to_string();
        assert_eq!(
            verify(body, Some(&next), Some(&sig), at()),
            Err(WebhookSignatureError::Mismatch),
            "timestamp is signed"
        );
        let too_late = at() + SignedDuration::from_mins(6);
        assert_eq!(verify(body, Some(&ts), Some(&sig), too_late), Err(WebhookSignatureError::Stale));
        assert_eq!(verify(body, None, Some(&sig), at()), Err(WebhookSignatureError::BadTimestamp));
        assert_eq!(verify(body, Some("soon"), Some(&sig), at()), Err(WebhookSignatureError::BadTimestamp));
        assert_eq!(verify(body, Some("99999999999999"), Some(&sig), at()), Err(WebhookSignatureError::BadTimestamp));
        assert_eq!(verify(body, Some(&ts), None, at()), Err(WebhookSignatureError::Unsigned));
        assert_eq!(verify(body, Some(&ts), Some("v0=abc"), at()), Err(WebhookSignatureError::Unsigned));
        assert_eq!(verify(body, Some(&ts), Some("v1=zz"), at()), Err(WebhookSignatureError::Unsigned));
        let other = verify_webhook_signature(b"other", body, Some(&ts), Some(&sig), at(), window);
        assert_eq!(other, Err(WebhookSignatureError::Mismatch));
    }

    #[tokio::test]
    async fn urls_that_are_not_http_are_configuration_errors() {
        let client = WebhookClient::new(Duration::from_secs(1)).unwrap();
        for url in ["", "not a url", "ftp://example.com/x", "/relative", "http://", "https://hooks.example/T0/s3cr3t x"]
        {
            let err = client.post_webhook(url, &serde_json::json!({}), SECRET, at()).await.unwrap_err();
            assert!(matches!(err, ChannelError::Config(_)), "{url}: {err:?}");
            assert!(!err.to_string().contains("s3cr3t"), "the URL's secret path stays out of errors");
        }
        assert!(!format!("{client:?}").contains("whsec"));
    }
}
