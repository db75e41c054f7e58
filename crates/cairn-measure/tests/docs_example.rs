//! The worked examples of docs/metrics.md, computed by the crate: if a definition
//! changes, the documentation's numbers must change with it.

use cairn_measure::cohorts::cohort_retention;
use cairn_measure::ltv::lifetime_value;
use cairn_measure::movements::movements;
use cairn_measure::renewal::renewal_rate;
use cairn_measure::retention::period_kpis;
use cairn_measure::stats::{Observation, TwoByTwo, kaplan_meier, roc_auc};
use cairn_measure::{Ledger, Line, Period, PeriodKind, Ratio};
use jiff::civil::{Date, date};

const DOC: &str = include_str!("../../../docs/metrics.md");

fn line(account: &str, n: u8, start: Date, end: Date, dollars: i64) -> Line {
    Line { id: format!("{account} {n}"), account: account.into(), start, end, arr_cents: dollars * 100 }
}

/// The table under "The example ledger".
fn example() -> Ledger {
    Ledger::new([
        line("Acme", 1, date(2025, 1, 1), date(2025, 12, 31), 1_000),
        line("Acme", 2, date(2026, 1, 1), date(2026, 12, 31), 1_200),
        line("Beta", 1, date(2025, 1, 1), date(2025, 12, 31), 500),
        line("Beta", 2, date(2025, 7, 1), date(2025, 12, 31), 100),
        line("Beta", 3, date(2026, 1, 1), date(2026, 12, 31), 400),
        line("Cyan", 1, date(2025, 1, 1), date(2026, 2, 28), 300),
        line("Delta", 1, date(2025, 2, 1), date(2025, 5, 31), 200),
        line("Delta", 2, date(2026, 2, 1), date(2026, 12, 31), 250),
        line("Echo", 1, date(2026, 3, 15), date(2027, 3, 14), 800),
    ])
    .unwrap()
}

fn documented(text: &str) {
    assert!(DOC.contains(text), "docs/metrics.md no longer says `{text}`");
}

#[test]
fn the_ledger_table_is_the_one_tested() {
    for row in [
        "| Beta | 2 (add-on) | 2025-07-01 | 2025-12-31 | 100 |",
        "| Cyan | 1 | 2025-01-01 | 2026-02-28 | 300 |",
        "| Echo | 1 | 2026-03-15 | 2027-03-14 | 800 |",
    ] {
        documented(row);
    }
}

#[test]
fn period_kpis_of_q1_2026() {
    let q1 = Period::containing(PeriodKind::Quarter, date(2026, 1, 1));
    let k = period_kpis(&example(), q1, None);
    assert_eq!((k.cohort_accounts, k.start_arr_cents), (3, 190_000));
    assert_eq!(k.nrr.unwrap().percent_one_decimal(), "84.2%");
    assert_eq!(k.grr.unwrap().percent_one_decimal(), "73.7%");
    assert_eq!(k.logo_churn.unwrap().percent_one_decimal(), "33.3%");
    assert_eq!((k.churned_arr_cents, k.expansion_cents, k.contraction_cents), (30_000, 20_000, 20_000));
    assert_eq!((k.new_arr_cents, k.new_accounts, k.reactivated_arr_cents), (80_000, 1, 25_000));
    assert_eq!(k.end_arr_cents, 265_000);
    documented("| NRR | (1,200 + 400 + 0) / 1,900 | 84.2% |");
    documented("| GRR | (1,000 + 400 + 0) / 1,900 | 73.7% |");
    documented("| end ARR | 1,600 + 800 + 250 | 2,650 |");
}

