//! `cairn report hypotheses`: one block per milestone (and `--rule`), discovery's ranked
//! candidates and the milestones it suggests, as a table or CSV (the figures come from
//! `cairn_reports::hypotheses`).

use std::fmt::Write as _;

use anyhow::Result;
use cairn_measure::hypotheses::{Candidate, Group, Verdict};
use cairn_measure::stats::Interval;
use cairn_reports::hypotheses::{HypothesesReport, HypothesesText, Hypothesis};
use cairn_reports::{Query, Store};
use clap::Args;

use super::ReportArgs;
use super::format::{percent, value};

/// `cairn report hypotheses`.
#[derive(Args, Debug)]
pub struct HypothesesArgs {
    #[command(flatten)]
    pub(super) report: ReportArgs,
    /// A rule to test beside the milestones, written as a milestone's `when`
    /// (`count('alert_set', since_anchor) >= 3`)
    #[arg(long)]
    rule: Option<String>,
    /// The rule's deadline from the journey's anchor (12h, 14d, 2w); also the window of
    /// milestones without a `within` [default: 30d]
    #[arg(long)]
    within: Option<String>,
    /// The smallest group labelled, in accounts due for renewal [default: 30]
    #[arg(long)]
    min_group: Option<u64>,
    /// Also scan every event name × at least 1, 2, 3, 5, 10 times × in the first 7, 14,
    /// 30, 60 days, and print the behaviours that predict retention as milestones
    #[arg(long)]
    discover: bool,
}

/// Makes the report over the workspace's milestones.
pub(super) async fn report(
    args: &HypothesesArgs,
    ws: &cairn_workspace::Workspace,
    store: &Store,
    query: &Query,
) -> Result<HypothesesReport> {
    let request = HypothesesText {
        rule: args.rule.clone(),
        within: args.within.clone(),
        min_group: args.min_group,
        discover: args.discover,
    }
    .resolve()?;
    Ok(cairn_reports::hypotheses::hypotheses(store, ws, query, &request).await?)
}

fn rate(g: &Group) -> String {
    percent(g.retention)
}

fn interval_percent(i: Option<Interval>) -> String {
    i.map_or_else(String::new, |i| format!("{:.1}%–{:.1}%", i.low * 100.0, i.high * 100.0))
}

fn points(x: f64) -> String {
    format!("{:+.1}", x * 100.0)
}

fn p(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |x| if x < 0.001 { format!("{x:.1e}") } else { format!("{x:.3}") })
}

fn verdict_lines(out: &mut String, v: &Verdict) {
    let (h, n) = (&v.held, &v.not_held);
    let _ = writeln!(out, "  {:<24} {:>14} {:>14}", "", "did it", "did not");
    let _ = writeln!(out, "  {:<24} {:>14} {:>14}", "accounts", h.accounts, n.accounts);
    let _ = writeln!(out, "  {:<24} {:>14} {:>14}", "first renewal due", h.renewal_due, n.renewal_due);
    let _ = writeln!(out, "  {:<24} {:>14} {:>14}", "retained at renewal", rate(h), rate(n));
    let _ = writeln!(
        out,
        "  {:<24} {:>14} {:>14}",
        "  95% interval",
        interval_percent(h.retention_interval),
        interval_percent(n.retention_interval)
    );
    let _ = writeln!(out, "  {:<24} {:>14} {:>14}", "NRR at 12 months", percent(h.nrr_12m), percent(n.nrr_12m));
    // Kaplan–Meier at 366 and 731 days: a yearly contract's churn falls on day 365 or 366
    // (a leap year) after its anchor, and belongs to the first year.
    let at = |g: &Group, days: f64| {
        g.survival.as_ref().map_or_else(|| "n/a".to_string(), |s| format!("{:.1}%", s.survival_at(days) * 100.0))
    };
    let _ = writeln!(out, "  {:<24} {:>14} {:>14}", "customers after 1 year", at(h, 366.0), at(n, 366.0));
    let _ = writeln!(out, "  {:<24} {:>14} {:>14}", "customers after 2 years", at(h, 731.0), at(n, 731.0));
    match &v.difference {
        Some(d) => {
            let ratio = match (v.lift_ratio, v.lift_ratio_interval) {
                (Some(r), Some(i)) => format!(", ratio {r:.2} ({:.2}–{:.2})", i.low, i.high),
                _ => String::new(),
            };
            let test = match d.test {
                cairn_measure::stats::Test::TwoProportionZ => "two-proportion z-test",
                cairn_measure::stats::Test::FisherExact => "Fisher's exact test",
            };
            let _ = writeln!(
                out,
                "  lift: {} points (95% interval {} to {}){ratio}",
                points(d.difference),
                points(d.difference_interval.low),
                points(d.difference_interval.high)
            );
            let _ = writeln!(out, "  p = {} ({test}), adjusted p = {}", p(Some(d.p_value)), p(v.adjusted_p));
        }
        None => {
            let _ = writeln!(out, "  lift: n/a (a group has no account whose first renewal is due)");
        }
    }
    let a = &v.association;
    let _ = writeln!(
        out,
        "  phi {}, sensitivity {}, precision {}",
        a.phi.map_or_else(|| "n/a".to_string(), |x| format!("{x:.3}")),
        percent(a.sensitivity),
        percent(a.precision)
    );
    match &v.log_rank {
        Some(l) => {
            let _ = writeln!(
                out,
                "  survival from the anchor: log-rank chi² {:.2}, p = {}",
                l.chi_square,
                p(Some(l.p_value))
            );
        }
        None => {
            let _ = writeln!(out, "  survival from the anchor: no churn yet to compare");
        }
    }
}

