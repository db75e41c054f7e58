//! Insights (`insights:`): named account metrics, benchmarks against peers and
//! leaderboards of an account's people — their shape, their peers, and their value rules
//! compiled as numbers over the account (metrics, benchmarks) or the contact
//! (leaderboards).

use std::collections::BTreeMap;

use cairn_rules::{AggregateTable, Schema, Subject, Type};

use super::*;
use crate::insights::{BenchmarkDef, Insights, LeaderboardDef, Metric, Peers};
use crate::yaml::Node;

const INSIGHTS_KEYS: &[&str] = &["metrics", "benchmarks", "leaderboards"];
const METRIC_KEYS: &[&str] = &["id", "name", "value"];
const BENCHMARK_KEYS: &[&str] = &["id", "name", "value", "peers", "min_peers"];
const LEADERBOARD_KEYS: &[&str] = &["id", "name", "value", "top"];
const PEER_KINDS: &[&str] = &["all", "size_band", "segment", "trait"];
const PEERS_HELP: &str =
    "write `peers: all`, `peers: size_band`, `peers: { segment: <account segment> }` or `peers: { trait: plan }`";
/// Without `min_peers`: a benchmark needs five other accounts.
pub(crate) const DEFAULT_MIN_PEERS: usize = 5;
/// Without `top`: five people.
pub(crate) const DEFAULT_TOP: usize = 5;

/// One definition as read: its id, where, label and value rule; `extra` is what its kind
/// adds (peers and minimum, or top).
pub(super) struct InsightDecl<T> {
    id: Option<Id>,
    at: At,
    name: Option<String>,
    value: Option<RuleSource>,
    extra: Option<T>,
}

/// `insights:` as read.
#[derive(Default)]
pub(super) struct InsightsDecl {
    metrics: Vec<InsightDecl<()>>,
    benchmarks: Vec<InsightDecl<(Peers, usize)>>,
    leaderboards: Vec<InsightDecl<usize>>,
}

impl InsightsDecl {
    /// Adds the ids declared (even of definitions with a problem, so templates reading
    /// them report nothing more) to what templates may read.
    pub(super) fn declare(&self, schema: &mut cairn_content::ContextSchema) {
        fn ids<T>(decls: &[InsightDecl<T>]) -> impl Iterator<Item = String> + '_ {
            decls.iter().filter_map(|d| Some(d.id.as_ref()?.to_string()))
        }
        schema.metrics.extend(ids(&self.metrics));
        schema.benchmarks.extend(ids(&self.benchmarks));
        schema.leaderboards.extend(ids(&self.leaderboards));
    }
}

/// The names peers may refer to.
pub(super) struct PeerNames<'a> {
    /// Segment ids and whom they hold.
    pub(super) segments: &'a BTreeMap<String, Subject>,
    /// Every account trait, built-in and custom.
    pub(super) account_traits: &'a BTreeMap<String, Type>,
}

