//! Rates and the difference between two of them: Wilson score intervals, the
//! two-proportion z-test and Fisher's exact test.

use super::{two_sided_normal_p, z_critical};
use crate::MeasureError;
use serde::Serialize;
use statrs::function::factorial::ln_binomial;

/// One arm of a comparison: `conversions` out of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Arm {
    pub n: u64,
    pub conversions: u64,
}

impl Arm {
    /// Refuses more conversions than members.
    pub fn new(n: u64, conversions: u64) -> Result<Arm, MeasureError> {
        if conversions > n {
            return Err(MeasureError::Input(format!(
                "an arm cannot have {conversions} conversions out of {n} members: conversions are counted among members"
            )));
        }
        Ok(Arm { n, conversions })
    }

    /// conversions / n; `None` for an empty arm.
    pub fn rate(&self) -> Option<f64> {
        (self.n > 0).then(|| self.conversions as f64 / self.n as f64)
    }
}

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The Wilson score interval of a rate at `confidence` (0.95 for 95%):
/// `(x + z²/2) / (n + z²) ± z / (n + z²) · √(x(n − x)/n + z²/4)`. Unlike the normal
/// approximation it stays within [0, 1] and behaves at 0 and n successes. `None` for
/// an empty arm.
pub fn wilson(arm: Arm, confidence: f64) -> Option<Interval> {
    if arm.n == 0 {
        return None;
    }
    let (x, n) = (arm.conversions as f64, arm.n as f64);
    let z = z_critical(confidence);
    let z2 = z * z;
    let centre = (x + z2 / 2.0) / (n + z2);
    let half = z / (n + z2) * (x * (n - x) / n + z2 / 4.0).sqrt();
    Some(Interval { low: (centre - half).max(0.0), high: (centre + half).min(1.0) })
}

/// Which test produced a comparison's p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    TwoProportionZ,
    FisherExact,
}

/// Arm `b` compared with arm `a` (the control).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    pub test: Test,
    /// rate(b) − rate(a).
    pub difference: f64,
    /// 95% Wald interval of the difference, `± z · √(pa(1−pa)/na + pb(1−pb)/nb)`.
    pub difference_interval: Interval,
    /// The z statistic with the pooled standard error (the z-test only).
    pub z: Option<f64>,
    /// Two-sided.
    pub p_value: f64,
}

/// The two-proportion z-test of `b` against `a`: `z = (pb − pa) / √(p(1−p)(1/na + 1/nb))`
/// with the pooled rate `p`, two-sided p-value from the normal distribution. Both rates 0
/// or both 1 leave nothing to test: z 0, p 1.
pub fn two_proportion_z_test(a: Arm, b: Arm) -> Result<Comparison, MeasureError> {
    let (pa, pb) = rates(a, b)?;
    let (na, nb) = (a.n as f64, b.n as f64);
    let pooled = (a.conversions + b.conversions) as f64 / (na + nb);
    let se0 = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    let difference = pb - pa;
    let (z, p_value) = if se0 > 0.0 { (difference / se0, two_sided_normal_p(difference / se0)) } else { (0.0, 1.0) };
    Ok(Comparison { test: Test::TwoProportionZ, difference, difference_interval: wald(a, b)?, z: Some(z), p_value })
}

/// Fisher's exact test on the 2×2 table (conversions, non-conversions) × (a, b): the sum
/// of the hypergeometric probabilities of every table with the same margins that is no
/// more likely than the observed one (within a relative 1e-7, as SciPy does), so the
/// two-sided p-value.
pub fn fisher_exact(a: Arm, b: Arm) -> Result<Comparison, MeasureError> {
    let (pa, pb) = rates(a, b)?;
    let p_value = fisher_two_sided(a.conversions, a.n - a.conversions, b.conversions, b.n - b.conversions);
    Ok(Comparison {
        test: Test::FisherExact,
        difference: pb - pa,
        difference_interval: newcombe(a, b)?,
        z: None,
        p_value,
    })
}

/// The z-test, or Fisher's exact test when any expected cell count of the 2×2 table
/// (row total × column total / n) is below 5.
pub fn compare(a: Arm, b: Arm) -> Result<Comparison, MeasureError> {
    rates(a, b)?;
    let total = (a.n + b.n) as f64;
    let converted = (a.conversions + b.conversions) as f64;
    let small = [a.n as f64, b.n as f64]
        .iter()
        .any(|row| row * converted / total < 5.0 || row * (total - converted) / total < 5.0);
    if small { fisher_exact(a, b) } else { two_proportion_z_test(a, b) }
}

fn rates(a: Arm, b: Arm) -> Result<(f64, f64), MeasureError> {
    match (a.rate(), b.rate()) {
        (Some(pa), Some(pb)) => Ok((pa, pb)),
        _ => Err(MeasureError::Input(
            "an arm has no members, so there is no rate to compare yet: wait for enrollments".to_string(),
        )),
    }
}

/// Newcombe's hybrid score interval of `b − a` (from the two Wilson intervals): used with
/// Fisher's test, where the samples are small and the Wald interval can leave [−1, 1].
fn newcombe(a: Arm, b: Arm) -> Result<Interval, MeasureError> {
    let (pa, pb) = rates(a, b)?;
    let (Some(ia), Some(ib)) = (wilson(a, 0.95), wilson(b, 0.95)) else {
        return Err(MeasureError::Input("an arm has no members: wait for enrollments".to_string()));
    };
    let d = pb - pa;
    Ok(Interval {
        low: d - ((pb - ib.low).powi(2) + (ia.high - pa).powi(2)).sqrt(),
        high: d + ((ib.high - pb).powi(2) + (pa - ia.low).powi(2)).sqrt(),
    })
}

fn wald(a: Arm, b: Arm) -> Result<Interval, MeasureError> {
    let (pa, pb) = rates(a, b)?;
    let se = (pa * (1.0 - pa) / a.n as f64 + pb * (1.0 - pb) / b.n as f64).sqrt();
    let z = z_critical(0.95);
    Ok(Interval { low: pb - pa - z * se, high: pb - pa + z * se })
}

/// Two-sided Fisher p-value of the table `[[x, y], [u, v]]`.
fn fisher_two_sided(x: u64, y: u64, u: u64, v: u64) -> f64 {
    let (row1, row2, col1) = (x + y, u + v, x + u);
    let n = row1 + row2;
    // ln P(X = k) for the top-left cell under fixed margins (hypergeometric).
    let ln_p = |k: u64| ln_binomial(row1, k) + ln_binomial(row2, col1 - k) - ln_binomial(n, col1);
    let observed = ln_p(x);
    let threshold = observed + (1.0f64 + 1e-7).ln();
    let low = col1.saturating_sub(row2);
    let high = row1.min(col1);
    let p: f64 = (low..=high).map(ln_p).filter(|l| *l <= threshold).map(f64::exp).sum();
    p.min(1.0)
}
