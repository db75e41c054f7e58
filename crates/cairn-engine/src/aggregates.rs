//! Behavioural aggregates kept current one event at a time.
//!
//! The rules of a workspace name aggregates (`count('report_created', 30d)`,
//! `distinct_users('user_invited', since_anchor)`). Many of them read the same underlying
//! series: `count('x', 7d)`, `count('x', 30d)` and `count('x', since_anchor)` all read
//! the daily counts of `x`. An [`AggregatePlan`] therefore splits every aggregate into a
//! *tracker* (the state an event updates: daily counts, daily sums, each user's last
//! active day, …) and a *query* (how the rule reads it: which window). An event touches
//! only the trackers of its name, in O(1) amortised (events arrive mostly in time order;
//! a late one is inserted in place); a query reads its window when a rule is evaluated.

use cairn_rules::{AggId, Aggregate, AggregateTable, EventFilter, Subject, Value, Window};
use jiff::Timestamp;

use crate::days::Day;
use crate::fast::FastMap;

/// What one tracker keeps, for one subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TrackerSpec {
    /// Events per day.
    Count(EventFilter),
    /// Sum of a numeric property per day.
    Sum(EventFilter, String),
    /// Each contact's last day with a matching event.
    Users(EventFilter),
    /// Each listed event's last day.
    Names(Vec<String>),
    /// The days with any event.
    Days,
    /// First and last time a matching event happened.
    FirstLast(EventFilter),
}

/// How a rule reads a tracker.
#[derive(Debug, Clone, Copy)]
enum Query {
    Count(usize, WindowRef),
    Sum(usize, WindowRef),
    Users(usize, WindowRef),
    Names(usize, WindowRef),
    Days(usize, WindowRef),
    First(usize),
    Last(usize),
}

#[derive(Debug, Clone, Copy)]
enum WindowRef {
    Days(u32),
    SinceAnchor,
    AllTime,
}

impl From<&Window> for WindowRef {
    fn from(w: &Window) -> Self {
        match w {
            Window::Days(n) => WindowRef::Days(*n),
            Window::SinceAnchor => WindowRef::SinceAnchor,
            Window::AllTime => WindowRef::AllTime,
        }
    }
}

/// The trackers of one scope (account or contact) and which events touch them.
#[derive(Debug, Clone, Default)]
struct ScopePlan {
    trackers: Vec<TrackerSpec>,
    by_name: FastMap<String, Vec<usize>>,
    any: Vec<usize>,
}

impl ScopePlan {
    fn tracker(&mut self, spec: TrackerSpec) -> usize {
        if let Some(i) = self.trackers.iter().position(|t| *t == spec) {
            return i;
        }
        let i = self.trackers.len();
        let filter = match &spec {
            TrackerSpec::Count(f) | TrackerSpec::Sum(f, _) | TrackerSpec::Users(f) | TrackerSpec::FirstLast(f) => {
                f.clone()
            }
            TrackerSpec::Names(names) => EventFilter::Named(names.clone()),
            TrackerSpec::Days => EventFilter::Any,
        };
        match filter {
            EventFilter::Any => self.any.push(i),
            EventFilter::Named(names) => {
                for n in names {
                    self.by_name.entry(n).or_default().push(i);
                }
            }
        }
        self.trackers.push(spec);
        i
    }

    fn touched<'a>(&'a self, name: &str) -> impl Iterator<Item = usize> + 'a {
        self.any.iter().copied().chain(self.by_name.get(name).into_iter().flatten().copied())
    }
}

/// Which trackers each aggregate of a workspace reads, per scope.
#[derive(Debug, Clone, Default)]
pub struct AggregatePlan {
    account: ScopePlan,
    contact: ScopePlan,
    /// Per [`AggId`]: its scope and query.
    queries: Vec<(Subject, Query)>,
    /// Numeric properties that `sum` reads (the caller extracts only these).
    properties: Vec<String>,
}