impl Checker<'_> {
    pub(super) fn insights(&mut self, file: usize, node: &Node, names: &PeerNames<'_>) -> InsightsDecl {
        let mut out = InsightsDecl::default();
        if node.value == Value::Null {
            return out;
        }
        let Some(fields) = self.fields(file, node, "`insights`", INSIGHTS_KEYS) else { return out };
        let mut seen = BTreeMap::new();
        if let Some(list) = fields.get("metrics") {
            for item in self.list(file, list, "metrics") {
                let decl = self.insight(file, item, "metric", METRIC_KEYS, &mut seen, |_, _, _| Some(()));
                out.metrics.extend(decl);
            }
        }
        let mut seen = BTreeMap::new();
        if let Some(list) = fields.get("benchmarks") {
            for item in self.list(file, list, "benchmarks") {
                let decl = self.insight(file, item, "benchmark", BENCHMARK_KEYS, &mut seen, |cx, fields, what| {
                    let peers_node = cx.require(fields, "peers", what, Some(PEERS_HELP));
                    let peers = cx.peers(file, peers_node?, names);
                    let min_peers = match fields.get("min_peers") {
                        Some(n) => cx.whole(file, n, "min_peers", 1, 10_000).map(|n| n as usize),
                        None => Some(DEFAULT_MIN_PEERS),
                    };
                    Some((peers?, min_peers?))
                });
                out.benchmarks.extend(decl);
            }
        }
        let mut seen = BTreeMap::new();
        if let Some(list) = fields.get("leaderboards") {
            for item in self.list(file, list, "leaderboards") {
                let decl =
                    self.insight(file, item, "leaderboard", LEADERBOARD_KEYS, &mut seen, |cx, fields, _| match fields
                        .get("top")
                    {
                        Some(n) => cx.whole(file, n, "top", 1, 100).map(|n| n as usize),
                        None => Some(DEFAULT_TOP),
                    });
                out.leaderboards.extend(decl);
            }
        }
        out
    }

    /// One metric, benchmark or leaderboard: `id`, `name`, `value`, and what `extra` reads.
    fn insight<'n, T>(
        &mut self,
        file: usize,
        node: &'n Node,
        kind: &str,
        keys: &[&'static str],
        seen: &mut BTreeMap<String, At>,
        extra: impl FnOnce(&mut Self, &Fields<'n>, &str) -> Option<T>,
    ) -> Option<InsightDecl<T>> {
        let fields = self.fields(file, node, &format!("a {kind}"), keys)?;
        let id_node = self.require(&fields, "id", &format!("a {kind}"), None);
        let id = self.id(file, id_node);
        let at = id_node.map_or(fields.at, |n| At { file, offset: n.offset });
        let what = id.as_ref().map_or(format!("a {kind}"), |id| format!("{kind} `{id}`"));
        let value_help = match kind {
            "leaderboard" => "add a number per person, e.g. `value: active_days(30d)`",
            _ => "add a number per account, e.g. `value: count('report_created', 30d)`",
        };
        let value = self.require(&fields, "value", &what, Some(value_help));
        let value = self.rule(file, value, "value");
        let extra = extra(self, &fields, &what);
        let unique = format!("{kind} ids are unique across the workspace's files");
        let id = id.filter(|id| self.claim(seen, kind, id, at, &unique));
        Some(InsightDecl { id, at, name: self.label(file, fields.get("name"), "name"), value, extra })
    }

    /// `all`, `size_band`, `{ segment: id }` (an account segment) or `{ trait: name }` (an
    /// account trait).
    fn peers(&mut self, file: usize, node: &Node, names: &PeerNames<'_>) -> Option<Peers> {
        let at = At { file, offset: node.offset };
        match &node.value {
            Value::Str(s) if s == "all" => Some(Peers::All),
            Value::Str(s) if s == "size_band" => Some(Peers::SizeBand),
            Value::Str(s) => {
                let help = match suggestion(s, PEER_KINDS) {
                    Some(near) => format!("{near} {PEERS_HELP}"),
                    None => PEERS_HELP.to_string(),
                };
                self.error(at, format!("unknown peers `{s}`"), Some(help));
                None
            }
            Value::Map(entries) if entries.len() == 1 => {
                let fields = self.fields(file, node, "`peers`", &["segment", "trait"])?;
                if let Some(segment) = fields.get("segment") {
                    let id = self.id(file, Some(segment))?;
                    let segment_at = At { file, offset: segment.offset };
                    match names.segments.get(id.as_str()) {
                        Some(Subject::Account) => Some(Peers::Segment(id)),
                        Some(Subject::Contact) => {
                            let help = "peers are accounts: name a segment of accounts".to_string();
                            self.error(segment_at, format!("segment `{id}` holds contacts"), Some(help));
                            None
                        }
                        None => {
                            let help =
                                suggestion(id.as_str(), &names.segments.keys().map(String::as_str).collect::<Vec<_>>());
                            self.error(segment_at, format!("unknown segment `{id}`"), help);
                            None
                        }
                    }
                } else {
                    let node = fields.get("trait")?;
                    let name = self.text(file, node, "trait")?;
                    if names.account_traits.contains_key(&name) {
                        return Some(Peers::Trait(name));
                    }
                    let known: Vec<&str> = names.account_traits.keys().map(String::as_str).collect();
                    let help =
                        suggestion(&name, &known).or_else(|| Some(format!("the account traits are {}", list(&known))));
                    self.error(At { file, offset: node.offset }, format!("unknown account trait `{name}`"), help);
                    None
                }
            }
            other => {
                self.error(at, format!("expected peers, found {}", other.kind()), Some(PEERS_HELP.to_string()));
                None
            }
        }
    }

    /// The checked insights; `None` when any definition has a problem (reported).
    pub(super) fn compile_insights(
        &mut self,
        decl: InsightsDecl,
        schema: &Schema,
        table: &mut AggregateTable,
    ) -> Option<Insights> {
        let mut out = Some(Insights::default());
        for d in decl.metrics {
            let metric = self
                .compile_insight(&d, Subject::Account, schema, table)
                .map(|(id, name, value, location)| Metric { id, name, value, location });
            match (metric, &mut out) {
                (Some(m), Some(insights)) => insights.metrics.push(m),
                _ => out = None,
            }
        }
        for d in decl.benchmarks {
            let benchmark =
                self.compile_insight(&d, Subject::Account, schema, table).and_then(|(id, name, value, location)| {
                    let (peers, min_peers) = d.extra?;
                    Some(BenchmarkDef { id, name, value, peers, min_peers, location })
                });
            match (benchmark, &mut out) {
                (Some(b), Some(insights)) => insights.benchmarks.push(b),
                _ => out = None,
            }
        }
        for d in decl.leaderboards {
            let leaderboard =
                self.compile_insight(&d, Subject::Contact, schema, table).and_then(|(id, name, value, location)| {
                    Some(LeaderboardDef { id, name, value, top: d.extra?, location })
                });
            match (leaderboard, &mut out) {
                (Some(l), Some(insights)) => insights.leaderboards.push(l),
                _ => out = None,
            }
        }
        out
    }

    /// A definition's id, label, value rule compiled as a number over `subject`, and
    /// location; `None` when any is missing or wrong.
    fn compile_insight<T>(
        &mut self,
        d: &InsightDecl<T>,
        subject: Subject,
        schema: &Schema,
        table: &mut AggregateTable,
    ) -> Option<(Id, Option<String>, Rule, Location)> {
        let rule = d.value.as_ref().and_then(|r| self.compile_rule(r, schema, subject, Type::Number, table));
        Some((d.id.clone()?, d.name.clone(), rule?, self.location(d.at)))
    }
}
