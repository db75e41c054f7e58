//! How the health backtest looks: `cairn report backtest` as a terminal table, and its
//! lines as CSV (the figures come from `cairn_reports::backtest`).

use std::fmt::Write as _;

use anyhow::Result;
use cairn_measure::renewal::RENEWAL_GAP_DAYS;
use cairn_reports::backtest::{Auc, Backtest, HORIZONS_DAYS, Horizon, NamedAuc};

use super::format::{percent, plural};

/// How to read the table, printed above it.
const HOW_TO_READ: &str = "\
How to read it: the AUC is the chance that the account of a renewed line had a higher
health score, N days before the line's end, than the account of a churned line. 0.5 is a
coin toss, 1.0 a perfect ranking, below 0.5 the score points the wrong way. Pillars and
measures are scored the same way: the ones near 0.5 are weight to move elsewhere.
\"Churned while green\" counts the lines that ended without renewal although their account
was green: our health score went green right up to the day they churned.";

fn auc_cell(a: &Auc) -> String {
    match (a.auc, &a.note) {
        (Some(x), _) => format!("{x:.3}"),
        (None, Some(note)) if note.starts_with("too few renewals") => "too few renewals".into(),
        (None, Some(note)) if note.starts_with("too few churns") => "too few churns".into(),
        _ => "n/a".into(),
    }
}

pub(super) fn table(b: &Backtest) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Health backtest: {} ending {} to {}, renewal decided by {}\n",
        plural(b.lines, "subscription line", "subscription lines"),
        b.period.first(),
        b.period.last(),
        b.as_of
    );
    let _ = writeln!(
        out,
        "  {} renewed, {} churned (renewed: a line of the same account starts within {RENEWAL_GAP_DAYS} days)",
        b.renewed, b.churned
    );
    if b.undecided > 0 {
        let _ = writeln!(
            out,
            "  left out: {} whose renewal window was still open on {}",
            plural(b.undecided, "line", "lines"),
            b.as_of
        );
    }
    let through = b.source.stored_through.map_or_else(|| "none stored".to_string(), |d| format!("stored through {d}"));
    let _ = writeln!(
        out,
        "  health readings: {} from daily snapshots ({through}), {} replayed from the log, {} with no score yet",
        b.source.from_store, b.source.from_replay, b.source.missing
    );
    let _ = writeln!(out, "\n{HOW_TO_READ}\n");

    // The label column fits the longest measure id (`pillar.measure`, indented).
    let width = b
        .horizons
        .first()
        .map(|h| h.measures.iter().map(|m| m.id.chars().count() + 2).max().unwrap_or(0))
        .unwrap_or(0)
        .max(28);
    let header = |out: &mut String, title: &str| {
        let mut line = format!("  {title:<width$}");
        for h in HORIZONS_DAYS {
            line.push_str(&format!(" {:>22}", format!("{h} days before")));
        }
        let _ = writeln!(out, "{line}");
    };
    let row = |out: &mut String, label: &str, cells: Vec<String>| {
        let mut line = format!("  {label:<width$}");
        for c in cells {
            line.push_str(&format!(" {c:>22}"));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    };
    header(&mut out, "AUC (renewed vs churned)");
    row(&mut out, "overall", b.horizons.iter().map(|h| auc_cell(&h.overall)).collect());
    // A pillar or measure with no AUC at any horizon (too few of an outcome among the
    // lines it has a score for) is counted below instead of a row of notes.
    let mut withheld = 0;
    let mut named_rows = |out: &mut String, pick: fn(&Horizon) -> &[NamedAuc], indent: &str| {
        let mut ids: Vec<&str> = Vec::new();
        for n in b.horizons.iter().flat_map(pick) {
            if !ids.contains(&n.id.as_str()) {
                ids.push(&n.id);
            }
        }
        for id in ids {
            let found: Vec<Option<&NamedAuc>> =
                b.horizons.iter().map(|h| pick(h).iter().find(|n| n.id == id)).collect();
            if found.iter().all(|n| n.is_none_or(|n| n.auc.auc.is_none())) {
                withheld += 1;
                continue;
            }
            let cells = found.iter().map(|n| n.map_or_else(|| "n/a".into(), |n| auc_cell(&n.auc))).collect();
            row(out, &format!("{indent}{id}"), cells);
        }
    };
    named_rows(&mut out, |h| &h.pillars, "pillar ");
    named_rows(&mut out, |h| &h.measures, "  ");
    if withheld > 0 {
        let _ = writeln!(
            out,
            "  ({} without an AUC at any horizon: too few renewals or churns)",
            plural(withheld, "pillar or measure", "pillars and measures")
        );
    }
    row(
        &mut out,
        "lines with a score",
        b.horizons.iter().map(|h| format!("{} + {}", h.overall.renewed, h.overall.churned)).collect(),
    );
    if let Some(note) = b.horizons.iter().find_map(|h| h.overall.note.as_ref()) {
        let _ = writeln!(out, "  ({note}.)");
    }

    let _ = writeln!(out);
    header(&mut out, "Churn by band");
    for (i, band) in ["red", "yellow", "green"].iter().enumerate() {
        let cells = b
            .horizons
            .iter()
            .map(|h| {
                h.bands
                    .get(i)
                    .map_or_else(String::new, |r| format!("{} of {} {:>6}", r.churned, r.lines, percent(r.churn_rate)))
            })
            .collect();
        row(&mut out, band, cells);
    }
    row(&mut out, "churned while green", b.horizons.iter().map(|h| h.green_then_churned.to_string()).collect());

    let _ = writeln!(out);
    header(&mut out, "Calibration: score decile");
    let _ = writeln!(out, "  (lines · mean score · renewed)");
    for decile in 0..10u8 {
        let from = decile * 10;
        if b.horizons.iter().all(|h| h.calibration.iter().all(|c| c.from != from)) {
            continue;
        }
        let cells = b
            .horizons
            .iter()
            .map(|h| {
                h.calibration.iter().find(|c| c.from == from).map_or_else(
                    || "-".into(),
                    |c| format!("{} · {:.1} · {}", c.lines, c.mean_score, percent(c.renewal_rate)),
                )
            })
            .collect();
        row(&mut out, &format!("{from}–{}", from + 10), cells);
    }
    let _ = writeln!(out, "\n  A calibrated score renews about as often as its mean says (70 → about 70% renewed).");
    out
}

/// One row per line: its outcome and its account's health at each horizon.
pub(super) fn csv(b: &Backtest) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["line".to_string(), "account".into(), "end".into(), "renewed".into()];
    for h in HORIZONS_DAYS {
        header.push(format!("score_{h}d"));
        header.push(format!("band_{h}d"));
    }
    w.write_record(&header)?;
    for l in &b.line_health {
        let mut record = vec![l.line.clone(), l.account.clone(), l.end.to_string(), l.renewed.to_string()];
        for at in &l.health {
            record.push(at.as_ref().and_then(|a| a.score).map_or_else(String::new, |s| s.to_string()));
            record.push(at.as_ref().and_then(|a| a.band.clone()).unwrap_or_default());
        }
        w.write_record(&record)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