impl AggregatePlan {
    /// Plans the trackers for every aggregate of `table`.
    pub fn new(table: &AggregateTable) -> Self {
        let mut plan = AggregatePlan::default();
        for spec in table.specs() {
            let scope_plan = match spec.scope {
                Subject::Account => &mut plan.account,
                Subject::Contact => &mut plan.contact,
            };
            let query = match &spec.aggregate {
                Aggregate::Count { events, window } => {
                    Query::Count(scope_plan.tracker(TrackerSpec::Count(events.clone())), window.into())
                }
                Aggregate::Sum { events, property, window } => {
                    if !plan.properties.contains(property) {
                        plan.properties.push(property.clone());
                    }
                    Query::Sum(scope_plan.tracker(TrackerSpec::Sum(events.clone(), property.clone())), window.into())
                }
                Aggregate::DistinctUsers { events, window } => {
                    Query::Users(scope_plan.tracker(TrackerSpec::Users(events.clone())), window.into())
                }
                Aggregate::ActiveUsers { window } => {
                    Query::Users(scope_plan.tracker(TrackerSpec::Users(EventFilter::Any)), window.into())
                }
                Aggregate::DistinctEvents { events, window } => {
                    let names = match events {
                        EventFilter::Named(names) => names.clone(),
                        // "How many distinct events" over every event is unbounded; the
                        // compiler only allows lists, so this reads as zero names.
                        EventFilter::Any => Vec::new(),
                    };
                    Query::Names(scope_plan.tracker(TrackerSpec::Names(names)), window.into())
                }
                Aggregate::ActiveDays { window } => Query::Days(scope_plan.tracker(TrackerSpec::Days), window.into()),
                Aggregate::FirstSeen { events } => {
                    Query::First(scope_plan.tracker(TrackerSpec::FirstLast(events.clone())))
                }
                Aggregate::LastSeen { events } => {
                    Query::Last(scope_plan.tracker(TrackerSpec::FirstLast(events.clone())))
                }
            };
            plan.queries.push((spec.scope, query));
        }
        plan
    }

    /// The numeric event properties read by `sum` aggregates.
    pub fn properties(&self) -> &[String] {
        &self.properties
    }

    /// Fresh, empty state for one subject of `scope`.
    pub fn empty_state(&self, scope: Subject) -> AggregateState {
        let plan = self.scope(scope);
        AggregateState {
            trackers: plan
                .trackers
                .iter()
                .map(|t| match t {
                    TrackerSpec::Count(_) => Tracker::Count(Vec::new()),
                    TrackerSpec::Sum(..) => Tracker::Sum(Vec::new()),
                    TrackerSpec::Users(_) => Tracker::Users(UserDays::default()),
                    TrackerSpec::Names(names) => Tracker::Names(vec![None; names.len()]),
                    TrackerSpec::Days => Tracker::Days(Vec::new()),
                    TrackerSpec::FirstLast(_) => Tracker::FirstLast(None),
                })
                .collect(),
        }
    }

    /// Whether any tracker of `scope` reads events named `name`.
    pub fn is_tracked(&self, scope: Subject, name: &str) -> bool {
        self.scope(scope).touched(name).next().is_some()
    }

    /// The event names some tracker of `scope` lists by name (trackers of every event
    /// aside): any other name changes only what [`AggregatePlan::affected_by_any`] lists.
    pub fn listed_names(&self, scope: Subject) -> impl Iterator<Item = &str> {
        self.scope(scope).by_name.keys().map(String::as_str)
    }

    /// The aggregates of `scope` that an event of a name no tracker lists can change.
    pub fn affected_by_any(&self, scope: Subject) -> Vec<AggId> {
        let touched = &self.scope(scope).any;
        self.queries
            .iter()
            .enumerate()
            .filter(|(_, (s, q))| *s == scope && touched.contains(&q.tracker()))
            .map(|(i, _)| AggId(i as u32))
            .collect()
    }

    /// The aggregates of `scope` that an event named `name` can change.
    pub fn affected(&self, scope: Subject, name: &str) -> Vec<AggId> {
        let touched: Vec<usize> = self.scope(scope).touched(name).collect();
        self.queries
            .iter()
            .enumerate()
            .filter(|(_, (s, q))| *s == scope && touched.contains(&q.tracker()))
            .map(|(i, _)| AggId(i as u32))
            .collect()
    }

    /// Records one event in a subject's state, and in `changes` what it changed there
    /// (see [`AggregatePlan::moved`]).
    pub fn record(&self, scope: Subject, state: &mut AggregateState, event: &EventFacts<'_>, changes: &mut Changes) {
        let plan = self.scope(scope);
        changes.clear(scope, event.day);
        for i in plan.touched(event.name) {
            let Some(tracker) = state.trackers.get_mut(i) else { continue };
            let change = match (tracker, &plan.trackers[i]) {
                (Tracker::Count(series), _) => {
                    let days = series.len();
                    add_to_running_count(series, event.day);
                    Some(Change::Grew { new_day: series.len() > days })
                }
                (Tracker::Sum(series), TrackerSpec::Sum(_, property)) => match event.number(property) {
                    Some(x) => {
                        let days = series.len();
                        add_to_series(series, event.day, x);
                        // A zero changes no sum, but may be the first number of its day.
                        let new_day = series.len() > days;
                        (x != 0.0 || new_day).then_some(Change::Grew { new_day })
                    }
                    None => None,
                },
                (Tracker::Users(users), _) => {
                    event.contact.and_then(|contact| users.record(contact, event.day)).map(Change::LastDay)
                }
                (Tracker::Names(last), TrackerSpec::Names(names)) => {
                    match names.iter().position(|n| n == event.name).and_then(|k| last.get_mut(k)) {
                        Some(slot) if slot.is_none_or(|d| d < event.day) => {
                            let before = *slot;
                            *slot = Some(event.day);
                            Some(Change::LastDay(before))
                        }
                        _ => None,
                    }
                }
                (Tracker::Days(days), _) => match days.binary_search(&event.day) {
                    Ok(_) => None,
                    Err(at) => {
                        days.insert(at, event.day);
                        Some(Change::Grew { new_day: true })
                    }
                },
                (Tracker::FirstLast(seen), _) => {
                    let now = (event.ts, event.day);
                    match seen {
                        None => {
                            *seen = Some(Seen { first: now, last: now });
                            Some(Change::Seen { first: (true, true), last: (true, true) })
                        }
                        Some(s) => {
                            let first = (now.0 < s.first.0, now.1 < s.first.1);
                            let last = (now.0 > s.last.0, now.1 > s.last.1);
                            if first.0 {
                                s.first = now;
                            }
                            if last.0 {
                                s.last = now;
                            }
                            (first.0 || last.0).then_some(Change::Seen { first, last })
                        }
                    }
                }
                _ => None,
            };
            if let Some(change) = change {
                changes.list.push((i, change));
            }
        }
    }

