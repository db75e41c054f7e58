//! What really happened, brought into the scratch store: seeded up to the start of the
//! period, then pass by pass.
//!
//! - Events, as the real engine tailed them: in `seq` order, each once its `received_at`
//!   has passed (a later event waits behind an earlier one, as a tail by `seq` does).
//!   What cairn itself wrote about the program's replayed enrollments (their sends, tasks
//!   and engagement events) is left out: the dry run writes its own.
//! - Consent changes and suppressions, at the time they were recorded.
//! - The sends of other programs, and of the program's enrollments from before the period,
//!   recorded as outside sends at their time, so frequency caps count them.
//! - The program's enrollments from before the period, copied as they stood at its start
//!   (re-entry rules read them) and ended when they really ended.
//! - Engagement recorded on the program's real enrollments in the period (opens, clicks,
//!   answers), replayed onto the dry run's enrollment of the same subject and instant,
//!   when the dry run sent that step too; otherwise counted as not matched.

use std::collections::{HashMap, HashSet, VecDeque};

use cairn_store::{EngagementRecord, Enrollment, EnrollmentStatus, RawEvent, SentRecord, Store, SubjectKind};
use cairn_workspace::{Program, Workspace};
use jiff::{SignedDuration, Timestamp};

use super::DryRunError;
use crate::engage::{self, EngagementInput, EngagementKind};

/// Events read from the real log per query.
const EVENTS_PER_READ: u32 = 10_000;

/// The history still to bring in, and what was brought.
pub(super) struct History {
    program: String,
    /// The program's real enrollments made in the period, by real id.
    replayed: HashMap<i64, Enrollment>,
    /// Engagement on them, in time order.
    engagements: VecDeque<EngagementRecord>,
    /// Copied enrollments that ended after the start: (when, id, how).
    endings: VecDeque<(Timestamp, i64, EnrollmentStatus)>,
    /// Outside sends in time order.
    sends: VecDeque<SentRecord>,
    /// The real log: the last seq read and what was read but is not due yet.
    cursor: i64,
    buffer: VecDeque<RawEvent>,
    exhausted: bool,
    /// The previous pass.
    last: Timestamp,
    /// The dry run's enrollments by (subject, instant), as last read.
    matches: HashMap<(SubjectKind, i64, Timestamp), i64>,
    /// Whether the program has real enrollments at all (it ran before).
    pub(super) ran_before: bool,
    /// Engagements replayed onto the dry run's enrollments.
    pub(super) engagements_replayed: u64,
    /// Engagements whose send the dry run did not make.
    pub(super) engagements_unmatched: u64,
}

