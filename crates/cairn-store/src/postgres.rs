//! The PostgreSQL backend: for several cairn nodes on one database.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::migrate::{POSTGRES, run_migrations};
use crate::signals::ChangeSignals;
use crate::sql_both_dialects::event_log::AppendLog;
use crate::{StoreError, redact_url};

/// A store in a PostgreSQL database (optionally in its own schema).
#[derive(Clone, Debug)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    pub(crate) signals: Arc<ChangeSignals>,
}

impl PgStore {
    pub(crate) async fn open(url: &str) -> crate::Result<PgStore> {
        let open_err = |source| StoreError::Open { url: redact_url(url), source };
        // `?schema=NAME` keeps cairn's tables in a schema of their own (tests use one each).
        let (base, schema) = split_schema(url);
        let mut options = PgConnectOptions::from_str(&base).map_err(open_err)?;
        if let Some(schema) = &schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(StoreError::BadUrl(format!(
                    "{} (schema names may hold letters, digits and _)",
                    redact_url(url)
                )));
            }
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        let create_schema = schema.map(|s| format!("CREATE SCHEMA IF NOT EXISTS {s}"));
        let lock = ["SELECT pg_advisory_lock(7263415)".to_string()].into_iter().chain(create_schema);
        let lock: Vec<sqlx::AssertSqlSafe<String>> = lock.map(sqlx::AssertSqlSafe).collect();
        run_migrations!(&pool, POSTGRES, lock, ["SELECT pg_advisory_unlock(7263415)"])?;
        Ok(PgStore { pool, signals: ChangeSignals::new() })
    }

    async fn begin_write(&self) -> crate::Result<sqlx::Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

/// Splits `?schema=NAME` (or `&schema=NAME`) off a PostgreSQL URL.
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None) };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("schema=") {
            Some(s) => {
                schema = Some(s.to_string());
                false
            }
            None => true,
        })
        .collect();
    let base = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    (base, schema)
}

/// Whether bulk statements use `$N` placeholders (see `events_insert_sql`).
const NUMBERED_PLACEHOLDERS: bool = true;

/// The row-locking clause of a claim of due steps: rows another node is claiming right
/// now are skipped, not waited for, so several nodes share the work without blocking;
/// a row claimed and committed meanwhile is re-checked and no longer qualifies.
const CLAIM_LOCK: &str = "FOR UPDATE SKIP LOCKED";

/// A JSON array of the comma-separated `exprs` of one row.
fn json_tuple(exprs: &str) -> String {
    format!("json_build_array({exprs})")
}

/// Rows come over the socket in bulk: reads fetch rows as they are, and a write's
/// `RETURNING` is gathered into one JSON array by a `WITH` around it (atomic).
const ROWS_ONE_AT_A_TIME: bool = false;

/// `expr` over the selected rows as a JSON array, as text (`[]` for none).
fn json_array_agg(expr: &str) -> String {
    format!("COALESCE(json_agg({expr}), '[]')::text")
}

/// Makes appends to an append-only log take turns until their commit, so that rows
/// become visible in `seq` order and a reader may keep `seq` as its cursor. Without it,
/// two transactions (the group-commit writer and an import, or two nodes) could commit
/// seq 11 after a reader had already seen seq 12 and moved past 11. SQLite gets the same
/// ordering from its single write lock.
pub(crate) async fn lock_log(conn: &mut sqlx::PgConnection, log: AppendLog) -> crate::Result<()> {
    // Keyed by schema too: stores in other schemas of the same database do not wait.
    let log: i32 = match log {
        AppendLog::Events => 1,
        AppendLog::Transitions => 2,
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema()), $1)").bind(log).execute(&mut *conn).await?;
    Ok(())
}

crate::sql_both_dialects::store_impl!(PgStore, Postgres);

/// Runs of this many plain events or more go through COPY rather than INSERT.
const COPY_THRESHOLD: usize = 2_000;

