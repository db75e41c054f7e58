//! `/kpis`: revenue and retention by period and segment — ARR and NRR/GRR month by month
//! (`cairn report kpis --series`), the ARR waterfall (`movements`), cohort retention as a
//! heat map (`cohorts`) and NPS/CSAT by month (`nps`), over the twelve months before the
//! last complete one by default; `?segment=` restricts every figure to a segment.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use cairn_measure::PeriodKind;
use cairn_measure::cohorts::CohortRow;
use cairn_measure::movements::Waterfall;
use cairn_reports::QueryText;
use cairn_reports::nps::NpsReport;
use cairn_reports::revenue::KpiSeries;
use serde::Serialize;

use super::accounts::Choice;
use super::chart::{self, Chart, Series, Unit};
use super::{Chrome, UiError, given, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::cached_reports as cached;
use crate::error::ApiError;
use crate::report_cache::{Freshness, Wait};

/// The KPI page's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct KpisView {
    pub series: KpiSeries,
    pub movements: Waterfall,
    pub cohorts: Vec<CohortRow>,
    pub nps: NpsReport,
    pub segments: Vec<Choice>,
}

fn month(p: &cairn_measure::Period) -> String {
    p.first().strftime("%Y-%m").to_string()
}

impl KpisView {
    fn x(&self) -> Vec<String> {
        self.series.months.iter().map(|m| month(&m.kpis.period)).collect()
    }

    /// ARR at each month's end.
    pub fn arr_chart(&self) -> Chart {
        let values = self.series.months.iter().map(|m| Some(m.kpis.end_arr_cents as f64 / 100.0)).collect();
        chart::line("ARR at month end", &self.x(), &[Series { name: "ARR".into(), values }], Unit::Money, true, true)
    }

    /// NRR and GRR by month.
    pub fn retention_chart(&self) -> Chart {
        let s = |name: &str, f: fn(&cairn_measure::retention::PeriodKpis) -> Option<cairn_measure::Ratio>| Series {
            name: name.into(),
            values: self.series.months.iter().map(|m| f(&m.kpis).map(|r| r.to_f64())).collect(),
        };
        chart::line(
            "NRR and GRR by month",
            &self.x(),
            &[s("NRR", |k| k.nrr), s("GRR", |k| k.grr)],
            Unit::Share,
            false,
            false,
        )
    }

    /// The ARR waterfall over the range.
    pub fn waterfall(&self) -> Chart {
        let t = &self.movements.total;
        let c = |v: i64| v as f64 / 100.0;
        chart::waterfall(
            "ARR movements over the range",
            ("start", c(t.start_arr_cents)),
            &[
                ("new".into(), c(t.new_cents)),
                ("expansion".into(), c(t.expansion_cents)),
                ("reactivation".into(), c(t.reactivation_cents)),
                ("contraction".into(), -c(t.contraction_cents)),
                ("churn".into(), -c(t.churn_cents)),
            ],
            "end",
            Unit::Money,
        )
    }

    /// Logo retention by start month and month offset.
    pub fn cohort_chart(&self) -> Chart {
        let rows: Vec<String> =
            self.cohorts.iter().map(|r| format!("{} ({})", month(&r.start_month), r.accounts)).collect();
        let width = self.cohorts.iter().map(|r| r.months.len()).max().unwrap_or(0);
        let cols: Vec<String> = (0..width).map(|i| i.to_string()).collect();
        let cells: Vec<Vec<Option<f64>>> = self
            .cohorts
            .iter()
            .map(|r| r.months.iter().map(|c| c.logo_retention.map(|x| x.to_f64())).collect())
            .collect();
        chart::heatmap("Logo retention by start month (columns: months since start)", &rows, &cols, &cells)
    }

    /// NPS by month (points, −100…100).
    pub fn nps_chart(&self) -> Chart {
        let x: Vec<String> = self.nps.trend.iter().map(|m| month(&m.month)).collect();
        let nps = self.nps.trend.iter().map(|m| m.nps.nps.map(|r| r.to_f64())).collect();
        chart::line("NPS by month", &x, &[Series { name: "NPS".into(), values: nps }], Unit::Number, false, true)
    }

    /// CSAT by month (share of answers 4–5 of 5).
    pub fn csat_chart(&self) -> Chart {
        let x: Vec<String> = self.nps.trend.iter().map(|m| month(&m.month)).collect();
        let csat = self.nps.trend.iter().map(|m| m.csat.csat.map(|r| r.to_f64())).collect();
        chart::line("CSAT by month", &x, &[Series { name: "CSAT".into(), values: csat }], Unit::Share, false, false)
    }
}

/// The KPIs over the twelve months before the last complete one (or the range asked),
/// from the report cache.
pub(crate) async fn data(
    state: &AppState,
    q: &QueryText,
    wait: Wait,
) -> Result<(Option<KpisView>, Freshness), ApiError> {
    let live = crate::api::live_workspace(state).await;
    let ws = live.as_ref();
    let tz = ws.map_or(jiff::tz::TimeZone::UTC, |w| w.time_zone().clone());
    let today = state.clock.now().to_zoned(tz).date();
    let mut query = q.resolve(PeriodKind::Month, today)?;
    if q.period.is_none() && q.from.is_none() {
        query.period = cairn_reports::revenue::last_twelve_months(query.period)?;
    }
    let (series, movements, cohorts, nps) = tokio::join!(
        cached::kpis_series(state, ws, &query, wait),
        cached::movements(state, ws, &query, wait),
        cached::cohorts(state, ws, &query, wait),
        cached::nps(state, &query, wait),
    );
    let mut fresh = Freshness::default();
    let (series, movements, cohorts, nps) =
        (fresh.take(series?), fresh.take(movements?), fresh.take(cohorts?), fresh.take(nps?));
    let selected = given(&q.segment);
    let mut segments =
        vec![Choice { value: String::new(), label: "every account".into(), selected: selected.is_none() }];
    if let Some(ws) = ws {
        segments.extend(ws.segments().iter().filter(|s| matches!(s.subject, cairn_rules::Subject::Account)).map(|s| {
            Choice {
                value: s.id.as_str().into(),
                label: s.name.clone().unwrap_or_else(|| s.id.as_str().into()),
                selected: selected == Some(s.id.as_str()),
            }
        }));
    }
    let view = match (series, movements, cohorts, nps) {
        (Some(series), Some(movements), Some(cohorts), Some(nps)) => Some(KpisView {
            series: (*series).clone(),
            movements: (*movements).clone(),
            cohorts: (*cohorts).clone(),
            nps: (*nps).clone(),
            segments,
        }),
        _ => None,
    };
    Ok((view, fresh))
}

#[derive(Template)]
#[template(path = "kpis.html")]
struct Page {
    chrome: Chrome,
    d: Option<KpisView>,
    fresh: Freshness,
}

/// `GET /kpis`.
pub(crate) async fn page(
    State(state): State<AppState>,
    user: SignedIn,
    Query(q): Query<QueryText>,
) -> Result<Html<String>, UiError> {
    let (d, fresh) = data(&state, &q, Wait::PAGE).await?;
    render(&Page { chrome: Chrome::new(&user, "/kpis"), d, fresh })
}
