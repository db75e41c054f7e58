//! The subscription ledger: contract lines per account, and ARR on any day.

use crate::MeasureError;
use jiff::civil::Date;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One subscription (contract) line. It is active on every day from `start` to `end`,
/// both inclusive, and contributes `arr_cents` to its account's ARR on those days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub id: String,
    pub account: String,
    pub start: Date,
    pub end: Date,
    pub arr_cents: i64,
}

/// Every line, grouped by account (accounts in id order, so every report is
/// deterministic).
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    accounts: BTreeMap<String, Vec<Line>>,
}

impl Ledger {
    /// Checks each line (end on or after start, ARR not negative) and that the sum of all
    /// ARR fits in cents, so no sum taken later can overflow.
    pub fn new(lines: impl IntoIterator<Item = Line>) -> Result<Ledger, MeasureError> {
        let mut accounts: BTreeMap<String, Vec<Line>> = BTreeMap::new();
        let mut total: i64 = 0;
        for line in lines {
            let problem = |problem: String| MeasureError::Line { line: line.id.clone(), problem };
            if line.end < line.start {
                return Err(problem(format!("ends on {} before it starts on {}", line.end, line.start)));
            }
            if line.arr_cents < 0 {
                return Err(problem(format!(
                    "has a negative ARR ({} cents); a contract line is never negative",
                    line.arr_cents
                )));
            }
            total = total.checked_add(line.arr_cents).ok_or_else(|| {
                problem("the ledger's total ARR no longer fits in 64-bit cents; check the amounts' units".to_string())
            })?;
            accounts.entry(line.account.clone()).or_default().push(line);
        }
        for lines in accounts.values_mut() {
            lines.sort_by(|a, b| (a.start, a.end, &a.id).cmp(&(b.start, b.end, &b.id)));
        }
        Ok(Ledger { accounts })
    }

    /// The accounts with their lines (sorted by start), in id order; with `members`, only
    /// the accounts in that set (a segment's members as of the period's start).
    pub fn accounts<'a>(
        &'a self,
        members: Option<&'a BTreeSet<String>>,
    ) -> impl Iterator<Item = (&'a str, &'a [Line])> + 'a {
        self.accounts
            .iter()
            .filter(move |(id, _)| members.is_none_or(|m| m.contains(id.as_str())))
            .map(|(id, lines)| (id.as_str(), lines.as_slice()))
    }

    /// An account's lines, sorted by start (none for an account the ledger does not know).
    pub fn lines(&self, account: &str) -> &[Line] {
        self.accounts.get(account).map_or(&[], Vec::as_slice)
    }

    /// An account's ARR on `day`: the sum of its lines active that day (0 for an account
    /// the ledger does not know).
    pub fn arr_on(&self, account: &str, day: Date) -> i64 {
        self.accounts.get(account).map_or(0, |lines| arr_on(lines, day))
    }
}

/// The ARR of one account's lines on `day`; `lines` sorted by start, as the ledger keeps
/// them (the scan stops at the first line that starts after `day`). Cannot overflow:
/// [`Ledger::new`] checked the sum of every line.
pub(crate) fn arr_on(lines: &[Line], day: Date) -> i64 {
    lines.iter().take_while(|l| l.start <= day).filter(|l| day <= l.end).map(|l| l.arr_cents).sum()
}

/// The ARR of one account's lines on each of `days` (ascending), into `out` (one value a
/// day): one pass over the lines, each adding its ARR to the days it covers, found by
/// binary search. What [`arr_on`] gives for each day, for a time series at once.
pub(crate) fn arr_on_days(lines: &[Line], days: &[Date], out: &mut Vec<i64>) {
    out.clear();
    out.resize(days.len(), 0);
    for l in lines {
        let from = days.partition_point(|d| *d < l.start);
        let to = days.partition_point(|d| *d <= l.end);
        if let Some(covered) = out.get_mut(from..to) {
            covered.iter_mut().for_each(|a| *a += l.arr_cents);
        }
    }
}

/// The days a time series of months is measured on: each month's last day and the day
/// before its first (its start ARR), in order and without repeats, with where each
/// month's two days are.
pub(crate) struct MonthDays {
    pub(crate) days: Vec<Date>,
    /// Per month: the index of the day before it (`None` before jiff's first day) and of
    /// its last day.
    pub(crate) at: Vec<(Option<usize>, usize)>,
}

