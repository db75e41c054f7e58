//! The store logic whose SQL both SQLite and PostgreSQL accept, written once and stamped
//! out for each backend by `store_impl!`. Placeholders are `$N` (both accept them), dates
//! are ISO `YYYY-MM-DD` text and JSON is text in both schemas.
//!
//! Each module holds the SQL of one thing the store keeps, as a macro that `store_impl!`
//! expands beside the others (they share its imports and helpers, one namespace per
//! backend). The dialect differences live in `sqlite.rs` and `postgres.rs`: `lock_log`,
//! `CLAIM_LOCK`, JSON aggregation, placeholders in bulk statements.
//!
//! sqlx's SQLite driver hands every result row to the caller's thread separately, a wake-up
//! each, which at a few thousand rows a round cost more than the SQL itself. Where many rows
//! come back on SQLite (`ROWS_ONE_AT_A_TIME`), they come as one row holding a JSON array
//! (`json_array_agg`, `json_tuple`, decoded by `json_array` into tuples): claimed steps, a
//! round's enrollments, the engine's event reads; and the rows a write touches are selected
//! that way just before it rather than returned by `RETURNING` (the write lock, `BEGIN
//! IMMEDIATE`, is already held, so nothing changes in between). On PostgreSQL rows come over
//! the socket in bulk: reads stay as they are and a write's `RETURNING` is gathered by a
//! `WITH` around it.

use serde_json::Value;

pub(crate) mod account_360;
pub(crate) mod api_keys;
pub(crate) mod consent;
pub(crate) mod due_steps;
pub(crate) mod engine_state;
pub(crate) mod enrollments;
pub(crate) mod event_log;
pub(crate) mod health_snapshots;
pub(crate) mod identities;
pub(crate) mod imports;
pub(crate) mod inbox;
pub(crate) mod named_events;
pub(crate) mod reports;
pub(crate) mod scratch_copy;
pub(crate) mod segment_history;
pub(crate) mod send_ledger;
pub(crate) mod settings;
pub(crate) mod survey_and_journey;
pub(crate) mod tasks;
pub(crate) mod ui_state;

/// The values of a one-row JSON aggregate (`json_array_agg`): many rows' values handed
/// over at once.
pub(crate) fn json_array<T: serde::de::DeserializeOwned>(text: String) -> crate::Result<Vec<T>> {
    serde_json::from_str(&text)
        .map_err(|e| crate::StoreError::Corrupt(format!("a JSON array from the database did not read back: {e}")))
}

/// Values per `IN (…)` list (well under both backends' parameter limits).
pub(crate) const VALUES_PER_IN_LIST: usize = 500;

/// `rows` groups of `cols` placeholders, `(…),(…)`, numbered from `$1` or plain `?` (see
/// [`event_log::events_insert_sql`] for why SQLite gets `?`).
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

