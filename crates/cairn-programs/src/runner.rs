//! The runner: triggers → enrollment → due steps → guard rails → render → deliver →
//! ledger, on the clock it is given. Every pass ([`Runner::run_once`]) is idempotent: a
//! trigger enrolls once (the enrollment's unique key), a step is recorded once (the
//! ledger's key) together with what follows it, so crashes, restarts and second nodes
//! neither repeat nor skip anything.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cairn_channels::{
    EmailTransport, LedgerKey, LinkSigner, LinkSubject, Mailer, OutgoingEmail, RetryPolicy, WebhookClient, build_email,
    email_ids,
};
use cairn_content::{Limits, RenderedMessage, escape_html, render};
use cairn_core::{Clock, Email};
use cairn_engine::{Engine, ProgramFacts, SubjectRef};
use cairn_rules::{Engagement, Rule, Subject, Value};
use cairn_runtime::Runtime;
use cairn_store::{
    After, DueStep, EngagementRecord, EnrollRequest, Enrollment, EnrollmentStatus, LedgerEntry, NewTask, OutboxMessage,
    StepRecord, Store, SubjectKind, TaskPriority,
};
use cairn_workspace::{
    Assignee, Channel, OnCap, PoolStrategy, Program, Reentry, SendStep, Step, Trigger, Wait, Workspace,
};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::context::{links, render_context, template_links};
use crate::engage::ContactEvent;
use crate::plan::{
    after_quiet_hours, branch_target, cap_frees_at, first_step, in_holdout, local_text, next_after, pick_variant,
    transition_matches,
};
use crate::{ProgramError, link_signer};

/// How the runner delivers and paces itself.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This node's name, the owner of the leases it takes.
    pub node: String,
    /// Base URL of cairn's public routes (tracking, unsubscribe, surveys).
    pub public_url: String,
    /// Sender of email.
    pub from: Email,
    /// Sender's display name.
    pub from_name: Option<String>,
    /// Domain of Message-IDs.
    pub message_id_domain: String,
    /// The outbox (default) or SMTP.
    pub email: EmailTransport,
    /// URL per webhook-delivered channel (`webhook`, `sms`, `slack`).
    pub webhooks: BTreeMap<Channel, String>,
    /// The secret webhooks are signed with.
    pub webhook_secret: Vec<u8>,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// How long a claimed step is the claimer's.
    pub lease: SignedDuration,
    /// Steps claimed per round.
    pub batch: u32,
    /// How often a `wait until` looks at its condition again (engagement wakes it sooner).
    pub wait_poll: SignedDuration,
    /// How old a product event may be and still trigger a program (older ones are history,
    /// e.g. an import).
    pub live_event_window: SignedDuration,
    /// How often goals are measured.
    pub goal_every: SignedDuration,
}

impl RunnerConfig {
    /// Defaults for a node: the outbox, `http://127.0.0.1:8080` links, 5-minute leases.
    pub fn new(node: impl Into<String>) -> RunnerConfig {
        RunnerConfig {
            node: node.into(),
            public_url: "http://127.0.0.1:8080".to_string(),
            from: Email::parse("cs@cairn.localhost").unwrap_or_else(|_| unreachable_email()),
            from_name: None,
            message_id_domain: "cairn.localhost".to_string(),
            email: EmailTransport::Outbox,
            webhooks: BTreeMap::new(),
            webhook_secret: Vec::new(),
            retry: RetryPolicy::default(),
            lease: SignedDuration::from_mins(5),
            batch: 500,
            wait_poll: SignedDuration::from_mins(15),
            live_event_window: SignedDuration::from_hours(24),
            goal_every: SignedDuration::from_mins(1),
        }
    }
}

fn unreachable_email() -> Email {
    // `cs@cairn.localhost` is a valid address; this only satisfies the type checker.
    Email::parse("a@b.c").expect("a valid address")
}

/// What one pass did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// New enrollments (holdouts included).
    pub enrolled: u64,
    /// Steps recorded.
    pub steps: u64,
    /// Messages sent (all channels).
    pub sent: u64,
    /// Steps deferred (quiet hours, caps, waits).
    pub deferred: u64,
    /// Steps dead-lettered.
    pub dead: u64,
    /// Steps retried.
    pub retried: u64,
}

/// The program runner of one node.
pub struct Runner {
    store: Store,
    runtime: Runtime,
    clock: Arc<dyn Clock>,
    signer: Arc<LinkSigner>,
    mailer: Mailer,
    webhook: WebhookClient,
    config: RunnerConfig,
    last_goal_check: tokio::sync::Mutex<Option<Timestamp>>,
    /// Sends decided in the current batch, per (contact, channel), not committed yet.
    pending_sends: std::sync::Mutex<std::collections::HashMap<(i64, String), usize>>,
    /// Enrollments admitted in this pass, written in batches.
    enrollments: std::sync::Mutex<Admitted>,
}

