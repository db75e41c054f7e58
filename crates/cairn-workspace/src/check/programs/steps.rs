//! A program's steps: send, wait, if, task, update and exit, each with its id, and the
//! references each makes (templates, pools, traits, earlier steps).

use std::collections::BTreeSet;

use cairn_rules::{Subject, Type};

use super::*;
use crate::check::{At, Checker, RuleSource, list};
use crate::check::{channel_article, suggestion};
use crate::model::Id;
use crate::programs::{Assignee, Channel, PoolStrategy, SendStep, TaskStep, Variant};
use crate::suggest::did_you_mean;
use crate::yaml::{Node, Value};

impl Checker<'_> {
    pub(super) fn steps(
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

    pub(super) fn step(
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

    pub(super) fn send_step(
        &mut self,
        file: usize,
        fields: &crate::check::Fields<'_>,
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

    pub(super) fn template_ref(
        &mut self,
        file: usize,
        node: &Node,
        channel: Option<Channel>,
        known: &Known<'_>,
    ) -> Option<Id> {
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

    pub(super) fn wait_step(&mut self, file: usize, node: &Node) -> Option<WaitDecl> {
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

    pub(super) fn task_step(
        &mut self,
        file: usize,
        fields: &crate::check::Fields<'_>,
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

    pub(super) fn assignee(
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
            let help = format!("pool names are ids, e.g. `pool('{}')`", crate::check::slug(pool));
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

    pub(super) fn update_step(
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
}
