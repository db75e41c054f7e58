//! Plain data the store hands out and takes in.

use serde::Serialize;

/// What an API key lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Sends tracking calls (`/v1/*`). Safe to embed in a backend, not in a browser.
    Write,
    /// Reads a contact's in-app messages from the browser.
    Publishable,
    /// Uses the REST API.
    Secret,
}

impl KeyKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Write => "write",
            KeyKind::Publishable => "publishable",
            KeyKind::Secret => "secret",
        }
    }

    /// Parses `write`, `publishable` or `secret`.
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "write" => Some(KeyKind::Write),
            "publishable" => Some(KeyKind::Publishable),
            "secret" => Some(KeyKind::Secret),
            _ => None,
        }
    }
}

/// What a secret key may do on the REST API; each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Read what the UI shows (`GET /api/*`).
    Read,
    /// And do a CSM's work through the API: health overrides, task completion, mail feedback.
    Write,
    /// And operate cairn: workspace reloads.
    Admin,
}

impl KeyScope {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Read => "read",
            KeyScope::Write => "write",
            KeyScope::Admin => "admin",
        }
    }

    /// Parses `read`, `write` or `admin`.
    pub fn parse(s: &str) -> Option<KeyScope> {
        match s {
            "read" => Some(KeyScope::Read),
            "write" => Some(KeyScope::Write),
            "admin" => Some(KeyScope::Admin),
            _ => None,
        }
    }

    /// Whether a key of this scope may do what needs `needed`.
    pub fn allows(self, needed: KeyScope) -> bool {
        self >= needed
    }
}

/// A stored API key (without the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Row id.
    pub id: i64,
    /// What it may do.
    pub kind: KeyKind,
    /// Its name; for write keys, the name of the source its events are recorded under.
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    /// A secret key's scope; `None` for write and publishable keys.
    pub scope: Option<KeyScope>,
}

/// What happened to one appended message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Appended {
    /// Stored now.
    New,
    /// Its messageId was already stored; nothing changed.
    Duplicate,
}

/// A record of one `cairn import` run.
#[derive(Debug, Clone, Serialize)]
pub struct ImportRun {
    /// accounts, contacts, subscriptions or events.
    pub kind: String,
    /// The file imported.
    pub file: String,
    /// The source system its ids belong to.
    pub source: String,
    /// Start time, ms since epoch.
    pub started_at: i64,
    /// End time, ms since epoch.
    pub finished_at: i64,
    /// Data rows read.
    pub rows_total: u64,
    /// Rows applied (including unchanged ones).
    pub rows_ok: u64,
    /// Rows rejected.
    pub rows_rejected: u64,
    /// The first rejected rows, as JSON.
    pub rejects: serde_json::Value,
}

/// A behaviour event (track, page or screen) as the engine reads it, with its identity
/// resolved now (through the `event_identity` view): an event that matched nobody when
/// it arrived has its contact and account as soon as they are known.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEvent {
    /// Its place in the log.
    pub seq: i64,
    /// When it happened (skew-corrected).
    pub ts: jiff::Timestamp,
    /// `track`, `page` or `screen`.
    pub kind: String,
    /// A track call's event name; for a page or screen call, its name when one was given.
    pub name: Option<String>,
    /// The contact it belongs to, if known.
    pub contact_id: Option<i64>,
    /// The account it belongs to (its groupId's, else its contact's), if known.
    pub account_id: Option<i64>,
    /// The source it was recorded under (the write key's name, or `import`).
    pub source: String,
    /// Its properties as JSON text, byte for byte as sent.
    pub properties: Option<String>,
}

/// An account as the engine reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountRecord {
    /// Internal id.
    pub id: i64,
    /// Company name.
    pub name: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Head count.
    pub employees: Option<i64>,
    /// Plan name.
    pub plan: Option<String>,
    /// Licensed seats.
    pub seats: Option<i64>,
    /// The owning CSM's email.
    pub owner_email: Option<String>,
    /// Customer since.
    pub start_date: Option<jiff::civil::Date>,
    /// Renewal date, when the CRM gives one.
    pub renewal_date: Option<jiff::civil::Date>,
    /// ARR in cents: the sum of the subscription lines active on the day asked about
    /// (both ends inclusive); `None` when no line is active that day.
    pub arr_cents: Option<i64>,
    /// Its CRM id (the smallest, should it have several).
    pub crm_id: Option<String>,
    /// Its product id (Segment `groupId`; the smallest, should it have several).
    pub product_id: Option<String>,
    /// Custom traits (empty when the stored text is not a JSON object).
    pub traits: serde_json::Map<String, serde_json::Value>,
}

