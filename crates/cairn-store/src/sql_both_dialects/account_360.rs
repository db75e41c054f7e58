//! What the account 360 reads of one account, a page at a time (migration 0010): its
//! product events, the messages its contacts were sent with their engagement, its tasks,
//! transitions, notes and overrides, each newest first and strictly before a cursor, and
//! its contacts' activity.
//!
//! Every read starts from the account's own ids and is bounded by a `LIMIT` or a time
//! window, so its cost follows the account, never the size of the log. The events are
//! found the way `event_identity` resolves them, through two indexes: by the account's
//! product id (`group_id`), and, for events that name no group, by the userId of one of
//! its contacts (their product ids and aliases). Two cases the view resolves are left
//! out, both rare: an event whose groupId names no known account (the view falls back
//! to its contact's account), and an event known only by its anonymousId.

use serde::Serialize;

/// The alias cairn gives a contact for the events it writes itself (sends,
/// engagements): those are shown as messages, not as product events.
pub(crate) use crate::CONTACT_ALIAS_PREFIX as CAIRN_ALIAS_PREFIX;

/// One product event of an account (a track, page or screen call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountEvent {
    /// Its place in the log.
    pub seq: i64,
    /// When it happened.
    pub at: jiff::Timestamp,
    /// track, page, screen, identify, …
    pub kind: String,
    /// The event's name (a track call's `event`).
    pub name: Option<String>,
    /// The userId it came with.
    pub user_id: Option<String>,
    /// The contact of the account that userId names, if any.
    pub contact_id: Option<i64>,
    /// Its properties as JSON text.
    pub properties: Option<String>,
}

/// A message a program sent to one of the account's contacts, with how it was engaged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountMessage {
    /// The enrollment it belongs to.
    pub enrollment_id: i64,
    /// The program.
    pub program_id: String,
    /// The step.
    pub step_id: String,
    /// email, in_app, …
    pub channel: String,
    /// The recipient.
    pub contact_id: Option<i64>,
    /// The subject line, when the channel has one.
    pub subject: Option<String>,
    /// When it was sent.
    pub at: jiff::Timestamp,
    /// Engagement with it (`opened`, `clicked`, `bounced`, …), oldest first.
    pub engagements: Vec<(String, jiff::Timestamp)>,
}

/// How active one contact of an account is, and how it answers messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContactActivity {
    /// The contact.
    pub contact_id: i64,
    /// Events in the last 30 days.
    pub events_30d: u64,
    /// Days with an event in the last 30 days (UTC days).
    pub active_days_30d: u64,
    /// Its latest event in the last 90 days (older activity is not looked at).
    pub last_seen: Option<jiff::Timestamp>,
    /// Messages sent to it.
    pub received: u64,
    /// Of those, opened (or seen, in-app).
    pub opened: u64,
    /// Of those, clicked.
    pub clicked: u64,
    /// Of those, bounced.
    pub bounced: u64,
    /// When the last message was sent to it.
    pub last_message_at: Option<jiff::Timestamp>,
}

/// The window a contact's "last seen" is looked for in.
pub const LAST_SEEN_DAYS: i64 = 90;
/// The window of a contact's event counts.
pub const ACTIVE_DAYS: i64 = 30;

