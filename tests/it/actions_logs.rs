//! `logs.delete-log-groups` against moto: exact names delete exactly those groups and never a longer
//! look-alike; a glob deletes what it matches, across pages; tags select; a protected group is kept
//! and reported; a dry run changes nothing; a group gone between find and act is already gone; and
//! `teardown permissions` lists the calls.

use crate::support;

use std::sync::Arc;

use support::faults::{Answer, Faults, Rule};
use teardown::actions::logs::DELETE_LOG_GROUPS;
use teardown::actions::{Acted, StepInput};
use teardown::aws::{Aws, AwsOptions, Mode};
use teardown::engine::StepOutput;
use teardown::resource::{OutcomeKind, ResourceOutcome};

const DELETE: &str = "CloudWatch Logs.DeleteLogGroup";

async fn group(aws: &Aws, name: &str, tags: &[(&str, &str)]) {
    let mut request = aws.logs.create_log_group().log_group_name(name);
    for (k, v) in tags {
        request = request.tags(*k, *v);
    }
    request.send().await.unwrap();
}

async fn group_names(aws: &Aws) -> Vec<String> {
    let groups: Vec<_> = aws
        .logs
        .describe_log_groups()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    let mut names: Vec<String> = groups
        .iter()
        .filter_map(|g| g.log_group_name().map(str::to_string))
        .collect();
    names.sort();
    names
}

fn outcome<'a>(out: &'a StepOutput, name: &str) -> &'a ResourceOutcome {
    out.resources
        .iter()
        .find(|o| o.resource.name == name)
        .unwrap_or_else(|| panic!("{name} not in {:#?}", out.resources))
}

fn names_of(out: &StepOutput) -> Vec<&str> {
    let mut names: Vec<&str> = out
        .resources
        .iter()
        .map(|o| o.resource.name.as_str())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn exact_names_delete_those_groups_and_never_a_longer_look_alike() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    for name in [
        "/aws/lambda/fn",
        "/aws/lambda/fn-2",
        "/aws/lambda/rotation",
        "/aws/lambda/rotation-old",
        "/aws/lambda/other",
    ] {
        group(&setup, name, &[]).await;
    }

    let aws = Arc::new(moto.aws(Mode::Apply));
    let (result, _) = support::run_action(
        aws.clone(),
        &DELETE_LOG_GROUPS,
        r#"names = ["/aws/lambda/fn", "/aws/lambda/rotation", "/aws/lambda/never-invoked"]"#,
        "",
    )
    .await;
    let out = result.expect("step succeeds");
    assert_eq!(
        names_of(&out),
        ["/aws/lambda/fn", "/aws/lambda/rotation"],
        "{:#?}",
        out.resources
    );
    let fn_group = outcome(&out, "/aws/lambda/fn");
    assert_eq!(fn_group.outcome, OutcomeKind::Done);
    assert_eq!(fn_group.detail, "deleted");
    assert_eq!(
        fn_group.resource.matched_because,
        "name is \"/aws/lambda/fn\" (listed in names)"
    );
    assert_eq!(
        fn_group.resource.id,
        format!(
            "arn:aws:logs:{}:{}:log-group:/aws/lambda/fn",
            support::REGION,
            support::ACCOUNT
        )
    );
    assert!(fn_group.resource.created.is_some());
    assert_eq!(out.summary, "delete: 2 of 2 CloudWatch Logs log groups");
    assert_eq!(aws.calls.mutating_operations(), [DELETE, DELETE]);
    // The action's permissions cover every call it made.
    for record in aws.calls.records() {
        let action = support::iam_action(&record.service, &record.operation);
        assert!(
            DELETE_LOG_GROUPS.permissions.contains(&action.as_str()),
            "{action} is missing from the action's permissions"
        );
    }
    assert_eq!(
        group_names(&aws).await,
        [
            "/aws/lambda/fn-2",
            "/aws/lambda/other",
            "/aws/lambda/rotation-old"
        ]
    );

    // `name` with an exact name is as strict.
    let (result, _) = support::run_action(
        aws.clone(),
        &DELETE_LOG_GROUPS,
        r#"name = "/aws/lambda/rotation""#,
        "",
    )
    .await;
    let out = result.unwrap();
    assert!(out.resources.is_empty(), "{:#?}", out.resources);
    assert_eq!(
        out.summary,
        "no CloudWatch Logs log group matched: nothing to do"
    );
    assert_eq!(group_names(&aws).await.len(), 3);
}