/// Enrollments written per transaction.
const ENROLL_BATCH: usize = 1000;

/// Enrollments admitted and not written yet, one per (program, subject).
#[derive(Default)]
struct Admitted {
    requests: Vec<EnrollRequest>,
    keys: HashSet<(String, SubjectKind, i64)>,
}

impl Admitted {
    /// Adds a request unless its program already admitted the subject; whether it did.
    fn admit(&mut self, request: EnrollRequest) -> bool {
        let key = (request.program_id.clone(), request.subject_kind, request.subject_id);
        if !self.keys.insert(key) {
            return false;
        }
        self.requests.push(request);
        true
    }

    fn take(&mut self) -> Vec<EnrollRequest> {
        self.keys.clear();
        std::mem::take(&mut self.requests)
    }
}

/// A subject as the store keys it.
fn subject_key(subject: SubjectRef) -> Option<(SubjectKind, i64)> {
    match subject {
        SubjectRef::Account(id) => Some((SubjectKind::Account, i64::try_from(id).ok()?)),
        SubjectRef::Contact(id) => Some((SubjectKind::Contact, i64::try_from(id).ok()?)),
    }
}

/// The records of one claimed batch, written in one transaction.
#[derive(Default)]
struct Batch {
    records: Vec<StepRecord>,
}

/// A written batch: per record, whether it was recorded now.
struct Written {
    batch: Batch,
    recorded: Vec<bool>,
}

