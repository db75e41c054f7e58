//! How the revenue reports look: the terminal tables and CSV of `cairn report kpis`,
//! `movements` and `cohorts` (the figures come from `cairn_reports::revenue`).

use std::fmt::Write as _;

use anyhow::Result;
use cairn_measure::Ratio;
use cairn_measure::cohorts::CohortRow;
use cairn_measure::movements::{Movements, Waterfall};
use cairn_measure::renewal::RENEWAL_GAP_DAYS;
use cairn_reports::revenue::{KpiReport, KpiSeries};
use jiff::civil::Date;

use super::format::{cents, decimal, money, percent, plural, value};

pub(super) fn kpis_table(r: &KpiReport) -> String {
    let k = &r.kpis;
    let mut out = String::new();
    let _ = writeln!(out, "Revenue and retention, {} to {}\n", k.period.first(), k.period.last());
    let mut row = |label: &str, figure: String, note: String| {
        let _ = writeln!(out, "{}", format!("  {label:<18} {figure:>16}   {note}").trim_end());
    };
    row("start ARR", money(k.start_arr_cents), plural(k.cohort_accounts, "account", "accounts"));
    row("NRR", percent(k.nrr), format!("{} / {}", money(k.cohort_end_arr_cents), money(k.start_arr_cents)));
    row("GRR", percent(k.grr), format!("{} / {}", money(k.retained_arr_cents), money(k.start_arr_cents)));
    row("logo churn", percent(k.logo_churn), format!("{} of {}", k.churned_accounts, k.cohort_accounts));
    row("churned ARR", money(k.churned_arr_cents), String::new());
    row("expansion", money(k.expansion_cents), String::new());
    row("contraction", money(k.contraction_cents), String::new());
    row("new ARR", money(k.new_arr_cents), plural(k.new_accounts, "new logo", "new logos"));
    row("reactivated ARR", money(k.reactivated_arr_cents), plural(k.reactivated_accounts, "account", "accounts"));
    row("end ARR", money(k.end_arr_cents), String::new());
    row(
        "renewal rate",
        percent(r.renewal.rate),
        format!(
            "{} of {} lines ending in the period renewed within {RENEWAL_GAP_DAYS} days",
            r.renewal.renewed, r.renewal.lines_ending
        ),
    );
    if let Some(l) = &r.ltv {
        let churned = plural(l.churned_accounts, "churned account", "churned accounts");
        let (figure, note) = match l.value_cents {
            Some(v) => (
                money(cents(v)),
                format!("{} × {} / {churned}", money(l.start_arr_cents), percent(Some(l.gross_margin))),
            ),
            None => {
                ("n/a".to_string(), format!("no account of the year's cohort churned ({churned}): no finite lifetime"))
            }
        };
        row("LTV", figure, note);
        let _ = writeln!(
            out,
            "\n  LTV = ARPA × gross margin / annual logo churn = start ARR × margin / churned accounts,\n  over the cohort of the year {} to {} ({}).",
            l.year.first(),
            l.year.last(),
            plural(l.cohort_accounts, "account", "accounts")
        );
    }
    out
}

