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

pub(crate) use cairn_core::html::escape_html as escape;

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
{engine}</body></html>"#,
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
        engine = engine_section(&state).await,
    )))
}

/// Health by band, the accounts most at risk and the segments, when a workspace runs.
async fn engine_section(state: &AppState) -> String {
    let Some(runtime) = &state.runtime else {
        return "<h2>Health</h2><p>No workspace is loaded: start with <code>cairn serve --workspace DIR</code> \
(or <code>--demo</code>) to see segments, journey and health.</p>"
            .to_string();
    };
    let (accounts, segments) = runtime
        .read(|live| (cairn_runtime::views::accounts(&live.engine), cairn_runtime::views::segments(&live.engine)))
        .await;
    let band_count = |b: cairn_workspace::Band| accounts.iter().filter(|a| a.band == Some(b)).count();
    let unscored = accounts.iter().filter(|a| a.band.is_none()).count();
    let mut at_risk: Vec<&cairn_runtime::views::AccountSummary> =
        accounts.iter().filter(|a| a.band == Some(cairn_workspace::Band::Red)).collect();
    at_risk.sort_by(|a, b| a.health.partial_cmp(&b.health).unwrap_or(std::cmp::Ordering::Equal).then(a.id.cmp(&b.id)));
    let risk_rows: String = at_risk
        .iter()
        .take(15)
        .map(|a| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                a.id,
                escape(a.name.as_deref().unwrap_or("")),
                escape(a.stage.as_deref().unwrap_or("")),
                a.health.map_or_else(String::new, |h| format!("{h:.0}")),
                a.health_override.map_or_else(String::new, |h| format!("{h:.0}")),
            )
        })
        .collect();
    let segment_rows: String = segments
        .iter()
        .map(|s| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td><code>{}</code></td></tr>",
                escape(&s.id),
                s.of,
                s.members,
                escape(&s.rule)
            )
        })
        .collect();
    format!(
        r#"<h2>Health</h2>
<div class=tiles><div class=tile><b>{green}</b>green</div><div class=tile><b>{yellow}</b>yellow</div><div class=tile><b>{red}</b>red</div><div class=tile><b>{unscored}</b>no score yet</div></div>
<h2>Accounts at risk</h2><table><tr><th>id</th><th>account</th><th>stage</th><th>health</th><th>override</th></tr>{risk_rows}</table>
<h2>Segments</h2><table><tr><th>segment</th><th>of</th><th>members</th><th>rule</th></tr>{segment_rows}</table>"#,
        green = band_count(cairn_workspace::Band::Green),
        yellow = band_count(cairn_workspace::Band::Yellow),
        red = band_count(cairn_workspace::Band::Red),
    )
}
