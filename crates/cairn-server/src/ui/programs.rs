//! `/programs` and `/programs/{id}`: every program with its reach this month; one
//! program's steps as a diagram with Reach and Effect on each (`cairn report programs`),
//! its A/B and holdout results with intervals and the sample-ratio warning
//! (`cairn report experiments`), the audience preview (`cairn program preview`) and
//! pause/resume (the runner skips a paused program: `Store::pause_program`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use cairn_reports::experiments::{Experiment, ExperimentKind};
use cairn_reports::programs::{ProgramReport, ReachRow};
use cairn_store::ProgramPause;
use cairn_workspace::Trigger;
use serde::Serialize;

use super::{Chrome, UiError, back_to, given, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::cached_reports as cached;
use crate::error::ApiError;
use crate::report_cache::{Freshness, Wait};

/// A program in the list.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProgramLine {
    pub id: String,
    pub name: Option<String>,
    pub subject: &'static str,
    pub trigger: &'static str,
    pub steps: usize,
    pub holdout_percent: f64,
    pub enrollments: u64,
    pub sent: u64,
    pub paused: Option<ProgramPause>,
}

/// The programs list's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProgramsView {
    pub period: cairn_measure::Period,
    pub programs: Vec<ProgramLine>,
}

fn trigger_kind(t: &Trigger) -> &'static str {
    match t {
        Trigger::Transition(_) => "transition",
        Trigger::Event(_) => "event",
        Trigger::Schedule(_) => "schedule",
        Trigger::Date(_) => "date",
    }
}

fn subject(s: cairn_rules::Subject) -> &'static str {
    match s {
        cairn_rules::Subject::Account => "account",
        cairn_rules::Subject::Contact => "contact",
    }
}

async fn workspace(state: &AppState) -> Result<std::sync::Arc<cairn_workspace::Workspace>, ApiError> {
    crate::api::live_workspace(state).await.ok_or_else(|| {
        ApiError::NotFound("no workspace is loaded: start the server with `cairn serve --workspace DIR`".into())
    })
}

/// Every program with this month's reach (the figures from the report cache: none while
/// they are computed the first time).
pub(crate) async fn list_data(state: &AppState, wait: Wait) -> Result<(ProgramsView, Freshness), ApiError> {
    let ws = workspace(state).await?;
    let today = state.clock.now().to_zoned(ws.time_zone().clone()).date();
    let (current, _) = super::morning::months(today)?;
    let mut fresh = Freshness::default();
    let report = fresh.take(cached::programs(state, Some(&ws), &current, None, wait).await?);
    let report = report.as_ref().map_or(&[][..], |r| &r.programs[..]);
    let paused = state.store.paused_programs().await?;
    let programs = ws
        .programs()
        .iter()
        .map(|p| {
            let r = report.iter().find(|r| r.program == p.id.as_str());
            ProgramLine {
                id: p.id.as_str().to_string(),
                name: p.name.clone(),
                subject: subject(p.subject),
                trigger: trigger_kind(&p.trigger),
                steps: p.all_steps().len(),
                holdout_percent: p.holdout_percent,
                enrollments: r.map_or(0, |r| r.enrollments),
                sent: r.map_or(0, |r| r.reach.iter().map(|x| x.sent).sum()),
                paused: paused.iter().find(|x| x.program_id == p.id.as_str()).cloned(),
            }
        })
        .collect();
    Ok((ProgramsView { period: current.period, programs }, fresh))
}

/// A step in the diagram.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StepBox {
    pub id: String,
    pub kind: &'static str,
    /// Reach rows of this step (one per variant of a split).
    pub reach: Vec<ReachRow>,
}

impl StepBox {
    /// Reach in a line per row: "120 sent · 97% delivered · 41% opened · 9% clicked".
    pub fn reach_lines(&self) -> Vec<String> {
        let pct = |r: Option<cairn_measure::Ratio>| r.map_or("–".into(), |r| r.percent_one_decimal());
        self.reach
            .iter()
            .map(|r| {
                let variant = r.variant.as_deref().map(|v| format!("{v}: ")).unwrap_or_default();
                format!(
                    "{variant}{} sent · {} delivered · {} opened · {} clicked",
                    r.sent,
                    pct(r.delivery_rate),
                    pct(r.open_rate),
                    pct(r.click_rate)
                )
            })
            .collect()
    }
}

/// An experiment's results as lines of text.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ExperimentView {
    pub title: String,
    pub arms: Vec<String>,
    /// The sample-ratio warning, when the split is broken.
    pub warning: Option<String>,
    pub results: Vec<String>,
}

