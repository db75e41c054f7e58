//! Experiments: every A/B split (a send step with two or more variants) and every holdout
//! of the programs' enrollments made in a period (docs/metrics.md, "Experiments").
//!
//! Per arm: n, conversions and the rate with a Wilson interval. Each arm is compared with
//! the control (a split's first configured variant; a holdout's held-out group): the
//! difference with its 95% interval and a two-sided p-value from the two-proportion z-test,
//! or Fisher's exact test when an expected cell count is below 5 (the report says which,
//! `cairn_measure::stats::compare`). Metrics: a split's goal conversion (elapsed windows
//! only) and click rate on its step; a holdout's goal conversion and retention at the next
//! renewal (accounts). Then, in this order:
//!
//! 1. the **sample-ratio check** of every split and holdout (chi-square of the arms' sizes
//!    against the configured shares): p < 0.001 flags it broken and withholds its verdicts;
//! 2. **Benjamini–Hochberg** over every p-value in the report, adjusted beside raw;
//! 3. **power**: when either arm has fewer members than 80% power needs to detect the
//!    minimum detectable effect (absolute, default 5 points) at the control's observed
//!    rate, the verdict is "not enough data yet" with the size needed;
//! 4. otherwise the verdict: better or worse at adjusted p < 0.05, else no detectable
//!    difference.

use std::collections::BTreeMap;

use cairn_measure::Ratio;
use cairn_measure::at_renewal::RetentionAtRenewal;
use cairn_measure::stats::{
    Arm, Comparison, Interval, SampleRatio, benjamini_hochberg, compare, sample_ratio_mismatch, sample_size_per_arm,
    wilson,
};
use cairn_store::{Enrollment, Store};
use cairn_workspace::{Program, Workspace};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use crate::programs::{Activity, CONFIDENCE, ProgramActivity, goal_outcome, roi, send_steps, sent_variant};
use crate::{Query, ReportError, Result};

/// The significance level of every verdict (on Benjamini–Hochberg adjusted p-values).
pub const ALPHA: f64 = 0.05;
/// The power the sample size is computed for.
pub const POWER: f64 = 0.8;
/// The minimum detectable effect when none is given: 5 percentage points, absolute.
pub const DEFAULT_MDE: f64 = 0.05;

/// `cairn report experiments`.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentsReport {
    pub period: cairn_measure::Period,
    pub as_of: Date,
    /// The minimum detectable effect (absolute) the sample sizes are computed for.
    pub mde: f64,
    pub alpha: f64,
    pub power: f64,
    /// How many p-values Benjamini–Hochberg corrected together.
    pub tests: u64,
    pub experiments: Vec<Experiment>,
}

/// A split or a holdout.
#[derive(Debug, Clone, Serialize)]
pub struct Experiment {
    pub program: String,
    pub kind: ExperimentKind,
    /// The arms, control first, with their configured shares (none: unknown).
    pub arms: Vec<ArmSize>,
    /// The sample-ratio check; none when the shares are unknown or no arm has members.
    pub sample_ratio: Option<SampleRatio>,
    /// Why verdicts are withheld for the whole experiment, if they are.
    pub withheld: Option<String>,
    pub metrics: Vec<MetricResult>,
}

/// What is split.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ExperimentKind {
    /// Variants of a send step, among the enrollments it was sent to.
    Split { step: String },
    /// Treated against held out, among all enrollments.
    Holdout,
}

/// An arm's size and configured share.
#[derive(Debug, Clone, Serialize)]
pub struct ArmSize {
    pub arm: String,
    /// In percent, as configured.
    pub share: Option<f64>,
    pub n: u64,
}

/// What is measured in each arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Goal met within its window, among enrollments whose window elapsed.
    Goal,
    /// Clicked on the split step, among enrollments it was sent to.
    Click,
    /// Renewed at the next renewal after enrollment, among accounts whose renewal is decided.
    Retention,
}

impl Metric {
    pub fn label(self) -> &'static str {
        match self {
            Metric::Goal => "goal",
            Metric::Click => "click",
            Metric::Retention => "retention at renewal",
        }
    }
}

