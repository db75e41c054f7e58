//! Segments: their shape, and their rules compiled against the workspace's schema.

use std::collections::BTreeMap;

use cairn_rules::{AggregateTable, Schema, Subject, Type};

use super::*;
use crate::model::Segment;
use crate::order::Definition;
use crate::suggest::did_you_mean;
use crate::yaml::Node;

const SEGMENT_KEYS: &[&str] = &["id", "name", "of", "where"];

impl Checker<'_> {
    pub(super) fn segment(&mut self, file: usize, node: &Node, seen: &mut BTreeMap<String, At>) -> Option<SegmentDecl> {
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

    pub(super) fn subject(&mut self, file: usize, node: &Node) -> Option<Subject> {
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

    pub(super) fn compile_segments(
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
}
