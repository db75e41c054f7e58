//! The SQLite backend: one file, WAL mode, `synchronous = FULL` so that a commit is on
//! disk before the caller is told it is.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use crate::StoreError;
use crate::migrate::{SQLITE, run_migrations};
use crate::shared::AppendLog;
use crate::signals::ChangeSignals;

/// A store in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    pub(crate) signals: Arc<ChangeSignals>,
}

impl SqliteStore {
    pub(crate) async fn open(path: &str) -> crate::Result<SqliteStore> {
        let open_err = |source| StoreError::Open { url: format!("sqlite://{path}"), source };
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .pragma("cache_size", "-262144")
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.map_err(open_err)?;
        run_migrations!(&pool, SQLITE, [] as [&'static str; 0], [] as [&'static str; 0])?;
        Ok(SqliteStore { pool, signals: ChangeSignals::new() })
    }

    /// A write transaction that takes the write lock at once (no upgrade deadlocks).
    async fn begin_write(&self) -> crate::Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
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

crate::shared::shared_store_impl!(SqliteStore, Sqlite);

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
    for chunk in msgs.chunks(crate::shared::EVENT_ROWS_PER_INSERT) {
        let sql = crate::shared::events_insert_sql(chunk.len(), false).replace(" RETURNING message_id", "");
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
            out.extend(crate::shared::mark_new(chunk, &inserted));
        }
        if added > 0 {
            before = result.last_insert_rowid();
        }
    }
    Ok(out)
}
