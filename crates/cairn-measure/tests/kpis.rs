//! Revenue and retention KPIs on hand-built ledgers. Every expected value is worked out
//! by hand in the comments, from the lines as written, not from this crate's output.

use cairn_measure::cohorts::cohort_retention;
use cairn_measure::ltv::lifetime_value;
use cairn_measure::movements::movements;
use cairn_measure::renewal::renewal_rate;
use cairn_measure::retention::{monthly_kpis, period_kpis};
use cairn_measure::{Ledger, Line, Period, PeriodKind, Ratio};
use jiff::civil::{Date, date};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn line(id: &str, account: &str, start: Date, end: Date, arr_cents: i64) -> Line {
    Line { id: id.into(), account: account.into(), start, end, arr_cents }
}

fn ratio(n: i64, d: i64) -> Option<Ratio> {
    Ratio::new(n, d)
}

/// Eight accounts over 2024–2027, amounts in cents:
///
/// - A: flat renewal, 10,000.00 in 2025 and again in 2026.
/// - B: 12,000.00 for 2025 with a mid-term add-on of 3,000.50 from July, renewed for 2026
///   as one line of 15,000.50.
/// - C: 10,000.00 from 2025-04-01, expanded to 14,000.00 at its renewal on 2026-04-01.
/// - D: 20,000.00 from 2025-06-01, contracted to 15,000.25 at its renewal on 2026-06-01.
/// - E: 8,000.00 from 2025-03-01 to 2026-02-28, then gone (churn).
/// - F: 6,000.00 from 2024-07-01 to 2025-06-30, nothing for eight months, back with
///   7,000.00 from 2026-03-01 (lapse and return).
/// - G: a new logo, 9,999.99 from 2026-05-15.
/// - H: two lines from 2025-01-01: 5,000.00 for two years and 2,500.00 for 2025 only.
fn ledger() -> Ledger {
    Ledger::new([
        line("A1", "A", date(2025, 1, 1), date(2025, 12, 31), 1_000_000),
        line("A2", "A", date(2026, 1, 1), date(2026, 12, 31), 1_000_000),
        line("B1", "B", date(2025, 1, 1), date(2025, 12, 31), 1_200_000),
        line("B2", "B", date(2025, 7, 1), date(2025, 12, 31), 300_050),
        line("B3", "B", date(2026, 1, 1), date(2026, 12, 31), 1_500_050),
        line("C1", "C", date(2025, 4, 1), date(2026, 3, 31), 1_000_000),
        line("C2", "C", date(2026, 4, 1), date(2027, 3, 31), 1_400_000),
        line("D1", "D", date(2025, 6, 1), date(2026, 5, 31), 2_000_000),
        line("D2", "D", date(2026, 6, 1), date(2027, 5, 31), 1_500_025),
        line("E1", "E", date(2025, 3, 1), date(2026, 2, 28), 800_000),
        line("F1", "F", date(2024, 7, 1), date(2025, 6, 30), 600_000),
        line("F2", "F", date(2026, 3, 1), date(2027, 2, 28), 700_000),
        line("G1", "G", date(2026, 5, 15), date(2027, 5, 14), 999_999),
        line("H1", "H", date(2025, 1, 1), date(2026, 12, 31), 500_000),
        line("H2", "H", date(2025, 1, 1), date(2025, 12, 31), 250_000),
    ])
    .unwrap()
}

fn year(y: i16) -> Period {
    Period::containing(PeriodKind::Year, date(y, 1, 1))
}

