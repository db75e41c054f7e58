//! The SQLite backend: one file, WAL mode, `synchronous = FULL` so that a commit is on
//! disk before the caller is told it is.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use crate::migrate::{run_migrations, SQLITE};
use crate::StoreError;

/// A store in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
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
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        run_migrations!(&pool, SQLITE, [] as [&'static str; 0], [] as [&'static str; 0])?;
        Ok(SqliteStore { pool })
    }

    /// A write transaction that takes the write lock at once (no upgrade deadlocks).
    async fn begin_write(&self) -> crate::Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

crate::shared::shared_store_impl!(SqliteStore, Sqlite);

/// SQLite's bulk path is the multi-row insert itself: inside one transaction it runs at
/// the speed of the B-tree.
async fn insert_plain_events(
    conn: &mut sqlx::SqliteConnection,
    source: &str,
    msgs: &[&cairn_core::tracking::TrackingMessage],
) -> crate::Result<std::collections::HashSet<String>> {
    insert_events(conn, source, msgs).await
}
