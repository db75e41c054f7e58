//! Tasks that programs create for CSMs, for a secret key: the open ones
//! (`GET /api/tasks?assignee=&pool=`) and marking one done
//! (`POST /api/tasks/{id}/complete`), which appends `task_completed` to the log for the
//! contact it is about, so rules and health can count it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use cairn_programs::engage;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::authorize;
use crate::error::ApiError;

type Reply = Result<Json<Value>, ApiError>;

/// The filters of the task list; an empty one is no filter.
#[derive(Debug, Deserialize)]
pub(crate) struct TaskQuery {
    assignee: Option<String>,
    pool: Option<String>,
}

fn filter(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /api/tasks`: open tasks, most urgent first, optionally for one assignee or pool.
pub async fn open_tasks(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TaskQuery>, QueryRejection>,
) -> Reply {
    authorize(&state, &headers, cairn_store::KeyScope::Read).await?;
    let Query(q) =
        query.map_err(|e| ApiError::BadRequest(format!("the query string is not valid: {}", e.body_text())))?;
    let tasks = state.store.open_tasks(filter(&q.assignee), filter(&q.pool)).await?;
    Ok(Json(json!({ "count": tasks.len(), "tasks": tasks })))
}

/// The body of a completion.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteBody {
    /// Who did it (default: the key's name).
    by: Option<String>,
}

/// Parses the body of a completion: empty, or `{"by": "…"}`.
pub(crate) fn parse_complete(body: &[u8]) -> Result<CompleteBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CompleteBody { by: None });
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!("the body is not a valid completion: {e}; send {{\"by\": \"ana@acme.example\"}}"))
    })
}

/// `POST /api/tasks/{id}/complete` with `{"by": "ana@acme.example"}`: 404 for an unknown
/// task, 409 for one already done.
pub async fn complete(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Reply {
    let key = authorize(&state, &headers, cairn_store::KeyScope::Write).await?;
    let body = parse_complete(&body)?;
    let not_found = || ApiError::NotFound(format!("no task `{id}`: `GET /api/tasks` lists the open ones"));
    let task_id = id.parse::<i64>().map_err(|_| not_found())?;
    let task = state.store.task(task_id).await?.ok_or_else(not_found)?;
    let by = body.by.as_deref().map(str::trim).filter(|b| !b.is_empty()).unwrap_or(key.name.as_str()).to_string();
    finish(&state, &task, &by, None).await?;
    let task = state.store.task(task_id).await?.ok_or_else(not_found)?;
    Ok(Json(json!({ "success": true, "task": task })))
}

/// Completes `task` as `by` (with the outcome they give) and appends `task_completed` for
/// the contact it is about; 409 when it is done already. The API and the UI both complete
/// tasks through here.
pub(crate) async fn finish(
    state: &AppState,
    task: &cairn_store::Task,
    by: &str,
    outcome: Option<&str>,
) -> Result<(), ApiError> {
    let task_id = task.id;
    let now = state.clock.now();
    let done = match outcome {
        Some(o) => state.store.complete_task_with_outcome(task_id, by, o, now).await?,
        None => state.store.complete_task(task_id, by, now).await?,
    };
    if !done {
        let when = task.completed_at.map(|t| format!(" at {t}")).unwrap_or_default();
        let who = task.completed_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
        return Err(ApiError::Conflict(format!("task {task_id} is already done{who}{when}")));
    }
    if let Some(contact) = task.contact_id {
        let mut properties = json!({
            "task_id": task_id,
            "title": task.title,
            "by": by,
            "enrollment_id": task.enrollment_id,
            "step": task.step_id,
        });
        if let (Some(o), Some(map)) = (outcome, properties.as_object_mut()) {
            map.insert("outcome".into(), o.into());
        }
        let message_id = format!("cairn:task:{task_id}:completed");
        engage::append_contact_event(&state.store, contact, "task_completed", &message_id, now, &properties).await?;
    }
    Ok(())
}
