//! The one reader of `{name}` brace templates, shared by plan variables and the sweep's `bind`:
//! `{name}` is a placeholder, and `{{` and `}}` stand for literal braces.

use std::collections::BTreeMap;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece<'t> {
    /// Literal text, with `{{`/`}}` already turned into single braces.
    Text(String),
    /// A placeholder's name, between its braces.
    Name(&'t str),
}

/// Reads a template into its pieces; `Err` says what is wrong and how to write a literal brace.
pub(crate) fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        literal.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            literal.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!(
                "unmatched `}}` in \"{text}\" (write `}}}}` for a literal brace)"
            ));
        }
        let Some(end) = tail.find('}') else {
            return Err(format!(
                "unclosed `{{` in \"{text}\" (write `{{{{` for a literal brace)"
            ));
        };
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Name(&tail[1..end]));
        rest = &tail[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// Fills `{name}` with the variable's value; `{{` and `}}` stand for literal braces.
pub fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    fill_template(text, |name| vars.get(name).map(String::as_str))
}

/// The names a template uses, in order; `Err` for a template that does not parse.
pub fn template_names(text: &str) -> Result<Vec<String>, String> {
    Ok(pieces(text)?
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Name(name) => Some(name.to_string()),
            Piece::Text(_) => None,
        })
        .collect())
}

/// Fills each name with what `value` gives for it; a name it gives nothing for is an error.
pub(super) fn fill_template<'v>(
    text: &str,
    mut value: impl FnMut(&str) -> Option<&'v str>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text)? {
        match piece {
            Piece::Text(literal) => out.push_str(&literal),
            Piece::Name(name) => match value(name) {
                Some(filled) => out.push_str(filled),
                None => return Err(format!("unknown variable `{name}` in \"{text}\"")),
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_escape_and_placeholders_are_read_once() {
        let vars = BTreeMap::from([("a".to_string(), "1".to_string())]);
        assert_eq!(interpolate("x{{{a}}}-{a}", &vars).unwrap(), "x{1}-1");
        assert_eq!(template_names("{a}-{{b}}-{c}").unwrap(), vec!["a", "c"]);
        assert!(interpolate("{b}", &vars)
            .unwrap_err()
            .contains("unknown variable `b`"));
        assert!(pieces("a}").unwrap_err().contains("unmatched `}`"));
        assert!(pieces("{a").unwrap_err().contains("unclosed `{`"));
    }
}
