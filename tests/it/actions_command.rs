//! `teardown actions NAME` and `teardown actions --output json`: one action's keys with their
//! types, defaults and one-of rules, and a step that validates as it is pasted into a plan.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support;

fn teardown(args: &[&str]) -> Output {
    support::teardown_command(&[], args).output().unwrap()
}

/// A plan made of one pasted step, as a user would make it.
fn plan_with(step: &str) -> String {
    format!("name = \"pasted\"\n\n{step}")
}

fn assert_valid_plan(action: &str, step: &str) {
    let text = plan_with(step);
    if let Err(e) = teardown::plan::parse(Path::new("pasted.toml"), &text, &[]) {
        panic!("{action}: the step to paste does not validate:\n{text}\n{e}");
    }
    let schema: Value = serde_json::from_str(&teardown::plan::schema::plan_schema_text()).unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let value = serde_json::to_value(toml::from_str::<toml::Table>(&text).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{action}: {errors:?}\n{text}");
}

#[test]
fn one_action_shows_its_keys_defaults_rules_and_a_step_that_validates() {
    for spec in teardown::actions::registry() {
        let out = teardown(&["actions", spec.name]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(0), "{}: {stdout}", spec.name);
        assert!(stdout.starts_with(spec.name), "{stdout}");
        for field in spec.selector.iter().chain(spec.options) {
            let line = stdout
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{} ", field.name)))
                .unwrap_or_else(|| {
                    panic!("{}: no line for `{}`:\n{stdout}", spec.name, field.name)
                });
            if field.required {
                assert!(line.contains("required"), "{line}");
            }
            if let Some(default) = field.default {
                assert!(line.contains(&format!("default {default}")), "{line}");
            }
        }
        for rule in spec.rules {
            assert!(stdout.contains(&rule.describe()), "{}: {stdout}", spec.name);
        }
        let (_, step) = stdout
            .split_once("A step to paste into a plan:\n\n")
            .unwrap_or_else(|| panic!("{}: no step to paste:\n{stdout}", spec.name));
        assert!(step.starts_with("[steps."), "{step}");
        assert_valid_plan(spec.name, step);
    }
    // The rules, in the words a user reads.
    let out = teardown(&["actions", "ec2.delete-network-interfaces"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("`match` needs at least one of `vpc`, `vpc_of_stack`, `subnet`"),
        "{stdout}"
    );
    let out = teardown(&["actions", "secretsmanager.delete-secret"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("default 30"), "{stdout}");
}

#[test]
fn an_unknown_action_suggests_the_nearest_and_exits_2() {
    let out = teardown(&["actions", "ecr.delete-repositry"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown action `ecr.delete-repositry`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("did you mean `ecr.delete-repository`"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn json_gives_every_action_with_its_keys_and_a_step_that_validates() {
    let out = teardown(&["actions", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let all: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let all = all.as_array().expect("an array");
    let names: BTreeSet<&str> = all.iter().map(|a| a["name"].as_str().unwrap()).collect();
    let registered: BTreeSet<&str> = teardown::actions::registry()
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, registered);
    for action in all {
        let name = action["name"].as_str().unwrap();
        assert_valid_plan(name, action["step"].as_str().unwrap());
        for key in ["summary", "match", "options", "rules", "permissions"] {
            assert!(!action[key].is_null(), "{name}: no {key}");
        }
    }
    let find = |name: &str| all.iter().find(|a| a["name"] == name).unwrap();
    let stack = find("cloudformation.delete-stack");
    assert_eq!(stack["rules"][0]["rule"], "match_needs_one_of", "{stack:#}");
    assert_eq!(
        stack["rules"][0]["keys"],
        serde_json::json!(["name", "tags"])
    );
    let secret = find("secretsmanager.delete-secret");
    let window = secret["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "recovery_window_days")
        .unwrap();
    assert_eq!(window["default"], 30);
    assert_eq!(
        (window["minimum"].clone(), window["maximum"].clone()),
        (7.into(), 30.into())
    );
    let cluster = find("ecs.stop-tasks");
    assert_eq!(cluster["match"][0]["name"], "cluster");
    assert_eq!(cluster["match"][0]["required"], true);
    // One action alone is one object.
    let out = teardown(&["actions", "ecs.stop-tasks", "--output", "json"]);
    let one: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(&one, cluster);
}
