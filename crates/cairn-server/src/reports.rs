//! `GET /api/reports/{name}`: the figures of `cairn report NAME --json`, for a secret
//! key. Query parameters `period` (month|quarter|year), `from` and `to`, `as_of` and
//! `segment` mean what the CLI's flags mean (`cairn_reports::QueryText`); `programs` and
//! `experiments` also take `program` (one program's id) and `experiments` `mde` (the
//! minimum detectable effect in percentage points, default 5), and read the definitions
//! of the live runtime's workspace.

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
const REPORTS: &[&str] = &["kpis", "movements", "cohorts", "programs", "experiments"];

/// The programs' reports' parameters besides the period.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ProgramParams {
    program: Option<String>,
    mde: Option<String>,
}

impl ProgramParams {
    /// The MDE as an absolute rate (`mde=5` → 0.05).
    fn mde(&self) -> Result<f64, ApiError> {
        match &self.mde {
            None => Ok(cairn_reports::experiments::DEFAULT_MDE),
            Some(text) => text.trim().parse::<f64>().map(|points| points / 100.0).map_err(|_| {
                ApiError::BadRequest(format!("mde `{text}` is not a number: give percentage points, e.g. mde=5"))
            }),
        }
    }
}

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
    Query(params): Query<ProgramParams>,
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
        "programs" => {
            let ws = crate::api::live_workspace(&state).await;
            let program = params.program.as_deref();
            to_json(cairn_reports::programs::programs(store, ws.as_deref(), &query, program).await?)
        }
        "experiments" => {
            let ws = crate::api::live_workspace(&state).await;
            let (program, mde) = (params.program.as_deref(), params.mde()?);
            to_json(cairn_reports::experiments::experiments(store, ws.as_deref(), &query, program, mde).await?)
        }
        other => Err(ApiError::NotFound(format!("no report `{other}`: the reports are {}", REPORTS.join(", ")))),
    }
}
