//! From YAML files to a checked [`Workspace`], collecting every problem on the way.
//!
//! Three passes: read every file's tree into declarations (shape, keys, ids, values),
//! compile every rule against a schema that knows all declared names, then order the
//! definitions by their references and report cycles.

use std::collections::{BTreeMap, BTreeSet};

use cairn_rules::{AggregateTable, Rule, RuleError, Schema, Subject, Type};
use jiff::SignedDuration;
use jiff::tz::TimeZone;

use crate::SourceFile;
use crate::diagnostic::{Diagnostic, Location};
use crate::folder::{MAX_TEMPLATE_BYTES, Refused, too_large};
use crate::model::{
    BUILTIN_ACCOUNT_TRAITS, BUILTIN_CONTACT_TRAITS, Curve, CurveBand, CustomTraits, Health, HealthBands, HealthModel,
    Id, Journey, Measure, Milestone, Pillar, Segment, Stage, TraitType, Workspace,
};
use crate::order::{Definition, evaluation_order};
use crate::programs::Guardrails;
use crate::suggest::did_you_mean;
use crate::yaml::{self, LineIndex, Node, Value};

/// The rule compiler: `cairn_rules::compile`, or a stand-in in tests.
pub(crate) type CompileFn = fn(&str, &Schema, Option<Type>, &mut AggregateTable) -> Result<Rule, Vec<RuleError>>;

const TOP_KEYS: &[&str] = &["workspace", "traits", "segments", "journey", "health", "programs", "templates", "pools"];
const WORKSPACE_KEYS: &[&str] = &["name", "time_zone", "frequency_caps", "quiet_hours", "on_cap"];
const TRAIT_SUBJECTS: &[&str] = &["account", "contact"];
const SEGMENT_KEYS: &[&str] = &["id", "name", "of", "where"];
const JOURNEY_KEYS: &[&str] = &["anchor", "stages"];
const STAGE_KEYS: &[&str] = &["id", "name", "from", "until", "milestones"];
const MILESTONE_KEYS: &[&str] = &["id", "name", "when", "within", "value"];
const HEALTH_KEYS: &[&str] = &["bands", "pillars", "models"];
const BANDS_KEYS: &[&str] = &["red", "green"];
const MODEL_KEYS: &[&str] = &["id", "name", "for", "pillars"];
const PILLAR_KEYS: &[&str] = &["name", "weight", "measures"];
const MEASURE_KEYS: &[&str] = &["id", "name", "value", "score", "weight"];
const SCORE_KEYS: &[&str] = &["red", "green", "bands"];
const BAND_KEYS: &[&str] = &["below", "score"];

mod content;
mod pools;
mod programs;

/// A position: which file, which byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    file: usize,
    offset: usize,
}

/// A rule's text and where its value starts, to map rule spans back to the file.
#[derive(Debug, Clone)]
struct RuleSource {
    text: String,
    at: At,
}

struct SegmentDecl {
    id: Option<Id>,
    at: At,
    name: Option<String>,
    subject: Subject,
    rule: Option<RuleSource>,
}

struct MilestoneDecl {
    id: Option<Id>,
    at: At,
    name: Option<String>,
    rule: Option<RuleSource>,
    within: Option<SignedDuration>,
    value: bool,
}

struct StageDecl {
    id: Option<Id>,
    at: At,
    name: Option<String>,
    entry: Option<RuleSource>,
    exit: Option<RuleSource>,
    milestones: Vec<MilestoneDecl>,
}

struct JourneyDecl {
    at: At,
    anchor: String,
    stages: Vec<StageDecl>,
}

struct MeasureDecl {
    id: Option<Id>,
    at: At,
    name: Option<String>,
    value: Option<RuleSource>,
    curve: Option<Curve>,
    weight: Option<f64>,
}

struct PillarDecl {
    id: Option<Id>,
    at: At,
    name: Option<String>,
    weight: Option<f64>,
    measures: Vec<MeasureDecl>,
}

struct ModelDecl {
    id: Option<Id>,
    at: At,
    name: Option<String>,
    condition: Option<RuleSource>,
    pillars: Vec<PillarDecl>,
}

struct HealthDecl {
    at: At,
    bands: HealthBands,
    default: ModelDecl,
    models: Vec<ModelDecl>,
}

struct FileText<'a> {
    name: &'a str,
    text: &'a str,
    lines: LineIndex,
}

/// The keys of one YAML mapping, read once: unknown and duplicate keys are reported when
/// it is built.
struct Fields<'n> {
    at: At,
    entries: Vec<(&'n str, usize, &'n Node)>,
    /// Allowed keys an unknown key was taken for (`wehre` → `where`): not reported missing.
    suggested: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _, _)| *k == key).map(|(_, _, v)| *v)
    }
}

struct Checker<'a> {
    files: Vec<FileText<'a>>,
    /// Files that are not definitions (template bodies): name → (text, path relative to
    /// the folder of the first definition file, for suggestions).
    assets: BTreeMap<String, (String, String)>,
    diagnostics: Vec<Diagnostic>,
    compile: CompileFn,
    /// Whether a definition file did not parse: then only the shape of the others is
    /// checked.
    parse_failed: bool,
    /// Files of the folder that were not read, and whether a template named one.
    refused: Vec<(Refused, bool)>,
}

/// Checks the files with `compile` as the rule compiler.
pub(crate) fn check_with(sources: &[SourceFile], compile: CompileFn) -> Result<Workspace, Vec<Diagnostic>> {
    check_folder(sources, &[], compile)
}

