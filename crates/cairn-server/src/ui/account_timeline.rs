//! The account 360's merged timeline: product events (grouped: "Ada: report_created ×12
//! today"), messages programs sent with their opens, clicks and bounces, tasks created
//! and completed, transitions (segments, stage, milestones, health band), notes and
//! health overrides — newest first, a page at a time, filtered by kind.
//!
//! Each kind is read from the store newest first, strictly before the page's cursor and
//! with a `LIMIT` ([`fetch`]); [`merge`] (pure) then cuts the page at an instant `end`
//! such that everything of every kind at or after `end` was read: the page shows those
//! rows, and the "older" link continues strictly before `end`. An event group never
//! spans two pages twice over: its events before `end` form their group on the next page.

use std::collections::{BTreeMap, HashMap};

use cairn_runtime::views::{AccountView, ContactView};
use cairn_store::{AccountEvent, AccountMessage, AccountNote, HealthOverrideRecord, StoredTransition, Task};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

/// Rows of each kind but events read for one page, and the most rows a page shows
/// (ties at the cut and split event groups aside).
pub(crate) const PAGE_ROWS: u32 = 50;
/// Raw events read for one page (they are grouped, so a page of rows holds many).
pub(crate) const PAGE_EVENTS: u32 = 500;
/// Characters of an event's properties a row shows.
const PROPERTIES_SHOWN: usize = 160;

/// A kind of timeline row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Event,
    Message,
    Task,
    Transition,
    Note,
    Override,
}

impl Kind {
    /// Every kind, in the order the filter lists them.
    pub(crate) const ALL: [Kind; 6] =
        [Kind::Event, Kind::Message, Kind::Task, Kind::Transition, Kind::Note, Kind::Override];

    /// Its name in URLs and JSON.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::Message => "message",
            Kind::Task => "task",
            Kind::Transition => "transition",
            Kind::Note => "note",
            Kind::Override => "override",
        }
    }

    /// The kind named `name`, if any.
    pub(crate) fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Which kinds, and from where on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    /// Rows strictly before this instant (the newest when `None`).
    pub before: Option<Timestamp>,
    /// The kinds shown (every kind when empty).
    pub kinds: Vec<Kind>,
}

impl Query {
    /// Reads `before` (RFC 3339 or ms since epoch) and `kind` (comma-separated names);
    /// an unknown kind or an unreadable instant is a message for the user.
    pub(crate) fn parse(before: Option<&str>, kind: Option<&str>) -> Result<Query, String> {
        let before = match before.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(match s.parse::<i64>() {
                Ok(ms) => Timestamp::from_millisecond(ms).map_err(|_| format!("`before` {ms} is out of range"))?,
                Err(_) => s
                    .parse::<Timestamp>()
                    .map_err(|_| format!("`before` must be an instant (RFC 3339) or ms since the epoch, not `{s}`"))?,
            }),
        };
        let mut kinds = Vec::new();
        for name in kind.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let k = Kind::parse(name).ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                format!("no timeline kind `{name}`: the kinds are {}", names.join(", "))
            })?;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds.sort();
        Ok(Query { before, kinds })
    }

    /// Whether `k` is shown.
    pub(crate) fn wants(&self, k: Kind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&k)
    }
}

/// The `kind` parameter of links for `kinds` (empty for every kind).
pub(crate) fn kind_param(kinds: &[Kind]) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
}

/// What a row links to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Link {
    pub href: String,
    pub label: String,
}

/// One row of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Entry {
    /// The newest instant the row covers.
    pub at: Timestamp,
    /// `at` as people read it.
    pub when: String,
    pub kind: Kind,
    /// What happened, in words (plain text: templates escape it).
    pub text: String,
    /// Who did it (an author, an assignee), if anyone.
    pub by: Option<String>,
    /// Events grouped into the row (1 for every other kind).
    pub count: u32,
    /// More about it (an event's properties, a message's engagement).
    pub detail: Option<String>,
    /// What it talks about: a contact, a program, a task.
    pub links: Vec<Link>,
}

/// One page of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Page {
    pub entries: Vec<Entry>,
    /// The cursor of the next (older) page, when there may be one: `before` for it.
    pub older: Option<Timestamp>,
}

