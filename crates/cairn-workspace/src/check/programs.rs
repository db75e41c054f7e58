//! Programs: their shape, audience, re-entry, goal and exit, and their rules compiled
//! with a program scope. Triggers and steps are read in the modules below.

use std::collections::BTreeMap;

use cairn_rules::{AggregateTable, ProgramScope, Rule, Schema, Subject, Type};
use jiff::SignedDuration;

use super::suggestion;
use super::{At, Checker, RuleSource};
use crate::model::{CustomTraits, Id};
use crate::programs::{
    Channel, ExitStep, Goal, IfStep, Program, Reentry, SendStep, Step, TaskStep, TraitUpdate, Trigger, UpdateStep,
    Wait, WaitStep,
};
use crate::yaml::{Node, Value};

mod steps;
mod triggers;

const PROGRAM_KEYS: &[&str] =
    &["id", "name", "of", "trigger", "audience", "reentry", "holdout", "priority", "topic", "goal", "exit", "steps"];
const REENTRY_KEYS: &[&str] = &["after"];

const GOAL_KEYS: &[&str] = &["when", "within"];
const STEP_KINDS: &[&str] = &["send", "wait", "if", "task", "update", "exit"];

const ALL_STEP_KEYS: &[&str] = &[
    "id", "send", "template", "split", "on_cap", "wait", "if", "then", "else", "task", "notes", "assign", "strategy",
    "due", "priority", "update", "exit",
];
const SEND_KEYS: &[&str] = &["id", "send", "template", "split", "on_cap"];

const WAIT_KEYS: &[&str] = &["id", "wait"];
const WAIT_UNTIL_KEYS: &[&str] = &["until", "timeout"];

const IF_KEYS: &[&str] = &["id", "if", "then", "else"];
const TASK_KEYS: &[&str] = &["id", "task", "notes", "assign", "strategy", "due", "priority"];

const UPDATE_KEYS: &[&str] = &["id", "update"];
const EXIT_KEYS: &[&str] = &["id", "exit"];

const STRATEGIES: &[&str] = &["round_robin", "least_loaded"];
/// Program priorities run from 1 (first) to this.
const MAX_PRIORITY: i64 = 1000;
const DEFAULT_PRIORITY: u32 = 100;

/// Names programs may refer to, gathered from the other sections.
pub(super) struct Known<'k> {
    pub segments: BTreeMap<String, Subject>,
    pub milestones: Vec<String>,
    pub stages: Vec<String>,
    pub account_traits: &'k BTreeMap<String, Type>,
    pub contact_traits: &'k BTreeMap<String, Type>,
    pub custom: &'k CustomTraits,
    pub templates: BTreeMap<String, Channel>,
    /// Every pool id declared (malformed pools included).
    pub pools: Vec<String>,
}

/// A program as read from YAML, its rules not compiled yet.
pub(super) struct ProgramDecl {
    id: Option<Id>,
    at: At,
    name: Option<String>,
    subject: Subject,
    trigger: Option<Trigger>,
    audience: Option<RuleSource>,
    reentry: Option<Reentry>,
    holdout: Option<f64>,
    priority: Option<u32>,
    topic: Option<Option<Id>>,
    goal: Option<Option<(RuleSource, SignedDuration)>>,
    exits: Option<Vec<RuleSource>>,
    steps: Option<Vec<StepDecl>>,
    /// Every step, nested ones included, in order: (id, kind, index, branch path).
    flat: Vec<FlatStep>,
}

#[derive(Clone)]
struct FlatStep {
    id: Id,
    kind: &'static str,
    index: usize,
    path: Vec<(usize, bool)>,
}

struct StepDecl {
    id: Id,
    at: At,
    index: usize,
    path: Vec<(usize, bool)>,
    kind: StepDeclKind,
}

enum StepDeclKind {
    Send(Option<SendStep>),
    Wait(Option<WaitDecl>),
    If { condition: Option<RuleSource>, then: Vec<StepDecl>, otherwise: Vec<StepDecl> },
    Task(Option<TaskStep>),
    Update(Option<Vec<(Subject, String, Type, RuleSource)>>),
    Exit,
}

enum WaitDecl {
    For(SignedDuration),
    Until(RuleSource, SignedDuration),
}

/// Reading one program's steps: the running position and the ids seen.
struct StepCursor {
    next_index: usize,
    ids: BTreeMap<String, At>,
    flat: Vec<FlatStep>,
    subject: Subject,
}

