//! The due-step round: claim, read set-wise, decide, write while the next round runs.
//!
//! A round claims up to `batch` due steps with a lease taken at the clock's now (not the
//! pass's start: a long pass must not outlive its leases, or another node would deliver
//! the same steps again). Within a round, steps run in due order with the higher-priority
//! program first, so it wins a contested frequency cap. Before any step runs, the round
//! reads what its steps need in a few set-wise queries ([`RoundFacts`]): enrollments,
//! recipients (from the engine), unsubscribed topics, suppressed addresses and recent
//! sends per capped channel.
//!
//! Rounds are pipelined: a round's records ([`Batch`]) are written in one transaction
//! while the next round decides; the sends in flight count towards the caps through
//! `pending_sends`, since the facts read cannot see them. A deferral moves a step at least
//! a second forward (never due again in the same pass) and is written with the round's
//! records (until then the step's lease keeps it from being claimed again); a transient
//! failure is retried with jittered backoff until attempts run out, then dead-lettered. What left the machine
//! (SMTP, a webhook) is written at once, to keep the window between delivery and record
//! short. Each recorded send appends its `{channel}_sent` event with the ledger key as
//! message id, so it is appended once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use cairn_engine::{Engine, SubjectRef};
use cairn_rules::Value;
use cairn_store::{After, DueStep, EngagementRecord, Enrollment, LedgerEntry, OutboxMessage, StepRecord};
use cairn_workspace::{Channel, SendStep, Step, Workspace};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::{PassReport, Runner, subject_ref};
use crate::ProgramError;
use crate::engage::ContactEvent;

/// The records of one claimed batch, written in one transaction, and its deferrals
/// (written just before, in one transaction of their own).
#[derive(Default)]
pub(super) struct Batch {
    pub(super) records: Vec<StepRecord>,
    /// Steps held back: due again at the instant, with why.
    pub(super) deferrals: Vec<(DueStep, Timestamp, String)>,
}

/// A written batch: per record, whether it was recorded now.
pub(super) struct Written {
    pub(super) batch: Batch,
    pub(super) recorded: Vec<bool>,
}

impl Written {
    pub(super) fn count(&self, report: &mut PassReport) {
        for (record, done) in self.batch.records.iter().zip(&self.recorded) {
            if *done {
                report.steps += 1;
                if record.entry.outcome == "sent" {
                    report.sent += 1;
                }
            }
        }
    }
}

/// The contact a recorded send counts against for its channel's cap: its event's.
pub(super) fn sent_to(record: &StepRecord) -> Option<i64> {
    if record.entry.outcome != "sent" {
        return None;
    }
    record.event.as_ref().map(|(contact, _)| *contact)
}

/// Who a send goes to: the contact (for an account program, the account's admin, else its
/// first contact with an address), its account and traits.
pub(super) struct Recipient {
    pub(super) contact: u64,
    pub(super) account: Option<u64>,
    pub(super) traits: BTreeMap<String, Value>,
}

/// What the steps of one claimed round read from the store, read set-wise before any of
/// them runs: their enrollments, their send recipients, and those recipients' consent,
/// suppressions and recent sends (for frequency caps), and the engagement of the
/// enrollments whose step evaluates rules. A round decides from these and
/// from the sends it decided itself (`pending_sends`).
#[derive(Default)]
pub(super) struct RoundFacts {
    pub(super) enrollments: HashMap<i64, Enrollment>,
    /// By due step id, for send steps.
    pub(super) recipients: HashMap<i64, Recipient>,
    pub(super) unsubscribed: HashMap<i64, BTreeSet<String>>,
    pub(super) suppressed: HashSet<String>,
    /// By (channel, contact): sends within the channel's cap window, oldest first.
    pub(super) sent: HashMap<(Channel, i64), Vec<Timestamp>>,
    /// By enrollment, for steps that evaluate rules: engagement with its sends so far.
    pub(super) engagements: HashMap<i64, Vec<EngagementRecord>>,
}

