//! Survival curves: Kaplan–Meier with Greenwood's variance, and the log-rank test of two
//! curves. Time is any non-negative number (days from the anchor in cairn's reports);
//! an observation ends either in the event (churn) or censored (still a customer on the
//! report's as-of day).

use crate::MeasureError;
use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// One subject: followed for `time`, ending in the event or censored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Observation {
    pub time: f64,
    pub event: bool,
}

/// One step of a Kaplan–Meier curve, at a distinct observed time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Step {
    pub time: f64,
    /// Subjects still followed just before `time`.
    pub at_risk: u64,
    pub events: u64,
    pub censored: u64,
    /// S(time) = Π over steps so far of (1 − events / at_risk).
    pub survival: f64,
    /// Greenwood: S(t)² · Σ events / (at_risk · (at_risk − events)); `None` once the
    /// curve has reached zero (the sum is infinite there).
    pub variance: Option<f64>,
}

/// A Kaplan–Meier curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KaplanMeier {
    pub subjects: u64,
    pub events: u64,
    pub steps: Vec<Step>,
}

impl KaplanMeier {
    /// S(t): the survival of the last step at or before `t` (1 before the first).
    pub fn survival_at(&self, t: f64) -> f64 {
        self.steps.iter().take_while(|s| s.time <= t).last().map_or(1.0, |s| s.survival)
    }

    /// The first time at which the curve is at or below one half; `None` while more than
    /// half survive.
    pub fn median(&self) -> Option<f64> {
        self.steps.iter().find(|s| s.survival <= 0.5).map(|s| s.time)
    }
}

/// The Kaplan–Meier product-limit estimate. At a time where events and censoring
/// coincide, the censored subjects count as at risk for those events (the usual
/// convention).
pub fn kaplan_meier(observations: &[Observation]) -> Result<KaplanMeier, MeasureError> {
    let sorted = sorted_checked(observations)?;
    let mut steps = Vec::new();
    let mut at_risk = sorted.len() as u64;
    let mut survival = 1.0f64;
    let mut greenwood = 0.0f64;
    let mut i = 0;
    while let Some(first) = sorted.get(i) {
        let time = first.time;
        let same = sorted.get(i..).map_or(0, |rest| rest.iter().take_while(|o| o.time == time).count());
        let group = sorted.get(i..i + same).unwrap_or(&[]);
        let events = group.iter().filter(|o| o.event).count() as u64;
        let censored = same as u64 - events;
        if events > 0 {
            survival *= 1.0 - events as f64 / at_risk as f64;
            if at_risk > events {
                greenwood += events as f64 / (at_risk as f64 * (at_risk - events) as f64);
            } else {
                greenwood = f64::INFINITY;
            }
        }
        let variance = greenwood.is_finite().then_some(survival * survival * greenwood);
        steps.push(Step { time, at_risk, events, censored, survival, variance });
        at_risk -= same as u64;
        i += same;
    }
    Ok(KaplanMeier { subjects: sorted.len() as u64, events: sorted.iter().filter(|o| o.event).count() as u64, steps })
}

/// The log-rank test of two groups.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LogRank {
    /// Events observed in the first group.
    pub observed_a: f64,
    /// Events expected in the first group if both groups shared one survival curve.
    pub expected_a: f64,
    /// (observed_a − expected_a)² / variance, chi-square on 1 degree of freedom.
    pub chi_square: f64,
    pub p_value: f64,
}

/// The log-rank (Mantel–Cox) test: at each distinct event time, with `n` at risk of
/// whom `na` in group a and `d` events, group a expects `d · na / n` events with
/// hypergeometric variance `d · (na/n) · (1 − na/n) · (n − d) / (n − 1)`.
pub fn log_rank(a: &[Observation], b: &[Observation]) -> Result<LogRank, MeasureError> {
    let a = sorted_checked(a)?;
    let b = sorted_checked(b)?;
    let mut times: Vec<f64> = a.iter().chain(&b).filter(|o| o.event).map(|o| o.time).collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let (mut observed, mut expected, mut variance) = (0.0f64, 0.0f64, 0.0f64);
    for t in times {
        let at_risk = |g: &[Observation]| g.iter().filter(|o| o.time >= t).count() as f64;
        let died = |g: &[Observation]| g.iter().filter(|o| o.time == t && o.event).count() as f64;
        let (na, nb, da, db) = (at_risk(&a), at_risk(&b), died(&a), died(&b));
        let (n, d) = (na + nb, da + db);
        observed += da;
        expected += d * na / n;
        if n > 1.0 {
            variance += d * (na / n) * (1.0 - na / n) * (n - d) / (n - 1.0);
        }
    }
    if variance <= 0.0 {
        return Err(MeasureError::Input(
            "the log-rank test needs events while both groups are at risk; there are none yet".to_string(),
        ));
    }
    let chi_square = (observed - expected).powi(2) / variance;
    let p_value = ChiSquared::new(1.0)
        .map(|c| c.sf(chi_square))
        .map_err(|e| MeasureError::Input(format!("chi-square with 1 degree of freedom: {e}")))?;
    Ok(LogRank { observed_a: observed, expected_a: expected, chi_square, p_value })
}

fn sorted_checked(observations: &[Observation]) -> Result<Vec<Observation>, MeasureError> {
    if let Some(bad) = observations.iter().find(|o| !(o.time.is_finite() && o.time >= 0.0)) {
        return Err(MeasureError::Input(format!(
            "a survival time of {} is not a non-negative number of days",
            bad.time
        )));
    }
    let mut sorted = observations.to_vec();
    sorted.sort_by(|x, y| x.time.total_cmp(&y.time));
    Ok(sorted)
}
