//! The store logic whose SQL both SQLite and PostgreSQL accept, written once and stamped
//! out for each backend by `shared_store_impl!`. Placeholders are `$N` (both accept
//! them), dates are ISO `YYYY-MM-DD` text and JSON is text in both schemas.

use std::collections::BTreeMap;

use cairn_core::tracking::{MessageKind, TrackingMessage};
use serde_json::{Map, Value};

/// Merges `changes` into the JSON object text `current`: a `null` change removes the
/// key. Returns the new text, or `None` when nothing changed.
pub(crate) fn merge_traits(current: &str, changes: &BTreeMap<String, Value>) -> Option<String> {
    let mut map: Map<String, Value> = serde_json::from_str(current).unwrap_or_default();
    let mut changed = false;
    for (k, v) in changes {
        if v.is_null() {
            changed |= map.remove(k).is_some();
        } else if map.get(k) != Some(v) {
            map.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed.then(|| Value::Object(map).to_string())
}

/// The person-level facts an identify call's traits carry, split from custom traits.
#[derive(Debug, Default)]
pub(crate) struct IdentifyTraits {
    pub email: Option<cairn_core::Email>,
    pub name: Option<String>,
    pub role: Option<String>,
    pub timezone: Option<String>,
    pub custom: BTreeMap<String, Value>,
}

/// Splits identify traits into the typed columns and custom traits. Invalid typed values
/// (an email that is not one) stay as custom traits rather than failing the event.
pub(crate) fn split_identify_traits(properties: Option<&str>) -> IdentifyTraits {
    let mut out = IdentifyTraits::default();
    let Some(map) = properties.and_then(|p| serde_json::from_str::<Map<String, Value>>(p).ok()) else {
        return out;
    };
    let (mut first, mut last) = (None, None);
    for (k, v) in map {
        let text = v.as_str().map(str::to_string);
        match (k.as_str(), text) {
            ("email", Some(t)) if cairn_core::Email::parse(&t).is_ok() => out.email = cairn_core::Email::parse(&t).ok(),
            ("name", Some(t)) => out.name = Some(t),
            ("firstName" | "first_name", Some(t)) => first = Some(t),
            ("lastName" | "last_name", Some(t)) => last = Some(t),
            ("role" | "title", Some(t)) if k == "role" || out.role.is_none() => out.role = Some(t.to_ascii_lowercase()),
            ("timezone", Some(t)) if cairn_core::values::parse_time_zone(&t).is_ok() => out.timezone = Some(t),
            _ => {
                out.custom.insert(k, v);
            }
        }
    }
    if out.name.is_none() {
        out.name = match (first, last) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(f), None) => Some(f),
            (None, Some(l)) => Some(l),
            (None, None) => None,
        };
    }
    out
}

/// The account-level facts a group call's traits carry.
#[derive(Debug, Default)]
pub(crate) struct GroupTraits {
    pub name: Option<String>,
    pub industry: Option<String>,
    pub employees: Option<i64>,
    pub plan: Option<String>,
    pub seats: Option<i64>,
    pub domain: Option<String>,
    pub custom: BTreeMap<String, Value>,
}

pub(crate) fn split_group_traits(properties: Option<&str>) -> GroupTraits {
    let mut out = GroupTraits::default();
    let Some(map) = properties.and_then(|p| serde_json::from_str::<Map<String, Value>>(p).ok()) else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "name" if v.is_string() => out.name = v.as_str().map(str::to_string),
            "industry" if v.is_string() => out.industry = v.as_str().map(str::to_string),
            "employees" if v.as_i64().is_some_and(|n| n >= 0) => out.employees = v.as_i64(),
            "plan" if v.is_string() => out.plan = v.as_str().map(str::to_string),
            "seats" if v.as_i64().is_some_and(|n| n >= 0) => out.seats = v.as_i64(),
            "website" | "domain" if v.as_str().is_some_and(|d| cairn_core::values::normalize_domain(d).is_ok()) => {
                out.domain = v.as_str().and_then(|d| cairn_core::values::normalize_domain(d).ok());
                out.custom.insert(k, v);
            }
            _ => {
                out.custom.insert(k, v);
            }
        }
    }
    out
}

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

/// The values of a one-row JSON aggregate (`json_array_agg`): many rows' values handed
/// over at once.
pub(crate) fn json_array<T: serde::de::DeserializeOwned>(text: String) -> crate::Result<Vec<T>> {
    serde_json::from_str(&text)
        .map_err(|e| crate::StoreError::Corrupt(format!("a JSON array from the database did not read back: {e}")))
}

/// Rows per multi-row INSERT of events (14 parameters each; well under both limits).
pub(crate) const EVENT_ROWS_PER_INSERT: usize = 500;

/// Rows per multi-row INSERT of transitions (7 parameters each).
pub(crate) const TRANSITION_ROWS_PER_INSERT: usize = 500;

/// Values per `IN (…)` list (well under both backends' parameter limits).
pub(crate) const VALUES_PER_IN_LIST: usize = 500;

/// The append-only logs whose readers keep `seq` as a cursor (see each backend's `lock_log`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum AppendLog {
    /// `events`.
    Events,
    /// `transitions`.
    Transitions,
}

/// `rows` groups of `cols` placeholders, `(…),(…)`, numbered from `$1` or plain `?` (see
/// [`events_insert_sql`] for why SQLite gets `?`).
pub(crate) fn values_rows(rows: usize, cols: usize, numbered: bool) -> String {
    let mut sql = String::with_capacity(rows * (cols * 6 + 3));
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push(',');
            }
            if numbered {
                sql.push('$');
                sql.push_str(&n.to_string());
            } else {
                sql.push('?');
            }
            n += 1;
        }
        sql.push(')');
    }
    sql
}

/// `n` placeholders for an `IN (…)` list, numbered from `$1` or plain `?`.
pub(crate) fn in_list(n: usize, numbered: bool) -> String {
    let list: Vec<String> = (1..=n).map(|i| if numbered { format!("${i}") } else { "?".to_string() }).collect();
    list.join(",")
}

