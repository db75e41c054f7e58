//! `GET /api/reports/{name}`: the figures of `cairn report NAME --json`, for a secret
//! key. Query parameters `period` (month|quarter|year), `from` and `to`, `as_of` and
//! `segment` mean what the CLI's flags mean (`cairn_reports::QueryText`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use cairn_measure::PeriodKind;
use cairn_reports::{QueryText, ReportError};
use serde_json::Value;

use crate::AppState;
use crate::api::authorize;
use crate::error::ApiError;

/// The reports served, in the order `cairn report --help` lists them.
const REPORTS: &[&str] = &["kpis", "movements", "cohorts", "backtest"];

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> ApiError {
        match e {
            ReportError::Invalid(m) => ApiError::BadRequest(m),
            ReportError::Measure(m) => ApiError::BadRequest(m.to_string()),
            ReportError::Store(s) => ApiError::Unavailable(s),
            ReportError::Replay(cairn_runtime::RuntimeError::Store(s)) => ApiError::Unavailable(s),
            ReportError::Replay(r) => ApiError::Internal(r.to_string()),
        }
    }
}

fn to_json(value: impl serde::Serialize) -> Result<Json<Value>, ApiError> {
    serde_json::to_value(value).map(Json).map_err(|e| ApiError::Internal(format!("a report did not serialise: {e}")))
}

/// `GET /api/reports/{name}`.
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(text): Query<QueryText>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers).await?;
    let today = state.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let default_kind =
        if matches!(name.as_str(), "cohorts" | "backtest") { PeriodKind::Year } else { PeriodKind::Month };
    let query = text.resolve(default_kind, today)?;
    let store = &state.store;
    match name.as_str() {
        "kpis" => to_json(cairn_reports::revenue::kpis(store, &query).await?),
        "movements" => to_json(cairn_reports::revenue::movements(store, &query).await?),
        "cohorts" => to_json(cairn_reports::revenue::cohorts(store, &query).await?),
        "backtest" => {
            let Some(rt) = &state.runtime else {
                return Err(ApiError::BadRequest(
                    "the backtest needs the workspace's health definitions: start cairn serve with --workspace".into(),
                ));
            };
            let ws = rt.read(|live| std::sync::Arc::clone(live.engine.workspace_arc())).await;
            to_json(cairn_reports::backtest::backtest(store, ws, &query).await?)
        }
        other => Err(ApiError::NotFound(format!("no report `{other}`: the reports are {}", REPORTS.join(", ")))),
    }
}
