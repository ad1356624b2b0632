//! One action as `teardown actions NAME` shows it: its keys with their types, defaults and
//! rules, and a step ready to paste into a plan; and the same as JSON (`--output json`). All of it
//! is read from the [`ActionSpec`], the data the validator checks steps against. Nothing here
//! prints.

use serde_json::{json, Value};

use super::{ActionSpec, FieldKind, FieldSpec, Rule};

/// The step keys every action takes besides `action` and `match`, with what each is for.
pub const COMMON_STEP_KEYS: [(&str, &str); 7] = [
    ("expect", "how many resources `match` must find: \"one\", \"at-least-one\", \"at-most-one\", \"any\" (the default) or a number"),
    ("after", "step ids that must succeed first"),
    ("phase", "a name for --only PHASE / --skip PHASE"),
    ("timeout", "deadline of the whole step, retries and waits included (default 30m)"),
    ("retry", "3 (attempts, the first included), or { attempts, backoff, delay, max-delay, jitter }"),
    ("on_failure", "{ run = \"other-step\", then = \"retry\", times = 2 }"),
    ("description", "for people"),
];

/// The id a pasted step gets: the action's name without its service (`delete-repository`).
pub fn step_id(spec: &ActionSpec) -> &'static str {
    spec.name
        .split_once('.')
        .map_or(spec.name, |(_, kind)| kind)
}

/// A value to put in a pasted step for a key that must be given: a placeholder that validates
/// and says what to replace (`cluster = "<cluster>"`).
fn placeholder(field: &FieldSpec) -> String {
    match field.kind {
        FieldKind::Pattern | FieldKind::Text => format!("\"<{}>\"", field.name),
        FieldKind::List => format!("[\"<{}>\"]", field.name),
        FieldKind::Tags => "{ Project = \"<value>\" }".to_string(),
        FieldKind::Duration => "\"24h\"".to_string(),
        FieldKind::Bool => "true".to_string(),
        FieldKind::Integer { min, .. } => min.to_string(),
    }
}

/// The `match` keys a pasted step gives: the required ones, and the first key of each one-of
/// rule that none of those satisfies.
fn keys_to_give(spec: &ActionSpec) -> Vec<&'static FieldSpec> {
    let mut given: Vec<&FieldSpec> = spec.selector.iter().filter(|f| f.required).collect();
    for rule in spec.rules {
        if let Rule::MatchNeedsOneOf(keys) = rule {
            if !keys.iter().any(|k| given.iter().any(|f| f.name == *k)) {
                if let Some(field) = spec.selector.iter().find(|f| f.name == keys[0]) {
                    given.push(field);
                }
            }
        }
    }
    given
}

/// A step of this action, ready to paste under a plan's steps: the keys it must have, with
/// placeholders, and every other key of the action commented out with its default or meaning.
/// It validates as it is (a test pastes it into a plan).
pub fn example_step(spec: &ActionSpec) -> String {
    let give = keys_to_give(spec);
    let inline: Vec<String> = give
        .iter()
        .map(|f| format!("{} = {}", f.name, placeholder(f)))
        .collect();
    let mut out = format!(
        "[steps.{}]\naction = \"{}\"\nmatch = {{ {} }}\n",
        step_id(spec),
        spec.name,
        inline.join(", ")
    );
    for field in spec.selector {
        if give.iter().any(|g| g.name == field.name) {
            continue;
        }
        // Not `match.KEY = ...`: uncommented under the inline `match` table, a dotted key would
        // be a TOML error. The reader moves it into `match = { ... }`.
        out.push_str(&format!(
            "# in match: {} = {}   # {}\n",
            field.name,
            placeholder(field),
            field.help
        ));
    }
    for field in spec.options {
        let value = field
            .default
            .map(str::to_string)
            .unwrap_or_else(|| placeholder(field));
        out.push_str(&format!("# {} = {value}   # {}\n", field.name, field.help));
    }
    out.push_str("# expect = \"one\"   # how many resources `match` must find\n");
    out.push_str("# after = [\"other-step\"]\n");
    out
}

fn field_lines(out: &mut String, fields: &[FieldSpec]) {
    for field in fields {
        let status = if field.required {
            "required".to_string()
        } else if let Some(default) = field.default {
            format!("default {default}")
        } else {
            "optional".to_string()
        };
        out.push_str(&format!(
            "  {:<32} {:<16} {}\n  {:<32} {:<16} {}\n",
            field.name,
            status,
            field.kind.describe(),
            "",
            "",
            field.help
        ));
    }
}

/// The whole description of one action, as text.
pub fn text(spec: &ActionSpec) -> String {
    let mut out = format!("{}\n  {}\n\n", spec.name, spec.summary);
    out.push_str("match (which resources):\n");
    field_lines(&mut out, spec.selector);
    out.push_str("\noptions:\n");
    if spec.options.is_empty() {
        out.push_str("  none\n");
    } else {
        field_lines(&mut out, spec.options);
    }
    if !spec.rules.is_empty() {
        out.push_str("\nrules:\n");
        for rule in spec.rules {
            out.push_str(&format!("  {}\n", rule.describe()));
        }
    }
    out.push_str("\nkeys of every step: action, match, ");
    out.push_str(
        &COMMON_STEP_KEYS
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(", "),
    );
    out.push_str(&format!(
        "\n\nIAM actions it calls: {}\n\nA step to paste into a plan:\n\n{}",
        spec.permissions.join(", "),
        example_step(spec)
    ));
    out
}

fn kind_name(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Pattern => "pattern",
        FieldKind::Text => "string",
        FieldKind::List => "list",
        FieldKind::Tags => "tags",
        FieldKind::Duration => "duration",
        FieldKind::Bool => "bool",
        FieldKind::Integer { .. } => "integer",
    }
}

fn field_json(field: &FieldSpec) -> Value {
    let mut value = json!({
        "name": field.name,
        "type": kind_name(field.kind),
        "type_text": field.kind.describe(),
        "required": field.required,
        "help": field.help,
    });
    if let FieldKind::Integer { min, max } = field.kind {
        value["minimum"] = json!(min);
        value["maximum"] = json!(max);
    }
    if let Some(default) = field.default {
        let parsed: Option<toml::Table> = toml::from_str(&format!("v = {default}")).ok();
        if let Some(v) = parsed.and_then(|t| t.get("v").cloned()) {
            value["default"] = serde_json::to_value(v).unwrap_or(Value::Null);
        }
    }
    value
}

fn rule_json(rule: &Rule) -> Value {
    let (kind, keys): (&str, Vec<&str>) = match *rule {
        Rule::MatchNeedsOneOf(keys) => ("match_needs_one_of", keys.to_vec()),
        Rule::MatchNotBoth(a, b) => ("match_not_both", vec![a, b]),
        Rule::OptionsNotBoth(a, b) => ("options_not_both", vec![a, b]),
    };
    json!({ "rule": kind, "keys": keys, "text": rule.describe() })
}

/// One action as JSON: name, summary, `match` keys, options, rules, IAM actions and the step to
/// paste.
pub fn json(spec: &ActionSpec) -> Value {
    json!({
        "name": spec.name,
        "summary": spec.summary,
        "match": spec.selector.iter().map(field_json).collect::<Vec<_>>(),
        "options": spec.options.iter().map(field_json).collect::<Vec<_>>(),
        "rules": spec.rules.iter().map(rule_json).collect::<Vec<_>>(),
        "permissions": spec.permissions,
        "step": example_step(spec),
    })
}