macro_rules! account_360_impl {
    ($Store:ident, $Db:ty) => {
        use crate::sql_both_dialects::account_360::{
            ACTIVE_DAYS, AccountEvent, AccountMessage, CAIRN_ALIAS_PREFIX, ContactActivity, LAST_SEEN_DAYS,
        };

        const DAY_MS: i64 = 86_400_000;
        /// What the product did, as opposed to who someone is (identify, group, alias).
        const PRODUCT_KINDS: &str = "('track', 'page', 'screen')";

        fn account_event(r: &DbRow, users: &HashMap<String, i64>) -> Result<AccountEvent> {
            let user_id: Option<String> = r.get(4);
            Ok(AccountEvent {
                seq: r.get(0),
                at: instant(r.get(1))?,
                kind: r.get(2),
                name: r.get(3),
                contact_id: user_id.as_ref().and_then(|u| users.get(u).copied()),
                user_id,
                properties: r.get(5),
            })
        }

        impl $Store {
            /// The account's product ids: the groupIds its events carry.
            async fn account_group_ids(&self, account_id: i64) -> Result<Vec<String>> {
                let rows = sqlx::query(
                    "SELECT x.external_id FROM external_ids x WHERE x.entity_kind = 'account' AND x.entity_id = $1 AND x.source = 'product' ORDER BY x.external_id",
                )
                .bind(account_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            }

            /// The userIds that name the account's contacts (product ids and aliases,
            /// not cairn's own alias), each with its contact.
            async fn account_user_ids(&self, account_id: i64) -> Result<HashMap<String, i64>> {
                let rows = sqlx::query(
                    // As `IN` lists, not joins: without statistics SQLite's planner
                    // read the join from the ids' side, every contact's product id (half
                    // a million on W1), instead of from the account's few contacts.
                    "SELECT x.external_id, x.entity_id FROM external_ids x
                      WHERE x.entity_kind = 'contact' AND x.source = 'product'
                        AND x.entity_id IN (SELECT c.id FROM contacts c WHERE c.account_id = $1)
                     UNION ALL
                     SELECT a.alias, a.contact_id FROM contact_aliases a
                      WHERE a.contact_id IN (SELECT c.id FROM contacts c WHERE c.account_id = $1)",
                )
                .bind(account_id)
                .fetch_all(&self.pool)
                .await?;
                let mut out = HashMap::with_capacity(rows.len());
                for r in &rows {
                    let user: String = r.get(0);
                    if !user.starts_with(CAIRN_ALIAS_PREFIX) {
                        // A product id wins over an alias, as in `event_identity`.
                        out.entry(user).or_insert(r.get::<i64, _>(1));
                    }
                }
                Ok(out)
            }

            pub(crate) async fn account_events_before(&self, account_id: i64, before: Timestamp, limit: u32) -> Result<Vec<AccountEvent>> {
                let users = self.account_user_ids(account_id).await?;
                let groups = self.account_group_ids(account_id).await?;
                let mut out: Vec<AccountEvent> = Vec::new();
                const COLUMNS: &str = "e.seq, e.ts, e.kind, e.event, e.user_id, e.properties";
                for chunk in groups.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM events e WHERE e.group_id IN ({}) AND e.ts < $1 AND e.kind IN {PRODUCT_KINDS} ORDER BY e.ts DESC, e.seq DESC LIMIT $2",
                        in_list_from(3, chunk.len())
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(before)).bind(i64::from(limit));
                    for g in chunk {
                        q = q.bind(g.as_str());
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        out.push(account_event(&r, &users)?);
                    }
                }
                let mut names: Vec<&str> = users.keys().map(String::as_str).collect();
                names.sort_unstable();
                for chunk in names.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM events e WHERE e.group_id IS NULL AND e.user_id IN ({}) AND e.ts < $1 AND e.kind IN {PRODUCT_KINDS} ORDER BY e.ts DESC, e.seq DESC LIMIT $2",
                        in_list_from(3, chunk.len())
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(before)).bind(i64::from(limit));
                    for u in chunk {
                        q = q.bind(*u);
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        out.push(account_event(&r, &users)?);
                    }
                }
                out.sort_by(|a, b| (b.at, b.seq).cmp(&(a.at, a.seq)));
                out.truncate(limit as usize);
                Ok(out)
            }

            pub(crate) async fn account_messages_before(&self, account_id: i64, before: Timestamp, limit: u32) -> Result<Vec<AccountMessage>> {
                let rows = sqlx::query(
                    "SELECT l.enrollment_id, n.program_id, l.step_id, l.channel, l.contact_id, l.detail, l.at
                       FROM contacts c
                       JOIN send_ledger l ON l.contact_id = c.id AND l.outcome = 'sent'
                       JOIN enrollments n ON n.id = l.enrollment_id
                      WHERE c.account_id = $1 AND l.at < $2
                      ORDER BY l.at DESC, l.enrollment_id DESC, l.step_id DESC LIMIT $3",
                )
                .bind(account_id)
                .bind(ms(before))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let detail: String = r.get(5);
                    let subject = serde_json::from_str::<Value>(&detail)
                        .ok()
                        .and_then(|d| d.get("subject").and_then(Value::as_str).map(str::to_string));
                    out.push(AccountMessage {
                        enrollment_id: r.get(0),
                        program_id: r.get(1),
                        step_id: r.get(2),
                        channel: r.get(3),
                        contact_id: r.get(4),
                        subject,
                        at: instant(r.get(6))?,
                        engagements: Vec::new(),
                    });
                }
                let mut ids: Vec<i64> = out.iter().map(|m| m.enrollment_id).collect();
                ids.sort_unstable();
                ids.dedup();
                let mut engaged: HashMap<(i64, String), Vec<(String, Timestamp)>> = HashMap::new();
                for chunk in ids.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!(
                        "SELECT g.enrollment_id, g.step_id, g.kind, g.at FROM engagements g WHERE g.enrollment_id IN ({}) ORDER BY g.at, g.kind",
                        in_list(chunk.len(), true)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        engaged.entry((r.get(0), r.get(1))).or_default().push((r.get(2), instant(r.get(3))?));
                    }
                }
                for m in &mut out {
                    if let Some(e) = engaged.remove(&(m.enrollment_id, m.step_id.clone())) {
                        m.engagements = e;
                    }
                }
                Ok(out)
            }

            pub(crate) async fn account_tasks_before(&self, account_id: i64, before: Timestamp, limit: u32) -> Result<Vec<Task>> {
                let sql = format!(
                    "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.account_id = $1 AND t.created_at < $2 ORDER BY t.created_at DESC, t.id DESC LIMIT $3"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).bind(ms(before)).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.iter().map(task).collect()
            }

            pub(crate) async fn account_tasks_completed_before(&self, account_id: i64, before: Timestamp, limit: u32) -> Result<Vec<Task>> {
                let sql = format!(
                    "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.account_id = $1 AND t.completed_at < $2 ORDER BY t.completed_at DESC, t.id DESC LIMIT $3"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).bind(ms(before)).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.iter().map(task).collect()
            }

            pub(crate) async fn health_overrides_before(&self, account_id: i64, before: Timestamp, limit: u32) -> Result<Vec<HealthOverrideRecord>> {
                let sql = format!(
                    "SELECT {HEALTH_OVERRIDE_COLUMNS} FROM health_overrides h WHERE h.account_id = $1 AND h.set_at < $2 ORDER BY h.set_at DESC, h.id DESC LIMIT $3"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).bind(ms(before)).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.iter().map(health_override).collect()
            }

            pub(crate) async fn account_contact_activity(&self, account_id: i64, now: Timestamp) -> Result<Vec<ContactActivity>> {
                let users = self.account_user_ids(account_id).await?;
                let groups = self.account_group_ids(account_id).await?;
                let (now_ms, since_30, since_90) = (ms(now), ms(now) - ACTIVE_DAYS * DAY_MS, ms(now) - LAST_SEEN_DAYS * DAY_MS);
                let mut by: HashMap<i64, ContactActivity> = HashMap::new();
                // Days as whole days since the epoch, per user, from the index alone.
                const PER_USER: &str = "SELECT e.user_id, SUM(CASE WHEN e.ts >= $2 THEN 1 ELSE 0 END),
                        COUNT(DISTINCT CASE WHEN e.ts >= $2 THEN e.ts / 86400000 END), MAX(e.ts)
                     FROM events e WHERE";
                let mut tally = |rows: Vec<DbRow>| {
                    for r in rows {
                        let Some(contact) = r.get::<Option<String>, _>(0).and_then(|u| users.get(&u).copied()) else { continue };
                        let a = by.entry(contact).or_insert_with(|| ContactActivity { contact_id: contact, ..ContactActivity::default() });
                        a.events_30d += count_u64(r.get::<Option<i64>, _>(1).unwrap_or(0));
                        // A user's days are counted once per query; a contact with two
                        // userIds active on one day may count it twice (rare).
                        a.active_days_30d += count_u64(r.get::<i64, _>(2));
                        let last = r.get::<Option<i64>, _>(3).map(instant).transpose()?;
                        a.last_seen = a.last_seen.max(last);
                    }
                    Ok::<(), crate::StoreError>(())
                };
                for chunk in groups.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!(
                        "{PER_USER} e.group_id IN ({}) AND e.ts >= $1 AND e.ts < $3 AND e.kind IN {PRODUCT_KINDS} GROUP BY e.user_id",
                        in_list_from(4, chunk.len())
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since_90).bind(since_30).bind(now_ms);
                    for g in chunk {
                        q = q.bind(g.as_str());
                    }
                    tally(q.fetch_all(&self.pool).await?)?;
                }
                let mut names: Vec<&str> = users.keys().map(String::as_str).collect();
                names.sort_unstable();
                for chunk in names.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!(
                        "{PER_USER} e.group_id IS NULL AND e.user_id IN ({}) AND e.ts >= $1 AND e.ts < $3 AND e.kind IN {PRODUCT_KINDS} GROUP BY e.user_id",
                        in_list_from(4, chunk.len())
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since_90).bind(since_30).bind(now_ms);
                    for u in chunk {
                        q = q.bind(*u);
                    }
                    tally(q.fetch_all(&self.pool).await?)?;
                }
                let rows = sqlx::query(
                    "SELECT l.contact_id, COUNT(*),
                            SUM(CASE WHEN EXISTS (SELECT 1 FROM engagements g WHERE g.enrollment_id = l.enrollment_id AND g.step_id = l.step_id AND g.kind = 'opened') THEN 1 ELSE 0 END),
                            SUM(CASE WHEN EXISTS (SELECT 1 FROM engagements g WHERE g.enrollment_id = l.enrollment_id AND g.step_id = l.step_id AND g.kind = 'clicked') THEN 1 ELSE 0 END),
                            SUM(CASE WHEN EXISTS (SELECT 1 FROM engagements g WHERE g.enrollment_id = l.enrollment_id AND g.step_id = l.step_id AND g.kind = 'bounced') THEN 1 ELSE 0 END),
                            MAX(l.at)
                       FROM contacts c JOIN send_ledger l ON l.contact_id = c.id AND l.outcome = 'sent'
                      WHERE c.account_id = $1 AND l.at < $2
                      GROUP BY l.contact_id",
                )
                .bind(account_id)
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
                for r in &rows {
                    let contact: i64 = r.get(0);
                    let a = by.entry(contact).or_insert_with(|| ContactActivity { contact_id: contact, ..ContactActivity::default() });
                    a.received = count_u64(r.get(1));
                    a.opened = count_u64(r.get::<Option<i64>, _>(2).unwrap_or(0));
                    a.clicked = count_u64(r.get::<Option<i64>, _>(3).unwrap_or(0));
                    a.bounced = count_u64(r.get::<Option<i64>, _>(4).unwrap_or(0));
                    a.last_message_at = r.get::<Option<i64>, _>(5).map(instant).transpose()?;
                }
                let mut out: Vec<ContactActivity> = by.into_values().collect();
                out.sort_by_key(|a| a.contact_id);
                Ok(out)
            }
        }

        fn count_u64(n: i64) -> u64 {
            u64::try_from(n).unwrap_or(0)
        }
    };
}

pub(crate) use account_360_impl;
