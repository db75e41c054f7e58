//! A light reader of Liquid markup that finds what a template refers to: the variable
//! paths in `{{ … }}` and `{% … %}` with their byte offsets, the names the template binds
//! itself (`assign`, `capture`, `for`, …), the filters it calls and its `(a..b)` ranges.
//!
//! It runs only on sources the liquid crate has already parsed, so it can be forgiving:
//! anything it does not understand is skipped, never reported. Its job is to give
//! `check_variables` exact positions, which rendering against a sample context cannot.

use std::collections::BTreeSet;

/// A variable path such as `account.health.pillars.adoption`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathRef {
    /// The root name and where it starts (byte offset in the part).
    pub root: (String, usize),
    /// The fixed segments after it (`.name` or `["name"]`), each with its offset.
    pub segments: Vec<(String, usize)>,
    /// How the value is used there.
    pub usage: Usage,
}

/// How a template uses a variable path at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    /// Piped straight into `default` (`{{ contact.name | default: 'there' }}`): a missing
    /// value is what `default` is for.
    Defaulted,
    /// In the condition of an `if`, `elsif` or `unless`: missing and nil are both false.
    Condition,
    /// Anything else: output, a filter's argument, a loop.
    Other,
}

/// A `(start..end)` range: its bounds as written (`None` when not an integer literal).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RangeRef {
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub offset: usize,
}

/// What a part's markup refers to.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub paths: Vec<PathRef>,
    pub bindings: BTreeSet<String>,
    pub filters: Vec<(String, usize)>,
    pub ranges: Vec<RangeRef>,
    /// Block tags opened and never closed (`{% if %}` without `{% endif %}`), each with the
    /// offset of its `{%`, outermost first.
    pub unclosed: Vec<(String, usize)>,
}

/// Tags that open a block closed by `end<tag>`.
const BLOCKS: &[&str] = &["if", "unless", "for", "case", "capture", "tablerow", "ifchanged", "raw", "comment"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Dot,
    DotDot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Pipe,
    Colon,
    Other,
}

/// Words of the Liquid grammar that are never variables.
const KEYWORDS: &[&str] =
    &["and", "or", "contains", "in", "reversed", "true", "false", "nil", "null", "empty", "blank", "with", "as", "for"];

/// Reads the markup of `source`.
pub(crate) fn scan(source: &str) -> Scan {
    let mut scan = Scan::default();
    scan.bindings.insert("forloop".to_owned());
    scan.bindings.insert("tablerowloop".to_owned());
    let bytes = source.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        let open = &bytes[i..i + 2];
        if open == b"{{" {
            let start = i + 2;
            let (tokens, end) = tokenize(source, start, "}}");
            read_expression(&tokens, Usage::Other, &mut scan);
            i = end;
        } else if open == b"{%" {
            let tag_at = i;
            let start = i + 2;
            let (tokens, end) = tokenize(source, start, "%}");
            i = end;
            if let Some((Tok::Ident(tag), _)) = tokens.first() {
                if BLOCKS.contains(&tag.as_str()) {
                    scan.unclosed.push((tag.clone(), tag_at));
                } else if let Some(block) = tag.strip_prefix("end")
                    && let Some(open) = scan.unclosed.iter().rposition(|(t, _)| t == block)
                {
                    scan.unclosed.truncate(open);
                }
            }
            match tokens.first() {
                Some((Tok::Ident(tag), _)) if tag == "raw" || tag == "comment" => {
                    match skip_block(source, end, &format!("end{tag}")) {
                        Some(after) => {
                            scan.unclosed.pop();
                            i = after;
                        }
                        None => i = source.len(),
                    }
                }
                Some((Tok::Ident(tag), _)) => read_tag(tag, &tokens[1..], &mut scan),
                _ => {}
            }
        } else {
            i += 1;
        }
    }
    scan
}

/// How deep a template may nest blocks (`{% if %}` inside `{% for %}` …) and indexes
/// (`a[b[c]]`). liquid parses both, and renders blocks, by recursion: without a bound, a
/// few thousand levels overflow the stack and take the process down. Templates people
/// write nest a handful of levels.
pub const MAX_NESTING: usize = 50;

/// What nests too deeply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deep {
    /// Blocks inside blocks.
    Blocks,
    /// Indexes inside indexes (`a[b[c]]`).
    Indexes,
}

