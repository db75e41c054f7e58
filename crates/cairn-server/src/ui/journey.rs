//! `/journey`: the stage funnel (accounts that entered each stage), milestone achievement
//! rates (`cairn report journey`) and the Time to Value distribution by start-month
//! cohort (`cairn report ttv`), over the last complete year by default (`?period=`).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use cairn_measure::PeriodKind;
use cairn_reports::QueryText;
use cairn_reports::journey::JourneyReport;
use cairn_reports::ttv::TtvReport;
use serde::Serialize;

use super::chart::{self, Chart, Series, Unit};
use super::{Chrome, UiError, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::cached_reports as cached;
use crate::error::ApiError;
use crate::report_cache::{Freshness, Wait};

/// The journey page's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JourneyView {
    pub journey: JourneyReport,
    /// Time to value, when the journey marks a value milestone.
    pub ttv: Option<TtvReport>,
    /// Why there is no TTV.
    pub ttv_note: Option<String>,
}

impl JourneyView {
    /// Accounts that entered each stage.
    pub fn funnel(&self) -> Chart {
        let stages: Vec<(String, f64)> = self
            .journey
            .stages
            .iter()
            .map(|s| (s.name.clone().unwrap_or_else(|| s.id.clone()), s.entered as f64))
            .collect();
        chart::funnel("Accounts that entered each stage", &stages)
    }

    /// Median, p75 and p90 days to value by start month.
    pub fn ttv_chart(&self) -> Option<Chart> {
        let ttv = self.ttv.as_ref()?;
        let x: Vec<String> = ttv.cohorts.iter().map(|c| c.start.first().strftime("%Y-%m").to_string()).collect();
        let series = |name: &str, f: fn(&cairn_reports::ttv::TtvCohort) -> Option<f64>| Series {
            name: name.into(),
            values: ttv.cohorts.iter().map(f).collect(),
        };
        Some(chart::line(
            &format!("Days to {} by start month", ttv.milestone_name.clone().unwrap_or(ttv.milestone.clone())),
            &x,
            &[series("median", |c| c.ttv.median), series("p75", |c| c.ttv.p75), series("p90", |c| c.ttv.p90)],
            Unit::Number,
            false,
            true,
        ))
    }

    /// Each milestone's on-time rate.
    pub fn milestone_chart(&self) -> Chart {
        let items: Vec<(String, f64)> = self
            .journey
            .stages
            .iter()
            .flat_map(|s| s.milestones.iter())
            .map(|m| (m.name.clone().unwrap_or_else(|| m.id.clone()), m.on_time_rate.map_or(0.0, |r| r.to_f64())))
            .collect();
        chart::bars("On-time rate by milestone", &items, Unit::Share)
    }

    /// Each milestone's on-time rate, as text per row: (stage, milestone, due, on time, late, missed, rate).
    pub fn milestone_rows(&self) -> Vec<[String; 7]> {
        self.journey
            .stages
            .iter()
            .flat_map(|s| {
                s.milestones.iter().map(move |m| {
                    [
                        s.id.clone(),
                        m.name.clone().unwrap_or_else(|| m.id.clone()),
                        m.due.to_string(),
                        m.on_time.to_string(),
                        m.late.to_string(),
                        m.missed.to_string(),
                        m.on_time_rate.map_or("–".into(), |r| r.percent_one_decimal()),
                    ]
                })
            })
            .collect()
    }
}

/// The journey page's data for `q` (default: the last complete year), from the report
/// cache.
pub(crate) async fn data(
    state: &AppState,
    q: &QueryText,
    wait: Wait,
) -> Result<(Option<JourneyView>, Freshness), ApiError> {
    let ws = crate::api::live_workspace(state).await.ok_or_else(|| {
        ApiError::NotFound("no workspace is loaded: start the server with `cairn serve --workspace DIR`".into())
    })?;
    let today = state.clock.now().to_zoned(ws.time_zone().clone()).date();
    let query = q.resolve(PeriodKind::Year, today)?;
    if ws.journey().is_none() {
        return Err(ApiError::NotFound("the workspace has no journey: add journey.yaml".into()));
    }
    let (journey, ttv) = tokio::join!(cached::journey(state, &ws, &query, wait), cached::ttv(state, &ws, &query, wait));
    let mut fresh = Freshness::default();
    let (journey, ttv) = (fresh.take(journey?), fresh.take(ttv?));
    let view = journey.zip(ttv).map(|(journey, ttv)| {
        let (ttv, ttv_note) = match &*ttv {
            Ok(t) => (Some(t.clone()), None),
            Err(why) => (None, Some(why.clone())),
        };
        JourneyView { journey: (*journey).clone(), ttv, ttv_note }
    });
    Ok((view, fresh))
}

#[derive(Template)]
#[template(path = "journey.html")]
struct Page {
    chrome: Chrome,
    d: Option<JourneyView>,
    fresh: Freshness,
}

/// `GET /journey`.
pub(crate) async fn page(
    State(state): State<AppState>,
    user: SignedIn,
    Query(q): Query<QueryText>,
) -> Result<Html<String>, UiError> {
    let (d, fresh) = data(&state, &q, Wait::PAGE).await?;
    render(&Page { chrome: Chrome::new(&user, "/journey"), d, fresh })
}
