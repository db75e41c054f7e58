//! YAML text → a small tree of nodes that remember where they start, and back from a
//! position inside a scalar's value to a position in the file.
//!
//! serde-saphyr does the parsing (with its alias and size budgets); its `Spanned` wrapper
//! gives every node's byte offset. We read into a generic tree rather than typed structs
//! so that one file yields every problem at once (serde derive stops at the first).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A YAML node and where it starts in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Byte offset of the node's first character in its file (the opening quote of a
    /// quoted scalar, the first content character of a block scalar, the alias site of
    /// an alias).
    pub offset: usize,
    /// Byte length of the node's text, as the parser reports it (0 for collections).
    pub len: usize,
}

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// Text.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order, duplicate keys kept (the checker reports them).
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// What the value is, for messages: "a string", "a list".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error, or a limit the file passed: where and what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub offset: usize,
    pub message: String,
    pub help: Option<String>,
    /// A limit the file passed rather than a syntax error.
    pub limit: bool,
}

/// The largest workspace YAML file, in bytes: definitions are a few kilobytes; a file
/// past this is a mistake (or an attack), and reading it would hold the checker up.
pub const MAX_YAML_BYTES: usize = 1024 * 1024;
/// How deep lists and mappings may nest in a workspace file (the deepest definition,
/// a health model's band, is 8 levels down).
pub(crate) const MAX_YAML_DEPTH: usize = 32;
/// How many values (scalars, lists, mappings) one workspace file may hold.
pub(crate) const MAX_YAML_NODES: usize = 100_000;

/// Parses one YAML document. An empty document is `Null`.
///
/// The file's size, nesting and number of values are bounded ([`MAX_YAML_BYTES`],
/// [`MAX_YAML_DEPTH`], [`MAX_YAML_NODES`], and serde-saphyr's alias budgets), each with
/// a message that says which limit was hit and what to do.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(SyntaxError {
            offset: 0,
            message: format!(
                "the file is {} KiB; a workspace file may be at most {} KiB",
                text.len().div_ceil(1024),
                MAX_YAML_BYTES / 1024
            ),
            help: Some("split the definitions over several `*.yaml` files in the folder".into()),
            limit: true,
        });
    }
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::PassThrough;
    options.with_snippet = false;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_YAML_DEPTH;
    budget.flow_nesting_limit = MAX_YAML_DEPTH;
    budget.max_nodes = MAX_YAML_NODES;
    options.budget = Some(budget);
    match serde_saphyr::from_str_with_options::<Spanned<Value>>(text, options) {
        Ok(spanned) => Ok(node(spanned)),
        Err(e) => {
            let e = original(&e);
            let offset = e
                .location()
                .map(|l| offset_of(text, l.span().byte_offset(), l.line(), l.column()))
                .unwrap_or(text.len());
            let (message, help, limit) = match e {
                serde_saphyr::Error::Budget { breach, .. } => {
                    let (message, help) = limit_message(breach);
                    (message, help, true)
                }
                // The parser's own bound on `[[[…` and `{{{…`, the same limit in words.
                _ if e.to_string().contains("recursion limit exceeded") => {
                    let (message, help) = depth_message();
                    (message, Some(help), true)
                }
                _ => (strip_position(&e.to_string()), None, false),
            };
            Err(SyntaxError { offset, message, help, limit })
        }
    }
}

/// The error under serde-saphyr's wrappers (a snippet, an alias's location).
fn original(mut e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::WithSnippet { error, .. } | serde_saphyr::Error::AliasError { error, .. } = e {
        e = error;
    }
    e
}

fn depth_message() -> (String, String) {
    (
        format!("lists and mappings nest more than {MAX_YAML_DEPTH} levels deep here"),
        "workspace definitions need only a few levels: check the brackets and the indentation".to_string(),
    )
}