/// One metric of an experiment.
#[derive(Debug, Clone, Serialize)]
pub struct MetricResult {
    pub metric: Metric,
    pub arms: Vec<ArmOutcome>,
    /// Each arm after the first against the first.
    pub comparisons: Vec<ArmComparison>,
    /// Members left out of the metric (goal windows still open, renewals not decided).
    pub left_out: u64,
    /// Retention only: the NRR at renewal of each arm, in the arms' order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nrr: Vec<Option<Ratio>>,
}

/// An arm's rate.
#[derive(Debug, Clone, Serialize)]
pub struct ArmOutcome {
    pub arm: String,
    pub n: u64,
    pub conversions: u64,
    pub rate: Option<f64>,
    /// Wilson score interval at 95%.
    pub interval: Option<Interval>,
}

/// An arm against the control.
#[derive(Debug, Clone, Serialize)]
pub struct ArmComparison {
    pub control: String,
    pub treatment: String,
    /// The test, difference (treatment − control) with its interval and p-value; none when
    /// an arm is empty.
    pub comparison: Option<Comparison>,
    /// Benjamini–Hochberg adjusted p-value across the report.
    pub adjusted_p: Option<f64>,
    /// Members per arm needed for 80% power at the control's rate and the MDE; none when
    /// the control has no rate yet (or the MDE leaves no rate between 0 and 1).
    pub needed_per_arm: Option<u64>,
    pub verdict: Verdict,
}

/// What an arm comparison says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The treatment's rate is higher, adjusted p < α.
    Better,
    /// The treatment's rate is lower, adjusted p < α.
    Worse,
    NoDetectableDifference,
    /// Too few members for 80% power at the MDE (or an empty arm): no verdict.
    NotEnoughDataYet,
    /// The sample-ratio check failed or could not be made: no verdict.
    Withheld,
}

impl ArmComparison {
    /// The verdict for people: "B better", "no detectable difference", ….
    pub fn verdict_text(&self) -> String {
        match self.verdict {
            Verdict::Better => format!("{} better", self.treatment),
            Verdict::Worse => format!("{} worse", self.treatment),
            Verdict::NoDetectableDifference => "no detectable difference".to_string(),
            Verdict::NotEnoughDataYet => match self.needed_per_arm {
                Some(n) => format!("not enough data yet (needs {n} per arm)"),
                None => "not enough data yet".to_string(),
            },
            Verdict::Withheld => "withheld".to_string(),
        }
    }
}

/// Every split and holdout of the programs' enrollments made in the query's period (of
/// `program` only, when given). `mde`: the minimum detectable effect, absolute (0.05).
pub async fn experiments(
    store: &Store,
    workspace: Option<&Workspace>,
    query: &Query,
    program: Option<&str>,
    mde: f64,
) -> Result<ExperimentsReport> {
    if !(mde.is_finite() && mde > 0.0 && mde < 1.0) {
        return Err(ReportError::Invalid(format!(
            "a minimum detectable effect of {} percentage points is not between 0 and 100: give e.g. 5 (--mde 5, mde=5)",
            mde * 100.0
        )));
    }
    let activity = Activity::load(store, workspace, query, program).await?;
    let mut experiments = Vec::new();
    for (id, data) in &activity.programs {
        let definition = workspace.and_then(|ws| ws.programs().iter().find(|p| p.id.as_str() == id));
        experiments.extend(splits(id, data, definition, activity.as_of_end));
        if let Some(h) = holdout(id, data, definition, &activity, query.as_of) {
            experiments.push(h);
        }
    }
    let tests = judge(&mut experiments, mde)?;
    Ok(ExperimentsReport {
        period: query.period,
        as_of: query.as_of,
        mde,
        alpha: ALPHA,
        power: POWER,
        tests,
        experiments,
    })
}

fn outcome(arm: &str, n: u64, conversions: u64) -> ArmOutcome {
    let a = Arm { n, conversions };
    ArmOutcome { arm: arm.to_string(), n, conversions, rate: a.rate(), interval: wilson(a, CONFIDENCE) }
}

/// One metric over arms of members, each member `None` (left out) or converted or not.
fn metric(kind: Metric, arms: &[(String, Vec<Option<bool>>)]) -> MetricResult {
    let mut left_out = 0;
    let outcomes: Vec<ArmOutcome> = arms
        .iter()
        .map(|(name, members)| {
            let measured: Vec<bool> = members.iter().filter_map(|m| *m).collect();
            left_out += (members.len() - measured.len()) as u64;
            outcome(name, measured.len() as u64, measured.iter().filter(|m| **m).count() as u64)
        })
        .collect();
    MetricResult { metric: kind, arms: outcomes, comparisons: Vec::new(), left_out, nrr: Vec::new() }
}