/// The recipient of a send about `subject`.
pub(super) fn recipient(engine: &Engine, subject: SubjectRef) -> Option<Recipient> {
    match subject {
        SubjectRef::Contact(c) => {
            engine.contact(c).map(|s| Recipient { contact: c, account: s.account, traits: s.traits.clone() })
        }
        SubjectRef::Account(a) => {
            let account = engine.account(a)?;
            let with_email: Vec<u64> = account
                .contacts
                .iter()
                .copied()
                .filter(|c| engine.contact(*c).is_some_and(|s| matches!(s.traits.get("email"), Some(Value::String(_)))))
                .collect();
            let admin = with_email.iter().copied().find(|c| {
                engine
                    .contact(*c)
                    .is_some_and(|s| matches!(s.traits.get("role"), Some(Value::String(r)) if &**r == "admin"))
            });
            let c = admin.or_else(|| with_email.first().copied())?;
            engine.contact(c).map(|s| Recipient { contact: c, account: Some(a), traits: s.traits.clone() })
        }
    }
}

/// The start of a frequency cap's window at `now`: the last `per`, so a send exactly `per`
/// ago has left it.
pub(super) fn cap_window_start(now: Timestamp, per: SignedDuration) -> Timestamp {
    now.checked_sub(per).and_then(|t| t.checked_add(SignedDuration::from_millis(1))).unwrap_or(now)
}

/// The `{channel}_sent` (or `task_created`) event of a recorded step for its recipient;
/// its message id is the ledger key, so it is appended once.
pub(super) fn sent_event(enrollment: &Enrollment, entry: &LedgerEntry) -> Option<ContactEvent> {
    if entry.outcome != "sent" && entry.outcome != "task_created" {
        return None;
    }
    let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap_or_default();
    let contact = detail.get("contact_id").and_then(serde_json::Value::as_i64)?;
    let channel = if entry.channel == "in_app" { "inapp" } else { entry.channel.as_str() };
    let name = if entry.channel == "task" { "task_created".to_string() } else { format!("{channel}_sent") };
    Some(ContactEvent {
        contact_id: contact,
        name,
        message_id: format!("cairn:{}:{}:sent", enrollment.id, entry.step_id),
        at: entry.at,
        properties: json!({
            "program": enrollment.program_id,
            "step": entry.step_id,
            "enrollment_id": enrollment.id,
            "channel": entry.channel,
            "variant": detail.get("variant"),
        }),
    })
}

/// What held a step back for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deferral {
    /// A `wait until` whose condition does not hold yet.
    Wait,
    /// Quiet hours in the contact's time zone.
    QuietHours,
    /// The channel's frequency cap.
    Cap,
}

/// What a step decided, before it is written.
pub(super) enum Outcome {
    /// Record this and go on with `after`.
    Record(LedgerEntry, Option<After>),
    /// Record this email in the outbox too.
    Outbox(LedgerEntry, OutboxMessage, Option<After>),
    /// Not now: due again at this instant, with why and which guard (or wait) held it.
    Defer(Timestamp, String, Deferral),
    /// Failed for now: retry (or dead-letter once attempts run out).
    Failed { transient: bool, reason: String },
}

impl Runner {
    /// Claims and runs rounds of due steps until none is due, each round's records written
    /// while the next runs; on a failure, the round decided but not written is left in
    /// `ready`.
    pub(super) async fn rounds(
        &self,
        ws: &Workspace,
        ready: &mut Option<Batch>,
        report: &mut PassReport,
    ) -> Result<(), ProgramError> {
        loop {
            // Each round claims at the clock's now: a lease runs from when it is taken, not
            // from the start of a pass that may outlast it (another node would take over
            // the steps this one is still delivering, and over SMTP send them again).
            let now = self.clock.now();
            let mut claimed =
                self.store.claim_due_steps(&self.config.node, now, self.config.lease, self.config.batch).await?;
            if claimed.is_empty() {
                // Nothing due: the unwritten round's records may make its next steps due
                // (an immediate step after a send), so write them and look again.
                let Some(batch) = ready.take() else { return Ok(()) };
                self.write(batch).await?.count(report);
                continue;
            }
            // Within one round, the higher-priority program's steps go first: they win a
            // contested frequency cap.
            let priority = |d: &DueStep| {
                ws.programs().iter().find(|p| p.id.as_str() == d.program_id).map_or(u32::MAX, |p| p.priority)
            };
            claimed.sort_by_key(|d| (d.due_at, priority(d), d.id));
            let facts = self.round_facts(ws, &claimed, now).await?;
            // What is not written yet counts towards the caps: the previous round's sends.
            self.reset_pending(ready.as_ref());
            let in_flight = ready.take().map(|batch| tokio::spawn(self.write(batch)));
            let mut batch = Batch::default();
            let ran = async {
                for due in &claimed {
                    self.run_step(ws, due, now, &facts, report, &mut batch).await?;
                }
                Ok::<_, ProgramError>(())
            }
            .await;
            if let Some(handle) = in_flight {
                let written =
                    handle.await.map_err(|e| ProgramError::Internal(format!("a batch write stopped: {e}")))?;
                written?.count(report);
            }
            ran?;
            *ready = Some(batch);
        }
    }

