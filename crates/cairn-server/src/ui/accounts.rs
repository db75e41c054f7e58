//! `/accounts`: search, filters (segment, stage, band, owner, renewal window), sorting and
//! pages, over the engine's in-memory state: one pass over the accounts filters them into
//! borrowed sort keys (no allocation per account for ASCII names), the keys are sorted,
//! and only the asked page's rows are built and rendered, so a page of 10,000 accounts
//! costs a scan and a sort, not 10,000 rows.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use cairn_engine::Engine;
use cairn_engine::state::AccountState;
use cairn_rules::Value;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::{Chrome, UiError, days_until, given, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::error::ApiError;

/// Rows per page.
pub(crate) const PAGE_SIZE: usize = 50;

/// One account as lists show it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AccountRow {
    pub id: u64,
    pub name: String,
    pub plan: Option<String>,
    pub industry: Option<String>,
    /// ARR in currency units.
    pub arr: Option<f64>,
    pub stage: Option<String>,
    /// The score shown: the override in force, else the computed one.
    pub health: Option<f64>,
    /// `red`, `yellow`, `green` or `none`.
    pub band: &'static str,
    pub overridden: bool,
    pub owner: Option<String>,
    pub renewal_date: Option<Date>,
    /// Days from today to the renewal date.
    pub renews_in_days: Option<i64>,
    pub segments: Vec<String>,
}

impl AccountRow {
    /// The health score as shown (whole points), or a dash.
    pub fn health_text(&self) -> String {
        self.health.map_or_else(|| "–".into(), |h| format!("{h:.0}"))
    }

    /// ARR shortened (12k), or a dash.
    pub fn arr_text(&self) -> String {
        self.arr.map_or_else(|| "–".into(), super::chart::money)
    }

    /// Renewal as "in N days" / "N days ago", or a dash.
    pub fn renewal_text(&self) -> String {
        match self.renews_in_days {
            None => "–".into(),
            Some(0) => "today".into(),
            Some(d) if d > 0 => format!("in {d} days"),
            Some(d) => format!("{} days ago", -d),
        }
    }
}

fn str_trait<'a>(a: &'a AccountState, k: &str) -> Option<&'a str> {
    match a.traits.get(k) {
        Some(Value::String(s)) => Some(s.as_ref()),
        _ => None,
    }
}

fn text(a: &AccountState, k: &str) -> Option<String> {
    str_trait(a, k).map(str::to_string)
}

fn renewal_date(a: &AccountState) -> Option<Date> {
    match a.traits.get("renewal_date") {
        Some(Value::Date(d)) => Some(*d),
        _ => None,
    }
}

/// The score shown: the override in force, else the computed one.
fn shown_health(engine: &Engine, id: u64, a: &AccountState) -> Option<f64> {
    engine.health_override(id).map(|o| o.score).or_else(|| a.health.as_ref().and_then(|h| h.score))
}

/// Whether `text` lowercased contains `lowercase_needle`, without allocating for ASCII text.
fn contains_lowercase(text: &str, lowercase_needle: &str) -> bool {
    if text.is_ascii() && lowercase_needle.is_ascii() {
        let (t, n) = (text.as_bytes(), lowercase_needle.as_bytes());
        n.is_empty() || t.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        text.to_lowercase().contains(lowercase_needle)
    }
}

/// An account that matched the filters, with what sorting needs; its row is built only
/// when it lands on the page asked for.
struct Listed<'e> {
    id: u64,
    a: &'e AccountState,
    name: Option<&'e str>,
    renews_in_days: Option<i64>,
    health: Option<f64>,
}

/// The band's name for CSS and filters.
pub(crate) fn band_name(b: Option<cairn_workspace::Band>) -> &'static str {
    match b {
        Some(cairn_workspace::Band::Red) => "red",
        Some(cairn_workspace::Band::Yellow) => "yellow",
        Some(cairn_workspace::Band::Green) => "green",
        None => "none",
    }
}

