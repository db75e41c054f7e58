//! What the REST API and the CLI show of the engine's state: plain serialisable views.

use std::collections::BTreeMap;

use cairn_engine::health::HealthScore;
use cairn_engine::{Engine, HealthOverride, MilestoneStatus, SubjectRef};
use cairn_rules::{Subject, Value};
use cairn_workspace::Band;
use jiff::Timestamp;
use serde::Serialize;

use crate::days_between;

/// One line of the accounts list.
#[derive(Debug, Clone, Serialize)]
pub struct AccountSummary {
    /// cairn's id.
    pub id: u64,
    /// The account's name.
    pub name: Option<String>,
    /// Its plan.
    pub plan: Option<String>,
    /// ARR today, in currency units.
    pub arr: Option<f64>,
    /// Its journey stage.
    pub stage: Option<String>,
    /// The computed overall health score.
    pub health: Option<f64>,
    /// Its band.
    pub band: Option<Band>,
    /// A CSM's override in force, shown beside the computed score.
    pub health_override: Option<f64>,
    /// The account segments it is in.
    pub segments: Vec<String>,
}

/// A milestone of an account.
#[derive(Debug, Clone, Serialize)]
pub struct MilestoneView {
    /// Its id.
    pub id: String,
    /// The stage it belongs to.
    pub stage: String,
    /// pending, achieved or missed.
    pub status: &'static str,
    /// When it was achieved or missed.
    pub at: Option<Timestamp>,
    /// Whether it is the value milestone (Time to Value).
    pub value: bool,
}

/// Health with its explanation and trend.
#[derive(Debug, Clone, Serialize)]
pub struct HealthView {
    /// The computed score, pillars, measures and the measure dragging it down.
    #[serde(flatten)]
    pub score: HealthScore,
    /// Change of the overall score over 7 days.
    pub trend_7d: Option<f64>,
    /// Change over 30 days.
    pub trend_30d: Option<f64>,
}

/// A contact of an account.
#[derive(Debug, Clone, Serialize)]
pub struct ContactView {
    /// cairn's id.
    pub id: u64,
    /// Traits.
    pub traits: BTreeMap<String, serde_json::Value>,
    /// The contact segments it is in.
    pub segments: Vec<String>,
}

/// Everything about one account (the account 360).
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    /// cairn's id.
    pub id: u64,
    /// Traits, built-in and custom.
    pub traits: BTreeMap<String, serde_json::Value>,
    /// The account segments it is in.
    pub segments: Vec<String>,
    /// Its journey stage.
    pub stage: Option<String>,
    /// Since when.
    pub stage_since: Option<Timestamp>,
    /// Milestones with status and dates.
    pub milestones: Vec<MilestoneView>,
    /// Days from the anchor to the value milestone.
    pub time_to_value_days: Option<f64>,
    /// Health by pillar with explanation and trend.
    pub health: Option<HealthView>,
    /// A CSM's override in force, beside the computed score.
    pub health_override: Option<HealthOverride>,
    /// Its contacts.
    pub contacts: Vec<ContactView>,
}

/// A segment and its size.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentSummary {
    /// Its id.
    pub id: String,
    /// Its label.
    pub name: Option<String>,
    /// account or contact.
    pub of: &'static str,
    /// Its rule.
    pub rule: String,
    /// Members now.
    pub members: usize,
}

/// A rule value as JSON.
pub fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Number(x) => serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, Into::into),
        Value::String(s) => s.to_string().into(),
        Value::Date(d) => d.to_string().into(),
        Value::Timestamp(t) => t.to_string().into(),
        Value::Duration(secs) => format!("{secs}s").into(),
        Value::List(items) => items.iter().map(json_value).collect::<Vec<_>>().into(),
    }
}

fn text(traits: &BTreeMap<String, Value>, k: &str) -> Option<String> {
    match traits.get(k) {
        Some(Value::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// The accounts list.
pub fn accounts(engine: &Engine) -> Vec<AccountSummary> {
    engine
        .accounts()
        .map(|(id, a)| AccountSummary {
            id,
            name: text(&a.traits, "name"),
            plan: text(&a.traits, "plan"),
            arr: match a.traits.get("arr") {
                Some(Value::Number(x)) => Some(*x),
                _ => None,
            },
            stage: engine.stage_of(id).map(str::to_string),
            health: a.health.as_ref().and_then(|h| h.score),
            band: a.health.as_ref().and_then(|h| h.band),
            health_override: engine.health_override(id).map(|o| o.score),
            segments: a.segments.iter().cloned().collect(),
        })
        .collect()
}

/// One account in full, if the engine knows it.
pub fn account(engine: &Engine, id: u64) -> Option<AccountView> {
    let a = engine.account(id)?;
    let ws = engine.workspace();
    let milestones = ws
        .journey()
        .map(|j| {
            j.stages
                .iter()
                .flat_map(|s| s.milestones.iter().map(move |m| (s, m)))
                .map(|(s, m)| {
                    let (status, at) =
                        match a.milestones.get(m.id.as_str()).copied().unwrap_or(MilestoneStatus::Pending) {
                            MilestoneStatus::Pending => ("pending", None),
                            MilestoneStatus::Achieved(t) => ("achieved", Some(t)),
                            MilestoneStatus::Missed(t) => ("missed", Some(t)),
                        };
                    MilestoneView {
                        id: m.id.as_str().to_string(),
                        stage: s.id.as_str().to_string(),
                        status,
                        at,
                        value: m.value,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let contacts = a
        .contacts
        .iter()
        .filter_map(|c| {
            let state = engine.contact(*c)?;
            Some(ContactView {
                id: *c,
                traits: state.traits.iter().map(|(k, v)| (k.clone(), json_value(v))).collect(),
                segments: state.segments.iter().cloned().collect(),
            })
        })
        .collect();
    Some(AccountView {
        id,
        traits: a.traits.iter().map(|(k, v)| (k.clone(), json_value(v))).collect(),
        segments: a.segments.iter().cloned().collect(),
        stage: engine.stage_of(id).map(str::to_string),
        stage_since: a.stage_since,
        milestones,
        time_to_value_days: engine.time_to_value(id).map(days_between),
        health: a.health.clone().map(|score| HealthView {
            score,
            trend_7d: engine.health_trend(id, 7),
            trend_30d: engine.health_trend(id, 30),
        }),
        health_override: engine.health_override(id).cloned(),
        contacts,
    })
}

/// Every segment with its member count.
pub fn segments(engine: &Engine) -> Vec<SegmentSummary> {
    let sizes = engine.segment_sizes();
    engine
        .workspace()
        .segments()
        .iter()
        .map(|s| SegmentSummary {
            id: s.id.as_str().to_string(),
            name: s.name.clone(),
            of: match s.subject {
                Subject::Account => "account",
                Subject::Contact => "contact",
            },
            rule: s.rule.source().to_string(),
            members: sizes.get(s.id.as_str()).copied().unwrap_or(0),
        })
        .collect()
}

/// A segment's members as `{kind, id}`, or `None` for an unknown segment.
pub fn segment_members(engine: &Engine, segment: &str) -> Option<Vec<SubjectRef>> {
    engine.workspace().segments().iter().any(|s| s.id.as_str() == segment).then(|| engine.segment_members(segment))
}
