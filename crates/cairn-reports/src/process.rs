//! Process KPIs: how the customer base and the team are doing right now.
//!
//! - **Health**: accounts per band and quantiles of the overall score, and the biggest
//!   movers (the largest drops and rises of the overall score over 30 days, from the
//!   engine's daily snapshots). Health is the engine's state at its now, so this part
//!   needs a running or evaluated engine ([`health`]); without one it is left out.
//! - **Tasks**: the tasks open at the report's instant (the end of `as_of`, or now if
//!   that is earlier), by assignee and by pool: count, median and oldest age in days,
//!   overdue (due before that instant).
//! - **Support tickets**, from product events: `ticket_opened` in the period, in total
//!   and per week (weeks start on Monday; the first and last may be partial), and
//!   `ticket_closed` / `ticket_solved`. Open tickets and their age need each close paired
//!   with its open by a `ticket_id` property; when the events do not allow that, the
//!   report says why instead of guessing.

use std::collections::BTreeMap;

use cairn_engine::Engine;
use cairn_measure::Period;
use cairn_measure::stats::quantiles::quantile;
use cairn_rules::Value;
use cairn_store::{LogEvent, Store, Task};
use cairn_workspace::Band;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;

use crate::{Query, ReportError, Result};

/// How many accounts each list of movers shows.
pub const MOVERS: usize = 10;
/// The days a mover's change is measured over.
pub const MOVER_DAYS: i32 = 30;
/// The events read as support tickets.
pub const TICKET_OPENED: &str = "ticket_opened";
/// Events that close a ticket.
pub const TICKET_CLOSED: [&str; 2] = ["ticket_closed", "ticket_solved"];
/// The property pairing a close with its open.
pub const TICKET_ID: &str = "ticket_id";

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// The period tickets are counted in.
    pub period: Period,
    pub as_of: Date,
    /// `None` when no engine state was given (no workspace).
    pub health: Option<HealthSummary>,
    pub tasks: Backlog,
    pub tickets: Tickets,
}

/// The health of every account the engine knows, at its now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSummary {
    /// The engine's instant the scores are of.
    pub at: Timestamp,
    pub accounts: u64,
    pub red: u64,
    pub yellow: u64,
    pub green: u64,
    /// Accounts without a score (no measure has data, or no health model).
    pub unscored: u64,
    /// Quantiles of the overall score over the scored accounts (type 7).
    pub p10: Option<f64>,
    pub p25: Option<f64>,
    pub median: Option<f64>,
    pub p75: Option<f64>,
    pub p90: Option<f64>,
    /// The largest drops over 30 days, largest first.
    pub drops: Vec<Mover>,
    /// The largest rises over 30 days, largest first.
    pub rises: Vec<Mover>,
}

/// An account whose overall score moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mover {
    pub account_id: u64,
    pub name: Option<String>,
    /// The score now.
    pub score: f64,
    /// Now minus 30 days ago.
    pub change: f64,
    pub band: Option<Band>,
}

/// The open tasks at an instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backlog {
    /// The instant ages and overdue are measured at.
    pub at: Timestamp,
    /// All open tasks.
    pub total: TaskGroup,
    /// By assignee (`None`: unassigned), by name.
    pub by_assignee: Vec<TaskGroup>,
    /// By pool (`None`: not pooled), by name.
    pub by_pool: Vec<TaskGroup>,
}

/// Open tasks of one assignee or pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskGroup {
    pub name: Option<String>,
    pub open: u64,
    /// Age = the instant minus when the task was made, in days.
    pub median_age_days: Option<f64>,
    pub oldest_age_days: Option<f64>,
    /// Open tasks whose due time is before the instant.
    pub overdue: u64,
}

/// Support tickets from product events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tickets {
    /// `ticket_opened` events in the period.
    pub opened: u64,
    /// Per week overlapping the period (by its Monday), counting the period's days only.
    pub weeks: Vec<WeekCount>,
    /// `ticket_closed` / `ticket_solved` events in the period.
    pub closed: u64,
    /// Tickets open at the report's instant and their age, when opens and closes pair.
    pub open: Option<OpenTickets>,
    /// Why open tickets could not be told, or what was left out of them.
    pub note: Option<String>,
}

