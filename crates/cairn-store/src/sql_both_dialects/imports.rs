//! CSV imports: account, contact and subscription rows upserted by external id, and the
//! record of each import run.

macro_rules! imports_impl {
    ($Store:ident, $Db:ty) => {
        async fn account_other_ids_ok(conn: &mut Conn, line: u64, kind: EntityKind, id: Option<i64>, ids: &[(Source, String)]) -> Result<std::result::Result<Option<i64>, RowError>> {
            // Every other id must point at this entity or at nothing; an entity found only
            // through another id is the same entity (e.g. created by a group call).
            let mut found = id;
            for (source, ext) in ids {
                if let Some(owner) = find_entity(conn, kind, *source, ext).await? {
                    match found {
                        Some(f) if f != owner => {
                            return Ok(Err(RowError {
                                line,
                                column: Some(format!("{source}_id")),
                                reason: format!("`{ext}` already belongs to another {}", kind.as_str()),
                            }));
                        }
                        _ => found = Some(owner),
                    }
                }
            }
            Ok(Ok(found))
        }

        async fn upsert_account_row(conn: &mut Conn, source: Source, row: &AccountRow) -> Result<std::result::Result<(), RowError>> {
            let existing = find_entity(conn, EntityKind::Account, source, &row.external_id).await?;
            let found = match account_other_ids_ok(conn, row.line, EntityKind::Account, existing, &row.other_ids).await? {
                Ok(f) => f,
                Err(e) => return Ok(Err(e)),
            };
            let id = match found {
                Some(id) => id,
                None => new_account(conn).await?,
            };
            add_external_id(conn, EntityKind::Account, source, &row.external_id, id, "import").await?;
            for (s, ext) in &row.other_ids {
                add_external_id(conn, EntityKind::Account, *s, ext, id, "import").await?;
            }
            set_column(conn, "accounts", "name", id, Some(Some(row.name.clone()))).await?;
            set_column(conn, "accounts", "industry", id, row.industry.clone()).await?;
            set_column(conn, "accounts", "employees", id, row.employees).await?;
            set_column(conn, "accounts", "plan", id, row.plan.clone()).await?;
            set_column(conn, "accounts", "seats", id, row.seats).await?;
            set_column(conn, "accounts", "owner_email", id, row.owner_email.clone().map(|e| e.map(|e| e.as_str().to_string()))).await?;
            set_column(conn, "accounts", "start_date", id, row.start_date.map(|d| d.map(|d| d.to_string()))).await?;
            set_column(conn, "accounts", "renewal_date", id, row.renewal_date.map(|d| d.map(|d| d.to_string()))).await?;
            merge_entity_traits(conn, "accounts", id, &row.traits).await?;
            if let Some(domains) = &row.domains {
                let current: Vec<String> = sqlx::query("SELECT domain FROM account_domains WHERE account_id = $1 ORDER BY domain")
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                if &current != domains {
                    sqlx::query("DELETE FROM account_domains WHERE account_id = $1").bind(id).execute(&mut *conn).await?;
                    for d in domains {
                        sqlx::query("INSERT INTO account_domains (domain, account_id) VALUES ($1, $2)").bind(d).bind(id).execute(&mut *conn).await?;
                    }
                }
                // Contacts waiting for an account whose email domain is now known, and links
                // through a domain that this row made ambiguous or dropped.
                for d in current.iter().chain(domains) {
                    relink_domain(conn, d).await?;
                }
            }
            Ok(Ok(()))
        }

        async fn upsert_contact_row(conn: &mut Conn, source: Source, row: &ContactRow) -> Result<std::result::Result<(), RowError>> {
            let account = match row.account_external_id.as_deref() {
                Some(a) => match find_entity(conn, EntityKind::Account, source, a).await? {
                    Some(id) => Some(id),
                    None => {
                        return Ok(Err(RowError {
                            line: row.line,
                            column: Some("account_external_id".into()),
                            reason: format!("`{a}` matches no account with a {source} id; import the accounts first"),
                        }));
                    }
                },
                None => None,
            };
            let existing = find_entity(conn, EntityKind::Contact, source, &row.external_id).await?;
            let mut found = match account_other_ids_ok(conn, row.line, EntityKind::Contact, existing, &row.other_ids).await? {
                Ok(f) => f,
                Err(e) => return Ok(Err(e)),
            };
            let mut basis = "import";
            if found.is_none() {
                // A contact the product identified with this email, not yet known to this source.
                if let Some(Some(email)) = &row.email {
                    let rows = sqlx::query(
                        "SELECT c.id FROM contacts c WHERE c.email = $1 AND NOT EXISTS (SELECT 1 FROM external_ids x WHERE x.entity_kind = 'contact' AND x.source = $2 AND x.entity_id = c.id) LIMIT 2",
                    )
                    .bind(email.as_str())
                    .bind(source.as_str())
                    .fetch_all(&mut *conn)
                    .await?;
                    if rows.len() == 1 {
                        found = Some(rows[0].get(0));
                        basis = "email_match";
                    }
                }
            }
            let id = match found {
                Some(id) => id,
                None => new_contact(conn).await?,
            };
            add_external_id(conn, EntityKind::Contact, source, &row.external_id, id, basis).await?;
            for (s, ext) in &row.other_ids {
                add_external_id(conn, EntityKind::Contact, *s, ext, id, "import").await?;
            }
            set_column(conn, "contacts", "email", id, row.email.clone().map(|e| e.map(|e| e.as_str().to_string()))).await?;
            set_column(conn, "contacts", "name", id, row.name.clone()).await?;
            set_column(conn, "contacts", "role", id, row.role.clone()).await?;
            set_column(conn, "contacts", "timezone", id, row.timezone.clone()).await?;
            merge_entity_traits(conn, "contacts", id, &row.traits).await?;
            if let Some(account_id) = account {
                sqlx::query("UPDATE contacts SET account_id = $1, account_match_basis = 'import' WHERE id = $2 AND (account_id IS NULL OR account_id <> $1 OR account_match_basis <> 'import')")
                    .bind(account_id)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            } else {
                link_by_domain(conn, id).await?;
            }
            Ok(Ok(()))
        }

        async fn upsert_subscription_row(conn: &mut Conn, source: Source, row: &SubscriptionRow) -> Result<std::result::Result<(), RowError>> {
            let Some(account_id) = find_entity(conn, EntityKind::Account, source, &row.account_external_id).await? else {
                return Ok(Err(RowError {
                    line: row.line,
                    column: Some("account_id".into()),
                    reason: format!("`{}` matches no account with a {source} id; import the accounts first", row.account_external_id),
                }));
            };
            let traits = Value::Object(row.traits.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect()).to_string();
            sqlx::query(
                "INSERT INTO subscriptions (source, id, account_id, start_date, end_date, arr_cents, seats, product, traits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (source, id) DO UPDATE SET account_id = excluded.account_id, start_date = excluded.start_date, end_date = excluded.end_date,
                   arr_cents = excluded.arr_cents, seats = excluded.seats, product = excluded.product, traits = excluded.traits",
            )
            .bind(source.as_str())
            .bind(&row.id)
            .bind(account_id)
            .bind(row.start_date.to_string())
            .bind(row.end_date.to_string())
            .bind(row.arr.cents())
            .bind(row.seats)
            .bind(row.product.as_deref())
            .bind(traits)
            .execute(&mut *conn)
            .await?;
            Ok(Ok(()))
        }

        impl $Store {
            pub(crate) async fn upsert_accounts(&self, source: Source, rows: &[AccountRow]) -> Result<Vec<std::result::Result<(), RowError>>> {
                let mut tx = self.begin_write().await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(upsert_account_row(&mut tx, source, row).await?);
                }
                tx.commit().await?;
                self.signals.after_commit(Committed { events: false, data: out.iter().any(|r| r.is_ok()) });
                Ok(out)
            }

            pub(crate) async fn upsert_contacts(&self, source: Source, rows: &[ContactRow]) -> Result<Vec<std::result::Result<(), RowError>>> {
                let mut tx = self.begin_write().await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(upsert_contact_row(&mut tx, source, row).await?);
                }
                tx.commit().await?;
                self.signals.after_commit(Committed { events: false, data: out.iter().any(|r| r.is_ok()) });
                Ok(out)
            }

            pub(crate) async fn upsert_subscriptions(&self, source: Source, rows: &[SubscriptionRow]) -> Result<Vec<std::result::Result<(), RowError>>> {
                let mut tx = self.begin_write().await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(upsert_subscription_row(&mut tx, source, row).await?);
                }
                tx.commit().await?;
                self.signals.after_commit(Committed { events: false, data: out.iter().any(|r| r.is_ok()) });
                Ok(out)
            }

            pub(crate) async fn record_import_run(&self, run: &ImportRun) -> Result<()> {
                sqlx::query("INSERT INTO import_runs (kind, file, source, started_at, finished_at, rows_total, rows_ok, rows_rejected, rejects) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                    .bind(&run.kind)
                    .bind(&run.file)
                    .bind(&run.source)
                    .bind(run.started_at)
                    .bind(run.finished_at)
                    .bind(run.rows_total as i64)
                    .bind(run.rows_ok as i64)
                    .bind(run.rows_rejected as i64)
                    .bind(run.rejects.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[cfg(feature = "testing")]
            pub(crate) async fn account_arr_on(&self, source: Source, external_id: &str, day: Date) -> Result<Option<Money>> {
                let mut conn = self.pool.acquire().await?;
                let Some(id) = find_entity(&mut conn, EntityKind::Account, source, external_id).await? else { return Ok(None) };
                let cents: i64 = sqlx::query("SELECT CAST(COALESCE(SUM(arr_cents), 0) AS BIGINT) FROM subscriptions WHERE account_id = $1 AND start_date <= $2 AND end_date >= $2")
                    .bind(id)
                    .bind(day.to_string())
                    .fetch_one(&mut *conn)
                    .await?
                    .get(0);
                Ok(Some(Money(cents)))
            }
        }
    };
}

pub(crate) use imports_impl;
