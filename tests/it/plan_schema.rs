//! The plan schema (`teardown schema`, `schemas/plan.schema.json`): the shipped file is what the
//! binary prints, every shipped plan passes it, and on the corpus of broken plans
//! (`support::broken_plans`) it refuses what `teardown validate` refuses, except the mistakes
//! listed there as only the validator's, each with why.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support;
use crate::support::broken_plans::{self, Schema};

const SHIPPED: &str = "schemas/plan.schema.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join(SHIPPED)).expect("the shipped schema");
    let schema: Value = serde_json::from_str(&text).expect("the shipped schema is JSON");
    jsonschema::draft7::new(&schema).unwrap_or_else(|e| panic!("not a draft 7 schema: {e}"))
}

/// A plan as the schema sees it (TOML read into JSON), or why it is not TOML at all. An editor
/// reports a file that is not TOML as an error before any schema: that counts as refused.
fn as_json(text: &str) -> Result<Value, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_value(table).map_err(|e| e.to_string())
}

/// The schema's problems with a plan (empty when it passes).
fn schema_errors(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    match as_json(text) {
        Err(e) => vec![format!("not TOML: {e}")],
        Ok(value) => validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect(),
    }
}

fn plans_in(dir: &Path) -> Vec<PathBuf> {
    let mut plans: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    plans.sort();
    plans
}

