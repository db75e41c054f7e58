//! Track events of a few names before an instant, identity-resolved, oldest first: what a
//! report counts from the product's own events (support tickets opened and closed).
//!
//! There is no index on the event name (appends stay fast), so this reads the event log
//! once; it is for reports, not for a hot path.

/// The most names one read takes (its placeholders are numbered from `$2`).
pub(crate) const MAX_EVENT_NAMES: usize = 16;

macro_rules! named_events_impl {
    ($Store:ident, $Db:ty) => {
        impl $Store {
            pub(crate) async fn events_named(&self, names: &[&str], before: Timestamp) -> Result<Vec<LogEvent>> {
                use crate::sql_both_dialects::named_events::MAX_EVENT_NAMES;
                if names.is_empty() {
                    return Ok(Vec::new());
                }
                if names.len() > MAX_EVENT_NAMES {
                    return Err(crate::StoreError::Invalid(format!(
                        "{} event names asked for at once; at most {MAX_EVENT_NAMES}",
                        names.len()
                    )));
                }
                let sql = format!(
                    "SELECT e.seq, e.ts, e.kind, e.event, i.contact_id, i.account_id, e.source, e.properties
                     FROM events e JOIN event_identity i ON i.seq = e.seq
                     WHERE e.kind = 'track' AND e.ts < $1 AND e.event IN ({})
                     ORDER BY e.ts, e.seq",
                    in_list_from(2, names.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(before));
                for n in names {
                    q = q.bind(*n);
                }
                let rows = q.fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
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
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use named_events_impl;
