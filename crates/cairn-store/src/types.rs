//! Plain data the store hands out and takes in.

use serde::Serialize;

/// What an API key lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Sends tracking calls (`/v1/*`). Safe to embed in a backend, not in a browser.
    Write,
    /// Reads a contact's in-app messages from the browser.
    Publishable,
    /// Uses the REST API.
    Secret,
}

impl KeyKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Write => "write",
            KeyKind::Publishable => "publishable",
            KeyKind::Secret => "secret",
        }
    }

    /// Parses `write`, `publishable` or `secret`.
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "write" => Some(KeyKind::Write),
            "publishable" => Some(KeyKind::Publishable),
            "secret" => Some(KeyKind::Secret),
            _ => None,
        }
    }
}

/// A stored API key (without the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Row id.
    pub id: i64,
    /// What it may do.
    pub kind: KeyKind,
    /// Its name; for write keys, the name of the source its events are recorded under.
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
}

/// What happened to one appended message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Appended {
    /// Stored now.
    New,
    /// Its messageId was already stored; nothing changed.
    Duplicate,
}

/// A record of one `cairn import` run.
#[derive(Debug, Clone, Serialize)]
pub struct ImportRun {
    /// accounts, contacts, subscriptions or events.
    pub kind: String,
    /// The file imported.
    pub file: String,
    /// The source system its ids belong to.
    pub source: String,
    /// Start time, ms since epoch.
    pub started_at: i64,
    /// End time, ms since epoch.
    pub finished_at: i64,
    /// Data rows read.
    pub rows_total: u64,
    /// Rows applied (including unchanged ones).
    pub rows_ok: u64,
    /// Rows rejected.
    pub rows_rejected: u64,
    /// The first rejected rows, as JSON.
    pub rejects: serde_json::Value,
}

/// A behaviour event (track, page or screen) as the engine reads it, with its identity
/// resolved now (through the `event_identity` view): an event that matched nobody when
/// it arrived has its contact and account as soon as they are known.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEvent {
    /// Its place in the log.
    pub seq: i64,
    /// When it happened (skew-corrected).
    pub ts: jiff::Timestamp,
    /// `track`, `page` or `screen`.
    pub kind: String,
    /// A track call's event name; for a page or screen call, its name when one was given.
    pub name: Option<String>,
    /// The contact it belongs to, if known.
    pub contact_id: Option<i64>,
    /// The account it belongs to (its groupId's, else its contact's), if known.
    pub account_id: Option<i64>,
    /// The source it was recorded under (the write key's name, or `import`).
    pub source: String,
    /// Its properties as JSON text, byte for byte as sent.
    pub properties: Option<String>,
}

/// An account as the engine reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountRecord {
    /// Internal id.
    pub id: i64,
    /// Company name.
    pub name: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Head count.
    pub employees: Option<i64>,
    /// Plan name.
    pub plan: Option<String>,
    /// Licensed seats.
    pub seats: Option<i64>,
    /// The owning CSM's email.
    pub owner_email: Option<String>,
    /// Customer since.
    pub start_date: Option<jiff::civil::Date>,
    /// Renewal date, when the CRM gives one.
    pub renewal_date: Option<jiff::civil::Date>,
    /// ARR in cents: the sum of the subscription lines active on the day asked about
    /// (both ends inclusive); `None` when no line is active that day.
    pub arr_cents: Option<i64>,
    /// Its CRM id (the smallest, should it have several).
    pub crm_id: Option<String>,
    /// Its product id (Segment `groupId`; the smallest, should it have several).
    pub product_id: Option<String>,
    /// Custom traits (empty when the stored text is not a JSON object).
    pub traits: serde_json::Map<String, serde_json::Value>,
}

/// A contact as the engine reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactRecord {
    /// Internal id.
    pub id: i64,
    /// Its account, if linked.
    pub account_id: Option<i64>,
    /// Email (lowercase).
    pub email: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Role (lowercase).
    pub role: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Custom traits (empty when the stored text is not a JSON object).
    pub traits: serde_json::Map<String, serde_json::Value>,
}

/// A transition to store (segment_entered, milestone_missed, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewTransition {
    /// A deterministic dedup key computed by the caller: a transition whose key is
    /// already stored is not stored again.
    pub key: String,
    /// When it happened.
    pub at: jiff::Timestamp,
    /// `account` or `contact`.
    pub subject_kind: String,
    /// The account's or contact's internal id.
    pub subject_id: i64,
    /// segment_entered, milestone_missed, …
    pub kind: String,
    /// Details as JSON text.
    pub detail: String,
    /// Derived while replaying the log after a definition change, not live.
    pub backfill: bool,
}

/// A stored transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredTransition {
    /// Its place in the transitions log (grows with every new transition).
    pub seq: i64,
    /// When it happened.
    pub at: jiff::Timestamp,
    /// `account` or `contact`.
    pub subject_kind: String,
    /// The account's or contact's internal id.
    pub subject_id: i64,
    /// segment_entered, milestone_missed, …
    pub kind: String,
    /// Details (the stored text as a JSON string when it is not JSON).
    pub detail: serde_json::Value,
    /// Derived while replaying the log after a definition change, not live.
    pub backfill: bool,
}

/// One health override as set by a CSM. The rows are the audit trail: an override is
/// changed or cleared by adding a row, never by editing one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthOverrideRecord {
    /// Row id (grows with every override set).
    pub id: i64,
    /// The account.
    pub account_id: i64,
    /// The score set (0–100); `None` when this row cleared the override.
    pub score: Option<f64>,
    /// Why, in the CSM's words.
    pub reason: String,
    /// Who set it.
    pub set_by: String,
    /// When it was set.
    pub set_at: jiff::Timestamp,
    /// When it stops counting, if ever.
    pub expires_at: Option<jiff::Timestamp>,
}