/// The KPIs month by month.
pub(super) fn series_table(s: &KpiSeries) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Revenue and retention by month, {} to {}\n", s.period.first(), s.period.last());
    let columns = ["NRR", "GRR", "logo churn", "expansion", "contraction", "new ARR", "renewal rate"];
    let _ = write!(out, "  {:<8}", "month");
    for c in columns {
        let _ = write!(out, " {c:>13}");
    }
    let _ = writeln!(out);
    for r in &s.months {
        let k = &r.kpis;
        let cells = [
            percent(k.nrr),
            percent(k.grr),
            percent(k.logo_churn),
            money(k.expansion_cents),
            money(k.contraction_cents),
            money(k.new_arr_cents),
            percent(r.renewal.rate),
        ];
        let _ = write!(out, "  {:<8}", k.period.first().strftime("%Y-%m").to_string());
        for c in cells {
            let _ = write!(out, " {c:>13}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "\n  Each month is its own period: its cohort is the accounts with ARR on the day before it;\n  n/a where a month has no cohort or no line ending."
    );
    out
}

/// One row per report (one for a period, one per month for a series).
pub(super) fn kpis_csv(reports: &[KpiReport]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "first",
        "last",
        "start_arr",
        "end_arr",
        "cohort_accounts",
        "cohort_end_arr",
        "nrr",
        "grr",
        "logo_churn",
        "churned_accounts",
        "churned_arr",
        "expansion",
        "contraction",
        "new_accounts",
        "new_arr",
        "reactivated_accounts",
        "reactivated_arr",
        "lines_ending",
        "lines_renewed",
        "renewal_rate",
        "gross_margin",
        "ltv",
    ])?;
    for r in reports {
        let k = &r.kpis;
        let ltv = r.ltv.as_ref();
        w.write_record([
            k.period.first().to_string(),
            k.period.last().to_string(),
            decimal(k.start_arr_cents),
            decimal(k.end_arr_cents),
            k.cohort_accounts.to_string(),
            decimal(k.cohort_end_arr_cents),
            value(k.nrr),
            value(k.grr),
            value(k.logo_churn),
            k.churned_accounts.to_string(),
            decimal(k.churned_arr_cents),
            decimal(k.expansion_cents),
            decimal(k.contraction_cents),
            k.new_accounts.to_string(),
            decimal(k.new_arr_cents),
            k.reactivated_accounts.to_string(),
            decimal(k.reactivated_arr_cents),
            r.renewal.lines_ending.to_string(),
            r.renewal.renewed.to_string(),
            value(r.renewal.rate),
            value(ltv.map(|l| l.gross_margin)),
            ltv.and_then(|l| l.value_cents).map_or_else(String::new, |v| decimal(cents(v))),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

const MOVEMENT_COLUMNS: [&str; 9] =
    ["start", "new", "expansion", "reactivation", "contraction", "churn", "end", "quick ratio", ""];

fn movement_cells(m: &Movements, money: fn(i64) -> String) -> [String; 8] {
    [
        money(m.start_arr_cents),
        money(m.new_cents),
        money(m.expansion_cents),
        money(m.reactivation_cents),
        money(-m.contraction_cents),
        money(-m.churn_cents),
        money(m.end_arr_cents),
        m.quick_ratio.map_or_else(|| "n/a".to_string(), |q| q.one_decimal_string()),
    ]
}

pub(super) fn movements_table(w: &Waterfall) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ARR movements, {} to {}\n", w.total.period.first(), w.total.period.last());
    let _ = write!(out, "  {:<8}", "month");
    for c in MOVEMENT_COLUMNS.iter().take(8) {
        let _ = write!(out, " {c:>14}");
    }
    let _ = writeln!(out);
    let mut row = |label: String, m: &Movements| {
        let _ = write!(out, "  {label:<8}");
        for c in movement_cells(m, money) {
            let _ = write!(out, " {c:>14}");
        }
        let _ = writeln!(out);
    };
    for m in &w.months {
        row(m.period.first().strftime("%Y-%m").to_string(), m);
    }
    if w.months.len() > 1 {
        row("total".to_string(), &w.total);
    }
    out
}

pub(super) fn movements_csv(w: &Waterfall) -> Result<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "first",
        "last",
        "start_arr",
        "new",
        "expansion",
        "reactivation",
        "contraction",
        "churn",
        "end_arr",
        "quick_ratio",
    ])?;
    for m in w.months.iter().chain(std::iter::once(&w.total)) {
        out.write_record([
            m.period.first().to_string(),
            m.period.last().to_string(),
            decimal(m.start_arr_cents),
            decimal(m.new_cents),
            decimal(m.expansion_cents),
            decimal(m.reactivation_cents),
            decimal(m.contraction_cents),
            decimal(m.churn_cents),
            decimal(m.end_arr_cents),
            value(m.quick_ratio),
        ])?;
    }
    Ok(String::from_utf8(out.into_inner()?)?)
}

pub(super) fn cohorts_table(rows: &[CohortRow], as_of: Date) -> String {
    let mut out = String::new();
    let width = rows.iter().map(|r| r.months.len()).max().unwrap_or(0);
    for (title, pick) in [
        ("Logo retention", (|c| c.logo_retention) as fn(&cairn_measure::cohorts::CohortCell) -> Option<Ratio>),
        ("Revenue retention", |c| c.revenue_retention),
    ] {
        let _ = writeln!(out, "{title} by start month, months ended by {as_of}\n");
        let _ = write!(out, "  {:<8} {:>8} {:>14}", "cohort", "accounts", "initial ARR");
        for k in 0..width {
            let _ = write!(out, " {:>7}", format!("M{k}"));
        }
        let _ = writeln!(out);
        for r in rows {
            let _ = write!(
                out,
                "  {:<8} {:>8} {:>14}",
                r.start_month.first().strftime("%Y-%m").to_string(),
                r.accounts,
                money(r.initial_arr_cents)
            );
            for c in &r.months {
                let _ = write!(out, " {:>7}", percent(pick(c)));
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out);
    }
    out
}

pub(super) fn cohorts_csv(rows: &[CohortRow]) -> Result<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "start_month",
        "accounts",
        "initial_arr",
        "offset",
        "on",
        "retained_accounts",
        "arr",
        "logo_retention",
        "revenue_retention",
    ])?;
    for r in rows {
        for c in &r.months {
            out.write_record([
                r.start_month.first().strftime("%Y-%m").to_string(),
                r.accounts.to_string(),
                decimal(r.initial_arr_cents),
                c.offset.to_string(),
                c.on.to_string(),
                c.retained_accounts.to_string(),
                decimal(c.arr_cents),
                value(c.logo_retention),
                value(c.revenue_retention),
            ])?;
        }
    }
    Ok(String::from_utf8(out.into_inner()?)?)
}
