//! From YAML files to a checked [`Workspace`], collecting every problem on the way.
//!
//! Three passes: read every file's tree into declarations (shape, keys, ids, values),
//! compile every rule against a schema that knows all declared names, then order the
//! definitions by their references and report cycles (`workspace.rs` runs them).
//!
//! Here: the checker, positions and reporting, and the readers every section shares
//! (mappings, ids, labels, numbers, rules). One module per section of the YAML:
//! `segments`, `journey` (stages, milestones, deadlines), `health`, `guardrails`,
//! `templates` (their Liquid in `content`), `pools`, `programs` (with its `triggers`
//! and `steps`), `staffing` (the touch model) and `insights` (metrics, benchmarks,
//! leaderboards).

use std::collections::{BTreeMap, BTreeSet};

use cairn_rules::{AggregateTable, Rule, RuleError, Schema, Subject, Type};
use jiff::SignedDuration;

use crate::SourceFile;
use crate::diagnostic::{Diagnostic, Location};
use crate::folder::{MAX_TEMPLATE_BYTES, Refused, too_large};
use crate::model::{Curve, HealthBands, Id, Workspace};
use crate::order::Definition;
use crate::programs::Channel;
use crate::suggest::did_you_mean;
use crate::yaml::{self, LineIndex, Node, Value};

/// The rule compiler: `cairn_rules::compile`, or a stand-in in tests.
pub(crate) type CompileFn = fn(&str, &Schema, Option<Type>, &mut AggregateTable) -> Result<Rule, Vec<RuleError>>;

const TRAIT_SUBJECTS: &[&str] = &["account", "contact"];

mod content;
mod guardrails;
mod health;
mod insights;
mod journey;
mod pools;
mod programs;
mod segments;
mod staffing;
mod templates;
mod workspace;

#[cfg(test)]
pub(crate) use journey::DurationError;
pub(crate) use journey::parse_duration;

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
    /// A milestone to add to the journey's last stage, and the index of its rule's
    /// pseudo-file in `files` (errors in it point there: `--rule:1:8`).
    probe: Option<(&'a crate::ProbeMilestone, usize)>,
}

/// Checks the files with `compile` as the rule compiler.
pub(crate) fn check_with(sources: &[SourceFile], compile: CompileFn) -> Result<Workspace, Vec<Diagnostic>> {
    check_folder(sources, &[], None, compile)
}

/// Checks the files with `compile` as the rule compiler; `refused` are the files of the
/// folder that were not read (a link out of it, too large), reported where a template
/// names them (or on their own when none does).
/// With `probe`, its milestone is added to the journey's last stage (a hypothesis tested
/// by `cairn report hypotheses`), its rule's errors reported at `--rule:line:col`.
pub(crate) fn check_folder<'a>(
    sources: &'a [SourceFile],
    refused: &[Refused],
    probe: Option<&'a crate::ProbeMilestone>,
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
        probe: None,
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
    if let Some(p) = probe {
        cx.files.push(FileText { name: crate::PROBE_FILE, text: &p.rule, lines: LineIndex::new(&p.rule) });
        cx.probe = Some((p, cx.files.len() - 1));
    }
    let workspace = cx.check_trees(&trees);
    let mut diagnostics = cx.diagnostics;
    for (r, named) in cx.refused {
        if !named {
            diagnostics.push(Diagnostic::whole(r.name, r.message, Some(r.help)));
        }
    }
    match workspace {
        Some(mut ws) if diagnostics.is_empty() && unparsed.is_empty() => {
            ws.sources = sources.to_vec();
            Ok(ws)
        }
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

    fn channel(&mut self, file: usize, node: &Node) -> Option<Channel> {
        let at = At { file, offset: node.offset };
        let Value::Str(name) = &node.value else {
            self.error(at, format!("expected a channel, found {}", node.value.kind()), None);
            return None;
        };
        let channel = Channel::parse(name);
        if channel.is_none() {
            let help = suggestion(name, &Channel::NAMES)
                .or_else(|| Some(format!("the channels are {}", list(&Channel::NAMES))));
            self.error(at, format!("unknown channel `{name}`"), help);
        }
        channel
    }

    /// A whole number in `min..=max`.
    fn whole(&mut self, file: usize, node: &Node, key: &str, min: i64, max: i64) -> Option<i64> {
        let at = At { file, offset: node.offset };
        let n = match &node.value {
            Value::Int(n) => *n,
            _ => {
                let found = match &node.value {
                    Value::Float(_) => self.raw(file, node).to_string(),
                    Value::Str(s) => format!("`{s}`"),
                    other => other.kind().to_string(),
                };
                self.error(at, format!("expected a whole number for `{key}`, found {found}"), None);
                return None;
            }
        };
        if n < min || n > max {
            self.error(at, format!("`{key}` must be between {min} and {max}, found {n}"), None);
            return None;
        }
        Some(n)
    }

    /// `10%`, or `10` (percent).
    fn percent(&mut self, file: usize, node: &Node, key: &str) -> Option<f64> {
        let at = At { file, offset: node.offset };
        let value = match &node.value {
            Value::Int(n) => Some(*n as f64),
            Value::Float(x) => Some(*x),
            Value::Str(s) => s.trim().strip_suffix('%').and_then(|n| n.trim().parse::<f64>().ok()),
            _ => None,
        };
        match value {
            Some(x) if x.is_finite() => Some(x),
            _ => {
                let found = match &node.value {
                    Value::Str(s) => format!("`{s}`"),
                    other => other.kind().to_string(),
                };
                self.error(
                    at,
                    format!("expected a percentage for `{key}`, found {found}"),
                    Some("write a share as e.g. `10%`".into()),
                );
                None
            }
        }
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

fn suggestion(input: &str, candidates: &[&str]) -> Option<String> {
    did_you_mean(input, candidates.iter().copied()).map(|s| format!("did you mean `{s}`?"))
}

fn channel_article(channel: Channel) -> &'static str {
    match channel {
        Channel::Email | Channel::InApp | Channel::Sms => "an",
        Channel::Slack | Channel::Webhook => "a",
    }
}
