//! What a message is rendered with, from the engine's state: the account, the contact,
//! milestones, health, the program and step, and the signed links.

use std::collections::BTreeMap;

use cairn_channels::{Link, LinkSigner, LinkSubject, Survey, absolute_url};
use cairn_content::{AccountData, ContactData, HealthData, MilestoneData, RenderContext};
use cairn_engine::{Engine, MilestoneStatus};
use cairn_rules::Value;
use cairn_runtime::views::json_value;
use jiff::Timestamp;

use crate::plan::band_name;

/// The built-in account traits shown as fixed fields rather than under `traits`.
const ACCOUNT_FIELDS: [&str; 4] = ["name", "plan", "seats", "arr"];
/// The built-in contact traits shown as fixed fields.
const CONTACT_FIELDS: [&str; 4] = ["email", "name", "role", "timezone"];

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.to_string()),
        Value::Null => None,
        other => Some(json_value(other).to_string()),
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// The account as templates see it (an empty one when the contact has none).
pub fn account_data(engine: &Engine, account: Option<u64>) -> AccountData {
    let Some((id, state)) = account.and_then(|id| Some((id, engine.account(id)?))) else {
        return AccountData::default();
    };
    let ws = engine.workspace();
    let traits = state
        .traits
        .iter()
        .filter(|(k, v)| !ACCOUNT_FIELDS.contains(&k.as_str()) && !matches!(v, Value::Null))
        .map(|(k, v)| (k.clone(), json_value(v)))
        .collect();
    let health = state.health.as_ref().and_then(|h| {
        Some(HealthData {
            score: h.score?,
            band: h.band.map(band_name).unwrap_or_default().to_string(),
            pillars: h.pillars.iter().filter_map(|p| Some((p.id.clone(), p.score?))).collect(),
        })
    });
    let milestones = ws
        .journey()
        .map(|j| {
            j.milestones()
                .map(|m| {
                    let (status, at) = match state.milestones.get(m.id.as_str()) {
                        Some(MilestoneStatus::Achieved(t)) => ("achieved", Some(*t)),
                        Some(MilestoneStatus::Missed(t)) => ("missed", Some(*t)),
                        _ => ("pending", None),
                    };
                    (m.id.to_string(), MilestoneData { status: status.to_string(), at })
                })
                .collect()
        })
        .unwrap_or_default();
    AccountData {
        id: id.to_string(),
        name: text(state.traits.get("name")),
        plan: text(state.traits.get("plan")),
        seats: number(state.traits.get("seats")).map(|n| n as i64),
        arr_cents: number(state.traits.get("arr")).map(|n| (n * 100.0).round() as i64),
        traits,
        stage: engine.stage_of(id).map(str::to_string),
        segments: state.segments.iter().cloned().collect(),
        health,
        milestones,
    }
}

/// The contact as templates see it.
pub fn contact_data(engine: &Engine, contact: u64) -> ContactData {
    let Some(state) = engine.contact(contact) else {
        return ContactData { id: contact.to_string(), ..ContactData::default() };
    };
    let traits = state
        .traits
        .iter()
        .filter(|(k, v)| !CONTACT_FIELDS.contains(&k.as_str()) && !matches!(v, Value::Null))
        .map(|(k, v)| (k.clone(), json_value(v)))
        .collect();
    ContactData {
        id: contact.to_string(),
        email: text(state.traits.get("email")).unwrap_or_default(),
        name: text(state.traits.get("name")),
        first_name: None,
        role: text(state.traits.get("role")),
        timezone: text(state.traits.get("timezone")),
        traits,
    }
}

/// The signed links every message may carry: unsubscribe, the survey pages, and one-click
/// answers for every score (`nps_0` … `nps_10`, `csat_1` … `csat_5`) — those `wanted`
/// (signing twenty links for a message that shows one is most of a send's work).
pub fn links(
    signer: &LinkSigner,
    public_url: &str,
    subject: &LinkSubject,
    wanted: impl Fn(&str) -> bool,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut add = |name: String, link: &Link| {
        if wanted(&name) {
            out.insert(name, absolute_url(public_url, &signer.sign(link, subject)));
        }
    };
    add("unsubscribe_url".to_string(), &Link::Unsubscribe);
    add("preferences_url".to_string(), &Link::Unsubscribe);
    for (survey, name) in [(Survey::Nps, "nps"), (Survey::Csat, "csat")] {
        for score in survey.scores() {
            add(format!("{name}_{score}"), &Link::Survey { survey, score });
        }
        add(format!("{name}_survey_url"), &Link::SurveyPage { survey });
    }
    out
}

/// The links a template can read: those it names, or all when it indexes `links`
/// with an expression (`links[key]`).
pub fn template_links(template: &cairn_content::ParsedTemplate) -> impl Fn(&str) -> bool + '_ {
    move |name| template.mentions("links[") || template.mentions(name)
}

/// A context for one message.
#[allow(clippy::too_many_arguments)]
pub fn render_context(
    engine: &Engine,
    account: Option<u64>,
    contact: u64,
    program: (&str, &str),
    step: (&str, u32),
    variant: Option<&str>,
    links: BTreeMap<String, String>,
    now: Timestamp,
) -> RenderContext {
    let mut ctx = RenderContext::new(account_data(engine, account), contact_data(engine, contact), now)
        .sent_by(program.0, program.1, step.0, step.1);
    if let Some(v) = variant {
        ctx = ctx.variant(v);
    }
    for (name, url) in links {
        ctx = ctx.link(name, url);
    }
    ctx
}
