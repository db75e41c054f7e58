//! Message templates: four Liquid sources, parsed with errors that point into their files.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::globals::TemplateReads;
use crate::guard;
use crate::reads::{ROOT_NAMES, RootReads, Roots};
use crate::scan::{self, Deep, MAX_NESTING, Scan, Usage};
use crate::source::{ContentError, Origin, Part, line_col, to_u32};

/// The longest `(a..b)` range a template may loop over. Liquid builds the whole range in
/// memory before the first iteration, so the bound must be known at parse time.
pub const MAX_RANGE_LEN: i64 = 10_000;

/// One part's Liquid source and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSource {
    /// The Liquid source.
    pub source: String,
    /// Where its first character is in the workspace.
    pub origin: Origin,
}

impl PartSource {
    /// A part's source starting at `origin`.
    pub fn new(source: impl Into<String>, origin: Origin) -> PartSource {
        PartSource { source: source.into(), origin }
    }
}

/// A message template as written: subject (when the channel has one), optional
/// preheader, HTML and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    /// The subject line (an email's subject, an in-app message's title); `None` for
    /// messages without one (SMS, Slack, webhook, an in-app message without a title).
    pub subject: Option<PartSource>,
    /// The preview text shown after the subject, if any.
    pub preheader: Option<PartSource>,
    /// The HTML body.
    pub html: PartSource,
    /// The plain-text body.
    pub text: PartSource,
}

/// One parsed part.
pub(crate) struct ParsedPart {
    pub(crate) part: Part,
    pub(crate) origin: Origin,
    pub(crate) source: String,
    pub(crate) template: liquid::Template,
    pub(crate) scan: Scan,
    /// What the part can read of the context.
    pub(crate) reads: RootReads,
}

/// A template whose every part parsed: ready for [`crate::check_variables`] and
/// [`crate::render`].
pub struct ParsedTemplate {
    pub(crate) parts: Vec<ParsedPart>,
    /// What the parts can read of the context, for rendering.
    pub(crate) reads: TemplateReads,
}

impl ParsedTemplate {
    /// Whether `name` is written anywhere in the template's source (markup or text).
    /// Conservative: a template can only read a variable it names, so one that does not
    /// mention a root variable (`benchmark`) or a link (`nps_7`) never reads it, and
    /// rendering can leave it out.
    pub fn mentions(&self, name: &str) -> bool {
        self.parts.iter().any(|p| p.source.contains(name))
    }
}

impl std::fmt::Debug for ParsedTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<Part> = self.parts.iter().map(|p| p.part).collect();
        f.debug_struct("ParsedTemplate").field("parts", &parts).finish()
    }
}

impl MessageTemplate {
    /// The parts present, in rendering order.
    fn parts(&self) -> impl Iterator<Item = (Part, &PartSource)> {
        [
            self.subject.as_ref().map(|p| (Part::Subject, p)),
            self.preheader.as_ref().map(|p| (Part::Preheader, p)),
            Some((Part::Html, &self.html)),
            Some((Part::Text, &self.text)),
        ]
        .into_iter()
        .flatten()
    }

