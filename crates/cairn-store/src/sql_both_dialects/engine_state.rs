//! What the engine reads and keeps: accounts and contacts as of a day, transitions,
//! health overrides and the hash of the definitions last evaluated.
//!
//! The engine's side (migration 0002): `transitions` (deduplicated by key), the append-only
//! `health_overrides` audit trail and `definitions` log; `events_after` / `event_times` /
//! `events_by_seq` hand the engine identity-resolved events; `event_appends()` and
//! `data_changes()` are in-process signals the runtime waits on. On PostgreSQL every
//! transaction that appends events (or transitions) takes a per-schema advisory lock until
//! it commits, so `seq` becomes visible in order and a reader tailing by `seq` never skips
//! one (SQLite's single writer gives this for free).

/// Rows per multi-row INSERT of transitions (7 parameters each).
pub(crate) const TRANSITION_ROWS_PER_INSERT: usize = 500;

macro_rules! engine_state_impl {
    ($Store:ident, $Db:ty) => {
        /// A date stored as ISO text; one that does not parse reads as absent (and is logged).
        fn stored_date(text: Option<String>, what: &str, id: i64) -> Option<Date> {
            let text = text?;
            match text.parse() {
                Ok(d) => Some(d),
                Err(_) => {
                    tracing::warn!(id, "{what} `{text}` is not a YYYY-MM-DD date; read as absent");
                    None
                }
            }
        }

        const TRANSITION_COLUMNS: &str = "t.seq, t.at, t.subject_kind, t.subject_id, t.kind, t.detail, t.backfill";

        fn stored_transition(r: &DbRow) -> Result<StoredTransition> {
            Ok(StoredTransition {
                seq: r.get(0),
                at: instant(r.get(1))?,
                subject_kind: r.get(2),
                subject_id: r.get(3),
                kind: r.get(4),
                detail: json_or_string(r.get(5)),
                backfill: r.get(6),
            })
        }

        const HEALTH_OVERRIDE_COLUMNS: &str = "h.id, h.account_id, h.score, h.reason, h.set_by, h.set_at, h.expires_at";

        fn health_override(r: &DbRow) -> Result<HealthOverrideRecord> {
            Ok(HealthOverrideRecord {
                id: r.get(0),
                account_id: r.get(1),
                score: r.get(2),
                reason: r.get(3),
                set_by: r.get(4),
                set_at: instant(r.get(5))?,
                expires_at: r.get::<Option<i64>, _>(6).map(instant).transpose()?,
            })
        }

        async fn account_exists(conn: &mut Conn, id: i64) -> Result<bool> {
            Ok(sqlx::query("SELECT 1 FROM accounts WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?.is_some())
        }

        impl $Store {
            pub(crate) async fn engine_accounts(&self, day: Date) -> Result<Vec<AccountRecord>> {
                let select = "SELECT a.id, a.name, a.industry, a.employees, a.plan, a.seats, a.owner_email, a.start_date, a.renewal_date,
                            (SELECT CAST(SUM(s.arr_cents) AS BIGINT) FROM subscriptions s WHERE s.account_id = a.id AND s.start_date <= $1 AND s.end_date >= $1) AS arr_cents,
                            (SELECT MIN(x.external_id) FROM external_ids x WHERE x.entity_kind = 'account' AND x.source = 'crm' AND x.entity_id = a.id) AS crm_id,
                            (SELECT MIN(x.external_id) FROM external_ids x WHERE x.entity_kind = 'account' AND x.source = 'product' AND x.entity_id = a.id) AS product_id,
                            a.traits
                     FROM accounts a ORDER BY a.id";
                if ROWS_ONE_AT_A_TIME {
                    // All of them in one row (see the module's note).
                    type Tuple = (i64, Option<String>, Option<String>, Option<i64>, Option<String>, Option<i64>, Option<String>, Option<String>, Option<String>, Option<i64>, Option<String>, Option<String>, String);
                    let sql = format!(
                        "SELECT {} FROM ({select}) y",
                        json_array_agg(&json_tuple("y.id, y.name, y.industry, y.employees, y.plan, y.seats, y.owner_email, y.start_date, y.renewal_date, y.arr_cents, y.crm_id, y.product_id, y.traits"))
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(day.to_string()).fetch_one(&self.pool).await?;
                    let mut out: Vec<AccountRecord> = json_array::<Tuple>(row.get(0))?
                        .into_iter()
                        .map(|(id, name, industry, employees, plan, seats, owner_email, start_date, renewal_date, arr_cents, crm_id, product_id, traits)| AccountRecord {
                            id,
                            name,
                            industry,
                            employees,
                            plan,
                            seats,
                            owner_email,
                            start_date: stored_date(start_date, "start_date", id),
                            renewal_date: stored_date(renewal_date, "renewal_date", id),
                            arr_cents,
                            crm_id,
                            product_id,
                            traits: traits_object(&traits),
                        })
                        .collect();
                    out.sort_by_key(|a| a.id);
                    return Ok(out);
                }
                let rows = sqlx::query(select).bind(day.to_string()).fetch_all(&self.pool).await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        let id: i64 = r.get(0);
                        AccountRecord {
                            id,
                            name: r.get(1),
                            industry: r.get(2),
                            employees: r.get(3),
                            plan: r.get(4),
                            seats: r.get(5),
                            owner_email: r.get(6),
                            start_date: stored_date(r.get(7), "start_date", id),
                            renewal_date: stored_date(r.get(8), "renewal_date", id),
                            arr_cents: r.get(9),
                            crm_id: r.get(10),
                            product_id: r.get(11),
                            traits: traits_object(r.get(12)),
                        }
                    })
                    .collect())
            }

            pub(crate) async fn engine_contacts(&self) -> Result<Vec<ContactRecord>> {
                let select = "SELECT id, account_id, email, name, role, timezone, traits FROM contacts ORDER BY id";
                if ROWS_ONE_AT_A_TIME {
                    type Tuple = (i64, Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>, String);
                    let sql = format!(
                        "SELECT {} FROM ({select}) y",
                        json_array_agg(&json_tuple("y.id, y.account_id, y.email, y.name, y.role, y.timezone, y.traits"))
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&self.pool).await?;
                    let mut out: Vec<ContactRecord> = json_array::<Tuple>(row.get(0))?
                        .into_iter()
                        .map(|(id, account_id, email, name, role, timezone, traits)| ContactRecord {
                            id,
                            account_id,
                            email,
                            name,
                            role,
                            timezone,
                            traits: traits_object(&traits),
                        })
                        .collect();
                    out.sort_by_key(|c| c.id);
                    return Ok(out);
                }
                let rows = sqlx::query(select).fetch_all(&self.pool).await?;
                Ok(rows
                    .iter()
                    .map(|r| ContactRecord {
                        id: r.get(0),
                        account_id: r.get(1),
                        email: r.get(2),
                        name: r.get(3),
                        role: r.get(4),
                        timezone: r.get(5),
                        traits: traits_object(r.get(6)),
                    })
                    .collect())
            }

            pub(crate) async fn append_transitions(&self, rows: &[NewTransition]) -> Result<u64> {
                if rows.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.begin_write().await?;
                lock_log(&mut tx, crate::sql_both_dialects::event_log::AppendLog::Transitions).await?;
                let mut added = 0;
                for chunk in rows.chunks(TRANSITION_ROWS_PER_INSERT) {
                    let sql = format!(
                        "INSERT INTO transitions (key, at, subject_kind, subject_id, kind, detail, backfill) VALUES {} ON CONFLICT (key) DO NOTHING",
                        values_rows(chunk.len(), 7, NUMBERED_PLACEHOLDERS)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for t in chunk {
                        q = q.bind(t.key.as_str()).bind(ms(t.at)).bind(t.subject_kind.as_str()).bind(t.subject_id).bind(t.kind.as_str()).bind(t.detail.as_str()).bind(t.backfill);
                    }
                    added += q.execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(added)
            }

            pub(crate) async fn transitions_after(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredTransition>> {
                let sql = format!("SELECT {TRANSITION_COLUMNS} FROM transitions t WHERE t.seq > $1 ORDER BY t.seq LIMIT $2");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_seq).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.iter().map(stored_transition).collect()
            }

            pub(crate) async fn account_transitions(&self, account_id: i64, limit: u32) -> Result<Vec<StoredTransition>> {
                self.account_transitions_before(account_id, Timestamp::MAX, limit).await
            }

            pub(crate) async fn account_transitions_before(&self, account_id: i64, before: Timestamp, limit: u32) -> Result<Vec<StoredTransition>> {
                let sql = format!(
                    "SELECT {TRANSITION_COLUMNS} FROM transitions t
                     WHERE ((t.subject_kind = 'account' AND t.subject_id = $1)
                        OR (t.subject_kind = 'contact' AND t.subject_id IN (SELECT c.id FROM contacts c WHERE c.account_id = $1)))
                       AND t.at < $3
                     ORDER BY t.at DESC, t.seq DESC LIMIT $2"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).bind(i64::from(limit)).bind(ms(before)).fetch_all(&self.pool).await?;
                rows.iter().map(stored_transition).collect()
            }

            pub(crate) async fn insert_health_override(
                &self,
                account_id: i64,
                score: Option<f64>,
                reason: &str,
                set_by: &str,
                set_at: Timestamp,
                expires_at: Option<Timestamp>,
            ) -> Result<HealthOverrideRecord> {
                if let Some(s) = score.filter(|s| !s.is_finite()) {
                    // SQLite would keep NaN as NULL, which reads as "cleared".
                    return Err(crate::StoreError::Invalid(format!("health override score {s} is not a number")));
                }
                let mut tx = self.begin_write().await?;
                if !account_exists(&mut tx, account_id).await? {
                    return Err(crate::StoreError::Invalid(format!("no account with id {account_id} to override the health of")));
                }
                let id: i64 = sqlx::query("INSERT INTO health_overrides (account_id, score, reason, set_by, set_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
                    .bind(account_id)
                    .bind(score)
                    .bind(reason)
                    .bind(set_by)
                    .bind(ms(set_at))
                    .bind(expires_at.map(ms))
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
                tx.commit().await?;
                Ok(HealthOverrideRecord { id, account_id, score, reason: reason.to_string(), set_by: set_by.to_string(), set_at, expires_at })
            }

            pub(crate) async fn health_overrides(&self, account_id: i64) -> Result<Vec<HealthOverrideRecord>> {
                let sql = format!("SELECT {HEALTH_OVERRIDE_COLUMNS} FROM health_overrides h WHERE h.account_id = $1 ORDER BY h.set_at, h.id");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).fetch_all(&self.pool).await?;
                rows.iter().map(health_override).collect()
            }

            pub(crate) async fn latest_health_overrides(&self) -> Result<Vec<HealthOverrideRecord>> {
                let sql = format!(
                    "SELECT {HEALTH_OVERRIDE_COLUMNS} FROM health_overrides h
                     WHERE h.id = (SELECT l.id FROM health_overrides l WHERE l.account_id = h.account_id ORDER BY l.set_at DESC, l.id DESC LIMIT 1)
                     ORDER BY h.account_id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
                rows.iter().map(health_override).collect()
            }

            pub(crate) async fn record_definitions(&self, hash: &str, summary: &str, at: Timestamp) -> Result<()> {
                sqlx::query("INSERT INTO definitions (hash, summary, loaded_at) VALUES ($1, $2, $3)")
                    .bind(hash)
                    .bind(summary)
                    .bind(ms(at))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub(crate) async fn last_definitions_hash(&self) -> Result<Option<String>> {
                let row = sqlx::query("SELECT hash FROM definitions ORDER BY id DESC LIMIT 1").fetch_optional(&self.pool).await?;
                Ok(row.map(|r| r.get(0)))
            }
        }
    };
}

pub(crate) use engine_state_impl;
