//! `events.delete-rule` against moto: targets removed (ten a call) before each rule is deleted,
//! rules matched by the event pattern's source or by name on one bus, protected and look-alike
//! rules left alone, a dry run that only reads, a rule gone between find and act.

use crate::support;

use std::sync::Arc;

use aws_sdk_eventbridge::types::Target;
use teardown::actions::events::DELETE_RULE;
use teardown::actions::{Acted, StepInput};
use teardown::aws::{Aws, Mode};
use teardown::resource::OutcomeKind;

/// A rule on `bus` whose event pattern has this source, with `targets` SNS targets and tags.
async fn rule(
    aws: &Aws,
    bus: &str,
    name: &str,
    source: &str,
    targets: usize,
    tags: &[(&str, &str)],
) {
    let mut request = aws
        .eventbridge
        .put_rule()
        .name(name)
        .event_bus_name(bus)
        .event_pattern(serde_json::json!({ "source": [source] }).to_string());
    for (k, v) in tags {
        request = request.tags(
            aws_sdk_eventbridge::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap(),
        );
    }
    request.send().await.unwrap();
    let all: Vec<Target> = (0..targets)
        .map(|i| {
            Target::builder()
                .id(format!("T{i}"))
                .arn(format!("arn:aws:sns:us-west-2:123456789012:{name}-{i}"))
                .build()
                .unwrap()
        })
        .collect();
    // PutTargets takes ten at a time, as RemoveTargets does.
    for chunk in all.chunks(10) {
        aws.eventbridge
            .put_targets()
            .rule(name)
            .event_bus_name(bus)
            .set_targets(Some(chunk.to_vec()))
            .send()
            .await
            .unwrap();
    }
}

/// The target ids of a rule, `None` when it does not exist.
async fn targets(aws: &Aws, bus: &str, name: &str) -> Option<usize> {
    aws.eventbridge
        .list_targets_by_rule()
        .rule(name)
        .event_bus_name(bus)
        .send()
        .await
        .ok()
        .map(|out| out.targets().len())
}

