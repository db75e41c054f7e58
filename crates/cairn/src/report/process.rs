//! How `cairn report process` looks: health distribution and movers, the task backlog
//! and support tickets (the figures come from `cairn_reports::process`).

use std::fmt::Write as _;

use anyhow::Result;
use cairn_reports::process::{MOVER_DAYS, Mover, ProcessReport, TaskGroup};

use super::format::plural;

fn score(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |s| format!("{s:.0}"))
}

fn age(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |d| format!("{d:.1}d"))
}

/// An instant to the second, for people.
fn instant(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn movers(out: &mut String, title: &str, list: &[Mover]) {
    if list.is_empty() {
        let _ = writeln!(out, "  {title}: none");
        return;
    }
    let _ = writeln!(out, "  {title}");
    let _ = writeln!(out, "    {:<10} {:<28} {:>6} {:>7}", "account", "name", "score", "change");
    for m in list {
        let name: String = m.name.as_deref().unwrap_or("").chars().take(28).collect();
        let _ = writeln!(out, "    {:<10} {name:<28} {:>6.0} {:>+7.0}", m.account_id, m.score, m.change);
    }
}

fn groups(out: &mut String, by: &str, none: &str, list: &[TaskGroup]) {
    let _ = writeln!(out, "  {by:<28} {:>6} {:>11} {:>8} {:>8}", "open", "median age", "oldest", "overdue");
    for g in list {
        let name: String = g.name.as_deref().unwrap_or(none).chars().take(28).collect();
        let _ = writeln!(
            out,
            "  {name:<28} {:>6} {:>11} {:>8} {:>8}",
            g.open,
            age(g.median_age_days),
            age(g.oldest_age_days),
            g.overdue
        );
    }
}

pub(super) fn table(r: &ProcessReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Process, {} to {} (as of {})\n", r.period.first(), r.period.last(), r.as_of);
    match &r.health {
        None => {
            let _ = writeln!(out, "Health: give --workspace DIR to see the health distribution and movers.\n");
        }
        Some(h) => {
            let _ = writeln!(out, "Health of {} at {}", plural(h.accounts, "account", "accounts"), instant(h.at));
            let _ =
                writeln!(out, "  red {}   yellow {}   green {}   unscored {}", h.red, h.yellow, h.green, h.unscored);
            let _ = writeln!(
                out,
                "  overall score: p10 {}  p25 {}  median {}  p75 {}  p90 {}\n",
                score(h.p10),
                score(h.p25),
                score(h.median),
                score(h.p75),
                score(h.p90)
            );
            movers(&mut out, &format!("largest drops over {MOVER_DAYS} days"), &h.drops);
            movers(&mut out, &format!("largest rises over {MOVER_DAYS} days"), &h.rises);
            let _ = writeln!(out);
        }
    }
    let t = &r.tasks;
    let _ = writeln!(out, "Open tasks at {}: {} ({} overdue)", instant(t.at), t.total.open, t.total.overdue);
    if t.total.open > 0 {
        groups(&mut out, "assignee", "(unassigned)", &t.by_assignee);
        let _ = writeln!(out);
        groups(&mut out, "pool", "(no pool)", &t.by_pool);
    }
    let k = &r.tickets;
    let _ = writeln!(
        out,
        "\nSupport tickets, {} to {}: {} opened, {} closed",
        r.period.first(),
        r.period.last(),
        k.opened,
        k.closed
    );
    let _ = writeln!(
        out,
        "  {:<12} {:>7}   (weeks from Monday; the first and last count the period's days only)",
        "week of", "opened"
    );
    for w in &k.weeks {
        let _ = writeln!(out, "  {:<12} {:>7}", w.week_of.to_string(), w.opened);
    }
    if let Some(o) = &k.open {
        let _ = writeln!(
            out,
            "  open at {}: {}, median age {}, oldest {}",
            instant(o.at),
            o.count,
            age(o.median_age_days),
            age(o.oldest_age_days)
        );
    }
    if let Some(note) = &k.note {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

/// One CSV of sections: `section,name,figure,value`.
pub(super) fn csv(r: &ProcessReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["section", "name", "figure", "value"])?;
    let num = |x: Option<f64>| x.map_or_else(String::new, |v| v.to_string());
    if let Some(h) = &r.health {
        for (figure, v) in [("red", h.red), ("yellow", h.yellow), ("green", h.green), ("unscored", h.unscored)] {
            w.write_record(["health", "", figure, &v.to_string()])?;
        }
        for (figure, v) in [("p10", h.p10), ("p25", h.p25), ("median", h.median), ("p75", h.p75), ("p90", h.p90)] {
            w.write_record(["health", "", figure, &num(v)])?;
        }
        for (section, list) in [("drop", &h.drops), ("rise", &h.rises)] {
            for m in list {
                w.write_record([section, &m.account_id.to_string(), "change_30d", &m.change.to_string()])?;
            }
        }
    }
    let t = &r.tasks;
    for (section, list) in [
        ("tasks", std::slice::from_ref(&t.total)),
        ("tasks_by_assignee", &t.by_assignee[..]),
        ("tasks_by_pool", &t.by_pool[..]),
    ] {
        for g in list {
            let name = g.name.as_deref().unwrap_or("");
            w.write_record([section, name, "open", &g.open.to_string()])?;
            w.write_record([section, name, "median_age_days", &num(g.median_age_days)])?;
            w.write_record([section, name, "oldest_age_days", &num(g.oldest_age_days)])?;
            w.write_record([section, name, "overdue", &g.overdue.to_string()])?;
        }
    }
    let k = &r.tickets;
    w.write_record(["tickets", "", "opened", &k.opened.to_string()])?;
    w.write_record(["tickets", "", "closed", &k.closed.to_string()])?;
    for wk in &k.weeks {
        w.write_record(["tickets_by_week", &wk.week_of.to_string(), "opened", &wk.opened.to_string()])?;
    }
    if let Some(o) = &k.open {
        w.write_record(["tickets", "", "open", &o.count.to_string()])?;
        w.write_record(["tickets", "", "open_median_age_days", &num(o.median_age_days)])?;
        w.write_record(["tickets", "", "open_oldest_age_days", &num(o.oldest_age_days)])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