/// What was read for one page: each kind newest first (an unread kind is empty).
#[derive(Debug, Clone, Default)]
pub(crate) struct Read {
    pub events: Vec<AccountEvent>,
    pub messages: Vec<AccountMessage>,
    /// Tasks by creation.
    pub tasks_created: Vec<Task>,
    /// Tasks by completion.
    pub tasks_completed: Vec<Task>,
    pub transitions: Vec<StoredTransition>,
    pub notes: Vec<AccountNote>,
    pub overrides: Vec<HealthOverrideRecord>,
}

/// Reads what a page of `q` needs for account `n`.
pub(crate) async fn fetch(state: &AppState, n: i64, q: &Query) -> Result<Read, ApiError> {
    let before = q.before.unwrap_or(Timestamp::MAX);
    let store = &state.store;
    let mut read = Read::default();
    if q.wants(Kind::Event) {
        read.events = store.account_events_before(n, before, PAGE_EVENTS).await?;
    }
    if q.wants(Kind::Message) {
        read.messages = store.account_messages_before(n, before, PAGE_ROWS).await?;
    }
    if q.wants(Kind::Task) {
        read.tasks_created = store.account_tasks_before(n, before, PAGE_ROWS).await?;
        read.tasks_completed = store.account_tasks_completed_before(n, before, PAGE_ROWS).await?;
    }
    if q.wants(Kind::Transition) {
        read.transitions = store.account_transitions_before(n, before, PAGE_ROWS).await?;
    }
    if q.wants(Kind::Note) {
        read.notes = store.account_notes_before(n, before, PAGE_ROWS).await?;
    }
    if q.wants(Kind::Override) {
        read.overrides = store.health_overrides_before(n, before, PAGE_ROWS).await?;
    }
    Ok(read)
}

/// An instant as people read it, to the minute (UTC).
pub(crate) fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// Who a contact is, for rows that name one.
pub(crate) type Names = HashMap<i64, String>;

/// A contact's name as the page shows it: its name, else its email, else its id.
pub(crate) fn contact_name(c: &ContactView) -> String {
    let text = |k: &str| c.traits.get(k).and_then(|v| v.as_str()).map(str::to_string);
    text("name").or_else(|| text("email")).unwrap_or_else(|| format!("contact {}", c.id))
}

/// The names of an account's contacts.
pub(crate) fn names(view: &AccountView) -> Names {
    view.contacts.iter().map(|c| (c.id as i64, contact_name(c))).collect()
}

/// One page of account `n`'s timeline for `q`, naming contacts from `view`.
pub(crate) async fn page(state: &AppState, view: &AccountView, q: &Query, today: Date) -> Result<Page, ApiError> {
    let read = fetch(state, view.id as i64, q).await?;
    Ok(merge(view.id, &read, today, &names(view)))
}

fn contact_link(account: u64, contact: i64, names: &Names) -> Link {
    Link {
        href: format!("/accounts/{account}?contact={contact}#contact-{contact}"),
        label: names.get(&contact).cloned().unwrap_or_else(|| format!("contact {contact}")),
    }
}

