//! cairn-measure: the maths of "what did it change", as plain functions over plain data.
//!
//! Two halves, both pure (no I/O, no async, no clock: every date is an argument):
//!
//! - **Revenue and retention KPIs** from a subscription [`Ledger`]: ARR per account and
//!   day, a period's NRR, GRR, logo churn, expansion, contraction and new ARR
//!   ([`retention`]), monthly ARR movements with a waterfall that adds up to the cent
//!   ([`movements`]), the renewal rate ([`renewal`]), cohort retention triangles
//!   ([`cohorts`]) and customer lifetime value ([`ltv`]). Money is integer cents and
//!   every ratio an exact [`Ratio`], rounded only when printed.
//! - **Statistics** ([`stats`]) for experiments, hypotheses and the health backtest:
//!   Wilson intervals, two-proportion z-test, Fisher's exact test, the chi-square
//!   sample-ratio-mismatch check, Benjamini–Hochberg, sample size for 80% power,
//!   Kaplan–Meier with Greenwood variance and the log-rank test, ROC AUC, the phi
//!   coefficient and quantiles.
//! - **Staffing** ([`staffing`]): the CSMs a touch model needs for the live segment sizes,
//!   their cost per ARR dollar, and what moving stages to digital changes.
//!
//! docs/metrics.md defines every figure with a worked example; the tests check them on
//! hand-built ledgers and against reference statistics packages.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

pub mod at_renewal;
pub mod cohorts;
pub mod hypotheses;
pub mod ledger;
pub mod ltv;
pub mod movements;
pub mod period;
pub mod ratio;
pub mod renewal;
pub mod retention;
pub mod staffing;
pub mod stats;
pub mod survey;

pub use ledger::{Ledger, Line};
pub use period::{Period, PeriodKind};
pub use ratio::Ratio;

/// What went wrong, said for the person who gave the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeasureError {
    /// A period or date range that cannot be measured.
    #[error("invalid period: {0}")]
    Period(String),
    /// A subscription line that cannot be part of a ledger.
    #[error("subscription line `{line}`: {problem}")]
    Line { line: String, problem: String },
    /// An argument of a statistic outside its domain (a share, a rate, a count).
    #[error("{0}")]
    Input(String),
}