/// A contact as the engine reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactRecord {
    /// Internal id.
    pub id: i64,
    /// Its account, if linked.
    pub account_id: Option<i64>,
    /// Email (lowercase).
    pub email: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Role (lowercase).
    pub role: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Custom traits (empty when the stored text is not a JSON object).
    pub traits: serde_json::Map<String, serde_json::Value>,
}

/// A transition to store (segment_entered, milestone_missed, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewTransition {
    /// A deterministic dedup key computed by the caller: a transition whose key is
    /// already stored is not stored again.
    pub key: String,
    /// When it happened.
    pub at: jiff::Timestamp,
    /// `account` or `contact`.
    pub subject_kind: String,
    /// The account's or contact's internal id.
    pub subject_id: i64,
    /// segment_entered, milestone_missed, …
    pub kind: String,
    /// Details as JSON text.
    pub detail: String,
    /// Derived while replaying the log after a definition change, not live.
    pub backfill: bool,
}

/// A stored transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredTransition {
    /// Its place in the transitions log (grows with every new transition).
    pub seq: i64,
    /// When it happened.
    pub at: jiff::Timestamp,
    /// `account` or `contact`.
    pub subject_kind: String,
    /// The account's or contact's internal id.
    pub subject_id: i64,
    /// segment_entered, milestone_missed, …
    pub kind: String,
    /// Details (the stored text as a JSON string when it is not JSON).
    pub detail: serde_json::Value,
    /// Derived while replaying the log after a definition change, not live.
    pub backfill: bool,
}

/// An account's end-of-day health from `day` on (a calendar day in the workspace time
/// zone), until the day before its next snapshot: the health history kept as runs
/// (migration 0007).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSnapshotRecord {
    /// The account.
    pub account_id: i64,
    /// The first day it holds for.
    pub day: jiff::civil::Date,
    /// The health model that scored it.
    pub model: String,
    /// The overall 0–100 score (`None`: no measure had data).
    pub score: Option<f64>,
    /// `red`, `yellow` or `green`.
    pub band: Option<String>,
    /// Each pillar's score, in model order.
    pub pillars: Vec<(String, Option<f64>)>,
    /// Each measure's 0–100 score, in model order: (pillar, measure, score).
    pub measures: Vec<(String, String, Option<f64>)>,
}

/// One health override as set by a CSM. The rows are the audit trail: an override is
/// changed or cleared by adding a row, never by editing one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthOverrideRecord {
    /// Row id (grows with every override set).
    pub id: i64,
    /// The account.
    pub account_id: i64,
    /// The score set (0–100); `None` when this row cleared the override.
    pub score: Option<f64>,
    /// Why, in the CSM's words.
    pub reason: String,
    /// Who set it.
    pub set_by: String,
    /// When it was set.
    pub set_at: jiff::Timestamp,
    /// When it stops counting, if ever.
    pub expires_at: Option<jiff::Timestamp>,
}

// ---------------------------------------------------------------------------------------
// Programs

/// Whether a program's subject is an account or a contact (the same two kinds the
/// external ids name).
pub use cairn_core::EntityKind as SubjectKind;

/// Reads a stored subject kind back.
pub(crate) fn parse_subject_kind(s: &str) -> Option<SubjectKind> {
    match s {
        "account" => Some(SubjectKind::Account),
        "contact" => Some(SubjectKind::Contact),
        _ => None,
    }
}

/// Where an enrollment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentStatus {
    /// Still running its steps.
    Active,
    /// Ran its last step.
    Completed,
    /// Its goal was met (the program's Effect KPI).
    GoalMet,
    /// An exit rule held, or an `exit` step ran.
    Exited,
}

