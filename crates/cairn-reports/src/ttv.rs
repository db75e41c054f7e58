//! Time to Value: the days from an account's journey anchor to its value milestone (the
//! milestone marked `value: true` in the journey), per start-month cohort.
//!
//! The cohort is the journey funnel's (see [`crate::journey`]): the accounts whose anchor
//! day falls in the period and not after the as-of day, split by the anchor's month. An
//! account *reached value* when a `milestone_achieved` of the value milestone is recorded
//! by the end of the as-of day; its time to value is from the start of its anchor day (in
//! the workspace's time zone) to that instant, in days with fractions.
//!
//! Median, p75 and p90 are over the accounts that reached value (linear interpolation
//! between order statistics, Hyndman & Fan type 7, `cairn_measure::stats::quantile`);
//! they leave out the accounts still on their way, so they read low while a cohort is
//! young. The Kaplan–Meier median counts those too, as right-censored: an account that
//! missed the milestone is censored at its deadline (it did not get there before; after
//! that the engine no longer watches), one still pending at the end of the as-of day.

use cairn_measure::stats::{Observation, TimeToValue, kaplan_meier};
use cairn_measure::{Period, Ratio};
use cairn_store::Store;
use cairn_workspace::Workspace;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::journey::{Anchored, History, Outcome, cohort, deadline, end_of_day, history, journey_of, start_of_day};
use crate::{Query, ReportError, Result};

/// Time to Value by start month.
#[derive(Debug, Clone, Serialize)]
pub struct TtvReport {
    /// The anchor days of the cohorts.
    pub period: Period,
    pub as_of: Date,
    /// The value milestone's id.
    pub milestone: String,
    pub milestone_name: Option<String>,
    /// Its `within`, in days (none: no deadline).
    pub within_days: Option<f64>,
    /// One row per start month of the period, oldest first.
    pub cohorts: Vec<TtvCohort>,
    /// Every start month together.
    pub total: TtvCohort,
}

/// One start-month cohort.
#[derive(Debug, Clone, Serialize)]
pub struct TtvCohort {
    /// The start month (for the total, the period).
    pub start: Period,
    pub accounts: u64,
    /// Accounts that missed the value milestone's deadline.
    pub missed: u64,
    /// Accounts neither there nor past the deadline yet.
    pub pending: u64,
    /// `reached / accounts`.
    pub reached_rate: Option<Ratio>,
    /// Over the accounts that reached value: how many, median, p75, p90 (days).
    #[serde(flatten)]
    pub ttv: TimeToValue,
    /// The Kaplan–Meier median in days, with missed and pending accounts censored; none
    /// while more than half have not reached value.
    pub km_median: Option<f64>,
}

/// Time to Value per start month of the query's period.
pub async fn ttv(store: &Store, ws: &Workspace, query: &Query) -> Result<TtvReport> {
    let journey = journey_of(ws)?;
    let Some(milestone) = journey.value_milestone() else {
        return Err(ReportError::Invalid(
            "the journey has no value milestone: mark the milestone that means value with `value: true`".into(),
        ));
    };
    let (cohort, _) = cohort(store, ws, journey, query).await?;
    let cutoff = end_of_day(query.as_of, ws.time_zone())?;
    let history = history(&store.journey_transitions(cutoff).await?, &cohort);
    let measure = |members: &[&Anchored], start: Period| {
        let id = milestone.id.as_str();
        let mut reached = Vec::new();
        let mut observations = Vec::new();
        let (mut missed, mut pending) = (0, 0);
        for a in members {
            let (time, event) = match outcome(&history, a.id, id) {
                Some(Outcome::Achieved(at)) => {
                    let d = days(a.anchor, at, ws.time_zone());
                    reached.push(d);
                    (d, true)
                }
                Some(Outcome::Missed(_)) => {
                    missed += 1;
                    let due = milestone.within.map_or(cutoff, |w| deadline(a.anchor, w, ws.time_zone()));
                    (days(a.anchor, due.min(cutoff), ws.time_zone()), false)
                }
                None => {
                    pending += 1;
                    (days(a.anchor, cutoff, ws.time_zone()), false)
                }
            };
            observations.push(Observation { time: time.max(0.0), event });
        }
        let km = kaplan_meier(&observations)?;
        Ok::<_, ReportError>(TtvCohort {
            start,
            accounts: members.len() as u64,
            missed,
            pending,
            reached_rate: Ratio::new(reached.len() as u64, members.len() as u64),
            ttv: TimeToValue::of(&reached)?,
            km_median: km.median(),
        })
    };
    let mut cohorts = Vec::new();
    for month in Period::months(query.period.first(), query.period.last())? {
        let members: Vec<&Anchored> = cohort.iter().filter(|a| month.contains(a.anchor)).collect();
        cohorts.push(measure(&members, month)?);
    }
    let total = measure(&cohort.iter().collect::<Vec<_>>(), query.period)?;
    Ok(TtvReport {
        period: query.period,
        as_of: query.as_of,
        milestone: milestone.id.as_str().to_string(),
        milestone_name: milestone.name.clone(),
        within_days: milestone.within.map(|w| w.as_secs_f64() / 86_400.0),
        cohorts,
        total,
    })
}

fn outcome(h: &History, account: i64, milestone: &str) -> Option<Outcome> {
    h.outcomes.get(&(account, milestone.to_string())).copied()
}

/// Days with fractions from the start of the anchor day to `at`.
fn days(anchor: Date, at: Timestamp, tz: &TimeZone) -> f64 {
    at.duration_since(start_of_day(anchor, tz)).as_secs_f64() / 86_400.0
}