    /// Counts the sends of records not written yet as pending for the caps.
    pub(super) fn reset_pending(&self, unwritten: Option<&Batch>) {
        let Ok(mut pending) = self.pending_sends.lock() else { return };
        pending.clear();
        for record in unwritten.iter().flat_map(|b| &b.records) {
            if let Some(contact) = sent_to(record) {
                *pending.entry((contact, record.entry.channel.clone())).or_default() += 1;
            }
        }
    }

    /// Reads what a claimed round needs, set-wise (see [`RoundFacts`]).
    pub(super) async fn round_facts(
        &self,
        ws: &Workspace,
        claimed: &[DueStep],
        now: Timestamp,
    ) -> Result<RoundFacts, ProgramError> {
        let ids: Vec<i64> = claimed.iter().map(|d| d.enrollment_id).collect();
        let enrollments: HashMap<i64, Enrollment> =
            self.store.enrollments(&ids).await?.into_iter().map(|e| (e.id, e)).collect();
        // The send steps of the round, and their recipients from the engine in one read.
        let sends: Vec<(&DueStep, &SendStep)> = claimed
            .iter()
            .filter_map(|d| {
                let program = ws.programs().iter().find(|p| p.id.as_str() == d.program_id)?;
                match program.step(&d.step_id)? {
                    Step::Send(send) => Some((d, send)),
                    _ => None,
                }
            })
            .collect();
        let recipients: HashMap<i64, Recipient> = self
            .runtime
            .read(|live| {
                sends
                    .iter()
                    .filter_map(|(d, _)| {
                        Some((d.id, recipient(&live.engine, subject_ref(d.subject_kind, d.subject_id))?))
                    })
                    .collect()
            })
            .await;
        let mut contacts: Vec<i64> = recipients.values().map(|r| r.contact as i64).collect();
        contacts.sort_unstable();
        contacts.dedup();
        let unsubscribed = self.store.unsubscribed_topics(&contacts).await?;
        let addresses: Vec<&str> = sends
            .iter()
            .filter(|(_, send)| send.channel == Channel::Email)
            .filter_map(|(d, _)| match recipients.get(&d.id)?.traits.get("email") {
                Some(Value::String(e)) => Some(&**e),
                _ => None,
            })
            .collect();
        let suppressed = self.store.suppressed_among(&addresses).await?;
        let mut sent = HashMap::new();
        let channels: BTreeSet<Channel> = sends.iter().map(|(_, s)| s.channel).collect();
        for channel in channels {
            let Some(cap) = ws.guardrails().frequency_caps.get(&channel) else { continue };
            let since = cap_window_start(now, cap.per);
            for (contact, times) in self.store.sent_times_since_many(&contacts, channel.name(), since).await? {
                sent.insert((channel, contact), times);
            }
        }
        // The engagement of the enrollments whose step evaluates rules.
        let mut reading: Vec<i64> = claimed
            .iter()
            .filter(|d| {
                ws.programs()
                    .iter()
                    .find(|p| p.id.as_str() == d.program_id)
                    .and_then(|p| Some(super::steps::reads_rules(p, p.step(&d.step_id)?)))
                    .unwrap_or(false)
            })
            .map(|d| d.enrollment_id)
            .collect();
        reading.sort_unstable();
        reading.dedup();
        let engagements = if reading.is_empty() { HashMap::new() } else { self.store.engagements_of(&reading).await? };
        Ok(RoundFacts { enrollments, recipients, unsubscribed, suppressed, sent, engagements })
    }

