//! What a step says about the resources it wants: the shared selector vocabulary (exact name, glob,
//! tags, age) and the typed reading of a step's `match` table and options.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use globset::{GlobBuilder, GlobMatcher};

/// The kind of value a field takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// An exact name, or a glob with `*`, `?` or `[...]`.
    Pattern,
    /// A plain string.
    Text,
    /// A list of strings.
    List,
    /// A table of tag key to value (the value may be a glob).
    Tags,
    /// A human duration: `90s`, `45m`, `24h`.
    Duration,
    /// `true` or `false`.
    Bool,
    /// A whole number within bounds.
    Integer {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
}

impl FieldKind {
    fn describe(self) -> String {
        match self {
            FieldKind::Pattern => "a name or a glob (a string)".into(),
            FieldKind::Text => "a string".into(),
            FieldKind::List => "a list of strings".into(),
            FieldKind::Tags => "a table of tag = value".into(),
            FieldKind::Duration => "a duration such as \"90s\", \"45m\" or \"24h\"".into(),
            FieldKind::Bool => "true or false".into(),
            FieldKind::Integer { min, max } => format!("a whole number from {min} to {max}"),
        }
    }
}

/// One key an action accepts.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    /// The key.
    pub name: &'static str,
    /// Its type.
    pub kind: FieldKind,
    /// Whether a step must give it.
    pub required: bool,
    /// One line for the docs and hints.
    pub help: &'static str,
}

/// The selector fields every resource filter shares: `name`, `tags`, `older_than`.
pub const COMMON_FILTER_FIELDS: [FieldSpec; 3] = [
    FieldSpec {
        name: "name",
        kind: FieldKind::Pattern,
        required: false,
        help: "exact name, or a glob with * and ?",
    },
    FieldSpec {
        name: "tags",
        kind: FieldKind::Tags,
        required: false,
        help: "every tag listed must be present with a matching value",
    },
    FieldSpec {
        name: "older_than",
        kind: FieldKind::Duration,
        required: false,
        help: "only resources created longer ago than this",
    },
];

/// A problem with a step's input, located by its key path inside the step (e.g.
/// `["match", "name"]`), which the plan loader turns into `file:line:column`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// Keys from the step's table down to the offending value; empty for the step itself.
    pub path: Vec<String>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl InputError {
    /// An error at a key path.
    pub fn at(path: &[&str], message: impl Into<String>) -> InputError {
        InputError {
            path: path.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> InputError {
        self.hint = Some(hint.into());
        self
    }
}

/// An exact name or a glob.
#[derive(Clone, Debug)]
pub enum Pattern {
    /// Matches this name only.
    Exact(String),
    /// Matches names the glob matches (`*` and `?` cross every character, `/` included).
    Glob(String, GlobMatcher),
}

impl Pattern {
    /// The longest pattern, in characters. AWS names are far shorter (the longest, an ARN, is
    /// at most 2048 bytes but is never a glob); globset panics compiling a glob of some hundred
    /// thousand characters, and a glob's cost grows with its length.
    pub const MAX_LEN: usize = 1024;

    /// Reads a pattern: a glob if it has `*`, `?` or `[`, else an exact name.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("an empty pattern matches nothing".into());
        }
        let length = text.chars().count();
        if length > Pattern::MAX_LEN {
            return Err(format!(
                "a pattern of {length} characters: a name or glob has at most {}",
                Pattern::MAX_LEN
            ));
        }
        if !text.contains(['*', '?', '[']) {
            return Ok(Pattern::Exact(text.to_string()));
        }
        let glob = GlobBuilder::new(text)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("bad glob: {}", e.kind()))?;
        Ok(Pattern::Glob(text.to_string(), glob.compile_matcher()))
    }

    /// True if `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(exact) => exact == name,
            Pattern::Glob(_, glob) => glob.is_match(name),
        }
    }

    /// The exact name, when this is not a glob (lets actions ask AWS for just that one).
    pub fn exact(&self) -> Option<&str> {
        match self {
            Pattern::Exact(name) => Some(name),
            Pattern::Glob(..) => None,
        }
    }

    /// What every name this matches starts with: the whole name when exact, a glob's text up to
    /// its first special character (wildcards, classes, alternatives, escapes) otherwise. The
    /// List calls that take a name prefix are asked for only that; the match is still checked.
    pub fn literal_prefix(&self) -> &str {
        match self {
            Pattern::Exact(name) => name,
            Pattern::Glob(glob, _) => {
                let end = glob.find(['*', '?', '[', '{', '\\']).unwrap_or(glob.len());
                &glob[..end]
            }
        }
    }

    /// The text as the plan wrote it (after variables).
    pub fn as_str(&self) -> &str {
        match self {
            Pattern::Exact(s) | Pattern::Glob(s, _) => s,
        }
    }

    /// For reports: `name is "X"` or `name matches "X*"`.
    pub fn describe(&self, what: &str) -> String {
        match self {
            Pattern::Exact(s) => format!("{what} is \"{s}\""),
            Pattern::Glob(s, _) => format!("{what} matches \"{s}\""),
        }
    }
}

