//! Copies for a program's dry run over history (`cairn_programs::dry_run`): the facts of
//! the real store read out, and written into a fresh scratch store (SQLite in a temporary
//! folder) that the dry run's engine and runner then work on, so the real database is
//! only read.
//!
//! The directory (accounts, domains, contacts, external ids, aliases, subscription lines,
//! health overrides) keeps its ids, so events copied with their raw identity columns
//! resolve to the same accounts and contacts. Events come back as the tracking messages
//! they were stored from, with their source, to be appended again. Consent changes and
//! suppressions are read by time window, so a dry run applies each when it happened. The
//! sends of other programs (and of enrollments the dry run does not replay) go into the
//! scratch ledger as *outside sends*, under one completed placeholder enrollment per
//! program: frequency caps count them, the runner never runs them.

use cairn_core::tracking::TrackingMessage;
use serde::{Deserialize, Serialize};

/// The directory of a store: what the engine and the runner read about accounts and
/// contacts, with their ids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectoryCopy {
    pub(crate) accounts: Vec<AccountCopy>,
    pub(crate) domains: Vec<(String, i64)>,
    pub(crate) contacts: Vec<ContactCopy>,
    /// (entity_kind, source, external_id, entity_id, basis)
    pub(crate) external_ids: Vec<(String, String, String, i64, String)>,
    /// (alias, contact_id, basis)
    pub(crate) aliases: Vec<(String, i64, String)>,
    pub(crate) subscriptions: Vec<SubscriptionCopy>,
    pub(crate) overrides: Vec<OverrideCopy>,
}

