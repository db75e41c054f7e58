//! Programs: Reach, Effect and ROI of the enrollments made in a period (docs/metrics.md,
//! "Programs: Reach, Effect, ROI").
//!
//! - **Reach** per program, step and variant: the contacts sent to, and of those the
//!   contacts with each engagement (delivered, bounced, opened, clicked, unsubscribed,
//!   answered), each counted once per contact; delivered and bounced as rates of sent,
//!   the others as rates of delivered.
//! - **Effect**: goal conversion within the goal's window, treated against held out, with
//!   Wilson intervals, counting only enrollments whose window has fully elapsed on
//!   `as_of` (the others are counted as too recent and left out).
//! - **ROI**: retention and NRR at each enrolled account's next renewal after its
//!   enrollment (`cairn_measure::at_renewal`), enrolled accounts against held-out ones.
//!
//! The definitions (goal window, holdout share, the steps' variants) come from the checked
//! workspace; a program found in the data but not in the workspace is reported by id with
//! what the data allows (Reach; no goal window, so no Effect).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cairn_measure::Ratio;
use cairn_measure::at_renewal::{RetentionAtRenewal, retention_at_renewal};
use cairn_measure::stats::{Arm, Interval, wilson};
use cairn_store::{EngagementRecord, Enrollment, SendRecord, Store};
use cairn_workspace::{Program, Step, Workspace};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::Serialize;

use crate::{Query, ReportError, Result};

/// The confidence of every interval in the programs' reports.
pub const CONFIDENCE: f64 = 0.95;

/// `cairn report programs`.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramsReport {
    /// Enrollments made in this period are measured.
    pub period: cairn_measure::Period,
    /// What happened after it (sends, engagement, goals, renewals) is known up to this day.
    pub as_of: Date,
    pub programs: Vec<ProgramReport>,
}

/// One program's Reach, Effect and ROI.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramReport {
    pub program: String,
    pub name: Option<String>,
    /// Whether the workspace defines it (if not, only what the data allows is shown).
    pub in_workspace: bool,
    /// Enrollments made in the period.
    pub enrollments: u64,
    pub held_out: u64,
    pub reach: Vec<ReachRow>,
    /// Goal conversion: none when the program has no goal or is not in the workspace.
    pub effect: Option<Effect>,
    /// Why there is no Effect.
    pub no_effect: Option<String>,
    pub roi: Roi,
}

/// Reach of one step's variant: contacts, each counted once.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReachRow {
    pub step: String,
    /// The template sent, when the step splits (none: the step's only template).
    pub variant: Option<String>,
    pub sent: u64,
    pub delivered: u64,
    pub bounced: u64,
    pub opened: u64,
    pub clicked: u64,
    pub unsubscribed: u64,
    pub answered: u64,
    /// delivered / sent.
    pub delivery_rate: Option<Ratio>,
    /// bounced / sent.
    pub bounce_rate: Option<Ratio>,
    /// opened / delivered.
    pub open_rate: Option<Ratio>,
    /// clicked / delivered.
    pub click_rate: Option<Ratio>,
    /// unsubscribed / delivered.
    pub unsubscribe_rate: Option<Ratio>,
    /// answered / delivered.
    pub answer_rate: Option<Ratio>,
}

/// Goal conversion within the window, treated against held out.
#[derive(Debug, Clone, Serialize)]
pub struct Effect {
    /// The goal's window after enrollment, as the workspace writes it (`14d`).
    pub within: String,
    pub treated: GoalArm,
    pub held_out: GoalArm,
}

/// One group's goal conversion.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GoalArm {
    /// Enrollments in the group.
    pub enrolled: u64,
    /// Left out: their window was still open on `as_of`.
    pub too_recent: u64,
    /// Enrollments whose window has elapsed: the denominator.
    pub measured: u64,
    /// Of those, goal met within the window.
    pub converted: u64,
    pub rate: Option<Ratio>,
    /// Wilson score interval at [`CONFIDENCE`].
    pub interval: Option<Interval>,
}

