//! The in-app inbox: messages per contact, and their seen, clicked and dismissed marks.

/// The `SET` list of an in-app mark; clicking or dismissing a message also means it was seen.
/// `None` for an action that is not one.
pub(crate) fn inapp_mark_columns(action: &str) -> Option<&'static str> {
    match action {
        "seen" => Some("seen_at = COALESCE(seen_at, $3)"),
        "clicked" => Some("clicked_at = COALESCE(clicked_at, $3), seen_at = COALESCE(seen_at, $3)"),
        "dismissed" => Some("dismissed_at = COALESCE(dismissed_at, $3), seen_at = COALESCE(seen_at, $3)"),
        _ => None,
    }
}

macro_rules! inbox_impl {
    ($Store:ident, $Db:ty) => {
        const INAPP_COLUMNS: &str = "m.id, m.contact_id, m.enrollment_id, m.step_id, m.title, m.body_html, m.created_at, m.seen_at, m.clicked_at, m.dismissed_at";

        fn inapp_message(r: &DbRow) -> Result<InAppMessage> {
            Ok(InAppMessage {
                id: r.get(0),
                contact_id: r.get(1),
                enrollment_id: r.get(2),
                step_id: r.get(3),
                title: r.get(4),
                body_html: r.get(5),
                created_at: instant(r.get(6))?,
                seen_at: r.get::<Option<i64>, _>(7).map(instant).transpose()?,
                clicked_at: r.get::<Option<i64>, _>(8).map(instant).transpose()?,
                dismissed_at: r.get::<Option<i64>, _>(9).map(instant).transpose()?,
            })
        }

        impl $Store {
            pub(crate) async fn add_inapp_message(&self, contact_id: i64, enrollment_id: i64, step_id: &str, title: &str, body_html: &str, at: Timestamp) -> Result<i64> {
                let mut tx = self.begin_write().await?;
                let added = sqlx::query(
                    "INSERT INTO inapp_messages (contact_id, enrollment_id, step_id, title, body_html, created_at) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (enrollment_id, step_id, contact_id) DO NOTHING RETURNING id",
                )
                .bind(contact_id)
                .bind(enrollment_id)
                .bind(step_id)
                .bind(title)
                .bind(body_html)
                .bind(ms(at))
                .fetch_optional(&mut *tx)
                .await?;
                let id = match added {
                    Some(r) => r.get(0),
                    None => sqlx::query("SELECT id FROM inapp_messages WHERE enrollment_id = $1 AND step_id = $2 AND contact_id = $3")
                        .bind(enrollment_id)
                        .bind(step_id)
                        .bind(contact_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .get(0),
                };
                tx.commit().await?;
                Ok(id)
            }

            pub(crate) async fn inapp_messages(&self, contact_id: i64, include_dismissed: bool) -> Result<Vec<InAppMessage>> {
                let sql = format!("SELECT {INAPP_COLUMNS} FROM inapp_messages m WHERE m.contact_id = $1 AND ($2 OR m.dismissed_at IS NULL) ORDER BY m.created_at DESC, m.id DESC");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(contact_id).bind(include_dismissed).fetch_all(&self.pool).await?;
                rows.iter().map(inapp_message).collect()
            }

            pub(crate) async fn mark_inapp(&self, message_id: i64, contact_id: i64, action: &str, at: Timestamp) -> Result<bool> {
                let Some(columns) = inapp_mark_columns(action) else {
                    return Err(crate::StoreError::Invalid(format!("`{action}` is not an in-app action: use seen, clicked or dismissed")));
                };
                let sql = format!("UPDATE inapp_messages SET {columns} WHERE id = $1 AND contact_id = $2");
                let marked = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(message_id).bind(contact_id).bind(ms(at)).execute(&self.pool).await?.rows_affected();
                Ok(marked == 1)
            }
        }
    };
}

pub(crate) use inbox_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inapp_actions_are_seen_clicked_or_dismissed() {
        assert!(inapp_mark_columns("seen").is_some());
        assert!(inapp_mark_columns("clicked").is_some_and(|c| c.contains("seen_at")));
        assert!(inapp_mark_columns("dismissed").is_some_and(|c| c.contains("seen_at")));
        assert_eq!(inapp_mark_columns("deleted"), None);
        assert_eq!(inapp_mark_columns("seen_at = 1; --"), None);
    }
}
