//! What a template can read of the render context: which root variables, and of each,
//! which fields — found once, when the template is parsed, so that rendering builds only
//! those.
//!
//! The reading is conservative: it may list more than the template reads (a field named in
//! a string literal, a root that only appears as another object's field), never less.
//! It rests on liquid's grammar: a variable is only ever read from markup (`{{ … }}`,
//! `{% … %}`), the globals can neither be iterated nor indexed by an expression, a root
//! is a whole identifier (`account_id` is not `account`), and a path is written without
//! spaces (`account.name`, never `account . name`). A root written with anything but a
//! `.field` after it (`{{ account }}`, `account[key]`, `account.size`, `for x in
//! account`) is read whole.

use std::collections::BTreeSet;

/// The root variables of a render context, each a bit of [`Roots`].
pub(crate) const ROOT_NAMES: [&str; 8] =
    ["account", "contact", "metrics", "insights", "links", "program", "step", "now"];

/// What a template can read of one root variable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Reads {
    /// Nothing: the template does not name it.
    #[default]
    Nothing,
    /// At most these fields (`account.name`, `account.health.score` → `name`, `health`).
    Fields(BTreeSet<String>),
    /// Anything.
    Whole,
}

impl Reads {
    /// Whether the template can read `field` of the root.
    pub(crate) fn field(&self, field: &str) -> bool {
        match self {
            Reads::Nothing => false,
            Reads::Fields(fields) => fields.contains(field),
            Reads::Whole => true,
        }
    }

    /// The fields of a root read field by field; `None` when read whole.
    pub(crate) fn fields(&self) -> Option<&BTreeSet<String>> {
        match self {
            Reads::Fields(fields) => Some(fields),
            Reads::Nothing | Reads::Whole => None,
        }
    }

    fn add(&mut self, other: &Reads) {
        match (&mut *self, other) {
            (_, Reads::Nothing) | (Reads::Whole, _) => {}
            (Reads::Fields(fields), Reads::Fields(more)) => fields.extend(more.iter().cloned()),
            (mine, other) => *mine = other.clone(),
        }
    }
}

/// A set of root variables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Roots(u8);

impl Roots {
    /// The roots whose name is written anywhere in `source`, markup or text (what
    /// [`crate::ParsedTemplate::mentions`] finds).
    pub(crate) fn written_in(source: &str) -> Roots {
        let bits = ROOT_NAMES.iter().enumerate().filter(|(_, name)| source.contains(*name)).map(|(i, _)| 1 << i);
        Roots(bits.fold(0, |all, bit| all | bit))
    }

    /// The roots in either set.
    pub(crate) fn union(self, other: Roots) -> Roots {
        Roots(self.0 | other.0)
    }

    /// Whether the set holds the root at `index` in [`ROOT_NAMES`].
    pub(crate) fn contains(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }
}

/// What one part, or a set of parts, can read of each root variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RootReads([Reads; ROOT_NAMES.len()]);

impl RootReads {
    /// What a part with Liquid source `source` can read.
    pub(crate) fn of(source: &str) -> RootReads {
        let mut reads = RootReads::default();
        let Some(markup) = markup(source) else {
            let written = Roots::written_in(source);
            for (root, reads) in reads.0.iter_mut().enumerate() {
                if written.contains(root) {
                    *reads = Reads::Whole;
                }
            }
            return reads;
        };
        for markup in markup {
            for (root, name) in ROOT_NAMES.iter().enumerate() {
                for (at, _) in markup.match_indices(name) {
                    reads.0[root].add(&read_at(markup.get(at + name.len()..).unwrap_or_default()));
                }
            }
        }
        reads
    }

    /// What `self` or `other` can read.
    pub(crate) fn union(&self, other: &RootReads) -> RootReads {
        let mut union = self.clone();
        for (mine, theirs) in union.0.iter_mut().zip(&other.0) {
            mine.add(theirs);
        }
        union
    }

    /// What can be read of the root at `index` in [`ROOT_NAMES`].
    pub(crate) fn root(&self, index: usize) -> &Reads {
        &self.0[index]
    }

    /// The roots of which something can be read.
    pub(crate) fn roots(&self) -> Roots {
        let bits = self.0.iter().enumerate().filter(|(_, r)| **r != Reads::Nothing).map(|(i, _)| 1 << i);
        Roots(bits.fold(0, |all, bit| all | bit))
    }
}

/// What a name's occurrence reads, from the text right after it.
fn read_at(after: &str) -> Reads {
    let is_name_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let next = after.bytes().next();
    if next.is_some_and(is_name_char) {
        // A longer name (`account_id`): not this root.
        return Reads::Nothing;
    }
    let Some(path) = after.strip_prefix('.') else { return Reads::Whole };
    let field_len = path.bytes().take_while(|b| is_name_char(*b) || *b == b'-').count();
    let field = path.get(..field_len).unwrap_or_default();
    if field.is_empty() {
        return Reads::Whole;
    }
    // A hyphen may end the name rather than be part of it (`{{ account.name-}}`).
    let fields: BTreeSet<String> = field
        .match_indices('-')
        .filter_map(|(at, _)| field.get(..at))
        .chain([field])
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    // `size` of an object counts its fields: all of them.
    if fields.contains("size") { Reads::Whole } else { Reads::Fields(fields) }
}