/// Which limit a file passed, in words, and what to do about it.
fn limit_message(breach: &serde_saphyr::budget::BudgetBreach) -> (String, Option<String>) {
    use serde_saphyr::budget::BudgetBreach as B;
    let split = "split the definitions over several `*.yaml` files in the folder";
    let (message, help) = match breach {
        B::Depth { .. } => depth_message(),
        B::Nodes { .. } | B::Events { .. } => {
            (format!("the file holds more than {MAX_YAML_NODES} values (keys, items and scalars)"), split.to_string())
        }
        B::ScalarBytes { .. } | B::InputBytes { .. } => (
            format!("the file holds more text than a workspace file may ({} KiB)", MAX_YAML_BYTES / 1024),
            split.into(),
        ),
        B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } | B::MergeKeys { .. } => (
            "the file uses too many anchors or aliases (`&name`, `*name`, `<<`)".to_string(),
            "write the values out instead of repeating them through aliases".to_string(),
        ),
        B::Documents { .. } => (
            "the file holds too many YAML documents (`---`)".to_string(),
            "a workspace file is one document: remove the `---` separators, or split the file".to_string(),
        ),
        other => (format!("the file passes a YAML parser limit ({other:?})"), split.to_string()),
    };
    (message, Some(help))
}

fn node(spanned: Spanned<Value>) -> Node {
    let span = spanned.referenced.span();
    let offset = span.byte_offset().unwrap_or(0) as usize;
    let len = span.byte_len().unwrap_or(0) as usize;
    Node { value: spanned.value, offset, len }
}

/// The byte offset of a 1-based line and character column, or the reported byte offset.
fn offset_of(text: &str, byte: Option<u64>, line: u64, column: u64) -> usize {
    if let Some(b) = byte {
        return (b as usize).min(text.len());
    }
    let mut start = 0;
    for _ in 1..line.max(1) {
        match after(text, start).find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let col = column.saturating_sub(1) as usize;
    after(text, start).char_indices().nth(col).map(|(i, _)| start + i).unwrap_or(text.len())
}

/// "unclosed quote at line 1, column 4" → "unclosed quote": our diagnostics carry the
/// position themselves.
fn strip_position(message: &str) -> String {
    let trimmed = match message.rsplit_once(" at line ") {
        Some((before, position)) if position.contains(", column ") => before,
        _ => message,
    };
    trimmed.trim().to_string()
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(node(item));
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Value>>()?;
            entries.push((node(key), node(value)));
        }
        Ok(Value::Map(entries))
    }
}

/// Line starts of a file, to turn byte offsets into 1-based line and character column.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, text: &str, offset: usize) -> (u32, u32) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset).saturating_sub(1);
        let start = self.starts[line];
        let column = text.get(start..offset).map(|s| s.chars().count()).unwrap_or(offset - start);
        (line as u32 + 1, column as u32 + 1)
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text<'t>(&self, text: &'t str, line: u32) -> &'t str {
        let Some(&start) = self.starts.get(line.saturating_sub(1) as usize) else { return "" };
        let end = self.starts.get(line as usize).copied().unwrap_or(text.len());
        text.get(start..end).unwrap_or("").trim_end_matches(['\n', '\r'])
    }
}

/// The byte offset in the file of byte `target` of a string scalar's decoded value.
///
/// Walks the source text from the node's start beside the decoded value: exact for plain
/// and quoted scalars (escapes and `''` included) and for literal (`|`) and folded (`>`)
/// block scalars, whose node starts at the first content character. Where the two stop
/// agreeing (an exotic escape, a line continuation), it returns the last position that
/// matched: the best effort.
pub(crate) fn value_offset(text: &str, node_offset: usize, decoded: &str, target: usize) -> usize {
    let start = node_offset.min(text.len());
    let src = after(text, start);
    let quote = match src.as_bytes().first() {
        Some(b'\'') => Some('\''),
        Some(b'"') => Some('"'),
        _ => None,
    };
    // Content lines after the first are indented at least as far as the first one's
    // column when the scalar starts its line (a block scalar); otherwise any amount.
    let line_start = text.get(..start).and_then(|t| t.rfind('\n')).map(|i| i + 1).unwrap_or(0);
    let starts_line = text.get(line_start..start).is_some_and(|t| t.chars().all(|c| c == ' ' || c == '\t'));
    let indent = if starts_line && quote.is_none() { start - line_start } else { usize::MAX };

    let mut i = usize::from(quote.is_some());
    let mut j = 0;
    let target = target.min(decoded.len());
    while j < target {
        let (Some(s), Some(d)) = (after(src, i).chars().next(), after(decoded, j).chars().next()) else { break };
        if s == '\n' || s == '\r' {
            i += s.len_utf8();
            if s == '\r' && after(src, i).starts_with('\n') {
                i += 1;
            }
            let mut skipped = 0;
            while skipped < indent && after(src, i).starts_with([' ', '\t']) {
                i += 1;
                skipped += 1;
            }
            if d == ' ' || d == '\n' {
                j += 1;
            }
        } else if quote == Some('\'') && s == '\'' && after(src, i + 1).starts_with('\'') {
            i += 2;
            j += d.len_utf8();
        } else if quote == Some('"') && s == '\\' {
            i += escape_len(after(src, i));
            j += d.len_utf8();
        } else if s == d {
            i += s.len_utf8();
            j += d.len_utf8();
        } else if s == ' ' || s == '\t' {
            i += 1;
        } else {
            break;
        }
    }
    start + i
}

