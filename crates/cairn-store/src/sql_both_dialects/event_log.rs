//! The event log: appending tracking messages (each `messageId` stored once per source),
//! and reading them back in `seq` order for the engine.

use cairn_core::tracking::{MessageKind, TrackingMessage};

use super::values_rows;

/// Whether a message kind is only a fact in the log (bulk-insertable) or also changes
/// identities (applied one by one, in order).
pub(crate) fn is_plain_event(m: &TrackingMessage) -> bool {
    matches!(m.kind, MessageKind::Track | MessageKind::Page | MessageKind::Screen)
}

/// Per message, whether it is new: its id is among those the database stored now, and it
/// is the first message with that id (a repeat inside one statement is a duplicate).
pub(crate) fn mark_new(msgs: &[&TrackingMessage], inserted: &std::collections::HashSet<String>) -> Vec<bool> {
    let mut seen = std::collections::HashSet::with_capacity(msgs.len());
    msgs.iter().map(|m| inserted.contains(&m.message_id) && seen.insert(m.message_id.as_str())).collect()
}

/// Rows per multi-row INSERT of events (14 parameters each; well under both limits).
pub(crate) const EVENT_ROWS_PER_INSERT: usize = 500;

/// The append-only logs whose readers keep `seq` as a cursor (see each backend's `lock_log`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum AppendLog {
    /// `events`.
    Events,
    /// `transitions`.
    Transitions,
}

/// Builds `INSERT INTO events (...) VALUES ($1..), ($15..) ... ON CONFLICT DO NOTHING RETURNING message_id`.
///
/// With `numbered = false` the placeholders are plain `?`: SQLite looks a `$N` name up
/// with a linear scan per bound value, which makes a 7,000-value statement quadratic.
pub(crate) fn events_insert_sql(rows: usize, numbered: bool) -> String {
    let mut sql = String::with_capacity(200 + rows * 80);
    sql.push_str("INSERT INTO events (message_id, kind, event, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at, received_at, source, properties, context) VALUES ");
    sql.push_str(&values_rows(rows, 14, numbered));
    sql.push_str(" ON CONFLICT (message_id, source) DO NOTHING RETURNING message_id");
    sql
}

