//! `cairn report …`: the figures of docs/metrics.md, computed by `cairn-reports` (the
//! same figures `/api/reports/…` returns) and shown here.
//!
//! A terminal table for people, `--json` (the API's document: exact ratios, full
//! precision) and `--csv` for machines. Periods: `--from/--to`, or `--period
//! month|quarter|year` for the last such calendar period complete on `--as-of` (default
//! today, UTC); `--segment` restricts a report to a segment's accounts. `staffing` takes
//! no period: it reads the accounts' segments and stages now from the workspace's engine
//! (`--workspace`), with `--digital` for a what-if.

mod backtest;
mod experiments;
pub(crate) mod format;
mod hypotheses;
mod journey;
mod nps;
mod process;
mod programs;
mod revenue;
mod staffing;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use cairn_core::Clock;
use cairn_measure::PeriodKind;
use cairn_reports::QueryText;
use clap::{Args, Subcommand, ValueEnum};

use crate::cli::{DbArg, open_store};

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// NRR, GRR, logo churn, expansion, contraction, new ARR and the renewal rate of a
    /// period (default: the last complete month), or of every month with --series
    Kpis(KpiArgs),
    /// ARR movements per month (new, expansion, reactivation, contraction, churn) and the
    /// waterfall from start to end ARR (default: the last complete month)
    Movements(ReportArgs),
    /// Cohort retention by start month, logo and revenue, through --as-of (default: the
    /// start months of the last complete year)
    Cohorts(ReportArgs),
    /// Health distribution and biggest movers (with --workspace), open tasks by assignee
    /// and pool with their age, support ticket volume and age (default: the last
    /// complete month)
    Process(ReportArgs),
    /// Reach (per step and variant), Effect (goal conversion, treated against held out)
    /// and ROI (retention and NRR at the next renewal) of the programs' enrollments made
    /// in a period (default: the last complete month)
    Programs(ProgramArgs),
    /// Every A/B split and holdout of the enrollments made in a period: rates with Wilson
    /// intervals, differences with p-values, the sample-ratio check, Benjamini–Hochberg
    /// and the sample needed (default: the last complete month)
    Experiments(ExperimentArgs),
    /// NPS and CSAT from survey answers (each contact's latest in the period) with 95%
    /// intervals and the monthly trend (default: the last complete month, trend over 12)
    Nps(ReportArgs),
    /// The journey funnel of the accounts whose anchor falls in the period: per stage,
    /// accounts that entered it; per milestone, due, on time, late, missed, pending
    /// (default: anchors in the last complete year; needs --workspace)
    Journey(ReportArgs),
    /// Time to Value per start month: days from the anchor to the value milestone,
    /// median, p75, p90 and the Kaplan–Meier median (default: the last complete year;
    /// needs --workspace)
    Ttv(ReportArgs),
    /// Do the milestones (and --rule) go with retention at the first renewal, NRR at 12
    /// months and survival? With --discover, which behaviours do (needs --workspace;
    /// only --as-of of the period flags applies)
    Hypotheses(hypotheses::HypothesesArgs),
    /// How well the health score predicted renewals: for the lines ending in the period
    /// (default: the last complete year), the AUC of the health 30, 60 and 90 days before,
    /// overall, per pillar and per measure, churn per band and a calibration table (needs
    /// --workspace)
    Backtest(ReportArgs),
    /// The CSMs the workspace's touch model needs for the accounts' segments and stages
    /// now, their cost per ARR dollar and ARR per CSM; --digital for a what-if
    Staffing(staffing::StaffingArgs),
}

/// `cairn report kpis`.
#[derive(Args, Debug)]
pub struct KpiArgs {
    #[command(flatten)]
    report: ReportArgs,
    /// One row per calendar month of the period (default: the last 12 complete months)
    #[arg(long)]
    series: bool,
    /// Gross margin, as 0.8 or 80%: adds lifetime value (over the period when it is a
    /// year, else over the year ending on its last day)
    #[arg(long, conflicts_with = "series")]
    gross_margin: Option<String>,
}

/// What the programs' reports take besides the period.
#[derive(Args, Debug)]
pub struct ProgramArgs {
    #[command(flatten)]
    report: ReportArgs,
    /// Only this program
    #[arg(long)]
    program: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    #[command(flatten)]
    programs: ProgramArgs,
    /// The minimum detectable effect the sample needed is computed for, in percentage
    /// points, absolute (80% power, 5% significance)
    #[arg(long, default_value_t = 5.0)]
    mde: f64,
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
    /// Folder of workspace definitions: makes its segments known to --segment, and gives
    /// `process` the engine's health
    #[arg(long, env = "CAIRN_WORKSPACE")]
    workspace: Option<PathBuf>,
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
    // Staffing reads the live engine, not a period of the ledger.
    let command = match command {
        ReportCommand::Staffing(args) => {
            print!("{}", staffing::run(args, clock).await?);
            return Ok(ExitCode::SUCCESS);
        }
        other => other,
    };
    let (args, default_kind) = match &command {
        ReportCommand::Kpis(a) => (&a.report, PeriodKind::Month),
        ReportCommand::Movements(a) | ReportCommand::Process(a) | ReportCommand::Nps(a) => (a, PeriodKind::Month),
        ReportCommand::Hypotheses(h) => (&h.report, PeriodKind::Month),
        ReportCommand::Cohorts(a) | ReportCommand::Backtest(a) | ReportCommand::Journey(a) | ReportCommand::Ttv(a) => {
            (a, PeriodKind::Year)
        }
        ReportCommand::Programs(a) | ReportCommand::Experiments(ExperimentArgs { programs: a, .. }) => {
            (&a.report, PeriodKind::Month)
        }
        ReportCommand::Staffing(_) => return Ok(ExitCode::SUCCESS),
    };
    let today = clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let text = args.text();
    let mut query = text.resolve(default_kind, today)?;
    if let ReportCommand::Kpis(k) = &command
        && k.series
        && text.period.is_none()
        && text.from.is_none()
    {
        query.period = cairn_reports::revenue::last_twelve_months(query.period)?;
    }
    let format = args.format();
    let workspace = match &args.workspace {
        Some(dir) => Some(Arc::new(crate::show::load_workspace(dir)?.0)),
        None => None,
    };
    let store = open_store(&args.db.db).await?;
    let out = report(&store, command, workspace, &query, format, clock).await;
    store.close().await;
    print!("{}", out?);
    Ok(ExitCode::SUCCESS)
}

