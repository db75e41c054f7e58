//! The staffing model: how many CSMs a customer base needs, and what they cost per ARR
//! dollar, from a touch model (human hours per account per year by segment and journey
//! stage) and one CSM's capacity and cost — "then it's just a math problem".
//!
//! Each account counts in the first touch-model segment it is in (in the model's order),
//! in its current stage; an account in none is counted apart ([`Staffing::outside`]), with
//! no hours. For a cell of the model with `n` accounts at `h` hours each:
//!
//! - hours = n × h; CSMs = hours / capacity (fractional), and whole CSMs = ⌈CSMs⌉;
//! - cost = CSMs × a CSM's cost; cost per ARR dollar = cost / ARR; ARR per CSM = ARR / CSMs.
//!
//! Totals are the same formulas over the summed hours and ARR (so the whole CSMs of a
//! total are the total rounded up once, not the sum of each row rounded up). Hours are
//! integer hundredths of an hour and money integer cents, so every figure is an exact
//! [`Ratio`]; `cost_cents` is that ratio rounded to the cent.
//!
//! A **what-if** ([`what_if`]) moves chosen stages of chosen segments to digital: their
//! hours become the stage's digital hours (the human time left: escalations, a pooled
//! team), and the same accounts are staffed again.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::Ratio;

/// One CSM and the touch model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// Hours a year one CSM gives accounts (above 0).
    pub csm_hours_per_year: u32,
    /// One CSM's fully loaded cost a year, in cents.
    pub csm_cost_per_year_cents: i64,
    /// The touch model's segments, in order: the first an account is in counts it.
    pub segments: Vec<SegmentTouch>,
    /// The journey's stages, in order: the rows of each segment.
    pub stages: Vec<String>,
}

/// A segment's hours per account per year, by stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentTouch {
    pub segment: String,
    /// (stage, human hours, hours left once digital), in hundredths of an hour; a stage
    /// not listed takes none.
    pub stages: Vec<(String, u32, u32)>,
}

impl SegmentTouch {
    fn hours(&self, stage: &str, digital: bool) -> u32 {
        self.stages.iter().find(|(s, _, _)| s == stage).map_or(0, |(_, h, d)| if digital { *d } else { *h })
    }
}

/// An account as the live engine sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account segments it is in.
    pub segments: BTreeSet<String>,
    /// Its journey stage (none: not in any stage yet).
    pub stage: Option<String>,
    /// Its ARR today, in cents.
    pub arr_cents: i64,
}

/// The (segment, stage) cells run digitally.
pub type Digital = BTreeSet<(String, String)>;

/// The figures of a set of accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub accounts: u64,
    pub arr_cents: i64,
    /// Human hours a year (exact: hundredths / 100).
    pub hours: Ratio,
    /// CSMs needed: hours / a CSM's hours.
    pub csms: Ratio,
    /// CSMs needed, rounded up.
    pub whole_csms: u64,
    /// What the hours cost (CSMs × a CSM's cost), exact in cents.
    pub cost: Ratio,
    /// `cost` rounded to the cent.
    pub cost_cents: i64,
    /// Cost of the whole CSMs (whole CSMs × a CSM's cost), in cents.
    pub whole_csms_cost_cents: i64,
    /// Cost per ARR dollar (cost / ARR); none without ARR.
    pub cost_per_arr_dollar: Option<Ratio>,
    /// ARR per CSM, in cents (ARR / CSMs); none when no CSM is needed.
    pub arr_per_csm: Option<Ratio>,
}

/// One stage of one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageRow {
    /// The stage; none for the segment's accounts in no stage (they take no hours).
    pub stage: Option<String>,
    /// Whether the stage is run digitally here.
    pub digital: bool,
    /// Human hours per account a year (exact).
    pub hours_per_account: Ratio,
    #[serde(flatten)]
    pub figures: Figures,
}

/// One segment of the touch model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentStaffing {
    pub segment: String,
    /// Every journey stage in order, then the accounts in no stage when there are any.
    pub stages: Vec<StageRow>,
    pub total: Figures,
}