#[test]
fn a_year_of_retention_kpis() {
    let k = period_kpis(&ledger(), year(2026), None);
    // Start ARR = ARR on 2025-12-31. F has none (its line ended 2025-06-30); G is not a
    // customer yet. A 1,000,000 + B 1,200,000 + 300,050 + C 1,000,000 + D 2,000,000
    // + E 800,000 + H 500,000 + 250,000 = 7,050,050, over six accounts (the cohort).
    assert_eq!(k.start_arr_cents, 7_050_050);
    assert_eq!(k.cohort_accounts, 6);
    // End ARR on 2026-12-31 per cohort account: A 1,000,000 (flat), B 1,500,050 (flat),
    // C 1,400,000 (+400,000), D 1,500,025 (−499,975), E 0 (churned 800,000),
    // H 500,000 (−250,000). Σ = 5,900,075.
    assert_eq!(k.cohort_end_arr_cents, 5_900_075);
    assert_eq!(k.expansion_cents, 400_000);
    assert_eq!(k.contraction_cents, 749_975);
    assert_eq!((k.churned_accounts, k.churned_arr_cents), (1, 800_000));
    // Σ min(end, start): 1,000,000 + 1,500,050 + 1,000,000 + 1,500,025 + 0 + 500,000.
    assert_eq!(k.retained_arr_cents, 5_500_075);
    // Outside the cohort: G is new (999,999), F is back (700,000, had ARR in 2025).
    assert_eq!((k.new_accounts, k.new_arr_cents), (1, 999_999));
    assert_eq!((k.reactivated_accounts, k.reactivated_arr_cents), (1, 700_000));
    // End ARR over everyone = 5,900,075 + 999,999 + 700,000.
    assert_eq!(k.end_arr_cents, 7_600_074);
    assert_eq!(k.nrr, ratio(5_900_075, 7_050_050));
    assert_eq!(k.grr, ratio(5_500_075, 7_050_050));
    assert_eq!(k.logo_churn, ratio(1, 6));
    // 5,900,075 / 7,050,050 = 0.836887…, 5,500,075 / 7,050,050 = 0.780150…, 1/6.
    assert_eq!(k.nrr.unwrap().percent_one_decimal(), "83.7%");
    assert_eq!(k.grr.unwrap().percent_one_decimal(), "78.0%");
    assert_eq!(k.logo_churn.unwrap().percent_one_decimal(), "16.7%");
}

#[test]
fn a_segment_counts_only_its_members() {
    let members: BTreeSet<String> = ["C", "D", "G"].map(String::from).into();
    let k = period_kpis(&ledger(), year(2026), Some(&members));
    // Cohort C and D: start 1,000,000 + 2,000,000; end 1,400,000 + 1,500,025; G new.
    assert_eq!((k.cohort_accounts, k.start_arr_cents, k.cohort_end_arr_cents), (2, 3_000_000, 2_900_025));
    assert_eq!(k.nrr, ratio(2_900_025, 3_000_000));
    assert_eq!(k.grr, ratio(2_500_025, 3_000_000));
    assert_eq!(k.new_arr_cents, 999_999);
    assert_eq!(k.logo_churn, ratio(0, 2));
}

#[test]
fn an_empty_cohort_has_no_ratios_rather_than_a_division_by_zero() {
    let k = period_kpis(&ledger(), year(2023), None);
    assert_eq!((k.cohort_accounts, k.nrr, k.grr, k.logo_churn), (0, None, None, None));
}

#[test]
fn monthly_movements_of_2026_add_up_to_the_cent() {
    let w = movements(&ledger(), date(2026, 1, 1), date(2026, 12, 31), None).unwrap();
    assert_eq!(w.months.len(), 12);
    let by_month = |m: usize| &w.months[m - 1];
    // January: H's 2,500.00 line ended 2025-12-31: contraction 250,000.
    assert_eq!((by_month(1).contraction_cents, by_month(1).contraction_accounts), (250_000, 1));
    assert_eq!(by_month(1).end_arr_cents, 6_800_050);
    // February: E's line runs to 2026-02-28 inclusive, so nothing moves.
    assert_eq!(by_month(2).bridged_end_cents(), by_month(2).start_arr_cents);
    // March: E churns (800,000) and F returns after eight months at zero (700,000).
    assert_eq!((by_month(3).churn_cents, by_month(3).reactivation_cents, by_month(3).new_cents), (800_000, 700_000, 0));
    // April: C renews at 14,000.00 (+400,000). May: G is new (999,999; D's old line is
    // still active on 05-31). June: D renews at 15,000.25 (−499,975).
    assert_eq!(by_month(4).expansion_cents, 400_000);
    assert_eq!((by_month(5).new_cents, by_month(5).new_accounts), (999_999, 1));
    assert_eq!(by_month(6).contraction_cents, 499_975);
    assert_eq!(by_month(6).end_arr_cents, 7_600_074);
    // The waterfall: 7,050,050 + 999,999 + 400,000 + 700,000 − 749,975 − 800,000 =
    // 7,600,074, the year's end ARR.
    let t = &w.total;
    assert_eq!(t.start_arr_cents, 7_050_050);
    assert_eq!(
        (t.new_cents, t.expansion_cents, t.reactivation_cents, t.contraction_cents, t.churn_cents),
        (999_999, 400_000, 700_000, 749_975, 800_000)
    );
    assert_eq!(t.end_arr_cents, 7_600_074);
    assert_eq!(t.bridged_end_cents(), t.end_arr_cents);
    // Quick ratio (999,999 + 400,000 + 700,000) / (749,975 + 800,000).
    assert_eq!(t.quick_ratio, ratio(2_099_999, 1_549_975));
    // The year's movements agree with the year's KPIs.
    let k = period_kpis(&ledger(), year(2026), None);
    assert_eq!(t.churn_cents, k.churned_arr_cents);
    assert_eq!(t.expansion_cents, k.expansion_cents);
    assert_eq!(t.contraction_cents, k.contraction_cents);
}