/// Checks the files with `compile` as the rule compiler; `refused` are the files of the
/// folder that were not read (a link out of it, too large), reported where a template
/// names them (or on their own when none does).
pub(crate) fn check_folder(
    sources: &[SourceFile],
    refused: &[Refused],
    compile: CompileFn,
) -> Result<Workspace, Vec<Diagnostic>> {
    let (definitions, other): (Vec<&SourceFile>, Vec<&SourceFile>) =
        sources.iter().partition(|s| crate::is_definition_file(&s.name));
    // A template body past the limit is refused as when the folder is read.
    let (other, oversized): (Vec<&SourceFile>, Vec<&SourceFile>) =
        other.into_iter().partition(|s| s.text.len() <= MAX_TEMPLATE_BYTES);
    let refused: Vec<Refused> = refused
        .iter()
        .cloned()
        .chain(oversized.into_iter().map(|s| {
            let (message, help) = too_large(false, s.text.len() as u64, MAX_TEMPLATE_BYTES);
            Refused { name: s.name.clone(), message, help }
        }))
        .collect();
    let folder = definitions.first().and_then(|d| std::path::Path::new(&d.name).parent()).map(|p| p.to_path_buf());
    let assets = other
        .iter()
        .map(|a| {
            let relative = folder
                .as_ref()
                .and_then(|f| std::path::Path::new(&a.name).strip_prefix(f).ok())
                .map_or(a.name.clone(), |p| p.to_string_lossy().to_string());
            (a.name.clone(), (a.text.clone(), relative))
        })
        .collect();
    let mut cx = Checker {
        files: definitions
            .iter()
            .map(|s| FileText { name: &s.name, text: &s.text, lines: LineIndex::new(&s.text) })
            .collect(),
        assets,
        diagnostics: Vec::new(),
        compile,
        parse_failed: false,
        refused: Vec::new(),
    };
    let mut trees = Vec::new();
    for (file, source) in definitions.iter().enumerate() {
        match yaml::parse(&source.text) {
            Ok(root) => trees.push((file, root)),
            Err(e) => {
                let message = if e.limit { e.message } else { format!("invalid YAML: {}", e.message) };
                cx.error(At { file, offset: e.offset }, message, e.help);
            }
        }
    }
    // A definition file that was not read is as one that does not parse; a template file
    // that was not read is reported where a template names it.
    for r in refused {
        if crate::is_definition_file(&r.name) {
            cx.diagnostics.push(Diagnostic::whole(r.name, r.message, Some(r.help)));
        } else {
            cx.refused.push((r, false));
        }
    }
    // A file that does not parse declares nothing: checking what refers to its
    // definitions (rules, programs, templates) would only report follow-on errors.
    let unparsed = std::mem::take(&mut cx.diagnostics);
    cx.parse_failed = !unparsed.is_empty();
    let workspace = cx.check_trees(&trees);
    let mut diagnostics = cx.diagnostics;
    for (r, named) in cx.refused {
        if !named {
            diagnostics.push(Diagnostic::whole(r.name, r.message, Some(r.help)));
        }
    }
    match workspace {
        Some(ws) if diagnostics.is_empty() && unparsed.is_empty() => Ok(ws),
        _ => {
            // Files in the order given, then by position; stable for problems at one spot.
            let rank: BTreeMap<&str, usize> = sources.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
            diagnostics.sort_by_key(|d| (rank.get(d.file.as_str()).copied().unwrap_or(usize::MAX), d.line, d.column));
            // Syntax errors first: they are what to fix first.
            Err(unparsed.into_iter().chain(diagnostics).collect())
        }
    }
}

impl<'a> Checker<'a> {
    // ---- positions and reporting -------------------------------------------------------

    fn location(&self, at: At) -> Location {
        let f = &self.files[at.file];
        let (line, column) = f.lines.position(f.text, at.offset);
        Location { file: f.name.to_string(), line, column }
    }

    fn error(&mut self, at: At, message: impl Into<String>, help: Option<String>) {
        let location = self.location(at);
        let f = &self.files[at.file];
        let mut d = Diagnostic::at(&location, message, help);
        d.source_line = Some(f.lines.line_text(f.text, location.line).to_string());
        self.diagnostics.push(d);
    }

    /// `file:line:col` of a position.
    fn place(&self, at: At) -> String {
        self.location(at).to_string()
    }

