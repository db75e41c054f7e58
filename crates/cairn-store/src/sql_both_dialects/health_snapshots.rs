//! Daily health snapshots (migration 0007): each account's end-of-day health as runs, a
//! row from each day the health changed, written by the runtime as the engine's days pass
//! and read for the account's trend and the health backtest.
//!
//! A write is an upsert keyed by (account, day) that leaves an equal row alone, so a
//! restart or a second node recomputing the same history writes nothing; with it, in the
//! same transaction, the setting `health_snapshots_through` moves forward (never back) to
//! the last day whose end the writer passed. The snapshot in force on a day is the
//! account's latest row on or before it.

/// Rows per multi-row upsert of snapshots (7 parameters each).
pub(crate) const SNAPSHOT_ROWS_PER_INSERT: usize = 500;

/// The setting holding the last day the snapshots cover.
pub(crate) const THROUGH_KEY: &str = "health_snapshots_through";

/// The most days [`health_snapshots_on`] answers at once (one query each).
pub(crate) const MAX_DAYS_PER_READ: usize = 1_000;

macro_rules! health_snapshots_impl {
    ($Store:ident, $Db:ty) => {
        const SNAPSHOT_COLUMNS: &str = "h.account_id, h.day, h.model, h.score, h.band, h.pillars, h.measures";

        fn health_snapshot(r: &DbRow) -> Result<HealthSnapshotRecord> {
            let day: String = r.get(1);
            let corrupt = |what: &str| crate::StoreError::Corrupt(format!("health snapshot of account {}: {what}", r.get::<i64, _>(0)));
            Ok(HealthSnapshotRecord {
                account_id: r.get(0),
                day: day.parse().map_err(|_| corrupt(&format!("day `{day}` is not YYYY-MM-DD")))?,
                model: r.get(2),
                score: r.get(3),
                band: r.get(4),
                pillars: serde_json::from_str(&r.get::<String, _>(5)).map_err(|e| corrupt(&format!("pillars: {e}")))?,
                measures: serde_json::from_str(&r.get::<String, _>(6)).map_err(|e| corrupt(&format!("measures: {e}")))?,
            })
        }

        impl $Store {
            pub(crate) async fn write_health_snapshots(&self, rows: &[HealthSnapshotRecord], through: Option<Date>) -> Result<u64> {
                use crate::sql_both_dialects::health_snapshots::{SNAPSHOT_ROWS_PER_INSERT, THROUGH_KEY};
                if rows.is_empty() && through.is_none() {
                    return Ok(0);
                }
                for r in rows {
                    if r.score.is_some_and(|s| !s.is_finite()) {
                        return Err(crate::StoreError::Invalid(format!("health snapshot of account {} on {}: score is not a number", r.account_id, r.day)));
                    }
                }
                let mut tx = self.begin_write().await?;
                let mut written = 0;
                for chunk in rows.chunks(SNAPSHOT_ROWS_PER_INSERT) {
                    // Changed: what is stored differs in what was scored (model, pillars,
                    // measures; the overall score and band follow from those under one
                    // set of definitions, and a change of definitions clears the rows).
                    let sql = format!(
                        "INSERT INTO health_snapshots (account_id, day, model, score, band, pillars, measures) VALUES {}
                         ON CONFLICT (account_id, day) DO UPDATE SET model = excluded.model, score = excluded.score, band = excluded.band,
                             pillars = excluded.pillars, measures = excluded.measures
                         WHERE health_snapshots.model <> excluded.model OR health_snapshots.pillars <> excluded.pillars
                            OR health_snapshots.measures <> excluded.measures",
                        values_rows(chunk.len(), 7, NUMBERED_PLACEHOLDERS)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for r in chunk {
                        let pillars = serde_json::to_string(&r.pillars).unwrap_or_else(|_| "[]".into());
                        let measures = serde_json::to_string(&r.measures).unwrap_or_else(|_| "[]".into());
                        q = q.bind(r.account_id).bind(r.day.to_string()).bind(r.model.as_str()).bind(r.score).bind(r.band.as_deref()).bind(pillars).bind(measures);
                    }
                    written += q.execute(&mut *tx).await?.rows_affected();
                }
                if let Some(through) = through {
                    // ISO days sort as text: the mark only moves forward.
                    sqlx::query(
                        "INSERT INTO settings (key, value) VALUES ($1, $2)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE settings.value < excluded.value",
                    )
                    .bind(THROUGH_KEY)
                    .bind(through.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(written)
            }

            pub(crate) async fn clear_health_snapshots(&self) -> Result<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM health_snapshots").execute(&mut *tx).await?;
                sqlx::query("DELETE FROM settings WHERE key = $1").bind(crate::sql_both_dialects::health_snapshots::THROUGH_KEY).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn health_snapshots_through(&self) -> Result<Option<Date>> {
                let Some(text) = self.setting(crate::sql_both_dialects::health_snapshots::THROUGH_KEY).await? else { return Ok(None) };
                text.parse().map(Some).map_err(|_| crate::StoreError::Corrupt(format!("health_snapshots_through `{text}` is not YYYY-MM-DD")))
            }

            pub(crate) async fn account_health_snapshots(&self, account_id: i64, from: Date, to: Date) -> Result<Vec<HealthSnapshotRecord>> {
                let sql = format!(
                    "SELECT {SNAPSHOT_COLUMNS} FROM health_snapshots h
                     WHERE h.account_id = $1 AND h.day <= $3
                       AND h.day >= COALESCE((SELECT MAX(x.day) FROM health_snapshots x WHERE x.account_id = $1 AND x.day <= $2), $2)
                     ORDER BY h.day"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).bind(from.to_string()).bind(to.to_string()).fetch_all(&self.pool).await?;
                rows.iter().map(health_snapshot).collect()
            }

            pub(crate) async fn health_snapshots_on(&self, days: &[Date]) -> Result<Vec<(Date, HealthSnapshotRecord)>> {
                use crate::sql_both_dialects::health_snapshots::MAX_DAYS_PER_READ;
                if days.len() > MAX_DAYS_PER_READ {
                    return Err(crate::StoreError::Invalid(format!("{} days asked for at once: ask for at most {MAX_DAYS_PER_READ}", days.len())));
                }
                let mut days = days.to_vec();
                days.sort_unstable();
                days.dedup();
                let sql = format!(
                    "SELECT {SNAPSHOT_COLUMNS} FROM health_snapshots h
                     JOIN (SELECT x.account_id, MAX(x.day) AS day FROM health_snapshots x WHERE x.day <= $1 GROUP BY x.account_id) l
                       ON l.account_id = h.account_id AND l.day = h.day
                     ORDER BY h.account_id"
                );
                let mut out = Vec::new();
                let mut conn = self.pool.acquire().await?;
                for day in days {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(day.to_string()).fetch_all(&mut *conn).await?;
                    for r in &rows {
                        out.push((day, health_snapshot(r)?));
                    }
                }
                Ok(out)
            }
        }
    };
}

pub(crate) use health_snapshots_impl;