fn splits(id: &str, data: &ProgramActivity, definition: Option<&Program>, as_of_end: Timestamp) -> Vec<Experiment> {
    // The variants each step was sent with, from the ledger; the configured ones first.
    let mut steps: BTreeMap<String, Vec<(String, Option<f64>)>> = BTreeMap::new();
    for send in definition.map(send_steps).unwrap_or_default() {
        if send.variants.len() >= 2 {
            steps.insert(
                send.id.to_string(),
                send.variants.iter().map(|v| (v.template.to_string(), Some(v.percent))).collect(),
            );
        }
    }
    let mut sent: BTreeMap<(String, String), Vec<&Enrollment>> = BTreeMap::new();
    let by_id: BTreeMap<i64, &Enrollment> = data.enrollments.iter().map(|(e, _)| (e.id, e)).collect();
    for ((enrollment, step), send) in &data.sends {
        let (Some(variant), Some(e)) = (sent_variant(send), by_id.get(enrollment)) else { continue };
        if send.entry.outcome != "sent" || e.holdout {
            continue;
        }
        sent.entry((step.clone(), variant)).or_default().push(e);
    }
    for (step, variant) in sent.keys() {
        let arms = steps.entry(step.clone()).or_default();
        if !arms.iter().any(|(v, _)| v == variant) {
            arms.push((variant.clone(), None));
        }
    }
    let goal = definition.and_then(|p| p.goal.as_ref());
    let mut out = Vec::new();
    for (step, arms) in steps {
        if arms.len() < 2 {
            continue;
        }
        let members: Vec<(String, Vec<&Enrollment>)> = arms
            .iter()
            .map(|(v, _)| {
                let mut m = sent.get(&(step.clone(), v.clone())).cloned().unwrap_or_default();
                m.sort_by_key(|e| e.id);
                (v.clone(), m)
            })
            .collect();
        let mut metrics = Vec::new();
        if let Some(goal) = goal {
            let arms: Vec<(String, Vec<Option<bool>>)> = members
                .iter()
                .map(|(v, m)| (v.clone(), m.iter().map(|e| goal_outcome(e, goal.within, as_of_end)).collect()))
                .collect();
            metrics.push(metric(Metric::Goal, &arms));
        }
        let clicks: Vec<(String, Vec<Option<bool>>)> = members
            .iter()
            .map(|(v, m)| {
                let clicked = |e: &&Enrollment| {
                    data.engaged.get(&(e.id, step.clone())).is_some_and(|kinds| kinds.contains("clicked"))
                };
                (v.clone(), m.iter().map(|e| Some(clicked(e))).collect())
            })
            .collect();
        metrics.push(metric(Metric::Click, &clicks));
        let sizes: Vec<ArmSize> = arms
            .iter()
            .zip(&members)
            .map(|((arm, share), (_, m))| ArmSize { arm: arm.clone(), share: *share, n: m.len() as u64 })
            .collect();
        out.push(experiment(id, ExperimentKind::Split { step }, sizes, metrics));
    }
    out
}

fn holdout(
    id: &str,
    data: &ProgramActivity,
    definition: Option<&Program>,
    activity: &Activity,
    as_of: Date,
) -> Option<Experiment> {
    let configured = definition.map(|p| p.holdout_percent).filter(|h| *h > 0.0);
    let held = data.enrollments.iter().filter(|(e, _)| e.holdout).count() as u64;
    if configured.is_none() && held == 0 {
        return None;
    }
    let treated = data.enrollments.len() as u64 - held;
    let sizes = vec![
        ArmSize { arm: "held out".into(), share: configured, n: held },
        ArmSize { arm: "treated".into(), share: configured.map(|h| 100.0 - h), n: treated },
    ];
    let mut metrics = Vec::new();
    if let Some(goal) = definition.and_then(|p| p.goal.as_ref()) {
        let arm = |holdout: bool| -> Vec<Option<bool>> {
            data.enrollments
                .iter()
                .filter(|(e, _)| e.holdout == holdout)
                .map(|(e, _)| goal_outcome(e, goal.within, activity.as_of_end))
                .collect()
        };
        metrics.push(metric(Metric::Goal, &[("held out".into(), arm(true)), ("treated".into(), arm(false))]));
    }
    let r = roi(data, &activity.ledger, as_of);
    let retention = |g: &RetentionAtRenewal| {
        let mut members = vec![Some(true); g.renewed as usize];
        members.extend(vec![Some(false); (g.decided - g.renewed) as usize]);
        members.extend(vec![None; g.pending as usize]);
        members
    };
    let mut m = metric(
        Metric::Retention,
        &[("held out".into(), retention(&r.held_out)), ("treated".into(), retention(&r.enrolled))],
    );
    m.nrr = vec![r.held_out.nrr, r.enrolled.nrr];
    metrics.push(m);
    Some(experiment(id, ExperimentKind::Holdout, sizes, metrics))
}

