//! Revenue and retention from the subscription ledger: a period's KPIs with the renewal
//! rate (and lifetime value, given a gross margin), the same KPIs month by month, monthly
//! ARR movements with the waterfall, and cohort retention triangles (docs/metrics.md
//! defines each figure). With a segment, each period counts the accounts in it at its
//! start ([`crate::segment`]).

use std::collections::BTreeSet;

use cairn_measure::ltv::lifetime_value;
use cairn_measure::{Period, Ratio};
use cairn_workspace::Workspace;
use jiff::ToSpan;
use serde::Deserialize;

use cairn_measure::cohorts::{CohortRow, cohort_retention};
use cairn_measure::movements::{Waterfall, movements as measure_movements};
use cairn_measure::renewal::{RenewalRate, renewal_rate};
use cairn_measure::retention::{PeriodKpis, period_kpis};
use cairn_measure::{Ledger, Line};
use cairn_store::Store;
use serde::Serialize;

use crate::{Query, ReportError, Result};

/// A period's revenue and retention KPIs and its renewal rate.
#[derive(Debug, Clone, Serialize)]
pub struct KpiReport {
    /// The KPIs.
    #[serde(flatten)]
    pub kpis: PeriodKpis,
    /// Lines ending in the period and how many were renewed.
    pub renewal: RenewalRate,
    /// Lifetime value, when a gross margin was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ltv: Option<Ltv>,
}

/// What `kpis` is asked for beyond the [`Query`]: `series` (every month of the period)
/// and `gross_margin` (for lifetime value), as CLI flags or URL parameters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KpiOptions {
    /// One row per calendar month instead of one for the period.
    pub series: Option<bool>,
    /// The share of revenue left after the cost of serving it: `0.8` or `80%`.
    pub gross_margin: Option<String>,
}

/// Lifetime value over a year's cohort: LTV = ARPA × gross margin / annual logo churn
/// = start ARR × margin / churned accounts (cairn-measure's `ltv`).
#[derive(Debug, Clone, Serialize)]
pub struct Ltv {
    /// The year measured: the report's period when it is a year, else the year ending on
    /// the period's last day.
    pub year: Period,
    pub gross_margin: Ratio,
    /// Cohort accounts and their start ARR over that year.
    pub cohort_accounts: u64,
    pub start_arr_cents: i64,
    /// Cohort accounts that churned in the year.
    pub churned_accounts: u64,
    /// LTV in cents; none when nobody churned (no finite lifetime to estimate).
    pub value_cents: Option<Ratio>,
}

/// The KPIs month by month.
#[derive(Debug, Clone, Serialize)]
pub struct KpiSeries {
    /// The whole range (whole calendar months).
    pub period: Period,
    /// One report per month, oldest first.
    pub months: Vec<KpiReport>,
}

/// The most digits a gross margin is written with.
const MAX_MARGIN_DIGITS: usize = 12;