/// Accounts in no touch-model segment: not staffed by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Outside {
    pub accounts: u64,
    pub arr_cents: i64,
}

/// The CSMs a customer base needs and their cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Staffing {
    pub csm_hours_per_year: u32,
    pub csm_cost_per_year_cents: i64,
    pub segments: Vec<SegmentStaffing>,
    /// Every segment of the model together.
    pub total: Figures,
    /// Accounts the model does not cover, left out of every figure above.
    pub outside: Outside,
}

/// After minus before, for the figures a what-if changes (the accounts and ARR do not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub hours: Ratio,
    pub csms: Ratio,
    pub whole_csms: i64,
    pub cost_cents: i64,
    pub whole_csms_cost_cents: i64,
    pub cost_per_arr_dollar: Option<Ratio>,
}

/// The staffing with the chosen stages digital, and the difference from it as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WhatIf {
    /// The (segment, stage) cells moved to digital.
    pub digital: Vec<(String, String)>,
    pub after: Staffing,
    /// The totals' change.
    pub change: Change,
    /// Each segment's change, in the model's order.
    pub segments: Vec<(String, Change)>,
}

/// The staffing of `accounts` under `model`, with the `digital` cells run digitally.
pub fn staffing(model: &Model, accounts: &[Account], digital: &Digital) -> Staffing {
    let capacity = i128::from(model.csm_hours_per_year) * 100;
    let cost = i128::from(model.csm_cost_per_year_cents);
    let figures_of = |accounts: u64, arr: i64, hundredths: i128| figures(accounts, arr, hundredths, capacity, cost);
    // Per segment and stage index (the last index: no stage): accounts, ARR.
    let n_stages = model.stages.len();
    let mut cells = vec![vec![(0u64, 0i64); n_stages + 1]; model.segments.len()];
    let mut outside = Outside { accounts: 0, arr_cents: 0 };
    for a in accounts {
        let Some(seg) = model.segments.iter().position(|s| a.segments.contains(&s.segment)) else {
            outside.accounts += 1;
            outside.arr_cents = outside.arr_cents.saturating_add(a.arr_cents);
            continue;
        };
        let stage = a.stage.as_ref().and_then(|st| model.stages.iter().position(|s| s == st)).unwrap_or(n_stages);
        if let Some(cell) = cells.get_mut(seg).and_then(|c| c.get_mut(stage)) {
            cell.0 += 1;
            cell.1 = cell.1.saturating_add(a.arr_cents);
        }
    }
    let mut total = (0u64, 0i64, 0i128);
    let mut segments = Vec::new();
    for (touch, cells) in model.segments.iter().zip(&cells) {
        let mut rows = Vec::new();
        let mut seg_total = (0u64, 0i64, 0i128);
        for (i, (accounts, arr)) in cells.iter().enumerate() {
            let stage = model.stages.get(i);
            if stage.is_none() && *accounts == 0 {
                continue;
            }
            let is_digital = stage.is_some_and(|s| digital.contains(&(touch.segment.clone(), s.clone())));
            let per_account = stage.map_or(0, |s| touch.hours(s, is_digital));
            let hundredths = i128::from(*accounts) * i128::from(per_account);
            seg_total = (seg_total.0 + accounts, seg_total.1.saturating_add(*arr), seg_total.2 + hundredths);
            rows.push(StageRow {
                stage: stage.cloned(),
                digital: is_digital,
                hours_per_account: hours(i128::from(per_account)),
                figures: figures_of(*accounts, *arr, hundredths),
            });
        }
        total = (total.0 + seg_total.0, total.1.saturating_add(seg_total.1), total.2 + seg_total.2);
        segments.push(SegmentStaffing {
            segment: touch.segment.clone(),
            stages: rows,
            total: figures_of(seg_total.0, seg_total.1, seg_total.2),
        });
    }
    Staffing {
        csm_hours_per_year: model.csm_hours_per_year,
        csm_cost_per_year_cents: model.csm_cost_per_year_cents,
        segments,
        total: figures_of(total.0, total.1, total.2),
        outside,
    }
}

