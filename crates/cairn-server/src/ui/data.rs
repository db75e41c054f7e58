//! `/data`: data readiness, the doctor report (`cairn doctor`) as a page.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use cairn_core::doctor::DoctorReport;
use serde::Serialize;

use super::{Chrome, UiError, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::cached_reports as cached;
use crate::error::ApiError;
use crate::report_cache::{Freshness, Wait};

/// The data page's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DataView {
    /// The store's backend (`sqlite` or `postgres`).
    pub backend: String,
    /// None while it is computed the first time.
    #[serde(flatten)]
    pub report: Option<DoctorReport>,
}

/// One line of the readiness table.
pub(crate) struct Check<'a> {
    pub label: &'static str,
    pub count: u64,
    pub examples: &'a [String],
}

impl DataView {
    /// The checks in the order the page lists them.
    pub fn checks(&self) -> Vec<Check<'_>> {
        let Some(r) = &self.report else { return vec![] };
        let none: &[String] = &[];
        vec![
            Check { label: "events matched to nobody", count: r.unmatched.events_matched_to_nobody, examples: none },
            Check { label: "events without a contact", count: r.unmatched.events_without_contact, examples: none },
            Check { label: "events without an account", count: r.unmatched.events_without_account, examples: none },
            Check {
                label: "accounts without a CRM id",
                count: r.accounts_without_crm_id.count,
                examples: &r.accounts_without_crm_id.examples,
            },
            Check {
                label: "accounts without ARR today",
                count: r.accounts_without_arr.count,
                examples: &r.accounts_without_arr.examples,
            },
            Check {
                label: "accounts without a renewal date",
                count: r.accounts_without_renewal_date.count,
                examples: &r.accounts_without_renewal_date.examples,
            },
            Check {
                label: "email addresses on several contacts",
                count: r.duplicate_emails.count,
                examples: &r.duplicate_emails.examples,
            },
            Check {
                label: "contacts without an account",
                count: r.contacts_without_account.count,
                examples: &r.contacts_without_account.examples,
            },
        ]
    }
}

/// The doctor report as of the clock's day, from the report cache (its counts read every
/// event): a page waits as `Wait::PAGE` does, the API (`Wait::Current`) until it is there.
pub(crate) async fn data(state: &AppState, wait: Wait) -> Result<(DataView, Freshness), ApiError> {
    let today = state.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut fresh = Freshness::default();
    let report = fresh.take(cached::doctor(state, today, wait).await?).map(|r| (*r).clone());
    Ok((DataView { backend: state.store.backend().to_string(), report }, fresh))
}

#[derive(Template)]
#[template(path = "data.html")]
struct Page {
    chrome: Chrome,
    d: DataView,
    fresh: Freshness,
}

/// `GET /data`.
pub(crate) async fn page(State(state): State<AppState>, user: SignedIn) -> Result<Html<String>, UiError> {
    let (d, fresh) = data(&state, Wait::PAGE).await?;
    render(&Page { chrome: Chrome::new(&user, "/data"), d, fresh })
}
