//! What the NPS, journey and Time to Value reports read: survey answers from the event log
//! and the accounts' journey transitions.

use serde::Serialize;

/// A survey answer as logged: a track event (`nps_submitted`, `csat_submitted`, …) with
/// the contact and account identity resolution gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveyAnswerEvent {
    /// The event's place in the log (orders answers logged at the same instant).
    pub seq: i64,
    /// The event's name.
    pub event: String,
    /// When it happened (the event's skew-corrected time).
    pub at: jiff::Timestamp,
    /// The contact it resolved to, if any.
    pub contact_id: Option<i64>,
    /// The account it resolved to (its group, else its contact's account), if any.
    pub account_id: Option<i64>,
    /// Its properties (`Null` when it has none).
    pub properties: serde_json::Value,
}

/// The transition kinds of the journey: stage moves and milestone outcomes.
pub(crate) const JOURNEY_TRANSITIONS: &str = "'stage_changed', 'milestone_achieved', 'milestone_missed'";

macro_rules! survey_and_journey_impl {
    ($Store:ident, $Db:ty) => {
        impl $Store {
            pub(crate) async fn journey_transitions(&self, up_to: Timestamp) -> Result<Vec<StoredTransition>> {
                let sql = format!(
                    "SELECT {TRANSITION_COLUMNS} FROM transitions t
                     WHERE t.subject_kind = 'account' AND t.kind IN ({}) AND t.at <= $1
                     ORDER BY t.at, t.seq",
                    crate::sql_both_dialects::survey_and_journey::JOURNEY_TRANSITIONS
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(up_to)).fetch_all(&self.pool).await?;
                rows.iter().map(stored_transition).collect()
            }

            pub(crate) async fn survey_answer_events(
                &self,
                events: &[&str],
                from: Timestamp,
                until: Timestamp,
            ) -> Result<Vec<crate::sql_both_dialects::survey_and_journey::SurveyAnswerEvent>> {
                if events.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT e.seq, e.event, e.ts, i.contact_id, i.account_id, e.properties
                     FROM events e JOIN event_identity i ON i.seq = e.seq
                     WHERE e.kind = 'track' AND e.ts >= $1 AND e.ts < $2 AND e.event IN ({})
                     ORDER BY e.ts, e.seq",
                    in_list_from(3, events.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(from)).bind(ms(until));
                for e in events {
                    q = q.bind(*e);
                }
                let rows = q.fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        Ok(crate::sql_both_dialects::survey_and_journey::SurveyAnswerEvent {
                            seq: r.get(0),
                            event: r.get(1),
                            at: instant(r.get(2))?,
                            contact_id: r.get(3),
                            account_id: r.get(4),
                            properties: r.get::<Option<String>, _>(5).map_or(Value::Null, json_or_string),
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use survey_and_journey_impl;
