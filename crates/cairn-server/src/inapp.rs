//! The in-app inbox, called from the customer's product in the browser: a publishable key
//! (`Authorization: Bearer cairn_pk_…`, or `?key=cairn_pk_…` for simple embeds), CORS
//! open to every origin, and the product's own `userId` to say whose inbox.
//!
//! - `GET /v1/inapp/messages?userId=U[&include_dismissed=true]`: the contact's messages,
//!   newest first.
//! - `POST /v1/inapp/messages/{id}/{seen|clicked|dismissed}` (`userId` in the JSON body
//!   or the query): marks the contact's own message and records the engagement of the
//!   send that put it there.
//!
//! A publishable key is public by design (it ships in the product's front end): it can
//! read and mark in-app messages, nothing else. Since anyone can read it from the page,
//! it cannot prove whose inbox is asked for: identity verification, on by default, does.
//! The customer's backend computes `HMAC-SHA256(identity secret, userId)` (hex) and the
//! product sends it along as `userHash` (query, JSON body of a mark, or the
//! `X-Cairn-User-Hash` header); cairn verifies it in constant time. Each publishable key
//! has its own identity secret, derived from the key's row id and a random secret kept in
//! the database's settings (`cairn keys identity-secret NAME` prints it): revoking the
//! key retires its secret too, and every node derives the same one. `cairn serve
//! --inapp-identity-verification off` turns verification off, with a warning in the log.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_programs::{EngagementInput, EngagementKind, engage};
use cairn_store::{ApiKey, InAppMessage, KeyKind};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::keys::{bearer_token, hex};

/// The settings key of the random secret that identity secrets are derived from.
pub const IDENTITY_MASTER_KEY: &str = "inapp_identity_secret";

/// The header that may carry `userHash`.
const USER_HASH_HEADER: &str = "x-cairn-user-hash";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The database's identity master secret, creating it (32 random bytes, hex) the first
/// time; nodes starting at once agree on the first one stored.
pub(crate) async fn identity_master(store: &cairn_store::Store) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no randomness for the in-app identity secret: {e}")))?;
    Ok(store.setting_or_insert(IDENTITY_MASTER_KEY, &hex(&bytes)).await?)
}

/// The identity secret of the publishable key with row id `key_id`: what the customer's
/// backend signs user ids with.
pub fn identity_secret(master: &str, key_id: i64) -> String {
    use hmac::{KeyInit as _, Mac as _};
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = HmacSha256::new_from_slice(master.as_bytes()) else { return String::new() };
    mac.update(b"cairn in-app identity\0");
    mac.update(key_id.to_string().as_bytes());
    format!("cairn_is_{}", hex(&mac.finalize().into_bytes()))
}

/// The `userHash` a customer's backend sends for `user_id`: `HMAC-SHA256(secret,
/// user_id)`, lowercase hex.
pub fn user_hash(secret: &str, user_id: &str) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(user_id.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Whether `given` (hex, any case) is the HMAC of `user_id` under `secret`, compared in
/// constant time.
pub(crate) fn user_hash_matches(secret: &str, user_id: &str, given: &str) -> bool {
    use hmac::{KeyInit as _, Mac as _};
    let Some(given) = unhex(given.trim()) else { return false };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(user_id.as_bytes());
    mac.verify_slice(&given).is_ok()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits: Option<Vec<u8>> = text.chars().map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok())).collect();
    let digits = digits?;
    (digits.len() % 2 == 0).then(|| digits.chunks(2).map(|p| p.iter().fold(0u8, |acc, d| (acc << 4) | d)).collect())
}

/// Checks `user_hash` for `user_id` under the identity secret of `key`, unless
/// verification is off.
async fn verify_identity(
    state: &AppState,
    key: &ApiKey,
    user_id: &str,
    user_hash: Option<&str>,
) -> Result<(), ApiError> {
    if !state.inapp_identity_verification {
        return Ok(());
    }
    let Some(given) = user_hash.map(str::trim).filter(|h| !h.is_empty()) else {
        return Err(ApiError::UnauthorizedBearer(
            "missing `userHash`: identity verification is on, so send `userHash` (query, body or the \
X-Cairn-User-Hash header) = hex HMAC-SHA256 of the userId with this key's identity secret \
(`cairn keys identity-secret NAME` prints it; compute it on your backend, never in the browser)"
                .into(),
        ));
    };
    let master = match state.identity_master.get() {
        Some(m) => m.clone(),
        None => {
            let m = identity_master(&state.store).await?;
            state.identity_master.get_or_init(|| async { m }).await.clone()
        }
    };
    if user_hash_matches(&identity_secret(&master, key.id), user_id, given) {
        Ok(())
    } else {
        Err(ApiError::UnauthorizedBearer(format!(
            "`userHash` does not match userId `{user_id}`: it must be the hex HMAC-SHA256 of the userId with the \
identity secret of this publishable key (`cairn keys identity-secret NAME`)"
        )))
    }
}