impl History {
    /// Seeds `scratch` with what `real` held at `start`.
    pub(super) async fn seed(
        real: &Store,
        scratch: &Store,
        ws: &Workspace,
        program: &str,
        start: Timestamp,
        to: Timestamp,
    ) -> Result<History, DryRunError> {
        scratch.write_directory(&real.read_directory(start).await?).await?;
        scratch.write_guard_rail_changes(&real.read_guard_rail_changes(Timestamp::MIN, start).await?).await?;
        let mut before = Vec::new();
        let mut endings = Vec::new();
        let mut replayed = HashMap::new();
        let all = real.program_enrollments(program).await?;
        let ran_before = !all.is_empty();
        for e in all {
            if e.enrolled_at <= start {
                let mut copy = e.clone();
                if let Some(ended) = e.ended_at.filter(|t| *t > start) {
                    copy.status = EnrollmentStatus::Active;
                    copy.ended_at = None;
                    endings.push((ended, e.id, e.status));
                }
                copy.goal_met_at = e.goal_met_at.filter(|t| *t <= start);
                before.push(copy);
            } else if e.enrolled_at < to {
                replayed.insert(e.id, e);
            }
        }
        scratch.copy_enrollments(&before).await?;
        endings.sort_by_key(|(at, id, _)| (*at, *id));
        let from = start.checked_add(SignedDuration::from_millis(1)).unwrap_or(start);
        let mut engagements: Vec<EngagementRecord> = if replayed.is_empty() {
            Vec::new()
        } else {
            real.program_activity(from, to)
                .await?
                .engagements
                .into_iter()
                .filter(|g| replayed.contains_key(&g.enrollment_id))
                .collect()
        };
        engagements.sort_by(|a, b| {
            (a.at, a.enrollment_id, &a.step_id, &a.kind).cmp(&(b.at, b.enrollment_id, &b.step_id, &b.kind))
        });
        // Sends as far back as the longest frequency cap's window looks.
        let lookback = ws.guardrails().frequency_caps.values().map(|c| c.per).max().unwrap_or(SignedDuration::ZERO);
        let since = start.checked_sub(lookback).unwrap_or(start);
        let until = to.checked_add(SignedDuration::from_hours(24)).unwrap_or(to);
        let sends: VecDeque<SentRecord> = real
            .sent_between(since, until)
            .await?
            .into_iter()
            .filter(|s| !replayed.contains_key(&s.enrollment_id))
            .collect();
        let mut history = History {
            program: program.to_string(),
            replayed,
            engagements: engagements.into(),
            endings: endings.into(),
            sends,
            cursor: 0,
            buffer: VecDeque::new(),
            exhausted: false,
            last: start,
            matches: HashMap::new(),
            ran_before,
            engagements_replayed: 0,
            engagements_unmatched: 0,
        };
        history.record_sends(scratch, start).await?;
        history.append_events(real, scratch, start).await?;
        Ok(history)
    }

    /// Brings in what happened in (last pass, `t`].
    pub(super) async fn bring_in(
        &mut self,
        real: &Store,
        scratch: &Store,
        ws: &Workspace,
        program: &Program,
        t: Timestamp,
    ) -> Result<(), DryRunError> {
        while let Some((at, id, status)) = self.endings.front().copied().filter(|(at, ..)| *at <= t) {
            scratch.set_enrollment_end(id, status, at).await?;
            self.endings.pop_front();
        }
        let changes = real.read_guard_rail_changes(self.last, t).await?;
        if !changes.is_empty() {
            scratch.write_guard_rail_changes(&changes).await?;
        }
        self.record_sends(scratch, t).await?;
        self.replay_engagements(scratch, ws, program, t).await?;
        self.append_events(real, scratch, t).await?;
        self.last = t;
        Ok(())
    }

    async fn record_sends(&mut self, scratch: &Store, t: Timestamp) -> Result<(), DryRunError> {
        let due = self.sends.iter().take_while(|s| s.at <= t).count();
        if due > 0 {
            let now: Vec<SentRecord> = self.sends.drain(..due).collect();
            scratch.record_outside_sends(&now).await?;
        }
        Ok(())
    }

    /// Appends the real log's events received by `t`, in `seq` order, leaving out what
    /// cairn wrote about the replayed enrollments.
    async fn append_events(&mut self, real: &Store, scratch: &Store, t: Timestamp) -> Result<(), DryRunError> {
        loop {
            if self.buffer.is_empty() && !self.exhausted {
                let read = real.raw_events_after(self.cursor, EVENTS_PER_READ).await?;
                self.exhausted = read.len() < EVENTS_PER_READ as usize;
                if let Some(last) = read.last() {
                    self.cursor = last.seq;
                }
                self.buffer.extend(read);
            }
            let due = self.buffer.iter().take_while(|e| e.message.received_at <= t).count();
            if due == 0 {
                return Ok(());
            }
            let batch: Vec<RawEvent> = self.buffer.drain(..due).collect();
            let mut run: Vec<cairn_core::tracking::TrackingMessage> = Vec::new();
            let mut source: Option<String> = None;
            for e in batch {
                if self.written_by_replay(&e) {
                    continue;
                }
                if source.as_deref() != Some(e.source.as_str()) {
                    if let Some(s) = &source {
                        scratch.append(s, &run).await?;
                    }
                    run.clear();
                    source = Some(e.source.clone());
                }
                run.push(e.message);
            }
            if let Some(s) = &source
                && !run.is_empty()
            {
                scratch.append(s, &run).await?;
            }
            if !self.buffer.is_empty() {
                return Ok(());
            }
        }
    }