/// Retention and NRR at the next renewal after enrollment, per account: an account is
/// enrolled when any of its enrollments in the period was treated, held out when all were
/// held out; its day is its first enrollment's (UTC).
#[derive(Debug, Clone, Serialize)]
pub struct Roi {
    pub enrolled: RetentionAtRenewal,
    pub held_out: RetentionAtRenewal,
    /// Enrollments that belong to no account (a contact without one): not in ROI.
    pub enrollments_without_account: u64,
}

/// What the programs' reports read, restricted to the query: the enrollments made in the
/// period up to `as_of` (of one program, of a segment's accounts, when asked), their sends
/// and engagement known on `as_of`, by program.
pub(crate) struct Activity {
    /// The end of `as_of` (the next day's start, UTC): nothing after it is known.
    pub as_of_end: Timestamp,
    pub programs: BTreeMap<String, ProgramActivity>,
    pub ledger: cairn_measure::Ledger,
}

/// One program's enrollments with their sends and engagement.
#[derive(Default)]
pub(crate) struct ProgramActivity {
    /// Each enrollment with its account (as the ledger names it).
    pub enrollments: Vec<(Enrollment, Option<String>)>,
    /// Sends by (enrollment, step).
    pub sends: HashMap<(i64, String), SendRecord>,
    /// Engagement kinds by (enrollment, step).
    pub engaged: HashMap<(i64, String), BTreeSet<String>>,
}

fn day_start(day: Date) -> Result<Timestamp> {
    day.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| ReportError::Invalid(format!("day {day}: {e}")))
}

fn next_day_start(day: Date) -> Result<Timestamp> {
    let next = day.checked_add(1.day()).map_err(|e| ReportError::Invalid(format!("the day after {day}: {e}")))?;
    day_start(next)
}

impl Activity {
    pub(crate) async fn load(
        store: &Store,
        workspace: Option<&Workspace>,
        query: &Query,
        program: Option<&str>,
    ) -> Result<Activity> {
        let as_of_end = next_day_start(query.as_of)?;
        let since = day_start(query.period.first())?;
        let until = next_day_start(query.period.last())?.min(as_of_end);
        let members = crate::revenue::members(store, workspace, query, query.period).await?;
        let ledger = crate::revenue::ledger(store).await?;
        let read = if since < until { store.program_activity(since, until).await? } else { Default::default() };
        let mut programs: BTreeMap<String, ProgramActivity> = BTreeMap::new();
        let mut of_enrollment: HashMap<i64, String> = HashMap::new();
        for m in read.enrollments {
            let e = m.enrollment;
            if program.is_some_and(|p| p != e.program_id) {
                continue;
            }
            let account = m.account_id.map(|a| a.to_string());
            if let Some(members) = &members
                && !account.as_ref().is_some_and(|a| members.contains(a))
            {
                continue;
            }
            of_enrollment.insert(e.id, e.program_id.clone());
            programs.entry(e.program_id.clone()).or_default().enrollments.push((e, account));
        }
        for s in read.sends {
            if s.entry.at >= as_of_end {
                continue;
            }
            if let Some(p) = of_enrollment.get(&s.entry.enrollment_id).and_then(|id| programs.get_mut(id)) {
                p.sends.insert((s.entry.enrollment_id, s.entry.step_id.clone()), s);
            }
        }
        for g in read.engagements {
            let EngagementRecord { enrollment_id, step_id, kind, at, .. } = g;
            if at >= as_of_end {
                continue;
            }
            if let Some(p) = of_enrollment.get(&enrollment_id).and_then(|id| programs.get_mut(id)) {
                p.engaged.entry((enrollment_id, step_id)).or_default().insert(kind);
            }
        }
        Ok(Activity { as_of_end, programs, ledger })
    }
}

