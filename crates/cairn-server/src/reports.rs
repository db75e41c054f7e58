//! `GET /api/reports/{name}`: the figures of `cairn report NAME --json`, for a secret
//! key. Query parameters `period` (month|quarter|year), `from` and `to`, `as_of` and
//! `segment` mean what the CLI's flags mean (`cairn_reports::QueryText`); `kpis` also
//! takes `series=true` and `gross_margin` (`cairn_reports::revenue::KpiOptions`);
//! `programs` and `experiments` take `program` (one program's id) and `experiments` `mde`
//! (the minimum detectable effect in percentage points, default 5). The engine's state
//! (definitions, segments, health) is the live runtime's, when one runs.
//! `staffing` reads the live engine and takes `digital=SEGMENT:STAGE[,STAGE…]`
//! (repeatable), the CLI's `--digital`.
//! Every report but `process` and `staffing` (which read the live engine) comes from the
//! report cache the pages share ([`crate::cached_reports`]), current with the data at
//! the request.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use cairn_measure::PeriodKind;
use cairn_reports::revenue::KpiOptions;
use cairn_reports::{QueryText, ReportError};
use serde_json::Value;

use crate::AppState;
use crate::api::authorize;
use crate::cached_reports as cached;
use crate::error::ApiError;
use crate::report_cache::Wait;

/// The reports served, in the order `cairn report --help` lists them.
const REPORTS: &[&str] = &[
    "kpis",
    "movements",
    "cohorts",
    "process",
    "programs",
    "experiments",
    "nps",
    "journey",
    "ttv",
    "hypotheses",
    "backtest",
];

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
            ReportError::Replay(cairn_runtime::RuntimeError::Store(s)) => ApiError::Unavailable(s),
            ReportError::Replay(r) => ApiError::Internal(r.to_string()),
        }
    }
}

fn to_json(value: impl serde::Serialize) -> Result<Json<Value>, ApiError> {
    serde_json::to_value(value).map(Json).map_err(|e| ApiError::Internal(format!("a report did not serialise: {e}")))
}

/// `GET /api/reports/{name}`.
// Each report's own parameters are one `Query` extractor each (unknown keys are ignored by
// each), so the handler takes one argument per report family.
#[allow(clippy::too_many_arguments)]
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(text): Query<QueryText>,
    Query(kpi): Query<KpiOptions>,
    Query(params): Query<ProgramParams>,
    Query(hypotheses): Query<cairn_reports::hypotheses::HypothesesText>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, cairn_store::KeyScope::Read).await?;
    let today = state.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let default_kind = if matches!(name.as_str(), "cohorts" | "journey" | "ttv" | "backtest") {
        PeriodKind::Year
    } else {
        PeriodKind::Month
    };
    let mut query = text.resolve(default_kind, today)?;
    let series = name == "kpis" && kpi.series == Some(true);
    if series && kpi.gross_margin.is_some() {
        return Err(ApiError::BadRequest(
            "gross_margin gives lifetime value for a period: leave out series=true".into(),
        ));
    }
    if series && text.period.is_none() && text.from.is_none() {
        query.period = cairn_reports::revenue::last_twelve_months(query.period)?;
    }
    let store = &state.store;
    let live = crate::api::live_workspace(&state).await;
    let ws = live.as_ref();
    let now = Wait::Current;
    match name.as_str() {
        "kpis" if series => to_json(&*cached::kpis_series(&state, ws, &query, now).await?.ready()?),
        "kpis" => to_json(&*cached::kpis(&state, ws, &query, &kpi, now).await?.ready()?),
        "movements" => to_json(&*cached::movements(&state, ws, &query, now).await?.ready()?),
        "cohorts" => to_json(&*cached::cohorts(&state, ws, &query, now).await?.ready()?),
        "process" => {
            let health = match &state.runtime {
                Some(rt) => Some(rt.read(|live| cairn_reports::process::health(&live.engine)).await?),
                None => None,
            };
            to_json(cairn_reports::process::process(store, health, &query, state.clock.now()).await?)
        }
        "programs" => {
            let program = params.program.as_deref();
            to_json(&*cached::programs(&state, ws, &query, program, now).await?.ready()?)
        }
        "experiments" => {
            let (program, mde) = (params.program.as_deref(), params.mde()?);
            to_json(&*cached::experiments(&state, ws, &query, program, mde, now).await?.ready()?)
        }
        "nps" => to_json(&*cached::nps(&state, &query, now).await?.ready()?),
        "journey" | "ttv" => {
            let Some(ws) = ws else {
                return Err(ApiError::Conflict(format!(
                    "the {name} report needs a workspace with a journey: start cairn serve with --workspace DIR"
                )));
            };
            if name == "journey" {
                to_json(&*cached::journey(&state, ws, &query, now).await?.ready()?)
            } else {
                match &*cached::ttv(&state, ws, &query, now).await?.ready()? {
                    Ok(t) => to_json(t),
                    Err(why) => Err(ApiError::BadRequest(why.clone())),
                }
            }
        }
        "hypotheses" => {
            let request = hypotheses.resolve()?;
            let Some(ws) = ws else {
                return Err(ApiError::BadRequest(
                    "hypotheses need the workspace: start cairn serve with --workspace".into(),
                ));
            };
            to_json(&*cached::hypotheses(&state, ws, &query, &request, now).await?.ready()?)
        }
        "backtest" => {
            let Some(ws) = ws else {
                return Err(ApiError::BadRequest(
                    "the backtest needs the workspace's health definitions: start cairn serve with --workspace".into(),
                ));
            };
            to_json(&*cached::backtest(&state, ws, &query, now).await?.ready()?)
        }
        "staffing" => {
            let digital: Vec<String> = pairs.into_iter().filter(|(k, _)| k == "digital").map(|(_, v)| v).collect();
            let runtime = crate::api::runtime(&state)?;
            to_json(runtime.read(|live| cairn_reports::staffing::staffing(&live.engine, &digital)).await?)
        }
        other => Err(ApiError::NotFound(format!("no report `{other}`: the reports are {}", REPORTS.join(", ")))),
    }
}
