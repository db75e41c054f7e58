//! Template parts as Liquid: each parsed with `cairn-content` and its variables checked
//! against what a render context of this workspace can hold, every problem a diagnostic
//! pointing into the YAML scalar (inline parts) or the template file (`file:` parts).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cairn_content::{
    ContentError, ContextSchema, MessageTemplate, Origin, ParsedTemplate, Part, PartSource, check_variables,
};

use super::{At, Checker};
use crate::diagnostic::{Diagnostic, Location};
use crate::model::CustomTraits;
use crate::programs::{Template, TemplateText, TextOrigin};
use crate::yaml;

/// A template as read, with where each inline part's scalar starts in its file.
pub(super) struct TemplateDecl {
    pub(super) template: Template,
    /// Part key (`subject`, …) → the start of its YAML scalar, for parts written inline.
    pub(super) inline: BTreeMap<&'static str, At>,
}

/// The links a send carries beside the standard ones (`unsubscribe_url`,
/// `preferences_url`, `nps_survey_url`, `csat_survey_url`): the one-click survey answers,
/// each a signed link the runner supplies (`nps_0`…`nps_10`, `csat_1`…`csat_5`).
fn survey_answer_links() -> impl Iterator<Item = String> {
    (0..=10).map(|score| format!("nps_{score}")).chain((1..=5).map(|score| format!("csat_{score}")))
}

/// What a template of this workspace may refer to: its traits, milestones, pillars and
/// the links of a send (the metrics, benchmarks and leaderboards `insights:` declares are
/// added by `InsightsDecl::declare`).
pub(super) fn context_schema(
    traits: &CustomTraits,
    milestones: &BTreeSet<String>,
    pillars: &BTreeSet<String>,
) -> ContextSchema {
    ContextSchema {
        account_traits: traits.account.keys().cloned().collect(),
        contact_traits: traits.contact.keys().cloned().collect(),
        milestones: milestones.clone(),
        pillars: pillars.clone(),
        links: survey_answer_links().collect(),
        ..ContextSchema::default()
    }
}

/// A message of `parts`; a body it lacks is `empty`.
fn message(parts: &[(Part, PartSource)], empty: &PartSource) -> MessageTemplate {
    let find = |wanted: Part| parts.iter().find(|(part, _)| *part == wanted).map(|(_, source)| source.clone());
    MessageTemplate {
        subject: find(Part::Subject),
        preheader: find(Part::Preheader),
        html: find(Part::Html).unwrap_or_else(|| empty.clone()),
        text: find(Part::Text).unwrap_or_else(|| empty.clone()),
    }
}

/// The 0-based byte offset of a 1-based (line, character column) in `text`, kept within
/// its line.
fn byte_offset(text: &str, line: u32, column: u32) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text.get(start..).and_then(|rest| rest.find('\n')) {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let rest = text.get(start..).unwrap_or("");
    let line_text = rest.split('\n').next().unwrap_or(rest);
    let within = line_text.char_indices().nth(column.saturating_sub(1) as usize).map_or(line_text.len(), |(i, _)| i);
    start + within
}