fn experiment_view(e: &Experiment) -> ExperimentView {
    let title = match &e.kind {
        ExperimentKind::Split { step } => format!("A/B split on step {step}"),
        ExperimentKind::Holdout => "Holdout: treated against held out".to_string(),
    };
    let arms = e
        .arms
        .iter()
        .map(|a| match a.share {
            Some(s) => format!("{}: {} ({:.0}% configured)", a.arm, a.n, s * 100.0),
            None => format!("{}: {}", a.arm, a.n),
        })
        .collect();
    let warning = match (&e.sample_ratio, &e.withheld) {
        (Some(s), _) if s.mismatch => Some(format!(
            "Sample-ratio mismatch (χ² p = {:.4}): the arms are not the sizes configured, so no verdict is given",
            s.p_value
        )),
        (_, Some(w)) => Some(w.clone()),
        _ => None,
    };
    let mut results = Vec::new();
    for m in &e.metrics {
        for arm in &m.arms {
            let rate = arm.rate.map_or("–".into(), |r| format!("{:.1}%", r * 100.0));
            let interval = arm
                .interval
                .as_ref()
                .map_or(String::new(), |i| format!(" [{:.1}%, {:.1}%]", i.low * 100.0, i.high * 100.0));
            results.push(format!("{:?} · {}: {} of {} = {rate}{interval}", m.metric, arm.arm, arm.conversions, arm.n));
        }
        for c in &m.comparisons {
            let diff = c.comparison.as_ref().map_or(String::new(), |x| {
                format!(
                    ": {:+.1} pts [{:+.1}, {:+.1}], p = {:.3}",
                    x.difference * 100.0,
                    x.difference_interval.low * 100.0,
                    x.difference_interval.high * 100.0,
                    x.p_value
                )
            });
            results.push(format!("{:?} · {} vs {}{diff} — {}", m.metric, c.treatment, c.control, c.verdict_text()));
        }
    }
    ExperimentView { title, arms, warning, results }
}

/// One program's page data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProgramView {
    pub id: String,
    pub name: Option<String>,
    pub subject: &'static str,
    pub holdout_percent: f64,
    pub period: cairn_measure::Period,
    pub steps: Vec<StepBox>,
    pub report: Option<ProgramReport>,
    /// The goal's effect, in words.
    pub effect: Option<String>,
    pub experiments: Vec<ExperimentView>,
    /// The trigger as written.
    pub trigger: String,
    /// The audience now (none while it is computed the first time).
    pub preview: Option<cairn_programs::Preview>,
    pub paused: Option<ProgramPause>,
}

/// One program's data; 404 naming the programs for an unknown id. Reach, Effect and the
/// experiments and the audience preview come from the report cache (empty while computed
/// the first time); the pause is read now.
pub(crate) async fn data(state: &AppState, id: &str, wait: Wait) -> Result<(ProgramView, Freshness), ApiError> {
    let ws = workspace(state).await?;
    let Some(program) = ws.programs().iter().find(|p| p.id.as_str() == id).cloned() else {
        let ids: Vec<&str> = ws.programs().iter().map(|p| p.id.as_str()).collect();
        return Err(ApiError::NotFound(format!("no program `{id}`; the workspace has: {}", ids.join(", "))));
    };
    let today = state.clock.now().to_zoned(ws.time_zone().clone()).date();
    let (current, _) = super::morning::months(today)?;
    let (report, experiments, preview) = tokio::join!(
        cached::programs(state, Some(&ws), &current, Some(id), wait),
        cached::experiments(state, Some(&ws), &current, Some(id), cairn_reports::experiments::DEFAULT_MDE, wait),
        cached::program_preview(state, &ws, &program, today, wait)
    );
    let mut fresh = Freshness::default();
    let (report, experiments) = (fresh.take(report?), fresh.take(experiments?));
    let preview = fresh.take(preview?).map(|p| (*p).clone());
    let report = report.and_then(|r| r.programs.iter().find(|r| r.program == id).cloned());
    let steps = program
        .all_steps()
        .iter()
        .map(|s| StepBox {
            id: s.id().as_str().to_string(),
            kind: s.kind(),
            reach: report
                .as_ref()
                .map(|r| r.reach.iter().filter(|x| x.step == s.id().as_str()).cloned().collect())
                .unwrap_or_default(),
        })
        .collect();
    let effect = report.as_ref().and_then(|r| match (&r.effect, &r.no_effect) {
        (Some(e), _) => {
            let rate = |a: &cairn_reports::programs::GoalArm| a.rate.map_or("–".into(), |r| r.percent_one_decimal());
            Some(format!(
                "Goal within {}: treated {} of {} ({}), held out {} of {} ({})",
                e.within,
                e.treated.converted,
                e.treated.measured,
                rate(&e.treated),
                e.held_out.converted,
                e.held_out.measured,
                rate(&e.held_out)
            ))
        }
        (None, Some(why)) => Some(why.clone()),
        _ => None,
    });
    let paused = state.store.paused_programs().await?.into_iter().find(|p| p.program_id == id);
    let view = ProgramView {
        id: id.to_string(),
        name: program.name.clone(),
        subject: subject(program.subject),
        holdout_percent: program.holdout_percent,
        period: current.period,
        steps,
        report,
        effect,
        experiments: experiments.map(|e| e.experiments.iter().map(experiment_view).collect()).unwrap_or_default(),
        trigger: cairn_programs::trigger_text(&program.trigger),
        preview,
        paused,
    };
    Ok((view, fresh))
}