/// A gross margin as an exact share: `0.8`, `.75`, `80%` or `62.5%`, in (0, 1].
pub fn gross_margin(text: &str) -> Result<Ratio> {
    let bad = || {
        ReportError::Invalid(format!(
            "gross margin `{text}` is not a share of revenue: give it like 0.8 or 80% (above 0, at most 100%)"
        ))
    };
    let t = text.trim();
    let (number, percent) = match t.strip_suffix('%') {
        Some(n) => (n.trim_end(), true),
        None => (t, false),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = whole.len() + fraction.len();
    if digits == 0 || digits > MAX_MARGIN_DIGITS || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let numerator: i128 = format!("{whole}{fraction}").parse().map_err(|_| bad())?;
    let mut denominator = 10i128.pow(u32::try_from(fraction.len()).map_err(|_| bad())?);
    if percent {
        denominator *= 100;
    }
    let (mut a, mut b) = (numerator, denominator);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let (numerator, denominator) = if a > 1 { (numerator / a, denominator / a) } else { (numerator, denominator) };
    match Ratio::new(numerator, denominator) {
        Some(r) if numerator > 0 && numerator <= denominator => Ok(r),
        _ => Err(bad()),
    }
}

/// The whole subscription ledger, as cairn-measure reads it (an account is its cairn id).
pub async fn ledger(store: &Store) -> Result<Ledger> {
    let lines = store.subscription_lines().await?;
    Ok(Ledger::new(lines.into_iter().map(|l| Line {
        id: format!("{}/{}", l.source, l.id),
        account: l.account_id.to_string(),
        start: l.start_date,
        end: l.end_date,
        arr_cents: l.arr_cents,
    }))?)
}

/// The accounts a query is restricted to in `period` (its segment's members at the
/// period's start, see [`crate::segment`]), or `None` for every account. `workspace`,
/// when given, also makes known the segments nobody has entered yet.
pub async fn members(
    store: &Store,
    workspace: Option<&Workspace>,
    query: &Query,
    period: Period,
) -> Result<Option<BTreeSet<String>>> {
    match &query.segment {
        None => Ok(None),
        Some(s) => Ok(Some(crate::segment::accounts_at_start(store, workspace, s, period).await?)),
    }
}

/// NRR, GRR, churn, expansion, contraction, new ARR and the renewal rate of the period,
/// and lifetime value when `options` gives a gross margin.
pub async fn kpis(
    store: &Store,
    workspace: Option<&Workspace>,
    query: &Query,
    options: &KpiOptions,
) -> Result<KpiReport> {
    let margin = options.gross_margin.as_deref().map(gross_margin).transpose()?;
    let ledger = ledger(store).await?;
    let mut report = kpis_of(store, workspace, &ledger, query, query.period).await?;
    if let Some(margin) = margin {
        let year = if query.period.is_one_year() { query.period } else { year_to(query.period.last())? };
        let members = members(store, workspace, query, year).await?;
        let k = period_kpis(&ledger, year, members.as_ref());
        report.ltv = Some(Ltv {
            year,
            gross_margin: margin,
            cohort_accounts: k.cohort_accounts,
            start_arr_cents: k.start_arr_cents,
            churned_accounts: k.churned_accounts,
            value_cents: lifetime_value(&k, margin)?,
        });
    }
    Ok(report)
}

/// The KPIs and renewal rate of every calendar month overlapping the query's period.
pub async fn kpis_series(store: &Store, workspace: Option<&Workspace>, query: &Query) -> Result<KpiSeries> {
    let ledger = ledger(store).await?;
    let mut months = Vec::new();
    for month in Period::months(query.period.first(), query.period.last())? {
        months.push(kpis_of(store, workspace, &ledger, query, month).await?);
    }
    let period = match (months.first(), months.last()) {
        (Some(a), Some(b)) => Period::new(a.kpis.period.first(), b.kpis.period.last())?,
        _ => query.period,
    };
    Ok(KpiSeries { period, months })
}

/// The series' default range: the twelve complete months ending with the last complete
/// month on `as_of`.
pub fn last_twelve_months(last_month: Period) -> Result<Period> {
    let first = last_month
        .first()
        .checked_sub(11.months())
        .map_err(|e| ReportError::Invalid(format!("twelve months before {}: {e}", last_month.first())))?;
    Ok(Period::new(first, last_month.last())?)
}

/// The year (365 or 366 days) ending on `last`.
fn year_to(last: jiff::civil::Date) -> Result<Period> {
    let first = last
        .checked_sub(1.year())
        .and_then(|d| d.tomorrow())
        .map_err(|e| ReportError::Invalid(format!("the year to {last}: {e}")))?;
    Ok(Period::new(first, last)?)
}

async fn kpis_of(
    store: &Store,
    workspace: Option<&Workspace>,
    ledger: &Ledger,
    query: &Query,
    period: Period,
) -> Result<KpiReport> {
    let members = members(store, workspace, query, period).await?;
    Ok(KpiReport {
        kpis: period_kpis(ledger, period, members.as_ref()),
        renewal: renewal_rate(ledger, period, members.as_ref()),
        ltv: None,
    })
}

/// ARR movements per month of the period, and the waterfall over it.
pub async fn movements(store: &Store, workspace: Option<&Workspace>, query: &Query) -> Result<Waterfall> {
    let ledger = ledger(store).await?;
    let members = members(store, workspace, query, query.period).await?;
    Ok(measure_movements(&ledger, query.period.first(), query.period.last(), members.as_ref())?)
}

/// Logo and revenue retention by start month, for the start months in the period,
/// through `as_of`.
pub async fn cohorts(store: &Store, workspace: Option<&Workspace>, query: &Query) -> Result<Vec<CohortRow>> {
    let ledger = ledger(store).await?;
    let members = members(store, workspace, query, query.period).await?;
    Ok(cohort_retention(&ledger, query.period.first(), query.period.last(), query.as_of, members.as_ref())?)
}
