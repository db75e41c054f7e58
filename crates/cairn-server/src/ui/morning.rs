//! `/`: the morning view — what a Digital CSM looks at first. KPI tiles with their change
//! against the previous month (from `cairn-reports`), the worklist of accounts that need
//! a human today, health movers, missed milestones, renewals at risk, tasks due today and
//! programs needing attention.
//!
//! The worklist's rank: an account is on it when its band is red or yellow, a milestone
//! was missed in the last 14 days, or it renews within 30 days. It is ranked by need =
//! (100 − health) / 100 + ARR / the largest ARR + (90 − days to renewal) / 90 for a
//! renewal within 90 days (each term in [0, 1]): lower health, higher ARR and fewer days
//! to renewal rank first, and each row says which of these put it there.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use cairn_engine::{Engine, MilestoneStatus};
use cairn_measure::retention::PeriodKpis;
use cairn_measure::{Period, PeriodKind};
use cairn_reports::Query;
use cairn_store::Task;
use jiff::civil::Date;
use serde::Serialize;

use super::accounts::{AccountRow, row, today};
use super::{Chrome, UiError, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::cached_reports;
use crate::error::ApiError;
use crate::report_cache::{Freshness, Wait};

/// How many rows each list shows.
const LIST: usize = 10;

/// A KPI tile.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Tile {
    pub label: &'static str,
    pub value: String,
    /// Against the previous period, e.g. "+1.2 pts".
    pub change: Option<String>,
    /// `up`, `down` or `flat`: whether the change is good news (green) or not.
    pub tone: &'static str,
    /// Where its chart is.
    pub href: &'static str,
}

/// An account on the worklist with why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkItem {
    #[serde(flatten)]
    pub account: AccountRow,
    pub need: f64,
    pub reasons: Vec<String>,
}

/// An account whose health moved most in 7 days.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Mover {
    #[serde(flatten)]
    pub account: AccountRow,
    pub change_7d: f64,
}

impl Mover {
    /// "+12" or "−8".
    pub fn change_text(&self) -> String {
        signed(self.change_7d, "")
    }
}

/// A milestone missed recently.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Missed {
    pub account_id: u64,
    pub account: String,
    pub milestone: String,
    pub on: Date,
}

/// A task due by the end of today.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DueTask {
    #[serde(flatten)]
    pub task: Task,
    pub account: Option<String>,
}

/// A program that needs a look, and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProgramAlert {
    pub program: String,
    pub reasons: Vec<String>,
}

/// The morning view's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MorningView {
    pub today: Date,
    /// The month the tiles measure (the last complete one).
    pub period: Period,
    pub tiles: Vec<Tile>,
    pub worklist: Vec<WorkItem>,
    pub movers: Vec<Mover>,
    pub missed: Vec<Missed>,
    pub renewals_at_risk: Vec<AccountRow>,
    pub tasks_due: Vec<DueTask>,
    pub programs: Vec<ProgramAlert>,
    /// Set when no workspace runs (the engine's lists are then empty).
    pub no_workspace: bool,
}

fn signed(v: f64, unit: &str) -> String {
    if v > 0.0 {
        format!("+{v:.1}{unit}")
    } else if v < 0.0 {
        format!("−{:.1}{unit}", -v)
    } else {
        format!("±0{unit}")
    }
}

fn tone(change: f64, higher_is_better: bool) -> &'static str {
    match (change.partial_cmp(&0.0), higher_is_better) {
        (Some(std::cmp::Ordering::Greater), true) | (Some(std::cmp::Ordering::Less), false) => "up",
        (Some(std::cmp::Ordering::Greater), false) | (Some(std::cmp::Ordering::Less), true) => "down",
        _ => "flat",
    }
}

fn share_tile(label: &'static str, now: Option<f64>, before: Option<f64>, href: &'static str) -> Tile {
    let change = now.zip(before).map(|(a, b)| (a - b) * 100.0);
    Tile {
        label,
        value: now.map_or_else(|| "–".into(), |v| format!("{:.1}%", v * 100.0)),
        change: change.map(|c| signed(c, " pts")),
        tone: change.map_or("flat", |c| tone(c, true)),
        href,
    }
}

fn money_tile(
    label: &'static str,
    now: Option<f64>,
    before: Option<f64>,
    higher_is_better: bool,
    href: &'static str,
) -> Tile {
    let change = now.zip(before).map(|(a, b)| a - b);
    Tile {
        label,
        value: now.map_or_else(|| "–".into(), super::chart::money),
        change: change.map(|c| if c >= 0.0 { format!("+{}", super::chart::money(c)) } else { super::chart::money(c) }),
        tone: change.map_or("flat", |c| tone(c, higher_is_better)),
        href,
    }
}