/// A window as the workspace writes it: `14d`, `36h`, `90m`, `45s`.
fn window_text(d: SignedDuration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Whether an enrollment's goal window has fully elapsed on `as_of`, and whether it met
/// the goal within it; `None` while the window is open.
pub(crate) fn goal_outcome(e: &Enrollment, within: SignedDuration, as_of_end: Timestamp) -> Option<bool> {
    let closes = e.enrolled_at.checked_add(within).ok()?;
    (closes <= as_of_end).then(|| e.goal_met_at.is_some_and(|met| met <= closes))
}

/// The variant a send went out with, from its ledger detail.
pub(crate) fn sent_variant(send: &SendRecord) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&send.entry.detail)
        .ok()
        .and_then(|d| d.get("variant").and_then(|v| v.as_str()).map(str::to_string))
}

/// The program's send steps in the workspace's order (nested ones included).
pub(crate) fn send_steps(program: &Program) -> Vec<&cairn_workspace::SendStep> {
    program
        .all_steps()
        .into_iter()
        .filter_map(|s| match s {
            Step::Send(send) => Some(send),
            _ => None,
        })
        .collect()
}

/// Goal conversion of some enrollments.
pub(crate) fn goal_arm<'e>(
    enrollments: impl IntoIterator<Item = &'e Enrollment>,
    within: SignedDuration,
    as_of_end: Timestamp,
) -> GoalArm {
    let (mut enrolled, mut measured, mut converted) = (0, 0, 0);
    for e in enrollments {
        enrolled += 1;
        match goal_outcome(e, within, as_of_end) {
            None => {}
            Some(met) => {
                measured += 1;
                converted += u64::from(met);
            }
        }
    }
    GoalArm {
        enrolled,
        too_recent: enrolled - measured,
        measured,
        converted,
        rate: Ratio::new(converted, measured),
        interval: wilson(Arm { n: measured, conversions: converted }, CONFIDENCE),
    }
}

/// Retention at renewal of the enrolled and held-out accounts of a program's enrollments.
pub(crate) fn roi(activity: &ProgramActivity, ledger: &cairn_measure::Ledger, as_of: Date) -> Roi {
    // Per account: its first enrollment day, and whether any enrollment was treated.
    let mut accounts: BTreeMap<&str, (Date, bool)> = BTreeMap::new();
    let mut without_account = 0;
    for (e, account) in &activity.enrollments {
        let Some(account) = account else {
            without_account += 1;
            continue;
        };
        let day = e.enrolled_at.to_zoned(jiff::tz::TimeZone::UTC).date();
        let entry = accounts.entry(account.as_str()).or_insert((day, false));
        entry.0 = entry.0.min(day);
        entry.1 |= !e.holdout;
    }
    let group = |treated: bool| {
        retention_at_renewal(
            ledger,
            accounts.iter().filter(|(_, (_, t))| *t == treated).map(|(a, (day, _))| (*a, *day)),
            as_of,
        )
    };
    Roi { enrolled: group(true), held_out: group(false), enrollments_without_account: without_account }
}

