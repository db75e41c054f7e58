//! The workspace as a whole: the top-level sections of every file gathered, the settings
//! (`workspace:`) and custom traits read, then each section checked and compiled in turn
//! and the definitions ordered by what they read.

use std::collections::BTreeMap;

use cairn_rules::{AggregateTable, Schema, Subject, Type};
use jiff::tz::TimeZone;

use super::*;
use crate::insights::Insights;
use crate::model::{BUILTIN_ACCOUNT_TRAITS, BUILTIN_CONTACT_TRAITS, CustomTraits, TraitType, Workspace};
use crate::order::evaluation_order;
use crate::programs::Guardrails;
use crate::suggest::did_you_mean;
use crate::yaml::{Node, Value};

const TOP_KEYS: &[&str] =
    &["workspace", "traits", "segments", "journey", "health", "programs", "templates", "pools", "staffing", "insights"];
const WORKSPACE_KEYS: &[&str] = &["name", "time_zone", "frequency_caps", "quiet_hours", "on_cap"];

impl Checker<'_> {
    pub(super) fn check_trees(&mut self, trees: &[(usize, Node)]) -> Option<Workspace> {
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
        let mut staffing_at: Option<At> = None;
        let mut staffing_node: Option<(usize, &Node)> = None;
        let mut insights_at: Option<At> = None;
        let mut insights_node: Option<(usize, &Node)> = None;
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
                    "staffing" => {
                        if self.once(&mut staffing_at, key_at, "staffing") {
                            staffing_node = Some((file, node));
                        }
                    }
                    "insights" => {
                        if self.once(&mut insights_at, key_at, "insights") {
                            insights_node = Some((file, node));
                        }
                    }
                    _ => template_nodes.push((file, node)),
                }
            }
        }

        let account_traits = all_traits(&BUILTIN_ACCOUNT_TRAITS, &traits.account);
        let contact_traits = all_traits(&BUILTIN_CONTACT_TRAITS, &traits.contact);

        let mut segment_ids = BTreeMap::new();
        let segments: Vec<SegmentDecl> =
            segment_nodes.iter().filter_map(|(file, node)| self.segment(*file, node, &mut segment_ids)).collect();
        let mut journey = journey_node.and_then(|(file, node)| self.journey(file, node, journey_at, &account_traits));
        self.add_probe(journey.as_mut());
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
        let staffing = staffing_node.and_then(|(file, node)| {
            let names = staffing::StaffingNames {
                segments: &known.segments,
                stages: &known.stages,
                journey: journey_at.is_some(),
            };
            self.staffing(file, node, &names)
        });
        let insights = insights_node.map(|(file, node)| {
            let names = insights::PeerNames { segments: &known.segments, account_traits: &account_traits };
            self.insights(file, node, &names)
        });
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
        let mut context_schema = content::context_schema(&traits, &schema.milestones, &schema.pillars);
        let insights = match insights {
            Some(decl) => {
                decl.declare(&mut context_schema);
                self.compile_insights(decl, &schema, &mut table)
            }
            None => Some(Insights::default()),
        };
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
            staffing,
            insights: insights?,
            aggregates: table,
            order,
            sources: Vec::new(),
        })
    }

    /// Adds the probe milestone (if any) to the journey's last stage, under an id no
    /// milestone has (`rule`, else `rule_2`, …).
    fn add_probe(&mut self, journey: Option<&mut JourneyDecl>) {
        let Some((probe, file)) = self.probe else { return };
        let at = At { file, offset: 0 };
        if probe.rule.trim().is_empty() {
            self.error(
                at,
                "the rule is empty",
                Some("write a condition, e.g. `count('report_created', since_anchor) >= 3`".to_string()),
            );
            return;
        }
        let Some(journey) = journey else {
            let help =
                "a rule is tested from the journey's anchor: add a `journey:` with its `anchor` to the workspace";
            self.error(at, "the workspace has no journey", Some(help.to_string()));
            return;
        };
        let taken: BTreeSet<String> = journey
            .stages
            .iter()
            .flat_map(|s| s.milestones.iter())
            .filter_map(|m| Some(m.id.as_ref()?.to_string()))
            .collect();
        let id = (1..)
            .map(|n| if n == 1 { "rule".to_string() } else { format!("rule_{n}") })
            .find(|id| !taken.contains(id))
            .and_then(|id| Id::parse(&id).ok());
        let Some(stage) = journey.stages.last_mut() else { return };
        stage.milestones.push(MilestoneDecl {
            id,
            at,
            name: Some(probe.rule.trim().to_string()),
            rule: Some(RuleSource { text: probe.rule.trim_end().to_string(), at }),
            within: Some(probe.within),
            value: false,
        });
    }

    /// Marks a once-only top-level key as seen; reports a second one.
    pub(super) fn once(&mut self, seen: &mut Option<At>, at: At, key: &str) -> bool {
        if let Some(first) = *seen {
            let help = Some(format!("a workspace has one `{key}` section; merge the two"));
            self.error(at, format!("`{key}` is already defined at {}", self.place(first)), help);
            return false;
        }
        *seen = Some(at);
        true
    }

    pub(super) fn workspace_settings(&mut self, file: usize, node: &Node) -> (Option<(TimeZone, String)>, Guardrails) {
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

    pub(super) fn time_zone(&mut self, file: usize, fields: &Fields<'_>) -> Option<(TimeZone, String)> {
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

    pub(super) fn traits(
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
}

fn all_traits(builtins: &[(&str, TraitType)], custom: &BTreeMap<String, TraitType>) -> BTreeMap<String, Type> {
    builtins
        .iter()
        .map(|(n, t)| (n.to_string(), t.rule_type()))
        .chain(custom.iter().map(|(n, t)| (n.clone(), t.rule_type())))
        .collect()
}
