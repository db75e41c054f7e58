//! Triggers and enrollment: who enters which program, once.
//!
//! Each pass reads what happened since its cursors — engine transitions (never backfill
//! ones), product events (only live ones: older than `live_event_window` is history,
//! and the first pass starts at the end of the log), schedule ticks (ticks missed while
//! down collapse into the latest one, so a restart sends no burst) and date triggers (once
//! a day, in the workspace time zone) — and maps each trigger to the program's subjects
//! (an account trigger enrolls its contacts in a contact program, a contact trigger its
//! account in an account program).
//!
//! A subject is admitted when the audience rule holds (one read of the engine per
//! trigger) and the re-entry policy allows it against its last enrollment (one store
//! query per [`ENROLL_BATCH`] subjects). A deterministic share, by a hash of program and
//! subject, is held out as control: enrolled, ended at once, sent nothing. Admitted
//! requests are buffered, deduplicated by (program, subject) within the pass, and
//! written in batches; a cursor is saved only after the enrollments admitted before it
//! are written, so a crash never leaves a trigger passed with its enrollments lost. The
//! enrollment's unique trigger key makes a second node's or a repeated pass's writes
//! no-ops.

use std::collections::{BTreeMap, HashMap, HashSet};

use cairn_engine::SubjectRef;
use cairn_rules::{Subject, Value};
use cairn_store::{EnrollRequest, EnrollmentStatus, SubjectKind};
use cairn_workspace::{Program, Reentry, Trigger, Workspace};
use jiff::Timestamp;

use super::{PassReport, Runner, eval_bool};
use crate::ProgramError;
use crate::plan::{first_step, in_holdout, transition_matches};

/// Enrollments written per transaction.
pub(super) const ENROLL_BATCH: usize = 1000;

/// Enrollments admitted and not written yet, one per (program, subject).
#[derive(Default)]
pub(super) struct Admitted {
    pub(super) requests: Vec<EnrollRequest>,
    pub(super) keys: HashSet<(String, SubjectKind, i64)>,
}

impl Admitted {
    /// Adds a request unless its program already admitted the subject; whether it did.
    pub(super) fn admit(&mut self, request: EnrollRequest) -> bool {
        let key = (request.program_id.clone(), request.subject_kind, request.subject_id);
        if !self.keys.insert(key) {
            return false;
        }
        self.requests.push(request);
        true
    }

    pub(super) fn take(&mut self) -> Vec<EnrollRequest> {
        self.keys.clear();
        std::mem::take(&mut self.requests)
    }
}

/// A subject as the store keys it.
pub(super) fn subject_key(subject: SubjectRef) -> Option<(SubjectKind, i64)> {
    match subject {
        SubjectRef::Account(id) => Some((SubjectKind::Account, i64::try_from(id).ok()?)),
        SubjectRef::Contact(id) => Some((SubjectKind::Contact, i64::try_from(id).ok()?)),
    }
}

/// Events read per statement by the event triggers.
const EVENTS_BATCH: u32 = 1000;

pub(super) const TRANSITIONS_CURSOR: &str = "runner.transitions";
pub(super) const EVENTS_CURSOR: &str = "runner.events";

impl Runner {
    /// The trigger phases of a pass alone: enrollment, no steps run (for measuring).
    pub async fn enroll_only(&self) -> Result<PassReport, ProgramError> {
        let mut report = PassReport::default();
        let ws = self.workspace().await;
        self.enroll_triggered(&ws, self.clock.now(), &mut report).await?;
        Ok(report)
    }

