//! `/segments`: every segment with its size; one segment's members and size over the last
//! year (rebuilt from the stored segment transitions); and the rule box. A rule typed
//! there is checked as `cairn check` checks a rule given on the command line
//! (`Workspace::with_probe`: every error at `--rule:line:col`, with a did-you-mean) and
//! previewed: the log replayed with the rule (`Runtime::evaluate`, writing nothing) gives
//! how many accounts it holds for now and a sample. `/segments/check` answers the same as
//! JSON for `app.js`, which calls it as the user types; without JavaScript the form's
//! submit button renders the page with the result.

use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::Html;
use cairn_engine::SubjectRef;
use cairn_measure::PeriodKind;
use cairn_rules::Value;
use cairn_runtime::views::{self, SegmentSummary};
use cairn_store::SubjectKind;
use cairn_workspace::{ProbeMilestone, Workspace};
use serde::{Deserialize, Serialize};

use super::chart::{self, Chart, Series, Unit};
use super::{Chrome, UiError, given, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::cached_reports as cached;
use crate::error::ApiError;
use crate::report_cache::{Freshness, Wait};

/// Members listed, and sampled by the rule box.
const MEMBERS_SHOWN: usize = 50;
const SAMPLE: usize = 10;

/// A member, linked.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Member {
    pub label: String,
    pub href: String,
}

/// What the rule box says about a rule.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuleCheck {
    pub ok: bool,
    /// Each problem as `--rule:line:col: message (help)`.
    pub diagnostics: Vec<String>,
    pub of: &'static str,
    /// Accounts the rule holds for now.
    pub count: usize,
    pub of_total: usize,
    pub sample: Vec<Member>,
    /// The segment as YAML to paste into segments.yaml.
    pub yaml: String,
}

/// The segments page's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SegmentsView {
    pub segments: Vec<SegmentSummary>,
    /// The segment picked (`?segment=`), with its members and size by month.
    pub selected: Option<String>,
    pub members: Vec<Member>,
    pub member_count: usize,
    pub size_by_month: Vec<(String, usize)>,
    /// The rule in the box (`?rule=`) and its check.
    pub rule: String,
    pub check: Option<RuleCheck>,
}

impl SegmentsView {
    /// The size-over-time chart of the selected segment.
    pub fn size_chart(&self) -> Option<Chart> {
        let name = self.selected.as_deref()?;
        if self.size_by_month.is_empty() {
            return None;
        }
        let x: Vec<String> = self.size_by_month.iter().map(|(m, _)| m.clone()).collect();
        let values = self.size_by_month.iter().map(|(_, n)| Some(*n as f64)).collect();
        Some(chart::line(
            &format!("Members of {name} at each month's start"),
            &x,
            &[Series { name: name.to_string(), values }],
            Unit::Number,
            true,
            true,
        ))
    }
}

/// The page's query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SegmentsQuery {
    pub segment: Option<String>,
    pub rule: Option<String>,
}

fn name_of(engine: &cairn_engine::Engine, s: SubjectRef) -> Member {
    match s {
        SubjectRef::Account(id) => {
            let label = match engine.account(id).and_then(|a| a.traits.get("name")) {
                Some(Value::String(n)) => n.to_string(),
                _ => format!("account {id}"),
            };
            Member { label, href: format!("/accounts/{id}") }
        }
        SubjectRef::Contact(id) => {
            let c = engine.contact(id);
            let text = |k: &str| match c.and_then(|c| c.traits.get(k)) {
                Some(Value::String(n)) => Some(n.to_string()),
                _ => None,
            };
            let label = text("name").or_else(|| text("email")).unwrap_or_else(|| format!("contact {id}"));
            let href = c.and_then(|c| c.account).map_or_else(|| "/accounts".into(), |a| format!("/accounts/{a}"));
            Member { label, href }
        }
    }
}

fn yaml(rule: &str) -> String {
    let quoted = rule.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ");
    format!("segments:\n  - id: my_segment\n    of: account\n    where: \"{quoted}\"\n")
}

/// Checks `rule` against the live definitions and previews it; `None` for an empty rule.
pub(crate) async fn check_rule(state: &AppState, rule: &str) -> Result<RuleCheck, ApiError> {
    let rt = crate::api::runtime(state)?;
    let ws: Arc<Workspace> = rt.read(|live| live.engine.workspace_arc().clone()).await;
    let probe = ProbeMilestone { rule: rule.to_string(), within: jiff::SignedDuration::from_hours(24) };
    let failed = |diagnostics: Vec<String>| RuleCheck {
        ok: false,
        diagnostics,
        of: "account",
        count: 0,
        of_total: 0,
        sample: vec![],
        yaml: String::new(),
    };
    if ws.journey().is_none() {
        return Ok(failed(vec![
            "the rule box checks a rule as a milestone does, and this workspace has no journey: add one".into(),
        ]));
    }
    let (probe_ws, id) = match ws.with_probe(&probe) {
        Ok(x) => x,
        Err(diagnostics) => return Ok(failed(diagnostics.iter().map(|d| d.to_string()).collect())),
    };
    let probe_ws = Arc::new(probe_ws);
    let Some(compiled) = probe_ws
        .journey()
        .and_then(|j| j.stages.iter().flat_map(|s| s.milestones.iter()).find(|m| m.id.as_str() == id))
        .map(|m| m.rule.clone())
    else {
        return Err(ApiError::Internal("the probe milestone is missing from the checked workspace".into()));
    };
    // The rule may need aggregates the live engine does not keep: replay the log with it,
    // writing nothing, as `cairn check --rule` does.
    let live = cairn_runtime::Runtime::evaluate(&state.store, state.clock.as_ref(), probe_ws)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let engine = &live.engine;
    let mut members = Vec::new();
    let mut total = 0;
    for (a, _) in engine.accounts() {
        total += 1;
        let subject = SubjectRef::Account(a);
        if matches!(engine.evaluate_rule(subject, &compiled, None), Some(Value::Bool(true))) {
            members.push(subject);
        }
    }
    let sample = members.iter().take(SAMPLE).map(|s| name_of(engine, *s)).collect();
    Ok(RuleCheck {
        ok: true,
        diagnostics: vec![],
        of: "account",
        count: members.len(),
        of_total: total,
        sample,
        yaml: yaml(rule),
    })
}

