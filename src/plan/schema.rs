//! The JSON Schema of plan files (`teardown schema`, shipped as `schemas/plan.schema.json`), for
//! editors: Taplo and Even Better TOML read a plan's `#:schema` line and then complete and check
//! it as it is typed.
//!
//! It is made from what the validator itself reads, so that the two cannot drift apart: the file's
//! serde types ([`super::PlanFile`] and its parts, through `schemars`), each action's
//! [`ActionSpec`] (its `match` keys, options, defaults and [`Rule`]s: each step's `action` selects
//! its own keys), the `[lookup]` kinds and the step keys the validator knows. Draft 7, the newest
//! draft that Taplo reads.
//!
//! What a schema cannot say stays with `teardown validate` alone: the steps' graph (an `after` or
//! `on_failure` naming a step that does not exist, cycles), variables (an unknown `{name}`, a
//! lookup that clashes with `[vars]` or needs itself), a glob that does not compile, durations
//! past their limits (a step's timeout is at most 7 days and not zero), the values a template
//! becomes once its variables are filled in, and `[sweep]` rules that look at the rest of the plan
//! (a `bind` key that is not a variable, a step that no bound variable narrows).

use schemars::generate::SchemaSettings;
use schemars::{json_schema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::lookup::LOOKUP_KINDS;
use crate::actions::{self, ActionSpec, FieldKind, FieldSpec, Pattern, Rule, EXPECT_FORMS};

/// Where the shipped schema lives in the repository, and what a plan's `#:schema` line names.
pub const SHIPPED_PATH: &str = "schemas/plan.schema.json";

/// The plan schema as JSON.
pub fn plan_schema() -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let root = generator.into_root_schema_for::<super::PlanFile>();
    let mut root = root.to_value();
    let object = root.as_object_mut().expect("a schema object");
    object.insert("title".into(), json!("teardown plan"));
    object.insert(
        "description".into(),
        json!("A teardown plan: steps, what each one matches, and what must finish before it (`teardown actions` lists the actions)."),
    );
    // `steps` has a serde default (an empty table), but a plan without steps is refused.
    let required = object
        .entry("required")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("`required` is a list");
    if !required.contains(&json!("steps")) {
        required.push(json!("steps"));
    }
    let definitions = object
        .entry("definitions")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("`definitions` is an object");
    definitions.extend(shared_definitions());
    for spec in actions::registry() {
        definitions.insert(action_definition_name(spec.name), action_step(spec));
    }
    drop_null_defaults(&mut root);
    root
}

/// schemars gives an `Option` field with a serde default `"default": null`; TOML has no null, so
/// an editor that offered it would write a plan that does not parse.
fn drop_null_defaults(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            map.values_mut().for_each(drop_null_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_defaults),
        _ => {}
    }
}

/// [`plan_schema`] as the shipped file holds it: pretty JSON and a final newline.
pub fn plan_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&plan_schema()).expect("a schema serializes");
    text.push('\n');
    text
}

fn action_definition_name(action: &str) -> String {
    format!("step:{action}")
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/definitions/{name}") })
}

/// `humantime`'s durations, as `teardown` reads them: numbers (with an optional fraction) each
/// followed by a unit, with optional spaces. Their limits are the validator's.
const DURATION_PATTERN: &str = concat!(
    r"^\s*(?:[0-9][0-9\s]*(?:\.\s*[0-9][0-9\s]*)?",
    r"(?:nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m",
    r"|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)\s*)+$"
);

/// A string with a `{name}` placeholder: checked by the validator once the variable is filled in.
const TEMPLATE_PATTERN: &str = r"\{[^{}]*\}";

