//! cairn-store: where cairn keeps its state — the append-only event log, accounts,
//! contacts, their external ids, subscription lines, API keys and import runs.
//!
//! [`Store`] is the one API. It has two backends, chosen from the URL: SQLite
//! (`sqlite://PATH`, the embedded default; one file in WAL mode) and PostgreSQL
//! (`postgres://…`, for several nodes). Each backend has its own append-only migrations
//! under `migrations/<backend>/`; the SQL that both dialects accept is written once
//! (`shared.rs`) and stamped out for each backend, and only what differs (connection
//! setup, the bulk path) is written per backend. One conformance suite
//! (`tests/conformance.rs`) runs on both.
//!
//! This crate knows nothing about HTTP. Time comes in as arguments, never from the
//! system clock.

mod appender;
mod migrate;
pub mod postgres;
mod shared;
mod sqlite;
mod types;

use std::collections::HashMap;

use cairn_core::doctor::DoctorReport;
use cairn_core::import::{AccountRow, ContactRow, RowError, SubscriptionRow};
use cairn_core::tracking::TrackingMessage;
use cairn_core::{Money, Source};
use jiff::Timestamp;
use jiff::civil::Date;

pub use appender::Appender;
pub use postgres::copy_columns as pg_copy_line;
pub use types::{ApiKey, Appended, ImportRun, KeyKind};

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
pub struct BulkAppend(BulkTx);

enum BulkTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl BulkAppend {
    /// Appends messages, with the same semantics as [`Store::append`], inside the open
    /// transaction: nothing is durable until [`BulkAppend::commit`].
    pub async fn append(&mut self, source: &str, messages: &[TrackingMessage]) -> Result<Vec<Appended>> {
        match &mut self.0 {
            BulkTx::Sqlite(tx) => sqlite::append_in(tx, source, messages).await,
            BulkTx::Postgres(tx) => postgres::append_in(tx, source, messages).await,
        }
    }

    /// Commits everything appended so far.
    pub async fn commit(self) -> Result<()> {
        match self.0 {
            BulkTx::Sqlite(tx) => tx.commit().await?,
            BulkTx::Postgres(tx) => tx.commit().await?,
        }
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
        dispatch!(self, s => s.create_api_key(kind, name, key_hash, key_prefix, at).await)
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
        Ok(BulkAppend(match self {
            Store::Sqlite(s) => BulkTx::Sqlite(s.pool.begin_with("BEGIN IMMEDIATE").await?),
            Store::Postgres(s) => BulkTx::Postgres(s.pool.begin().await?),
        }))
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
    pub async fn account_arr_on(&self, source: Source, external_id: &str, day: Date) -> Result<Option<Money>> {
        dispatch!(self, s => s.account_arr_on(source, external_id, day).await)
    }

    /// How many times each message id is stored (0 or 1, by construction).
    pub async fn count_message_ids(&self, ids: &[String]) -> Result<HashMap<String, u64>> {
        dispatch!(self, s => s.count_message_ids(ids).await)
    }

    /// A canonical, id-independent dump of all state (accounts, contacts, subscriptions,
    /// identities, events), keyed by external ids: two stores with the same facts give
    /// equal snapshots whatever order the facts arrived in.
    pub async fn snapshot(&self) -> Result<serde_json::Value> {
        dispatch!(self, s => s.snapshot().await)
    }

    /// The last event sequence number (0 when the log is empty).
    pub async fn last_seq(&self) -> Result<i64> {
        dispatch!(self, s => s.last_seq().await)
    }
}