#[tokio::test]
async fn a_glob_deletes_what_it_matches_only_across_pages() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    // DescribeLogGroups returns 50 groups a page: 55 take two.
    for i in 0..55 {
        group(&setup, &format!("/aws/lambda/lab-{i:02}"), &[]).await;
    }
    for name in ["/aws/lambda/labx", "/aws/lambda/prod-1", "/ecs/lab-1"] {
        group(&setup, name, &[]).await;
    }

    // Just created: none is older than an hour.
    let aws = Arc::new(moto.aws(Mode::Apply));
    let (result, _) = support::run_action(
        aws.clone(),
        &DELETE_LOG_GROUPS,
        "name = \"/aws/lambda/lab-*\"\nolder_than = \"1h\"",
        "",
    )
    .await;
    assert!(result.unwrap().resources.is_empty());
    assert!(aws.calls.mutating_operations().is_empty());

    let aws = Arc::new(moto.aws(Mode::Apply));
    let (result, _) = support::run_action(
        aws.clone(),
        &DELETE_LOG_GROUPS,
        "name = \"/aws/lambda/lab-*\"",
        "",
    )
    .await;
    let out = result.expect("step succeeds");
    assert_eq!(out.summary, "delete: 55 of 55 CloudWatch Logs log groups");
    assert!(out.resources.iter().all(|o| o.outcome == OutcomeKind::Done
        && o.resource.matched_because == "name matches \"/aws/lambda/lab-*\""));
    let listings = aws
        .calls
        .records()
        .iter()
        .filter(|r| r.operation == "DescribeLogGroups")
        .count();
    assert_eq!(listings, 2, "one listing of two pages");
    assert_eq!(
        group_names(&aws).await,
        ["/aws/lambda/labx", "/aws/lambda/prod-1", "/ecs/lab-1"]
    );
}

#[tokio::test]
async fn a_group_tagged_protect_is_kept_and_reported_and_tags_select() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    group(&setup, "/aws/lambda/a", &[("Project", "lab")]).await;
    group(
        &setup,
        "/aws/lambda/b",
        &[("Project", "lab"), ("teardown:protect", "yes")],
    )
    .await;
    group(&setup, "/aws/lambda/c", &[("Project", "prod")]).await;
    group(&setup, "/aws/lambda/d", &[]).await;
    group(&setup, "/aws/lambda/e", &[("teardown:protect", "")]).await;

    // By name: the step says nothing of tags, the protect tag is checked all the same.
    let aws = Arc::new(moto.aws(Mode::Apply));
    let (result, _) = support::run_action(
        aws.clone(),
        &DELETE_LOG_GROUPS,
        r#"names = ["/aws/lambda/d", "/aws/lambda/e"]"#,
        "",
    )
    .await;
    let out = result.expect("step succeeds");
    assert_eq!(outcome(&out, "/aws/lambda/d").outcome, OutcomeKind::Done);
    let kept = outcome(&out, "/aws/lambda/e");
    assert_eq!(kept.outcome, OutcomeKind::Protected);
    assert_eq!(kept.detail, "protected: tagged teardown:protect");
    assert_eq!(aws.calls.mutating_operations(), [DELETE]);

    // By tags.
    let aws = Arc::new(moto.aws(Mode::Apply));
    let (result, _) = support::run_action(
        aws.clone(),
        &DELETE_LOG_GROUPS,
        r#"tags = { Project = "lab" }"#,
        "",
    )
    .await;
    let out = result.expect("step succeeds");
    assert_eq!(
        names_of(&out),
        ["/aws/lambda/a", "/aws/lambda/b"],
        "{:#?}",
        out.resources
    );
    assert_eq!(outcome(&out, "/aws/lambda/a").outcome, OutcomeKind::Done);
    assert_eq!(
        outcome(&out, "/aws/lambda/a").resource.matched_because,
        "tag Project=lab"
    );
    assert_eq!(
        outcome(&out, "/aws/lambda/b").outcome,
        OutcomeKind::Protected
    );
    assert_eq!(out.summary, "delete: 1 of 1 CloudWatch Logs log group");
    assert_eq!(aws.calls.mutating_operations(), [DELETE]);
    assert_eq!(
        group_names(&aws).await,
        ["/aws/lambda/b", "/aws/lambda/c", "/aws/lambda/e"]
    );
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_says_what_it_would_delete() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    group(&setup, "/aws/lambda/fn", &[]).await;
    group(&setup, "/aws/lambda/fn-2", &[]).await;
    group(&setup, "/aws/lambda/kept", &[("teardown:protect", "yes")]).await;

    let aws = Arc::new(moto.aws(Mode::DryRun));
    let (result, _) = support::run_action(
        aws.clone(),
        &DELETE_LOG_GROUPS,
        r#"name = "/aws/lambda/*""#,
        "",
    )
    .await;
    let out = result.expect("step succeeds");
    assert_eq!(
        out.summary, "would delete 2 CloudWatch Logs log groups",
        "{:#?}",
        out.resources
    );
    let planned = outcome(&out, "/aws/lambda/fn");
    assert_eq!(planned.outcome, OutcomeKind::Planned);
    assert_eq!(planned.detail, "would delete it and its log streams");
    assert_eq!(
        outcome(&out, "/aws/lambda/kept").outcome,
        OutcomeKind::Protected
    );
    assert!(aws.calls.mutating_operations().is_empty());
    assert_eq!(
        group_names(&aws).await,
        ["/aws/lambda/fn", "/aws/lambda/fn-2", "/aws/lambda/kept"]
    );
}