fn shared_definitions() -> Map<String, Value> {
    let expect_words = ["one", "at-least-one", "at-most-one", "any"];
    let mut definitions = Map::new();
    definitions.insert(
        "duration".into(),
        json!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "a duration such as \"90s\", \"45m\", \"2h\" or \"1h 30m\"",
        }),
    );
    definitions.insert(
        "template".into(),
        json!({
            "type": "string",
            "pattern": TEMPLATE_PATTERN,
            "description": "a value with a {variable} in it, checked once the variable is filled in",
        }),
    );
    definitions.insert(
        "expect".into(),
        json!({
            "description": format!("how many resources `match` must find: {EXPECT_FORMS}"),
            "oneOf": [
                { "type": "string", "enum": expect_words },
                { "type": "integer", "minimum": 0, "maximum": 100_000 },
            ],
        }),
    );
    definitions.insert(
        "retry".into(),
        json!({
            "description": "retries of retryable failures: a number of attempts (the first included), or a table",
            "oneOf": [
                { "type": "integer", "minimum": 1, "maximum": 100 },
                {
                    "type": "object",
                    "properties": {
                        "attempts": { "type": "integer", "minimum": 1, "maximum": 100 },
                        "backoff": { "type": "string", "enum": ["exponential", "constant"] },
                        "delay": reference("duration"),
                        "max-delay": reference("duration"),
                        "max_delay": reference("duration"),
                        "jitter": { "type": "boolean" },
                    },
                    "additionalProperties": false,
                },
            ],
        }),
    );
    definitions.insert(
        "on_failure".into(),
        json!({
            "description": "when the step fails, run that step, then try again",
            "type": "object",
            "properties": {
                "run": { "type": "string", "description": "the step to run" },
                "then": { "type": "string", "const": "retry" },
                "times": { "type": "integer", "minimum": 1, "maximum": 20 },
            },
            "required": ["run"],
            "additionalProperties": false,
        }),
    );
    let names: Vec<&str> = actions::registry().iter().map(|s| s.name).collect();
    let branches: Vec<Value> = actions::registry()
        .iter()
        .map(|spec| {
            json!({
                "if": { "properties": { "action": { "const": spec.name } }, "required": ["action"] },
                "then": reference(&action_definition_name(spec.name)),
            })
        })
        .collect();
    definitions.insert(
        "step".into(),
        json!({
            "description": "one step: its `action` says which `match` keys and options it takes",
            "type": "object",
            "properties": {
                "action": {
                    "type": "string",
                    "enum": names,
                    "description": "what the step does (`teardown actions` lists them)",
                },
            },
            "required": ["action"],
            "allOf": branches,
        }),
    );
    definitions
}

/// The step keys every action takes (the validator's `STEP_KEYS` but `action` and `match`, which
/// each action's definition gives itself).
fn common_step_keys() -> Map<String, Value> {
    let mut keys = Map::new();
    keys.insert("expect".into(), reference("expect"));
    keys.insert(
        "after".into(),
        json!({ "type": "array", "items": { "type": "string" }, "description": "step ids that must succeed first" }),
    );
    keys.insert(
        "phase".into(),
        json!({ "type": "string", "description": "a name for --only PHASE / --skip PHASE" }),
    );
    keys.insert(
        "timeout".into(),
        json!({ "allOf": [reference("duration")], "description": "deadline of the whole step, retries and waits included (default 30m, at most 7 days)" }),
    );
    keys.insert("retry".into(), reference("retry"));
    keys.insert("on_failure".into(), reference("on_failure"));
    keys.insert(
        "description".into(),
        json!({ "type": "string", "description": "for people" }),
    );
    debug_assert!(keys
        .keys()
        .chain(["action".to_string(), "match".to_string()].iter())
        .all(|k| super::STEP_KEYS.contains(&k.as_str())));
    keys
}

/// One value of a field, as a step may write it (`templated`: in `match` and options, where
/// `{variables}` are filled in before the value is checked).
fn field_value(field: &FieldSpec, templated: bool) -> Value {
    let plain = match field.kind {
        FieldKind::Pattern => {
            json!({ "type": "string", "minLength": 1, "maxLength": Pattern::MAX_LEN })
        }
        FieldKind::Text => json!({ "type": "string" }),
        FieldKind::List => json!({ "type": "array", "items": { "type": "string" } }),
        FieldKind::Tags => json!({
            "type": "object",
            "additionalProperties": { "type": "string", "minLength": 1, "maxLength": Pattern::MAX_LEN },
        }),
        FieldKind::Duration => {
            if templated {
                json!({ "anyOf": [reference("duration"), reference("template")] })
            } else {
                reference("duration")
            }
        }
        FieldKind::Bool => json!({ "type": "boolean" }),
        FieldKind::Integer { min, max } => {
            json!({ "type": "integer", "minimum": min, "maximum": max })
        }
    };
    let mut value = match plain {
        Value::Object(map) if !map.contains_key("$ref") => map,
        // Draft 7 ignores the siblings of a `$ref`: wrap it to carry the description.
        other => {
            let mut map = Map::new();
            map.insert("allOf".into(), json!([other]));
            map
        }
    };
    value.insert(
        "description".into(),
        json!(format!("{}: {}", field.kind.describe(), field.help)),
    );
    if let Some(default) = field.default.and_then(default_value) {
        value.insert("default".into(), default);
    }
    Value::Object(value)
}

