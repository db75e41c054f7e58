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
//! read and mark in-app messages, nothing else.

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
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type"));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    with_cors(response)
}

/// The publishable key of a request, from the Bearer header or `?key=`, or 401.
async fn authorize(state: &AppState, headers: &HeaderMap, key_param: Option<&str>) -> Result<ApiKey, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = bearer.or(key_param.map(str::trim)).filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::Unauthorized(
            "missing publishable key: send `Authorization: Bearer cairn_pk_…` or add `?key=cairn_pk_…` \
(create one with `cairn keys create --kind publishable`)"
                .into(),
        )
    })?;
    match state.keys.find(&state.store, token, state.clock.now()).await? {
        Some(k) if k.kind == KeyKind::Publishable => Ok(k),
        Some(k) => Err(ApiError::Unauthorized(format!(
            "this is a {} key; the in-app inbox expects a publishable key (`cairn_pk_…`): \
never put a write or secret key in a browser",
            k.kind.as_str()
        ))),
        None => Err(ApiError::Unauthorized("unknown or revoked publishable key".into())),
    }
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
#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "userId")]
    user_id: Option<String>,
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
            authorize(&state, &headers, q.key.as_deref()).await?;
            let user_id = user_id_of(q.user_id.as_deref())?;
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
#[derive(Deserialize)]
pub struct MarkQuery {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    key: Option<String>,
}

/// The optional JSON body of the mark route.
#[derive(Deserialize)]
struct MarkBody {
    #[serde(rename = "userId")]
    user_id: Option<String>,
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
            authorize(&state, &headers, q.key.as_deref()).await?;
            let kinds = engagements_of(&action).ok_or_else(|| {
                ApiError::BadRequest(format!("`{action}` is not an in-app action: use seen, clicked or dismissed"))
            })?;
            let in_body = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                let b: MarkBody = serde_json::from_slice(&body).map_err(|e| {
                    ApiError::BadRequest(format!("the body is not valid JSON ({e}); send {{\"userId\": \"…\"}}"))
                })?;
                b.user_id
            };
            let user_id = user_id_of(in_body.as_deref().or(q.user_id.as_deref()))?;
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