/// Where `source` first nests deeper than [`MAX_NESTING`], if it does: checked before
/// the text reaches liquid's parser. Counts as liquid may recurse, or more: blocks inside
/// `{% comment %}` count (liquid parses them), text inside `{% raw %}` does not, and an
/// index anywhere in `{{ … }}` or `{% … %}` does, even inside a raw block (liquid's
/// grammar reads every `{{ … }}` of the file). Linear in the length of the source.
pub(crate) fn too_deep(source: &str) -> Option<(Deep, usize)> {
    if let Some(at) = indexes_too_deep(source) {
        return Some((Deep::Indexes, at));
    }
    let bytes = source.as_bytes();
    let mut open: Vec<String> = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes.get(i..i + 2) == Some(b"{%") {
            let (tokens, end) = tokenize(source, i + 2, "%}");
            if let Some((Tok::Ident(tag), _)) = tokens.first() {
                if tag == "raw" {
                    i = skip_block(source, end, "endraw").unwrap_or(source.len());
                    continue;
                }
                if BLOCKS.contains(&tag.as_str()) {
                    open.push(tag.clone());
                    if open.len() > MAX_NESTING {
                        return Some((Deep::Blocks, i));
                    }
                } else if let Some(block) = tag.strip_prefix("end")
                    && let Some(at) = open.iter().rposition(|t| t == block)
                {
                    open.truncate(at);
                }
            }
            i = end;
        } else if bytes.get(i..i + 2) == Some(b"{{") {
            i = tokenize(source, i + 2, "}}").1;
        } else {
            i += 1;
        }
    }
    None
}

/// Where an index (`[`) inside markup first nests deeper than [`MAX_NESTING`]: markup runs
/// from `{{` or `{%` to the next `}}` or `%}` outside quotes.
fn indexes_too_deep(source: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let (mut in_markup, mut quote, mut depth) = (false, None, 0usize);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        if let Some(q) = quote {
            if b == q {
                quote = None;
            }
        } else if !in_markup {
            if b == b'{' && matches!(next, Some(b'{' | b'%')) {
                (in_markup, depth) = (true, 0);
                i += 1;
            }
        } else {
            match b {
                b'\'' | b'"' => quote = Some(b),
                b'[' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some(i);
                    }
                }
                b']' => depth = depth.saturating_sub(1),
                b'}' | b'%' if next == Some(b'}') => {
                    in_markup = false;
                    i += 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// The offset just after `{% end_tag %}`, if the source has one after `from`.
fn skip_block(source: &str, from: usize, end_tag: &str) -> Option<usize> {
    let mut i = from;
    while let Some(found) = source.get(i..).and_then(|rest| rest.find("{%")) {
        let at = i + found;
        let (tokens, end) = tokenize(source, at + 2, "%}");
        if matches!(tokens.first(), Some((Tok::Ident(tag), _)) if tag == end_tag) {
            return Some(end);
        }
        i = end.max(at + 2);
    }
    None
}

/// `source` from byte `at` on (empty past its end). Offsets here are always at a
/// character boundary: the reader steps over whole characters.
fn rest(source: &str, at: usize) -> &str {
    source.get(at..).unwrap_or_default()
}

/// The tokens from `start` to the closing delimiter, and the offset just after it.
fn tokenize(source: &str, start: usize, close: &str) -> (Vec<(Tok, usize)>, usize) {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut i = start;
    // Whitespace control: `{{-` and `{%-`.
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    while i < bytes.len() {
        let c = bytes[i];
        if rest(source, i).starts_with(close) || (c == b'-' && rest(source, i + 1).starts_with(close)) {
            let end = if c == b'-' { i + 1 + close.len() } else { i + close.len() };
            return (tokens, end);
        }
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'\'' | b'"' => {
                let quote = c;
                let body_start = i + 1;
                let mut j = body_start;
                while j < bytes.len() && bytes[j] != quote {
                    j += 1;
                }
                tokens.push((Tok::Str(source.get(body_start..j).unwrap_or_default().to_owned()), i));
                i = (j + 1).min(bytes.len());
            }
            b'.' if bytes.get(i + 1) == Some(&b'.') => {
                tokens.push((Tok::DotDot, i));
                i += 2;
            }
            b'.' => {
                tokens.push((Tok::Dot, i));
                i += 1;
            }
            b'[' => {
                tokens.push((Tok::LBracket, i));
                i += 1;
            }
            b']' => {
                tokens.push((Tok::RBracket, i));
                i += 1;
            }
            b'(' => {
                tokens.push((Tok::LParen, i));
                i += 1;
            }
            b')' => {
                tokens.push((Tok::RParen, i));
                i += 1;
            }
            b'|' => {
                tokens.push((Tok::Pipe, i));
                i += 1;
            }
            b':' => {
                tokens.push((Tok::Colon, i));
                i += 1;
            }
            b'-' | b'0'..=b'9' if c != b'-' || bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_digit() || (bytes[j] == b'.' && bytes.get(j + 1) != Some(&b'.')))
                {
                    j += 1;
                }
                tokens.push((Tok::Num(source.get(i..j).unwrap_or_default().to_owned()), i));
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b'-') {
                    // A `-` closing the markup (`-}}`) is whitespace control, not part of a name.
                    if bytes[j] == b'-' && rest(source, j + 1).starts_with(close) {
                        break;
                    }
                    j += 1;
                }
                if bytes.get(j) == Some(&b'?') {
                    j += 1;
                }
                tokens.push((Tok::Ident(source.get(i..j).unwrap_or_default().to_owned()), i));
                i = j;
            }
            _ => {
                tokens.push((Tok::Other, i));
                // Step over a whole character, never into the middle of one.
                i += rest(source, i).chars().next().map_or(1, char::len_utf8);
            }
        }
    }
    (tokens, bytes.len())
}