    fn raw(&self, file: usize, node: &Node) -> &'a str {
        let text = self.files[file].text;
        text.get(node.offset..node.offset + node.len).unwrap_or("").trim()
    }

    // ---- generic readers ---------------------------------------------------------------

    /// Reads a mapping, reporting unknown keys (with a suggestion), duplicate keys and
    /// keys that are not text. `what` names the mapping in messages ("a segment").
    fn fields<'n>(&mut self, file: usize, node: &'n Node, what: &str, allowed: &[&'static str]) -> Option<Fields<'n>> {
        let at = At { file, offset: node.offset };
        let Value::Map(entries) = &node.value else {
            self.error(at, format!("expected a mapping for {what}, found {}", node.value.kind()), None);
            return None;
        };
        let mut fields = Fields { at, entries: Vec::new(), suggested: Vec::new() };
        let mut first: BTreeMap<&str, At> = BTreeMap::new();
        for (key, value) in entries {
            let key_at = At { file, offset: key.offset };
            let Value::Str(name) = &key.value else {
                self.error(key_at, format!("keys must be text, found {}", key.value.kind()), None);
                continue;
            };
            if !allowed.contains(&name.as_str()) {
                let suggestion = did_you_mean(name, allowed.iter().copied());
                fields.suggested.extend(suggestion);
                let help = suggestion
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some(format!("expected one of {}", list(allowed))));
                self.error(key_at, format!("unknown key `{name}` in {what}"), help);
                continue;
            }
            if let Some(prev) = first.get(name.as_str()) {
                let help = Some(format!("the first `{name}` is at {}; keep one", self.place(*prev)));
                self.error(key_at, format!("duplicate key `{name}` in {what}"), help);
                continue;
            }
            first.insert(name, key_at);
            fields.entries.push((name, key.offset, value));
        }
        Some(fields)
    }

    fn require<'n>(&mut self, fields: &Fields<'n>, key: &str, what: &str, help: Option<&str>) -> Option<&'n Node> {
        let node = fields.get(key);
        if node.is_none() && !fields.suggested.contains(&key) {
            self.error(fields.at, format!("missing key `{key}` in {what}"), help.map(str::to_string));
        }
        node
    }

    /// A label: text (numbers and booleans are taken as written).
    fn label(&mut self, file: usize, node: Option<&Node>, key: &str) -> Option<String> {
        let node = node?;
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => Some(self.raw(file, node).to_string()),
            other => {
                self.error(
                    At { file, offset: node.offset },
                    format!("expected text for `{key}`, found {}", other.kind()),
                    None,
                );
                None
            }
        }
    }

    fn text(&mut self, file: usize, node: &Node, key: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            other => {
                self.error(
                    At { file, offset: node.offset },
                    format!("expected text for `{key}`, found {}", other.kind()),
                    None,
                );
                None
            }
        }
    }

    fn number(&mut self, file: usize, node: &Node, key: &str) -> Option<f64> {
        match &node.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(x) if x.is_finite() => Some(*x),
            other => {
                let found = match other {
                    Value::Str(s) => format!("`{s}`"),
                    other => other.kind().to_string(),
                };
                self.error(
                    At { file, offset: node.offset },
                    format!("expected a number for `{key}`, found {found}"),
                    None,
                );
                None
            }
        }
    }

    fn weight(&mut self, file: usize, node: Option<&Node>) -> Option<f64> {
        let node = node?;
        let w = self.number(file, node, "weight")?;
        if w <= 0.0 {
            let help = Some("weights are relative shares: use a positive number".to_string());
            self.error(
                At { file, offset: node.offset },
                format!("`weight` must be above 0, found {}", self.raw(file, node)),
                help,
            );
            return None;
        }
        Some(w)
    }

    fn list<'n>(&mut self, file: usize, node: &'n Node, key: &str) -> &'n [Node] {
        match &node.value {
            Value::Seq(items) => items,
            Value::Null => &[],
            other => {
                self.error(
                    At { file, offset: node.offset },
                    format!("expected a list for `{key}`, found {}", other.kind()),
                    None,
                );
                &[]
            }
        }
    }

    fn id(&mut self, file: usize, node: Option<&Node>) -> Option<Id> {
        let node = node?;
        let at = At { file, offset: node.offset };
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(_) => self.raw(file, node).to_string(),
            other => {
                self.error(at, format!("expected an id for `id`, found {}", other.kind()), None);
                return None;
            }
        };
        match Id::parse(&text) {
            Ok(id) => Some(id),
            Err(e) => {
                let help = format!("ids use lowercase letters, digits and `_` (at most 64), e.g. `{}`", slug(&text));
                self.error(at, e.to_string(), Some(help));
                None
            }
        }
    }

    fn rule(&mut self, file: usize, node: Option<&Node>, key: &str) -> Option<RuleSource> {
        let node = node?;
        let at = At { file, offset: node.offset };
        let text = match &node.value {
            Value::Str(s) => s.trim_end().to_string(),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => self.raw(file, node).to_string(),
            other => {
                let help = (matches!(other, Value::Map(_))).then(|| {
                    "a rule containing `: ` must be quoted: `\"...\"`, or written as a block after `|`".to_string()
                });
                self.error(at, format!("expected a rule for `{key}`, found {}", other.kind()), help);
                return None;
            }
        };
        if text.trim().is_empty() {
            self.error(at, format!("`{key}` is empty: expected a rule"), None);
            return None;
        }
        Some(RuleSource { text, at })
    }

    fn claim(&mut self, seen: &mut BTreeMap<String, At>, kind: &str, id: &Id, at: At, help: &str) -> bool {
        if let Some(first) = seen.get(id.as_str()) {
            let message = format!("{kind} `{id}` is already defined at {}", self.place(*first));
            self.error(at, message, Some(help.to_string()));
            return false;
        }
        seen.insert(id.as_str().to_string(), at);
        true
    }

    // ---- the workspace -----------------------------------------------------------------

    fn check_trees(&mut self, trees: &[(usize, Node)]) -> Option<Workspace> {
        let mut time_zone: Option<(TimeZone, String)> = None;
        let mut workspace_at: Option<At> = None;
        let mut journey_at: Option<At> = None;
        let mut health_at: Option<At> = None;
        let mut traits = CustomTraits::default();
        let mut trait_at: BTreeMap<(Subject, String), At> = BTreeMap::new();
        let mut segment_nodes: Vec<(usize, &Node)> = Vec::new();
        let mut journey_node: Option<(usize, &Node)> = None;
        let mut health_node: Option<(usize, &Node)> = None;
        let mut program_nodes: Vec<(usize, &Node)> = Vec::new();
        let mut template_nodes: Vec<(usize, &Node)> = Vec::new();
        let mut pool_nodes: Vec<(usize, &Node)> = Vec::new();
        let mut guardrails = Guardrails::default();

        for (file, root) in trees {
            let file = *file;
            if root.value == Value::Null {
                continue;
            }
            let what = "a workspace file";
            let Some(top) = self.fields(file, root, what, TOP_KEYS) else { continue };
            for (key, key_offset, node) in &top.entries {
                let key_at = At { file, offset: *key_offset };
                match *key {
                    "workspace" => {
                        if self.once(&mut workspace_at, key_at, "workspace") {
                            (time_zone, guardrails) = self.workspace_settings(file, node);
                        }
                    }
                    "traits" => self.traits(file, node, &mut traits, &mut trait_at),
                    "segments" => {
                        for item in self.list(file, node, "segments") {
                            segment_nodes.push((file, item));
                        }
                    }
                    "journey" => {
                        if self.once(&mut journey_at, key_at, "journey") {
                            journey_node = Some((file, node));
                        }
                    }
                    "health" => {
                        if self.once(&mut health_at, key_at, "health") {
                            health_node = Some((file, node));
                        }
                    }
                    "programs" => {
                        for item in self.list(file, node, "programs") {
                            program_nodes.push((file, item));
                        }
                    }
                    "pools" => pool_nodes.push((file, node)),
                    _ => template_nodes.push((file, node)),
                }
            }
        }

        let account_traits = all_traits(&BUILTIN_ACCOUNT_TRAITS, &traits.account);
        let contact_traits = all_traits(&BUILTIN_CONTACT_TRAITS, &traits.contact);

        let mut segment_ids = BTreeMap::new();
        let segments: Vec<SegmentDecl> =
            segment_nodes.iter().filter_map(|(file, node)| self.segment(*file, node, &mut segment_ids)).collect();
        let journey = journey_node.and_then(|(file, node)| self.journey(file, node, journey_at, &account_traits));
        let health = health_node.and_then(|(file, node)| self.health(file, node, health_at));

        let assets = std::mem::take(&mut self.assets);
        let mut template_ids = BTreeMap::new();
        let mut templates = Vec::new();
        for (file, node) in template_nodes {
            templates.extend(self.templates(file, node, &mut template_ids, &assets));
        }
        let mut pool_ids = BTreeMap::new();
        let mut pools = Vec::new();
        for (file, node) in pool_nodes {
            pools.extend(self.pools(file, node, &mut pool_ids));
        }
        if self.parse_failed {
            return None;
        }
        let known = programs::Known {
            segments: segments.iter().filter_map(|s| Some((s.id.clone()?.to_string(), s.subject))).collect(),
            milestones: journey
                .iter()
                .flat_map(|j| j.stages.iter().flat_map(|s| s.milestones.iter()))
                .filter_map(|m| Some(m.id.clone()?.to_string()))
                .collect(),
            stages: journey
                .iter()
                .flat_map(|j| j.stages.iter())
                .filter_map(|s| Some(s.id.clone()?.to_string()))
                .collect(),
            account_traits: &account_traits,
            contact_traits: &contact_traits,
            custom: &traits,
            templates: templates.iter().map(|t| (t.template.id.to_string(), t.template.channel)).collect(),
            pools: pool_ids.keys().cloned().collect(),
        };
        let mut program_ids = BTreeMap::new();
        let programs: Vec<_> = program_nodes
            .iter()
            .filter_map(|(file, node)| self.program(*file, node, &mut program_ids, &known))
            .collect();

        // Everything a rule may name.
        let schema = Schema {
            subject: Subject::Account,
            account_traits: account_traits.clone(),
            contact_traits: contact_traits.clone(),
            segments: segments.iter().filter_map(|s| Some((s.id.clone()?.as_str().to_string(), s.subject))).collect(),
            milestones: journey
                .iter()
                .flat_map(|j| j.stages.iter().flat_map(|s| s.milestones.iter()))
                .filter_map(|m| Some(m.id.clone()?.as_str().to_string()))
                .collect(),
            stages: journey
                .iter()
                .flat_map(|j| j.stages.iter())
                .filter_map(|s| Some(s.id.clone()?.to_string()))
                .collect(),
            pillars: health
                .iter()
                .flat_map(|h| std::iter::once(&h.default).chain(h.models.iter()))
                .flat_map(|m| m.pillars.iter())
                .filter_map(|p| Some(p.id.clone()?.to_string()))
                .collect(),
            program: None,
        };
        let mut table = AggregateTable::new();
        let mut graph = Graph::default();
        let segments = self.compile_segments(segments, &schema, &mut table, &mut graph);
        let journey = journey.map(|j| self.compile_journey(j, &schema, &mut table, &mut graph));
        let health = health.map(|h| self.compile_health(h, &schema, &mut table, &mut graph));
        let programs = self.compile_programs(programs, &schema, &mut table);
        let context_schema = content::context_schema(&traits, &schema.milestones, &schema.pillars);
        let parsed_templates = self.check_template_content(&templates, &context_schema, &assets);

        let order = match evaluation_order(&graph.dependencies) {
            Ok(order) => order,
            Err(cycles) => {
                for cycle in cycles {
                    let first = &cycle.0[0];
                    let next = cycle.0.get(1).unwrap_or(first);
                    let at = graph.edge_at.get(&(first.clone(), next.clone())).copied();
                    if let Some(at) = at {
                        let help = Some(
                            "a definition cannot depend on itself, directly or not: remove one of these references"
                                .to_string(),
                        );
                        self.error(at, format!("definitions depend on each other in a cycle: {cycle}"), help);
                    }
                }
                Vec::new()
            }
        };

        let (time_zone, time_zone_name) = time_zone.unwrap_or_else(|| (TimeZone::UTC, "UTC".to_string()));
        Some(Workspace {
            time_zone,
            time_zone_name,
            traits,
            segments: segments?,
            journey: match journey {
                None => None,
                Some(j) => Some(j?),
            },
            health: match health {
                None => None,
                Some(h) => Some(h?),
            },
            guardrails,
            templates: templates.into_iter().map(|t| t.template).collect(),
            parsed_templates,
            context_schema,
            pools,
            programs: programs?,
            aggregates: table,
            order,
        })
    }

    /// Marks a once-only top-level key as seen; reports a second one.
    fn once(&mut self, seen: &mut Option<At>, at: At, key: &str) -> bool {
        if let Some(first) = *seen {
            let help = Some(format!("a workspace has one `{key}` section; merge the two"));
            self.error(at, format!("`{key}` is already defined at {}", self.place(first)), help);
            return false;
        }
        *seen = Some(at);
        true
    }

    fn workspace_settings(&mut self, file: usize, node: &Node) -> (Option<(TimeZone, String)>, Guardrails) {
        if node.value == Value::Null {
            return (None, Guardrails::default());
        }
        let Some(fields) = self.fields(file, node, "`workspace`", WORKSPACE_KEYS) else {
            return (None, Guardrails::default());
        };
        self.label(file, fields.get("name"), "name");
        let guardrails = self.guardrails(file, &fields);
        (self.time_zone(file, &fields), guardrails)
    }

    fn time_zone(&mut self, file: usize, fields: &Fields<'_>) -> Option<(TimeZone, String)> {
        let tz_node = fields.get("time_zone")?;
        let name = self.text(file, tz_node, "time_zone")?;
        match TimeZone::get(&name) {
            Ok(tz) => Some((tz, name)),
            Err(_) => {
                let names: Vec<String> = jiff::tz::db().available().map(|n| n.as_str().to_string()).collect();
                let help = did_you_mean(&name, names.iter().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| {
                        Some("use an IANA time zone name such as `Europe/Berlin`, `America/New_York` or `UTC`".into())
                    });
                self.error(At { file, offset: tz_node.offset }, format!("unknown time zone `{name}`"), help);
                None
            }
        }
    }

    fn traits(
        &mut self,
        file: usize,
        node: &Node,
        traits: &mut CustomTraits,
        seen: &mut BTreeMap<(Subject, String), At>,
    ) {
        let Some(fields) = self.fields(file, node, "`traits`", TRAIT_SUBJECTS) else { return };
        for (subject_key, _, subject_node) in &fields.entries {
            let (subject, builtins) = match *subject_key {
                "account" => (Subject::Account, &BUILTIN_ACCOUNT_TRAITS[..]),
                _ => (Subject::Contact, &BUILTIN_CONTACT_TRAITS[..]),
            };
            if subject_node.value == Value::Null {
                continue;
            }
            let Value::Map(entries) = &subject_node.value else {
                let found = subject_node.value.kind();
                self.error(
                    At { file, offset: subject_node.offset },
                    format!("expected a mapping of trait names to types for `{subject_key}`, found {found}"),
                    None,
                );
                continue;
            };
            for (name_node, type_node) in entries {
                let at = At { file, offset: name_node.offset };
                let Some(id) = self.id(file, Some(name_node)) else { continue };
                let name = id.as_str().to_string();
                if let Some((_, ty)) = builtins.iter().find(|(n, _)| *n == name) {
                    let ty = TraitType::NAMES[*ty as usize];
                    let help = Some("custom traits need names of their own".to_string());
                    self.error(at, format!("`{name}` is a built-in {subject_key} trait ({ty})"), help);
                    continue;
                }
                if let Some(first) = seen.get(&(subject, name.clone())) {
                    let message = format!("{subject_key} trait `{name}` is already declared at {}", self.place(*first));
                    self.error(at, message, None);
                    continue;
                }
                seen.insert((subject, name.clone()), at);
                let type_at = At { file, offset: type_node.offset };
                let Some(type_name) = self.text(file, type_node, &name) else { continue };
                let Some(ty) = TraitType::parse(&type_name) else {
                    let help = did_you_mean(&type_name, TraitType::NAMES.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some(format!("trait types are {}", list(&TraitType::NAMES))));
                    self.error(type_at, format!("unknown trait type `{type_name}`"), help);
                    continue;
                };
                match subject {
                    Subject::Account => traits.account.insert(name, ty),
                    Subject::Contact => traits.contact.insert(name, ty),
                };
            }
        }
    }

    fn segment(&mut self, file: usize, node: &Node, seen: &mut BTreeMap<String, At>) -> Option<SegmentDecl> {
        let fields = self.fields(file, node, "a segment", SEGMENT_KEYS)?;
        let id_node = self.require(&fields, "id", "a segment", None);
        let id = self.id(file, id_node);
        let at = id_node.map_or(fields.at, |n| At { file, offset: n.offset });
        let what = id.as_ref().map_or("a segment".to_string(), |id| format!("segment `{id}`"));
        let of = self.require(&fields, "of", &what, Some("`of: account` or `of: contact`"));
        let where_ =
            self.require(&fields, "where", &what, Some("add the membership condition, e.g. `where: plan = 'team'`"));
        // Without a valid `of` the rule's names cannot be resolved: checking it anyway would
        // only report follow-on errors.
        let subject = of.and_then(|n| self.subject(file, n));
        let id = match id {
            Some(id) if self.claim(seen, "segment", &id, at, "segment ids are unique across the workspace's files") => {
                Some(id)
            }
            _ => None,
        };
        Some(SegmentDecl {
            id,
            at,
            name: self.label(file, fields.get("name"), "name"),
            subject: subject.unwrap_or(Subject::Account),
            rule: if subject.is_some() { self.rule(file, where_, "where") } else { None },
        })
    }

    fn subject(&mut self, file: usize, node: &Node) -> Option<Subject> {
        let text = self.text(file, node, "of")?;
        match text.as_str() {
            "account" => Some(Subject::Account),
            "contact" => Some(Subject::Contact),
            _ => {
                let help = did_you_mean(&text, TRAIT_SUBJECTS.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some("a segment holds accounts or contacts".into()));
                self.error(
                    At { file, offset: node.offset },
                    format!("`of` must be `account` or `contact`, found `{text}`"),
                    help,
                );
                None
            }
        }
    }

    fn journey(
        &mut self,
        file: usize,
        node: &Node,
        key_at: Option<At>,
        account_traits: &BTreeMap<String, Type>,
    ) -> Option<JourneyDecl> {
        let fields = self.fields(file, node, "the journey", JOURNEY_KEYS)?;
        let at = key_at.unwrap_or(fields.at);
        let anchor = match fields.get("anchor") {
            None => "start_date".to_string(),
            Some(n) => {
                let anchor_at = At { file, offset: n.offset };
                let text = self.text(file, n, "anchor")?;
                let name = text.strip_prefix("account.").unwrap_or(&text).to_string();
                match account_traits.get(&name) {
                    Some(Type::Date | Type::Timestamp) => {}
                    Some(ty) => {
                        let help = Some("the anchor is the day the journey starts, e.g. `start_date`".to_string());
                        self.error(
                            anchor_at,
                            format!("anchor `{name}` is a {ty} trait; it must be a date or timestamp"),
                            help,
                        );
                    }
                    None => {
                        let dates = account_traits.iter().filter(|(_, t)| matches!(t, Type::Date | Type::Timestamp));
                        let help = did_you_mean(&name, dates.map(|(n, _)| n.as_str()))
                            .map(|s| format!("did you mean `{s}`?"))
                            .or_else(|| Some("declare it under `traits: account:` as a date".to_string()));
                        self.error(anchor_at, format!("unknown account trait `{name}` for `anchor`"), help);
                    }
                }
                name
            }
        };
        let stages_node = self.require(
            &fields,
            "stages",
            "the journey",
            Some("list the stages in order: `stages: [ { id: onboarding }, … ]`"),
        );
        let mut stages = Vec::new();
        let mut stage_ids = BTreeMap::new();
        let mut milestone_ids = BTreeMap::new();
        let mut value_milestone: Option<(Id, At)> = None;
        if let Some(stages_node) = stages_node {
            let items = self.list(file, stages_node, "stages");
            if items.is_empty() && matches!(stages_node.value, Value::Seq(_) | Value::Null) {
                self.error(At { file, offset: stages_node.offset }, "the journey needs at least one stage", None);
            }
            for item in items {
                if let Some(stage) = self.stage(file, item, &mut stage_ids, &mut milestone_ids, &mut value_milestone) {
                    stages.push(stage);
                }
            }
        }
        Some(JourneyDecl { at, anchor, stages })
    }

    fn stage(
        &mut self,
        file: usize,
        node: &Node,
        stage_ids: &mut BTreeMap<String, At>,
        milestone_ids: &mut BTreeMap<String, At>,
        value_milestone: &mut Option<(Id, At)>,
    ) -> Option<StageDecl> {
        let fields = self.fields(file, node, "a stage", STAGE_KEYS)?;
        let id_node = self.require(&fields, "id", "a stage", None);
        let id = self.id(file, id_node);
        let at = id_node.map_or(fields.at, |n| At { file, offset: n.offset });
        let id = match id {
            Some(id) if self.claim(stage_ids, "stage", &id, at, "stage ids are unique") => Some(id),
            _ => None,
        };
        let mut milestones = Vec::new();
        if let Some(list_node) = fields.get("milestones") {
            for item in self.list(file, list_node, "milestones") {
                if let Some(m) = self.milestone(file, item, milestone_ids, value_milestone) {
                    milestones.push(m);
                }
            }
        }
        Some(StageDecl {
            id,
            at,
            name: self.label(file, fields.get("name"), "name"),
            entry: self.rule(file, fields.get("from"), "from"),
            exit: self.rule(file, fields.get("until"), "until"),
            milestones,
        })
    }

    fn milestone(
        &mut self,
        file: usize,
        node: &Node,
        seen: &mut BTreeMap<String, At>,
        value_milestone: &mut Option<(Id, At)>,
    ) -> Option<MilestoneDecl> {
        let fields = self.fields(file, node, "a milestone", MILESTONE_KEYS)?;
        let id_node = self.require(&fields, "id", "a milestone", None);
        let id = self.id(file, id_node);
        let at = id_node.map_or(fields.at, |n| At { file, offset: n.offset });
        let what = id.as_ref().map_or("a milestone".to_string(), |id| format!("milestone `{id}`"));
        let when = self.require(
            &fields,
            "when",
            &what,
            Some("add the behaviour that achieves it, e.g. `when: count('report_created', since_anchor) >= 1`"),
        );
        let id = match id {
            Some(id) if self.claim(seen, "milestone", &id, at, "milestone ids are unique across the journey") => {
                Some(id)
            }
            _ => None,
        };
        let within = fields.get("within").and_then(|n| self.duration(file, n, "within"));
        let mut value = false;
        if let Some(n) = fields.get("value") {
            match n.value {
                Value::Bool(b) => value = b,
                ref other => {
                    let message = format!("expected `true` or `false` for `value`, found {}", other.kind());
                    self.error(At { file, offset: n.offset }, message, None);
                }
            }
            if value {
                let value_at = At { file, offset: n.offset };
                match value_milestone {
                    Some((first, first_at)) => {
                        let message = format!(
                            "only one milestone can be the value milestone; `{first}` at {} already is",
                            self.place(*first_at)
                        );
                        let help = Some(
                            "Time to Value is measured to one milestone: remove `value: true` from one of them"
                                .to_string(),
                        );
                        self.error(value_at, message, help);
                    }
                    None => {
                        if let Some(id) = &id {
                            *value_milestone = Some((id.clone(), at));
                        }
                    }
                }
            }
        }
        Some(MilestoneDecl {
            id,
            at,
            name: self.label(file, fields.get("name"), "name"),
            rule: self.rule(file, when, "when"),
            within,
            value,
        })
    }

    /// `12h`, `14d`, `2w`: a positive whole number of hours, days or weeks.
    fn duration(&mut self, file: usize, node: &Node, key: &str) -> Option<SignedDuration> {
        let at = At { file, offset: node.offset };
        let help = "write a whole number of hours, days or weeks: `12h`, `14d`, `2w`";
        let text = match &node.value {
            Value::Str(s) => s.trim().to_string(),
            Value::Int(n) => {
                let message = format!("`{n}` is not a duration: it has no unit");
                self.error(at, message, Some(format!("add a unit: `{n}d` for {n} days ({help})")));
                return None;
            }
            other => {
                self.error(at, format!("expected a duration for `{key}`, found {}", other.kind()), Some(help.into()));
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(DurationError::NotPositive) => {
                self.error(
                    at,
                    format!("`{text}` is not a positive duration"),
                    Some(
                        if key == "within" {
                            "a deadline must be after the anchor"
                        } else {
                            "use a duration above zero"
                        }
                        .into(),
                    ),
                );
                None
            }
            Err(DurationError::Invalid) => {
                self.error(at, format!("`{text}` is not a duration"), Some(help.into()));
                None
            }
        }
    }

    fn health(&mut self, file: usize, node: &Node, key_at: Option<At>) -> Option<HealthDecl> {
        let fields = self.fields(file, node, "health", HEALTH_KEYS)?;
        let at = key_at.unwrap_or(fields.at);
        let bands = fields.get("bands").and_then(|n| self.health_bands(file, n)).unwrap_or_default();
        let pillars_node = self.require(
            &fields,
            "pillars",
            "health",
            Some("the default model's pillars, e.g. `pillars: { adoption: { weight: 40, measures: [...] } }`"),
        );
        let default = ModelDecl {
            id: Id::parse("default").ok(),
            at,
            name: None,
            condition: None,
            pillars: pillars_node.map(|n| self.pillars(file, n)).unwrap_or_default(),
        };
        let mut model_ids = BTreeMap::from([("default".to_string(), at)]);
        let mut models = Vec::new();
        if let Some(list_node) = fields.get("models") {
            for item in self.list(file, list_node, "models") {
                if let Some(m) = self.model(file, item, &mut model_ids) {
                    models.push(m);
                }
            }
        }
        Some(HealthDecl { at, bands, default, models })
    }

    fn health_bands(&mut self, file: usize, node: &Node) -> Option<HealthBands> {
        let fields = self.fields(file, node, "`bands`", BANDS_KEYS)?;
        let red_node = self.require(&fields, "red", "`bands`", Some("scores below `red` are red"));
        let green_node = self.require(&fields, "green", "`bands`", Some("scores at or above `green` are green"));
        let in_range = |cx: &mut Self, n: Option<&Node>, key: &str| {
            let n = n?;
            let x = cx.number(file, n, key)?;
            if !(0.0..=100.0).contains(&x) {
                cx.error(
                    At { file, offset: n.offset },
                    format!("band `{key}` must be between 0 and 100, found {}", cx.raw(file, n)),
                    None,
                );
                return None;
            }
            Some(x)
        };
        let red = in_range(self, red_node, "red");
        let green = in_range(self, green_node, "green");
        let (red, green) = (red?, green?);
        if red >= green {
            let at = At { file, offset: red_node.map_or(node.offset, |n| n.offset) };
            let message = format!("band `red` ({red}) must be below `green` ({green})");
            self.error(at, message, Some("below `red` is red, from `green` up is green, yellow between".into()));
            return None;
        }
        Some(HealthBands { red, green })
    }

    fn model(&mut self, file: usize, node: &Node, seen: &mut BTreeMap<String, At>) -> Option<ModelDecl> {
        let fields = self.fields(file, node, "a health model", MODEL_KEYS)?;
        let id_node = self.require(&fields, "id", "a health model", None);
        let id = self.id(file, id_node);
        let at = id_node.map_or(fields.at, |n| At { file, offset: n.offset });
        let what = id.as_ref().map_or("a health model".to_string(), |id| format!("health model `{id}`"));
        let for_node =
            self.require(&fields, "for", &what, Some("the accounts it scores, e.g. `for: stage() = 'onboarding'`"));
        let pillars_node = self.require(&fields, "pillars", &what, None);
        let id = match id {
            Some(id)
                if self.claim(
                    seen,
                    "health model",
                    &id,
                    at,
                    "health model ids are unique (`default` is the default model)",
                ) =>
            {
                Some(id)
            }
            _ => None,
        };
        Some(ModelDecl {
            id,
            at,
            name: self.label(file, fields.get("name"), "name"),
            condition: self.rule(file, for_node, "for"),
            pillars: pillars_node.map(|n| self.pillars(file, n)).unwrap_or_default(),
        })
    }

    fn pillars(&mut self, file: usize, node: &Node) -> Vec<PillarDecl> {
        let at = At { file, offset: node.offset };
        let Value::Map(entries) = &node.value else {
            let message =
                format!("expected a mapping of pillar ids to pillars for `pillars`, found {}", node.value.kind());
            self.error(at, message, Some("e.g. `pillars: { adoption: { weight: 40, measures: [...] } }`".into()));
            return Vec::new();
        };
        if entries.is_empty() {
            self.error(at, "a health model needs at least one pillar", None);
        }
        let mut seen = BTreeMap::new();
        let mut measure_ids = BTreeMap::new();
        let mut pillars = Vec::new();
        for (key, value) in entries {
            let key_at = At { file, offset: key.offset };
            let id = self.id(file, Some(key));
            let id = match id {
                Some(id) if self.claim(&mut seen, "pillar", &id, key_at, "a model lists each pillar once") => Some(id),
                _ => None,
            };
            let what = id.as_ref().map_or("a pillar".to_string(), |id| format!("pillar `{id}`"));
            let Some(fields) = self.fields(file, value, &what, PILLAR_KEYS) else { continue };
            let weight_node =
                self.require(&fields, "weight", &what, Some("its share of the overall score, e.g. `weight: 25`"));
            let measures_node = self.require(&fields, "measures", &what, None);
            let mut measures = Vec::new();
            if let Some(list_node) = measures_node {
                let items = self.list(file, list_node, "measures");
                if items.is_empty() && matches!(list_node.value, Value::Seq(_) | Value::Null) {
                    self.error(At { file, offset: list_node.offset }, format!("{what} has no measures"), None);
                }
                for item in items {
                    if let Some(m) = self.measure(file, item, &mut measure_ids) {
                        measures.push(m);
                    }
                }
            }
            pillars.push(PillarDecl {
                id,
                at: key_at,
                name: self.label(file, fields.get("name"), "name"),
                weight: self.weight(file, weight_node),
                measures,
            });
        }
        pillars
    }

    fn measure(&mut self, file: usize, node: &Node, seen: &mut BTreeMap<String, At>) -> Option<MeasureDecl> {
        let fields = self.fields(file, node, "a measure", MEASURE_KEYS)?;
        let id_node = self.require(&fields, "id", "a measure", None);
        let id = self.id(file, id_node);
        let at = id_node.map_or(fields.at, |n| At { file, offset: n.offset });
        let what = id.as_ref().map_or("a measure".to_string(), |id| format!("measure `{id}`"));
        let value =
            self.require(&fields, "value", &what, Some("the figure to score, e.g. `value: active_users(7d) / seats`"));
        let score = self.require(
            &fields,
            "score",
            &what,
            Some("`score: { red: 0.2, green: 0.6 }` or `score: { bands: [...] }`"),
        );
        let weight = self.require(&fields, "weight", &what, Some("its share of the pillar's score, e.g. `weight: 50`"));
        let id = match id {
            Some(id) if self.claim(seen, "measure", &id, at, "measure ids are unique within a health model") => {
                Some(id)
            }
            _ => None,
        };
        Some(MeasureDecl {
            id,
            at,
            name: self.label(file, fields.get("name"), "name"),
            value: self.rule(file, value, "value"),
            curve: score.and_then(|n| self.curve(file, n)),
            weight: self.weight(file, weight),
        })
    }

    fn curve(&mut self, file: usize, node: &Node) -> Option<Curve> {
        let fields = self.fields(file, node, "`score`", SCORE_KEYS)?;
        let at = fields.at;
        match (fields.get("red"), fields.get("green"), fields.get("bands")) {
            (None, None, None) => {
                let help = Some(
                    "`{ red: 0.2, green: 0.6 }` (linear) or `{ bands: [ { below: 2, score: 100 }, { score: 0 } ] }`"
                        .into(),
                );
                self.error(at, "`score` needs `red` and `green`, or `bands`", help);
                None
            }
            (red, green, None) => {
                let red_n = self.require(&fields, "red", "a linear `score`", Some("the value that scores 0"))?;
                let green_n = self.require(&fields, "green", "a linear `score`", Some("the value that scores 100"))?;
                let (red_v, green_v) = (self.number(file, red_n, "red"), self.number(file, green_n, "green"));
                let (red, green) = (red.and(red_v)?, green.and(green_v)?);
                if red == green {
                    let message = format!(
                        "`red` and `green` are both {}: the score would jump from 0 to 100",
                        self.raw(file, green_n)
                    );
                    let help = Some("give two different values; `red` above `green` means lower is better".into());
                    self.error(At { file, offset: green_n.offset }, message, help);
                    return None;
                }
                Some(Curve::Linear { red, green })
            }
            (red, green, Some(bands)) => {
                if let Some(n) = red.or(green) {
                    let help = Some("remove `red` and `green`, or `bands`".into());
                    self.error(
                        At { file, offset: n.offset },
                        "`score` is either linear (`red`, `green`) or `bands`, not both",
                        help,
                    );
                    return None;
                }
                self.curve_bands(file, bands)
            }
        }
    }

    fn curve_bands(&mut self, file: usize, node: &Node) -> Option<Curve> {
        let items = self.list(file, node, "bands");
        if items.is_empty() {
            if matches!(node.value, Value::Seq(_) | Value::Null) {
                self.error(At { file, offset: node.offset }, "`bands` needs at least one band", None);
            }
            return None;
        }
        let mut bands = Vec::new();
        let mut ok = true;
        let mut previous: Option<f64> = None;
        for (i, item) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            let Some(fields) = self.fields(file, item, "a band", BAND_KEYS) else {
                ok = false;
                continue;
            };
            let score_node = self.require(&fields, "score", "a band", Some("the score (0–100) of values in this band"));
            let score = score_node.and_then(|n| {
                let s = self.number(file, n, "score")?;
                if !(0.0..=100.0).contains(&s) {
                    self.error(
                        At { file, offset: n.offset },
                        format!("band `score` must be between 0 and 100, found {}", self.raw(file, n)),
                        None,
                    );
                    return None;
                }
                Some(s)
            });
            let below = match fields.get("below") {
                None => {
                    if !last {
                        let help = Some(
                            "it catches every value left, so nothing after it could apply: move it to the end".into(),
                        );
                        self.error(fields.at, "only the last band may leave out `below`", help);
                        ok = false;
                    }
                    None
                }
                Some(n) => {
                    let below = self.number(file, n, "below");
                    if let (Some(b), Some(p)) = (below, previous)
                        && b <= p
                    {
                        let message =
                            format!("`below` must increase from band to band: {} follows {p}", self.raw(file, n));
                        self.error(At { file, offset: n.offset }, message, None);
                        ok = false;
                    }
                    if below.is_some() {
                        previous = below;
                    }
                    if last {
                        let help = Some("add a last band without `below`, e.g. `{ score: 0 }`".into());
                        self.error(
                            fields.at,
                            "the last band must have no `below`: it scores every value above the others",
                            help,
                        );
                        ok = false;
                    }
                    below.or_else(|| {
                        ok = false;
                        None
                    })
                }
            };
            match score {
                Some(score) => bands.push(CurveBand { below, score }),
                None => ok = false,
            }
        }
        ok.then_some(Curve::Bands(bands))
    }

    // ---- rules -------------------------------------------------------------------------

    fn compile_rule(
        &mut self,
        source: &RuleSource,
        schema: &Schema,
        subject: Subject,
        expected: Type,
        table: &mut AggregateTable,
    ) -> Option<Rule> {
        let schema = Schema { subject, ..schema.clone() };
        match (self.compile)(&source.text, &schema, Some(expected), table) {
            Ok(rule) => Some(rule),
            Err(errors) => {
                let file_text = self.files[source.at.file].text;
                for e in errors {
                    let offset = yaml::value_offset(file_text, source.at.offset, &source.text, e.span.start);
                    self.error(At { file: source.at.file, offset }, e.message, e.help);
                }
                None
            }
        }
    }

    fn compile_segments(
        &mut self,
        decls: Vec<SegmentDecl>,
        schema: &Schema,
        table: &mut AggregateTable,
        graph: &mut Graph,
    ) -> Option<Vec<Segment>> {
        let mut out = Some(Vec::new());
        for d in decls {
            let rule = d.rule.as_ref().and_then(|r| self.compile_rule(r, schema, d.subject, Type::Bool, table));
            if let (Some(id), Some(rule), Some(src)) = (&d.id, &rule, &d.rule) {
                graph.add(Definition::Segment(id.to_string()), rule, src.at);
            }
            let segment = (|| {
                Some(Segment {
                    id: d.id?,
                    name: d.name,
                    subject: d.subject,
                    rule: rule?,
                    location: self.location(d.at),
                })
            })();
            match (segment, &mut out) {
                (Some(s), Some(list)) => list.push(s),
                _ => out = None,
            }
        }
        out
    }

    fn compile_journey(
        &mut self,
        decl: JourneyDecl,
        schema: &Schema,
        table: &mut AggregateTable,
        graph: &mut Graph,
    ) -> Option<Journey> {
        let mut stages = Some(Vec::new());
        graph.dependencies.entry(Definition::Stage).or_default();
        for s in decl.stages {
            let mut compile_stage_rule = |cx: &mut Self, src: &Option<RuleSource>| -> Result<Option<Rule>, ()> {
                let Some(src) = src else { return Ok(None) };
                let rule = cx.compile_rule(src, schema, Subject::Account, Type::Bool, table).ok_or(())?;
                graph.add(Definition::Stage, &rule, src.at);
                Ok(Some(rule))
            };
            let entry = compile_stage_rule(self, &s.entry);
            let exit = compile_stage_rule(self, &s.exit);
            let mut milestones = Some(Vec::new());
            for m in s.milestones {
                let rule =
                    m.rule.as_ref().and_then(|r| self.compile_rule(r, schema, Subject::Account, Type::Bool, table));
                if let (Some(id), Some(rule), Some(src)) = (&m.id, &rule, &m.rule) {
                    graph.add(Definition::Milestone(id.to_string()), rule, src.at);
                }
                let milestone = (|| {
                    Some(Milestone {
                        id: m.id?,
                        name: m.name,
                        rule: rule?,
                        within: m.within,
                        value: m.value,
                        stage: s.id.clone()?,
                        location: self.location(m.at),
                    })
                })();
                match (milestone, &mut milestones) {
                    (Some(m), Some(list)) => list.push(m),
                    _ => milestones = None,
                }
            }
            let stage = (|| {
                Some(Stage {
                    id: s.id?,
                    name: s.name,
                    entry: entry.ok()?,
                    exit: exit.ok()?,
                    milestones: milestones?,
                    location: self.location(s.at),
                })
            })();
            match (stage, &mut stages) {
                (Some(s), Some(list)) => list.push(s),
                _ => stages = None,
            }
        }
        Some(Journey { anchor: decl.anchor, stages: stages?, location: self.location(decl.at) })
    }

    fn compile_health(
        &mut self,
        decl: HealthDecl,
        schema: &Schema,
        table: &mut AggregateTable,
        graph: &mut Graph,
    ) -> Option<Health> {
        graph.dependencies.entry(Definition::Health).or_default();
        let default = self.compile_model(decl.default, schema, table, graph);
        let mut models = Some(Vec::new());
        for m in decl.models {
            match (self.compile_model(m, schema, table, graph), &mut models) {
                (Some(m), Some(list)) => list.push(m),
                _ => models = None,
            }
        }
        Some(Health { bands: decl.bands, default: default?, models: models?, location: self.location(decl.at) })
    }

    fn compile_model(
        &mut self,
        decl: ModelDecl,
        schema: &Schema,
        table: &mut AggregateTable,
        graph: &mut Graph,
    ) -> Option<HealthModel> {
        let condition = match &decl.condition {
            None => Ok(None),
            Some(src) => match self.compile_rule(src, schema, Subject::Account, Type::Bool, table) {
                Some(rule) => {
                    graph.add(Definition::Health, &rule, src.at);
                    Ok(Some(rule))
                }
                None => Err(()),
            },
        };
        let mut pillars = Some(Vec::new());
        for p in decl.pillars {
            let mut measures = Some(Vec::new());
            for m in p.measures {
                let value =
                    m.value.as_ref().and_then(|r| self.compile_rule(r, schema, Subject::Account, Type::Number, table));
                if let (Some(rule), Some(src)) = (&value, &m.value) {
                    graph.add(Definition::Health, rule, src.at);
                }
                let measure = (|| {
                    Some(Measure {
                        id: m.id?,
                        name: m.name,
                        value: value?,
                        curve: m.curve?,
                        weight: m.weight?,
                        location: self.location(m.at),
                    })
                })();
                match (measure, &mut measures) {
                    (Some(m), Some(list)) => list.push(m),
                    _ => measures = None,
                }
            }
            let pillar = (|| {
                Some(Pillar {
                    id: p.id?,
                    name: p.name,
                    weight: p.weight?,
                    measures: measures?,
                    location: self.location(p.at),
                })
            })();
            match (pillar, &mut pillars) {
                (Some(p), Some(list)) => list.push(p),
                _ => pillars = None,
            }
        }
        Some(HealthModel {
            id: decl.id?,
            name: decl.name,
            condition: condition.ok()?,
            pillars: pillars?,
            location: self.location(decl.at),
        })
    }
}

