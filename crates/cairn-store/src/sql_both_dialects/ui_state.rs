//! What the web UI keeps of its own (migration 0008): notes on accounts, paused programs
//! and claiming tasks.

macro_rules! ui_state_impl {
    ($Store:ident, $Db:ty) => {
        impl $Store {
            pub(crate) async fn add_account_note(&self, account_id: i64, body: &str, author: &str, at: Timestamp) -> Result<i64> {
                let row = sqlx::query("INSERT INTO account_notes (account_id, body, author, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
                    .bind(account_id)
                    .bind(body)
                    .bind(author)
                    .bind(ms(at))
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.get(0))
            }

            pub(crate) async fn account_notes(&self, account_id: i64, limit: u32) -> Result<Vec<crate::types::AccountNote>> {
                self.account_notes_before(account_id, Timestamp::MAX, limit).await
            }

            pub(crate) async fn account_notes_before(&self, account_id: i64, before: Timestamp, limit: u32) -> Result<Vec<crate::types::AccountNote>> {
                let rows = sqlx::query(
                    "SELECT id, account_id, body, author, created_at FROM account_notes WHERE account_id = $1 AND created_at < $3 ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(account_id)
                .bind(i64::from(limit))
                .bind(ms(before))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(crate::types::AccountNote {
                            id: r.get(0),
                            account_id: r.get(1),
                            body: r.get(2),
                            author: r.get(3),
                            created_at: instant(r.get(4))?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn pause_program(&self, program_id: &str, by: &str, at: Timestamp) -> Result<bool> {
                let added = sqlx::query("INSERT INTO program_pauses (program_id, paused_by, paused_at) VALUES ($1, $2, $3) ON CONFLICT (program_id) DO NOTHING")
                    .bind(program_id)
                    .bind(by)
                    .bind(ms(at))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(added == 1)
            }

            pub(crate) async fn resume_program(&self, program_id: &str) -> Result<bool> {
                let removed = sqlx::query("DELETE FROM program_pauses WHERE program_id = $1").bind(program_id).execute(&self.pool).await?.rows_affected();
                Ok(removed == 1)
            }

            pub(crate) async fn paused_programs(&self) -> Result<Vec<crate::types::ProgramPause>> {
                let rows = sqlx::query("SELECT program_id, paused_by, paused_at FROM program_pauses ORDER BY program_id").fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| Ok(crate::types::ProgramPause { program_id: r.get(0), paused_by: r.get(1), paused_at: instant(r.get(2))? }))
                    .collect()
            }

            pub(crate) async fn account_tasks(&self, account_id: i64, limit: u32) -> Result<Vec<Task>> {
                let sql = format!("SELECT {TASK_COLUMNS} FROM tasks t WHERE t.account_id = $1 ORDER BY t.created_at DESC, t.id DESC LIMIT $2");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.iter().map(task).collect()
            }

            pub(crate) async fn claim_task(&self, id: i64, who: &str) -> Result<bool> {
                let claimed = sqlx::query("UPDATE tasks SET assignee = $2 WHERE id = $1 AND status = 'open' AND (assignee IS NULL OR assignee <> $2)")
                    .bind(id)
                    .bind(who)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(claimed == 1)
            }
        }
    };
}

pub(crate) use ui_state_impl;
