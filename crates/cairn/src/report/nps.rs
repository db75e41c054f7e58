//! How `cairn report nps` looks: the period's NPS and CSAT with their intervals, then the
//! month-by-month trend (the figures come from `cairn_reports::nps`).

use std::fmt::Write as _;

use anyhow::Result;
use cairn_measure::stats::Interval;
use cairn_reports::nps::NpsReport;

use super::format::{percent, value};

fn points(r: Option<cairn_measure::Ratio>) -> String {
    r.map_or_else(|| "n/a".to_string(), |r| r.one_decimal_string())
}

fn nps_interval(i: Option<Interval>) -> String {
    i.map_or_else(String::new, |i| format!("[{:.1}, {:.1}]", i.low, i.high))
}

fn share_interval(i: Option<Interval>) -> String {
    i.map_or_else(String::new, |i| format!("[{:.1}%, {:.1}%]", 100.0 * i.low, 100.0 * i.high))
}

pub(super) fn table(r: &NpsReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "NPS and CSAT, {} to {} (each contact's latest answer)\n", r.period.first(), r.period.last());
    let n = &r.nps;
    let _ = writeln!(
        out,
        "  NPS   {:>6}   95% {:<16} {} responses: {} promoters, {} passives, {} detractors",
        points(n.nps),
        nps_interval(n.interval),
        n.responses,
        n.promoters,
        n.passives,
        n.detractors
    );
    let c = &r.csat;
    let _ = writeln!(
        out,
        "  CSAT  {:>6}   95% {:<16} {} of {} responses 4 or 5",
        percent(c.csat),
        share_interval(c.interval),
        c.satisfied,
        c.responses
    );
    if r.skipped.without_contact + r.skipped.bad_score > 0 {
        let _ = writeln!(
            out,
            "\n  not counted: {} answers with no known contact, {} with a score off the scale",
            r.skipped.without_contact, r.skipped.bad_score
        );
    }
    let _ = writeln!(
        out,
        "\n  {:<8} {:>9} {:>6} {:>5} {:>5} {:>5} {:>9} {:>6}",
        "month", "responses", "NPS", "P", "Pa", "D", "CSAT n", "CSAT"
    );
    for m in &r.trend {
        let _ = writeln!(
            out,
            "  {:<8} {:>9} {:>6} {:>5} {:>5} {:>5} {:>9} {:>6}",
            m.month.first().strftime("%Y-%m").to_string(),
            m.nps.responses,
            points(m.nps.nps),
            m.nps.promoters,
            m.nps.passives,
            m.nps.detractors,
            m.csat.responses,
            percent(m.csat.csat)
        );
    }
    out
}

pub(super) fn csv(r: &NpsReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "first",
        "last",
        "nps_responses",
        "promoters",
        "passives",
        "detractors",
        "nps",
        "nps_low",
        "nps_high",
        "csat_responses",
        "csat_satisfied",
        "csat",
        "csat_low",
        "csat_high",
    ])?;
    let whole = std::iter::once((r.period, &r.nps, &r.csat));
    for (period, n, c) in whole.chain(r.trend.iter().map(|m| (m.month, &m.nps, &m.csat))) {
        let bound = |i: Option<Interval>, low: bool| {
            i.map_or_else(String::new, |i| (if low { i.low } else { i.high }).to_string())
        };
        w.write_record([
            period.first().to_string(),
            period.last().to_string(),
            n.responses.to_string(),
            n.promoters.to_string(),
            n.passives.to_string(),
            n.detractors.to_string(),
            value(n.nps),
            bound(n.interval, true),
            bound(n.interval, false),
            c.responses.to_string(),
            c.satisfied.to_string(),
            value(c.csat),
            bound(c.interval, true),
            bound(c.interval, false),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