#[test]
fn movements_of_q1_2026() {
    let w = movements(&example(), date(2026, 1, 1), date(2026, 3, 31), None).unwrap();
    let cents = |m: &cairn_measure::movements::Movements| {
        (
            m.start_arr_cents,
            m.new_cents,
            m.expansion_cents,
            m.reactivation_cents,
            m.contraction_cents,
            m.churn_cents,
            m.end_arr_cents,
        )
    };
    assert_eq!(cents(&w.months[0]), (190_000, 0, 20_000, 0, 20_000, 0, 190_000));
    assert_eq!(cents(&w.months[1]), (190_000, 0, 0, 25_000, 0, 0, 215_000));
    assert_eq!(cents(&w.months[2]), (215_000, 80_000, 0, 0, 0, 30_000, 265_000));
    assert_eq!(cents(&w.total), (190_000, 80_000, 20_000, 25_000, 20_000, 30_000, 265_000));
    assert_eq!(w.total.quick_ratio.unwrap().to_f64(), 2.5);
    documented("| Q1 | 1,900 | 800 | 200 | 250 | 200 | 300 | 2,650 |");
    documented("(800 + 200 + 250) / (200 + 300) = 2.5");
}

#[test]
fn renewal_rate_and_cohorts() {
    let ledger = example();
    let r = renewal_rate(&ledger, Period::new(date(2025, 10, 1), date(2026, 3, 31)).unwrap(), None);
    assert_eq!(r.rate.unwrap().percent_one_decimal(), "75.0%");
    documented("Renewal rate 3 / 4 = 75.0%");
    let rows = cohort_retention(&ledger, date(2025, 1, 1), date(2025, 2, 28), date(2026, 3, 31), None).unwrap();
    let (jan, feb) = (&rows[0], &rows[1]);
    assert_eq!(jan.initial_arr_cents, 180_000);
    assert_eq!(jan.months[6].revenue_retention.unwrap().percent_one_decimal(), "105.6%");
    assert_eq!(jan.months[14].revenue_retention.unwrap().percent_one_decimal(), "88.9%");
    assert_eq!(jan.months[14].logo_retention.unwrap().percent_one_decimal(), "66.7%");
    assert_eq!(feb.months[4].revenue_retention, Ratio::new(0, 20_000));
    assert_eq!(feb.months[12].revenue_retention.unwrap().percent_one_decimal(), "125.0%");
    documented("revenue 88.9%, logo 2/3 =\n66.7%");
}

#[test]
fn lifetime_value_example() {
    // "A year starting with 3 accounts and 1,900 ARR in which 1 account churned", on a
    // ledger built for it: Acme 1,000 and Beta 600 stay all year, Cyan 300 leaves.
    let ledger = Ledger::new([
        line("Acme", 1, date(2025, 1, 1), date(2026, 12, 31), 1_000),
        line("Beta", 1, date(2025, 1, 1), date(2026, 12, 31), 600),
        line("Cyan", 1, date(2025, 1, 1), date(2026, 2, 28), 300),
    ])
    .unwrap();
    let year = Period::containing(PeriodKind::Year, date(2026, 1, 1));
    let ltv = lifetime_value(&period_kpis(&ledger, year, None), Ratio::new(4, 5).unwrap()).unwrap().unwrap();
    assert_eq!(ltv.to_f64(), 152_000.0);
    documented("**1,520**");
}

#[test]
fn statistics_examples() {
    let obs = |time: f64, event: bool| Observation { time, event };
    let km = kaplan_meier(&[obs(2.0, true), obs(3.0, false), obs(5.0, true), obs(5.0, true), obs(8.0, false)]).unwrap();
    assert!((km.survival_at(2.0) - 0.8).abs() < 1e-12);
    assert!((km.survival_at(5.0) - 0.8 / 3.0).abs() < 1e-12);
    let variance = km.steps.iter().find(|s| s.time == 5.0).unwrap().variance.unwrap();
    assert!((variance - 0.051).abs() < 0.0005, "{variance}");
    assert_eq!(roc_auc(&[0.9, 0.6, 0.6, 0.3], &[true, true, false, false]).unwrap(), Some(0.875));
    let phi = TwoByTwo { did_and_outcome: 40, did_no_outcome: 10, not_and_outcome: 20, not_no_outcome: 30 }
        .association()
        .phi
        .unwrap();
    assert!((phi - 0.408).abs() < 0.0005);
    documented("pairs 1 + 1 + 0.5 + 1 out of 4 = 0.875");
}

