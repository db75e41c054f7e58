//! `GET /api/reports/{name}`: the figures of `cairn report NAME --json`, for a secret
//! key. Query parameters `period` (month|quarter|year), `from` and `to`, `as_of` and
//! `segment` mean what the CLI's flags mean (`cairn_reports::QueryText`); `staffing`
//! reads the live engine and takes `digital=SEGMENT:STAGE[,STAGE…]` (repeatable), the
//! CLI's `--digital`.

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
const REPORTS: &[&str] = &["kpis", "movements", "cohorts", "staffing"];

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> ApiError {
        match e {
            ReportError::Invalid(m) => ApiError::BadRequest(m),
            ReportError::Measure(m) => ApiError::BadRequest(m.to_string()),
            ReportError::Store(s) => ApiError::Unavailable(s),
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
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers).await?;
    let today = state.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let default_kind = if name == "cohorts" { PeriodKind::Year } else { PeriodKind::Month };
    let query = text.resolve(default_kind, today)?;
    let store = &state.store;
    match name.as_str() {
        "kpis" => to_json(cairn_reports::revenue::kpis(store, &query).await?),
        "movements" => to_json(cairn_reports::revenue::movements(store, &query).await?),
        "cohorts" => to_json(cairn_reports::revenue::cohorts(store, &query).await?),
        "staffing" => {
            let digital: Vec<String> = pairs.into_iter().filter(|(k, _)| k == "digital").map(|(_, v)| v).collect();
            let runtime = crate::api::runtime(&state)?;
            to_json(runtime.read(|live| cairn_reports::staffing::staffing(&live.engine, &digital)).await?)
        }
        other => Err(ApiError::NotFound(format!("no report `{other}`: the reports are {}", REPORTS.join(", ")))),
    }
}
