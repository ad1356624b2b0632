//! `plans/secret-alerting-lab.toml` end to end against the emulated lab: the alert rule (its
//! target removed first), the topic and its subscriptions, the secret (scheduled, rotation off)
//! and the rotation stack go; the look-alike rules, topic, secret and stack stay; the rule goes
//! before the secret, as the plan explains; a second run changes nothing; a dry run changes
//! nothing and lists what would go.
//!
//! moto refuses to delete a rule that still has targets, as AWS does, so the order is enforced by
//! the emulator too, not only read from the call log.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use support::fixture;
use teardown::aws::{Aws, Mode};
use teardown::engine::{self, RunOptions, RunSummary};
use teardown::plan::{self, PhaseSelection};
use teardown::resource::OutcomeKind;
use tokio_util::sync::CancellationToken;

const PLAN: &str = "plans/secret-alerting-lab.toml";

async fn run_plan(aws: Aws) -> (RunSummary, Arc<Aws>) {
    let plan = plan::load(Path::new(PLAN), &[]).unwrap_or_else(|e| panic!("{e}"));
    let selected = plan.select(&PhaseSelection::default()).unwrap();
    let aws = Arc::new(aws);
    let dag = teardown::session::runnable(&plan, selected.dag, aws.clone(), None);
    let (sink, mut receiver) = teardown::event::EventSink::channel();
    let options = RunOptions {
        plan_name: plan.name.clone(),
        dry_run: aws.is_dry_run(),
        ..RunOptions::default()
    };
    let summary = engine::run(&dag, &options, &sink, &CancellationToken::new()).await;
    drop(sink);
    while receiver.recv().await.is_some() {}
    (summary, aws)
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
        "steps failed:\n{}",
        failures.join("\n")
    );
}

fn output<'a>(summary: &'a RunSummary, step: &str) -> &'a teardown::engine::StepOutput {
    summary
        .step(step)
        .and_then(|s| s.output.as_ref())
        .unwrap_or_else(|| panic!("no output for {step}"))
}

/// Position of the first call of `step` to `operation`.
fn position(aws: &Aws, step: &str, operation: &str) -> usize {
    aws.calls
        .records()
        .iter()
        .position(|r| r.step.as_deref() == Some(step) && r.operation == operation)
        .unwrap_or_else(|| {
            panic!(
                "no {operation} by {step}: {:?}",
                aws.calls.mutating_operations()
            )
        })
}