#[test]
fn nps_and_csat_example() {
    use cairn_measure::survey::{Csat, Nps};
    let n = Nps::of(&[9, 9, 10, 10, 10, 7, 8, 0, 5, 6]).unwrap();
    assert_eq!(n.nps.unwrap().one_decimal_string(), "20.0");
    let i = n.interval.unwrap();
    assert_eq!((format!("{:.1}", i.low), format!("{:.1}", i.high)), ("-34.0".to_string(), "74.0".to_string()));
    documented("NPS = 100 × (5 − 3)/10 = **20**");
    documented("the interval is **[−34.0, 74.0]**");
    let c = Csat::of(&[5, 4, 4, 2]).unwrap();
    let i = c.interval.unwrap();
    assert_eq!(c.csat.unwrap().percent_one_decimal(), "75.0%");
    assert_eq!((format!("{:.1}%", 100.0 * i.low), format!("{:.1}%", 100.0 * i.high)), ("30.1%".into(), "95.4%".into()));
    documented("**3 of 4 = 75%**, Wilson interval [30.1%, 95.4%]");
}

#[test]
fn behaviour_hypothesis_of_the_example_ledger() {
    use cairn_measure::hypotheses::{Label, outcome, verdict};
    let ledger = example();
    let as_of = date(2026, 4, 15);
    let o = |account: &str, anchor: Date| {
        outcome(ledger.lines(account), anchor, anchor.checked_add(jiff::ToSpan::days(30)).unwrap(), as_of)
    };
    let held = [o("Acme", date(2025, 1, 1)), o("Beta", date(2025, 1, 1))];
    let not_held = [o("Cyan", date(2025, 1, 1)), o("Delta", date(2025, 2, 1)), o("Echo", date(2026, 3, 15))];
    let survival: Vec<_> = held.iter().chain(&not_held).map(|o| o.survival.unwrap()).collect();
    let times: Vec<(f64, bool)> = survival.iter().map(|s| (s.time, s.event)).collect();
    assert_eq!(times, [(469.0, false), (469.0, false), (424.0, true), (120.0, true), (31.0, false)]);
    assert_eq!(
        held.iter().chain(&not_held).map(|o| o.renewed).collect::<Vec<_>>(),
        [Some(true), Some(true), Some(false), Some(false), None]
    );
    let v = verdict(&held, &not_held, 30).unwrap();
    assert_eq!(v.label, Label::TooSmall);
    assert_eq!(v.held.nrr_12m.unwrap().percent_one_decimal(), "106.7%");
    assert_eq!(v.not_held.nrr_12m.unwrap().percent_one_decimal(), "110.0%");
    let d = v.difference.unwrap();
    assert_eq!(d.test, cairn_measure::stats::Test::FisherExact);
    assert!((d.p_value - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(v.association.phi, Some(1.0));
    let km = v.not_held.survival.as_ref().unwrap();
    assert_eq!((km.survival_at(31.0), km.survival_at(120.0), km.survival_at(424.0)), (1.0, 0.5, 0.0));
    let l = v.log_rank.unwrap();
    assert!((l.chi_square - 49.0 / 17.0).abs() < 1e-12);
    // SciPy: chi2.sf(49/17, 1) = 0.08955507441364248.
    assert!((l.p_value - 0.08955507441364248).abs() < 1e-9);
    for text in ["= 106.7%", "= 110.0%", "p = 1/6 + 1/6 = 0.333", "49/17 = 2.88, p = 0.090", "censored at 469 days"] {
        documented(text);
    }
}
