//! `GET /api/views/{page}` (and `/api/views/accounts/{id}`, `/api/views/programs/{id}`):
//! each UI page's data as JSON, for a secret key — the same function builds the page
//! and the JSON, so what the UI shows is what the API returns. Query parameters mean what
//! they mean on the page (`/accounts?segment=…` ↔ `/api/views/accounts?segment=…`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use crate::AppState;
use crate::api::authorize;
use crate::error::ApiError;
use crate::report_cache::{Freshness, Wait};

/// The pages served.
pub(crate) const PAGES: &[&str] =
    &["morning", "accounts", "segments", "journey", "programs", "tasks", "insights", "kpis", "staffing", "data"];

fn json(value: impl Serialize) -> Result<Json<Value>, ApiError> {
    serde_json::to_value(value).map(Json).map_err(|e| ApiError::Internal(format!("a view did not serialise: {e}")))
}

/// `GET /api/views/{page}`.
pub(crate) async fn view(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(page): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, cairn_store::KeyScope::Read).await?;
    let query = serde_urlencoded_pairs(&pairs);
    match page.as_str() {
        "morning" => json(super::morning::data(&state, Wait::Current).await?.0),
        "accounts" => json(super::accounts::data(&state, &from_pairs(&query)?).await?),
        "segments" => json(super::segments::data(&state, &from_pairs(&query)?, Wait::Current).await?.0),
        "journey" => json(current(super::journey::data(&state, &from_pairs(&query)?, Wait::Current).await?)?),
        "programs" => json(super::programs::list_data(&state, Wait::Current).await?.0),
        "tasks" => {
            let me = pairs.iter().find(|(k, _)| k == "me").map(|(_, v)| v.as_str()).unwrap_or("");
            json(super::tasks::data(&state, me).await?)
        }
        "insights" => json(current(super::insights::data(&state, &from_pairs(&query)?, Wait::Current).await?)?),
        "kpis" => json(current(super::kpis::data(&state, &from_pairs(&query)?, Wait::Current).await?)?),
        "staffing" => {
            let digital: Vec<String> = pairs.iter().filter(|(k, _)| k == "digital").map(|(_, v)| v.clone()).collect();
            json(super::staffing::data(&state, &digital).await?)
        }
        "data" => json(super::data::data(&state, Wait::Current).await?.0),
        other => Err(ApiError::NotFound(format!("no view `{other}`: the views are {}", PAGES.join(", ")))),
    }
}

/// The pairs as a query string again, for the page's typed query.
fn serde_urlencoded_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", cairn_channels::encode_query_value(k), cairn_channels::encode_query_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn from_pairs<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}").parse().map_err(|_| ApiError::BadRequest("the query string is not valid".into()))?,
    )
    .map(|q| q.0)
    .map_err(|e| ApiError::BadRequest(format!("the query string is not valid: {}", e.body_text())))
}

/// `GET /api/views/accounts/{id}`: the account 360.
pub(crate) async fn account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, cairn_store::KeyScope::Read).await?;
    let query = from_pairs(&serde_urlencoded_pairs(&pairs))?;
    json(super::account::data(&state, &id, &query).await?)
}

/// `GET /api/views/programs/{id}`: one program.
pub(crate) async fn program(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, cairn_store::KeyScope::Read).await?;
    json(super::programs::data(&state, &id, Wait::Current).await?.0)
}

/// The view of a page that waited for current figures ([`Wait::Current`] always has them).
fn current<T>((view, _): (Option<T>, Freshness)) -> Result<T, ApiError> {
    view.ok_or_else(|| ApiError::Internal("the view's figures are still being computed".into()))
}
