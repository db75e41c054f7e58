//! cairn-store: where cairn keeps its state — the append-only event log, accounts,
//! contacts, their external ids, subscription lines, API keys and import runs — and what
//! the engine derives and keeps: transitions, CSMs' health overrides and the log of
//! definitions loaded — and what programs need to run exactly once: enrollments, due
//! steps claimed with leases, the send ledger, the local outbox, dead letters, consent,
//! suppressed addresses, the in-app inbox and tasks.
//!
//! [`Store`] is the one API. It has two backends, chosen from the URL: SQLite
//! (`sqlite://PATH`, the embedded default; one file in WAL mode) and PostgreSQL
//! (`postgres://…`, for several nodes). Each backend has its own append-only migrations
//! under `migrations/<backend>/`; the SQL that both dialects accept is written once
//! (`sql_both_dialects/`, a module per thing stored: the event log, identities, imports,
//! engine state, enrollments, due steps, the send ledger, consent, the inbox, tasks…) and
//! stamped out for each backend, and only what differs (connection setup, the bulk path)
//! is written per backend. One conformance suite
//! (`tests/conformance.rs`) runs on both.
//!
//! The methods only tests call (snapshots, one-step shortcuts of the set-wise calls,
//! inspection of attempts, ledger and consent) exist behind the `testing` cargo feature,
//! off by default, which test suites turn on in their `[dev-dependencies]`.
//!
//! This crate knows nothing about HTTP. Time comes in as arguments, never from the
//! system clock.
//!
//! The SQLite backend is one file, WAL mode, `synchronous=FULL`; the WAL is checkpointed
//! every 100 ms by a task on another connection of the pool, not inside commits. The
//! PostgreSQL backend may live in its own schema (`?schema=NAME`) and appends large runs of
//! events with `COPY` into a staging table and one `INSERT … SELECT … ON CONFLICT DO
//! NOTHING`. `Appender` is the group-commit writer: many HTTP requests' messages go into one
//! transaction and each request is answered after that commit. Identity calls (identify,
//! group, alias) are applied in order within the same transaction as their event, and only
//! when the event is new, so a resent message never re-applies old traits.
//!
//! Why an enum rather than a trait object: two backends, `async fn` everywhere, and one
//! obvious place (the `dispatch!` macro) to add a third (a sharded PostgreSQL for state,
//! ClickHouse for the raw archive) without boxing futures.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

mod api_keys;
mod appender;
mod audit_log;
mod migrate;
pub mod postgres;
mod signals;
mod sql_both_dialects;
mod sqlite;
mod subscription_ledger;
mod types;
mod users;

use std::collections::HashMap;

#[cfg(feature = "testing")]
use cairn_core::Money;
use cairn_core::Source;
use cairn_core::doctor::DoctorReport;
use cairn_core::import::{AccountRow, ContactRow, RowError, SubscriptionRow};
use cairn_core::tracking::TrackingMessage;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use signals::{ChangeSignals, Committed};
use tokio::sync::watch;

pub use api_keys::ApiKeyListing;
pub use appender::Appender;
pub use audit_log::{AuditActor, AuditEntry, AuditQuery, NewAuditEntry};
pub use postgres::copy_columns as pg_copy_line;
pub use sql_both_dialects::account_360::{ACTIVE_DAYS, AccountEvent, AccountMessage, ContactActivity, LAST_SEEN_DAYS};
pub use sql_both_dialects::consent::normalize_address;
pub use sql_both_dialects::scratch_copy::{DirectoryCopy, GuardRailChanges, RawEvent, SentRecord};
pub use sql_both_dialects::survey_and_journey::SurveyAnswerEvent;
pub use sqlite::Durability;
pub use subscription_ledger::SubscriptionLine;
pub use users::{SessionRecord, UserRecord};

/// What starts the internal alias of a contact (`cairn:contact:{id}`).
pub const CONTACT_ALIAS_PREFIX: &str = "cairn:contact:";

/// The internal alias that names a contact as a `userId` in events cairn writes.
pub fn contact_alias_of(contact_id: i64) -> String {
    format!("{CONTACT_ALIAS_PREFIX}{contact_id}")
}
pub use types::{AccountNote, ProgramPause};
pub use types::{
    AccountRecord, After, ApiKey, Appended, ConsentChange, ContactRecord, DeadLetter, DueStep, EngagementRecord,
    EnrollRequest, Enrollment, EnrollmentStatus, HealthOverrideRecord, HealthSnapshotRecord, ImportRun, InAppMessage,
    KeyKind, KeyScope, LedgerEntry, LogEvent, MeasuredEnrollment, NewTask, NewTransition, OutboxMessage,
    ProgramActivity, SendRecord, StepAttempt, StepRecord, StoredTransition, SubjectKind, Task, TaskPriority,
};

/// What can go wrong in the store. Messages say what to do where they can.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite://…` nor `postgres://…`.
    #[error(
        "unsupported database URL `{0}`: use sqlite://PATH (e.g. sqlite://cairn.db) or postgres://USER@HOST:PORT/DB"
    )]
    BadUrl(String),
    /// The database could not be opened or reached.
    #[error("cannot open the database at {url}: {source}")]
    Open {
        /// The URL with any password removed.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        /// Migration number.
        version: i64,
        /// Migration file name.
        name: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The database has migrations this build does not know: it was written by a newer cairn.
    #[error("the database is at schema version {found} but this cairn knows only up to {known}: upgrade cairn")]
    TooNew {
        /// Highest version in the database.
        found: i64,
        /// Highest version this build knows.
        known: i64,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Stored data that cannot be read back (a bug or a hand-edited database).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A group commit failed; every request in it is told so (and may retry).
    #[error("writing to the database failed: {0}")]
    WriteFailed(String),
    /// The store's writer stopped (the process is shutting down).
    #[error("the store's writer has stopped")]
    WriterGone,
    /// A value the store refuses to keep (the caller should have checked it).
    #[error("cannot store this: {0}")]
    Invalid(String),
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store: one of its backends.
#[derive(Clone, Debug)]
pub enum Store {
    /// The embedded default.
    Sqlite(sqlite::SqliteStore),
    /// PostgreSQL, for several nodes.
    Postgres(postgres::PgStore),
}

/// An open bulk-append transaction (see [`Store::bulk_append`]). Dropped without
/// [`BulkAppend::commit`], it rolls back.
pub struct BulkAppend {
    tx: BulkTx,
    signals: std::sync::Arc<ChangeSignals>,
    committed: Committed,
}

enum BulkTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl BulkAppend {
    /// Appends messages, with the same semantics as [`Store::append`], inside the open
    /// transaction: nothing is durable until [`BulkAppend::commit`].
    pub async fn append(&mut self, source: &str, messages: &[TrackingMessage]) -> Result<Vec<Appended>> {
        let outcomes = match &mut self.tx {
            BulkTx::Sqlite(tx) => sqlite::append_in(tx, source, messages).await?,
            BulkTx::Postgres(tx) => postgres::append_in(tx, source, messages).await?,
        };
        self.committed = self.committed.and(Committed::of_appends(messages, &outcomes));
        Ok(outcomes)
    }

    /// Commits everything appended so far.
    pub async fn commit(self) -> Result<()> {
        match self.tx {
            BulkTx::Sqlite(tx) => tx.commit().await?,
            BulkTx::Postgres(tx) => tx.commit().await?,
        }
        self.signals.after_commit(self.committed);
        Ok(())
    }
}

/// Removes the password from a database URL, for messages and logs.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
    {
        let user = creds.split(':').next().unwrap_or("");
        if creds.contains(':') {
            return format!("{scheme}://{user}:***@{host}");
        }
    }
    url.to_string()
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $body:expr) => {
        match $self {
            Store::Sqlite($s) => $body,
            Store::Postgres($s) => $body,
        }
    };
}

