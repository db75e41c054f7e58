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

use crate::ledger::{arr_on, arr_on_days, first_arr_day};
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
    // The days cells are measured on: the last day of every month from the first start
    // month through `through`. A start month's cell k is on the day k months after it.
    let mut days = Vec::new();
    if let Some(first) = months.first() {
        let mut on = first.last();
        while on <= through {
            days.push(on);
            match on.first_of_month().checked_add(1.month()) {
                Ok(next) => on = next.last_of_month(),
                Err(_) => break,
            }
        }
    }
    let mut rows = Vec::with_capacity(by_month.len());
    let mut arr = Vec::new();
    for (i, (start_month, accounts)) in by_month.into_iter().enumerate() {
        // by_month's keys are `months`, in order: start month i's cells are days[i..].
        let on_days = days.get(i..).unwrap_or_default();
        let mut initial_arr_cents = 0;
        let mut retained = vec![0u64; on_days.len()];
        let mut sums = vec![0i64; on_days.len()];
        // One pass over each account's lines for all its cells at once.
        for lines in &accounts {
            initial_arr_cents += first_arr_day(lines).map_or(0, |day| arr_on(lines, day));
            arr_on_days(lines, on_days, &mut arr);
            for ((a, kept), sum) in arr.iter().zip(retained.iter_mut()).zip(sums.iter_mut()) {
                *kept += u64::from(*a > 0);
                *sum += a;
            }
        }
        let accounts = accounts.len() as u64;
        let months = on_days
            .iter()
            .zip(retained)
            .zip(sums)
            .enumerate()
            .map(|(offset, ((on, retained_accounts), arr_cents))| CohortCell {
                offset: offset as u32,
                on: *on,
                retained_accounts,
                arr_cents,
                logo_retention: Ratio::new(retained_accounts, accounts),
                revenue_retention: Ratio::new(arr_cents, initial_arr_cents),
            })
            .collect();
        rows.push(CohortRow { start_month, accounts, initial_arr_cents, months });
    }
    Ok(rows)
}
