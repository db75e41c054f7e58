//! Cohort retention by start month: the triangle table.
//!
//! An account's cohort is the month of its first day with ARR above zero. For month
//! offset k (0 is the start month itself), taken on the last day of the month k months
//! after the start month:
//!
//! - logo retention = cohort accounts with ARR above zero / cohort accounts;
//! - revenue retention = Σ ARR of the cohort's accounts / Σ their initial ARR (the ARR on
//!   each account's first day with ARR), so expansion can lift it above 100%.
//!
//! Only months that have ended by the `through` day are shown: the triangle.

use crate::ledger::{arr_on, first_arr_day};
use crate::{Ledger, MeasureError, Period, Ratio};
use jiff::ToSpan;
use jiff::civil::Date;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One start month's row of the triangle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CohortRow {
    pub start_month: Period,
    pub accounts: u64,
    pub initial_arr_cents: i64,
    /// Month offsets 0, 1, 2, … up to the last month ended by `through`.
    pub months: Vec<CohortCell>,
}

/// One cell: a cohort at a month offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CohortCell {
    pub offset: u32,
    /// The day the cell was measured (the last day of that month).
    pub on: Date,
    pub retained_accounts: u64,
    pub arr_cents: i64,
    pub logo_retention: Option<Ratio>,
    pub revenue_retention: Option<Ratio>,
}

/// The rows for the accounts whose first ARR falls in a month overlapping `[from, to]`,
/// with cells for every month that ended on or before `through`.
pub fn cohort_retention(
    ledger: &Ledger,
    from: Date,
    to: Date,
    through: Date,
    members: Option<&BTreeSet<String>>,
) -> Result<Vec<CohortRow>, MeasureError> {
    let months = Period::months(from, to)?;
    let mut by_month: BTreeMap<Period, Vec<&[crate::Line]>> = months.iter().map(|m| (*m, Vec::new())).collect();
    for (_, lines) in ledger.accounts(members) {
        if let Some(first) = first_arr_day(lines)
            && let Some(accounts) = by_month.get_mut(&Period::containing(crate::PeriodKind::Month, first))
        {
            accounts.push(lines);
        }
    }
    let mut rows = Vec::with_capacity(by_month.len());
    for (start_month, accounts) in by_month {
        let initial: Vec<i64> =
            accounts.iter().map(|lines| first_arr_day(lines).map_or(0, |day| arr_on(lines, day))).collect();
        let initial_arr_cents: i64 = initial.iter().sum();
        let mut row = CohortRow { start_month, accounts: accounts.len() as u64, initial_arr_cents, months: Vec::new() };
        for offset in 0u32.. {
            let Ok(on) = start_month.first().checked_add(i64::from(offset).months()).map(|d| d.last_of_month()) else {
                break;
            };
            if on > through {
                break;
            }
            let arr: Vec<i64> = accounts.iter().map(|lines| arr_on(lines, on)).collect();
            let retained_accounts = arr.iter().filter(|a| **a > 0).count() as u64;
            let arr_cents: i64 = arr.iter().sum();
            row.months.push(CohortCell {
                offset,
                on,
                retained_accounts,
                arr_cents,
                logo_retention: Ratio::new(retained_accounts, row.accounts),
                revenue_retention: Ratio::new(arr_cents, initial_arr_cents),
            });
        }
        rows.push(row);
    }
    Ok(rows)
}
