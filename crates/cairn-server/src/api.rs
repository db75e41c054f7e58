//! The REST API over the engine's state (`/api/*`), for a secret key sent as
//! `Authorization: Bearer KEY`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use cairn_runtime::views;
use cairn_store::{ApiKey, AuditActor, KeyKind, KeyScope};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::report_cache::Wait;

type Reply = Result<Json<Value>, ApiError>;

/// The secret key of a request (`Authorization: Bearer KEY`, any case of `Bearer`), or
/// 401 with `WWW-Authenticate: Bearer`; 403 when its scope does not include `needs`
/// (reads need `read`, a CSM's writes `write`, workspace reloads `admin`).
pub(crate) async fn authorize(state: &AppState, headers: &HeaderMap, needs: KeyScope) -> Result<ApiKey, ApiError> {
    let token = crate::keys::bearer_token(headers).ok_or_else(|| {
        ApiError::UnauthorizedBearer(
            "missing secret key: send `Authorization: Bearer KEY` with a key from `cairn keys create --kind secret`"
                .into(),
        )
    })?;
    match state.keys.find(&state.store, token).await? {
        Some(k) if k.kind == KeyKind::Secret => match k.scope {
            Some(scope) if scope.allows(needs) => Ok(k),
            scope => Err(ApiError::Forbidden(format!(
                "this secret key's scope ({}) does not allow this: it needs a key with the `{}` scope (create one in /admin/keys)",
                scope.map(KeyScope::as_str).unwrap_or("none"),
                needs.as_str()
            ))),
        },
        Some(k) => Err(ApiError::UnauthorizedBearer(format!(
            "a {} key cannot use the REST API: use a secret key",
            k.kind.as_str()
        ))),
        None => Err(ApiError::UnauthorizedBearer(
            "unknown or revoked key: `cairn keys list` shows the keys and which are revoked".into(),
        )),
    }
}

/// A key as the audit log names it.
pub(crate) fn key_actor(key: &ApiKey) -> AuditActor {
    AuditActor::Key { id: key.id, prefix: key.prefix.clone() }
}

pub(crate) fn runtime(state: &AppState) -> Result<&cairn_runtime::Runtime, ApiError> {
    state.runtime.as_ref().ok_or_else(|| {
        ApiError::NotFound("no workspace is loaded: start the server with `cairn serve --workspace DIR`".into())
    })
}

/// The definitions the engine runs, when a workspace is loaded: what recording an
/// engagement needs to wake a program's waiting steps.
pub(crate) async fn live_workspace(state: &AppState) -> Option<Arc<cairn_workspace::Workspace>> {
    match &state.runtime {
        Some(rt) => Some(rt.read(|live| live.engine.workspace_arc().clone()).await),
        None => None,
    }
}

async fn account_id(state: &AppState, id: &str) -> Result<u64, ApiError> {
    match state.store.resolve_account(id).await? {
        Some(n) => Ok(n as u64),
        None => Err(ApiError::NotFound(format!("no account `{id}`: give its cairn id, CRM id or product id"))),
    }
}

/// `GET /api/accounts`: every account with stage, health and segments.
pub async fn accounts(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    authorize(&state, &headers, KeyScope::Read).await?;
    let list = runtime(&state)?.read(|live| views::accounts(&live.engine)).await;
    Ok(Json(json!({ "accounts": list })))
}

/// `GET /api/accounts/{id}`: the account 360 (traits, segments, stage, milestones,
/// health by pillar with explanation and trend, override, contacts, recent transitions).
pub async fn account(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    authorize(&state, &headers, KeyScope::Read).await?;
    let rt = runtime(&state)?;
    let n = account_id(&state, &id).await?;
    let view = rt.read(|live| views::account(&live.engine, n)).await;
    let Some(view) = view else {
        return Err(ApiError::NotFound(format!("account `{id}` is not known to the engine yet")));
    };
    let timeline = state.store.account_transitions(n as i64, 50).await?;
    let mut body = serde_json::to_value(view).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        map.insert("timeline".into(), serde_json::to_value(timeline).unwrap_or(Value::Null));
    }
    Ok(Json(body))
}

