//! The journey funnel: per stage of the workspace's journey, how many accounts of a start
//! cohort entered it, and per milestone how many achieved it on time, late, missed it or
//! are still pending.
//!
//! **Which accounts.** The cohort is the accounts whose journey anchor (the trait the
//! journey's `anchor:` names, `start_date` by default) falls in the period, in the
//! workspace's time zone, and not after the as-of day; with a segment, those of them in
//! it. An account without an anchor value has no deadlines and is not counted (its number
//! is given as `without_anchor`).
//!
//! **What is counted**, from the engine's recorded transitions up to the end of the as-of
//! day: a stage is *entered* by an account with a `stage_changed` into it or into a later
//! stage (the journey is a funnel: one evaluation may move an account past several); *now in* is the
//! stage of its latest move. For a milestone, each cohort account is in exactly one of:
//! *on time* (a `milestone_achieved` before its deadline, or it has none), *late* (a
//! `milestone_achieved` at or after the deadline), *missed* (a `milestone_missed`) or
//! *pending* (neither yet). *Due* counts the accounts whose deadline (anchor + `within`,
//! as the engine computes it) has passed by the end of the as-of day; the *on-time rate*
//! is the share of those due accounts that achieved it on time. The engine stops
//! watching a milestone once it is missed, so a customer who gets there afterwards stays
//! missed; *late* is seen only when a deadline was shortened after the achievement was
//! recorded.

use std::collections::{BTreeMap, BTreeSet};

use cairn_measure::{Period, Ratio};
use cairn_rules::Value;
use cairn_store::{Store, StoredTransition};
use cairn_workspace::{Journey, Milestone, Workspace};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::Serialize;

use crate::{Query, ReportError, Result};

/// The funnel of a start cohort.
#[derive(Debug, Clone, Serialize)]
pub struct JourneyReport {
    /// The anchor days of the cohort.
    pub period: Period,
    pub as_of: Date,
    /// Accounts in the cohort.
    pub accounts: u64,
    /// Accounts (in the segment, if any) with no anchor value: not in any cohort.
    pub without_anchor: u64,
    pub stages: Vec<StageRow>,
}

/// One stage of the funnel.
#[derive(Debug, Clone, Serialize)]
pub struct StageRow {
    pub id: String,
    pub name: Option<String>,
    /// Cohort accounts that ever entered the stage.
    pub entered: u64,
    /// Cohort accounts whose latest move was into the stage.
    pub now_in: u64,
    pub milestones: Vec<MilestoneRow>,
}

/// One milestone of a stage.
#[derive(Debug, Clone, Serialize)]
pub struct MilestoneRow {
    pub id: String,
    pub name: Option<String>,
    /// Its `within`, in days (none: no deadline).
    pub within_days: Option<f64>,
    /// Cohort accounts whose deadline has passed.
    pub due: u64,
    pub on_time: u64,
    pub late: u64,
    pub missed: u64,
    pub pending: u64,
    /// Of the due accounts, the share that achieved it on time (accounts whose deadline
    /// is still ahead are left out, so a young cohort's early achievers do not inflate it).
    pub on_time_rate: Option<Ratio>,
}

/// A cohort account: its id and anchor day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Anchored {
    pub id: i64,
    pub anchor: Date,
}

/// What the transitions say of a milestone for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Achieved(Timestamp),
    Missed(Timestamp),
}

/// What the transitions say of the cohort's accounts.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// The first outcome of each (account, milestone).
    pub outcomes: BTreeMap<(i64, String), Outcome>,
    /// The stages each account entered.
    pub entered: BTreeMap<i64, BTreeSet<String>>,
    /// Each account's latest stage.
    pub current: BTreeMap<i64, String>,
}

/// The journey funnel of the accounts whose anchor falls in the query's period.
pub async fn journey(store: &Store, ws: &Workspace, query: &Query) -> Result<JourneyReport> {
    let journey = journey_of(ws)?;
    let (cohort, without_anchor) = cohort(store, ws, journey, query).await?;
    let cutoff = end_of_day(query.as_of, ws.time_zone())?;
    let history = history(&store.journey_transitions(cutoff).await?, &cohort);
    Ok(funnel(journey, ws.time_zone(), query, &cohort, without_anchor, &history, cutoff))
}

/// The workspace's journey, or an error saying there is none.
pub(crate) fn journey_of(ws: &Workspace) -> Result<&Journey> {
    ws.journey().ok_or_else(|| {
        ReportError::Invalid("the workspace has no journey: define `journey:` with stages and milestones".into())
    })
}

/// The accounts whose anchor day is in the period and not after as-of (in the segment,
/// if any), by id; and how many accounts have no anchor value.
pub(crate) async fn cohort(
    store: &Store,
    ws: &Workspace,
    journey: &Journey,
    query: &Query,
) -> Result<(Vec<Anchored>, u64)> {
    let members = crate::revenue::members(store, Some(ws), query, query.period).await?;
    let mut cohort = Vec::new();
    let mut without_anchor = 0;
    for a in store.engine_accounts(query.as_of).await? {
        if members.as_ref().is_some_and(|m| !m.contains(&a.id.to_string())) {
            continue;
        }
        let anchor = match cairn_runtime::account_traits(&a, ws).get(&journey.anchor) {
            Some(Value::Date(d)) => *d,
            Some(Value::Timestamp(t)) => t.to_zoned(ws.time_zone().clone()).date(),
            _ => {
                without_anchor += 1;
                continue;
            }
        };
        if query.period.contains(anchor) && anchor <= query.as_of {
            cohort.push(Anchored { id: a.id, anchor });
        }
    }
    cohort.sort_by_key(|a| a.id);
    Ok((cohort, without_anchor))
}

