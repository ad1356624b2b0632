//! Plan parsing and validation: every kind of bad input gets a message at the exact
//! `line:column`, and phases select steps without silently dropping a dependency.

use std::path::Path;

use teardown::plan::{self, PhaseSelection, Plan, PlanErrors, SelectionError};

use crate::support::broken_plans::text as broken;

const HEADER: &str = r#"name = "test"

[vars]
repo = "demo-repo"
"#;

fn parse(text: &str) -> Result<Plan, PlanErrors> {
    plan::parse(Path::new("plans/test.toml"), text, &[])
}

/// The single error of a plan that must fail: (line, column, message, hint).
fn error(text: &str) -> (usize, usize, String, String) {
    let errors = match parse(text) {
        Ok(_) => panic!("the plan should not validate:\n{text}"),
        Err(errors) => errors,
    };
    assert_eq!(errors.0.len(), 1, "expected one error, got:\n{errors}");
    let d = &errors.0[0];
    assert_eq!(d.file, Path::new("plans/test.toml"));
    (
        d.line,
        d.column,
        d.message.clone(),
        d.hint.clone().unwrap_or_default(),
    )
}

#[test]
fn the_workshop_plan_is_valid_and_ordered() {
    let plan = plan::load(Path::new("tests/it/plans/named-workshop.toml"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.name, "secrets-manager-fargate-workshop");
    assert!(plan
        .dag
        .depends_on("delete-main-stack", "delete-lambda-enis"));
    assert!(plan
        .dag
        .depends_on("delete-lambda-enis", "delete-rotation-stack"));
    assert!(plan
        .dag
        .depends_on("delete-rotation-stack", "cancel-rotation"));
    assert!(plan.dag.depends_on("delete-secret", "cancel-rotation"));
    // Only the rotation must be off before its function goes: the secret's deletion goes beside.
    assert!(!plan
        .dag
        .depends_on("delete-rotation-stack", "delete-secret"));
    assert!(plan.dag.depends_on("delete-cluster", "stop-tasks"));
    // The Fargate part does not wait for the stacks.
    assert!(!plan
        .dag
        .depends_on("delete-cluster", "delete-rotation-stack"));
    assert_eq!(plan.phases(), vec!["fargate", "general"]);
}

#[test]
fn a_valid_plan_fills_in_variables_and_overrides() {
    let text = format!(
        "{HEADER}\n[steps.delete-repo]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"{{repo}}-x\" }}\nforce = true\ntimeout = \"45m\"\n"
    );
    let plan = parse(&text).unwrap();
    let step = plan.dag.get("delete-repo").unwrap();
    assert_eq!(step.input.selector["name"].as_str(), Some("demo-repo-x"));
    assert_eq!(step.timeout.as_secs(), 45 * 60);
    let plan = plan::parse(
        Path::new("p.toml"),
        &text,
        &[("repo".to_string(), "other".to_string())],
    )
    .unwrap();
    assert_eq!(
        plan.dag.get("delete-repo").unwrap().input.selector["name"].as_str(),
        Some("other-x")
    );
}

#[test]
fn toml_syntax_errors_are_located() {
    let (line, column, message, _) = error(&broken("toml-syntax"));
    assert_eq!(
        (line, column),
        (3, 32),
        "where the parser saw the string end without its quote"
    );
    assert!(message.starts_with("invalid TOML"), "{message}");
}

#[test]
fn a_duplicate_step_id_is_a_located_error() {
    let (line, _, message, _) = error(&broken("duplicate-step-id"));
    assert_eq!(line, 10);
    assert!(message.contains("duplicate"), "{message}");
}

#[test]
fn unknown_top_level_keys_name_the_allowed_ones() {
    let (line, column, message, _) = error(&broken("unknown-top-level-key"));
    assert_eq!((line, column), (2, 1));
    assert!(message.contains("unknown field `stepz`"), "{message}");
    assert!(message.contains("`steps`"), "{message}");
}

#[test]
fn unknown_step_keys_name_the_allowed_ones_and_suggest() {
    let (line, column, message, hint) = error(&broken("unknown-step-key"));
    assert_eq!((line, column), (9, 1));
    assert!(message.contains("unknown key `forse`"), "{message}");
    assert!(hint.contains("did you mean `force`"), "{hint}");
    assert!(hint.contains("after"), "{hint}");
}

#[test]
fn an_unknown_action_suggests_the_nearest() {
    let (line, column, message, hint) = error(&broken("unknown-action"));
    assert_eq!((line, column), (7, 10));
    assert_eq!(message, "unknown action `ecr.delete-repositry`");
    assert!(
        hint.contains("did you mean `ecr.delete-repository`"),
        "{hint}"
    );
}

#[test]
fn an_unknown_step_in_after_suggests_the_nearest() {
    let (line, column, message, hint) = error(&broken("unknown-step-in-after"));
    assert_eq!((line, column), (13, 10));
    assert!(message.contains("waits for `frist`"), "{message}");
    assert!(hint.contains("did you mean `first`"), "{hint}");
}

#[test]
fn a_cycle_names_its_steps_in_order() {
    let text = broken("cycle");
    let (line, column, message, _) = error(&text);
    assert_eq!(
        message,
        "the steps wait for each other in a cycle: a -> b -> c -> a"
    );
    // At b's `after = ["a"]`: the first edge of the cycle.
    assert_eq!((line, column), (14, 10));
}

#[test]
fn a_bad_duration_is_located() {
    let text = broken("bad-duration");
    let (line, column, message, hint) = error(&text);
    assert_eq!((line, column), (9, 11));
    assert!(
        message.contains("bad duration \"ten minutes\""),
        "{message}"
    );
    assert!(hint.contains("45m"), "{hint}");
}

#[test]
fn a_bad_duration_in_a_selector_is_located() {
    let text = broken("bad-duration-in-match");
    let (line, column, message, _) = error(&text);
    assert_eq!((line, column), (8, 36));
    assert!(message.contains("bad duration"), "{message}");
}

#[test]
fn an_unknown_variable_is_located() {
    let text = broken("unknown-variable");
    let (line, column, message, hint) = error(&text);
    assert_eq!((line, column), (8, 18));
    assert!(
        message.contains("unknown variable `repository`"),
        "{message}"
    );
    assert!(hint.contains("repo"), "{hint}");
}

#[test]
fn an_override_of_an_undeclared_variable_is_refused() {
    let text = format!(
        "{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\" }}\n"
    );
    let errors = plan::parse(Path::new("p.toml"), &text, &[("rpo".into(), "v".into())])
        .err()
        .expect("refused");
    assert!(errors.0[0].message.contains("--var rpo"), "{errors}");
    assert!(errors.0[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("did you mean `repo`"));
}

#[test]
fn a_bad_glob_is_located() {
    let text = broken("bad-glob");
    let (line, column, message, _) = error(&text);
    assert_eq!((line, column), (8, 18));
    assert!(message.contains("bad glob"), "{message}");
}

#[test]
fn a_missing_required_selector_field_is_named() {
    let text = broken("missing-required-match-key");
    let (line, column, message, hint) = error(&text);
    assert_eq!((line, column), (8, 9));
    assert!(message.contains("missing `name`"), "{message}");
    assert!(hint.contains("name = "), "{hint}");
}

#[test]
fn several_problems_are_all_reported_in_file_order() {
    let text = broken("several-problems");
    let errors = parse(&text).err().unwrap();
    let lines: Vec<usize> = errors.0.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![7, 12]);
    let shown = errors.to_string();
    assert!(shown.contains("--> plans/test.toml:7:10"), "{shown}");
    assert!(
        shown.contains("2 problems in the plan; nothing was run"),
        "{shown}"
    );
}

fn phased() -> Plan {
    let step = |id: &str, phase: &str, after: &str| {
        format!("\n[steps.{id}]\naction = \"ecr.delete-repository\"\nphase = \"{phase}\"\nmatch = {{ name = \"{id}\" }}\nafter = [{after}]\n")
    };
    let text = format!(
        "{HEADER}{}{}{}",
        step("stop", "fargate", ""),
        step("cluster", "fargate", "\"stop\""),
        step("stack", "general", "\"stop\"")
    );
    parse(&text).unwrap()
}

#[test]
fn only_a_phase_selects_its_steps() {
    let selected = phased()
        .select(&PhaseSelection {
            only: vec!["fargate".into()],
            ..Default::default()
        })
        .unwrap();
    let ids: Vec<&str> = selected.dag.in_order().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, vec!["stop", "cluster"]);
}