/// The shared filter: name pattern, tags and age. Every condition given must hold.
#[derive(Clone, Debug, Default)]
pub struct ResourceFilter {
    /// Name pattern.
    pub name: Option<Pattern>,
    /// Tags that must be present, with values matching these patterns.
    pub tags: Vec<(String, Pattern)>,
    /// Minimum age.
    pub older_than: Option<Duration>,
}

impl ResourceFilter {
    /// True when the filter says nothing (would match everything).
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.tags.is_empty() && self.older_than.is_none()
    }

    /// `Some(why it matched)` if the resource passes every condition, `None` otherwise. A resource
    /// whose age is unknown never passes an age condition: when in doubt, keep it.
    pub fn matches(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
        created: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let mut why = Vec::new();
        if let Some(pattern) = &self.name {
            if !pattern.matches(name) {
                return None;
            }
            why.push(pattern.describe("name"));
        }
        for (key, value) in &self.tags {
            match tags.get(key) {
                Some(actual) if value.matches(actual) => why.push(format!("tag {key}={actual}")),
                _ => return None,
            }
        }
        if let Some(min_age) = self.older_than {
            let created = created?;
            let age = (now - created).to_std().ok()?;
            if age <= min_age {
                return None;
            }
            why.push(format!(
                "{} old (older than {})",
                crate::util::short_duration(age),
                humantime::format_duration(min_age)
            ));
        }
        Some(why.join(", "))
    }
}

/// A step's `match` table and options, variables already filled in and types already checked
/// against the action's [`FieldSpec`]s.
#[derive(Clone, Debug, Default)]
pub struct StepInput {
    /// The step id.
    pub step: String,
    /// The `match` table.
    pub selector: toml::Table,
    /// The action's own keys (e.g. `force = true`).
    pub options: toml::Table,
}

impl StepInput {
    /// A string from `match`.
    pub fn text(&self, key: &str) -> Option<String> {
        self.selector
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// A pattern from `match`.
    pub fn pattern(&self, key: &str) -> Option<Pattern> {
        self.selector
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|s| Pattern::parse(s).ok())
    }

    /// A list of strings from `match` (empty when absent).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.selector
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The shared filter, with the name pattern read from `name_key` (usually `name`).
    pub fn filter(&self, name_key: &str) -> ResourceFilter {
        let tags = self
            .selector
            .get("tags")
            .and_then(|v| v.as_table())
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| {
                        let p = Pattern::parse(v.as_str()?).ok()?;
                        Some((k.clone(), p))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let older_than = self
            .selector
            .get("older_than")
            .and_then(|v| v.as_str())
            .and_then(|s| crate::util::parse_duration(s, Duration::ZERO..=Duration::MAX).ok());
        ResourceFilter {
            name: self.pattern(name_key),
            tags,
            older_than,
        }
    }

    /// A boolean option (false when absent).
    pub fn flag(&self, key: &str) -> bool {
        self.options
            .get(key)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// A whole-number option.
    pub fn integer(&self, key: &str) -> Option<i64> {
        self.options.get(key).and_then(|v| v.as_integer())
    }

    /// A string option.
    pub fn option_text(&self, key: &str) -> Option<String> {
        self.options
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }
}

/// Checks a table against field specs: unknown keys (naming the allowed ones), missing required
/// keys, and each value's type. `path` is where the table sits in the step, e.g. `["match"]`.
pub fn check_fields(
    table: &toml::Table,
    specs: &[FieldSpec],
    path: &[&str],
    what: &str,
) -> Vec<InputError> {
    let mut errors = Vec::new();
    let allowed: Vec<&str> = specs.iter().map(|s| s.name).collect();
    for (key, value) in table {
        let mut at: Vec<&str> = path.to_vec();
        at.push(key);
        let Some(spec) = specs.iter().find(|s| s.name == key) else {
            let mut e = InputError::at(&at, format!("unknown key `{key}` in {what}"));
            e = e.hint(match nearest(key, &allowed) {
                Some(near) => format!("did you mean `{near}`? allowed: {}", allowed.join(", ")),
                None if allowed.is_empty() => "this action takes no such keys".to_string(),
                None => format!("allowed: {}", allowed.join(", ")),
            });
            errors.push(e);
            continue;
        };
        if let Some(problem) = check_value(value, spec.kind) {
            errors.push(InputError::at(&at, problem).hint(format!(
                "`{}` takes {}: {}",
                spec.name,
                spec.kind.describe(),
                spec.help
            )));
        }
    }
    for spec in specs.iter().filter(|s| s.required) {
        if !table.contains_key(spec.name) {
            errors.push(
                InputError::at(path, format!("missing `{}` in {what}", spec.name))
                    .hint(format!("add `{} = ...`: {}", spec.name, spec.help)),
            );
        }
    }
    errors
}

fn check_value(value: &toml::Value, kind: FieldKind) -> Option<String> {
    let wrong = || Some(format!("expected {}", kind.describe()));
    match kind {
        FieldKind::Pattern => match value.as_str() {
            Some(s) => Pattern::parse(s).err(),
            None => wrong(),
        },
        FieldKind::Text => value.as_str().is_none().then(|| "expected a string".into()),
        FieldKind::List => match value.as_array() {
            Some(a) if a.iter().all(|v| v.is_str()) => None,
            _ => wrong(),
        },
        FieldKind::Tags => match value.as_table() {
            Some(t) => t.iter().find_map(|(k, v)| match v.as_str() {
                Some(s) => Pattern::parse(s).err().map(|e| format!("tag {k}: {e}")),
                None => Some(format!("tag {k}: expected a string value")),
            }),
            None => wrong(),
        },
        FieldKind::Duration => match value.as_str() {
            Some(s) => crate::util::parse_duration(s, Duration::ZERO..=Duration::MAX)
                .err()
                .map(|e| e.problem),
            None => wrong(),
        },
        FieldKind::Bool => value
            .as_bool()
            .is_none()
            .then(|| "expected true or false".into()),
        FieldKind::Integer { min, max } => match value.as_integer() {
            Some(n) if (min..=max).contains(&n) => None,
            Some(n) => Some(format!("{n} is out of range {min}..={max}")),
            None => wrong(),
        },
    }
}

/// A list of names for a hint, cut after the first few: `a, b, c and 12 more`. A hint that
/// listed every step of a 10,000-step plan would make the output quadratic.
pub fn some_of(names: &[&str]) -> String {
    const LISTED: usize = 8;
    if names.len() <= LISTED {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..LISTED].join(", "),
        names.len() - LISTED
    )
}

/// The candidate closest to `word`, if it is close enough to be a likely typo. Words longer than
/// any name are not compared (the cost grows with the product of the lengths).
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.len() > 128 {
        return None;
    }
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn globs_and_exact_names() {
        let g = Pattern::parse("aws-serverless-repository-SecretsManagerRDS*").unwrap();
        assert!(g.matches("aws-serverless-repository-SecretsManagerRDSMySQLRotationSingleUser-abc"));
        assert!(!g.matches("xaws-serverless-repository-SecretsManagerRDS"));
        let e = Pattern::parse("FargateClusterDemo").unwrap();
        assert!(e.matches("FargateClusterDemo"));
        assert!(!e.matches("FargateClusterDemo2"));
        assert!(Pattern::parse("bad[glob").is_err());
    }

