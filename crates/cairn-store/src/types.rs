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