impl EnrollmentStatus {
    /// The snake_case name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentStatus::Active => "active",
            EnrollmentStatus::Completed => "completed",
            EnrollmentStatus::GoalMet => "goal_met",
            EnrollmentStatus::Exited => "exited",
        }
    }

    /// Parses `active`, `completed`, `goal_met` or `exited`.
    pub fn parse(s: &str) -> Option<EnrollmentStatus> {
        match s {
            "active" => Some(EnrollmentStatus::Active),
            "completed" => Some(EnrollmentStatus::Completed),
            "goal_met" => Some(EnrollmentStatus::GoalMet),
            "exited" => Some(EnrollmentStatus::Exited),
            _ => None,
        }
    }
}

/// One subject's pass through a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrollment {
    /// Row id.
    pub id: i64,
    /// The program (its id in the workspace definitions).
    pub program_id: String,
    /// Whether the subject is an account or a contact.
    pub subject_kind: SubjectKind,
    /// The account's or contact's internal id.
    pub subject_id: i64,
    /// What enrolled it (a transition key, a schedule tick, …); with the program and the
    /// subject, unique.
    pub trigger_key: String,
    /// When it was enrolled.
    pub enrolled_at: jiff::Timestamp,
    /// In the holdout: enrolled, measured, but sent nothing.
    pub holdout: bool,
    /// The A/B arm, if the program splits.
    pub variant: Option<String>,
    /// Where it stands.
    pub status: EnrollmentStatus,
    /// When it ended, if it has.
    pub ended_at: Option<jiff::Timestamp>,
    /// When its program's goal was first met within the goal's window (none: not met).
    pub goal_met_at: Option<jiff::Timestamp>,
}

/// A step claimed by a worker (see `Store::claim_due_steps`), with what it needs to know
/// about its enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DueStep {
    /// Row id of this attempt.
    pub id: i64,
    /// The enrollment.
    pub enrollment_id: i64,
    /// The enrollment's program.
    pub program_id: String,
    /// The enrollment's subject kind.
    pub subject_kind: SubjectKind,
    /// The enrollment's subject.
    pub subject_id: i64,
    /// The step (its id in the program definition).
    pub step_id: String,
    /// When it is due now (a deferral moves it).
    pub due_at: jiff::Timestamp,
    /// When the step first became due (a wait's timeout counts from here).
    pub started_at: jiff::Timestamp,
    /// 0 for the first try, then one more for each retry.
    pub attempt: u32,
    /// Who holds the lease.
    pub lease_owner: Option<String>,
    /// Until when.
    pub lease_until: Option<jiff::Timestamp>,
}

/// What a step did, recorded once per (enrollment, step): the send ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// The enrollment.
    pub enrollment_id: i64,
    /// The step.
    pub step_id: String,
    /// email, inapp, webhook, slack, task, update, …
    pub channel: String,
    /// sent, held_out, skipped_consent, skipped_cap, deferred_cap, suppressed,
    /// quiet_hours, task_created, updated, …
    pub outcome: String,
    /// The message's id on its channel (an email's Message-ID), if any.
    pub message_id: Option<String>,
    /// Details as JSON text. For frequency caps the recipient is the enrollment's subject
    /// when that is a contact; for an account's enrollment, a numeric `contact_id` here
    /// names the contact it went to.
    pub detail: String,
    /// When.
    pub at: jiff::Timestamp,
}

/// What happens to the enrollment once a step is recorded, in the same transaction, so
/// that a crash can neither skip the next step nor run it twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// The step with this id becomes due at `due_at` (its first attempt).
    Next {
        /// The next step.
        step_id: String,
        /// When it is due.
        due_at: jiff::Timestamp,
    },
    /// The enrollment ends with this status (not `active`).
    End(EnrollmentStatus),
}

/// One step's record for [`crate::Store::complete_steps`]: the claimed step, its ledger
/// entry, the outbox row of an email kept locally, and what follows.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// The claimed step.
    pub due: DueStep,
    /// What it did.
    pub entry: LedgerEntry,
    /// The email, when it goes to the outbox.
    pub outbox: Option<OutboxMessage>,
    /// The next step or the enrollment's end.
    pub after: Option<After>,
    /// The event of the step for its contact (`email_sent`, with the contact's id),
    /// appended in the same transaction when the step is recorded now.
    pub event: Option<(i64, cairn_core::tracking::TrackingMessage)>,
}

