//! Retention and NRR at a group's next renewal: what became of each account at the first
//! renewal after a day of its own (its enrollment in a program), so a program's enrolled
//! and held-out accounts can be compared where it matters, at renewal.
//!
//! An account's next renewal after day `d` is its line with the earliest end date on or
//! after `d` (lines ending that same day: the first by id). It is **renewed** as the
//! renewal rate says ([`crate::renewal`]): a line of the account starts after that end and
//! within 30 days of gap; otherwise **churned**. It is **decided** only once `as_of` is on
//! or after the last day a renewal may start (end + 31 days): earlier it is pending and
//! left out, as an enrollment whose goal window is still open is. The account's ARR
//! before is its ARR on the end day; after, its ARR on that last renewal day. Over a
//! group: retention = renewed / decided; NRR = Σ after / Σ before over the decided.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Serialize;

use crate::renewal::{is_renewed, last_renewal_day};
use crate::{Ledger, Line, Ratio};

/// A group of accounts at their next renewals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionAtRenewal {
    /// Accounts in the group.
    pub accounts: u64,
    /// Of those, accounts with no line ending on or after their day (nothing to renew).
    pub without_renewal: u64,
    /// Accounts whose renewal window is still open on `as_of` (left out).
    pub pending: u64,
    /// Accounts whose renewal is decided: renewed + churned.
    pub decided: u64,
    pub renewed: u64,
    /// renewed / decided.
    pub retention: Option<Ratio>,
    /// Σ ARR on the renewing line's end day, over the decided accounts.
    pub arr_before_cents: i64,
    /// Σ ARR on the last day a renewal may start, over the decided accounts.
    pub arr_after_cents: i64,
    /// arr_after / arr_before.
    pub nrr: Option<Ratio>,
}

/// Retention and NRR at the next renewal after each account's own day (`anchors`: an
/// account and its day, one per account), as known on `as_of`.
pub fn retention_at_renewal<'a>(
    ledger: &Ledger,
    anchors: impl IntoIterator<Item = (&'a str, Date)>,
    as_of: Date,
) -> RetentionAtRenewal {
    let lines: BTreeMap<&str, &[Line]> = ledger.accounts(None).collect();
    let mut r = RetentionAtRenewal::default();
    for (account, day) in anchors {
        r.accounts += 1;
        let own = lines.get(account).copied().unwrap_or_default();
        // The earliest end on or after the day; among equal ends the first by id.
        let next = own.iter().filter(|l| l.end >= day).min_by(|a, b| a.end.cmp(&b.end).then(a.id.cmp(&b.id)));
        let Some(line) = next else {
            r.without_renewal += 1;
            continue;
        };
        let Some(last) = last_renewal_day(line.end).filter(|last| *last <= as_of) else {
            r.pending += 1;
            continue;
        };
        r.decided += 1;
        if own.iter().filter(|l| l.end == line.end).any(|l| is_renewed(own, l)) {
            r.renewed += 1;
        }
        r.arr_before_cents += ledger.arr_on(account, line.end);
        r.arr_after_cents += ledger.arr_on(account, last);
    }
    r.retention = Ratio::new(r.renewed, r.decided);
    r.nrr = Ratio::new(r.arr_after_cents, r.arr_before_cents);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn line(id: &str, account: &str, start: Date, end: Date, arr: i64) -> Line {
        Line { id: id.into(), account: account.into(), start, end, arr_cents: arr }
    }

    #[test]
    fn renewed_churned_pending_and_nothing_to_renew_with_the_group_nrr() {
        let ledger = Ledger::new([
            // a: ends 2026-03-31, renewed on 2026-04-20 (19 days of gap) at 1,200 from 1,000.
            line("a1", "a", date(2025, 4, 1), date(2026, 3, 31), 100_000),
            line("a2", "a", date(2026, 4, 20), date(2027, 4, 19), 120_000),
            // b: ends 2026-03-31 and comes back on 2026-05-02 (31 days of gap): churned.
            line("b1", "b", date(2025, 4, 1), date(2026, 3, 31), 50_000),
            line("b2", "b", date(2026, 5, 2), date(2027, 5, 1), 50_000),
            // c: ends 2026-06-30, after as_of's last decidable end: pending.
            line("c1", "c", date(2025, 7, 1), date(2026, 6, 30), 70_000),
            // d: its only line ended before its day: nothing to renew.
            line("d1", "d", date(2024, 1, 1), date(2024, 12, 31), 10_000),
            // e: an add-on ending 2026-02-28 comes before the main line's end; the add-on
            // is the next renewal, not renewed, while the main line runs on.
            line("e1", "e", date(2025, 1, 1), date(2026, 12, 31), 30_000),
            line("e2", "e", date(2025, 3, 1), date(2026, 2, 28), 5_000),
        ])
        .unwrap();
        let day = date(2026, 1, 15);
        let as_of = date(2026, 6, 1);
        let anchors = ["a", "b", "c", "d", "e"].map(|a| (a, day));
        let r = retention_at_renewal(&ledger, anchors, as_of);
        assert_eq!((r.accounts, r.without_renewal, r.pending, r.decided, r.renewed), (5, 1, 1, 3, 1));
        // Decided: a (renewed), b (churned), e (churned add-on).
        // Before: a 1,000 on 03-31; b 500 on 03-31; e 300 + 50 = 350 on 02-28 → 1,850.
        // After (end + 31 days): a on 05-01: 1,200; b on 05-01: 0 (b2 starts 05-02);
        // e on 03-31: 300 → 1,500. NRR = 1,500 / 1,850.
        assert_eq!((r.arr_before_cents, r.arr_after_cents), (185_000, 150_000));
        assert_eq!(r.retention, Ratio::new(1, 3));
        assert_eq!(r.nrr, Ratio::new(150_000, 185_000));
    }

    #[test]
    fn a_renewal_is_decided_on_the_last_day_it_may_start() {
        let ledger = Ledger::new([line("a1", "a", date(2025, 4, 1), date(2026, 3, 31), 100_000)]).unwrap();
        let at = |as_of| retention_at_renewal(&ledger, [("a", date(2026, 1, 1))], as_of);
        // 2026-03-31 + 31 days = 2026-05-01.
        assert_eq!((at(date(2026, 4, 30)).pending, at(date(2026, 4, 30)).decided), (1, 0));
        assert_eq!((at(date(2026, 5, 1)).pending, at(date(2026, 5, 1)).decided), (0, 1));
        // An account the ledger does not know has nothing to renew.
        let r = retention_at_renewal(&ledger, [("zz", date(2026, 1, 1))], date(2026, 5, 1));
        assert_eq!((r.without_renewal, r.retention, r.nrr), (1, None, None));
    }
}
