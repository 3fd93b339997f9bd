//! The error of a refused project file: where (1-based line and column) and what was expected.
//!
//! Every check of [`super::Project::parse`] reports through [`ProjectError`], so `spindle
//! check` and the web UI can point at the offending spot. Positions come from byte spans of
//! the TOML document; columns count characters, not bytes, so they match what an editor shows.

use std::ops::Range;

/// Why a project file was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ProjectError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ProjectError {
    /// An error about the text starting at byte `offset` of `text`.
    pub(crate) fn at(text: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_column(text, offset);
        Self {
            line,
            column,
            message: message.into(),
        }
    }

    /// An error about the text covered by `span`.
    pub(crate) fn spanned(text: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        Self::at(text, span.start, message)
    }

    /// Converts a TOML syntax or deserialization error. An error without a span (rare: the
    /// document as a whole) is reported at the start of the file.
    pub(crate) fn from_toml(text: &str, err: &toml::de::Error) -> Self {
        let offset = err.span().map_or(0, |span| span.start);
        Self::at(text, offset, err.message().trim_end())
    }
}

/// 1-based line and character column of byte `offset` in `text`; an offset past the end or
/// inside a multi-byte character is clamped to the nearest earlier character boundary.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_line_and_character_column() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(line_column(text, 9), (2, 3));
        // Inside `é` clamps back to its start; past the end clamps to the end.
        assert_eq!(line_column(text, 8), (2, 2));
        assert_eq!(line_column(text, 100), (3, 1));
    }

    #[test]
    fn display_names_the_position_first() {
        let err = ProjectError::at("x\ny", 2, "expected something");
        assert_eq!(err.to_string(), "line 2, column 1: expected something");
    }
}
