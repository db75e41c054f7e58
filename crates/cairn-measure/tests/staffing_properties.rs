//! The staffing model's bookkeeping on arbitrary customer bases: every account is counted
//! once (in the first touch-model segment it is in, or apart), rows add up to segment
//! totals and segment totals to the total, whole CSMs are the total rounded up once, the
//! cost is rounded to the nearest cent, and a what-if only ever removes hours.

use cairn_measure::staffing::{Account, Digital, Model, SegmentTouch, staffing, what_if};
use proptest::prelude::*;

const SEGMENTS: [&str; 3] = ["s0", "s1", "s2"];
const STAGES: [&str; 3] = ["a", "b", "c"];

fn arb_model() -> impl Strategy<Value = Model> {
    let hours = (0u32..=876_000, 0u32..=100).prop_map(|(h, share)| (h, h / 100 * share));
    (1u32..=8_760, 1i64..=1_000_000_000, prop::collection::vec(prop::collection::vec(hours, 3), 3)).prop_map(
        |(capacity, cost, touch)| Model {
            csm_hours_per_year: capacity,
            csm_cost_per_year_cents: cost,
            segments: SEGMENTS
                .iter()
                .zip(touch)
                .map(|(s, hours)| SegmentTouch {
                    segment: s.to_string(),
                    stages: STAGES.iter().zip(hours).map(|(st, (h, d))| (st.to_string(), h, d)).collect(),
                })
                .collect(),
            stages: STAGES.iter().map(|s| s.to_string()).collect(),
        },
    )
}

fn arb_accounts() -> impl Strategy<Value = Vec<Account>> {
    let segments = prop::collection::btree_set(prop::sample::select(vec!["s0", "s1", "s2", "other"]), 0..4);
    let stage = prop::option::of(prop::sample::select(vec!["a", "b", "c", "unknown"]));
    prop::collection::vec((segments, stage, 0i64..=1_000_000_000), 0..60).prop_map(|list| {
        list.into_iter()
            .map(|(segments, stage, arr_cents)| Account {
                segments: segments.into_iter().map(str::to_string).collect(),
                stage: stage.map(str::to_string),
                arr_cents,
            })
            .collect()
    })
}

fn arb_digital() -> impl Strategy<Value = Digital> {
    prop::collection::btree_set((prop::sample::select(SEGMENTS.to_vec()), prop::sample::select(STAGES.to_vec())), 0..9)
        .prop_map(|cells| cells.into_iter().map(|(s, st)| (s.to_string(), st.to_string())).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn every_account_is_counted_once_and_the_figures_add_up(
        model in arb_model(),
        accounts in arb_accounts(),
        digital in arb_digital(),
    ) {
        let s = staffing(&model, &accounts, &digital);
        // Counted independently: the first of s0, s1, s2 the account is in, or apart.
        let mut expected = [0u64; 3];
        let mut outside = 0u64;
        for a in &accounts {
            match SEGMENTS.iter().position(|seg| a.segments.contains(*seg)) {
                Some(i) => expected[i] += 1,
                None => outside += 1,
            }
        }
        let counted: Vec<u64> = s.segments.iter().map(|seg| seg.total.accounts).collect();
        prop_assert_eq!(counted, expected.to_vec());
        prop_assert_eq!(s.outside.accounts, outside);
        let capacity = i128::from(model.csm_hours_per_year) * 100;
        let mut total_hundredths = 0i128;
        for seg in &s.segments {
            let rows: i128 = seg.stages.iter().map(|r| r.figures.hours.numerator()).sum();
            let accounts: u64 = seg.stages.iter().map(|r| r.figures.accounts).sum();
            let arr: i64 = seg.stages.iter().map(|r| r.figures.arr_cents).sum();
            prop_assert_eq!(seg.total.hours.numerator(), rows);
            prop_assert_eq!((seg.total.accounts, seg.total.arr_cents), (accounts, arr));
            for r in &seg.stages {
                let per_account = r.hours_per_account.numerator();
                prop_assert_eq!(r.figures.hours.numerator(), i128::from(r.figures.accounts) * per_account);
            }
            total_hundredths += rows;
        }
        let t = &s.total;
        prop_assert_eq!(t.hours.numerator(), total_hundredths);
        // Whole CSMs: the smallest whole number of CSMs whose hours cover the need.
        let whole = i128::from(t.whole_csms as i64);
        prop_assert!(whole * capacity >= total_hundredths);
        prop_assert!(whole == 0 || (whole - 1) * capacity < total_hundredths);
        // The cost to the nearest cent: within half a cent of hours × cost / capacity.
        let exact = total_hundredths * i128::from(model.csm_cost_per_year_cents);
        let error = (i128::from(t.cost_cents) * capacity - exact).abs();
        prop_assert!(2 * error <= capacity, "cost {} is not {exact}/{capacity} to the cent", t.cost_cents);
    }

    #[test]
    fn a_what_if_only_removes_hours_and_its_change_is_after_minus_before(
        model in arb_model(),
        accounts in arb_accounts(),
        digital in arb_digital(),
    ) {
        let before = staffing(&model, &accounts, &Digital::new());
        let w = what_if(&model, &accounts, &digital);
        prop_assert!(w.after.total.hours.numerator() <= before.total.hours.numerator());
        prop_assert_eq!(w.change.hours.numerator(), w.after.total.hours.numerator() - before.total.hours.numerator());
        prop_assert_eq!(w.change.cost_cents, w.after.total.cost_cents - before.total.cost_cents);
        prop_assert_eq!(w.change.whole_csms, w.after.total.whole_csms as i64 - before.total.whole_csms as i64);
        prop_assert_eq!((w.after.total.accounts, w.after.total.arr_cents), (before.total.accounts, before.total.arr_cents));
        let nothing = what_if(&model, &accounts, &Digital::new());
        prop_assert_eq!(&nothing.after, &before);
        prop_assert_eq!(nothing.change.hours.numerator(), 0);
    }
}