/// One week's count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekCount {
    pub week_of: Date,
    pub opened: u64,
}

/// Tickets open at the report's instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenTickets {
    pub at: Timestamp,
    pub count: u64,
    /// Age = the instant minus the ticket's first `ticket_opened`, in days.
    pub median_age_days: Option<f64>,
    pub oldest_age_days: Option<f64>,
}

/// The health part, from the engine's state (pure: call it under the runtime's read lock).
pub fn health(engine: &Engine) -> Result<HealthSummary> {
    let mut s = HealthSummary {
        at: engine.now(),
        accounts: 0,
        red: 0,
        yellow: 0,
        green: 0,
        unscored: 0,
        p10: None,
        p25: None,
        median: None,
        p75: None,
        p90: None,
        drops: Vec::new(),
        rises: Vec::new(),
    };
    let mut scores = Vec::new();
    let mut movers = Vec::new();
    for (id, a) in engine.accounts() {
        s.accounts += 1;
        let h = a.health.as_ref();
        match h.and_then(|h| h.band) {
            Some(Band::Red) => s.red += 1,
            Some(Band::Yellow) => s.yellow += 1,
            Some(Band::Green) => s.green += 1,
            None => s.unscored += 1,
        }
        let Some(score) = h.and_then(|h| h.score).filter(|x| x.is_finite()) else { continue };
        scores.push(score);
        if let Some(change) = engine.health_trend(id, MOVER_DAYS).filter(|c| c.is_finite() && *c != 0.0) {
            let name = match a.traits.get("name") {
                Some(Value::String(n)) => Some(n.to_string()),
                _ => None,
            };
            movers.push(Mover { account_id: id, name, score, change, band: h.and_then(|h| h.band) });
        }
    }
    (s.p10, s.p25, s.median, s.p75, s.p90) = (
        quantile(&scores, 0.1)?,
        quantile(&scores, 0.25)?,
        quantile(&scores, 0.5)?,
        quantile(&scores, 0.75)?,
        quantile(&scores, 0.9)?,
    );
    (s.drops, s.rises) = split_movers(movers);
    Ok(s)
}

/// The largest drops and the largest rises, `MOVERS` each; ties by account id.
fn split_movers(movers: Vec<Mover>) -> (Vec<Mover>, Vec<Mover>) {
    let (mut drops, mut rises): (Vec<Mover>, Vec<Mover>) = movers.into_iter().partition(|m| m.change < 0.0);
    drops.sort_by(|a, b| a.change.total_cmp(&b.change).then(a.account_id.cmp(&b.account_id)));
    rises.sort_by(|a, b| b.change.total_cmp(&a.change).then(a.account_id.cmp(&b.account_id)));
    drops.truncate(MOVERS);
    rises.truncate(MOVERS);
    (drops, rises)
}

/// The report. `health` comes from [`health`] when an engine is at hand; `now` is the
/// clock's instant (the backlog is measured at the end of `as_of`, or now if earlier).
pub async fn process(
    store: &Store,
    health: Option<HealthSummary>,
    query: &Query,
    now: Timestamp,
) -> Result<ProcessReport> {
    if let Some(s) = &query.segment {
        return Err(ReportError::Invalid(format!(
            "the process report covers every account and the whole team: leave out segment `{s}`"
        )));
    }
    let at = instant_of(query.as_of, now)?;
    let tasks = backlog(&store.tasks_open_at(at).await?, at);
    let mut names = vec![TICKET_OPENED];
    names.extend(TICKET_CLOSED);
    let events = store.events_named(&names, at).await?;
    let tickets = tickets(&events, query.period, at)?;
    Ok(ProcessReport { period: query.period, as_of: query.as_of, health, tasks, tickets })
}

/// The end of `as_of` (00:00 UTC of the next day), or `now` if that is earlier.
fn instant_of(as_of: Date, now: Timestamp) -> Result<Timestamp> {
    let end = as_of
        .tomorrow()
        .and_then(|d| d.to_zoned(TimeZone::UTC))
        .map_err(|e| ReportError::Invalid(format!("as-of {as_of}: {e}")))?
        .timestamp();
    Ok(end.min(now))
}

fn days(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64() / 86_400.0
}