    /// Whether the event `changes` describes (recorded in a subject's state) can have
    /// moved the value of aggregate `id` on the event's own day, with the journey anchor
    /// on `anchor`: as a rule reads it `exactly`, or only through a day count (for a
    /// first or last time, only its day then matters; see [`cairn_rules::Rule::reads_exactly`]).
    /// A count moves with every event it counts; users, events and active days only when
    /// one is new to the window; a first or last time when it moves; an aggregate of the
    /// other scope never (the event was recorded in this subject's state only).
    pub fn moved(&self, id: AggId, changes: &Changes, anchor: Option<Day>, exactly: bool) -> bool {
        let Some((scope, query)) = self.queries.get(id.0 as usize) else { return true };
        if *scope != changes.scope {
            return false;
        }
        let tracker = query.tracker();
        let Some(change) = changes.list.iter().find(|(i, _)| *i == tracker).map(|(_, c)| *c) else {
            return false;
        };
        let start = match query.window() {
            Some(WindowRef::Days(n)) => Some(changes.day.saturating_sub(n as Day).saturating_add(1)),
            Some(WindowRef::SinceAnchor) => anchor,
            Some(WindowRef::AllTime) => Some(Day::MIN),
            None => None,
        };
        match (change, query) {
            // The day it left is in the window: the count of days or names in it is the same.
            (Change::LastDay(Some(before)), _) => start.is_none_or(|from| before < from),
            (Change::Seen { first, .. }, Query::First(_)) => first.1 || (exactly && first.0),
            (Change::Seen { last, .. }, Query::Last(_)) => last.1 || (exactly && last.0),
            (Change::Seen { .. }, _) => false,
            (Change::Grew { .. } | Change::LastDay(None), _) => true,
        }
    }

    /// The value of aggregate `id` for a subject, on day `today`, with the journey anchor
    /// on `anchor` (if any).
    pub fn value(&self, id: AggId, state: &AggregateState, today: Day, anchor: Option<Day>) -> Value {
        let Some((_, query)) = self.queries.get(id.0 as usize) else { return Value::Null };
        let Some(tracker) = state.trackers.get(query.tracker()) else { return Value::Null };
        let start = |w: WindowRef| -> Option<Day> {
            match w {
                WindowRef::Days(n) => Some(today.saturating_sub(n as Day).saturating_add(1)),
                WindowRef::SinceAnchor => anchor,
                WindowRef::AllTime => Some(Day::MIN),
            }
        };
        match (*query, tracker) {
            (Query::Count(_, w), Tracker::Count(series)) => match start(w) {
                Some(from) => Value::Number(f64::from(count_between(series, from, today))),
                None => Value::Null,
            },
            (Query::Sum(_, w), Tracker::Sum(series)) => match start(w) {
                Some(from) => Value::Number(window_sum(series, from, today)),
                None => Value::Null,
            },
            (Query::Users(_, w), Tracker::Users(users)) => match start(w) {
                Some(from) => Value::Number(f64::from(window_sum(&users.per_last_day, from, today))),
                None => Value::Null,
            },
            (Query::Names(_, w), Tracker::Names(last)) => match start(w) {
                Some(from) => {
                    Value::Number(last.iter().flatten().filter(|d| **d >= from && **d <= today).count() as f64)
                }
                None => Value::Null,
            },
            (Query::Days(_, w), Tracker::Days(days)) => match start(w) {
                Some(from) => {
                    let lo = days.partition_point(|d| *d < from);
                    let hi = days.partition_point(|d| *d <= today);
                    Value::Number(hi.saturating_sub(lo) as f64)
                }
                None => Value::Null,
            },
            (Query::First(_), Tracker::FirstLast(seen)) => seen.map_or(Value::Null, |s| Value::Timestamp(s.first.0)),
            (Query::Last(_), Tracker::FirstLast(seen)) => seen.map_or(Value::Null, |s| Value::Timestamp(s.last.0)),
            _ => Value::Null,
        }
    }