impl Checker<'_> {
    /// Parses every template's parts and checks their variables against `schema`: each
    /// syntax error and each reference to something no context can hold becomes a
    /// diagnostic. Returns the templates that passed, by id.
    pub(super) fn check_template_content(
        &mut self,
        decls: &[TemplateDecl],
        schema: &ContextSchema,
        assets: &BTreeMap<String, (String, String)>,
    ) -> BTreeMap<String, Arc<ParsedTemplate>> {
        let mut parsed = BTreeMap::new();
        // A file shared by two templates would report its problems twice.
        let mut reported = BTreeSet::new();
        for decl in decls {
            let t = &decl.template;
            // A body the template does not have renders empty; it starts at the template's id.
            let empty = PartSource::new("", Origin::new(t.location.file.clone(), t.location.line, t.location.column));
            let parts: Vec<(Part, PartSource)> = t
                .parts()
                .filter_map(|(key, text)| {
                    let part = Part::ALL.into_iter().find(|p| p.name() == key)?;
                    let origin = self.part_origin(text, decl.inline.get(key).copied());
                    Some((part, PartSource::new(text.text.clone(), origin)))
                })
                .collect();
            let errors = match message(&parts, &empty).parse() {
                Ok(template) => {
                    let errors = check_variables(&template, schema);
                    if errors.is_empty() {
                        parsed.insert(t.id.to_string(), Arc::new(template));
                    }
                    errors
                }
                Err(mut errors) => {
                    // liquid stops a part at its first syntax error, but the other parts'
                    // variables can still be checked: each on its own.
                    let broken: BTreeSet<Part> = errors.iter().map(|e| e.part).collect();
                    for one in parts.iter().filter(|(part, _)| !broken.contains(part)) {
                        if let Ok(template) = message(std::slice::from_ref(one), &empty).parse() {
                            errors.extend(check_variables(&template, schema));
                        }
                    }
                    errors
                }
            };
            for e in &errors {
                self.content_error(decl, e, assets, &mut reported);
            }
        }
        parsed
    }

    /// Where a part's first character is: line 1, column 1 of a template file; in the
    /// YAML, after the quote of a quoted scalar, and for a block scalar with its
    /// indentation (which YAML removed from every line).
    fn part_origin(&self, text: &TemplateText, inline_at: Option<At>) -> Origin {
        match (&text.origin, inline_at) {
            (TextOrigin::File { file, .. }, _) => Origin::new(file.clone(), 1, 1),
            (TextOrigin::Inline { location, quoted }, Some(at)) => {
                let file_text = self.files[at.file].text;
                let line_start = file_text.get(..at.offset).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
                let starts_line = file_text.get(line_start..at.offset).is_some_and(|t| t.trim().is_empty());
                let origin = Origin::new(location.file.clone(), location.line, location.column + u32::from(*quoted));
                if starts_line && !quoted { origin.with_indent(location.column.saturating_sub(1)) } else { origin }
            }
            (TextOrigin::Inline { location, .. }, None) => {
                Origin::new(location.file.clone(), location.line, location.column)
            }
        }
    }

    /// A template problem as a diagnostic at its exact place: in the template file, or
    /// mapped through the YAML scalar (escapes, folded lines and indentation included).
    fn content_error(
        &mut self,
        decl: &TemplateDecl,
        e: &ContentError,
        assets: &BTreeMap<String, (String, String)>,
        reported: &mut BTreeSet<(String, u32, u32, String)>,
    ) {
        let key = e.part.name();
        let part = decl.template.parts().find(|(k, _)| *k == key).map(|(_, text)| text);
        let (Some(text), Some(at)) = (part, decl.inline.get(key).copied()) else {
            let location = Location { file: e.file.clone(), line: e.line, column: e.column };
            let mut d = Diagnostic::at(&location, e.message.clone(), e.help.clone());
            d.source_line = assets
                .get(&e.file)
                .and_then(|(text, _)| text.lines().nth(e.line.saturating_sub(1) as usize))
                .map(str::to_owned);
            if reported.insert((d.file.clone(), d.line, d.column, d.message.clone())) {
                self.diagnostics.push(d);
            }
            return;
        };
        // Back from the file position to the position inside the part, then through the
        // scalar's source text to the byte it came from.
        let origin = self.part_origin(text, Some(at));
        let line_in_part = e.line.saturating_sub(origin.line) + 1;
        let column_in_part = if line_in_part == 1 {
            e.column.saturating_sub(origin.column) + 1
        } else {
            e.column.saturating_sub(origin.indent)
        };
        let target = byte_offset(&text.text, line_in_part, column_in_part);
        let offset = yaml::value_offset(self.files[at.file].text, at.offset, &text.text, target);
        self.error(At { file: at.file, offset }, e.message.clone(), e.help.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_offsets_count_characters_and_stay_on_their_line() {
        assert_eq!(byte_offset("abc", 1, 1), 0);
        assert_eq!(byte_offset("é{{", 1, 2), 2);
        assert_eq!(byte_offset("a\nbc", 2, 2), 3);
        assert_eq!(byte_offset("ab\ncd", 1, 9), 2);
        assert_eq!(byte_offset("ab", 5, 1), 2);
    }

    #[test]
    fn survey_answers_are_eleven_nps_and_five_csat_links() {
        let links: Vec<String> = survey_answer_links().collect();
        assert_eq!(links.len(), 16);
        assert_eq!((links[0].as_str(), links[10].as_str()), ("nps_0", "nps_10"));
        assert_eq!((links[11].as_str(), links[15].as_str()), ("csat_1", "csat_5"));
    }
}