/// [`dispatch!`] for a write that a report reads but that moves neither events nor
/// account data (transitions, health, the send ledger, tasks, …): once it succeeded,
/// moves [`Store::report_inputs`], unless it was given nothing to write.
macro_rules! report_input {
    ($self:ident, $s:ident => $body:expr) => {
        report_input!($self, $s => $body, unless false)
    };
    ($self:ident, $s:ident => $body:expr, unless $nothing:expr) => {{
        let out = dispatch!($self, $s => $body);
        if out.is_ok() && !$nothing {
            dispatch!($self, s => s.signals.after_report_input());
        }
        out
    }};
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    ///
    /// `sqlite://PATH` (or a bare path ending in `.db`) opens an SQLite file;
    /// `postgres://…` or `postgresql://…` a PostgreSQL database. A PostgreSQL URL may
    /// carry `?schema=NAME` to keep cairn's tables in their own schema.
    pub async fn open(url: &str) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(postgres::PgStore::open(url).await?))
        } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Ok(Store::Sqlite(sqlite::SqliteStore::open(path).await?))
        } else if url.ends_with(".db") && !url.contains("://") {
            Ok(Store::Sqlite(sqlite::SqliteStore::open(url).await?))
        } else {
            Err(StoreError::BadUrl(redact_url(url)))
        }
    }

    /// [`Store::open`] with the durability of each commit chosen. Only SQLite has a
    /// choice; PostgreSQL keeps its server's settings. `SurvivesProcessCrash` is for data
    /// that can be made again from scratch (`cairn demo` writing a fresh database from a
    /// seed), never for what cairn is told by others.
    pub async fn open_with(url: &str, durability: Durability) -> Result<Store> {
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Ok(Store::Sqlite(sqlite::SqliteStore::open_with(path, durability).await?))
        } else if url.ends_with(".db") && !url.contains("://") {
            Ok(Store::Sqlite(sqlite::SqliteStore::open_with(url, durability).await?))
        } else {
            Store::open(url).await
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Closes the connections (waits for them to finish).
    pub async fn close(&self) {
        dispatch!(self, s => s.pool.close().await)
    }

    /// Records a new API key by its SHA-256 hash. The key itself is never stored.
    pub async fn create_api_key(
        &self,
        kind: KeyKind,
        name: &str,
        key_hash: &str,
        key_prefix: &str,
        at: Timestamp,
    ) -> Result<()> {
        let scope = (kind == KeyKind::Secret).then_some(KeyScope::Admin);
        dispatch!(self, s => s.create_api_key(kind, scope, name, key_hash, key_prefix, at).await)
    }

    /// Records a new secret key limited to `scope` (what [`Store::create_api_key`] gives a
    /// secret key is [`KeyScope::Admin`]: every power of the REST API).
    pub async fn create_secret_key(
        &self,
        scope: KeyScope,
        name: &str,
        key_hash: &str,
        key_prefix: &str,
        at: Timestamp,
    ) -> Result<()> {
        dispatch!(self, s => s.create_api_key(KeyKind::Secret, Some(scope), name, key_hash, key_prefix, at).await)
    }

    /// Finds a live (not revoked) API key by its SHA-256 hash.
    pub async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        dispatch!(self, s => s.find_api_key(key_hash).await)
    }

    /// Appends validated tracking messages in one transaction, in order, and applies
    /// what identify, group and alias calls say about identities. A message whose
    /// `messageId` is already stored is a duplicate and changes nothing. Returns one
    /// outcome per message. Durable when this returns.
    pub async fn append(&self, source: &str, messages: &[TrackingMessage]) -> Result<Vec<Appended>> {
        let mut out = self.append_groups(&[(source, messages)]).await?;
        Ok(out.pop().unwrap_or_default())
    }

    /// [`Store::append`] for several requests in one transaction (group commit): one
    /// outcome list per group.
    pub async fn append_groups(&self, groups: &[(&str, &[TrackingMessage])]) -> Result<Vec<Vec<Appended>>> {
        dispatch!(self, s => s.append_groups(groups).await)
    }

    /// Starts a bulk append: one long transaction for imports, committed by
    /// [`BulkAppend::commit`]. Appending a large file in a few big transactions, rather
    /// than many small ones, writes each index page once per commit instead of once per
    /// chunk (with random `messageId`s, every chunk dirties most of the index).
    pub async fn bulk_append(&self) -> Result<BulkAppend> {
        let tx = match self {
            Store::Sqlite(s) => BulkTx::Sqlite(s.pool.begin_with("BEGIN IMMEDIATE").await?),
            Store::Postgres(s) => {
                let mut tx = s.pool.begin().await?;
                postgres::lock_log(&mut tx, sql_both_dialects::event_log::AppendLog::Events).await?;
                BulkTx::Postgres(tx)
            }
        };
        let signals = dispatch!(self, s => std::sync::Arc::clone(&s.signals));
        Ok(BulkAppend { tx, signals, committed: Committed::default() })
    }

    /// Upserts accounts by external id in `source`. One result per row: a row that
    /// cannot be applied changes nothing and says why.
    pub async fn upsert_accounts(&self, source: Source, rows: &[AccountRow]) -> Result<Vec<Result<(), RowError>>> {
        dispatch!(self, s => s.upsert_accounts(source, rows).await)
    }

    /// Upserts contacts by external id in `source`, linking each to its account.
    pub async fn upsert_contacts(&self, source: Source, rows: &[ContactRow]) -> Result<Vec<Result<(), RowError>>> {
        dispatch!(self, s => s.upsert_contacts(source, rows).await)
    }

    /// Upserts subscription lines by (`source`, id); the account is found by its
    /// external id in `source`.
    pub async fn upsert_subscriptions(
        &self,
        source: Source,
        rows: &[SubscriptionRow],
    ) -> Result<Vec<Result<(), RowError>>> {
        dispatch!(self, s => s.upsert_subscriptions(source, rows).await)
    }

    /// Records what an import did.
    pub async fn record_import_run(&self, run: &ImportRun) -> Result<()> {
        dispatch!(self, s => s.record_import_run(run).await)
    }

    /// The data-readiness report for the day `today`.
    pub async fn doctor(&self, today: Date) -> Result<DoctorReport> {
        dispatch!(self, s => s.doctor(today).await)
    }

    /// The ARR of an account (by external id in `source`) on `day`: the sum of its
    /// lines active that day. `None` if no such account.
    #[cfg(feature = "testing")]
    pub async fn account_arr_on(&self, source: Source, external_id: &str, day: Date) -> Result<Option<Money>> {
        dispatch!(self, s => s.account_arr_on(source, external_id, day).await)
    }

    /// How many times each message id is stored (0 or 1, by construction).
    #[cfg(feature = "testing")]
    pub async fn count_message_ids(&self, ids: &[String]) -> Result<HashMap<String, u64>> {
        dispatch!(self, s => s.count_message_ids(ids).await)
    }

    /// A canonical, id-independent dump of all state (accounts, contacts, subscriptions,
    /// identities, events), keyed by external ids: two stores with the same facts give
    /// equal snapshots whatever order the facts arrived in.
    #[cfg(feature = "testing")]
    pub async fn snapshot(&self) -> Result<serde_json::Value> {
        dispatch!(self, s => s.snapshot().await)
    }

    /// The last event sequence number (0 when the log is empty).
    pub async fn last_seq(&self) -> Result<i64> {
        dispatch!(self, s => s.last_seq().await)
    }

    // -----------------------------------------------------------------------------------
    // What the engine reads and keeps

    /// Track, page and screen events with `seq > after_seq`, in seq order, at most
    /// `limit`, with identity resolved now. Identify, group and alias calls are not
    /// behaviour and are left out. Fewer than `limit` means there are no more for now.
    ///
    /// A reader can keep `seq` as its cursor: events become visible in seq order on both
    /// backends (on PostgreSQL, appending transactions take turns for that).
    pub async fn events_after(&self, after_seq: i64, limit: u32) -> Result<Vec<LogEvent>> {
        dispatch!(self, s => s.events_after(after_seq, limit).await)
    }

    /// The track, page and screen events named one of `names`, with `seq` in
    /// (`after_seq`, `up_to_seq`] and a time at or after `since`, in seq order, at most
    /// `limit`: what a reader that wants only some events reads, however many others
    /// lie between them (the filter runs before identity is resolved).
    pub async fn events_named_after(
        &self,
        after_seq: i64,
        up_to_seq: i64,
        names: &[&str],
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<LogEvent>> {
        dispatch!(self, s => s.events_named_after(after_seq, up_to_seq, names, since, limit).await)
    }

    /// [`Store::events_after`] of one source only (what cairn itself wrote: `cairn`).
    pub async fn events_after_from(&self, after_seq: i64, source: &str, limit: u32) -> Result<Vec<LogEvent>> {
        dispatch!(self, s => s.events_after_from(after_seq, source, limit).await)
    }

    /// `(seq, ts)` of every track, page and screen event with `seq <= up_to_seq`, in seq
    /// order. A replay orders them by time itself: there is no index on `ts`, so that
    /// appends stay fast.
    pub async fn event_times(&self, up_to_seq: i64) -> Result<Vec<(i64, Timestamp)>> {
        dispatch!(self, s => s.event_times(up_to_seq).await)
    }

    /// The track, page and screen events with these seqs, in the order of `seqs` (a seq
    /// given twice is returned twice); seqs of no such event are skipped. Any number of
    /// seqs: they are read in batches.
    pub async fn events_by_seq(&self, seqs: &[i64]) -> Result<Vec<LogEvent>> {
        dispatch!(self, s => s.events_by_seq(seqs).await)
    }

    /// The track events with one of these names (at most 16) and a time before `before`,
    /// identity-resolved, oldest first. Reads the whole event log (there is no index on
    /// the name): for reports.
    pub async fn events_named(&self, names: &[&str], before: Timestamp) -> Result<Vec<LogEvent>> {
        dispatch!(self, s => s.events_named(names, before).await)
    }

    /// The subjects of `kind` that were in `segment` just before `before`: those whose last
    /// `segment_entered` / `segment_exited` transition of that segment at an earlier instant
    /// is an entry. By id.
    pub async fn segment_members_before(
        &self,
        segment: &str,
        kind: SubjectKind,
        before: Timestamp,
    ) -> Result<Vec<i64>> {
        dispatch!(self, s => s.segment_members_before(segment, kind, before).await)
    }

    /// Every segment some subject ever entered, with the kind of its subjects, by id.
    pub async fn segments_in_transitions(&self) -> Result<Vec<(String, SubjectKind)>> {
        dispatch!(self, s => s.segments_in_transitions().await)
    }

    /// Every account, by id, with its ARR on `day`.
    pub async fn engine_accounts(&self, day: Date) -> Result<Vec<AccountRecord>> {
        dispatch!(self, s => s.engine_accounts(day).await)
    }

    /// Every contact, by id.
    pub async fn engine_contacts(&self) -> Result<Vec<ContactRecord>> {
        dispatch!(self, s => s.engine_contacts().await)
    }

    /// An account's internal id from an id as a user types it (surrounding spaces
    /// ignored): the internal number; else an external id, looked up in the CRM first,
    /// then product, billing and support; else a label as reports print them
    /// (`account#12`, `crm:A1`). `None` when nothing matches.
    pub async fn resolve_account(&self, id: &str) -> Result<Option<i64>> {
        dispatch!(self, s => s.resolve_account(id).await)
    }

    /// Stores health snapshots (runs, see [`HealthSnapshotRecord`]) in one transaction and
    /// records that the history is written through day `through` (kept at the latest
    /// given). A snapshot equal to the stored one of its account and day is not written
    /// again; a different one replaces it (a day's health as last scored). Returns how
    /// many rows were written.
    pub async fn write_health_snapshots(
        &self,
        rows: &[HealthSnapshotRecord],
        through: Option<jiff::civil::Date>,
    ) -> Result<u64> {
        report_input!(self, s => s.write_health_snapshots(rows, through).await, unless rows.is_empty() && through.is_none())
    }

    /// Forgets every health snapshot and how far they were written (the definitions
    /// changed: the replay that follows writes the history again).
    pub async fn clear_health_snapshots(&self) -> Result<()> {
        report_input!(self, s => s.clear_health_snapshots().await)
    }

    /// The last day whose end-of-day health is stored (snapshots say nothing of later
    /// days), if any.
    pub async fn health_snapshots_through(&self) -> Result<Option<jiff::civil::Date>> {
        dispatch!(self, s => s.health_snapshots_through().await)
    }

    /// An account's health from `from` to `to` (both included), for a trend chart: the
    /// snapshot in force on `from` (it may start earlier) and those starting after it, in
    /// day order.
    pub async fn account_health_snapshots(
        &self,
        account_id: i64,
        from: jiff::civil::Date,
        to: jiff::civil::Date,
    ) -> Result<Vec<HealthSnapshotRecord>> {
        dispatch!(self, s => s.account_health_snapshots(account_id, from, to).await)
    }

    /// Every account's snapshot in force on each of `days` (at most 1,000 days): `(day,
    /// snapshot)` by day, then account. An account without a snapshot on or before a day
    /// is absent from it.
    pub async fn health_snapshots_on(
        &self,
        days: &[jiff::civil::Date],
    ) -> Result<Vec<(jiff::civil::Date, HealthSnapshotRecord)>> {
        dispatch!(self, s => s.health_snapshots_on(days).await)
    }

    /// Stores transitions in one transaction, in order; one whose key is already stored
    /// (or repeated earlier in `rows`) is skipped. Returns how many were new.
    pub async fn append_transitions(&self, rows: &[NewTransition]) -> Result<u64> {
        report_input!(self, s => s.append_transitions(rows).await, unless rows.is_empty())
    }

    /// Transitions with `seq > after_seq`, in seq order, at most `limit`. Like events,
    /// they become visible in seq order, so `seq` can be a reader's cursor.
    pub async fn transitions_after(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredTransition>> {
        dispatch!(self, s => s.transitions_after(after_seq, limit).await)
    }

    /// An account's transitions and those of its contacts (the contacts linked to it
    /// now), newest first (by `at`, then by `seq`), at most `limit`.
    pub async fn account_transitions(&self, account_id: i64, limit: u32) -> Result<Vec<StoredTransition>> {
        dispatch!(self, s => s.account_transitions(account_id, limit).await)
    }

    /// Every account's journey transitions (`stage_changed`, `milestone_achieved`,
    /// `milestone_missed`) at or before `up_to`, oldest first (by `at`, then `seq`): what
    /// the journey funnel and Time to Value reports read.
    pub async fn journey_transitions(&self, up_to: Timestamp) -> Result<Vec<StoredTransition>> {
        dispatch!(self, s => s.journey_transitions(up_to).await)
    }

    /// The track events named in `events` (survey answers such as `nps_submitted`) from
    /// `from` up to, not including, `until`, oldest first, with the contact and account
    /// each resolved to.
    pub async fn survey_answer_events(
        &self,
        events: &[&str],
        from: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<SurveyAnswerEvent>> {
        dispatch!(self, s => s.survey_answer_events(events, from, until).await)
    }

    /// Records a CSM's health override of an account (`score: None` clears it) and
    /// returns the stored row. Rows are never changed: they are the audit trail. An
    /// unknown account or a score that is not a finite number is [`StoreError::Invalid`].
    pub async fn insert_health_override(
        &self,
        account_id: i64,
        score: Option<f64>,
        reason: &str,
        set_by: &str,
        set_at: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<HealthOverrideRecord> {
        report_input!(self, s => s.insert_health_override(account_id, score, reason, set_by, set_at, expires_at).await)
    }

    /// The audit trail of an account's overrides, oldest first (by `set_at`, then `id`).
    pub async fn health_overrides(&self, account_id: i64) -> Result<Vec<HealthOverrideRecord>> {
        dispatch!(self, s => s.health_overrides(account_id).await)
    }

    /// The latest override row (by `set_at`, then `id`) of every account that has one,
    /// by account id. Cleared and expired ones too: the caller decides what is in force.
    pub async fn latest_health_overrides(&self) -> Result<Vec<HealthOverrideRecord>> {
        dispatch!(self, s => s.latest_health_overrides().await)
    }

    /// Records that a workspace definition was loaded: its content hash, a one-line
    /// summary and when. Every call adds a row (the audit of definition changes).
    pub async fn record_definitions(&self, hash: &str, summary: &str, at: Timestamp) -> Result<()> {
        report_input!(self, s => s.record_definitions(hash, summary, at).await)
    }

    /// The hash of the definitions recorded last, if any.
    pub async fn last_definitions_hash(&self) -> Result<Option<String>> {
        dispatch!(self, s => s.last_definitions_hash().await)
    }

    /// A counter that grows after every commit that applied rows to accounts, contacts,
    /// subscription lines or identity links (imports, new identify/group/alias calls).
    /// Readers that keep traits in memory reload them when it moves. Only writes through
    /// this store (and its clones) move it, not other processes on the same database.
    pub fn data_changes(&self) -> watch::Receiver<u64> {
        dispatch!(self, s => s.signals.data_changes())
    }

    /// A counter that grows after every commit that stored new events (appends, the
    /// [`Appender`]'s group commits, bulk imports). In-process only, like
    /// [`Store::data_changes`].
    pub fn event_appends(&self) -> watch::Receiver<u64> {
        dispatch!(self, s => s.signals.event_appends())
    }

    /// A counter that grows after every commit that changed something a report reads:
    /// events, account data, transitions, health snapshots and overrides, definitions,
    /// enrollments, the send ledger and engagements, consent, tasks and program pauses.
    /// The report cache's data version (`cairn-server`). In-process only, like
    /// [`Store::data_changes`]: writes by another process are not seen.
    pub fn report_inputs(&self) -> watch::Receiver<u64> {
        dispatch!(self, s => s.signals.report_inputs())
    }

    // -----------------------------------------------------------------------------------
    // Programs: enrollments, due steps, the send ledger. None of these move
    // `data_changes()`: they change no account data.

    /// Enrolls a subject in a program unless an enrollment with the same (program,
    /// subject, `trigger_key`) exists; `None` then. So a trigger seen again (a restart, a
    /// second node, a replay) enrolls once; re-entry is a new trigger key.
    #[allow(clippy::too_many_arguments)]
    #[cfg(feature = "testing")]
    pub async fn enroll(
        &self,
        program_id: &str,
        subject_kind: SubjectKind,
        subject_id: i64,
        trigger_key: &str,
        at: Timestamp,
        holdout: bool,
        variant: Option<&str>,
    ) -> Result<Option<Enrollment>> {
        report_input!(self, s => s.enroll(program_id, subject_kind, subject_id, trigger_key, at, holdout, variant).await)
    }

    /// Many enrollments in one transaction, each with its first step scheduled in that
    /// transaction, so a crash never leaves an enrollment without it (one that has no
    /// first step is stored as completed: the holdout). How many were new.
    pub async fn enroll_many(&self, requests: &[EnrollRequest]) -> Result<u64> {
        report_input!(self, s => s.enroll_many(requests).await, unless requests.is_empty())
    }

    /// A subject's latest enrollment in a program (by `enrolled_at`, then id), whatever
    /// its status: what a re-entry policy looks at.
    pub async fn last_enrollment(
        &self,
        program_id: &str,
        subject_kind: SubjectKind,
        subject_id: i64,
    ) -> Result<Option<Enrollment>> {
        Ok(self.last_enrollments(program_id, subject_kind, &[subject_id]).await?.remove(&subject_id))
    }

    /// [`Store::last_enrollment`] for many subjects of one kind, in one query per 500:
    /// by subject id, those that were ever enrolled.
    pub async fn last_enrollments(
        &self,
        program_id: &str,
        subject_kind: SubjectKind,
        subject_ids: &[i64],
    ) -> Result<HashMap<i64, Enrollment>> {
        dispatch!(self, s => s.last_enrollments(program_id, subject_kind, subject_ids).await)
    }

    /// One enrollment by id.
    pub async fn enrollment(&self, id: i64) -> Result<Option<Enrollment>> {
        Ok(self.enrollments(&[id]).await?.into_iter().next())
    }

    /// The enrollments of these ids that exist, by id, in one query per 500.
    pub async fn enrollments(&self, ids: &[i64]) -> Result<Vec<Enrollment>> {
        dispatch!(self, s => s.enrollments(ids).await)
    }

    /// Ends an active enrollment (`completed`, `goal_met` or `exited`; `active` is
    /// [`StoreError::Invalid`]); an enrollment that already ended keeps its first end. Its
    /// pending steps are cancelled, except one under a live lease at `at`, which its
    /// worker finishes and records.
    #[cfg(feature = "testing")]
    pub async fn end_enrollment(&self, id: i64, status: EnrollmentStatus, at: Timestamp) -> Result<()> {
        report_input!(self, s => s.end_enrollment(id, status, at).await)
    }

    /// A program's active enrollments, by id.
    #[cfg(feature = "testing")]
    pub async fn active_enrollments(&self, program_id: &str) -> Result<Vec<Enrollment>> {
        dispatch!(self, s => s.active_enrollments(program_id).await)
    }

    /// Schedules a step of an enrollment, due at `due_at`. Idempotent: a step already
    /// scheduled (whatever became of it since) is left as it is, so re-planning after a
    /// restart schedules nothing twice. Nothing is scheduled for an enrollment that ended;
    /// an unknown enrollment is [`StoreError::Invalid`].
    #[cfg(feature = "testing")]
    pub async fn schedule_step(&self, enrollment_id: i64, step_id: &str, due_at: Timestamp) -> Result<()> {
        dispatch!(self, s => s.schedule_step(enrollment_id, step_id, due_at).await)
    }

    /// Claims up to `limit` due steps (`due_at <= now`, pending, of an active enrollment,
    /// lease free or expired at `now`) for `owner` until `now + lease`, oldest due first.
    /// Two claims never get the same step while its lease runs: on PostgreSQL the rows are
    /// picked `FOR UPDATE SKIP LOCKED`, so several nodes share the work without waiting on
    /// each other; SQLite has one writer, and the claim is one `UPDATE … RETURNING` in a
    /// write transaction. A lease of zero or less is [`StoreError::Invalid`].
    pub async fn claim_due_steps(
        &self,
        owner: &str,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> Result<Vec<DueStep>> {
        dispatch!(self, s => s.claim_due_steps(owner, now, lease, limit).await)
    }

    /// In one transaction, if `owner` still holds the lease of `due` (it claimed it and
    /// nobody claimed it since, even if the lease ran out): marks the step done and
    /// records `entry` in the ledger under (enrollment, step). `Ok(true)` when this call
    /// recorded it; `Ok(false)` when the lease was lost or the ledger already had the step
    /// (done by someone else) — nothing is recorded then. An entry for another enrollment
    /// or step than `due`'s is [`StoreError::Invalid`]. With `after`, what follows the
    /// step (the next step's first attempt, or the enrollment's end) is written in the
    /// same transaction, so a crash can neither skip it nor do it twice.
    #[cfg(feature = "testing")]
    pub async fn complete_step(
        &self,
        due: &DueStep,
        owner: &str,
        entry: &LedgerEntry,
        after: Option<&After>,
    ) -> Result<bool> {
        let record =
            StepRecord { due: due.clone(), entry: entry.clone(), outbox: None, after: after.cloned(), event: None };
        Ok(self.complete_steps(owner, std::slice::from_ref(&record)).await?.first().copied().unwrap_or(false))
    }

    /// [`Store::complete_step`] for an email to the local outbox: the outbox row is
    /// written in the same transaction as the ledger entry, so an outbox send is exactly
    /// once by construction. A message id already in the outbox (for another step) is
    /// [`StoreError::Invalid`], and nothing is recorded.
    #[cfg(feature = "testing")]
    pub async fn complete_step_with_outbox(
        &self,
        due: &DueStep,
        owner: &str,
        entry: &LedgerEntry,
        outbox: &OutboxMessage,
        after: Option<&After>,
    ) -> Result<bool> {
        let record = StepRecord {
            due: due.clone(),
            entry: entry.clone(),
            outbox: Some(outbox.clone()),
            after: after.cloned(),
            event: None,
        };
        Ok(self.complete_steps(owner, std::slice::from_ref(&record)).await?.first().copied().unwrap_or(false))
    }

    /// For many claimed steps in one transaction (one commit for a batch of sends), each
    /// whose lease `owner` still holds (it claimed it and nobody claimed it since, even if
    /// the lease ran out): marks the step done and records its ledger entry under
    /// (enrollment, step), with its local-outbox row when it has one (so an outbox send is
    /// exactly once by construction) and what follows the step (the next step's first
    /// attempt, or the enrollment's end), so a crash can neither skip it nor do it twice.
    /// Each answer says whether that step was recorded now (`false`: its lease was lost or
    /// the ledger had it already). An entry for another enrollment or step than its due
    /// step's, or an outbox message id already kept for another step, is
    /// [`StoreError::Invalid`].
    pub async fn complete_steps(&self, owner: &str, steps: &[StepRecord]) -> Result<Vec<bool>> {
        report_input!(self, s => s.complete_steps(owner, steps).await, unless steps.is_empty())
    }

    /// A transient failure: if `owner` still holds the lease, this attempt ends with
    /// `error` kept, and the next attempt (`attempt + 1`) is due at `next_due_at`, free for
    /// any worker to claim (none if the enrollment ended meanwhile). Does nothing when the
    /// lease was lost: the step's new owner decides.
    pub async fn retry_step(&self, due: &DueStep, owner: &str, next_due_at: Timestamp, error: &str) -> Result<()> {
        dispatch!(self, s => s.retry_step(due, owner, next_due_at, error).await)
    }

    /// A permanent failure: if `owner` still holds the lease, the step is marked dead and
    /// added to the dead letters with `reason`. Does nothing when the lease was lost.
    pub async fn dead_letter(&self, due: &DueStep, owner: &str, reason: &str, at: Timestamp) -> Result<()> {
        report_input!(self, s => s.dead_letter(due, owner, reason, at).await)
    }

    /// The latest dead letters, newest first, at most `limit`.
    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>> {
        dispatch!(self, s => s.dead_letters(limit).await)
    }

    /// Every attempt of every step of an enrollment, in the order they were made: what
    /// became of each (pending, done, retried, dead, cancelled) and its error.
    #[cfg(feature = "testing")]
    pub async fn step_attempts(&self, enrollment_id: i64) -> Result<Vec<StepAttempt>> {
        dispatch!(self, s => s.step_attempts(enrollment_id).await)
    }

    /// The earliest instant a pending step can be claimed (its due time, or its lease's
    /// end when later), so a worker can sleep until then; `None` when nothing is pending.
    #[cfg(feature = "testing")]
    pub async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        dispatch!(self, s => s.next_due_at().await)
    }

    /// What a step of an enrollment did, if it is recorded.
    pub async fn ledger_entry(&self, enrollment_id: i64, step_id: &str) -> Result<Option<LedgerEntry>> {
        dispatch!(self, s => s.ledger_entry(enrollment_id, step_id).await)
    }

    /// What the steps of these enrollments did, by enrollment, then time and step id.
    pub async fn ledger_entries_of(&self, enrollment_ids: &[i64]) -> Result<Vec<LedgerEntry>> {
        dispatch!(self, s => s.ledger_entries_of(enrollment_ids).await)
    }

    /// What the steps of an enrollment did, by time (then step id).
    #[cfg(feature = "testing")]
    pub async fn ledger_for_enrollment(&self, enrollment_id: i64) -> Result<Vec<LedgerEntry>> {
        dispatch!(self, s => s.ledger_for_enrollment(enrollment_id).await)
    }

    /// Sends to a contact on a channel at or after `since`, across all programs: ledger
    /// entries with outcome `sent` (for frequency caps). The recipient of an entry is its
    /// enrollment's subject when that is a contact, else its detail's `contact_id`.
    #[cfg(feature = "testing")]
    pub async fn sends_since(&self, contact_id: i64, channel: &str, since: Timestamp) -> Result<u32> {
        dispatch!(self, s => s.sends_since(contact_id, channel, since).await)
    }

    /// The local outbox, newest first, at most `limit` (for tests and `cairn outbox`).
    pub async fn outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>> {
        dispatch!(self, s => s.outbox(limit).await)
    }

    // -----------------------------------------------------------------------------------
    // Consent and suppression

    /// Records a contact's consent to a topic (`subscribed`) and who said so (`source`:
    /// unsubscribe_link, import, api, …). Every change is kept; the latest (by `at`, then
    /// the order recorded) is in force.
    pub async fn set_consent(
        &self,
        contact_id: i64,
        topic: &str,
        subscribed: bool,
        source: &str,
        at: Timestamp,
    ) -> Result<()> {
        report_input!(self, s => s.set_consent(contact_id, topic, subscribed, source, at).await)
    }

    /// A contact's consent to a topic in force: `None` when they never said.
    pub async fn consent(&self, contact_id: i64, topic: &str) -> Result<Option<bool>> {
        dispatch!(self, s => s.consent(contact_id, topic).await)
    }

    /// Every consent change of a contact, oldest first (by `at`, then the order recorded).
    #[cfg(feature = "testing")]
    pub async fn consent_history(&self, contact_id: i64) -> Result<Vec<ConsentChange>> {
        dispatch!(self, s => s.consent_history(contact_id).await)
    }

    /// Suppresses an address (compared lowercase and trimmed): nothing is sent to it
    /// again. `reason`: hard_bounce, complaint, unsubscribe_all. Suppressing it again keeps
    /// the first reason and time. An empty address is [`StoreError::Invalid`].
    pub async fn suppress_address(&self, address: &str, reason: &str, at: Timestamp) -> Result<()> {
        dispatch!(self, s => s.suppress_address(address, reason, at).await)
    }

    /// Whether an address is suppressed (compared lowercase and trimmed).
    #[cfg(feature = "testing")]
    pub async fn is_suppressed(&self, address: &str) -> Result<bool> {
        Ok(!self.suppressed_among(&[address]).await?.is_empty())
    }

    /// Which of these addresses are suppressed, as stored (lowercase and trimmed).
    pub async fn suppressed_among(&self, addresses: &[&str]) -> Result<std::collections::HashSet<String>> {
        dispatch!(self, s => s.suppressed_among(addresses).await)
    }

    // -----------------------------------------------------------------------------------
    // The in-app inbox

    /// Puts a message in a contact's in-app inbox and returns its id. One message per
    /// (enrollment, step, contact): adding it again (after a crash) returns the first id
    /// and changes nothing.
    pub async fn add_inapp_message(
        &self,
        contact_id: i64,
        enrollment_id: i64,
        step_id: &str,
        title: &str,
        body_html: &str,
        at: Timestamp,
    ) -> Result<i64> {
        report_input!(self, s => s.add_inapp_message(contact_id, enrollment_id, step_id, title, body_html, at).await)
    }

    /// A contact's in-app messages, newest first; dismissed ones only when asked.
    pub async fn inapp_messages(&self, contact_id: i64, include_dismissed: bool) -> Result<Vec<InAppMessage>> {
        dispatch!(self, s => s.inapp_messages(contact_id, include_dismissed).await)
    }

    /// Marks a contact's in-app message `seen`, `clicked` or `dismissed` (clicked and
    /// dismissed also mean seen); the first instant of each is kept. `Ok(false)` when the
    /// message is not this contact's (or does not exist); another action is
    /// [`StoreError::Invalid`].
    pub async fn mark_inapp(&self, message_id: i64, contact_id: i64, action: &str, at: Timestamp) -> Result<bool> {
        dispatch!(self, s => s.mark_inapp(message_id, contact_id, action, at).await)
    }

    // -----------------------------------------------------------------------------------
    // Tasks

    /// Creates a task and returns its id. One task per (enrollment, step): creating it
    /// again returns the first one's id and changes nothing.
    pub async fn create_task(&self, t: &NewTask) -> Result<i64> {
        report_input!(self, s => s.create_task(t).await)
    }

    /// Open tasks, most urgent first (priority, then due date, those without last), of an
    /// assignee and/or a pool; all open tasks when both are `None`.
    pub async fn open_tasks(&self, assignee: Option<&str>, pool: Option<&str>) -> Result<Vec<Task>> {
        dispatch!(self, s => s.open_tasks(assignee, pool).await)
    }

    /// The tasks open at an instant (made at or before it, not completed by then), oldest
    /// first: what a report of the team's backlog on a past day reads.
    pub async fn tasks_open_at(&self, at: Timestamp) -> Result<Vec<Task>> {
        dispatch!(self, s => s.tasks_open_at(at).await)
    }

    /// One task by id, open or done.
    pub async fn task(&self, id: i64) -> Result<Option<Task>> {
        dispatch!(self, s => s.task(id).await)
    }

    /// How many open tasks each member has (across pools), in the order given, 0 for
    /// those with none: what least-loaded assignment picks from.
    pub async fn open_task_counts(&self, pool_members: &[String]) -> Result<Vec<(String, u32)>> {
        dispatch!(self, s => s.open_task_counts(pool_members).await)
    }

    /// The assignee of the task given to a pool last: where round-robin continues from.
    pub async fn last_pool_assignee(&self, pool: &str) -> Result<Option<String>> {
        dispatch!(self, s => s.last_pool_assignee(pool).await)
    }

    /// Completes an open task. `Ok(false)` when it is not open (done already, or no such task).
    pub async fn complete_task(&self, id: i64, by: &str, at: Timestamp) -> Result<bool> {
        report_input!(self, s => s.complete_task(id, by, None, at).await)
    }

    /// Marks an open task done by `by` at `at` with the outcome they give; false when it
    /// is unknown or already done.
    pub async fn complete_task_with_outcome(&self, id: i64, by: &str, outcome: &str, at: Timestamp) -> Result<bool> {
        report_input!(self, s => s.complete_task(id, by, Some(outcome), at).await)
    }

    /// Gives an open task to `who` (a CSM taking it from a pool or from a colleague);
    /// false when it is unknown, done, or theirs already.
    pub async fn claim_task(&self, id: i64, who: &str) -> Result<bool> {
        report_input!(self, s => s.claim_task(id, who).await)
    }

    /// An account's tasks, open and done, newest first, at most `limit`.
    pub async fn account_tasks(&self, account_id: i64, limit: u32) -> Result<Vec<Task>> {
        dispatch!(self, s => s.account_tasks(account_id, limit).await)
    }

    /// Adds a CSM's note to an account; its row id.
    pub async fn add_account_note(&self, account_id: i64, body: &str, author: &str, at: Timestamp) -> Result<i64> {
        dispatch!(self, s => s.add_account_note(account_id, body, author, at).await)
    }

    /// An account's notes, newest first, at most `limit`.
    pub async fn account_notes(&self, account_id: i64, limit: u32) -> Result<Vec<AccountNote>> {
        dispatch!(self, s => s.account_notes(account_id, limit).await)
    }

    /// An account's product events before `before`, newest first (by instant, then
    /// `seq`), at most `limit`: those carrying its product id as groupId, and those
    /// carrying no groupId from one of its contacts (by product id or alias; cairn's own
    /// events about sends are not among them). Read through indexes (migration 0010).
    pub async fn account_events_before(
        &self,
        account_id: i64,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<AccountEvent>> {
        dispatch!(self, s => s.account_events_before(account_id, before, limit).await)
    }

    /// The messages programs sent to the account's contacts before `before`, newest
    /// first, at most `limit`, each with its program, subject and engagement.
    pub async fn account_messages_before(
        &self,
        account_id: i64,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<AccountMessage>> {
        dispatch!(self, s => s.account_messages_before(account_id, before, limit).await)
    }

    /// An account's tasks created before `before`, newest first, at most `limit`.
    pub async fn account_tasks_before(&self, account_id: i64, before: Timestamp, limit: u32) -> Result<Vec<Task>> {
        dispatch!(self, s => s.account_tasks_before(account_id, before, limit).await)
    }

    /// An account's tasks completed before `before`, the latest completed first, at most
    /// `limit`.
    pub async fn account_tasks_completed_before(
        &self,
        account_id: i64,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Task>> {
        dispatch!(self, s => s.account_tasks_completed_before(account_id, before, limit).await)
    }

    /// An account's notes written before `before`, newest first, at most `limit`.
    pub async fn account_notes_before(
        &self,
        account_id: i64,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<AccountNote>> {
        dispatch!(self, s => s.account_notes_before(account_id, before, limit).await)
    }

    /// An account's health overrides set before `before`, newest first, at most `limit`.
    pub async fn health_overrides_before(
        &self,
        account_id: i64,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<HealthOverrideRecord>> {
        dispatch!(self, s => s.health_overrides_before(account_id, before, limit).await)
    }

    /// An account's transitions and its contacts' before `before`, newest first, at
    /// most `limit`.
    pub async fn account_transitions_before(
        &self,
        account_id: i64,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredTransition>> {
        dispatch!(self, s => s.account_transitions_before(account_id, before, limit).await)
    }

    /// The activity of the account's contacts up to `now`: events and active days in the
    /// last [`ACTIVE_DAYS`], the latest event in the last [`LAST_SEEN_DAYS`], and the
    /// messages sent to each with how many were opened, clicked and bounced. Contacts
    /// with neither events nor messages are absent. By contact id.
    pub async fn account_contact_activity(&self, account_id: i64, now: Timestamp) -> Result<Vec<ContactActivity>> {
        dispatch!(self, s => s.account_contact_activity(account_id, now).await)
    }

    /// Pauses a program: the runner neither enrolls into it nor claims its due steps
    /// (they wait, and run after a resume). False when it was paused already.
    pub async fn pause_program(&self, program_id: &str, by: &str, at: Timestamp) -> Result<bool> {
        report_input!(self, s => s.pause_program(program_id, by, at).await)
    }

    /// Resumes a paused program; false when it was not paused.
    pub async fn resume_program(&self, program_id: &str) -> Result<bool> {
        report_input!(self, s => s.resume_program(program_id).await)
    }

    /// The paused programs, by id.
    pub async fn paused_programs(&self) -> Result<Vec<ProgramPause>> {
        dispatch!(self, s => s.paused_programs().await)
    }

    /// [`Store::complete_task`] for many (id, by, at), in one transaction: one answer each.
    pub async fn complete_tasks(&self, done: &[(i64, String, Timestamp)]) -> Result<Vec<bool>> {
        report_input!(self, s => s.complete_tasks(done).await, unless done.is_empty())
    }

    // -----------------------------------------------------------------------------------
    // The program runner (migration 0004): deferrals, wake-ups, engagement, goals,
    // settings shared by every node, and custom traits set by `update` steps.

    /// Moves a pending step `owner` holds to `until` and releases the lease, keeping `note`
    /// (why: quiet hours, a frequency cap, a wait still waiting) as the attempt's last
    /// word. Not a new attempt: `started_at` and `attempt` stay. `Ok(false)` when the lease
    /// was lost.
    pub async fn defer_step(&self, due: &DueStep, owner: &str, until: Timestamp, note: &str) -> Result<bool> {
        dispatch!(self, s => s.defer_step(due, owner, until, note).await)
    }

    /// [`Store::defer_step`] for many steps at once, each `(due, until, note)`: one
    /// transaction, a multi-row statement per 300. How many were deferred (a step whose
    /// lease was lost is left as it is).
    pub async fn defer_steps(&self, owner: &str, steps: &[(DueStep, Timestamp, String)]) -> Result<u64> {
        dispatch!(self, s => s.defer_steps(owner, steps).await)
    }

    /// Makes the pending steps `step_ids` of an enrollment due at `at` if they were due
    /// later (a `wait until` told that something it waits for happened). How many moved.
    pub async fn wake_steps(&self, enrollment_id: i64, step_ids: &[String], at: Timestamp) -> Result<u64> {
        dispatch!(self, s => s.wake_steps(enrollment_id, step_ids, at).await)
    }

    /// [`Store::wake_steps`] for many (enrollment, steps, at), in one transaction.
    pub async fn wake_steps_many(&self, wakes: &[(i64, Vec<String>, Timestamp)]) -> Result<u64> {
        dispatch!(self, s => s.wake_steps_many(wakes).await)
    }

    /// [`Store::record_engagement`] for many, in order and in one transaction: one answer
    /// each (a second of the same key in `rows` is `false`).
    pub async fn record_engagements(&self, rows: &[EngagementRecord]) -> Result<Vec<bool>> {
        report_input!(self, s => s.record_engagements(rows).await, unless rows.is_empty())
    }

    /// Records that the recipient of a send engaged with it (`kind`: delivered, opened,
    /// clicked, answered, bounced, complained, unsubscribed), once per kind: `Ok(true)`
    /// the first time, `Ok(false)` after (or for an unknown enrollment).
    pub async fn record_engagement(
        &self,
        enrollment_id: i64,
        step_id: &str,
        kind: &str,
        at: Timestamp,
        detail: &str,
    ) -> Result<bool> {
        report_input!(self, s => s.record_engagement(enrollment_id, step_id, kind, at, detail).await)
    }

    /// [`Store::engagements`] of many enrollments at once (one query per 500), by
    /// enrollment; an enrollment without any is absent.
    pub async fn engagements_of(&self, enrollment_ids: &[i64]) -> Result<HashMap<i64, Vec<EngagementRecord>>> {
        dispatch!(self, s => s.engagements_of(enrollment_ids).await)
    }

    /// Every engagement with an enrollment's sends, by time.
    pub async fn engagements(&self, enrollment_id: i64) -> Result<Vec<EngagementRecord>> {
        dispatch!(self, s => s.engagements(enrollment_id).await)
    }

    /// Records the first time an enrollment's goal was met. `Ok(false)` if it was already.
    pub async fn mark_goal_met(&self, enrollment_id: i64, at: Timestamp) -> Result<bool> {
        report_input!(self, s => s.mark_goal_met(enrollment_id, at).await)
    }

    /// Marks the goal of each of these enrollments met at `at` (those not marked yet), in
    /// one transaction; how many were marked now.
    pub async fn mark_goals_met(&self, enrollment_ids: &[i64], at: Timestamp) -> Result<u64> {
        dispatch!(self, s => s.mark_goals_met(enrollment_ids, at).await)
    }

    /// A program's enrollments (active or not, holdout included) enrolled at or after
    /// `enrolled_since` whose goal is not met yet: what the goal check looks at.
    pub async fn enrollments_to_measure(&self, program_id: &str, enrolled_since: Timestamp) -> Result<Vec<Enrollment>> {
        dispatch!(self, s => s.enrollments_to_measure(program_id, enrolled_since).await)
    }

    /// Every enrollment made at or after `since` and before `until` (any program, holdout
    /// included) with its account, its send-ledger entries and the engagement with them:
    /// what `cairn report programs` and `experiments` measure, in three queries.
    pub async fn program_activity(&self, since: Timestamp, until: Timestamp) -> Result<ProgramActivity> {
        dispatch!(self, s => s.program_activity(since, until).await)
    }

    /// Every enrollment of a program, by id (the demo's summary counts them).
    pub async fn program_enrollments(&self, program_id: &str) -> Result<Vec<Enrollment>> {
        dispatch!(self, s => s.program_enrollments(program_id).await)
    }

    /// When each message `sent` to each of many contacts on a channel since `since` was
    /// sent (a frequency cap's window and when it frees up), in one query per 500: each
    /// contact with a send in the window, its send times oldest first.
    pub async fn sent_times_since_many(
        &self,
        contact_ids: &[i64],
        channel: &str,
        since: Timestamp,
    ) -> Result<HashMap<i64, Vec<Timestamp>>> {
        dispatch!(self, s => s.sent_times_since_many(contact_ids, channel, since).await)
    }

    /// The first of `topics` the contact is unsubscribed from (its latest change says
    /// so), in one query: what a send checks (the program's topic and `all`).
    #[cfg(feature = "testing")]
    pub async fn unsubscribed_from(&self, contact_id: i64, topics: &[&str]) -> Result<Option<String>> {
        let unsubscribed = self.unsubscribed_topics(&[contact_id]).await?.remove(&contact_id).unwrap_or_default();
        Ok(topics.iter().find(|t| unsubscribed.contains(**t)).map(|t| t.to_string()))
    }

    /// Per contact, the topics it is unsubscribed from (its latest change for the topic
    /// says so), in one query per 500 contacts; contacts with none are absent.
    pub async fn unsubscribed_topics(
        &self,
        contact_ids: &[i64],
    ) -> Result<HashMap<i64, std::collections::BTreeSet<String>>> {
        dispatch!(self, s => s.unsubscribed_topics(contact_ids).await)
    }

    /// A setting shared by every node on this database.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        dispatch!(self, s => s.setting(key).await)
    }

    /// Sets a setting (insert or replace).
    pub async fn put_setting(&self, key: &str, value: &str) -> Result<()> {
        dispatch!(self, s => s.put_setting(key, value).await)
    }

    /// The setting's value, storing `value` first if it has none: when several nodes race
    /// to create a secret, all end up with the one stored first.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        dispatch!(self, s => s.setting_or_insert(key, value).await)
    }

    /// The internal alias `cairn:contact:{id}` that names a contact as a `userId`, created
    /// if needed: events cairn writes about a contact (a send, an open, an answer) carry it,
    /// so the usual identity resolution ties them to the contact even if the product never
    /// identified them.
    #[cfg(feature = "testing")]
    pub async fn contact_alias(&self, contact_id: i64) -> Result<String> {
        self.contact_aliases(&[contact_id]).await?;
        Ok(contact_alias_of(contact_id))
    }

    /// Creates, if needed and in one transaction, the internal alias `cairn:contact:{id}`
    /// ([`contact_alias_of`]) of each contact, which names it as a `userId`: events cairn
    /// writes about a contact (a send, an open, an answer) carry it, so the usual identity
    /// resolution ties them to the contact even if the product never identified them.
    pub async fn contact_aliases(&self, contact_ids: &[i64]) -> Result<()> {
        dispatch!(self, s => s.contact_aliases(contact_ids).await)
    }

    /// Sets one custom trait of an account or contact (an `update` step). `Ok(false)` when
    /// there is no such account or contact. Moves [`Store::data_changes`].
    pub async fn set_custom_trait(
        &self,
        kind: SubjectKind,
        id: i64,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<bool> {
        report_input!(self, s => s.set_custom_trait(kind, id, name, value).await)
    }

    /// The ledger entry of the send whose Message-ID is `message_id` (with or without its
    /// angle brackets): how a bounce or complaint that names the message finds the
    /// (enrollment, step) it belongs to. `None` when no recorded send has that id.
    pub async fn ledger_by_message_id(&self, message_id: &str) -> Result<Option<LedgerEntry>> {
        dispatch!(self, s => s.ledger_by_message_id(message_id).await)
    }

    /// A contact's internal id from the `userId` the product knows it by (surrounding
    /// spaces ignored): its product external id, else one of its aliases — the order
    /// identity resolution uses for events. `None` when nothing matches.
    pub async fn resolve_contact(&self, user_id: &str) -> Result<Option<i64>> {
        dispatch!(self, s => s.resolve_contact(user_id).await)
    }

    // --- copies for a program's dry run (`sql_both_dialects/scratch_copy.rs`) ---

    /// The directory (accounts, domains, contacts, external ids, aliases, subscription
    /// lines, and the health overrides set up to `overrides_up_to`) with its ids, to
    /// write into a scratch store.
    pub async fn read_directory(&self, overrides_up_to: Timestamp) -> Result<DirectoryCopy> {
        dispatch!(self, s => s.read_directory(overrides_up_to).await)
    }

    /// Writes a directory read from another store, ids kept, in one transaction; refused
    /// unless this store holds no account (a fresh scratch store).
    pub async fn write_directory(&self, copy: &DirectoryCopy) -> Result<()> {
        dispatch!(self, s => s.write_directory(copy).await)
    }

    /// The consent changes and suppressions recorded in (`after`, `up_to`].
    pub async fn read_guard_rail_changes(&self, after: Timestamp, up_to: Timestamp) -> Result<GuardRailChanges> {
        dispatch!(self, s => s.read_guard_rail_changes(after, up_to).await)
    }

    /// Writes consent changes and suppressions read from another store.
    pub async fn write_guard_rail_changes(&self, changes: &GuardRailChanges) -> Result<()> {
        dispatch!(self, s => s.write_guard_rail_changes(changes).await)
    }

    /// Up to `limit` events after `after_seq`, in `seq` order, as the messages they were
    /// appended from (identity columns raw), with their source.
    pub async fn raw_events_after(&self, after_seq: i64, limit: u32) -> Result<Vec<RawEvent>> {
        dispatch!(self, s => s.raw_events_after(after_seq, limit).await)
    }

    /// Every recorded send (outcome `sent`, any channel) in [`since`, `until`), in time order.
    pub async fn sent_between(&self, since: Timestamp, until: Timestamp) -> Result<Vec<SentRecord>> {
        dispatch!(self, s => s.sent_between(since, until).await)
    }

    /// Records sends made outside this (scratch) store in its ledger, so frequency caps
    /// count them: under one completed placeholder enrollment per program, which the
    /// runner never runs; a send recorded twice is kept once.
    pub async fn record_outside_sends(&self, sends: &[SentRecord]) -> Result<()> {
        report_input!(self, s => s.record_outside_sends(sends).await, unless sends.is_empty())
    }

    /// Writes enrollments read from another store, ids and status as given (no steps).
    pub async fn copy_enrollments(&self, enrollments: &[Enrollment]) -> Result<()> {
        report_input!(self, s => s.copy_enrollments(enrollments).await, unless enrollments.is_empty())
    }

    /// Ends a copied enrollment (it has no steps) as it ended in the store it came from.
    pub async fn set_enrollment_end(&self, id: i64, status: EnrollmentStatus, at: Timestamp) -> Result<()> {
        report_input!(self, s => s.set_enrollment_end(id, status, at).await)
    }
}
