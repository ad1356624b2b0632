//! The product's promise, tested against the real SDK and moto: a dry run cannot mutate (the
//! guard refuses before the request is sent), and every mutating call is in the audit log.

use crate::support;

use std::error::Error as _;

use teardown::aws::{AuditLog, AwsOptions, CallContext, DryRunViolation, Mode, CALL_CONTEXT};

#[tokio::test]
async fn a_dry_run_client_refuses_mutating_calls_before_sending_them() {
    let moto = support::moto().await;
    let dry = moto.aws(Mode::DryRun);
    let err = dry
        .ecs
        .create_cluster()
        .cluster_name("must-not-exist")
        .send()
        .await
        .expect_err("a dry run must refuse CreateCluster");
    // The refusal is our guard's, with a message that calls it a bug, not an AWS error.
    let mut source = err.source();
    let mut found = None;
    while let Some(e) = source {
        if let Some(v) = e.downcast_ref::<DryRunViolation>() {
            found = Some(v.operation.clone());
        }
        source = e.source();
    }
    assert_eq!(found.as_deref(), Some("ECS.CreateCluster"), "{err:?}");
    // Read-only calls go through, and the emulator never saw the create.
    let listed = dry.ecs.list_clusters().send().await.unwrap();
    assert!(listed.cluster_arns().is_empty());
    let apply = moto.aws(Mode::Apply);
    assert!(apply
        .ecs
        .list_clusters()
        .send()
        .await
        .unwrap()
        .cluster_arns()
        .is_empty());
}

#[tokio::test]
async fn mutating_calls_are_appended_to_the_audit_log_with_step_and_resource() {
    let moto = support::moto().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run-1/audit.jsonl");
    let audit = AuditLog::open(&path, "run-1").unwrap();
    let aws = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            audit: Some(audit),
            ..AwsOptions::default()
        },
    );
    let context = CallContext {
        step: Some("make-cluster".into()),
        resource: Some("audit-demo".into()),
    };
    CALL_CONTEXT
        .scope(context, async {
            aws.ecs
                .create_cluster()
                .cluster_name("audit-demo")
                .send()
                .await
                .unwrap();
            aws.ecs.list_clusters().send().await.unwrap();
        })
        .await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Only the mutating call: the list is not in the audit log.
    assert_eq!(lines.len(), 1, "{text}");
    let line = &lines[0];
    assert_eq!(line["run_id"], "run-1");
    assert_eq!(line["service"], "ECS");
    assert_eq!(line["operation"], "CreateCluster");
    assert_eq!(line["step"], "make-cluster");
    assert_eq!(line["resource"], "audit-demo");
    assert_eq!(line["outcome"], "ok");
    assert!(line["at"].as_str().unwrap().starts_with("20"), "{line}");
}
