//! cairn-sim: a simulated SaaS company, deterministic by seed, for the living demo and
//! the benchmarks' load.
//!
//! [`Company::new`] draws the customers ([`firmographics`]): accounts with an industry,
//! size, plan, seats and ARR, contracts that renew yearly, people with roles and time
//! zones. [`Company::day`] then makes one day happen: customers starting that day arrive
//! in the CRM, people use the product (the events the example workspace's segments,
//! journey and health read), open support tickets, attend webinars; a term that ended
//! yesterday is renewed, expanded, contracted or lost by behaviour, following a
//! [hidden truth](truth) the company keeps and cairn must discover. What cairn's programs
//! send comes back through [`Company::respond`] (opens, clicks, survey answers, and the
//! behaviour they change) and CSMs' tasks through [`Company::work_task`].
//!
//! Pure: no I/O, no clock (every day is an argument), no thread. The same [`Config`] and
//! the same calls give the same company, event for event; different seeds give different
//! ones. Whoever drives it (the `cairn demo` command) writes the events through cairn's
//! ingestion and the CRM files through its importers.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

mod company;
pub mod crm;
pub mod firmographics;
pub mod reactions;
pub mod rng;
pub mod truth;
pub mod w1;

use jiff::Timestamp;
use jiff::civil::Date;

pub use company::Company;
pub use crm::CrmFiles;
pub use reactions::{
    Act, Change, Channel, Delivery, Playbook, ProgramEffect, Reaction, ReactionKind, Survey, TaskSeen,
};
pub use truth::{Effect, Outcome, RenewalOutcome, Truth};

/// What company to simulate, and over which days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Customers, old and new.
    pub accounts: usize,
    /// The seed: the same seed, the same company.
    pub seed: u64,
    /// The first day simulated live (programs acting).
    pub first_day: Date,
    /// Days simulated live.
    pub days: u32,
    /// Days of product use before `first_day`, loaded as history (what the engine replays
    /// before it goes live), so segments and health have a past on the first live day.
    pub history_days: u32,
}

impl Config {
    /// The first day of the history.
    pub fn history_start(&self) -> Date {
        company::plus_days(self.first_day, -i64::from(self.history_days))
    }

    /// The day after the last simulated day.
    pub fn end(&self) -> Date {
        company::plus_days(self.first_day, i64::from(self.days))
    }
}

/// A product event, as the product's tracking library would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductEvent {
    /// When.
    pub at: Timestamp,
    /// The person's product id (`userId`).
    pub user_id: String,
    /// The account's product id (`groupId`).
    pub group_id: String,
    /// The event's name.
    pub name: &'static str,
    /// A unique, deterministic message id.
    pub message_id: String,
}

/// A subscription line written to the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its id (`S-A0001-2`: the account's second term).
    pub id: String,
    /// The account, by index.
    pub account: usize,
    /// First day.
    pub start: Date,
    /// Last day (inclusive).
    pub end: Date,
    /// ARR in dollars.
    pub arr: u64,
    /// Seats.
    pub seats: u32,
}

/// What changed in the CRM on a day: accounts to write again (by index), accounts whose
/// people to write, new subscription lines. [`Company::crm_files`] makes the CSV.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrmUpdate {
    /// Accounts (new, renewed, with a new NPS answer).
    pub accounts: Vec<usize>,
    /// Accounts whose contacts are new.
    pub contacts: Vec<usize>,
    /// New lines.
    pub lines: Vec<Line>,
}

impl CrmUpdate {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.contacts.is_empty() && self.lines.is_empty()
    }
}

/// One day of the company.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Day {
    /// The product events, in account order (not time order).
    pub events: Vec<ProductEvent>,
    /// What changed in the CRM, as of the start of the day.
    pub crm: CrmUpdate,
}

impl Company {
    /// The hidden truth, with every term end so far.
    pub fn truth(&self) -> Truth {
        Truth {
            behaviours: truth::behaviours(),
            renewals: self.renewals.clone(),
            program_effects: self.playbook.effects.clone(),
            winning_variants: self.playbook.variant_open_lift.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
