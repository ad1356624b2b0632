//! `plans/rotate-and-redeploy.toml` end to end against the emulated serverless workshop: the
//! secret gets a new AWSCURRENT version, the service a new deployment after it (never before), the
//! look-alikes keep theirs, and a dry run changes nothing and shows the versions. Also
//! `secretsmanager.rotate-secret` on its own: it waits while a version is AWSPENDING, and a dry
//! run on a secret whose last rotation did not finish says AWS would refuse.
//!
//! Where moto differs (../shared/moto-notes.md and the fixture): moto runs no rotation Lambda, so
//! a RotateSecret that names no function moves AWSCURRENT at once; a rotation in progress is shown
//! to the step by replacing DescribeSecret's answer (tests/it/support/faults.rs). moto's forced
//! deployment replaces the PRIMARY deployment's id in place, so "a new deployment" is seen as a new
//! deployment id, never as two deployments side by side.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use support::faults::{Answer, Faults, Rule};
use support::fixture::{self, RotateLab};
use teardown::aws::{Aws, AwsOptions, Mode};
use teardown::engine::{self, RunOptions, RunSummary};
use teardown::plan::{self, PhaseSelection};
use teardown::resource::OutcomeKind;
use tokio_util::sync::CancellationToken;

const PLAN: &str = "plans/rotate-and-redeploy.toml";

/// Runs the whole plan with these clients; returns the summary and the clients (for their calls).
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

/// The PRIMARY deployment's id of the lab's own service.
fn primary(snapshot: &fixture::RotateLabSnapshot, lab: &RotateLab) -> String {
    let service = &snapshot.services[&format!("{}/{}", lab.cluster, lab.service)];
    service
        .deployments
        .iter()
        .find(|(_, status)| status == "PRIMARY")
        .map(|(id, _)| id.clone())
        .expect("a PRIMARY deployment")
}