fn hypothesis_block(out: &mut String, h: &Hypothesis, min_group: u64) {
    let _ = writeln!(out, "{}: {} within {} days", h.name, h.rule, h.within_days);
    let label = match h.verdict.label {
        cairn_measure::hypotheses::Label::TooSmall => {
            format!("too small to tell: a group has fewer than {min_group} accounts due for renewal")
        }
        other => other.text().to_string(),
    };
    let _ = writeln!(out, "  => {label}");
    verdict_lines(out, &h.verdict);
    if h.undecided_accounts + h.without_anchor > 0 {
        let _ = writeln!(
            out,
            "  left out: {} account(s) whose window has not passed, {} without an anchor",
            h.undecided_accounts, h.without_anchor
        );
    }
    let _ = writeln!(out);
}

fn candidate_label(c: &Candidate) -> String {
    format!("{} ≥ {} in {} days", c.event, c.threshold, c.window_days)
}

pub(super) fn table(r: &HypothesesReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Behaviour hypotheses as of {} (retention at the first renewal after each window; groups below {} accounts due are not labelled)\n",
        r.as_of, r.min_group
    );
    if r.hypotheses.is_empty() {
        let _ = writeln!(out, "The journey has no milestones: pass --rule to test one, or --discover.\n");
    }
    for h in &r.hypotheses {
        hypothesis_block(&mut out, h, r.min_group);
    }
    if let Some(d) = &r.discovery {
        let _ = writeln!(
            out,
            "Discovery: {} candidates tested (every event name × at least 1, 2, 3, 5, 10 times × in the first 7, 14, 30, 60 days), {} with a group too small; p-values adjusted for all {} tested\n",
            d.tested, d.too_small, d.tested
        );
        let _ = writeln!(
            out,
            "  {:<4} {:<40} {:>9} {:>9} {:>11} {:>11}  label",
            "rank", "behaviour", "with", "without", "difference", "adjusted p"
        );
        for (i, c) in d.top.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {:<4} {:<40} {:>9} {:>9} {:>11} {:>11}  {}",
                i + 1,
                candidate_label(c),
                rate(&c.verdict.held),
                rate(&c.verdict.not_held),
                c.verdict.difference.map_or_else(String::new, |x| format!("{} pts", points(x.difference))),
                p(c.verdict.adjusted_p),
                c.verdict.label.text()
            );
        }
        if !d.excluded.is_empty() {
            let _ = writeln!(out, "\n  Left out:");
            for e in &d.excluded {
                let _ = writeln!(out, "    {}: {}", e.event, e.reason);
            }
        }
        if d.suggestions.is_empty() {
            let _ = writeln!(out, "\nNo behaviour predicts retention significantly yet.\n");
        } else {
            let _ =
                writeln!(out, "\nMilestones to paste under a stage's `milestones:` (the best of each behaviour):\n");
            for s in &d.suggestions {
                let _ = writeln!(out, "{}", s.yaml);
            }
        }
    }
    let _ = writeln!(out, "Label: {}.", r.label_rule);
    let _ = writeln!(out, "{}", r.note);
    out
}

pub(super) fn csv(r: &HypothesesReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "kind",
        "name",
        "rule",
        "within_days",
        "held_accounts",
        "held_due",
        "held_renewed",
        "held_retention",
        "not_held_accounts",
        "not_held_due",
        "not_held_renewed",
        "not_held_retention",
        "difference",
        "difference_low",
        "difference_high",
        "lift_ratio",
        "lift_ratio_low",
        "lift_ratio_high",
        "p_value",
        "adjusted_p",
        "phi",
        "sensitivity",
        "precision",
        "log_rank_chi_square",
        "log_rank_p",
        "held_nrr_12m",
        "not_held_nrr_12m",
        "label",
    ])?;
    let opt = |x: Option<f64>| x.map_or_else(String::new, |x| x.to_string());
    let mut row = |kind: &str, name: &str, rule: &str, within: f64, v: &Verdict| {
        let (h, n) = (&v.held, &v.not_held);
        let d = v.difference;
        w.write_record([
            kind.to_string(),
            name.to_string(),
            rule.to_string(),
            within.to_string(),
            h.accounts.to_string(),
            h.renewal_due.to_string(),
            h.renewed.to_string(),
            value(h.retention),
            n.accounts.to_string(),
            n.renewal_due.to_string(),
            n.renewed.to_string(),
            value(n.retention),
            opt(d.map(|d| d.difference)),
            opt(d.map(|d| d.difference_interval.low)),
            opt(d.map(|d| d.difference_interval.high)),
            opt(v.lift_ratio),
            opt(v.lift_ratio_interval.map(|i| i.low)),
            opt(v.lift_ratio_interval.map(|i| i.high)),
            opt(d.map(|d| d.p_value)),
            opt(v.adjusted_p),
            opt(v.association.phi),
            value(v.association.sensitivity),
            value(v.association.precision),
            opt(v.log_rank.map(|l| l.chi_square)),
            opt(v.log_rank.map(|l| l.p_value)),
            value(h.nrr_12m),
            value(n.nrr_12m),
            serde_json::to_value(v.label).ok().and_then(|l| l.as_str().map(str::to_string)).unwrap_or_default(),
        ])
    };
    for h in &r.hypotheses {
        let kind = if h.name == cairn_workspace::PROBE_FILE { "rule" } else { "milestone" };
        row(kind, &h.name, &h.rule, h.within_days, &h.verdict)?;
    }
    if let Some(d) = &r.discovery {
        for c in &d.top {
            let rule = cairn_measure::hypotheses::candidate_rule(&c.event, c.threshold);
            row("candidate", &c.event, &rule, f64::from(c.window_days), &c.verdict)?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