/// A field's declared default (a TOML value) as JSON.
pub(crate) fn default_value(text: &str) -> Option<Value> {
    let table: toml::Table = toml::from_str(&format!("v = {text}")).ok()?;
    serde_json::to_value(table.get("v")?).ok()
}

/// "This key is given": present, and for a flag, `true` (a flag set to `false` is as if absent).
fn given(fields: &[FieldSpec], key: &str) -> Value {
    let flag = fields
        .iter()
        .any(|f| f.name == key && f.kind == FieldKind::Bool);
    if flag {
        json!({ "properties": { key: { "const": true } }, "required": [key] })
    } else {
        json!({ "required": [key] })
    }
}

/// The definition of a step of one action: its `match` keys, its options, the common step keys,
/// and its rules; nothing else.
fn action_step(spec: &ActionSpec) -> Value {
    let mut selector_properties = Map::new();
    for field in spec.selector {
        selector_properties.insert(field.name.into(), field_value(field, true));
    }
    let required: Vec<&str> = spec
        .selector
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let mut selector = json!({
        "type": "object",
        "description": "which resources the step acts on",
        "properties": selector_properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        selector["required"] = json!(required);
    }
    let mut selector_rules = Vec::new();
    let mut step_rules = Vec::new();
    for rule in spec.rules {
        match *rule {
            Rule::MatchNeedsOneOf(keys) => selector_rules.push(json!({
                "anyOf": keys.iter().map(|k| given(spec.selector, k)).collect::<Vec<_>>(),
            })),
            Rule::MatchNotBoth(a, b) => selector_rules.push(json!({
                "not": { "allOf": [given(spec.selector, a), given(spec.selector, b)] },
            })),
            Rule::OptionsNotBoth(a, b) => step_rules.push(json!({
                "not": { "allOf": [given(spec.options, a), given(spec.options, b)] },
            })),
        }
    }
    if !selector_rules.is_empty() {
        selector["allOf"] = json!(selector_rules);
    }
    let mut properties = Map::new();
    properties.insert(
        "action".into(),
        json!({ "const": spec.name, "description": spec.summary }),
    );
    properties.insert("match".into(), selector);
    properties.extend(common_step_keys());
    for field in spec.options {
        properties.insert(field.name.into(), field_value(field, true));
    }
    // Every action's `match` has a required key or a one-of rule, so a step without `match` is
    // refused; the check below keeps that true for a new action too.
    let needs_match = !required.is_empty()
        || spec
            .rules
            .iter()
            .any(|r| matches!(r, Rule::MatchNeedsOneOf(_)));
    let mut step = json!({
        "type": "object",
        "description": spec.summary,
        "properties": properties,
        "additionalProperties": false,
    });
    step["required"] = if needs_match {
        json!(["action", "match"])
    } else {
        json!(["action"])
    };
    if !step_rules.is_empty() {
        step["allOf"] = json!(step_rules);
    }
    step
}

/// `steps`: step ids of letters, digits, `-` and `_`, each a [`step`](shared_definitions).
pub(super) fn steps(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "the steps, by id",
        "type": "object",
        "minProperties": 1,
        "propertyNames": { "pattern": "^[A-Za-z0-9_-]+$" },
        "additionalProperties": { "$ref": "#/definitions/step" },
    })
}

