//! Behaviour hypotheses: does a behaviour by a deadline from the journey's anchor go
//! with retention? (docs/metrics.md, "Behaviour hypotheses".)
//!
//! An account is *decided* once its window `[anchor, anchor + within)` has passed; it is
//! in the held group when the behaviour happened inside the window, in the other group
//! otherwise. Its outcomes come from the subscription ledger, as known on `as_of`:
//!
//! - **retention at the first renewal**: the first line ending on or after the window's
//!   end (the decision day). Renewed when a line of the account starts after that line's
//!   last day and at most [`RENEWAL_GAP_DAYS`] days of gap later (as the renewal rate
//!   counts it), or another line of the account is still active the day after (an add-on
//!   ending inside a longer contract is not a churned account). Churned otherwise, once
//!   the 30 days have passed by `as_of`; before that, and for a line ending after `as_of`,
//!   not yet due: left out of this comparison.
//! - **time to churn** from the anchor, for the Kaplan–Meier curves: the account's lines
//!   merged into runs of coverage (a gap of at most 30 days joins two lines); the first
//!   run reaching the anchor ends in churn on the day after its last day when no line
//!   starts within the 30 days after, and is censored at `as_of` otherwise.
//! - **NRR at 12 months**: ARR on the day 12 months after the anchor over ARR on the
//!   anchor day, summed over the group's accounts with ARR on the anchor day, once that
//!   later day is on or before `as_of`.
//!
//! Groups are compared with the two-proportion z-test (Fisher's exact test when an
//! expected cell is below 5), the risk ratio with its Katz log interval, the phi
//! coefficient, and the log-rank test of the curves. A hypothesis is labelled only when
//! both groups have at least `min_group` accounts due for renewal: a positive (negative)
//! indicator when its Benjamini–Hochberg adjusted p-value, over every hypothesis of the
//! report, is below 0.05 and the 95% interval of the difference in retention lies above
//! (below) 0; inconclusive otherwise. This is correlation: a holdout proves cause.

use std::collections::BTreeMap;

use jiff::ToSpan;
use jiff::civil::Date;
use serde::Serialize;

use crate::renewal::RENEWAL_GAP_DAYS;
use crate::stats::{
    Arm, Association, Comparison, Interval, KaplanMeier, LogRank, Observation, TwoByTwo, benjamini_hochberg, compare,
    kaplan_meier, log_rank, wilson, z_critical,
};
use crate::{Line, MeasureError, Ratio};

/// The smallest group, in accounts due for renewal, that is labelled.
pub const DEFAULT_MIN_GROUP: u64 = 30;
/// The false discovery rate a label allows.
pub const SIGNIFICANCE: f64 = 0.05;
/// Months from the anchor to the NRR compared.
pub const NRR_MONTHS: i8 = 12;
/// Discovery's count thresholds.
pub const DISCOVERY_THRESHOLDS: [u32; 5] = [1, 2, 3, 5, 10];
/// Discovery's windows from the anchor, in days.
pub const DISCOVERY_WINDOWS: [i32; 4] = [7, 14, 30, 60];

/// What happened to one account after its anchor, as known on `as_of`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Renewed (true) or churned (false) at the first renewal after the decision day;
    /// `None` while not yet due.
    pub renewed: Option<bool>,
    /// Days from the anchor to churn, or censored at `as_of`; `None` without a line
    /// reaching the anchor.
    pub survival: Option<Observation>,
    /// ARR on the anchor day and 12 months later, when known and the first is above 0.
    pub arr_12m: Option<(i64, i64)>,
}