    /// Whether aggregate `id` reads a sliding window (`30d`): the only kind whose value
    /// moves with the day when no event arrives.
    pub fn slides(&self, id: AggId) -> bool {
        matches!(self.queries.get(id.0 as usize), Some((_, q)) if matches!(q.window(), Some(WindowRef::Days(_))))
    }

    /// Whether the value of aggregate `id` for a subject can differ on day `today` from
    /// its value on the day before, given that `state` holds no event dated after the day
    /// before: only a sliding window can, and only when a day with data leaves it (the
    /// day entering it is empty).
    pub fn changes_overnight(&self, id: AggId, state: &AggregateState, today: Day) -> bool {
        let Some((_, query)) = self.queries.get(id.0 as usize) else { return false };
        let Some(WindowRef::Days(n)) = query.window() else { return false };
        let Some(tracker) = state.trackers.get(query.tracker()) else { return false };
        // The window ending yesterday starts on `leaving`; the one ending today the day
        // after.
        let leaving = today.saturating_sub(n as Day);
        match tracker {
            Tracker::Count(series) => series.binary_search_by_key(&leaving, |(d, _)| *d).is_ok(),
            Tracker::Sum(series) => series.binary_search_by_key(&leaving, |(d, _)| *d).is_ok(),
            Tracker::Users(users) => users.per_last_day.binary_search_by_key(&leaving, |(d, _)| *d).is_ok(),
            Tracker::Names(last) => last.contains(&Some(leaving)),
            Tracker::Days(days) => days.binary_search(&leaving).is_ok(),
            Tracker::FirstLast(_) => false,
        }
    }

    /// The first day after `today` on which [`AggregatePlan::changes_overnight`] is true
    /// for `state` as it is (no event arriving): the day the oldest day with data still in
    /// the window leaves it. `None` for an aggregate that does not slide, or no data left
    /// to leave.
    pub fn next_change_overnight(&self, id: AggId, state: &AggregateState, today: Day) -> Option<Day> {
        let (_, query) = self.queries.get(id.0 as usize)?;
        let Some(WindowRef::Days(n)) = query.window() else { return None };
        let n = Day::try_from(n).unwrap_or(Day::MAX);
        // A day `d` leaves on `d + n`: the first such day after today is that of the first
        // day with data after `today - n`.
        let after = today.saturating_sub(n);
        fn first_after<T>(series: &[(Day, T)], after: Day) -> Option<Day> {
            series.get(series.partition_point(|(d, _)| *d <= after)).map(|(d, _)| *d)
        }
        let oldest = match state.trackers.get(query.tracker())? {
            Tracker::Count(series) => first_after(series, after),
            Tracker::Sum(series) => first_after(series, after),
            Tracker::Users(users) => first_after(&users.per_last_day, after),
            Tracker::Names(last) => last.iter().flatten().copied().filter(|d| *d > after).min(),
            Tracker::Days(days) => days.get(days.partition_point(|d| *d <= after)).copied(),
            Tracker::FirstLast(_) => None,
        }?;
        Some(oldest.saturating_add(n))
    }

    fn scope(&self, scope: Subject) -> &ScopePlan {
        match scope {
            Subject::Account => &self.account,
            Subject::Contact => &self.contact,
        }
    }
}

impl Query {
    fn window(&self) -> Option<WindowRef> {
        match *self {
            Query::Count(_, w) | Query::Sum(_, w) | Query::Users(_, w) | Query::Names(_, w) | Query::Days(_, w) => {
                Some(w)
            }
            Query::First(_) | Query::Last(_) => None,
        }
    }

    fn tracker(&self) -> usize {
        match *self {
            Query::Count(t, _)
            | Query::Sum(t, _)
            | Query::Users(t, _)
            | Query::Names(t, _)
            | Query::Days(t, _)
            | Query::First(t)
            | Query::Last(t) => t,
        }
    }
}

/// What the aggregates need to know of one event.
#[derive(Debug, Clone)]
pub struct EventFacts<'a> {
    /// The event's name (`report_created`; `page` and `screen` for those calls).
    pub name: &'a str,
    /// When it happened.
    pub ts: Timestamp,
    /// Its calendar day in the workspace time zone.
    pub day: Day,
    /// The contact who did it, if known.
    pub contact: Option<u64>,
    /// Numeric properties (only those the plan reads).
    pub numbers: &'a [(String, f64)],
}

