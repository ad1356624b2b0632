//! `[lookup]`, required variables and `expect`, as the plan validator reads them: every mistake
//! is located, a looked-up variable keeps a placeholder that names nothing until the account is
//! read, and the shipped plans use lookups for every name the real workshop's template generates.

use std::collections::BTreeSet;
use std::path::Path;

use teardown::plan::{self, Plan, PlanErrors};

use crate::support::broken_plans::text as broken;

const WORKSHOP: &str = "plans/secrets-manager-fargate-workshop.toml";
const SWEEP: &str = "plans/stale-labs-sweep.toml";

fn parse(text: &str) -> Result<Plan, PlanErrors> {
    plan::parse(Path::new("plans/test.toml"), text, &[])
}

/// The single error of a plan that must fail, as `line:column message | hint`.
fn error(text: &str) -> String {
    let errors = match parse(text) {
        Ok(_) => panic!("the plan should not validate:\n{text}"),
        Err(errors) => errors,
    };
    assert_eq!(errors.0.len(), 1, "expected one error, got:\n{errors}");
    let d = &errors.0[0];
    format!(
        "{}:{} {} | {}",
        d.line,
        d.column,
        d.message,
        d.hint.clone().unwrap_or_default()
    )
}

const BASE: &str = r#"name = "t"

[vars]
main_stack = ""
"#;

const STEP: &str = r#"
[steps.delete-cluster]
action = "ecs.delete-cluster"
match = { name = "{cluster}" }
expect = "one"
"#;

#[test]
fn a_lookup_fills_its_variable_with_a_placeholder_until_the_account_is_read() {
    let text = format!(
        "{BASE}\n[lookup]\ncluster = {{ from = \"stack-output\", stack = \"{{main_stack}}\", key = \"ECSCluster\" }}\n{STEP}"
    );
    let plan = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.unresolved, BTreeSet::from(["cluster".to_string()]));
    assert_eq!(plan.missing, BTreeSet::from(["main_stack".to_string()]));
    let step = plan.dag.get("delete-cluster").unwrap();
    let name = step.input.selector["name"].as_str().unwrap();
    assert_eq!(name, "teardown-unresolved-cluster");
    assert_eq!(
        step.uses,
        BTreeSet::from(["cluster".to_string()]),
        "the step records the variables it uses"
    );
    assert_eq!(
        plan.lookups_needed(&plan.dag),
        BTreeSet::from(["cluster".to_string()])
    );
    assert_eq!(
        plan.missing_for(&plan.dag),
        BTreeSet::from(["main_stack".to_string()]),
        "the lookup needs main_stack, which nobody gave"
    );
    // Given on the command line, a looked-up variable is not looked up.
    let given = plan::parse(
        Path::new("p.toml"),
        &text,
        &[
            ("cluster".into(), "lab-ECSCluster-X".into()),
            ("main_stack".into(), "lab".into()),
        ],
    )
    .unwrap();
    assert!(given.unresolved.is_empty() && given.missing.is_empty());
    assert_eq!(
        given.dag.get("delete-cluster").unwrap().input.selector["name"].as_str(),
        Some("lab-ECSCluster-X")
    );
    let sources = given.variable_sources(&Default::default());
    assert!(sources
        .iter()
        .any(|(n, s)| n == "cluster" && s.source == "--var"));
}

#[test]
fn lookup_mistakes_are_located_with_what_to_do() {
    let e = error(&broken("unknown-lookup"));
    assert!(e.starts_with("7:"), "{e}");
    assert!(
        e.contains("unknown lookup `stack-outputs`") && e.contains("did you mean `stack-output`"),
        "{e}"
    );
    let e = error(&broken("lookup-without-its-key"));
    assert!(e.contains("needs `key`"), "{e}");
    let e = error(&broken("lookup-unknown-variable"));
    assert!(e.contains("unknown variable `main_stak`"), "{e}");
    let e = error(&broken("lookup-unknown-key"));
    assert!(
        e.contains("unknown key `region`") && e.contains("takes: from, stack, key"),
        "{e}"
    );
    let e = error(&broken("lookup-cycle"));
    assert!(
        e.contains("cycle") && e.contains("cluster -> other -> cluster"),
        "{e}"
    );
    let e = error(&broken("lookup-and-var-of-one-name"));
    assert!(
        e.contains("both a variable under [vars] and a lookup"),
        "{e}"
    );
}

