//! The store side of programs, in SQL both dialects accept: enrollments, due steps and
//! their leases, the send ledger, the outbox, dead letters, consent, suppressions, the
//! in-app inbox and tasks. Stamped out for each backend by `programs_store_impl!` (from
//! inside `shared_store_impl!`, whose helpers it uses); the one dialect difference is
//! `CLAIM_LOCK`, the row-locking clause of a claim.
//!
//! Exactly once rests on two keys: a due step is run by whoever holds its lease
//! (`lease_owner`), and what a step did is recorded under the ledger's primary key
//! (enrollment, step), so a second record of the same step cannot be written — whatever
//! crashed, restarted or raced.

/// The recipient a ledger entry counts against for frequency caps: the subject when it is
/// a contact, else the detail's numeric `contact_id`.
pub(crate) fn ledger_contact(subject_kind: crate::SubjectKind, subject_id: i64, detail: &str) -> Option<i64> {
    match subject_kind {
        crate::SubjectKind::Contact => Some(subject_id),
        crate::SubjectKind::Account => serde_json::from_str::<serde_json::Value>(detail)
            .ok()
            .and_then(|d| d.get("contact_id").and_then(serde_json::Value::as_i64)),
    }
}

/// The `SET` list of an in-app mark; clicking or dismissing a message also means it was seen.
/// `None` for an action that is not one.
pub(crate) fn inapp_mark_columns(action: &str) -> Option<&'static str> {
    match action {
        "seen" => Some("seen_at = COALESCE(seen_at, $3)"),
        "clicked" => Some("clicked_at = COALESCE(clicked_at, $3), seen_at = COALESCE(seen_at, $3)"),
        "dismissed" => Some("dismissed_at = COALESCE(dismissed_at, $3), seen_at = COALESCE(seen_at, $3)"),
        _ => None,
    }
}

/// `$start, $start+1, …`: `n` numbered placeholders for an `IN (…)` list after other
/// parameters (short lists only: SQLite looks `$N` up linearly).
pub(crate) fn in_list_from(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(",")
}

/// Placeholder number `i` of a statement: `$i`, or `?` for a backend whose bulk
/// statements use plain ones (see `events_insert_sql`). In one statement, all or none.
pub(crate) fn param(i: usize, numbered: bool) -> String {
    if numbered { format!("${i}") } else { "?".to_string() }
}

/// `n` placeholders numbered from `start` (or `n` plain `?`), comma-separated.
pub(crate) fn params_from(start: usize, n: usize, numbered: bool) -> String {
    (start..start + n).map(|i| param(i, numbered)).collect::<Vec<_>>().join(",")
}

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

/// Addresses are kept lowercase and trimmed (contacts' emails are lowercase too).
pub fn normalize_address(address: &str) -> String {
    address.trim().to_lowercase()
}