/// The last complete month before `today`, and the one before it.
pub(crate) fn months(today: Date) -> Result<(Query, Query), ApiError> {
    let current = cairn_reports::QueryText::default().resolve(PeriodKind::Month, today)?;
    let before_day = current.period.day_before().ok_or_else(|| ApiError::BadRequest("no month before".into()))?;
    let previous = Query { period: Period::containing(PeriodKind::Month, before_day), as_of: today, segment: None };
    Ok((current, previous))
}

/// The tiles, with the engine's lists: `lists` (the engine's pass over the accounts) runs
/// while the reports are waited for.
async fn tiles(
    state: &AppState,
    today: Date,
    lists: impl std::future::Future<Output = Option<EngineLists>>,
    open_tasks: usize,
    wait: Wait,
    fresh: &mut Freshness,
) -> Result<(Period, Vec<Tile>, Option<EngineLists>), ApiError> {
    let (current, previous) = months(today)?;
    let live = crate::api::live_workspace(state).await;
    let ws = live.as_ref();
    let options = cairn_reports::revenue::KpiOptions::default();
    // The reports the API and the KPI page share (the report cache): a tile with no
    // figures yet shows a dash.
    let (lists, (now, before, nps_now, nps_before)) = tokio::join!(lists, async {
        tokio::join!(
            cached_reports::kpis(state, ws, &current, &options, wait),
            cached_reports::kpis(state, ws, &previous, &options, wait),
            cached_reports::nps(state, &current, wait),
            cached_reports::nps(state, &previous, wait),
        )
    });
    let engine_share = lists.as_ref().and_then(|l| l.adoption);
    let (now, before, nps_now, nps_before) =
        (fresh.take(now?), fresh.take(before?), fresh.take(nps_now?), fresh.take(nps_before?));
    let (now, before) = (now.as_deref().map(|r| &r.kpis), before.as_deref().map(|r| &r.kpis));
    let open_now = open_tasks as f64;
    let end_before =
        previous.period.last().to_zoned(jiff::tz::TimeZone::UTC).map_err(|e| ApiError::Internal(e.to_string()))?;
    let open_before = state.store.tasks_open_at(end_before.timestamp()).await?.len() as f64;
    let cents = |k: Option<&PeriodKpis>, f: fn(&PeriodKpis) -> i64| k.map(|k| f(k) as f64 / 100.0);
    let ratio = |r: Option<cairn_measure::Ratio>| r.map(|r| r.to_f64());
    // NPS is in points already (−100…100).
    let nps_points = |n: Option<&cairn_reports::nps::NpsReport>| n.and_then(|n| n.nps.nps).map(|r| r.to_f64());
    let (nps_now, nps_before) = (nps_points(nps_now.as_deref()), nps_points(nps_before.as_deref()));
    let nps_change = nps_now.zip(nps_before).map(|(a, b)| a - b);
    let tiles = vec![
        money_tile("ARR", cents(now, |k| k.end_arr_cents), cents(before, |k| k.end_arr_cents), true, "/kpis#arr"),
        share_tile("NRR", ratio(now.and_then(|k| k.nrr)), ratio(before.and_then(|k| k.nrr)), "/kpis#nrr"),
        share_tile("GRR", ratio(now.and_then(|k| k.grr)), ratio(before.and_then(|k| k.grr)), "/kpis#nrr"),
        money_tile(
            "Churned ARR",
            cents(now, |k| k.churned_arr_cents),
            cents(before, |k| k.churned_arr_cents),
            false,
            "/kpis#arr",
        ),
        Tile {
            label: "Adoption",
            value: engine_share.map_or_else(|| "–".into(), |s| format!("{:.0}%", s * 100.0)),
            change: None,
            tone: "flat",
            href: "/journey",
        },
        Tile {
            label: "NPS",
            value: nps_now.map_or_else(|| "–".into(), |v| format!("{v:.0}")),
            change: nps_change.map(|c| signed(c, "")),
            tone: nps_change.map_or("flat", |c| tone(c, true)),
            href: "/kpis#nps",
        },
        Tile {
            label: "Open tasks",
            value: format!("{open_now:.0}"),
            change: Some(signed(open_now - open_before, "")),
            tone: tone(open_now - open_before, false),
            href: "/tasks",
        },
    ];
    Ok((current.period, tiles, lists))
}

/// What the engine says about today: worklist, movers, missed milestones, renewals at risk,
/// and the share of accounts past their value milestone.
struct EngineLists {
    worklist: Vec<WorkItem>,
    movers: Vec<Mover>,
    missed: Vec<Missed>,
    renewals: Vec<AccountRow>,
    adoption: Option<f64>,
    names: std::collections::HashMap<u64, String>,
}

