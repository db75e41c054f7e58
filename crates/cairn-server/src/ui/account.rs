//! `/accounts/{id}`: the account 360 — summary, health by pillar with its explanation and
//! a year's trend (stored daily snapshots), journey and milestones, contacts,
//! subscriptions and ARR history, one merged timeline (transitions, tasks, notes, health
//! overrides), and the CSM's forms: a health override (reason and expiry, through the
//! runtime like `POST /api/accounts/{id}/health/override`) and a note.
//!
//! Everything is read for the one account: the engine's state by id, the store by
//! indexed account id, so the page costs the same at 100 or 10,000 accounts.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::response::{Html, Response};
use cairn_runtime::views::{self, AccountView};
use cairn_store::{AccountNote, HealthOverrideRecord, SubscriptionLine, Task};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::accounts::{AccountRow, row, today};
use super::chart::{self, Chart, Series, Unit};
use super::{Chrome, UiError, back_to, bad_form, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::error::ApiError;

/// How many entries of each kind the timeline merges.
const TIMELINE_EACH: u32 = 40;

/// One entry of the merged timeline.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TimelineEntry {
    pub at: Timestamp,
    /// `at` as people read it (`2026-03-01 12:00`, UTC).
    pub when: String,
    /// `transition`, `task`, `note` or `override`.
    pub kind: &'static str,
    pub text: String,
    pub by: Option<String>,
}

/// A contact as the 360 lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ContactLine {
    pub id: u64,
    pub name: String,
    pub email: Option<String>,
    pub role: Option<String>,
    pub segments: Vec<String>,
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
    pub start_date: Option<Date>,
    /// Days since the start date.
    pub lifetime_days: Option<i64>,
    pub view: AccountView,
    pub contacts: Vec<ContactLine>,
    pub subscriptions: Vec<SubscriptionView>,
    pub arr_history: Vec<ArrPoint>,
    /// (day, score) from the stored daily snapshots, weekly over the last year.
    pub health_history: Vec<(Date, Option<f64>)>,
    pub timeline: Vec<TimelineEntry>,
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

fn describe(kind: &str, detail: &serde_json::Value) -> String {
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

/// An instant as people read it, to the minute (UTC).
pub(crate) fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
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

/// The 360 of account `id` (a cairn id, CRM id or product id).
pub(crate) async fn data(state: &AppState, id: &str) -> Result<AccountPage, ApiError> {
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
    let contacts = view
        .contacts
        .iter()
        .map(|c| ContactLine {
            id: c.id,
            name: text(c.traits.get("name"))
                .or_else(|| text(c.traits.get("email")))
                .unwrap_or_else(|| format!("contact {}", c.id)),
            email: text(c.traits.get("email")),
            role: text(c.traits.get("role")),
            segments: c.segments.clone(),
        })
        .collect();
    let lines: Vec<SubscriptionLine> = state.store.account_subscription_lines(n).await?;
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
    let notes = state.store.account_notes(n, TIMELINE_EACH).await?;
    let tasks: Vec<Task> = state.store.account_tasks(n, TIMELINE_EACH).await?;
    let overrides: Vec<HealthOverrideRecord> = state.store.health_overrides(n).await?;
    let transitions = state.store.account_transitions(n, TIMELINE_EACH).await?;
    let mut timeline: Vec<TimelineEntry> = Vec::new();
    timeline.extend(transitions.iter().map(|t| TimelineEntry {
        at: t.at,
        when: when(t.at),
        kind: "transition",
        text: describe(&t.kind, &t.detail),
        by: None,
    }));
    for t in &tasks {
        timeline.push(TimelineEntry {
            at: t.created_at,
            when: when(t.created_at),
            kind: "task",
            text: format!("task: {}", t.title),
            by: t.assignee.clone().or_else(|| t.pool.clone()),
        });
        if let Some(done) = t.completed_at {
            let outcome = t.outcome.as_deref().map(|o| format!(" ({o})")).unwrap_or_default();
            timeline.push(TimelineEntry {
                at: done,
                when: when(done),
                kind: "task",
                text: format!("task done: {}{outcome}", t.title),
                by: t.completed_by.clone(),
            });
        }
    }
    timeline.extend(notes.iter().map(|note| TimelineEntry {
        at: note.created_at,
        when: when(note.created_at),
        kind: "note",
        text: note.body.clone(),
        by: Some(note.author.clone()),
    }));
    timeline.extend(overrides.iter().map(|o| TimelineEntry {
        at: o.set_at,
        when: when(o.set_at),
        kind: "override",
        text: match o.score {
            Some(s) => format!("health overridden to {s:.0}: {}", o.reason),
            None => format!("health override cleared: {}", o.reason),
        },
        by: Some(o.set_by.clone()),
    }));
    timeline.sort_by_key(|e| std::cmp::Reverse(e.at));
    timeline.truncate(TIMELINE_EACH as usize * 2);
    Ok(AccountPage {
        lifetime_days: start_date.map(|s| super::days_until(s, today)),
        start_date,
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
        notes,
        today,
    })
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
) -> Result<Html<String>, UiError> {
    let d = data(&state, &id).await?;
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
