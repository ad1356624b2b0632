//! The product's promise, tested against the real SDK and moto: a dry run cannot mutate (the
//! guard refuses before the request is sent), and every mutating call is in the audit log.

use crate::support;
use std::collections::BTreeSet;

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
    // Only the mutating call, the list is not in the audit log: its line written before it was
    // sent, then its outcome.
    assert_eq!(lines.len(), 2, "{text}");
    for (line, outcome) in lines.iter().zip(["sending", "ok"]) {
        assert_eq!(line["run_id"], "run-1");
        assert_eq!(line["service"], "ECS");
        assert_eq!(line["operation"], "CreateCluster");
        assert_eq!(line["step"], "make-cluster");
        assert_eq!(line["resource"], "audit-demo");
        assert_eq!(line["outcome"], outcome);
        assert!(line["at"].as_str().unwrap().starts_with("20"), "{line}");
    }
}

#[tokio::test]
async fn a_record_that_cannot_be_written_stops_the_run_and_says_where_it_ends() {
    let moto = support::moto().await;
    let aws = moto.aws(Mode::Apply);
    const REPOS: usize = 40;
    let mut all = BTreeSet::new();
    for i in 0..REPOS {
        let created = aws
            .ecr
            .create_repository()
            .repository_name(format!("lab-{i:02}"))
            .send()
            .await
            .unwrap();
        all.insert(
            created
                .repository()
                .unwrap()
                .repository_arn()
                .unwrap()
                .to_string(),
        );
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
    // The step says why it stopped: a deletion refused ("ECR.DeleteRepository: not sent: the
    // run's record ..."), or, when the line that could not be written was the answer of one sent
    // already, the deletions beside it stopped for that reason. Not an interruption.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ECR.DeleteRepository: not sent: the run's record")
            || stdout
                .contains("stopped: the run's record (audit log or journal) cannot be written"),
        "{stdout}"
    );
    // The run's end says why it stopped, not "interrupted".
    assert!(
        stdout.contains("The run stopped early (the run's record (audit log or journal) cannot be written: cannot write the audit log"),
        "{stdout}"
    );
    assert!(!stdout.contains("interrupted"), "{stdout}");
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
    let resources = |outcome: &str| -> BTreeSet<String> {
        recorded
            .iter()
            .filter(|r| (r["outcome"] == "sending") == (outcome == "sending"))
            .map(|r| r["resource"].as_str().unwrap().to_string())
            .collect()
    };
    let announced = resources("sending");
    let answered = resources("answered");
    // ... each answer follows the line written before its call was sent ...
    assert!(answered.is_subset(&announced), "{audit}");
    // ... the run stopped before the end ...
    let left: BTreeSet<String> = aws
        .ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
        .iter()
        .map(|r| r.repository_arn().unwrap().to_string())
        .collect();
    assert!(!announced.is_empty() && !left.is_empty(), "{audit}");
    // ... and every deletion made was written down before it was sent: the repositories gone
    // are exactly those the log announced. Any whose answer could not be written is printed on
    // stderr instead.
    let deleted: BTreeSet<String> = all.difference(&left).cloned().collect();
    assert_eq!(deleted, announced, "{stderr}\n{audit}");
    let unanswered = announced.difference(&answered).count();
    assert_eq!(
        stderr.matches("this change was made").count(),
        unanswered,
        "{stderr}\n{audit}"
    );
}