#[test]
fn expect_takes_a_word_or_a_number_and_says_where_it_is_wrong() {
    let e = error(&broken("unknown-expect"));
    assert!(e.starts_with("12:10 unknown count \"two\""), "{e}");
    assert!(e.contains("at-least-one"), "{e}");
}

#[test]
fn the_shipped_workshop_plan_needs_only_the_main_stack_and_looks_up_the_rest() {
    let plan = plan::load(Path::new(WORKSHOP), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.missing, BTreeSet::from(["main_stack".to_string()]));
    let looked_up: BTreeSet<&str> = plan.lookups.iter().map(|l| l.name.as_str()).collect();
    for name in [
        "cluster",
        "repository",
        "task_family",
        "secret",
        "rotation_function",
        "rotation_stack",
    ] {
        assert!(
            looked_up.contains(name),
            "{name} is looked up: {looked_up:?}"
        );
    }
    // No step matches by a glob on a name that other labs share.
    for step in plan.dag.in_order() {
        for (key, value) in &step.input.selector {
            if key == "description" {
                continue;
            }
            let text = value.to_string();
            assert!(
                !text.contains('*'),
                "step {} matches `{key}` by a glob: {text}",
                step.id
            );
        }
    }
    // Every step that has exactly one of a thing in the workshop says so.
    for id in [
        "delete-cluster",
        "delete-repository",
        "delete-secret",
        "delete-rotation-stack",
        "delete-main-stack",
    ] {
        let step = plan.dag.get(id).unwrap();
        assert_eq!((step.expect.min, step.expect.max), (1, Some(1)), "{id}");
    }
    // At an AWS event only the Fargate part runs: it needs neither the secret nor its stack.
    let fargate = plan
        .select(&plan::PhaseSelection {
            only: vec!["fargate".into()],
            ..Default::default()
        })
        .unwrap();
    let needed = plan.lookups_needed(&fargate.dag);
    assert!(
        needed.contains("cluster") && !needed.contains("secret"),
        "{needed:?}"
    );
    // The policy covers the lookups' reads as well as the actions.
    let policy = plan.iam_policy(&[]);
    for action in [
        "cloudformation:DescribeStacks",
        "cloudformation:ListStackResources",
        "ecs:DescribeTaskDefinition",
        "secretsmanager:DescribeSecret",
        "logs:DeleteLogGroup",
    ] {
        assert!(policy.contains(action), "{action} missing from\n{policy}");
    }
}

#[test]
fn the_sweep_plan_runs_exactly_the_workshop_plans_steps_and_lookups() {
    let workshop = std::fs::read_to_string(WORKSHOP).unwrap();
    let sweep = std::fs::read_to_string(SWEEP).unwrap();
    let from_lookups = |text: &str| text[text.find("\n[lookup]\n").unwrap()..].to_string();
    assert_eq!(
        from_lookups(&sweep),
        from_lookups(&workshop),
        "{SWEEP} must carry the workshop plan's [lookup], [defaults] and steps unchanged"
    );
    teardown::sweep::SweepPlan::load(Path::new(SWEEP), &[]).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_run_without_the_required_variable_is_refused_before_any_call() {
    // No endpoint, no credentials: the refusal must come before anything would need them.
    let home = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "HOME".to_string(),
            home.path().to_str().unwrap().to_string(),
        ),
        (
            "AWS_ENDPOINT_URL".to_string(),
            "http://127.0.0.1:9".to_string(),
        ),
        ("AWS_REGION".to_string(), "us-west-2".to_string()),
    ];
    let out = crate::support::teardown_command(&env, &["run", WORKSHOP, "--yes"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--var main_stack="), "{err}");
}
