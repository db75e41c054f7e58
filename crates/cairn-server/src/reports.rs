//! `GET /api/reports/{name}`: the figures of `cairn report NAME --json`, for a secret
//! key. Query parameters `period` (month|quarter|year), `from` and `to`, `as_of` and
//! `segment` mean what the CLI's flags mean (`cairn_reports::QueryText`); `kpis` also
//! takes `series=true` and `gross_margin` (`cairn_reports::revenue::KpiOptions`);
//! `programs` and `experiments` take `program` (one program's id) and `experiments` `mde`
//! (the minimum detectable effect in percentage points, default 5). The engine's state
//! (definitions, segments, health) is the live runtime's, when one runs.
//! `staffing` reads the live engine and takes `digital=SEGMENT:STAGE[,STAGE…]`
//! (repeatable), the CLI's `--digital`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use cairn_measure::PeriodKind;
use cairn_reports::revenue::KpiOptions;
use cairn_reports::{QueryText, ReportError};
use serde_json::Value;

use crate::AppState;
use crate::api::authorize;
use crate::error::ApiError;

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
    let ws = live.as_deref();
    match name.as_str() {
        "kpis" if series => to_json(cairn_reports::revenue::kpis_series(store, ws, &query).await?),
        "kpis" => to_json(cairn_reports::revenue::kpis(store, ws, &query, &kpi).await?),
        "movements" => to_json(cairn_reports::revenue::movements(store, ws, &query).await?),
        "cohorts" => to_json(cairn_reports::revenue::cohorts(store, ws, &query).await?),
        "process" => {
            let health = match &state.runtime {
                Some(rt) => Some(rt.read(|live| cairn_reports::process::health(&live.engine)).await?),
                None => None,
            };
            to_json(cairn_reports::process::process(store, health, &query, state.clock.now()).await?)
        }
        "programs" => {
            let program = params.program.as_deref();
            to_json(cairn_reports::programs::programs(store, ws, &query, program).await?)
        }
        "experiments" => {
            let (program, mde) = (params.program.as_deref(), params.mde()?);
            to_json(cairn_reports::experiments::experiments(store, ws, &query, program, mde).await?)
        }
        "nps" => to_json(cairn_reports::nps::nps(store, &query).await?),
        "journey" | "ttv" => {
            let Some(ws) = ws else {
                return Err(ApiError::Conflict(format!(
                    "the {name} report needs a workspace with a journey: start cairn serve with --workspace DIR"
                )));
            };
            if name == "journey" {
                to_json(cairn_reports::journey::journey(store, ws, &query).await?)
            } else {
                to_json(cairn_reports::ttv::ttv(store, ws, &query).await?)
            }
        }
        "hypotheses" => {
            let request = hypotheses.resolve()?;
            let Some(ws) = ws else {
                return Err(ApiError::BadRequest(
                    "hypotheses need the workspace: start cairn serve with --workspace".into(),
                ));
            };
            to_json(cairn_reports::hypotheses::hypotheses(store, ws, &query, &request).await?)
        }
        "backtest" => {
            let Some(ws) = live.clone() else {
                return Err(ApiError::BadRequest(
                    "the backtest needs the workspace's health definitions: start cairn serve with --workspace".into(),
                ));
            };
            to_json(cairn_reports::backtest::backtest(store, ws, &query).await?)
        }
        "staffing" => {
            let digital: Vec<String> = pairs.into_iter().filter(|(k, _)| k == "digital").map(|(_, v)| v).collect();
            let runtime = crate::api::runtime(&state)?;
            to_json(runtime.read(|live| cairn_reports::staffing::staffing(&live.engine, &digital)).await?)
        }
        other => Err(ApiError::NotFound(format!("no report `{other}`: the reports are {}", REPORTS.join(", ")))),
    }
}
