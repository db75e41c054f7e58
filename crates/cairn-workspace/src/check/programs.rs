//! Programs, templates and guard rails: their shape, their references (segments,
//! milestones, templates, traits, earlier steps) and their rules, with the same
//! diagnostics as the rest of the workspace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use cairn_rules::{AggregateTable, ProgramScope, Rule, Schema, Subject, Type};
use jiff::SignedDuration;
use jiff::civil::Time;

use super::content::TemplateDecl;
use super::{At, Checker, RuleSource, list, parse_duration};
use crate::model::{Band, CustomTraits, Id};
use crate::programs::{
    Assignee, Channel, DateTrigger, ExitStep, FrequencyCap, Goal, Guardrails, IfStep, OnCap, PoolStrategy, Program,
    QuietHours, Reentry, Schedule, SendStep, Step, TaskStep, Template, TemplateText, TextOrigin, TraitUpdate,
    Transition, Trigger, UpdateStep, Variant, Wait, WaitStep,
};
use crate::suggest::did_you_mean;
use crate::yaml::{self, Node, Value};

const CAP_KEYS: &[&str] = &["max", "per"];
const QUIET_KEYS: &[&str] = &["from", "to"];
const TEMPLATE_KEYS: &[&str] = &["channel", "subject", "preheader", "html", "text"];
const CONTENT_KEYS: &[&str] = &["file"];
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
const ON_CAP: &[&str] = &["defer", "skip"];
const STRATEGIES: &[&str] = &["round_robin", "least_loaded"];
const BANDS: &[&str] = &["red", "yellow", "green"];
const TRIGGERS: &[&str] = &[
    "segment_entered",
    "segment_exited",
    "milestone_achieved",
    "milestone_missed",
    "stage_entered",
    "health_band_changed",
    "event",
    "schedule",
];
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

/// An argument of a trigger call: its name and where it is, if named (`to: 'red'`), its
/// value, and where the value is.
type TriggerArg = (Option<(String, usize)>, String, usize);

/// A piece of a trigger's text.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Duration(String),
    Punct(char),
    Bad(char),
}

fn article(kind: &str) -> &'static str {
    if matches!(kind, "if" | "update" | "exit") { "an" } else { "a" }
}

fn suggestion(input: &str, candidates: &[&str]) -> Option<String> {
    did_you_mean(input, candidates.iter().copied()).map(|s| format!("did you mean `{s}`?"))
}

impl<'a> Checker<'a> {
    // ---- workspace guard rails ---------------------------------------------------------

    pub(super) fn guardrails(&mut self, file: usize, fields: &super::Fields<'_>) -> Guardrails {
        let mut rails = Guardrails::default();
        if let Some(node) = fields.get("frequency_caps") {
            rails.frequency_caps = self.frequency_caps(file, node);
        }
        if let Some(node) = fields.get("quiet_hours") {
            rails.quiet_hours = self.quiet_hours(file, node);
        }
        if let Some(node) = fields.get("on_cap") {
            rails.on_cap = self.on_cap(file, node).unwrap_or_default();
        }
        rails
    }

    fn frequency_caps(&mut self, file: usize, node: &Node) -> BTreeMap<Channel, FrequencyCap> {
        let mut caps = BTreeMap::new();
        let Value::Map(entries) = &node.value else {
            let message =
                format!("expected a mapping of channels to caps for `frequency_caps`, found {}", node.value.kind());
            self.error(At { file, offset: node.offset }, message, Some("e.g. `email: { max: 3, per: 7d }`".into()));
            return caps;
        };
        for (key, value) in entries {
            let key_at = At { file, offset: key.offset };
            let Some(channel) = self.channel(file, key) else { continue };
            if caps.contains_key(&channel) {
                self.error(key_at, format!("duplicate key `{channel}` in `frequency_caps`"), None);
                continue;
            }
            let what = format!("the `{channel}` cap");
            let Some(fields) = self.fields(file, value, &what, CAP_KEYS) else { continue };
            let max_node =
                self.require(&fields, "max", &what, Some("how many messages the window allows, e.g. `max: 3`"));
            let per_node = self.require(&fields, "per", &what, Some("the rolling window, e.g. `per: 7d`"));
            let max = max_node.and_then(|n| self.whole(file, n, "max", 1, 1000));
            let per = per_node.and_then(|n| self.duration(file, n, "per"));
            if let (Some(max), Some(per)) = (max, per) {
                caps.insert(channel, FrequencyCap { max: max as u32, per });
            }
        }
        caps
    }

    fn quiet_hours(&mut self, file: usize, node: &Node) -> Option<QuietHours> {
        let fields = self.fields(file, node, "`quiet_hours`", QUIET_KEYS)?;
        let from = self.require(&fields, "from", "`quiet_hours`", Some("when quiet starts, e.g. `from: '21:00'`"));
        let to = self.require(&fields, "to", "`quiet_hours`", Some("when sending resumes, e.g. `to: '08:00'`"));
        let from_t = from.and_then(|n| self.time_of_day(file, n, "from"));
        let to_t = to.and_then(|n| self.time_of_day(file, n, "to"));
        let (from_t, to_t) = (from_t?, to_t?);
        if from_t == to_t {
            let at = At { file, offset: to.map_or(node.offset, |n| n.offset) };
            self.error(at, "`quiet_hours` start and end at the same time", Some("give two different times".into()));
            return None;
        }
        Some(QuietHours { from: from_t, to: to_t })
    }

    fn time_of_day(&mut self, file: usize, node: &Node, key: &str) -> Option<Time> {
        let at = At { file, offset: node.offset };
        let help = Some("write a time of day as `'HH:MM'` in quotes, e.g. `'21:00'`".to_string());
        let text = match &node.value {
            Value::Str(s) => s.trim().to_string(),
            _ => {
                self.error(at, format!("expected a time of day for `{key}`, found {}", self.raw(file, node)), help);
                return None;
            }
        };
        let parsed = text
            .split_once(':')
            .filter(|(h, m)| h.len() <= 2 && m.len() == 2)
            .and_then(|(h, m)| Some((h.parse::<i8>().ok()?, m.parse::<i8>().ok()?)))
            .and_then(|(h, m)| Time::new(h, m, 0, 0).ok());
        if parsed.is_none() {
            self.error(at, format!("`{text}` is not a time of day"), help);
        }
        parsed
    }