impl EventFacts<'_> {
    fn number(&self, property: &str) -> Option<f64> {
        self.numbers.iter().find(|(k, _)| k == property).map(|(_, v)| *v).filter(|v| v.is_finite())
    }
}

/// What recording one event changed in a subject's trackers (filled by
/// [`AggregatePlan::record`], read by [`AggregatePlan::moved`]); kept by the caller
/// across events to spare an allocation each.
#[derive(Debug, Clone)]
pub struct Changes {
    /// The scope of the subject it was recorded for.
    scope: Subject,
    /// The event's day.
    day: Day,
    /// The trackers it changed, and how.
    list: Vec<(usize, Change)>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes { scope: Subject::Account, day: 0, list: Vec::new() }
    }
}

impl Changes {
    fn clear(&mut self, scope: Subject, day: Day) {
        self.scope = scope;
        self.day = day;
        self.list.clear();
    }

    /// The event's day.
    pub fn day(&self) -> Day {
        self.day
    }

    /// Whether the event changed which days hold data in some tracker, or a first or
    /// last time's day: what the next day a window or a day count moves depends on.
    pub fn days_moved(&self) -> bool {
        self.list.iter().any(|(_, c)| match c {
            Change::Grew { new_day } => *new_day,
            Change::LastDay(_) => true,
            Change::Seen { first, last } => first.1 || last.1,
        })
    }
}

/// How one event changed one tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Change {
    /// More events, a larger sum, or a new active day; whether its day is new to the
    /// tracker's days with data.
    Grew { new_day: bool },
    /// A contact's (or a name's) last day moved to the event's day from the day given
    /// (none: the first).
    LastDay(Option<Day>),
    /// The first and last times: whether each moved (at all, to another day).
    Seen { first: (bool, bool), last: (bool, bool) },
}

/// The first and last time a matching event happened, with their days.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seen {
    first: (Timestamp, Day),
    last: (Timestamp, Day),
}

/// One subject's aggregate state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggregateState {
    trackers: Vec<Tracker>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tracker {
    /// Per day with events, the number of events up to and including it (a running
    /// count: a window's count is a difference of two, whatever its length), modulo 2³²:
    /// the difference is exact for any window of fewer than 2³² events.
    Count(Vec<(Day, u32)>),
    Sum(Vec<(Day, f64)>),
    Users(UserDays),
    Names(Vec<Option<Day>>),
    Days(Vec<Day>),
    FirstLast(Option<Seen>),
}

/// Each contact's last active day, and how many contacts have each day as their last
/// (so "users active in a window" is a sum over the window's days, not a scan of every
/// contact).
#[derive(Debug, Clone, Default, PartialEq)]
struct UserDays {
    /// Per contact, its last active day (looked up by id at every event of the account).
    last: FastMap<u64, Day>,
    /// (day, contacts whose last day it is), by day; no zero counts.
    per_last_day: Vec<(Day, u32)>,
}

impl UserDays {
    /// Records contact `contact` active on `day`; when that moves its last day, the
    /// last day it had before (none: it is new).
    fn record(&mut self, contact: u64, day: Day) -> Option<Option<Day>> {
        let before = self.last.get(&contact).copied();
        match before {
            Some(d) if d >= day => return None,
            Some(d) => {
                if let Ok(i) = self.per_last_day.binary_search_by_key(&d, |(d, _)| *d) {
                    self.per_last_day[i].1 -= 1;
                    if self.per_last_day[i].1 == 0 {
                        self.per_last_day.remove(i);
                    }
                }
            }
            None => {}
        }
        self.last.insert(contact, day);
        add_to_series(&mut self.per_last_day, day, 1u32);
        Some(before)
    }
}

fn add_to_series<T: Copy + std::ops::AddAssign>(series: &mut Vec<(Day, T)>, day: Day, x: T) {
    match series.last_mut() {
        Some((d, v)) if *d == day => *v += x,
        Some((d, _)) if *d > day => match series.binary_search_by_key(&day, |(d, _)| *d) {
            Ok(i) => series[i].1 += x,
            Err(i) => series.insert(i, (day, x)),
        },
        _ => series.push((day, x)),
    }
}

/// Counts one event on `day` in a running count.
fn add_to_running_count(series: &mut Vec<(Day, u32)>, day: Day) {
    match series.last_mut() {
        Some((d, total)) if *d == day => *total = total.wrapping_add(1),
        Some((d, _)) if *d > day => {
            // An event dated before the last day with events: every later total grows.
            let i = series.partition_point(|(d, _)| *d < day);
            if series.get(i).is_none_or(|(d, _)| *d != day) {
                let before = if i == 0 { 0 } else { series[i - 1].1 };
                series.insert(i, (day, before));
            }
            for (_, total) in &mut series[i..] {
                *total = total.wrapping_add(1);
            }
        }
        _ => {
            let total = series.last().map_or(0, |(_, t)| *t);
            series.push((day, total.wrapping_add(1)));
        }
    }
}