/// An account's row as of `today`.
pub(crate) fn row(engine: &Engine, id: u64, a: &AccountState, today: Date) -> AccountRow {
    let computed = a.health.as_ref();
    let renewal_date = renewal_date(a);
    AccountRow {
        id,
        name: text(a, "name").unwrap_or_else(|| format!("account {id}")),
        plan: text(a, "plan"),
        industry: text(a, "industry"),
        arr: match a.traits.get("arr") {
            Some(Value::Number(x)) => Some(*x),
            _ => None,
        },
        stage: engine.stage_of(id).map(str::to_string),
        health: shown_health(engine, id, a),
        band: band_name(computed.and_then(|h| h.band)),
        overridden: engine.health_override(id).is_some(),
        owner: text(a, "owner_email"),
        renewal_date,
        renews_in_days: renewal_date.map(|d| days_until(today, d)),
        segments: a.segments.iter().cloned().collect(),
    }
}

/// The list's query string.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct AccountFilters {
    pub q: Option<String>,
    pub segment: Option<String>,
    pub stage: Option<String>,
    pub band: Option<String>,
    pub owner: Option<String>,
    /// Renewing within this many days.
    pub renewal: Option<String>,
    /// `health`, `-health`, `arr`, `-arr`, `renewal`, `name`.
    pub sort: Option<String>,
    pub page: Option<String>,
}

/// One option of a filter's `<select>`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The accounts page's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AccountsView {
    /// Accounts matching the filters.
    pub total: usize,
    /// Accounts in all.
    pub all: usize,
    pub page: usize,
    pub pages: usize,
    pub rows: Vec<AccountRow>,
    pub segments: Vec<Choice>,
    pub stages: Vec<Choice>,
    pub bands: Vec<Choice>,
    pub owners: Vec<Choice>,
    pub renewals: Vec<Choice>,
    pub sorts: Vec<Choice>,
    pub q: String,
    /// The query string without `page`, for the pager's links.
    #[serde(skip)]
    pub base_query: String,
}

impl AccountsView {
    /// The link to page `n` with the same filters.
    pub fn page_link(&self, n: usize) -> String {
        if self.base_query.is_empty() {
            format!("/accounts?page={n}")
        } else {
            format!("/accounts?{}&page={n}", self.base_query)
        }
    }
}

fn choices(values: impl IntoIterator<Item = (String, String)>, selected: Option<&str>) -> Vec<Choice> {
    let mut out = vec![Choice { value: String::new(), label: "any".into(), selected: selected.is_none() }];
    out.extend(values.into_iter().map(|(value, label)| {
        let selected = selected == Some(value.as_str());
        Choice { value, label, selected }
    }));
    out
}

