//! Rendering a parsed template with a context, safely: data escaped in HTML, nothing
//! undefined left blank, output and time bounded.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use liquid_core::ObjectView;

use crate::context::RenderContext;
use crate::globals::{NumberTooLarge, RootValues};
use crate::guard::{BudgetScope, Exceeded, LimitedWriter};
use crate::source::Part;
use crate::template::{ParsedPart, ParsedTemplate, contexts, first_message};

/// Bounds on one render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest a part may be once rendered, in bytes (also the largest string or list
    /// any filter may produce along the way).
    pub max_bytes_per_part: usize,
    /// The time all parts together may take. Checked before every tag, block and filter,
    /// and before every write inside a loop (text outside loops is written once), so a
    /// runaway loop stops within one step of the budget.
    pub time_budget: Duration,
}

impl Default for Limits {
    /// 256 KiB per part, 100 ms per message.
    fn default() -> Limits {
        Limits { max_bytes_per_part: 256 * 1024, time_budget: Duration::from_millis(100) }
    }
}

/// A message ready for a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    /// The subject, on one line (runs of whitespace, line breaks included, become one
    /// space; no header injection); never empty when the template has a subject, empty
    /// when it has none.
    pub subject: String,
    /// The preheader on one line, `None` when the template has none or it renders empty.
    pub preheader: Option<String>,
    /// The HTML body.
    pub html: String,
    /// The plain-text body.
    pub text: String,
}

/// Why a message could not be rendered: the reason a send is dead-lettered with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template refers to something this recipient's context does not have.
    #[error("{part}: `{name}` is not defined for this recipient; guard it with {{% if {name} %}} or supply it")]
    Undefined {
        /// The part.
        part: Part,
        /// The missing variable's path (`account.renewal_date`).
        name: String,
    },
    /// A part (or a value built along the way) grew past the size limit.
    #[error("{part}: the rendered text would be larger than {limit} bytes")]
    TooLarge {
        /// The part.
        part: Part,
        /// The limit in bytes.
        limit: usize,
    },
    /// Rendering ran past the time budget.
    #[error("{part}: rendering took longer than {} ms", budget.as_millis())]
    TooSlow {
        /// The part being rendered when the budget ran out.
        part: Part,
        /// The budget.
        budget: Duration,
    },
    /// The template's subject rendered to nothing but whitespace.
    #[error("subject: the subject is empty once rendered")]
    EmptySubject,
    /// Any other Liquid error at render time (a filter given the wrong kind of value, …).
    #[error("{part}: {message}")]
    Failed {
        /// The part.
        part: Part,
        /// liquid's message.
        message: String,
    },
}

/// Renders every part of `template` with `context`.
///
/// Subject, preheader and text see the data as it is. The HTML part sees a copy in which
/// every string (and object key) has been HTML-escaped (`&`, `<`, `>`, `"`, `'`) before
/// Liquid runs, so data can neither add markup nor break out of an attribute, while the
/// template's own markup stays. Data is never parsed as Liquid: `{{ 7*7 }}` in a trait
/// is text. In HTML, string filters see the escaped text (`size` of `a&b` is 7), and
/// `escape` behaves as `escape_once`, so escaping again is harmless.
pub fn render(
    template: &ParsedTemplate,
    context: &RenderContext,
    limits: &Limits,
) -> Result<RenderedMessage, RenderError> {
    // Each part sees only what it can read of the context (worked out when the template
    // was parsed: `reads.rs`), the HTML part escaped. Everything is built before any part
    // renders, so a value Liquid cannot hold fails the message whichever part names it
    // (reported on the subject, as when the whole context was converted up front).
    let values = RootValues::build(context, &template.reads).map_err(|NumberTooLarge| RenderError::Failed {
        part: Part::Subject,
        message: NumberTooLarge::MESSAGE.to_owned(),
    })?;
    render_parts(template, context, limits, |parsed| values.globals(&parsed.reads, parsed.part == Part::Html))
}

/// Renders every part with the globals `globals_of` gives it, within `limits`.
fn render_parts<G: ObjectView>(
    template: &ParsedTemplate,
    context: &RenderContext,
    limits: &Limits,
    globals_of: impl Fn(&ParsedPart) -> G,
) -> Result<RenderedMessage, RenderError> {
    let scope = BudgetScope::start(limits.time_budget, limits.max_bytes_per_part, context.now);
    let mut rendered: [Option<String>; 4] = Default::default();
    for parsed in &template.parts {
        let part = parsed.part;
        let globals = globals_of(parsed);
        // Most of a part's source is text written out as it is, plus the data: twice its
        // length seldom needs to grow.
        let mut writer = LimitedWriter::with_capacity(limits.max_bytes_per_part, parsed.source.len().saturating_mul(2));
        let outcome = catch_unwind(AssertUnwindSafe(|| parsed.template.render_to(&mut writer, &globals)));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some("the Liquid renderer failed on this template (a bug in liquid)".to_owned()),
        };
        if let Some(message) = failure {
            return Err(match scope.take_exceeded() {
                Some(Exceeded::Time) => RenderError::TooSlow { part, budget: limits.time_budget },
                Some(Exceeded::Size) => RenderError::TooLarge { part, limit: limits.max_bytes_per_part },
                None => match undefined_name(&message) {
                    Some(name) => RenderError::Undefined { part, name },
                    None => RenderError::Failed { part, message: first_message(&message) },
                },
            });
        }
        let text =
            String::from_utf8(writer.buffer).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if let Some(slot) = Part::ALL.iter().position(|p| *p == part).and_then(|i| rendered.get_mut(i)) {
            *slot = Some(text);
        }
    }
    let [subject, preheader, html, text] = rendered;
    let has_subject = subject.is_some();
    let subject = one_line(&subject.unwrap_or_default());
    if has_subject && subject.is_empty() {
        return Err(RenderError::EmptySubject);
    }
    let preheader = preheader.map(|p| one_line(&p)).filter(|p| !p.is_empty());
    Ok(RenderedMessage { subject, preheader, html: html.unwrap_or_default(), text: text.unwrap_or_default() })
}

/// The missing variable's path named by a liquid "Unknown variable/index" error.
fn undefined_name(message: &str) -> Option<String> {
    let contexts = contexts(message);
    let get = |key: &str| contexts.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    match first_message(message).as_str() {
        "Unknown variable" => get("requested variable"),
        "Unknown index" => Some(match (get("variable"), get("requested index")) {
            (Some(variable), Some(index)) => format!("{variable}.{index}"),
            (variable, index) => variable.or(index)?,
        }),
        _ => None,
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `text` has one of the five HTML-significant characters (`escape_html` would
/// change it).
pub(crate) fn has_markup(text: &str) -> bool {
    text.bytes().any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\''))
}

/// The project's one HTML escaper (it lives in cairn-core, which every crate that writes
/// HTML depends on).
pub use cairn_core::html::escape_html;

#[cfg(test)]
mod equivalence;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_missing_variable() {
        let message = "liquid: Unknown index\n  with:\n    variable=account.health.pillars\n    requested index=x\n    available indexes=y\n";
        assert_eq!(undefined_name(message).as_deref(), Some("account.health.pillars.x"));
        let message = "liquid: Unknown variable\n  with:\n    requested variable=acount\n";
        assert_eq!(undefined_name(message).as_deref(), Some("acount"));
        assert_eq!(undefined_name("liquid: something else\n"), None);
    }
}