    #[test]
    fn over_long_patterns_are_refused_and_the_longest_allowed_compile() {
        // 130k stars used to panic inside globset (its regex outgrew the size limit).
        let err = Pattern::parse(&"*".repeat(130_000)).unwrap_err();
        assert!(err.contains("at most 1024"), "{err}");
        assert!(err.len() < 200, "the message must not echo the pattern");
        assert!(Pattern::parse(&"x".repeat(1025)).is_err());
        for worst in [
            "*".repeat(1024),
            "?".repeat(1024),
            "*a".repeat(512),
            "[!a]".repeat(256),
            "{a,b}".repeat(204),
        ] {
            Pattern::parse(&worst).unwrap_or_else(|e| panic!("{worst}: {e}"));
        }
    }

    #[test]
    fn filter_requires_every_condition_and_a_known_age() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let filter = ResourceFilter {
            name: Some(Pattern::parse("lab-*").unwrap()),
            tags: vec![("Workshop".into(), Pattern::parse("secrets").unwrap())],
            older_than: Some(Duration::from_secs(24 * 3600)),
        };
        let tags: BTreeMap<_, _> = [("Workshop".to_string(), "secrets".to_string())].into();
        let old = Some(now - chrono::Duration::hours(30));
        assert!(filter.matches("lab-1", &tags, old, now).is_some());
        assert!(filter.matches("lab-1", &tags, Some(now), now).is_none());
        assert!(filter.matches("lab-1", &tags, None, now).is_none());
        assert!(filter
            .matches("lab-1", &BTreeMap::new(), old, now)
            .is_none());
        assert!(filter.matches("other", &tags, old, now).is_none());
    }

    #[test]
    fn nearest_suggests_typos_only() {
        assert_eq!(nearest("forse", &["force", "tags"]), Some("force"));
        assert_eq!(nearest("zzzzzzzz", &["force", "tags"]), None);
    }

    #[test]
    fn a_pattern_is_listed_from_its_literal_start() {
        let prefix = |text: &str| Pattern::parse(text).unwrap().literal_prefix().to_string();
        assert_eq!(prefix("/aws/lambda/lab-*"), "/aws/lambda/lab-");
        assert_eq!(prefix("lab-?-web"), "lab-");
        assert_eq!(prefix("/aws/[lr]*"), "/aws/");
        assert_eq!(prefix("/aws/lambda/{a,b}*"), "/aws/lambda/");
        assert_eq!(prefix("*-rotation"), "");
        assert_eq!(
            prefix("Lab{1}"),
            "Lab{1}",
            "an exact name is its own prefix"
        );
    }
}
