//! The reports the pages and `/api/reports/*` share, each through the [`ReportCache`]:
//! one function per report, keyed by what the report is asked for, so a page and an API
//! call that ask the same thing read one computation.
//!
//! [`ReportCache`]: crate::report_cache::ReportCache

use std::future::Future;
use std::sync::Arc;

use cairn_reports::{Query, ReportError};
use cairn_store::Store;
use cairn_workspace::Workspace;

use crate::AppState;
use crate::error::ApiError;
use crate::report_cache::{Fetched, Wait};

type Ws = Option<Arc<Workspace>>;

/// `f(store, ws)` under the key `name`, the definitions' address and `params`.
async fn cached<T, Fut>(
    state: &AppState,
    name: &str,
    ws: Option<&Arc<Workspace>>,
    params: String,
    wait: Wait,
    f: impl FnOnce(Store, Ws) -> Fut,
) -> Result<Fetched<T>, ApiError>
where
    T: Send + Sync + 'static,
    Fut: Future<Output = Result<T, ReportError>> + Send + 'static,
{
    let (store, w) = (state.store.clone(), ws.cloned());
    cached_with(state, name, ws, params, wait, move || {
        let work = f(store, w);
        async move { work.await.map_err(ApiError::from) }
    })
    .await
}

/// `work()` under the key `name`, the definitions' address and `params`: for figures
/// that are not a `cairn_reports` report (the doctor, the engine's audience preview).
async fn cached_with<T, Fut>(
    state: &AppState,
    name: &str,
    ws: Option<&Arc<Workspace>>,
    params: String,
    wait: Wait,
    work: impl FnOnce() -> Fut,
) -> Result<Fetched<T>, ApiError>
where
    T: Send + Sync + 'static,
    Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    // The definitions are one Arc until a reload swaps it; the entry holds it, so its
    // address is not reused while the key names it.
    let key = format!("{name} {:?} {params}", ws.map(Arc::as_ptr));
    let pin = ws.map(|w| w.clone() as Arc<dyn std::any::Any + Send + Sync>);
    state.reports.get(key, pin, wait, work).await
}

/// The doctor report (`cairn doctor`) as of `today`: its counts read every event.
pub(crate) async fn doctor(
    state: &AppState,
    today: jiff::civil::Date,
    wait: Wait,
) -> Result<Fetched<cairn_core::doctor::DoctorReport>, ApiError> {
    let store = state.store.clone();
    cached_with(state, "doctor", None, today.to_string(), wait, move || async move { Ok(store.doctor(today).await?) })
        .await
}

/// A segment's size at the start of each month in `starts` (as `YYYY-MM`), from its
/// stored transitions (one read of them per month).
pub(crate) async fn segment_sizes_by_month(
    state: &AppState,
    ws: &Arc<Workspace>,
    segment: &str,
    kind: cairn_store::SubjectKind,
    starts: Vec<jiff::civil::Date>,
    wait: Wait,
) -> Result<Fetched<Vec<(String, usize)>>, ApiError> {
    let (store, tz, s) = (state.store.clone(), ws.time_zone().clone(), segment.to_string());
    let params = format!("{segment} {kind:?} {starts:?}");
    cached_with(state, "segment_sizes_by_month", Some(ws), params, wait, move || async move {
        let mut sizes = Vec::with_capacity(starts.len());
        for first in starts {
            let at = first.to_zoned(tz.clone()).map_err(|e| ApiError::Internal(e.to_string()))?.timestamp();
            let n = store.segment_members_before(&s, kind, at).await?.len();
            sizes.push((first.strftime("%Y-%m").to_string(), n));
        }
        Ok(sizes)
    })
    .await
}

/// `cairn_programs::preview` of `program` on the live engine as it is now (its audience
/// rule over every account or contact); keyed by the day, as a date trigger's audience
/// moves with it.
pub(crate) async fn program_preview(
    state: &AppState,
    ws: &Arc<Workspace>,
    program: &cairn_workspace::Program,
    today: jiff::civil::Date,
    wait: Wait,
) -> Result<Fetched<cairn_programs::Preview>, ApiError> {
    let (st, p) = (state.clone(), program.clone());
    cached_with(
        state,
        "program_preview",
        Some(ws),
        format!("{} {today}", program.id.as_str()),
        wait,
        move || async move {
            let rt = crate::api::runtime(&st)?;
            let signer = cairn_channels::LinkSigner::new(cairn_programs::PREVIEW_SECRET);
            Ok(rt.read(|live| cairn_programs::preview(&live.engine, &p, &signer, PREVIEW_URL)).await?)
        },
    )
    .await
}

/// The base URL of the links in previewed messages (they are shown, never sent).
pub(crate) const PREVIEW_URL: &str = "http://127.0.0.1:8080";

/// `cairn_reports::revenue::kpis_series`.
pub(crate) async fn kpis_series(
    state: &AppState,
    ws: Option<&Arc<Workspace>>,
    query: &Query,
    wait: Wait,
) -> Result<Fetched<cairn_reports::revenue::KpiSeries>, ApiError> {
    let q = query.clone();
    cached(state, "kpis_series", ws, format!("{query:?}"), wait, |store, ws| async move {
        cairn_reports::revenue::kpis_series(&store, ws.as_deref(), &q).await
    })
    .await
}

/// `cairn_reports::revenue::kpis`.
pub(crate) async fn kpis(
    state: &AppState,
    ws: Option<&Arc<Workspace>>,
    query: &Query,
    options: &cairn_reports::revenue::KpiOptions,
    wait: Wait,
) -> Result<Fetched<cairn_reports::revenue::KpiReport>, ApiError> {
    let (q, o) = (query.clone(), options.clone());
    cached(state, "kpis", ws, format!("{query:?} {options:?}"), wait, |store, ws| async move {
        cairn_reports::revenue::kpis(&store, ws.as_deref(), &q, &o).await
    })
    .await
}