    fn on_cap(&mut self, file: usize, node: &Node) -> Option<OnCap> {
        let text = self.text(file, node, "on_cap")?;
        match text.as_str() {
            "defer" => Some(OnCap::Defer),
            "skip" => Some(OnCap::Skip),
            _ => {
                let help = suggestion(&text, ON_CAP)
                    .or_else(|| Some("`defer` waits until the cap allows the send; `skip` goes on without it".into()));
                self.error(
                    At { file, offset: node.offset },
                    format!("`on_cap` must be `defer` or `skip`, found `{text}`"),
                    help,
                );
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

    // ---- templates ---------------------------------------------------------------------

    pub(super) fn templates(
        &mut self,
        file: usize,
        node: &Node,
        seen: &mut BTreeMap<String, At>,
        assets: &BTreeMap<String, (String, String)>,
    ) -> Vec<TemplateDecl> {
        let mut out = Vec::new();
        let Value::Map(entries) = &node.value else {
            if node.value != Value::Null {
                let message = format!(
                    "expected a mapping of template ids to templates for `templates`, found {}",
                    node.value.kind()
                );
                let help = Some("e.g. `templates: { welcome: { channel: email, subject: ..., html: ... } }`".into());
                self.error(At { file, offset: node.offset }, message, help);
            }
            return out;
        };
        for (key, value) in entries {
            let key_at = At { file, offset: key.offset };
            let id = self.id(file, Some(key));
            let id = match id {
                Some(id)
                    if self.claim(
                        seen,
                        "template",
                        &id,
                        key_at,
                        "template ids are unique across the workspace's files",
                    ) =>
                {
                    id
                }
                _ => continue,
            };
            let what = format!("template `{id}`");
            let Some(fields) = self.fields(file, value, &what, TEMPLATE_KEYS) else { continue };
            let channel_node = self.require(
                &fields,
                "channel",
                &what,
                Some("`channel: email`, `in_app`, `sms`, `slack` or `webhook`"),
            );
            let Some(channel) = channel_node.and_then(|n| self.channel(file, n)) else { continue };
            let part = |cx: &mut Self, key: &str| -> Option<TemplateText> {
                let n = fields.get(key)?;
                cx.template_text(file, n, key, assets)
            };
            let subject = part(self, "subject");
            let preheader = part(self, "preheader");
            let html = part(self, "html");
            let text = part(self, "text");
            let (allowed, required_body): (&[&str], &str) = match channel {
                Channel::Email => (&["subject", "preheader", "html", "text"], "`html` or `text`"),
                Channel::InApp => (&["subject", "html", "text"], "`text` or `html`"),
                Channel::Sms | Channel::Slack | Channel::Webhook => (&["text"], "`text`"),
            };
            for key in ["subject", "preheader", "html"] {
                if let Some(n) = fields.get(key)
                    && !allowed.contains(&key)
                {
                    let a = channel_article(channel);
                    let help = Some(format!("{a} {channel} template has {}", list(allowed)));
                    self.error(
                        At { file, offset: n.offset },
                        format!("`{key}` does not apply to {a} {channel} template"),
                        help,
                    );
                }
            }
            if channel == Channel::Email && fields.get("subject").is_none() {
                self.error(
                    fields.at,
                    format!("missing key `subject` in {what}"),
                    Some("an email needs a subject".into()),
                );
            }
            if fields.get("html").is_none() && fields.get("text").is_none() {
                let body = if allowed.contains(&"html") { required_body.to_string() } else { "`text`".to_string() };
                self.error(fields.at, format!("{what} has no body: add {body}"), None);
            }
            let inline = ["subject", "preheader", "html", "text"]
                .into_iter()
                .filter_map(|key| {
                    let n = fields.get(key).filter(|n| matches!(n.value, Value::Str(_)))?;
                    Some((key, At { file, offset: n.offset }))
                })
                .collect();
            let template = Template { id, channel, subject, preheader, html, text, location: self.location(key_at) };
            out.push(TemplateDecl { template, inline });
        }
        out
    }

    /// A template part: inline text, or `{ file: path }` naming a file of the folder.
    fn template_text(
        &mut self,
        file: usize,
        node: &Node,
        key: &str,
        assets: &BTreeMap<String, (String, String)>,
    ) -> Option<TemplateText> {
        let at = At { file, offset: node.offset };
        match &node.value {
            Value::Str(s) => {
                // A quoted scalar starts at its quote; a block scalar at its first content
                // character, alone on its line after the indentation.
                let text = self.files[file].text;
                let line_start = text.get(..node.offset).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
                let starts_line = text.get(line_start..node.offset).is_some_and(|t| t.trim().is_empty());
                let quoted = !starts_line && text.get(node.offset..).is_some_and(|t| t.starts_with(['\'', '"']));
                Some(TemplateText {
                    text: s.clone(),
                    origin: TextOrigin::Inline { location: self.location(at), quoted },
                })
            }
            Value::Map(_) => {
                let fields = self.fields(file, node, &format!("`{key}`"), CONTENT_KEYS)?;
                let path_node =
                    self.require(&fields, "file", &format!("`{key}`"), Some("e.g. `file: templates/welcome.html`"))?;
                let path_at = At { file, offset: path_node.offset };
                let path = self.text(file, path_node, "file")?;
                let relative = Path::new(&path);
                if path.is_empty()
                    || relative.is_absolute()
                    || relative.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
                {
                    let help =
                        Some("write a path relative to the workspace folder, e.g. `templates/welcome.html`".into());
                    self.error(path_at, format!("`{path}` is outside the workspace folder"), help);
                    return None;
                }
                let folder = Path::new(self.files[file].name).parent().unwrap_or(Path::new(""));
                let wanted = folder.join(relative);
                let found = assets.iter().find(|(name, _)| Path::new(name.as_str()) == wanted);
                match found {
                    Some((name, (text, _))) => Some(TemplateText {
                        text: text.clone(),
                        origin: TextOrigin::File { path, file: name.clone(), location: self.location(path_at) },
                    }),
                    None => {
                        if let Some((r, named)) =
                            self.refused.iter_mut().find(|(r, _)| Path::new(r.name.as_str()) == wanted)
                        {
                            *named = true;
                            let (message, help) = (format!("`{path}`: {}", r.message), Some(r.help.clone()));
                            self.error(path_at, message, help);
                            return None;
                        }
                        let names: Vec<&str> = assets.values().map(|(_, rel)| rel.as_str()).collect();
                        let rel_wanted = relative.to_string_lossy().to_string();
                        let help = did_you_mean(&rel_wanted, names.iter().copied())
                            .map(|s| format!("did you mean `{s}`?"))
                            .or_else(|| {
                                Some("template files live in the workspace folder's `templates/` folder".into())
                            });
                        self.error(path_at, format!("template file `{path}` not found"), help);
                        None
                    }
                }
            }
            other => {
                let help = Some(format!("write the text, or `{key}: {{ file: templates/x.html }}`"));
                self.error(at, format!("expected text for `{key}`, found {}", other.kind()), help);
                None
            }
        }
    }

    // ---- programs ----------------------------------------------------------------------

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

    fn program_subject(&mut self, file: usize, node: &Node) -> Option<Subject> {
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

    fn topic(&mut self, file: usize, node: &Node) -> Option<Id> {
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

    fn reentry(&mut self, file: usize, node: &Node) -> Option<Reentry> {
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

    fn goal(&mut self, file: usize, node: &Node) -> Option<(RuleSource, SignedDuration)> {
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

    fn exit_rules(&mut self, file: usize, node: &Node) -> Option<Vec<RuleSource>> {
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

    // ---- triggers ----------------------------------------------------------------------

    fn trigger(&mut self, file: usize, node: &Node, subject: Subject, known: &Known<'_>) -> Option<Trigger> {
        let at = At { file, offset: node.offset };
        let Value::Str(text) = &node.value else {
            let help = Some("e.g. `trigger: segment_entered('at_risk')`, `trigger: renewal_date - 90d`".into());
            self.error(at, format!("expected a trigger for `trigger`, found {}", node.value.kind()), help);
            return None;
        };
        let source = RuleSource { text: text.clone(), at };
        let tokens = tokenize(text);
        let here = |cx: &Self, byte: usize| cx.at_in(&source, byte);
        let Some((first, first_span)) = tokens.first().cloned() else {
            self.error(at, "`trigger` is empty", Some("e.g. `trigger: segment_entered('at_risk')`".into()));
            return None;
        };
        let Token::Ident(name) = first else {
            let help = Some("a trigger is a transition (`segment_entered('id')`), `event('name')`, `schedule('cron')` or a date trait (`renewal_date - 90d`)".into());
            self.error(here(self, first_span.0), format!("cannot read `{text}` as a trigger"), help);
            return None;
        };
        if tokens.get(1).map(|t| &t.0) != Some(&Token::Punct('(')) {
            return self.date_trigger(&source, &tokens, subject, known);
        }
        // name ( args )
        let mut args: Vec<TriggerArg> = Vec::new();
        let mut i = 2;
        let mut close = None;
        while i < tokens.len() {
            match &tokens[i] {
                (Token::Punct(')'), span) => {
                    close = Some(span.0);
                    i += 1;
                    break;
                }
                (Token::Punct(','), _) if !args.is_empty() => i += 1,
                (Token::Ident(key), kspan) if tokens.get(i + 1).map(|t| &t.0) == Some(&Token::Punct(':')) => {
                    match tokens.get(i + 2) {
                        Some((Token::Str(v), vspan)) => {
                            args.push((Some((key.clone(), kspan.0)), v.clone(), vspan.0));
                            i += 3;
                        }
                        _ => {
                            let help = Some(format!("write the value in quotes, e.g. `{key}: 'red'`"));
                            self.error(here(self, kspan.0), format!("`{key}:` needs a value in quotes"), help);
                            return None;
                        }
                    }
                }
                (Token::Str(v), span) => {
                    args.push((None, v.clone(), span.0));
                    i += 1;
                }
                (token, span) => {
                    let shown = match token {
                        Token::Ident(s) | Token::Duration(s) => s.clone(),
                        Token::Str(s) => format!("'{s}'"),
                        Token::Punct(c) | Token::Bad(c) => c.to_string(),
                    };
                    let help = Some(format!("ids and names go in single quotes, e.g. `{name}('some_id')`"));
                    self.error(here(self, span.0), format!("unexpected `{shown}` in the trigger"), help);
                    return None;
                }
            }
        }
        if close.is_none() {
            self.error(here(self, text.len()), "this `(` is never closed", Some("add a `)` to close it".into()));
            return None;
        }
        if let Some((_, span)) = tokens.get(i) {
            self.error(
                here(self, span.0),
                "unexpected text after the trigger",
                Some("a program has one trigger".into()),
            );
            return None;
        }
        let at_name = here(self, first_span.0);
        let positional = |cx: &mut Self, what: &str, example: &str| -> Option<(String, usize)> {
            match args.as_slice() {
                [(None, v, off)] => Some((v.clone(), *off)),
                _ => {
                    let help = Some(format!("usage: `{name}('{example}')`"));
                    cx.error(at_name, format!("`{name}` takes one {what} in quotes"), help);
                    None
                }
            }
        };
        let trigger = match name.as_str() {
            "segment_entered" | "segment_exited" => {
                let (id, off) = positional(self, "segment id", "at_risk")?;
                let id_at = here(self, off);
                match known.segments.get(&id) {
                    None => {
                        self.unknown(id_at, "segment", &id, known.segments.keys().map(String::as_str), "segments");
                        return None;
                    }
                    Some(Subject::Contact) if subject == Subject::Account => {
                        let help = Some("a program of accounts starts on segments of accounts".into());
                        self.error(id_at, format!("`{id}` is a segment of contacts"), help);
                        return None;
                    }
                    Some(_) => {}
                }
                let id = Id::parse(&id).ok()?;
                Transition::from_segment(name == "segment_entered", id)
            }
            "milestone_achieved" | "milestone_missed" => {
                let (id, off) = positional(self, "milestone id", "invited_team")?;
                if !known.milestones.contains(&id) {
                    self.unknown(
                        here(self, off),
                        "milestone",
                        &id,
                        known.milestones.iter().map(String::as_str),
                        "milestones",
                    );
                    return None;
                }
                let id = Id::parse(&id).ok()?;
                if name == "milestone_missed" {
                    Transition::MilestoneMissed(id)
                } else {
                    Transition::MilestoneAchieved(id)
                }
            }
            "stage_entered" => {
                let (id, off) = positional(self, "stage id", "renewal")?;
                if !known.stages.contains(&id) {
                    self.unknown(here(self, off), "stage", &id, known.stages.iter().map(String::as_str), "stages");
                    return None;
                }
                Transition::StageEntered(Id::parse(&id).ok()?)
            }
            "health_band_changed" => {
                let mut from = None;
                let mut to = None;
                let mut ok = true;
                for (key, value, off) in &args {
                    let (key, key_off) = match key {
                        Some((key, key_off)) => (key.as_str(), *key_off),
                        // `health_band_changed('red')`: the band entered.
                        None if args.len() == 1 => ("to", *off),
                        None => {
                            let help = Some("name the bands: `health_band_changed(from: 'green', to: 'red')`".into());
                            self.error(here(self, *off), "`health_band_changed` takes `from:` and `to:`", help);
                            ok = false;
                            continue;
                        }
                    };
                    let slot = match key {
                        "from" => &mut from,
                        "to" => &mut to,
                        _ => {
                            let help =
                                suggestion(key, &["from", "to"]).or_else(|| Some("it takes `from:` and `to:`".into()));
                            self.error(
                                here(self, key_off),
                                format!("unknown argument `{key}` of `health_band_changed`"),
                                help,
                            );
                            ok = false;
                            continue;
                        }
                    };
                    match band(value) {
                        Some(b) => *slot = Some(b),
                        None => {
                            let help =
                                suggestion(value, BANDS).or_else(|| Some(format!("the bands are {}", list(BANDS))));
                            self.error(here(self, *off), format!("unknown health band `{value}`"), help);
                            ok = false;
                        }
                    }
                }
                if !ok {
                    return None;
                }
                if from.is_some() && from == to {
                    self.error(at_name, "`from` and `to` are the same band: the band would not change", None);
                    return None;
                }
                Transition::HealthBandChanged { from, to }
            }
            "event" => {
                let (event, off) = positional(self, "event name", "report_created")?;
                if event.trim().is_empty() {
                    self.error(here(self, off), "the event name is empty", None);
                    return None;
                }
                return Some(Trigger::Event(event));
            }
            "schedule" => {
                let (pattern, off) = positional(self, "cron pattern", "0 9 * * MON")?;
                let parser = croner::parser::CronParser::builder().seconds(croner::parser::Seconds::Disallowed).build();
                return match parser.parse(&pattern) {
                    Ok(cron) => Some(Trigger::Schedule(Box::new(Schedule { pattern, cron }))),
                    Err(e) => {
                        let help = Some(
                            "a cron pattern has five fields — minute hour day-of-month month day-of-week — in the workspace time zone, e.g. `0 9 * * MON`"
                                .into(),
                        );
                        self.error(
                            here(self, off),
                            format!("invalid schedule `{pattern}`: {}", cron_message(&e)),
                            help,
                        );
                        None
                    }
                };
            }
            _ => {
                let help = suggestion(&name, TRIGGERS).or_else(|| {
                    Some(format!("the triggers are {}, or a date trait such as `renewal_date - 90d`", list(TRIGGERS)))
                });
                self.error(at_name, format!("unknown trigger `{name}`"), help);
                return None;
            }
        };
        Some(Trigger::Transition(trigger))
    }

    /// `renewal_date - 90d`, `account.renewal_date`, `contact.birthday + 1d`.
    fn date_trigger(
        &mut self,
        source: &RuleSource,
        tokens: &[(Token, (usize, usize))],
        subject: Subject,
        known: &Known<'_>,
    ) -> Option<Trigger> {
        let (Token::Ident(name), (start, _)) = &tokens[0] else { return None };
        let at = self.at_in(source, *start);
        let (owner, bare) = match name.split_once('.') {
            Some(("account", rest)) => (Some(Subject::Account), rest),
            Some(("contact", rest)) => (Some(Subject::Contact), rest),
            Some(_) => {
                let help = Some("qualify a trait with `account.` or `contact.`".into());
                self.error(at, format!("cannot read `{name}` as a trait"), help);
                return None;
            }
            None => (None, name.as_str()),
        };
        let contact_ok = subject == Subject::Contact && owner != Some(Subject::Account);
        let found = match owner {
            Some(Subject::Contact) if subject == Subject::Account => {
                let help = Some("a program of accounts has no single contact".into());
                self.error(at, format!("`{name}` cannot be used in a program of accounts"), help);
                return None;
            }
            _ => contact_ok.then(|| known.contact_traits.get(bare).map(|t| (Subject::Contact, t))).flatten().or_else(
                || {
                    (owner != Some(Subject::Contact))
                        .then(|| known.account_traits.get(bare).map(|t| (Subject::Account, t)))
                        .flatten()
                },
            ),
        };
        let (trait_owner, ty) = match found {
            Some((o, ty)) => (o, ty.clone()),
            None => {
                let mut dates: Vec<&str> = known
                    .account_traits
                    .iter()
                    .filter(|(_, t)| matches!(t, Type::Date | Type::Timestamp))
                    .map(|(n, _)| n.as_str())
                    .collect();
                if subject == Subject::Contact {
                    dates.extend(
                        known
                            .contact_traits
                            .iter()
                            .filter(|(_, t)| matches!(t, Type::Date | Type::Timestamp))
                            .map(|(n, _)| n.as_str()),
                    );
                }
                let is_function = TRIGGERS.contains(&bare) || did_you_mean(bare, TRIGGERS.iter().copied()).is_some();
                if is_function {
                    let help = suggestion(bare, TRIGGERS).map_or(format!("call it: `{bare}('...')`"), |s| s);
                    let help = if TRIGGERS.contains(&bare) { format!("call it: `{bare}('...')`") } else { help };
                    self.error(at, format!("unknown trigger `{bare}`"), Some(help));
                } else {
                    let help = did_you_mean(bare, dates.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "a trigger is a transition such as {}, or a date trait such as `renewal_date - 90d`",
                                list(&["segment_entered('id')", "milestone_missed('id')"])
                            )
                        });
                    self.error(at, format!("unknown trigger or date trait `{bare}`"), Some(help));
                }
                return None;
            }
        };
        if !matches!(ty, Type::Date | Type::Timestamp) {
            let help = Some("a date trigger counts from a date or timestamp trait, e.g. `renewal_date - 90d`".into());
            self.error(at, format!("`{bare}` is a {ty} trait, not a date"), help);
            return None;
        }
        let mut offset_days: i64 = 0;
        match tokens.get(1..) {
            None | Some([]) => {}
            Some([(Token::Punct(sign @ ('+' | '-')), _), (Token::Duration(d), (d_start, _)), rest @ ..]) => {
                let d_at = self.at_in(source, *d_start);
                // A zero offset (`launch_date + 0d`) is the day itself; durations elsewhere
                // (a wait, a window) must be longer than zero.
                let zero = d.len() > 1
                    && d.bytes().take(d.len() - 1).all(|b| b == b'0')
                    && (d.ends_with('d') || d.ends_with('w'));
                let days = match parse_duration(d) {
                    _ if zero => 0,
                    Ok(dur) if dur.as_secs() % 86_400 == 0 => dur.as_secs() / 86_400,
                    Ok(_) => {
                        let help =
                            Some("a date trigger fires on a day: use whole days or weeks, e.g. `90d`, `2w`".into());
                        self.error(d_at, format!("the offset must be whole days or weeks, found `{d}`"), help);
                        return None;
                    }
                    Err(_) => {
                        let help = Some("write a whole number of days or weeks: `90d`, `2w`".into());
                        self.error(d_at, format!("`{d}` is not a duration"), help);
                        return None;
                    }
                };
                offset_days = if *sign == '-' { -days } else { days };
                if let Some((_, (s, _))) = rest.first() {
                    let rest_at = self.at_in(source, *s);
                    self.error(
                        rest_at,
                        "unexpected text after the trigger",
                        Some("a date trigger is `trait ± duration`, e.g. `renewal_date - 90d`".into()),
                    );
                    return None;
                }
            }
            Some([(_, (s, _)), ..]) => {
                let rest_at = self.at_in(source, *s);
                self.error(
                    rest_at,
                    "expected `+` or `-` and a duration after the date trait",
                    Some("e.g. `renewal_date - 90d`".into()),
                );
                return None;
            }
        }
        Some(Trigger::Date(DateTrigger { owner: trait_owner, name: bare.to_string(), offset_days: offset_days as i32 }))
    }

    fn unknown<'s>(&mut self, at: At, kind: &str, id: &str, known: impl Iterator<Item = &'s str>, plural: &str) {
        let known: Vec<&str> = known.collect();
        let help = did_you_mean(id, known.iter().copied()).map(|s| format!("did you mean `{s}`?")).or_else(|| {
            Some(if known.is_empty() {
                format!("no {plural} are defined")
            } else {
                format!("the {plural} are {}", list(&known))
            })
        });
        self.error(at, format!("unknown {kind} `{id}`"), help);
    }

    /// The file position of byte `byte` of a scalar's decoded text.
    fn at_in(&self, source: &RuleSource, byte: usize) -> At {
        let text = self.files[source.at.file].text;
        At { file: source.at.file, offset: yaml::value_offset(text, source.at.offset, &source.text, byte) }
    }

    // ---- steps -------------------------------------------------------------------------

    fn steps(
        &mut self,
        file: usize,
        items: &[Node],
        path: &[(usize, bool)],
        cursor: &mut StepCursor,
        known: &Known<'_>,
    ) -> Option<Vec<StepDecl>> {
        let mut out = Some(Vec::new());
        for item in items {
            match (self.step(file, item, path, cursor, known), &mut out) {
                (Some(s), Some(list)) => list.push(s),
                _ => out = None,
            }
        }
        out
    }

    fn step(
        &mut self,
        file: usize,
        node: &Node,
        path: &[(usize, bool)],
        cursor: &mut StepCursor,
        known: &Known<'_>,
    ) -> Option<StepDecl> {
        let at = At { file, offset: node.offset };
        let index = cursor.next_index;
        cursor.next_index += 1;
        let auto = || Id::parse(&format!("step{index}")).ok();
        // `- exit` alone.
        if let Value::Str(s) = &node.value {
            if s == "exit" {
                let id = auto()?;
                cursor.flat.push(FlatStep { id: id.clone(), kind: "exit", index, path: path.to_vec() });
                if !self.claim(&mut cursor.ids, "step", &id, at, "step ids are unique within a program") {
                    return None;
                }
                return Some(StepDecl { id, at, index, path: path.to_vec(), kind: StepDeclKind::Exit });
            }
            let help = suggestion(s, STEP_KINDS).unwrap_or_else(|| {
                format!("a step is a mapping with one of {}, e.g. `- send: email`", list(STEP_KINDS))
            });
            self.error(at, format!("expected a step, found `{s}`"), Some(help));
            return None;
        }
        let Value::Map(entries) = &node.value else {
            self.error(at, format!("expected a mapping for a step, found {}", node.value.kind()), None);
            return None;
        };
        let kinds: Vec<(&str, usize)> = entries
            .iter()
            .filter_map(|(k, _)| match &k.value {
                Value::Str(s) => STEP_KINDS.iter().find(|kind| **kind == s.as_str()).map(|kind| (*kind, k.offset)),
                _ => None,
            })
            .collect();
        let kind = match kinds.as_slice() {
            [] => {
                let fields = self.fields(file, node, "a step", ALL_STEP_KEYS)?;
                if !fields.suggested.iter().any(|s| STEP_KINDS.contains(s)) {
                    let help = Some(format!("add one of {}", list(STEP_KINDS)));
                    self.error(at, "a step needs one of `send`, `wait`, `if`, `task`, `update` or `exit`", help);
                }
                return None;
            }
            [(kind, _)] => *kind,
            [(first, _), (second, offset), ..] => {
                let help = Some("a step does one thing: split it into two steps".into());
                self.error(
                    At { file, offset: *offset },
                    format!("a step cannot be both `{first}` and `{second}`"),
                    help,
                );
                return None;
            }
        };
        let (allowed, what): (&[&'static str], String) = match kind {
            "send" => (SEND_KEYS, "a `send` step".into()),
            "wait" => (WAIT_KEYS, "a `wait` step".into()),
            "if" => (IF_KEYS, "an `if` step".into()),
            "task" => (TASK_KEYS, "a `task` step".into()),
            "update" => (UPDATE_KEYS, "an `update` step".into()),
            _ => (EXIT_KEYS, "an `exit` step".into()),
        };
        let fields = self.fields(file, node, &what, allowed)?;
        let id = match fields.get("id") {
            Some(n) => self.id(file, Some(n)),
            None => auto(),
        };
        let id_at = fields.get("id").map_or(at, |n| At { file, offset: n.offset });
        let id = id.filter(|id| self.claim(&mut cursor.ids, "step", id, id_at, "step ids are unique within a program"));
        let kind_node = fields.get(kind)?;
        if let Some(id) = &id {
            cursor.flat.push(FlatStep { id: id.clone(), kind, index, path: path.to_vec() });
        }
        let decl = match kind {
            "send" => StepDeclKind::Send(self.send_step(file, &fields, kind_node, id.clone(), at, known)),
            "wait" => StepDeclKind::Wait(self.wait_step(file, kind_node)),
            "if" => {
                let condition = self.rule(file, Some(kind_node), "if");
                let then_node = self.require(
                    &fields,
                    "then",
                    &what,
                    Some("the steps when the condition holds, e.g. `then: [ { send: email, template: nudge } ]`"),
                );
                let mut branch_path = path.to_vec();
                branch_path.push((index, true));
                let then = match then_node {
                    Some(n) => {
                        let items = self.list(file, n, "then");
                        if items.is_empty() && matches!(n.value, Value::Seq(_) | Value::Null) {
                            self.error(At { file, offset: n.offset }, "`then` has no steps", None);
                        }
                        self.steps(file, items, &branch_path, cursor, known)
                    }
                    None => None,
                };
                branch_path.pop();
                branch_path.push((index, false));
                let otherwise = match fields.get("else") {
                    Some(n) => {
                        let items = self.list(file, n, "else");
                        self.steps(file, items, &branch_path, cursor, known)
                    }
                    None => Some(Vec::new()),
                };
                StepDeclKind::If { condition, then: then?, otherwise: otherwise? }
            }
            "task" => StepDeclKind::Task(self.task_step(file, &fields, kind_node, id.clone(), at, known)),
            "update" => StepDeclKind::Update(self.update_step(file, kind_node, cursor.subject, known)),
            _ => {
                if !matches!(kind_node.value, Value::Null | Value::Bool(true)) {
                    let help = Some("write `- exit` or `- { id: stop, exit: true }`".into());
                    self.error(At { file, offset: kind_node.offset }, "`exit` takes no value", help);
                    return None;
                }
                StepDeclKind::Exit
            }
        };
        Some(StepDecl { id: id?, at, index, path: path.to_vec(), kind: decl })
    }

    fn send_step(
        &mut self,
        file: usize,
        fields: &super::Fields<'_>,
        channel_node: &Node,
        id: Option<Id>,
        at: At,
        known: &Known<'_>,
    ) -> Option<SendStep> {
        let channel = self.channel(file, channel_node);
        let on_cap = match fields.get("on_cap") {
            None => Some(None),
            Some(n) => self.on_cap(file, n).map(Some),
        };
        let template = fields.get("template");
        let split = fields.get("split");
        let mut variants = Some(Vec::new());
        match (template, split) {
            (None, None) if fields.suggested.contains(&"template") || fields.suggested.contains(&"split") => {
                variants = None;
            }
            (None, None) => {
                let help = Some("name what to send: `template: welcome`, or an A/B test: `split: { welcome_a: 50%, welcome_b: 50% }`".into());
                self.error(fields.at, "missing key `template` in a `send` step", help);
                variants = None;
            }
            (Some(_), Some(s)) => {
                let help = Some("a split names its templates itself: remove `template`".into());
                self.error(
                    At { file, offset: s.offset },
                    "a `send` step has a `template` or a `split`, not both",
                    help,
                );
                variants = None;
            }
            (Some(t), None) => match self.template_ref(file, t, channel, known) {
                Some(template) => variants = Some(vec![Variant { template, percent: 100.0 }]),
                None => variants = None,
            },
            (None, Some(s)) => {
                let Value::Map(entries) = &s.value else {
                    let help = Some("e.g. `split: { welcome_a: 50%, welcome_b: 50% }`".into());
                    self.error(
                        At { file, offset: s.offset },
                        format!("expected a mapping of templates to shares for `split`, found {}", s.value.kind()),
                        help,
                    );
                    return None;
                };
                if entries.len() < 2 {
                    let help =
                        Some("a split sends one of several templates: list at least two, or use `template`".into());
                    self.error(At { file, offset: s.offset }, "a `split` needs at least two variants", help);
                    variants = None;
                }
                let mut total = 0.0;
                let mut seen = BTreeSet::new();
                for (key, share) in entries {
                    let template = self.template_ref(file, key, channel, known);
                    if let Some(t) = &template
                        && !seen.insert(t.clone())
                    {
                        self.error(
                            At { file, offset: key.offset },
                            format!("template `{t}` is listed twice in the split"),
                            None,
                        );
                        variants = None;
                        continue;
                    }
                    let percent = self.percent(file, share, "split").and_then(|p| {
                        if p > 0.0 {
                            return Some(p);
                        }
                        self.error(
                            At { file, offset: share.offset },
                            format!("a split share must be above 0%, found {p}%"),
                            None,
                        );
                        None
                    });
                    total += percent.unwrap_or(0.0);
                    match (template, percent, &mut variants) {
                        (Some(template), Some(percent), Some(list)) => list.push(Variant { template, percent }),
                        _ => variants = None,
                    }
                }
                if variants.is_some() && (total - 100.0).abs() > 1e-9 {
                    let help = Some(
                        "give each variant its share of the enrollments, e.g. `{ welcome_a: 50%, welcome_b: 50% }`"
                            .into(),
                    );
                    self.error(
                        At { file, offset: s.offset },
                        format!("the split's shares add up to {}%, not 100%", round2(total)),
                        help,
                    );
                    variants = None;
                }
            }
        }
        Some(SendStep { id: id?, channel: channel?, variants: variants?, on_cap: on_cap?, location: self.location(at) })
    }

    fn template_ref(&mut self, file: usize, node: &Node, channel: Option<Channel>, known: &Known<'_>) -> Option<Id> {
        let at = At { file, offset: node.offset };
        let name = self.text(file, node, "template")?;
        let Some(template_channel) = known.templates.get(&name) else {
            self.unknown(at, "template", &name, known.templates.keys().map(String::as_str), "templates");
            return None;
        };
        if let Some(channel) = channel
            && *template_channel != channel
        {
            let help = Some(format!(
                "send it with `send: {template_channel}`, or use {} {channel} template",
                channel_article(channel)
            ));
            self.error(at, format!("template `{name}` is written for {template_channel}, not {channel}"), help);
            return None;
        }
        Id::parse(&name).ok()
    }

    fn wait_step(&mut self, file: usize, node: &Node) -> Option<WaitDecl> {
        let at = At { file, offset: node.offset };
        let help = "`wait: 3d`, or `wait: { until: \"clicked('welcome')\", timeout: 7d }`";
        match &node.value {
            Value::Map(_) => {
                let fields = self.fields(file, node, "`wait`", WAIT_UNTIL_KEYS)?;
                let until = self.require(&fields, "until", "`wait`", Some(help));
                let timeout = self.require(
                    &fields,
                    "timeout",
                    "`wait`",
                    Some("the longest wait, e.g. `timeout: 7d`: a condition may never hold"),
                );
                let rule = self.rule(file, until, "until");
                let timeout = timeout.and_then(|n| self.duration(file, n, "timeout"));
                Some(WaitDecl::Until(rule?, timeout?))
            }
            Value::Null => {
                self.error(at, "`wait` needs a duration or a condition", Some(help.into()));
                None
            }
            _ => self.duration(file, node, "wait").map(WaitDecl::For),
        }
    }

    fn task_step(
        &mut self,
        file: usize,
        fields: &super::Fields<'_>,
        title_node: &Node,
        id: Option<Id>,
        at: At,
        known: &Known<'_>,
    ) -> Option<TaskStep> {
        let title = match &title_node.value {
            Value::Str(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Str(_) | Value::Null => {
                let help = Some("say what to do: `task: Call the admin about team invites`".into());
                self.error(At { file, offset: title_node.offset }, "a task needs a title", help);
                None
            }
            _ => self.label(file, Some(title_node), "task"),
        };
        let notes = self.label(file, fields.get("notes"), "notes");
        let assign_node = fields.get("assign");
        let strategy_node = fields.get("strategy");
        let assign = match assign_node {
            None => {
                let help = Some("`assign: owner` (the account's owner) or `assign: pool('team')`".into());
                self.error(fields.at, "missing key `assign` in a `task` step", help);
                None
            }
            Some(n) => self.assignee(file, n, strategy_node, known),
        };
        let due = match fields.get("due") {
            None => Some(None),
            Some(n) => self.duration(file, n, "due").map(Some),
        };
        let priority = match fields.get("priority") {
            None => Some(3),
            Some(n) => self.whole(file, n, "priority", 1, 5).map(|p| p as u8),
        };
        Some(TaskStep {
            id: id?,
            title: title?,
            notes,
            assign: assign?,
            due: due?,
            priority: priority?,
            location: self.location(at),
        })
    }

    fn assignee(
        &mut self,
        file: usize,
        node: &Node,
        strategy_node: Option<&Node>,
        known: &Known<'_>,
    ) -> Option<Assignee> {
        let at = At { file, offset: node.offset };
        let help = "`assign: owner` (the account's owner) or `assign: pool('team')`";
        let text = match &node.value {
            Value::Str(s) => s.trim().to_string(),
            other => {
                self.error(at, format!("expected an assignee for `assign`, found {}", other.kind()), Some(help.into()));
                return None;
            }
        };
        if text == "owner" {
            if let Some(s) = strategy_node {
                let help = Some("a strategy shares tasks among a pool: `assign: pool('team')`".into());
                self.error(At { file, offset: s.offset }, "`strategy` applies to a pool, not to the owner", help);
                return None;
            }
            return Some(Assignee::Owner);
        }
        let pool = text
            .strip_prefix("pool(")
            .and_then(|r| r.strip_suffix(')'))
            .map(str::trim)
            .and_then(|r| r.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')));
        let Some(pool) = pool else {
            let help = suggestion(&text, &["owner"]).unwrap_or_else(|| help.into());
            self.error(at, format!("unknown assignee `{text}`"), Some(help));
            return None;
        };
        let Ok(name) = Id::parse(pool) else {
            let help = format!("pool names are ids, e.g. `pool('{}')`", super::slug(pool));
            self.error(at, format!("`{pool}` is not a valid pool name"), Some(help));
            return None;
        };
        let defined = known.pools.iter().any(|p| p == name.as_str());
        if !defined {
            let help = match did_you_mean(pool, known.pools.iter().map(String::as_str)) {
                Some(near) => format!("did you mean `pool('{near}')`?"),
                None if known.pools.is_empty() => format!(
                    "no pools are defined: add one to a workspace file, e.g. `pools: {{ {name}: {{ members: [ana@acme.example] }} }}`"
                ),
                None => {
                    let pools: Vec<&str> = known.pools.iter().map(String::as_str).collect();
                    format!("the pools are {}; define `{name}` under `pools:`", list(&pools))
                }
            };
            self.error(at, format!("unknown pool `{name}`"), Some(help));
        }
        let strategy = match strategy_node {
            None => PoolStrategy::RoundRobin,
            Some(s) => {
                let text = self.text(file, s, "strategy")?;
                match text.as_str() {
                    "round_robin" => PoolStrategy::RoundRobin,
                    "least_loaded" => PoolStrategy::LeastLoaded,
                    _ => {
                        let help = suggestion(&text, STRATEGIES).or_else(|| {
                            Some(
                                "`round_robin` takes turns; `least_loaded` picks whoever has the fewest open tasks"
                                    .into(),
                            )
                        });
                        self.error(At { file, offset: s.offset }, format!("unknown strategy `{text}`"), help);
                        return None;
                    }
                }
            }
        };
        defined.then_some(Assignee::Pool { name, strategy })
    }

    fn update_step(
        &mut self,
        file: usize,
        node: &Node,
        subject: Subject,
        known: &Known<'_>,
    ) -> Option<Vec<(Subject, String, Type, RuleSource)>> {
        let at = At { file, offset: node.offset };
        let Value::Map(entries) = &node.value else {
            let help = Some("e.g. `update: { onboarding_nudged: true }`".into());
            self.error(
                at,
                format!("expected a mapping of traits to values for `update`, found {}", node.value.kind()),
                help,
            );
            return None;
        };
        if entries.is_empty() {
            self.error(at, "`update` sets no trait", Some("e.g. `update: { onboarding_nudged: true }`".into()));
            return None;
        }
        let mut out = Some(Vec::new());
        for (key, value) in entries {
            let key_at = At { file, offset: key.offset };
            let Some(name) = self.text(file, key, "update") else {
                out = None;
                continue;
            };
            let (owner, bare) = match name.split_once('.') {
                Some(("account", rest)) => (Subject::Account, rest.to_string()),
                Some(("contact", rest)) if subject == Subject::Contact => (Subject::Contact, rest.to_string()),
                _ => (subject, name.clone()),
            };
            let custom = match owner {
                Subject::Account => &known.custom.account,
                Subject::Contact => &known.custom.contact,
            };
            let owner_name = if owner == Subject::Account { "account" } else { "contact" };
            let builtin = match owner {
                Subject::Account => known.account_traits.contains_key(&bare),
                Subject::Contact => known.contact_traits.contains_key(&bare),
            };
            let Some(ty) = custom.get(&bare) else {
                let elsewhere = (owner == Subject::Contact && !name.starts_with("contact."))
                    .then(|| (known.custom.account.contains_key(&bare), known.account_traits.contains_key(&bare)))
                    .filter(|(custom, builtin)| *custom || *builtin);
                if let Some((true, _)) = elsewhere {
                    let help = Some(format!("did you mean `account.{bare}`?"));
                    self.error(key_at, format!("unknown custom contact trait `{bare}`"), help);
                } else if let Some((false, _)) = elsewhere {
                    let help = Some(
                        "built-in traits come from your data; declare a custom one under `traits: account:`"
                            .to_string(),
                    );
                    self.error(
                        key_at,
                        format!("`{bare}` is a built-in account trait: programs set custom traits only"),
                        help,
                    );
                } else if builtin {
                    let help = Some(format!(
                        "built-in traits come from your data; declare a custom one under `traits: {owner_name}:`"
                    ));
                    self.error(
                        key_at,
                        format!("`{bare}` is a built-in {owner_name} trait: programs set custom traits only"),
                        help,
                    );
                } else {
                    let help = did_you_mean(&bare, custom.keys().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some(format!("declare it under `traits: {owner_name}:`")));
                    self.error(key_at, format!("unknown custom {owner_name} trait `{bare}`"), help);
                }
                out = None;
                continue;
            };
            let rule = self.rule(file, Some(value), &name);
            match (rule, &mut out) {
                (Some(r), Some(list)) => list.push((owner, bare, ty.rule_type(), r)),
                _ => out = None,
            }
        }
        out
    }

    // ---- compiling programs ------------------------------------------------------------

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

    fn compile_program(&mut self, d: ProgramDecl, schema: &Schema, table: &mut AggregateTable) -> Option<Program> {
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

impl Transition {
    fn from_segment(entered: bool, id: Id) -> Transition {
        if entered { Transition::SegmentEntered(id) } else { Transition::SegmentExited(id) }
    }
}

fn band(name: &str) -> Option<Band> {
    Some(match name {
        "red" => Band::Red,
        "yellow" => Band::Yellow,
        "green" => Band::Green,
        _ => return None,
    })
}

fn channel_article(channel: Channel) -> &'static str {
    match channel {
        Channel::Email | Channel::InApp | Channel::Sms => "an",
        Channel::Slack | Channel::Webhook => "a",
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// croner's message, without its type prefix and trailing full stop.
fn cron_message(e: &croner::errors::CronError) -> String {
    let text = e.to_string();
    let text = text
        .strip_prefix("Invalid pattern: ")
        .or_else(|| text.strip_prefix("Component error: "))
        .or_else(|| text.strip_prefix("Pattern contains illegal characters: "))
        .unwrap_or(&text);
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Splits a trigger into tokens with their byte spans.
fn tokenize(text: &str) -> Vec<(Token, (usize, usize))> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let c = text.get(i..).and_then(|t| t.chars().next()).unwrap_or(' ');
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < text.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                i += 1;
            }
            out.push((Token::Ident(text.get(start..i).unwrap_or_default().to_string()), (start, i)));
        } else if c.is_ascii_digit() {
            while i < text.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            out.push((Token::Duration(text.get(start..i).unwrap_or_default().to_string()), (start, i)));
        } else if c == '\'' {
            i += 1;
            let mut value = String::new();
            let mut closed = false;
            while i < text.len() {
                let ch = text.get(i..).and_then(|t| t.chars().next()).unwrap_or('\'');
                i += ch.len_utf8();
                if ch == '\'' {
                    if text.get(i..).is_some_and(|t| t.starts_with('\'')) {
                        value.push('\'');
                        i += 1;
                    } else {
                        closed = true;
                        break;
                    }
                } else {
                    value.push(ch);
                }
            }
            // An unclosed string reads as a stray quote: reported where it starts.
            let token = if closed { Token::Str(value) } else { Token::Bad('\'') };
            out.push((token, (start, i)));
        } else if "(),:+-".contains(c) {
            i += 1;
            out.push((Token::Punct(c), (start, i)));
        } else {
            i += c.len_utf8();
            out.push((Token::Bad(c), (start, i)));
        }
    }
    out
}
