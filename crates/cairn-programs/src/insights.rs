//! The insights a message quotes, from the engine's state (the workspace's `insights:`):
//! the account's named metrics, its benchmarks among its peers, and leaderboards of its
//! own people.
//!
//! A benchmark compares one account with every peer, so the peer groups are gathered once
//! ([`PeerGroups::gather`]: each account's value and group, each group's values sorted)
//! and shared by every message of a pass; an account's benchmark is then a binary search
//! in its group. Metrics and leaderboards read only the account and its own contacts, per
//! message. Only what the template names is computed.

use std::collections::{BTreeMap, HashMap};

use cairn_content::{Benchmark, Distribution, ParsedTemplate, RenderContext, UserCount, leaderboard, size_band};
use cairn_engine::{AccountState, Engine, SubjectRef};
use cairn_rules::{Rule, Value};
use cairn_runtime::views::json_value;
use cairn_workspace::{BenchmarkDef, Peers};

/// Every benchmark's peer groups, as of one state of the engine.
#[derive(Debug, Default)]
pub struct PeerGroups {
    /// By benchmark id.
    benchmarks: BTreeMap<String, Groups>,
}

/// One benchmark's groups.
#[derive(Debug, Default)]
struct Groups {
    /// Each account with a value and a group: its group and value.
    members: HashMap<u64, (String, f64)>,
    /// Each group's values.
    groups: HashMap<String, Distribution>,
    /// The fewest peers shown.
    min_peers: usize,
}

impl PeerGroups {
    /// Evaluates every benchmark's value for every account and sorts each peer group:
    /// one pass over the accounts per benchmark. An account whose value is not a number
    /// (no data) is nobody's peer and has no benchmark.
    pub fn gather(engine: &Engine) -> PeerGroups {
        let benchmarks = engine.workspace().insights().benchmarks.iter();
        PeerGroups { benchmarks: benchmarks.map(|b| (b.id.to_string(), groups(engine, b))).collect() }
    }

    /// The benchmark `id` of `account` against the other accounts of its group; `None`
    /// (withheld) when it has no value or group, or fewer peers than the benchmark's
    /// `min_peers`.
    pub fn benchmark(&self, id: &str, account: u64) -> Option<Benchmark> {
        let b = self.benchmarks.get(id)?;
        let (group, value) = b.members.get(&account)?;
        b.groups.get(group)?.benchmark_of_member(*value).filter(|bench| bench.peers >= b.min_peers)
    }
}

fn groups(engine: &Engine, def: &BenchmarkDef) -> Groups {
    let mut values: HashMap<String, Vec<f64>> = HashMap::new();
    let mut members = HashMap::new();
    for (id, state) in engine.accounts() {
        let Some(group) = group_of(state, &def.peers) else { continue };
        let Some(value) = number(engine, SubjectRef::Account(id), &def.value) else { continue };
        values.entry(group.clone()).or_default().push(value);
        members.insert(id, (group, value));
    }
    let groups = values.into_iter().map(|(group, values)| (group, Distribution::new(values))).collect();
    Groups { members, groups, min_peers: def.min_peers }
}

/// The peer group an account is in: `None` when it has none (outside the segment, no
/// value of the trait, no seats).
fn group_of(state: &AccountState, peers: &Peers) -> Option<String> {
    match peers {
        Peers::All => Some(String::new()),
        Peers::Segment(segment) => state.segments.contains(segment.as_str()).then(String::new),
        Peers::Trait(name) => match state.traits.get(name)? {
            Value::Null => None,
            Value::String(s) => Some(s.to_string()),
            other => Some(json_value(other).to_string()),
        },
        Peers::SizeBand => match state.traits.get("seats")? {
            Value::Number(seats) if *seats >= 0.0 => Some(size_band(*seats as u64).label().to_string()),
            _ => None,
        },
    }
}

/// A rule's value for a subject when it is a finite number.
fn number(engine: &Engine, subject: SubjectRef, rule: &Rule) -> Option<f64> {
    match engine.evaluate_rule(subject, rule, None)? {
        Value::Number(n) if n.is_finite() => Some(n),
        _ => None,
    }
}

/// Adds to `ctx` the metrics, benchmarks and leaderboards of `account` that `template`
/// names. `peers` gives the peer groups (called only when a benchmark is named, so a
/// pass whose messages quote none never gathers them).
pub(crate) fn add_insights(
    mut ctx: RenderContext,
    engine: &Engine,
    account: Option<u64>,
    template: &ParsedTemplate,
    peers: impl FnOnce() -> std::sync::Arc<PeerGroups>,
) -> RenderContext {
    let Some(account) = account else { return ctx };
    let insights = engine.workspace().insights();
    if template.mentions("metrics") {
        for m in insights.metrics.iter().filter(|m| template.mentions(m.id.as_str())) {
            if let Some(value) = engine.evaluate_rule(SubjectRef::Account(account), &m.value, None) {
                ctx = ctx.metric(m.id.as_str(), metric_json(&value));
            }
        }
    }
    if !template.mentions("insights") {
        return ctx;
    }
    let named: Vec<&BenchmarkDef> = insights.benchmarks.iter().filter(|b| template.mentions(b.id.as_str())).collect();
    if !named.is_empty() {
        let peers = peers();
        for b in named {
            if let Some(bench) = peers.benchmark(b.id.as_str(), account) {
                ctx = ctx.benchmark(b.id.as_str(), bench);
            }
        }
    }
    let contacts =
        engine.account(account).map(|a| a.contacts.iter().copied().collect::<Vec<u64>>()).unwrap_or_default();
    for l in insights.leaderboards.iter().filter(|l| template.mentions(l.id.as_str())) {
        let users: Vec<UserCount> = contacts
            .iter()
            .filter_map(|&c| {
                let count = number(engine, SubjectRef::Contact(c), &l.value)?.round();
                let state = engine.contact(c)?;
                let text = |key: &str| match state.traits.get(key) {
                    Some(Value::String(s)) => Some(s.to_string()),
                    _ => None,
                };
                let email = text("email").unwrap_or_default();
                let name = text("name").unwrap_or_else(|| email.clone());
                (count >= 1.0).then_some(UserCount { name, email, count: count as u64 })
            })
            .collect();
        ctx = ctx.leaderboard(l.id.as_str(), leaderboard(&users, l.top));
    }
    ctx
}

/// A metric's value as templates see it: whole numbers as integers (`12`, not `12.0`).
fn metric_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => serde_json::json!(*n as i64),
        other => json_value(other),
    }
}
