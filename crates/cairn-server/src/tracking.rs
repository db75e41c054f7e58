//! The Segment-compatible tracking endpoints.
//!
//! Authentication: HTTP Basic with the write key as user name (password empty), or
//! `writeKey` in the JSON body, as the Segment spec allows. A response is sent only after
//! the accepted messages are committed (group commit in `cairn_store::Appender`).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use cairn_core::tracking::{
    Envelope, MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, MAX_NESTING, MessageError, MessageKind, RawBatch, TrackingMessage,
    check_nesting, parse_batch_item, parse_message, read_timestamp,
};
use cairn_store::{ApiKey, Appended, KeyKind};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

type Reply = Result<Json<Value>, ApiError>;

/// Reads the body, decoding `Content-Encoding: gzip` or `deflate`, and refuses more than
/// `limit` bytes — counted after decoding, so that a small compressed body cannot expand
/// without bound — with a 413 that says so. An unknown encoding is a 415 naming it.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize, what: &str) -> Result<Vec<u8>, ApiError> {
    let too_large = |size: Option<u64>| {
        ApiError::TooLarge(match size {
            Some(n) => format!("{what} is {n} bytes; the limit is {limit} bytes ({} KB)", limit / 1024),
            None => format!("{what} is larger than the limit of {limit} bytes ({} KB)", limit / 1024),
        })
    };
    let encoding = content_encoding(headers)?;
    if let Some(len) =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large(Some(len)));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.to_string().contains("length limit") {
            too_large(None)
        } else {
            ApiError::BadRequest(format!("could not read the request body: {e}"))
        }
    })?;
    match encoding {
        Encoding::Identity => Ok(bytes.to_vec()),
        Encoding::Gzip => inflate(flate2::read::MultiGzDecoder::new(&bytes[..]), "gzip", limit, what),
        Encoding::Deflate if is_zlib_header(&bytes) => {
            inflate(flate2::read::ZlibDecoder::new(&bytes[..]), "deflate", limit, what)
        }
        // Some clients send raw DEFLATE data, without the zlib wrapper, as `deflate`.
        Encoding::Deflate => inflate(flate2::read::DeflateDecoder::new(&bytes[..]), "deflate", limit, what),
    }
}

/// The body encodings the tracking API reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let mut found = Encoding::Identity;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = value
            .to_str()
            .map_err(|_| ApiError::UnsupportedEncoding("the Content-Encoding header is not readable text".into()))?;
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let this = match token.to_ascii_lowercase().as_str() {
                "identity" => continue,
                "gzip" | "x-gzip" => Encoding::Gzip,
                "deflate" => Encoding::Deflate,
                _ => {
                    return Err(ApiError::UnsupportedEncoding(format!(
                        "Content-Encoding `{token}` is not supported: send the body as is, or as gzip or deflate"
                    )));
                }
            };
            if found != Encoding::Identity {
                return Err(ApiError::UnsupportedEncoding(
                    "the body is encoded more than once (Content-Encoding lists several); encode it once, with gzip or deflate"
                        .into(),
                ));
            }
            found = this;
        }
    }
    Ok(found)
}

/// Whether data starts with a zlib header (RFC 1950: method 8, check bits).
fn is_zlib_header(bytes: &[u8]) -> bool {
    match bytes {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) * 256 + u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Decodes at most `limit` bytes from `decoder`; more is a 413.
fn inflate(decoder: impl std::io::Read, name: &str, limit: usize, what: &str) -> Result<Vec<u8>, ApiError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoder.take(cap).read_to_end(&mut out).map_err(|e| {
        ApiError::BadRequest(format!("the body is not valid {name} data ({e}); send it as is or encoded correctly"))
    })?;
    if out.len() > limit {
        return Err(ApiError::TooLarge(format!(
            "{what} is larger than the limit of {limit} bytes ({} KB) once {name}-decoded",
            limit / 1024
        )));
    }
    Ok(out)
}

fn utf8(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not valid UTF-8 (invalid byte at offset {}); send JSON encoded as UTF-8",
            e.valid_up_to()
        ))
    })
}

#[derive(Deserialize)]
struct WriteKeyOnly<'a> {
    #[serde(borrow, rename = "writeKey")]
    write_key: Option<Cow<'a, str>>,
}

