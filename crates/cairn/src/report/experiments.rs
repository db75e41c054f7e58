//! How `cairn report experiments` looks: per split or holdout its arms and sample-ratio
//! check, then per metric each arm's rate and each comparison with its test, raw and
//! adjusted p-values and verdict; CSV one arm of one metric a row (the figures come from
//! `cairn_reports::experiments`).

use std::fmt::Write as _;

use anyhow::Result;
use cairn_measure::stats::{SRM_ALPHA, Test};
use cairn_reports::experiments::{ArmComparison, Experiment, ExperimentKind, ExperimentsReport};

use super::format::percent;
use super::programs::interval_text;

fn p_text(p: f64) -> String {
    if p < 0.001 { format!("{p:.1e}") } else { format!("{p:.3}") }
}

fn test_name(t: Test) -> &'static str {
    match t {
        Test::TwoProportionZ => "z-test",
        Test::FisherExact => "Fisher's exact",
    }
}

fn title(x: &Experiment) -> String {
    match &x.kind {
        ExperimentKind::Split { step } => format!("{}: A/B split on step `{step}`", x.program),
        ExperimentKind::Holdout => format!("{}: holdout", x.program),
    }
}

fn comparison_line(out: &mut String, c: &ArmComparison, holdout: bool) {
    let figures = match &c.comparison {
        Some(d) => format!(
            "{:+.1} pts [{:+.1}, {:+.1}], {} p {}, adjusted p {}",
            d.difference * 100.0,
            d.difference_interval.low * 100.0,
            d.difference_interval.high * 100.0,
            test_name(d.test),
            p_text(d.p_value),
            c.adjusted_p.map_or_else(|| "-".to_string(), p_text)
        ),
        None => "an arm is empty".to_string(),
    };
    let label = if holdout { "uplift" } else { "difference" };
    let _ = writeln!(out, "      {label}, {} vs {}: {figures} → {}", c.treatment, c.control, c.verdict_text());
}

pub(super) fn table(r: &ExperimentsReport) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "Experiments: enrollments made {} to {}, as of {}", r.period.first(), r.period.last(), r.as_of);
    let _ = writeln!(
        out,
        "Minimum detectable effect {:.1} points (absolute) at {:.0}% power; verdicts at Benjamini–Hochberg adjusted p < {}, over the {} p-values below",
        r.mde * 100.0,
        r.power * 100.0,
        r.alpha,
        r.tests
    );
    if r.experiments.is_empty() {
        let _ = writeln!(out, "\n  no A/B split or holdout among the enrollments of the period");
    }
    for x in &r.experiments {
        let _ = writeln!(out, "\n{}", title(x));
        let arms: Vec<String> = x
            .arms
            .iter()
            .map(|a| match a.share {
                Some(s) => format!("{} {} (configured {s}%)", a.arm, a.n),
                None => format!("{} {}", a.arm, a.n),
            })
            .collect();
        let _ = writeln!(out, "  arms: {}", arms.join(", "));
        match (&x.sample_ratio, &x.withheld) {
            (Some(s), None) => {
                let _ = writeln!(
                    out,
                    "  sample ratio: chi-square {:.2}, p {} (≥ {SRM_ALPHA}): ok",
                    s.chi_square,
                    p_text(s.p_value)
                );
            }
            (_, Some(why)) => {
                let _ = writeln!(out, "  BROKEN — verdicts withheld: {why}");
            }
            (None, None) => {
                let _ = writeln!(out, "  sample ratio: no members yet");
            }
        }
        for m in &x.metrics {
            let left = if m.left_out > 0 {
                format!(" ({} left out: window or renewal still open)", m.left_out)
            } else {
                String::new()
            };
            let _ = writeln!(out, "    {}{left}", m.metric.label());
            for (i, a) in m.arms.iter().enumerate() {
                let rate = a.rate.map_or_else(|| "n/a".to_string(), |r| format!("{:.1}%", r * 100.0));
                let nrr = m.nrr.get(i).map_or_else(String::new, |n| format!("   NRR {}", percent(*n)));
                let _ = writeln!(
                    out,
                    "      {:<14} {:>5} of {:<5} {:>6}  {}{nrr}",
                    a.arm,
                    a.conversions,
                    a.n,
                    rate,
                    interval_text(a.interval)
                );
            }
            for c in &m.comparisons {
                comparison_line(&mut out, c, matches!(x.kind, ExperimentKind::Holdout));
            }
        }
    }
    out
}

pub(super) fn csv(r: &ExperimentsReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "program",
        "experiment",
        "step",
        "metric",
        "arm",
        "n",
        "conversions",
        "rate",
        "ci_low",
        "ci_high",
        "control",
        "difference",
        "difference_low",
        "difference_high",
        "test",
        "p_value",
        "adjusted_p",
        "needed_per_arm",
        "verdict",
        "srm_p_value",
        "broken",
    ])?;
    let f = |x: Option<f64>| x.map_or_else(String::new, |v| v.to_string());
    for x in &r.experiments {
        let (kind, step) = match &x.kind {
            ExperimentKind::Split { step } => ("split", step.as_str()),
            ExperimentKind::Holdout => ("holdout", ""),
        };
        let srm = f(x.sample_ratio.as_ref().map(|s| s.p_value));
        let broken = x.withheld.is_some().to_string();
        for m in &x.metrics {
            for a in &m.arms {
                let c = m.comparisons.iter().find(|c| c.treatment == a.arm);
                let d = c.and_then(|c| c.comparison);
                w.write_record([
                    x.program.clone(),
                    kind.to_string(),
                    step.to_string(),
                    m.metric.label().to_string(),
                    a.arm.clone(),
                    a.n.to_string(),
                    a.conversions.to_string(),
                    f(a.rate),
                    f(a.interval.map(|i| i.low)),
                    f(a.interval.map(|i| i.high)),
                    c.map_or_else(String::new, |c| c.control.clone()),
                    f(d.map(|d| d.difference)),
                    f(d.map(|d| d.difference_interval.low)),
                    f(d.map(|d| d.difference_interval.high)),
                    d.map_or_else(String::new, |d| test_name(d.test).to_string()),
                    f(d.map(|d| d.p_value)),
                    f(c.and_then(|c| c.adjusted_p)),
                    c.and_then(|c| c.needed_per_arm).map_or_else(String::new, |n| n.to_string()),
                    c.map_or_else(String::new, ArmComparison::verdict_text),
                    srm.clone(),
                    broken.clone(),
                ])?;
            }
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
