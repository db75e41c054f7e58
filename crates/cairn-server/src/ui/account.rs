//! `/accounts/{id}`: the account 360 — summary (status, industry, ARR, start and renewal
//! dates, lifetime, owner), health by pillar with its explanation and a year's trend
//! (stored daily snapshots), journey and milestones, contacts with their engagement,
//! subscriptions and ARR history, one merged timeline (`account_timeline`: events,
//! messages, tasks, transitions, notes, overrides; paged and filtered by kind), and the
//! CSM's forms: a health override (reason and expiry, through the runtime like
//! `POST /api/accounts/{id}/health/override`) and a note.
//!
//! Everything is read for the one account: the engine's state by id, the store by
//! indexed account id with a `LIMIT` or a time window, so the page costs the same at 100
//! or 10,000 accounts and follows the account's own size, not the log's.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, Response};
use cairn_runtime::views::{self, AccountView};
use cairn_store::{AccountNote, ContactActivity, SubscriptionLine};
use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::account_timeline::{self as timeline, Kind, when};
use super::accounts::{AccountRow, row, today};
use super::chart::{self, Chart, Series, Unit};
use super::{Chrome, UiError, back_to, bad_form, given, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::error::ApiError;

/// Notes listed beside the forms.
const NOTES_SHOWN: u32 = 20;
/// Contacts shown by default: the most active.
const TOP_CONTACTS: usize = 10;
/// Contacts a page of "all contacts" shows.
const CONTACTS_PAGE: usize = 50;

/// The page's query: the timeline's cursor and kinds, and which contacts to list.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AccountQuery {
    /// The timeline from before this instant (RFC 3339 or ms since the epoch).
    pub before: Option<String>,
    /// The timeline's kinds, comma-separated (every kind when absent).
    pub kind: Option<String>,
    /// `all` lists every contact, a page at a time; otherwise the most active.
    pub contacts: Option<String>,
    /// Contact order: `activity` (default), `name`, `last_seen`, `opened`, `received`.
    pub sort: Option<String>,
    /// The page of "all contacts", from 1.
    pub page: Option<String>,
    /// A contact to list whatever the order (a timeline row links to it).
    pub contact: Option<String>,
}

/// A contact as the 360 lists it, with its engagement.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ContactLine {
    pub id: u64,
    pub name: String,
    pub email: Option<String>,
    pub role: Option<String>,
    pub segments: Vec<String>,
    /// Events, active days, last seen; messages received, opened, clicked.
    pub activity: ContactActivity,
    /// Opened / received, when anything was received.
    pub open_rate: Option<f64>,
    /// Clicked / received.
    pub click_rate: Option<f64>,
}

impl ContactLine {
    /// Last seen, as people read it.
    pub fn last_seen_text(&self) -> String {
        self.activity.last_seen.map_or_else(|| format!("not in {} days", cairn_store::LAST_SEEN_DAYS), when)
    }

    /// The last message's instant, as people read it.
    pub fn last_message_text(&self) -> String {
        self.activity.last_message_at.map_or_else(|| "–".into(), when)
    }

    /// `opened/received (rate)`.
    pub fn opened_text(&self) -> String {
        rate_text(self.activity.opened, self.activity.received, self.open_rate)
    }

    /// `clicked/received (rate)`.
    pub fn clicked_text(&self) -> String {
        rate_text(self.activity.clicked, self.activity.received, self.click_rate)
    }
}

fn rate_text(n: u64, of: u64, rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("{n}/{of} ({:.0}%)", r * 100.0),
        None => "–".into(),
    }
}

/// How the contacts table is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ContactSort {
    Activity,
    Name,
    LastSeen,
    Opened,
    Received,
}

impl ContactSort {
    const ALL: [ContactSort; 5] =
        [ContactSort::Activity, ContactSort::Name, ContactSort::LastSeen, ContactSort::Opened, ContactSort::Received];

