//! The demo's summary: what the simulated year did, measured by the same reports a person
//! runs (`cairn report kpis | programs | experiments | backtest | hypotheses`, the
//! `cairn-reports` functions) over the simulated days, beside the hidden truth the
//! company kept. No figure here is computed twice: every KPI, rate, interval and label is
//! the report's.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use cairn_measure::{Period, Ratio};
use cairn_reports::Query;
use cairn_reports::experiments::{ExperimentKind, Metric, Verdict};
use cairn_sim::{Effect, Truth};
use cairn_store::Store;
use cairn_workspace::Workspace;
use jiff::civil::Date;
use serde::Serialize;

/// One program's year.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ProgramYear {
    /// The program's id.
    pub program: String,
    /// Enrollments, the holdout included.
    pub enrolled: u64,
    /// Enrollments held out.
    pub held_out: u64,
    /// The holdout's configured share, in percent.
    pub holdout_share: f64,
    /// Messages sent, per channel.
    pub sent: BTreeMap<String, u64>,
    /// Tasks created.
    pub tasks: u64,
    /// Reach over its send steps (`cairn report programs`): opened and clicked.
    pub opened: u64,
    /// Clicked.
    pub clicked: u64,
    /// Surveys answered.
    pub answered: u64,
    /// Effect: goal reached among the treated enrollments whose window elapsed.
    pub goal_treated: Option<Arm>,
    /// And among the held out.
    pub goal_held_out: Option<Arm>,
    /// Treated minus held out, with its 95% interval (`cairn report experiments`).
    pub uplift: Option<Uplift>,
    /// A/B splits of its send steps: click rates and the verdict.
    pub splits: Vec<Split>,
}

/// Conversions in a group.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Arm {
    /// Measured members.
    pub n: u64,
    /// Converted.
    pub converted: u64,
}

/// A difference of rates with its interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Uplift {
    /// Treated rate − held-out rate, in percentage points.
    pub points: f64,
    /// The 95% interval's bounds, in points.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Benjamini–Hochberg adjusted p-value.
    pub adjusted_p: Option<f64>,
    /// The report's verdict.
    pub verdict: String,
}

/// An A/B split's result on clicks.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Split {
    /// The split step.
    pub step: String,
    /// Per arm: (arm, sent, clicked).
    pub arms: Vec<(String, u64, u64)>,
    /// The report's verdict.
    pub verdict: String,
}

/// Revenue KPIs of the simulated period (`cairn report kpis`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Kpis {
    /// ARR in cents on the day before the first simulated day.
    pub arr_start_cents: i64,
    /// On the last simulated day.
    pub arr_end_cents: i64,
    /// Net revenue retention, percent.
    pub nrr: Option<f64>,
    /// Gross revenue retention, percent.
    pub grr: Option<f64>,
    /// Logo churn, percent.
    pub logo_churn: Option<f64>,
    /// ARR of the accounts lost, cents.
    pub churned_arr_cents: i64,
    /// Accounts at the start, and lost.
    pub cohort_accounts: u64,
    /// Lost.
    pub churned_accounts: u64,
    /// New customers in the period.
    pub new_accounts: u64,
    /// Renewal rate of the lines ending in the period, percent.
    pub renewal_rate: Option<f64>,
}

/// A behaviour of the hidden truth beside what cairn's hypotheses report made of it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BehaviourFound {
    /// The truth's name for it.
    pub behaviour: String,
    /// Its event.
    pub event: String,
    /// What it really does.
    pub truth: Effect,
    /// How discovery labelled the event's best candidate (`positive indicator`, …), or
    /// `not tested`.
    pub label: String,
    /// The candidate: at least `threshold` times within `window_days` of the start.
    pub rule: Option<String>,
    /// Retention at the first renewal with and without it, percent.
    pub retention_with: Option<f64>,
    /// Without.
    pub retention_without: Option<f64>,
}

/// What the reports say about the simulated year.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Measured {
    /// Revenue KPIs.
    pub kpis: Kpis,
    /// The health score's backtest: AUC of overall health 90 days (the report's first
    /// horizon) before each renewal decided in the period.
    pub health_auc: Option<f64>,
    /// Days before renewal the AUC is measured at.
    pub health_auc_days_before: Option<i32>,
    /// The truth's behaviours and cairn's labels.
    pub behaviours: Vec<BehaviourFound>,
}

fn percent(r: Option<Ratio>) -> Option<f64> {
    r.map(|r| round2(100.0 * r.to_f64()))
}

