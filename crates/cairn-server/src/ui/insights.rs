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
use crate::cached_reports as cached;
use crate::error::ApiError;
use crate::report_cache::{Freshness, Wait};

/// The insights page's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InsightsView {
    pub hypotheses: HypothesesReport,
    /// None when the workspace defines no health score.
    pub backtest: Option<Backtest>,
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
            .iter()
            .flat_map(|b| b.horizons.iter())
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

/// The page's query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct InsightsQuery {
    pub discover: Option<bool>,
}

/// The hypotheses (and discovery when asked) and the backtest, over the last complete
/// year, from the report cache (they replay the log: a page shows the last complete
/// figures, or "computing" the first time).
pub(crate) async fn data(
    state: &AppState,
    q: &InsightsQuery,
    wait: Wait,
) -> Result<(Option<InsightsView>, Freshness), ApiError> {
    let ws = crate::api::live_workspace(state).await.ok_or_else(|| {
        ApiError::NotFound("no workspace is loaded: start the server with `cairn serve --workspace DIR`".into())
    })?;
    let today = state.clock.now().to_zoned(ws.time_zone().clone()).date();
    let discover = q.discover.unwrap_or(false);
    let query = cairn_reports::QueryText::default().resolve(PeriodKind::Year, today)?;
    let request = HypothesesText { discover, ..Default::default() }.resolve()?;
    // Without a health score there is nothing to backtest: the page says so.
    let scored = ws.health().is_some();
    let (hypotheses, backtest) = tokio::join!(cached::hypotheses(state, &ws, &query, &request, wait), async {
        if scored { Some(cached::backtest(state, &ws, &query, wait).await) } else { None }
    });
    let mut fresh = Freshness::default();
    let hypotheses = fresh.take(hypotheses?);
    let backtest = match backtest {
        Some(b) => fresh.take(b?).map(Some),
        None => Some(None),
    };
    let view = hypotheses
        .zip(backtest)
        .map(|(h, b)| InsightsView { hypotheses: (*h).clone(), backtest: b.map(|b| (*b).clone()) });
    Ok((view, fresh))
}

#[derive(Template)]
#[template(path = "insights.html")]
struct Page {
    chrome: Chrome,
    d: Option<InsightsView>,
    fresh: Freshness,
    discover: bool,
}

/// `GET /insights`.
pub(crate) async fn page(
    State(state): State<AppState>,
    user: SignedIn,
    Query(q): Query<InsightsQuery>,
) -> Result<Html<String>, UiError> {
    let (d, fresh) = data(&state, &q, Wait::PAGE).await?;
    render(&Page { chrome: Chrome::new(&user, "/insights"), d, fresh, discover: q.discover.unwrap_or(false) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn chrome() -> Chrome {
        let user = SignedIn { user_id: 1, email: "ops@example.com".into(), role: Role::Admin, csrf: "t".into() };
        Chrome::new(&user, "/insights")
    }

    #[test]
    fn the_first_visit_says_computing_without_reloading_itself() {
        let fresh = Freshness { as_of: None, updating: false, computing: true };
        let html = Page { chrome: chrome(), d: None, fresh, discover: false }.render().expect("renders");
        assert!(html.contains("Computing these figures for the first time"), "{html}");
        // app.js sees the notice and says when the figures are there; the page never
        // reloads itself (axe counts a timed refresh as a critical barrier).
        assert!(html.contains("id=freshness data-computing"), "{html}");
        assert!(!html.contains("http-equiv=refresh"), "{html}");
        assert!(html.contains("<h1>Insights</h1>") && !html.contains("Health backtest"), "{html}");
    }

    #[test]
    fn stale_figures_say_when_they_are_from_and_that_newer_ones_come() {
        let at: jiff::Timestamp = "2026-03-01T12:34:56Z".parse().expect("ts");
        let fresh = Freshness { as_of: Some(at), updating: true, computing: false };
        let html = Page { chrome: chrome(), d: None, fresh, discover: false }.render().expect("renders");
        assert!(html.contains("Figures as of 2026-03-01 12:34:56 UTC; newer data has arrived"), "{html}");
        assert!(!html.contains("http-equiv=refresh"), "{html}");
    }
}