macro_rules! programs_store_impl {
    ($Store:ident, $Db:ty) => {
        use std::collections::BTreeSet;

        use jiff::SignedDuration;

        use crate::programs::{in_list_from, inapp_mark_columns, ledger_contact, normalize_address, param, params_from, distinct_runs, STEP_ROWS_PER_STATEMENT};
        use crate::types::{
            parse_subject_kind, After, ConsentChange, DeadLetter, DueStep, EngagementRecord, Enrollment, EnrollmentStatus, InAppMessage, LedgerEntry, NewTask, OutboxMessage, StepAttempt, StepRecord, EnrollRequest,
            SubjectKind, Task, TaskPriority,
        };

        const ENROLLMENT_COLUMNS: &str = "e.id, e.program_id, e.subject_kind, e.subject_id, e.trigger_key, e.enrolled_at, e.holdout, e.variant, e.status, e.ended_at, e.goal_met_at";

        fn subject_kind(text: &str) -> Result<SubjectKind> {
            parse_subject_kind(text).ok_or_else(|| crate::StoreError::Corrupt(format!("subject kind `{text}` is neither account nor contact")))
        }

        fn enrollment_status(text: &str) -> Result<EnrollmentStatus> {
            EnrollmentStatus::parse(text).ok_or_else(|| crate::StoreError::Corrupt(format!("enrollment status `{text}` is not one cairn knows")))
        }

        fn attempt_number(n: i64) -> Result<u32> {
            u32::try_from(n).map_err(|_| crate::StoreError::Corrupt(format!("step attempt {n} is out of range")))
        }

        fn count_u32(n: i64) -> u32 {
            u32::try_from(n.max(0)).unwrap_or(u32::MAX)
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

        const LEDGER_COLUMNS: &str = "l.enrollment_id, l.step_id, l.channel, l.outcome, l.message_id, l.detail, l.at";

        fn ledger_entry(r: &DbRow) -> Result<LedgerEntry> {
            Ok(LedgerEntry {
                enrollment_id: r.get(0),
                step_id: r.get(1),
                channel: r.get(2),
                outcome: r.get(3),
                message_id: r.get(4),
                detail: r.get(5),
                at: instant(r.get(6))?,
            })
        }

        const INAPP_COLUMNS: &str = "m.id, m.contact_id, m.enrollment_id, m.step_id, m.title, m.body_html, m.created_at, m.seen_at, m.clicked_at, m.dismissed_at";

        fn inapp_message(r: &DbRow) -> Result<InAppMessage> {
            Ok(InAppMessage {
                id: r.get(0),
                contact_id: r.get(1),
                enrollment_id: r.get(2),
                step_id: r.get(3),
                title: r.get(4),
                body_html: r.get(5),
                created_at: instant(r.get(6))?,
                seen_at: r.get::<Option<i64>, _>(7).map(instant).transpose()?,
                clicked_at: r.get::<Option<i64>, _>(8).map(instant).transpose()?,
                dismissed_at: r.get::<Option<i64>, _>(9).map(instant).transpose()?,
            })
        }

        const TASK_COLUMNS: &str = "t.id, t.enrollment_id, t.step_id, t.account_id, t.contact_id, t.title, t.body, t.assignee, t.pool, t.priority, t.due_at, t.created_at, t.completed_by, t.completed_at";

        fn task(r: &DbRow) -> Result<Task> {
            let rank: i64 = r.get(9);
            Ok(Task {
                id: r.get(0),
                enrollment_id: r.get(1),
                step_id: r.get(2),
                account_id: r.get(3),
                contact_id: r.get(4),
                title: r.get(5),
                body: r.get(6),
                assignee: r.get(7),
                pool: r.get(8),
                priority: TaskPriority::from_rank(rank).ok_or_else(|| crate::StoreError::Corrupt(format!("task priority {rank} is not one cairn knows")))?,
                due_at: r.get::<Option<i64>, _>(10).map(instant).transpose()?,
                created_at: instant(r.get(11))?,
                completed_by: r.get(12),
                completed_at: r.get::<Option<i64>, _>(13).map(instant).transpose()?,
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

            pub(crate) async fn active_enrollments(&self, program_id: &str) -> Result<Vec<Enrollment>> {
                let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments e WHERE e.program_id = $1 AND e.status = 'active' ORDER BY e.id");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program_id).fetch_all(&self.pool).await?;
                rows.iter().map(enrollment).collect()
            }

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
                           AND EXISTS (SELECT 1 FROM enrollments e WHERE e.id = d.enrollment_id AND e.status = 'active')
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

            pub(crate) async fn next_due_at(&self) -> Result<Option<Timestamp>> {
                let row = sqlx::query(
                    "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > due_at THEN lease_until ELSE due_at END) FROM due_steps WHERE status = 'pending'",
                )
                .fetch_one(&self.pool)
                .await?;
                row.get::<Option<i64>, _>(0).map(instant).transpose()
            }

            pub(crate) async fn ledger_entry(&self, enrollment_id: i64, step_id: &str) -> Result<Option<LedgerEntry>> {
                let sql = format!("SELECT {LEDGER_COLUMNS} FROM send_ledger l WHERE l.enrollment_id = $1 AND l.step_id = $2");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(enrollment_id).bind(step_id).fetch_optional(&self.pool).await?;
                row.as_ref().map(ledger_entry).transpose()
            }

            pub(crate) async fn ledger_for_enrollment(&self, enrollment_id: i64) -> Result<Vec<LedgerEntry>> {
                let sql = format!("SELECT {LEDGER_COLUMNS} FROM send_ledger l WHERE l.enrollment_id = $1 ORDER BY l.at, l.step_id");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(enrollment_id).fetch_all(&self.pool).await?;
                rows.iter().map(ledger_entry).collect()
            }

            pub(crate) async fn sends_since(&self, contact_id: i64, channel: &str, since: Timestamp) -> Result<u32> {
                let n: i64 = sqlx::query("SELECT COUNT(*) FROM send_ledger WHERE contact_id = $1 AND channel = $2 AND outcome = 'sent' AND at >= $3")
                    .bind(contact_id)
                    .bind(channel)
                    .bind(ms(since))
                    .fetch_one(&self.pool)
                    .await?
                    .get(0);
                Ok(count_u32(n))
            }

            pub(crate) async fn outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>> {
                let rows = sqlx::query("SELECT message_id, to_address, subject, html, text, headers, created_at FROM outbox ORDER BY id DESC LIMIT $1")
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(OutboxMessage {
                            message_id: r.get(0),
                            to: r.get(1),
                            subject: r.get(2),
                            html: r.get(3),
                            text: r.get(4),
                            headers: r.get(5),
                            at: instant(r.get(6))?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn set_consent(&self, contact_id: i64, topic: &str, subscribed: bool, source: &str, at: Timestamp) -> Result<()> {
                sqlx::query("INSERT INTO consent_changes (contact_id, topic, subscribed, source, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(contact_id)
                    .bind(topic)
                    .bind(subscribed)
                    .bind(source)
                    .bind(ms(at))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub(crate) async fn consent(&self, contact_id: i64, topic: &str) -> Result<Option<bool>> {
                let row = sqlx::query("SELECT subscribed FROM consent_changes WHERE contact_id = $1 AND topic = $2 ORDER BY at DESC, id DESC LIMIT 1")
                    .bind(contact_id)
                    .bind(topic)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.get(0)))
            }

            pub(crate) async fn unsubscribed_topics(&self, contact_ids: &[i64]) -> Result<HashMap<i64, BTreeSet<String>>> {
                let mut out: HashMap<i64, BTreeSet<String>> = HashMap::new();
                for chunk in contact_ids.chunks(VALUES_PER_IN_LIST) {
                    // Latest change first per (contact, topic): the first row seen decides.
                    let sql = format!(
                        "SELECT contact_id, topic, subscribed FROM consent_changes WHERE contact_id IN ({}) ORDER BY contact_id, topic, at DESC, id DESC",
                        in_list(chunk.len(), NUMBERED_PLACEHOLDERS)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    let mut last: Option<(i64, String)> = None;
                    for r in q.fetch_all(&self.pool).await? {
                        let key: (i64, String) = (r.get(0), r.get(1));
                        if last.as_ref() == Some(&key) {
                            continue;
                        }
                        let subscribed: bool = r.get(2);
                        if !subscribed {
                            out.entry(key.0).or_default().insert(key.1.clone());
                        }
                        last = Some(key);
                    }
                }
                Ok(out)
            }

            pub(crate) async fn consent_history(&self, contact_id: i64) -> Result<Vec<ConsentChange>> {
                let rows = sqlx::query("SELECT id, contact_id, topic, subscribed, source, at FROM consent_changes WHERE contact_id = $1 ORDER BY at, id")
                    .bind(contact_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| Ok(ConsentChange { id: r.get(0), contact_id: r.get(1), topic: r.get(2), subscribed: r.get(3), source: r.get(4), at: instant(r.get(5))? }))
                    .collect()
            }

            pub(crate) async fn suppress_address(&self, address: &str, reason: &str, at: Timestamp) -> Result<()> {
                let address = normalize_address(address);
                if address.is_empty() {
                    return Err(crate::StoreError::Invalid("an empty address cannot be suppressed".to_string()));
                }
                sqlx::query("INSERT INTO suppressions (address, reason, at) VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING")
                    .bind(address)
                    .bind(reason)
                    .bind(ms(at))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub(crate) async fn suppressed_among(&self, addresses: &[&str]) -> Result<HashSet<String>> {
                let wanted: Vec<String> = addresses.iter().map(|a| normalize_address(a)).collect();
                let mut out = HashSet::new();
                for chunk in wanted.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!("SELECT address FROM suppressions WHERE address IN ({})", in_list(chunk.len(), NUMBERED_PLACEHOLDERS));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for a in chunk {
                        q = q.bind(a.as_str());
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        out.insert(r.get::<String, _>(0));
                    }
                }
                Ok(out)
            }

            pub(crate) async fn add_inapp_message(&self, contact_id: i64, enrollment_id: i64, step_id: &str, title: &str, body_html: &str, at: Timestamp) -> Result<i64> {
                let mut tx = self.begin_write().await?;
                let added = sqlx::query(
                    "INSERT INTO inapp_messages (contact_id, enrollment_id, step_id, title, body_html, created_at) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (enrollment_id, step_id, contact_id) DO NOTHING RETURNING id",
                )
                .bind(contact_id)
                .bind(enrollment_id)
                .bind(step_id)
                .bind(title)
                .bind(body_html)
                .bind(ms(at))
                .fetch_optional(&mut *tx)
                .await?;
                let id = match added {
                    Some(r) => r.get(0),
                    None => sqlx::query("SELECT id FROM inapp_messages WHERE enrollment_id = $1 AND step_id = $2 AND contact_id = $3")
                        .bind(enrollment_id)
                        .bind(step_id)
                        .bind(contact_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .get(0),
                };
                tx.commit().await?;
                Ok(id)
            }

            pub(crate) async fn inapp_messages(&self, contact_id: i64, include_dismissed: bool) -> Result<Vec<InAppMessage>> {
                let sql = format!("SELECT {INAPP_COLUMNS} FROM inapp_messages m WHERE m.contact_id = $1 AND ($2 OR m.dismissed_at IS NULL) ORDER BY m.created_at DESC, m.id DESC");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(contact_id).bind(include_dismissed).fetch_all(&self.pool).await?;
                rows.iter().map(inapp_message).collect()
            }

            pub(crate) async fn mark_inapp(&self, message_id: i64, contact_id: i64, action: &str, at: Timestamp) -> Result<bool> {
                let Some(columns) = inapp_mark_columns(action) else {
                    return Err(crate::StoreError::Invalid(format!("`{action}` is not an in-app action: use seen, clicked or dismissed")));
                };
                let sql = format!("UPDATE inapp_messages SET {columns} WHERE id = $1 AND contact_id = $2");
                let marked = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(message_id).bind(contact_id).bind(ms(at)).execute(&self.pool).await?.rows_affected();
                Ok(marked == 1)
            }

            pub(crate) async fn create_task(&self, t: &NewTask) -> Result<i64> {
                let mut tx = self.begin_write().await?;
                let added = sqlx::query(
                    "INSERT INTO tasks (enrollment_id, step_id, account_id, contact_id, title, body, assignee, pool, priority, due_at, created_at, status)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open')
                     ON CONFLICT (enrollment_id, step_id) DO NOTHING RETURNING id",
                )
                .bind(t.enrollment_id)
                .bind(t.step_id.as_str())
                .bind(t.account_id)
                .bind(t.contact_id)
                .bind(t.title.as_str())
                .bind(t.body.as_str())
                .bind(t.assignee.as_deref())
                .bind(t.pool.as_deref())
                .bind(t.priority.rank())
                .bind(t.due_at.map(ms))
                .bind(ms(t.created_at))
                .fetch_optional(&mut *tx)
                .await?;
                let id = match added {
                    Some(r) => r.get(0),
                    None => sqlx::query("SELECT id FROM tasks WHERE enrollment_id = $1 AND step_id = $2")
                        .bind(t.enrollment_id)
                        .bind(t.step_id.as_str())
                        .fetch_one(&mut *tx)
                        .await?
                        .get(0),
                };
                tx.commit().await?;
                Ok(id)
            }

            pub(crate) async fn open_tasks(&self, assignee: Option<&str>, pool: Option<&str>) -> Result<Vec<Task>> {
                let sql = format!(
                    "SELECT {TASK_COLUMNS} FROM tasks t
                     WHERE t.status = 'open' AND ($1 IS NULL OR t.assignee = $1) AND ($2 IS NULL OR t.pool = $2)
                     ORDER BY t.priority DESC, t.due_at IS NULL, t.due_at, t.id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(assignee).bind(pool).fetch_all(&self.pool).await?;
                rows.iter().map(task).collect()
            }

            pub(crate) async fn task(&self, id: i64) -> Result<Option<Task>> {
                let sql = format!("SELECT {TASK_COLUMNS} FROM tasks t WHERE t.id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(task).transpose()
            }

            pub(crate) async fn open_task_counts(&self, pool_members: &[String]) -> Result<Vec<(String, u32)>> {
                let mut counts: HashMap<String, i64> = HashMap::with_capacity(pool_members.len());
                let mut conn = self.pool.acquire().await?;
                for chunk in pool_members.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!("SELECT assignee, COUNT(*) FROM tasks WHERE status = 'open' AND assignee IN ({}) GROUP BY assignee", in_list(chunk.len(), NUMBERED_PLACEHOLDERS));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for member in chunk {
                        q = q.bind(member.as_str());
                    }
                    for r in q.fetch_all(&mut *conn).await? {
                        counts.insert(r.get(0), r.get(1));
                    }
                }
                Ok(pool_members.iter().map(|m| (m.clone(), count_u32(counts.get(m).copied().unwrap_or(0)))).collect())
            }

            pub(crate) async fn last_pool_assignee(&self, pool: &str) -> Result<Option<String>> {
                let row = sqlx::query("SELECT assignee FROM tasks WHERE pool = $1 AND assignee IS NOT NULL ORDER BY id DESC LIMIT 1")
                    .bind(pool)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.get(0)))
            }

            pub(crate) async fn complete_task(&self, id: i64, by: &str, at: Timestamp) -> Result<bool> {
                let done = sqlx::query("UPDATE tasks SET status = 'done', completed_by = $2, completed_at = $3 WHERE id = $1 AND status = 'open'")
                    .bind(id)
                    .bind(by)
                    .bind(ms(at))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(done == 1)
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

            pub(crate) async fn record_engagement(&self, enrollment_id: i64, step_id: &str, kind: &str, at: Timestamp, detail: &str) -> Result<bool> {
                let added = sqlx::query(
                    "INSERT INTO engagements (enrollment_id, step_id, kind, at, detail)
                     SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM enrollments e WHERE e.id = $1)
                     ON CONFLICT (enrollment_id, step_id, kind) DO NOTHING",
                )
                .bind(enrollment_id)
                .bind(step_id)
                .bind(kind)
                .bind(ms(at))
                .bind(detail)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(added == 1)
            }

            pub(crate) async fn engagements(&self, enrollment_id: i64) -> Result<Vec<EngagementRecord>> {
                let rows = sqlx::query("SELECT enrollment_id, step_id, kind, at, detail FROM engagements WHERE enrollment_id = $1 ORDER BY at, step_id, kind")
                    .bind(enrollment_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| Ok(EngagementRecord { enrollment_id: r.get(0), step_id: r.get(1), kind: r.get(2), at: instant(r.get(3))?, detail: r.get(4) }))
                    .collect()
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

            pub(crate) async fn enrollments_to_measure(&self, program_id: &str, enrolled_since: Timestamp) -> Result<Vec<Enrollment>> {
                let sql = format!(
                    "SELECT {ENROLLMENT_COLUMNS} FROM enrollments e WHERE e.program_id = $1 AND e.goal_met_at IS NULL AND e.enrolled_at >= $2 ORDER BY e.id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program_id).bind(ms(enrolled_since)).fetch_all(&self.pool).await?;
                rows.iter().map(enrollment).collect()
            }

            pub(crate) async fn program_enrollments(&self, program_id: &str) -> Result<Vec<Enrollment>> {
                let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments e WHERE e.program_id = $1 ORDER BY e.id");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program_id).fetch_all(&self.pool).await?;
                rows.iter().map(enrollment).collect()
            }

            pub(crate) async fn sent_times_since_many(&self, contact_ids: &[i64], channel: &str, since: Timestamp) -> Result<HashMap<i64, Vec<Timestamp>>> {
                let n = NUMBERED_PLACEHOLDERS;
                let mut out: HashMap<i64, Vec<Timestamp>> = HashMap::new();
                for chunk in contact_ids.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!(
                        "SELECT contact_id, at FROM send_ledger WHERE channel = {} AND outcome = 'sent' AND at >= {} AND contact_id IN ({}) ORDER BY contact_id, at",
                        param(1, n), param(2, n), params_from(3, chunk.len(), n)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(channel).bind(ms(since));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        out.entry(r.get(0)).or_default().push(instant(r.get(1))?);
                    }
                }
                Ok(out)
            }

            pub(crate) async fn setting(&self, key: &str) -> Result<Option<String>> {
                let row = sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
                Ok(row.map(|r| r.get(0)))
            }

            pub(crate) async fn put_setting(&self, key: &str, value: &str) -> Result<()> {
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub(crate) async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await?;
                let row = sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key).fetch_one(&self.pool).await?;
                Ok(row.get(0))
            }

            pub(crate) async fn contact_aliases(&self, contact_ids: &[i64]) -> Result<()> {
                let mut tx = self.begin_write().await?;
                ensure_contact_aliases(&mut tx, contact_ids).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn set_custom_trait(&self, kind: SubjectKind, id: i64, name: &str, value: &serde_json::Value) -> Result<bool> {
                let table = match kind {
                    SubjectKind::Account => "accounts",
                    SubjectKind::Contact => "contacts",
                };
                let mut tx = self.begin_write().await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT traits FROM {table} WHERE id = $1"))).bind(id).fetch_optional(&mut *tx).await?;
                let Some(row) = row else { return Ok(false) };
                let text: String = row.get(0);
                let mut traits: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
                if traits.get(name) == Some(value) {
                    return Ok(true);
                }
                traits.insert(name.to_string(), value.clone());
                let text = serde_json::Value::Object(traits).to_string();
                sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {table} SET traits = $2 WHERE id = $1"))).bind(id).bind(text).execute(&mut *tx).await?;
                tx.commit().await?;
                self.signals.after_commit(crate::signals::Committed { events: false, data: true });
                Ok(true)
            }

            pub(crate) async fn ledger_by_message_id(&self, message_id: &str) -> Result<Option<LedgerEntry>> {
                let trimmed = message_id.trim();
                if trimmed.is_empty() {
                    return Ok(None);
                }
                // Providers report a Message-ID with or without its angle brackets.
                let bare = trimmed.trim_start_matches('<').trim_end_matches('>');
                let bracketed = format!("<{bare}>");
                // An email kept in the outbox is found through its unique index; otherwise
                // the ledger is scanned (it has no index on message_id).
                let via_outbox = format!(
                    "SELECT {LEDGER_COLUMNS} FROM outbox o JOIN send_ledger l ON l.enrollment_id = o.enrollment_id AND l.step_id = o.step_id
                     WHERE o.message_id IN ($1, $2) LIMIT 1"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(via_outbox)).bind(bare).bind(bracketed.as_str()).fetch_optional(&self.pool).await?;
                if let Some(row) = row {
                    return ledger_entry(&row).map(Some);
                }
                let scan = format!("SELECT {LEDGER_COLUMNS} FROM send_ledger l WHERE l.message_id IN ($1, $2) ORDER BY l.at, l.enrollment_id LIMIT 1");
                let row = sqlx::query(sqlx::AssertSqlSafe(scan)).bind(bare).bind(bracketed.as_str()).fetch_optional(&self.pool).await?;
                row.as_ref().map(ledger_entry).transpose()
            }
        }
    };
}

pub(crate) use programs_store_impl;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SubjectKind;

    #[test]
    fn the_cap_recipient_is_the_contact_subject_or_the_detail_contact() {
        assert_eq!(ledger_contact(SubjectKind::Contact, 7, "{}"), Some(7));
        assert_eq!(ledger_contact(SubjectKind::Contact, 7, r#"{"contact_id":9}"#), Some(7));
        assert_eq!(ledger_contact(SubjectKind::Account, 3, r#"{"contact_id":9}"#), Some(9));
        for detail in ["{}", "not json", r#"{"contact_id":"9"}"#, "[]"] {
            assert_eq!(ledger_contact(SubjectKind::Account, 3, detail), None, "{detail}");
        }
    }

    #[test]
    fn inapp_actions_are_seen_clicked_or_dismissed() {
        assert!(inapp_mark_columns("seen").is_some());
        assert!(inapp_mark_columns("clicked").is_some_and(|c| c.contains("seen_at")));
        assert!(inapp_mark_columns("dismissed").is_some_and(|c| c.contains("seen_at")));
        assert_eq!(inapp_mark_columns("deleted"), None);
        assert_eq!(inapp_mark_columns("seen_at = 1; --"), None);
    }

    #[test]
    fn runs_never_hold_an_enrollment_twice_and_keep_the_order() {
        let ids = [1, 2, 1, 3, 2, 2];
        let runs: Vec<Vec<i64>> = distinct_runs(&ids, |i| *i).into_iter().map(<[i64]>::to_vec).collect();
        assert_eq!(runs, vec![vec![1, 2], vec![1, 3, 2], vec![2]]);
        assert!(distinct_runs(&[] as &[i64], |i| *i).is_empty());
    }

    #[test]
    fn placeholders_are_numbered_or_plain() {
        assert_eq!(params_from(3, 2, true), "$3,$4");
        assert_eq!(params_from(3, 2, false), "?,?");
    }

    #[test]
    fn addresses_are_compared_lowercase() {
        assert_eq!(normalize_address("  Ada@Example.COM "), "ada@example.com");
    }
}