    fn as_str(self) -> &'static str {
        match self {
            ContactSort::Activity => "activity",
            ContactSort::Name => "name",
            ContactSort::LastSeen => "last_seen",
            ContactSort::Opened => "opened",
            ContactSort::Received => "received",
        }
    }
}

/// Orders `lines` by `sort`: the most first (names A to Z), ties by id.
fn sort_contacts(lines: &mut [ContactLine], sort: ContactSort) {
    let activity = |c: &ContactLine| (c.activity.events_30d, c.activity.active_days_30d, c.activity.last_seen);
    lines.sort_by(|a, b| {
        let order = match sort {
            ContactSort::Activity => activity(b).cmp(&activity(a)),
            ContactSort::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            ContactSort::LastSeen => b.activity.last_seen.cmp(&a.activity.last_seen),
            ContactSort::Opened => b
                .open_rate
                .unwrap_or(-1.0)
                .total_cmp(&a.open_rate.unwrap_or(-1.0))
                .then(b.activity.opened.cmp(&a.activity.opened)),
            ContactSort::Received => b.activity.received.cmp(&a.activity.received),
        };
        order.then(a.id.cmp(&b.id))
    });
}

/// The contacts section: which contacts, in which order, and how many there are.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Contacts {
    pub lines: Vec<ContactLine>,
    pub total: usize,
    pub sort: ContactSort,
    /// Every contact, paged (`contacts=all`), or the most active only.
    pub all: bool,
    /// The page shown, from 1, and the last page.
    pub page: usize,
    pub pages: usize,
}

/// A month's ARR.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ArrPoint {
    pub month_end: Date,
    pub arr_cents: i64,
}

/// The account 360's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AccountPage {
    pub summary: AccountRow,
    /// `customer`, `churned` or `prospect` from the subscription lines (a `status`
    /// trait, when the CRM gives one, wins).
    pub status: String,
    pub start_date: Option<Date>,
    /// Days since the start date.
    pub lifetime_days: Option<i64>,
    pub view: AccountView,
    pub contacts: Contacts,
    pub subscriptions: Vec<SubscriptionView>,
    pub arr_history: Vec<ArrPoint>,
    /// (day, score) from the stored daily snapshots, weekly over the last year.
    pub health_history: Vec<(Date, Option<f64>)>,
    pub timeline: timeline::Page,
    /// The timeline's kinds shown (every kind when empty).
    pub timeline_kinds: Vec<Kind>,
    /// Whether this is a later page of the timeline (a `before` was given).
    pub timeline_paged: bool,
    pub notes: Vec<AccountNote>,
    pub today: Date,
}

/// A subscription line, for the table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SubscriptionView {
    pub source: String,
    pub id: String,
    pub start_date: Date,
    pub end_date: Date,
    pub arr_cents: i64,
}

impl SubscriptionView {
    /// ARR shortened.
    pub fn arr_text(&self) -> String {
        chart::money(self.arr_cents as f64 / 100.0)
    }
}

fn text(v: Option<&serde_json::Value>) -> Option<String> {
    v.and_then(|v| v.as_str()).map(str::to_string)
}

fn month_ends(today: Date, n: usize) -> Vec<Date> {
    let mut out = Vec::with_capacity(n);
    let mut first_of_month = today.first_of_month();
    for _ in 0..n {
        match first_of_month.yesterday() {
            Ok(end) => out.push(end),
            Err(_) => break,
        }
        first_of_month = match first_of_month.checked_sub(1.month()) {
            Ok(d) => d,
            Err(_) => break,
        };
    }
    out.reverse();
    out.push(today);
    out
}

/// What the subscription lines say of the account today.
fn status_of(lines: &[SubscriptionLine], today: Date) -> &'static str {
    if lines.iter().any(|l| l.start_date <= today && today <= l.end_date && l.arr_cents > 0) {
        "customer"
    } else if lines.iter().any(|l| l.start_date <= today) {
        "churned"
    } else {
        "prospect"
    }
}