#[test]
fn the_first_year_is_new_business_a_mid_term_add_on_and_a_churn() {
    let w = movements(&ledger(), date(2025, 1, 1), date(2025, 12, 31), None).unwrap();
    let t = &w.total;
    // Start: only F (600,000) on 2024-12-31. New: A, B, H in January (1,000,000 +
    // 1,200,000 + 750,000), E in March (800,000), C in April (1,000,000), D in June
    // (2,000,000) = 6,750,000 over six accounts. July: B's add-on +300,050, F churns.
    assert_eq!((t.start_arr_cents, t.new_cents, t.new_accounts), (600_000, 6_750_000, 6));
    assert_eq!((w.months[6].expansion_cents, w.months[6].churn_cents), (300_050, 600_000));
    assert_eq!((t.expansion_cents, t.churn_cents, t.contraction_cents, t.reactivation_cents), (300_050, 600_000, 0, 0));
    assert_eq!(t.end_arr_cents, 7_050_050);
    assert_eq!(t.quick_ratio, ratio(7_050_050, 600_000));
    // A month with no loss has no quick ratio.
    assert_eq!(w.months[0].quick_ratio, None);
}

#[test]
fn renewal_rate_follows_lines_to_their_successor() {
    let ledger = ledger();
    // H2 2025: A1, B1 and B2 end on 2025-12-31 and A2/B3 start the next day (renewed);
    // H2 (2,500.00) ends too, and H's other line started before it: not renewed. 3 of 4.
    let h2 = Period::new(date(2025, 7, 1), date(2025, 12, 31)).unwrap();
    let r = renewal_rate(&ledger, h2, None);
    assert_eq!((r.lines_ending, r.renewed, r.rate), (4, 3, ratio(3, 4)));
    assert_eq!(r.not_renewed, ["H2"]);
    // H1 2026: C1 and D1 renewed the next day; E1 was not. 2 of 3.
    let h1 = Period::new(date(2026, 1, 1), date(2026, 6, 30)).unwrap();
    let r = renewal_rate(&ledger, h1, None);
    assert_eq!((r.lines_ending, r.renewed, r.not_renewed.as_slice()), (3, 2, ["E1".to_string()].as_slice()));
}

#[test]
fn a_renewal_may_start_after_a_gap_of_thirty_days_but_not_thirty_one() {
    let ledger = Ledger::new([
        // P: ends 2025-11-30, next starts 2025-12-31: 30 days without cover (Dec 1–30).
        line("P1", "P", date(2025, 1, 1), date(2025, 11, 30), 300_000),
        line("P2", "P", date(2025, 12, 31), date(2026, 12, 30), 300_000),
        // Q: ends 2025-10-31, next starts 2025-12-02: 31 days (Nov 1 – Dec 1).
        line("Q1", "Q", date(2025, 1, 1), date(2025, 10, 31), 400_000),
        line("Q2", "Q", date(2025, 12, 2), date(2026, 12, 1), 400_000),
        // R: a second line that started while R1 ran is not R1's renewal.
        line("R1", "R", date(2025, 1, 1), date(2025, 12, 31), 100_000),
        line("R2", "R", date(2025, 6, 1), date(2026, 5, 31), 100_000),
    ])
    .unwrap();
    let r = renewal_rate(&ledger, year(2025), None);
    assert_eq!((r.lines_ending, r.renewed), (3, 1));
    assert_eq!(r.not_renewed, ["Q1", "R1"]);
}