impl Written {
    fn count(&self, report: &mut PassReport) {
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
fn sent_to(record: &StepRecord) -> Option<i64> {
    if record.entry.outcome != "sent" {
        return None;
    }
    record.event.as_ref().map(|(contact, _)| *contact)
}

/// Who a send goes to: the contact (for an account program, the account's admin, else its
/// first contact with an address), its account and traits.
struct Recipient {
    contact: u64,
    account: Option<u64>,
    traits: BTreeMap<String, Value>,
}

/// What the steps of one claimed round read from the store, read set-wise before any of
/// them runs: their enrollments, their send recipients, and those recipients' consent,
/// suppressions and recent sends (for frequency caps). A round decides from these and
/// from the sends it decided itself (`pending_sends`).
#[derive(Default)]
struct RoundFacts {
    enrollments: HashMap<i64, Enrollment>,
    /// By due step id, for send steps.
    recipients: HashMap<i64, Recipient>,
    unsubscribed: HashMap<i64, BTreeSet<String>>,
    suppressed: HashSet<String>,
    /// By (channel, contact): sends within the channel's cap window, oldest first.
    sent: HashMap<(Channel, i64), Vec<Timestamp>>,
}

/// The recipient of a send about `subject`.
fn recipient(engine: &Engine, subject: SubjectRef) -> Option<Recipient> {
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
fn cap_window_start(now: Timestamp, per: SignedDuration) -> Timestamp {
    now.checked_sub(per).and_then(|t| t.checked_add(SignedDuration::from_millis(1))).unwrap_or(now)
}

/// The `{channel}_sent` (or `task_created`) event of a recorded step for its recipient;
/// its message id is the ledger key, so it is appended once.
fn sent_event(enrollment: &Enrollment, entry: &LedgerEntry) -> Option<ContactEvent> {
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

const TRANSITIONS_CURSOR: &str = "runner.transitions";
const EVENTS_CURSOR: &str = "runner.events";

/// The facts a program rule reads beyond the engine: engagement and the goal.
struct Facts<'a> {
    engagements: &'a [EngagementRecord],
    goal: bool,
}

impl ProgramFacts for Facts<'_> {
    fn engagement(&self, step: &str, kind: Engagement) -> bool {
        let kind = crate::EngagementKind::of_rule(kind).as_str();
        self.engagements.iter().any(|e| e.step_id == step && e.kind == kind)
    }

    fn goal_met(&self) -> bool {
        self.goal
    }
}

fn subject_ref(kind: SubjectKind, id: i64) -> SubjectRef {
    match kind {
        SubjectKind::Account => SubjectRef::Account(id as u64),
        SubjectKind::Contact => SubjectRef::Contact(id as u64),
    }
}

fn eval_bool(engine: &Engine, subject: SubjectRef, rule: &Rule, facts: Option<&dyn ProgramFacts>) -> bool {
    matches!(engine.evaluate_rule(subject, rule, facts), Some(Value::Bool(true)))
}

/// What a step decided, before it is written.
enum Outcome {
    /// Record this and go on with `after`.
    Record(LedgerEntry, Option<After>),
    /// Record this email in the outbox too.
    Outbox(LedgerEntry, OutboxMessage, Option<After>),
    /// Not now: due again at this instant, with why.
    Defer(Timestamp, String),
    /// Failed for now: retry (or dead-letter once attempts run out).
    Failed { transient: bool, reason: String },
}

impl Runner {
    /// A runner over the store and the engine runtime, on `clock`.
    pub async fn new(
        store: Store,
        runtime: Runtime,
        clock: Arc<dyn Clock>,
        config: RunnerConfig,
    ) -> Result<Runner, ProgramError> {
        let signer = Arc::new(link_signer(&store).await?);
        let mailer = Mailer::new(&config.email)?;
        let webhook = WebhookClient::new(Duration::from_secs(10))?;
        Ok(Runner {
            store,
            runtime,
            clock,
            signer,
            mailer,
            webhook,
            config,
            last_goal_check: tokio::sync::Mutex::new(None),
            pending_sends: std::sync::Mutex::new(std::collections::HashMap::new()),
            enrollments: std::sync::Mutex::new(Admitted::default()),
        })
    }

    /// The link signer (the same secret every node uses).
    pub fn signer(&self) -> Arc<LinkSigner> {
        self.signer.clone()
    }

    async fn workspace(&self) -> Arc<Workspace> {
        self.runtime.read(|live| live.engine.workspace_arc().clone()).await
    }

    /// Keeps running passes until `shutdown`: every second, and when events arrive.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut appends = self.store.event_appends();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                r = appends.changed() => if r.is_err() { return },
                _ = tick.tick() => {}
            }
            if let Err(e) = self.run_once().await {
                tracing::warn!("programs: {e}");
            }
        }
    }

    /// One pass at the clock's now: new triggers enroll, goals are measured, then every
    /// step due is run, until none is due.
    pub async fn run_once(&self) -> Result<PassReport, ProgramError> {
        let mut report = PassReport::default();
        let ws = self.workspace().await;
        let now = self.clock.now();
        self.enroll_triggered(&ws, now, &mut report).await?;
        self.measure_goals(&ws, now).await?;
        // Rounds are pipelined: a round's records are written while the next round runs
        // its steps (the writer's thread and this one on two cores). The next round claims
        // and reads its facts before the write starts (SQLite has one writer, and the
        // facts must not see half of what is in flight: the sends being written count
        // through `pending_sends` instead).
        let mut ready: Option<Batch> = None;
        let result = self.rounds(&ws, &mut ready, &mut report).await;
        // Only after a failure is a decided round left unwritten: write it anyway, so its
        // steps are not run again when their leases expire.
        if let Some(batch) = ready.take() {
            self.write(batch).await?;
        }
        result?;
        Ok(report)
    }

    /// Claims and runs rounds of due steps until none is due, each round's records written
    /// while the next runs; on a failure, the round decided but not written is left in
    /// `ready`.
    async fn rounds(
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
    fn reset_pending(&self, unwritten: Option<&Batch>) {
        let Ok(mut pending) = self.pending_sends.lock() else { return };
        pending.clear();
        for record in unwritten.iter().flat_map(|b| &b.records) {
            if let Some(contact) = sent_to(record) {
                *pending.entry((contact, record.entry.channel.clone())).or_default() += 1;
            }
        }
    }

    /// Reads what a claimed round needs, set-wise (see [`RoundFacts`]).
    async fn round_facts(
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
        Ok(RoundFacts { enrollments, recipients, unsubscribed, suppressed, sent })
    }

    /// Records a batch's steps in one transaction, each with its event. Owns what it
    /// needs, so a round can hand it to another task.
    fn write(&self, batch: Batch) -> impl std::future::Future<Output = Result<Written, ProgramError>> + Send + 'static {
        let store = self.store.clone();
        let owner = self.config.node.clone();
        async move {
            let recorded = store.complete_steps(&owner, &batch.records).await?;
            Ok(Written { batch, recorded })
        }
    }

    /// The trigger phases of a pass alone: enrollment, no steps run (for measuring).
    pub async fn enroll_only(&self) -> Result<PassReport, ProgramError> {
        let mut report = PassReport::default();
        let ws = self.workspace().await;
        self.enroll_triggered(&ws, self.clock.now(), &mut report).await?;
        Ok(report)
    }

    /// Every trigger since the last pass enrolls, and the enrollments are written.
    async fn enroll_triggered(
        &self,
        ws: &Workspace,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<(), ProgramError> {
        self.enroll_from_transitions(ws, report).await?;
        self.enroll_from_events(ws, now, report).await?;
        self.enroll_from_schedules_and_dates(ws, now, report).await?;
        self.flush_enrollments().await?;
        Ok(())
    }

    // ---------------------------------------------------------------------------------
    // Triggers

    async fn cursor(&self, key: &str) -> Result<Option<i64>, ProgramError> {
        Ok(self.store.setting(key).await?.and_then(|v| v.parse().ok()))
    }

    async fn enroll_from_transitions(&self, ws: &Workspace, report: &mut PassReport) -> Result<(), ProgramError> {
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
                for program in ws.programs() {
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

    async fn enroll_from_events(
        &self,
        ws: &Workspace,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<(), ProgramError> {
        let wanted: Vec<&Program> = ws.programs().iter().filter(|p| matches!(p.trigger, Trigger::Event(_))).collect();
        let cursor = match self.cursor(EVENTS_CURSOR).await? {
            Some(c) => c,
            None => {
                // The first pass starts at the end of the log: history does not trigger.
                let last = self.store.last_seq().await?;
                self.save_cursor(EVENTS_CURSOR, &last.to_string()).await?;
                return Ok(());
            }
        };
        if wanted.is_empty() {
            let last = self.store.last_seq().await?;
            if last != cursor {
                self.save_cursor(EVENTS_CURSOR, &last.to_string()).await?;
            }
            return Ok(());
        }
        let mut cursor = cursor;
        let oldest = now.checked_sub(self.config.live_event_window).unwrap_or(now);
        loop {
            let batch = self.store.events_after(cursor, 1000).await?;
            let Some(last) = batch.last() else { break };
            let last_seq = last.seq;
            for e in &batch {
                if e.ts < oldest {
                    continue;
                }
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
            cursor = last_seq;
            self.save_cursor(EVENTS_CURSOR, &cursor.to_string()).await?;
        }
        Ok(())
    }

    async fn enroll_from_schedules_and_dates(
        &self,
        ws: &Workspace,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<(), ProgramError> {
        let tz = ws.time_zone().clone();
        for program in ws.programs() {
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
    async fn subjects_for(&self, program: &Program, subject: SubjectRef) -> Vec<SubjectRef> {
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

    async fn all_subjects(&self, subject: Subject) -> Vec<SubjectRef> {
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
    async fn enroll_subjects(
        &self,
        program: &Program,
        subjects: &[SubjectRef],
        trigger_key: &str,
        at: Timestamp,
    ) -> Result<u64, ProgramError> {
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
    async fn save_cursor(&self, key: &str, value: &str) -> Result<(), ProgramError> {
        self.flush_enrollments().await?;
        Ok(self.store.put_setting(key, value).await?)
    }

    /// Writes the enrollments admitted so far in one transaction; how many were new.
    async fn flush_enrollments(&self) -> Result<u64, ProgramError> {
        let requests = match self.enrollments.lock() {
            Ok(mut buffer) => buffer.take(),
            Err(_) => return Ok(0),
        };
        Ok(self.store.enroll_many(&requests).await?)
    }

    // ---------------------------------------------------------------------------------
    // Goals

    async fn measure_goals(&self, ws: &Workspace, now: Timestamp) -> Result<(), ProgramError> {
        {
            let mut last = self.last_goal_check.lock().await;
            if last.is_some_and(|t| t.checked_add(self.config.goal_every).is_ok_and(|n| n > now)) {
                return Ok(());
            }
            *last = Some(now);
        }
        for program in ws.programs() {
            let Some(goal) = &program.goal else { continue };
            let since = now.checked_sub(goal.within).unwrap_or(now);
            for e in self.store.enrollments_to_measure(program.id.as_str(), since).await? {
                let engagements = self.store.engagements(e.id).await?;
                let facts = Facts { engagements: &engagements, goal: false };
                let subject = subject_ref(e.subject_kind, e.subject_id);
                let met = self.runtime.read(|live| eval_bool(&live.engine, subject, &goal.rule, Some(&facts))).await;
                if met {
                    self.store.mark_goal_met(e.id, now).await?;
                }
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------
    // Steps

    async fn run_step(
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
            Outcome::Defer(until, note) => {
                // Never due again within this pass: a deferral moves the step forward.
                let until = until.max(now.checked_add(SignedDuration::from_secs(1)).unwrap_or(now));
                self.store.defer_step(due, owner, until, &note).await?;
                report.deferred += 1;
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
            self.write(Batch { records: vec![record] }).await?.count(report);
        } else {
            batch.records.push(record);
        }
        Ok(())
    }

    /// Counts a send of this round towards its contact's frequency cap before it is
    /// written.
    fn count_pending(&self, record: &StepRecord) {
        if let (Some(contact), Ok(mut pending)) = (sent_to(record), self.pending_sends.lock()) {
            *pending.entry((contact, record.entry.channel.clone())).or_default() += 1;
        }
    }

    fn pending(&self, contact: i64, channel: &str) -> usize {
        self.pending_sends.lock().map(|p| p.get(&(contact, channel.to_string())).copied().unwrap_or(0)).unwrap_or(0)
    }

    async fn decide(
        &self,
        ws: &Workspace,
        due: &DueStep,
        enrollment: &Enrollment,
        now: Timestamp,
        round: &RoundFacts,
    ) -> Result<Outcome, ProgramError> {
        let entry = |channel: &str, outcome: &str, detail: serde_json::Value| LedgerEntry {
            enrollment_id: due.enrollment_id,
            step_id: due.step_id.clone(),
            channel: channel.to_string(),
            outcome: outcome.to_string(),
            message_id: None,
            detail: detail.to_string(),
            at: now,
        };
        let Some(program) = ws.programs().iter().find(|p| p.id.as_str() == due.program_id) else {
            let e = entry("none", "program_removed", json!({"reason": "the program is no longer defined"}));
            return Ok(Outcome::Record(e, Some(After::End(EnrollmentStatus::Exited))));
        };
        let Some(step) = program.step(&due.step_id) else {
            let e = entry("none", "step_removed", json!({"reason": "the step is no longer in the program"}));
            return Ok(Outcome::Record(e, Some(After::End(EnrollmentStatus::Exited))));
        };
        let subject = subject_ref(enrollment.subject_kind, enrollment.subject_id);
        // Engagement and the goal are read only by rules: a plain send needs neither.
        let reads_rules = !program.exits.is_empty() || matches!(step, Step::If(_) | Step::Wait(_) | Step::Update(_));
        let engagements = if reads_rules { self.store.engagements(enrollment.id).await? } else { Vec::new() };
        let goal = match &program.goal {
            _ if !reads_rules => false,
            None => false,
            Some(g) => {
                enrollment.goal_met_at.is_some() || {
                    let within = enrollment.enrolled_at.checked_add(g.within).is_ok_and(|end| now <= end);
                    let facts = Facts { engagements: &engagements, goal: false };
                    within && self.runtime.read(|live| eval_bool(&live.engine, subject, &g.rule, Some(&facts))).await
                }
            }
        };
        let facts = Facts { engagements: &engagements, goal };
        // An exit rule ends the enrollment before anything else happens.
        for (i, rule) in program.exits.iter().enumerate() {
            if self.runtime.read(|live| eval_bool(&live.engine, subject, rule, Some(&facts))).await {
                let e = entry("none", "exited", json!({"exit_rule": i, "rule": rule.source()}));
                return Ok(Outcome::Record(e, Some(After::End(EnrollmentStatus::Exited))));
            }
        }
        let next = |at: Timestamp| -> Option<After> {
            Some(match next_after(program, &due.step_id) {
                Some(s) => After::Next { step_id: s.id().to_string(), due_at: at },
                None => After::End(EnrollmentStatus::Completed),
            })
        };
        Ok(match step {
            Step::Wait(w) => match &w.wait {
                Wait::For(d) => {
                    let until = due.started_at.checked_add(*d).unwrap_or(now).max(now);
                    Outcome::Record(entry("wait", "waited", json!({"for": format!("{d:#}")})), next(until))
                }
                Wait::Until { rule, timeout } => {
                    let deadline = due.started_at.checked_add(*timeout).unwrap_or(now);
                    if self.runtime.read(|live| eval_bool(&live.engine, subject, rule, Some(&facts))).await {
                        Outcome::Record(entry("wait", "condition_met", json!({"rule": rule.source()})), next(now))
                    } else if now >= deadline {
                        Outcome::Record(entry("wait", "timed_out", json!({"rule": rule.source()})), next(now))
                    } else {
                        let again = now.checked_add(self.config.wait_poll).unwrap_or(deadline).min(deadline);
                        Outcome::Defer(again, format!("waiting until {} (at most until {deadline})", rule.source()))
                    }
                }
            },
            Step::If(branch) => {
                let holds =
                    self.runtime.read(|live| eval_bool(&live.engine, subject, &branch.condition, Some(&facts))).await;
                let after = match branch_target(program, &due.step_id, holds) {
                    Some(s) => After::Next { step_id: s.id().to_string(), due_at: now },
                    None => After::End(EnrollmentStatus::Completed),
                };
                Outcome::Record(
                    entry("if", if holds { "then" } else { "else" }, json!({"rule": branch.condition.source()})),
                    Some(after),
                )
            }
            Step::Exit(_) => {
                Outcome::Record(entry("exit", "exited", json!({})), Some(After::End(EnrollmentStatus::Exited)))
            }
            Step::Update(update) => {
                let mut set = serde_json::Map::new();
                for u in &update.set {
                    let value = self
                        .runtime
                        .read(|live| {
                            live.engine
                                .evaluate_rule(subject, &u.value, Some(&facts))
                                .map(|v| cairn_runtime::views::json_value(&v))
                        })
                        .await
                        .unwrap_or(serde_json::Value::Null);
                    let target = match (u.owner, subject) {
                        (Subject::Account, SubjectRef::Account(a)) => Some((SubjectKind::Account, a as i64)),
                        (Subject::Account, SubjectRef::Contact(c)) => self
                            .runtime
                            .read(|live| live.engine.contact(c).and_then(|s| s.account))
                            .await
                            .map(|a| (SubjectKind::Account, a as i64)),
                        (Subject::Contact, SubjectRef::Contact(c)) => Some((SubjectKind::Contact, c as i64)),
                        (Subject::Contact, SubjectRef::Account(_)) => None,
                    };
                    if let Some((kind, id)) = target {
                        self.store.set_custom_trait(kind, id, &u.name, &value).await?;
                    }
                    set.insert(u.name.clone(), value);
                }
                Outcome::Record(entry("update", "updated", serde_json::Value::Object(set)), next(now))
            }
            Step::Task(task) => self.task_step(program, task, due, enrollment, subject, now, next(now)).await?,
            Step::Send(send) => self.send_step(ws, program, send, due, enrollment, now, round, next(now)).await?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn task_step(
        &self,
        program: &Program,
        task: &cairn_workspace::TaskStep,
        due: &DueStep,
        enrollment: &Enrollment,
        subject: SubjectRef,
        now: Timestamp,
        after: Option<After>,
    ) -> Result<Outcome, ProgramError> {
        let (account, contact) = self
            .runtime
            .read(|live| match subject {
                SubjectRef::Account(a) => (Some(a), None),
                SubjectRef::Contact(c) => (live.engine.contact(c).and_then(|s| s.account), Some(c)),
            })
            .await;
        let owner = match account {
            Some(a) => {
                self.runtime
                    .read(|live| {
                        live.engine.account(a).and_then(|s| match s.traits.get("owner_email") {
                            Some(Value::String(e)) => Some(e.to_string()),
                            _ => None,
                        })
                    })
                    .await
            }
            None => None,
        };
        let ws = self.workspace().await;
        let (assignee, pool) = match &task.assign {
            Assignee::Owner => (owner, None),
            Assignee::Pool { name, strategy } => {
                let members: Vec<String> = ws.pool(name.as_str()).map(|p| p.members.clone()).unwrap_or_default();
                let pick = match strategy {
                    _ if members.is_empty() => None,
                    PoolStrategy::RoundRobin => {
                        let last = self.store.last_pool_assignee(name.as_str()).await?;
                        let at = last
                            .and_then(|l| members.iter().position(|m| *m == l))
                            .map_or(0, |i| (i + 1) % members.len());
                        members.get(at).cloned()
                    }
                    PoolStrategy::LeastLoaded => {
                        let counts = self.store.open_task_counts(&members).await?;
                        counts.iter().min_by_key(|(_, n)| *n).map(|(m, _)| m.clone())
                    }
                };
                (pick, Some(name.to_string()))
            }
        };
        let priority = match task.priority {
            1 => TaskPriority::Urgent,
            2 => TaskPriority::High,
            3 => TaskPriority::Normal,
            _ => TaskPriority::Low,
        };
        let new = NewTask {
            enrollment_id: enrollment.id,
            step_id: due.step_id.clone(),
            account_id: account.map(|a| a as i64),
            contact_id: contact.map(|c| c as i64),
            title: task.title.clone(),
            body: task.notes.clone().unwrap_or_default(),
            assignee: assignee.clone(),
            pool: pool.clone(),
            priority,
            due_at: task.due.and_then(|d| now.checked_add(d).ok()),
            created_at: now,
        };
        let id = self.store.create_task(&new).await?;
        let detail = json!({"task_id": id, "assignee": assignee, "pool": pool, "program": program.id.as_str(), "contact_id": contact});
        Ok(Outcome::Record(
            LedgerEntry {
                enrollment_id: due.enrollment_id,
                step_id: due.step_id.clone(),
                channel: "task".to_string(),
                outcome: "task_created".to_string(),
                message_id: None,
                detail: detail.to_string(),
                at: now,
            },
            after,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_step(
        &self,
        ws: &Workspace,
        program: &Program,
        send: &SendStep,
        due: &DueStep,
        enrollment: &Enrollment,
        now: Timestamp,
        round: &RoundFacts,
        after: Option<After>,
    ) -> Result<Outcome, ProgramError> {
        let channel = send.channel.name();
        let record = |outcome: &str, detail: serde_json::Value, after: Option<After>| {
            Outcome::Record(
                LedgerEntry {
                    enrollment_id: due.enrollment_id,
                    step_id: due.step_id.clone(),
                    channel: channel.to_string(),
                    outcome: outcome.to_string(),
                    message_id: None,
                    detail: detail.to_string(),
                    at: now,
                },
                after,
            )
        };
        let subject = subject_ref(enrollment.subject_kind, enrollment.subject_id);
        let Some(Recipient { contact, account, traits }) = round.recipients.get(&due.id) else {
            return Ok(record("skipped_no_recipient", json!({"reason": "no contact to send to"}), after));
        };
        let (contact, account) = (*contact, *account);
        let base = json!({"contact_id": contact});
        let with = |extra: serde_json::Value| {
            let mut d = base.clone();
            if let (serde_json::Value::Object(d), serde_json::Value::Object(x)) = (&mut d, extra) {
                d.extend(x);
            }
            d
        };
        // Consent: the program's topic, and `all`.
        let topic = program.topic.as_ref().map(|t| t.to_string());
        let topics: Vec<&str> = topic.iter().map(String::as_str).chain(["all"]).collect();
        let unsubscribed = round.unsubscribed.get(&(contact as i64));
        if let Some(t) = topics.iter().find(|t| unsubscribed.is_some_and(|u| u.contains(**t))) {
            return Ok(record("skipped_consent", with(json!({"topic": t})), after));
        }
        let email = match traits.get("email") {
            Some(Value::String(e)) => Some(e.to_string()),
            _ => None,
        };
        if send.channel == Channel::Email {
            let Some(address) = &email else {
                return Ok(record(
                    "skipped_no_address",
                    with(json!({"reason": "the contact has no email address"})),
                    after,
                ));
            };
            if round.suppressed.contains(&cairn_store::normalize_address(address)) {
                return Ok(record("skipped_suppressed", with(json!({"address": address})), after));
            }
        }
        // Quiet hours, in the contact's time zone (the workspace's when unknown).
        let tz = match traits.get("timezone") {
            Some(Value::String(name)) => TimeZone::get(name).unwrap_or_else(|_| ws.time_zone().clone()),
            _ => ws.time_zone().clone(),
        };
        if let Some(quiet) = &ws.guardrails().quiet_hours {
            let resume = after_quiet_hours(quiet, now, &tz);
            if resume > now {
                return Ok(Outcome::Defer(
                    resume,
                    format!("quiet hours for the contact: resumes at {}", local_text(resume, &tz)),
                ));
            }
        }
        // The frequency cap of the channel, across programs.
        if let Some(cap) = ws.guardrails().frequency_caps.get(&send.channel) {
            // The window is the last `per` up to now: a send exactly `per` ago has left it.
            let mut sent = round.sent.get(&(send.channel, contact as i64)).cloned().unwrap_or_default();
            // Sends of this batch not committed yet count too.
            sent.extend(std::iter::repeat_n(now, self.pending(contact as i64, channel)));
            if let Some(frees) = cap_frees_at(&sent, cap.max, cap.per) {
                let note = format!("frequency cap: {} {channel} per {:#} reached", cap.max, cap.per);
                return Ok(match send.on_cap.unwrap_or(ws.guardrails().on_cap) {
                    OnCap::Skip => record("skipped_cap", with(json!({"cap": note})), after),
                    OnCap::Defer => Outcome::Defer(frees.max(now), format!("{note}; deferred until {frees}")),
                });
            }
        }
        // What it says.
        let Some(variant) = pick_variant(program.id.as_str(), &due.step_id, subject, &send.variants) else {
            return Ok(Outcome::Failed { transient: false, reason: "the send step has no template".into() });
        };
        let Some(parsed) = ws.parsed_template(variant.template.as_str()) else {
            return Ok(Outcome::Failed {
                transient: false,
                reason: format!("template `{}` is not defined", variant.template),
            });
        };
        let link_subject = LinkSubject {
            enrollment: enrollment.id.to_string(),
            step: due.step_id.clone(),
            contact: contact.to_string(),
        };
        let links = links(&self.signer, &self.config.public_url, &link_subject, template_links(parsed));
        let index = program.all_steps().iter().position(|s| s.id().as_str() == due.step_id).unwrap_or(0) as u32;
        let variant_name = (send.variants.len() > 1).then(|| variant.template.as_str());
        let ctx = self
            .runtime
            .read(|live| {
                render_context(
                    &live.engine,
                    account,
                    contact,
                    (program.id.as_str(), program.name.as_deref().unwrap_or(program.id.as_str())),
                    (due.step_id.as_str(), index),
                    variant_name,
                    links,
                    now,
                )
            })
            .await;
        let rendered = match render(parsed, &ctx, &Limits::default()) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Outcome::Failed {
                    transient: false,
                    reason: format!("template `{}`: {e}", variant.template),
                });
            }
        };
        let detail = with(json!({"variant": variant.template.as_str(), "subject": rendered.subject}));
        match send.channel {
            Channel::Email => {
                self.deliver_email(
                    due,
                    enrollment,
                    contact,
                    email.unwrap_or_default(),
                    traits,
                    rendered,
                    detail,
                    now,
                    after,
                )
                .await
            }
            Channel::InApp => {
                let body = if rendered.html.is_empty() { text_to_html(&rendered.text) } else { rendered.html.clone() };
                let id = self
                    .store
                    .add_inapp_message(contact as i64, enrollment.id, &due.step_id, &rendered.subject, &body, now)
                    .await?;
                let mut entry = ledger(due, channel, "sent", detail, now);
                entry.message_id = Some(format!("inapp:{id}"));
                Ok(Outcome::Record(entry, after))
            }
            Channel::Webhook | Channel::Sms | Channel::Slack => {
                let Some(url) = self.config.webhooks.get(&send.channel) else {
                    let var = format!("CAIRN_{}_WEBHOOK_URL", channel.to_uppercase());
                    return Ok(Outcome::Failed {
                        transient: false,
                        reason: format!("no URL is configured for the {channel} channel: set {var}"),
                    });
                };
                let body = json!({
                    "channel": channel,
                    "program": program.id.as_str(),
                    "step": due.step_id,
                    "enrollment_id": enrollment.id,
                    "contact": {"id": contact, "email": email, "phone": traits.get("phone").map(cairn_runtime::views::json_value)},
                    "account_id": account,
                    "subject": rendered.subject,
                    "text": rendered.text,
                });
                match self.webhook.post_webhook(url, &body, &self.config.webhook_secret, now).await {
                    Ok(answer) => {
                        let mut d = detail;
                        d["status"] = json!(answer.status);
                        Ok(Outcome::Record(ledger(due, channel, "sent", d, now), after))
                    }
                    Err(e) => Ok(Outcome::Failed { transient: e.is_transient(), reason: e.to_string() }),
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn deliver_email(
        &self,
        due: &DueStep,
        enrollment: &Enrollment,
        contact: u64,
        address: String,
        traits: &BTreeMap<String, Value>,
        rendered: RenderedMessage,
        detail: serde_json::Value,
        now: Timestamp,
        after: Option<After>,
    ) -> Result<Outcome, ProgramError> {
        let to = match Email::parse(&address) {
            Ok(e) => e,
            Err(e) => {
                return Ok(Outcome::Failed {
                    transient: false,
                    reason: format!("the contact's address `{address}` is not valid: {e}"),
                });
            }
        };
        let html = if rendered.html.is_empty() { text_to_html(&rendered.text) } else { rendered.html };
        let text = if rendered.text.is_empty() { html_to_text(&html) } else { rendered.text };
        let outgoing = OutgoingEmail {
            ledger_key: LedgerKey { enrollment: enrollment.id.to_string(), step: due.step_id.clone() },
            contact: contact.to_string(),
            from: self.config.from.clone(),
            from_name: self.config.from_name.clone(),
            to,
            to_name: match traits.get("name") {
                Some(Value::String(n)) => Some(n.chars().filter(|c| !c.is_control()).collect()),
                _ => None,
            },
            reply_to: None,
            subject: rendered.subject.clone(),
            text,
            html,
            date: now,
            message_id_domain: self.config.message_id_domain.clone(),
            public_url: self.config.public_url.clone(),
            unsubscribe_mailto: None,
        };
        let mut entry = ledger(due, "email", "sent", detail, now);
        if !self.mailer.is_smtp() {
            // The outbox keeps the parts, not the MIME message: the same checks and ids
            // without building it.
            let ids = match email_ids(&outgoing, &self.signer) {
                Ok(ids) => ids,
                Err(e) => return Ok(Outcome::Failed { transient: false, reason: e.to_string() }),
            };
            entry.message_id = Some(ids.message_id.clone());
            let headers = json!({
                "From": self.config.from.as_str(),
                "To": address,
                "Message-ID": ids.message_id,
                "List-Unsubscribe": ids.list_unsubscribe,
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            });
            let outbox = OutboxMessage {
                message_id: ids.message_id,
                to: address,
                subject: rendered.subject,
                html: outgoing.html,
                text: outgoing.text,
                headers: headers.to_string(),
                at: now,
            };
            return Ok(Outcome::Outbox(entry, outbox, after));
        }
        let built = match build_email(&outgoing, &self.signer) {
            Ok(b) => b,
            Err(e) => return Ok(Outcome::Failed { transient: false, reason: e.to_string() }),
        };
        entry.message_id = Some(built.message_id.clone());
        match self.mailer.send(&built).await {
            Ok(delivery) => {
                if let cairn_channels::Delivery::Smtp { code, reply } = delivery {
                    entry.detail = {
                        let mut d: serde_json::Value = serde_json::from_str(&entry.detail).unwrap_or_default();
                        d["smtp"] = json!({"code": code, "reply": reply});
                        d.to_string()
                    };
                }
                Ok(Outcome::Record(entry, after))
            }
            Err(e) => Ok(Outcome::Failed { transient: e.is_transient(), reason: e.to_string() }),
        }
    }
}

fn ledger(due: &DueStep, channel: &str, outcome: &str, detail: serde_json::Value, at: Timestamp) -> LedgerEntry {
    LedgerEntry {
        enrollment_id: due.enrollment_id,
        step_id: due.step_id.clone(),
        channel: channel.to_string(),
        outcome: outcome.to_string(),
        message_id: None,
        detail: detail.to_string(),
        at,
    }
}

/// A text body as HTML: escaped, paragraphs and line breaks kept.
pub fn text_to_html(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", escape_html(p.trim()).replace('\n', "<br>\n")))
        .collect();
    paragraphs.join("\n")
}

/// An HTML body as plain text for the text part: tags dropped, entities of the escaper
/// undone, blank runs collapsed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}
