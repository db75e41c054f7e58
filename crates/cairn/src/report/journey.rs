//! How `cairn report journey` and `cairn report ttv` look: the funnel per stage and
//! milestone, and Time to Value per start month (the figures come from
//! `cairn_reports::journey` and `cairn_reports::ttv`).

use std::fmt::Write as _;

use anyhow::Result;
use cairn_reports::journey::JourneyReport;
use cairn_reports::ttv::{TtvCohort, TtvReport};

use super::format::{percent, value};

fn days(d: Option<f64>) -> String {
    d.map_or_else(|| "n/a".to_string(), |d| format!("{d:.1}"))
}

fn csv_days(d: Option<f64>) -> String {
    d.map_or_else(String::new, |d| d.to_string())
}

pub(super) fn journey_table(r: &JourneyReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Journey funnel: {} accounts whose anchor is {} to {}, as of {}\n",
        r.accounts,
        r.period.first(),
        r.period.last(),
        r.as_of
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8}",
        "stage / milestone", "within", "entered", "due", "on time", "late", "missed", "pending", "on time%"
    );
    for s in &r.stages {
        let _ = writeln!(
            out,
            "  {:<28} {:>7} {:>7}   (now in: {})",
            s.name.as_deref().unwrap_or(&s.id),
            "",
            s.entered,
            s.now_in
        );
        for m in &s.milestones {
            let within = m.within_days.map_or_else(|| "-".to_string(), |d| format!("{d}d"));
            let _ = writeln!(
                out,
                "    {:<26} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8}",
                m.id,
                within,
                "",
                m.due,
                m.on_time,
                m.late,
                m.missed,
                m.pending,
                percent(m.on_time_rate)
            );
        }
    }
    if r.without_anchor > 0 {
        let _ = writeln!(out, "\n  {} accounts have no anchor value and are in no cohort", r.without_anchor);
    }
    out
}

pub(super) fn journey_csv(r: &JourneyReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "stage",
        "milestone",
        "within_days",
        "accounts",
        "entered",
        "now_in",
        "due",
        "on_time",
        "late",
        "missed",
        "pending",
        "on_time_rate",
    ])?;
    for s in &r.stages {
        let accounts = r.accounts.to_string();
        let stage =
            [s.id.clone(), String::new(), String::new(), accounts.clone(), s.entered.to_string(), s.now_in.to_string()];
        w.write_record(stage.iter().chain(std::iter::repeat_n(&String::new(), 6)))?;
        for m in &s.milestones {
            w.write_record([
                s.id.clone(),
                m.id.clone(),
                csv_days(m.within_days),
                accounts.clone(),
                String::new(),
                String::new(),
                m.due.to_string(),
                m.on_time.to_string(),
                m.late.to_string(),
                m.missed.to_string(),
                m.pending.to_string(),
                value(m.on_time_rate),
            ])?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

pub(super) fn ttv_table(r: &TtvReport) -> String {
    let mut out = String::new();
    let within = r.within_days.map_or_else(String::new, |d| format!(", due within {d} days"));
    let _ = writeln!(
        out,
        "Time to Value (days to `{}`{within}), start months {} to {}, as of {}\n",
        r.milestone,
        r.period.first(),
        r.period.last(),
        r.as_of
    );
    let _ = writeln!(
        out,
        "  {:<8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "cohort", "accounts", "reached", "reached%", "missed", "pending", "median", "p75", "p90", "KM median"
    );
    let row = |out: &mut String, label: String, c: &TtvCohort| {
        let _ = writeln!(
            out,
            "  {:<8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
            label,
            c.accounts,
            c.ttv.reached,
            percent(c.reached_rate),
            c.missed,
            c.pending,
            days(c.ttv.median),
            days(c.ttv.p75),
            days(c.ttv.p90),
            days(c.km_median)
        );
    };
    for c in &r.cohorts {
        row(&mut out, c.start.first().strftime("%Y-%m").to_string(), c);
    }
    if r.cohorts.len() > 1 {
        row(&mut out, "total".to_string(), &r.total);
    }
    let _ = writeln!(
        out,
        "\n  median/p75/p90: over the accounts that reached value; KM median: Kaplan–Meier, counting the others as censored"
    );
    out
}

pub(super) fn ttv_csv(r: &TtvReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "first",
        "last",
        "accounts",
        "reached",
        "reached_rate",
        "missed",
        "pending",
        "median",
        "p75",
        "p90",
        "km_median",
    ])?;
    for c in r.cohorts.iter().chain(std::iter::once(&r.total)) {
        w.write_record([
            c.start.first().to_string(),
            c.start.last().to_string(),
            c.accounts.to_string(),
            c.ttv.reached.to_string(),
            value(c.reached_rate),
            c.missed.to_string(),
            c.pending.to_string(),
            csv_days(c.ttv.median),
            csv_days(c.ttv.p75),
            csv_days(c.ttv.p90),
            csv_days(c.km_median),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