#[test]
fn the_shipped_schema_is_what_teardown_schema_prints() {
    let out = support::teardown_command(&[], &["schema"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let shipped = std::fs::read_to_string(root().join(SHIPPED)).expect("the shipped schema");
    assert!(
        out.stdout == shipped.as_bytes(),
        "{SHIPPED} is stale: regenerate it with `cargo run -- schema > {SHIPPED}`"
    );
}

#[test]
fn every_shipped_plan_passes_the_schema_and_names_it() {
    let validator = validator();
    let mut plans = plans_in(&root().join("plans"));
    assert!(plans.len() >= 4, "{plans:?}");
    for plan in &plans {
        let text = std::fs::read_to_string(plan).unwrap();
        // Taplo's and Even Better TOML's convention: a `#:schema` comment, relative to the file.
        let first = text.lines().next().unwrap_or_default();
        let named = first
            .strip_prefix("#:schema ")
            .unwrap_or_else(|| panic!("{}: no `#:schema` first line", plan.display()));
        let resolved = plan.parent().unwrap().join(named.trim());
        assert_eq!(
            std::fs::canonicalize(&resolved).ok(),
            std::fs::canonicalize(root().join(SHIPPED)).ok(),
            "{}: `#:schema {named}` is not {SHIPPED}",
            plan.display()
        );
    }
    plans.extend(plans_in(&root().join("tests/it/plans")));
    for plan in &plans {
        let text = std::fs::read_to_string(plan).unwrap();
        let errors = schema_errors(&validator, &text);
        assert!(
            errors.is_empty(),
            "{} fails the schema:\n{}",
            plan.display(),
            errors.join("\n")
        );
    }
}

/// `teardown validate` on a plan's text: true when it accepts it.
fn validate_accepts(dir: &Path, id: &str, text: &str, vars: &[(String, String)]) -> bool {
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(&path, text).unwrap();
    let mut args = vec!["validate".to_string(), path.to_str().unwrap().to_string()];
    for (key, value) in vars {
        args.push("--var".into());
        args.push(format!("{key}={value}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::teardown_command(&[], &args).output().unwrap();
    match out.status.code() {
        Some(0) => true,
        Some(2) => false,
        other => panic!(
            "{id}: validate exited {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn the_schema_and_validate_agree_on_every_broken_plan() {
    let validator = validator();
    let dir = tempfile::tempdir().unwrap();
    let corpus = broken_plans::corpus();
    assert!(corpus.len() >= 30, "the corpus shrank: {}", corpus.len());
    let mut disagreements = Vec::new();
    for case in &corpus {
        assert!(
            !validate_accepts(dir.path(), case.id, &case.text, &case.vars),
            "{}: `teardown validate` accepts a plan of the broken corpus",
            case.id
        );
        let errors = schema_errors(&validator, &case.text);
        match case.schema {
            Schema::Refuses if errors.is_empty() => disagreements.push(format!(
                "{}: validate refuses it, the schema passes it",
                case.id
            )),
            // Listed on purpose: if the schema learns to see it, the list must say so.
            Schema::ValidatorOnly(why) if !errors.is_empty() => disagreements.push(format!(
                "{}: listed as validator-only ({why}), but the schema refuses it too: {}",
                case.id,
                errors.join("; ")
            )),
            _ => {}
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn a_step_of_another_action_gets_that_actions_keys_from_the_schema() {
    let validator = validator();
    let plan = |step: &str| format!("name = \"p\"\n[steps.s]\n{step}\n");
    // `force` belongs to ecr.delete-repository, not to ecs.delete-cluster.
    let ok = plan("action = \"ecr.delete-repository\"\nmatch = { name = \"r\" }\nforce = true");
    assert_eq!(schema_errors(&validator, &ok), Vec::<String>::new());
    let wrong = plan("action = \"ecs.delete-cluster\"\nmatch = { name = \"c\" }\nforce = true");
    assert!(!schema_errors(&validator, &wrong).is_empty());
    // A one-of rule: a stack step needs `name` or `tags`, `older_than` alone would match every stack.
    let too_wide =
        plan("action = \"cloudformation.delete-stack\"\nmatch = { older_than = \"1d\" }");
    assert!(!schema_errors(&validator, &too_wide).is_empty());
    let tagged = plan(
        "action = \"cloudformation.delete-stack\"\nmatch = { tags = { Lab = \"x\" }, older_than = \"1d\" }",
    );
    assert_eq!(schema_errors(&validator, &tagged), Vec::<String>::new());
    // A flag counts only when true: a window with force_delete_without_recovery = false is fine.
    let secret = |options: &str| {
        plan(&format!(
            "action = \"secretsmanager.delete-secret\"\nmatch = {{ name = \"s\" }}\n{options}"
        ))
    };
    assert_eq!(
        schema_errors(
            &validator,
            &secret("recovery_window_days = 7\nforce_delete_without_recovery = false")
        ),
        Vec::<String>::new()
    );
    assert!(!schema_errors(
        &validator,
        &secret("recovery_window_days = 7\nforce_delete_without_recovery = true")
    )
    .is_empty());
    assert!(!schema_errors(&validator, &secret("recovery_window_days = 31")).is_empty());
    // A variable in a duration of `match` is checked once filled in, not by the schema.
    let templated = plan(
        "action = \"ecr.delete-repository\"\nmatch = { name = \"r\", older_than = \"{age}\" }",
    );
    assert_eq!(schema_errors(&validator, &templated), Vec::<String>::new());
}

/// The schema's duration pattern reads as `humantime` (what the validator uses) reads: the same
/// words pass and fail both. Sizes are the validator's alone (see `broken_plans`).
#[test]
fn the_schemas_durations_are_humantimes() {
    let validator = validator();
    let with_timeout = |d: &str| {
        format!("name = \"p\"\n[steps.s]\naction = \"ecs.delete-cluster\"\nmatch = {{ name = \"c\" }}\ntimeout = \"{d}\"\n")
    };
    for duration in [
        "90s",
        "45m",
        "2h",
        "1h 30m",
        "1h30m",
        "7days",
        "1.5h",
        "2 days",
        "10 min",
        "3weeks",
        "ten minutes",
        "1 fortnight",
        "soon",
        "",
        "5",
        "-5m",
        "m5",
        "1.h",
        "5 m s",
        "1h,30m",
    ] {
        let humantime_reads = humantime::parse_duration(duration).is_ok();
        let schema_passes = schema_errors(&validator, &with_timeout(duration)).is_empty();
        assert_eq!(
            schema_passes, humantime_reads,
            "{duration:?}: humantime {humantime_reads}, the schema {schema_passes}"
        );
    }
}