#[tokio::test]
async fn rotates_the_secret_then_redeploys_the_service_and_spares_the_look_alikes() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let lab = fixture::provision_rotate_lab(&setup).await;
    let before = fixture::rotate_lab_snapshot(&setup, &lab).await;
    let old_version = fixture::current_version(&setup, &lab.secret_arn).await;
    let old_deployment = primary(&before, &lab);

    let (summary, aws) = run_plan(moto.aws(Mode::Apply)).await;
    assert_all_succeeded(&summary);
    let after = fixture::rotate_lab_snapshot(&setup, &lab).await;

    // A new version is AWSCURRENT, the old one AWSPREVIOUS, and none is left AWSPENDING.
    let versions = &after.secrets[&lab.secret_arn];
    let new_version = fixture::current_version(&setup, &lab.secret_arn).await;
    assert_ne!(new_version, old_version, "{versions:?}");
    assert_eq!(versions[&old_version], vec!["AWSPREVIOUS"], "{versions:?}");
    assert!(
        !versions
            .iter()
            .any(|(v, labels)| *v != new_version && labels.iter().any(|l| l == "AWSPENDING")),
        "{versions:?}"
    );
    // The service has a new deployment and is stable: one deployment, all tasks running.
    let service = &after.services[&format!("{}/{}", lab.cluster, lab.service)];
    let new_deployment = primary(&after, &lab);
    assert_ne!(new_deployment, old_deployment);
    assert_eq!(service.deployments.len(), 1, "{service:?}");
    assert_eq!((service.running, service.desired), (1, 1), "{service:?}");

    // The look-alikes are as they were.
    for arn in &lab.bystander_secrets {
        assert_eq!(
            after.secrets[arn], before.secrets[arn],
            "secret {arn} changed"
        );
    }
    for (cluster, service) in &lab.bystander_services {
        let key = format!("{cluster}/{service}");
        assert_eq!(after.services[&key], before.services[&key], "{key} changed");
    }

    // The summary names both versions and both deployments, and never a value.
    let rotate = output(&summary, "rotate-secret");
    assert_eq!(
        rotate.notes,
        vec![format!(
            "secret {}: AWSCURRENT was version {old_version}, is now version {new_version}",
            lab.secret
        )]
    );
    assert!(
        rotate.resources[0].detail.contains(&old_version),
        "{}",
        rotate.resources[0].detail
    );
    let redeploy = output(&summary, "redeploy-service");
    assert_eq!(redeploy.resources.len(), 1, "{:#?}", redeploy.resources);
    assert_eq!(redeploy.resources[0].outcome, OutcomeKind::Done);
    assert_eq!(
        redeploy.notes,
        vec![format!(
            "service {}: deployment {new_deployment} replaced {old_deployment}; stable with 1 of 1 tasks running",
            lab.service
        )]
    );

    // Order: the redeployment starts only once the rotation has finished (its last look at the
    // secret), and exactly two changes were made.
    let records = aws.calls.records();
    assert!(
        !records.iter().any(|r| r.operation == "GetSecretValue"),
        "a secret's value was read"
    );
    let last_rotation_call = records
        .iter()
        .rposition(|r| r.step.as_deref() == Some("rotate-secret"))
        .unwrap();
    let first_redeploy_call = records
        .iter()
        .position(|r| r.step.as_deref() == Some("redeploy-service"))
        .unwrap();
    assert!(last_rotation_call < first_redeploy_call);
    assert_eq!(
        aws.calls.mutating_operations(),
        vec!["Secrets Manager.RotateSecret", "ECS.UpdateService"]
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
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_shows_the_version_and_deployment_now() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let lab = fixture::provision_rotate_lab(&setup).await;
    let before = fixture::rotate_lab_snapshot(&setup, &lab).await;
    let version = fixture::current_version(&setup, &lab.secret_arn).await;

    let (summary, aws) = run_plan(moto.aws(Mode::DryRun)).await;
    assert_all_succeeded(&summary);
    assert_eq!(fixture::rotate_lab_snapshot(&setup, &lab).await, before);
    assert!(!aws.calls.is_empty(), "the dry run did not even look");
    assert!(
        aws.calls.mutating_operations().is_empty(),
        "{:?}",
        aws.calls.mutating_operations()
    );

    let rotate = output(&summary, "rotate-secret");
    assert_eq!(rotate.summary, "would rotate 1 secret");
    assert_eq!(rotate.resources.len(), 1, "{:#?}", rotate.resources);
    assert_eq!(rotate.resources[0].outcome, OutcomeKind::Planned);
    assert_eq!(
        rotate.resources[0].detail,
        format!(
            "would rotate it: AWSCURRENT is version {version} now, a new version would replace it"
        )
    );
    let redeploy = output(&summary, "redeploy-service");
    assert_eq!(redeploy.resources.len(), 1, "{:#?}", redeploy.resources);
    assert_eq!(
        redeploy.resources[0].detail,
        format!(
            "would force a new deployment: deployment {} now, 1 of 1 tasks running; each would be replaced by a new task",
            primary(&before, &lab)
        )
    );
}

/// A secret as the step's own tests use it: rotation on through a Lambda of its own.
async fn rotating_secret(aws: &Aws, name: &str) -> String {
    let (_, lambda) = fixture::deploy_rotation_function(
        aws,
        &format!("rotation-{name}"),
        &format!("rotate-{name}"),
        None,
    )
    .await;
    fixture::create_rotating_secret(aws, name, &lambda, &[]).await
}

