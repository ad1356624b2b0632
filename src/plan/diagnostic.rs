//! Problems found in a plan file, each located at `file:line:column` with the offending text and
//! a hint, and the lookup that turns a key path into that location.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item};

/// One problem in a plan file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The plan file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// The line of the file the problem is on.
    pub source_line: String,
    /// How many characters to underline, from `column`.
    pub width: usize,
    /// What to do about it.
    pub hint: Option<String>,
}

/// The most characters of a message or a hint shown: a value written into one (a 100k-character
/// `--var`) must not make the output as long.
const MAX_TEXT: usize = 400;
/// The most characters of the plan's line shown under a problem, around its column.
const MAX_SOURCE: usize = 160;

/// `text`, cut to `max` characters with an ellipsis.
fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]).into(),
        None => text.into(),
    }
}

impl Diagnostic {
    /// The part of the source line to show, and the column (0-based, in that part) and width of
    /// the underline: the whole line when it is short, else a window around the column.
    fn window(&self) -> (String, usize, usize) {
        let chars: Vec<char> = self.source_line.chars().collect();
        let at = self.column.saturating_sub(1).min(chars.len());
        if chars.len() <= MAX_SOURCE {
            return (self.source_line.clone(), at, self.width.max(1));
        }
        let start = at.saturating_sub(MAX_SOURCE / 3);
        let end = (start + MAX_SOURCE).min(chars.len());
        let mut shown = String::new();
        let mut caret = at - start;
        if start > 0 {
            shown.push('…');
            caret += 1;
        }
        shown.extend(&chars[start..end]);
        if end < chars.len() {
            shown.push('…');
        }
        let width = self.width.max(1).min(end.saturating_sub(at).max(1));
        (shown, caret, width)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = self.line.to_string();
        let pad = " ".repeat(number.len());
        let (source, caret, width) = self.window();
        writeln!(f, "error: {}", clip(&self.message, MAX_TEXT))?;
        writeln!(
            f,
            "{pad}--> {}:{}:{}",
            self.file.display(),
            self.line,
            self.column
        )?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{number} | {source}")?;
        writeln!(f, "{pad} | {}{}", " ".repeat(caret), "^".repeat(width))?;
        if let Some(hint) = &self.hint {
            writeln!(f, "{pad} = hint: {}", clip(hint, MAX_TEXT))?;
        }
        Ok(())
    }
}

/// Every problem found in a plan, in file order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PlanErrors(pub Vec<Diagnostic>);

impl PlanErrors {
    /// The most problems printed: the first ones in file order, then how many more there are.
    /// Past a few dozen, more lines help no one, and a plan of 10,000 broken steps must not print
    /// megabytes.
    pub const SHOWN: usize = 50;
}

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.0.iter().take(PlanErrors::SHOWN) {
            writeln!(f, "{d}")?;
        }
        let n = self.0.len();
        if n > PlanErrors::SHOWN {
            writeln!(
                f,
                "... and {} more problems not shown: fix these first",
                n - PlanErrors::SHOWN
            )?;
        }
        write!(
            f,
            "{n} problem{} in the plan; nothing was run",
            if n == 1 { "" } else { "s" }
        )
    }
}

/// One step of a key path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    /// A key of a table.
    Key(String),
    /// An index in an array.
    Index(usize),
}

impl From<&str> for PathSegment {
    fn from(s: &str) -> Self {
        PathSegment::Key(s.to_string())
    }
}

impl From<String> for PathSegment {
    fn from(s: String) -> Self {
        PathSegment::Key(s)
    }
}

impl From<usize> for PathSegment {
    fn from(i: usize) -> Self {
        PathSegment::Index(i)
    }
}

/// Whether a diagnostic points at a key or at its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The key itself (for unknown keys).
    Key,
    /// The value (for bad values).
    Value,
}

/// A plan's text with its parsed document, for locating problems.
pub struct Source<'a> {
    file: &'a Path,
    text: &'a str,
    document: Option<ImDocument<&'a str>>,
}

impl<'a> Source<'a> {
    /// Parses the text for locations (a syntax error leaves only byte offsets to go by).
    pub fn new(file: &'a Path, text: &'a str) -> Source<'a> {
        Source {
            file,
            text,
            document: ImDocument::parse(text).ok(),
        }
    }

    /// The parsed document, if the text is valid TOML.
    pub fn document(&self) -> Option<&ImDocument<&'a str>> {
        self.document.as_ref()
    }

    /// A diagnostic at a byte range.
    pub fn at_span(&self, span: Range<usize>, message: String, hint: Option<String>) -> Diagnostic {
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = self.text[..start].matches('\n').count() + 1;
        let column = self.text[line_start..start].chars().count() + 1;
        let end = span.end.clamp(start, line_end);
        let width = self.text[start..end].chars().count();
        Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
            source_line: self.text[line_start..line_end].trim_end().to_string(),
            width,
            hint,
        }
    }

    /// A diagnostic at the key or value found by `path` (or the nearest enclosing one that has a
    /// location, so that every problem gets one).
    pub fn at_path(
        &self,
        path: &[PathSegment],
        target: Target,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let span = self.span_of(path, target).unwrap_or(0..0);
        self.at_span(span, message, hint)
    }

    fn span_of(&self, path: &[PathSegment], target: Target) -> Option<Range<usize>> {
        let document = self.document.as_ref()?;
        let mut item: &Item = document.as_item();
        let mut best: Option<Range<usize>> = None;
        for (i, segment) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            match segment {
                PathSegment::Key(key) => {
                    let Some((k, v)) = item.as_table_like().and_then(|t| t.get_key_value(key))
                    else {
                        return best;
                    };
                    let key_span = k.span();
                    let value_span = v.span().or_else(|| v.as_table().and_then(|t| t.span()));
                    best = if last && target == Target::Key {
                        key_span.or(value_span).or(best)
                    } else {
                        value_span.or(key_span).or(best)
                    };
                    item = v;
                }
                PathSegment::Index(index) => {
                    return item
                        .as_array()
                        .and_then(|a| a.get(*index))
                        .and_then(|v| v.span())
                        .or(best);
                }
            }
        }
        best
    }
}

/// Builds a key path from strings and indices: `path!["steps", id, "after", 0]`.
#[macro_export]
#[doc(hidden)]
macro_rules! key_path {
    ($($segment:expr),* $(,)?) => {
        vec![$($crate::plan::PathSegment::from($segment)),*]
    };
}
