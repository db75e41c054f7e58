//! The sample-ratio-mismatch check: did an experiment's split come out in the shares it
//! was configured with? A split that did not (a bug in assignment, arms that drop
//! members unevenly) makes every comparison of its arms untrustworthy.

use crate::MeasureError;
use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Below this p-value the split is flagged as broken and its verdict withheld, as
/// experiment platforms do (a strict level, because the check runs on every experiment).
pub const SRM_ALPHA: f64 = 0.001;

/// The chi-square goodness-of-fit of the observed arm sizes against the configured shares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleRatio {
    pub observed: Vec<u64>,
    /// The counts the shares predict: total × share / Σ shares.
    pub expected: Vec<f64>,
    pub chi_square: f64,
    pub degrees_of_freedom: u64,
    pub p_value: f64,
    /// p_value < [`SRM_ALPHA`].
    pub mismatch: bool,
}

/// Pearson's chi-square `Σ (observed − expected)² / expected` on `k − 1` degrees of
/// freedom. `shares` are relative weights (50/50, 0.9/0.1, 1:1:2), one per arm.
pub fn sample_ratio_mismatch(observed: &[u64], shares: &[f64]) -> Result<SampleRatio, MeasureError> {
    if observed.len() != shares.len() || observed.len() < 2 {
        return Err(MeasureError::Input(format!(
            "the sample-ratio check needs one configured share per arm and at least two arms; got {} counts and {} shares",
            observed.len(),
            shares.len()
        )));
    }
    if let Some(bad) = shares.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(MeasureError::Input(format!(
            "an arm's configured share is {bad}; shares must be positive numbers"
        )));
    }
    let total: u64 = observed.iter().sum();
    if total == 0 {
        return Err(MeasureError::Input("no arm has any member yet, so there is no split to check".to_string()));
    }
    let weight: f64 = shares.iter().sum();
    let expected: Vec<f64> = shares.iter().map(|s| total as f64 * s / weight).collect();
    let chi_square: f64 = observed.iter().zip(&expected).map(|(o, e)| (*o as f64 - e).powi(2) / e).sum();
    let degrees_of_freedom = observed.len() as u64 - 1;
    let distribution = ChiSquared::new(degrees_of_freedom as f64)
        .map_err(|e| MeasureError::Input(format!("chi-square with {degrees_of_freedom} degrees of freedom: {e}")))?;
    let p_value = distribution.sf(chi_square);
    Ok(SampleRatio {
        observed: observed.to_vec(),
        expected,
        chi_square,
        degrees_of_freedom,
        p_value,
        mismatch: p_value < SRM_ALPHA,
    })
}