    /// Whether cairn wrote `e` about one of the replayed enrollments (a send, a task, an
    /// engagement): the dry run writes its own.
    fn written_by_replay(&self, e: &RawEvent) -> bool {
        if e.source != "cairn" || self.replayed.is_empty() {
            return false;
        }
        let Some(props) = e.message.properties.as_deref() else { return false };
        let Ok(props) = serde_json::from_str::<serde_json::Value>(props) else { return false };
        props.get("program").and_then(serde_json::Value::as_str) == Some(self.program.as_str())
            && props
                .get("enrollment_id")
                .and_then(serde_json::Value::as_i64)
                .is_some_and(|id| self.replayed.contains_key(&id))
    }

    /// Records the real engagement due by `t` on the dry run's matching enrollments.
    async fn replay_engagements(
        &mut self,
        scratch: &Store,
        ws: &Workspace,
        program: &Program,
        t: Timestamp,
    ) -> Result<(), DryRunError> {
        let due = self.engagements.iter().take_while(|g| g.at <= t).count();
        if due == 0 {
            return Ok(());
        }
        let now: Vec<EngagementRecord> = self.engagements.drain(..due).collect();
        let mut refreshed = false;
        let mut seen: HashSet<(i64, String, String)> = HashSet::new();
        for g in now {
            let Some(real) = self.replayed.get(&g.enrollment_id) else { continue };
            let key = (real.subject_kind, real.subject_id, real.enrolled_at);
            if !self.matches.contains_key(&key) && !refreshed {
                self.matches = scratch
                    .program_enrollments(program.id.as_str())
                    .await?
                    .into_iter()
                    .map(|e| ((e.subject_kind, e.subject_id, e.enrolled_at), e.id))
                    .collect();
                refreshed = true;
            }
            let Some(mine) = self.matches.get(&key).copied() else {
                self.engagements_unmatched += 1;
                continue;
            };
            let sent = scratch.ledger_entry(mine, &g.step_id).await?.filter(|l| l.outcome == "sent");
            let Some(sent) = sent else {
                self.engagements_unmatched += 1;
                continue;
            };
            let Some(kind) = kind_of(&g.kind) else { continue };
            if !seen.insert((mine, g.step_id.clone(), g.kind.clone())) {
                continue;
            }
            let detail: serde_json::Value = serde_json::from_str(&sent.detail).unwrap_or_default();
            let contact = match real.subject_kind {
                SubjectKind::Contact => Some(real.subject_id),
                SubjectKind::Account => detail.get("contact_id").and_then(serde_json::Value::as_i64),
            };
            let input = EngagementInput {
                enrollment_id: mine,
                step_id: g.step_id.clone(),
                contact_id: contact,
                kind,
                at: g.at,
                detail: serde_json::from_str(&g.detail).unwrap_or_else(|_| serde_json::json!({})),
            };
            if engage::record(scratch, Some(ws), &input).await? {
                self.engagements_replayed += 1;
            }
        }
        Ok(())
    }
}

/// The engagement kind stored under `name`.
fn kind_of(name: &str) -> Option<EngagementKind> {
    [
        EngagementKind::Delivered,
        EngagementKind::Opened,
        EngagementKind::Clicked,
        EngagementKind::Answered,
        EngagementKind::Bounced,
        EngagementKind::Complained,
        EngagementKind::Unsubscribed,
        EngagementKind::Dismissed,
    ]
    .into_iter()
    .find(|k| k.as_str() == name)
}
