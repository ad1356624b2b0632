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

#[tokio::test]
async fn a_record_that_cannot_be_written_stops_the_run_and_says_where_it_ends() {
    let moto = support::moto().await;
    let aws = moto.aws(Mode::Apply);
    const REPOS: usize = 40;
    for i in 0..REPOS {
        aws.ecr
            .create_repository()
            .repository_name(format!("lab-{i:02}"))
            .send()
            .await
            .unwrap();
    }
    let home = tempfile::tempdir().unwrap();
    let runs = home.path().join("runs");
    let plan = home.path().join("full.toml");
    std::fs::write(
        &plan,
        "name = \"full\"\n[steps.delete-repos]\naction = \"ecr.delete-repository\"\nmatch = { name = \"lab-*\" }\n",
    )
    .unwrap();
    // A file-size limit of 4 KiB (RLIMIT_FSIZE): the journal's first lines fit, and the audit
    // log fills up after a dozen deletions.
    let mut command = std::process::Command::new("bash");
    command
        .args(["-c", "ulimit -f 4 && exec \"$0\" \"$@\""])
        .arg(support::teardown_bin())
        .args(["run", plan.to_str().unwrap(), "--yes", "--output", "plain"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TEARDOWN_RUNS_DIR", &runs)
        .stdin(std::process::Stdio::null());
    for (k, v) in moto.cli_env(home.path()) {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{:?} (signal {:?}): {stderr}",
        out.status,
        std::os::unix::process::ExitStatusExt::signal(&out.status)
    );
    assert!(stderr.contains("cannot write the audit log"), "{stderr}");
    assert!(stderr.contains("it ends at byte"), "{stderr}");
    assert!(stderr.contains("no further change"), "{stderr}");
    // The refused deletion says why it was not sent, and is not taken for a change made.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ECR.DeleteRepository: not sent: the run's record"),
        "{stdout}"
    );
    assert_eq!(
        stderr.matches("this change was made").count(),
        1,
        "{stderr}"
    );
    // The log holds whole records only (the torn one was cut off) ...
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("audit.jsonl").exists())
        .unwrap();
    let audit = std::fs::read_to_string(run.join("audit.jsonl")).unwrap();
    let recorded: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: torn line {l}")))
        .collect();
    assert!(!recorded.is_empty() && recorded.len() < REPOS, "{audit}");
    // ... and once a record could not be written, no further deletion was sent: every deletion
    // made is in the log, but the one whose line was lost (and printed on stderr instead).
    let left = aws
        .ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
        .len();
    let deleted = REPOS - left;
    assert_eq!(deleted, recorded.len() + 1, "{stderr}\n{audit}");
}