/// `[lookup]`: each entry's `from` selects its keys (see [`LOOKUP_KINDS`]).
pub(super) fn lookups(_: &mut SchemaGenerator) -> Schema {
    let kinds: Vec<&str> = LOOKUP_KINDS.iter().map(|k| k.from).collect();
    let branches: Vec<Value> = LOOKUP_KINDS
        .iter()
        .map(|kind| {
            let mut properties = Map::new();
            properties.insert("from".into(), json!({ "const": kind.from }));
            for key in kind.keys {
                properties.insert(
                    (*key).into(),
                    json!({ "type": "string", "description": kind.help }),
                );
            }
            let mut required = vec!["from"];
            required.extend(kind.keys.iter().copied());
            json!({
                "if": { "properties": { "from": { "const": kind.from } }, "required": ["from"] },
                "then": {
                    "description": kind.help,
                    "properties": properties,
                    "required": required,
                    "additionalProperties": false,
                },
            })
        })
        .collect();
    let schema = json!({
        "description": "variables read from the account, read-only, before anything runs",
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": { "from": { "type": "string", "enum": kinds } },
            "required": ["from"],
            "allOf": branches,
        },
    });
    Schema::try_from(schema).expect("an object is a schema")
}

/// `[sweep]`, as `teardown sweep` (and `validate`) check it.
pub(super) fn sweep(_: &mut SchemaGenerator) -> Schema {
    let pattern = json!({ "type": "string", "minLength": 1, "maxLength": Pattern::MAX_LEN });
    let schema = json!({
        "description": "for `teardown sweep`: which stacks are labs, and the variables each lab's copy of the plan gets",
        "type": "object",
        "properties": {
            "find": {
                "type": "object",
                "properties": {
                    "stack": pattern,
                    "description": pattern,
                    "outputs": { "type": "array", "items": { "type": "string" }, "minItems": 1 },
                    "tags": { "type": "object", "additionalProperties": pattern },
                    "older_than": reference("duration"),
                    "not_updated_for": reference("duration"),
                },
                "anyOf": [
                    { "required": ["stack"] },
                    { "required": ["description"] },
                    { "required": ["tags"] },
                ],
                "additionalProperties": false,
            },
            "bind": {
                "description": "plan variables, each a template that reads the lab's stack: {stack.name}, {stack.id}, {stack.tag.KEY}, {stack.output.KEY}, {stack.parameter.KEY} (and {region}, {account})",
                "type": "object",
                "minProperties": 1,
                "additionalProperties": { "type": "string", "pattern": r"\{stack\.[^{}]*\}" },
            },
        },
        "required": ["find", "bind"],
        "additionalProperties": false,
    });
    Schema::try_from(schema).expect("an object is a schema")
}

/// A step's or `[defaults]`' `timeout`.
pub(super) fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "$ref": "#/definitions/duration" })
}

/// `[defaults]`' `retry`.
pub(super) fn retry(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "$ref": "#/definitions/retry" })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Each action's step definition takes exactly the step keys the validator takes
    /// ([`super::super::STEP_KEYS`]) and that action's options, and its `match` exactly the
    /// action's `match` keys: a key added to the validator cannot be missing from the schema (which
    /// would flag a valid plan in the editor), nor the other way round.
    #[test]
    fn every_action_definition_has_exactly_the_validators_keys() {
        let schema = plan_schema();
        let step_keys: BTreeSet<&str> = super::super::STEP_KEYS.into_iter().collect();
        let described: BTreeSet<&str> = actions::describe::COMMON_STEP_KEYS
            .iter()
            .map(|(k, _)| *k)
            .chain(["action", "match"])
            .collect();
        assert_eq!(
            described, step_keys,
            "`teardown actions` lists other step keys"
        );
        for spec in actions::registry() {
            let step = &schema["definitions"][action_definition_name(spec.name)];
            let keys = |value: &Value| -> BTreeSet<String> {
                value["properties"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{}: no properties", spec.name))
                    .keys()
                    .cloned()
                    .collect()
            };
            let mut expected: BTreeSet<String> = step_keys.iter().map(|k| k.to_string()).collect();
            expected.extend(spec.options.iter().map(|o| o.name.to_string()));
            assert_eq!(keys(step), expected, "{}", spec.name);
            let selector: BTreeSet<String> =
                spec.selector.iter().map(|f| f.name.to_string()).collect();
            assert_eq!(
                keys(&step["properties"]["match"]),
                selector,
                "{}",
                spec.name
            );
        }
    }
}