/// The stage moves and milestone outcomes of the cohort's accounts, from transitions
/// oldest first.
pub(crate) fn history(transitions: &[StoredTransition], cohort: &[Anchored]) -> History {
    let ids: BTreeSet<i64> = cohort.iter().map(|a| a.id).collect();
    let mut h = History::default();
    for t in transitions.iter().filter(|t| t.subject_kind == "account" && ids.contains(&t.subject_id)) {
        let text = |key: &str| t.detail.get(key).and_then(serde_json::Value::as_str).map(str::to_string);
        match t.kind.as_str() {
            "stage_changed" => {
                if let Some(to) = text("to") {
                    h.entered.entry(t.subject_id).or_default().insert(to.clone());
                    h.current.insert(t.subject_id, to);
                }
            }
            "milestone_achieved" | "milestone_missed" => {
                if let Some(m) = text("milestone") {
                    let outcome =
                        if t.kind == "milestone_missed" { Outcome::Missed(t.at) } else { Outcome::Achieved(t.at) };
                    h.outcomes.entry((t.subject_id, m)).or_insert(outcome);
                }
            }
            _ => {}
        }
    }
    h
}

fn funnel(
    journey: &Journey,
    tz: &TimeZone,
    query: &Query,
    cohort: &[Anchored],
    without_anchor: u64,
    h: &History,
    cutoff: Timestamp,
) -> JourneyReport {
    // The journey is a funnel: an account that entered a stage passed every stage before
    // it, even when one evaluation moved it past several at once (one `stage_changed`).
    let furthest = |account: i64| {
        h.entered.get(&account).and_then(|e| journey.stages.iter().rposition(|s| e.contains(s.id.as_str())))
    };
    let stages = journey
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let id = s.id.as_str();
            let entered = cohort.iter().filter(|a| furthest(a.id).is_some_and(|f| f >= i)).count();
            let now_in = cohort.iter().filter(|a| h.current.get(&a.id).is_some_and(|c| c == id)).count();
            StageRow {
                id: id.to_string(),
                name: s.name.clone(),
                entered: entered as u64,
                now_in: now_in as u64,
                milestones: s.milestones.iter().map(|m| milestone_row(m, tz, cohort, h, cutoff)).collect(),
            }
        })
        .collect();
    JourneyReport { period: query.period, as_of: query.as_of, accounts: cohort.len() as u64, without_anchor, stages }
}

fn milestone_row(m: &Milestone, tz: &TimeZone, cohort: &[Anchored], h: &History, cutoff: Timestamp) -> MilestoneRow {
    let mut row = MilestoneRow {
        id: m.id.as_str().to_string(),
        name: m.name.clone(),
        within_days: m.within.map(|w| w.as_secs_f64() / 86_400.0),
        due: 0,
        on_time: 0,
        late: 0,
        missed: 0,
        pending: 0,
        on_time_rate: None,
    };
    let mut due_on_time = 0u64;
    for a in cohort {
        let deadline = m.within.map(|w| deadline(a.anchor, w, tz));
        let due = deadline.is_some_and(|d| d <= cutoff);
        row.due += u64::from(due);
        match h.outcomes.get(&(a.id, row.id.clone())) {
            Some(Outcome::Achieved(at)) if deadline.is_some_and(|d| *at >= d) => row.late += 1,
            Some(Outcome::Achieved(_)) => {
                row.on_time += 1;
                due_on_time += u64::from(due);
            }
            Some(Outcome::Missed(_)) => row.missed += 1,
            None => row.pending += 1,
        }
    }
    row.on_time_rate = Ratio::new(due_on_time, row.due);
    row
}

/// A milestone's deadline as the engine computes it (cairn-engine's `deadline`): whole
/// days count calendar days from the anchor's day, so the deadline is the start of day
/// anchor + N in the workspace's time zone; other durations count from the anchor day's
/// first instant.
pub(crate) fn deadline(anchor: Date, within: SignedDuration, tz: &TimeZone) -> Timestamp {
    let secs = within.as_secs();
    if secs % 86_400 == 0 {
        let day = anchor.checked_add((secs / 86_400).days()).unwrap_or(Date::MAX);
        start_of_day(day, tz)
    } else {
        start_of_day(anchor, tz).checked_add(within).unwrap_or(Timestamp::MAX)
    }
}

pub(crate) fn start_of_day(day: Date, tz: &TimeZone) -> Timestamp {
    day.to_zoned(tz.clone()).map(|z| z.timestamp()).unwrap_or(Timestamp::MAX)
}

/// The first instant after `day` (its end, exclusive) in the time zone.
pub(crate) fn end_of_day(day: Date, tz: &TimeZone) -> Result<Timestamp> {
    let next = day.tomorrow().map_err(|e| ReportError::Invalid(format!("the day after {day}: {e}")))?;
    Ok(start_of_day(next, tz))
}
