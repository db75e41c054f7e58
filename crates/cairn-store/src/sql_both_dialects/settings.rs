//! Settings shared by every node (key and value text).

macro_rules! settings_impl {
    ($Store:ident, $Db:ty) => {
        impl $Store {
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
        }
    };
}

pub(crate) use settings_impl;