/// Length of a double-quoted escape sequence starting at `\`: a whole number of
/// characters, so that the walk never stops inside one.
fn escape_len(src: &str) -> usize {
    let mut chars = src.chars();
    let Some(backslash) = chars.next() else { return 0 };
    let count = match chars.next() {
        Some('x') => 4,
        Some('u') => 6,
        Some('U') => 10,
        Some(_) => 2,
        None => 1,
    };
    src.char_indices().nth(count).map_or(src.len(), |(i, _)| i).max(backslash.len_utf8())
}

/// The text of `text` from byte `at` on; empty when `at` is past the end or inside a
/// character (the walks here only ever stop between characters).
fn after(text: &str, at: usize) -> &str {
    text.get(at..).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_at(text: &str, key: &str) -> (Node, String) {
        let root = parse(text).expect("valid YAML");
        let Value::Map(entries) = root.value else { panic!("not a map") };
        for (k, v) in entries {
            if k.value == Value::Str(key.into()) {
                let Value::Str(s) = &v.value else { panic!("not a string") };
                let s = s.clone();
                return (v, s);
            }
        }
        panic!("no key {key}")
    }

    /// Where `needle` of the decoded value lands in the file, as the source text there.
    fn lands_on(text: &str, key: &str, needle: &str) -> String {
        let (node, decoded) = scalar_at(text, key);
        let target = decoded.find(needle).expect("needle in value");
        let at = value_offset(text, node.offset, &decoded, target);
        text[at..].chars().take(needle.chars().count()).collect()
    }

    #[test]
    fn plain_single_and_double_quoted_and_block_scalars_map_exactly() {
        let text = "a: count('x') >= 1\nb: 'name = ''it''''s'' and cnt'\nc: \"x = '\\t' and cnt\"\nd: |\n  arr > 1\n    and cnt(1)\ne: >\n  arr > 1\n  and cnt\nf: arr > 1\n  and cnt\n";
        assert_eq!(lands_on(text, "a", ">= 1"), ">= 1");
        assert_eq!(lands_on(text, "b", "cnt"), "cnt");
        assert_eq!(lands_on(text, "c", "cnt"), "cnt");
        assert_eq!(lands_on(text, "d", "cnt(1)"), "cnt(1)");
        assert_eq!(lands_on(text, "e", "cnt"), "cnt");
        assert_eq!(lands_on(text, "f", "cnt"), "cnt");
    }

    #[test]
    fn positions_are_one_based_character_columns() {
        let text = "é: x\nab: yz\n";
        let index = LineIndex::new(text);
        assert_eq!(index.position(text, text.find('x').unwrap()), (1, 4));
        assert_eq!(index.position(text, text.find('y').unwrap()), (2, 5));
        assert_eq!(index.line_text(text, 2), "ab: yz");
    }

    #[test]
    fn syntax_errors_keep_their_position_and_drop_the_suffix() {
        let text = "a: 'unterminated\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.message, "unclosed quote");
        assert_eq!(e.offset, 3);
    }
}
