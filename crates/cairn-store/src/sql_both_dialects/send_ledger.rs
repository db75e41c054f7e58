//! The send ledger (what each step did, for frequency caps and measurement), the outbox
//! of rendered emails, and engagement (opens, clicks) per step.

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

macro_rules! send_ledger_impl {
    ($Store:ident, $Db:ty) => {
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

        impl $Store {
            pub(crate) async fn ledger_entry(&self, enrollment_id: i64, step_id: &str) -> Result<Option<LedgerEntry>> {
                let sql = format!("SELECT {LEDGER_COLUMNS} FROM send_ledger l WHERE l.enrollment_id = $1 AND l.step_id = $2");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(enrollment_id).bind(step_id).fetch_optional(&self.pool).await?;
                row.as_ref().map(ledger_entry).transpose()
            }

            #[cfg(feature = "testing")]
            pub(crate) async fn ledger_for_enrollment(&self, enrollment_id: i64) -> Result<Vec<LedgerEntry>> {
                let sql = format!("SELECT {LEDGER_COLUMNS} FROM send_ledger l WHERE l.enrollment_id = $1 ORDER BY l.at, l.step_id");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(enrollment_id).fetch_all(&self.pool).await?;
                rows.iter().map(ledger_entry).collect()
            }

            #[cfg(feature = "testing")]
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

            pub(crate) async fn record_engagements(&self, rows: &[EngagementRecord]) -> Result<Vec<bool>> {
                let mut out = Vec::with_capacity(rows.len());
                if rows.is_empty() {
                    return Ok(out);
                }
                let mut tx = self.begin_write().await?;
                for e in rows {
                    let added = sqlx::query(
                        "INSERT INTO engagements (enrollment_id, step_id, kind, at, detail)
                         SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM enrollments e WHERE e.id = $1)
                         ON CONFLICT (enrollment_id, step_id, kind) DO NOTHING",
                    )
                    .bind(e.enrollment_id)
                    .bind(e.step_id.as_str())
                    .bind(e.kind.as_str())
                    .bind(ms(e.at))
                    .bind(e.detail.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    out.push(added == 1);
                }
                tx.commit().await?;
                Ok(out)
            }

            pub(crate) async fn ledger_entries_of(&self, enrollment_ids: &[i64]) -> Result<Vec<LedgerEntry>> {
                let mut out = Vec::new();
                for chunk in enrollment_ids.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!(
                        "SELECT {LEDGER_COLUMNS} FROM send_ledger l WHERE l.enrollment_id IN ({}) ORDER BY l.enrollment_id, l.at, l.step_id",
                        in_list(chunk.len(), true)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        out.push(ledger_entry(&r)?);
                    }
                }
                Ok(out)
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

            pub(crate) async fn engagements_of(&self, enrollment_ids: &[i64]) -> Result<HashMap<i64, Vec<EngagementRecord>>> {
                let mut out: HashMap<i64, Vec<EngagementRecord>> = HashMap::new();
                for chunk in enrollment_ids.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!(
                        "SELECT {} FROM engagements WHERE enrollment_id IN ({})",
                        json_array_agg(&json_tuple("enrollment_id, step_id, kind, at, detail")),
                        in_list(chunk.len(), NUMBERED_PLACEHOLDERS)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for (enrollment_id, step_id, kind, at, detail) in json_array::<(i64, String, String, i64, String)>(q.fetch_one(&self.pool).await?.get(0))? {
                        out.entry(enrollment_id).or_default().push(EngagementRecord { enrollment_id, step_id, kind, at: instant(at)?, detail });
                    }
                }
                // The order `engagements` gives.
                for list in out.values_mut() {
                    list.sort_by(|a, b| (a.at, &a.step_id, &a.kind).cmp(&(b.at, &b.step_id, &b.kind)));
                }
                Ok(out)
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

            pub(crate) async fn program_activity(&self, since: Timestamp, until: Timestamp) -> Result<ProgramActivity> {
                let mut conn = self.pool.acquire().await?;
                let conn = &mut *conn;
                let in_range = "e.enrolled_at >= $1 AND e.enrolled_at < $2";
                let sql = format!(
                    "SELECT {ENROLLMENT_COLUMNS},
                            CASE WHEN e.subject_kind = 'account' THEN e.subject_id
                                 ELSE (SELECT c.account_id FROM contacts c WHERE c.id = e.subject_id) END
                     FROM enrollments e WHERE {in_range} ORDER BY e.id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(since)).bind(ms(until)).fetch_all(&mut *conn).await?;
                let enrollments = rows
                    .iter()
                    .map(|r| Ok(MeasuredEnrollment { enrollment: enrollment(r)?, account_id: r.get(11) }))
                    .collect::<Result<Vec<_>>>()?;
                let sql = format!(
                    "SELECT {LEDGER_COLUMNS}, l.contact_id FROM send_ledger l JOIN enrollments e ON e.id = l.enrollment_id
                     WHERE {in_range} ORDER BY l.enrollment_id, l.step_id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(since)).bind(ms(until)).fetch_all(&mut *conn).await?;
                let sends = rows.iter().map(|r| Ok(SendRecord { entry: ledger_entry(r)?, contact_id: r.get(7) })).collect::<Result<Vec<_>>>()?;
                let sql = format!(
                    "SELECT g.enrollment_id, g.step_id, g.kind, g.at, g.detail FROM engagements g JOIN enrollments e ON e.id = g.enrollment_id
                     WHERE {in_range} ORDER BY g.enrollment_id, g.step_id, g.kind"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(since)).bind(ms(until)).fetch_all(&mut *conn).await?;
                let engagements = rows
                    .iter()
                    .map(|r| Ok(EngagementRecord { enrollment_id: r.get(0), step_id: r.get(1), kind: r.get(2), at: instant(r.get(3))?, detail: r.get(4) }))
                    .collect::<Result<Vec<_>>>()?;
                Ok(ProgramActivity { enrollments, sends, engagements })
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

pub(crate) use send_ledger_impl;

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
}
