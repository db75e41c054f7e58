//! Revenue and retention from the subscription ledger: a period's KPIs with the renewal
//! rate, monthly ARR movements with the waterfall, and cohort retention triangles
//! (docs/metrics.md defines each figure).

use std::collections::BTreeSet;

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

/// The accounts a query is restricted to (its segment's members as of the period's first
/// day), or `None` for every account.
pub async fn members(_store: &Store, query: &Query) -> Result<Option<BTreeSet<String>>> {
    match &query.segment {
        None => Ok(None),
        Some(s) => Err(ReportError::Invalid(format!("segment `{s}`: reports by segment are not supported yet"))),
    }
}

/// NRR, GRR, churn, expansion, contraction, new ARR and the renewal rate of the period.
pub async fn kpis(store: &Store, query: &Query) -> Result<KpiReport> {
    let ledger = ledger(store).await?;
    let members = members(store, query).await?;
    Ok(KpiReport {
        kpis: period_kpis(&ledger, query.period, members.as_ref()),
        renewal: renewal_rate(&ledger, query.period, members.as_ref()),
    })
}

/// ARR movements per month of the period, and the waterfall over it.
pub async fn movements(store: &Store, query: &Query) -> Result<Waterfall> {
    let ledger = ledger(store).await?;
    let members = members(store, query).await?;
    Ok(measure_movements(&ledger, query.period.first(), query.period.last(), members.as_ref())?)
}

/// Logo and revenue retention by start month, for the start months in the period,
/// through `as_of`.
pub async fn cohorts(store: &Store, query: &Query) -> Result<Vec<CohortRow>> {
    let ledger = ledger(store).await?;
    let members = members(store, query).await?;
    Ok(cohort_retention(&ledger, query.period.first(), query.period.last(), query.as_of, members.as_ref())?)
}