    /// Every trigger since the last pass enrolls, and the enrollments are written.
    pub(super) async fn enroll_triggered(
        &self,
        ws: &Workspace,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<(), ProgramError> {
        let paused = self.store.paused_programs().await?.into_iter().map(|p| p.program_id).collect();
        *self.paused.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = paused;
        self.enroll_from_transitions(ws, report).await?;
        self.enroll_from_events(ws, now, report).await?;
        self.enroll_from_schedules_and_dates(ws, now, report).await?;
        self.flush_enrollments().await?;
        Ok(())
    }

    pub(super) async fn cursor(&self, key: &str) -> Result<Option<i64>, ProgramError> {
        Ok(self.store.setting(key).await?.and_then(|v| v.parse().ok()))
    }

    pub(super) async fn enroll_from_transitions(
        &self,
        ws: &Workspace,
        report: &mut PassReport,
    ) -> Result<(), ProgramError> {
        if !ws.programs().iter().any(|p| matches!(p.trigger, Trigger::Transition(_))) {
            return Ok(());
        }
        let mut cursor = self.cursor(TRANSITIONS_CURSOR).await?.unwrap_or(0);
        loop {
            let batch = self.store.transitions_after(cursor, 1000).await?;
            let Some(last) = batch.last() else { break };
            let last_seq = last.seq;
            for t in &batch {
                // A backfill recomputes history: programs never fire on it.
                if t.backfill {
                    continue;
                }
                for program in ws.programs().iter().filter(|p| self.runs(p)) {
                    if !transition_matches(&program.trigger, &t.kind, &t.detail) {
                        continue;
                    }
                    let subject = match t.subject_kind.as_str() {
                        "account" => SubjectRef::Account(t.subject_id as u64),
                        _ => SubjectRef::Contact(t.subject_id as u64),
                    };
                    let key = format!("transition:{}", t.seq);
                    let subjects = self.subjects_for(program, subject).await;
                    report.enrolled += self.enroll_subjects(program, &subjects, &key, t.at).await?;
                }
            }
            cursor = last_seq;
            self.save_cursor(TRANSITIONS_CURSOR, &cursor.to_string()).await?;
        }
        Ok(())
    }

    pub(super) async fn enroll_from_events(
        &self,
        ws: &Workspace,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<(), ProgramError> {
        let wanted: Vec<&Program> =
            ws.programs().iter().filter(|p| self.runs(p) && matches!(p.trigger, Trigger::Event(_))).collect();
        // Read up to here this pass; later events wait for the next.
        let last = self.store.last_seq().await?;
        let Some(mut cursor) = self.cursor(EVENTS_CURSOR).await? else {
            // The first pass starts at the end of the log: history does not trigger.
            return self.save_cursor(EVENTS_CURSOR, &last.to_string()).await;
        };
        if wanted.is_empty() {
            if last != cursor {
                self.save_cursor(EVENTS_CURSOR, &last.to_string()).await?;
            }
            return Ok(());
        }
        // Only the events the programs name, and only live ones, are read: a backlog of
        // others (an import, or the sends' own events while the runner was down) costs
        // one scan, not a read of each.
        let names: Vec<&str> = wanted
            .iter()
            .filter_map(|p| match &p.trigger {
                Trigger::Event(name) => Some(name.as_str()),
                _ => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let oldest = now.checked_sub(self.config.live_event_window).unwrap_or(now);
        while cursor < last {
            let batch = self.store.events_named_after(cursor, last, &names, oldest, EVENTS_BATCH).await?;
            for e in &batch {
                for program in &wanted {
                    let Trigger::Event(name) = &program.trigger else { continue };
                    if e.name.as_deref() != Some(name.as_str()) {
                        continue;
                    }
                    let subject = match (program.subject, e.contact_id, e.account_id) {
                        (Subject::Contact, Some(c), _) => SubjectRef::Contact(c as u64),
                        (Subject::Account, _, Some(a)) => SubjectRef::Account(a as u64),
                        _ => continue,
                    };
                    let key = format!("event:{}", e.seq);
                    report.enrolled += self.enroll_subjects(program, &[subject], &key, e.ts).await?;
                }
            }
            // A batch short of the limit has read everything up to `last`.
            cursor = match batch.last() {
                Some(e) if batch.len() == EVENTS_BATCH as usize => e.seq,
                _ => last,
            };
            self.save_cursor(EVENTS_CURSOR, &cursor.to_string()).await?;
        }
        Ok(())
    }

    pub(super) async fn enroll_from_schedules_and_dates(
        &self,
        ws: &Workspace,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<(), ProgramError> {
        let tz = ws.time_zone().clone();
        for program in ws.programs().iter().filter(|p| self.runs(p)) {
            match &program.trigger {
                Trigger::Schedule(schedule) => {
                    let key = format!("runner.schedule.{}", program.id);
                    let Some(since) = self.store.setting(&key).await?.and_then(|v| v.parse::<Timestamp>().ok()) else {
                        self.save_cursor(&key, &now.to_string()).await?;
                        continue;
                    };
                    // The latest tick in (since, now]; ticks missed while down collapse
                    // into one, so a restart does not send a burst.
                    let mut tick = None;
                    let mut from = since.to_zoned(tz.clone());
                    while let Ok(next) = schedule.cron.find_next_occurrence(&from, false) {
                        if next.timestamp() > now {
                            break;
                        }
                        tick = Some(next.timestamp());
                        from = next;
                    }
                    if let Some(tick) = tick {
                        let trigger_key = format!("schedule:{tick}");
                        let subjects = self.all_subjects(program.subject).await;
                        report.enrolled += self.enroll_subjects(program, &subjects, &trigger_key, tick).await?;
                        self.save_cursor(&key, &tick.to_string()).await?;
                    }
                }
                Trigger::Date(date) => {
                    let key = format!("runner.date.{}", program.id);
                    let today = now.to_zoned(tz.clone()).date();
                    let last_done = self.store.setting(&key).await?.and_then(|v| v.parse::<jiff::civil::Date>().ok());
                    if last_done == Some(today) {
                        continue;
                    }
                    let target = today.checked_sub(jiff::Span::new().days(i64::from(date.offset_days))).ok();
                    let trigger_key = format!("date:{today}");
                    let subjects = self
                        .runtime
                        .read(|live| {
                            let engine = &live.engine;
                            let matches = |traits: &BTreeMap<String, Value>| {
                                matches!((traits.get(&date.name), target), (Some(Value::Date(d)), Some(t)) if *d == t)
                            };
                            let mut out = Vec::new();
                            match (program.subject, date.owner) {
                                (Subject::Account, _) => {
                                    for (id, a) in engine.accounts() {
                                        if matches(&a.traits) {
                                            out.push(SubjectRef::Account(id));
                                        }
                                    }
                                }
                                (Subject::Contact, Subject::Account) => {
                                    for (_, a) in engine.accounts() {
                                        if matches(&a.traits) {
                                            out.extend(a.contacts.iter().map(|c| SubjectRef::Contact(*c)));
                                        }
                                    }
                                }
                                (Subject::Contact, Subject::Contact) => {
                                    for (id, c) in engine.contacts() {
                                        if matches(&c.traits) {
                                            out.push(SubjectRef::Contact(id));
                                        }
                                    }
                                }
                            }
                            out
                        })
                        .await;
                    report.enrolled += self.enroll_subjects(program, &subjects, &trigger_key, now).await?;
                    self.save_cursor(&key, &today.to_string()).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The subjects a trigger about `subject` enrolls in `program`: itself when kinds
    /// agree, the account's contacts for a contact program triggered by an account, the
    /// contact's account for an account program triggered by a contact.
    pub(super) async fn subjects_for(&self, program: &Program, subject: SubjectRef) -> Vec<SubjectRef> {
        self.runtime
            .read(|live| match (program.subject, subject) {
                (Subject::Account, SubjectRef::Account(_)) | (Subject::Contact, SubjectRef::Contact(_)) => {
                    vec![subject]
                }
                (Subject::Contact, SubjectRef::Account(a)) => live
                    .engine
                    .account(a)
                    .map(|s| s.contacts.iter().map(|c| SubjectRef::Contact(*c)).collect())
                    .unwrap_or_default(),
                (Subject::Account, SubjectRef::Contact(c)) => {
                    live.engine.contact(c).and_then(|s| s.account).map(SubjectRef::Account).into_iter().collect()
                }
            })
            .await
    }

    pub(super) async fn all_subjects(&self, subject: Subject) -> Vec<SubjectRef> {
        self.runtime
            .read(|live| match subject {
                Subject::Account => live.engine.accounts().map(|(id, _)| SubjectRef::Account(id)).collect(),
                Subject::Contact => live.engine.contacts().map(|(id, _)| SubjectRef::Contact(id)).collect(),
            })
            .await
    }

    /// Enrolls the subjects for whom the audience rule holds and the re-entry policy
    /// allows it (audience in one read of the engine, the last enrollments in one query
    /// per 500); the holdout share is enrolled as control (ended at once, sent nothing).
    /// How many new enrollments were admitted.
    pub(super) async fn enroll_subjects(
        &self,
        program: &Program,
        subjects: &[SubjectRef],
        trigger_key: &str,
        at: Timestamp,
    ) -> Result<u64, ProgramError> {
        if self.paused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(program.id.as_str()) {
            return Ok(0);
        }
        let admitted: Vec<SubjectRef> = self
            .runtime
            .read(|live| {
                subjects
                    .iter()
                    .copied()
                    .filter(|s| match &program.audience {
                        None => match *s {
                            SubjectRef::Account(a) => live.engine.account(a).is_some(),
                            SubjectRef::Contact(c) => live.engine.contact(c).is_some(),
                        },
                        Some(rule) => eval_bool(&live.engine, *s, rule, None),
                    })
                    .collect()
            })
            .await;
        let now = self.clock.now();
        let mut enrolled = 0;
        for chunk in admitted.chunks(ENROLL_BATCH) {
            let mut last = HashMap::new();
            for kind in [SubjectKind::Account, SubjectKind::Contact] {
                let ids: Vec<i64> =
                    chunk.iter().filter_map(|s| subject_key(*s).filter(|k| k.0 == kind).map(|k| k.1)).collect();
                if !ids.is_empty() {
                    for (id, e) in self.store.last_enrollments(program.id.as_str(), kind, &ids).await? {
                        last.insert((kind, id), e);
                    }
                }
            }
            for subject in chunk {
                let Some((kind, id)) = subject_key(*subject) else { continue };
                if let Some(last) = last.get(&(kind, id)) {
                    let allowed = match program.reentry {
                        Reentry::Once => false,
                        Reentry::Always => last.status != EnrollmentStatus::Active,
                        Reentry::After(gap) => {
                            last.status != EnrollmentStatus::Active
                                && last.ended_at.and_then(|t| t.checked_add(gap).ok()).is_some_and(|t| t <= now)
                        }
                    };
                    if !allowed {
                        continue;
                    }
                }
                let holdout = in_holdout(program.id.as_str(), *subject, program.holdout_percent);
                let first = if holdout { None } else { first_step(program).map(|s| (s.id().to_string(), at)) };
                let request = EnrollRequest {
                    program_id: program.id.to_string(),
                    subject_kind: kind,
                    subject_id: id,
                    trigger_key: trigger_key.to_string(),
                    at,
                    holdout,
                    first_step: first,
                };
                // Admitted already in this pass and not written yet: the last enrollment
                // read above could not see it.
                let Ok(mut buffer) = self.enrollments.lock() else { continue };
                if !buffer.admit(request) {
                    continue;
                }
                enrolled += 1;
            }
            if self.enrollments.lock().is_ok_and(|b| b.requests.len() >= ENROLL_BATCH) {
                self.flush_enrollments().await?;
            }
        }
        Ok(enrolled)
    }

    /// Saves a trigger cursor after writing the enrollments admitted before it, so a
    /// crash never leaves a trigger passed but its enrollments unwritten.
    pub(super) async fn save_cursor(&self, key: &str, value: &str) -> Result<(), ProgramError> {
        self.flush_enrollments().await?;
        Ok(self.store.put_setting(key, value).await?)
    }

    /// Writes the enrollments admitted so far in one transaction; how many were new.
    pub(super) async fn flush_enrollments(&self) -> Result<u64, ProgramError> {
        let requests = match self.enrollments.lock() {
            Ok(mut buffer) => buffer.take(),
            Err(_) => return Ok(0),
        };
        Ok(self.store.enroll_many(&requests).await?)
    }
}
