//! How many members an experiment needs before its verdict can mean anything.

use super::z_critical;
use crate::MeasureError;
use statrs::distribution::ContinuousCDF;

/// Members needed in each of two equal arms to detect a change of `mde` (absolute, so
/// 0.05 for 10% → 15%) from `base_rate` with a two-sided test at `alpha` and the given
/// `power` (0.8 for 80%); the normal-approximation formula without continuity correction
/// (Fleiss):
///
/// `n = ( z(1−α/2) · √(2 p̄ (1 − p̄)) + z(power) · √(p1 (1 − p1) + p2 (1 − p2)) )² / mde²`,
/// `p2 = p1 + mde`, `p̄ = (p1 + p2) / 2`, rounded up.
pub fn sample_size_per_arm(base_rate: f64, mde: f64, alpha: f64, power: f64) -> Result<u64, MeasureError> {
    let p1 = base_rate;
    let p2 = base_rate + mde;
    let open_unit = |x: f64| x > 0.0 && x < 1.0;
    if !(open_unit(p1) && open_unit(p2) && mde != 0.0) {
        return Err(MeasureError::Input(format!(
            "a base rate of {base_rate} and a minimum detectable effect of {mde} do not give two different rates strictly between 0 and 1"
        )));
    }
    if !(open_unit(alpha) && open_unit(power)) {
        return Err(MeasureError::Input(format!("alpha {alpha} and power {power} must lie strictly between 0 and 1")));
    }
    let z_alpha = z_critical(1.0 - alpha);
    let z_power = super::standard_normal().inverse_cdf(power);
    let mean = (p1 + p2) / 2.0;
    let root = z_alpha * (2.0 * mean * (1.0 - mean)).sqrt() + z_power * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    let n = (root * root / (mde * mde)).ceil();
    // n is finite and positive for rates and levels checked above; the cast saturates.
    Ok(n as u64)
}
