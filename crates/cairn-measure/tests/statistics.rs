//! The statistics against reference packages on the same inputs.
//!
//! Every expected value below was computed by `reference/reference.py` with scipy 1.17.1,
//! statsmodels 0.15.0, scikit-learn 1.9.1, lifelines 0.30.3 and numpy 2.4.6 (the script
//! prints the inputs beside each result), or comes from a published source named at the
//! test. None was produced by this crate.

use cairn_measure::stats::{
    Arm, Observation, Test, TimeToValue, TwoByTwo, benjamini_hochberg, compare, fisher_exact, kaplan_meier, log_rank,
    quantile, roc_auc, sample_ratio_mismatch, sample_size_per_arm, two_proportion_z_test, wilson,
};

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance * expected.abs().max(1e-300),
        "{actual} differs from {expected} by more than a relative {tolerance}"
    );
}

fn arm(n: u64, conversions: u64) -> Arm {
    Arm::new(n, conversions).unwrap()
}

#[test]
fn z_test_matches_statsmodels_proportions_ztest_and_wald_interval() {
    // statsmodels.stats.proportion.proportions_ztest([xb, xa], [nb, na]) and
    // confint_proportions_2indep(xb, nb, xa, na, method="wald", compare="diff").
    let cases = [
        ((100, 1000, 130, 1000), 2.102740605622114, 0.03548845046647471, (0.0020679344393763587, 0.057932065560623636)),
        (
            (4400, 50000, 4600, 50000),
            2.209978480439321,
            0.02710665582627731,
            (0.00045260596166952095, 0.007547394038330486),
        ),
        ((45, 300, 30, 320), -2.1464713949972136, 0.031835388576669954, (-0.10775280157392589, -0.004747198426074101)),
    ];
    for ((xa, na, xb, nb), z, p, (low, high)) in cases {
        let c = two_proportion_z_test(arm(na, xa), arm(nb, xb)).unwrap();
        close(c.z.unwrap(), z, 1e-12);
        close(c.p_value, p, 1e-9);
        close(c.difference_interval.low, low, 1e-9);
        close(c.difference_interval.high, high, 1e-9);
        close(c.difference, xb as f64 / nb as f64 - xa as f64 / na as f64, 1e-15);
    }
}

#[test]
fn fishers_difference_interval_is_newcombes_as_statsmodels_gives_it() {
    // statsmodels.stats.proportion.confint_proportions_2indep(xb, nb, xa, na,
    // method="newcomb", compare="diff"): the interval stays inside [-1, 1] on tiny arms.
    let cases = [
        ((0, 9, 1, 2), (-0.003877666817322045, 0.9054687942657693)),
        ((1, 4, 2, 4), (-0.3195572515133034, 0.655286660349105)),
        ((2, 2, 0, 2), (-1.0, -0.06998519885519938)),
    ];
    for ((xa, na, xb, nb), (low, high)) in cases {
        let c = fisher_exact(arm(na, xa), arm(nb, xb)).unwrap();
        close(c.difference_interval.low, low, 1e-9);
        close(c.difference_interval.high, high, 1e-9);
    }
}

#[test]
fn fisher_matches_scipy_two_sided() {
    // scipy.stats.fisher_exact([[xa, na - xa], [xb, nb - xb]], alternative="two-sided").
    // (3, 4, 1, 4) is Fisher's lady tasting tea: 0.4857 in every textbook.
    let cases = [
        ((3, 4, 1, 4), 0.48571428571428565),
        ((3, 12, 9, 11), 0.01227813779974232),
        ((0, 10, 5, 10), 0.032507739938080496),
        ((1, 20, 1, 20), 1.0),
        ((12, 100, 25, 100), 0.027942706055260905),
        ((2, 40, 9, 41), 0.048049245708340564),
    ];
    for ((xa, na, xb, nb), p) in cases {
        let c = fisher_exact(arm(na, xa), arm(nb, xb)).unwrap();
        close(c.p_value, p, 1e-9);
        assert_eq!(c.test, Test::FisherExact);
    }
}