impl MonthDays {
    pub(crate) fn new(months: &[crate::Period]) -> MonthDays {
        let mut days: Vec<Date> =
            months.iter().flat_map(|m| m.day_before().into_iter().chain(std::iter::once(m.last()))).collect();
        days.sort_unstable();
        days.dedup();
        let index = |day: Date| days.binary_search(&day).unwrap_or(0);
        let at = months.iter().map(|m| (m.day_before().map(index), index(m.last()))).collect();
        MonthDays { days, at }
    }

    /// A month's start and end ARR from an account's ARR on [`MonthDays::days`].
    pub(crate) fn start_end(&self, month: usize, arr: &[i64]) -> (i64, i64) {
        let Some((before, last)) = self.at.get(month) else { return (0, 0) };
        let on = |i: usize| arr.get(i).copied().unwrap_or(0);
        (before.map_or(0, on), on(*last))
    }
}

/// The first day on which the account had ARR above zero, if any.
pub(crate) fn first_arr_day(lines: &[Line]) -> Option<Date> {
    lines.iter().filter(|l| l.arr_cents > 0).map(|l| l.start).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    pub(crate) fn line(id: &str, account: &str, start: Date, end: Date, arr_cents: i64) -> Line {
        Line { id: id.into(), account: account.into(), start, end, arr_cents }
    }

    #[test]
    fn arr_sums_the_lines_active_that_day_both_ends_included() {
        let ledger = Ledger::new([
            line("L1", "A", date(2026, 1, 1), date(2026, 12, 31), 1_200_000),
            line("L2", "A", date(2026, 6, 15), date(2026, 12, 31), 300_050),
        ])
        .unwrap();
        assert_eq!(ledger.arr_on("A", date(2025, 12, 31)), 0);
        assert_eq!(ledger.arr_on("A", date(2026, 1, 1)), 1_200_000);
        assert_eq!(ledger.arr_on("A", date(2026, 6, 15)), 1_500_050);
        assert_eq!(ledger.arr_on("A", date(2026, 12, 31)), 1_500_050);
        assert_eq!(ledger.arr_on("A", date(2027, 1, 1)), 0);
        assert_eq!(ledger.arr_on("B", date(2026, 6, 1)), 0);
    }

    #[test]
    fn arr_on_days_is_arr_on_for_each_day() {
        let ledger = Ledger::new([
            line("L1", "A", date(2026, 1, 1), date(2026, 12, 31), 1_200_000),
            line("L2", "A", date(2026, 6, 15), date(2026, 6, 30), 300_050),
            line("L3", "A", date(2026, 6, 30), date(2027, 1, 31), 7),
        ])
        .unwrap();
        let (_, lines) = ledger.accounts(None).next().unwrap();
        let days = [
            date(2025, 12, 31),
            date(2026, 1, 1),
            date(2026, 6, 14),
            date(2026, 6, 15),
            date(2026, 6, 30),
            date(2026, 7, 1),
            date(2026, 12, 31),
            date(2027, 1, 31),
            date(2027, 2, 1),
        ];
        let mut out = vec![99];
        arr_on_days(lines, &days, &mut out);
        // By hand: 0, L1, L1, L1+L2, L1+L2+L3, L1+L3, L1+L3, L3, 0.
        assert_eq!(out, [0, 1_200_000, 1_200_000, 1_500_050, 1_500_057, 1_200_007, 1_200_007, 7, 0]);
        let each: Vec<i64> = days.iter().map(|d| arr_on(lines, *d)).collect();
        assert_eq!(out, each);
    }

    #[test]
    fn bad_lines_are_refused_with_their_id() {
        let e = Ledger::new([line("L9", "A", date(2026, 2, 1), date(2026, 1, 1), 1)]).unwrap_err();
        assert_eq!(e.to_string(), "subscription line `L9`: ends on 2026-01-01 before it starts on 2026-02-01");
        let e = Ledger::new([line("L8", "A", date(2026, 1, 1), date(2026, 1, 1), -5)]).unwrap_err();
        assert!(e.to_string().contains("negative ARR"), "{e}");
        let e = Ledger::new([
            line("L1", "A", date(2026, 1, 1), date(2026, 1, 1), i64::MAX),
            line("L2", "B", date(2026, 1, 1), date(2026, 1, 1), 1),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("no longer fits"), "{e}");
    }
}
