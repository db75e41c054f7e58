//! Segment membership in the past, from the recorded `segment_entered` / `segment_exited`
//! transitions: who was in a segment at an instant (the reports' `--segment`), and which
//! segments the log knows.
//!
//! The transitions' detail is JSON text (`{"type":"segment_entered","segment":"id"}`) and
//! the two dialects extract JSON differently, so the SQL narrows the rows with a `LIKE` on
//! the segment's JSON text (a superset: `LIKE` ignores case on SQLite) and the detail is
//! parsed and compared exactly here.

/// The `LIKE` pattern (escape character `\`) of a detail naming `segment`.
pub(crate) fn segment_like_pattern(segment: &str) -> String {
    let quoted = serde_json::Value::String(segment.to_string()).to_string();
    let mut pattern = String::from("%\"segment\":");
    for c in quoted.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The segment a segment transition's detail names.
pub(crate) fn detail_segment(detail: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(detail).ok()?.get("segment")? {
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

macro_rules! segment_history_impl {
    ($Store:ident, $Db:ty) => {
        impl $Store {
            pub(crate) async fn segment_members_before(
                &self,
                segment: &str,
                kind: SubjectKind,
                before: Timestamp,
            ) -> Result<Vec<i64>> {
                let rows = sqlx::query(
                    "SELECT t.subject_id, t.kind, t.detail FROM transitions t
                     WHERE t.subject_kind = $1 AND t.kind IN ('segment_entered', 'segment_exited')
                       AND t.at < $2 AND t.detail LIKE $3 ESCAPE '\\'
                     ORDER BY t.at, t.seq",
                )
                .bind(kind.as_str())
                .bind(ms(before))
                .bind(crate::sql_both_dialects::segment_history::segment_like_pattern(segment))
                .fetch_all(&self.pool)
                .await?;
                let mut inside: BTreeMap<i64, bool> = BTreeMap::new();
                for r in &rows {
                    let detail: String = r.get(2);
                    if crate::sql_both_dialects::segment_history::detail_segment(&detail).as_deref() != Some(segment) {
                        continue;
                    }
                    inside.insert(r.get(0), r.get::<String, _>(1) == "segment_entered");
                }
                Ok(inside.into_iter().filter(|&(_, is_in)| is_in).map(|(id, _)| id).collect())
            }

            pub(crate) async fn segments_in_transitions(&self) -> Result<Vec<(String, SubjectKind)>> {
                let rows = sqlx::query(
                    "SELECT DISTINCT t.subject_kind, t.detail FROM transitions t WHERE t.kind = 'segment_entered'",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut seen = Vec::new();
                for r in &rows {
                    let (Some(kind), Some(segment)) = (
                        parse_subject_kind(&r.get::<String, _>(0)),
                        crate::sql_both_dialects::segment_history::detail_segment(&r.get::<String, _>(1)),
                    ) else {
                        continue;
                    };
                    seen.push((segment, kind));
                }
                seen.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
                seen.dedup();
                Ok(seen)
            }
        }
    };
}

pub(crate) use segment_history_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_like_pattern_escapes_wildcards_and_matches_the_json_text() {
        assert_eq!(segment_like_pattern("at_risk"), "%\"segment\":\"at\\_risk\"%");
        assert_eq!(segment_like_pattern("50%"), "%\"segment\":\"50\\%\"%");
        assert_eq!(detail_segment(r#"{"type":"segment_exited","segment":"at_risk"}"#).as_deref(), Some("at_risk"));
        assert_eq!(detail_segment("not json"), None);
    }
}
