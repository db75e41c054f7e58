//! Quantiles of a distribution, for Time to Value.

use crate::MeasureError;
use serde::Serialize;

/// The `q` quantile (0 ≤ q ≤ 1) by linear interpolation between order statistics: with
/// the values sorted as x₀ ≤ … ≤ xₙ₋₁ and h = (n − 1)·q, the result is
/// `x⌊h⌋ + (h − ⌊h⌋)(x⌊h⌋₊₁ − x⌊h⌋)` (Hyndman & Fan type 7, the default of R, NumPy and
/// spreadsheets). `None` for no values.
pub fn quantile(values: &[f64], q: f64) -> Result<Option<f64>, MeasureError> {
    if !(0.0..=1.0).contains(&q) {
        return Err(MeasureError::Input(format!("quantile {q} is outside 0..=1")));
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(MeasureError::Input(format!("{bad} is not a number that can be ranked")));
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(quantile_of_sorted(&sorted, q))
}

fn quantile_of_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let h = (sorted.len().checked_sub(1)? as f64) * q;
    let low = h.floor();
    let below = *sorted.get(low as usize)?;
    let above = sorted.get(low as usize + 1).copied().unwrap_or(below);
    Some(below + (h - low) * (above - below))
}

/// Time to Value of a cohort: how long from the journey's anchor to the value milestone,
/// over the accounts that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimeToValue {
    /// Accounts that reached value (the ones measured).
    pub reached: u64,
    pub median: Option<f64>,
    pub p75: Option<f64>,
    pub p90: Option<f64>,
}

impl TimeToValue {
    /// The median, p75 and p90 of `durations` (days, say), by [`quantile`].
    pub fn of(durations: &[f64]) -> Result<TimeToValue, MeasureError> {
        Ok(TimeToValue {
            reached: durations.len() as u64,
            median: quantile(durations, 0.5)?,
            p75: quantile(durations, 0.75)?,
            p90: quantile(durations, 0.9)?,
        })
    }
}