#[derive(Template)]
#[template(path = "programs.html")]
struct ListPage {
    chrome: Chrome,
    d: ProgramsView,
    fresh: Freshness,
}

#[derive(Template)]
#[template(path = "program.html")]
struct Page {
    chrome: Chrome,
    d: ProgramView,
    fresh: Freshness,
}

/// `GET /programs`.
pub(crate) async fn list(State(state): State<AppState>, user: SignedIn) -> Result<Html<String>, UiError> {
    let (d, fresh) = list_data(&state, Wait::PAGE).await?;
    render(&ListPage { chrome: Chrome::new(&user, "/programs"), d, fresh })
}

/// `GET /programs/{id}`.
pub(crate) async fn page(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let (d, fresh) = data(&state, &id, Wait::PAGE).await?;
    render(&Page { chrome: Chrome::new(&user, "/programs"), d, fresh })
}

/// The default period of a dry run: the last 90 days, up to today.
const DRY_RUN_DAYS: i64 = 90;

#[derive(Template)]
#[template(path = "dry_run.html")]
struct DryRunPage {
    chrome: Chrome,
    id: String,
    from: String,
    to: String,
    run: Option<cairn_programs::DryRun>,
    error: Option<String>,
}

impl DryRunPage {
    /// A step's outcomes in words: `sent 40 · skipped_cap 2`.
    fn outcomes(load: &cairn_programs::dry_run::StepLoad) -> String {
        load.outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(" · ")
    }
}

/// `GET /programs/{id}/dry-run?from=&to=`: the form, and with a period the dry run over
/// it (`cairn program preview ID --from --to`): the log replayed with the program in a
/// scratch database, nothing sent. A bad period is said above the form (400).
pub(crate) async fn dry_run_page(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<crate::api::DryRunQuery>,
) -> Result<Response, UiError> {
    let ws = known(&state, &id).await?;
    let today = state.clock.now().to_zoned(ws.time_zone().clone()).date();
    let back = today.checked_sub(jiff::Span::new().days(DRY_RUN_DAYS)).unwrap_or(today);
    let from = given(&q.from).map_or_else(|| back.to_string(), str::to_string);
    let to = given(&q.to).map_or_else(|| today.to_string(), str::to_string);
    let (run, error, status) = if given(&q.from).is_some() || given(&q.to).is_some() {
        match crate::api::dry_run(&state, &id, &from, &to).await {
            Ok(r) => (Some(r), None, StatusCode::OK),
            Err(ApiError::BadRequest(m)) => (None, Some(m), StatusCode::BAD_REQUEST),
            Err(e) => return Err(e.into()),
        }
    } else {
        (None, None, StatusCode::OK)
    };
    let html = render(&DryRunPage { chrome: Chrome::new(&user, "/programs"), id, from, to, run, error })?;
    Ok((status, html).into_response())
}

/// The loaded workspace, when it defines program `id`.
async fn known(state: &AppState, id: &str) -> Result<std::sync::Arc<cairn_workspace::Workspace>, UiError> {
    let ws = workspace(state).await?;
    if ws.programs().iter().any(|p| p.id.as_str() == id) {
        Ok(ws)
    } else {
        Err(UiError(ApiError::NotFound(format!("no program `{id}`"))))
    }
}

/// `POST /programs/{id}/pause`.
pub(crate) async fn pause(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    known(&state, &id).await?;
    state.store.pause_program(&id, &user.email, state.clock.now()).await?;
    crate::audit::record(&state, &user.actor(), crate::audit::AuditAction::ProgramPaused, &id, serde_json::json!({}))
        .await;
    Ok(back_to(&format!("/programs/{id}")))
}

/// `POST /programs/{id}/resume`.
pub(crate) async fn resume(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    known(&state, &id).await?;
    state.store.resume_program(&id).await?;
    crate::audit::record(&state, &user.actor(), crate::audit::AuditAction::ProgramResumed, &id, serde_json::json!({}))
        .await;
    Ok(back_to(&format!("/programs/{id}")))
}