fn engine_lists(engine: &Engine, task_accounts: &std::collections::HashSet<u64>) -> EngineLists {
    let today = today(engine);
    let tz = engine.workspace().time_zone().clone();
    let value_milestones: Vec<&str> = engine
        .workspace()
        .journey()
        .map(|j| j.stages.iter().flat_map(|s| s.milestones.iter()).filter(|m| m.value).map(|m| m.id.as_str()).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut missed = Vec::new();
    let mut movers = Vec::new();
    let mut reached_value = 0usize;
    let mut names = std::collections::HashMap::new();
    let mut max_arr: f64 = 0.0;
    for (id, a) in engine.accounts() {
        let r = row(engine, id, a, today);
        if task_accounts.contains(&id) {
            names.insert(id, r.name.clone());
        }
        max_arr = max_arr.max(r.arr.unwrap_or(0.0));
        if value_milestones.iter().any(|m| matches!(a.milestones.get(*m), Some(MilestoneStatus::Achieved(_)))) {
            reached_value += 1;
        }
        let mut recent_miss = None;
        for (m, status) in &a.milestones {
            if let MilestoneStatus::Missed(at) = status {
                let on = at.to_zoned(tz.clone()).date();
                if super::days_until(on, today) <= 14 {
                    missed.push(Missed { account_id: id, account: r.name.clone(), milestone: m.clone(), on });
                    recent_miss = Some(m.clone());
                }
            }
        }
        if let Some(change) = engine.health_trend(id, 7).filter(|c| c.abs() >= 1.0) {
            movers.push(Mover { account: r.clone(), change_7d: change });
        }
        rows.push((r, recent_miss, a.health.as_ref().and_then(|h| h.dragging.clone())));
    }
    let accounts = rows.len();
    let mut worklist = Vec::new();
    let mut renewals = Vec::new();
    for (r, recent_miss, dragging) in rows {
        let soon = r.renews_in_days.filter(|d| (0..=90).contains(d));
        if soon.is_some() && matches!(r.band, "red" | "yellow") {
            renewals.push(r.clone());
        }
        let at_risk = matches!(r.band, "red" | "yellow");
        if !(at_risk || recent_miss.is_some() || soon.is_some_and(|d| d <= 30)) {
            continue;
        }
        let health_need = r.health.map_or(0.5, |h| (100.0 - h.clamp(0.0, 100.0)) / 100.0);
        let arr_need = if max_arr > 0.0 { r.arr.unwrap_or(0.0) / max_arr } else { 0.0 };
        let renewal_need = soon.map_or(0.0, |d| (90 - d) as f64 / 90.0);
        let mut reasons = Vec::new();
        if at_risk {
            let drag = dragging.map(|(p, m)| format!(", dragged down by {p}/{m}")).unwrap_or_default();
            reasons.push(format!("health {} ({}){drag}", r.health_text(), r.band));
        }
        if let Some(m) = recent_miss {
            reasons.push(format!("missed the milestone {m}"));
        }
        if let Some(d) = soon {
            reasons.push(format!("renews {}", if d == 0 { "today".into() } else { format!("in {d} days") }));
        }
        if arr_need >= 0.5 {
            reasons.push(format!("{} ARR, among the largest", r.arr_text()));
        }
        worklist.push(WorkItem { account: r, need: health_need + arr_need + renewal_need, reasons });
    }
    worklist.sort_by(|a, b| b.need.total_cmp(&a.need).then(a.account.id.cmp(&b.account.id)));
    worklist.truncate(LIST * 2);
    movers.sort_by(|a, b| b.change_7d.abs().total_cmp(&a.change_7d.abs()).then(a.account.id.cmp(&b.account.id)));
    movers.truncate(LIST);
    missed.sort_by(|a, b| b.on.cmp(&a.on).then(a.account_id.cmp(&b.account_id)));
    missed.truncate(LIST);
    renewals.sort_by_key(|r| (r.renews_in_days, r.id));
    renewals.truncate(LIST);
    let adoption = (accounts > 0 && !value_milestones.is_empty()).then(|| reached_value as f64 / accounts as f64);
    EngineLists { worklist, movers, missed, renewals, adoption, names }
}

async fn program_alerts(
    state: &AppState,
    today: Date,
    wait: Wait,
    fresh: &mut Freshness,
) -> Result<Vec<ProgramAlert>, ApiError> {
    let mut alerts: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let paused = state.store.paused_programs().await?;
    for p in &paused {
        alerts.entry(p.program_id.clone()).or_default().push(format!("paused by {}", p.paused_by));
    }
    let mut dead: std::collections::BTreeMap<String, u64> = Default::default();
    for d in state.store.dead_letters(1000).await? {
        *dead.entry(d.program_id).or_default() += 1;
    }
    for (p, n) in dead {
        alerts.entry(p).or_default().push(format!("{n} dead letter(s)"));
    }
    let Some(ws) = crate::api::live_workspace(state).await else {
        return Ok(alerts.into_iter().map(|(program, reasons)| ProgramAlert { program, reasons }).collect());
    };
    let (current, _) = months(today)?;
    let (report, experiments) = tokio::join!(
        cached_reports::programs(state, Some(&ws), &current, None, wait),
        cached_reports::experiments(state, Some(&ws), &current, None, cairn_reports::experiments::DEFAULT_MDE, wait),
    );
    let (report, experiments) = (fresh.take(report?), fresh.take(experiments?));
    for p in report.iter().flat_map(|r| &r.programs) {
        let (sent, bounced): (u64, u64) = p.reach.iter().fold((0, 0), |(s, b), r| (s + r.sent, b + r.bounced));
        if sent >= 20 && bounced * 20 > sent {
            alerts.entry(p.program.clone()).or_default().push(format!("{bounced} of {sent} sends bounced"));
        }
    }
    for e in experiments.iter().flat_map(|x| &x.experiments) {
        if e.sample_ratio.as_ref().is_some_and(|s| s.mismatch) {
            alerts.entry(e.program.clone()).or_default().push("the split is broken (sample-ratio mismatch)".into());
        }
    }
    Ok(alerts.into_iter().map(|(program, reasons)| ProgramAlert { program, reasons }).collect())
}

/// The morning view's data.
/// The morning view's data: the tiles' and the program alerts' reports come from the
/// report cache, waiting as `wait` says, and `Freshness` tells how current they are.
pub(crate) async fn data(state: &AppState, wait: Wait) -> Result<(MorningView, Freshness), ApiError> {
    let mut fresh = Freshness::default();
    let open = state.store.open_tasks(None, None).await?;
    let task_accounts: std::collections::HashSet<u64> =
        open.iter().filter_map(|t| t.account_id).map(|a| a as u64).collect();
    let today = match &state.runtime {
        Some(rt) => rt.read(|live| today(&live.engine)).await,
        None => state.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date(),
    };
    let lists = async {
        // Polled first, it would hold the task for its pass before the reports' waits
        // start: it lets them start theirs.
        tokio::task::yield_now().await;
        match &state.runtime {
            Some(rt) => Some(rt.read(|live| engine_lists(&live.engine, &task_accounts)).await),
            None => None,
        }
    };
    // The tiles and the program alerts each wait up to `wait` for their reports, at once,
    // and the engine's pass over the accounts runs meanwhile.
    let mut alerts_fresh = Freshness::default();
    let (tiles, programs) = tokio::join!(
        tiles(state, today, lists, open.len(), wait, &mut fresh),
        program_alerts(state, today, wait, &mut alerts_fresh)
    );
    let ((period, tiles, lists), programs) = (tiles?, programs?);
    fresh.merge(alerts_fresh);
    let end_of_today = today
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .unwrap_or_else(|| state.clock.now());
    let no_workspace = lists.is_none();
    let lists = lists.unwrap_or(EngineLists {
        worklist: vec![],
        movers: vec![],
        missed: vec![],
        renewals: vec![],
        adoption: None,
        names: Default::default(),
    });
    let tasks_due = open
        .into_iter()
        .filter(|t| t.due_at.is_some_and(|d| d < end_of_today))
        .take(LIST)
        .map(|t| {
            let account = t.account_id.and_then(|a| lists.names.get(&(a as u64)).cloned());
            DueTask { task: t, account }
        })
        .collect();
    let view = MorningView {
        today,
        period,
        tiles,
        worklist: lists.worklist,
        movers: lists.movers,
        missed: lists.missed,
        renewals_at_risk: lists.renewals,
        tasks_due,
        programs,
        no_workspace,
    };
    Ok((view, fresh))
}

#[derive(Template)]
#[template(path = "morning.html")]
struct Page {
    chrome: Chrome,
    d: MorningView,
    fresh: Freshness,
}

/// `GET /`.
pub(crate) async fn page(State(state): State<AppState>, user: SignedIn) -> Result<Html<String>, UiError> {
    let (d, fresh) = data(&state, Wait::PAGE).await?;
    render(&Page { chrome: Chrome::new(&user, "/"), d, fresh })
}
