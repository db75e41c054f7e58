//! Program enrollments: who entered which program, when, in which arm, and how it ended.
//!
//! Migrations 0003–0005. `enrollments` are unique per program, subject and trigger key;
//! `due_steps` are claimed with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL so several
//! nodes share the work; SQLite's one writer), pending steps in a partial index by due time,
//! so per-enrollment statements go by enrollment. `complete_steps` writes a round's ledger
//! entries in the transaction that marks their steps done, with their outbox rows, what
//! follows each and their events, set-wise (a multi-row statement per kind of row;
//! `complete_step` and `complete_step_with_outbox` are one-record calls of it). The reads a
//! round needs are set-wise too (`enrollments`, `last_enrollments`, `unsubscribed_topics`,
//! `suppressed_among`, `sent_times_since_many`). Retries are new attempts; `dead_letters`,
//! `consent_changes` (history, latest wins), `suppressions`, `inapp_messages` and `tasks`
//! complete the programs' tables.

macro_rules! enrollments_impl {
    ($Store:ident, $Db:ty) => {
        const ENROLLMENT_COLUMNS: &str = "e.id, e.program_id, e.subject_kind, e.subject_id, e.trigger_key, e.enrolled_at, e.holdout, e.variant, e.status, e.ended_at, e.goal_met_at";

        fn subject_kind(text: &str) -> Result<SubjectKind> {
            parse_subject_kind(text).ok_or_else(|| crate::StoreError::Corrupt(format!("subject kind `{text}` is neither account nor contact")))
        }

        fn enrollment_status(text: &str) -> Result<EnrollmentStatus> {
            EnrollmentStatus::parse(text).ok_or_else(|| crate::StoreError::Corrupt(format!("enrollment status `{text}` is not one cairn knows")))
        }

        fn enrollment(r: &DbRow) -> Result<Enrollment> {
            let status: String = r.get(8);
            Ok(Enrollment {
                id: r.get(0),
                program_id: r.get(1),
                subject_kind: subject_kind(&r.get::<String, _>(2))?,
                subject_id: r.get(3),
                trigger_key: r.get(4),
                enrolled_at: instant(r.get(5))?,
                holdout: r.get(6),
                variant: r.get(7),
                status: enrollment_status(&status)?,
                ended_at: r.get::<Option<i64>, _>(9).map(instant).transpose()?,
                goal_met_at: r.get::<Option<i64>, _>(10).map(instant).transpose()?,
            })
        }

        /// The columns of [`ENROLLMENT_COLUMNS`] as one element of a JSON array from SQLite
        /// (`holdout` a number).
        type EnrollmentTuple = (i64, String, String, i64, String, i64, i64, Option<String>, String, Option<i64>, Option<i64>);

        fn enrollment_of(r: EnrollmentTuple) -> Result<Enrollment> {
            let (id, program_id, kind, subject_id, trigger_key, enrolled_at, holdout, variant, status, ended_at, goal_met_at) = r;
            Ok(Enrollment {
                id,
                program_id,
                subject_kind: subject_kind(&kind)?,
                subject_id,
                trigger_key,
                enrolled_at: instant(enrolled_at)?,
                holdout: holdout != 0,
                variant,
                status: enrollment_status(&status)?,
                ended_at: ended_at.map(instant).transpose()?,
                goal_met_at: goal_met_at.map(instant).transpose()?,
            })
        }

        /// One enrollment for `insert_enrollments`; with `ended`, it is stored as completed
        /// then (the holdout).
        struct EnrollmentRow<'a> {
            program_id: &'a str,
            subject_kind: SubjectKind,
            subject_id: i64,
            trigger_key: &'a str,
            at: Timestamp,
            holdout: bool,
            variant: Option<&'a str>,
            ended: Option<Timestamp>,
        }

        /// Inserts enrollments unless (program, subject, trigger key) has one, a multi-row
        /// statement per 500; per row, its id when it is new.
        async fn insert_enrollments(conn: &mut Conn, rows: &[EnrollmentRow<'_>]) -> Result<Vec<Option<i64>>> {
            let mut out = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(STEP_ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO enrollments (program_id, subject_kind, subject_id, trigger_key, enrolled_at, holdout, variant, status, ended_at)
                     VALUES {} ON CONFLICT (program_id, subject_kind, subject_id, trigger_key) DO NOTHING
                     RETURNING id, program_id, subject_kind, subject_id, trigger_key",
                    values_rows(chunk.len(), 9, NUMBERED_PLACEHOLDERS)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for r in chunk {
                    q = q
                        .bind(r.program_id)
                        .bind(r.subject_kind.as_str())
                        .bind(r.subject_id)
                        .bind(r.trigger_key)
                        .bind(ms(r.at))
                        .bind(r.holdout)
                        .bind(r.variant)
                        .bind(if r.ended.is_some() { "completed" } else { "active" })
                        .bind(r.ended.map(ms));
                }
                // The new ones come back by their unique key; a row already enrolled does not.
                let mut ids: HashMap<(String, String, i64, String), i64> = HashMap::new();
                for row in q.fetch_all(&mut *conn).await? {
                    ids.insert((row.get(1), row.get(2), row.get(3), row.get(4)), row.get(0));
                }
                out.extend(chunk.iter().map(|r| {
                    let key = (r.program_id.to_string(), r.subject_kind.as_str().to_string(), r.subject_id, r.trigger_key.to_string());
                    ids.get(&key).copied()
                }));
            }
            Ok(out)
        }

        /// The internal aliases `cairn:contact:{id}` of contacts that exist and have none
        /// yet, in the caller's transaction.
        async fn ensure_contact_aliases(conn: &mut Conn, contact_ids: &[i64]) -> Result<()> {
            let mut ids: Vec<i64> = contact_ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
            for chunk in ids.chunks(VALUES_PER_IN_LIST) {
                let n = NUMBERED_PLACEHOLDERS;
                let sql = format!(
                    "INSERT INTO contact_aliases (alias, contact_id, basis)
                     SELECT {} || c.id, c.id, 'cairn' FROM contacts c WHERE c.id IN ({})
                     ON CONFLICT (alias) DO NOTHING",
                    param(1, n), params_from(2, chunk.len(), n)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(crate::CONTACT_ALIAS_PREFIX);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(&mut *conn).await?;
            }
            Ok(())
        }

        impl $Store {
            #[allow(clippy::too_many_arguments)]
            #[cfg(feature = "testing")]
            pub(crate) async fn enroll(
                &self,
                program_id: &str,
                subject_kind: SubjectKind,
                subject_id: i64,
                trigger_key: &str,
                at: Timestamp,
                holdout: bool,
                variant: Option<&str>,
            ) -> Result<Option<Enrollment>> {
                let mut conn = self.pool.acquire().await?;
                let row = EnrollmentRow { program_id, subject_kind, subject_id, trigger_key, at, holdout, variant, ended: None };
                let row = insert_enrollments(&mut conn, &[row]).await?.into_iter().next().flatten();
                Ok(row.map(|id| Enrollment {
                    id,
                    program_id: program_id.to_string(),
                    subject_kind,
                    subject_id,
                    trigger_key: trigger_key.to_string(),
                    enrolled_at: at,
                    holdout,
                    variant: variant.map(str::to_string),
                    status: EnrollmentStatus::Active,
                    ended_at: None,
                    goal_met_at: None,
                }))
            }

            pub(crate) async fn enroll_many(&self, requests: &[EnrollRequest]) -> Result<u64> {
                if requests.is_empty() {
                    return Ok(0);
                }
                let n = NUMBERED_PLACEHOLDERS;
                let mut added = 0;
                let mut tx = self.begin_write().await?;
                for chunk in requests.chunks(STEP_ROWS_PER_STATEMENT) {
                    let rows: Vec<EnrollmentRow> = chunk
                        .iter()
                        .map(|r| EnrollmentRow {
                            program_id: &r.program_id,
                            subject_kind: r.subject_kind,
                            subject_id: r.subject_id,
                            trigger_key: &r.trigger_key,
                            at: r.at,
                            holdout: r.holdout,
                            variant: None,
                            ended: r.first_step.is_none().then_some(r.at),
                        })
                        .collect();
                    let ids = insert_enrollments(&mut tx, &rows).await?;
                    added += ids.iter().flatten().count() as u64;
                    let first: Vec<(i64, &str, Timestamp)> = chunk
                        .iter()
                        .zip(&ids)
                        .filter_map(|(r, id)| {
                            let (step_id, due_at) = r.first_step.as_ref()?;
                            Some(((*id)?, step_id.as_str(), *due_at))
                        })
                        .collect();
                    if first.is_empty() {
                        continue;
                    }
                    let sql = format!(
                        "INSERT INTO due_steps (enrollment_id, step_id, attempt, due_at, started_at, status) VALUES {}",
                        values_rows(first.len(), 6, n)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (id, step_id, due_at) in &first {
                        q = q.bind(*id).bind(*step_id).bind(0_i64).bind(ms(*due_at)).bind(ms(*due_at)).bind("pending");
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(added)
            }

            pub(crate) async fn last_enrollments(&self, program_id: &str, subject_kind: SubjectKind, subject_ids: &[i64]) -> Result<HashMap<i64, Enrollment>> {
                let n = NUMBERED_PLACEHOLDERS;
                let mut out = HashMap::new();
                for chunk in subject_ids.chunks(VALUES_PER_IN_LIST) {
                    // Latest first per subject: the first row seen is the one kept.
                    let sql = format!(
                        "SELECT {ENROLLMENT_COLUMNS} FROM enrollments e WHERE e.program_id = {} AND e.subject_kind = {} AND e.subject_id IN ({})
                         ORDER BY e.subject_id, e.enrolled_at DESC, e.id DESC",
                        param(1, n), param(2, n), params_from(3, chunk.len(), n)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program_id).bind(subject_kind.as_str());
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        let e = enrollment(&r)?;
                        out.entry(e.subject_id).or_insert(e);
                    }
                }
                Ok(out)
            }

            pub(crate) async fn enrollments(&self, ids: &[i64]) -> Result<Vec<Enrollment>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(VALUES_PER_IN_LIST) {
                    let columns = if ROWS_ONE_AT_A_TIME {
                        // One row for all of them (`holdout` is 0 or 1 in SQLite).
                        json_array_agg(&json_tuple(ENROLLMENT_COLUMNS))
                    } else {
                        ENROLLMENT_COLUMNS.to_string()
                    };
                    let sql = format!("SELECT {columns} FROM enrollments e WHERE e.id IN ({})", in_list(chunk.len(), NUMBERED_PLACEHOLDERS));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    if ROWS_ONE_AT_A_TIME {
                        for row in json_array::<EnrollmentTuple>(q.fetch_one(&self.pool).await?.get(0))? {
                            out.push(enrollment_of(row)?);
                        }
                    } else {
                        for r in q.fetch_all(&self.pool).await? {
                            out.push(enrollment(&r)?);
                        }
                    }
                }
                out.sort_by_key(|e| e.id);
                Ok(out)
            }

            #[cfg(feature = "testing")]
            pub(crate) async fn end_enrollment(&self, id: i64, status: EnrollmentStatus, at: Timestamp) -> Result<()> {
                if status == EnrollmentStatus::Active {
                    return Err(crate::StoreError::Invalid(format!("enrollment {id} cannot end as `active`: use completed, goal_met or exited")));
                }
                let mut tx = self.begin_write().await?;
                let ended = sqlx::query("UPDATE enrollments SET status = $2, ended_at = $3 WHERE id = $1 AND status = 'active'")
                    .bind(id)
                    .bind(status.as_str())
                    .bind(ms(at))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if ended == 1 {
                    // A step under a live lease is left to its worker, which records what it did.
                    sqlx::query(
                        "UPDATE due_steps SET status = 'cancelled', finished_at = $2
                         WHERE enrollment_id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2)",
                    )
                    .bind(id)
                    .bind(ms(at))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            #[cfg(feature = "testing")]
            pub(crate) async fn active_enrollments(&self, program_id: &str) -> Result<Vec<Enrollment>> {
                let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments e WHERE e.program_id = $1 AND e.status = 'active' ORDER BY e.id");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program_id).fetch_all(&self.pool).await?;
                rows.iter().map(enrollment).collect()
            }

            pub(crate) async fn mark_goal_met(&self, enrollment_id: i64, at: Timestamp) -> Result<bool> {
                let marked = sqlx::query("UPDATE enrollments SET goal_met_at = $2 WHERE id = $1 AND goal_met_at IS NULL")
                    .bind(enrollment_id)
                    .bind(ms(at))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(marked == 1)
            }

            pub(crate) async fn mark_goals_met(&self, enrollment_ids: &[i64], at: Timestamp) -> Result<u64> {
                if enrollment_ids.is_empty() {
                    return Ok(0);
                }
                let n = NUMBERED_PLACEHOLDERS;
                let mut marked = 0;
                let mut tx = self.begin_write().await?;
                for chunk in enrollment_ids.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!(
                        "UPDATE enrollments SET goal_met_at = {} WHERE goal_met_at IS NULL AND id IN ({})",
                        param(1, n), params_from(2, chunk.len(), n)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(at));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    marked += q.execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(marked)
            }

            pub(crate) async fn enrollments_to_measure(&self, program_id: &str, enrolled_since: Timestamp) -> Result<Vec<Enrollment>> {
                let filter = "FROM enrollments e WHERE e.program_id = $1 AND e.goal_met_at IS NULL AND e.enrolled_at >= $2";
                if ROWS_ONE_AT_A_TIME {
                    // One row for all of them (`holdout` is 0 or 1 in SQLite).
                    let sql = format!("SELECT {} FROM (SELECT {ENROLLMENT_COLUMNS} {filter}) x", json_array_agg("json_array(x.id, x.program_id, x.subject_kind, x.subject_id, x.trigger_key, x.enrolled_at, x.holdout, x.variant, x.status, x.ended_at, x.goal_met_at)"));
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program_id).bind(ms(enrolled_since)).fetch_one(&self.pool).await?;
                    let mut out = json_array::<EnrollmentTuple>(row.get(0))?.into_iter().map(enrollment_of).collect::<Result<Vec<_>>>()?;
                    out.sort_by_key(|e| e.id);
                    return Ok(out);
                }
                let sql = format!("SELECT {ENROLLMENT_COLUMNS} {filter} ORDER BY e.id");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program_id).bind(ms(enrolled_since)).fetch_all(&self.pool).await?;
                rows.iter().map(enrollment).collect()
            }

            pub(crate) async fn program_enrollments(&self, program_id: &str) -> Result<Vec<Enrollment>> {
                let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments e WHERE e.program_id = $1 ORDER BY e.id");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program_id).fetch_all(&self.pool).await?;
                rows.iter().map(enrollment).collect()
            }

            pub(crate) async fn contact_aliases(&self, contact_ids: &[i64]) -> Result<()> {
                let mut tx = self.begin_write().await?;
                ensure_contact_aliases(&mut tx, contact_ids).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use enrollments_impl;
