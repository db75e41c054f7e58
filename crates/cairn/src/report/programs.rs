//! How `cairn report programs` looks: per program its Reach table, Effect (goal
//! conversion, treated against held out) and ROI (retention and NRR at renewal); CSV in
//! long form, one figure a row (the figures come from `cairn_reports::programs`).

use std::fmt::Write as _;

use anyhow::Result;
use cairn_measure::Ratio;
use cairn_measure::at_renewal::RetentionAtRenewal;
use cairn_reports::programs::{GoalArm, ProgramsReport, ReachRow};

use super::format::{money, percent, value};

/// `n 12.5%`: a count with its rate.
fn with_rate(n: u64, rate: Option<Ratio>) -> String {
    match rate {
        Some(r) => format!("{n} {}", r.percent_one_decimal()),
        None => n.to_string(),
    }
}

pub(super) fn interval_text(interval: Option<cairn_measure::stats::Interval>) -> String {
    interval.map_or_else(String::new, |i| format!("[{:.1}%, {:.1}%]", i.low * 100.0, i.high * 100.0))
}

fn goal_line(out: &mut String, label: &str, arm: &GoalArm) {
    let recent = if arm.too_recent > 0 { format!("   {} too recent, left out", arm.too_recent) } else { String::new() };
    let _ = writeln!(
        out,
        "    {label:<10} {:>5} of {:<5} {:>6}  {}{recent}",
        arm.converted,
        arm.measured,
        percent(arm.rate),
        interval_text(arm.interval)
    );
}

fn roi_line(out: &mut String, label: &str, r: &RetentionAtRenewal) {
    let mut notes = Vec::new();
    if r.pending > 0 {
        notes.push(format!("{} not decided yet", r.pending));
    }
    if r.without_renewal > 0 {
        notes.push(format!("{} with nothing to renew", r.without_renewal));
    }
    let notes = if notes.is_empty() { String::new() } else { format!("   ({})", notes.join(", ")) };
    let _ = writeln!(
        out,
        "    {label:<10} {:>5} of {:<5} {:>6}   NRR {:>6} ({} / {}){notes}",
        r.renewed,
        r.decided,
        percent(r.retention),
        percent(r.nrr),
        money(r.arr_after_cents),
        money(r.arr_before_cents)
    );
}

pub(super) fn table(r: &ProgramsReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Programs: enrollments made {} to {}, as of {}", r.period.first(), r.period.last(), r.as_of);
    if r.programs.is_empty() {
        let _ = writeln!(out, "\n  no enrollments in the period");
    }
    for p in &r.programs {
        let name = p.name.as_ref().map_or_else(String::new, |n| format!(" ({n})"));
        let defined = if p.in_workspace { "" } else { ", not in the workspace" };
        let _ = writeln!(out, "\n{}{name}: {} enrollments, {} held out{defined}", p.program, p.enrollments, p.held_out);
        let _ = writeln!(out, "\n  Reach (contacts; delivered and bounced of sent, the others of delivered)");
        if p.reach.is_empty() {
            let _ = writeln!(out, "    nothing sent");
        } else {
            let label_of = |row: &ReachRow| {
                row.variant.as_ref().map_or_else(|| row.step.clone(), |v| format!("{} / {v}", row.step))
            };
            let width = p.reach.iter().map(|r| label_of(r).chars().count()).max().unwrap_or(0).max(24);
            let _ = writeln!(
                out,
                "    {:<width$} {:>6} {:>13} {:>11} {:>11} {:>11} {:>11} {:>11}",
                "step / variant", "sent", "delivered", "bounced", "opened", "clicked", "unsub.", "answered"
            );
            for row in &p.reach {
                let (label, sent) = (label_of(row), row.sent);
                let _ = writeln!(
                    out,
                    "    {label:<width$} {sent:>6} {:>13} {:>11} {:>11} {:>11} {:>11} {:>11}",
                    with_rate(row.delivered, row.delivery_rate),
                    with_rate(row.bounced, row.bounce_rate),
                    with_rate(row.opened, row.open_rate),
                    with_rate(row.clicked, row.click_rate),
                    with_rate(row.unsubscribed, row.unsubscribe_rate),
                    with_rate(row.answered, row.answer_rate),
                );
            }
        }
        match (&p.effect, &p.no_effect) {
            (Some(e), _) => {
                let _ = writeln!(
                    out,
                    "\n  Effect: goal met within {} (enrollments whose window ended by {}; 95% Wilson)",
                    e.within, r.as_of
                );
                goal_line(&mut out, "treated", &e.treated);
                goal_line(&mut out, "held out", &e.held_out);
            }
            (None, why) => {
                let _ = writeln!(out, "\n  Effect: none ({})", why.as_deref().unwrap_or("no goal"));
            }
        }
        let _ = writeln!(out, "\n  ROI: renewed at the next renewal after enrollment (accounts)");
        roi_line(&mut out, "enrolled", &p.roi.enrolled);
        roi_line(&mut out, "held out", &p.roi.held_out);
        if p.roi.enrollments_without_account > 0 {
            let _ = writeln!(out, "    {} enrollments belong to no account", p.roi.enrollments_without_account);
        }
    }
    out
}

pub(super) fn csv(r: &ProgramsReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["program", "section", "step", "variant", "group", "figure", "numerator", "denominator", "value"])?;
    let ratio = |x: Option<Ratio>| value(x);
    for p in &r.programs {
        let mut row =
            |section: &str, step: &str, variant: &str, group: &str, figure: &str, n: String, d: String, v: String| {
                w.write_record([p.program.as_str(), section, step, variant, group, figure, &n, &d, &v])
            };
        for reach in &p.reach {
            let variant = reach.variant.as_deref().unwrap_or("");
            let (sent, delivered) = (reach.sent.to_string(), reach.delivered.to_string());
            row("reach", &reach.step, variant, "", "sent", sent.clone(), String::new(), String::new())?;
            for (figure, n, of, rate) in [
                ("delivered", reach.delivered, &sent, reach.delivery_rate),
                ("bounced", reach.bounced, &sent, reach.bounce_rate),
                ("opened", reach.opened, &delivered, reach.open_rate),
                ("clicked", reach.clicked, &delivered, reach.click_rate),
                ("unsubscribed", reach.unsubscribed, &delivered, reach.unsubscribe_rate),
                ("answered", reach.answered, &delivered, reach.answer_rate),
            ] {
                row("reach", &reach.step, variant, "", figure, n.to_string(), of.clone(), ratio(rate))?;
            }
        }
        if let Some(e) = &p.effect {
            for (group, arm) in [("treated", &e.treated), ("held_out", &e.held_out)] {
                let (n, d) = (arm.converted.to_string(), arm.measured.to_string());
                row("effect", "", "", group, "goal_conversion", n, d, ratio(arm.rate))?;
                row("effect", "", "", group, "too_recent", arm.too_recent.to_string(), String::new(), String::new())?;
            }
        }
        for (group, g) in [("enrolled", &p.roi.enrolled), ("held_out", &p.roi.held_out)] {
            let (n, d) = (g.renewed.to_string(), g.decided.to_string());
            row("roi", "", "", group, "retention_at_renewal", n, d, ratio(g.retention))?;
            let (after, before) = (g.arr_after_cents.to_string(), g.arr_before_cents.to_string());
            row("roi", "", "", group, "nrr_at_renewal_cents", after, before, ratio(g.nrr))?;
            row("roi", "", "", group, "pending", g.pending.to_string(), String::new(), String::new())?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