/// The outcomes of an account with `lines` (sorted by start, as a [`crate::Ledger`]
/// keeps them), anchored on `anchor`, decided on `decided` (anchor + within).
pub fn outcome(lines: &[Line], anchor: Date, decided: Date, as_of: Date) -> Outcome {
    let known: Vec<&Line> = lines.iter().filter(|l| l.start <= as_of).collect();
    let gap = (RENEWAL_GAP_DAYS + 1).days();
    let renewed = known.iter().filter(|l| l.end >= decided).min_by_key(|l| l.end).and_then(|first| {
        if first.end > as_of {
            return None;
        }
        let latest = first.end.checked_add(gap).ok();
        let day_after = first.end.tomorrow().ok();
        let renewed = known.iter().any(|next| {
            let starts_in_gap = next.start > first.end && latest.is_none_or(|latest| next.start <= latest);
            let still_active = day_after.is_some_and(|d| next.start <= d && d <= next.end);
            starts_in_gap || still_active
        });
        match (renewed, latest) {
            (true, _) => Some(true),
            (false, Some(latest)) if latest <= as_of => Some(false),
            _ => None,
        }
    });
    let arr_12m = anchor.checked_add(i32::from(NRR_MONTHS).months()).ok().filter(|d| *d <= as_of).and_then(|later| {
        let start = crate::ledger::arr_on(lines, anchor);
        (start > 0).then(|| (start, crate::ledger::arr_on(lines, later)))
    });
    Outcome { renewed, survival: survival(&known, anchor, as_of), arr_12m }
}

/// Time to churn from the anchor (see the module doc).
fn survival(known: &[&Line], anchor: Date, as_of: Date) -> Option<Observation> {
    if anchor > as_of {
        return None;
    }
    let days = |d: Date| (d - anchor).get_days() as f64;
    let censored = Observation { time: days(as_of), event: false };
    let gap = (RENEWAL_GAP_DAYS + 1).days();
    let mut run_end: Option<Date> = None;
    for line in known {
        match run_end {
            Some(end) if end.checked_add(gap).is_ok_and(|latest| line.start > latest) => {
                if end >= anchor {
                    // A run reaching the anchor ended, and nothing started within the gap.
                    return Some(match end.tomorrow() {
                        Ok(first_day_out) if first_day_out <= as_of => {
                            Observation { time: days(first_day_out), event: true }
                        }
                        _ => censored,
                    });
                }
                run_end = Some(line.end);
            }
            Some(end) => run_end = Some(end.max(line.end)),
            None => run_end = Some(line.end),
        }
    }
    let end = run_end.filter(|end| *end >= anchor)?;
    // The last run: churned once the gap after it has passed without a new line.
    match (end.checked_add(gap), end.tomorrow()) {
        (Ok(latest), Ok(first_day_out)) if latest <= as_of => {
            Some(Observation { time: days(first_day_out), event: true })
        }
        _ => Some(censored),
    }
}

/// One group of a hypothesis: the accounts that did the behaviour in the window, or those
/// that did not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Decided accounts in the group.
    pub accounts: u64,
    /// Of those, accounts whose first renewal was due by `as_of`.
    pub renewal_due: u64,
    pub renewed: u64,
    /// renewed / renewal_due.
    pub retention: Option<Ratio>,
    /// Wilson 95% interval of the retention.
    pub retention_interval: Option<Interval>,
    /// Accounts whose 12 months after the anchor have passed, with ARR on the anchor day.
    pub nrr_accounts: u64,
    pub nrr_start_arr_cents: i64,
    pub nrr_end_arr_cents: i64,
    /// Σ ARR 12 months after the anchor / Σ ARR on the anchor day.
    pub nrr_12m: Option<Ratio>,
    /// Time to churn from the anchor (not computed for discovery's candidates).
    pub survival: Option<KaplanMeier>,
}

/// Retention when the behaviour held, against when it did not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub held: Group,
    pub not_held: Group,
    /// retention(held) / retention(not held), with the Katz log interval.
    pub lift_ratio: Option<f64>,
    pub lift_ratio_interval: Option<Interval>,
    /// retention(held) − retention(not held): the test, the difference's 95% interval
    /// and the raw p-value. `None` when a group has no account due.
    pub difference: Option<Comparison>,
    /// The p-value adjusted (Benjamini–Hochberg) over every hypothesis of the report.
    pub adjusted_p: Option<f64>,
    /// Behaviour × retained: phi, sensitivity (of the retained, the share that did it)
    /// and precision (of those that did it, the share retained).
    pub association: Association,
    /// The log-rank test of the two survival curves; `None` without a churn while both
    /// groups are followed.
    pub log_rank: Option<LogRank>,
    pub label: Label,
}