#[test]
fn cohort_triangle_by_start_month() {
    let rows = cohort_retention(&ledger(), date(2025, 1, 1), date(2025, 3, 31), date(2026, 3, 31), None).unwrap();
    assert_eq!(rows.len(), 3);
    // January 2025: A, B, H with initial ARR 1,000,000 + 1,200,000 + 750,000 = 2,950,000.
    // Cells for months 0..=14 (2025-01-31 to 2026-03-31).
    let jan = &rows[0];
    assert_eq!((jan.accounts, jan.initial_arr_cents, jan.months.len()), (3, 2_950_000, 15));
    assert_eq!(jan.months[0].revenue_retention, ratio(2_950_000, 2_950_000));
    // Month 6 (2025-07-31): B's add-on: 1,000,000 + 1,500,050 + 750,000 = 3,250,050.
    assert_eq!(jan.months[6].on, date(2025, 7, 31));
    assert_eq!(jan.months[6].revenue_retention, ratio(3_250_050, 2_950_000));
    assert_eq!(jan.months[6].revenue_retention.unwrap().percent_one_decimal(), "110.2%");
    // Month 12 (2026-01-31): H dropped its 2,500.00 line: 3,000,050; all three remain.
    assert_eq!(jan.months[12].arr_cents, 3_000_050);
    assert_eq!(jan.months[12].logo_retention, ratio(3, 3));
    // February 2025: nobody started; the row is there, with no ratios.
    assert_eq!((rows[1].accounts, rows[1].months[0].logo_retention), (0, None));
    // March 2025: E alone; still there at month 11 (2026-02-28), gone at month 12.
    let mar = &rows[2];
    assert_eq!(mar.months.len(), 13);
    assert_eq!(mar.months[11].logo_retention, ratio(1, 1));
    assert_eq!((mar.months[12].logo_retention, mar.months[12].revenue_retention), (ratio(0, 1), ratio(0, 800_000)));
}

#[test]
fn lifetime_value_is_arpa_times_margin_over_annual_logo_churn() {
    let k = period_kpis(&ledger(), year(2026), None);
    // ARPA 7,050,050 / 6, margin 4/5, churn 1/6: 7,050,050 × 4/5 = 5,640,040 cents.
    let ltv = lifetime_value(&k, Ratio::new(4, 5).unwrap()).unwrap().unwrap();
    assert_eq!(ltv.to_f64(), 5_640_040.0);
    let quarter = period_kpis(&ledger(), Period::containing(PeriodKind::Quarter, date(2026, 1, 1)), None);
    assert!(lifetime_value(&quarter, Ratio::new(4, 5).unwrap()).unwrap_err().to_string().contains("one-year"));
    assert!(lifetime_value(&k, Ratio::new(3, 2).unwrap()).is_err());
    // 2025's cohort (F alone on 2024-12-31) churned: 600,000 × 4/5 / 1.
    let k2025 = period_kpis(&ledger(), year(2025), None);
    assert_eq!(lifetime_value(&k2025, Ratio::new(4, 5).unwrap()).unwrap(), Ratio::new(2_400_000, 5));
    let members: BTreeSet<String> = ["A".to_string()].into();
    let no_churn = period_kpis(&ledger(), year(2026), Some(&members));
    assert_eq!(lifetime_value(&no_churn, Ratio::new(1, 1).unwrap()).unwrap(), None);
}

#[test]
fn monthly_kpis_form_a_time_series() {
    let series = monthly_kpis(&ledger(), date(2026, 1, 1), date(2026, 3, 31), None).unwrap();
    assert_eq!(series.len(), 3);
    // March 2026: start ARR on 02-28 is 6,800,050 (after H's contraction in January).
    assert_eq!(series[2].start_arr_cents, 6_800_050);
    assert_eq!((series[2].churned_arr_cents, series[2].reactivated_arr_cents), (800_000, 700_000));
}

