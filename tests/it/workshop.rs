//! The workshop plan end to end, against the emulated workshop: every target goes, every
//! bystander stays, the order of the changes follows the DAG, independent branches overlap, a
//! second run changes nothing, and a dry run changes nothing at all.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use support::fixture::{self, WorkshopNames};
use teardown::aws::{Aws, Mode};
use teardown::engine::{self, RunOptions, RunSummary};
use teardown::event::{Event, EventKind, EventSink};
use teardown::plan::{self, PhaseSelection};
use teardown::resource::OutcomeKind;
use tokio_util::sync::CancellationToken;

const PLAN: &str = "tests/it/plans/named-workshop.toml";

/// Runs the whole workshop plan with these clients; returns the summary and the events.
async fn run_plan(aws: Aws) -> (RunSummary, Vec<Event>, Arc<Aws>) {
    let plan = plan::load(Path::new(PLAN), &[]).unwrap_or_else(|e| panic!("{e}"));
    let selected = plan.select(&PhaseSelection::default()).unwrap();
    let aws = Arc::new(aws);
    let dry_run = aws.is_dry_run();
    let dag = teardown::session::runnable(&plan, selected.dag, aws.clone(), None);
    let (sink, mut receiver) = EventSink::channel();
    let options = RunOptions {
        plan_name: plan.name.clone(),
        dry_run,
        ..RunOptions::default()
    };
    let summary = engine::run(&dag, &options, &sink, &CancellationToken::new()).await;
    drop(sink);
    let mut events = Vec::new();
    while let Some(e) = receiver.recv().await {
        events.push(e);
    }
    (summary, events, aws)
}

