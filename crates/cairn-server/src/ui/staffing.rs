//! `/staffing`: the staffing calculator (`cairn report staffing`) over the live engine,
//! with its what-if: `?digital=SEGMENT:STAGE` (repeatable) moves those touchpoints to
//! digital and shows the CSMs and cost saved.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use cairn_measure::staffing::Figures;
use cairn_reports::staffing::StaffingReport;
use serde::Serialize;

use super::{Chrome, UiError, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::error::ApiError;

/// The staffing page's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StaffingView {
    /// `None` when the workspace has no `staffing:` section (`note` says so).
    pub report: Option<StaffingReport>,
    pub note: Option<String>,
    /// Every `segment:stage` the what-if form offers, with whether it is ticked.
    pub options: Vec<(String, bool)>,
}

/// A line of figures as text: accounts, ARR, hours, CSMs, cost.
pub(crate) fn figures(f: &Figures) -> [String; 5] {
    [
        f.accounts.to_string(),
        super::chart::money(f.arr_cents as f64 / 100.0),
        f.hours.one_decimal_string(),
        format!("{} ({} whole)", f.csms.one_decimal_string(), f.whole_csms),
        super::chart::money(f.whole_csms_cost_cents as f64 / 100.0),
    ]
}

impl StaffingView {
    /// (segment, stage, digital, hours per account, figures) rows.
    pub fn rows(&self) -> Vec<(String, String, bool, String, [String; 5])> {
        let Some(report) = &self.report else { return Vec::new() };
        report
            .staffing
            .segments
            .iter()
            .flat_map(|s| {
                s.stages.iter().map(move |st| {
                    (
                        s.segment.clone(),
                        st.stage.clone().unwrap_or_else(|| "(any)".into()),
                        st.digital,
                        st.hours_per_account.one_decimal_string(),
                        figures(&st.figures),
                    )
                })
            })
            .collect()
    }

    /// The total.
    pub fn total(&self) -> Option<[String; 5]> {
        self.report.as_ref().map(|r| figures(&r.staffing.total))
    }

    /// The what-if in a sentence.
    pub fn what_if(&self) -> Option<String> {
        let w = self.report.as_ref()?.what_if.as_ref()?;
        Some(format!(
            "With those touchpoints digital: {} CSM hours a year, {} CSMs ({} whole), {} a year — a change of {} CSMs.",
            w.after.total.hours.one_decimal_string(),
            w.after.total.csms.one_decimal_string(),
            w.after.total.whole_csms,
            super::chart::money(w.after.total.whole_csms_cost_cents as f64 / 100.0),
            w.change.csms.one_decimal_string(),
        ))
    }
}

/// The calculator for the `digital` touchpoints asked for.
pub(crate) async fn data(state: &AppState, digital: &[String]) -> Result<StaffingView, ApiError> {
    let rt = crate::api::runtime(state)?;
    let report = match rt.read(|live| cairn_reports::staffing::staffing(&live.engine, digital)).await {
        Ok(r) => r,
        Err(cairn_reports::ReportError::Invalid(why)) => {
            return Ok(StaffingView { report: None, note: Some(why), options: Vec::new() });
        }
        Err(e) => return Err(e.into()),
    };
    let options = report
        .staffing
        .segments
        .iter()
        .flat_map(|s| {
            s.stages.iter().filter_map(move |st| st.stage.as_ref().map(|stage| format!("{}:{stage}", s.segment)))
        })
        .map(|o| {
            let ticked = digital.contains(&o);
            (o, ticked)
        })
        .collect();
    Ok(StaffingView { report: Some(report), note: None, options })
}

#[derive(Template)]
#[template(path = "staffing.html")]
struct Page {
    chrome: Chrome,
    d: StaffingView,
}

/// `GET /staffing?digital=…`.
pub(crate) async fn page(
    State(state): State<AppState>,
    user: SignedIn,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Html<String>, UiError> {
    let digital: Vec<String> = pairs.into_iter().filter(|(k, _)| k == "digital").map(|(_, v)| v).collect();
    let d = data(&state, &digital).await?;
    render(&Page { chrome: Chrome::new(&user, "/staffing"), d })
}