    /// Parses every part, returning all their syntax errors (liquid stops at the first error
    /// of a part, so that is at most one per part) plus every over-long or data-bounded
    /// `(a..b)` range.
    ///
    /// Positions: syntax errors take liquid's line and column within the part (exact, from
    /// its pest grammar, except that a column after multi-byte characters on the line of an
    /// invalid tag may be off); an unknown filter, which liquid reports without a position,
    /// is placed at the first use of that filter. Both are mapped to the file through
    /// the part's [`Origin`]. An error liquid gives no position for and that cairn cannot
    /// locate points at the start of the part.
    pub fn parse(&self) -> Result<ParsedTemplate, Vec<ContentError>> {
        let mut errors = Vec::new();
        let mut parts = Vec::new();
        for (part, source) in self.parts() {
            match parse_part(part, source) {
                Ok(parsed) => parts.push(parsed),
                Err(mut part_errors) => errors.append(&mut part_errors),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let (mut plain, mut html) = (RootReads::default(), RootReads::default());
        for parsed in &parts {
            let reads = if parsed.part == Part::Html { &mut html } else { &mut plain };
            *reads = reads.union(&parsed.reads);
        }
        let written = parts.iter().fold(Roots::default(), |roots, p| roots.union(Roots::written_in(&p.source)));
        let defaulted = defaulted_paths(&parts);
        Ok(ParsedTemplate { parts, reads: TemplateReads::new(plain, html, written, defaulted) })
    }
}

/// The paths of the context (root index in [`ROOT_NAMES`], fields) that the template only
/// pipes into `default` or tests in a condition, never uses otherwise. A recipient without
/// a value there gets nil, as Liquid defines a missing value, so that `default` applies
/// (`{{ contact.name | default: 'there' }}`); any other use of a missing value still fails
/// the render rather than leave a blank.
fn defaulted_paths(parts: &[ParsedPart]) -> Vec<(usize, Vec<String>)> {
    // (root, fields) → (piped into `default` somewhere, used otherwise somewhere)
    let mut uses: BTreeMap<(&str, Vec<&str>), (bool, bool)> = BTreeMap::new();
    for part in parts {
        for path in part.scan.paths.iter().filter(|p| !part.scan.bindings.contains(&p.root.0)) {
            let key = (path.root.0.as_str(), path.segments.iter().map(|(s, _)| s.as_str()).collect());
            let (defaulted, other) = uses.entry(key).or_default();
            match path.usage {
                Usage::Defaulted => *defaulted = true,
                Usage::Other => *other = true,
                Usage::Condition => {}
            }
        }
    }
    uses.into_iter()
        .filter(|((_, fields), (defaulted, other))| *defaulted && !*other && !fields.is_empty())
        .filter_map(|((root, fields), _)| {
            let root = ROOT_NAMES.iter().position(|name| *name == root)?;
            Some((root, fields.into_iter().map(str::to_owned).collect()))
        })
        .collect()
}

fn parse_part(part: Part, source: &PartSource) -> Result<ParsedPart, Vec<ContentError>> {
    let origin = &source.origin;
    let text = source.source.as_str();
    let at_start = |message: String| vec![ContentError::at(origin, part, (1, 1), message, None)];
    // liquid parses (and renders) nested blocks and indexes by recursion: a template
    // nested thousands deep would overflow the stack, so its depth is checked first.
    if let Some((deep, at)) = scan::too_deep(text) {
        let (what, help) = match deep {
            Deep::Blocks => (
                "blocks",
                "close blocks before opening new ones, or join conditions with `and` / `or` in one `{% if %}`",
            ),
            Deep::Indexes => ("indexes (`a[b[c]]`)", "assign the inner index first: `{% assign k = b[c] %}{{ a[k] }}`"),
        };
        return Err(vec![ContentError::at(
            origin,
            part,
            line_col(text, at),
            format!("templates may nest {what} at most {MAX_NESTING} deep"),
            Some(help.to_owned()),
        )]);
    }
    let parser = guard::parser(part == Part::Html).map_err(|e| at_start(format!("cannot set up Liquid: {e}")))?;
    // liquid's parser asserts on its own invariants; a panic there is a bug to report, but
    // it must not take the process down with it.
    let parsed = catch_unwind(AssertUnwindSafe(|| parser.parse(text)))
        .map_err(|_| at_start("the Liquid parser failed on this template (a bug in liquid)".to_owned()))?;
    let scan = scan::scan(text);
    let template = match parsed {
        Ok(template) => template,
        Err(error) => return Err(vec![syntax_error(part, origin, text, &scan, &error)]),
    };
    let mut errors = Vec::new();
    for range in &scan.ranges {
        let problem = match (range.start, range.end) {
            (Some(start), Some(end)) if end.saturating_sub(start) >= MAX_RANGE_LEN => {
                format!("the range ({start}..{end}) is longer than {MAX_RANGE_LEN}")
            }
            (Some(_), Some(_)) => continue,
            _ => "a range's bounds must be whole numbers written in the template".to_owned(),
        };
        errors.push(ContentError::at(
            origin,
            part,
            line_col(text, range.offset),
            problem,
            Some(format!(
                "write `(1..{})` at most, or loop over a list with `limit:` (`{{% for u in list limit: 5 %}}`)",
                MAX_RANGE_LEN
            )),
        ));
    }
    if errors.is_empty() {
        let reads = RootReads::of(text);
        Ok(ParsedPart { part, origin: origin.clone(), source: text.to_owned(), template, scan, reads })
    } else {
        Err(errors)
    }
}

/// A liquid parse error as a [`ContentError`], with the best position that can be known.
fn syntax_error(part: Part, origin: &Origin, text: &str, scan: &Scan, error: &liquid::Error) -> ContentError {
    let rendered = error.to_string();
    let contexts = contexts(&rendered);
    let context = |key: &str| contexts.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    // pest writes `liquid:  --> line:col` on the first line and ends its message with `= what was expected`.
    let pest_position = rendered.lines().find_map(|line| {
        let (_, at) = line.split_once("--> ")?;
        let (l, c) = at.split_once(':')?;
        Some((l.trim().parse::<u32>().ok()?, c.trim().parse::<u32>().ok()?))
    });
    let pest_message = rendered.lines().find_map(|line| line.trim().strip_prefix("= ").map(str::to_owned));
    if let Some(filter) = context("requested filter") {
        let position =
            scan.filters.iter().find(|(name, _)| name == filter).map_or((1, 1), |(_, at)| line_col(text, *at));
        let known: Vec<&str> = context("available filters").map(|l| l.split(", ").collect()).unwrap_or_default();
        let help = match crate::suggest::closest(filter, known.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("the filters are {}", known.join(", ")),
        };
        return ContentError::at(origin, part, position, format!("unknown filter `{filter}`"), Some(help));
    }
    let position = pest_position.unwrap_or((1, 1));
    let mut message = pest_message.unwrap_or_else(|| first_message(&rendered));
    let mut help = None;
    if let Some(tag) = context("requested") {
        message = format!("unknown tag `{tag}`");
        let mut known: Vec<&str> = Vec::new();
        for key in ["available tags", "available blocks"] {
            known.extend(context(key).map(|l| l.split(", ").collect::<Vec<_>>()).unwrap_or_default());
        }
        known.sort_unstable();
        help = Some(match crate::suggest::closest(tag, known.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("the tags are {}", known.join(", ")),
        });
    } else if message.starts_with("Unclosed block")
        && let Some((tag, at)) = unclosed_block(&message, scan)
    {
        // liquid points at the end of the part, where it gave up; the tag left open is
        // what the author has to find.
        let (line, column) = line_col(text, at);
        return ContentError::at(
            origin,
            part,
            (line, column),
            format!("Liquid syntax error: `{{% {tag} %}}` is never closed"),
            Some(format!("close it with `{{% end{tag} %}}`")),
        );
    } else if let Some(expected) = message.strip_prefix("expected ") {
        message = format!("Liquid syntax error: expected {expected}");
    } else {
        message = format!("Liquid syntax error: {}", message.trim_end_matches('.'));
    }
    let position = (position.0, position.1.min(to_u32(text.len()).saturating_add(1)));
    ContentError::at(origin, part, position, message, help)
}

/// The block an "Unclosed block. {% endif %} tag expected" error is about: the last one
/// left open with that name (or the last one left open), and where its tag starts.
fn unclosed_block<'s>(message: &str, scan: &'s Scan) -> Option<(&'s str, usize)> {
    let expected = message.split("{% end").nth(1).and_then(|rest| rest.split_whitespace().next());
    let found = expected.and_then(|tag| scan.unclosed.iter().rev().find(|(t, _)| t == tag));
    found.or(scan.unclosed.last()).map(|(tag, at)| (tag.as_str(), *at))
}

/// The first line of a liquid error after its `liquid: ` prefix.
pub(crate) fn first_message(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("liquid: ").unwrap_or(first).trim().to_owned()
}

/// The `key=value` context lines liquid adds to its errors (`requested variable=acount`).
pub(crate) fn contexts(rendered: &str) -> Vec<(String, String)> {
    rendered
        .lines()
        .filter(|line| line.starts_with("    "))
        .filter_map(|line| line.trim().split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}