/// What a product's front end sees of a message.
#[derive(Serialize)]
struct MessageView<'a> {
    id: i64,
    title: &'a str,
    body_html: &'a str,
    created_at: jiff::Timestamp,
    seen_at: Option<jiff::Timestamp>,
    clicked_at: Option<jiff::Timestamp>,
    dismissed_at: Option<jiff::Timestamp>,
}

impl<'a> From<&'a InAppMessage> for MessageView<'a> {
    fn from(m: &'a InAppMessage) -> MessageView<'a> {
        MessageView {
            id: m.id,
            title: &m.title,
            body_html: &m.body_html,
            created_at: m.created_at,
            seen_at: m.seen_at,
            clicked_at: m.clicked_at,
            dismissed_at: m.dismissed_at,
        }
    }
}

/// Adds the CORS headers, and drops `WWW-Authenticate` so that a 401 cannot make a
/// browser show a login dialog over the customer's product.
fn with_cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.remove(header::WWW_AUTHENTICATE);
    response
}

fn reply(result: Result<Json<serde_json::Value>, ApiError>) -> Response {
    with_cors(result.into_response())
}

/// `OPTIONS` on the inbox routes: the CORS preflight.
pub async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, X-Cairn-User-Hash"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    with_cors(response)
}

/// The publishable key of a request, from the Bearer header or `?key=`, or 401.
async fn authorize(state: &AppState, headers: &HeaderMap, key_param: Option<&str>) -> Result<ApiKey, ApiError> {
    let token = bearer_token(headers).or(key_param.map(str::trim)).filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::UnauthorizedBearer(
            "missing publishable key: send `Authorization: Bearer cairn_pk_…` or add `?key=cairn_pk_…` \
(create one with `cairn keys create --kind publishable`)"
                .into(),
        )
    })?;
    match state.keys.find(&state.store, token).await? {
        Some(k) if k.kind == KeyKind::Publishable => Ok(k),
        Some(k) => Err(ApiError::UnauthorizedBearer(format!(
            "this is a {} key; the in-app inbox expects a publishable key (`cairn_pk_…`): \
never put a write or secret key in a browser",
            k.kind.as_str()
        ))),
        None => Err(ApiError::UnauthorizedBearer("unknown or revoked publishable key".into())),
    }
}

/// `userHash` from the body, the query or the header, in that order.
fn user_hash_of<'a>(headers: &'a HeaderMap, in_body: Option<&'a str>, in_query: Option<&'a str>) -> Option<&'a str> {
    in_body.or(in_query).or_else(|| headers.get(USER_HASH_HEADER).and_then(|v| v.to_str().ok()))
}

fn user_id_of(user_id: Option<&str>) -> Result<&str, ApiError> {
    user_id.map(str::trim).filter(|u| !u.is_empty()).ok_or_else(|| {
        ApiError::BadRequest("`userId` is required: the id your product identifies the user with".into())
    })
}

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::BadRequest(format!("the query string is not valid: {}", e.body_text()))
}

/// The query of the list route.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    #[serde(rename = "userHash")]
    user_hash: Option<String>,
    key: Option<String>,
    include_dismissed: Option<bool>,
}

/// `GET /v1/inapp/messages`: `{"messages": […]}`; empty for a user cairn does not know
/// (yet).
pub async fn messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    reply(
        async {
            let Query(q) = query.map_err(query_error)?;
            let key = authorize(&state, &headers, q.key.as_deref()).await?;
            let user_id = user_id_of(q.user_id.as_deref())?;
            verify_identity(&state, &key, user_id, user_hash_of(&headers, None, q.user_hash.as_deref())).await?;
            let list = match state.store.resolve_contact(user_id).await? {
                Some(contact) => state.store.inapp_messages(contact, q.include_dismissed.unwrap_or(false)).await?,
                None => Vec::new(),
            };
            let views: Vec<MessageView<'_>> = list.iter().map(MessageView::from).collect();
            Ok(Json(json!({ "messages": views })))
        }
        .await,
    )
}