#[test]
fn compare_uses_fisher_only_when_an_expected_cell_is_below_five() {
    // 3/12 vs 9/11: 12 conversions of 23, expected conversions in arm a 12·12/23 = 6.26,
    // non-conversions 11·11/23 = 5.26 in arm b … but arm b's conversions 11·12/23 = 5.74
    // and arm a's non-conversions 12·11/23 = 5.74: all ≥ 5, so the z-test.
    assert_eq!(compare(arm(12, 3), arm(11, 9)).unwrap().test, Test::TwoProportionZ);
    // 0/10 vs 5/10: 5 conversions of 20, expected 10·5/20 = 2.5 < 5: Fisher.
    let c = compare(arm(10, 0), arm(10, 5)).unwrap();
    assert_eq!(c.test, Test::FisherExact);
    close(c.p_value, 0.032507739938080496, 1e-9);
    assert!(compare(arm(0, 0), arm(10, 5)).unwrap_err().to_string().contains("no members"));
    assert!(Arm::new(3, 4).is_err());
}

#[test]
fn wilson_matches_statsmodels() {
    // statsmodels proportion_confint(x, n, alpha=0.05, method="wilson").
    let cases = [
        ((0, 10), (0.0, 0.27753279986288926)),
        ((10, 10), (0.7224672001371106, 1.0)),
        ((7, 50), (0.06950833427016288, 0.26186193710585537)),
        ((130, 1000), (0.11056377462484193, 0.1522680266544689)),
        ((1, 3), (0.06149194472039626, 0.7923403991979523)),
    ];
    for ((x, n), (low, high)) in cases {
        let i = wilson(arm(n, x), 0.95).unwrap();
        assert!((i.low - low).abs() < 1e-12, "({x}, {n}) low {} vs {low}", i.low);
        assert!((i.high - high).abs() < 1e-12, "({x}, {n}) high {} vs {high}", i.high);
    }
    assert_eq!(wilson(arm(0, 0), 0.95), None);
}

#[test]
fn sample_ratio_check_matches_scipy_chisquare_and_flags_below_one_in_a_thousand() {
    // scipy.stats.chisquare(observed, f_exp=total · share / Σ shares).
    // (observed, shares, chi-square, p-value, flagged)
    type Case<'a> = (&'a [u64], &'a [f64], f64, f64, bool);
    let cases: [Case; 4] = [
        (&[5120, 4880], &[1.0, 1.0], 5.76, 0.01639507184919225, false),
        (&[10300, 9700], &[1.0, 1.0], 18.0, 2.2090496998585475e-05, true),
        (&[2600, 2450, 4950], &[1.0, 1.0, 2.0], 5.5, 0.06392786120670757, false),
        (&[8950, 1050], &[0.9, 0.1], 2.7777777777777777, 0.09558070454562936, false),
    ];
    for (observed, shares, chi2, p, mismatch) in cases {
        let s = sample_ratio_mismatch(observed, shares).unwrap();
        close(s.chi_square, chi2, 1e-12);
        close(s.p_value, p, 1e-9);
        assert_eq!(s.mismatch, mismatch, "{observed:?}");
        assert_eq!(s.degrees_of_freedom, observed.len() as u64 - 1);
    }
    assert!(sample_ratio_mismatch(&[1, 2], &[1.0]).is_err());
    assert!(sample_ratio_mismatch(&[1, 2], &[1.0, 0.0]).is_err());
    assert!(sample_ratio_mismatch(&[0, 0], &[1.0, 1.0]).is_err());
}