/// What a transition says, in words.
pub(crate) fn describe(kind: &str, detail: &serde_json::Value) -> String {
    let field = |k: &str| detail.get(k).and_then(|v| v.as_str().map(str::to_string).or_else(|| Some(v.to_string())));
    match kind {
        "segment_entered" | "segment_exited" => {
            format!("{} {}", kind.replace('_', " "), field("segment").unwrap_or_default())
        }
        "milestone_achieved" | "milestone_missed" => {
            format!("{} {}", kind.replace('_', " "), field("milestone").unwrap_or_default())
        }
        "stage_changed" => format!("moved to stage {}", field("to").or_else(|| field("stage")).unwrap_or_default()),
        "health_band_changed" => format!(
            "health band {} → {}",
            field("from").unwrap_or_else(|| "–".into()),
            field("to").or_else(|| field("band")).unwrap_or_default()
        ),
        other => {
            format!("{} {}", other.replace('_', " "), if detail.is_null() { String::new() } else { detail.to_string() })
        }
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

/// The events at or after `end` (all when `None`) grouped by who, what and UTC day,
/// each group a row at its newest event.
fn event_rows(account: u64, events: &[AccountEvent], end: Option<Timestamp>, today: Date, names: &Names) -> Vec<Entry> {
    // (who, name, day) → (newest event, count); the newest comes first in `events`.
    let mut groups: BTreeMap<(String, String, Date), (&AccountEvent, u32)> = BTreeMap::new();
    for e in events.iter().filter(|e| end.is_none_or(|end| e.at >= end)) {
        let who = match e.contact_id {
            Some(c) => format!("c{c}"),
            None => format!("u{}", e.user_id.as_deref().unwrap_or("")),
        };
        let name = e.name.clone().unwrap_or_else(|| e.kind.clone());
        let day = e.at.to_zoned(jiff::tz::TimeZone::UTC).date();
        groups.entry((who, name, day)).and_modify(|g| g.1 += 1).or_insert((e, 1));
    }
    groups
        .into_iter()
        .map(|((_, name, day), (e, count))| {
            let who = match e.contact_id {
                Some(c) => names.get(&c).cloned().unwrap_or_else(|| format!("contact {c}")),
                None => e.user_id.clone().unwrap_or_else(|| "someone unknown".into()),
            };
            let times = if count > 1 { format!(" ×{count}") } else { String::new() };
            let on = if day == today { "today".to_string() } else { format!("on {day}") };
            Entry {
                at: e.at,
                when: when(e.at),
                kind: Kind::Event,
                text: format!("{who}: {name}{times} {on}"),
                by: None,
                count,
                detail: e
                    .properties
                    .as_deref()
                    .filter(|p| !p.is_empty() && *p != "{}" && *p != "null")
                    .map(|p| shorten(p, PROPERTIES_SHOWN)),
                links: e.contact_id.map(|c| contact_link(account, c, names)).into_iter().collect(),
            }
        })
        .collect()
}

fn message_row(account: u64, m: &AccountMessage, names: &Names) -> Entry {
    let what = m.subject.as_deref().map(|s| format!(" “{s}”")).unwrap_or_default();
    let engaged: Vec<String> =
        m.engagements.iter().map(|(kind, at)| format!("{kind} {}", at.strftime("%Y-%m-%d %H:%M"))).collect();
    let mut links = vec![Link { href: format!("/programs/{}", m.program_id), label: m.program_id.clone() }];
    links.extend(m.contact_id.map(|c| contact_link(account, c, names)));
    Entry {
        at: m.at,
        when: when(m.at),
        kind: Kind::Message,
        text: format!("{} sent{what} (step {})", m.channel, m.step_id),
        by: None,
        count: 1,
        detail: if engaged.is_empty() { Some("no opens or clicks yet".into()) } else { Some(engaged.join(", ")) },
        links,
    }
}

fn task_row(account: u64, t: &Task, completed: bool, names: &Names) -> Entry {
    let mut links = vec![Link { href: format!("/tasks#task-{}", t.id), label: format!("task {}", t.id) }];
    links.extend(t.contact_id.map(|c| contact_link(account, c, names)));
    let (at, text, by) = match t.completed_at.filter(|_| completed) {
        Some(done) => {
            let outcome = t.outcome.as_deref().map(|o| format!(" ({o})")).unwrap_or_default();
            (done, format!("task done: {}{outcome}", t.title), t.completed_by.clone())
        }
        None => (t.created_at, format!("task created: {}", t.title), t.assignee.clone().or_else(|| t.pool.clone())),
    };
    Entry { at, when: when(at), kind: Kind::Task, text, by, count: 1, detail: None, links }
}

/// One page from what was read: rows of every kind newest first, cut at the instant up
/// to which every kind was read in full.
pub(crate) fn merge(account: u64, read: &Read, today: Date, names: &Names) -> Page {
    let mut rows: Vec<Entry> = Vec::new();
    for m in &read.messages {
        rows.push(message_row(account, m, names));
    }
    rows.extend(read.tasks_created.iter().map(|t| task_row(account, t, false, names)));
    rows.extend(read.tasks_completed.iter().map(|t| task_row(account, t, true, names)));
    for t in &read.transitions {
        let links = match t.subject_kind.as_str() {
            "contact" => vec![contact_link(account, t.subject_id, names)],
            _ => Vec::new(),
        };
        rows.push(Entry {
            at: t.at,
            when: when(t.at),
            kind: Kind::Transition,
            text: describe(&t.kind, &t.detail),
            by: None,
            count: 1,
            detail: t.backfill.then(|| "recomputed from history".to_string()),
            links,
        });
    }
    for note in &read.notes {
        rows.push(Entry {
            at: note.created_at,
            when: when(note.created_at),
            kind: Kind::Note,
            text: note.body.clone(),
            by: Some(note.author.clone()),
            count: 1,
            detail: None,
            links: Vec::new(),
        });
    }
    for o in &read.overrides {
        rows.push(Entry {
            at: o.set_at,
            when: when(o.set_at),
            kind: Kind::Override,
            text: match o.score {
                Some(s) => format!("health overridden to {s:.0}: {}", o.reason),
                None => format!("health override cleared: {}", o.reason),
            },
            by: Some(o.set_by.clone()),
            count: 1,
            detail: o.expires_at.map(|e| format!("until {}", when(e))),
            links: Vec::new(),
        });
    }
    // Where each kind read to its limit, the page can reach no further back than the
    // oldest row read of that kind.
    let oldest_if_full = |full: bool, oldest: Option<Timestamp>| if full { oldest } else { None };
    let mut end = [
        oldest_if_full(read.events.len() >= PAGE_EVENTS as usize, read.events.last().map(|e| e.at)),
        oldest_if_full(read.messages.len() >= PAGE_ROWS as usize, read.messages.last().map(|m| m.at)),
        oldest_if_full(read.transitions.len() >= PAGE_ROWS as usize, read.transitions.last().map(|t| t.at)),
        oldest_if_full(read.notes.len() >= PAGE_ROWS as usize, read.notes.last().map(|n| n.created_at)),
        oldest_if_full(read.overrides.len() >= PAGE_ROWS as usize, read.overrides.last().map(|o| o.set_at)),
        oldest_if_full(read.tasks_created.len() >= PAGE_ROWS as usize, read.tasks_created.last().map(|t| t.created_at)),
        oldest_if_full(
            read.tasks_completed.len() >= PAGE_ROWS as usize,
            read.tasks_completed.last().and_then(|t| t.completed_at),
        ),
    ]
    .into_iter()
    .flatten()
    .max();
    // Then the page holds at most PAGE_ROWS rows (events grouped as they would show).
    let mut all = rows.clone();
    all.extend(event_rows(account, &read.events, end, today, names));
    all.sort_by_key(|r| std::cmp::Reverse(r.at));
    if all.len() > PAGE_ROWS as usize {
        let cut = all[PAGE_ROWS as usize - 1].at;
        end = Some(end.map_or(cut, |e| e.max(cut)));
    }
    rows.retain(|r| end.is_none_or(|e| r.at >= e));
    rows.extend(event_rows(account, &read.events, end, today, names));
    rows.sort_by(|a, b| b.at.cmp(&a.at).then(a.kind.cmp(&b.kind)));
    Page { entries: rows, older: end }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("instant")
    }

    fn event(seq: i64, at: &str, contact: i64, name: &str) -> AccountEvent {
        AccountEvent {
            seq,
            at: t(at),
            kind: "track".into(),
            name: Some(name.into()),
            user_id: Some(format!("u{contact}")),
            contact_id: Some(contact),
            properties: Some(r#"{"n":1}"#.into()),
        }
    }

    fn note(id: i64, at: &str) -> AccountNote {
        AccountNote {
            id,
            account_id: 1,
            body: format!("note {id}"),
            author: "csm@example.com".into(),
            created_at: t(at),
        }
    }

    fn names() -> Names {
        HashMap::from([(7, "Ada".to_string())])
    }

    fn all() -> Query {
        Query { before: None, kinds: Vec::new() }
    }

    #[test]
    fn events_group_by_contact_name_and_day() {
        let today: Date = "2026-03-02".parse().unwrap();
        let mut events: Vec<AccountEvent> =
            (0..12).map(|i| event(100 - i, &format!("2026-03-02T1{}:00:00Z", i % 10), 7, "report_created")).collect();
        events.push(event(50, "2026-03-01T09:00:00Z", 7, "report_created"));
        events.push(event(49, "2026-03-01T08:00:00Z", 8, "login"));
        events.sort_by_key(|e| std::cmp::Reverse((e.at, e.seq)));
        let read = Read { events, ..Read::default() };
        let page = merge(1, &read, today, &names());
        let texts: Vec<&str> = page.entries.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            ["Ada: report_created ×12 today", "Ada: report_created on 2026-03-01", "contact 8: login on 2026-03-01"]
        );
        assert_eq!(page.entries[0].count, 12);
        assert_eq!(page.entries[0].at, t("2026-03-02T19:00:00Z"));
        assert_eq!(page.entries[0].links[0].href, "/accounts/1?contact=7#contact-7");
        assert_eq!(page.older, None, "nothing was cut");
    }

    #[test]
    fn a_full_kind_cuts_the_page_at_its_oldest_row_and_the_rest_comes_next() {
        let today: Date = "2026-03-02".parse().unwrap();
        // 50 notes (a full read), one a minute back from 12:00; events older and newer.
        let notes: Vec<AccountNote> = (0..50)
            .map(|i| note(i, &(t("2026-03-02T12:00:00Z") - jiff::SignedDuration::from_mins(i)).to_string()))
            .collect();
        let oldest_note = notes.last().unwrap().created_at;
        let forty_ninth = notes[48].created_at;
        let events = vec![event(2, "2026-03-02T13:00:00Z", 7, "login"), event(1, "2026-03-02T10:00:00Z", 7, "login")];
        let read = Read { events, notes, ..Read::default() };
        let page = merge(1, &read, today, &names());
        // Every note was read down to the oldest, but 49 notes beside the newer event
        // fill the page: it ends at the 49th note, and the next page starts below it.
        assert_eq!(page.older, Some(forty_ninth));
        assert!(page.entries.iter().all(|e| e.at >= forty_ninth && e.at >= oldest_note));
        // The 10:00 login is older than every note read: it waits for the next page.
        assert_eq!(page.entries.iter().filter(|e| e.kind == Kind::Event).count(), 1);
        assert_eq!(page.entries.len(), 50, "49 notes and the event");
    }

    #[test]
    fn more_rows_than_a_page_cut_at_the_last_row_shown() {
        let today: Date = "2026-03-02".parse().unwrap();
        // 60 events of 60 different days: 60 rows, fewer than a full read.
        let events: Vec<AccountEvent> = (0..60)
            .map(|i| {
                event(
                    100 - i,
                    &(t("2026-03-02T12:00:00Z") - jiff::SignedDuration::from_hours(24 * i)).to_string(),
                    7,
                    "x",
                )
            })
            .collect();
        let read = Read { events, ..Read::default() };
        let page = merge(1, &read, today, &names());
        assert_eq!(page.entries.len(), PAGE_ROWS as usize);
        let last = page.entries.last().unwrap().at;
        assert_eq!(page.older, Some(last));
        // The next page, read strictly before the cursor, starts with the 51st.
        let rest: Vec<AccountEvent> = read.events.iter().filter(|e| e.at < last).cloned().collect();
        let next = merge(1, &Read { events: rest, ..Read::default() }, today, &names());
        assert_eq!(next.entries.len(), 10);
        assert_eq!(next.older, None);
    }

    #[test]
    fn messages_and_tasks_link_to_what_they_talk_about() {
        let today: Date = "2026-03-02".parse().unwrap();
        let message = AccountMessage {
            enrollment_id: 3,
            program_id: "onboarding".into(),
            step_id: "welcome".into(),
            channel: "email".into(),
            contact_id: Some(7),
            subject: Some("Welcome <b>".into()),
            at: t("2026-03-01T10:00:00Z"),
            engagements: vec![
                ("opened".into(), t("2026-03-01T11:00:00Z")),
                ("clicked".into(), t("2026-03-01T11:05:00Z")),
            ],
        };
        let read = Read { messages: vec![message], ..Read::default() };
        let page = merge(1, &read, today, &names());
        let row = &page.entries[0];
        assert_eq!(row.text, "email sent “Welcome <b>” (step welcome)");
        assert_eq!(row.detail.as_deref(), Some("opened 2026-03-01 11:00, clicked 2026-03-01 11:05"));
        assert_eq!(row.links[0].href, "/programs/onboarding");
        assert_eq!(row.links[1].label, "Ada");
    }

    #[test]
    fn the_query_reads_kinds_and_instants_and_refuses_the_rest() {
        let q = Query::parse(Some("1772400000000"), Some("note, event,note")).unwrap();
        assert_eq!(q.kinds, [Kind::Event, Kind::Note]);
        assert_eq!(q.before, Some(Timestamp::from_millisecond(1_772_400_000_000).unwrap()));
        assert_eq!(kind_param(&q.kinds), "event,note");
        assert!(!q.wants(Kind::Task));
        assert_eq!(Query::parse(Some("2026-03-01T00:00:00Z"), None).unwrap().before, Some(t("2026-03-01T00:00:00Z")));
        assert!(Query::parse(None, Some("emails")).unwrap_err().contains("the kinds are event, message"));
        assert!(Query::parse(Some("yesterday"), None).is_err());
        assert!(all().wants(Kind::Override));
    }
}