/// The query of the mark route.
#[derive(Debug, Deserialize)]
pub(crate) struct MarkQuery {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    #[serde(rename = "userHash")]
    user_hash: Option<String>,
    key: Option<String>,
}

/// The optional JSON body of the mark route.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct MarkBody {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    #[serde(rename = "userHash")]
    user_hash: Option<String>,
}

/// The mark route's body: empty, or JSON with `userId` and `userHash`.
pub(crate) fn parse_mark_body(body: &[u8]) -> Result<MarkBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(MarkBody::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not valid JSON ({e}); send {{\"userId\": \"…\", \"userHash\": \"…\"}}"
        ))
    })
}

/// What an action records: clicking or dismissing a message also means it was seen (the
/// store marks it seen too), so `opened(step)` holds for it.
fn engagements_of(action: &str) -> Option<&'static [EngagementKind]> {
    match action {
        "seen" => Some(&[EngagementKind::Opened]),
        "clicked" => Some(&[EngagementKind::Opened, EngagementKind::Clicked]),
        "dismissed" => Some(&[EngagementKind::Opened, EngagementKind::Dismissed]),
        _ => None,
    }
}

/// `POST /v1/inapp/messages/{id}/{action}`: marks the message and answers it as it now
/// is. 404 for a message that is not the user's.
pub async fn mark(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    query: Result<Query<MarkQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    reply(
        async {
            let Query(q) = query.map_err(query_error)?;
            let key = authorize(&state, &headers, q.key.as_deref()).await?;
            let kinds = engagements_of(&action).ok_or_else(|| {
                ApiError::BadRequest(format!("`{action}` is not an in-app action: use seen, clicked or dismissed"))
            })?;
            let in_body = parse_mark_body(&body)?;
            let user_id = user_id_of(in_body.user_id.as_deref().or(q.user_id.as_deref()))?;
            let user_hash = user_hash_of(&headers, in_body.user_hash.as_deref(), q.user_hash.as_deref());
            verify_identity(&state, &key, user_id, user_hash).await?;
            let not_found = || ApiError::NotFound(format!("user `{user_id}` has no in-app message `{id}`"));
            let message_id = id.parse::<i64>().map_err(|_| not_found())?;
            let contact = state.store.resolve_contact(user_id).await?.ok_or_else(not_found)?;
            let now = state.clock.now();
            if !state.store.mark_inapp(message_id, contact, &action, now).await? {
                return Err(not_found());
            }
            let messages = state.store.inapp_messages(contact, true).await?;
            let message = messages.iter().find(|m| m.id == message_id).ok_or_else(not_found)?;
            let ws = crate::api::live_workspace(&state).await;
            for kind in kinds {
                let input = EngagementInput {
                    enrollment_id: message.enrollment_id,
                    step_id: message.step_id.clone(),
                    contact_id: Some(contact),
                    kind: *kind,
                    at: now,
                    detail: json!({ "message_id": message_id }),
                };
                engage::record(&state.store, ws.as_deref(), &input).await?;
            }
            Ok(Json(json!({ "success": true, "message": MessageView::from(message) })))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_hash_is_the_hex_hmac_sha256_of_the_user_id() {
        // RFC 4231-style known answer (the classic "quick brown fox" vector).
        let h = user_hash("key", "The quick brown fox jumps over the lazy dog");
        assert_eq!(h, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
        assert!(user_hash_matches("key", "The quick brown fox jumps over the lazy dog", &h));
        assert!(user_hash_matches("key", "The quick brown fox jumps over the lazy dog", &h.to_uppercase()));
        assert!(!user_hash_matches("key", "another user", &h));
        assert!(!user_hash_matches("key", "The quick brown fox jumps over the lazy dog", &h[..62]));
        assert!(!user_hash_matches("key", "x", "not hex"));
        assert!(!user_hash_matches("key", "x", "é"));
    }

    #[test]
    fn each_key_has_its_own_identity_secret() {
        let one = identity_secret("master", 1);
        assert!(one.starts_with("cairn_is_") && one.len() == "cairn_is_".len() + 64, "{one}");
        assert_eq!(one, identity_secret("master", 1));
        assert_ne!(one, identity_secret("master", 2));
        assert_ne!(one, identity_secret("other master", 1));
    }
}