/// One enrollment for [`crate::Store::enroll_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollRequest {
    /// The program.
    pub program_id: String,
    /// Account or contact.
    pub subject_kind: SubjectKind,
    /// The subject's id.
    pub subject_id: i64,
    /// What enrolled it; with the program and subject, unique.
    pub trigger_key: String,
    /// When.
    pub at: jiff::Timestamp,
    /// In the holdout.
    pub holdout: bool,
    /// The first step and when it is due; none (the holdout, a program without steps):
    /// the enrollment is stored as completed at once.
    pub first_step: Option<(String, jiff::Timestamp)>,
}

/// How a recipient engaged with one send (see `Store::record_engagement`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngagementRecord {
    /// The enrollment the send belongs to.
    pub enrollment_id: i64,
    /// The send step.
    pub step_id: String,
    /// delivered, opened, clicked, answered, bounced, complained, unsubscribed.
    pub kind: String,
    /// The first time it happened.
    pub at: jiff::Timestamp,
    /// Details as JSON text (an answer's score, a click's URL).
    pub detail: String,
}

/// What the programs' reports read about the enrollments made in a time range (see
/// `Store::program_activity`): each enrollment with its account, what its steps did and
/// how the recipients engaged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProgramActivity {
    /// The enrollments, by id.
    pub enrollments: Vec<MeasuredEnrollment>,
    /// Their send-ledger entries, by enrollment then step.
    pub sends: Vec<SendRecord>,
    /// Engagement with their sends, by enrollment, step and kind.
    pub engagements: Vec<EngagementRecord>,
}

/// An enrollment and the account it counts for: the subject itself, or the account of
/// the contact enrolled (none for a contact without one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasuredEnrollment {
    pub enrollment: Enrollment,
    pub account_id: Option<i64>,
}

/// A send-ledger entry with its recipient: the contact it went to (the enrolled contact,
/// or for an account's enrollment the contact named by the step), none when it reached
/// no contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendRecord {
    pub entry: LedgerEntry,
    pub contact_id: Option<i64>,
}

/// An email in the local outbox (nothing leaves the machine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    /// Its Message-ID; unique in the outbox.
    pub message_id: String,
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// HTML part.
    pub html: String,
    /// Text part.
    pub text: String,
    /// Headers as a JSON object text (`{"List-Unsubscribe": "…"}`).
    pub headers: String,
    /// When it was put in the outbox.
    pub at: jiff::Timestamp,
}

/// A step that failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Row id.
    pub id: i64,
    /// The due step's attempt that failed.
    pub due_step_id: i64,
    /// The enrollment.
    pub enrollment_id: i64,
    /// The enrollment's program.
    pub program_id: String,
    /// The enrollment's subject kind.
    pub subject_kind: SubjectKind,
    /// The enrollment's subject.
    pub subject_id: i64,
    /// The step.
    pub step_id: String,
    /// Which attempt (0 = the first) failed for good.
    pub attempt: u32,
    /// Why, as the channel said it.
    pub reason: String,
    /// When.
    pub at: jiff::Timestamp,
}

/// One change of a contact's consent to a topic. The rows are the history; the latest
/// (by `at`, then `id`) is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentChange {
    /// Row id.
    pub id: i64,
    /// The contact.
    pub contact_id: i64,
    /// The topic (a program's topic, or `all`).
    pub topic: String,
    /// Subscribed (true) or unsubscribed (false).
    pub subscribed: bool,
    /// Who said so: unsubscribe_link, import, api, …
    pub source: String,
    /// When.
    pub at: jiff::Timestamp,
}

/// A message in a contact's in-app inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InAppMessage {
    /// Row id (the id the product marks it by).
    pub id: i64,
    /// Whose inbox.
    pub contact_id: i64,
    /// The enrollment that put it there.
    pub enrollment_id: i64,
    /// The step that put it there.
    pub step_id: String,
    /// Title.
    pub title: String,
    /// Body, as HTML.
    pub body_html: String,
    /// When it arrived.
    pub created_at: jiff::Timestamp,
    /// First seen.
    pub seen_at: Option<jiff::Timestamp>,
    /// First clicked.
    pub clicked_at: Option<jiff::Timestamp>,
    /// Dismissed.
    pub dismissed_at: Option<jiff::Timestamp>,
}

