//! Customer lifetime value.
//!
//! LTV = ARPA × gross margin / annual logo churn, over a one-year period's cohort:
//!
//! - ARPA (average revenue per account) = cohort start ARR / cohort accounts;
//! - annual logo churn = churned cohort accounts / cohort accounts;
//! - gross margin is the share of revenue left after the cost of serving it (a given).
//!
//! The expected lifetime of an account is 1 / churn years, so the formula is the margin
//! an average account earns per year times the years it stays. The counts cancel:
//! LTV = start ARR × margin / churned accounts, kept exact.

use crate::retention::PeriodKpis;
use crate::{MeasureError, Ratio};

/// LTV in cents for the cohort of `kpis`, a one-year period; `None` when nobody churned
/// (no finite lifetime to estimate) or the cohort is empty.
pub fn lifetime_value(kpis: &PeriodKpis, gross_margin: Ratio) -> Result<Option<Ratio>, MeasureError> {
    if !kpis.period.is_one_year() {
        return Err(MeasureError::Period(format!(
            "lifetime value needs a one-year period to read an annual churn rate, not {} to {}: use --period year or a 12-month --from/--to",
            kpis.period.first(),
            kpis.period.last()
        )));
    }
    if gross_margin.numerator() <= 0 || gross_margin.numerator() > gross_margin.denominator() {
        return Err(MeasureError::Input(format!(
            "gross margin {} is outside (0, 1]: give it as a share of revenue, like 0.8",
            gross_margin.to_f64()
        )));
    }
    if kpis.churned_accounts == 0 {
        return Ok(None);
    }
    let numerator = i128::from(kpis.start_arr_cents).saturating_mul(gross_margin.numerator());
    let denominator = i128::from(kpis.churned_accounts).saturating_mul(gross_margin.denominator());
    Ok(Ratio::new(numerator, denominator))
}