async fn report(
    store: &cairn_store::Store,
    command: ReportCommand,
    workspace: Option<Arc<cairn_workspace::Workspace>>,
    query: &cairn_reports::Query,
    format: Format,
    clock: &dyn Clock,
) -> Result<String> {
    let ws = workspace.as_deref();
    Ok(match command {
        ReportCommand::Kpis(k) if k.series => {
            let series = cairn_reports::revenue::kpis_series(store, ws, query).await?;
            match format {
                Format::Json => json(&series)?,
                Format::Csv => revenue::kpis_csv(&series.months)?,
                Format::Table => revenue::series_table(&series),
            }
        }
        ReportCommand::Kpis(k) => {
            let options =
                cairn_reports::revenue::KpiOptions { series: Some(false), gross_margin: k.gross_margin.clone() };
            let report = cairn_reports::revenue::kpis(store, ws, query, &options).await?;
            match format {
                Format::Json => json(&report)?,
                Format::Csv => revenue::kpis_csv(std::slice::from_ref(&report))?,
                Format::Table => revenue::kpis_table(&report),
            }
        }
        ReportCommand::Movements(_) => {
            let w = cairn_reports::revenue::movements(store, ws, query).await?;
            match format {
                Format::Json => json(&w)?,
                Format::Csv => revenue::movements_csv(&w)?,
                Format::Table => revenue::movements_table(&w),
            }
        }
        ReportCommand::Cohorts(_) => {
            let rows = cairn_reports::revenue::cohorts(store, ws, query).await?;
            match format {
                Format::Json => json(&rows)?,
                Format::Csv => revenue::cohorts_csv(&rows)?,
                Format::Table => revenue::cohorts_table(&rows, query.as_of),
            }
        }
        ReportCommand::Process(_) => {
            let health = match workspace {
                Some(ws) => {
                    let live = cairn_runtime::Runtime::evaluate(store, clock, ws).await?;
                    Some(cairn_reports::process::health(&live.engine)?)
                }
                None => None,
            };
            let report = cairn_reports::process::process(store, health, query, clock.now()).await?;
            match format {
                Format::Json => json(&report)?,
                Format::Csv => process::csv(&report)?,
                Format::Table => process::table(&report),
            }
        }
        ReportCommand::Programs(a) => {
            let report = cairn_reports::programs::programs(store, ws, query, a.program.as_deref()).await?;
            match format {
                Format::Json => json(&report)?,
                Format::Csv => programs::csv(&report)?,
                Format::Table => programs::table(&report),
            }
        }
        ReportCommand::Experiments(a) => {
            let program = a.programs.program.as_deref();
            let report = cairn_reports::experiments::experiments(store, ws, query, program, a.mde / 100.0).await?;
            match format {
                Format::Json => json(&report)?,
                Format::Csv => experiments::csv(&report)?,
                Format::Table => experiments::table(&report),
            }
        }
        ReportCommand::Nps(_) => {
            let r = cairn_reports::nps::nps(store, query).await?;
            match format {
                Format::Json => json(&r)?,
                Format::Csv => nps::csv(&r)?,
                Format::Table => nps::table(&r),
            }
        }
        ReportCommand::Journey(_) | ReportCommand::Ttv(_) => {
            let Some(ws) = ws else {
                anyhow::bail!("the journey reports need the workspace's journey: give --workspace DIR")
            };
            if matches!(command, ReportCommand::Journey(_)) {
                let r = cairn_reports::journey::journey(store, ws, query).await?;
                match format {
                    Format::Json => json(&r)?,
                    Format::Csv => journey::journey_csv(&r)?,
                    Format::Table => journey::journey_table(&r),
                }
            } else {
                let r = cairn_reports::ttv::ttv(store, ws, query).await?;
                match format {
                    Format::Json => json(&r)?,
                    Format::Csv => journey::ttv_csv(&r)?,
                    Format::Table => journey::ttv_table(&r),
                }
            }
        }
        ReportCommand::Hypotheses(h) => {
            let Some(ws) = ws else {
                anyhow::bail!("hypotheses test the workspace's milestones: give --workspace DIR")
            };
            let r = hypotheses::report(&h, ws, store, query).await?;
            match format {
                Format::Json => json(&r)?,
                Format::Csv => hypotheses::csv(&r)?,
                Format::Table => hypotheses::table(&r),
            }
        }
        ReportCommand::Backtest(_) => {
            let Some(ws) = workspace else {
                anyhow::bail!("the backtest tests the workspace's health definitions: give --workspace DIR")
            };
            let report = cairn_reports::backtest::backtest(store, ws, query).await?;
            match format {
                Format::Json => json(&report)?,
                Format::Csv => backtest::csv(&report)?,
                Format::Table => backtest::table(&report),
            }
        }
        ReportCommand::Staffing(_) => anyhow::bail!("the staffing report runs before the period reports"),
    })
}
