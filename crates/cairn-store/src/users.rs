//! Users of the web UI and their sessions. Sign-in is case-insensitive: a user is found
//! by the lowercased address (`email_key`, unique), and keeps the address as typed. A
//! session is stored by the SHA-256 of its cookie's random id, never the id itself, and is
//! found only while it has not expired and its user is not disabled.
//!
//! Roles and password hashes are opaque text here: the server parses and checks them.

use jiff::Timestamp;
use serde::Serialize;

use crate::{Result, Store, StoreError};

/// A user as listed and as signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    /// Row id.
    pub id: i64,
    /// The sign-in address as the user gave it.
    pub email: String,
    /// `admin`, `ops`, `csm` or `viewer` (the server parses it).
    pub role: String,
    /// When the user was added.
    pub created_at: Timestamp,
    /// When the user was disabled; `None` while they may sign in.
    pub disabled_at: Option<Timestamp>,
}

/// A live session and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Whose it is.
    pub user: UserRecord,
    /// The token its forms carry.
    pub csrf: String,
    /// When it began (at sign-in).
    pub created_at: Timestamp,
    /// When it ends, whatever happens before.
    pub expires_at: Timestamp,
    /// The last request seen (updated at most once a minute).
    pub last_seen: Timestamp,
}

fn at(ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt(format!("user or session time {ms}: {e}")))
}

/// The key a sign-in address is found by.
pub(crate) fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The user columns every query selects first, in [`user_row`]'s order.
macro_rules! user_columns {
    () => {
        "u.id, u.email, u.role, u.created_at, u.disabled_at"
    };
}

