//! The `teardown` binary: exit codes, located errors, graph pictures, and the rails that refuse to
//! run (wrong region or account, no credentials, no confirmation) without changing anything.

use crate::support;
use crate::support::broken_plans::text as broken;

use std::path::Path;
use std::process::Output;

const WORKSHOP: &str = "tests/it/plans/named-workshop.toml";

fn teardown(args: &[&str], env: &[(String, String)]) -> Output {
    support::teardown_command(env, args)
        .output()
        .expect("run teardown")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// The run directories and files under the default runs dir of `home` (the lock folder aside).
fn run_debris(home: &Path) -> Vec<String> {
    std::fs::read_dir(home.join(".local/state/teardown/runs"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|name| name != "locks")
                .collect()
        })
        .unwrap_or_default()
}

fn write_plan(dir: &Path, body: &str) -> String {
    let path = dir.join("plan.toml");
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn permissions_prints_the_plans_calls_and_what_all_regions_adds() {
    let policy = |args: &[&str]| -> Vec<String> {
        let out = teardown(args, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let policy: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        policy["Statement"][0]["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let plain = policy(&["permissions", WORKSHOP]);
    assert!(plain.contains(&"ecs:StopTask".to_string()), "{plain:?}");
    assert!(
        plain.contains(&"sts:GetCallerIdentity".to_string()),
        "{plain:?}"
    );
    assert!(
        !plain.contains(&"ec2:DescribeRegions".to_string()),
        "{plain:?}"
    );
    let all_regions = policy(&["permissions", "--all-regions", WORKSHOP]);
    let added: Vec<&String> = all_regions.iter().filter(|a| !plain.contains(a)).collect();
    assert_eq!(added, ["ec2:DescribeRegions"]);
}

#[test]
fn validate_accepts_the_workshop_plan() {
    let out = teardown(&["validate", WORKSHOP], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("is valid (10 steps)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn validate_prints_located_errors_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), &broken("unknown-action-in-validate"));
    let out = teardown(&["validate", &plan], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{plan}:4:10")), "{err}");
    assert!(err.contains("did you mean `ecs.stop-tasks`"), "{err}");
}

#[test]
fn graph_draws_text_dot_and_mermaid() {
    let out = teardown(&["graph", WORKSHOP], &[]);
    assert!(out.status.success());
    let levels = text(&out.stdout);
    assert!(levels.starts_with("level 0\n"), "{levels}");
    let dot = text(&teardown(&["graph", WORKSHOP, "--format", "dot"], &[]).stdout);
    assert!(
        dot.contains("\"delete-lambda-enis\" -> \"delete-main-stack\";"),
        "{dot}"
    );
    let mermaid = text(&teardown(&["graph", WORKSHOP, "--format", "mermaid"], &[]).stdout);
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    assert!(
        mermaid.contains("cancel_rotation --> delete_rotation_stack"),
        "{mermaid}"
    );
}

#[test]
fn a_left_out_dependency_is_reported_before_anything_runs() {
    let out = teardown(&["run", WORKSHOP, "--only", "general", "--yes"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("step `delete-main-stack` waits for `stop-tasks`"),
        "{err}"
    );
    assert!(err.contains("--assume-done"), "{err}");
}

#[tokio::test]
async fn without_a_terminal_or_yes_a_real_run_is_refused_and_nothing_changes() {
    let moto = support::moto().await;
    let home = tempfile::tempdir().unwrap();
    let aws = moto.aws(teardown::aws::Mode::Apply);
    aws.ecr
        .create_repository()
        .repository_name("secrets-manager-rds-demo")
        .send()
        .await
        .unwrap();
    let out = teardown(
        &["run", WORKSHOP, "--only", "fargate"],
        &moto.cli_env(home.path()),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    let repos = aws.ecr.describe_repositories().send().await.unwrap();
    assert_eq!(
        repos.repositories().len(),
        1,
        "the repository must still be there"
    );
    // Nothing was about to change: no run directory, journal or audit log was left behind.
    assert_eq!(run_debris(home.path()), Vec::<String>::new());
}

#[tokio::test]
async fn a_plan_guarded_for_another_region_or_account_is_refused() {
    let moto = support::moto().await;
    let home = tempfile::tempdir().unwrap();
    let env = moto.cli_env(home.path());
    let plan = |guard: &str| {
        write_plan(
            home.path(),
            &format!("name = \"x\"\n[guard]\n{guard}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"r\" }}\n"),
        )
    };
    let out = teardown(&["run", &plan("regions = [\"eu-west-1\"]"), "--yes"], &env);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("only in eu-west-1"),
        "{}",
        text(&out.stderr)
    );
    let out = teardown(
        &["run", &plan("accounts = [\"111111111111\"]"), "--yes"],
        &env,
    );
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains("only in account 111111111111"), "{err}");
    assert!(err.contains(support::ACCOUNT), "{err}");
    // Refused runs leave no run directory, journal or audit log behind.
    assert_eq!(run_debris(home.path()), Vec::<String>::new());
}

#[tokio::test]
async fn missing_credentials_are_refused_with_what_to_do() {
    let moto = support::moto().await;
    let home = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = moto
        .cli_env(home.path())
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET"))
        .collect();
    let out = teardown(&["preview", WORKSHOP], &env);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    // One line that says what failed and what to do, not kilobytes of the SDK's Debug output.
    assert!(err.contains("no AWS credentials were found"), "{err}");
    assert!(err.contains("check your credentials"), "{err}");
    assert!(!err.contains("ProviderChainError"), "{err}");
    assert!(err.lines().count() <= 2 && err.len() < 600, "{err}");
    // The detail is there for --verbose.
    let out = teardown(&["preview", WORKSHOP, "--verbose"], &env);
    assert!(
        text(&out.stderr).contains("Attempted"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_endpoint_that_refuses_connections_is_named_and_credentials_are_not_blamed() {
    let home = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        // Port 9 (discard) on loopback: nothing listens there, so the connection is refused.
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-west-2"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HOME", home.path().to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = teardown(&["preview", WORKSHOP], &env);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("cannot reach the AWS endpoint http://127.0.0.1:9: connection refused"),
        "{err}"
    );
    assert!(!err.contains("credentials"), "{err}");
    assert!(err.lines().count() <= 2 && err.len() < 600, "{err}");
}

/// Runs teardown with its stdout a pipe whose reading end is already closed, as `| head -1`
/// leaves it once head has exited.
fn with_closed_stdout(args: &[&str], env: &[(String, String)]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    support::teardown_command(env, args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run teardown")
}

#[test]
fn a_closed_stdout_is_a_quiet_end_not_a_panic() {
    for args in [
        &["validate", WORKSHOP][..],
        &["actions"][..],
        &["graph", WORKSHOP][..],
        &["permissions", WORKSHOP][..],
    ] {
        let out = with_closed_stdout(args, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn a_run_into_a_closed_stdout_finishes_and_keeps_its_records() {
    let moto = support::moto().await;
    let home = tempfile::tempdir().unwrap();
    let aws = moto.aws(teardown::aws::Mode::Apply);
    aws.ecr
        .create_repository()
        .repository_name("lab-1")
        .send()
        .await
        .unwrap();
    let plan = write_plan(
        home.path(),
        "name = \"piped\"\n[steps.delete-repos]\naction = \"ecr.delete-repository\"\nmatch = { name = \"lab-*\" }\nforce = true\n",
    );
    let out = with_closed_stdout(
        &["run", &plan, "--yes", "--output", "plain"],
        &moto.cli_env(home.path()),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let runs = home.path().join(".local/state/teardown/runs");
    let run = runs.join(&run_debris(home.path())[0]);
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"state\":\"succeeded\""), "{journal}");
    let audit = std::fs::read_to_string(run.join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"DeleteRepository\""), "{audit}");
    let repos = aws.ecr.describe_repositories().send().await.unwrap();
    assert!(repos.repositories().is_empty());
}

/// A TCP endpoint on 127.0.0.1 that accepts every connection and never answers; it stops
/// accepting by itself after `lifetime`.
fn silent_endpoint(lifetime: std::time::Duration) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut held = Vec::new();
        while started.elapsed() < lifetime {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    });
    format!("http://{address}")
}

#[test]
fn an_endpoint_that_never_answers_ends_in_a_clear_error_not_a_hang() {
    use std::time::{Duration, Instant};
    let home = tempfile::tempdir().unwrap();
    let endpoint = silent_endpoint(Duration::from_secs(90));
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-west-2"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HOME", home.path().to_str().unwrap()),
        ("NO_COLOR", "1"),
        // Short, so that the test is quick; the defaults are 5s, 30s and 2m.
        ("TEARDOWN_CONNECT_TIMEOUT", "1s"),
        ("TEARDOWN_ATTEMPT_TIMEOUT", "1s"),
        ("TEARDOWN_CALL_TIMEOUT", "3s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for args in [&["preview", WORKSHOP][..], &["run", WORKSHOP, "--yes"][..]] {
        let started = Instant::now();
        let mut child = support::teardown_command(&env, args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("{args:?} still hung after 60 s against an endpoint that never answers");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains("nothing was done"), "{args:?}: {err}");
        assert!(err.contains("did not answer in time"), "{args:?}: {err}");
    }
}

#[test]
fn a_plan_whose_only_errors_are_in_its_sweep_section_is_not_run() {
    let home = tempfile::tempdir().unwrap();
    let plan = write_plan(home.path(), &broken("sweep-without-bind"));
    // An endpoint that refuses connections: a command that got past validation would fail to
    // reach it (exit 3), not exit 2.
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-west-2"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HOME", home.path().to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for args in [
        &["validate", &plan][..],
        &["run", &plan, "--yes"][..],
        &["preview", &plan][..],
    ] {
        let out = teardown(args, &env);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("[sweep] binds no variable"), "{args:?}: {err}");
        assert!(err.contains(&format!("{plan}:5:1")), "{args:?}: {err}");
    }
    assert_eq!(run_debris(home.path()), Vec::<String>::new());
}