/// The write key from the Basic auth user name, or else from `writeKey` in the body.
fn write_key_of<'a>(headers: &HeaderMap, body: &'a str) -> Result<Cow<'a, str>, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let auth = auth
            .to_str()
            .map_err(|_| ApiError::Unauthorized("the Authorization header is not readable text".into()))?;
        let encoded = auth.strip_prefix("Basic ").or_else(|| auth.strip_prefix("basic ")).ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Basic base64(WRITE_KEY:)`".into())
        })?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Basic credentials are not valid base64 of `WRITE_KEY:`".into())
            })?;
        let user = decoded.split(':').next().unwrap_or("").to_string();
        if user.is_empty() {
            return Err(ApiError::Unauthorized(
                "the Basic credentials have an empty user name: put the write key there".into(),
            ));
        }
        return Ok(Cow::Owned(user));
    }
    let in_body = serde_json::from_str::<WriteKeyOnly<'_>>(body).ok().and_then(|w| w.write_key);
    in_body.filter(|k| !k.is_empty()).ok_or_else(|| {
        ApiError::Unauthorized(
            "missing write key: send it as the HTTP Basic user name, or as `writeKey` in the body".into(),
        )
    })
}

async fn authenticate(state: &AppState, headers: &HeaderMap, body: &str) -> Result<ApiKey, ApiError> {
    let key = write_key_of(headers, body)?;
    match state.keys.find(&state.store, &key).await? {
        Some(k) if k.kind == KeyKind::Write => Ok(k),
        Some(k) => Err(ApiError::Unauthorized(format!(
            "this is a {} key; tracking calls need a write key (create one with `cairn keys create --kind write`)",
            k.kind.as_str()
        ))),
        None => Err(ApiError::Unauthorized("unknown or revoked write key".into())),
    }
}

/// A message id for senders that give none: unique per process and instant.
fn fallback_id(received_at: Timestamp) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("cairn-{}-{}-{n}", received_at.as_nanosecond(), std::process::id())
}

async fn single(state: AppState, headers: HeaderMap, body: Body, kind: MessageKind) -> Reply {
    let bytes = read_body(&headers, body, MAX_MESSAGE_BYTES, "the message").await?;
    let text = utf8(&bytes)?;
    let now = state.clock.now();
    let key = authenticate(&state, &headers, text).await?;
    let envelope = Envelope {
        received_at: now,
        batch_sent_at: None,
        batch_context: None,
        trust_timestamps: false,
        plausible: state.plausible,
    };
    let message = parse_message(text, Some(kind), &envelope, || fallback_id(now)).map_err(ApiError::BadMessage)?;
    let outcome = state.appender.append(&key.name, vec![message]).await?;
    let duplicate = outcome.first() == Some(&Appended::Duplicate);
    Ok(Json(json!({ "success": true, "duplicate": duplicate })))
}

/// `POST /v1/identify`
pub async fn identify(State(s): State<AppState>, h: HeaderMap, b: Body) -> Reply {
    single(s, h, b, MessageKind::Identify).await
}
/// `POST /v1/track`
pub async fn track(State(s): State<AppState>, h: HeaderMap, b: Body) -> Reply {
    single(s, h, b, MessageKind::Track).await
}
/// `POST /v1/group`
pub async fn group(State(s): State<AppState>, h: HeaderMap, b: Body) -> Reply {
    single(s, h, b, MessageKind::Group).await
}
/// `POST /v1/page`
pub async fn page(State(s): State<AppState>, h: HeaderMap, b: Body) -> Reply {
    single(s, h, b, MessageKind::Page).await
}
/// `POST /v1/screen`
pub async fn screen(State(s): State<AppState>, h: HeaderMap, b: Body) -> Reply {
    single(s, h, b, MessageKind::Screen).await
}
/// `POST /v1/alias`
pub async fn alias(State(s): State<AppState>, h: HeaderMap, b: Body) -> Reply {
    single(s, h, b, MessageKind::Alias).await
}

/// `POST /v1/batch`: every valid message is kept; each invalid one is listed in
/// `rejected` with its index and reason. All rejected is a 400.
pub async fn batch(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Reply {
    let bytes = read_body(&headers, body, MAX_BATCH_BYTES, "the batch").await?;
    let text = utf8(&bytes)?;
    let now = state.clock.now();
    let key = authenticate(&state, &headers, text).await?;
    // The batch wraps each message in two levels: `{"batch": [ … ]}`.
    check_nesting(text, MAX_NESTING + 2).map_err(ApiError::BadMessage)?;
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Err(e) => ApiError::BadMessage(MessageError::invalid_json(&e)),
            Ok(_) => ApiError::BadRequest("a batch must be a JSON object with a `batch` array".into()),
        });
    }
    let raw: RawBatch<'_> = serde_json::from_str(text).map_err(|e| {
        let m = MessageError::invalid_json(&e);
        if e.is_data() {
            ApiError::BadRequest(format!("`batch` must be an array of message objects ({})", e))
        } else {
            ApiError::BadMessage(m)
        }
    })?;
    let items = raw.batch.ok_or_else(|| ApiError::BadRequest("`batch` is required: an array of messages".into()))?;
    let batch_sent_at = read_timestamp("sentAt", raw.sent_at).map_err(ApiError::BadMessage)?;
    if let Some(c) = raw.context
        && !c.get().starts_with('{')
        && c.get() != "null"
    {
        return Err(ApiError::BadRequest("`context` must be an object".into()));
    }
    let envelope = Envelope {
        received_at: now,
        batch_sent_at,
        batch_context: raw.context,
        trust_timestamps: false,
        plausible: state.plausible,
    };
    let mut messages: Vec<TrackingMessage> = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match parse_batch_item(item, &envelope, || fallback_id(now)) {
            Ok(m) => messages.push(m),
            Err(e) => {
                let message_id = serde_json::from_str::<Value>(item.get())
                    .ok()
                    .and_then(|v| v.get("messageId").and_then(Value::as_str).map(str::to_string));
                rejected
                    .push(json!({ "index": index, "messageId": message_id, "field": e.field, "error": e.to_string() }));
            }
        }
    }
    if messages.is_empty() && !rejected.is_empty() {
        let first = rejected.first().and_then(|r| r.get("error")).and_then(Value::as_str).unwrap_or("").to_string();
        return Err(ApiError::BadBatch(json!({
            "success": false, "accepted": 0, "duplicates": 0, "rejected": rejected,
            "error": format!("every message in the batch was rejected; the first: {first}"),
        })));
    }
    let outcomes = if messages.is_empty() { Vec::new() } else { state.appender.append(&key.name, messages).await? };
    let duplicates = outcomes.iter().filter(|o| **o == Appended::Duplicate).count();
    Ok(Json(json!({
        "success": true,
        "accepted": outcomes.len() - duplicates,
        "duplicates": duplicates,
        "rejected": rejected,
    })))
}