#[test]
fn a_left_out_dependency_is_reported_unless_assumed_done() {
    let plan = phased();
    let only_general = PhaseSelection {
        only: vec!["general".into()],
        ..Default::default()
    };
    match plan.select(&only_general) {
        Err(SelectionError::LeftOut(pairs)) => {
            assert_eq!(pairs, vec![("stack".to_string(), "stop".to_string())])
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a dependency on a left-out step must be reported"),
    }
    let selected = plan
        .select(&PhaseSelection {
            assume_done: true,
            ..only_general
        })
        .unwrap();
    assert_eq!(selected.dag.len(), 1);
    assert_eq!(
        selected.assumed_done,
        vec![("stack".to_string(), "stop".to_string())]
    );
    let err = plan
        .select(&PhaseSelection {
            skip: vec!["fargat".into()],
            ..Default::default()
        })
        .err()
        .unwrap();
    assert!(err.to_string().contains("no phase `fargat`"), "{err}");
}

#[test]
fn durations_too_long_to_be_deadlines_are_refused_with_the_limit() {
    // These used to pass validation and panic at run time (overflow when adding to an instant).
    for (timeout, id) in [
        ("300000000000y", "timeout-300000000000y"),
        ("18446744073709551615s", "timeout-u64-max-seconds"),
        ("8days", "timeout-8days"),
    ] {
        let (line, column, message, hint) = error(&broken(id));
        assert_eq!((line, column), (9, 11), "{timeout}");
        assert!(message.contains("at most 7days"), "{timeout}: {message}");
        assert!(hint.contains("7days"), "{hint}");
    }
    let (line, _, message, _) = error(&broken("default-timeout-too-long"));
    assert_eq!(line, 7);
    assert!(message.contains("at most 7days"), "{message}");
    let (line, _, message, _) = error(&broken("retry-delay-too-long"));
    assert_eq!(line, 9);
    assert!(message.contains("at most 1day"), "{message}");
    assert!(parse(&format!(
        "{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\" }}\ntimeout = \"7days\"\nretry = {{ attempts = 3, delay = \"24h\" }}\n"
    ))
    .is_ok());
}

#[test]
fn an_over_long_glob_is_a_located_error_not_a_panic() {
    // From --var: located at the value that uses the variable.
    let text = format!(
        "{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"{{repo}}\" }}\n"
    );
    // 130k stars: globset panicked compiling it ("regex compilation shouldn't fail").
    let glob = "*".repeat(130_000);
    let errors = match plan::parse(
        Path::new("plans/test.toml"),
        &text,
        &[("repo".to_string(), glob.clone())],
    ) {
        Ok(_) => panic!("a 130k-character glob must not validate"),
        Err(errors) => errors,
    };
    assert_eq!(errors.0.len(), 1, "{errors}");
    let d = &errors.0[0];
    assert_eq!((d.line, d.column), (8, 18));
    assert!(d.message.contains("at most 1024"), "{}", d.message);
    assert!(errors.to_string().len() < 2_000, "the glob is not echoed");
    // Written in the plan itself.
    let (line, column, message, _) = error(&broken("over-long-glob"));
    assert_eq!((line, column), (8, 18));
    assert!(message.contains("at most 1024"), "{message}");
}

#[test]
fn thousands_of_broken_steps_give_bounded_output() {
    // Each step waits for a step that does not exist and has an unknown key: 4,000 problems.
    // Hints used to list every step id, so the output grew with the square of the steps.
    let text = broken("thousands-of-broken-steps");
    let errors = match parse(&text) {
        Ok(_) => panic!("the plan should not validate"),
        Err(errors) => errors,
    };
    assert_eq!(errors.0.len(), 4_000);
    let shown = errors.to_string();
    assert!(shown.len() < 64 * 1024, "{} bytes of output", shown.len());
    assert!(
        shown.contains("... and 3950 more problems not shown"),
        "{}",
        &shown[shown.len() - 300..]
    );
    assert!(shown.ends_with("4000 problems in the plan; nothing was run"));
    // A hint names a few steps, not all of them.
    assert!(shown.contains("and 1992 more"), "{}", &shown[..2000]);
}

#[test]
fn a_very_long_line_is_shown_around_its_problem() {
    let text = broken("very-long-line");
    let errors = parse(&text).err().expect("invalid");
    let shown = errors.to_string();
    assert!(shown.len() < 2_000, "{} bytes of output", shown.len());
    assert!(shown.contains("bogus"), "{shown}");
}