/// The engine's view of account `id` and its day, or 404.
async fn account_view(state: &AppState, id: &str) -> Result<(views::AccountView, jiff::civil::Date), ApiError> {
    let n = account_id(state, id).await?;
    let found = runtime(state)?
        .read(|live| Some((views::account(&live.engine, n)?, crate::ui::accounts::today(&live.engine))))
        .await;
    found.ok_or_else(|| ApiError::NotFound(format!("account `{id}` is not known to the engine yet")))
}

/// The query of `GET /api/accounts/{id}/timeline`.
#[derive(Debug, Deserialize)]
pub struct TimelineParams {
    /// Rows strictly before this instant (RFC 3339 or ms since the epoch).
    before: Option<String>,
    /// Kinds, comma-separated: event, message, task, transition, note, override.
    kind: Option<String>,
}

/// `GET /api/accounts/{id}/timeline`: one page of the account 360's merged timeline
/// (the page's own rows), newest first, and the cursor of the next page.
pub async fn account_timeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<TimelineParams>,
) -> Reply {
    authorize(&state, &headers, KeyScope::Read).await?;
    let q = crate::ui::account_timeline::Query::parse(params.before.as_deref(), params.kind.as_deref())
        .map_err(ApiError::BadRequest)?;
    let (view, today) = account_view(&state, &id).await?;
    let page = crate::ui::account_timeline::page(&state, &view, &q, today).await?;
    Ok(Json(json!({ "account": view.id, "entries": page.entries, "older": page.older })))
}

/// `GET /api/accounts/{id}/contacts`: the account's contacts with their engagement, as
/// the account 360 lists them (`sort`, `contacts=all`, `page`).
pub async fn account_contacts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<crate::ui::account::AccountQuery>,
) -> Reply {
    authorize(&state, &headers, KeyScope::Read).await?;
    let (view, _) = account_view(&state, &id).await?;
    let activity = state.store.account_contact_activity(view.id as i64, state.clock.now()).await?;
    let contacts = crate::ui::account::contacts(&view, activity, &q)?;
    Ok(Json(json!({ "account": view.id, "contacts": contacts })))
}

/// `GET /api/segments`: every segment with its rule and size.
pub async fn segments(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    authorize(&state, &headers, KeyScope::Read).await?;
    let list = runtime(&state)?.read(|live| views::segments(&live.engine)).await;
    Ok(Json(json!({ "segments": list })))
}

/// `GET /api/segments/{id}/members`.
pub async fn segment_members(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    authorize(&state, &headers, KeyScope::Read).await?;
    let members = runtime(&state)?.read(|live| views::segment_members(&live.engine, &id)).await;
    match members {
        Some(m) => Ok(Json(json!({ "segment": id, "count": m.len(), "members": m }))),
        None => Err(ApiError::NotFound(format!("no segment `{id}`: `GET /api/segments` lists them"))),
    }
}

/// The body of a health override.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// The score to show instead (0–100), or null to clear the override.
    score: Option<f64>,
    /// Why (required).
    reason: String,
    /// When it stops applying (RFC 3339), or…
    expires_at: Option<String>,
    /// …how many days from now (default 30).
    days: Option<u32>,
    /// Who sets it (default: the key's name).
    by: Option<String>,
}

/// An override as asked for: the score (`None` clears), why, who (when given) and until
/// when.
#[derive(Debug)]
pub(crate) struct OverrideRequest {
    score: Option<f64>,
    reason: String,
    by: Option<String>,
    expires_at: Timestamp,
}