/// The number of events from day `from` to day `to` (both included) in a running count.
fn count_between(series: &[(Day, u32)], from: Day, to: Day) -> u32 {
    let through = |n: usize| if n == 0 { 0 } else { series[n - 1].1 };
    let lo = series.partition_point(|(d, _)| *d < from);
    let hi = series.partition_point(|(d, _)| *d <= to);
    if hi <= lo { 0 } else { through(hi).wrapping_sub(through(lo)) }
}

fn window_sum<T: Copy + std::iter::Sum<T>>(series: &[(Day, T)], from: Day, to: Day) -> T {
    let lo = series.partition_point(|(d, _)| *d < from);
    let hi = series.partition_point(|(d, _)| *d <= to);
    series.get(lo..hi.max(lo)).unwrap_or(&[]).iter().map(|(_, v)| *v).sum()
}

#[cfg(test)]
mod tests {
    use cairn_rules::AggregateSpec;

    use super::*;

    fn named(names: &[&str]) -> EventFilter {
        EventFilter::Named(names.iter().map(|s| s.to_string()).collect())
    }

    fn spec(aggregate: Aggregate) -> AggregateSpec {
        AggregateSpec { scope: Subject::Account, aggregate }
    }

    fn ts(day: Day) -> Timestamp {
        Timestamp::from_second(i64::from(day) * 86_400 + 3600).unwrap()
    }

    fn event<'a>(name: &'a str, day: Day, contact: u64, numbers: &'a [(String, f64)]) -> EventFacts<'a> {
        EventFacts { name, ts: ts(day), day, contact: Some(contact), numbers }
    }

    #[test]
    fn a_running_count_gives_each_window_what_counting_its_events_gives() {
        // Days in an order with late events (before the last day seen) and repeats.
        let days: [Day; 14] = [5, 5, 9, 7, 12, 3, 9, 9, 15, 1, 12, 20, 4, 20];
        let mut series = Vec::new();
        for (n, day) in days.iter().enumerate() {
            add_to_running_count(&mut series, *day);
            let seen = &days[..=n];
            for from in 0..22 {
                for to in from - 1..22 {
                    let expected = seen.iter().filter(|d| (from..=to).contains(*d)).count() as u32;
                    assert_eq!(count_between(&series, from, to), expected, "after {seen:?}, days {from} to {to}");
                }
            }
        }
        assert!(series.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "{series:?}");
        // Totals past 2³² wrap; a window's count stays exact.
        let mut series = vec![(1, u32::MAX - 2), (2, u32::MAX)];
        add_to_running_count(&mut series, 3);
        add_to_running_count(&mut series, 3);
        assert_eq!(count_between(&series, 2, 3), 4);
        assert_eq!(count_between(&series, 3, 3), 2);
        assert_eq!(count_between(&series, 4, 9), 0);
    }

    #[test]
    fn windows_count_the_days_ending_today_inclusive() {
        let mut table = AggregateTable::new();
        let c7 = table.intern(spec(Aggregate::Count { events: named(&["x"]), window: Window::Days(7) }));
        let c30 = table.intern(spec(Aggregate::Count { events: named(&["x"]), window: Window::Days(30) }));
        let anchor = table.intern(spec(Aggregate::Count { events: named(&["x"]), window: Window::SinceAnchor }));
        let all = table.intern(spec(Aggregate::Count { events: named(&["x"]), window: Window::AllTime }));
        let plan = AggregatePlan::new(&table);
        // Four aggregates over one series.
        assert_eq!(plan.account.trackers.len(), 1);
        let mut st = plan.empty_state(Subject::Account);
        // Days 100..=139, one event each, plus an unrelated event; one arrives late.
        for d in (100..140).filter(|d| *d != 120) {
            plan.record(Subject::Account, &mut st, &event("x", d, 1, &[]), &mut Changes::default());
            plan.record(Subject::Account, &mut st, &event("y", d, 1, &[]), &mut Changes::default());
        }
        plan.record(Subject::Account, &mut st, &event("x", 120, 1, &[]), &mut Changes::default());
        let today = 139;
        assert_eq!(plan.value(c7, &st, today, None), Value::Number(7.0)); // 133..=139
        assert_eq!(plan.value(c30, &st, today, None), Value::Number(30.0)); // 110..=139
        assert_eq!(plan.value(anchor, &st, today, Some(125)), Value::Number(15.0)); // 125..=139
        assert_eq!(plan.value(anchor, &st, today, None), Value::Null);
        assert_eq!(plan.value(all, &st, today, None), Value::Number(40.0));
        // A week later nothing new happened: the 7-day window is empty.
        assert_eq!(plan.value(c7, &st, today + 7, None), Value::Number(0.0));
        assert_eq!(plan.value(c30, &st, today + 7, None), Value::Number(23.0));
    }

