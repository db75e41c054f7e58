//! The audit log: who did what to what, and when — sign-ins (and failed ones), workspace
//! reloads, program pauses, health overrides, key and user changes. Append-only; read
//! newest first, filtered by action and actor.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::{Result, Store, StoreError};

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AuditActor {
    /// A signed-in user (their address as it was then).
    User {
        /// The user's row id.
        id: i64,
        /// Their sign-in address.
        email: String,
    },
    /// An API key (its prefix).
    Key {
        /// The key's row id.
        id: i64,
        /// The key's prefix.
        prefix: String,
    },
    /// Someone not signed in (a failed sign-in names the address tried).
    Anonymous {
        /// What they gave as their address, if anything.
        label: String,
    },
    /// cairn itself, or an operator at the command line.
    System,
}

impl AuditActor {
    fn columns(&self) -> (&'static str, Option<i64>, &str) {
        match self {
            AuditActor::User { id, email } => ("user", Some(*id), email),
            AuditActor::Key { id, prefix } => ("key", Some(*id), prefix),
            AuditActor::Anonymous { label } => ("anonymous", None, label),
            AuditActor::System => ("system", None, "cairn"),
        }
    }

    fn from_columns(kind: &str, id: Option<i64>, label: String) -> Result<AuditActor> {
        match (kind, id) {
            ("user", Some(id)) => Ok(AuditActor::User { id, email: label }),
            ("key", Some(id)) => Ok(AuditActor::Key { id, prefix: label }),
            ("anonymous", _) => Ok(AuditActor::Anonymous { label }),
            ("system", _) => Ok(AuditActor::System),
            _ => Err(StoreError::Corrupt(format!("audit actor kind `{kind}` with id {id:?}"))),
        }
    }

    /// How lists show it: the address, the key prefix, or `cairn`.
    pub fn label(&self) -> &str {
        self.columns().2
    }
}

/// An entry to record.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    /// When it happened.
    pub at: Timestamp,
    /// Who did it.
    pub actor: &'a AuditActor,
    /// What was done, a dotted name (`session.sign_in`, `key.created`, …).
    pub action: &'a str,
    /// To what (an account id, a program id, a key prefix, an address); may be empty.
    pub target: &'a str,
    /// Anything else worth keeping (never a secret).
    pub detail: &'a Value,
}

/// A recorded entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Row id: entries are numbered in the order they were recorded.
    pub id: i64,
    /// When it happened.
    pub at: Timestamp,
    /// Who did it.
    pub actor: AuditActor,
    /// What was done.
    pub action: String,
    /// To what.
    pub target: String,
    /// The rest.
    pub detail: Value,
}

/// Which entries to read: newest first, at most `limit`, older than `before` when given.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this action.
    pub action: Option<String>,
    /// Only this actor (address or key prefix, exactly).
    pub actor: Option<String>,
    /// Only entries with a smaller id (the next page).
    pub before: Option<i64>,
    /// At most this many (capped at 500).
    pub limit: u32,
}

macro_rules! audit_log_impl {
    ($Store:ty) => {
        impl $Store {
            async fn record_audit(&self, e: &NewAuditEntry<'_>) -> Result<i64> {
                use sqlx::Row as _;
                let (kind, id, label) = e.actor.columns();
                let row = sqlx::query(
                    "INSERT INTO audit_log (at, actor_kind, actor_id, actor, action, target, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(e.at.as_millisecond())
                .bind(kind)
                .bind(id)
                .bind(label)
                .bind(e.action)
                .bind(e.target)
                .bind(e.detail.to_string())
                .fetch_one(&self.pool)
                .await?;
                Ok(row.get(0))
            }

            async fn audit_entries(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT id, at, actor_kind, actor_id, actor, action, target, detail FROM audit_log \
                     WHERE ($1 IS NULL OR action = $1) AND ($2 IS NULL OR actor = $2) AND ($3 IS NULL OR id < $3) \
                     ORDER BY id DESC LIMIT $4",
                )
                .bind(q.action.as_deref())
                .bind(q.actor.as_deref())
                .bind(q.before)
                .bind(i64::from(q.limit.min(500)))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let ms: i64 = r.get(1);
                        let kind: String = r.get(2);
                        let detail: String = r.get(7);
                        Ok(AuditEntry {
                            id: r.get(0),
                            at: Timestamp::from_millisecond(ms)
                                .map_err(|e| StoreError::Corrupt(format!("audit time {ms}: {e}")))?,
                            actor: AuditActor::from_columns(&kind, r.get(3), r.get(4))?,
                            action: r.get(5),
                            target: r.get(6),
                            detail: serde_json::from_str(&detail).unwrap_or(Value::String(detail)),
                        })
                    })
                    .collect()
            }
        }
    };
}

audit_log_impl!(crate::sqlite::SqliteStore);
audit_log_impl!(crate::postgres::PgStore);

impl Store {
    /// Records an audit entry; its id.
    pub async fn record_audit(&self, entry: &NewAuditEntry<'_>) -> Result<i64> {
        match self {
            Store::Sqlite(s) => s.record_audit(entry).await,
            Store::Postgres(s) => s.record_audit(entry).await,
        }
    }

    /// Audit entries, newest first, as `query` selects.
    pub async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        match self {
            Store::Sqlite(s) => s.audit_entries(query).await,
            Store::Postgres(s) => s.audit_entries(query).await,
        }
    }
}