fn experiment(program: &str, kind: ExperimentKind, arms: Vec<ArmSize>, metrics: Vec<MetricResult>) -> Experiment {
    let shares: Option<Vec<f64>> = arms.iter().map(|a| a.share).collect();
    let observed: Vec<u64> = arms.iter().map(|a| a.n).collect();
    let (sample_ratio, withheld) = match shares {
        None => (None, Some("the configured shares are unknown (an arm or the program is not in the workspace), so the split cannot be checked".to_string())),
        Some(shares) => match sample_ratio_mismatch(&observed, &shares) {
            Ok(s) if s.mismatch => {
                let why = format!("sample ratio mismatch: p = {:.2e} < 0.001, the split is broken", s.p_value);
                (Some(s), Some(why))
            }
            Ok(s) => (Some(s), None),
            Err(_) => (None, None),
        },
    };
    Experiment { program: program.to_string(), kind, arms, sample_ratio, withheld, metrics }
}

/// Compares every arm with the control, corrects the p-values together and gives each
/// comparison its verdict. How many p-values were corrected.
fn judge(experiments: &mut [Experiment], mde: f64) -> Result<u64> {
    let mut p_values = Vec::new();
    for x in experiments.iter_mut() {
        for m in &mut x.metrics {
            let Some((control, rest)) = m.arms.split_first() else { continue };
            for arm in rest {
                let comparison = compare(
                    Arm { n: control.n, conversions: control.conversions },
                    Arm { n: arm.n, conversions: arm.conversions },
                )
                .ok();
                if let Some(c) = &comparison {
                    p_values.push(c.p_value);
                }
                let needed = control.rate.and_then(|base| {
                    // A rise of the MDE, or a fall where a rise would pass 100%.
                    let step = if base + mde < 1.0 { mde } else { -mde };
                    sample_size_per_arm(base, step, ALPHA, POWER).ok()
                });
                m.comparisons.push(ArmComparison {
                    control: control.arm.clone(),
                    treatment: arm.arm.clone(),
                    comparison,
                    adjusted_p: None,
                    needed_per_arm: needed,
                    verdict: Verdict::Withheld,
                });
            }
        }
    }
    let adjusted = benjamini_hochberg(&p_values)?;
    let mut next = adjusted.into_iter();
    for x in experiments.iter_mut() {
        let withheld = x.withheld.is_some();
        for m in &mut x.metrics {
            let (control_n, sizes): (u64, Vec<u64>) =
                (m.arms.first().map_or(0, |a| a.n), m.arms.iter().skip(1).map(|a| a.n).collect());
            for (c, treatment_n) in m.comparisons.iter_mut().zip(sizes) {
                if let Some(comparison) = &c.comparison {
                    c.adjusted_p = next.next();
                    let enough = c.needed_per_arm.is_some_and(|n| control_n.min(treatment_n) >= n);
                    c.verdict = match (withheld, enough, c.adjusted_p) {
                        (true, _, _) => Verdict::Withheld,
                        (false, false, _) => Verdict::NotEnoughDataYet,
                        (false, true, Some(p)) if p < ALPHA && comparison.difference > 0.0 => Verdict::Better,
                        (false, true, Some(p)) if p < ALPHA && comparison.difference < 0.0 => Verdict::Worse,
                        (false, true, _) => Verdict::NoDetectableDifference,
                    };
                } else {
                    c.verdict = if withheld { Verdict::Withheld } else { Verdict::NotEnoughDataYet };
                }
            }
        }
    }
    Ok(p_values.len() as u64)
}
