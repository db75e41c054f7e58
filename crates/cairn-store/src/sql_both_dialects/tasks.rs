//! Tasks for people (CSMs): created by program steps, assigned from pools, completed.

macro_rules! tasks_impl {
    ($Store:ident, $Db:ty) => {
        const TASK_COLUMNS: &str = "t.id, t.enrollment_id, t.step_id, t.account_id, t.contact_id, t.title, t.body, t.assignee, t.pool, t.priority, t.due_at, t.created_at, t.completed_by, t.completed_at, t.outcome";

        fn task(r: &DbRow) -> Result<Task> {
            let rank: i64 = r.get(9);
            Ok(Task {
                id: r.get(0),
                enrollment_id: r.get(1),
                step_id: r.get(2),
                account_id: r.get(3),
                contact_id: r.get(4),
                title: r.get(5),
                body: r.get(6),
                assignee: r.get(7),
                pool: r.get(8),
                priority: TaskPriority::from_rank(rank).ok_or_else(|| crate::StoreError::Corrupt(format!("task priority {rank} is not one cairn knows")))?,
                due_at: r.get::<Option<i64>, _>(10).map(instant).transpose()?,
                created_at: instant(r.get(11))?,
                completed_by: r.get(12),
                completed_at: r.get::<Option<i64>, _>(13).map(instant).transpose()?,
                outcome: r.get(14),
            })
        }

        impl $Store {
            pub(crate) async fn create_task(&self, t: &NewTask) -> Result<i64> {
                let mut tx = self.begin_write().await?;
                let added = sqlx::query(
                    "INSERT INTO tasks (enrollment_id, step_id, account_id, contact_id, title, body, assignee, pool, priority, due_at, created_at, status)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open')
                     ON CONFLICT (enrollment_id, step_id) DO NOTHING RETURNING id",
                )
                .bind(t.enrollment_id)
                .bind(t.step_id.as_str())
                .bind(t.account_id)
                .bind(t.contact_id)
                .bind(t.title.as_str())
                .bind(t.body.as_str())
                .bind(t.assignee.as_deref())
                .bind(t.pool.as_deref())
                .bind(t.priority.rank())
                .bind(t.due_at.map(ms))
                .bind(ms(t.created_at))
                .fetch_optional(&mut *tx)
                .await?;
                let id = match added {
                    Some(r) => r.get(0),
                    None => sqlx::query("SELECT id FROM tasks WHERE enrollment_id = $1 AND step_id = $2")
                        .bind(t.enrollment_id)
                        .bind(t.step_id.as_str())
                        .fetch_one(&mut *tx)
                        .await?
                        .get(0),
                };
                tx.commit().await?;
                Ok(id)
            }

            pub(crate) async fn open_tasks(&self, assignee: Option<&str>, pool: Option<&str>) -> Result<Vec<Task>> {
                let sql = format!(
                    "SELECT {TASK_COLUMNS} FROM tasks t
                     WHERE t.status = 'open' AND ($1 IS NULL OR t.assignee = $1) AND ($2 IS NULL OR t.pool = $2)
                     ORDER BY t.priority DESC, t.due_at IS NULL, t.due_at, t.id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(assignee).bind(pool).fetch_all(&self.pool).await?;
                rows.iter().map(task).collect()
            }

            pub(crate) async fn tasks_open_at(&self, at: Timestamp) -> Result<Vec<Task>> {
                let sql = format!(
                    "SELECT {TASK_COLUMNS} FROM tasks t
                     WHERE t.created_at <= $1 AND (t.completed_at IS NULL OR t.completed_at > $1)
                     ORDER BY t.created_at, t.id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ms(at)).fetch_all(&self.pool).await?;
                rows.iter().map(task).collect()
            }

            pub(crate) async fn task(&self, id: i64) -> Result<Option<Task>> {
                let sql = format!("SELECT {TASK_COLUMNS} FROM tasks t WHERE t.id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(task).transpose()
            }

            pub(crate) async fn open_task_counts(&self, pool_members: &[String]) -> Result<Vec<(String, u32)>> {
                let mut counts: HashMap<String, i64> = HashMap::with_capacity(pool_members.len());
                let mut conn = self.pool.acquire().await?;
                for chunk in pool_members.chunks(VALUES_PER_IN_LIST) {
                    let sql = format!("SELECT assignee, COUNT(*) FROM tasks WHERE status = 'open' AND assignee IN ({}) GROUP BY assignee", in_list(chunk.len(), NUMBERED_PLACEHOLDERS));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for member in chunk {
                        q = q.bind(member.as_str());
                    }
                    for r in q.fetch_all(&mut *conn).await? {
                        counts.insert(r.get(0), r.get(1));
                    }
                }
                Ok(pool_members.iter().map(|m| (m.clone(), count_u32(counts.get(m).copied().unwrap_or(0)))).collect())
            }

            pub(crate) async fn last_pool_assignee(&self, pool: &str) -> Result<Option<String>> {
                let row = sqlx::query("SELECT assignee FROM tasks WHERE pool = $1 AND assignee IS NOT NULL ORDER BY id DESC LIMIT 1")
                    .bind(pool)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.get(0)))
            }

            pub(crate) async fn complete_task(&self, id: i64, by: &str, outcome: Option<&str>, at: Timestamp) -> Result<bool> {
                let done = sqlx::query("UPDATE tasks SET status = 'done', completed_by = $2, completed_at = $3, outcome = $4 WHERE id = $1 AND status = 'open'")
                    .bind(id)
                    .bind(by)
                    .bind(ms(at))
                    .bind(outcome)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(done == 1)
            }

            pub(crate) async fn complete_tasks(&self, done: &[(i64, String, Timestamp)]) -> Result<Vec<bool>> {
                let mut out = Vec::with_capacity(done.len());
                if done.is_empty() {
                    return Ok(out);
                }
                let mut tx = self.begin_write().await?;
                for (id, by, at) in done {
                    let n = sqlx::query("UPDATE tasks SET status = 'done', completed_by = $2, completed_at = $3 WHERE id = $1 AND status = 'open'")
                        .bind(*id)
                        .bind(by.as_str())
                        .bind(ms(*at))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    out.push(n == 1);
                }
                tx.commit().await?;
                Ok(out)
            }
        }
    };
}

pub(crate) use tasks_impl;
