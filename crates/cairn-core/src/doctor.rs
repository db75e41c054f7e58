//! The data-readiness report (`cairn doctor`): what is missing or unmatched in the data.

use serde::{Deserialize, Serialize};

/// Totals of what the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Accounts.
    pub accounts: u64,
    /// Contacts.
    pub contacts: u64,
    /// Subscription (contract) lines.
    pub subscription_lines: u64,
    /// Events in the log.
    pub events: u64,
}

/// Events and contacts that could not be tied to anyone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmatched {
    /// Events whose user is unknown (no contact resolves from userId/anonymousId).
    pub events_without_contact: u64,
    /// Events tied to no account (neither by groupId nor through their contact).
    pub events_without_account: u64,
    /// Events tied to neither a contact nor an account.
    pub events_matched_to_nobody: u64,
    /// Contacts not linked to any account.
    pub contacts_without_account: u64,
}

/// A finding with a count and a few examples (external ids or emails).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// How many.
    pub count: u64,
    /// Up to ten examples.
    pub examples: Vec<String>,
}

/// The newest event seen from one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFreshness {
    /// The source's name (write key name, or `import`).
    pub source: String,
    /// Events from it.
    pub events: u64,
    /// Timestamp of its newest event.
    pub newest_event_at: String,
    /// When cairn received that newest event.
    pub newest_received_at: String,
}

/// The whole data-readiness report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// The day the report is computed for (workspace date).
    pub as_of: String,
    /// What the store holds.
    pub totals: Totals,
    /// What could not be tied to anyone.
    pub unmatched: Unmatched,
    /// Accounts with no CRM external id.
    pub accounts_without_crm_id: Finding,
    /// Accounts with no active subscription line on `as_of` (so no ARR).
    pub accounts_without_arr: Finding,
    /// Accounts with neither an active line (whose end is the renewal) nor a `renewal_date`.
    pub accounts_without_renewal_date: Finding,
    /// Email addresses held by more than one contact.
    pub duplicate_emails: Finding,
    /// Contacts with no account (examples).
    pub contacts_without_account: Finding,
    /// Per source, the newest event.
    pub sources: Vec<SourceFreshness>,
}

impl DoctorReport {
    /// True when nothing needs attention.
    pub fn is_clean(&self) -> bool {
        self.unmatched == Unmatched::default()
            && self.accounts_without_crm_id.count == 0
            && self.accounts_without_arr.count == 0
            && self.accounts_without_renewal_date.count == 0
            && self.duplicate_emails.count == 0
    }
}