/// Appends a run of plain events: small runs with multi-row INSERT; large ones with an
/// optimistic COPY straight into `events` (inside a savepoint), which is as fast as a bulk
/// load can be. Only when that COPY meets a `messageId` already stored (or repeated in the
/// run) is the savepoint rolled back and the run loaded through a staging table and one
/// `INSERT … SELECT … ON CONFLICT DO NOTHING`, which tells new from duplicate.
async fn insert_plain_events(
    conn: &mut sqlx::PgConnection,
    source: &str,
    msgs: &[&cairn_core::tracking::TrackingMessage],
) -> crate::Result<Vec<bool>> {
    if msgs.len() < COPY_THRESHOLD {
        return insert_events(conn, source, msgs).await;
    }
    let mut buf = Vec::with_capacity(msgs.len() * 256);
    for m in msgs {
        copy_columns(&mut buf, source, m);
    }
    sqlx::raw_sql("SAVEPOINT cairn_bulk_copy").execute(&mut *conn).await?;
    match copy_in(conn, "COPY events (message_id, kind, event, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at, received_at, source, properties, context) FROM STDIN", buf).await {
        Ok(()) => {
            sqlx::raw_sql("RELEASE SAVEPOINT cairn_bulk_copy").execute(&mut *conn).await?;
            Ok(vec![true; msgs.len()])
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT cairn_bulk_copy").execute(&mut *conn).await?;
            insert_through_staging(conn, source, msgs).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn copy_in(conn: &mut sqlx::PgConnection, statement: &str, buf: Vec<u8>) -> Result<(), sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(buf).await?;
    copy.finish().await.map(|_| ())
}

async fn insert_through_staging(
    conn: &mut sqlx::PgConnection,
    source: &str,
    msgs: &[&cairn_core::tracking::TrackingMessage],
) -> crate::Result<Vec<bool>> {
    use sqlx::Row as _;
    sqlx::raw_sql(
        "CREATE TEMP TABLE IF NOT EXISTS events_staging (
            ord BIGINT, message_id TEXT, kind TEXT, event TEXT, user_id TEXT, anonymous_id TEXT, group_id TEXT, previous_id TEXT,
            ts BIGINT, original_ts BIGINT, sent_at BIGINT, received_at BIGINT, source TEXT, properties TEXT, context TEXT
        ) ON COMMIT DELETE ROWS",
    )
    .execute(&mut *conn)
    .await?;
    let mut buf = Vec::with_capacity(msgs.len() * 256);
    for (i, m) in msgs.iter().enumerate() {
        copy_row(&mut buf, i, source, m);
    }
    copy_in(conn, "COPY events_staging (ord, message_id, kind, event, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at, received_at, source, properties, context) FROM STDIN", buf).await?;
    let rows = sqlx::query(
        "INSERT INTO events (message_id, kind, event, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at, received_at, source, properties, context)
         SELECT message_id, kind, event, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at, received_at, source, properties, context
         FROM events_staging ORDER BY ord
         ON CONFLICT (message_id, source) DO NOTHING RETURNING message_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    sqlx::raw_sql("TRUNCATE events_staging").execute(&mut *conn).await?;
    let inserted = rows.iter().map(|r| r.get::<String, _>(0)).collect();
    Ok(crate::sql_both_dialects::event_log::mark_new(msgs, &inserted))
}

/// One line of COPY text format: `ord` then the event columns.
fn copy_row(buf: &mut Vec<u8>, ord: usize, source: &str, m: &cairn_core::tracking::TrackingMessage) {
    buf.extend_from_slice(ord.to_string().as_bytes());
    buf.push(b'\t');
    copy_columns(buf, source, m);
}

/// The event columns of one message as a line of PostgreSQL COPY text format
/// (message_id, kind, event, user_id, anonymous_id, group_id, previous_id, ts,
/// original_ts, sent_at, received_at, source, properties, context).
pub fn copy_columns(buf: &mut Vec<u8>, source: &str, m: &cairn_core::tracking::TrackingMessage) {
    fn text(buf: &mut Vec<u8>, v: Option<&str>) {
        match v {
            None => buf.extend_from_slice(b"\\N"),
            Some(s) => {
                for b in s.bytes() {
                    match b {
                        b'\\' => buf.extend_from_slice(b"\\\\"),
                        b'\n' => buf.extend_from_slice(b"\\n"),
                        b'\r' => buf.extend_from_slice(b"\\r"),
                        b'\t' => buf.extend_from_slice(b"\\t"),
                        _ => buf.push(b),
                    }
                }
            }
        }
        buf.push(b'\t');
    }
    fn num(buf: &mut Vec<u8>, v: Option<i64>) {
        match v {
            None => buf.extend_from_slice(b"\\N"),
            Some(n) => buf.extend_from_slice(n.to_string().as_bytes()),
        }
        buf.push(b'\t');
    }
    let ms = |t: jiff::Timestamp| t.as_millisecond();
    text(buf, Some(&m.message_id));
    text(buf, Some(m.kind.as_str()));
    text(buf, m.event.as_deref());
    text(buf, m.user_id.as_deref());
    text(buf, m.anonymous_id.as_deref());
    text(buf, m.group_id.as_deref());
    text(buf, m.previous_id.as_deref());
    num(buf, Some(ms(m.timestamp)));
    num(buf, m.original_timestamp.map(ms));
    num(buf, m.sent_at.map(ms));
    num(buf, Some(ms(m.received_at)));
    text(buf, Some(source));
    text(buf, m.properties.as_deref());
    text(buf, m.context.as_deref());
    buf.pop();
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_is_split_from_the_url() {
        assert_eq!(
            super::split_schema("postgres://u@h/db?schema=t1&sslmode=disable"),
            ("postgres://u@h/db?sslmode=disable".to_string(), Some("t1".to_string()))
        );
        assert_eq!(super::split_schema("postgres://u@h/db"), ("postgres://u@h/db".to_string(), None));
    }
}
