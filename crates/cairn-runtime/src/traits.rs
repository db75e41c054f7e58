//! Stored accounts and contacts as the rule values the engine reads.

use std::collections::BTreeMap;

use cairn_rules::Value;
use cairn_store::{AccountRecord, ContactRecord};
use cairn_workspace::{TraitType, Workspace};

/// An account's traits: the built-in ones (`arr` in currency units from the subscription
/// lines active today) and the custom ones typed as the workspace declares them.
pub fn account_traits(a: &AccountRecord, ws: &Workspace) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(k.to_string(), v);
        }
    };
    put("name", a.name.as_deref().map(text));
    put("industry", a.industry.as_deref().map(text));
    put("employees", a.employees.map(|n| Value::Number(n as f64)));
    put("plan", a.plan.as_deref().map(text));
    put("seats", a.seats.map(|n| Value::Number(n as f64)));
    put("owner_email", a.owner_email.as_deref().map(text));
    put("start_date", a.start_date.map(Value::Date));
    put("renewal_date", a.renewal_date.map(Value::Date));
    put("arr", a.arr_cents.map(|c| Value::Number(c as f64 / 100.0)));
    for (name, ty) in &ws.traits().account {
        if let Some(v) = a.traits.get(name).and_then(|v| typed(v, *ty)) {
            out.insert(name.clone(), v);
        }
    }
    out
}

/// A contact's traits, built-in and custom.
pub fn contact_traits(c: &ContactRecord, ws: &Workspace) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (k, v) in [("email", &c.email), ("name", &c.name), ("role", &c.role), ("timezone", &c.timezone)] {
        if let Some(v) = v {
            out.insert(k.to_string(), text(v));
        }
    }
    for (name, ty) in &ws.traits().contact {
        if let Some(v) = c.traits.get(name).and_then(|v| typed(v, *ty)) {
            out.insert(name.clone(), v);
        }
    }
    out
}

fn text(s: &str) -> Value {
    Value::String(s.into())
}

/// A JSON trait as the declared type; a value that is not of that type is unknown (Null
/// is left out), never a guess.
fn typed(v: &serde_json::Value, ty: TraitType) -> Option<Value> {
    match (ty, v) {
        (TraitType::Number, serde_json::Value::Number(n)) => n.as_f64().map(Value::Number),
        (TraitType::Number, serde_json::Value::String(s)) => {
            s.trim().parse::<f64>().ok().filter(|x| x.is_finite()).map(Value::Number)
        }
        (TraitType::String, serde_json::Value::String(s)) => Some(text(s)),
        (TraitType::Boolean, serde_json::Value::Bool(b)) => Some(Value::Bool(*b)),
        (TraitType::Date, serde_json::Value::String(s)) => s.parse::<jiff::civil::Date>().ok().map(Value::Date),
        (TraitType::Timestamp, serde_json::Value::String(s)) => s.parse::<jiff::Timestamp>().ok().map(Value::Timestamp),
        _ => None,
    }
}
