//! Who is who: accounts and contacts created and linked by identify, group and alias
//! calls (external ids, aliases, email domains), their traits, and resolving an id a
//! person typed to an account or contact.

use std::collections::BTreeMap;

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

/// Custom traits from their stored text: an object, or empty when the text is not one
/// (a hand-edited database must not stop the engine).
pub(crate) fn traits_object(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

macro_rules! identities_impl {
    ($Store:ident, $Db:ty) => {
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

        /// The order in which external ids are tried when a user types an account id.
        const ACCOUNT_ID_SOURCES: [Source; 4] = [Source::Crm, Source::Product, Source::Billing, Source::Support];

        impl $Store {
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
        }
    };
}

pub(crate) use identities_impl;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql_both_dialects::json_or_string;

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
