//! The shipped workshop plan on the real workshop (`support::real_workshop`: the public template's
//! resources, generated names and relations, two attendees' labs side by side whose names are
//! prefixes of each other, and a third attendee's leftovers), run as a user runs it: the
//! `teardown` binary, one stack name in.
//!
//! Where moto differs from AWS in a way the flow depends on, a proxy in front of moto gives AWS's
//! behaviour (`support::aws_like`), and each test says which:
//! - DeleteStack after teardown deleted the stack's repository: AWS succeeds, moto answers
//!   RepositoryNotFoundException ([`DeleteStackAsAws`], in every run here);
//! - Lambda's interfaces stay in use for a while after the rotation function is gone
//!   ([`InterfacesInUse`]), and a stack stays DELETE_IN_PROGRESS for a while
//!   ([`DeletionTakesAWhile`]), in the run test;
//! - CloudFormation ends DELETE_FAILED, and keeps the stack, when its repository still holds
//!   images ([`DeletionFailsOnImages`]); moto drops the stack instead, so that a second look
//!   would find nothing and could pass for success.
//!
//! The same proxy records every call, so that the tests can tell that a preview or a refused run
//! sent nothing that changes anything, and in which order a run deleted.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use crate::support;
use support::aws_like::{
    is_read_only, DeleteStackAsAws, DeletionFailsOnImages, DeletionTakesAWhile, InterfacesInUse,
};
use support::real_workshop::{
    self, lookalike_damage, real_lab_damage, real_lab_leftovers, RealLab, RealLookalikes,
};
use support::scale::{CountingProxy, ProxyRule};
use teardown::aws::Mode;

const PLAN: &str = "plans/secrets-manager-fargate-workshop.toml";

/// Two labs and the look-alikes, a proxy with `rules` in front of moto, and the environment that
/// points the binary at the proxy.
struct Account {
    moto: support::Moto,
    ann: RealLab,
    anna: RealLab,
    lookalikes: RealLookalikes,
    proxy: CountingProxy,
    home: tempfile::TempDir,
}