/// How urgent a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskPriority {
    /// When there is time.
    Low,
    /// The default.
    Normal,
    /// Before normal work.
    High,
    /// Now.
    Urgent,
}

impl TaskPriority {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskPriority::Low => "low",
            TaskPriority::Normal => "normal",
            TaskPriority::High => "high",
            TaskPriority::Urgent => "urgent",
        }
    }

    /// Parses `low`, `normal`, `high` or `urgent`.
    pub fn parse(s: &str) -> Option<TaskPriority> {
        match s {
            "low" => Some(TaskPriority::Low),
            "normal" => Some(TaskPriority::Normal),
            "high" => Some(TaskPriority::High),
            "urgent" => Some(TaskPriority::Urgent),
            _ => None,
        }
    }

    /// The stored rank (higher is more urgent), so that open tasks sort by it.
    pub(crate) fn rank(self) -> i64 {
        match self {
            TaskPriority::Low => 0,
            TaskPriority::Normal => 1,
            TaskPriority::High => 2,
            TaskPriority::Urgent => 3,
        }
    }

    pub(crate) fn from_rank(rank: i64) -> Option<TaskPriority> {
        match rank {
            0 => Some(TaskPriority::Low),
            1 => Some(TaskPriority::Normal),
            2 => Some(TaskPriority::High),
            3 => Some(TaskPriority::Urgent),
            _ => None,
        }
    }
}

/// A task a program step makes for a human (see `Store::create_task`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewTask {
    /// The enrollment; with the step, unique.
    pub enrollment_id: i64,
    /// The step.
    pub step_id: String,
    /// The account it is about, if any.
    pub account_id: Option<i64>,
    /// The contact it is about, if any.
    pub contact_id: Option<i64>,
    /// What to do, in a line.
    pub title: String,
    /// Context for the person doing it.
    pub body: String,
    /// Who does it (an email): the account owner, or the pool member chosen.
    pub assignee: Option<String>,
    /// The team it went to, when pooled.
    pub pool: Option<String>,
    /// How urgent.
    pub priority: TaskPriority,
    /// By when.
    pub due_at: Option<jiff::Timestamp>,
    /// When it was made.
    pub created_at: jiff::Timestamp,
}

/// A stored task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Row id.
    pub id: i64,
    /// The enrollment that made it.
    pub enrollment_id: i64,
    /// The step that made it.
    pub step_id: String,
    /// The account it is about, if any.
    pub account_id: Option<i64>,
    /// The contact it is about, if any.
    pub contact_id: Option<i64>,
    /// What to do, in a line.
    pub title: String,
    /// Context for the person doing it.
    pub body: String,
    /// Who does it.
    pub assignee: Option<String>,
    /// The team it went to, when pooled.
    pub pool: Option<String>,
    /// How urgent.
    pub priority: TaskPriority,
    /// By when.
    pub due_at: Option<jiff::Timestamp>,
    /// When it was made.
    pub created_at: jiff::Timestamp,
    /// Who completed it, once done.
    pub completed_by: Option<String>,
    /// When it was completed; `None` while open.
    pub completed_at: Option<jiff::Timestamp>,
    /// What came of it, as the person completing it said (`None` when not given).
    pub outcome: Option<String>,
}

/// A CSM's note on an account (migration 0008).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountNote {
    /// Row id.
    pub id: i64,
    /// The account.
    pub account_id: i64,
    /// What the note says (plain text).
    pub body: String,
    /// Who wrote it.
    pub author: String,
    /// When.
    pub created_at: jiff::Timestamp,
}

/// A program an operator paused: the runner neither enrolls into it nor runs its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgramPause {
    /// The program.
    pub program_id: String,
    /// Who paused it.
    pub paused_by: String,
    /// When.
    pub paused_at: jiff::Timestamp,
}

/// One attempt of a step as stored, for inspection (`Store::step_attempts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepAttempt {
    /// Row id (a [`DueStep`]'s id).
    pub id: i64,
    /// The step.
    pub step_id: String,
    /// 0 for the first try.
    pub attempt: u32,
    /// When it was (or is) due.
    pub due_at: jiff::Timestamp,
    /// pending, done, retried, dead or cancelled.
    pub status: String,
    /// The error that ended this attempt (retried), or the dead-letter reason.
    pub last_error: Option<String>,
}