/// Stored JSON text as a value; text that is not JSON comes back as a JSON string.
pub(crate) fn json_or_string(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// `$start, $start+1, …`: `n` numbered placeholders for an `IN (…)` list after other
/// parameters (short lists only: SQLite looks `$N` up linearly).
pub(crate) fn in_list_from(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(",")
}

/// Placeholder number `i` of a statement: `$i`, or `?` for a backend whose bulk
/// statements use plain ones (see `events_insert_sql`). In one statement, all or none.
pub(crate) fn param(i: usize, numbered: bool) -> String {
    if numbered { format!("${i}") } else { "?".to_string() }
}

/// `n` placeholders numbered from `start` (or `n` plain `?`), comma-separated.
pub(crate) fn params_from(start: usize, n: usize, numbered: bool) -> String {
    (start..start + n).map(|i| param(i, numbered)).collect::<Vec<_>>().join(",")
}

/// Stamps out the store for one backend: `$Store` is its type, `$Db` its sqlx database.
macro_rules! store_impl {
    ($Store:ident, $Db:ty) => {
        use std::collections::{BTreeMap, HashMap, HashSet};

        use cairn_core::doctor::{DoctorReport, Finding, SourceFreshness, Totals, Unmatched};
        use cairn_core::import::{AccountRow, ContactRow, RowError, SubscriptionRow};
        use cairn_core::tracking::{MessageKind, TrackingMessage};
        use cairn_core::{EntityKind, Source};
        use jiff::Timestamp;
        use jiff::civil::Date;
        use serde_json::Value;
        use sqlx::Row as _;

        use crate::Result;
        use crate::signals::Committed;
        use crate::sql_both_dialects::engine_state::TRANSITION_ROWS_PER_INSERT;
        use crate::sql_both_dialects::event_log::{EVENT_ROWS_PER_INSERT, events_insert_sql};
        use crate::sql_both_dialects::identities::{
            merge_traits, split_group_traits, split_identify_traits, traits_object,
        };
        use crate::sql_both_dialects::{VALUES_PER_IN_LIST, in_list, json_array, json_or_string, values_rows};
        use crate::types::{
            AccountRecord, ApiKey, Appended, ContactRecord, HealthOverrideRecord, HealthSnapshotRecord, ImportRun,
            KeyKind, LogEvent, NewTransition, StoredTransition,
        };

        use std::collections::BTreeSet;

        use jiff::SignedDuration;

        use crate::sql_both_dialects::consent::normalize_address;
        use crate::sql_both_dialects::due_steps::{DEFERRALS_PER_STATEMENT, STEP_ROWS_PER_STATEMENT, distinct_runs};
        use crate::sql_both_dialects::inbox::inapp_mark_columns;
        use crate::sql_both_dialects::send_ledger::ledger_contact;
        use crate::sql_both_dialects::{in_list_from, param, params_from};
        use crate::types::{
            After, DeadLetter, DueStep, EngagementRecord, EnrollRequest, Enrollment, EnrollmentStatus, InAppMessage,
            LedgerEntry, MeasuredEnrollment, NewTask, OutboxMessage, ProgramActivity, SendRecord, StepRecord,
            SubjectKind, Task, TaskPriority, parse_subject_kind,
        };

        // What only the methods behind the `testing` feature use.
        #[cfg(feature = "testing")]
        use crate::types::{ConsentChange, StepAttempt};
        #[cfg(feature = "testing")]
        use cairn_core::Money;
        #[cfg(feature = "testing")]
        use serde_json::json;

        type Conn = <$Db as sqlx::Database>::Connection;

        fn ms(t: Timestamp) -> i64 {
            t.as_millisecond()
        }

        fn ts_text(ms: i64) -> String {
            Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_else(|_| ms.to_string())
        }

        type DbRow = <$Db as sqlx::Database>::Row;

        /// An instant stored as ms since epoch.
        fn instant(ms: i64) -> Result<Timestamp> {
            Timestamp::from_millisecond(ms)
                .map_err(|_| crate::StoreError::Corrupt(format!("timestamp {ms} ms since epoch is out of range")))
        }

        crate::sql_both_dialects::event_log::event_log_impl!($Store, $Db);
        crate::sql_both_dialects::identities::identities_impl!($Store, $Db);
        crate::sql_both_dialects::imports::imports_impl!($Store, $Db);
        crate::sql_both_dialects::reports::reports_impl!($Store, $Db);
        crate::sql_both_dialects::api_keys::api_keys_impl!($Store, $Db);
        crate::sql_both_dialects::engine_state::engine_state_impl!($Store, $Db);
        crate::sql_both_dialects::health_snapshots::health_snapshots_impl!($Store, $Db);
        crate::sql_both_dialects::enrollments::enrollments_impl!($Store, $Db);
        crate::sql_both_dialects::due_steps::due_steps_impl!($Store, $Db);
        crate::sql_both_dialects::send_ledger::send_ledger_impl!($Store, $Db);
        crate::sql_both_dialects::consent::consent_impl!($Store, $Db);
        crate::sql_both_dialects::inbox::inbox_impl!($Store, $Db);
        crate::sql_both_dialects::tasks::tasks_impl!($Store, $Db);
        crate::sql_both_dialects::settings::settings_impl!($Store, $Db);
        crate::sql_both_dialects::ui_state::ui_state_impl!($Store, $Db);
        crate::sql_both_dialects::segment_history::segment_history_impl!($Store, $Db);
        crate::sql_both_dialects::named_events::named_events_impl!($Store, $Db);
        crate::sql_both_dialects::survey_and_journey::survey_and_journey_impl!($Store, $Db);
        crate::sql_both_dialects::scratch_copy::scratch_copy_impl!($Store, $Db);
        crate::sql_both_dialects::account_360::account_360_impl!($Store, $Db);
    };
}

pub(crate) use store_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_and_plain_for_sqlite() {
        assert_eq!(values_rows(2, 3, true), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(values_rows(2, 2, false), "(?,?),(?,?)");
        assert_eq!(in_list(3, true), "$1,$2,$3");
        assert_eq!(in_list(2, false), "?,?");
    }

    #[test]
    fn placeholders_are_numbered_or_plain() {
        assert_eq!(params_from(3, 2, true), "$3,$4");
        assert_eq!(params_from(3, 2, false), "?,?");
    }
}