/// The segments page's data; the selected segment's size by month comes from the report
/// cache (empty while it is computed the first time).
pub(crate) async fn data(
    state: &AppState,
    q: &SegmentsQuery,
    wait: Wait,
) -> Result<(SegmentsView, Freshness), ApiError> {
    let rt = crate::api::runtime(state)?;
    let selected = given(&q.segment).map(str::to_string);
    let (segments, members, kind, tz) = rt
        .read(|live| {
            let engine = &live.engine;
            let segments = views::segments(engine);
            let kind = selected
                .as_deref()
                .and_then(|s| segments.iter().find(|x| x.id == s))
                .map(|s| if s.of == "contact" { SubjectKind::Contact } else { SubjectKind::Account });
            let members = selected
                .as_deref()
                .and_then(|s| views::segment_members(engine, s))
                .map(|m| (m.len(), m.into_iter().take(MEMBERS_SHOWN).map(|s| name_of(engine, s)).collect::<Vec<_>>()));
            (segments, members, kind, engine.workspace().time_zone().clone())
        })
        .await;
    if let (Some(s), None) = (&selected, kind) {
        let ids: Vec<&str> = segments.iter().map(|s| s.id.as_str()).collect();
        return Err(ApiError::NotFound(format!("no segment `{s}`: the segments are {}", ids.join(", "))));
    }
    let mut size_by_month = Vec::new();
    let mut fresh = Freshness::default();
    if let (Some(s), Some(kind), Some(ws)) = (&selected, kind, crate::api::live_workspace(state).await) {
        let today = state.clock.now().to_zoned(tz).date();
        let starts = month_starts(today)?;
        let sizes = cached::segment_sizes_by_month(state, &ws, s, kind, starts, wait).await?;
        size_by_month = fresh.take(sizes).map(|v| (*v).clone()).unwrap_or_default();
    }
    let rule = q.rule.clone().unwrap_or_default();
    let check = match rule.trim() {
        "" => None,
        r => Some(check_rule(state, r).await?),
    };
    let (member_count, members) = members.unwrap_or((0, vec![]));
    Ok((SegmentsView { segments, selected, members, member_count, size_by_month, rule, check }, fresh))
}

/// The first days of the last twelve months, oldest first (the current month's last).
fn month_starts(today: jiff::civil::Date) -> Result<Vec<jiff::civil::Date>, ApiError> {
    let (current, _) = super::morning::months(today)?;
    let mut month = cairn_measure::Period::containing(PeriodKind::Month, current.period.first());
    let mut starts = Vec::new();
    for _ in 0..12 {
        starts.push(month.first());
        match month.day_before() {
            Some(d) => month = cairn_measure::Period::containing(PeriodKind::Month, d),
            None => break,
        }
    }
    starts.reverse();
    Ok(starts)
}

#[derive(Template)]
#[template(path = "segments.html")]
struct Page {
    chrome: Chrome,
    d: SegmentsView,
    fresh: Freshness,
}

/// `GET /segments`.
pub(crate) async fn page(
    State(state): State<AppState>,
    user: SignedIn,
    Query(q): Query<SegmentsQuery>,
) -> Result<Html<String>, UiError> {
    let (d, fresh) = data(&state, &q, Wait::PAGE).await?;
    render(&Page { chrome: Chrome::new(&user, "/segments"), d, fresh })
}

/// The rule box's query.
#[derive(Debug, Deserialize)]
pub(crate) struct CheckQuery {
    rule: Option<String>,
}

/// `GET /segments/check?rule=…`: the rule box's check and preview as JSON.
pub(crate) async fn check(
    State(state): State<AppState>,
    Query(q): Query<CheckQuery>,
) -> Result<Json<RuleCheck>, ApiError> {
    let rule = q.rule.unwrap_or_default();
    if rule.trim().is_empty() {
        return Ok(Json(RuleCheck {
            ok: false,
            diagnostics: vec!["type a rule, e.g. count('report_created', 30d) >= 3".into()],
            of: "account",
            count: 0,
            of_total: 0,
            sample: vec![],
            yaml: String::new(),
        }));
    }
    Ok(Json(check_rule(&state, &rule).await?))
}