/// What a hypothesis's figures say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    PositiveIndicator,
    NegativeIndicator,
    Inconclusive,
    /// A group has fewer accounts due for renewal than the minimum: not labelled.
    TooSmall,
}

impl Label {
    /// A positive or negative indicator.
    pub fn is_indicator(self) -> bool {
        matches!(self, Label::PositiveIndicator | Label::NegativeIndicator)
    }

    pub fn text(self) -> &'static str {
        match self {
            Label::PositiveIndicator => "positive indicator",
            Label::NegativeIndicator => "negative indicator",
            Label::Inconclusive => "inconclusive",
            Label::TooSmall => "too small to tell",
        }
    }
}

/// The figures of one hypothesis from its accounts' outcomes, split by whether the
/// behaviour held. The label is provisional ([`Label::Inconclusive`] or
/// [`Label::TooSmall`]) until [`label_all`] has adjusted the p-values of the report.
pub fn verdict(held: &[Outcome], not_held: &[Outcome], min_group: u64) -> Result<Verdict, MeasureError> {
    verdict_of(held, not_held, min_group, Curves::Yes)
}

/// Whether a verdict includes the survival curves and their log-rank test: discovery
/// leaves them out, as the log-rank test costs accounts × churn times per candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curves {
    Yes,
    No,
}

fn verdict_of(held: &[Outcome], not_held: &[Outcome], min_group: u64, curves: Curves) -> Result<Verdict, MeasureError> {
    let h = group(held, curves)?;
    let n = group(not_held, curves)?;
    let arm = |g: &Group| Arm::new(g.renewal_due, g.renewed);
    let (arm_h, arm_n) = (arm(&h)?, arm(&n)?);
    let difference = if arm_h.n > 0 && arm_n.n > 0 { Some(compare(arm_n, arm_h)?) } else { None };
    let (lift_ratio, lift_ratio_interval) = risk_ratio(arm_h, arm_n);
    let association = TwoByTwo {
        did_and_outcome: h.renewed,
        did_no_outcome: h.renewal_due - h.renewed,
        not_and_outcome: n.renewed,
        not_no_outcome: n.renewal_due - n.renewed,
    }
    .association();
    let obs = |o: &[Outcome]| o.iter().filter_map(|o| o.survival).collect::<Vec<_>>();
    let log_rank = match curves {
        Curves::Yes => log_rank(&obs(held), &obs(not_held)).ok(),
        Curves::No => None,
    };
    let label = if h.renewal_due.min(n.renewal_due) < min_group { Label::TooSmall } else { Label::Inconclusive };
    Ok(Verdict {
        held: h,
        not_held: n,
        lift_ratio,
        lift_ratio_interval,
        difference,
        adjusted_p: None,
        association,
        log_rank,
        label,
    })
}

/// Adjusts the p-values of every labelled-size verdict together (Benjamini–Hochberg) and
/// labels each: positive or negative indicator when the adjusted p is below
/// [`SIGNIFICANCE`] and the difference's interval excludes 0 on that side.
pub fn label_all(verdicts: &mut [&mut Verdict]) -> Result<(), MeasureError> {
    let tested: Vec<usize> = (0..verdicts.len())
        .filter(|i| verdicts.get(*i).is_some_and(|v| v.label != Label::TooSmall && v.difference.is_some()))
        .collect();
    let p: Vec<f64> =
        tested.iter().filter_map(|i| verdicts.get(*i)?.difference.map(|d| d.p_value.clamp(0.0, 1.0))).collect();
    let adjusted = benjamini_hochberg(&p)?;
    for (i, q) in tested.iter().zip(adjusted) {
        if let Some(v) = verdicts.get_mut(*i) {
            v.adjusted_p = Some(q);
            v.label = match v.difference {
                Some(d) if q < SIGNIFICANCE && d.difference_interval.low > 0.0 => Label::PositiveIndicator,
                Some(d) if q < SIGNIFICANCE && d.difference_interval.high < 0.0 => Label::NegativeIndicator,
                _ => Label::Inconclusive,
            };
        }
    }
    Ok(())
}