    #[test]
    fn distinct_users_active_days_names_sums_and_first_last() {
        let mut table = AggregateTable::new();
        let users =
            table.intern(spec(Aggregate::DistinctUsers { events: named(&["invite"]), window: Window::Days(14) }));
        let active = table.intern(spec(Aggregate::ActiveUsers { window: Window::Days(7) }));
        let days = table.intern(spec(Aggregate::ActiveDays { window: Window::Days(30) }));
        let names =
            table.intern(spec(Aggregate::DistinctEvents { events: named(&["a", "b", "c"]), window: Window::Days(30) }));
        let sum = table.intern(spec(Aggregate::Sum {
            events: named(&["order"]),
            property: "amount".into(),
            window: Window::AllTime,
        }));
        let first = table.intern(spec(Aggregate::FirstSeen { events: named(&["a"]) }));
        let last = table.intern(spec(Aggregate::LastSeen { events: named(&["a"]) }));
        let plan = AggregatePlan::new(&table);
        assert_eq!(plan.properties(), ["amount".to_string()]);
        let mut st = plan.empty_state(Subject::Account);
        let amount = |x: f64| vec![("amount".to_string(), x)];
        for (name, day, who) in [
            ("invite", 1, 1),
            ("invite", 2, 2),
            ("invite", 2, 2),
            ("invite", 20, 3),
            ("a", 5, 1),
            ("b", 6, 1),
            ("a", 9, 4),
        ] {
            plan.record(Subject::Account, &mut st, &event(name, day, who, &[]), &mut Changes::default());
        }
        let a = amount(12.5);
        plan.record(Subject::Account, &mut st, &event("order", 3, 1, &a), &mut Changes::default());
        let b = amount(-2.5);
        plan.record(Subject::Account, &mut st, &event("order", 4, 1, &b), &mut Changes::default());
        let nan = amount(f64::NAN);
        plan.record(Subject::Account, &mut st, &event("order", 4, 1, &nan), &mut Changes::default());
        assert_eq!(plan.value(users, &st, 14, None), Value::Number(2.0)); // 1..=14: users 1, 2
        assert_eq!(plan.value(users, &st, 20, None), Value::Number(1.0)); // 7..=20: user 3
        assert_eq!(plan.value(active, &st, 9, None), Value::Number(2.0)); // 3..=9: users 1 (a, b, order) and 4; 2 last on day 2
        assert_eq!(plan.value(days, &st, 30, None), Value::Number(8.0)); // 1,2,3,4,5,6,9,20
        assert_eq!(plan.value(names, &st, 30, None), Value::Number(2.0)); // a, b; never c
        assert_eq!(plan.value(sum, &st, 30, None), Value::Number(10.0));
        assert_eq!(plan.value(first, &st, 30, None), Value::Timestamp(ts(5)));
        assert_eq!(plan.value(last, &st, 30, None), Value::Timestamp(ts(9)));
        let empty = plan.empty_state(Subject::Account);
        assert_eq!(plan.value(first, &empty, 30, None), Value::Null);
        assert_eq!(plan.value(users, &empty, 30, None), Value::Number(0.0));
    }

    #[test]
    fn an_event_affects_only_the_aggregates_that_read_its_name() {
        let mut table = AggregateTable::new();
        let x = table.intern(spec(Aggregate::Count { events: named(&["x"]), window: Window::Days(7) }));
        let _y = table.intern(spec(Aggregate::Count { events: named(&["y"]), window: Window::Days(7) }));
        let any = table.intern(spec(Aggregate::ActiveDays { window: Window::Days(7) }));
        let plan = AggregatePlan::new(&table);
        assert_eq!(plan.affected(Subject::Account, "x"), vec![x, any]);
        assert!(plan.affected(Subject::Contact, "x").is_empty());
        assert!(plan.is_tracked(Subject::Account, "z"));
    }

    /// Per tracker, the days it holds data for (first and last days for first and last
    /// times).
    fn days_with_data(st: &AggregateState) -> Vec<Vec<Day>> {
        st.trackers
            .iter()
            .map(|t| match t {
                Tracker::Count(series) => series.iter().map(|(d, _)| *d).collect(),
                Tracker::Sum(series) => series.iter().map(|(d, _)| *d).collect(),
                Tracker::Users(users) => users.per_last_day.iter().map(|(d, _)| *d).collect(),
                Tracker::Names(last) => last.iter().map(|d| d.unwrap_or(Day::MIN)).collect(),
                Tracker::Days(days) => days.clone(),
                Tracker::FirstLast(seen) => seen.iter().flat_map(|s| [s.first.1, s.last.1]).collect(),
            })
            .collect()
    }

