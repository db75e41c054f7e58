//! cairn-reports: the figures of `cairn report` and `/api/reports/…`, computed once for
//! both surfaces.
//!
//! Each report is a module with one entry point that takes the [`Store`] (and, where a
//! report needs definitions, the checked workspace) and a [`Query`], reads what it needs,
//! hands it to cairn-measure's pure functions and returns a plain, serialisable struct.
//! How a report is *shown* (a terminal table, CSV) is the CLI's business; JSON is the
//! struct itself, so the CLI's `--json` and the API return the same document.
//!
//! - [`query`]: the period, as-of day and segment every report is asked for, parsed from
//!   the same text whether it came as CLI flags or URL query parameters.
//! - [`revenue`]: NRR, GRR, churn, expansion, LTV, movements, cohorts (the subscription
//!   ledger), for a period or month by month.
//! - [`segment`]: `--segment`, the accounts in a segment at a period's start.
//! - [`process`]: health distribution and movers, the task backlog, support tickets.
//! - [`programs`]: Reach, Effect and ROI of the programs' enrollments.
//! - [`experiments`]: every A/B split and holdout, checked, corrected and powered.
//! - [`nps`]: NPS and CSAT from survey answers, with the monthly trend.
//! - [`journey`]: the journey funnel of a start cohort, per stage and milestone.
//! - [`ttv`]: Time to Value per start month, with the censoring-aware median.
//! - [`hypotheses`]: do the milestones (and a rule the user writes) go with retention,
//!   and which behaviours do (discovery).
//! - [`backtest`]: the health score's AUC, churn per band and calibration at renewal.
//! - [`staffing`]: the CSMs the workspace's touch model needs for the live engine's
//!   accounts, their cost per ARR dollar, and the what-if of moving stages to digital.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

pub mod backtest;
pub mod experiments;
pub mod hypotheses;
pub mod journey;
pub mod nps;
pub mod process;
pub mod programs;
pub mod query;
pub mod revenue;
pub mod segment;
pub mod staffing;
pub mod ttv;

pub use cairn_store::Store;
pub use query::{Query, QueryText};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request itself is wrong (a bad date, an unknown segment, …): the message
    /// names what and how to fix it. The API answers 400.
    #[error("{0}")]
    Invalid(String),
    /// The store could not be read.
    #[error("reading the store: {0}")]
    Store(#[from] cairn_store::StoreError),
    /// The data cannot be measured as it is (a ledger line cairn-measure refuses, …).
    #[error("{0}")]
    Measure(#[from] cairn_measure::MeasureError),
    /// Replaying the log through the engine failed (health the store holds no snapshot of).
    #[error("replaying the log for the health history: {0}")]
    Replay(#[from] cairn_runtime::RuntimeError),
}

/// A report's result.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