fn group(outcomes: &[Outcome], curves: Curves) -> Result<Group, MeasureError> {
    let due = outcomes.iter().filter(|o| o.renewed.is_some()).count() as u64;
    let renewed = outcomes.iter().filter(|o| o.renewed == Some(true)).count() as u64;
    let arr: Vec<(i64, i64)> = outcomes.iter().filter_map(|o| o.arr_12m).collect();
    // Each account's ARR fits the ledger's checked total, so the sums cannot overflow.
    let start: i64 = arr.iter().map(|(s, _)| s).sum();
    let end: i64 = arr.iter().map(|(_, e)| e).sum();
    let survival: Vec<Observation> = outcomes.iter().filter_map(|o| o.survival).collect();
    Ok(Group {
        accounts: outcomes.len() as u64,
        renewal_due: due,
        renewed,
        retention: Ratio::new(renewed, due),
        retention_interval: wilson(Arm::new(due, renewed)?, 0.95),
        nrr_accounts: arr.len() as u64,
        nrr_start_arr_cents: start,
        nrr_end_arr_cents: end,
        nrr_12m: Ratio::new(end, start),
        survival: match curves {
            Curves::Yes => Some(kaplan_meier(&survival)?),
            Curves::No => None,
        },
    })
}

/// The risk ratio rate(a) / rate(b) and its 95% interval
/// `exp(ln RR ± z · √(1/xa − 1/na + 1/xb − 1/nb))` (Katz); `None` with a zero count.
fn risk_ratio(a: Arm, b: Arm) -> (Option<f64>, Option<Interval>) {
    let (xa, na, xb, nb) = (a.conversions as f64, a.n as f64, b.conversions as f64, b.n as f64);
    if xa == 0.0 || xb == 0.0 || na == 0.0 || nb == 0.0 {
        return (None, None);
    }
    let rr = (xa / na) / (xb / nb);
    let se = (1.0 / xa - 1.0 / na + 1.0 / xb - 1.0 / nb).sqrt();
    let z = z_critical(0.95);
    (Some(rr), Some(Interval { low: (rr.ln() - z * se).exp(), high: (rr.ln() + z * se).exp() }))
}

/// One account as discovery reads it.
#[derive(Debug, Clone)]
pub struct DiscoveryAccount<'a> {
    pub anchor: Date,
    /// Its ledger lines, sorted by start.
    pub lines: &'a [Line],
    /// Per event name, when each event happened, in days from the start of the anchor
    /// day (negative before it), sorted.
    pub events: BTreeMap<String, Vec<f64>>,
}

/// One candidate behaviour: at least `threshold` of `event` in the first `window_days`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub event: String,
    pub threshold: u32,
    pub window_days: i32,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// An event name left out of discovery, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub event: String,
    pub reason: String,
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discovery {
    /// Candidates tested: event names × thresholds × windows, with both groups at least
    /// `min_group` accounts due.
    pub tested: u64,
    /// Candidates with a group below the minimum, not tested.
    pub too_small: u64,
    /// Every tested candidate, best first (adjusted p, then the size of the difference).
    pub candidates: Vec<Candidate>,
    pub excluded: Vec<Excluded>,
}

/// Words that make an event name part of the outcome rather than a behaviour: billing
/// and subscription events (matched as whole words of the lower-cased name split at
/// anything not a letter or digit, with a plural `s` allowed).
pub const OUTCOME_WORDS: [&str; 16] = [
    "subscription",
    "subscribe",
    "subscribed",
    "unsubscribe",
    "renewal",
    "renew",
    "renewed",
    "churn",
    "churned",
    "cancel",
    "cancelled",
    "canceled",
    "invoice",
    "payment",
    "billing",
    "refund",
];

/// Whether an event name says it is a billing or subscription outcome.
pub fn is_outcome_event(name: &str) -> bool {
    name.to_lowercase().split(|c: char| !c.is_alphanumeric()).any(|w| {
        let singular = w.strip_suffix('s').unwrap_or(w);
        OUTCOME_WORDS.contains(&w) || OUTCOME_WORDS.contains(&singular)
    })
}

