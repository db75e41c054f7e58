//! Consent per contact and topic, with its history, and suppressed addresses.

/// Addresses are kept lowercase and trimmed (contacts' emails are lowercase too).
pub fn normalize_address(address: &str) -> String {
    address.trim().to_lowercase()
}

macro_rules! consent_impl {
    ($Store:ident, $Db:ty) => {
        impl $Store {
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

            #[cfg(feature = "testing")]
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
        }
    };
}

pub(crate) use consent_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_compared_lowercase() {
        assert_eq!(normalize_address("  Ada@Example.COM "), "ada@example.com");
    }
}