fn group(name: Option<String>, tasks: &[&Task], at: Timestamp) -> TaskGroup {
    let ages: Vec<f64> = tasks.iter().map(|t| days(t.created_at, at)).collect();
    TaskGroup {
        name,
        open: tasks.len() as u64,
        // Ages are finite (instants are), so quantile cannot refuse them.
        median_age_days: quantile(&ages, 0.5).ok().flatten(),
        oldest_age_days: ages.iter().copied().reduce(f64::max),
        overdue: tasks.iter().filter(|t| t.due_at.is_some_and(|d| d < at)).count() as u64,
    }
}

/// Open tasks by assignee and by pool.
fn backlog(open: &[Task], at: Timestamp) -> Backlog {
    let mut by_assignee: BTreeMap<Option<&str>, Vec<&Task>> = BTreeMap::new();
    let mut by_pool: BTreeMap<Option<&str>, Vec<&Task>> = BTreeMap::new();
    for t in open {
        by_assignee.entry(t.assignee.as_deref()).or_default().push(t);
        by_pool.entry(t.pool.as_deref()).or_default().push(t);
    }
    let groups = |m: BTreeMap<Option<&str>, Vec<&Task>>| -> Vec<TaskGroup> {
        m.into_iter().map(|(name, tasks)| group(name.map(str::to_string), &tasks, at)).collect()
    };
    let all: Vec<&Task> = open.iter().collect();
    Backlog { at, total: group(None, &all, at), by_assignee: groups(by_assignee), by_pool: groups(by_pool) }
}

