//! Reports over what is stored: the data-readiness doctor and the whole-store snapshot
//! the tests compare.

macro_rules! reports_impl {
    ($Store:ident, $Db:ty) => {
        async fn count(conn: &mut Conn, sql: &str) -> Result<u64> {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&mut *conn).await?.get(0);
            Ok(n.max(0) as u64)
        }

        async fn finding(conn: &mut Conn, count_sql: &str, examples_sql: &str, today: &str) -> Result<Finding> {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(count_sql.to_string())).bind(today).fetch_one(&mut *conn).await?.get(0);
            let examples = sqlx::query(sqlx::AssertSqlSafe(examples_sql.to_string())).bind(today).fetch_all(&mut *conn).await?.iter().map(|r| r.get::<String, _>(0)).collect();
            Ok(Finding { count: n.max(0) as u64, examples })
        }

        /// The label of an account in reports: its CRM id, else any external id, else its row id.
        const ACCOUNT_LABEL: &str = "COALESCE((SELECT MIN(x.source || ':' || x.external_id) FROM external_ids x WHERE x.entity_kind = 'account' AND x.entity_id = a.id AND x.source = 'crm'), (SELECT MIN(x.source || ':' || x.external_id) FROM external_ids x WHERE x.entity_kind = 'account' AND x.entity_id = a.id), 'account#' || CAST(a.id AS TEXT))";

        const CONTACT_LABEL: &str = "COALESCE(c.email, (SELECT MIN(x.source || ':' || x.external_id) FROM external_ids x WHERE x.entity_kind = 'contact' AND x.entity_id = c.id), 'contact#' || CAST(c.id AS TEXT))";

        impl $Store {
            pub(crate) async fn doctor(&self, today: Date) -> Result<DoctorReport> {
                let mut conn = self.pool.acquire().await?;
                let conn = &mut *conn;
                let day = today.to_string();
                let totals = Totals {
                    accounts: count(conn, "SELECT COUNT(*) FROM accounts").await?,
                    contacts: count(conn, "SELECT COUNT(*) FROM contacts").await?,
                    subscription_lines: count(conn, "SELECT COUNT(*) FROM subscriptions").await?,
                    events: count(conn, "SELECT COUNT(*) FROM events").await?,
                };
                // The `event_identity` view's resolution, applied once per distinct
                // (userId, anonymousId, groupId) of the log rather than once per event (a
                // person sends thousands of events under the same ids): on W1's 8.9 million
                // events over 313,000 such triples, 9 s instead of 42 s on SQLite.
                let r = sqlx::query(
                    "SELECT CAST(COALESCE(SUM(CASE WHEN contact_id IS NULL THEN n ELSE 0 END), 0) AS BIGINT),
                            CAST(COALESCE(SUM(CASE WHEN account_id IS NULL THEN n ELSE 0 END), 0) AS BIGINT),
                            CAST(COALESCE(SUM(CASE WHEN contact_id IS NULL AND account_id IS NULL THEN n ELSE 0 END), 0) AS BIGINT)
                     FROM (
                         SELECT r.n, r.contact_id, COALESCE(r.group_account_id, c.account_id) AS account_id
                         FROM (
                             SELECT g.n,
                                    COALESCE(
                                        (SELECT x.entity_id FROM external_ids x
                                          WHERE x.entity_kind = 'contact' AND x.source = 'product' AND x.external_id = g.user_id),
                                        (SELECT a.contact_id FROM contact_aliases a WHERE a.alias = g.user_id),
                                        (SELECT a.contact_id FROM contact_aliases a WHERE a.alias = g.anonymous_id)
                                    ) AS contact_id,
                                    (SELECT x.entity_id FROM external_ids x
                                      WHERE x.entity_kind = 'account' AND x.source = 'product' AND x.external_id = g.group_id
                                    ) AS group_account_id
                             FROM (SELECT user_id, anonymous_id, group_id, COUNT(*) AS n
                                   FROM events GROUP BY user_id, anonymous_id, group_id) g
                         ) r
                         LEFT JOIN contacts c ON c.id = r.contact_id
                     ) i",
                )
                .fetch_one(&mut *conn)
                .await?;
                let unmatched = Unmatched {
                    events_without_contact: r.get::<i64, _>(0).max(0) as u64,
                    events_without_account: r.get::<i64, _>(1).max(0) as u64,
                    events_matched_to_nobody: r.get::<i64, _>(2).max(0) as u64,
                    contacts_without_account: count(conn, "SELECT COUNT(*) FROM contacts WHERE account_id IS NULL").await?,
                };
                let no_crm = "NOT EXISTS (SELECT 1 FROM external_ids x WHERE x.entity_kind = 'account' AND x.source = 'crm' AND x.entity_id = a.id) AND $1 = $1";
                let no_arr = "NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = a.id AND s.start_date <= $1 AND s.end_date >= $1 AND s.arr_cents > 0)";
                let no_renewal = "a.renewal_date IS NULL AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = a.id AND s.end_date >= $1)";
                let accounts_finding = |cond: &'static str| {
                    (format!("SELECT COUNT(*) FROM accounts a WHERE {cond}"), format!("SELECT {ACCOUNT_LABEL} FROM accounts a WHERE {cond} ORDER BY a.id LIMIT 10"))
                };
                let (c1, e1) = accounts_finding(no_crm);
                let (c2, e2) = accounts_finding(no_arr);
                let (c3, e3) = accounts_finding(no_renewal);
                let accounts_without_crm_id = finding(conn, &c1, &e1, &day).await?;
                let accounts_without_arr = finding(conn, &c2, &e2, &day).await?;
                let accounts_without_renewal_date = finding(conn, &c3, &e3, &day).await?;
                let duplicate_emails = finding(
                    conn,
                    "SELECT COUNT(*) FROM (SELECT email FROM contacts WHERE email IS NOT NULL AND $1 = $1 GROUP BY email HAVING COUNT(*) > 1) d",
                    "SELECT email FROM contacts WHERE email IS NOT NULL AND $1 = $1 GROUP BY email HAVING COUNT(*) > 1 ORDER BY email LIMIT 10",
                    &day,
                )
                .await?;
                let contacts_without_account = finding(
                    conn,
                    "SELECT COUNT(*) FROM contacts c WHERE c.account_id IS NULL AND $1 = $1",
                    &format!("SELECT {CONTACT_LABEL} FROM contacts c WHERE c.account_id IS NULL AND $1 = $1 ORDER BY c.id LIMIT 10"),
                    &day,
                )
                .await?;
                let mut sources = Vec::new();
                for r in sqlx::query("SELECT source, COUNT(*), MAX(ts), MAX(received_at) FROM events GROUP BY source ORDER BY source").fetch_all(&mut *conn).await? {
                    sources.push(SourceFreshness {
                        source: r.get(0),
                        events: r.get::<i64, _>(1).max(0) as u64,
                        newest_event_at: ts_text(r.get(2)),
                        newest_received_at: ts_text(r.get(3)),
                    });
                }
                Ok(DoctorReport {
                    as_of: day,
                    totals,
                    unmatched,
                    accounts_without_crm_id,
                    accounts_without_arr,
                    accounts_without_renewal_date,
                    duplicate_emails,
                    contacts_without_account,
                    sources,
                })
            }

            #[cfg(feature = "testing")]
            pub(crate) async fn snapshot(&self) -> Result<Value> {
                let mut conn = self.pool.acquire().await?;
                let conn = &mut *conn;
                // Labels by external ids, so that row ids (which depend on arrival order) do not show.
                let mut labels: HashMap<(String, i64), Vec<String>> = HashMap::new();
                for r in sqlx::query("SELECT entity_kind, source, external_id, entity_id, basis FROM external_ids").fetch_all(&mut *conn).await? {
                    let key = (r.get::<String, _>(0), r.get::<i64, _>(3));
                    labels.entry(key).or_default().push(format!("{}:{}({})", r.get::<String, _>(1), r.get::<String, _>(2), r.get::<String, _>(4)));
                }
                for v in labels.values_mut() {
                    v.sort();
                }
                let label = |kind: &str, id: Option<i64>| -> Value {
                    match id {
                        None => Value::Null,
                        Some(id) => json!(labels.get(&(kind.to_string(), id)).cloned().unwrap_or_default()),
                    }
                };
                let mut domains: HashMap<i64, Vec<String>> = HashMap::new();
                for r in sqlx::query("SELECT account_id, domain FROM account_domains ORDER BY domain").fetch_all(&mut *conn).await? {
                    domains.entry(r.get(0)).or_default().push(r.get(1));
                }
                let mut aliases: HashMap<i64, Vec<String>> = HashMap::new();
                for r in sqlx::query("SELECT contact_id, alias, basis FROM contact_aliases ORDER BY alias").fetch_all(&mut *conn).await? {
                    aliases.entry(r.get(0)).or_default().push(format!("{}({})", r.get::<String, _>(1), r.get::<String, _>(2)));
                }
                let traits = |t: String| serde_json::from_str::<Value>(&t).unwrap_or(Value::String(t));
                let mut accounts = Vec::new();
                for r in sqlx::query("SELECT id, name, industry, employees, plan, seats, owner_email, start_date, renewal_date, traits FROM accounts").fetch_all(&mut *conn).await? {
                    let id: i64 = r.get(0);
                    accounts.push(json!({
                        "ids": label("account", Some(id)), "name": r.get::<Option<String>, _>(1), "industry": r.get::<Option<String>, _>(2),
                        "employees": r.get::<Option<i64>, _>(3), "plan": r.get::<Option<String>, _>(4), "seats": r.get::<Option<i64>, _>(5),
                        "owner_email": r.get::<Option<String>, _>(6), "start_date": r.get::<Option<String>, _>(7), "renewal_date": r.get::<Option<String>, _>(8),
                        "traits": traits(r.get(9)), "domains": domains.remove(&id).unwrap_or_default(),
                    }));
                }
                let mut contacts = Vec::new();
                for r in sqlx::query("SELECT id, account_id, account_match_basis, email, name, role, timezone, traits FROM contacts").fetch_all(&mut *conn).await? {
                    let id: i64 = r.get(0);
                    contacts.push(json!({
                        "ids": label("contact", Some(id)), "account": label("account", r.get(1)), "account_match_basis": r.get::<Option<String>, _>(2),
                        "email": r.get::<Option<String>, _>(3), "name": r.get::<Option<String>, _>(4), "role": r.get::<Option<String>, _>(5),
                        "timezone": r.get::<Option<String>, _>(6), "traits": traits(r.get(7)), "aliases": aliases.remove(&id).unwrap_or_default(),
                    }));
                }
                let mut subscriptions = Vec::new();
                for r in sqlx::query("SELECT source, id, account_id, start_date, end_date, arr_cents, seats, product, traits FROM subscriptions").fetch_all(&mut *conn).await? {
                    subscriptions.push(json!({
                        "source": r.get::<String, _>(0), "id": r.get::<String, _>(1), "account": label("account", r.get(2)),
                        "start_date": r.get::<String, _>(3), "end_date": r.get::<String, _>(4), "arr_cents": r.get::<i64, _>(5),
                        "seats": r.get::<Option<i64>, _>(6), "product": r.get::<Option<String>, _>(7), "traits": traits(r.get(8)),
                    }));
                }
                let mut events = Vec::new();
                for r in sqlx::query("SELECT message_id, kind, event, user_id, anonymous_id, group_id, ts, source, properties FROM events ORDER BY message_id, source").fetch_all(&mut *conn).await? {
                    events.push(json!([r.get::<String, _>(0), r.get::<String, _>(1), r.get::<Option<String>, _>(2), r.get::<Option<String>, _>(3),
                        r.get::<Option<String>, _>(4), r.get::<Option<String>, _>(5), r.get::<i64, _>(6), r.get::<String, _>(7), r.get::<Option<String>, _>(8)]));
                }
                let sort = |v: &mut Vec<Value>| v.sort_by_key(|x| x.to_string());
                sort(&mut accounts);
                sort(&mut contacts);
                sort(&mut subscriptions);
                Ok(json!({ "accounts": accounts, "contacts": contacts, "subscriptions": subscriptions, "events": events }))
            }
        }
    };
}

pub(crate) use reports_impl;
