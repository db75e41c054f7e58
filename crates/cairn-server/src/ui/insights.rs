//! `/insights`: behaviour hypotheses — each milestone tested against renewal, with its
//! Kaplan–Meier curves and label (`cairn report hypotheses`); the discovered candidates
//! (`?discover=true`, the event × threshold × window scan, corrected for the number
//! tested); and the health backtest (`cairn report backtest`): how well health told
//! renewals from churns ahead of time.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use cairn_measure::PeriodKind;
use cairn_measure::hypotheses::Verdict;
use cairn_reports::backtest::Backtest;
use cairn_reports::hypotheses::{HypothesesReport, HypothesesText};
use serde::Deserialize;
use serde::Serialize;

use super::chart::{self, Chart, Curve};
use super::{Chrome, UiError, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::error::ApiError;

/// The insights page's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InsightsView {
    pub hypotheses: HypothesesReport,
    pub backtest: Backtest,
}

/// A verdict in words for the page.
pub(crate) struct VerdictLine {
    pub name: String,
    pub rule: String,
    pub label: &'static str,
    pub held: String,
    pub not_held: String,
    pub lift: String,
    pub chart: Option<Chart>,
}

fn group(g: &cairn_measure::hypotheses::Group) -> String {
    format!(
        "{} accounts, {} of {} renewed ({})",
        g.accounts,
        g.renewed,
        g.renewal_due,
        g.retention.map_or("–".into(), |r| r.percent_one_decimal())
    )
}

fn verdict_line(name: String, rule: String, v: &Verdict) -> VerdictLine {
    let curve = |label: &str, g: &cairn_measure::hypotheses::Group| {
        g.survival.as_ref().map(|km| {
            let mut points = vec![(0.0, 1.0)];
            points.extend(km.steps.iter().map(|s| (s.time, s.survival)));
            Curve { name: format!("{label} ({})", g.accounts), points }
        })
    };
    let curves: Vec<Curve> = [curve("did it", &v.held), curve("did not", &v.not_held)].into_iter().flatten().collect();
    let chart = (!curves.is_empty()).then(|| chart::steps(&format!("Still a customer: {name}"), &curves, "days"));
    let lift = match (v.lift_ratio, &v.lift_ratio_interval, v.adjusted_p) {
        (Some(l), Some(i), p) => format!(
            "lift ×{l:.2} [{:.2}, {:.2}]{}",
            i.low,
            i.high,
            p.map_or(String::new(), |p| format!(", adjusted p = {p:.3}"))
        ),
        (Some(l), None, _) => format!("lift ×{l:.2}"),
        _ => "no lift measurable yet".into(),
    };
    VerdictLine { name, rule, label: v.label.text(), held: group(&v.held), not_held: group(&v.not_held), lift, chart }
}

impl InsightsView {
    /// The tested hypotheses.
    pub fn verdicts(&self) -> Vec<VerdictLine> {
        self.hypotheses.hypotheses.iter().map(|h| verdict_line(h.name.clone(), h.rule.clone(), &h.verdict)).collect()
    }

    /// The discovered candidates.
    pub fn candidates(&self) -> Vec<VerdictLine> {
        let Some(d) = &self.hypotheses.discovery else { return Vec::new() };
        d.top
            .iter()
            .map(|c| {
                verdict_line(
                    format!("{} ≥ {} in {} days", c.event, c.threshold, c.window_days),
                    format!("count('{}', {}d) >= {}", c.event, c.window_days, c.threshold),
                    &c.verdict,
                )
            })
            .collect()
    }

    /// Backtest rows: (days before renewal, renewed, churned, AUC).
    pub fn backtest_rows(&self) -> Vec<[String; 4]> {
        self.backtest
            .horizons
            .iter()
            .map(|h| {
                [
                    h.days_before.to_string(),
                    h.overall.renewed.to_string(),
                    h.overall.churned.to_string(),
                    h.overall
                        .auc
                        .map_or_else(|| h.overall.note.clone().unwrap_or_else(|| "–".into()), |a| format!("{a:.2}")),
                ]
            })
            .collect()
    }
}

/// The last insights computed, by (definitions, day, discovery): hypotheses and the
/// backtest replay the log, so the page computes them once a day per loaded definitions
/// (a reload loads new ones) instead of on every visit.
#[derive(Clone, Default)]
pub(crate) struct InsightsCache(std::sync::Arc<std::sync::Mutex<Option<(CacheKey, InsightsView)>>>);

/// The definitions (held, so that their address is not reused while cached), the day and
/// whether discovery ran.
type CacheKey = (std::sync::Arc<cairn_workspace::Workspace>, jiff::civil::Date, bool);

impl InsightsCache {
    fn get(&self, key: &CacheKey) -> Option<InsightsView> {
        let held = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.as_ref()
            .filter(|(k, _)| std::sync::Arc::ptr_eq(&k.0, &key.0) && k.1 == key.1 && k.2 == key.2)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: CacheKey, view: InsightsView) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((key, view));
    }
}

/// The page's query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct InsightsQuery {
    pub discover: Option<bool>,
}

/// The hypotheses (and discovery when asked) and the backtest, over the last complete year.
pub(crate) async fn data(state: &AppState, q: &InsightsQuery) -> Result<InsightsView, ApiError> {
    let ws = crate::api::live_workspace(state).await.ok_or_else(|| {
        ApiError::NotFound("no workspace is loaded: start the server with `cairn serve --workspace DIR`".into())
    })?;
    let today = state.clock.now().to_zoned(ws.time_zone().clone()).date();
    let discover = q.discover.unwrap_or(false);
    // The loaded definitions are one Arc until a reload swaps it.
    let key = (ws.clone(), today, discover);
    if let Some(view) = state.insights.get(&key) {
        return Ok(view);
    }
    let query = cairn_reports::QueryText::default().resolve(PeriodKind::Year, today)?;
    let request = HypothesesText { discover, ..Default::default() }.resolve()?;
    let hypotheses = cairn_reports::hypotheses::hypotheses(&state.store, &ws, &query, &request).await?;
    let backtest = cairn_reports::backtest::backtest(&state.store, ws.clone(), &query).await?;
    let view = InsightsView { hypotheses, backtest };
    state.insights.put(key, view.clone());
    Ok(view)
}

#[derive(Template)]
#[template(path = "insights.html")]
struct Page {
    chrome: Chrome,
    d: InsightsView,
    discover: bool,
}

/// `GET /insights`.
pub(crate) async fn page(
    State(state): State<AppState>,
    user: SignedIn,
    Query(q): Query<InsightsQuery>,
) -> Result<Html<String>, UiError> {
    let d = data(&state, &q).await?;
    render(&Page { chrome: Chrome::new(&user, "/insights"), d, discover: q.discover.unwrap_or(false) })
}