    #[test]
    fn an_event_moves_every_aggregate_whose_value_it_changes_and_few_others() {
        let mut table = AggregateTable::new();
        let mut ids = Vec::new();
        for window in [Window::Days(1), Window::Days(7), Window::SinceAnchor, Window::AllTime] {
            ids.push(table.intern(spec(Aggregate::Count { events: named(&["a"]), window: window.clone() })));
            ids.push(
                table.intern(spec(Aggregate::DistinctUsers { events: named(&["a", "b"]), window: window.clone() })),
            );
            ids.push(table.intern(spec(Aggregate::ActiveUsers { window: window.clone() })));
            ids.push(table.intern(spec(Aggregate::ActiveDays { window: window.clone() })));
            ids.push(
                table.intern(spec(Aggregate::DistinctEvents {
                    events: named(&["a", "b", "c"]),
                    window: window.clone(),
                })),
            );
            ids.push(table.intern(spec(Aggregate::Sum { events: named(&["b"]), property: "n".into(), window })));
        }
        let first = table.intern(spec(Aggregate::FirstSeen { events: named(&["b", "c"]) }));
        let last = table.intern(spec(Aggregate::LastSeen { events: named(&["a", "c"]) }));
        // A name only a count reads: its first event of a day is a new day for it alone.
        let d = table.intern(spec(Aggregate::Count { events: named(&["d"]), window: Window::Days(30) }));
        ids.extend([first, last, d]);
        let plan = AggregatePlan::new(&table);
        let mut st = plan.empty_state(Subject::Account);
        let mut changes = Changes::default();
        let anchor = Some(103);
        let day_of = |v: &Value| match v {
            Value::Timestamp(t) => Some((t.as_second() - 3600).div_euclid(86_400)),
            _ => None,
        };
        // A deterministic walk: days move on now and then, several events a day, five
        // contacts, four names, sums that are sometimes zero.
        let (mut seed, mut day, mut second) = (7u64, 100, 0);
        let (mut moved, mut kept) = (0, 0);
        for _ in 0..3000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let r = seed >> 33;
            if r % 5 == 0 {
                day += 1 + (r / 5 % 3) as Day;
                second = 0;
            }
            second += 1 + (r / 16 % 600) as i64;
            let name = ["a", "b", "c", "d"][(r / 7 % 4) as usize];
            let numbers = vec![("n".to_string(), (r / 11 % 3) as f64)];
            let facts = EventFacts {
                name,
                ts: Timestamp::from_second(i64::from(day) * 86_400 + 3600 + second).unwrap(),
                day,
                contact: Some(r / 13 % 5),
                numbers: &numbers,
            };
            let before: Vec<Value> = ids.iter().map(|id| plan.value(*id, &st, day, anchor)).collect();
            let days_before = days_with_data(&st);
            plan.record(Subject::Account, &mut st, &facts, &mut changes);
            // What the next day a window or a day count moves depends on.
            assert!(days_with_data(&st) == days_before || changes.days_moved(), "days moved unseen on day {day}");
            for (id, before) in ids.iter().zip(before) {
                let after = plan.value(*id, &st, day, anchor);
                let exactly = plan.moved(*id, &changes, anchor, true);
                assert!(before == after || exactly, "{id:?} went {before:?} -> {after:?} on day {day} unseen");
                if *id == first || *id == last {
                    let by_day = plan.moved(*id, &changes, anchor, false);
                    assert!(day_of(&before) == day_of(&after) || by_day, "{id:?}: the day moved unseen");
                    assert!(exactly || !by_day);
                }
                if exactly { moved += 1 } else { kept += 1 }
            }
        }
        // Most events leave most of these aggregates as they were.
        assert!(kept > moved, "moved {moved}, kept {kept}");
    }

    #[test]
    fn an_event_recorded_for_one_scope_moves_no_aggregate_of_the_other() {
        let mut table = AggregateTable::new();
        let account = table.intern(spec(Aggregate::Count { events: named(&["x"]), window: Window::Days(7) }));
        let contact = table.intern(AggregateSpec {
            scope: Subject::Contact,
            aggregate: Aggregate::Count { events: named(&["x"]), window: Window::Days(7) },
        });
        let plan = AggregatePlan::new(&table);
        let mut changes = Changes::default();
        let mut st = plan.empty_state(Subject::Contact);
        plan.record(Subject::Contact, &mut st, &event("x", 3, 1, &[]), &mut changes);
        assert!(plan.moved(contact, &changes, None, true));
        assert!(!plan.moved(account, &changes, None, true));
        let mut st = plan.empty_state(Subject::Account);
        plan.record(Subject::Account, &mut st, &event("x", 3, 1, &[]), &mut changes);
        assert!(plan.moved(account, &changes, None, true));
        assert!(!plan.moved(contact, &changes, None, true));
    }
}
