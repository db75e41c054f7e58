//! ARR movements per month, as subscription-analytics tools classify them, and the
//! waterfall from a range's start ARR to its end ARR.
//!
//! Each month compares every account's ARR on the last day of the previous month
//! (`prev`) with its ARR on the month's last day (`cur`), and puts the difference in
//! exactly one bucket:
//!
//! | prev | cur | bucket |
//! |---|---|---|
//! | 0 | > 0 | **new** if the account never had ARR before the month, else **reactivation** |
//! | > 0 | 0 | **churn** (`prev`) |
//! | > 0 | > prev | **expansion** (`cur − prev`) |
//! | > 0 | < prev, > 0 | **contraction** (`prev − cur`) |
//!
//! Because every account's change lands in one bucket, `start + new + expansion +
//! reactivation − contraction − churn = end` holds to the cent for every month, and so
//! for the waterfall over the range.

use crate::ledger::{MonthDays, arr_on_days, first_arr_day};
use crate::{Ledger, MeasureError, Period, Ratio};
use jiff::civil::Date;
use serde::Serialize;
use std::collections::BTreeSet;

/// The movements of one month, or of a whole range (the sum of its months).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Movements {
    pub period: Period,
    /// Σ ARR on the day before the period.
    pub start_arr_cents: i64,
    pub new_cents: i64,
    pub expansion_cents: i64,
    pub reactivation_cents: i64,
    /// Positive: the ARR lost to contraction.
    pub contraction_cents: i64,
    /// Positive: the ARR lost to churn.
    pub churn_cents: i64,
    /// Σ ARR on the period's last day.
    pub end_arr_cents: i64,
    pub new_accounts: u64,
    pub expansion_accounts: u64,
    pub reactivation_accounts: u64,
    pub contraction_accounts: u64,
    pub churn_accounts: u64,
    /// (new + expansion + reactivation) / (contraction + churn); `None` when nothing was
    /// lost.
    pub quick_ratio: Option<Ratio>,
}

/// The months of a range with their movements, and the waterfall over the whole range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waterfall {
    pub total: Movements,
    pub months: Vec<Movements>,
}

impl Movements {
    fn empty(period: Period, start_arr_cents: i64) -> Movements {
        Movements {
            period,
            start_arr_cents,
            new_cents: 0,
            expansion_cents: 0,
            reactivation_cents: 0,
            contraction_cents: 0,
            churn_cents: 0,
            end_arr_cents: start_arr_cents,
            new_accounts: 0,
            expansion_accounts: 0,
            reactivation_accounts: 0,
            contraction_accounts: 0,
            churn_accounts: 0,
            quick_ratio: None,
        }
    }

    /// `start + new + expansion + reactivation − contraction − churn`, which equals
    /// `end_arr_cents` by construction (the property tests check it).
    pub fn bridged_end_cents(&self) -> i64 {
        self.start_arr_cents + self.new_cents + self.expansion_cents + self.reactivation_cents
            - self.contraction_cents
            - self.churn_cents
    }

    /// A month with nothing counted yet.
    fn zero(period: Period) -> Movements {
        let mut m = Movements::empty(period, 0);
        m.end_arr_cents = 0;
        m
    }

    /// Counts one account's change from `prev` to `cur` in exactly one bucket;
    /// `had_arr_before` is asked only when `prev` is zero and `cur` is not. A month's sums
    /// are bounded by the ledger's total ARR, which Ledger::new checked fits in i64 (the
    /// range's totals saturate instead).
    fn add(&mut self, prev: i64, cur: i64, had_arr_before: impl FnOnce() -> bool) {
        let m = self;
        m.start_arr_cents += prev;
        m.end_arr_cents += cur;
        match (prev, cur) {
            (0, 0) => {}
            (0, cur) if had_arr_before() => {
                m.reactivation_cents += cur;
                m.reactivation_accounts += 1;
            }
            (0, cur) => {
                m.new_cents += cur;
                m.new_accounts += 1;
            }
            (prev, 0) => {
                m.churn_cents += prev;
                m.churn_accounts += 1;
            }
            (prev, cur) if cur > prev => {
                m.expansion_cents += cur - prev;
                m.expansion_accounts += 1;
            }
            (prev, cur) if cur < prev => {
                m.contraction_cents += prev - cur;
                m.contraction_accounts += 1;
            }
            _ => {}
        }
    }

    fn finish(mut self) -> Movements {
        self.quick_ratio = Ratio::new(
            i128::from(self.new_cents) + i128::from(self.expansion_cents) + i128::from(self.reactivation_cents),
            i128::from(self.contraction_cents) + i128::from(self.churn_cents),
        );
        self
    }
}

/// The movements of every calendar month overlapping `[from, to]` (whole months), over
/// every account or over `members` only, and their waterfall.
pub fn movements(
    ledger: &Ledger,
    from: Date,
    to: Date,
    members: Option<&BTreeSet<String>>,
) -> Result<Waterfall, MeasureError> {
    let months = Period::months(from, to)?;
    // One pass over the ledger: each account's ARR on every month end at once.
    let days = MonthDays::new(&months);
    let mut out: Vec<Movements> = months.iter().map(|m| Movements::zero(*m)).collect();
    let mut arr = Vec::new();
    for (_, lines) in ledger.accounts(members) {
        arr_on_days(lines, &days.days, &mut arr);
        let first = first_arr_day(lines);
        for (i, m) in out.iter_mut().enumerate() {
            let (prev, cur) = days.start_end(i, &arr);
            let month_first = m.period.first();
            m.add(prev, cur, || first.is_some_and(|f| f < month_first));
        }
    }
    let out: Vec<Movements> = out.into_iter().map(Movements::finish).collect();
    let (Some(first), Some(last)) = (out.first(), out.last()) else {
        return Err(MeasureError::Period(format!("no month between {from} and {to}")));
    };
    let range = Period::new(first.period.first(), last.period.last())?;
    let mut total = Movements::empty(range, first.start_arr_cents);
    total.end_arr_cents = last.end_arr_cents;
    for m in &out {
        total.new_cents = total.new_cents.saturating_add(m.new_cents);
        total.expansion_cents = total.expansion_cents.saturating_add(m.expansion_cents);
        total.reactivation_cents = total.reactivation_cents.saturating_add(m.reactivation_cents);
        total.contraction_cents = total.contraction_cents.saturating_add(m.contraction_cents);
        total.churn_cents = total.churn_cents.saturating_add(m.churn_cents);
        total.new_accounts = total.new_accounts.saturating_add(m.new_accounts);
        total.expansion_accounts = total.expansion_accounts.saturating_add(m.expansion_accounts);
        total.reactivation_accounts = total.reactivation_accounts.saturating_add(m.reactivation_accounts);
        total.contraction_accounts = total.contraction_accounts.saturating_add(m.contraction_accounts);
        total.churn_accounts = total.churn_accounts.saturating_add(m.churn_accounts);
    }
    Ok(Waterfall { total: total.finish(), months: out })
}