fn reach(activity: &ProgramActivity, definition: Option<&Program>) -> Vec<ReachRow> {
    // Unique contacts per (step, variant) and kind; a send without a recipient counts
    // as its enrollment's.
    type Key = (String, Option<String>);
    let mut contacts: BTreeMap<Key, BTreeMap<&str, BTreeSet<String>>> = BTreeMap::new();
    for ((enrollment, step), send) in &activity.sends {
        if send.entry.outcome != "sent" {
            continue;
        }
        let who = send.contact_id.map_or_else(|| format!("enrollment {enrollment}"), |c| c.to_string());
        let kinds = contacts.entry((step.clone(), sent_variant(send))).or_default();
        kinds.entry("sent").or_default().insert(who.clone());
        for kind in activity.engaged.get(&(*enrollment, step.clone())).into_iter().flatten() {
            kinds.entry(kind.as_str()).or_default().insert(who.clone());
        }
    }
    // Steps in the workspace's order, then any others by id.
    let order: Vec<String> =
        definition.map(|p| p.all_steps().iter().map(|s| s.id().to_string()).collect()).unwrap_or_default();
    let rank = |step: &str| order.iter().position(|s| s == step).unwrap_or(order.len());
    let mut rows: Vec<ReachRow> = contacts
        .into_iter()
        .map(|((step, variant), kinds)| {
            let n = |kind: &str| kinds.get(kind).map_or(0, |s| s.len() as u64);
            let (sent, delivered) = (n("sent"), n("delivered"));
            ReachRow {
                sent,
                delivered,
                bounced: n("bounced"),
                opened: n("opened"),
                clicked: n("clicked"),
                unsubscribed: n("unsubscribed"),
                answered: n("answered"),
                delivery_rate: Ratio::new(delivered, sent),
                bounce_rate: Ratio::new(n("bounced"), sent),
                open_rate: Ratio::new(n("opened"), delivered),
                click_rate: Ratio::new(n("clicked"), delivered),
                unsubscribe_rate: Ratio::new(n("unsubscribed"), delivered),
                answer_rate: Ratio::new(n("answered"), delivered),
                step,
                variant,
            }
        })
        .collect();
    rows.sort_by(|a, b| rank(&a.step).cmp(&rank(&b.step)).then(a.step.cmp(&b.step)).then(a.variant.cmp(&b.variant)));
    rows
}

/// Reach, Effect and ROI of the programs' enrollments made in the query's period (of
/// `program` only, when given), with the definitions of `workspace` when there is one.
pub async fn programs(
    store: &Store,
    workspace: Option<&Workspace>,
    query: &Query,
    program: Option<&str>,
) -> Result<ProgramsReport> {
    let mut activity = Activity::load(store, workspace, query, program).await?;
    // Programs defined but without enrollments in the period are shown too, with zeros.
    for p in workspace.map(|ws| ws.programs()).unwrap_or_default() {
        if program.is_none_or(|wanted| wanted == p.id.as_str()) {
            activity.programs.entry(p.id.to_string()).or_default();
        }
    }
    let mut out = Vec::new();
    for (id, data) in &activity.programs {
        let definition = workspace.and_then(|ws| ws.programs().iter().find(|p| p.id.as_str() == id));
        let held_out = data.enrollments.iter().filter(|(e, _)| e.holdout).count() as u64;
        let effect = match definition {
            None => Err("not in the workspace: its goal window is unknown"),
            Some(p) => match &p.goal {
                None => Err("the program has no goal"),
                Some(goal) => Ok(Effect {
                    within: window_text(goal.within),
                    treated: goal_arm(
                        data.enrollments.iter().filter(|(e, _)| !e.holdout).map(|(e, _)| e),
                        goal.within,
                        activity.as_of_end,
                    ),
                    held_out: goal_arm(
                        data.enrollments.iter().filter(|(e, _)| e.holdout).map(|(e, _)| e),
                        goal.within,
                        activity.as_of_end,
                    ),
                }),
            },
        };
        out.push(ProgramReport {
            program: id.clone(),
            name: definition.and_then(|p| p.name.clone()),
            in_workspace: definition.is_some(),
            enrollments: data.enrollments.len() as u64,
            held_out,
            reach: reach(data, definition),
            no_effect: effect.as_ref().err().map(|e| e.to_string()),
            effect: effect.ok(),
            roi: roi(data, &activity.ledger, query.as_of),
        });
    }
    if let Some(p) = program
        && out.is_empty()
    {
        return Err(ReportError::Invalid(format!(
            "program `{p}` is neither in the workspace nor in the enrollments of {} to {}: see `cairn check` for the programs defined",
            query.period.first(),
            query.period.last()
        )));
    }
    Ok(ProgramsReport { period: query.period, as_of: query.as_of, programs: out })
}