/// Parses the body of an override received at `now`.
pub(crate) fn parse_override(body: &[u8], now: Timestamp) -> Result<OverrideRequest, ApiError> {
    let body: OverrideBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a valid override: {e}; send {{\"score\": 0-100 or null, \"reason\": \"…\", \"days\": 30}}"
        ))
    })?;
    let expires_at = match (&body.expires_at, body.days) {
        (Some(t), _) => t.parse::<Timestamp>().map_err(|e| {
            ApiError::BadRequest(format!(
                "expires_at `{t}` is not an RFC 3339 instant ({e}); e.g. 2026-12-31T00:00:00Z"
            ))
        })?,
        (None, days) => now
            .checked_add(SignedDuration::from_hours(24 * i64::from(days.unwrap_or(30))))
            .map_err(|e| ApiError::BadRequest(format!("days: {e}")))?,
    };
    Ok(OverrideRequest { score: body.score, reason: body.reason, by: body.by, expires_at })
}

/// `POST /api/accounts/{id}/health/override`: a CSM's override, audited.
pub async fn health_override(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Reply {
    let key = authorize(&state, &headers, KeyScope::Write).await?;
    let rt = runtime(&state)?;
    let now = state.clock.now();
    let request = parse_override(&body, now)?;
    let n = account_id(&state, &id).await?;
    let by = request.by.unwrap_or_else(|| key.name.clone());
    rt.set_health_override(n as i64, request.score, &request.reason, &by, request.expires_at)
        .await
        .map_err(runtime_error)?;
    let detail =
        json!({ "score": request.score, "reason": request.reason, "by": by, "expires_at": request.expires_at });
    crate::audit::record(&state, &key_actor(&key), crate::audit::AuditAction::HealthOverride, &n.to_string(), detail)
        .await;
    let history = state.store.health_overrides(n as i64).await?;
    Ok(Json(json!({ "success": true, "account": n, "history": history })))
}

/// `POST /api/workspace/reload`: loads the workspace folder again. Invalid definitions
/// are answered with every diagnostic, and the running ones stay.
pub async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let key = authorize(&state, &headers, KeyScope::Admin).await?;
    let rt = runtime(&state)?;
    let Some(dir) = state.workspace_dir.as_ref() else {
        return Err(ApiError::NotFound("no workspace folder to reload".into()));
    };
    match crate::load_workspace(dir) {
        Ok((ws, hash)) => {
            let summary = ws.summary().to_string();
            rt.reload(Arc::new(ws), hash).await.map_err(runtime_error)?;
            let detail = json!({ "loaded": summary });
            crate::audit::record(&state, &key_actor(&key), crate::audit::AuditAction::WorkspaceReload, "", detail)
                .await;
            Ok(Json(json!({ "success": true, "loaded": summary })))
        }
        Err(diagnostics) => {
            let list: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
            Err(ApiError::Rejected(json!({
                "success": false,
                "error": format!("the workspace has {} problem(s); the running definitions are kept", list.len()),
                "diagnostics": list,
            })))
        }
    }
}

fn runtime_error(e: cairn_runtime::RuntimeError) -> ApiError {
    match e {
        cairn_runtime::RuntimeError::Store(s) => ApiError::Unavailable(s),
        cairn_runtime::RuntimeError::UnknownAccount(id) => ApiError::NotFound(format!("no account `{id}`")),
        cairn_runtime::RuntimeError::BadOverride(m) => ApiError::BadRequest(m),
        cairn_runtime::RuntimeError::Cancelled => ApiError::Conflict(e.to_string()),
    }
}

/// The query of a program preview.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewQuery {
    /// An instant or a day; default now (the live engine).
    as_of: Option<String>,
}