/// Two decimals, so the summary prints and compares the same everywhere.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs the reports over `first..=last` (as of `last`) and fills each program's reach,
/// effect, uplift and splits into `programs`.
pub(super) async fn measure(
    store: &Store,
    ws: &Arc<Workspace>,
    truth: &Truth,
    first: Date,
    last: Date,
    programs: &mut [ProgramYear],
) -> Result<Measured> {
    let query = Query { period: Period::new(first, last)?, as_of: last, segment: None };
    let report = cairn_reports::revenue::kpis(store, Some(&**ws), &query, &Default::default()).await?;
    let k = &report.kpis;
    let kpis = Kpis {
        arr_start_cents: k.start_arr_cents,
        arr_end_cents: k.end_arr_cents,
        nrr: percent(k.nrr),
        grr: percent(k.grr),
        logo_churn: percent(k.logo_churn),
        churned_arr_cents: k.churned_arr_cents,
        cohort_accounts: k.cohort_accounts,
        churned_accounts: k.churned_accounts,
        new_accounts: k.new_accounts,
        renewal_rate: percent(report.renewal.rate),
    };

    let reach = cairn_reports::programs::programs(store, Some(&**ws), &query, None).await?;
    let experiments = cairn_reports::experiments::experiments(store, Some(&**ws), &query, None, 0.05).await?;
    for p in programs.iter_mut() {
        if let Some(r) = reach.programs.iter().find(|r| r.program == p.program) {
            p.opened = r.reach.iter().map(|row| row.opened).sum();
            p.clicked = r.reach.iter().map(|row| row.clicked).sum();
            p.answered = r.reach.iter().map(|row| row.answered).sum();
            if let Some(e) = &r.effect {
                p.goal_treated = Some(Arm { n: e.treated.measured, converted: e.treated.converted });
                p.goal_held_out = Some(Arm { n: e.held_out.measured, converted: e.held_out.converted });
            }
        }
        for e in experiments.experiments.iter().filter(|e| e.program == p.program) {
            match &e.kind {
                ExperimentKind::Holdout => {
                    let goal = e.metrics.iter().find(|m| m.metric == Metric::Goal);
                    let c = goal.and_then(|m| m.comparisons.first());
                    p.uplift = c.and_then(|c| {
                        let cmp = c.comparison.as_ref()?;
                        Some(Uplift {
                            points: round2(100.0 * cmp.difference),
                            low: round2(100.0 * cmp.difference_interval.low),
                            high: round2(100.0 * cmp.difference_interval.high),
                            adjusted_p: c.adjusted_p,
                            verdict: verdict(c.verdict, &c.verdict_text()),
                        })
                    });
                }
                ExperimentKind::Split { step } => {
                    let Some(m) = e.metrics.iter().find(|m| m.metric == Metric::Click) else { continue };
                    p.splits.push(Split {
                        step: step.clone(),
                        arms: m.arms.iter().map(|a| (a.arm.clone(), a.n, a.conversions)).collect(),
                        verdict: m.comparisons.first().map_or_else(String::new, |c| c.verdict_text()),
                    });
                }
            }
        }
    }

    let backtest = cairn_reports::backtest::backtest(store, Arc::clone(ws), &query).await?;
    let horizon = backtest.horizons.first();
    let health_auc = horizon.and_then(|h| h.overall.auc).map(|a| (a * 1000.0).round() / 1000.0);

    let request = cairn_reports::hypotheses::HypothesesText { discover: true, ..Default::default() }.resolve()?;
    let found = cairn_reports::hypotheses::hypotheses(store, ws, &query, &request).await?;
    let top = found.discovery.map(|d| d.top).unwrap_or_default();
    let behaviours = truth
        .behaviours
        .iter()
        .map(|b| {
            let c = top.iter().find(|c| c.event == b.event);
            BehaviourFound {
                behaviour: b.behaviour.to_string(),
                event: b.event.to_string(),
                truth: b.effect,
                label: c.map_or("not tested", |c| c.verdict.label.text()).to_string(),
                rule: c.map(|c| format!("{} ≥ {} within {} days", c.event, c.threshold, c.window_days)),
                retention_with: c.and_then(|c| percent(c.verdict.held.retention)),
                retention_without: c.and_then(|c| percent(c.verdict.not_held.retention)),
            }
        })
        .collect();
    Ok(Measured { kpis, health_auc, health_auc_days_before: horizon.map(|h| h.days_before), behaviours })
}

/// The verdict in words, the way `cairn report experiments` says it.
fn verdict(v: Verdict, text: &str) -> String {
    match v {
        Verdict::Better => "better than the holdout".to_string(),
        Verdict::Worse => "worse than the holdout".to_string(),
        _ => text.to_string(),
    }
}