/// The staffing with the `digital` cells run digitally, against it as it is.
pub fn what_if(model: &Model, accounts: &[Account], digital: &Digital) -> WhatIf {
    let before = staffing(model, accounts, &Digital::new());
    let after = staffing(model, accounts, digital);
    let capacity = i128::from(model.csm_hours_per_year) * 100;
    let cost = i128::from(model.csm_cost_per_year_cents);
    let total = change(&before.total, &after.total, capacity, cost);
    let segments = before
        .segments
        .iter()
        .zip(&after.segments)
        .map(|(b, a)| (b.segment.clone(), change(&b.total, &a.total, capacity, cost)))
        .collect();
    WhatIf { digital: digital.iter().cloned().collect(), after, change: total, segments }
}

fn change(before: &Figures, after: &Figures, capacity: i128, cost: i128) -> Change {
    // Both hours are hundredths over 100: the difference of the numerators is exact.
    let hundredths = after.hours.numerator() - before.hours.numerator();
    Change {
        hours: hours(hundredths),
        csms: ratio(hundredths, capacity),
        whole_csms: i64::try_from(after.whole_csms).unwrap_or(i64::MAX) - i64::try_from(before.whole_csms).unwrap_or(0),
        cost_cents: after.cost_cents - before.cost_cents,
        whole_csms_cost_cents: after.whole_csms_cost_cents - before.whole_csms_cost_cents,
        cost_per_arr_dollar: Ratio::new(
            hundredths.saturating_mul(cost),
            capacity.saturating_mul(after.arr_cents.into()),
        ),
    }
}

fn figures(accounts: u64, arr_cents: i64, hundredths: i128, capacity: i128, cost: i128) -> Figures {
    let whole = div_ceil(hundredths, capacity);
    let cost_exact = ratio(hundredths.saturating_mul(cost), capacity);
    Figures {
        accounts,
        arr_cents,
        hours: hours(hundredths),
        csms: ratio(hundredths, capacity),
        whole_csms: u64::try_from(whole).unwrap_or(u64::MAX),
        cost: cost_exact,
        cost_cents: clamp(round_half_away(hundredths.saturating_mul(cost), capacity)),
        whole_csms_cost_cents: clamp(whole.saturating_mul(cost)),
        cost_per_arr_dollar: Ratio::new(hundredths.saturating_mul(cost), capacity.saturating_mul(arr_cents.into())),
        arr_per_csm: Ratio::new(i128::from(arr_cents).saturating_mul(capacity), hundredths),
    }
}

/// Hundredths of an hour as an exact number of hours.
fn hours(hundredths: i128) -> Ratio {
    ratio(hundredths, 100)
}

/// `n / d` for a denominator known to be positive (never the fallback).
fn ratio(n: i128, d: i128) -> Ratio {
    Ratio::new(n, d.max(1)).unwrap_or(Ratio::ZERO)
}

/// ⌈n / d⌉ for n ≥ 0, d > 0.
fn div_ceil(n: i128, d: i128) -> i128 {
    let d = d.max(1);
    if n <= 0 { 0 } else { (n + d - 1) / d }
}

/// `n / d` rounded to the nearest integer, halves away from zero (d > 0).
fn round_half_away(n: i128, d: i128) -> i128 {
    let d = d.max(1);
    let q = (n.unsigned_abs().saturating_mul(2).saturating_add(d.unsigned_abs())) / (d.unsigned_abs() * 2);
    let q = i128::try_from(q).unwrap_or(i128::MAX);
    if n < 0 { -q } else { q }
}