    /// Records a batch's steps in one transaction, each with its event. Owns what it
    /// needs, so a round can hand it to another task.
    pub(super) fn write(
        &self,
        batch: Batch,
    ) -> impl std::future::Future<Output = Result<Written, ProgramError>> + Send + 'static {
        let store = self.store.clone();
        let owner = self.config.node.clone();
        async move {
            // A deferred step keeps its lease until this is written, so nobody runs it
            // again in the meantime.
            store.defer_steps(&owner, &batch.deferrals).await?;
            let recorded = store.complete_steps(&owner, &batch.records).await?;
            Ok(Written { batch, recorded })
        }
    }

    pub(super) async fn run_step(
        &self,
        ws: &Workspace,
        due: &DueStep,
        now: Timestamp,
        facts: &RoundFacts,
        report: &mut PassReport,
        batch: &mut Batch,
    ) -> Result<(), ProgramError> {
        let Some(enrollment) = facts.enrollments.get(&due.enrollment_id) else { return Ok(()) };
        let outcome = self.decide(ws, due, enrollment, now, facts).await?;
        let owner = self.config.node.as_str();
        let (entry, outbox, after) = match outcome {
            Outcome::Record(entry, after) => (entry, None, after),
            Outcome::Outbox(entry, outbox, after) => (entry, Some(outbox), after),
            Outcome::Defer(until, note, why) => {
                // Never due again within this pass: a deferral moves the step forward.
                let until = until.max(now.checked_add(SignedDuration::from_secs(1)).unwrap_or(now));
                batch.deferrals.push((due.clone(), until, note));
                report.deferred += 1;
                match why {
                    Deferral::QuietHours => report.quiet_hours += 1,
                    Deferral::Cap => report.capped += 1,
                    Deferral::Wait => {}
                }
                return Ok(());
            }
            Outcome::Failed { transient, reason } => {
                let attempt = due.attempt + 1;
                if transient && attempt < self.config.retry.max_attempts {
                    let seed = crate::plan::unit_hash(&format!("{}:{}", due.enrollment_id, due.step_id));
                    let wait = self.config.retry.backoff_jittered(attempt, (seed * u64::MAX as f64) as u64);
                    let next = now.checked_add(wait).unwrap_or(now);
                    self.store.retry_step(due, owner, next, &reason).await?;
                    report.retried += 1;
                } else {
                    self.store.dead_letter(due, owner, &reason, now).await?;
                    report.dead += 1;
                }
                return Ok(());
            }
        };
        let event = sent_event(enrollment, &entry).map(|e| (e.contact_id, e.message()));
        let record = StepRecord { due: due.clone(), entry, outbox, after, event };
        self.count_pending(&record);
        // What left the machine (SMTP, a webhook) is recorded at once, to keep the window
        // between delivery and record short; the rest goes with the batch.
        let delivered = record.outbox.is_none()
            && record.entry.outcome == "sent"
            && matches!(record.entry.channel.as_str(), "email" | "webhook" | "sms" | "slack");
        if delivered {
            self.write(Batch { records: vec![record], deferrals: Vec::new() }).await?.count(report);
        } else {
            batch.records.push(record);
        }
        Ok(())
    }

    /// Counts a send of this round towards its contact's frequency cap before it is
    /// written.
    pub(super) fn count_pending(&self, record: &StepRecord) {
        if let (Some(contact), Ok(mut pending)) = (sent_to(record), self.pending_sends.lock()) {
            *pending.entry((contact, record.entry.channel.clone())).or_default() += 1;
        }
    }

    pub(super) fn pending(&self, contact: i64, channel: &str) -> usize {
        self.pending_sends.lock().map(|p| p.get(&(contact, channel.to_string())).copied().unwrap_or(0)).unwrap_or(0)
    }
}
