//! Problems found in a workspace, each with its file, line and column.

use std::fmt;

use serde::Serialize;

/// A place in a workspace file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// The file name, as given in its [`crate::SourceFile`].
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem in a workspace definition, for the person who wrote it.
///
/// `Display` prints `segments.yaml:4:12: error: unknown function `cnt`` and, when there
/// is one, `  help: did you mean `count`?` on the next line. The alternate form (`{:#}`)
/// also shows the source line with a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct Diagnostic {
    /// The file name (for a folder-level problem, the folder).
    pub file: String,
    /// 1-based line (0 when the problem is about the whole file or folder).
    pub line: u32,
    /// 1-based column in characters (0 when the problem is about the whole file or folder).
    pub column: u32,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The text of the line the problem is on, for the caret display.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// A problem at a location.
    pub fn at(location: &Location, message: impl Into<String>, help: Option<String>) -> Diagnostic {
        Diagnostic {
            file: location.file.clone(),
            line: location.line,
            column: location.column,
            message: message.into(),
            help,
            source_line: None,
        }
    }

    /// A problem with a whole file or folder (no line or column).
    pub fn whole(file: impl Into<String>, message: impl Into<String>, help: Option<String>) -> Diagnostic {
        Diagnostic { file: file.into(), line: 0, column: 0, message: message.into(), help, source_line: None }
    }

    /// Where it is.
    pub fn location(&self) -> Location {
        Location { file: self.file.clone(), line: self.line, column: self.column }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: error: {}", self.file, self.message)?;
        } else {
            write!(f, "{}:{}:{}: error: {}", self.file, self.line, self.column, self.message)?;
        }
        if f.alternate()
            && let Some(line) = &self.source_line
        {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            // Tabs keep their width so the caret lines up.
            let before: String = line
                .chars()
                .take(self.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n {pad} |\n {number} | {line}\n {pad} | {before}^")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_column_and_help() {
        let loc = Location { file: "segments.yaml".into(), line: 4, column: 12 };
        let mut d = Diagnostic::at(&loc, "unknown function `cnt`", Some("did you mean `count`?".into()));
        assert_eq!(d.to_string(), "segments.yaml:4:12: error: unknown function `cnt`\n  help: did you mean `count`?");
        d.source_line = Some("    where: cnt('x', 30d) > 1".into());
        assert_eq!(
            format!("{d:#}"),
            "segments.yaml:4:12: error: unknown function `cnt`\n   |\n 4 |     where: cnt('x', 30d) > 1\n   |            ^\n  help: did you mean `count`?"
        );
    }

    #[test]
    fn a_folder_problem_has_no_position() {
        let d = Diagnostic::whole("ws", "no workspace files (*.yaml, *.yml) in the folder", None);
        assert_eq!(d.to_string(), "ws: error: no workspace files (*.yaml, *.yml) in the folder");
    }
}