/// Scans every event name × [`DISCOVERY_THRESHOLDS`] × [`DISCOVERY_WINDOWS`] over the
/// accounts decided on `as_of` for each window, tests each candidate as a hypothesis
/// (retention at the first renewal; no survival curves) and adjusts the p-values for the number tested. Left out: event names that are
/// outcomes ([`is_outcome_event`]), and names whose every occurrence is on or after the
/// account's first renewal or churn (the end of its first line ending on or after the
/// anchor). Events outside the window are never counted.
pub fn discover(accounts: &[DiscoveryAccount<'_>], as_of: Date, min_group: u64) -> Result<Discovery, MeasureError> {
    let mut names: BTreeMap<&str, bool> = BTreeMap::new();
    for a in accounts {
        let outcome_day = a.lines.iter().filter(|l| l.end >= a.anchor).map(|l| l.end).min();
        let before = outcome_day.map_or(f64::INFINITY, |d| (d - a.anchor).get_days() as f64);
        for (name, times) in &a.events {
            let seen_before = times.first().is_some_and(|t| *t < before);
            let entry = names.entry(name.as_str()).or_insert(false);
            *entry |= seen_before;
        }
    }
    let mut excluded = Vec::new();
    let mut kept = Vec::new();
    for (name, seen_before) in names {
        if is_outcome_event(name) {
            excluded.push(Excluded {
                event: name.to_string(),
                reason: "a billing or subscription event: part of the outcome".to_string(),
            });
        } else if !seen_before {
            excluded.push(Excluded {
                event: name.to_string(),
                reason: "happens only at or after the first renewal or churn".to_string(),
            });
        } else {
            kept.push(name);
        }
    }
    let mut candidates = Vec::new();
    let mut too_small = 0u64;
    for window in DISCOVERY_WINDOWS {
        let decided: Vec<(&DiscoveryAccount<'_>, Outcome)> = accounts
            .iter()
            .filter_map(|a| {
                let decided = a.anchor.checked_add(window.days()).ok().filter(|d| *d <= as_of)?;
                Some((a, outcome(a.lines, a.anchor, decided, as_of)))
            })
            .collect();
        let end = f64::from(window);
        for name in &kept {
            let counts: Vec<usize> = decided
                .iter()
                .map(|(a, _)| {
                    a.events.get(*name).map_or(0, |t| t.partition_point(|x| *x < end) - t.partition_point(|x| *x < 0.0))
                })
                .collect();
            for threshold in DISCOVERY_THRESHOLDS {
                let (mut held, mut not_held) = (Vec::new(), Vec::new());
                for ((_, o), c) in decided.iter().zip(&counts) {
                    if *c >= threshold as usize { held.push(*o) } else { not_held.push(*o) }
                }
                let v = verdict_of(&held, &not_held, min_group, Curves::No)?;
                if v.label == Label::TooSmall || v.difference.is_none() {
                    too_small += 1;
                    continue;
                }
                candidates.push(Candidate { event: name.to_string(), threshold, window_days: window, verdict: v });
            }
        }
    }
    let mut refs: Vec<&mut Verdict> = candidates.iter_mut().map(|c| &mut c.verdict).collect();
    label_all(&mut refs)?;
    let size = |c: &Candidate| c.verdict.difference.map_or(0.0, |d| d.difference.abs());
    candidates.sort_by(|a, b| {
        let p = |c: &Candidate| c.verdict.adjusted_p.unwrap_or(1.0);
        p(a).total_cmp(&p(b)).then(size(b).total_cmp(&size(a)))
    });
    Ok(Discovery { tested: candidates.len() as u64, too_small, candidates, excluded })
}

/// The rule of a candidate, as a milestone's `when`: `count('name', since_anchor) >= n`
/// (a quote in the name doubled, as the rule language reads it).
pub fn candidate_rule(event: &str, threshold: u32) -> String {
    format!("count('{}', since_anchor) >= {threshold}", event.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn line(account: &str, start: Date, end: Date, arr: i64) -> Line {
        Line { id: format!("{account}-{start}"), account: account.into(), start, end, arr_cents: arr }
    }

    #[test]
    fn the_first_renewal_is_the_first_line_ending_after_the_window() {
        let anchor = date(2025, 1, 1);
        let decided = date(2025, 1, 31);
        // A one-year line renewed 10 days after it ended (a gap of 9 days): renewed.
        let renewed =
            [line("a", anchor, date(2025, 12, 31), 100), line("a", date(2026, 1, 10), date(2026, 12, 31), 100)];
        let o = outcome(&renewed, anchor, decided, date(2026, 6, 1));
        assert_eq!(o.renewed, Some(true));
        // Still a customer on 2026-06-01: censored at 516 days (2025-01-01 → 2026-06-01).
        assert_eq!(o.survival, Some(Observation { time: 516.0, event: false }));
        // 12 months after the anchor (2026-01-01) no line is active (the gap): ARR 0 of 100.
        assert_eq!(o.arr_12m, Some((100, 0)));

        // Not renewed: churned once 30 days have passed after the end (2026-01-30 is the
        // last day a renewal may start; on 2026-01-30 it is not yet due).
        let churned = [line("b", anchor, date(2025, 12, 31), 100)];
        assert_eq!(outcome(&churned, anchor, decided, date(2026, 1, 30)).renewed, None);
        let o = outcome(&churned, anchor, decided, date(2026, 1, 31));
        assert_eq!(o.renewed, Some(false));
        // Churn on the first day without a line, 2026-01-01: 365 days after the anchor.
        assert_eq!(o.survival, Some(Observation { time: 365.0, event: true }));

        // An add-on ending in a longer contract: the account is still a customer.
        let addon = [line("c", anchor, date(2026, 12, 31), 100), line("c", anchor, date(2025, 6, 30), 50)];
        assert_eq!(outcome(&addon, anchor, decided, date(2025, 9, 1)).renewed, Some(true));

        // A line ending after as_of: not yet due; no line at all: nothing known.
        assert_eq!(outcome(&renewed, anchor, decided, date(2025, 6, 1)).renewed, None);
        assert_eq!(
            outcome(&[], anchor, decided, date(2026, 6, 1)),
            Outcome { renewed: None, survival: None, arr_12m: None }
        );
    }

    #[test]
    fn a_lapse_longer_than_the_gap_is_churn_even_when_the_account_returns() {
        let anchor = date(2025, 1, 1);
        let lines = [line("a", anchor, date(2025, 6, 30), 100), line("a", date(2025, 9, 1), date(2026, 8, 31), 100)];
        // 2025-07-01 is 181 days after 2025-01-01.
        assert_eq!(
            survival(&lines.iter().collect::<Vec<_>>(), anchor, date(2026, 1, 1)),
            Some(Observation { time: 181.0, event: true })
        );
    }

    #[test]
    fn outcome_words_are_whole_words() {
        assert!(is_outcome_event("Subscription Cancelled"));
        assert!(is_outcome_event("invoice.paid"));
        assert!(is_outcome_event("payments_failed"));
        assert!(!is_outcome_event("report_created"));
        assert!(!is_outcome_event("renewable_energy_tab_opened"));
        assert_eq!(candidate_rule("it's", 3), "count('it''s', since_anchor) >= 3");
    }

    #[test]
    fn the_risk_ratio_interval_is_katz() {
        // 40/50 against 30/50: RR = 0.8 / 0.6 = 1.3333; se = √(1/40 − 1/50 + 1/30 − 1/50)
        // = √0.0183333 = 0.135401; exp(ln 1.3333 ± 1.959964 · 0.135401) = 1.022552, 1.738569
        // (statsmodels 0.15 Table2x2([[40,10],[30,20]]).riskratio_confint():
        // 1.0225522362394361, 1.7385691554651315).
        let (rr, i) = risk_ratio(Arm { n: 50, conversions: 40 }, Arm { n: 50, conversions: 30 });
        assert!((rr.unwrap() - 4.0 / 3.0).abs() < 1e-12);
        let i = i.unwrap();
        assert!((i.low - 1.0225522362394361).abs() < 1e-12, "{}", i.low);
        assert!((i.high - 1.7385691554651315).abs() < 1e-12, "{}", i.high);
    }
}