/// `GET /api/programs/{id}/preview?as_of=`: the program's audience, holdout, audience by
/// segment and three rendered first messages, as of now or an instant. Writes nothing.
pub async fn program_preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<PreviewQuery>,
) -> Reply {
    authorize(&state, &headers, KeyScope::Read).await?;
    let rt = runtime(&state)?;
    let ws = rt.read(|live| live.engine.workspace_arc().clone()).await;
    let Some(program) = ws.programs().iter().find(|p| p.id.as_str() == id).cloned() else {
        let ids: Vec<&str> = ws.programs().iter().map(|p| p.id.as_str()).collect();
        let hint = cairn_core::suggest::closest(&id, ids.iter().copied())
            .map(|near| format!(", did you mean `{near}`?"))
            .unwrap_or_else(|| format!("; the workspace has: {}", ids.join(", ")));
        return Err(ApiError::NotFound(format!("no program `{id}`{hint}")));
    };
    let preview = match q.as_of {
        None => {
            let today = state.clock.now().to_zoned(ws.time_zone().clone()).date();
            let now = crate::cached_reports::program_preview(&state, &ws, &program, today, Wait::Current).await?;
            now.ready()?.as_ref().clone()
        }
        Some(text) => {
            let signer = cairn_channels::LinkSigner::new(cairn_programs::PREVIEW_SECRET);
            let url = crate::cached_reports::PREVIEW_URL;
            let at = cairn_programs::parse_plausible_as_of(&text, ws.time_zone(), state.clock.now())
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let clock = cairn_core::FixedClock::new(at);
            // Evaluated in this request's future, which yields between batches of events:
            // a client that goes away drops it, and the work stops there.
            let live = cairn_runtime::Runtime::evaluate(&state.store, &clock, ws.clone())
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            cairn_programs::preview(&live.engine, &program, &signer, url)?
        }
    };
    Ok(Json(serde_json::to_value(preview).map_err(|e| ApiError::Internal(e.to_string()))?))
}

/// The query of a program's dry run over history (the API's and the dry-run page's form).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DryRunQuery {
    /// A day (its start in the workspace time zone) or an instant.
    pub from: Option<String>,
    /// A day (its end) or an instant.
    pub to: Option<String>,
}

/// `GET /api/programs/{id}/dry-run?from=&to=`: what the program would have done over a
/// period of history (at most 366 days) — enrollments, holdout, sends per step and
/// variant, caps and quiet hours hit, tasks, sample messages — replayed in a scratch
/// database: nothing is sent, nothing is written to this one.
pub async fn program_dry_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<DryRunQuery>,
) -> Reply {
    authorize(&state, &headers, cairn_store::KeyScope::Read).await?;
    let (Some(from), Some(to)) = (q.from, q.to) else {
        return Err(ApiError::BadRequest(
            "a dry run needs its period: give from= and to= (days like 2026-03-01 or instants)".into(),
        ));
    };
    let report = dry_run(&state, &id, &from, &to).await?;
    Ok(Json(serde_json::to_value(report).map_err(|e| ApiError::Internal(e.to_string()))?))
}

/// The dry run of program `id` over `from`..`to` (days in the workspace's time zone, the
/// end day included, or instants), for the API and the program's dry-run page.
pub(crate) async fn dry_run(
    state: &AppState,
    id: &str,
    from: &str,
    to: &str,
) -> Result<cairn_programs::DryRun, ApiError> {
    use cairn_programs::DryRunError;
    let rt = runtime(state)?;
    let ws = rt.read(|live| live.engine.workspace_arc().clone()).await;
    let bad = |e: DryRunError| match e {
        DryRunError::UnknownProgram { .. } => ApiError::NotFound(e.to_string()),
        DryRunError::BadPeriod(m) => ApiError::BadRequest(m),
        DryRunError::Store(s) => ApiError::Unavailable(s),
        other => ApiError::Internal(other.to_string()),
    };
    let (from, to) = cairn_programs::dry_run::parse_period(from, to, ws.time_zone()).map_err(bad)?;
    let options = cairn_programs::DryRunOptions {
        from,
        to,
        now: state.clock.now(),
        pass_every: cairn_programs::dry_run::DEFAULT_PASS_EVERY,
        public_url: crate::cached_reports::PREVIEW_URL.to_string(),
    };
    cairn_programs::dry_run(&state.store, ws, id, &options).await.map_err(bad)
}