fn clamp(x: i128) -> i64 {
    i64::try_from(x).unwrap_or(if x < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn account(segments: &[&str], stage: Option<&str>, arr_dollars: i64) -> Account {
        Account { segments: set(segments), stage: stage.map(str::to_string), arr_cents: arr_dollars * 100 }
    }

    /// A CSM gives 50 hours and costs 96,000.00 a year (1,920.00 an hour), so the figures
    /// stay small enough to check by hand.
    fn model() -> Model {
        let touch = |segment: &str, stages: &[(&str, u32, u32)]| SegmentTouch {
            segment: segment.to_string(),
            stages: stages.iter().map(|(s, h, d)| (s.to_string(), h * 100, d * 100)).collect(),
        };
        Model {
            csm_hours_per_year: 50,
            csm_cost_per_year_cents: 9_600_000,
            segments: vec![
                touch("enterprise", &[("onboarding", 40, 10), ("adoption", 20, 0), ("renewal", 12, 0)]),
                touch("smb", &[("onboarding", 4, 0), ("adoption", 1, 0), ("renewal", 1, 0)]),
            ],
            stages: vec!["onboarding".into(), "adoption".into(), "renewal".into()],
        }
    }

    fn accounts() -> Vec<Account> {
        vec![
            // In both segments: the first in the model (enterprise) counts it.
            account(&["enterprise", "smb"], Some("onboarding"), 150_000),
            account(&["enterprise"], Some("adoption"), 120_000),
            account(&["enterprise"], Some("renewal"), 100_000),
            account(&["enterprise"], None, 50_000),
            account(&["smb"], Some("onboarding"), 10_000),
            account(&["smb"], Some("onboarding"), 10_000),
            account(&["smb"], Some("adoption"), 5_000),
            account(&["smb", "detractors"], Some("adoption"), 5_000),
            account(&["detractors"], Some("adoption"), 7_000),
        ]
    }

    fn is(r: Ratio, numerator: i128, denominator: i128) -> bool {
        r.numerator() * denominator == numerator * r.denominator()
    }

    #[test]
    fn hours_csms_and_cost_per_segment_and_stage_by_hand() {
        let s = staffing(&model(), &accounts(), &Digital::new());
        let enterprise = &s.segments[0];
        // Enterprise: onboarding 1 × 40 h, adoption 1 × 20 h, renewal 1 × 12 h, and one
        // account in no stage (0 h): 72 h; ARR 420,000.
        let rows: Vec<(Option<&str>, u64, i128)> = enterprise
            .stages
            .iter()
            .map(|r| (r.stage.as_deref(), r.figures.accounts, r.figures.hours.numerator()))
            .collect();
        assert_eq!(
            rows,
            [(Some("onboarding"), 1, 4000), (Some("adoption"), 1, 2000), (Some("renewal"), 1, 1200), (None, 1, 0)]
        );
        let e = &enterprise.total;
        assert_eq!((e.accounts, e.arr_cents), (4, 42_000_000));
        assert!(is(e.hours, 72, 1));
        // 72 / 50 = 1.44 CSMs, 2 whole; 1.44 × 96,000 = 138,240.00.
        assert!(is(e.csms, 144, 100));
        assert_eq!((e.whole_csms, e.cost_cents, e.whole_csms_cost_cents), (2, 13_824_000, 19_200_000));
        // 138,240 / 420,000 = 0.3291…; 420,000 / 1.44 = 291,666.67 (in cents: 29,166,666.67).
        assert!(is(e.cost_per_arr_dollar.expect("ARR"), 138_240, 420_000));
        assert!(is(e.arr_per_csm.expect("CSMs"), 42_000_000 * 100, 144));
        // SMB: onboarding 2 × 4 h, adoption 2 × 1 h: 10 h, 0.2 CSMs (1 whole), 19,200.00.
        let smb = &s.segments[1].total;
        assert_eq!((smb.accounts, smb.arr_cents, smb.whole_csms, smb.cost_cents), (4, 3_000_000, 1, 1_920_000));
        assert!(is(smb.csms, 2, 10));
        // Renewal has no SMB account: a row of zeros, and no ARR per CSM without a CSM.
        let renewal = &s.segments[1].stages[2];
        assert_eq!((renewal.figures.accounts, renewal.figures.cost_cents), (0, 0));
        assert_eq!((renewal.figures.cost_per_arr_dollar, renewal.figures.arr_per_csm), (None, None));
        assert_eq!(s.segments[1].stages.len(), 3, "no row for accounts in no stage when there are none");
    }

    #[test]
    fn the_total_is_rounded_up_once_and_the_uncovered_accounts_are_apart() {
        let s = staffing(&model(), &accounts(), &Digital::new());
        let t = &s.total;
        // 72 + 10 = 82 h = 1.64 CSMs: 2 whole (the segments rounded up one by one: 3).
        assert!(is(t.csms, 164, 100));
        assert_eq!((t.accounts, t.arr_cents, t.whole_csms), (8, 45_000_000, 2));
        // 1.64 × 96,000 = 157,440.00; 2 CSMs cost 192,000.00.
        assert_eq!((t.cost_cents, t.whole_csms_cost_cents), (15_744_000, 19_200_000));
        // 157,440 / 450,000 = 0.34987 per ARR dollar; 450,000 / 1.64 = 274,390.24 per CSM.
        assert!(is(t.cost_per_arr_dollar.expect("ARR"), 157_440, 450_000));
        assert!(is(t.arr_per_csm.expect("CSMs"), 45_000_000 * 100, 164));
        assert_eq!(s.outside, Outside { accounts: 1, arr_cents: 700_000 });
    }

    #[test]
    fn moving_stages_to_digital_leaves_their_digital_hours() {
        let digital: Digital = [("enterprise", "onboarding"), ("smb", "adoption"), ("smb", "renewal")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let w = what_if(&model(), &accounts(), &digital);
        // Enterprise onboarding keeps 10 of its 40 h; SMB adoption drops 2 h: 82 − 30 − 2 = 50 h.
        let onboarding = &w.after.segments[0].stages[0];
        assert!(onboarding.digital && is(onboarding.hours_per_account, 10, 1));
        assert!(is(w.after.total.hours, 50, 1));
        // 50 h = exactly 1 CSM: 96,000.00, i.e. 61,440.00 and 0.64 CSM less.
        assert_eq!((w.after.total.whole_csms, w.after.total.cost_cents), (1, 9_600_000));
        assert!(is(w.change.hours, -32, 1));
        assert!(is(w.change.csms, -64, 100));
        assert_eq!(
            (w.change.whole_csms, w.change.cost_cents, w.change.whole_csms_cost_cents),
            (-1, -6_144_000, -9_600_000)
        );
        // 96,000 / 450,000 − 157,440 / 450,000 = −61,440 / 450,000.
        assert!(is(w.change.cost_per_arr_dollar.expect("ARR"), -61_440, 450_000));
        let smb = &w.segments[1];
        assert_eq!((smb.0.as_str(), smb.1.cost_cents), ("smb", -384_000));
        assert_eq!(w.digital.len(), 3);
    }

    #[test]
    fn cost_is_rounded_to_the_cent_half_away_from_zero() {
        // 0.01 h of a CSM giving 1 h a year at 1.50: 1.5 cents, printed 2.
        let m = Model {
            csm_hours_per_year: 1,
            csm_cost_per_year_cents: 150,
            segments: vec![SegmentTouch { segment: "s".into(), stages: vec![("a".into(), 1, 0)] }],
            stages: vec!["a".into()],
        };
        let s = staffing(&m, &[account(&["s"], Some("a"), 0)], &Digital::new());
        assert_eq!((s.total.cost_cents, s.total.whole_csms), (2, 1));
        assert!(is(s.total.cost, 3, 2));
        assert_eq!(s.total.cost_per_arr_dollar, None, "no ARR, no cost per ARR dollar");
        assert_eq!(round_half_away(-3, 2), -2);
        assert_eq!(round_half_away(5, 4), 1);
    }

    #[test]
    fn an_empty_customer_base_needs_no_one() {
        let s = staffing(&model(), &[], &Digital::new());
        assert_eq!((s.total.accounts, s.total.whole_csms, s.total.cost_cents), (0, 0, 0));
        assert_eq!((s.total.cost_per_arr_dollar, s.total.arr_per_csm), (None, None));
    }
}
