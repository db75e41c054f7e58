//! Reading the subscription ledger back, whole, for the revenue reports (`cairn report`).
//!
//! One query per backend; the rows come back in a stable order so reports are
//! deterministic.

use crate::{Result, Store, StoreError};
use jiff::civil::Date;
use sqlx::Row;

/// One stored subscription line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionLine {
    /// The system the line was imported from (`crm`, `billing`, …); a line's id is unique
    /// within its source.
    pub source: String,
    pub id: String,
    /// cairn's id of the account.
    pub account_id: i64,
    /// First active day, inclusive.
    pub start_date: Date,
    /// Last active day, inclusive.
    pub end_date: Date,
    pub arr_cents: i64,
}

const SQL: &str = "SELECT source, id, account_id, start_date, end_date, arr_cents FROM subscriptions \
                   ORDER BY account_id, start_date, source, id";

const ACCOUNT_SQL: &str = "SELECT source, id, account_id, start_date, end_date, arr_cents FROM subscriptions \
                           WHERE account_id = $1 ORDER BY account_id, start_date, source, id";

impl Store {
    /// Every subscription line, ordered by account, start date, source and id.
    pub async fn subscription_lines(&self) -> Result<Vec<SubscriptionLine>> {
        self.read_lines(None).await
    }

    /// One account's subscription lines, ordered by start date, source and id.
    pub async fn account_subscription_lines(&self, account_id: i64) -> Result<Vec<SubscriptionLine>> {
        self.read_lines(Some(account_id)).await
    }

    async fn read_lines(&self, account_id: Option<i64>) -> Result<Vec<SubscriptionLine>> {
        macro_rules! read {
            ($pool:expr) => {{
                let mut out = Vec::new();
                let query = match account_id {
                    None => sqlx::query(SQL),
                    Some(a) => sqlx::query(ACCOUNT_SQL).bind(a),
                };
                for r in query.fetch_all($pool).await? {
                    let (source, id): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    let start: String = r.try_get(3)?;
                    let end: String = r.try_get(4)?;
                    out.push(SubscriptionLine {
                        start_date: parse_day(&start, &source, &id)?,
                        end_date: parse_day(&end, &source, &id)?,
                        account_id: r.try_get(2)?,
                        arr_cents: r.try_get(5)?,
                        source,
                        id,
                    });
                }
                Ok(out)
            }};
        }
        match self {
            Store::Sqlite(s) => read!(&s.pool),
            Store::Postgres(s) => read!(&s.pool),
        }
    }
}

fn parse_day(text: &str, source: &str, id: &str) -> Result<Date> {
    text.parse().map_err(|e| StoreError::Corrupt(format!("subscription line {source}/{id} has the date `{text}`: {e}")))
}