#[test]
fn benjamini_hochberg_reproduces_the_published_example() {
    // Benjamini & Hochberg (1995), J. R. Statist. Soc. B 57(1), section 4.2: 15 p-values
    // from a trial; at q = 0.05 the procedure rejects the four smallest (the paper's
    // result). Adjusted values: statsmodels multipletests(p, method="fdr_bh").
    let p = [
        0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590,
        1.000,
    ];
    let expected = [
        0.0015,
        0.003,
        0.0095,
        0.035625,
        0.0603,
        0.06385714285714286,
        0.06385714285714286,
        0.0645,
        0.07650000000000001,
        0.48600000000000004,
        0.5811818181818182,
        0.7148749999999999,
        0.7532307692307693,
        0.8132142857142857,
        1.0,
    ];
    // Given shuffled, the adjusted values come back in the order given.
    let order = [14, 3, 7, 0, 11, 5, 9, 1, 13, 6, 2, 10, 4, 12, 8];
    let shuffled: Vec<f64> = order.iter().map(|i| p[*i]).collect();
    let adjusted = benjamini_hochberg(&shuffled).unwrap();
    for (k, i) in order.iter().enumerate() {
        close(adjusted[k], expected[*i], 1e-12);
    }
    assert_eq!(adjusted.iter().filter(|a| **a <= 0.05).count(), 4);
    assert!(benjamini_hochberg(&[0.5, f64::NAN]).is_err());
    assert_eq!(benjamini_hochberg(&[]).unwrap(), Vec::<f64>::new());
}

#[test]
fn sample_size_for_eighty_percent_power() {
    // Fleiss' formula without continuity correction, evaluated with scipy.stats.norm.ppf
    // in reference.py: 10% → 15% needs 685.6 → 686 per arm (the textbook figure);
    // 30% → 32% 8394; 50% → 40% 388.
    assert_eq!(sample_size_per_arm(0.10, 0.05, 0.05, 0.8).unwrap(), 686);
    assert_eq!(sample_size_per_arm(0.30, 0.02, 0.05, 0.8).unwrap(), 8394);
    assert_eq!(sample_size_per_arm(0.5, -0.1, 0.05, 0.8).unwrap(), 388);
    assert!(sample_size_per_arm(0.98, 0.05, 0.05, 0.8).is_err());
    assert!(sample_size_per_arm(0.1, 0.0, 0.05, 0.8).is_err());
}