/// The contacts section for `q` from the engine's contacts and their activity.
pub(crate) fn contacts(
    view: &AccountView,
    activity: Vec<ContactActivity>,
    q: &AccountQuery,
) -> Result<Contacts, ApiError> {
    let sort = match given(&q.sort) {
        None => ContactSort::Activity,
        Some(s) => ContactSort::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = ContactSort::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::BadRequest(format!("no contact order `{s}`: use one of {}", names.join(", ")))
        })?,
    };
    let all = given(&q.contacts) == Some("all");
    let page = match given(&q.page) {
        None => 1,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| ApiError::BadRequest(format!("page `{p}` is not a page number (1, 2, …)")))?,
    };
    let chosen: Option<u64> = given(&q.contact).and_then(|c| c.parse().ok());
    let mut by_id: HashMap<i64, ContactActivity> = activity.into_iter().map(|a| (a.contact_id, a)).collect();
    let mut lines: Vec<ContactLine> = view
        .contacts
        .iter()
        .map(|c| {
            let id = c.id as i64;
            let activity =
                by_id.remove(&id).unwrap_or(ContactActivity { contact_id: id, ..ContactActivity::default() });
            let rate = |n: u64| (activity.received > 0).then(|| n as f64 / activity.received as f64);
            ContactLine {
                id: c.id,
                name: timeline::contact_name(c),
                email: text(c.traits.get("email")),
                role: text(c.traits.get("role")),
                segments: c.segments.clone(),
                open_rate: rate(activity.opened),
                click_rate: rate(activity.clicked),
                activity,
            }
        })
        .collect();
    sort_contacts(&mut lines, sort);
    let total = lines.len();
    let (size, pages) = if all { (CONTACTS_PAGE, total.div_ceil(CONTACTS_PAGE).max(1)) } else { (TOP_CONTACTS, 1) };
    let page = page.min(pages);
    let first = (page - 1) * size;
    let mut shown: Vec<ContactLine> = lines.iter().skip(first).take(size).cloned().collect();
    if let Some(c) = chosen
        && !shown.iter().any(|l| l.id == c)
        && let Some(line) = lines.iter().find(|l| l.id == c)
    {
        shown.insert(0, line.clone());
    }
    Ok(Contacts { lines: shown, total, sort, all, page, pages })
}

