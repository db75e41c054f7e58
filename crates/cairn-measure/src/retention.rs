//! A period's revenue and retention KPIs: NRR, GRR, logo churn, churned ARR, expansion,
//! contraction, and new ARR kept apart from the cohort.
//!
//! For a period `[first, last]`, an account's start ARR is its ARR on the day before
//! `first` and its end ARR its ARR on `last`. The cohort is the accounts with start ARR
//! above zero; accounts that start at zero and end above it are new (never had ARR before
//! `first`) or reactivated (had ARR before), and are reported beside the cohort, never in
//! NRR or GRR. Within the cohort, per account:
//!
//! - end ARR 0: churned, its start ARR is churned ARR;
//! - otherwise expansion `max(end − start, 0)` and contraction `max(start − end, 0)`.
//!
//! So `cohort end = cohort start + expansion − contraction − churned`, and
//! `end ARR = cohort end + new + reactivated`, to the cent.

use crate::ledger::{MonthDays, arr_on, arr_on_days, first_arr_day};
use crate::{Ledger, MeasureError, Period, Ratio};
use jiff::civil::Date;
use serde::Serialize;
use std::collections::BTreeSet;

/// The KPIs of one period (and one segment, when members were given).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodKpis {
    pub period: Period,
    /// Σ ARR on the day before the period, over every account (all of them are the cohort).
    pub start_arr_cents: i64,
    /// Σ ARR on the period's last day, over every account (cohort and new).
    pub end_arr_cents: i64,
    /// Accounts with start ARR above zero.
    pub cohort_accounts: u64,
    /// Σ end ARR over the cohort: NRR's numerator.
    pub cohort_end_arr_cents: i64,
    /// Σ min(end, start) over the cohort: GRR's numerator.
    pub retained_arr_cents: i64,
    pub expansion_cents: i64,
    pub contraction_cents: i64,
    /// Cohort accounts with end ARR 0.
    pub churned_accounts: u64,
    /// Σ start ARR of the churned accounts.
    pub churned_arr_cents: i64,
    /// Accounts with no ARR on any day before the period and ARR above zero at its end.
    pub new_accounts: u64,
    pub new_arr_cents: i64,
    /// Accounts that had ARR before the period, none on the day before it, and some at
    /// its end.
    pub reactivated_accounts: u64,
    pub reactivated_arr_cents: i64,
    /// Σ end / Σ start over the cohort.
    pub nrr: Option<Ratio>,
    /// Σ min(end, start) / Σ start over the cohort.
    pub grr: Option<Ratio>,
    /// Churned accounts / cohort accounts.
    pub logo_churn: Option<Ratio>,
}

impl PeriodKpis {
    fn empty(period: Period) -> PeriodKpis {
        PeriodKpis {
            period,
            start_arr_cents: 0,
            end_arr_cents: 0,
            cohort_accounts: 0,
            cohort_end_arr_cents: 0,
            retained_arr_cents: 0,
            expansion_cents: 0,
            contraction_cents: 0,
            churned_accounts: 0,
            churned_arr_cents: 0,
            new_accounts: 0,
            new_arr_cents: 0,
            reactivated_accounts: 0,
            reactivated_arr_cents: 0,
            nrr: None,
            grr: None,
            logo_churn: None,
        }
    }

    /// Counts one account with its start and end ARR; `had_arr_before` is asked only for
    /// an account that starts at zero and ends above it (new or reactivated).
    fn add(&mut self, start: i64, end: i64, had_arr_before: impl FnOnce() -> bool) {
        // Every sum is bounded by the ledger's total ARR, which Ledger::new checked fits.
        let k = self;
        k.start_arr_cents += start;
        k.end_arr_cents += end;
        if start > 0 {
            k.cohort_accounts += 1;
            k.cohort_end_arr_cents += end;
            k.retained_arr_cents += end.min(start);
            if end == 0 {
                k.churned_accounts += 1;
                k.churned_arr_cents += start;
            } else {
                k.expansion_cents += (end - start).max(0);
                k.contraction_cents += (start - end).max(0);
            }
        } else if end > 0 {
            if had_arr_before() {
                k.reactivated_accounts += 1;
                k.reactivated_arr_cents += end;
            } else {
                k.new_accounts += 1;
                k.new_arr_cents += end;
            }
        }
    }

    fn finish(mut self) -> PeriodKpis {
        self.nrr = Ratio::new(self.cohort_end_arr_cents, self.start_arr_cents);
        self.grr = Ratio::new(self.retained_arr_cents, self.start_arr_cents);
        self.logo_churn = Ratio::new(self.churned_accounts, self.cohort_accounts);
        self
    }
}

/// The period's KPIs over every account of the ledger, or over `members` only.
pub fn period_kpis(ledger: &Ledger, period: Period, members: Option<&BTreeSet<String>>) -> PeriodKpis {
    let before = period.day_before();
    let mut k = PeriodKpis::empty(period);
    for (_, lines) in ledger.accounts(members) {
        let start = before.map_or(0, |day| arr_on(lines, day));
        let end = arr_on(lines, period.last());
        k.add(start, end, || had_arr_before(lines, period.first()));
    }
    k.finish()
}

/// The KPIs of every calendar month overlapping `[from, to]`, oldest first: the same
/// figures as [`period_kpis`] of each month, in one pass over the ledger (each account's
/// ARR on every month end at once).
pub fn monthly_kpis(
    ledger: &Ledger,
    from: Date,
    to: Date,
    members: Option<&BTreeSet<String>>,
) -> Result<Vec<PeriodKpis>, MeasureError> {
    let months = Period::months(from, to)?;
    let days = MonthDays::new(&months);
    let mut out: Vec<PeriodKpis> = months.iter().map(|m| PeriodKpis::empty(*m)).collect();
    let mut arr = Vec::new();
    for (_, lines) in ledger.accounts(members) {
        arr_on_days(lines, &days.days, &mut arr);
        let first = first_arr_day(lines);
        for (i, k) in out.iter_mut().enumerate() {
            let (start, end) = days.start_end(i, &arr);
            let month_first = k.period.first();
            k.add(start, end, || first.is_some_and(|f| f < month_first));
        }
    }
    Ok(out.into_iter().map(PeriodKpis::finish).collect())
}

/// Whether the account had ARR above zero on some day before `day`.
pub(crate) fn had_arr_before(lines: &[crate::Line], day: Date) -> bool {
    first_arr_day(lines).is_some_and(|first| first < day)
}
