//! The renewal rate: of the lines that ended in a period, the share followed by a line
//! of the same account within 30 days.

use crate::{Ledger, Period, Ratio};
use jiff::ToSpan;
use serde::Serialize;
use std::collections::BTreeSet;

/// The longest gap, in days without coverage, between a line's last day and the first
/// day of the line that renews it.
pub const RENEWAL_GAP_DAYS: i32 = 30;

/// Lines up for renewal in a period and how many were renewed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenewalRate {
    pub period: Period,
    /// Lines whose end date falls in the period.
    pub lines_ending: u64,
    /// Of those, lines followed by a line of the same account that starts after the
    /// ended line's last day and at most [`RENEWAL_GAP_DAYS`] days of gap later.
    pub renewed: u64,
    /// renewed / lines_ending.
    pub rate: Option<Ratio>,
    /// Ids of the lines that ended without renewal, for follow-up.
    pub not_renewed: Vec<String>,
}

/// The renewal rate of the lines ending in `period`. A line ending fewer than 31 days
/// before the data's last day may still be renewed later: report such periods only once
/// 30 days have passed after them.
pub fn renewal_rate(ledger: &Ledger, period: Period, members: Option<&BTreeSet<String>>) -> RenewalRate {
    let mut r = RenewalRate { period, lines_ending: 0, renewed: 0, rate: None, not_renewed: Vec::new() };
    for (_, lines) in ledger.accounts(members) {
        for line in lines.iter().filter(|l| period.contains(l.end)) {
            r.lines_ending += 1;
            // The last day a renewal may start: end + 1 + 30 (a gap of 30 days at most).
            let latest = line.end.checked_add((RENEWAL_GAP_DAYS + 1).days()).ok();
            // Lines are sorted by start: the first one starting after the ended line's last
            // day is the earliest candidate, and it is a renewal if it starts in time.
            let after = lines.partition_point(|next| next.start <= line.end);
            let renewed = lines.get(after).is_some_and(|next| latest.is_none_or(|latest| next.start <= latest));
            if renewed {
                r.renewed += 1;
            } else {
                r.not_renewed.push(line.id.clone());
            }
        }
    }
    r.rate = Ratio::new(r.renewed, r.lines_ending);
    r
}