/// The 360 of account `id` (a cairn id, CRM id or product id).
pub(crate) async fn data(state: &AppState, id: &str, q: &AccountQuery) -> Result<AccountPage, ApiError> {
    let tq = timeline::Query::parse(q.before.as_deref(), q.kind.as_deref()).map_err(ApiError::BadRequest)?;
    let rt = crate::api::runtime(state)?;
    let n = match state.store.resolve_account(id).await? {
        Some(n) => n,
        None => return Err(ApiError::NotFound(format!("no account `{id}`: give its cairn id, CRM id or product id"))),
    };
    let found = rt
        .read(|live| {
            let engine = &live.engine;
            let today = today(engine);
            let a = engine.account(n as u64)?;
            let view = views::account(engine, n as u64)?;
            Some((row(engine, n as u64, a, today), view, today))
        })
        .await;
    let Some((summary, view, today)) = found else {
        return Err(ApiError::NotFound(format!("account `{id}` is not known to the engine yet")));
    };
    let start_date = view.traits.get("start_date").and_then(|v| v.as_str()).and_then(|s| s.parse::<Date>().ok());
    let now = state.clock.now();
    let activity = state.store.account_contact_activity(n, now).await?;
    let contacts = contacts(&view, activity, q)?;
    let timeline = timeline::page(state, &view, &tq, today).await?;
    let lines: Vec<SubscriptionLine> = state.store.account_subscription_lines(n).await?;
    let status = text(view.traits.get("status")).unwrap_or_else(|| status_of(&lines, today).to_string());
    let ledger = cairn_measure::Ledger::new(lines.iter().map(|l| cairn_measure::Line {
        id: format!("{}/{}", l.source, l.id),
        account: n.to_string(),
        start: l.start_date,
        end: l.end_date,
        arr_cents: l.arr_cents,
    }))
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let arr_history = month_ends(today, 12)
        .into_iter()
        .map(|d| ArrPoint { month_end: d, arr_cents: ledger.arr_on(&n.to_string(), d) })
        .collect();
    let year_ago = today.checked_sub(1.year()).unwrap_or(today);
    let snapshots = state.store.account_health_snapshots(n, year_ago, today).await?;
    // Runs: a snapshot holds from its day until the next one.
    let mut health_history = Vec::new();
    let mut day = year_ago;
    let mut i = 0;
    let mut current: Option<f64> = None;
    while day <= today {
        while i < snapshots.len() && snapshots[i].day <= day {
            current = snapshots[i].score;
            i += 1;
        }
        if i > 0 {
            health_history.push((day, current));
        }
        day = match day.checked_add(7.days()) {
            Ok(d) => d,
            Err(_) => break,
        };
    }
    let notes = state.store.account_notes(n, NOTES_SHOWN).await?;
    Ok(AccountPage {
        lifetime_days: start_date.map(|s| super::days_until(s, today)),
        start_date,
        status,
        summary,
        view,
        contacts,
        subscriptions: lines
            .into_iter()
            .map(|l| SubscriptionView {
                source: l.source,
                id: l.id,
                start_date: l.start_date,
                end_date: l.end_date,
                arr_cents: l.arr_cents,
            })
            .collect(),
        arr_history,
        health_history,
        timeline,
        timeline_paged: tq.before.is_some(),
        timeline_kinds: tq.kinds,
        notes,
        today,
    })
}

/// A link of the timeline's kind filter.
pub(crate) struct KindLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// A pillar as the page shows it.
pub(crate) struct PillarLine {
    pub id: String,
    pub score: String,
    /// Width class of the score bar (`w0`…`w100`).
    pub width: String,
    pub band: &'static str,
    pub weight: String,
    pub measures: Vec<(String, String, String)>,
}