fn arb_ledger() -> impl Strategy<Value = Vec<Line>> {
    let raw_line = (0u8..6, 0i64..1100, 0i64..500, 0i64..5_000_000);
    proptest::collection::vec(raw_line, 0..24).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (account, start, length, arr))| {
                let start = date(2024, 1, 1).checked_add(jiff::Span::new().days(start)).unwrap();
                let end = start.checked_add(jiff::Span::new().days(length)).unwrap();
                line(&format!("L{i}"), &format!("acct{account}"), start, end, arr)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the ledger, every month's movements and the range's waterfall bridge start
    /// ARR to end ARR to the cent, months chain, and each month's buckets are that month's
    /// KPIs.
    #[test]
    fn the_waterfall_always_adds_up(lines in arb_ledger()) {
        let ledger = Ledger::new(lines).unwrap();
        let w = movements(&ledger, date(2023, 12, 1), date(2027, 6, 30), None).unwrap();
        prop_assert_eq!(w.total.bridged_end_cents(), w.total.end_arr_cents);
        let mut previous_end = w.total.start_arr_cents;
        for m in &w.months {
            prop_assert_eq!(m.start_arr_cents, previous_end);
            prop_assert_eq!(m.bridged_end_cents(), m.end_arr_cents);
            previous_end = m.end_arr_cents;
            let k = period_kpis(&ledger, m.period, None);
            prop_assert_eq!(k.cohort_end_arr_cents, k.start_arr_cents + k.expansion_cents - k.contraction_cents - k.churned_arr_cents);
            prop_assert_eq!(k.end_arr_cents, k.cohort_end_arr_cents + k.new_arr_cents + k.reactivated_arr_cents);
            prop_assert_eq!(
                (m.new_cents, m.reactivation_cents, m.expansion_cents, m.contraction_cents, m.churn_cents),
                (k.new_arr_cents, k.reactivated_arr_cents, k.expansion_cents, k.contraction_cents, k.churned_arr_cents)
            );
        }
        prop_assert_eq!(previous_end, w.total.end_arr_cents);
    }

    /// The series computed in one pass over the ledger (every month's KPIs, the cohort
    /// triangle) and the renewal rate's search among sorted lines give what the
    /// definitions give account by account and day by day (`Ledger::arr_on`), for every
    /// account and for a segment.
    #[test]
    fn the_one_pass_series_are_the_definitions_month_by_month(lines in arb_ledger()) {
        let ledger = Ledger::new(lines.clone()).unwrap();
        let (from, to, through) = (date(2023, 12, 1), date(2027, 6, 30), date(2026, 8, 31));
        let segment: BTreeSet<String> = ["acct0", "acct2", "acct5"].into_iter().map(String::from).collect();
        for members in [None, Some(&segment)] {
            for k in monthly_kpis(&ledger, from, to, members).unwrap() {
                prop_assert_eq!(&k, &period_kpis(&ledger, k.period, members));
            }
            for row in cohort_retention(&ledger, from, to, through, members).unwrap() {
                // The row's accounts: first day with ARR in its start month.
                let mut ids = Vec::new();
                for (id, lines) in ledger.accounts(members) {
                    let first = lines.iter().filter(|l| l.arr_cents > 0).map(|l| l.start).min();
                    if first.is_some_and(|f| row.start_month.contains(f)) {
                        ids.push((id, first.unwrap()));
                    }
                }
                prop_assert_eq!(row.accounts, ids.len() as u64);
                let initial: i64 = ids.iter().map(|(id, f)| ledger.arr_on(id, *f)).sum();
                prop_assert_eq!(row.initial_arr_cents, initial);
                let mut offset = 0;
                let mut on = row.start_month.last();
                while on <= through {
                    let cell = &row.months[offset];
                    prop_assert_eq!(cell.on, on);
                    let arr: Vec<i64> = ids.iter().map(|(id, _)| ledger.arr_on(id, on)).collect();
                    prop_assert_eq!(cell.arr_cents, arr.iter().sum::<i64>());
                    prop_assert_eq!(cell.retained_accounts, arr.iter().filter(|a| **a > 0).count() as u64);
                    offset += 1;
                    on = on.first_of_month().checked_add(jiff::Span::new().months(1)).unwrap().last_of_month();
                }
                prop_assert_eq!(row.months.len(), offset);
            }
            for month in Period::months(from, to).unwrap() {
                let r = renewal_rate(&ledger, month, members);
                let mut not_renewed = Vec::new();
                let mut ending = 0;
                for l in lines.iter().filter(|l| members.is_none_or(|m| m.contains(&l.account))) {
                    if month.contains(l.end) {
                        ending += 1;
                        let latest = l.end.checked_add(jiff::Span::new().days(31)).unwrap();
                        if !lines.iter().any(|n| n.account == l.account && n.start > l.end && n.start <= latest) {
                            not_renewed.push(l.id.clone());
                        }
                    }
                }
                let mut got = r.not_renewed.clone();
                got.sort();
                not_renewed.sort();
                prop_assert_eq!(r.lines_ending, ending);
                prop_assert_eq!(got, not_renewed);
            }
        }
    }
}
