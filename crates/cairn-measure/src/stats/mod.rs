//! Statistics for experiments, behaviour hypotheses and the health backtest.
//!
//! The normal and chi-square distributions and ln Γ come from `statrs`; everything else
//! is the textbook formula, named in each function's doc and checked in `tests/` against
//! SciPy, statsmodels, scikit-learn and lifelines on the same inputs.

pub mod association;
pub mod multiple;
pub mod power;
pub mod proportions;
pub mod quantiles;
pub mod srm;
pub mod survival;

pub use association::{Association, TwoByTwo, roc_auc};
pub use multiple::benjamini_hochberg;
pub use power::sample_size_per_arm;
pub use proportions::{Arm, Comparison, Interval, Test, compare, fisher_exact, two_proportion_z_test, wilson};
pub use quantiles::{TimeToValue, quantile};
pub use srm::{SRM_ALPHA, SampleRatio, sample_ratio_mismatch};
pub use survival::{KaplanMeier, LogRank, Observation, kaplan_meier, log_rank};

use statrs::distribution::{ContinuousCDF, Normal};

/// The standard normal distribution.
fn standard_normal() -> Normal {
    Normal::standard()
}

/// The two-sided critical value for a confidence level: 1.959963984540054 for 0.95.
pub fn z_critical(confidence: f64) -> f64 {
    standard_normal().inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

/// P(|Z| ≥ |z|) for a standard normal Z, from the survival function (exact in the tail,
/// where `1 − cdf` would round to zero).
fn two_sided_normal_p(z: f64) -> f64 {
    (2.0 * standard_normal().sf(z.abs())).min(1.0)
}
