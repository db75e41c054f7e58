//! The CRM's exports of what changed: CSV in the shape `cairn import` reads (accounts,
//! contacts, subscriptions), so the company reaches cairn the way a customer's CRM does.

use crate::{Company, CrmUpdate};

/// CSV files of one CRM update; an empty string when there is nothing of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrmFiles {
    /// `cairn import accounts`.
    pub accounts: String,
    /// `cairn import contacts`.
    pub contacts: String,
    /// `cairn import subscriptions`.
    pub subscriptions: String,
}

/// The header of the accounts file.
pub const ACCOUNTS_HEADER: &str = "external_id,name,industry,employees,plan,seats,owner_email,start_date,renewal_date,domains,product_id,region,csm_pool,nps_last";
/// The header of the contacts file.
pub const CONTACTS_HEADER: &str = "external_id,account_external_id,email,name,role,timezone,product_id";
/// The header of the subscriptions file.
pub const SUBSCRIPTIONS_HEADER: &str = "id,account_id,start_date,end_date,arr,seats,product";

impl Company {
    /// The CSV of an update (names and addresses never hold a comma or a quote).
    pub fn crm_files(&self, update: &CrmUpdate) -> CrmFiles {
        let mut files = CrmFiles::default();
        let mut accounts = update.accounts.clone();
        accounts.sort_unstable();
        accounts.dedup();
        if !accounts.is_empty() {
            files.accounts = format!("{ACCOUNTS_HEADER}\n");
            for a in accounts.iter().filter_map(|i| self.accounts.get(*i)) {
                let f = &a.firm;
                files.accounts.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                    f.external_id,
                    f.name,
                    f.industry,
                    f.employees,
                    a.plan.as_str(),
                    a.seats,
                    f.owner_email,
                    f.start_date,
                    a.term_end,
                    f.domain,
                    f.product_id,
                    f.region,
                    f.csm_pool,
                    a.nps_last.map(|n| n.to_string()).unwrap_or_default(),
                ));
            }
        }
        if !update.contacts.is_empty() {
            files.contacts = format!("{CONTACTS_HEADER}\n");
            for a in update.contacts.iter().filter_map(|i| self.accounts.get(*i)) {
                for c in &a.firm.contacts {
                    files.contacts.push_str(&format!(
                        "{},{},{},{},{},{},{}\n",
                        c.external_id,
                        a.firm.external_id,
                        c.email,
                        c.name,
                        c.role.as_str(),
                        c.time_zone,
                        c.product_id
                    ));
                }
            }
        }
        if !update.lines.is_empty() {
            files.subscriptions = format!("{SUBSCRIPTIONS_HEADER}\n");
            for l in &update.lines {
                let Some(a) = self.accounts.get(l.account) else { continue };
                files.subscriptions.push_str(&format!(
                    "{},{},{},{},{}.00,{},core\n",
                    l.id, a.firm.external_id, l.start, l.end, l.arr, l.seats
                ));
            }
        }
        files
    }
}