macro_rules! event_log_impl {
    ($Store:ident, $Db:ty) => {
        /// Inserts events with multi-row statements; returns, per message, whether it is new.
        async fn insert_events(conn: &mut Conn, source: &str, msgs: &[&TrackingMessage]) -> Result<Vec<bool>> {
            let mut inserted = HashSet::with_capacity(msgs.len());
            for chunk in msgs.chunks(EVENT_ROWS_PER_INSERT) {
                let sql = events_insert_sql(chunk.len(), NUMBERED_PLACEHOLDERS);
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for m in chunk {
                    q = bind_event(q, source, m);
                }
                for row in q.fetch_all(&mut *conn).await? {
                    inserted.insert(row.get::<String, _>(0));
                }
            }
            Ok(crate::sql_both_dialects::event_log::mark_new(msgs, &inserted))
        }

        /// Binds the 14 event columns of one message, in `events_insert_sql` order.
        fn bind_event<'q>(
            q: sqlx::query::Query<'q, $Db, <$Db as sqlx::Database>::Arguments>,
            source: &'q str,
            m: &'q TrackingMessage,
        ) -> sqlx::query::Query<'q, $Db, <$Db as sqlx::Database>::Arguments> {
                    q
                        .bind(m.message_id.as_str())
                        .bind(m.kind.as_str())
                        .bind(m.event.as_deref())
                        .bind(m.user_id.as_deref())
                        .bind(m.anonymous_id.as_deref())
                        .bind(m.group_id.as_deref())
                        .bind(m.previous_id.as_deref())
                        .bind(ms(m.timestamp))
                        .bind(m.original_timestamp.map(ms))
                        .bind(m.sent_at.map(ms))
                        .bind(ms(m.received_at))
                        .bind(source)
                        .bind(m.properties.as_deref())
                        .bind(m.context.as_deref())
        }

        /// Appends messages in order on one connection inside the caller's transaction.
        pub(crate) async fn append_in(conn: &mut Conn, source: &str, messages: &[TrackingMessage]) -> Result<Vec<Appended>> {
            let mut out = Vec::with_capacity(messages.len());
            let mut i = 0;
            while i < messages.len() {
                // A run of plain events goes in with multi-row inserts; identity calls one by one.
                let start = i;
                while i < messages.len() && crate::sql_both_dialects::event_log::is_plain_event(&messages[i]) {
                    i += 1;
                }
                if i > start {
                    let run: Vec<&TrackingMessage> = messages[start..i].iter().collect();
                    for new in insert_plain_events(conn, source, &run).await? {
                        out.push(if new { Appended::New } else { Appended::Duplicate });
                    }
                    continue;
                }
                let m = &messages[i];
                i += 1;
                if insert_events(conn, source, &[m]).await? != [true] {
                    out.push(Appended::Duplicate);
                    continue;
                }
                match m.kind {
                    MessageKind::Identify => apply_identify(conn, m).await?,
                    MessageKind::Group => apply_group(conn, m).await?,
                    MessageKind::Alias => apply_alias(conn, m).await?,
                    MessageKind::Track | MessageKind::Page | MessageKind::Screen => {}
                }
                out.push(Appended::New);
            }
            Ok(out)
        }

        impl $Store {
            pub(crate) async fn append_groups(&self, groups: &[(&str, &[TrackingMessage])]) -> Result<Vec<Vec<Appended>>> {
                let mut tx = self.begin_write().await?;
                lock_log(&mut tx, crate::sql_both_dialects::event_log::AppendLog::Events).await?;
                let mut out = Vec::with_capacity(groups.len());
                let mut committed = Committed::default();
                for (source, messages) in groups {
                    let outcomes = append_in(&mut tx, source, messages).await?;
                    committed = committed.and(Committed::of_appends(messages, &outcomes));
                    out.push(outcomes);
                }
                tx.commit().await?;
                self.signals.after_commit(committed);
                Ok(out)
            }

            #[cfg(feature = "testing")]
            pub(crate) async fn count_message_ids(&self, ids: &[String]) -> Result<HashMap<String, u64>> {
                let mut out: HashMap<String, u64> = ids.iter().map(|i| (i.clone(), 0)).collect();
                let mut conn = self.pool.acquire().await?;
                for chunk in ids.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!("SELECT message_id FROM events WHERE message_id IN ({})", in_list(chunk.len(), NUMBERED_PLACEHOLDERS));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(id.as_str());
                    }
                    for row in q.fetch_all(&mut *conn).await? {
                        *out.entry(row.get::<String, _>(0)).or_default() += 1;
                    }
                }
                Ok(out)
            }

            pub(crate) async fn last_seq(&self) -> Result<i64> {
                let n: i64 = sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events").fetch_one(&self.pool).await?.get(0);
                Ok(n)
            }

        }

        /// Behaviour events with their identity resolved by the `event_identity` view.
        const LOG_EVENTS: &str = "SELECT e.seq, e.ts, e.kind, e.event, i.contact_id, i.account_id, e.source, e.properties
             FROM events e JOIN event_identity i ON i.seq = e.seq
             WHERE e.kind IN ('track', 'page', 'screen')";

        fn log_event(r: &DbRow) -> Result<LogEvent> {
            Ok(LogEvent {
                seq: r.get(0),
                ts: instant(r.get(1))?,
                kind: r.get(2),
                name: r.get(3),
                contact_id: r.get(4),
                account_id: r.get(5),
                source: r.get(6),
                properties: r.get(7),
            })
        }

        /// The columns of [`LOG_EVENTS`] (selected as `x`), as one element of a JSON array.
        const LOG_EVENT_JSON: &str = "json_array(x.seq, x.ts, x.kind, x.event, x.contact_id, x.account_id, x.source, x.properties)";

        /// The columns of [`LOG_EVENTS`], as one element of a JSON array.
        type LogEventTuple = (i64, i64, String, Option<String>, Option<i64>, Option<i64>, String, Option<String>);

        fn log_event_of(r: LogEventTuple) -> Result<LogEvent> {
            let (seq, ts, kind, name, contact_id, account_id, source, properties) = r;
            Ok(LogEvent { seq, ts: instant(ts)?, kind, name, contact_id, account_id, source, properties })
        }

        impl $Store {
            pub(crate) async fn events_after(&self, after_seq: i64, limit: u32) -> Result<Vec<LogEvent>> {
                // The bound on both sides: PostgreSQL does not carry a range across the join,
                // and would otherwise merge-join from the start of the log every time.
                let sql = format!("{LOG_EVENTS} AND e.seq > $1 AND i.seq > $1 ORDER BY e.seq LIMIT $2");
                if ROWS_ONE_AT_A_TIME {
                    // One row for all of them: this driver hands rows over one at a time.
                    let sql = format!("SELECT {} FROM ({sql}) x", json_array_agg(LOG_EVENT_JSON));
                    let text: String = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_seq).bind(i64::from(limit)).fetch_one(&self.pool).await?.get(0);
                    let mut out = json_array::<LogEventTuple>(text)?.into_iter().map(log_event_of).collect::<Result<Vec<_>>>()?;
                    out.sort_by_key(|e| e.seq);
                    return Ok(out);
                }
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_seq).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.iter().map(log_event).collect()
            }

            pub(crate) async fn events_named_after(&self, after_seq: i64, up_to_seq: i64, names: &[&str], since: Timestamp, limit: u32) -> Result<Vec<LogEvent>> {
                if names.is_empty() {
                    return Ok(Vec::new());
                }
                // The name and time are tested before identity is resolved: a backlog of
                // other events costs a scan of the primary key, not a resolution each.
                let sql = format!(
                    "{LOG_EVENTS} AND e.seq > $1 AND i.seq > $1 AND e.seq <= $2 AND e.ts >= $3 AND e.event IN ({}) ORDER BY e.seq LIMIT $4",
                    crate::sql_both_dialects::in_list_from(5, names.len())
                );
                let sql = if ROWS_ONE_AT_A_TIME { format!("SELECT {} FROM ({sql}) x", json_array_agg(LOG_EVENT_JSON)) } else { sql };
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_seq).bind(up_to_seq).bind(ms(since)).bind(i64::from(limit));
                for name in names {
                    query = query.bind(*name);
                }
                if ROWS_ONE_AT_A_TIME {
                    let text: String = query.fetch_one(&self.pool).await?.get(0);
                    let mut out = json_array::<LogEventTuple>(text)?.into_iter().map(log_event_of).collect::<Result<Vec<_>>>()?;
                    out.sort_by_key(|e| e.seq);
                    return Ok(out);
                }
                let rows = query.fetch_all(&self.pool).await?;
                rows.iter().map(log_event).collect()
            }

            pub(crate) async fn events_after_from(&self, after_seq: i64, source: &str, limit: u32) -> Result<Vec<LogEvent>> {
                let sql = format!("{LOG_EVENTS} AND e.source = $3 AND e.seq > $1 AND i.seq > $1 ORDER BY e.seq LIMIT $2");
                if ROWS_ONE_AT_A_TIME {
                    let sql = format!("SELECT {} FROM ({sql}) x", json_array_agg(LOG_EVENT_JSON));
                    let text: String = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_seq).bind(i64::from(limit)).bind(source).fetch_one(&self.pool).await?.get(0);
                    let mut out = json_array::<LogEventTuple>(text)?.into_iter().map(log_event_of).collect::<Result<Vec<_>>>()?;
                    out.sort_by_key(|e| e.seq);
                    return Ok(out);
                }
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_seq).bind(i64::from(limit)).bind(source).fetch_all(&self.pool).await?;
                rows.iter().map(log_event).collect()
            }

            pub(crate) async fn event_times(&self, up_to_seq: i64) -> Result<Vec<(i64, Timestamp)>> {
                if ROWS_ONE_AT_A_TIME {
                    // A page of rows per JSON array, so that no one text is the whole log.
                    const PAGE: i64 = 200_000;
                    let sql = format!(
                        "SELECT {} FROM (SELECT seq, ts FROM events WHERE seq > $1 AND seq <= $2 AND kind IN ('track', 'page', 'screen') ORDER BY seq LIMIT $3) x",
                        json_array_agg("json_array(x.seq, x.ts)")
                    );
                    let mut out = Vec::new();
                    let mut after = 0;
                    loop {
                        let text: String = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(after).bind(up_to_seq).bind(PAGE).fetch_one(&self.pool).await?.get(0);
                        let mut page = json_array::<(i64, i64)>(text)?;
                        page.sort_unstable_by_key(|(seq, _)| *seq);
                        let Some(&(last, _)) = page.last() else { return Ok(out) };
                        let full = page.len() as i64 == PAGE;
                        for (seq, ts) in page {
                            out.push((seq, instant(ts)?));
                        }
                        if !full {
                            return Ok(out);
                        }
                        after = last;
                    }
                }
                let rows = sqlx::query("SELECT seq, ts FROM events WHERE seq <= $1 AND kind IN ('track', 'page', 'screen') ORDER BY seq")
                    .bind(up_to_seq)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| Ok((r.get(0), instant(r.get(1))?))).collect()
            }

            pub(crate) async fn events_by_seq(&self, seqs: &[i64]) -> Result<Vec<LogEvent>> {
                let mut wanted: Vec<i64> = seqs.to_vec();
                wanted.sort_unstable();
                wanted.dedup();
                let mut found: HashMap<i64, LogEvent> = HashMap::with_capacity(wanted.len());
                let mut conn = self.pool.acquire().await?;
                for chunk in wanted.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!("{LOG_EVENTS} AND e.seq IN ({})", in_list(chunk.len(), NUMBERED_PLACEHOLDERS));
                    if ROWS_ONE_AT_A_TIME {
                        let sql = format!("SELECT {} FROM ({sql}) x", json_array_agg(LOG_EVENT_JSON));
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for seq in chunk {
                            q = q.bind(*seq);
                        }
                        let text: String = q.fetch_one(&mut *conn).await?.get(0);
                        for t in json_array::<LogEventTuple>(text)? {
                            let e = log_event_of(t)?;
                            found.insert(e.seq, e);
                        }
                        continue;
                    }
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for seq in chunk {
                        q = q.bind(*seq);
                    }
                    for r in q.fetch_all(&mut *conn).await? {
                        let e = log_event(&r)?;
                        found.insert(e.seq, e);
                    }
                }
                // In the caller's order; an event is moved out at its last mention, cloned before.
                let last_mention: HashMap<i64, usize> = seqs.iter().enumerate().map(|(i, s)| (*s, i)).collect();
                let mut out = Vec::with_capacity(found.len());
                for (i, seq) in seqs.iter().enumerate() {
                    let e = if last_mention[seq] == i { found.remove(seq) } else { found.get(seq).cloned() };
                    out.extend(e);
                }
                Ok(out)
            }
        }
    };
}

pub(crate) use event_log_impl;