/// Custom traits from their stored text: an object, or empty when the text is not one
/// (a hand-edited database must not stop the engine).
pub(crate) fn traits_object(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Stored JSON text as a value; text that is not JSON comes back as a JSON string.
pub(crate) fn json_or_string(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
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

macro_rules! shared_store_impl {
    ($Store:ident, $Db:ty) => {
        use std::collections::{BTreeMap, HashMap, HashSet};

        use cairn_core::doctor::{DoctorReport, Finding, SourceFreshness, Totals, Unmatched};
        use cairn_core::import::{AccountRow, ContactRow, RowError, SubscriptionRow};
        use cairn_core::tracking::{MessageKind, TrackingMessage};
        use cairn_core::{EntityKind, Money, Source};
        use jiff::civil::Date;
        use jiff::Timestamp;
        use serde_json::{json, Value};
        use sqlx::Row as _;

        use crate::shared::{
            events_insert_sql, in_list, json_array, json_or_string, merge_traits, split_group_traits, split_identify_traits, traits_object, values_rows,
            EVENT_ROWS_PER_INSERT, TRANSITION_ROWS_PER_INSERT, VALUES_PER_IN_LIST,
        };
        use crate::signals::Committed;
        use crate::types::{AccountRecord, ApiKey, Appended, ContactRecord, HealthOverrideRecord, ImportRun, KeyKind, LogEvent, NewTransition, StoredTransition};
        use crate::Result;

        type Conn = <$Db as sqlx::Database>::Connection;

        fn ms(t: Timestamp) -> i64 {
            t.as_millisecond()
        }

        fn ts_text(ms: i64) -> String {
            Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_else(|_| ms.to_string())
        }

        async fn find_entity(conn: &mut Conn, kind: EntityKind, source: Source, external_id: &str) -> Result<Option<i64>> {
            let row = sqlx::query("SELECT entity_id FROM external_ids WHERE entity_kind = $1 AND source = $2 AND external_id = $3")
                .bind(kind.as_str())
                .bind(source.as_str())
                .bind(external_id)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(row.map(|r| r.get::<i64, _>(0)))
        }

        async fn add_external_id(conn: &mut Conn, kind: EntityKind, source: Source, external_id: &str, entity_id: i64, basis: &str) -> Result<()> {
            sqlx::query("INSERT INTO external_ids (entity_kind, source, external_id, entity_id, basis) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                .bind(kind.as_str())
                .bind(source.as_str())
                .bind(external_id)
                .bind(entity_id)
                .bind(basis)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        async fn new_account(conn: &mut Conn) -> Result<i64> {
            let row = sqlx::query("INSERT INTO accounts (traits) VALUES ('{}') RETURNING id").fetch_one(&mut *conn).await?;
            Ok(row.get::<i64, _>(0))
        }

        async fn new_contact(conn: &mut Conn) -> Result<i64> {
            let row = sqlx::query("INSERT INTO contacts (traits) VALUES ('{}') RETURNING id").fetch_one(&mut *conn).await?;
            Ok(row.get::<i64, _>(0))
        }

        async fn merge_entity_traits(conn: &mut Conn, table: &str, id: i64, changes: &BTreeMap<String, Value>) -> Result<()> {
            if changes.is_empty() {
                return Ok(());
            }
            let current: String = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT traits FROM {table} WHERE id = $1")))
                .bind(id)
                .fetch_one(&mut *conn)
                .await?
                .get(0);
            if let Some(new) = merge_traits(&current, changes) {
                sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {table} SET traits = $1 WHERE id = $2"))).bind(new).bind(id).execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Sets one nullable column when the field says so (`Some(v)`: set to v, which may be null).
        async fn set_column<T>(conn: &mut Conn, table: &str, column: &str, id: i64, value: Option<Option<T>>) -> Result<()>
        where
            T: for<'q> sqlx::Encode<'q, $Db> + sqlx::Type<$Db> + Send,
            Option<T>: for<'q> sqlx::Encode<'q, $Db> + sqlx::Type<$Db>,
        {
            if let Some(v) = value {
                // Only write when different, so a re-import leaves rows untouched.
                let sql = format!("UPDATE {table} SET {column} = $1 WHERE id = $2 AND {column} IS DISTINCT FROM $1");
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(v).bind(id).execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// The one account that lists `domain`, if exactly one does.
        async fn account_by_domain(conn: &mut Conn, domain: &str) -> Result<Option<i64>> {
            let rows = sqlx::query("SELECT account_id FROM account_domains WHERE domain = $1 LIMIT 2").bind(domain).fetch_all(&mut *conn).await?;
            Ok(if rows.len() == 1 { Some(rows[0].get::<i64, _>(0)) } else { None })
        }

        /// Re-derives the links made through `domain` after the accounts listing it changed:
        /// while exactly one account lists it, contacts without an account whose email is at
        /// that domain join it; once none or several do, those links are undone. So the
        /// result does not depend on whether contacts or accounts arrived first.
        async fn relink_domain(conn: &mut Conn, domain: &str) -> Result<()> {
            let basis = format!("email_domain:{domain}");
            match account_by_domain(conn, domain).await? {
                Some(account_id) => {
                    sqlx::query("UPDATE contacts SET account_id = $1, account_match_basis = $2 WHERE (account_id IS NULL AND email LIKE $3) OR (account_match_basis = $2 AND account_id <> $1)")
                        .bind(account_id)
                        .bind(&basis)
                        .bind(format!("%@{domain}"))
                        .execute(&mut *conn)
                        .await?;
                }
                None => {
                    sqlx::query("UPDATE contacts SET account_id = NULL, account_match_basis = NULL WHERE account_match_basis = $1").bind(&basis).execute(&mut *conn).await?;
                }
            }
            Ok(())
        }

        /// Links a contact that has no account to the account owning its email's domain.
        async fn link_by_domain(conn: &mut Conn, contact_id: i64) -> Result<()> {
            let row = sqlx::query("SELECT email FROM contacts WHERE id = $1 AND account_id IS NULL AND email IS NOT NULL")
                .bind(contact_id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else { return Ok(()) };
            let email: String = row.get(0);
            let domain = email.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
            if let Some(account_id) = account_by_domain(conn, &domain).await? {
                sqlx::query("UPDATE contacts SET account_id = $1, account_match_basis = $2 WHERE id = $3")
                    .bind(account_id)
                    .bind(format!("email_domain:{domain}"))
                    .bind(contact_id)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// The contact a product user id (or an alias) resolves to.
        async fn contact_for_user(conn: &mut Conn, user_id: Option<&str>, anonymous_id: Option<&str>) -> Result<Option<i64>> {
            if let Some(u) = user_id {
                if let Some(id) = find_entity(conn, EntityKind::Contact, Source::Product, u).await? {
                    return Ok(Some(id));
                }
                if let Some(r) = sqlx::query("SELECT contact_id FROM contact_aliases WHERE alias = $1").bind(u).fetch_optional(&mut *conn).await? {
                    return Ok(Some(r.get(0)));
                }
            }
            if let Some(a) = anonymous_id {
                if let Some(r) = sqlx::query("SELECT contact_id FROM contact_aliases WHERE alias = $1").bind(a).fetch_optional(&mut *conn).await? {
                    return Ok(Some(r.get(0)));
                }
            }
            Ok(None)
        }

        async fn add_alias(conn: &mut Conn, alias: &str, contact_id: i64, basis: &str) -> Result<()> {
            sqlx::query("INSERT INTO contact_aliases (alias, contact_id, basis) VALUES ($1, $2, $3) ON CONFLICT (alias) DO NOTHING")
                .bind(alias)
                .bind(contact_id)
                .bind(basis)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// Finds or creates the contact behind a message's user, recording how it was found.
        async fn ensure_contact(conn: &mut Conn, m: &TrackingMessage, email: Option<&cairn_core::Email>) -> Result<i64> {
            if let Some(id) = contact_for_user(conn, m.user_id.as_deref(), m.anonymous_id.as_deref()).await? {
                if let (Some(u), None) = (m.user_id.as_deref(), find_entity(conn, EntityKind::Contact, Source::Product, m.user_id.as_deref().unwrap_or("")).await?) {
                    // Known only by its anonymous id until now: it has a user id from here on.
                    add_external_id(conn, EntityKind::Contact, Source::Product, u, id, "identify").await?;
                }
                if let Some(a) = m.anonymous_id.as_deref() {
                    add_alias(conn, a, id, "identify").await?;
                }
                return Ok(id);
            }
            // A contact imported from the CRM with the same email and no product id yet.
            let mut id = None;
            if let (Some(email), Some(_)) = (email, m.user_id.as_deref()) {
                let rows = sqlx::query(
                    "SELECT c.id FROM contacts c WHERE c.email = $1 AND NOT EXISTS (SELECT 1 FROM external_ids x WHERE x.entity_kind = 'contact' AND x.source = 'product' AND x.entity_id = c.id) LIMIT 2",
                )
                .bind(email.as_str())
                .fetch_all(&mut *conn)
                .await?;
                if rows.len() == 1 {
                    id = Some(rows[0].get::<i64, _>(0));
                }
            }
            let (id, basis) = match id {
                Some(id) => (id, "email_match"),
                None => (new_contact(conn).await?, "identify"),
            };
            if let Some(u) = m.user_id.as_deref() {
                add_external_id(conn, EntityKind::Contact, Source::Product, u, id, basis).await?;
            }
            if let Some(a) = m.anonymous_id.as_deref() {
                add_alias(conn, a, id, "identify").await?;
            }
            Ok(id)
        }

        async fn apply_identify(conn: &mut Conn, m: &TrackingMessage) -> Result<()> {
            let t = split_identify_traits(m.properties.as_deref());
            let id = ensure_contact(conn, m, t.email.as_ref()).await?;
            set_column(conn, "contacts", "email", id, t.email.map(|e| Some(e.as_str().to_string()))).await?;
            set_column(conn, "contacts", "name", id, t.name.map(Some)).await?;
            set_column(conn, "contacts", "role", id, t.role.map(Some)).await?;
            set_column(conn, "contacts", "timezone", id, t.timezone.map(Some)).await?;
            merge_entity_traits(conn, "contacts", id, &t.custom).await?;
            if let Some(g) = m.group_id.as_deref() {
                if let Some(account_id) = find_entity(conn, EntityKind::Account, Source::Product, g).await? {
                    sqlx::query("UPDATE contacts SET account_id = $1, account_match_basis = 'group_call' WHERE id = $2 AND account_id IS NULL")
                        .bind(account_id)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            link_by_domain(conn, id).await
        }

        async fn apply_group(conn: &mut Conn, m: &TrackingMessage) -> Result<()> {
            let Some(group_id) = m.group_id.as_deref() else { return Ok(()) };
            let account_id = match find_entity(conn, EntityKind::Account, Source::Product, group_id).await? {
                Some(id) => id,
                None => {
                    let id = new_account(conn).await?;
                    add_external_id(conn, EntityKind::Account, Source::Product, group_id, id, "group").await?;
                    id
                }
            };
            let t = split_group_traits(m.properties.as_deref());
            set_column(conn, "accounts", "name", account_id, t.name.map(Some)).await?;
            set_column(conn, "accounts", "industry", account_id, t.industry.map(Some)).await?;
            set_column(conn, "accounts", "employees", account_id, t.employees.map(Some)).await?;
            set_column(conn, "accounts", "plan", account_id, t.plan.map(Some)).await?;
            set_column(conn, "accounts", "seats", account_id, t.seats.map(Some)).await?;
            merge_entity_traits(conn, "accounts", account_id, &t.custom).await?;
            if let Some(d) = t.domain {
                sqlx::query("INSERT INTO account_domains (domain, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(d)
                    .bind(account_id)
                    .execute(&mut *conn)
                    .await?;
            }
            let contact_id = ensure_contact(conn, m, None).await?;
            sqlx::query("UPDATE contacts SET account_id = $1, account_match_basis = 'group_call' WHERE id = $2 AND (account_id IS NULL OR account_id <> $1)")
                .bind(account_id)
                .bind(contact_id)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        async fn apply_alias(conn: &mut Conn, m: &TrackingMessage) -> Result<()> {
            let Some(previous) = m.previous_id.as_deref() else { return Ok(()) };
            let probe = TrackingMessage { anonymous_id: None, ..m.clone() };
            let id = ensure_contact(conn, &probe, None).await?;
            if find_entity(conn, EntityKind::Contact, Source::Product, previous).await?.is_none() {
                add_alias(conn, previous, id, "alias").await?;
            }
            Ok(())
        }

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
            Ok(crate::shared::mark_new(msgs, &inserted))
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
                while i < messages.len() && crate::shared::is_plain_event(&messages[i]) {
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

        async fn account_other_ids_ok(conn: &mut Conn, line: u64, kind: EntityKind, id: Option<i64>, ids: &[(Source, String)]) -> Result<std::result::Result<Option<i64>, RowError>> {
            // Every other id must point at this entity or at nothing; an entity found only
            // through another id is the same entity (e.g. created by a group call).
            let mut found = id;
            for (source, ext) in ids {
                if let Some(owner) = find_entity(conn, kind, *source, ext).await? {
                    match found {
                        Some(f) if f != owner => {
                            return Ok(Err(RowError {
                                line,
                                column: Some(format!("{source}_id")),
                                reason: format!("`{ext}` already belongs to another {}", kind.as_str()),
                            }));
                        }
                        _ => found = Some(owner),
                    }
                }
            }
            Ok(Ok(found))
        }

        async fn upsert_account_row(conn: &mut Conn, source: Source, row: &AccountRow) -> Result<std::result::Result<(), RowError>> {
            let existing = find_entity(conn, EntityKind::Account, source, &row.external_id).await?;
            let found = match account_other_ids_ok(conn, row.line, EntityKind::Account, existing, &row.other_ids).await? {
                Ok(f) => f,
                Err(e) => return Ok(Err(e)),
            };
            let id = match found {
                Some(id) => id,
                None => new_account(conn).await?,
            };
            add_external_id(conn, EntityKind::Account, source, &row.external_id, id, "import").await?;
            for (s, ext) in &row.other_ids {
                add_external_id(conn, EntityKind::Account, *s, ext, id, "import").await?;
            }
            set_column(conn, "accounts", "name", id, Some(Some(row.name.clone()))).await?;
            set_column(conn, "accounts", "industry", id, row.industry.clone()).await?;
            set_column(conn, "accounts", "employees", id, row.employees).await?;
            set_column(conn, "accounts", "plan", id, row.plan.clone()).await?;
            set_column(conn, "accounts", "seats", id, row.seats).await?;
            set_column(conn, "accounts", "owner_email", id, row.owner_email.clone().map(|e| e.map(|e| e.as_str().to_string()))).await?;
            set_column(conn, "accounts", "start_date", id, row.start_date.map(|d| d.map(|d| d.to_string()))).await?;
            set_column(conn, "accounts", "renewal_date", id, row.renewal_date.map(|d| d.map(|d| d.to_string()))).await?;
            merge_entity_traits(conn, "accounts", id, &row.traits).await?;
            if let Some(domains) = &row.domains {
                let current: Vec<String> = sqlx::query("SELECT domain FROM account_domains WHERE account_id = $1 ORDER BY domain")
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                if &current != domains {
                    sqlx::query("DELETE FROM account_domains WHERE account_id = $1").bind(id).execute(&mut *conn).await?;
                    for d in domains {
                        sqlx::query("INSERT INTO account_domains (domain, account_id) VALUES ($1, $2)").bind(d).bind(id).execute(&mut *conn).await?;
                    }
                }
                // Contacts waiting for an account whose email domain is now known, and links
                // through a domain that this row made ambiguous or dropped.
                for d in current.iter().chain(domains) {
                    relink_domain(conn, d).await?;
                }
            }
            Ok(Ok(()))
        }

        async fn upsert_contact_row(conn: &mut Conn, source: Source, row: &ContactRow) -> Result<std::result::Result<(), RowError>> {
            let account = match row.account_external_id.as_deref() {
                Some(a) => match find_entity(conn, EntityKind::Account, source, a).await? {
                    Some(id) => Some(id),
                    None => {
                        return Ok(Err(RowError {
                            line: row.line,
                            column: Some("account_external_id".into()),
                            reason: format!("`{a}` matches no account with a {source} id; import the accounts first"),
                        }));
                    }
                },
                None => None,
            };
            let existing = find_entity(conn, EntityKind::Contact, source, &row.external_id).await?;
            let mut found = match account_other_ids_ok(conn, row.line, EntityKind::Contact, existing, &row.other_ids).await? {
                Ok(f) => f,
                Err(e) => return Ok(Err(e)),
            };
            let mut basis = "import";
            if found.is_none() {
                // A contact the product identified with this email, not yet known to this source.
                if let Some(Some(email)) = &row.email {
                    let rows = sqlx::query(
                        "SELECT c.id FROM contacts c WHERE c.email = $1 AND NOT EXISTS (SELECT 1 FROM external_ids x WHERE x.entity_kind = 'contact' AND x.source = $2 AND x.entity_id = c.id) LIMIT 2",
                    )
                    .bind(email.as_str())
                    .bind(source.as_str())
                    .fetch_all(&mut *conn)
                    .await?;
                    if rows.len() == 1 {
                        found = Some(rows[0].get(0));
                        basis = "email_match";
                    }
                }
            }
            let id = match found {
                Some(id) => id,
                None => new_contact(conn).await?,
            };
            add_external_id(conn, EntityKind::Contact, source, &row.external_id, id, basis).await?;
            for (s, ext) in &row.other_ids {
                add_external_id(conn, EntityKind::Contact, *s, ext, id, "import").await?;
            }
            set_column(conn, "contacts", "email", id, row.email.clone().map(|e| e.map(|e| e.as_str().to_string()))).await?;
            set_column(conn, "contacts", "name", id, row.name.clone()).await?;
            set_column(conn, "contacts", "role", id, row.role.clone()).await?;
            set_column(conn, "contacts", "timezone", id, row.timezone.clone()).await?;
            merge_entity_traits(conn, "contacts", id, &row.traits).await?;
            if let Some(account_id) = account {
                sqlx::query("UPDATE contacts SET account_id = $1, account_match_basis = 'import' WHERE id = $2 AND (account_id IS NULL OR account_id <> $1 OR account_match_basis <> 'import')")
                    .bind(account_id)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            } else {
                link_by_domain(conn, id).await?;
            }
            Ok(Ok(()))
        }

        async fn upsert_subscription_row(conn: &mut Conn, source: Source, row: &SubscriptionRow) -> Result<std::result::Result<(), RowError>> {
            let Some(account_id) = find_entity(conn, EntityKind::Account, source, &row.account_external_id).await? else {
                return Ok(Err(RowError {
                    line: row.line,
                    column: Some("account_id".into()),
                    reason: format!("`{}` matches no account with a {source} id; import the accounts first", row.account_external_id),
                }));
            };
            let traits = Value::Object(row.traits.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect()).to_string();
            sqlx::query(
                "INSERT INTO subscriptions (source, id, account_id, start_date, end_date, arr_cents, seats, product, traits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (source, id) DO UPDATE SET account_id = excluded.account_id, start_date = excluded.start_date, end_date = excluded.end_date,
                   arr_cents = excluded.arr_cents, seats = excluded.seats, product = excluded.product, traits = excluded.traits",
            )
            .bind(source.as_str())
            .bind(&row.id)
            .bind(account_id)
            .bind(row.start_date.to_string())
            .bind(row.end_date.to_string())
            .bind(row.arr.cents())
            .bind(row.seats)
            .bind(row.product.as_deref())
            .bind(traits)
            .execute(&mut *conn)
            .await?;
            Ok(Ok(()))
        }

        async fn count(conn: &mut Conn, sql: &str) -> Result<u64> {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&mut *conn).await?.get(0);
            Ok(n.max(0) as u64)
        }

        async fn finding(conn: &mut Conn, count_sql: &str, examples_sql: &str, today: &str) -> Result<Finding> {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(count_sql.to_string())).bind(today).fetch_one(&mut *conn).await?.get(0);
            let examples = sqlx::query(sqlx::AssertSqlSafe(examples_sql.to_string())).bind(today).fetch_all(&mut *conn).await?.iter().map(|r| r.get::<String, _>(0)).collect();
            Ok(Finding { count: n.max(0) as u64, examples })
        }

        /// The label of an account in reports: its CRM id, else any external id, else its row id.
        const ACCOUNT_LABEL: &str = "COALESCE((SELECT MIN(x.source || ':' || x.external_id) FROM external_ids x WHERE x.entity_kind = 'account' AND x.entity_id = a.id AND x.source = 'crm'), (SELECT MIN(x.source || ':' || x.external_id) FROM external_ids x WHERE x.entity_kind = 'account' AND x.entity_id = a.id), 'account#' || CAST(a.id AS TEXT))";
        const CONTACT_LABEL: &str = "COALESCE(c.email, (SELECT MIN(x.source || ':' || x.external_id) FROM external_ids x WHERE x.entity_kind = 'contact' AND x.entity_id = c.id), 'contact#' || CAST(c.id AS TEXT))";

        impl $Store {
            pub(crate) async fn create_api_key(&self, kind: KeyKind, name: &str, key_hash: &str, key_prefix: &str, at: Timestamp) -> Result<()> {
                sqlx::query("INSERT INTO api_keys (kind, name, key_hash, key_prefix, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(kind.as_str())
                    .bind(name)
                    .bind(key_hash)
                    .bind(key_prefix)
                    .bind(ms(at))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub(crate) async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
                let row = sqlx::query("SELECT id, kind, name, key_prefix FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| {
                    let kind: String = r.get(1);
                    Ok(ApiKey {
                        id: r.get(0),
                        kind: KeyKind::parse(&kind).ok_or_else(|| crate::StoreError::Corrupt(format!("api key kind `{kind}`")))?,
                        name: r.get(2),
                        prefix: r.get(3),
                    })
                })
                .transpose()
            }

            pub(crate) async fn append_groups(&self, groups: &[(&str, &[TrackingMessage])]) -> Result<Vec<Vec<Appended>>> {
                let mut tx = self.begin_write().await?;
                lock_log(&mut tx, crate::shared::AppendLog::Events).await?;
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

            pub(crate) async fn upsert_accounts(&self, source: Source, rows: &[AccountRow]) -> Result<Vec<std::result::Result<(), RowError>>> {
                let mut tx = self.begin_write().await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(upsert_account_row(&mut tx, source, row).await?);
                }
                tx.commit().await?;
                self.signals.after_commit(Committed { events: false, data: out.iter().any(|r| r.is_ok()) });
                Ok(out)
            }

            pub(crate) async fn upsert_contacts(&self, source: Source, rows: &[ContactRow]) -> Result<Vec<std::result::Result<(), RowError>>> {
                let mut tx = self.begin_write().await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(upsert_contact_row(&mut tx, source, row).await?);
                }
                tx.commit().await?;
                self.signals.after_commit(Committed { events: false, data: out.iter().any(|r| r.is_ok()) });
                Ok(out)
            }

            pub(crate) async fn upsert_subscriptions(&self, source: Source, rows: &[SubscriptionRow]) -> Result<Vec<std::result::Result<(), RowError>>> {
                let mut tx = self.begin_write().await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(upsert_subscription_row(&mut tx, source, row).await?);
                }
                tx.commit().await?;
                self.signals.after_commit(Committed { events: false, data: out.iter().any(|r| r.is_ok()) });
                Ok(out)
            }

            pub(crate) async fn record_import_run(&self, run: &ImportRun) -> Result<()> {
                sqlx::query("INSERT INTO import_runs (kind, file, source, started_at, finished_at, rows_total, rows_ok, rows_rejected, rejects) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                    .bind(&run.kind)
                    .bind(&run.file)
                    .bind(&run.source)
                    .bind(run.started_at)
                    .bind(run.finished_at)
                    .bind(run.rows_total as i64)
                    .bind(run.rows_ok as i64)
                    .bind(run.rows_rejected as i64)
                    .bind(run.rejects.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub(crate) async fn account_arr_on(&self, source: Source, external_id: &str, day: Date) -> Result<Option<Money>> {
                let mut conn = self.pool.acquire().await?;
                let Some(id) = find_entity(&mut conn, EntityKind::Account, source, external_id).await? else { return Ok(None) };
                let cents: i64 = sqlx::query("SELECT CAST(COALESCE(SUM(arr_cents), 0) AS BIGINT) FROM subscriptions WHERE account_id = $1 AND start_date <= $2 AND end_date >= $2")
                    .bind(id)
                    .bind(day.to_string())
                    .fetch_one(&mut *conn)
                    .await?
                    .get(0);
                Ok(Some(Money(cents)))
            }

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

            pub(crate) async fn doctor(&self, today: Date) -> Result<DoctorReport> {
                let mut conn = self.pool.acquire().await?;
                let conn = &mut *conn;
                let day = today.to_string();
                let totals = Totals {
                    accounts: count(conn, "SELECT COUNT(*) FROM accounts").await?,
                    contacts: count(conn, "SELECT COUNT(*) FROM contacts").await?,
                    subscription_lines: count(conn, "SELECT COUNT(*) FROM subscriptions").await?,
                    events: count(conn, "SELECT COUNT(*) FROM events").await?,
                };
                let r = sqlx::query(
                    "SELECT CAST(COUNT(*) FILTER (WHERE contact_id IS NULL) AS BIGINT),
                            CAST(COUNT(*) FILTER (WHERE account_id IS NULL) AS BIGINT),
                            CAST(COUNT(*) FILTER (WHERE contact_id IS NULL AND account_id IS NULL) AS BIGINT)
                     FROM event_identity",
                )
                .fetch_one(&mut *conn)
                .await?;
                let unmatched = Unmatched {
                    events_without_contact: r.get::<i64, _>(0).max(0) as u64,
                    events_without_account: r.get::<i64, _>(1).max(0) as u64,
                    events_matched_to_nobody: r.get::<i64, _>(2).max(0) as u64,
                    contacts_without_account: count(conn, "SELECT COUNT(*) FROM contacts WHERE account_id IS NULL").await?,
                };
                let no_crm = "NOT EXISTS (SELECT 1 FROM external_ids x WHERE x.entity_kind = 'account' AND x.source = 'crm' AND x.entity_id = a.id) AND $1 = $1";
                let no_arr = "NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = a.id AND s.start_date <= $1 AND s.end_date >= $1 AND s.arr_cents > 0)";
                let no_renewal = "a.renewal_date IS NULL AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = a.id AND s.end_date >= $1)";
                let accounts_finding = |cond: &'static str| {
                    (format!("SELECT COUNT(*) FROM accounts a WHERE {cond}"), format!("SELECT {ACCOUNT_LABEL} FROM accounts a WHERE {cond} ORDER BY a.id LIMIT 10"))
                };
                let (c1, e1) = accounts_finding(no_crm);
                let (c2, e2) = accounts_finding(no_arr);
                let (c3, e3) = accounts_finding(no_renewal);
                let accounts_without_crm_id = finding(conn, &c1, &e1, &day).await?;
                let accounts_without_arr = finding(conn, &c2, &e2, &day).await?;
                let accounts_without_renewal_date = finding(conn, &c3, &e3, &day).await?;
                let duplicate_emails = finding(
                    conn,
                    "SELECT COUNT(*) FROM (SELECT email FROM contacts WHERE email IS NOT NULL AND $1 = $1 GROUP BY email HAVING COUNT(*) > 1) d",
                    "SELECT email FROM contacts WHERE email IS NOT NULL AND $1 = $1 GROUP BY email HAVING COUNT(*) > 1 ORDER BY email LIMIT 10",
                    &day,
                )
                .await?;
                let contacts_without_account = finding(
                    conn,
                    "SELECT COUNT(*) FROM contacts c WHERE c.account_id IS NULL AND $1 = $1",
                    &format!("SELECT {CONTACT_LABEL} FROM contacts c WHERE c.account_id IS NULL AND $1 = $1 ORDER BY c.id LIMIT 10"),
                    &day,
                )
                .await?;
                let mut sources = Vec::new();
                for r in sqlx::query("SELECT source, COUNT(*), MAX(ts), MAX(received_at) FROM events GROUP BY source ORDER BY source").fetch_all(&mut *conn).await? {
                    sources.push(SourceFreshness {
                        source: r.get(0),
                        events: r.get::<i64, _>(1).max(0) as u64,
                        newest_event_at: ts_text(r.get(2)),
                        newest_received_at: ts_text(r.get(3)),
                    });
                }
                Ok(DoctorReport {
                    as_of: day,
                    totals,
                    unmatched,
                    accounts_without_crm_id,
                    accounts_without_arr,
                    accounts_without_renewal_date,
                    duplicate_emails,
                    contacts_without_account,
                    sources,
                })
            }

            pub(crate) async fn snapshot(&self) -> Result<Value> {
                let mut conn = self.pool.acquire().await?;
                let conn = &mut *conn;
                // Labels by external ids, so that row ids (which depend on arrival order) do not show.
                let mut labels: HashMap<(String, i64), Vec<String>> = HashMap::new();
                for r in sqlx::query("SELECT entity_kind, source, external_id, entity_id, basis FROM external_ids").fetch_all(&mut *conn).await? {
                    let key = (r.get::<String, _>(0), r.get::<i64, _>(3));
                    labels.entry(key).or_default().push(format!("{}:{}({})", r.get::<String, _>(1), r.get::<String, _>(2), r.get::<String, _>(4)));
                }
                for v in labels.values_mut() {
                    v.sort();
                }
                let label = |kind: &str, id: Option<i64>| -> Value {
                    match id {
                        None => Value::Null,
                        Some(id) => json!(labels.get(&(kind.to_string(), id)).cloned().unwrap_or_default()),
                    }
                };
                let mut domains: HashMap<i64, Vec<String>> = HashMap::new();
                for r in sqlx::query("SELECT account_id, domain FROM account_domains ORDER BY domain").fetch_all(&mut *conn).await? {
                    domains.entry(r.get(0)).or_default().push(r.get(1));
                }
                let mut aliases: HashMap<i64, Vec<String>> = HashMap::new();
                for r in sqlx::query("SELECT contact_id, alias, basis FROM contact_aliases ORDER BY alias").fetch_all(&mut *conn).await? {
                    aliases.entry(r.get(0)).or_default().push(format!("{}({})", r.get::<String, _>(1), r.get::<String, _>(2)));
                }
                let traits = |t: String| serde_json::from_str::<Value>(&t).unwrap_or(Value::String(t));
                let mut accounts = Vec::new();
                for r in sqlx::query("SELECT id, name, industry, employees, plan, seats, owner_email, start_date, renewal_date, traits FROM accounts").fetch_all(&mut *conn).await? {
                    let id: i64 = r.get(0);
                    accounts.push(json!({
                        "ids": label("account", Some(id)), "name": r.get::<Option<String>, _>(1), "industry": r.get::<Option<String>, _>(2),
                        "employees": r.get::<Option<i64>, _>(3), "plan": r.get::<Option<String>, _>(4), "seats": r.get::<Option<i64>, _>(5),
                        "owner_email": r.get::<Option<String>, _>(6), "start_date": r.get::<Option<String>, _>(7), "renewal_date": r.get::<Option<String>, _>(8),
                        "traits": traits(r.get(9)), "domains": domains.remove(&id).unwrap_or_default(),
                    }));
                }
                let mut contacts = Vec::new();
                for r in sqlx::query("SELECT id, account_id, account_match_basis, email, name, role, timezone, traits FROM contacts").fetch_all(&mut *conn).await? {
                    let id: i64 = r.get(0);
                    contacts.push(json!({
                        "ids": label("contact", Some(id)), "account": label("account", r.get(1)), "account_match_basis": r.get::<Option<String>, _>(2),
                        "email": r.get::<Option<String>, _>(3), "name": r.get::<Option<String>, _>(4), "role": r.get::<Option<String>, _>(5),
                        "timezone": r.get::<Option<String>, _>(6), "traits": traits(r.get(7)), "aliases": aliases.remove(&id).unwrap_or_default(),
                    }));
                }
                let mut subscriptions = Vec::new();
                for r in sqlx::query("SELECT source, id, account_id, start_date, end_date, arr_cents, seats, product, traits FROM subscriptions").fetch_all(&mut *conn).await? {
                    subscriptions.push(json!({
                        "source": r.get::<String, _>(0), "id": r.get::<String, _>(1), "account": label("account", r.get(2)),
                        "start_date": r.get::<String, _>(3), "end_date": r.get::<String, _>(4), "arr_cents": r.get::<i64, _>(5),
                        "seats": r.get::<Option<i64>, _>(6), "product": r.get::<Option<String>, _>(7), "traits": traits(r.get(8)),
                    }));
                }
                let mut events = Vec::new();
                for r in sqlx::query("SELECT message_id, kind, event, user_id, anonymous_id, group_id, ts, source, properties FROM events ORDER BY message_id, source").fetch_all(&mut *conn).await? {
                    events.push(json!([r.get::<String, _>(0), r.get::<String, _>(1), r.get::<Option<String>, _>(2), r.get::<Option<String>, _>(3),
                        r.get::<Option<String>, _>(4), r.get::<Option<String>, _>(5), r.get::<i64, _>(6), r.get::<String, _>(7), r.get::<Option<String>, _>(8)]));
                }
                let sort = |v: &mut Vec<Value>| v.sort_by_key(|x| x.to_string());
                sort(&mut accounts);
                sort(&mut contacts);
                sort(&mut subscriptions);
                Ok(json!({ "accounts": accounts, "contacts": contacts, "subscriptions": subscriptions, "events": events }))
            }
        }

        // ---------------------------------------------------------------------------
        // What the engine reads and keeps

        type DbRow = <$Db as sqlx::Database>::Row;

        /// An instant stored as ms since epoch.
        fn instant(ms: i64) -> Result<Timestamp> {
            Timestamp::from_millisecond(ms).map_err(|_| crate::StoreError::Corrupt(format!("timestamp {ms} ms since epoch is out of range")))
        }

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

        /// The columns of [`LOG_EVENTS`], as one element of a JSON array.
        type LogEventTuple = (i64, i64, String, Option<String>, Option<i64>, Option<i64>, String, Option<String>);

        fn log_event_of(r: LogEventTuple) -> Result<LogEvent> {
            let (seq, ts, kind, name, contact_id, account_id, source, properties) = r;
            Ok(LogEvent { seq, ts: instant(ts)?, kind, name, contact_id, account_id, source, properties })
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

        /// The order in which external ids are tried when a user types an account id.
        const ACCOUNT_ID_SOURCES: [Source; 4] = [Source::Crm, Source::Product, Source::Billing, Source::Support];

        impl $Store {
            pub(crate) async fn events_after(&self, after_seq: i64, limit: u32) -> Result<Vec<LogEvent>> {
                // The bound on both sides: PostgreSQL does not carry a range across the join,
                // and would otherwise merge-join from the start of the log every time.
                let sql = format!("{LOG_EVENTS} AND e.seq > $1 AND i.seq > $1 ORDER BY e.seq LIMIT $2");
                if ROWS_ONE_AT_A_TIME {
                    // One row for all of them: this driver hands rows over one at a time.
                    let sql = format!("SELECT {} FROM ({sql}) x", json_array_agg("json_array(x.seq, x.ts, x.kind, x.event, x.contact_id, x.account_id, x.source, x.properties)"));
                    let text: String = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_seq).bind(i64::from(limit)).fetch_one(&self.pool).await?.get(0);
                    let mut out = json_array::<LogEventTuple>(text)?.into_iter().map(log_event_of).collect::<Result<Vec<_>>>()?;
                    out.sort_by_key(|e| e.seq);
                    return Ok(out);
                }
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_seq).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.iter().map(log_event).collect()
            }

            pub(crate) async fn event_times(&self, up_to_seq: i64) -> Result<Vec<(i64, Timestamp)>> {
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

            pub(crate) async fn engine_accounts(&self, day: Date) -> Result<Vec<AccountRecord>> {
                let rows = sqlx::query(
                    "SELECT a.id, a.name, a.industry, a.employees, a.plan, a.seats, a.owner_email, a.start_date, a.renewal_date,
                            (SELECT CAST(SUM(s.arr_cents) AS BIGINT) FROM subscriptions s WHERE s.account_id = a.id AND s.start_date <= $1 AND s.end_date >= $1),
                            (SELECT MIN(x.external_id) FROM external_ids x WHERE x.entity_kind = 'account' AND x.source = 'crm' AND x.entity_id = a.id),
                            (SELECT MIN(x.external_id) FROM external_ids x WHERE x.entity_kind = 'account' AND x.source = 'product' AND x.entity_id = a.id),
                            a.traits
                     FROM accounts a ORDER BY a.id",
                )
                .bind(day.to_string())
                .fetch_all(&self.pool)
                .await?;
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
                let rows = sqlx::query("SELECT id, account_id, email, name, role, timezone, traits FROM contacts ORDER BY id").fetch_all(&self.pool).await?;
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

            pub(crate) async fn resolve_account(&self, id: &str) -> Result<Option<i64>> {
                let id = id.trim();
                if id.is_empty() {
                    return Ok(None);
                }
                let mut conn = self.pool.acquire().await?;
                // The internal number, written as it prints (so a CRM id `007` is not account 7).
                if let Ok(n) = id.parse::<i64>()
                    && n.to_string() == id
                    && account_exists(&mut conn, n).await?
                {
                    return Ok(Some(n));
                }
                let rows = sqlx::query("SELECT source, entity_id FROM external_ids WHERE entity_kind = 'account' AND source IN ('crm', 'product', 'billing', 'support') AND external_id = $1")
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await?;
                let by_source: HashMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
                if let Some(found) = ACCOUNT_ID_SOURCES.iter().find_map(|s| by_source.get(s.as_str())) {
                    return Ok(Some(*found));
                }
                // Labels as reports print them: `account#12`, `crm:A1`.
                if let Some(n) = id.strip_prefix("account#").and_then(|n| n.parse::<i64>().ok())
                    && account_exists(&mut conn, n).await?
                {
                    return Ok(Some(n));
                }
                if let Some((source, external_id)) = id.split_once(':')
                    && let Ok(source) = Source::parse(source)
                {
                    return find_entity(&mut conn, EntityKind::Account, source, external_id).await;
                }
                Ok(None)
            }

            pub(crate) async fn append_transitions(&self, rows: &[NewTransition]) -> Result<u64> {
                if rows.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.begin_write().await?;
                lock_log(&mut tx, crate::shared::AppendLog::Transitions).await?;
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
                let sql = format!(
                    "SELECT {TRANSITION_COLUMNS} FROM transitions t
                     WHERE (t.subject_kind = 'account' AND t.subject_id = $1)
                        OR (t.subject_kind = 'contact' AND t.subject_id IN (SELECT c.id FROM contacts c WHERE c.account_id = $1))
                     ORDER BY t.at DESC, t.seq DESC LIMIT $2"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).bind(i64::from(limit)).fetch_all(&self.pool).await?;
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

            pub(crate) async fn resolve_contact(&self, user_id: &str) -> Result<Option<i64>> {
                let user_id = user_id.trim();
                if user_id.is_empty() {
                    return Ok(None);
                }
                // The same order as the `event_identity` view: the product's id, then an alias.
                let row = sqlx::query(
                    "SELECT COALESCE(
                        (SELECT x.entity_id FROM external_ids x WHERE x.entity_kind = 'contact' AND x.source = 'product' AND x.external_id = $1),
                        (SELECT a.contact_id FROM contact_aliases a WHERE a.alias = $1))",
                )
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
                Ok(row.get::<Option<i64>, _>(0))
            }
        }

        crate::programs::programs_store_impl!($Store, $Db);
    };
}

pub(crate) use shared_store_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traits_merge_sets_and_removes() {
        let mut ch = BTreeMap::new();
        ch.insert("a".to_string(), Value::from(1));
        ch.insert("b".to_string(), Value::Null);
        assert_eq!(merge_traits(r#"{"b":2,"c":3}"#, &ch).unwrap(), r#"{"a":1,"c":3}"#);
        assert_eq!(merge_traits(r#"{"a":1,"c":3}"#, &ch), None, "no change, no write");
    }

    #[test]
    fn traits_that_are_not_a_json_object_read_as_empty() {
        assert_eq!(traits_object(r#"{"tier":2}"#).get("tier"), Some(&Value::from(2)));
        for bad in ["", "not json", "[1,2]", "42", "null", r#"{"unterminated":"#] {
            assert!(traits_object(bad).is_empty(), "{bad:?}");
        }
        assert_eq!(json_or_string("{\"a\":1}".into()), serde_json::json!({ "a": 1 }));
        assert_eq!(json_or_string("oops".into()), Value::String("oops".into()));
    }

    #[test]
    fn placeholders_are_numbered_for_postgres_and_plain_for_sqlite() {
        assert_eq!(values_rows(2, 3, true), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(values_rows(2, 2, false), "(?,?),(?,?)");
        assert_eq!(in_list(3, true), "$1,$2,$3");
        assert_eq!(in_list(2, false), "?,?");
    }

    #[test]
    fn identify_traits_split() {
        let t = split_identify_traits(Some(
            r#"{"email":"Ada@Acme.com","firstName":"Ada","lastName":"L","title":"Admin","plan_seen":"x"}"#,
        ));
        assert_eq!(t.email.unwrap().as_str(), "ada@acme.com");
        assert_eq!(t.name.as_deref(), Some("Ada L"));
        assert_eq!(t.role.as_deref(), Some("admin"));
        assert!(t.custom.contains_key("plan_seen"));
    }
}
