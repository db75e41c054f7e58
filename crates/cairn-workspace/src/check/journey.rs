//! The journey: stages and milestones, their deadlines (`within: 14d`) and rules.

use std::collections::BTreeMap;

use cairn_rules::{AggregateTable, Rule, Schema, Subject, Type};
use jiff::SignedDuration;

use super::*;
use crate::model::{Id, Journey, Milestone, Stage};
use crate::order::Definition;
use crate::suggest::did_you_mean;
use crate::yaml::{Node, Value};

const JOURNEY_KEYS: &[&str] = &["anchor", "stages"];
const STAGE_KEYS: &[&str] = &["id", "name", "from", "until", "milestones"];

const MILESTONE_KEYS: &[&str] = &["id", "name", "when", "within", "value"];

impl Checker<'_> {
    pub(super) fn journey(
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

    pub(super) fn stage(
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

    pub(super) fn milestone(
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
    pub(super) fn duration(&mut self, file: usize, node: &Node, key: &str) -> Option<SignedDuration> {
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

    pub(super) fn compile_journey(
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
