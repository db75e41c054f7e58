//! `cairn report kpis|movements|cohorts`: the revenue and retention figures of
//! docs/metrics.md, computed by cairn-measure over the subscription ledger in the store.
//!
//! A terminal table for people, `--json` (exact ratios, full precision) and `--csv` for
//! machines. Periods: `--from/--to`, or `--period month|quarter|year` for the last such
//! calendar period complete on `--as-of` (default today, UTC).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cairn_core::Clock;
use cairn_measure::cohorts::{CohortRow, cohort_retention};
use cairn_measure::movements::{Movements, Waterfall, movements};
use cairn_measure::renewal::{RENEWAL_GAP_DAYS, RenewalRate, renewal_rate};
use cairn_measure::retention::{PeriodKpis, period_kpis};
use cairn_measure::{Ledger, Line, Period, PeriodKind, Ratio};
use clap::{Args, Subcommand, ValueEnum};
use jiff::civil::Date;
use serde::Serialize;

use crate::cli::{DbArg, open_store};

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// NRR, GRR, logo churn, expansion, contraction, new ARR and the renewal rate of a
    /// period (default: the last complete month)
    Kpis(ReportArgs),
    /// ARR movements per month (new, expansion, reactivation, contraction, churn) and the
    /// waterfall from start to end ARR (default: the last complete month)
    Movements(ReportArgs),
    /// Cohort retention by start month, logo and revenue, through --as-of (default: the
    /// start months of the last complete year)
    Cohorts(ReportArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum PeriodArg {
    Month,
    Quarter,
    Year,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The last complete calendar month, quarter or year on --as-of
    #[arg(long, conflicts_with_all = ["from", "to"])]
    period: Option<PeriodArg>,
    /// First day of the period (YYYY-MM-DD), with --to
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Last day of the period (YYYY-MM-DD), included, with --from
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// The day of the report (YYYY-MM-DD; default: today, UTC)
    #[arg(long)]
    as_of: Option<String>,
    /// Print JSON: every ratio as its exact numerator and denominator, and its value
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV, one row per period (movements) or per cohort and month (cohorts)
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    db: DbArg,
}

enum Format {
    Table,
    Json,
    Csv,
}

/// Runs one report.
pub async fn run(command: ReportCommand, clock: &dyn Clock) -> Result<ExitCode> {
    let (args, default_kind) = match &command {
        ReportCommand::Kpis(a) | ReportCommand::Movements(a) => (a, PeriodKind::Month),
        ReportCommand::Cohorts(a) => (a, PeriodKind::Year),
    };
    let as_of = match &args.as_of {
        Some(d) => day(d, "--as-of")?,
        None => clock.now().to_zoned(jiff::tz::TimeZone::UTC).date(),
    };
    let period = period(args, default_kind, as_of)?;
    let format = match (args.json, args.csv) {
        (true, _) => Format::Json,
        (_, true) => Format::Csv,
        _ => Format::Table,
    };
    let store = open_store(&args.db.db).await?;
    let ledger = ledger(&store).await?;
    store.close().await;
    let out = match command {
        ReportCommand::Kpis(_) => {
            let report =
                KpiReport { kpis: period_kpis(&ledger, period, None), renewal: renewal_rate(&ledger, period, None) };
            match format {
                Format::Json => serde_json::to_string_pretty(&report)? + "\n",
                Format::Csv => kpis_csv(&report)?,
                Format::Table => kpis_table(&report),
            }
        }
        ReportCommand::Movements(_) => {
            let w = movements(&ledger, period.first(), period.last(), None)?;
            match format {
                Format::Json => serde_json::to_string_pretty(&w)? + "\n",
                Format::Csv => movements_csv(&w)?,
                Format::Table => movements_table(&w),
            }
        }
        ReportCommand::Cohorts(_) => {
            let rows = cohort_retention(&ledger, period.first(), period.last(), as_of, None)?;
            match format {
                Format::Json => serde_json::to_string_pretty(&rows)? + "\n",
                Format::Csv => cohorts_csv(&rows)?,
                Format::Table => cohorts_table(&rows, as_of),
            }
        }
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn day(text: &str, flag: &str) -> Result<Date> {
    cairn_core::values::parse_date(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

/// `--from/--to`, or the last complete `--period` (or the default) on `as_of`.
fn period(args: &ReportArgs, default_kind: PeriodKind, as_of: Date) -> Result<Period> {
    if let (Some(from), Some(to)) = (&args.from, &args.to) {
        return Ok(Period::new(day(from, "--from")?, day(to, "--to")?)?);
    }
    let kind = match args.period {
        Some(PeriodArg::Month) => PeriodKind::Month,
        Some(PeriodArg::Quarter) => PeriodKind::Quarter,
        Some(PeriodArg::Year) => PeriodKind::Year,
        None => default_kind,
    };
    let current = Period::containing(kind, as_of);
    if current.last() <= as_of {
        return Ok(current);
    }
    match current.day_before() {
        Some(before) => Ok(Period::containing(kind, before)),
        None => bail!("there is no complete period before {as_of}: give --from and --to"),
    }
}

async fn ledger(store: &cairn_store::Store) -> Result<Ledger> {
    let lines = store.subscription_lines().await.context("reading the subscription lines")?;
    Ok(Ledger::new(lines.into_iter().map(|l| Line {
        id: format!("{}/{}", l.source, l.id),
        account: l.account_id.to_string(),
        start: l.start_date,
        end: l.end_date,
        arr_cents: l.arr_cents,
    }))?)
}

#[derive(Serialize)]
struct KpiReport {
    #[serde(flatten)]
    kpis: PeriodKpis,
    renewal: RenewalRate,
}

/// Cents as `-1,234.56`.
fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

/// Cents as a plain decimal for CSV: `-1234.56`.
fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

fn percent(r: Option<Ratio>) -> String {
    r.map_or_else(|| "n/a".to_string(), |r| r.percent_one_decimal())
}

/// A ratio's value at full precision for CSV; empty when there is none.
fn value(r: Option<Ratio>) -> String {
    r.map_or_else(String::new, |r| r.to_f64().to_string())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn kpis_table(r: &KpiReport) -> String {
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
    out
}

fn kpis_csv(r: &KpiReport) -> Result<String> {
    let k = &r.kpis;
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
    ])?;
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
    ])?;
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

fn movements_table(w: &Waterfall) -> String {
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

fn movements_csv(w: &Waterfall) -> Result<String> {
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

fn cohorts_table(rows: &[CohortRow], as_of: Date) -> String {
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

fn cohorts_csv(rows: &[CohortRow]) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_keeps_cents() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(123_456_789), "1,234,567.89");
        assert_eq!(money(-100_000), "-1,000.00");
        assert_eq!(decimal(-123_456), "-1234.56");
    }
}