impl DirectoryCopy {
    /// Accounts and contacts copied.
    pub fn counts(&self) -> (usize, usize) {
        (self.accounts.len(), self.contacts.len())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AccountCopy {
    pub(crate) id: i64,
    pub(crate) name: Option<String>,
    pub(crate) industry: Option<String>,
    pub(crate) employees: Option<i64>,
    pub(crate) plan: Option<String>,
    pub(crate) seats: Option<i64>,
    pub(crate) owner_email: Option<String>,
    pub(crate) start_date: Option<String>,
    pub(crate) renewal_date: Option<String>,
    pub(crate) traits: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ContactCopy {
    pub(crate) id: i64,
    pub(crate) account_id: Option<i64>,
    pub(crate) account_match_basis: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) role: Option<String>,
    pub(crate) timezone: Option<String>,
    pub(crate) traits: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SubscriptionCopy {
    pub(crate) source: String,
    pub(crate) id: String,
    pub(crate) account_id: i64,
    pub(crate) start_date: String,
    pub(crate) end_date: String,
    pub(crate) arr_cents: i64,
    pub(crate) seats: Option<i64>,
    pub(crate) product: Option<String>,
    pub(crate) traits: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OverrideCopy {
    pub(crate) account_id: i64,
    pub(crate) score: Option<f64>,
    pub(crate) reason: String,
    pub(crate) set_by: String,
    pub(crate) set_at: i64,
    pub(crate) expires_at: Option<i64>,
}

/// Consent changes and suppressions of a time window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardRailChanges {
    /// (contact_id, topic, subscribed, source, at ms)
    pub(crate) consent: Vec<(i64, String, bool, String, i64)>,
    /// (address, reason, at ms)
    pub(crate) suppressions: Vec<(String, String, i64)>,
}

impl GuardRailChanges {
    /// Whether the window held none.
    pub fn is_empty(&self) -> bool {
        self.consent.is_empty() && self.suppressions.is_empty()
    }
}

/// An event of the log as it was appended: its place, its source and the message.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// Its place in the log.
    pub seq: i64,
    /// The source it was recorded under.
    pub source: String,
    /// The message, identity columns raw.
    pub message: TrackingMessage,
}

/// A recorded send (outcome `sent`) with its program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentRecord {
    /// The program.
    pub program_id: String,
    /// The enrollment.
    pub enrollment_id: i64,
    /// The step.
    pub step_id: String,
    /// The channel (`email`, `in_app`, …).
    pub channel: String,
    /// The recipient.
    pub contact_id: Option<i64>,
    /// When.
    pub at: jiff::Timestamp,
}

/// The trigger key of the placeholder enrollment that carries a program's outside sends.
pub(crate) const OUTSIDE_SENDS_TRIGGER: &str = "dry-run:outside-sends";

macro_rules! scratch_copy_impl {
    ($Store:ident, $Db:ty) => {
        use crate::sql_both_dialects::scratch_copy::{
            AccountCopy, ContactCopy, DirectoryCopy, GuardRailChanges, OUTSIDE_SENDS_TRIGGER, OverrideCopy, RawEvent,
            SentRecord, SubscriptionCopy,
        };

        impl $Store {
            pub(crate) async fn read_directory(&self, overrides_up_to: Timestamp) -> Result<DirectoryCopy> {
                let mut conn = self.pool.acquire().await?;
                let conn = &mut *conn;
                let accounts = sqlx::query("SELECT id, name, industry, employees, plan, seats, owner_email, start_date, renewal_date, traits FROM accounts ORDER BY id")
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| AccountCopy {
                        id: r.get(0),
                        name: r.get(1),
                        industry: r.get(2),
                        employees: r.get(3),
                        plan: r.get(4),
                        seats: r.get(5),
                        owner_email: r.get(6),
                        start_date: r.get(7),
                        renewal_date: r.get(8),
                        traits: r.get(9),
                    })
                    .collect();
                let domains = sqlx::query("SELECT domain, account_id FROM account_domains ORDER BY account_id, domain")
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                let contacts = sqlx::query("SELECT id, account_id, account_match_basis, email, name, role, timezone, traits FROM contacts ORDER BY id")
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| ContactCopy {
                        id: r.get(0),
                        account_id: r.get(1),
                        account_match_basis: r.get(2),
                        email: r.get(3),
                        name: r.get(4),
                        role: r.get(5),
                        timezone: r.get(6),
                        traits: r.get(7),
                    })
                    .collect();
                let external_ids = sqlx::query("SELECT entity_kind, source, external_id, entity_id, basis FROM external_ids ORDER BY entity_kind, source, external_id")
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                    .collect();
                let aliases = sqlx::query("SELECT alias, contact_id, basis FROM contact_aliases ORDER BY alias")
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect();
                let subscriptions = sqlx::query("SELECT source, id, account_id, start_date, end_date, arr_cents, seats, product, traits FROM subscriptions ORDER BY source, id")
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| SubscriptionCopy {
                        source: r.get(0),
                        id: r.get(1),
                        account_id: r.get(2),
                        start_date: r.get(3),
                        end_date: r.get(4),
                        arr_cents: r.get(5),
                        seats: r.get(6),
                        product: r.get(7),
                        traits: r.get(8),
                    })
                    .collect();
                let overrides = sqlx::query("SELECT account_id, score, reason, set_by, set_at, expires_at FROM health_overrides WHERE set_at <= $1 ORDER BY id")
                    .bind(ms(overrides_up_to))
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| OverrideCopy {
                        account_id: r.get(0),
                        score: r.get(1),
                        reason: r.get(2),
                        set_by: r.get(3),
                        set_at: r.get(4),
                        expires_at: r.get(5),
                    })
                    .collect();
                Ok(DirectoryCopy { accounts, domains, contacts, external_ids, aliases, subscriptions, overrides })
            }

            pub(crate) async fn write_directory(&self, copy: &DirectoryCopy) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let held: i64 = sqlx::query("SELECT COUNT(*) FROM accounts").fetch_one(&mut *tx).await?.get(0);
                if held > 0 {
                    return Err(crate::StoreError::Corrupt(
                        "a directory is copied into an empty scratch store only, and this one holds accounts".into(),
                    ));
                }
                for a in &copy.accounts {
                    sqlx::query("INSERT INTO accounts (id, name, industry, employees, plan, seats, owner_email, start_date, renewal_date, traits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                        .bind(a.id).bind(&a.name).bind(&a.industry).bind(a.employees).bind(&a.plan).bind(a.seats)
                        .bind(&a.owner_email).bind(&a.start_date).bind(&a.renewal_date).bind(&a.traits)
                        .execute(&mut *tx)
                        .await?;
                }
                for (domain, account) in &copy.domains {
                    sqlx::query("INSERT INTO account_domains (domain, account_id) VALUES ($1, $2)").bind(domain).bind(account).execute(&mut *tx).await?;
                }
                for c in &copy.contacts {
                    sqlx::query("INSERT INTO contacts (id, account_id, account_match_basis, email, name, role, timezone, traits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                        .bind(c.id).bind(c.account_id).bind(&c.account_match_basis).bind(&c.email).bind(&c.name)
                        .bind(&c.role).bind(&c.timezone).bind(&c.traits)
                        .execute(&mut *tx)
                        .await?;
                }
                for (kind, source, external, entity, basis) in &copy.external_ids {
                    sqlx::query("INSERT INTO external_ids (entity_kind, source, external_id, entity_id, basis) VALUES ($1, $2, $3, $4, $5)")
                        .bind(kind).bind(source).bind(external).bind(entity).bind(basis)
                        .execute(&mut *tx)
                        .await?;
                }
                for (alias, contact, basis) in &copy.aliases {
                    sqlx::query("INSERT INTO contact_aliases (alias, contact_id, basis) VALUES ($1, $2, $3)").bind(alias).bind(contact).bind(basis).execute(&mut *tx).await?;
                }
                for s in &copy.subscriptions {
                    sqlx::query("INSERT INTO subscriptions (source, id, account_id, start_date, end_date, arr_cents, seats, product, traits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                        .bind(&s.source).bind(&s.id).bind(s.account_id).bind(&s.start_date).bind(&s.end_date)
                        .bind(s.arr_cents).bind(s.seats).bind(&s.product).bind(&s.traits)
                        .execute(&mut *tx)
                        .await?;
                }
                for o in &copy.overrides {
                    sqlx::query("INSERT INTO health_overrides (account_id, score, reason, set_by, set_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
                        .bind(o.account_id).bind(o.score).bind(&o.reason).bind(&o.set_by).bind(o.set_at).bind(o.expires_at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn read_guard_rail_changes(&self, after: Timestamp, up_to: Timestamp) -> Result<GuardRailChanges> {
                let consent = sqlx::query("SELECT contact_id, topic, subscribed, source, at FROM consent_changes WHERE at > $1 AND at <= $2 ORDER BY at, id")
                    .bind(ms(after))
                    .bind(ms(up_to))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                    .collect();
                let suppressions = sqlx::query("SELECT address, reason, at FROM suppressions WHERE at > $1 AND at <= $2 ORDER BY at, address")
                    .bind(ms(after))
                    .bind(ms(up_to))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect();
                Ok(GuardRailChanges { consent, suppressions })
            }

            pub(crate) async fn write_guard_rail_changes(&self, changes: &GuardRailChanges) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for (contact, topic, subscribed, source, at) in &changes.consent {
                    sqlx::query("INSERT INTO consent_changes (contact_id, topic, subscribed, source, at) VALUES ($1, $2, $3, $4, $5)")
                        .bind(contact).bind(topic).bind(subscribed).bind(source).bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                for (address, reason, at) in &changes.suppressions {
                    sqlx::query("INSERT INTO suppressions (address, reason, at) VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING")
                        .bind(address).bind(reason).bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn raw_events_after(&self, after_seq: i64, limit: u32) -> Result<Vec<RawEvent>> {
                let rows = sqlx::query("SELECT seq, message_id, kind, event, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at, received_at, source, properties, context FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(after_seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        let kind: String = r.get(2);
                        let kind = MessageKind::parse(&kind)
                            .ok_or_else(|| crate::StoreError::Corrupt(format!("event kind `{kind}` is not one cairn knows")))?;
                        let optional = |v: Option<i64>| v.map(instant).transpose();
                        Ok(RawEvent {
                            seq: r.get(0),
                            source: r.get(12),
                            message: TrackingMessage {
                                kind,
                                message_id: r.get(1),
                                user_id: r.get(4),
                                anonymous_id: r.get(5),
                                group_id: r.get(6),
                                event: r.get(3),
                                previous_id: r.get(7),
                                timestamp: instant(r.get(8))?,
                                original_timestamp: optional(r.get(9))?,
                                sent_at: optional(r.get(10))?,
                                received_at: instant(r.get(11))?,
                                properties: r.get(13),
                                context: r.get(14),
                            },
                        })
                    })
                    .collect()
            }

            pub(crate) async fn sent_between(&self, since: Timestamp, until: Timestamp) -> Result<Vec<SentRecord>> {
                let rows = sqlx::query(
                    "SELECT e.program_id, l.enrollment_id, l.step_id, l.channel, l.contact_id, l.at
                     FROM send_ledger l JOIN enrollments e ON e.id = l.enrollment_id
                     WHERE l.outcome = 'sent' AND l.at >= $1 AND l.at < $2
                     ORDER BY l.at, l.enrollment_id, l.step_id",
                )
                .bind(ms(since))
                .bind(ms(until))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(SentRecord {
                            program_id: r.get(0),
                            enrollment_id: r.get(1),
                            step_id: r.get(2),
                            channel: r.get(3),
                            contact_id: r.get(4),
                            at: instant(r.get(5))?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn record_outside_sends(&self, sends: &[SentRecord]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let mut holders: HashMap<String, i64> = HashMap::new();
                for s in sends {
                    let holder = match holders.get(&s.program_id) {
                        Some(id) => *id,
                        None => {
                            sqlx::query(
                                "INSERT INTO enrollments (program_id, subject_kind, subject_id, trigger_key, enrolled_at, holdout, variant, status, ended_at)
                                 VALUES ($1, 'contact', 0, $2, 0, $3, NULL, 'completed', 0)
                                 ON CONFLICT (program_id, subject_kind, subject_id, trigger_key) DO NOTHING",
                            )
                            .bind(&s.program_id)
                            .bind(OUTSIDE_SENDS_TRIGGER)
                            .bind(false)
                            .execute(&mut *tx)
                            .await?;
                            let id: i64 = sqlx::query("SELECT id FROM enrollments WHERE program_id = $1 AND subject_kind = 'contact' AND subject_id = 0 AND trigger_key = $2")
                                .bind(&s.program_id)
                                .bind(OUTSIDE_SENDS_TRIGGER)
                                .fetch_one(&mut *tx)
                                .await?
                                .get(0);
                            holders.insert(s.program_id.clone(), id);
                            id
                        }
                    };
                    sqlx::query(
                        "INSERT INTO send_ledger (enrollment_id, step_id, channel, outcome, message_id, contact_id, detail, at)
                         VALUES ($1, $2, $3, 'sent', NULL, $4, '{}', $5)
                         ON CONFLICT (enrollment_id, step_id) DO NOTHING",
                    )
                    .bind(holder)
                    .bind(format!("{}:{}", s.enrollment_id, s.step_id))
                    .bind(&s.channel)
                    .bind(s.contact_id)
                    .bind(ms(s.at))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn set_enrollment_end(&self, id: i64, status: EnrollmentStatus, at: Timestamp) -> Result<()> {
                sqlx::query("UPDATE enrollments SET status = $1, ended_at = $2 WHERE id = $3")
                    .bind(status.as_str())
                    .bind(ms(at))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub(crate) async fn copy_enrollments(&self, enrollments: &[Enrollment]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for e in enrollments {
                    sqlx::query(
                        "INSERT INTO enrollments (id, program_id, subject_kind, subject_id, trigger_key, enrolled_at, holdout, variant, status, ended_at, goal_met_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(e.id)
                    .bind(&e.program_id)
                    .bind(e.subject_kind.as_str())
                    .bind(e.subject_id)
                    .bind(&e.trigger_key)
                    .bind(ms(e.enrolled_at))
                    .bind(e.holdout)
                    .bind(&e.variant)
                    .bind(e.status.as_str())
                    .bind(e.ended_at.map(ms))
                    .bind(e.goal_met_at.map(ms))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use scratch_copy_impl;
