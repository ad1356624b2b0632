//! `teardown init --from-stack` on the real workshop (`support::real_workshop`: two attendees'
//! labs side by side, whose names are prefixes of each other, and a third attendee's leftovers):
//! the plan it writes validates, names only the stack's own resources by their exact ids, and a
//! preview of it lists exactly that lab's resources, none of the other attendee's. A proxy in
//! front of moto records every call, so that the tests can tell that neither `init` nor the
//! preview sent anything that changes anything.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::support;
use support::aws_like::is_read_only;
use support::real_workshop::{self, RealLab};
use support::scale::CountingProxy;
use teardown::aws::Mode;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The names and ids of every resource a `--output json` preview lists.
fn previewed(stdout: &str) -> Vec<(String, String)> {
    let mut listed = Vec::new();
    for line in stdout.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for outcome in event["resources"].as_array().into_iter().flatten() {
            let resource = &outcome["resource"];
            listed.push((
                resource["name"].as_str().unwrap_or_default().to_string(),
                resource["id"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    listed
}

/// The names a preview of a plan for `lab`'s main stack must list: the stack, its repository, its
/// running tasks, and the Lambda interfaces in its VPC.
fn expected(lab: &RealLab) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = [lab.main_stack.clone(), lab.repository.clone()].into();
    names.extend(
        lab.tasks
            .iter()
            .map(|arn| arn.rsplit('/').next().unwrap().to_string()),
    );
    names.extend(lab.lambda_enis.iter().cloned());
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_written_from_one_stack_previews_exactly_that_stacks_lab() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let aws = moto.aws(Mode::Apply);
    let (ann, anna) = real_workshop::provision_two_real_labs(&aws).await;
    // The third attendee `an`, a prefix of both: not named by text checks (its names are
    // substrings of ann's), but a preview that listed any of it would fail the exact list below.
    real_workshop::provision_real_lookalikes(&aws).await;
    let proxy = CountingProxy::with_rules(&moto.endpoint, Duration::ZERO, vec![]);
    let home = tempfile::tempdir().unwrap();
    let mut env = moto.cli_env(home.path());
    for (key, value) in env.iter_mut() {
        if key == "AWS_ENDPOINT_URL" {
            *value = proxy.endpoint.clone();
        }
    }
    env.push((
        "TEARDOWN_RUNS_DIR".into(),
        home.path().join("runs").to_str().unwrap().into(),
    ));
    let teardown = |args: &[&str]| support::teardown_command(&env, args).output().unwrap();
    let plan_path = home.path().join("ann.toml");
    let plan = plan_path.to_str().unwrap();

    let out = teardown(&["init", "--from-stack", &ann.main_stack, "--out", plan]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("wrote {plan}")), "{stderr}");
    let written = std::fs::read_to_string(&plan_path).unwrap();

    // Exact names from the stack, never a glob that could reach `secrets-workshop-anna`.
    for name in [&ann.main_stack, &ann.cluster, &ann.repository, &ann.vpc_id] {
        assert!(
            written.contains(&format!("\"{name}\"")),
            "{name} is not in the plan:\n{written}"
        );
    }
    for name in anna.identifiers() {
        assert!(
            !written.contains(name.as_str()),
            "the plan names {name}, which is not this lab's:\n{written}"
        );
    }
    let parsed: toml::Table = toml::from_str(&written).unwrap();
    let steps = parsed["steps"].as_table().unwrap();
    for (id, step) in steps {
        for (key, value) in step["match"].as_table().unwrap() {
            let value = value.as_str().unwrap_or_default();
            if key != "description" {
                assert!(
                    !value.contains(['*', '?', '[']),
                    "step {id}: match.{key} = {value:?} is a glob"
                );
            }
        }
    }
    // Every step says why it is there, in the comment right above it.
    let lines: Vec<&str> = written.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("[steps.") {
            assert!(
                i > 0 && lines[i - 1].starts_with('#'),
                "no comment above {line}:\n{written}"
            );
        }
    }
    assert_eq!(
        steps.len(),
        4,
        "stop the tasks, delete the repository, the Lambda interfaces, the stack:\n{written}"
    );

    // It validates.
    let out = teardown(&["validate", plan]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    // The preview lists exactly the lab's resources.
    let out = teardown(&["preview", plan, "--output", "json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let listed = previewed(&stdout);
    let names: BTreeSet<String> = listed.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(names, expected(&ann), "{stdout}");
    let others = anna.identifiers();
    for (name, id) in &listed {
        assert!(
            !others.contains(name) && !others.contains(id),
            "the preview lists {name} ({id}) of the other lab"
        );
    }

    // Not again without --force; with it, the file is written anew.
    std::fs::write(&plan_path, "# mine\n").unwrap();
    let out = teardown(&["init", "--from-stack", &ann.main_stack, "--out", plan]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("--force"), "{:?}", text(&out));
    assert_eq!(std::fs::read_to_string(&plan_path).unwrap(), "# mine\n");
    let out = teardown(&[
        "init",
        "--from-stack",
        &ann.main_stack,
        "--out",
        plan,
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(std::fs::read_to_string(&plan_path).unwrap(), written);

    // Both labs in one plan, to standard output: each stack's steps, with ids that do not clash.
    let out = teardown(&[
        "init",
        "--from-stack",
        &ann.main_stack,
        "--from-stack",
        &anna.main_stack,
    ]);
    let (both, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let both_path = home.path().join("both.toml");
    std::fs::write(&both_path, &both).unwrap();
    let out = teardown(&["validate", both_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let parsed: toml::Table = toml::from_str(&both).unwrap();
    assert_eq!(parsed["steps"].as_table().unwrap().len(), 8, "{both}");
    assert!(both.contains(&format!("\"{}\"", anna.cluster)), "{both}");

    // A stack that is not there: exit 5, and no file.
    let missing = home.path().join("missing.toml");
    let out = teardown(&[
        "init",
        "--from-stack",
        "secrets-workshop-nobody",
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(5), "{:?}", text(&out));
    assert!(
        text(&out)
            .1
            .contains("secrets-workshop-nobody does not exist"),
        "{:?}",
        text(&out)
    );
    assert!(!missing.exists());

    let mutating: Vec<String> = proxy
        .calls()
        .into_iter()
        .filter(|c| !is_read_only(c))
        .collect();
    assert_eq!(
        mutating,
        Vec::<String>::new(),
        "init and preview change nothing"
    );
}

/// A stack that owns a bucket or nested stacks gets a comment on each, not an invented step; the
/// plan passes the schema.
#[test]
fn the_schema_accepts_what_init_writes() {
    let stack = teardown::init::StackContents {
        name: "lab-1".into(),
        id: "arn:aws:cloudformation:us-west-2:123456789012:stack/lab-1/x".into(),
        status: "CREATE_COMPLETE".into(),
        resources: vec![
            teardown::init::StackResource {
                logical_id: "Bucket".into(),
                resource_type: "AWS::S3::Bucket".into(),
                physical_id: "lab-1-bucket-abc".into(),
            },
            teardown::init::StackResource {
                logical_id: "Network".into(),
                resource_type: "AWS::CloudFormation::Stack".into(),
                physical_id:
                    "arn:aws:cloudformation:us-west-2:123456789012:stack/lab-1-Network-X/y".into(),
            },
        ],
    };
    let written = teardown::init::write_plan(
        &[stack],
        &teardown::init::Place {
            region: "us-west-2",
            account: "123456789012",
        },
        "teardown init --from-stack lab-1",
    );
    teardown::init::check(&written, Path::new("lab-1.toml")).unwrap();
    assert!(
        written.contains("S3 bucket: lab-1-bucket-abc (Bucket)"),
        "{written}"
    );
    assert!(written.contains("teardown has no S3"), "{written}");
    assert!(!written.contains("action = \"s3."), "{written}");
    assert!(
        written.contains("nested stacks: arn:aws:cloudformation:us-west-2:123456789012:stack/lab-1-Network-X/y (Network)"),
        "{written}"
    );
    // Nothing but the stack itself to delete: one step.
    let parsed: toml::Table = toml::from_str(&written).unwrap();
    assert_eq!(parsed["steps"].as_table().unwrap().len(), 1, "{written}");
    let schema: Value = serde_json::from_str(&teardown::plan::schema::plan_schema_text()).unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let value = serde_json::to_value(toml::from_str::<toml::Table>(&written).unwrap()).unwrap();
    assert!(validator.is_valid(&value), "{written}");
}
