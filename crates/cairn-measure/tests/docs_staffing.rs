//! The staffing model's worked example in docs/metrics.md, computed by the crate: if a
//! definition changes, the page's numbers must change with it.

use std::collections::BTreeSet;

use cairn_measure::Ratio;
use cairn_measure::staffing::{Account, Digital, Model, SegmentTouch, staffing, what_if};

const DOC: &str = include_str!("../../../docs/metrics.md");

fn documented(text: &str) {
    assert!(DOC.contains(text), "docs/metrics.md no longer says `{text}`");
}

fn model() -> Model {
    let touch = |segment: &str, stages: &[(&str, u32, u32)]| SegmentTouch {
        segment: segment.into(),
        stages: stages.iter().map(|(s, h, d)| (s.to_string(), h * 100, d * 100)).collect(),
    };
    Model {
        csm_hours_per_year: 1600,
        csm_cost_per_year_cents: 9_600_000,
        segments: vec![
            touch("enterprise", &[("onboarding", 60, 0), ("adoption", 30, 6), ("renewal", 24, 0)]),
            touch("smb", &[("onboarding", 3, 0), ("adoption", 1, 0), ("renewal", 1, 0)]),
        ],
        stages: vec!["onboarding".into(), "adoption".into(), "renewal".into()],
    }
}

fn accounts() -> Vec<Account> {
    let mut out = Vec::new();
    let mut add = |segment: &str, stage: &str, n: usize, dollars: i64| {
        for _ in 0..n {
            out.push(Account {
                segments: BTreeSet::from([segment.to_string()]),
                stage: Some(stage.to_string()),
                arr_cents: dollars * 100,
            });
        }
    };
    add("enterprise", "onboarding", 10, 100_000);
    add("enterprise", "adoption", 30, 100_000);
    add("enterprise", "renewal", 8, 100_000);
    add("smb", "onboarding", 200, 10_000);
    add("smb", "adoption", 600, 10_000);
    add("smb", "renewal", 100, 10_000);
    add("other", "adoption", 5, 1_000);
    out
}

fn approx(r: Option<Ratio>, x: f64) -> bool {
    r.is_some_and(|r| (r.to_f64() - x).abs() < 5e-4)
}

#[test]
fn the_staffing_example_of_the_page() {
    let s = staffing(&model(), &accounts(), &Digital::new());
    let (e, smb, t) = (&s.segments[0].total, &s.segments[1].total, &s.total);
    assert_eq!((e.hours.to_f64(), e.csms.to_f64(), e.whole_csms, e.cost_cents), (1692.0, 1.0575, 2, 10_152_000));
    assert!(approx(e.cost_per_arr_dollar, 0.021));
    assert_eq!(e.arr_per_csm.map(|r| (r.to_f64()).round() as i64), Some(453_900_709));
    documented(
        "| enterprise | 10×60 + 30×30 + 8×24 = 1,692 | 1,692 / 1,600 = 1.0575 | 2 | 101,520.00 | 0.021 | 4,539,007.09 |",
    );
    assert_eq!((smb.hours.to_f64(), smb.csms.to_f64(), smb.whole_csms, smb.cost_cents), (1300.0, 0.8125, 1, 7_800_000));
    assert!(approx(smb.cost_per_arr_dollar, 0.009));
    assert_eq!(smb.arr_per_csm.map(|r| (r.to_f64()).round() as i64), Some(1_107_692_308));
    documented("| smb | 200×3 + 600×1 + 100×1 = 1,300 | 0.8125 | 1 | 78,000.00 | 0.009 | 11,076,923.08 |");
    assert_eq!((t.hours.to_f64(), t.csms.to_f64(), t.whole_csms, t.cost_cents), (2992.0, 1.87, 2, 17_952_000));
    assert_eq!(t.whole_csms_cost_cents, 19_200_000);
    assert!(approx(t.cost_per_arr_dollar, 0.013));
    assert_eq!(t.arr_per_csm.map(|r| (r.to_f64()).round() as i64), Some(737_967_914));
    documented("| total | 2,992 | 1.87 | 2 | 179,520.00 | 0.013 | 7,379,679.14 |");
    assert_eq!(s.outside.accounts, 5);
    documented("Two CSMs (192,000.00 a year) cover the 1.87 needed; the 5 other accounts are not counted.");
}

#[test]
fn the_what_if_example_of_the_page() {
    let digital: Digital = [("enterprise", "adoption"), ("smb", "onboarding"), ("smb", "adoption")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let w = what_if(&model(), &accounts(), &digital);
    let a = &w.after.total;
    assert_eq!((w.after.segments[0].total.hours.to_f64(), w.after.segments[1].total.hours.to_f64()), (972.0, 100.0));
    assert_eq!((a.hours.to_f64(), a.csms.to_f64(), a.whole_csms, a.cost_cents), (1072.0, 0.67, 1, 6_432_000));
    assert!(approx(a.cost_per_arr_dollar, 0.005));
    let c = &w.change;
    assert_eq!((c.hours.to_f64(), c.csms.to_f64(), c.whole_csms, c.cost_cents), (-1920.0, -1.2, -1, -11_520_000));
    documented("0.67 CSMs, 1 to hire, 64,320.00 (0.005 per ARR dollar): a change of −1,920 hours,");
    documented("−1.2 CSMs, −1 CSM to hire and −115,200.00 a year.");
}