#[tokio::test]
async fn the_lab_plan_removes_the_lab_and_spares_the_look_alikes() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let (lab, bystanders) = fixture::provision_alerting_lab(&setup).await;
    assert_eq!(
        fixture::alerting_lab_leftovers(&setup, &lab).await.len(),
        6,
        "rule, topic, 2 subscriptions, secret and stack are there before the run"
    );

    let (summary, aws) = run_plan(moto.aws(Mode::Apply)).await;
    assert_all_succeeded(&summary);
    let left = fixture::alerting_lab_leftovers(&setup, &lab).await;
    assert!(left.is_empty(), "still there:\n  {}", left.join("\n  "));
    let damage = fixture::alerting_bystander_damage(&setup, &bystanders).await;
    assert!(
        damage.is_empty(),
        "bystanders touched:\n  {}",
        damage.join("\n  ")
    );

    // The rule: its targets listed, removed, and only then the rule deleted, all for that rule.
    let listed = position(&aws, "delete-rule", "ListTargetsByRule");
    let removed = position(&aws, "delete-rule", "RemoveTargets");
    let deleted = position(&aws, "delete-rule", "DeleteRule");
    assert!(listed < removed && removed < deleted);
    let records = aws.calls.records();
    for i in [removed, deleted] {
        assert_eq!(records[i].resource.as_deref(), Some(lab.rule_arn.as_str()));
        assert_eq!(records[i].outcome, "ok");
    }
    // The plan's order: the rule before the topic it targets, and before the secret (no alert).
    assert!(deleted < position(&aws, "delete-topic", "DeleteTopic"));
    assert!(deleted < position(&aws, "delete-secret", "DeleteSecret"));
    assert!(
        position(&aws, "delete-secret", "DeleteSecret")
            < position(&aws, "delete-rotation-stack", "DeleteStack")
    );

    // What the summary says went with them.
    let rule = output(&summary, "delete-rule");
    assert_eq!(
        rule.notes,
        vec![format!(
            "rule {}: removed 1 target before deleting it: {}={} (the targets themselves were not deleted)",
            lab.rule, lab.target_id, lab.topic_arn
        )]
    );
    let topic = output(&summary, "delete-topic");
    assert_eq!(topic.resources.len(), 1, "{:#?}", topic.resources);
    assert_eq!(
        topic.resources[0].detail,
        "deleted with its 2 subscriptions"
    );
    assert_eq!(topic.notes.len(), 1, "{:?}", topic.notes);
    let note = &topic.notes[0];
    assert!(
        note.contains("email a***@example.com") && note.contains("sms ***0199"),
        "{note}"
    );
    assert!(
        !note.contains(&lab.email) && !note.contains(&lab.phone),
        "{note}"
    );
    let secret = output(&summary, "delete-secret");
    assert!(
        secret.notes.iter().any(|n| n.contains("restore-secret")),
        "{:?}",
        secret.notes
    );

    // `teardown permissions` covers every call the run made.
    let plan = plan::load(Path::new(PLAN), &[]).unwrap();
    let policy: serde_json::Value = serde_json::from_str(&plan.iam_policy(&[])).unwrap();
    let allowed = policy["Statement"][0]["Action"].as_array().unwrap();
    for record in &records {
        let action = support::iam_action(&record.service, &record.operation);
        assert!(
            allowed.iter().any(|a| a == &serde_json::json!(action)),
            "{action} is missing from the policy"
        );
    }

    // A second run finds nothing of the lab and changes nothing.
    let (again, aws) = run_plan(moto.aws(Mode::Apply)).await;
    assert_all_succeeded(&again);
    assert_eq!(aws.calls.mutating_operations(), Vec::<String>::new());
    assert!(fixture::alerting_bystander_damage(&setup, &bystanders)
        .await
        .is_empty());
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_lists_what_would_go() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let (lab, bystanders) = fixture::provision_alerting_lab(&setup).await;
    let before = fixture::alerting_lab_leftovers(&setup, &lab).await;
    let subscriptions = fixture::all_subscriptions(&setup).await;

    let (summary, aws) = run_plan(moto.aws(Mode::DryRun)).await;
    assert_all_succeeded(&summary);
    assert!(!aws.calls.is_empty(), "the dry run did not even look");
    assert!(
        aws.calls.mutating_operations().is_empty(),
        "{:?}",
        aws.calls.mutating_operations()
    );
    assert_eq!(fixture::alerting_lab_leftovers(&setup, &lab).await, before);
    assert_eq!(fixture::all_subscriptions(&setup).await, subscriptions);
    assert!(fixture::alerting_bystander_damage(&setup, &bystanders)
        .await
        .is_empty());

    let planned = |step: &str| -> Vec<(String, String)> {
        output(&summary, step)
            .resources
            .iter()
            .map(|o| {
                assert_eq!(o.outcome, OutcomeKind::Planned, "{o:?}");
                (o.resource.name.clone(), o.detail.clone())
            })
            .collect()
    };
    assert_eq!(
        planned("delete-rule"),
        vec![(
            lab.rule.clone(),
            format!(
                "would remove its 1 target ({}={}), then delete it",
                lab.target_id, lab.topic_arn
            )
        )]
    );
    assert_eq!(
        planned("delete-topic"),
        vec![(
            "SecretDeletionAlerts".to_string(),
            "would delete it and its 2 subscriptions: email a***@example.com, sms ***0199"
                .to_string()
        )]
    );
    assert_eq!(planned("delete-secret").len(), 1);
    assert_eq!(planned("delete-rotation-stack").len(), 1);
}

#[test]
fn the_plan_validates_and_puts_the_rule_first() {
    let status = support::teardown_command(&[], &["validate", PLAN])
        .status()
        .expect("run teardown validate");
    assert!(status.success(), "teardown validate {PLAN} failed");
    let plan = plan::load(Path::new(PLAN), &[]).unwrap();
    assert!(plan.dag.depends_on("delete-topic", "delete-rule"));
    assert!(plan.dag.depends_on("delete-secret", "delete-rule"));
    assert!(plan
        .dag
        .depends_on("delete-rotation-stack", "delete-secret"));
}
