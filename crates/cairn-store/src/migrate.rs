//! A small, strict migration runner: numbered SQL files applied in order, each in its
//! own transaction, recorded in `cairn_migrations`. Released migrations are never edited.

/// One migration: its number, file name and SQL.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_foundation.sql",
        sql: include_str!("../migrations/sqlite/0001_foundation.sql"),
    },
    Migration { version: 2, name: "0002_engine.sql", sql: include_str!("../migrations/sqlite/0002_engine.sql") },
    Migration { version: 3, name: "0003_programs.sql", sql: include_str!("../migrations/sqlite/0003_programs.sql") },
    Migration { version: 4, name: "0004_runner.sql", sql: include_str!("../migrations/sqlite/0004_runner.sql") },
    Migration {
        version: 5,
        name: "0005_pending_steps.sql",
        sql: include_str!("../migrations/sqlite/0005_pending_steps.sql"),
    },
    Migration {
        version: 6,
        name: "0006_events_dedupe_per_source.sql",
        sql: include_str!("../migrations/sqlite/0006_events_dedupe_per_source.sql"),
    },
    Migration {
        version: 7,
        name: "0007_health_snapshots.sql",
        sql: include_str!("../migrations/sqlite/0007_health_snapshots.sql"),
    },
    Migration { version: 8, name: "0008_ui.sql", sql: include_str!("../migrations/sqlite/0008_ui.sql") },
    Migration {
        version: 9,
        name: "0009_users_sessions_audit.sql",
        sql: include_str!("../migrations/sqlite/0009_users_sessions_audit.sql"),
    },
    Migration {
        version: 10,
        name: "0010_account_360.sql",
        sql: include_str!("../migrations/sqlite/0010_account_360.sql"),
    },
    Migration {
        version: 11,
        name: "0011_external_ids_by_entity.sql",
        sql: include_str!("../migrations/sqlite/0011_external_ids_by_entity.sql"),
    },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_foundation.sql",
        sql: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration { version: 2, name: "0002_engine.sql", sql: include_str!("../migrations/postgres/0002_engine.sql") },
    Migration { version: 3, name: "0003_programs.sql", sql: include_str!("../migrations/postgres/0003_programs.sql") },
    Migration { version: 4, name: "0004_runner.sql", sql: include_str!("../migrations/postgres/0004_runner.sql") },
    Migration {
        version: 5,
        name: "0005_pending_steps.sql",
        sql: include_str!("../migrations/postgres/0005_pending_steps.sql"),
    },
    Migration {
        version: 6,
        name: "0006_events_dedupe_per_source.sql",
        sql: include_str!("../migrations/postgres/0006_events_dedupe_per_source.sql"),
    },
    Migration {
        version: 7,
        name: "0007_health_snapshots.sql",
        sql: include_str!("../migrations/postgres/0007_health_snapshots.sql"),
    },
    Migration { version: 8, name: "0008_ui.sql", sql: include_str!("../migrations/postgres/0008_ui.sql") },
    Migration {
        version: 9,
        name: "0009_users_sessions_audit.sql",
        sql: include_str!("../migrations/postgres/0009_users_sessions_audit.sql"),
    },
    Migration {
        version: 10,
        name: "0010_account_360.sql",
        sql: include_str!("../migrations/postgres/0010_account_360.sql"),
    },
    Migration {
        version: 11,
        name: "0011_external_ids_by_entity.sql",
        sql: include_str!("../migrations/postgres/0011_external_ids_by_entity.sql"),
    },
];

/// Applies the migrations that `pool`'s database lacks. Generic over the two backends
/// through a macro because the SQL of the bookkeeping table is the same in both.
macro_rules! run_migrations {
    ($pool:expr, $migrations:expr, $lock:expr, $unlock:expr) => {{
        use sqlx::Row as _;
        let pool = $pool;
        let migrations: &[$crate::migrate::Migration] = $migrations;
        let mut conn = pool.acquire().await?;
        for stmt in $lock {
            sqlx::raw_sql(stmt).execute(&mut *conn).await?;
        }
        let result = async {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS cairn_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        let rows = sqlx::query("SELECT version FROM cairn_migrations").fetch_all(&mut *conn).await?;
        let applied: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
        let known = migrations.last().map(|m| m.version).unwrap_or(0);
        if let Some(found) = applied.iter().copied().max().filter(|v| *v > known) {
            return Err($crate::StoreError::TooNew { found, known });
        }
        for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
            let run = async {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO cairn_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(jiff::Timestamp::now().as_millisecond())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            };
            run.await.map_err(|source| $crate::StoreError::Migration { version: m.version, name: m.name, source })?;
        }
        Ok::<(), $crate::StoreError>(())
        }
        .await;
        for stmt in $unlock {
            sqlx::raw_sql(stmt).execute(&mut *conn).await?;
        }
        result
    }};
}

pub(crate) use run_migrations;
