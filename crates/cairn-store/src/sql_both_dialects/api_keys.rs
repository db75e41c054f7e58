//! API keys, stored by their hash: creating and finding them. Listing, revoking and the
//! revocation count the key cache reads are plain per-backend functions in `../api_keys.rs`.

macro_rules! api_keys_impl {
    ($Store:ident, $Db:ty) => {
        impl $Store {
            pub(crate) async fn create_api_key(
                &self,
                kind: KeyKind,
                scope: Option<crate::types::KeyScope>,
                name: &str,
                key_hash: &str,
                key_prefix: &str,
                at: Timestamp,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO api_keys (kind, name, key_hash, key_prefix, created_at, scope) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(kind.as_str())
                .bind(name)
                .bind(key_hash)
                .bind(key_prefix)
                .bind(ms(at))
                .bind(scope.map(|s| s.as_str()))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub(crate) async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
                let row = sqlx::query(
                    "SELECT id, kind, name, key_prefix, scope FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
                )
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    let kind: String = r.get(1);
                    Ok(ApiKey {
                        id: r.get(0),
                        kind: KeyKind::parse(&kind)
                            .ok_or_else(|| crate::StoreError::Corrupt(format!("api key kind `{kind}`")))?,
                        name: r.get(2),
                        prefix: r.get(3),
                        scope: r.get::<Option<String>, _>(4).as_deref().map(crate::sql_both_dialects::api_keys::parse_scope).transpose()?,
                    })
                })
                .transpose()
            }
        }
    };
}

pub(crate) use api_keys_impl;

/// A stored scope, or the corruption it is.
pub(crate) fn parse_scope(s: &str) -> crate::Result<crate::types::KeyScope> {
    crate::types::KeyScope::parse(s).ok_or_else(|| crate::StoreError::Corrupt(format!("api key scope `{s}`")))
}