/// Who depends on whom, and which rule introduced each dependency (for cycle messages).
#[derive(Default)]
struct Graph {
    dependencies: BTreeMap<Definition, BTreeSet<Definition>>,
    edge_at: BTreeMap<(Definition, Definition), At>,
}

impl Graph {
    fn add(&mut self, from: Definition, rule: &Rule, at: At) {
        let deps = self.dependencies.entry(from.clone()).or_default();
        for reference in rule.references() {
            if let Some(to) = Definition::of_reference(reference) {
                deps.insert(to.clone());
                self.edge_at.entry((from.clone(), to)).or_insert(at);
            }
        }
    }
}

fn all_traits(builtins: &[(&str, TraitType)], custom: &BTreeMap<String, TraitType>) -> BTreeMap<String, Type> {
    builtins
        .iter()
        .map(|(n, t)| (n.to_string(), t.rule_type()))
        .chain(custom.iter().map(|(n, t)| (n.clone(), t.rule_type())))
        .collect()
}

/// Why a `within` is not a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DurationError {
    /// Not `<whole number><h|d|w>`.
    #[error("not a duration")]
    Invalid,
    /// Zero.
    #[error("not a positive duration")]
    NotPositive,
}

/// `12h`, `14d`, `2w` → a duration (days are 24 hours: deadlines count calendar days
/// from the anchor in the workspace time zone when evaluated).
pub(crate) fn parse_duration(text: &str) -> Result<SignedDuration, DurationError> {
    // The unit is the last character, whatever its width (`14é` is not a duration, and
    // must not be cut inside its `é`).
    let mut chars = text.chars();
    let unit = chars.next_back().ok_or(DurationError::Invalid)?;
    let digits = chars.as_str();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::Invalid);
    }
    let n: i64 = digits.parse().map_err(|_| DurationError::Invalid)?;
    let hours = match unit {
        'h' => Some(n),
        'd' => n.checked_mul(24),
        'w' => n.checked_mul(24 * 7),
        _ => return Err(DurationError::Invalid),
    }
    .filter(|h| *h <= 24 * 366 * 100)
    .ok_or(DurationError::Invalid)?;
    if hours == 0 {
        return Err(DurationError::NotPositive);
    }
    Ok(SignedDuration::from_hours(hours))
}

fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// `Power-Admins` → `power_admins`: a valid id close to what was written.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() { "my_id".to_string() } else { out }
}