/// R's `lung` data (survival package; NCCTG advanced lung cancer trial) as shipped by the
/// Python package lifelines 0.30.3 in `lifelines/datasets/lung.csv`, columns time, status
/// (1 = died, 0 = censored) and sex (1 = male, 2 = female), copied to fixtures/lung.csv.
fn lung() -> Vec<(Observation, u8)> {
    let csv = include_str!("fixtures/lung.csv");
    csv.lines()
        .skip(1)
        .map(|row| {
            let cells: Vec<&str> = row.split(',').collect();
            let time: f64 = cells[0].parse().unwrap();
            (Observation { time, event: cells[1] == "1" }, cells[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn kaplan_meier_on_the_lung_data_matches_lifelines_and_r() {
    let all: Vec<Observation> = lung().into_iter().map(|(o, _)| o).collect();
    assert_eq!(all.len(), 228);
    let km = kaplan_meier(&all).unwrap();
    assert_eq!((km.subjects, km.events), (228, 165));
    // Published (R, survfit(Surv(time, status) ~ 1, lung)): median 310 days;
    // S(5) = 227/228 = 0.9956 (one death among 228 at day 5).
    assert_eq!(km.median(), Some(310.0));
    // lifelines KaplanMeierFitter: S(t), and Greenwood's variance S² · Σ d / (n (n − d)).
    let reference = [
        (5.0, 0.9956140350877193, 1.915231677223221e-05),
        (11.0, 0.9824561403508766, 7.559680981462572e-05),
        (100.0, 0.863968967645243, 0.0005157545663727299),
        (200.0, 0.6802728622230085, 0.0009693615523252352),
        (310.0, 0.4950242931809131, 0.001241346408084293),
        (500.0, 0.29326919371156845, 0.0012304533506220302),
        (765.0, 0.08810474412391821, 0.0006592247162705362),
        (1022.0, 0.050345568070810406, 0.0005220333392717573),
    ];
    for (t, s, var) in reference {
        close(km.survival_at(t), s, 1e-12);
        let step = km.steps.iter().take_while(|st| st.time <= t).last().unwrap();
        close(step.variance.unwrap(), var, 1e-9);
    }
    assert!((km.survival_at(5.0) - 0.9956).abs() < 0.00005);
}

#[test]
fn log_rank_by_sex_on_the_lung_data_matches_r_and_lifelines() {
    let data = lung();
    let group = |sex: u8| -> Vec<Observation> { data.iter().filter(|(_, s)| *s == sex).map(|(o, _)| *o).collect() };
    let (men, women) = (group(1), group(2));
    // Published (R, survdiff(Surv(time, status) ~ sex, lung)): Chisq = 10.3 on 1 degree of
    // freedom, p = 0.00131; men observed 112 deaths against 91.6 expected. Medians by
    // sex (survfit): 270 and 426 days. lifelines logrank_test: 10.326741954885648,
    // p 0.0013111645203554782.
    let lr = log_rank(&men, &women).unwrap();
    close(lr.chi_square, 10.326741954885648, 1e-9);
    close(lr.p_value, 0.0013111645203554782, 1e-7);
    assert_eq!(lr.observed_a, 112.0);
    assert!((lr.expected_a - 91.6).abs() < 0.05, "{}", lr.expected_a);
    assert_eq!(kaplan_meier(&men).unwrap().median(), Some(270.0));
    assert_eq!(kaplan_meier(&women).unwrap().median(), Some(426.0));
}

#[test]
fn roc_auc_matches_scikit_learn_with_ties_as_one_half() {
    // sklearn.metrics.roc_auc_score(labels, scores).
    let scores = [0.9, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.4, 0.3, 0.3, 0.2, 0.1];
    let labels = [1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0].map(|l| l == 1);
    close(roc_auc(&scores, &labels).unwrap().unwrap(), 0.8142857142857143, 1e-12);
    assert_eq!(roc_auc(&[50.0; 4], &[true, false, true, false]).unwrap(), Some(0.5));
    assert_eq!(roc_auc(&[1.0, 2.0], &[true, true]).unwrap(), None);
    assert!(roc_auc(&[1.0], &[true, false]).is_err());
    assert!(roc_auc(&[f64::NAN, 1.0], &[true, false]).is_err());
}

#[test]
fn phi_matches_matthews_correlation_with_sensitivity_and_precision() {
    // sklearn.metrics.matthews_corrcoef over the table expanded to one row per account.
    let t = TwoByTwo { did_and_outcome: 40, did_no_outcome: 10, not_and_outcome: 20, not_no_outcome: 30 };
    let a = t.association();
    close(a.phi.unwrap(), 0.4082482904638631, 1e-12);
    // Sensitivity: 40 of the 60 with the outcome did it; precision: 40 of the 50 who did.
    assert_eq!(a.sensitivity.unwrap().to_f64(), 40.0 / 60.0);
    assert_eq!(a.precision.unwrap().to_f64(), 0.8);
    let t = TwoByTwo { did_and_outcome: 5, did_no_outcome: 45, not_and_outcome: 30, not_no_outcome: 20 };
    close(t.association().phi.unwrap(), -0.5241424183609592, 1e-12);
    let empty = TwoByTwo { did_and_outcome: 0, did_no_outcome: 0, not_and_outcome: 3, not_no_outcome: 4 };
    assert_eq!(empty.association().phi, None);
    assert_eq!(empty.association().precision, None);
}

#[test]
fn time_to_value_quantiles_match_numpy_linear_interpolation() {
    // numpy.percentile(ttv, [50, 75, 90]) (method "linear", Hyndman & Fan type 7).
    // By hand: sorted 2 3 5 8 9 11 14 21 30 60; median h = 4.5 → (9 + 11) / 2 = 10;
    // p75 h = 6.75 → 14 + 0.75·7 = 19.25; p90 h = 8.1 → 30 + 0.1·30 = 33.
    let ttv = [3.0, 14.0, 5.0, 30.0, 8.0, 21.0, 2.0, 9.0, 60.0, 11.0];
    let q = TimeToValue::of(&ttv).unwrap();
    assert_eq!(q.reached, 10);
    close(q.median.unwrap(), 10.0, 1e-12);
    close(q.p75.unwrap(), 19.25, 1e-12);
    close(q.p90.unwrap(), 32.999999999999986, 1e-12);
    assert_eq!(quantile(&[], 0.5).unwrap(), None);
    assert_eq!(quantile(&[7.0], 0.9).unwrap(), Some(7.0));
    assert!(quantile(&[1.0], 1.5).is_err());
}
