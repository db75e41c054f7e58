//! `cairn report …`: the figures of docs/metrics.md, computed by `cairn-reports` (the
//! same figures `/api/reports/…` returns) and shown here.
//!
//! A terminal table for people, `--json` (the API's document: exact ratios, full
//! precision) and `--csv` for machines. Periods: `--from/--to`, or `--period
//! month|quarter|year` for the last such calendar period complete on `--as-of` (default
//! today, UTC); `--segment` restricts a report to a segment's accounts.

pub(crate) mod format;
mod revenue;

use std::process::ExitCode;

use anyhow::Result;
use cairn_core::Clock;
use cairn_measure::PeriodKind;
use cairn_reports::QueryText;
use clap::{Args, Subcommand, ValueEnum};

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

impl PeriodArg {
    fn name(self) -> &'static str {
        match self {
            PeriodArg::Month => "month",
            PeriodArg::Quarter => "quarter",
            PeriodArg::Year => "year",
        }
    }
}

/// What every report takes.
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
    /// Only the accounts in this segment (membership as of the period's first day)
    #[arg(long)]
    segment: Option<String>,
    /// Print JSON: every ratio as its exact numerator and denominator, and its value
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    db: DbArg,
}

impl ReportArgs {
    fn text(&self) -> QueryText {
        QueryText {
            period: self.period.map(|p| p.name().to_string()),
            from: self.from.clone(),
            to: self.to.clone(),
            as_of: self.as_of.clone(),
            segment: self.segment.clone(),
        }
    }

    fn format(&self) -> Format {
        match (self.json, self.csv) {
            (true, _) => Format::Json,
            (_, true) => Format::Csv,
            _ => Format::Table,
        }
    }
}

enum Format {
    Table,
    Json,
    Csv,
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// Runs one report.
pub async fn run(command: ReportCommand, clock: &dyn Clock) -> Result<ExitCode> {
    let (args, default_kind) = match &command {
        ReportCommand::Kpis(a) | ReportCommand::Movements(a) => (a, PeriodKind::Month),
        ReportCommand::Cohorts(a) => (a, PeriodKind::Year),
    };
    let today = clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let query = args.text().resolve(default_kind, today)?;
    let format = args.format();
    let store = open_store(&args.db.db).await?;
    let out = match command {
        ReportCommand::Kpis(_) => {
            let report = cairn_reports::revenue::kpis(&store, &query).await;
            store.close().await;
            let report = report?;
            match format {
                Format::Json => json(&report)?,
                Format::Csv => revenue::kpis_csv(&report)?,
                Format::Table => revenue::kpis_table(&report),
            }
        }
        ReportCommand::Movements(_) => {
            let w = cairn_reports::revenue::movements(&store, &query).await;
            store.close().await;
            let w = w?;
            match format {
                Format::Json => json(&w)?,
                Format::Csv => revenue::movements_csv(&w)?,
                Format::Table => revenue::movements_table(&w),
            }
        }
        ReportCommand::Cohorts(_) => {
            let rows = cairn_reports::revenue::cohorts(&store, &query).await;
            store.close().await;
            let rows = rows?;
            match format {
                Format::Json => json(&rows)?,
                Format::Csv => revenue::cohorts_csv(&rows)?,
                Format::Table => revenue::cohorts_table(&rows, query.as_of),
            }
        }
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