#[tokio::test]
async fn the_rotation_step_waits_while_a_new_version_is_pending() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let arn = rotating_secret(&setup, "serverless-credentials").await;
    let before = fixture::current_version(&setup, &arn).await;

    // While the rotation function works, AWS shows the new version AWSPENDING and the old one
    // still AWSCURRENT. moto finishes at once, so the step's first two looks are given that
    // picture instead (a read-only call: nothing happens in the emulator twice).
    let rotating = serde_json::json!({
        "ARN": arn,
        "Name": "serverless-credentials",
        "VersionIdsToStages": { before.clone(): ["AWSCURRENT"], "rotating-version": ["AWSPENDING"] }
    });
    let faults = Faults::new(vec![Rule::on(
        "Secrets Manager",
        "DescribeSecret",
        2,
        Answer::Body(rotating.to_string()),
    )]);
    let aws = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![faults.shared()],
            ..AwsOptions::default()
        },
    );
    let (result, progress) = support::run_action(
        Arc::new(aws),
        &teardown::actions::secretsmanager::ROTATE_SECRET,
        "name = \"serverless-credentials\"",
        "",
    )
    .await;
    let out = result.expect("the rotation finishes");
    assert_eq!(faults.injected(), 2);
    let waiting: Vec<&String> = progress
        .iter()
        .filter(|m| m.contains("rotating (version rotating-version AWSPENDING)"))
        .collect();
    assert_eq!(waiting.len(), 2, "{progress:#?}");
    let after = fixture::current_version(&setup, &arn).await;
    assert_ne!(after, before);
    assert_eq!(
        out.notes,
        vec![format!(
            "secret serverless-credentials: AWSCURRENT was version {before}, is now version {after}"
        )]
    );
}

#[tokio::test]
async fn a_dry_run_on_an_unfinished_rotation_says_aws_would_refuse() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    // Turning rotation on without rotating leaves, in moto, the version of its test AWSPENDING
    // next to the AWSCURRENT one: the picture of a rotation that never finished.
    let arn = rotating_secret(&setup, "serverless-credentials").await;
    let versions = fixture::secret_versions(&setup, &arn).await;
    let current = fixture::current_version(&setup, &arn).await;
    let pending = versions
        .iter()
        .find(|(_, labels)| labels.as_slice() == ["AWSPENDING"])
        .map(|(v, _)| v.clone())
        .expect("moto left the test version AWSPENDING");

    let aws = Arc::new(moto.aws(Mode::DryRun));
    let (result, _) = support::run_action(
        aws.clone(),
        &teardown::actions::secretsmanager::ROTATE_SECRET,
        "name = \"serverless-credentials\"",
        "",
    )
    .await;
    let out = result.unwrap();
    assert_eq!(out.resources[0].outcome, OutcomeKind::Planned);
    assert_eq!(
        out.resources[0].detail,
        format!("would rotate it, but AWS would refuse: version {pending} is still AWSPENDING from an unfinished rotation (AWSCURRENT is version {current})")
    );
    assert!(aws.calls.mutating_operations().is_empty());
    assert_eq!(fixture::secret_versions(&setup, &arn).await, versions);
}

#[tokio::test]
async fn an_unfinished_rotation_is_refused_with_its_versions() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    // moto leaves the test version AWSPENDING (see above): a rotation that never finished.
    let arn = rotating_secret(&setup, "serverless-credentials").await;
    let versions = fixture::secret_versions(&setup, &arn).await;
    let current = fixture::current_version(&setup, &arn).await;
    let pending = versions
        .iter()
        .find(|(_, labels)| labels.as_slice() == ["AWSPENDING"])
        .map(|(v, _)| v.clone())
        .expect("moto left the test version AWSPENDING");

    // AWS refuses a new rotation then; moto starts one. The refusal is answered instead of
    // sending the call, so that nothing happens in the emulator either.
    let faults = Faults::new(vec![Rule::on(
        "Secrets Manager",
        "RotateSecret",
        1,
        Answer::error(
            400,
            "InvalidRequestException",
            "A previous rotation isn't complete. That rotation will be reattempted.",
        ),
    )
    .instead_of_sending()]);
    let aws = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![faults.shared()],
            ..AwsOptions::default()
        },
    );
    let (result, _) = support::run_action(
        Arc::new(aws),
        &teardown::actions::secretsmanager::ROTATE_SECRET,
        "name = \"serverless-credentials\"",
        "",
    )
    .await;
    let error = result.expect_err("the rotation is refused");
    assert_eq!(
        error.kind,
        teardown::engine::FailureKind::Fatal,
        "{error:?}"
    );
    assert!(
        error.message.contains(&format!(
            "version {pending} is still AWSPENDING (AWSCURRENT is {current})"
        )),
        "{}",
        error.message
    );
    assert_eq!(fixture::secret_versions(&setup, &arn).await, versions);
}

