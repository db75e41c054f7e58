//! Where a template part comes from, and the errors that point into it.

use std::fmt;

/// One of the four parts of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// The subject line (plain text).
    Subject,
    /// The preheader: the preview text mail clients show after the subject (plain text).
    Preheader,
    /// The HTML body: data is HTML-escaped before it reaches Liquid.
    Html,
    /// The plain-text body.
    Text,
}

impl Part {
    /// All parts, in rendering order.
    pub const ALL: [Part; 4] = [Part::Subject, Part::Preheader, Part::Html, Part::Text];

    /// The part's name as written in a workspace (`subject`, `preheader`, `html`, `text`).
    pub fn name(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Preheader => "preheader",
            Part::Html => "html",
            Part::Text => "text",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a part's source starts in the file it was read from, so that errors can point
/// into the workspace YAML or template file.
///
/// Lines and columns are 1-based; columns count characters (not bytes), as editors and
/// `cairn check` do. `indent` is for YAML block scalars (`html: |`): YAML strips that many
/// columns from every line of the block, so every line after the first is shifted back by
/// it. For a template file or a single-line scalar it is 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The file, as it should be shown (`templates/welcome.yaml`).
    pub file: String,
    /// The line of the part's first character.
    pub line: u32,
    /// The column of the part's first character.
    pub column: u32,
    /// Columns YAML removed from the start of every following line (block scalars).
    pub indent: u32,
}

impl Origin {
    /// A part that starts at `line`:`column` of `file`, with no indentation removed.
    pub fn new(file: impl Into<String>, line: u32, column: u32) -> Origin {
        Origin { file: file.into(), line, column, indent: 0 }
    }

    /// The same origin for a YAML block scalar whose lines were indented by `indent` columns.
    pub fn with_indent(mut self, indent: u32) -> Origin {
        self.indent = indent;
        self
    }

    /// The absolute (line, column) of a 1-based (line, column) inside the part.
    pub(crate) fn absolute(&self, line_in_part: u32, column_in_part: u32) -> (u32, u32) {
        let line = self.line.max(1).saturating_add(line_in_part.saturating_sub(1));
        let column = if line_in_part <= 1 {
            self.column.max(1).saturating_add(column_in_part.saturating_sub(1))
        } else {
            column_in_part.saturating_add(self.indent)
        };
        (line, column)
    }
}

/// The 1-based (line, column) of byte `offset` in `source`, counting columns in characters.
pub(crate) fn line_col(source: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or(before).chars().count() + 1;
    (to_u32(line), to_u32(column))
}

pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A problem in a template, pointing at the file, line and column where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {part}: {message}")]
pub struct ContentError {
    /// The file the part was read from.
    pub file: String,
    /// Which part of the message.
    pub part: Part,
    /// Line in the file (1-based).
    pub line: u32,
    /// Column in the file (1-based, in characters).
    pub column: u32,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub help: Option<String>,
}

impl ContentError {
    pub(crate) fn at(
        origin: &Origin,
        part: Part,
        (line_in_part, column_in_part): (u32, u32),
        message: impl Into<String>,
        help: Option<String>,
    ) -> ContentError {
        let (line, column) = origin.absolute(line_in_part, column_in_part);
        ContentError { file: origin.file.clone(), part, line, column, message: message.into(), help }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("abc", 2), (1, 3));
        assert_eq!(line_col("é{{", 2), (1, 2));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("a", 99), (1, 2));
    }

    #[test]
    fn origin_maps_first_and_following_lines() {
        let origin = Origin::new("t.yaml", 10, 14).with_indent(4);
        assert_eq!(origin.absolute(1, 1), (10, 14));
        assert_eq!(origin.absolute(1, 5), (10, 18));
        assert_eq!(origin.absolute(3, 2), (12, 6));
    }
}
