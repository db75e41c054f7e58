//! The SQLite backend: one file, WAL mode, `synchronous = FULL` so that a commit is on
//! disk before the caller is told it is. The WAL is copied back into the database file
//! (checkpointed) by a task of its own on another connection, so that a commit does not
//! wait for it (see [`checkpoints`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use crate::StoreError;
use crate::migrate::{SQLITE, run_migrations};
use crate::signals::ChangeSignals;
use crate::sql_both_dialects::event_log::AppendLog;

/// How much a commit promises (see [`crate::Store::open_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk before the commit returns (`synchronous = FULL`): what serving needs.
    Full,
    /// Survives a crash of the process, not of the machine: the last commits before a
    /// power loss may be lost (WAL with `synchronous = NORMAL`, no sync per commit).
    SurvivesProcessCrash,
}

/// A store in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    pub(crate) signals: Arc<ChangeSignals>,
    /// Held by every clone: the checkpoint task stops when the last one is dropped.
    _alive: Arc<()>,
}

impl SqliteStore {
    pub(crate) async fn open(path: &str) -> crate::Result<SqliteStore> {
        SqliteStore::open_with(path, Durability::Full).await
    }

    pub(crate) async fn open_with(path: &str, durability: Durability) -> crate::Result<SqliteStore> {
        let synchronous = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::SurvivesProcessCrash => SqliteSynchronous::Normal,
        };
        let open_err = |source| StoreError::Open { url: format!("sqlite://{path}"), source };
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .pragma("cache_size", "-262144")
            .pragma("temp_store", "memory")
            // Checkpoints are `checkpoints`' work; a commit does one itself only if the
            // WAL outgrows this many pages (4 KiB each) all the same.
            .pragma("wal_autocheckpoint", "16384");
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.map_err(open_err)?;
        run_migrations!(&pool, SQLITE, [] as [&'static str; 0], [] as [&'static str; 0])?;
        let alive = Arc::new(());
        tokio::spawn(checkpoints(pool.clone(), Arc::downgrade(&alive)));
        Ok(SqliteStore { pool, signals: ChangeSignals::new(), _alive: alive })
    }

    /// A write transaction that takes the write lock at once (no upgrade deadlocks).
    async fn begin_write(&self) -> crate::Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// How often [`checkpoints`] copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Copies the WAL back into the database file every [`CHECKPOINT_EVERY`]
/// (`wal_checkpoint(PASSIVE)`: it never waits for readers or the writer, and does what
/// they allow) on a connection of the pool other than the writer's when the writer is
/// busy, so that checkpoints run beside commits on another core instead of inside them.
/// Stops when the store is dropped.
async fn checkpoints(pool: SqlitePool, alive: std::sync::Weak<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if alive.strong_count() == 0 || pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::debug!("checkpoint: {e}");
        }
    }
}

/// Whether bulk statements use `$N` placeholders (see `events_insert_sql`).
const NUMBERED_PLACEHOLDERS: bool = false;

/// The driver hands each row of a result to the caller's thread separately, a wake-up
/// each: many rows are read as one row holding a JSON array, and the rows a write touches
/// are selected that way just before it (RETURNING cannot be wrapped in a `WITH` here;
/// the write lock, `BEGIN IMMEDIATE`, is already held, so nothing changes in between).
const ROWS_ONE_AT_A_TIME: bool = true;

/// `expr` over the selected rows as a JSON array, as text.
fn json_array_agg(expr: &str) -> String {
    format!("json_group_array({expr})")
}

/// A JSON array of the comma-separated `exprs` of one row.
fn json_tuple(exprs: &str) -> String {
    format!("json_array({exprs})")
}

/// The row-locking clause of a claim of due steps: none, as SQLite's one writer (the
/// claim runs in a `BEGIN IMMEDIATE` transaction) already keeps two claims apart.
const CLAIM_LOCK: &str = "";

/// Makes appends to an append-only log take turns, so that rows become visible in `seq`
/// order. Nothing to do in SQLite: a write transaction (`BEGIN IMMEDIATE`) already holds
/// the database's one write lock until it commits.
async fn lock_log(_conn: &mut sqlx::SqliteConnection, _log: AppendLog) -> crate::Result<()> {
    Ok(())
}

crate::sql_both_dialects::store_impl!(SqliteStore, Sqlite);

/// SQLite's bulk path: multi-row inserts without `RETURNING`. Inside the write
/// transaction this connection is the only writer and `seq` is AUTOINCREMENT, so the rows
/// a statement adds are exactly those with `seq` above the previous maximum; only when a
/// statement skipped duplicates are their ids read back to tell new from old. (A skipped
/// row still uses up an AUTOINCREMENT value, so `seq` has gaps: the maximum is taken from
/// the last inserted rowid, never computed by adding up counts.)
async fn insert_plain_events(
    conn: &mut sqlx::SqliteConnection,
    source: &str,
    msgs: &[&cairn_core::tracking::TrackingMessage],
) -> crate::Result<Vec<bool>> {
    use sqlx::Row as _;
    let mut out = Vec::with_capacity(msgs.len());
    let mut before: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events").fetch_one(&mut *conn).await?.get(0);
    for chunk in msgs.chunks(crate::sql_both_dialects::event_log::EVENT_ROWS_PER_INSERT) {
        let sql = crate::sql_both_dialects::event_log::events_insert_sql(chunk.len(), false)
            .replace(" RETURNING message_id", "");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for m in chunk {
            q = bind_event(q, source, m);
        }
        let result = q.execute(&mut *conn).await?;
        let added = result.rows_affected() as i64;
        if added == chunk.len() as i64 {
            out.resize(out.len() + chunk.len(), true);
        } else {
            let rows =
                sqlx::query("SELECT message_id FROM events WHERE seq > $1").bind(before).fetch_all(&mut *conn).await?;
            let inserted = rows.iter().map(|r| r.get::<String, _>(0)).collect();
            out.extend(crate::sql_both_dialects::event_log::mark_new(chunk, &inserted));
        }
        if added > 0 {
            before = result.last_insert_rowid();
        }
    }
    Ok(out)
}
