//! API keys as `cairn keys list|revoke` see them, and the count of revoked keys that the
//! server's key cache compares to tell whether a key it verified earlier may have been
//! revoked since (by any process on the database).

use jiff::Timestamp;
use serde::Serialize;

use crate::types::{KeyKind, KeyScope};
use crate::{Result, Store, StoreError};

/// A stored API key as listed: never the key itself, nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyListing {
    /// Row id (`cairn keys revoke --id`).
    pub id: i64,
    /// What it may do.
    pub kind: KeyKind,
    /// Its name; for write keys, the source its events are recorded under.
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked; `None` while it works.
    pub revoked_at: Option<Timestamp>,
    /// A secret key's scope; `None` for write and publishable keys.
    pub scope: Option<KeyScope>,
}

fn at(ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt(format!("api key time {ms}: {e}")))
}

macro_rules! api_keys_impl {
    ($Store:ty) => {
        impl $Store {
            async fn list_api_keys(&self) -> Result<Vec<ApiKeyListing>> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT id, kind, name, key_prefix, created_at, revoked_at, scope FROM api_keys ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let kind: String = r.get(1);
                        Ok(ApiKeyListing {
                            id: r.get(0),
                            kind: KeyKind::parse(&kind)
                                .ok_or_else(|| StoreError::Corrupt(format!("api key kind `{kind}`")))?,
                            name: r.get(2),
                            prefix: r.get(3),
                            created_at: at(r.get(4))?,
                            revoked_at: r.get::<Option<i64>, _>(5).map(at).transpose()?,
                            scope: r
                                .get::<Option<String>, _>(6)
                                .as_deref()
                                .map(crate::sql_both_dialects::api_keys::parse_scope)
                                .transpose()?,
                        })
                    })
                    .collect()
            }

            async fn revoke_api_key(&self, id: i64, when: Timestamp) -> Result<bool> {
                let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(when.as_millisecond())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoked_api_keys(&self) -> Result<i64> {
                use sqlx::Row as _;
                let row = sqlx::query("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NOT NULL")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.get::<i64, _>(0))
            }
        }
    };
}

api_keys_impl!(crate::sqlite::SqliteStore);
api_keys_impl!(crate::postgres::PgStore);

impl Store {
    /// Every API key, live and revoked, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyListing>> {
        match self {
            Store::Sqlite(s) => s.list_api_keys().await,
            Store::Postgres(s) => s.list_api_keys().await,
        }
    }

    /// Revokes the key with row id `id` as of `when`; `Ok(false)` when there is no such
    /// key or it was already revoked. Keys are never un-revoked nor deleted, so the count
    /// of revoked keys ([`Store::revoked_api_keys`]) only grows.
    pub async fn revoke_api_key(&self, id: i64, when: Timestamp) -> Result<bool> {
        match self {
            Store::Sqlite(s) => s.revoke_api_key(id, when).await,
            Store::Postgres(s) => s.revoke_api_key(id, when).await,
        }
    }

    /// How many keys have been revoked, ever: it moves exactly when a key is revoked.
    pub async fn revoked_api_keys(&self) -> Result<i64> {
        match self {
            Store::Sqlite(s) => s.revoked_api_keys().await,
            Store::Postgres(s) => s.revoked_api_keys().await,
        }
    }
}