impl AccountPage {
    /// The pillars with their measures, as text.
    pub fn pillars(&self) -> Vec<PillarLine> {
        let Some(h) = &self.view.health else { return Vec::new() };
        h.score
            .pillars
            .iter()
            .map(|p| PillarLine {
                id: p.id.clone(),
                score: p.score.map_or_else(|| "–".into(), |s| format!("{s:.0}")),
                width: format!("w{}", p.score.map_or(0, |s| ((s.clamp(0.0, 100.0) / 10.0).round() as i64) * 10)),
                band: match p.score {
                    None => "none",
                    Some(s) if s < 40.0 => "red",
                    Some(s) if s < 70.0 => "yellow",
                    Some(_) => "green",
                },
                weight: format!("{:.0}%", p.share * 100.0),
                measures: p
                    .measures
                    .iter()
                    .map(|m| {
                        (
                            m.id.clone(),
                            m.value.map_or_else(|| "no data".into(), chart::number),
                            m.score.map_or_else(|| "–".into(), |s| format!("{s:.0}")),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    /// What drags the score down, in words.
    pub fn dragging(&self) -> Option<String> {
        let (p, m) = self.view.health.as_ref()?.score.dragging.clone()?;
        Some(format!("{m} (in {p}) costs the most points"))
    }

    /// A trend in points, e.g. "+3 in 7 days".
    pub fn trend(&self) -> String {
        let Some(h) = &self.view.health else { return String::new() };
        let part =
            |v: Option<f64>, days| v.map(|v| format!("{}{v:.0} in {days} days", if v >= 0.0 { "+" } else { "" }));
        [part(h.trend_7d, 7), part(h.trend_30d, 30)].into_iter().flatten().collect::<Vec<_>>().join(", ")
    }

    /// The health trend chart.
    pub fn health_chart(&self) -> Chart {
        let x: Vec<String> = self.health_history.iter().map(|(d, _)| d.to_string()).collect();
        let values = self.health_history.iter().map(|(_, s)| *s).collect();
        chart::line(
            "Health over the last year",
            &x,
            &[Series { name: "health".into(), values }],
            Unit::Number,
            true,
            true,
        )
    }

    /// The ARR history chart.
    pub fn arr_chart(&self) -> Chart {
        let x: Vec<String> = self.arr_history.iter().map(|p| p.month_end.to_string()).collect();
        let values = self.arr_history.iter().map(|p| Some(p.arr_cents as f64 / 100.0)).collect();
        chart::line("ARR by month end", &x, &[Series { name: "ARR".into(), values }], Unit::Money, true, true)
    }

    /// The override in force, in words.
    pub fn override_text(&self) -> Option<String> {
        let o = self.view.health_override.as_ref()?;
        Some(format!("{:.0} set by {} ({}), until {}", o.score, o.by, o.reason, when(o.expires_at)))
    }

    /// The default expiry offered by the form: 30 days from today.
    pub fn default_expiry(&self) -> String {
        self.today.checked_add(30.days()).map_or_else(|_| self.today.to_string(), |d| d.to_string())
    }

    /// The timeline's filter: every kind, then each kind alone (newest page).
    pub fn kind_links(&self) -> Vec<KindLink> {
        let base = format!("/accounts/{}", self.summary.id);
        let mut out =
            vec![KindLink { label: "all", href: format!("{base}#timeline"), current: self.timeline_kinds.is_empty() }];
        out.extend(Kind::ALL.into_iter().map(|k| KindLink {
            label: k.as_str(),
            href: format!("{base}?kind={}#timeline", k.as_str()),
            current: self.timeline_kinds == [k],
        }));
        out
    }

    /// The link to the next, older page of the timeline, when there may be one.
    pub fn older_href(&self) -> Option<String> {
        let before = self.timeline.older?.as_millisecond();
        let kinds = timeline::kind_param(&self.timeline_kinds);
        let kind = if kinds.is_empty() { String::new() } else { format!("&kind={kinds}") };
        Some(format!("/accounts/{}?before={before}{kind}#timeline", self.summary.id))
    }

    /// The contacts table's order links: (label, href, current).
    pub fn contact_sort_links(&self) -> Vec<(&'static str, String, bool)> {
        let all = if self.contacts.all { "contacts=all&" } else { "" };
        ContactSort::ALL
            .into_iter()
            .map(|k| {
                (
                    k.as_str(),
                    format!("/accounts/{}?{all}sort={}#contacts", self.summary.id, k.as_str()),
                    k == self.contacts.sort,
                )
            })
            .collect()
    }

    /// "All contacts" and its pages: (label, href).
    pub fn contact_page_links(&self) -> Vec<(String, String)> {
        let c = &self.contacts;
        let base = format!("/accounts/{}?contacts=all&sort={}", self.summary.id, c.sort.as_str());
        if !c.all {
            return if c.total > c.lines.len() {
                vec![(format!("all {} contacts", c.total), format!("{base}#contacts"))]
            } else {
                Vec::new()
            };
        }
        let mut out = Vec::new();
        if c.page > 1 {
            out.push(("← previous".to_string(), format!("{base}&page={}#contacts", c.page - 1)));
        }
        if c.page < c.pages {
            out.push(("next →".to_string(), format!("{base}&page={}#contacts", c.page + 1)));
        }
        out
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct Page {
    chrome: Chrome,
    d: AccountPage,
}

/// `GET /accounts/{id}`.
pub(crate) async fn page(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<AccountQuery>,
) -> Result<Html<String>, UiError> {
    let d = data(&state, &id, &q).await?;
    render(&Page { chrome: Chrome::new(&user, "/accounts"), d })
}

/// The health override form.
#[derive(Debug, Deserialize)]
pub(crate) struct OverrideForm {
    /// 0–100, or empty to clear the override.
    score: String,
    reason: String,
    /// The last day it applies (YYYY-MM-DD).
    expires: Option<String>,
}

/// `POST /accounts/{id}/health-override`: sets (or, with an empty score, clears) the
/// override until the end of the day given, as the signed-in user.
pub(crate) async fn override_health(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<OverrideForm>,
) -> Result<Response, UiError> {
    let rt = crate::api::runtime(&state)?;
    let n = state
        .store
        .resolve_account(&id)
        .await?
        .ok_or_else(|| UiError(ApiError::NotFound(format!("no account `{id}`"))))?;
    let reason = form.reason.trim();
    if reason.is_empty() {
        return Err(bad_form("an override needs a reason: say why the score is wrong"));
    }
    let score = match form.score.trim() {
        "" => None,
        s => match s.parse::<f64>() {
            Ok(v) if (0.0..=100.0).contains(&v) => Some(v),
            _ => return Err(bad_form(format!("score `{s}` is not a number from 0 to 100"))),
        },
    };
    let tz = rt.read(|live| live.engine.workspace().time_zone().clone()).await;
    let now = state.clock.now();
    let expires_at = match form.expires.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => now.checked_add(jiff::SignedDuration::from_hours(24 * 30)).map_err(|e| bad_form(e.to_string()))?,
        Some(text) => {
            let day: Date =
                text.parse().map_err(|_| bad_form(format!("expiry `{text}` is not a date: give it as YYYY-MM-DD")))?;
            let end = day
                .tomorrow()
                .and_then(|d| d.to_zoned(tz.clone()))
                .map_err(|e| bad_form(format!("expiry `{text}`: {e}")))?
                .timestamp();
            if end <= now {
                return Err(bad_form(format!("expiry {text} is in the past: give a day from today on")));
            }
            end
        }
    };
    rt.set_health_override(n, score, reason, &user.email, expires_at).await.map_err(|e| match e {
        cairn_runtime::RuntimeError::Store(s) => UiError(ApiError::Unavailable(s)),
        cairn_runtime::RuntimeError::BadOverride(m) => bad_form(m),
        other => UiError(ApiError::Internal(other.to_string())),
    })?;
    let detail = serde_json::json!({"score": score, "reason": reason, "expires_at": expires_at.to_string()});
    crate::audit::record(&state, &user.actor(), crate::audit::AuditAction::HealthOverride, &n.to_string(), detail)
        .await;
    Ok(back_to(&format!("/accounts/{n}#health")))
}

/// The note form.
#[derive(Debug, Deserialize)]
pub(crate) struct NoteForm {
    body: String,
}

/// The longest note kept, in characters.
const NOTE_MAX: usize = 10_000;

/// `POST /accounts/{id}/notes`: adds a note by the signed-in user.
pub(crate) async fn add_note(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, UiError> {
    let n = state
        .store
        .resolve_account(&id)
        .await?
        .ok_or_else(|| UiError(ApiError::NotFound(format!("no account `{id}`"))))?;
    let body = form.body.trim();
    if body.is_empty() {
        return Err(bad_form("the note is empty: write something"));
    }
    if body.chars().count() > NOTE_MAX {
        return Err(bad_form(format!("the note is longer than {NOTE_MAX} characters")));
    }
    state.store.add_account_note(n, body, &user.email, state.clock.now()).await?;
    let detail = serde_json::json!({"characters": body.chars().count()});
    crate::audit::record(&state, &user.actor(), crate::audit::AuditAction::NoteAdded, &n.to_string(), detail).await;
    Ok(back_to(&format!("/accounts/{n}#notes")))
}