/// `cairn_reports::revenue::movements`.
pub(crate) async fn movements(
    state: &AppState,
    ws: Option<&Arc<Workspace>>,
    query: &Query,
    wait: Wait,
) -> Result<Fetched<cairn_measure::movements::Waterfall>, ApiError> {
    let q = query.clone();
    cached(state, "movements", ws, format!("{query:?}"), wait, |store, ws| async move {
        cairn_reports::revenue::movements(&store, ws.as_deref(), &q).await
    })
    .await
}

/// `cairn_reports::revenue::cohorts`.
pub(crate) async fn cohorts(
    state: &AppState,
    ws: Option<&Arc<Workspace>>,
    query: &Query,
    wait: Wait,
) -> Result<Fetched<Vec<cairn_measure::cohorts::CohortRow>>, ApiError> {
    let q = query.clone();
    cached(state, "cohorts", ws, format!("{query:?}"), wait, |store, ws| async move {
        cairn_reports::revenue::cohorts(&store, ws.as_deref(), &q).await
    })
    .await
}

/// `cairn_reports::nps::nps` (no definitions: keyed without them).
pub(crate) async fn nps(
    state: &AppState,
    query: &Query,
    wait: Wait,
) -> Result<Fetched<cairn_reports::nps::NpsReport>, ApiError> {
    let q = query.clone();
    cached(state, "nps", None, format!("{query:?}"), wait, |store, _| async move {
        cairn_reports::nps::nps(&store, &q).await
    })
    .await
}

/// `cairn_reports::journey::journey`.
pub(crate) async fn journey(
    state: &AppState,
    ws: &Arc<Workspace>,
    query: &Query,
    wait: Wait,
) -> Result<Fetched<cairn_reports::journey::JourneyReport>, ApiError> {
    let (q, w) = (query.clone(), ws.clone());
    cached(state, "journey", Some(ws), format!("{query:?}"), wait, |store, _| async move {
        cairn_reports::journey::journey(&store, &w, &q).await
    })
    .await
}

/// `cairn_reports::ttv::ttv`; its `Invalid` error (no value milestone) is an answer
/// the journey page shows, so it is kept as one.
pub(crate) async fn ttv(
    state: &AppState,
    ws: &Arc<Workspace>,
    query: &Query,
    wait: Wait,
) -> Result<Fetched<Result<cairn_reports::ttv::TtvReport, String>>, ApiError> {
    let (q, w) = (query.clone(), ws.clone());
    cached(state, "ttv", Some(ws), format!("{query:?}"), wait, |store, _| async move {
        match cairn_reports::ttv::ttv(&store, &w, &q).await {
            Ok(t) => Ok(Ok(t)),
            Err(ReportError::Invalid(why)) => Ok(Err(why)),
            Err(e) => Err(e),
        }
    })
    .await
}

/// `cairn_reports::hypotheses::hypotheses`.
pub(crate) async fn hypotheses(
    state: &AppState,
    ws: &Arc<Workspace>,
    query: &Query,
    request: &cairn_reports::hypotheses::Hypotheses,
    wait: Wait,
) -> Result<Fetched<cairn_reports::hypotheses::HypothesesReport>, ApiError> {
    let (q, r, w) = (query.clone(), request.clone(), ws.clone());
    cached(state, "hypotheses", Some(ws), format!("{query:?} {request:?}"), wait, |store, _| async move {
        cairn_reports::hypotheses::hypotheses(&store, &w, &q, &r).await
    })
    .await
}

/// `cairn_reports::backtest::backtest`.
pub(crate) async fn backtest(
    state: &AppState,
    ws: &Arc<Workspace>,
    query: &Query,
    wait: Wait,
) -> Result<Fetched<cairn_reports::backtest::Backtest>, ApiError> {
    let q = query.clone();
    cached(state, "backtest", Some(ws), format!("{query:?}"), wait, |store, ws| async move {
        let ws = ws.ok_or_else(|| ReportError::Invalid("the backtest needs the workspace".into()))?;
        cairn_reports::backtest::backtest(&store, ws, &q).await
    })
    .await
}

/// `cairn_reports::programs::programs`.
pub(crate) async fn programs(
    state: &AppState,
    ws: Option<&Arc<Workspace>>,
    query: &Query,
    program: Option<&str>,
    wait: Wait,
) -> Result<Fetched<cairn_reports::programs::ProgramsReport>, ApiError> {
    let (q, p) = (query.clone(), program.map(str::to_string));
    cached(state, "programs", ws, format!("{query:?} {program:?}"), wait, |store, ws| async move {
        cairn_reports::programs::programs(&store, ws.as_deref(), &q, p.as_deref()).await
    })
    .await
}

/// `cairn_reports::experiments::experiments`.
pub(crate) async fn experiments(
    state: &AppState,
    ws: Option<&Arc<Workspace>>,
    query: &Query,
    program: Option<&str>,
    mde: f64,
    wait: Wait,
) -> Result<Fetched<cairn_reports::experiments::ExperimentsReport>, ApiError> {
    let (q, p) = (query.clone(), program.map(str::to_string));
    cached(state, "experiments", ws, format!("{query:?} {program:?} {mde:?}"), wait, |store, ws| async move {
        cairn_reports::experiments::experiments(&store, ws.as_deref(), &q, p.as_deref(), mde).await
    })
    .await
}