async fn rule_names(aws: &Aws, bus: &str) -> Vec<String> {
    let out = aws
        .eventbridge
        .list_rules()
        .event_bus_name(bus)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = out
        .rules()
        .iter()
        .filter_map(|r| r.name().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn removes_every_target_then_deletes_the_rules_whose_source_matches() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    rule(
        &setup,
        "default",
        "lab-alert",
        "aws.secretsmanager",
        12,
        &[],
    )
    .await;
    rule(&setup, "default", "lab-quiet", "aws.secretsmanager", 0, &[]).await;
    rule(
        &setup,
        "default",
        "lab-kept",
        "aws.secretsmanager",
        1,
        &[("teardown:protect", "yes")],
    )
    .await;
    rule(&setup, "default", "ec2-alert", "aws.ec2", 1, &[]).await;

    let aws = Arc::new(moto.aws(Mode::Apply));
    let (result, _) =
        support::run_action(aws.clone(), &DELETE_RULE, "source = \"aws.secrets*\"", "").await;
    let out = result.expect("step succeeds");
    let outcome = |name: &str| {
        out.resources
            .iter()
            .find(|o| o.resource.name == name)
            .unwrap_or_else(|| panic!("{name} not in {:#?}", out.resources))
    };
    assert_eq!(out.resources.len(), 3, "{:#?}", out.resources);
    assert_eq!(outcome("lab-alert").outcome, OutcomeKind::Done);
    assert!(
        outcome("lab-alert")
            .detail
            .starts_with("removed its 12 targets (T0=arn:aws:sns:"),
        "{}",
        outcome("lab-alert").detail
    );
    assert_eq!(
        outcome("lab-alert").resource.matched_because,
        "event pattern source \"aws.secretsmanager\""
    );
    assert_eq!(
        outcome("lab-quiet").detail,
        "deleted (it had no targets)".to_string()
    );
    assert_eq!(outcome("lab-kept").outcome, OutcomeKind::Protected);
    assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
    assert!(
        out.notes[0].starts_with("rule lab-alert: removed 12 targets before deleting it"),
        "{:?}",
        out.notes
    );

    assert_eq!(
        rule_names(&aws, "default").await,
        vec!["ec2-alert", "lab-kept"]
    );
    assert_eq!(targets(&aws, "default", "lab-kept").await, Some(1));
    assert_eq!(targets(&aws, "default", "ec2-alert").await, Some(1));

    // Per rule: its targets go in calls of ten, all before the rule itself.
    let alert_arn = &outcome("lab-alert").resource.id;
    let calls: Vec<String> = aws
        .calls
        .records()
        .into_iter()
        .filter(|r| r.mutating && r.resource.as_deref() == Some(alert_arn.as_str()))
        .map(|r| r.operation)
        .collect();
    assert_eq!(calls, vec!["RemoveTargets", "RemoveTargets", "DeleteRule"]);
    // The two rules are taken apart side by side: across them, no order.
    let mut all = aws.calls.mutating_operations();
    all.sort();
    assert_eq!(
        all,
        vec![
            "EventBridge.DeleteRule",
            "EventBridge.DeleteRule",
            "EventBridge.RemoveTargets",
            "EventBridge.RemoveTargets",
        ]
    );
}

#[tokio::test]
async fn a_name_on_another_bus_matches_only_there() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    setup
        .eventbridge
        .create_event_bus()
        .name("lab-bus")
        .send()
        .await
        .unwrap();
    rule(&setup, "default", "alert", "aws.secretsmanager", 1, &[]).await;
    rule(&setup, "lab-bus", "alert", "aws.secretsmanager", 1, &[]).await;
    rule(&setup, "lab-bus", "alert-old", "aws.secretsmanager", 1, &[]).await;

    let aws = Arc::new(moto.aws(Mode::Apply));
    let (result, _) = support::run_action(
        aws.clone(),
        &DELETE_RULE,
        "name = \"alert\"\nevent_bus = \"lab-bus\"",
        "",
    )
    .await;
    let out = result.expect("step succeeds");
    assert_eq!(out.resources.len(), 1, "{:#?}", out.resources);
    assert_eq!(
        out.resources[0].resource.attribute("event_bus"),
        Some("lab-bus")
    );
    assert_eq!(rule_names(&aws, "lab-bus").await, vec!["alert-old"]);
    assert_eq!(rule_names(&aws, "default").await, vec!["alert"]);
    assert_eq!(targets(&aws, "default", "alert").await, Some(1));
}

#[tokio::test]
async fn a_dry_run_only_reads_and_names_the_targets() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    rule(&setup, "default", "lab-alert", "aws.secretsmanager", 2, &[]).await;

    let aws = Arc::new(moto.aws(Mode::DryRun));
    let (result, _) = support::run_action(aws.clone(), &DELETE_RULE, "name = \"lab-*\"", "").await;
    let out = result.unwrap();
    assert_eq!(out.summary, "would delete 1 EventBridge rule");
    assert_eq!(out.resources[0].outcome, OutcomeKind::Planned);
    assert_eq!(
        out.resources[0].detail,
        "would remove its 2 targets (T0=arn:aws:sns:us-west-2:123456789012:lab-alert-0, T1=arn:aws:sns:us-west-2:123456789012:lab-alert-1), then delete it"
    );
    assert!(aws.calls.mutating_operations().is_empty());
    assert_eq!(targets(&aws, "default", "lab-alert").await, Some(2));
}

#[tokio::test]
async fn a_rule_deleted_after_find_is_already_gone() {
    let moto = support::moto().await;
    let aws = moto.aws(Mode::Apply);
    rule(&aws, "default", "lab-alert", "aws.secretsmanager", 1, &[]).await;
    let action = (DELETE_RULE.build)(&StepInput {
        step: "t".into(),
        selector: toml::from_str("name = \"lab-alert\"").unwrap(),
        options: toml::Table::new(),
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    let found = action.find(&aws).await.unwrap();
    assert_eq!(found.len(), 1);

    // Someone else is quicker, between find and act.
    aws.eventbridge
        .remove_targets()
        .rule("lab-alert")
        .ids("T0")
        .send()
        .await
        .unwrap();
    aws.eventbridge
        .delete_rule()
        .name("lab-alert")
        .send()
        .await
        .unwrap();
    assert_eq!(
        action.act(&aws, &found[0]).await.unwrap(),
        Acted::AlreadyGone
    );
}