fn assert_all_succeeded(summary: &RunSummary) {
    let failures: Vec<String> = summary
        .steps
        .iter()
        .filter(|s| s.outcome != engine::StepOutcome::Succeeded)
        .map(|s| format!("{}: {:?}", s.id, s.outcome))
        .collect();
    assert!(
        failures.is_empty(),
        "steps did not succeed:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_workshop_plan_tears_the_workshop_down_and_spares_the_bystanders() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let provisioner = moto.aws(Mode::Apply);
    let workshop = fixture::provision_workshop(&provisioner, &WorkshopNames::default()).await;
    let bystanders = fixture::provision_bystanders(&provisioner).await;
    assert!(!fixture::workshop_leftovers(&provisioner, &workshop)
        .await
        .is_empty());

    let (summary, events, aws) = run_plan(moto.aws(Mode::Apply)).await;
    assert_all_succeeded(&summary);
    fixture::assert_workshop_gone(&provisioner, &workshop).await;
    fixture::assert_bystanders_untouched(&provisioner, &bystanders).await;

    // The secret's deletion is scheduled with the plan's 7-day window, and the summary says when
    // and how to restore it.
    let secret = summary
        .step("delete-secret")
        .unwrap()
        .output
        .as_ref()
        .unwrap();
    assert!(
        secret.notes.iter().any(|n| n.contains("restore-secret")),
        "{:?}",
        secret.notes
    );
    let described = provisioner
        .secretsmanager
        .describe_secret()
        .secret_id(&workshop.secret_arn)
        .send()
        .await
        .unwrap();
    let deletion = described.deleted_date().expect("deletion scheduled");
    let days = (deletion.secs() - chrono::Utc::now().timestamp()) as f64 / 86_400.0;
    assert!(
        (6.9..=7.1).contains(&days),
        "deletion in {days} days, expected 7"
    );

    // Order: every mutating call of a step comes after every call of the steps it waits for.
    let records = aws.calls.records();
    let plan = plan::load(Path::new(PLAN), &[]).unwrap();
    let span: BTreeMap<String, (usize, usize)> =
        records
            .iter()
            .enumerate()
            .fold(BTreeMap::new(), |mut spans, (i, r)| {
                if let Some(step) = &r.step {
                    let e = spans.entry(step.clone()).or_insert((i, i));
                    e.1 = i;
                }
                spans
            });
    for step in plan.dag.in_order() {
        for dependency in &step.after {
            if let (Some(before), Some(after)) = (span.get(dependency), span.get(&step.id)) {
                assert!(
                    before.1 < after.0,
                    "{} made calls before {dependency} had finished",
                    step.id
                );
            }
        }
    }
    let mutating: Vec<String> = records
        .iter()
        .filter(|r| r.mutating)
        .map(|r| {
            format!(
                "{} {}.{}",
                r.step.as_deref().unwrap_or("-"),
                r.service,
                r.operation
            )
        })
        .collect();
    let position = |needle: &str| {
        mutating
            .iter()
            .position(|m| m.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {mutating:#?}"))
    };
    assert!(position("CancelRotateSecret") < position("DeleteSecret"));
    assert!(
        position("CancelRotateSecret")
            < position("delete-rotation-stack CloudFormation.DeleteStack")
    );
    assert!(
        position("delete-rotation-stack CloudFormation.DeleteStack")
            < position("DeleteNetworkInterface")
    );
    assert!(
        position("DeleteNetworkInterface")
            < position("delete-main-stack CloudFormation.DeleteStack")
    );
    assert!(position("StopTask") < position("DeleteCluster"));

    // Independent steps overlapped: the four steps that wait for nothing all started before any
    // step finished.
    let first_finish = events
        .iter()
        .position(|e| matches!(e.kind, EventKind::StepSucceeded { .. }))
        .unwrap();
    for step in [
        "stop-tasks",
        "deregister-task-definitions",
        "delete-repository",
        "cancel-rotation",
    ] {
        let started = events
            .iter()
            .position(|e| matches!(&e.kind, EventKind::StepStarted { step: s, .. } if s == step))
            .unwrap();
        assert!(
            started < first_finish,
            "{step} did not start with the others"
        );
    }

    // `teardown permissions` covers every call the run made: the policy it prints is enough.
    let policy: serde_json::Value = serde_json::from_str(&plan.iam_policy(&[])).unwrap();
    let allowed: Vec<&str> = policy["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for record in &records {
        let action = support::iam_action(&record.service, &record.operation);
        assert!(
            allowed.contains(&action.as_str()),
            "{action} is missing from the policy"
        );
    }

    // A second run on the emptied account succeeds and changes nothing.
    let (again, _, aws) = run_plan(moto.aws(Mode::Apply)).await;
    assert_all_succeeded(&again);
    assert_eq!(aws.calls.mutating_operations(), Vec::<String>::new());
    fixture::assert_bystanders_untouched(&provisioner, &bystanders).await;
}

#[tokio::test]
async fn a_dry_run_of_the_workshop_plan_changes_nothing_and_lists_every_target() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let provisioner = moto.aws(Mode::Apply);
    let workshop = fixture::provision_workshop(&provisioner, &WorkshopNames::default()).await;
    let bystanders = fixture::provision_bystanders(&provisioner).await;
    let before = fixture::workshop_leftovers(&provisioner, &workshop).await;

    let (summary, _, aws) = run_plan(moto.aws(Mode::DryRun)).await;
    assert_all_succeeded(&summary);
    // By construction (the read-only guard) and in fact: no mutating call, nothing changed.
    assert_eq!(aws.calls.mutating_operations(), Vec::<String>::new());
    assert!(
        aws.calls.len() > 10,
        "the dry run resolved the selectors with read calls"
    );
    assert_eq!(
        fixture::workshop_leftovers(&provisioner, &workshop).await,
        before
    );
    fixture::assert_bystanders_untouched(&provisioner, &bystanders).await;

    let planned: Vec<(String, String)> = summary
        .steps
        .iter()
        .filter_map(|s| s.output.as_ref())
        .flat_map(|o| &o.resources)
        .filter(|r| r.outcome == OutcomeKind::Planned)
        .map(|r| (r.resource.kind.clone(), r.resource.name.clone()))
        .collect();
    let has = |kind: &str, name: &str| planned.iter().any(|(k, n)| k == kind && n.contains(name));
    assert!(
        has("CloudFormation stack", &workshop.main_stack),
        "{planned:#?}"
    );
    assert!(
        has("CloudFormation stack", &workshop.rotation_stack),
        "{planned:#?}"
    );
    assert!(has("ECR repository", &workshop.repository), "{planned:#?}");
    assert!(has("secret", &workshop.secret), "{planned:#?}");
    for eni in &workshop.lambda_enis {
        assert!(
            has("network interface", eni),
            "{eni} missing from {planned:#?}"
        );
    }
    // No bystander is in the preview.
    for stack in &bystanders.stacks {
        assert!(
            !planned.iter().any(|(_, n)| n == stack),
            "bystander {stack} in the preview"
        );
    }
    assert!(!planned.iter().any(|(_, n)| n == &bystanders.repository));
    assert!(!planned.iter().any(|(_, n)| n == &bystanders.secret));
    assert!(!planned.iter().any(|(_, n)| n == &bystanders.lambda_eni));
}