fn article(kind: &str) -> &'static str {
    if matches!(kind, "if" | "update" | "exit") { "an" } else { "a" }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Checker<'_> {
    pub(super) fn program(
        &mut self,
        file: usize,
        node: &Node,
        seen: &mut BTreeMap<String, At>,
        known: &Known<'_>,
    ) -> Option<ProgramDecl> {
        let fields = self.fields(file, node, "a program", PROGRAM_KEYS)?;
        let id_node = self.require(&fields, "id", "a program", None);
        let id = self.id(file, id_node);
        let at = id_node.map_or(fields.at, |n| At { file, offset: n.offset });
        let what = id.as_ref().map_or("a program".to_string(), |id| format!("program `{id}`"));
        let trigger_node = self.require(
            &fields,
            "trigger",
            &what,
            Some("what enrolls someone, e.g. `trigger: milestone_missed('invited_team')`"),
        );
        let steps_node = self.require(
            &fields,
            "steps",
            &what,
            Some("what the program does, e.g. `steps: [ { send: email, template: welcome } ]`"),
        );
        let id = match id {
            Some(id) if self.claim(seen, "program", &id, at, "program ids are unique across the workspace's files") => {
                Some(id)
            }
            _ => None,
        };
        let subject = match fields.get("of") {
            None => Some(Subject::Contact),
            Some(n) => self.program_subject(file, n),
        };
        let trigger = match (trigger_node, subject) {
            (Some(n), Some(subject)) => self.trigger(file, n, subject, known),
            _ => None,
        };
        let audience = if subject.is_some() { self.rule(file, fields.get("audience"), "audience") } else { None };
        let reentry = match fields.get("reentry") {
            None => Some(Reentry::Once),
            Some(n) => self.reentry(file, n),
        };
        let holdout = match fields.get("holdout") {
            None => Some(0.0),
            Some(n) => self.percent(file, n, "holdout").and_then(|h| {
                if (0.0..=50.0).contains(&h) {
                    return Some(h);
                }
                let help =
                    Some("the holdout is the share of the audience kept as a control group: at most half of it".into());
                self.error(
                    At { file, offset: n.offset },
                    format!("`holdout` must be between 0% and 50%, found {h}%"),
                    help,
                );
                None
            }),
        };
        let priority = match fields.get("priority") {
            None => Some(DEFAULT_PRIORITY),
            Some(n) => self.whole(file, n, "priority", 1, MAX_PRIORITY).map(|p| p as u32),
        };
        let topic = match fields.get("topic") {
            None => Some(None),
            Some(n) => self.topic(file, n).map(Some),
        };
        let goal = match fields.get("goal") {
            None => Some(None),
            Some(n) => self.goal(file, n).map(Some),
        };
        let exits = match fields.get("exit") {
            None => Some(Vec::new()),
            Some(n) => self.exit_rules(file, n),
        };
        let mut cursor = StepCursor {
            next_index: 1,
            ids: BTreeMap::new(),
            flat: Vec::new(),
            subject: subject.unwrap_or(Subject::Contact),
        };
        let steps = match steps_node {
            None => None,
            Some(n) => {
                let items = self.list(file, n, "steps");
                if items.is_empty() {
                    if matches!(n.value, Value::Seq(_) | Value::Null) {
                        self.error(At { file, offset: n.offset }, format!("{what} has no steps"), None);
                    }
                    None
                } else {
                    self.steps(file, items, &[], &mut cursor, known)
                }
            }
        };
        if let (Some(steps), Some(Subject::Account)) = (&steps, subject) {
            self.no_sends_in_account_programs(steps);
        }
        let sends = cursor.flat.iter().any(|s| s.kind == "send");
        if sends && subject == Some(Subject::Contact) && matches!(topic, Some(None)) {
            let help = Some(
                "the consent topic its messages fall under, e.g. `topic: onboarding`: contacts who unsubscribe from it receive none"
                    .into(),
            );
            self.error(fields.at, format!("missing key `topic` in {what}"), help);
        }
        Some(ProgramDecl {
            id,
            at,
            name: self.label(file, fields.get("name"), "name"),
            subject: subject.unwrap_or(Subject::Contact),
            trigger,
            audience,
            reentry,
            holdout,
            priority,
            topic,
            goal,
            exits,
            steps,
            flat: cursor.flat,
        })
    }

    fn no_sends_in_account_programs(&mut self, steps: &[StepDecl]) {
        for s in steps {
            match &s.kind {
                StepDeclKind::Send(_) => {
                    let help = Some(
                        "messages go to contacts: leave out `of: account` and choose them with `audience`, or use a `task`"
                            .into(),
                    );
                    self.error(s.at, "a program of accounts cannot send messages", help);
                }
                StepDeclKind::If { then, otherwise, .. } => {
                    self.no_sends_in_account_programs(then);
                    self.no_sends_in_account_programs(otherwise);
                }
                _ => {}
            }
        }
    }

    pub(super) fn program_subject(&mut self, file: usize, node: &Node) -> Option<Subject> {
        let text = self.text(file, node, "of")?;
        match text.as_str() {
            "account" => Some(Subject::Account),
            "contact" => Some(Subject::Contact),
            _ => {
                let help = suggestion(&text, &["account", "contact"])
                    .or_else(|| Some("a program enrolls contacts (the default) or accounts".into()));
                self.error(
                    At { file, offset: node.offset },
                    format!("`of` must be `account` or `contact`, found `{text}`"),
                    help,
                );
                None
            }
        }
    }

    pub(super) fn topic(&mut self, file: usize, node: &Node) -> Option<Id> {
        let at = At { file, offset: node.offset };
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            other => {
                self.error(at, format!("expected a topic id for `topic`, found {}", other.kind()), None);
                return None;
            }
        };
        match Id::parse(&text) {
            Ok(id) => Some(id),
            Err(_) => {
                let help = format!("topics are ids: lowercase letters, digits and `_`, e.g. `{}`", super::slug(&text));
                self.error(at, format!("`{text}` is not a valid topic"), Some(help));
                None
            }
        }
    }

    pub(super) fn reentry(&mut self, file: usize, node: &Node) -> Option<Reentry> {
        let at = At { file, offset: node.offset };
        let help = "`reentry: once` (the default), `reentry: always` or `reentry: { after: 30d }`";
        match &node.value {
            Value::Str(s) if s == "once" => Some(Reentry::Once),
            Value::Str(s) if s == "always" => Some(Reentry::Always),
            Value::Str(s) => {
                let help = suggestion(s, &["once", "always", "after"]).map_or(help.to_string(), |d| {
                    if d.contains("after") { "write `reentry: { after: 30d }`".to_string() } else { d }
                });
                self.error(at, format!("unknown re-entry policy `{s}`"), Some(help));
                None
            }
            Value::Map(_) => {
                let fields = self.fields(file, node, "`reentry`", REENTRY_KEYS)?;
                let after = self.require(&fields, "after", "`reentry`", Some(help))?;
                self.duration(file, after, "after").map(Reentry::After)
            }
            other => {
                self.error(
                    at,
                    format!("expected a re-entry policy for `reentry`, found {}", other.kind()),
                    Some(help.into()),
                );
                None
            }
        }
    }

    pub(super) fn goal(&mut self, file: usize, node: &Node) -> Option<(RuleSource, SignedDuration)> {
        let help = "e.g. `goal: { when: milestone('invited_team'), within: 14d }`";
        let fields = self.fields(file, node, "`goal`", GOAL_KEYS)?;
        let when = self.require(&fields, "when", "`goal`", Some(help));
        let within = self.require(
            &fields,
            "within",
            "`goal`",
            Some("how long after enrollment it may be met, e.g. `within: 14d`"),
        );
        let rule = self.rule(file, when, "when");
        let within = within.and_then(|n| self.duration(file, n, "within"));
        Some((rule?, within?))
    }

    pub(super) fn exit_rules(&mut self, file: usize, node: &Node) -> Option<Vec<RuleSource>> {
        let items: Vec<&Node> = match &node.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut rules = Some(Vec::new());
        for item in items {
            match (self.rule(file, Some(item), "exit"), &mut rules) {
                (Some(r), Some(list)) => list.push(r),
                _ => rules = None,
            }
        }
        rules
    }

    pub(super) fn compile_programs(
        &mut self,
        decls: Vec<ProgramDecl>,
        schema: &Schema,
        table: &mut AggregateTable,
    ) -> Option<Vec<Program>> {
        let mut out = Some(Vec::new());
        for d in decls {
            match (self.compile_program(d, schema, table), &mut out) {
                (Some(p), Some(list)) => list.push(p),
                _ => out = None,
            }
        }
        out
    }

    pub(super) fn compile_program(
        &mut self,
        d: ProgramDecl,
        schema: &Schema,
        table: &mut AggregateTable,
    ) -> Option<Program> {
        let subject = d.subject;
        let audience = match &d.audience {
            None => Ok(None),
            Some(src) => self.compile_rule(src, schema, subject, Type::Bool, table).map(Some).ok_or(()),
        };
        // Goal and exit rules may name any send step.
        let whole = |goal: bool| {
            let mut scope = ProgramScope { goal, ..ProgramScope::default() };
            for s in &d.flat {
                if s.kind == "send" {
                    scope.sends.push(s.id.to_string());
                } else {
                    scope
                        .unavailable
                        .insert(s.id.to_string(), format!("it is {} `{}` step, not a `send`", article(s.kind), s.kind));
                }
            }
            Schema { program: Some(scope), ..schema.clone() }
        };
        let goal = match d.goal {
            Some(Some((src, within))) => self
                .compile_rule(&src, &whole(false), subject, Type::Bool, table)
                .map(|rule| Some(Goal { rule, within })),
            Some(None) => Some(None),
            None => None,
        };
        let exit_schema = whole(true);
        let mut exits = Some(Vec::new());
        for src in d.exits.iter().flatten() {
            match (self.compile_rule(src, &exit_schema, subject, Type::Bool, table), &mut exits) {
                (Some(r), Some(list)) => list.push(r),
                _ => exits = None,
            }
        }
        if d.exits.is_none() {
            exits = None;
        }
        let steps = d.steps.map(|steps| self.compile_steps(steps, &d.flat, schema, subject, table));
        Some(Program {
            id: d.id?,
            name: d.name,
            subject,
            trigger: d.trigger?,
            audience: audience.ok()?,
            reentry: d.reentry?,
            holdout_percent: d.holdout?,
            priority: d.priority?,
            topic: d.topic?,
            goal: goal?,
            exits: exits?,
            steps: steps??,
            location: self.location(d.at),
        })
    }

    /// What a rule at step `index` on branch `path` may ask about.
    fn scope_at(flat: &[FlatStep], index: usize, path: &[(usize, bool)]) -> ProgramScope {
        let mut scope = ProgramScope { goal: true, ..ProgramScope::default() };
        for s in flat {
            if s.index == index {
                continue;
            }
            let other_branch = s.path.iter().any(|(i, b)| path.iter().any(|(j, c)| i == j && b != c));
            let reason = if s.kind != "send" {
                Some(format!("it is {} `{}` step, not a `send`", article(s.kind), s.kind))
            } else if s.index > index {
                Some("it comes after this step".to_string())
            } else if other_branch {
                Some("it is on another branch of an `if`, so it has not run before this step".to_string())
            } else {
                None
            };
            match reason {
                Some(r) => {
                    scope.unavailable.insert(s.id.to_string(), r);
                }
                None => {
                    scope.sends.push(s.id.to_string());
                    scope.previous = Some(s.id.to_string());
                }
            }
        }
        scope
    }

    fn compile_steps(
        &mut self,
        steps: Vec<StepDecl>,
        flat: &[FlatStep],
        schema: &Schema,
        subject: Subject,
        table: &mut AggregateTable,
    ) -> Option<Vec<Step>> {
        let mut out = Some(Vec::new());
        for s in steps {
            let scoped = Schema { program: Some(Self::scope_at(flat, s.index, &s.path)), ..schema.clone() };
            let location = self.location(s.at);
            let step = match s.kind {
                StepDeclKind::Send(send) => send.map(Step::Send),
                StepDeclKind::Exit => Some(Step::Exit(ExitStep { id: s.id, location })),
                StepDeclKind::Task(task) => task.map(Step::Task),
                StepDeclKind::Wait(wait) => wait.and_then(|w| {
                    let wait = match w {
                        WaitDecl::For(d) => Wait::For(d),
                        WaitDecl::Until(src, timeout) => {
                            Wait::Until { rule: self.compile_rule(&src, &scoped, subject, Type::Bool, table)?, timeout }
                        }
                    };
                    Some(Step::Wait(WaitStep { id: s.id, wait, location }))
                }),
                StepDeclKind::If { condition, then, otherwise } => {
                    let condition = condition.and_then(|c| self.compile_rule(&c, &scoped, subject, Type::Bool, table));
                    let then = self.compile_steps(then, flat, schema, subject, table);
                    let otherwise = self.compile_steps(otherwise, flat, schema, subject, table);
                    (|| {
                        Some(Step::If(IfStep {
                            id: s.id,
                            condition: condition?,
                            then: then?,
                            otherwise: otherwise?,
                            location,
                        }))
                    })()
                }
                StepDeclKind::Update(updates) => updates.and_then(|updates| {
                    let mut set = Some(Vec::new());
                    for (owner, name, ty, src) in updates {
                        let value: Option<Rule> = self.compile_rule(&src, &scoped, subject, ty, table);
                        match (value, &mut set) {
                            (Some(value), Some(list)) => list.push(TraitUpdate { owner, name, value }),
                            _ => set = None,
                        }
                    }
                    Some(Step::Update(UpdateStep { id: s.id, set: set?, location }))
                }),
            };
            match (step, &mut out) {
                (Some(step), Some(list)) => list.push(step),
                _ => out = None,
            }
        }
        out
    }
}