macro_rules! users_impl {
    ($Store:ty, $Row:ty) => {
        impl $Store {
            /// The user of a row that starts with `user_columns!()`.
            fn user_row(r: &$Row) -> Result<UserRecord> {
                use sqlx::Row as _;
                Ok(UserRecord {
                    id: r.try_get(0)?,
                    email: r.try_get(1)?,
                    role: r.try_get(2)?,
                    created_at: at(r.try_get(3)?)?,
                    disabled_at: r.try_get::<Option<i64>, _>(4)?.map(at).transpose()?,
                })
            }

            async fn create_user(&self, email: &str, password_hash: &str, role: &str, when: Timestamp) -> Result<Option<i64>> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "INSERT INTO users (email, email_key, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (email_key) DO NOTHING RETURNING id",
                )
                .bind(email.trim())
                .bind(email_key(email))
                .bind(password_hash)
                .bind(role)
                .bind(when.as_millisecond())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|r| r.get(0)))
            }

            async fn user_for_sign_in(&self, email: &str) -> Result<Option<(UserRecord, String)>> {
                use sqlx::Row as _;
                let row = sqlx::query(concat!("SELECT ", user_columns!(), ", u.password_hash FROM users u WHERE u.email_key = $1"))
                .bind(email_key(email))
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| Ok((Self::user_row(&r)?, r.try_get::<String, _>(5)?))).transpose()
            }

            async fn list_users(&self) -> Result<Vec<UserRecord>> {
                let rows = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users u ORDER BY u.email_key"))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::user_row).collect()
            }

            async fn set_user_role(&self, id: i64, role: &str) -> Result<bool> {
                let done = sqlx::query("UPDATE users SET role = $1 WHERE id = $2").bind(role).bind(id).execute(&self.pool).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_user_password(&self, id: i64, password_hash: &str) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn disable_user(&self, id: i64, when: Timestamp) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                    .bind(when.as_millisecond())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_session(
                &self,
                id_hash: &str,
                user_id: i64,
                csrf: &str,
                when: Timestamp,
                expires_at: Timestamp,
            ) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                // Housekeeping rides on sign-ins: sessions past their end are never found again.
                sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(when.as_millisecond()).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO sessions (id_hash, user_id, created_at, expires_at, last_seen, csrf) VALUES ($1, $2, $3, $4, $3, $5)",
                )
                .bind(id_hash)
                .bind(user_id)
                .bind(when.as_millisecond())
                .bind(expires_at.as_millisecond())
                .bind(csrf)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>> {
                use sqlx::Row as _;
                let row = sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    ", s.csrf, s.created_at, s.expires_at, s.last_seen FROM sessions s \
                     JOIN users u ON u.id = s.user_id \
                     WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL"
                ))
                .bind(id_hash)
                .bind(now.as_millisecond())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(SessionRecord {
                        user: Self::user_row(&r)?,
                        csrf: r.try_get(5)?,
                        created_at: at(r.try_get(6)?)?,
                        expires_at: at(r.try_get(7)?)?,
                        last_seen: at(r.try_get(8)?)?,
                    })
                })
                .transpose()
            }

            async fn touch_session(&self, id_hash: &str, when: Timestamp) -> Result<()> {
                sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id_hash = $2")
                    .bind(when.as_millisecond())
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn end_session(&self, id_hash: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

users_impl!(crate::sqlite::SqliteStore, sqlx::sqlite::SqliteRow);
users_impl!(crate::postgres::PgStore, sqlx::postgres::PgRow);

impl Store {
    /// Adds a user; `Ok(None)` when the address (in any case) is taken already.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: &str,
        at: Timestamp,
    ) -> Result<Option<i64>> {
        match self {
            Store::Sqlite(s) => s.create_user(email, password_hash, role, at).await,
            Store::Postgres(s) => s.create_user(email, password_hash, role, at).await,
        }
    }

    /// The user with this address (in any case), disabled or not, and their password hash.
    pub async fn user_for_sign_in(&self, email: &str) -> Result<Option<(UserRecord, String)>> {
        match self {
            Store::Sqlite(s) => s.user_for_sign_in(email).await,
            Store::Postgres(s) => s.user_for_sign_in(email).await,
        }
    }

    /// Every user, by address.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        match self {
            Store::Sqlite(s) => s.list_users().await,
            Store::Postgres(s) => s.list_users().await,
        }
    }

    /// Gives user `id` another role; `Ok(false)` when there is no such user.
    pub async fn set_user_role(&self, id: i64, role: &str) -> Result<bool> {
        match self {
            Store::Sqlite(s) => s.set_user_role(id, role).await,
            Store::Postgres(s) => s.set_user_role(id, role).await,
        }
    }

    /// Gives user `id` a new password hash and ends their sessions; `Ok(false)` when there
    /// is no such user.
    pub async fn set_user_password(&self, id: i64, password_hash: &str) -> Result<bool> {
        match self {
            Store::Sqlite(s) => s.set_user_password(id, password_hash).await,
            Store::Postgres(s) => s.set_user_password(id, password_hash).await,
        }
    }

    /// Disables user `id` as of `at` and ends their sessions; `Ok(false)` when there is no
    /// such user or they were disabled already.
    pub async fn disable_user(&self, id: i64, at: Timestamp) -> Result<bool> {
        match self {
            Store::Sqlite(s) => s.disable_user(id, at).await,
            Store::Postgres(s) => s.disable_user(id, at).await,
        }
    }

    /// Starts a session for `user_id`, stored by the hash of its id, until `expires_at`
    /// (and removes sessions that ended).
    pub async fn create_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf: &str,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.create_session(id_hash, user_id, csrf, at, expires_at).await,
            Store::Postgres(s) => s.create_session(id_hash, user_id, csrf, at, expires_at).await,
        }
    }

    /// The session whose id hashes to `id_hash`, if it is live at `now` and its user is
    /// not disabled.
    pub async fn find_session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>> {
        match self {
            Store::Sqlite(s) => s.find_session(id_hash, now).await,
            Store::Postgres(s) => s.find_session(id_hash, now).await,
        }
    }

    /// Records a request seen on the session.
    pub async fn touch_session(&self, id_hash: &str, at: Timestamp) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.touch_session(id_hash, at).await,
            Store::Postgres(s) => s.touch_session(id_hash, at).await,
        }
    }

    /// Ends a session (sign-out); `Ok(false)` when there was none.
    pub async fn end_session(&self, id_hash: &str) -> Result<bool> {
        match self {
            Store::Sqlite(s) => s.end_session(id_hash).await,
            Store::Postgres(s) => s.end_session(id_hash).await,
        }
    }
}