/// The markup of `source`: from each `{{` or `{%` to the first `}}` or `%}` after it
/// outside quotes, or to the end. Every `{{` and `{%` starts one, even inside another or
/// inside a `{% raw %}` block: so each of liquid's own `{{ … }}` and `{% … %}` is the
/// whole of one of them (inside its delimiters, a quote can only open or close a string),
/// and the rest is more than liquid reads, never less.
///
/// `None` when that takes more than a few passes over the source (markup inside long
/// strings, over and over): then the caller assumes the worst.
fn markup(source: &str) -> Option<Vec<&str>> {
    let bytes = source.as_bytes();
    let mut budget = bytes.len().saturating_mul(8).saturating_add(4096);
    let mut regions = Vec::new();
    let opens = |i: &usize| bytes.get(*i) == Some(&b'{') && matches!(bytes.get(i + 1), Some(b'{' | b'%'));
    for start in (0..bytes.len()).filter(opens) {
        let close = if bytes.get(start + 1) == Some(&b'{') { b'}' } else { b'%' };
        let mut i = start + 2;
        let end = loop {
            match bytes.get(i) {
                None => break bytes.len(),
                Some(quote @ (b'"' | b'\'')) => {
                    let closing = bytes.get(i + 1..).and_then(|rest| rest.iter().position(|b| b == quote));
                    let next = closing.map_or(bytes.len(), |at| i + 1 + at + 1);
                    budget = budget.checked_sub(next - i)?;
                    i = next;
                }
                Some(b) if *b == close && bytes.get(i + 1) == Some(&b'}') => break i + 2,
                Some(_) => {
                    budget = budget.checked_sub(1)?;
                    i += 1;
                }
            }
        };
        regions.push(source.get(start..end)?);
        if end == bytes.len() {
            // Every later `{{` or `{%` is inside this one.
            break;
        }
    }
    Some(regions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(source: &str, root: &str) -> Reads {
        let index = ROOT_NAMES.iter().position(|r| *r == root).unwrap_or(0);
        RootReads::of(source).root(index).clone()
    }

    fn fields(names: &[&str]) -> Reads {
        Reads::Fields(names.iter().map(|n| (*n).to_owned()).collect())
    }

    #[test]
    fn fields_named_after_a_root_are_what_it_reads() {
        let source =
            "Hi {{ contact.first_name }}, {% if account.plan == 'team' %}{{ account.health.score }}{% endif %}";
        assert_eq!(reads(source, "contact"), fields(&["first_name"]));
        assert_eq!(reads(source, "account"), fields(&["health", "plan"]));
        assert_eq!(reads(source, "links"), Reads::Nothing);
    }

    #[test]
    fn a_root_used_any_other_way_is_read_whole() {
        for source in [
            "{{ account }}",
            "{{account}}",
            "{{ account[key] }}",
            "{{ account['name'] }}",
            "{{ account.size }}",
            "{{ account.size-}}",
            "{% for pair in account %}{% endfor %}",
            "{% assign a = account %}{{ a.name }}",
            "{{ account | json }}",
            "{{-account-}}",
            "{{ account. }}",
            "{{ account.['x'] }}",
        ] {
            assert_eq!(reads(source, "account"), Reads::Whole, "{source}");
        }
    }

    #[test]
    fn text_outside_markup_and_longer_names_read_nothing() {
        assert_eq!(reads("Your account, your contact, step by step, now.", "account"), Reads::Nothing);
        assert_eq!(reads("{{ account_id }} {{ accounts.first }} {{ account2 }}", "account"), Reads::Nothing);
    }

    #[test]
    fn a_hyphen_may_end_a_field_name() {
        assert_eq!(reads("{{ account.name-}}", "account"), fields(&["name", "name-"]));
        assert_eq!(reads("{{ contact.my-trait }}", "contact"), fields(&["my", "my-trait"]));
    }

    #[test]
    fn quoted_closers_do_not_end_markup() {
        let source = r#"{{ "}}" | append: account.name }} {% assign x = '%}' %}{{ x | append: contact.email }}"#;
        assert_eq!(reads(source, "account"), fields(&["name"]));
        assert_eq!(reads(source, "contact"), fields(&["email"]));
        // Markup left open runs to the end: what follows counts.
        assert_eq!(reads("{{ 'unclosed }} {{ account.plan }}", "account"), fields(&["plan"]));
        // A quote in a raw block opens no string in liquid's eyes; the markup after it is
        // still read from its own start.
        let raw = r#"{% raw %}{{ it's {% endraw %}{{ "}}" | append: account.name }}{{ contact.id }}"#;
        assert_eq!(reads(raw, "account"), fields(&["name"]));
        assert_eq!(reads(raw, "contact"), fields(&["id"]));
    }

    #[test]
    fn names_inside_string_literals_count() {
        assert_eq!(reads("{{ 'account.name' }}", "account"), fields(&["name"]));
        assert_eq!(reads("{{ x | default: 'your account' }}", "account"), Reads::Whole);
    }

    #[test]
    fn an_unclosed_quote_in_raw_text_reads_the_rest_once() {
        let raw = format!("{{% raw %}}{{{{ '{}{{% endraw %}}{{{{ account.name }}}}", "{{ x ".repeat(2000));
        assert_eq!(reads(&raw, "account"), fields(&["name"]));
    }

    #[test]
    fn tangled_markup_reads_every_root_it_names_whole() {
        // Each `{{` in the raw block runs to the one `}}`: the work grows with the square.
        let tangled = format!("{{% raw %}}{}}}}}{{% endraw %}}{{{{ account.name }}}}", "{{ x ".repeat(2000));
        assert_eq!(reads(&tangled, "account"), Reads::Whole);
        assert_eq!(reads(&tangled, "contact"), Reads::Nothing);
    }

    #[test]
    fn the_reads_of_parts_add_up() {
        let subject = RootReads::of("{{ account.name }}");
        let html = RootReads::of("{{ account.plan }} {{ contact }}");
        let both = subject.union(&html);
        assert_eq!(both.root(0), &fields(&["name", "plan"]));
        assert_eq!(both.root(1), &Reads::Whole);
        assert!(both.roots().contains(0) && both.roots().contains(1) && !both.roots().contains(2));
    }
}