/// DescribeServices' answer for the lab's service, as AWS gives it while a forced deployment
/// rolls out: the new PRIMARY deployment next to the old one, in this rollout state.
async fn rolling_out(aws: &Aws, lab: &RotateLab, rollout: &str, reason: &str) -> String {
    let described = aws
        .ecs
        .describe_services()
        .cluster(&lab.cluster)
        .services(&lab.service)
        .send()
        .await
        .unwrap();
    let service = &described.services()[0];
    serde_json::json!({
        "services": [{
            "serviceArn": service.service_arn(),
            "serviceName": lab.service,
            "clusterArn": service.cluster_arn(),
            "status": "ACTIVE",
            "desiredCount": 1,
            "runningCount": 1,
            "deployments": [
                { "id": "ecs-svc/rolling-out", "status": "PRIMARY", "desiredCount": 1,
                  "runningCount": 0, "rolloutState": rollout, "rolloutStateReason": reason },
                { "id": "ecs-svc/old", "status": "ACTIVE", "desiredCount": 1, "runningCount": 1,
                  "rolloutState": "COMPLETED" }
            ]
        }],
        "failures": []
    })
    .to_string()
}

/// Runs `ecs.force-new-deployment` on the lab's service, the first DescribeServices after `find`
/// answered with `body`.
async fn redeploy_with(
    moto: &support::Moto,
    lab: &RotateLab,
    body: String,
) -> (
    Result<teardown::engine::StepOutput, teardown::engine::StepError>,
    Vec<String>,
) {
    // `find` describes the service once; the wait's first look is the one replaced.
    let faults = Faults::new(vec![Rule::on(
        "ECS",
        "DescribeServices",
        1,
        Answer::Body(body),
    )
    .after(1)]);
    let aws = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![faults.shared()],
            ..AwsOptions::default()
        },
    );
    let result = support::run_action(
        Arc::new(aws),
        &teardown::actions::ecs::FORCE_NEW_DEPLOYMENT,
        &format!("cluster = \"{}\"\nname = \"{}\"", lab.cluster, lab.service),
        "",
    )
    .await;
    assert_eq!(faults.injected(), 1, "{:?}", faults.log());
    result
}

#[tokio::test]
async fn the_redeploy_waits_while_two_deployments_run() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let lab = fixture::provision_rotate_lab(&setup).await;
    let body = rolling_out(&setup, &lab, "IN_PROGRESS", "ECS deployment in progress.").await;
    let (result, progress) = redeploy_with(&moto, &lab, body).await;
    let out = result.expect("the service becomes stable");
    assert!(
        progress
            .iter()
            .any(|m| m.contains("still 2 deployments, 1 of 1 running")),
        "{progress:#?}"
    );
    assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
    assert!(
        out.notes[0].contains("stable with 1 of 1 tasks running"),
        "{:?}",
        out.notes
    );
}

#[tokio::test]
async fn a_failed_rollout_fails_the_step_with_its_reason() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let lab = fixture::provision_rotate_lab(&setup).await;
    let reason = "ECS deployment circuit breaker: tasks failed to start.";
    let body = rolling_out(&setup, &lab, "FAILED", reason).await;
    let (result, _) = redeploy_with(&moto, &lab, body).await;
    let error = result.expect_err("a failed rollout is a failure, not a wait");
    assert_eq!(
        error.kind,
        teardown::engine::FailureKind::Fatal,
        "{error:?}"
    );
    assert!(
        error.message.contains(&format!(
            "the new deployment ecs-svc/rolling-out of service {} failed: {reason}",
            lab.service
        )),
        "{}",
        error.message
    );
}

#[test]
fn the_plan_validates() {
    let status = support::teardown_command(&[], &["validate", PLAN])
        .status()
        .expect("run teardown validate");
    assert!(status.success(), "teardown validate {PLAN} failed");
    let plan = plan::load(Path::new(PLAN), &[]).unwrap();
    assert!(plan.dag.depends_on("redeploy-service", "rotate-secret"));
}