impl Account {
    async fn new(rules: Vec<Arc<dyn ProxyRule>>) -> Account {
        let moto = support::moto().await;
        moto.keep_tasks_running();
        let aws = moto.aws(Mode::Apply);
        let (ann, anna) = real_workshop::provision_two_real_labs(&aws).await;
        let lookalikes = real_workshop::provision_real_lookalikes(&aws).await;
        let mut all: Vec<Arc<dyn ProxyRule>> = vec![Arc::new(DeleteStackAsAws)];
        all.extend(rules);
        let proxy = CountingProxy::with_rules(&moto.endpoint, Duration::ZERO, all);
        Account {
            moto,
            ann,
            anna,
            lookalikes,
            proxy,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// The binary's environment: the emulator through the proxy, runs under the test's home.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = self.moto.cli_env(self.home.path());
        for (key, value) in env.iter_mut() {
            if key == "AWS_ENDPOINT_URL" {
                *value = self.proxy.endpoint.clone();
            }
        }
        env.push((
            "TEARDOWN_RUNS_DIR".into(),
            self.home.path().join("runs").to_str().unwrap().into(),
        ));
        env
    }

    fn teardown(&self, args: &[&str]) -> Output {
        support::teardown_command(&self.env(), args)
            .output()
            .unwrap()
    }

    /// The shipped plan with `edit` made to its text, written under the test's home; its path.
    fn plan_variant(&self, name: &str, edit: impl FnOnce(String) -> String) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join(PLAN)).unwrap();
        let path = self.home.path().join(name);
        std::fs::write(&path, edit(text)).unwrap();
        path.to_str().unwrap().to_string()
    }

    /// The ids of the runs that kept a directory.
    fn run_ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.home.path().join("runs")) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|name| name != "locks")
            .collect()
    }

    /// The calls that changed something, in order.
    fn mutating_calls(&self) -> Vec<String> {
        self.proxy
            .calls()
            .into_iter()
            .filter(|c| !is_read_only(c))
            .collect()
    }

    /// Panics unless the other lab and every look-alike are exactly as provisioned.
    async fn assert_bystanders_untouched(&self) {
        let aws = self.moto.aws(Mode::DryRun);
        let damage = real_lab_damage(&aws, &self.anna).await;
        assert!(
            damage.is_empty(),
            "the other attendee's lab was changed: {damage:#?}"
        );
        let damage = lookalike_damage(&aws, &self.lookalikes).await;
        assert!(damage.is_empty(), "look-alikes were changed: {damage:#?}");
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stack_name_previews_exactly_that_lab_with_where_each_value_came_from() {
    let account = Account::new(vec![]).await;
    let ann = &account.ann;
    let out = account.teardown(&[
        "preview",
        PLAN,
        "--var",
        &format!("main_stack={}", ann.main_stack),
        "--output",
        "plain",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");

    // Every value, and where it came from.
    for (name, value, source) in [
        ("main_stack", ann.main_stack.clone(), "--var".to_string()),
        (
            "cluster",
            ann.cluster.clone(),
            format!("output ECSCluster of stack {}", ann.main_stack),
        ),
        (
            "repository",
            ann.repository.clone(),
            format!("output ECRRepository of stack {}", ann.main_stack),
        ),
        (
            "task_family",
            ann.task_family.clone(),
            format!("resource TaskDefinition of stack {}", ann.main_stack),
        ),
        (
            "secret",
            ann.secret.clone(),
            format!("the secret that task family {} references", ann.task_family),
        ),
        (
            "rotation_function",
            ann.rotation_function.clone(),
            format!("the function that rotates secret {}", ann.secret),
        ),
        (
            "rotation_stack",
            ann.rotation_stack.clone(),
            format!("the stack that owns {}", ann.rotation_function),
        ),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for `{name}` in\n{stdout}"));
        assert!(
            line.contains(&format!("= {value} ")) && line.ends_with(&format!("({source})")),
            "`{name}`: {line}"
        );
    }

    // Every resource of the lab, and nothing of the other attendee's (whose names all start
    // with this one's: a prefix or a glob would have taken them).
    let mut expected = vec![
        ann.cluster.clone(),
        ann.repository.clone(),
        ann.secret.clone(),
        ann.rotation_stack.clone(),
        ann.main_stack.clone(),
    ];
    expected.extend(ann.lambda_enis.iter().cloned());
    expected.extend(ann.log_groups.iter().cloned());
    for revision in 1..=ann.task_definitions.len() {
        expected.push(format!("{}:{revision}", ann.task_family));
    }
    for task in &ann.tasks {
        expected.push(task.rsplit('/').next().unwrap().to_string());
    }
    for name in &expected {
        assert!(
            stdout.contains(name.as_str()),
            "{name} is not in the preview:\n{stdout}"
        );
    }
    for name in account.anna.identifiers() {
        assert!(
            !stdout.contains(name.as_str()),
            "the preview of {} names {name} of the other lab:\n{stdout}",
            ann.main_stack
        );
    }
    assert!(!stderr.contains("error"), "{stderr}");
    assert_eq!(
        account.mutating_calls(),
        Vec::<String>::new(),
        "a preview changes nothing"
    );
    let damage = real_lab_damage(&account.moto.aws(Mode::DryRun), ann).await;
    assert!(damage.is_empty(), "{damage:#?}");
    account.assert_bystanders_untouched().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stack_name_takes_the_whole_lab_apart_in_order_and_nothing_else() {
    // AWS holds the rotation function's interfaces for a while after the function is gone, and
    // takes a while to delete a stack.
    let in_use = Arc::new(InterfacesInUse::first(2));
    let mut account = Account::new(vec![in_use.clone()]).await;
    let slow = Arc::new(DeletionTakesAWhile::new(
        &account.ann.rotation_stack_id,
        &account.ann.rotation_stack,
        1,
    ));
    account.proxy = CountingProxy::with_rules(
        &account.moto.endpoint,
        Duration::ZERO,
        vec![Arc::new(DeleteStackAsAws), in_use.clone(), slow.clone()],
    );
    let ann = &account.ann;
    let out = account.teardown(&[
        "run",
        PLAN,
        "--var",
        &format!("main_stack={}", ann.main_stack),
        "--yes",
        "--output",
        "plain",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let aws = account.moto.aws(Mode::DryRun);
    let left = real_lab_leftovers(&aws, ann).await;
    assert!(left.is_empty(), "left of the lab: {left:#?}\n{stdout}");
    account.assert_bystanders_untouched().await;
    assert_eq!(
        in_use.refused(),
        2,
        "the interfaces were deleted once AWS let go of them"
    );

    // The order CloudFormation needs: everything that would make the main stack's deletion fail
    // (images, tasks, the rotation stack's interfaces) is gone before it is asked to delete.
    let calls = account.mutating_calls();
    let position = |call: &str, last: bool| {
        let mut found = calls.iter().enumerate().filter(|(_, c)| c.as_str() == call);
        let hit = if last {
            found.next_back()
        } else {
            found.next()
        };
        hit.map(|(i, _)| i)
            .unwrap_or_else(|| panic!("no {call} among {calls:#?}"))
    };
    let main_stack_deleted = position("CloudFormation.DeleteStack", true);
    let rotation_stack_deleted = position("CloudFormation.DeleteStack", false);
    assert!(rotation_stack_deleted < main_stack_deleted);
    for before_main in [
        "ECS.StopTask",
        "ECS.DeleteCluster",
        "ECR.DeleteRepository",
        "ECS.DeregisterTaskDefinition",
        "EC2.DeleteNetworkInterface",
    ] {
        assert!(
            position(before_main, true) < main_stack_deleted,
            "{before_main}: {calls:#?}"
        );
    }
    // Only the rotation must be off before its function goes; the secret's deletion goes beside.
    assert!(position("Secrets Manager.CancelRotateSecret", true) < rotation_stack_deleted);
    assert!(
        position("Secrets Manager.CancelRotateSecret", true)
            < position("Secrets Manager.DeleteSecret", true)
    );
    assert!(position("CloudWatch Logs.DeleteLogGroup", false) > main_stack_deleted);
    let all = account.proxy.calls();
    let mut by_operation = std::collections::BTreeMap::<&str, usize>::new();
    for call in &all {
        *by_operation.entry(call.as_str()).or_default() += 1;
    }
    eprintln!(
        "the run made {} calls, {} of them changes: {by_operation:#?}",
        all.len(),
        calls.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_that_matches_two_rotation_stacks_stops_the_run_before_any_change() {
    let account = Account::new(vec![]).await;
    let ann = &account.ann;
    let glob = format!("rotation_stack={}*", real_workshop::ROTATION_STACK_PREFIX);
    let out = account.teardown(&[
        "run",
        PLAN,
        "--var",
        &format!("main_stack={}", ann.main_stack),
        "--var",
        &glob,
        "--yes",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "step `delete-rotation-stack`: expected exactly 1 CloudFormation stack, matched 3"
        ),
        "{stderr}"
    );
    // Each match, with why it matched.
    for stack in [
        &ann.rotation_stack,
        &account.anna.rotation_stack,
        &account.lookalikes.rotation_stack,
    ] {
        assert!(
            stderr.contains(&format!("- {stack} (name matches")),
            "{stack}: {stderr}"
        );
    }
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(account.mutating_calls(), Vec::<String>::new());
    assert!(!account.home.path().join("runs").exists() || runs_are_empty(account.home.path()));
    let aws = account.moto.aws(Mode::DryRun);
    assert!(real_lab_damage(&aws, ann).await.is_empty());
    account.assert_bystanders_untouched().await;
}

/// No audit record of a change exists under the runs directory.
fn runs_are_empty(home: &Path) -> bool {
    walk(&home.join("runs"))
        .iter()
        .filter(|p| p.ends_with("audit.jsonl"))
        .all(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .trim()
                .is_empty()
        })
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_name_that_is_not_there_is_a_lookup_error_not_an_empty_success() {
    let account = Account::new(vec![]).await;
    // A typo: one letter short of the other attendee's stack, which must not be taken instead.
    let missing = format!("{}-x", account.ann.main_stack);
    let out = account.teardown(&[
        "run",
        PLAN,
        "--var",
        &format!("main_stack={missing}"),
        "--yes",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("of stack {missing}")) && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert_eq!(account.mutating_calls(), Vec::<String>::new());
    let aws = account.moto.aws(Mode::DryRun);
    assert!(real_lab_damage(&aws, &account.ann).await.is_empty());
    account.assert_bystanders_untouched().await;
}

/// The sweep of real labs, in process (as `sweep.rs` does) so that "now" can be a day later:
/// moto stamps stacks with the real clock. Both labs are found by what the template leaves
/// (description, outputs) and bound through lookups alone; the third attendee's leftovers are no
/// lab (their main stack is gone). Then one lab is in use (moto gives tasks no start time: the
/// answer to DescribeTasks for its cluster, on the read-only clients, says a task started an hour
/// before "now") and is kept, while the other is swept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweep_finds_real_labs_through_lookups_and_keeps_the_one_in_use() {
    use support::faults::{aws_like_delete_stack, Answer, Faults, Rule};
    use teardown::aws::AwsOptions;
    use teardown::sweep::{RegionClients, SweepOptions, SweepPlan};

    let moto = support::moto().await;
    moto.keep_tasks_running();
    let setup = moto.aws(Mode::Apply);
    let (ann, anna) = real_workshop::provision_two_real_labs(&setup).await;
    let lookalikes = real_workshop::provision_real_lookalikes(&setup).await;
    let plan = SweepPlan::load(Path::new("plans/stale-labs-sweep.toml"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let now = chrono::Utc::now() + chrono::Duration::hours(25);
    let options = SweepOptions {
        now,
        ..SweepOptions::default()
    };
    // One account and one region: a lab is known by its stack name alone.
    let id = |lab: &RealLab| lab.main_stack.clone();
    let region = |read: teardown::aws::Aws, write: Option<teardown::aws::Aws>| RegionClients {
        read: Arc::new(read),
        write: write.map(Arc::new),
    };

    // Both stale: both found, every value looked up, nothing else is a lab.
    let dry = crate::sweep::sweep(&plan, &[region(moto.aws(Mode::DryRun), None)], &options).await;
    let report = crate::sweep::report(&dry, &plan, &options);
    let found = crate::sweep::statuses(&report);
    assert_eq!(
        found.keys().cloned().collect::<Vec<_>>(),
        vec![id(&ann), id(&anna)],
        "{found:#?}"
    );
    for lab in [&ann, &anna] {
        assert_eq!(found[&id(lab)].0, "would-delete", "{}", found[&id(lab)].1);
        let vars = &crate::sweep::lab(&report, &id(lab))["vars"];
        assert_eq!(vars["cluster"], lab.cluster.as_str(), "{vars}");
        assert_eq!(vars["secret"], lab.secret.as_str(), "{vars}");
        assert_eq!(
            vars["rotation_stack"],
            lab.rotation_stack.as_str(),
            "{vars}"
        );
    }

    // anna's lab in use: kept with the reason; ann's swept, for real.
    let started_at = (now - chrono::Duration::hours(1)).timestamp();
    let described = serde_json::json!({
        "tasks": [{
            "taskArn": anna.tasks[0],
            "clusterArn": format!("arn:aws:ecs:{}:{}:cluster/{}", support::REGION, support::ACCOUNT, anna.cluster),
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "startedAt": started_at
        }],
        "failures": []
    });
    let in_use = Faults::new(vec![Rule::on(
        "ECS",
        "DescribeTasks",
        usize::MAX,
        Answer::Body(described.to_string()),
    )
    .when_request_contains(&anna.cluster)]);
    let read = moto.aws_with(
        Mode::DryRun,
        AwsOptions {
            interceptors: vec![in_use.shared()],
            ..AwsOptions::default()
        },
    );
    // DeleteStack after the repository went: AWS's answer, not moto's (support::faults).
    let write = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![aws_like_delete_stack().shared()],
            ..AwsOptions::default()
        },
    );
    let swept = crate::sweep::sweep(&plan, &[region(read, Some(write))], &options).await;
    let report = crate::sweep::report(&swept, &plan, &options);
    let found = crate::sweep::statuses(&report);
    assert_eq!(found[&id(&anna)].0, "kept", "{found:#?}");
    assert!(
        found[&id(&anna)].1.starts_with("in use: a task in cluster"),
        "{found:#?}"
    );
    assert_eq!(found[&id(&ann)].0, "deleted", "{found:#?}");
    let aws = moto.aws(Mode::DryRun);
    let left = real_lab_leftovers(&aws, &ann).await;
    assert!(left.is_empty(), "{left:#?}");
    let damage = real_lab_damage(&aws, &anna).await;
    assert!(damage.is_empty(), "{damage:#?}");
    let damage = lookalike_damage(&aws, &lookalikes).await;
    assert!(damage.is_empty(), "{damage:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_preview_is_applied_with_the_values_it_recorded_and_reads_none_again() {
    let account = Account::new(vec![]).await;
    let ann = &account.ann;
    let saved = account.home.path().join("preview.json");
    let out = account.teardown(&[
        "preview",
        PLAN,
        "--var",
        &format!("main_stack={}", ann.main_stack),
        "--save",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let recorded = std::fs::read_to_string(&saved).unwrap();
    assert!(
        recorded.contains("looked_up") && recorded.contains(&ann.rotation_stack),
        "the preview records what its lookups found: {recorded}"
    );
    let before = account.proxy.calls().len();
    let out = account.teardown(&[
        "apply",
        saved.to_str().unwrap(),
        "--yes",
        "--output",
        "plain",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // The values, with where the preview found them.
    assert!(
        stdout.contains(&format!("(the stack that owns {})", ann.rotation_function)),
        "{stdout}"
    );
    // Only the lookups ask CloudFormation which stack owns a resource: the apply did not.
    let applied = &account.proxy.calls()[before..];
    assert!(
        !applied
            .iter()
            .any(|c| c == "CloudFormation.DescribeStackResources"),
        "{applied:#?}"
    );
    let left = real_lab_leftovers(&account.moto.aws(Mode::DryRun), ann).await;
    assert!(left.is_empty(), "{left:#?}");
    account.assert_bystanders_untouched().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_main_stack_that_ends_delete_failed_fails_the_run_loudly_and_is_kept() {
    // The Fargate part is left out (--only general --assume-done), so the repository still holds
    // its images when the main stack is deleted: AWS ends DELETE_FAILED (see the top).
    let mut account = Account::new(vec![]).await;
    let failing = Arc::new(DeletionFailsOnImages::new(
        &account.ann.main_stack_id,
        &account.ann.main_stack,
        &account.ann.repository,
    ));
    account.proxy = CountingProxy::with_rules(
        &account.moto.endpoint,
        Duration::ZERO,
        vec![Arc::new(DeleteStackAsAws), failing.clone()],
    );
    // The plan with short retry delays, so that the test takes seconds, not minutes.
    let plan = std::fs::read_to_string(PLAN).unwrap().replace(
        "delay = \"5s\", max-delay = \"1m\"",
        "delay = \"50ms\", max-delay = \"100ms\"",
    );
    let copy = account.home.path().join("workshop.toml");
    std::fs::write(&copy, plan).unwrap();
    let ann = &account.ann;
    let out = account.teardown(&[
        "run",
        copy.to_str().unwrap(),
        "--var",
        &format!("main_stack={}", ann.main_stack),
        "--only",
        "general",
        "--assume-done",
        "--yes",
        "--output",
        "plain",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("DELETE_FAILED"), "{stdout}");
    assert!(stdout.contains("still contains images"), "{stdout}");
    assert!(
        failing.deletions() >= 2,
        "the failure handler ran and the deletion was tried again"
    );
    // The log groups wait for the main stack: skipped, kept, and said so.
    assert!(stdout.contains("delete-log-groups"), "{stdout}");
    let left = real_lab_leftovers(&account.moto.aws(Mode::DryRun), ann).await;
    assert!(
        left.iter().any(|l| l.contains(&ann.main_stack)),
        "the main stack is still there: {left:#?}"
    );
    assert!(
        left.iter().any(|l| l.contains(&ann.log_groups[0])),
        "{left:#?}"
    );
    account.assert_bystanders_untouched().await;
}

/// A lab whose relations are ambiguous is kept, with the lookup's reason, never guessed at: here
/// the attendee registered a revision naming someone else's secret as well, so the lab's task
/// family names two existing secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_keeps_a_lab_whose_relations_are_ambiguous_and_says_why() {
    use aws_sdk_ecs::types::{ContainerDefinition, Secret};
    use teardown::sweep::{RegionClients, SweepOptions, SweepPlan};

    let moto = support::moto().await;
    moto.keep_tasks_running();
    let setup = moto.aws(Mode::Apply);
    let ann = real_workshop::provision_real_lab(&setup, "ann").await;
    let other = setup
        .secretsmanager
        .create_secret()
        .name("smdemo-someone-else")
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    setup
        .ecs
        .register_task_definition()
        .family(&ann.task_family)
        .container_definitions(
            ContainerDefinition::builder()
                .name("smdemo")
                .image(&ann.repository_uri)
                .memory(512)
                .secrets(
                    Secret::builder()
                        .name("TASKDEF_SECRET")
                        .value_from(other.arn().unwrap())
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let plan = SweepPlan::load(Path::new("plans/stale-labs-sweep.toml"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let options = SweepOptions {
        now: chrono::Utc::now() + chrono::Duration::hours(25),
        ..SweepOptions::default()
    };
    let regions = [RegionClients {
        read: Arc::new(moto.aws(Mode::DryRun)),
        write: None,
    }];
    let dry = crate::sweep::sweep(&plan, &regions, &options).await;
    let report = crate::sweep::report(&dry, &plan, &options);
    let found = crate::sweep::statuses(&report);
    let (status, reasons) = &found[&ann.main_stack];
    assert_eq!(status, "kept", "{found:#?}");
    assert!(
        reasons.contains("lookup `secret`")
            && reasons.contains("reference 2 secrets")
            && reasons.contains("smdemo-someone-else")
            && reasons.contains(&ann.secret),
        "{reasons}"
    );
    assert!(
        real_lab_damage(&moto.aws(Mode::DryRun), &ann)
            .await
            .iter()
            .all(|d| d.contains("revision")),
        "only the revision this test added differs"
    );
}

/// Crash consistency: the run is killed (SIGKILL) as soon as its journal holds `k` lines, for kill
/// points spread over the whole run, and `teardown resume RUN_ID` then finishes the job with no
/// manual step: the lab is gone, the other lab and the look-alikes are untouched, and the audit
/// log (both processes' records) never shows one resource deleted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_at_any_journal_write_resumes_to_the_same_clean_end() {
    let mut kill_points = Vec::new();
    let mut k = 1;
    loop {
        let account = Account::new(vec![]).await;
        let runs = account.home.path().join("runs");
        let mut env = account.moto.cli_env(account.home.path());
        for (key, value) in env.iter_mut() {
            if key == "AWS_ENDPOINT_URL" {
                *value = account.proxy.endpoint.clone();
            }
        }
        env.push(("TEARDOWN_RUNS_DIR".into(), runs.to_str().unwrap().into()));
        let main_stack = format!("main_stack={}", account.ann.main_stack);
        let mut child = support::teardown_command(
            &env,
            &[
                "run",
                PLAN,
                "--var",
                &main_stack,
                "--yes",
                "--output",
                "json",
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let journal_lines = |dir: &Path| {
            std::fs::read_to_string(dir.join("journal.jsonl"))
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        let started = std::time::Instant::now();
        let killed_in = loop {
            if let Some(dir) = crate::resume::run_dirs(&runs).pop() {
                if journal_lines(&dir) >= k {
                    child.kill().unwrap();
                    break Some(dir);
                }
            }
            if child.try_wait().unwrap().is_some() {
                break None;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the run never got going"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        let status = child.wait().unwrap();
        let Some(run_dir) = killed_in.filter(|_| !status.success()) else {
            // The run ended before its journal reached k lines: every kill point was tried.
            assert!(k > 3, "the run never wrote 3 journal lines");
            break;
        };
        let lines = journal_lines(&run_dir);
        let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
        let out = account.teardown(&["resume", &run_id, "--yes", "--output", "plain"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "killed after journal line {lines} (k = {k}); resume:\n{stdout}\n{stderr}"
        );
        let aws = account.moto.aws(Mode::DryRun);
        let left = real_lab_leftovers(&aws, &account.ann).await;
        assert!(
            left.is_empty(),
            "killed after line {lines}: left {left:#?}\n{stdout}"
        );
        account.assert_bystanders_untouched().await;
        // No resource was deleted twice: across both processes, each successful mutating call
        // on a resource appears once.
        let audit = std::fs::read_to_string(run_dir.join("audit.jsonl")).unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        for line in audit.lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            if record["outcome"] != "ok" || record["resource"].is_null() {
                continue;
            }
            let key = format!(
                "{}.{} {}",
                record["service"], record["operation"], record["resource"]
            );
            assert!(
                seen.insert(key.clone()),
                "killed after line {lines}: {key} twice\n{audit}"
            );
        }
        kill_points.push(lines);
        k = lines + 3;
    }
    eprintln!("killed after journal lines {kill_points:?}, each resumed to a clean end");
    assert!(kill_points.len() >= 3, "only {kill_points:?}");
}

/// The soak test (a benchmark, not in CI: `cargo test --test it -- --ignored soak --nocapture`;
/// `SOAK_RUNS=N` for another count than 50): consecutive runs of the workshop plan, each on a
/// fresh pair of labs, with random faults on every call (`support::aws_like::RandomFaults`:
/// throttling, internal errors, dropped connections, slow answers), all ending clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: minutes long"]
async fn soak_runs_with_random_faults_all_end_clean() {
    use support::aws_like::RandomFaults;
    let runs: u64 = std::env::var("SOAK_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let started = std::time::Instant::now();
    let mut totals = std::collections::BTreeMap::<&'static str, usize>::new();
    for seed in 1..=runs {
        let faults = Arc::new(RandomFaults::new(seed));
        let account = Account::new(vec![faults.clone()]).await;
        let out = account.teardown(&[
            "run",
            PLAN,
            "--var",
            &format!("main_stack={}", account.ann.main_stack),
            "--yes",
            "--output",
            "plain",
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "seed {seed}:\n{stdout}\n{stderr}"
        );
        let left = real_lab_leftovers(&account.moto.aws(Mode::DryRun), &account.ann).await;
        assert!(left.is_empty(), "seed {seed}: {left:#?}");
        account.assert_bystanders_untouched().await;
        for (what, n) in faults.given.lock().unwrap().iter() {
            *totals.entry(what).or_default() += n;
        }
    }
    eprintln!(
        "{runs} runs clean in {:.1} s, faults given: {totals:?}",
        started.elapsed().as_secs_f64()
    );
}

/// The lines that tell the reader what to do next, after the run.
fn next_step_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| {
            l.contains("To continue")
                || l.contains("Continue this run")
                || l.contains("run the same command again")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_interface_wait_that_times_out_says_what_holds_them_and_gives_one_next_step() {
    // AWS holds a deleted function's interfaces for 20-45 min; moto never does. The proxy refuses
    // every deletion of one as AWS does (InvalidNetworkInterface.InUse), and the step gets 3 s
    // instead of the plan's 60 min, so that it times out here.
    let in_use = Arc::new(InterfacesInUse::first(usize::MAX));
    let account = Account::new(vec![in_use.clone()]).await;
    let ann = &account.ann;
    let plan = account.plan_variant("short-wait.toml", |text| {
        let at = text.find("[steps.delete-lambda-enis]").unwrap();
        let (before, step) = text.split_at(at);
        format!(
            "{before}{}",
            step.replacen("timeout = \"60m\"", "timeout = \"3s\"", 1)
        )
    });
    let out = account.teardown(&[
        "run",
        &plan,
        "--var",
        &format!("main_stack={}", ann.main_stack),
        "--yes",
        "--output",
        "plain",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(in_use.refused() >= 2, "AWS refused the deletions");
    let runs = account.run_ids();
    let [run_id] = runs.as_slice() else {
        panic!("one run directory: {runs:?}")
    };

    // The step says what it waited for, what holds it, and what to do, with this run's id
    // (progress lines go to stderr).
    let failed = stderr
        .lines()
        .find(|l| l.contains("delete-lambda-enis: FAILED"))
        .unwrap_or_else(|| panic!("no failure line in\n{stderr}"));
    assert!(
        failed.contains("gave up waiting after 3")
            && failed.contains(": 2 network interfaces still in use ("),
        "{failed}"
    );
    for eni in &ann.lambda_enis {
        assert!(
            failed.contains(eni.as_str()),
            "{eni} is not named: {failed}"
        );
    }
    // The runs dir is named too: it came from TEARDOWN_RUNS_DIR, which a later shell may not have.
    let resume = format!(
        "`teardown resume {run_id} --runs-dir {}`",
        account.home.path().join("runs").display()
    );
    assert!(
        failed.ends_with(&format!(
            "AWS Lambda holds them: AWS releases them 20-45 min after the function is deleted; {resume} later, or raise the step's timeout"
        )),
        "{failed}"
    );
    assert!(
        stderr.contains("delete-main-stack: skipped: blocked by delete-lambda-enis"),
        "{stderr}"
    );

    // One next step after the run, never "run the same command again" beside "resume".
    let both = format!("{stdout}\n{stderr}");
    let next = next_step_lines(&both);
    assert_eq!(next.len(), 1, "{next:#?}\n{both}");
    assert!(next[0].contains(&resume), "{}", next[0]);
}

/// An ECS service in the lab's cluster, as an attendee who also made one would have (the
/// workshop itself runs its tasks by hand). moto starts no task for it.
async fn add_service(aws: &teardown::aws::Aws, lab: &RealLab, name: &str) {
    use aws_sdk_ecs::types::{AwsVpcConfiguration, LaunchType, NetworkConfiguration};
    let network = NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(lab.subnet_ids.clone()))
                .security_groups(lab.bastion_security_group.clone())
                .build()
                .unwrap(),
        )
        .build();
    aws.ecs
        .create_service()
        .cluster(&lab.cluster)
        .service_name(name)
        .task_definition(lab.task_definitions.last().unwrap())
        .desired_count(1)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network)
        .send()
        .await
        .unwrap();
}

/// The shipped plan with a step that deletes the cluster's services, as a lab with a service
/// needs: one service is then named by two steps (scaled to 0, then deleted).
fn with_delete_services(text: String) -> String {
    let text = text.replacen(
        "# AWS refuses to delete a cluster that still has tasks.\nafter = [\"stop-tasks\"]",
        "# AWS refuses to delete a cluster that still has tasks.\nafter = [\"stop-tasks\", \"delete-services\"]",
        1,
    );
    assert!(
        text.contains("\"delete-services\"]"),
        "the plan's delete-cluster step moved"
    );
    format!(
        "{text}\n[steps.delete-services]\nphase = \"fargate\"\naction = \"ecs.delete-services\"\nmatch = {{ cluster = \"{{cluster}}\" }}\nafter = [\"stop-tasks\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_and_the_summary_count_each_resource_once_and_as_what_it_is() {
    let account = Account::new(vec![]).await;
    let ann = &account.ann;
    add_service(&account.moto.aws(Mode::Apply), ann, "smdemo-web").await;
    let plan = account.plan_variant("with-services.toml", with_delete_services);
    let var = format!("main_stack={}", ann.main_stack);
    let tasks = ann.tasks.len();
    assert_eq!(tasks, 2, "the fixture runs two tasks");
    let revisions = ann.task_definitions.len();

    // The preview's summary: the service once (stop-tasks scales it to 0, delete-services
    // deletes it), and not among the tasks.
    let out = account.teardown(&["preview", &plan, "--var", &var, "--output", "plain"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let totals = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("would be deleted or changed:"))
        .unwrap_or_else(|| panic!("no totals in\n{stdout}"));
    for part in [
        "2 CloudFormation stacks".to_string(),
        format!("{} CloudWatch Logs log groups", ann.log_groups.len()),
        "1 ECR repository".to_string(),
        "1 ECS cluster".to_string(),
        "1 ECS service".to_string(),
        format!("{tasks} ECS tasks"),
        format!("{revisions} ECS task definitions"),
        format!("{} network interfaces", ann.lambda_enis.len()),
        "1 secret".to_string(),
    ] {
        assert!(
            totals.contains(&format!(" {part},")) || totals.ends_with(&format!(" {part}")),
            "`{part}` is not in: {totals}"
        );
    }
    let stop_tasks = stderr
        .lines()
        .find(|l| l.contains("stop-tasks: succeeded"))
        .unwrap_or_else(|| panic!("no stop-tasks line in\n{stderr}"));
    assert!(
        stop_tasks.ends_with(&format!(
            "would scale to 0: 1 ECS service; would stop: {tasks} ECS tasks"
        )),
        "{stop_tasks}"
    );

    // The confirmation, on a terminal (`script` gives the run one), counts the same way. The
    // answer is another account's id: nothing is done.
    let env = account.env();
    let command_line = [
        support::teardown_bin(),
        "run".into(),
        plan.clone(),
        "--var".into(),
        var.clone(),
    ]
    .join(" ");
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", &command_line, "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = script.spawn().expect("script (util-linux) runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"000000000000\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let (terminal, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{terminal}\n{stderr}");
    let asks = terminal
        .lines()
        .find(|l| l.contains("This DELETES or changes:"))
        .unwrap_or_else(|| panic!("no confirmation in\n{terminal}\n{stderr}"));
    assert!(asks.contains(" 1 ECS service,"), "{asks}");
    assert!(asks.contains(&format!(" {tasks} ECS tasks,")), "{asks}");
    assert!(
        terminal.contains("not confirmed: nothing was done"),
        "{terminal}"
    );
    assert_eq!(
        account.mutating_calls(),
        Vec::<String>::new(),
        "nothing was changed"
    );
}