fn encode(pairs: &[(&str, Option<&str>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", cairn_channels::encode_query_value(v))))
        .collect::<Vec<_>>()
        .join("&")
}

/// Filters, sorts and pages the accounts; `BadRequest` for a page or window that is not a
/// number.
pub(crate) fn accounts_view(engine: &Engine, f: &AccountFilters, today: Date) -> Result<AccountsView, ApiError> {
    let q = given(&f.q).map(str::to_lowercase);
    let segment = given(&f.segment);
    let stage = given(&f.stage);
    let band = given(&f.band);
    let owner = given(&f.owner);
    let window = given(&f.renewal)
        .map(|w| w.parse::<i64>().map_err(|_| ApiError::BadRequest(format!("renewal `{w}` is not a number of days"))))
        .transpose()?;
    let page = given(&f.page)
        .map(|p| p.parse::<usize>().map_err(|_| ApiError::BadRequest(format!("page `{p}` is not a page number"))))
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let mut owners = std::collections::BTreeSet::new();
    let mut all = 0;
    let mut matching: Vec<Listed<'_>> = Vec::new();
    for (id, a) in engine.accounts() {
        all += 1;
        let owned_by = str_trait(a, "owner_email");
        if let Some(o) = owned_by {
            owners.insert(o);
        }
        if segment.is_some_and(|s| !a.segments.contains(s))
            || band.is_some_and(|b| band_name(a.health.as_ref().and_then(|h| h.band)) != b)
            || stage.is_some_and(|s| engine.stage_of(id) != Some(s))
            || owner.is_some_and(|o| owned_by != Some(o))
        {
            continue;
        }
        let renews_in_days = renewal_date(a).map(|d| days_until(today, d));
        if let Some(w) = window
            && !renews_in_days.is_some_and(|d| (0..=w).contains(&d))
        {
            continue;
        }
        let name = str_trait(a, "name");
        if let Some(q) = &q
            && !(match name {
                Some(n) => contains_lowercase(n, q),
                None => format!("account {id}").contains(q.as_str()),
            } || id.to_string() == *q)
        {
            continue;
        }
        matching.push(Listed { id, a, name, renews_in_days, health: shown_health(engine, id, a) });
    }
    let sort = given(&f.sort).unwrap_or("health");
    let by_health = |r: &Listed| r.health.unwrap_or(f64::INFINITY);
    let arr = |r: &Listed| match r.a.traits.get("arr") {
        Some(Value::Number(x)) => *x,
        _ => 0.0,
    };
    match sort {
        "-health" => matching.sort_by(|a, b| by_health(b).total_cmp(&by_health(a)).then(a.id.cmp(&b.id))),
        "arr" => matching.sort_by(|a, b| arr(a).total_cmp(&arr(b)).then(a.id.cmp(&b.id))),
        "-arr" => matching.sort_by(|a, b| arr(b).total_cmp(&arr(a)).then(a.id.cmp(&b.id))),
        "renewal" => matching.sort_by_key(|r| (r.renews_in_days.map_or((1, 0), |d| (0, d)), r.id)),
        "name" => matching
            .sort_by_cached_key(|r| (r.name.map_or_else(|| format!("account {}", r.id), str::to_lowercase), r.id)),
        _ => matching.sort_by(|a, b| by_health(a).total_cmp(&by_health(b)).then(a.id.cmp(&b.id))),
    }
    let total = matching.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = page.min(pages);
    let rows: Vec<AccountRow> =
        matching.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).map(|r| row(engine, r.id, r.a, today)).collect();
    let owners: Vec<String> = owners.into_iter().map(str::to_string).collect();
    let ws = engine.workspace();
    let segments = ws
        .segments()
        .iter()
        .filter(|s| matches!(s.subject, cairn_rules::Subject::Account))
        .map(|s| (s.id.as_str().to_string(), s.name.clone().unwrap_or_else(|| s.id.as_str().to_string())));
    let stages = ws
        .journey()
        .map(|j| j.stages.iter().map(|s| (s.id.as_str().to_string(), s.id.as_str().to_string())).collect::<Vec<_>>())
        .unwrap_or_default();
    let renewal_text = given(&f.renewal);
    Ok(AccountsView {
        total,
        all,
        page,
        pages,
        rows,
        segments: choices(segments, segment),
        stages: choices(stages, stage),
        bands: choices(["red", "yellow", "green", "none"].map(|b| (b.to_string(), b.to_string())), band),
        owners: choices(owners.into_iter().map(|o| (o.clone(), o)), owner),
        renewals: choices(
            ["30", "90", "180", "365"].map(|d| (d.to_string(), format!("within {d} days"))),
            renewal_text,
        ),
        sorts: [
            ("health", "lowest health first"),
            ("-health", "highest health first"),
            ("-arr", "highest ARR first"),
            ("arr", "lowest ARR first"),
            ("renewal", "soonest renewal first"),
            ("name", "name"),
        ]
        .iter()
        .map(|(v, l)| Choice { value: (*v).into(), label: (*l).into(), selected: *v == sort })
        .collect(),
        q: f.q.clone().unwrap_or_default(),
        base_query: encode(&[
            ("q", given(&f.q)),
            ("segment", segment),
            ("stage", stage),
            ("band", band),
            ("owner", owner),
            ("renewal", renewal_text),
            ("sort", given(&f.sort)),
        ]),
    })
}

/// The day the engine's clock is on, in the workspace's time zone.
pub(crate) fn today(engine: &Engine) -> Date {
    engine.now().to_zoned(engine.workspace().time_zone().clone()).date()
}

/// The accounts page's data (the engine must run).
pub(crate) async fn data(state: &AppState, f: &AccountFilters) -> Result<AccountsView, ApiError> {
    let rt = crate::api::runtime(state)?;
    rt.read(|live| accounts_view(&live.engine, f, today(&live.engine))).await
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct Page {
    chrome: Chrome,
    d: AccountsView,
}

/// `GET /accounts`.
pub(crate) async fn page(
    State(state): State<AppState>,
    user: SignedIn,
    Query(f): Query<AccountFilters>,
) -> Result<Html<String>, UiError> {
    let d = data(&state, &f).await?;
    render(&Page { chrome: Chrome::new(&user, "/accounts"), d })
}