fn read_tag(tag: &str, rest: &[(Tok, usize)], scan: &mut Scan) {
    match tag {
        "assign" | "capture" | "increment" | "decrement" | "for" | "tablerow" => {
            if let Some((Tok::Ident(name), _)) = rest.first() {
                scan.bindings.insert(name.clone());
            }
            if matches!(tag, "assign" | "for" | "tablerow") {
                read_expression(rest.get(1..).unwrap_or_default(), Usage::Other, scan);
            }
        }
        "else" | "break" | "continue" | "ifchanged" => {}
        t if t.starts_with("end") => {}
        "if" | "elsif" | "unless" => read_expression(rest, Usage::Condition, scan),
        _ => read_expression(rest, Usage::Other, scan),
    }
}

/// Collects the paths, filters and ranges of an expression (or a tag's arguments);
/// `usage` is how its paths are used, unless piped into `default`.
fn read_expression(tokens: &[(Tok, usize)], usage: Usage, scan: &mut Scan) {
    let mut i = 0;
    while i < tokens.len() {
        let (token, offset) = &tokens[i];
        match token {
            Tok::Pipe => {
                if let Some((Tok::Ident(name), at)) = tokens.get(i + 1) {
                    scan.filters.push((name.clone(), *at));
                    i += 2;
                    continue;
                }
            }
            Tok::LParen => {
                if let (Some((start, _)), Some((Tok::DotDot, _)), Some((end, _)), Some((Tok::RParen, _))) =
                    (tokens.get(i + 1), tokens.get(i + 2), tokens.get(i + 3), tokens.get(i + 4))
                {
                    scan.ranges.push(RangeRef { start: integer(start), end: integer(end), offset: *offset });
                } else if tokens[i..].iter().any(|(t, _)| *t == Tok::DotDot) {
                    scan.ranges.push(RangeRef { start: None, end: None, offset: *offset });
                }
            }
            Tok::Ident(name) => {
                let after_dot = i > 0 && tokens[i - 1].0 == Tok::Dot;
                let before_colon = matches!(tokens.get(i + 1), Some((Tok::Colon, _)));
                if !after_dot && !before_colon && !KEYWORDS.contains(&name.as_str()) {
                    let (mut path, next) = read_path(tokens, i);
                    // The value a chain starts from (`{{ x | … }}`, `assign y = x | …`), piped
                    // straight into `default`.
                    let entry = i == 0 || (i == 1 && tokens.first().is_some_and(|(t, _)| *t == Tok::Other));
                    let defaulted = entry
                        && matches!(
                            (tokens.get(next), tokens.get(next + 1)),
                            (Some((Tok::Pipe, _)), Some((Tok::Ident(f), _))) if f == "default"
                        );
                    path.usage = if defaulted { Usage::Defaulted } else { usage };
                    scan.paths.push(path);
                    i = next;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
}

fn integer(token: &Tok) -> Option<i64> {
    match token {
        Tok::Num(n) => n.parse().ok(),
        _ => None,
    }
}

/// The path starting at `tokens[start]` (an identifier), and the index to continue from.
fn read_path(tokens: &[(Tok, usize)], start: usize) -> (PathRef, usize) {
    let (root, root_at) = match &tokens[start] {
        (Tok::Ident(name), at) => (name.clone(), *at),
        (_, at) => (String::new(), *at),
    };
    let mut path = PathRef { root: (root, root_at), segments: Vec::new(), usage: Usage::Other };
    let mut i = start + 1;
    loop {
        match (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2)) {
            (Some((Tok::Dot, _)), Some((Tok::Ident(name), at)), _) => {
                path.segments.push((name.clone(), *at));
                i += 2;
            }
            (Some((Tok::LBracket, _)), Some((Tok::Str(name), at)), Some((Tok::RBracket, _))) => {
                path.segments.push((name.clone(), *at));
                i += 3;
            }
            // A computed index (`top[0]`, `traits[key]`): the path is known up to here; the
            // index itself is read as an expression of its own.
            _ => return (path, i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(source: &str) -> Vec<String> {
        scan(source)
            .paths
            .iter()
            .map(|p| {
                let mut s = p.root.0.clone();
                for (seg, _) in &p.segments {
                    s.push('.');
                    s.push_str(seg);
                }
                s
            })
            .collect()
    }

    #[test]
    fn finds_the_blocks_left_open() {
        let open =
            |source: &str| scan(source).unclosed.into_iter().map(|(t, at)| format!("{t}@{at}")).collect::<Vec<_>>();
        assert_eq!(open("{% if a %}x{% endif %}"), Vec::<String>::new());
        assert_eq!(open("x\n{% if a %}{% for u in l %}{% endfor %}"), ["if@2"]);
        assert_eq!(open("{% if a %}{%- unless b -%}"), ["if@0", "unless@10"]);
        assert_eq!(open("{% comment %}{% if %}"), ["comment@0"]);
        assert_eq!(open("{% raw %}{% if %}{% endraw %}"), Vec::<String>::new());
    }

    #[test]
    fn finds_what_nests_too_deeply() {
        let deep_ifs = "{% if a %}".repeat(MAX_NESTING + 1);
        assert_eq!(too_deep(&deep_ifs), Some((Deep::Blocks, MAX_NESTING * 10)));
        let closed = "{% if a %}x{% endif %}".repeat(1000);
        assert_eq!(too_deep(&closed), None);
        let ok = format!("{}{}", "{% for u in l %}".repeat(MAX_NESTING), "{% endfor %}".repeat(MAX_NESTING));
        assert_eq!(too_deep(&ok), None);
        let in_comment = format!("{{% comment %}}{}", "{% if a %}".repeat(MAX_NESTING));
        assert_eq!(too_deep(&in_comment), Some((Deep::Blocks, 13 + (MAX_NESTING - 1) * 10)));
        let in_raw = format!("{{% raw %}}{}{{% endraw %}}", "{% if a %}".repeat(MAX_NESTING * 2));
        assert_eq!(too_deep(&in_raw), None);
        let indexes = format!("{{{{ {}{} }}}}", "a[".repeat(MAX_NESTING + 1), "]".repeat(MAX_NESTING + 1));
        assert_eq!(too_deep(&indexes), Some((Deep::Indexes, 3 + MAX_NESTING * 2 + 1)));
        let text = "[".repeat(1000);
        assert_eq!(too_deep(&format!("{text}{{{{ '{text}' }}}}")), None);
    }

    #[test]
    fn finds_paths_in_output_and_tags() {
        assert_eq!(paths("Hi {{ contact.first_name | default: 'there' }}!"), ["contact.first_name"]);
        assert_eq!(
            paths("{% if account.health.band == 'red' and metrics.logins > 3 %}x{% endif %}"),
            ["account.health.band", "metrics.logins"]
        );
        assert_eq!(
            paths("{{ insights.leaderboard['report_created'].top[0].name }}"),
            ["insights.leaderboard.report_created.top"]
        );
        assert_eq!(paths("{{ a[b].c }}"), ["a", "b"]);
        assert_eq!(paths("{{ 'acount.name' }}{{ x | truncate: 5, '…' }}"), ["x"]);
    }

    #[test]
    fn tells_defaulted_and_conditional_uses_from_the_others() {
        let usages = |source: &str| scan(source).paths.into_iter().map(|p| p.usage).collect::<Vec<_>>();
        assert_eq!(
            usages("{% if contact.name %}{{ contact.name | default: 'x' }}{% elsif a %}{{ b | upcase }}{% endif %}"),
            [Usage::Condition, Usage::Defaulted, Usage::Condition, Usage::Other]
        );
        assert_eq!(usages("{{ a | append: b | default: c }}"), [Usage::Other, Usage::Other, Usage::Other]);
        assert_eq!(usages("{% assign n = a | default: 1 %}"), [Usage::Defaulted]);
    }

    #[test]
    fn skips_raw_comment_and_keyword_arguments() {
        assert_eq!(paths("{% raw %}{{ acount }}{% endraw %}{% comment %}{{ b }}{% endcomment %}{{ c }}"), ["c"]);
        assert_eq!(paths("{% for u in top limit: n reversed %}{{ u.name }}{% endfor %}"), ["top", "n", "u.name"]);
        assert_eq!(paths("{{- account.name -}}"), ["account.name"]);
    }

    #[test]
    fn records_bindings_filters_and_ranges() {
        let s = scan(
            "{% assign n = 3 %}{% capture c %}x{% endcapture %}{% for i in (1..10) %}{{ i | plus: n }}{% endfor %}",
        );
        assert!(s.bindings.contains("n") && s.bindings.contains("c") && s.bindings.contains("i"));
        assert_eq!(s.filters.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(), ["plus"]);
        assert_eq!(s.ranges, [RangeRef { start: Some(1), end: Some(10), offset: 62 }]);
        let s = scan("{% for i in (1..account.seats) %}{% endfor %}");
        assert_eq!(s.ranges[0].end, None);
    }
}