/// A ticket event's `ticket_id` (a string or a number), if it has one.
fn ticket_id(e: &LogEvent) -> Option<String> {
    let props: serde_json::Value = serde_json::from_str(e.properties.as_deref()?).ok()?;
    match props.get(TICKET_ID)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The Monday of the week holding `day`.
fn monday_of(day: Date) -> Result<Date> {
    let back = i64::from(day.weekday().to_monday_zero_offset());
    day.checked_sub(back.days()).map_err(|e| ReportError::Invalid(format!("the week of {day}: {e}")))
}

/// Ticket volume in the period and, where opens and closes pair by `ticket_id`, the
/// tickets open at `at` (`events`: every ticket event before `at`, oldest first).
fn tickets(events: &[LogEvent], period: Period, at: Timestamp) -> Result<Tickets> {
    let mut weeks: BTreeMap<Date, u64> = BTreeMap::new();
    let mut week = monday_of(period.first())?;
    while week <= period.last() {
        weeks.insert(week, 0);
        week = week.checked_add(1.week()).map_err(|e| ReportError::Invalid(format!("the week after {week}: {e}")))?;
    }
    let (mut opened, mut closed) = (0, 0);
    let (mut opens, mut closes, mut opens_without_id) = (0u64, 0u64, 0u64);
    // Per ticket id: its first open, and whether its latest event is an open.
    let mut state: BTreeMap<String, (Timestamp, bool)> = BTreeMap::new();
    for e in events {
        let is_open = e.name.as_deref() == Some(TICKET_OPENED);
        let day = e.ts.to_zoned(TimeZone::UTC).date();
        if period.contains(day) {
            if is_open {
                opened += 1;
                if let Some(n) = weeks.get_mut(&monday_of(day)?) {
                    *n += 1;
                }
            } else {
                closed += 1;
            }
        }
        let id = ticket_id(e);
        if is_open {
            opens += 1;
            match id {
                Some(id) => state.entry(id).or_insert((e.ts, true)).1 = true,
                None => opens_without_id += 1,
            }
        } else {
            closes += 1;
            if let Some(s) = id.and_then(|id| state.get_mut(&id)) {
                s.1 = false;
            }
        }
    }
    let weeks = weeks.into_iter().map(|(week_of, opened)| WeekCount { week_of, opened }).collect();
    let names = format!("{} or {}", TICKET_CLOSED[0], TICKET_CLOSED[1]);
    let (open, note) = if opens == 0 {
        (None, None)
    } else if closes == 0 {
        (None, Some(format!("no {names} events: which tickets are still open, and their age, cannot be told")))
    } else if opens_without_id == opens {
        (
            None,
            Some(format!(
                "{TICKET_OPENED} events carry no `{TICKET_ID}` property: closes cannot be paired with opens, so open tickets and their age cannot be told"
            )),
        )
    } else {
        let ages: Vec<f64> = state.values().filter(|(_, open)| *open).map(|(first, _)| days(*first, at)).collect();
        let open = OpenTickets {
            at,
            count: ages.len() as u64,
            median_age_days: quantile(&ages, 0.5).ok().flatten(),
            oldest_age_days: ages.iter().copied().reduce(f64::max),
        };
        let note = (opens_without_id > 0).then(|| {
            format!("{opens_without_id} of {opens} {TICKET_OPENED} events have no `{TICKET_ID}` and are left out of the open tickets")
        });
        (Some(open), note)
    };
    Ok(Tickets { opened, weeks, closed, open, note })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn task(id: i64, assignee: Option<&str>, pool: Option<&str>, created: &str, due: Option<&str>) -> Task {
        Task {
            id,
            enrollment_id: id,
            step_id: "call".into(),
            account_id: None,
            contact_id: None,
            title: "Call".into(),
            body: String::new(),
            assignee: assignee.map(str::to_string),
            pool: pool.map(str::to_string),
            priority: cairn_store::TaskPriority::Normal,
            due_at: due.map(ts),
            created_at: ts(created),
            completed_by: None,
            completed_at: None,
            outcome: None,
        }
    }

    fn event(name: &str, at: &str, ticket: Option<&str>) -> LogEvent {
        LogEvent {
            seq: 0,
            ts: ts(at),
            kind: "track".into(),
            name: Some(name.into()),
            contact_id: None,
            account_id: Some(1),
            source: "web".into(),
            properties: ticket.map(|t| format!("{{\"{TICKET_ID}\":\"{t}\"}}")),
        }
    }

    #[test]
    fn tasks_are_grouped_with_their_ages_and_overdue_counts() {
        let at = ts("2026-03-01T00:00:00Z");
        let open = [
            task(1, Some("ana"), Some("cs"), "2026-02-19T00:00:00Z", Some("2026-02-25T00:00:00Z")),
            task(2, Some("ana"), None, "2026-02-27T12:00:00Z", Some("2026-03-02T00:00:00Z")),
            task(3, Some("bo"), Some("cs"), "2026-02-28T00:00:00Z", None),
            task(4, None, Some("cs"), "2026-02-01T00:00:00Z", Some("2026-02-28T23:59:59Z")),
        ];
        let b = backlog(&open, at);
        // Ages: 10, 1.5, 1, 28 days. All: median (1.5 + 10) / 2 = 5.75, oldest 28; overdue 1 and 4.
        assert_eq!(
            b.total,
            TaskGroup { name: None, open: 4, median_age_days: Some(5.75), oldest_age_days: Some(28.0), overdue: 2 }
        );
        let ana = &b.by_assignee[1];
        assert_eq!((ana.name.as_deref(), ana.open, ana.median_age_days, ana.overdue), (Some("ana"), 2, Some(5.75), 1));
        assert_eq!(b.by_assignee[0].name, None, "unassigned first");
        let cs = b.by_pool.iter().find(|g| g.name.as_deref() == Some("cs")).unwrap();
        // Ages 10, 1, 28: median 10.
        assert_eq!((cs.open, cs.median_age_days, cs.oldest_age_days, cs.overdue), (3, Some(10.0), Some(28.0), 2));
    }

    #[test]
    fn tickets_are_counted_per_week_and_paired_by_id() {
        // February 2026: Sunday the 1st, so the weeks start Jan 26, Feb 2, 9, 16, 23.
        let period = Period::new(date(2026, 2, 1), date(2026, 2, 28)).unwrap();
        let at = ts("2026-03-01T00:00:00Z");
        let events = [
            event("ticket_opened", "2026-01-20T10:00:00Z", Some("T0")),
            event("ticket_opened", "2026-02-01T10:00:00Z", Some("T1")),
            event("ticket_opened", "2026-02-03T10:00:00Z", Some("T2")),
            event("ticket_closed", "2026-02-05T10:00:00Z", Some("T1")),
            event("ticket_opened", "2026-02-26T00:00:00Z", Some("T3")),
            event("ticket_solved", "2026-02-27T00:00:00Z", Some("T0")),
        ];
        let t = tickets(&events, period, at).unwrap();
        assert_eq!((t.opened, t.closed), (3, 2));
        let weeks: Vec<(String, u64)> = t.weeks.iter().map(|w| (w.week_of.to_string(), w.opened)).collect();
        assert_eq!(
            weeks,
            [("2026-01-26", 1), ("2026-02-02", 1), ("2026-02-09", 0), ("2026-02-16", 0), ("2026-02-23", 1)]
                .map(|(d, n)| (d.to_string(), n))
        );
        // Open at Mar 1: T2 (Feb 3 10:00 to Mar 1 00:00: 25 days 14 hours) and T3 (3 days).
        let open = t.open.unwrap();
        assert_eq!(open.count, 2);
        assert_eq!(open.oldest_age_days, Some(25.0 + 14.0 / 24.0));
        assert_eq!(open.median_age_days, Some((25.0 + 14.0 / 24.0 + 3.0) / 2.0));
        assert_eq!(t.note, None);
    }

    #[test]
    fn tickets_that_cannot_be_paired_say_why() {
        let period = Period::new(date(2026, 2, 1), date(2026, 2, 28)).unwrap();
        let at = ts("2026-03-01T00:00:00Z");
        let only_opens = [event("ticket_opened", "2026-02-03T10:00:00Z", Some("T1"))];
        let t = tickets(&only_opens, period, at).unwrap();
        assert_eq!((t.opened, t.open.is_none()), (1, true));
        assert!(t.note.unwrap().contains("no ticket_closed or ticket_solved events"));
        let no_ids = [
            event("ticket_opened", "2026-02-03T10:00:00Z", None),
            event("ticket_closed", "2026-02-04T10:00:00Z", None),
        ];
        assert!(tickets(&no_ids, period, at).unwrap().note.unwrap().contains("carry no `ticket_id`"));
        let some_ids = [
            event("ticket_opened", "2026-02-03T10:00:00Z", None),
            event("ticket_opened", "2026-02-04T00:00:00Z", Some("T9")),
            event("ticket_closed", "2026-02-05T10:00:00Z", Some("T8")),
        ];
        let t = tickets(&some_ids, period, at).unwrap();
        assert_eq!(t.open.unwrap().count, 1);
        assert!(t.note.unwrap().starts_with("1 of 2 ticket_opened events have no `ticket_id`"));
        assert_eq!(tickets(&[], period, at).unwrap().note, None, "no tickets: nothing to explain");
    }

    #[test]
    fn movers_are_the_largest_changes_each_way() {
        let m = |id: u64, change: f64| Mover { account_id: id, name: None, score: 50.0, change, band: None };
        let mut all: Vec<Mover> = (1..=12).map(|i| m(i, -(i as f64))).collect();
        all.extend([m(20, 3.0), m(21, 7.5), m(22, 3.0)]);
        let (drops, rises) = split_movers(all);
        assert_eq!(drops.iter().map(|d| d.account_id).collect::<Vec<_>>(), vec![12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
        assert_eq!(rises.iter().map(|d| d.account_id).collect::<Vec<_>>(), vec![21, 20, 22]);
    }

    #[test]
    fn a_gross_margin_is_read_exactly_as_a_share_or_a_percentage() {
        use crate::revenue::gross_margin;
        let share = |t: &str| gross_margin(t).map(|r| (r.numerator(), r.denominator()));
        assert_eq!(share("0.8").unwrap(), (4, 5));
        assert_eq!(share("80%").unwrap(), (4, 5));
        assert_eq!(share(" 62.5 %").unwrap(), (5, 8));
        assert_eq!(share(".75").unwrap(), (3, 4));
        assert_eq!(share("1").unwrap(), (1, 1));
        for bad in ["0", "0%", "1.2", "120%", "-0.5", "abc", "", "%", ".", "0.1234567890123", "8e-1"] {
            let e = gross_margin(bad).unwrap_err().to_string();
            assert!(e.contains("give it like 0.8 or 80%"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_backlog_is_measured_at_the_end_of_the_day_or_now() {
        let now = ts("2026-03-01T15:00:00Z");
        assert_eq!(instant_of(date(2026, 2, 27), now).unwrap(), ts("2026-02-28T00:00:00Z"));
        assert_eq!(instant_of(date(2026, 3, 1), now).unwrap(), now);
    }
}