#[tokio::test]
async fn a_group_deleted_between_find_and_act_is_already_gone() {
    let moto = support::moto().await;
    let aws = moto.aws(Mode::Apply);
    group(&aws, "/aws/lambda/fn", &[]).await;
    let action = (DELETE_LOG_GROUPS.build)(&StepInput {
        step: "t".into(),
        selector: toml::from_str(r#"names = ["/aws/lambda/fn"]"#).unwrap(),
        options: toml::Table::new(),
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    let found = action.find(&aws).await.unwrap();
    assert_eq!(found.len(), 1);
    aws.logs
        .delete_log_group()
        .log_group_name("/aws/lambda/fn")
        .send()
        .await
        .unwrap();
    assert_eq!(
        action.act(&aws, &found[0]).await.unwrap(),
        Acted::AlreadyGone
    );
}

#[tokio::test]
async fn a_step_whose_group_went_meanwhile_reports_it_already_gone() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    group(&setup, "/aws/lambda/fn", &[]).await;
    group(&setup, "/aws/lambda/fn-b", &[]).await;
    // The first DeleteLogGroup gets AWS's answer for a group someone else deleted after the find.
    let faults = Faults::new(vec![Rule::on(
        "CloudWatch Logs",
        "DeleteLogGroup",
        1,
        Answer::error(
            400,
            "ResourceNotFoundException",
            "The specified log group does not exist.",
        ),
    )
    .instead_of_sending()]);
    let aws = Arc::new(moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![faults.shared()],
            ..AwsOptions::default()
        },
    ));
    let (result, _) = support::run_action(
        aws.clone(),
        &DELETE_LOG_GROUPS,
        r#"name = "/aws/lambda/fn*""#,
        "",
    )
    .await;
    let out = result.expect("an already gone group is no error");
    assert_eq!(faults.injected(), 1);
    assert_eq!(
        outcome(&out, "/aws/lambda/fn").outcome,
        OutcomeKind::AlreadyGone
    );
    assert_eq!(outcome(&out, "/aws/lambda/fn-b").outcome, OutcomeKind::Done);
    assert_eq!(out.summary, "delete: 1 of 2 CloudWatch Logs log groups");
}

#[test]
fn permissions_and_validate_know_the_action() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "name = \"lambda-logs\"\n[vars]\nrotation_function = \"rotate\"\n\n\
         [steps.delete-lambda-logs]\naction = \"logs.delete-log-groups\"\n\
         match = { names = [\"/aws/lambda/{rotation_function}\"] }\n",
    )
    .unwrap();
    let out = support::teardown_command(&[], &["permissions", plan.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<&str> = policy["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "logs:DeleteLogGroup",
            "logs:DescribeLogGroups",
            "logs:ListTagsForResource",
            "sts:GetCallerIdentity"
        ]
    );

    // A glob in `names` is refused before anything runs, located at the step.
    std::fs::write(
        &plan,
        crate::support::broken_plans::text("glob-in-log-group-names"),
    )
    .unwrap();
    let out = support::teardown_command(&[], &["validate", plan.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plan.toml:5:"), "{err}");
    assert!(err.contains("`names` takes exact names"), "{err}");
}
