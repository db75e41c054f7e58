//! Correction for testing many hypotheses at once.

use crate::MeasureError;

/// Benjamini–Hochberg adjusted p-values, in the order given: sort ascending, take
/// `p(i) · m / i` for rank `i` of `m`, make it non-decreasing from the largest rank down
/// (each value the minimum of itself and every later one), cap at 1. Rejecting where
/// the adjusted value is at most q controls the false discovery rate at q.
pub fn benjamini_hochberg(p_values: &[f64]) -> Result<Vec<f64>, MeasureError> {
    if let Some(bad) = p_values.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(MeasureError::Input(format!("{bad} is not a p-value: p-values lie between 0 and 1")));
    }
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|a, b| p_values.get(*a).partial_cmp(&p_values.get(*b)).unwrap_or(std::cmp::Ordering::Equal));
    let mut adjusted = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank0, index) in order.iter().enumerate().rev() {
        let p = p_values.get(*index).copied().unwrap_or(1.0);
        running = running.min(p * m as f64 / (rank0 + 1) as f64);
        if let Some(slot) = adjusted.get_mut(*index) {
            *slot = running.min(1.0);
        }
    }
    Ok(adjusted)
}
