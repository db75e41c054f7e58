//! Server-rendered pages. No JavaScript build, no assets from the internet.

use axum::extract::State;
use axum::response::Html;
use jiff::tz::TimeZone;

use crate::AppState;
use crate::error::ApiError;

/// Liveness probe.
pub async fn healthz() -> &'static str {
    "ok"
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The home page: what data cairn holds and how ready it is.
pub async fn home(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    let today = state.clock.now().to_zoned(TimeZone::UTC).date();
    let r = state.store.doctor(today).await?;
    let finding = |label: &str, f: &cairn_core::doctor::Finding| {
        format!(
            "<tr><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
            escape(label),
            f.count,
            escape(&f.examples.join(", "))
        )
    };
    let sources: String = r
        .sources
        .iter()
        .map(|s| {
            format!(
                "<tr><td>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.source),
                s.events,
                escape(&s.newest_event_at),
                escape(&s.newest_received_at)
            )
        })
        .collect();
    Ok(Html(format!(
        r#"<!doctype html><html lang=en><head><meta charset=utf-8><title>cairn</title>
<style>body{{font:15px system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}}table{{border-collapse:collapse;margin:1rem 0}}td,th{{border-bottom:1px solid #ddd;padding:.3rem .8rem;text-align:left}}.n{{text-align:right}}.tiles{{display:flex;gap:1rem}}.tile{{border:1px solid #ddd;border-radius:6px;padding:.8rem 1.2rem}}.tile b{{display:block;font-size:1.6rem}}</style>
</head><body><h1>cairn</h1><p>Data as of {as_of} ({backend}).</p>
<div class=tiles><div class=tile><b>{accounts}</b>accounts</div><div class=tile><b>{contacts}</b>contacts</div><div class=tile><b>{subs}</b>subscription lines</div><div class=tile><b>{events}</b>events</div></div>
<h2>Data readiness</h2><table><tr><th>check</th><th>count</th><th>examples</th></tr>
<tr><td>events matched to nobody</td><td class=n>{nobody}</td><td></td></tr>
<tr><td>events without a contact</td><td class=n>{no_contact}</td><td></td></tr>
<tr><td>events without an account</td><td class=n>{no_account}</td><td></td></tr>
{crm}{arr}{renewal}{dups}{orphans}</table>
<h2>Sources</h2><table><tr><th>source</th><th>events</th><th>newest event</th><th>received</th></tr>{sources}</table>
</body></html>"#,
        as_of = r.as_of,
        backend = state.store.backend(),
        accounts = r.totals.accounts,
        contacts = r.totals.contacts,
        subs = r.totals.subscription_lines,
        events = r.totals.events,
        nobody = r.unmatched.events_matched_to_nobody,
        no_contact = r.unmatched.events_without_contact,
        no_account = r.unmatched.events_without_account,
        crm = finding("accounts without a CRM id", &r.accounts_without_crm_id),
        arr = finding("accounts without ARR today", &r.accounts_without_arr),
        renewal = finding("accounts without a renewal date", &r.accounts_without_renewal_date),
        dups = finding("email addresses on several contacts", &r.duplicate_emails),
        orphans = finding("contacts without an account", &r.contacts_without_account),
    )))
}
