//! Due steps and their leases: scheduling, claiming, finishing, retrying and dead-lettering
//! a step, and recording a run of finished steps in the ledger set-wise.
//!
//! Exactly once rests on two keys: a due step is run by whoever holds its lease
//! (`lease_owner`), and what a step did is recorded under the ledger's primary key
//! (enrollment, step), so a second record of the same step cannot be written — whatever
//! crashed, restarted or raced.

/// Splits records into runs in which no enrollment appears twice, in order: a run is
/// written set-wise, and a second record of an enrollment (rare: only after a takeover)
/// sees what the first did, as it would one by one.
pub(crate) fn distinct_runs<T>(items: &[T], enrollment: impl Fn(&T) -> i64) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if !seen.insert(enrollment(item)) {
            runs.push(&items[start..i]);
            start = i;
            seen.clear();
            seen.insert(enrollment(item));
        }
    }
    if start < items.len() {
        runs.push(&items[start..]);
    }
    runs
}

/// Rows per multi-row statement of the step records (at most 9 parameters a row).
pub(crate) const STEP_ROWS_PER_STATEMENT: usize = 500;

/// Rows per multi-row statement of deferrals (3 parameters a row).
pub(crate) const DEFERRALS_PER_STATEMENT: usize = 300;

macro_rules! due_steps_impl {
    ($Store:ident, $Db:ty) => {
        fn attempt_number(n: i64) -> Result<u32> {
            u32::try_from(n).map_err(|_| crate::StoreError::Corrupt(format!("step attempt {n} is out of range")))
        }

        fn count_u32(n: i64) -> u32 {
            u32::try_from(n.max(0)).unwrap_or(u32::MAX)
        }

        const DUE_STEP_COLUMNS: &str = "d.id, d.enrollment_id, e.program_id, e.subject_kind, e.subject_id, d.step_id, d.due_at, d.attempt, d.lease_owner, d.lease_until, COALESCE(d.started_at, d.due_at)";

        /// The columns of [`DUE_STEP_COLUMNS`], as one element of a JSON array.
        type DueStepTuple = (i64, i64, String, String, i64, String, i64, i64, Option<String>, Option<i64>, i64);

        fn due_step_of(r: DueStepTuple) -> Result<DueStep> {
            let (id, enrollment_id, program_id, kind, subject_id, step_id, due_at, attempt, lease_owner, lease_until, started_at) = r;
            Ok(DueStep {
                id,
                enrollment_id,
                program_id,
                subject_kind: subject_kind(&kind)?,
                subject_id,
                step_id,
                due_at: instant(due_at)?,
                attempt: attempt_number(attempt)?,
                lease_owner,
                lease_until: lease_until.map(instant).transpose()?,
                started_at: instant(started_at)?,
            })
        }

        /// Ends the pending attempt `due` if `owner` holds its lease: `status` is done,
        /// retried or dead. False when the lease was lost (another worker took the step
        /// over after it expired) or the attempt is no longer pending.
        async fn finish_attempt(conn: &mut Conn, due: &DueStep, owner: &str, status: &str, error: Option<&str>, at: Option<Timestamp>) -> Result<bool> {
            let done = sqlx::query(
                "UPDATE due_steps SET status = $3, last_error = $4, finished_at = $5, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2 AND status = 'pending'",
            )
            .bind(due.id)
            .bind(owner)
            .bind(status)
            .bind(error)
            .bind(at.map(ms))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(done == 1)
        }

        /// Records a run of steps (no enrollment twice) set-wise, in the caller's
        /// transaction: each step whose lease `owner` still holds is marked done and its
        /// entry goes in the ledger under (enrollment, step); for those recorded now, what
        /// follows (the next step's first attempt, or the enrollment's end with its other
        /// pending steps cancelled) and the outbox row. Per step, whether it was recorded
        /// now. A message id already in the outbox for another step is an error, and the
        /// caller's transaction is dropped.
        async fn record_run(conn: &mut Conn, owner: &str, steps: &[StepRecord]) -> Result<Vec<bool>> {
            let n = NUMBERED_PLACEHOLDERS;
            // The attempts this owner still holds end now, grouped by when they did.
            let mut by_at: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for s in steps {
                by_at.entry(ms(s.entry.at)).or_default().push(s.due.id);
            }
            let mut finished: HashSet<i64> = HashSet::with_capacity(steps.len());
            for (at, ids) in &by_at {
                for chunk in ids.chunks(STEP_ROWS_PER_STATEMENT) {
                    let update = format!(
                        "UPDATE due_steps SET status = 'done', last_error = NULL, finished_at = {}, lease_until = NULL
                         WHERE lease_owner = {} AND status = 'pending' AND id IN ({})",
                        param(1, n), param(2, n), params_from(3, chunk.len(), n)
                    );
                    let held: Vec<i64> = if ROWS_ONE_AT_A_TIME {
                        let sql = format!(
                            "SELECT {} FROM due_steps WHERE lease_owner = {} AND status = 'pending' AND id IN ({})",
                            json_array_agg("id"), param(1, n), params_from(2, chunk.len(), n)
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner);
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        let held = json_array(q.fetch_one(&mut *conn).await?.get(0))?;
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(update)).bind(*at).bind(owner);
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        q.execute(&mut *conn).await?;
                        held
                    } else {
                        let sql = format!("WITH w AS ({update} RETURNING id) SELECT {} FROM w", json_array_agg("id"));
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(*at).bind(owner);
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        json_array(q.fetch_one(&mut *conn).await?.get(0))?
                    };
                    finished.extend(held);
                }
            }
            // Their entries; one already in the ledger (recorded by someone else) stays.
            let held: Vec<&StepRecord> = steps.iter().filter(|s| finished.contains(&s.due.id)).collect();
            let mut recorded: HashSet<i64> = HashSet::with_capacity(held.len());
            for chunk in held.chunks(STEP_ROWS_PER_STATEMENT) {
                let insert = format!(
                    "INSERT INTO send_ledger (enrollment_id, step_id, channel, outcome, message_id, contact_id, detail, at)
                     VALUES {} ON CONFLICT (enrollment_id, step_id) DO NOTHING",
                    values_rows(chunk.len(), 8, n)
                );
                let sql = if ROWS_ONE_AT_A_TIME {
                    // The entries already there (a run holds each enrollment once).
                    let sql = format!(
                        "SELECT {} FROM send_ledger WHERE enrollment_id IN ({})",
                        json_array_agg("json_array(enrollment_id, step_id)"), params_from(1, chunk.len(), n)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for s in chunk {
                        q = q.bind(s.entry.enrollment_id);
                    }
                    let there: HashSet<(i64, String)> = json_array::<(i64, String)>(q.fetch_one(&mut *conn).await?.get(0))?.into_iter().collect();
                    recorded.extend(
                        chunk.iter().filter(|s| !there.contains(&(s.entry.enrollment_id, s.entry.step_id.clone()))).map(|s| s.entry.enrollment_id),
                    );
                    insert
                } else {
                    format!("WITH w AS ({insert} RETURNING enrollment_id) SELECT {} FROM w", json_array_agg("enrollment_id"))
                };
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for s in chunk {
                    let e = &s.entry;
                    q = q
                        .bind(e.enrollment_id)
                        .bind(e.step_id.as_str())
                        .bind(e.channel.as_str())
                        .bind(e.outcome.as_str())
                        .bind(e.message_id.as_deref())
                        .bind(ledger_contact(s.due.subject_kind, s.due.subject_id, &e.detail))
                        .bind(e.detail.as_str())
                        .bind(ms(e.at));
                }
                if ROWS_ONE_AT_A_TIME {
                    q.execute(&mut *conn).await?;
                } else {
                    recorded.extend(json_array::<i64>(q.fetch_one(&mut *conn).await?.get(0))?);
                }
            }
            let now: Vec<&StepRecord> = held.into_iter().filter(|s| recorded.contains(&s.due.enrollment_id)).collect();
            // What follows: the next steps of enrollments still active…
            let next: Vec<(&StepRecord, &str, Timestamp)> = now
                .iter()
                .filter_map(|s| match &s.after {
                    Some(After::Next { step_id, due_at }) => Some((*s, step_id.as_str(), *due_at)),
                    _ => None,
                })
                .collect();
            let mut active: HashSet<i64> = HashSet::with_capacity(next.len());
            for chunk in next.chunks(VALUES_PER_IN_LIST) {
                let sql = format!("SELECT id FROM enrollments WHERE status = 'active' AND id IN ({})", in_list(chunk.len(), n));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (s, _, _) in chunk {
                    q = q.bind(s.due.enrollment_id);
                }
                for r in q.fetch_all(&mut *conn).await? {
                    active.insert(r.get(0));
                }
            }
            let next: Vec<_> = next.into_iter().filter(|(s, _, _)| active.contains(&s.due.enrollment_id)).collect();
            for chunk in next.chunks(STEP_ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO due_steps (enrollment_id, step_id, attempt, due_at, started_at, status) VALUES {}
                     ON CONFLICT (enrollment_id, step_id, attempt) DO NOTHING",
                    values_rows(chunk.len(), 6, n)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (s, step_id, due_at) in chunk {
                    q = q.bind(s.due.enrollment_id).bind(*step_id).bind(0_i64).bind(ms(*due_at)).bind(ms(*due_at)).bind("pending");
                }
                q.execute(&mut *conn).await?;
            }
            // …and the ends, grouped by how and when.
            let mut ends: BTreeMap<(&str, i64), Vec<i64>> = BTreeMap::new();
            for s in &now {
                if let Some(After::End(status)) = &s.after {
                    ends.entry((status.as_str(), ms(s.entry.at))).or_default().push(s.due.enrollment_id);
                }
            }
            for ((status, at), ids) in &ends {
                for chunk in ids.chunks(STEP_ROWS_PER_STATEMENT) {
                    let update = format!(
                        "UPDATE enrollments SET status = {}, ended_at = {} WHERE status = 'active' AND id IN ({})",
                        param(1, n), param(2, n), params_from(3, chunk.len(), n)
                    );
                    let ended: Vec<i64> = if ROWS_ONE_AT_A_TIME {
                        let sql = format!(
                            "SELECT {} FROM enrollments WHERE status = 'active' AND id IN ({})",
                            json_array_agg("id"), params_from(1, chunk.len(), n)
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        let active = json_array(q.fetch_one(&mut *conn).await?.get(0))?;
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(update)).bind(*status).bind(*at);
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        q.execute(&mut *conn).await?;
                        active
                    } else {
                        let sql = format!("WITH w AS ({update} RETURNING id) SELECT {} FROM w", json_array_agg("id"));
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(*status).bind(*at);
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        json_array(q.fetch_one(&mut *conn).await?.get(0))?
                    };
                    if ended.is_empty() {
                        continue;
                    }
                    let sql = format!(
                        "UPDATE due_steps SET status = 'cancelled', finished_at = {} WHERE status = 'pending' AND enrollment_id IN ({})",
                        param(1, n), params_from(2, ended.len(), n)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(*at);
                    for id in &ended {
                        q = q.bind(*id);
                    }
                    q.execute(&mut *conn).await?;
                }
            }
            // The outbox rows of the emails recorded now.
            let mail: Vec<(&StepRecord, &OutboxMessage)> = now.iter().filter_map(|s| Some((*s, s.outbox.as_ref()?))).collect();
            for chunk in mail.chunks(STEP_ROWS_PER_STATEMENT) {
                let insert = format!(
                    "INSERT INTO outbox (message_id, enrollment_id, step_id, to_address, subject, html, text, headers, created_at)
                     VALUES {} ON CONFLICT (message_id) DO NOTHING",
                    values_rows(chunk.len(), 9, n)
                );
                let (sql, taken) = if ROWS_ONE_AT_A_TIME {
                    let sql = format!("SELECT {} FROM outbox WHERE message_id IN ({})", json_array_agg("message_id"), params_from(1, chunk.len(), n));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (_, o) in chunk {
                        q = q.bind(o.message_id.as_str());
                    }
                    let taken: HashSet<String> = json_array::<String>(q.fetch_one(&mut *conn).await?.get(0))?.into_iter().collect();
                    (insert, Some(taken))
                } else {
                    (format!("WITH w AS ({insert} RETURNING message_id) SELECT {} FROM w", json_array_agg("message_id")), None)
                };
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (s, o) in chunk {
                    q = q
                        .bind(o.message_id.as_str())
                        .bind(s.due.enrollment_id)
                        .bind(s.due.step_id.as_str())
                        .bind(o.to.as_str())
                        .bind(o.subject.as_str())
                        .bind(o.html.as_str())
                        .bind(o.text.as_str())
                        .bind(o.headers.as_str())
                        .bind(ms(o.at));
                }
                let clash = match taken {
                    Some(taken) => {
                        q.execute(&mut *conn).await?;
                        chunk.iter().find(|(_, o)| taken.contains(&o.message_id))
                    }
                    None => {
                        let added: HashSet<String> = json_array::<String>(q.fetch_one(&mut *conn).await?.get(0))?.into_iter().collect();
                        chunk.iter().find(|(_, o)| !added.contains(&o.message_id))
                    }
                };
                if let Some((_, o)) = clash {
                    // Dropping the transaction rolls the ledger entries back too.
                    return Err(crate::StoreError::Invalid(format!(
                        "message id `{}` is already in the outbox for another step: message ids must be unique per (enrollment, step)",
                        o.message_id
                    )));
                }
            }
            Ok(steps.iter().map(|s| recorded.contains(&s.due.enrollment_id)).collect())
        }

        impl $Store {
            #[cfg(feature = "testing")]
            pub(crate) async fn schedule_step(&self, enrollment_id: i64, step_id: &str, due_at: Timestamp) -> Result<()> {
                let mut tx = self.begin_write().await?;
                let status: Option<String> = sqlx::query("SELECT status FROM enrollments WHERE id = $1").bind(enrollment_id).fetch_optional(&mut *tx).await?.map(|r| r.get(0));
                match status.as_deref() {
                    None => return Err(crate::StoreError::Invalid(format!("no enrollment with id {enrollment_id} to schedule step `{step_id}` of"))),
                    Some("active") => {}
                    Some(_) => return Ok(()),
                }
                sqlx::query(
                    "INSERT INTO due_steps (enrollment_id, step_id, attempt, due_at, started_at, status) VALUES ($1, $2, 0, $3, $3, 'pending')
                     ON CONFLICT (enrollment_id, step_id, attempt) DO NOTHING",
                )
                .bind(enrollment_id)
                .bind(step_id)
                .bind(ms(due_at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn claim_due_steps(&self, owner: &str, now: Timestamp, lease: SignedDuration, limit: u32) -> Result<Vec<DueStep>> {
                if lease <= SignedDuration::ZERO {
                    return Err(crate::StoreError::Invalid(format!("a lease must be longer than zero (got {lease:#})")));
                }
                let until = now.checked_add(lease).map_err(|e| crate::StoreError::Invalid(format!("a lease of {lease:#} from {now} is out of range: {e}")))?;
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let mut tx = self.begin_write().await?;
                // The due steps' ids, with `now` and the limit as placeholders `$n` and `$n+1`.
                let due = |n: usize| {
                    format!(
                        "SELECT d.id FROM due_steps d
                         WHERE d.status = 'pending' AND d.due_at <= ${n} AND (d.lease_until IS NULL OR d.lease_until <= ${n})
                           AND EXISTS (SELECT 1 FROM enrollments e WHERE e.id = d.enrollment_id AND e.status = 'active'
                                       AND NOT EXISTS (SELECT 1 FROM program_pauses p WHERE p.program_id = e.program_id))
                         ORDER BY d.due_at, d.id LIMIT ${} {CLAIM_LOCK}",
                        n + 1
                    )
                };
                let ids: Vec<i64> = if ROWS_ONE_AT_A_TIME {
                    // The due ones first, then their leases (in the same write transaction).
                    let sql = format!("SELECT {} FROM ({}) x", json_array_agg("id"), due(1));
                    let ids: Vec<i64> = json_array(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(now)).bind(i64::from(limit)).fetch_one(&mut *tx).await?.get(0))?;
                    for chunk in ids.chunks(STEP_ROWS_PER_STATEMENT) {
                        let sql = format!(
                            "UPDATE due_steps SET lease_owner = {}, lease_until = {} WHERE id IN ({})",
                            param(1, NUMBERED_PLACEHOLDERS), param(2, NUMBERED_PLACEHOLDERS), params_from(3, chunk.len(), NUMBERED_PLACEHOLDERS)
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner).bind(ms(until));
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        q.execute(&mut *tx).await?;
                    }
                    ids
                } else {
                    let sql = format!(
                        "WITH w AS (UPDATE due_steps SET lease_owner = $1, lease_until = $2 WHERE id IN ({}) RETURNING id) SELECT {} FROM w",
                        due(3),
                        json_array_agg("id")
                    );
                    json_array(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner).bind(ms(until)).bind(ms(now)).bind(i64::from(limit)).fetch_one(&mut *tx).await?.get(0))?
                };
                let mut claimed = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!(
                        "SELECT {} FROM due_steps d JOIN enrollments e ON e.id = d.enrollment_id WHERE d.id IN ({})",
                        json_array_agg(&json_tuple(DUE_STEP_COLUMNS)),
                        in_list(chunk.len(), NUMBERED_PLACEHOLDERS)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for row in json_array::<DueStepTuple>(q.fetch_one(&mut *tx).await?.get(0))? {
                        claimed.push(due_step_of(row)?);
                    }
                }
                tx.commit().await?;
                claimed.sort_by_key(|d| (d.due_at, d.id));
                Ok(claimed)
            }

            pub(crate) async fn complete_steps(&self, owner: &str, steps: &[StepRecord]) -> Result<Vec<bool>> {
                if steps.is_empty() {
                    return Ok(Vec::new());
                }
                for s in steps {
                    let (due, entry) = (&s.due, &s.entry);
                    if entry.enrollment_id != due.enrollment_id || entry.step_id != due.step_id {
                        return Err(crate::StoreError::Invalid(format!(
                            "a ledger entry for enrollment {} step `{}` cannot complete the due step of enrollment {} step `{}`",
                            entry.enrollment_id, entry.step_id, due.enrollment_id, due.step_id
                        )));
                    }
                    if let Some(After::End(EnrollmentStatus::Active)) = &s.after {
                        return Err(crate::StoreError::Invalid(format!(
                            "enrollment {} cannot end as `active`: use completed, goal_met or exited",
                            due.enrollment_id
                        )));
                    }
                }
                let mut tx = self.begin_write().await?;
                let mut out = Vec::with_capacity(steps.len());
                for run in distinct_runs(steps, |s| s.due.enrollment_id) {
                    out.extend(record_run(&mut tx, owner, run).await?);
                }
                let with_event: Vec<&(i64, cairn_core::tracking::TrackingMessage)> =
                    steps.iter().zip(&out).filter(|(_, recorded)| **recorded).filter_map(|(s, _)| s.event.as_ref()).collect();
                let contacts: Vec<i64> = with_event.iter().map(|(c, _)| *c).collect();
                ensure_contact_aliases(&mut tx, &contacts).await?;
                let events: Vec<cairn_core::tracking::TrackingMessage> = with_event.into_iter().map(|(_, e)| e.clone()).collect();
                if !events.is_empty() {
                    append_in(&mut tx, "cairn", &events).await?;
                }
                tx.commit().await?;
                self.signals.after_commit(crate::signals::Committed { events: !events.is_empty(), data: false });
                Ok(out)
            }

            pub(crate) async fn retry_step(&self, due: &DueStep, owner: &str, next_due_at: Timestamp, error: &str) -> Result<()> {
                let next = due.attempt.checked_add(1).ok_or_else(|| crate::StoreError::Invalid(format!("step `{}` has been retried too often", due.step_id)))?;
                let mut tx = self.begin_write().await?;
                if !finish_attempt(&mut tx, due, owner, "retried", Some(error), None).await? {
                    tracing::debug!(due_step = due.id, owner, "retry of a step whose lease was lost: left to its new owner");
                    return Ok(());
                }
                // An enrollment that ended meanwhile gets no further attempt.
                sqlx::query(
                    "INSERT INTO due_steps (enrollment_id, step_id, attempt, due_at, started_at, status)
                     SELECT $1, $2, $3, $4, $5, 'pending' WHERE EXISTS (SELECT 1 FROM enrollments e WHERE e.id = $1 AND e.status = 'active')
                     ON CONFLICT (enrollment_id, step_id, attempt) DO NOTHING",
                )
                .bind(due.enrollment_id)
                .bind(due.step_id.as_str())
                .bind(i64::from(next))
                .bind(ms(next_due_at))
                .bind(ms(due.started_at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn dead_letter(&self, due: &DueStep, owner: &str, reason: &str, at: Timestamp) -> Result<()> {
                let mut tx = self.begin_write().await?;
                if !finish_attempt(&mut tx, due, owner, "dead", Some(reason), Some(at)).await? {
                    tracing::debug!(due_step = due.id, owner, "dead letter for a step whose lease was lost: left to its new owner");
                    return Ok(());
                }
                sqlx::query(
                    "INSERT INTO dead_letters (due_step_id, enrollment_id, step_id, attempt, reason, at) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (due_step_id) DO NOTHING",
                )
                .bind(due.id)
                .bind(due.enrollment_id)
                .bind(due.step_id.as_str())
                .bind(i64::from(due.attempt))
                .bind(reason)
                .bind(ms(at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>> {
                let rows = sqlx::query(
                    "SELECT x.id, x.due_step_id, x.enrollment_id, e.program_id, e.subject_kind, e.subject_id, x.step_id, x.attempt, x.reason, x.at
                     FROM dead_letters x JOIN enrollments e ON e.id = x.enrollment_id ORDER BY x.id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(DeadLetter {
                            id: r.get(0),
                            due_step_id: r.get(1),
                            enrollment_id: r.get(2),
                            program_id: r.get(3),
                            subject_kind: subject_kind(&r.get::<String, _>(4))?,
                            subject_id: r.get(5),
                            step_id: r.get(6),
                            attempt: attempt_number(r.get(7))?,
                            reason: r.get(8),
                            at: instant(r.get(9))?,
                        })
                    })
                    .collect()
            }

            #[cfg(feature = "testing")]
            pub(crate) async fn step_attempts(&self, enrollment_id: i64) -> Result<Vec<StepAttempt>> {
                let rows = sqlx::query("SELECT id, step_id, attempt, due_at, status, last_error FROM due_steps WHERE enrollment_id = $1 ORDER BY id")
                    .bind(enrollment_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(StepAttempt {
                            id: r.get(0),
                            step_id: r.get(1),
                            attempt: attempt_number(r.get(2))?,
                            due_at: instant(r.get(3))?,
                            status: r.get(4),
                            last_error: r.get(5),
                        })
                    })
                    .collect()
            }

            #[cfg(feature = "testing")]
            pub(crate) async fn next_due_at(&self) -> Result<Option<Timestamp>> {
                let row = sqlx::query(
                    "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > due_at THEN lease_until ELSE due_at END) FROM due_steps WHERE status = 'pending'",
                )
                .fetch_one(&self.pool)
                .await?;
                row.get::<Option<i64>, _>(0).map(instant).transpose()
            }

            pub(crate) async fn defer_step(&self, due: &DueStep, owner: &str, until: Timestamp, note: &str) -> Result<bool> {
                let deferred = sqlx::query(
                    "UPDATE due_steps SET due_at = $3, lease_owner = NULL, lease_until = NULL, last_error = $4
                     WHERE id = $1 AND lease_owner = $2 AND status = 'pending'",
                )
                .bind(due.id)
                .bind(owner)
                .bind(ms(until))
                .bind(note)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(deferred == 1)
            }

            pub(crate) async fn defer_steps(&self, owner: &str, steps: &[(DueStep, Timestamp, String)]) -> Result<u64> {
                if steps.is_empty() {
                    return Ok(0);
                }
                let n = NUMBERED_PLACEHOLDERS;
                let mut deferred = 0;
                let mut tx = self.begin_write().await?;
                for chunk in steps.chunks(DEFERRALS_PER_STATEMENT) {
                    // The new due times and notes as a table joined to the steps.
                    let sql = format!(
                        "WITH v (id, due_at, note) AS (VALUES {})
                         UPDATE due_steps SET due_at = v.due_at, lease_owner = NULL, lease_until = NULL, last_error = v.note
                         FROM v WHERE due_steps.id = v.id AND due_steps.lease_owner = {} AND due_steps.status = 'pending'",
                        values_rows(chunk.len(), 3, n),
                        param(chunk.len() * 3 + 1, n)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (due, until, note) in chunk {
                        q = q.bind(due.id).bind(ms(*until)).bind(note.as_str());
                    }
                    deferred += q.bind(owner).execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(deferred)
            }

            pub(crate) async fn wake_steps(&self, enrollment_id: i64, step_ids: &[String], at: Timestamp) -> Result<u64> {
                if step_ids.is_empty() {
                    return Ok(0);
                }
                let mut woken = 0;
                let mut tx = self.begin_write().await?;
                for chunk in step_ids.chunks(VALUES_PER_IN_LIST - 2) {
                    let sql = format!(
                        "UPDATE due_steps SET due_at = $2 WHERE enrollment_id = $1 AND status = 'pending' AND due_at > $2 AND step_id IN ({})",
                        in_list_from(3, chunk.len())
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(enrollment_id).bind(ms(at));
                    for id in chunk {
                        q = q.bind(id.as_str());
                    }
                    woken += q.execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(woken)
            }

            pub(crate) async fn wake_steps_many(&self, wakes: &[(i64, Vec<String>, Timestamp)]) -> Result<u64> {
                if wakes.iter().all(|(_, steps, _)| steps.is_empty()) {
                    return Ok(0);
                }
                let mut woken = 0;
                let mut tx = self.begin_write().await?;
                for (enrollment_id, step_ids, at) in wakes {
                    for chunk in step_ids.chunks(VALUES_PER_IN_LIST - 2) {
                        let sql = format!(
                            "UPDATE due_steps SET due_at = $2 WHERE enrollment_id = $1 AND status = 'pending' AND due_at > $2 AND step_id IN ({})",
                            in_list_from(3, chunk.len())
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(*enrollment_id).bind(ms(*at));
                        for id in chunk {
                            q = q.bind(id.as_str());
                        }
                        woken += q.execute(&mut *tx).await?.rows_affected();
                    }
                }
                tx.commit().await?;
                Ok(woken)
            }
        }
    };
}

pub(crate) use due_steps_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_never_hold_an_enrollment_twice_and_keep_the_order() {
        let ids = [1, 2, 1, 3, 2, 2];
        let runs: Vec<Vec<i64>> = distinct_runs(&ids, |i| *i).into_iter().map(<[i64]>::to_vec).collect();
        assert_eq!(runs, vec![vec![1, 2], vec![1, 3, 2], vec![2]]);
        assert!(distinct_runs(&[] as &[i64], |i| *i).is_empty());
    }
}
