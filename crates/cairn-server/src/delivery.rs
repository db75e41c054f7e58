//! What became of sends, for a secret key: the mail provider's bounce and complaint
//! webhook (`POST /api/email/feedback`) and the dead letters of steps that failed for
//! good (`GET /api/programs/dead-letters`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use cairn_channels::{DeliveryFeedback, FeedbackKind, parse_feedback};
use cairn_programs::{EngagementInput, EngagementKind, engage};
use cairn_store::{LedgerEntry, SubjectKind};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::authorize;
use crate::error::ApiError;

type Reply = Result<Json<Value>, ApiError>;

fn feedback_name(kind: FeedbackKind) -> &'static str {
    match kind {
        FeedbackKind::HardBounce => "hard_bounce",
        FeedbackKind::SoftBounce => "soft_bounce",
        FeedbackKind::Complaint => "complaint",
    }
}

/// The contact a send went to: the enrollment's subject when it is a contact, else the
/// ledger detail's `contact_id` (an account's send names its recipient there).
async fn recipient(state: &AppState, entry: &LedgerEntry) -> Result<Option<i64>, ApiError> {
    let from_detail =
        serde_json::from_str::<Value>(&entry.detail).ok().and_then(|d| d.get("contact_id").and_then(Value::as_i64));
    Ok(match state.store.enrollment(entry.enrollment_id).await? {
        Some(e) if e.subject_kind == SubjectKind::Contact => Some(e.subject_id),
        _ => from_detail,
    })
}

/// Suppresses the address if it must be, and records the bounce or complaint on the send
/// the feedback names. Returns (suppressed, recorded).
async fn apply(state: &AppState, feedback: &DeliveryFeedback) -> Result<(bool, bool), ApiError> {
    let now = state.clock.now();
    let reason = feedback_name(feedback.kind);
    let suppressed = feedback.suppresses_address();
    if suppressed {
        state.store.suppress_address(feedback.email.as_str(), reason, now).await?;
    }
    let Some(message_id) = &feedback.message_id else {
        return Ok((suppressed, false));
    };
    let Some(entry) = state.store.ledger_by_message_id(message_id).await? else {
        return Ok((suppressed, false));
    };
    let kind = match feedback.kind {
        FeedbackKind::HardBounce | FeedbackKind::SoftBounce => EngagementKind::Bounced,
        FeedbackKind::Complaint => EngagementKind::Complained,
    };
    let ws = crate::api::live_workspace(state).await;
    let input = EngagementInput {
        enrollment_id: entry.enrollment_id,
        step_id: entry.step_id.clone(),
        contact_id: recipient(state, &entry).await?,
        kind,
        at: now,
        detail: json!({ "feedback": reason, "email": feedback.email.as_str(), "message_id": message_id }),
    };
    let recorded = engage::record(&state.store, ws.as_deref(), &input).await?;
    Ok((suppressed, recorded))
}

/// `POST /api/email/feedback`: a bounce or complaint callback (cairn's shape, Postmark or
/// Amazon SES, see `cairn_channels::parse_feedback`). A hard bounce or a complaint
/// suppresses the address; one naming a Message-ID that cairn sent is recorded on that
/// send. Answers `{"suppressed": n, "recorded": m}`; 400 for a body that is no feedback.
pub async fn feedback(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    authorize(&state, &headers, cairn_store::KeyScope::Write).await?;
    let events = parse_feedback(&body).map_err(|e| ApiError::BadRequest(format!("not a bounce or complaint: {e}")))?;
    let (mut suppressed, mut recorded) = (0u32, 0u32);
    for event in &events {
        let (s, r) = apply(&state, event).await?;
        suppressed += u32::from(s);
        recorded += u32::from(r);
    }
    Ok(Json(json!({ "success": true, "suppressed": suppressed, "recorded": recorded })))
}

/// The query of the dead-letter list.
#[derive(Deserialize)]
pub struct DeadLetterQuery {
    limit: Option<u32>,
}

/// `GET /api/programs/dead-letters?limit=N`: the latest dead letters, newest first
/// (100 by default, at most 1000).
pub async fn dead_letters(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<DeadLetterQuery>, QueryRejection>,
) -> Reply {
    authorize(&state, &headers, cairn_store::KeyScope::Read).await?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(format!("limit: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let list = state.store.dead_letters(limit).await?;
    Ok(Json(json!({ "count": list.len(), "dead_letters": list })))
}
