//! `secretsmanager.delete-secret` against moto: the recovery window and its date, rotation
//! cancelled first, look-alikes and protected secrets left alone, a second run that changes
//! nothing, dry run, and deletion without recovery; `secretsmanager.cancel-rotation`, and the
//! deletion after it.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use teardown::actions::secretsmanager::{CANCEL_ROTATION, DELETE_SECRET};
use teardown::actions::{Action, ActionStep, StepInput};
use teardown::aws::{to_chrono, Aws, Mode};
use teardown::engine::{StepContext, StepError, StepOutput, Task};
use teardown::event::EventSink;
use teardown::resource::OutcomeKind;

const NAME: &str = "secrets-manager-fargate-demo-db-secret";

fn build(selector: &str, options: &str) -> Arc<dyn Action> {
    (DELETE_SECRET.build)(&StepInput {
        step: "t".into(),
        selector: toml::from_str(selector).unwrap(),
        options: toml::from_str(options).unwrap(),
    })
    .unwrap_or_else(|e| panic!("build: {e:?}"))
}

async fn run(aws: &Aws, action: Arc<dyn Action>) -> Result<StepOutput, StepError> {
    let step = ActionStep::new(action, Arc::new(aws.clone()), "teardown:protect", vec![]);
    let (sink, _rx) = EventSink::channel();
    Task::run(
        &step,
        &StepContext::detached("t", Duration::from_secs(60), sink),
    )
    .await
}

/// A secret with rotation on (by a Lambda in a stack of its own), as in the workshop.
async fn rotating_secret(aws: &Aws, name: &str, tags: &[(&str, &str)]) -> String {
    let (_, lambda) = support::fixture::deploy_rotation_function(
        aws,
        &format!("rotation-{}", name.replace(['/', '_', '.'], "-")),
        &format!("rotate-{}", name.replace('/', "-")),
        None,
    )
    .await;
    support::fixture::create_rotating_secret(aws, name, &lambda, tags).await
}

async fn plain_secret(aws: &Aws, name: &str, tags: &[(&str, &str)]) -> String {
    let mut request = aws
        .secretsmanager
        .create_secret()
        .name(name)
        .secret_string("{}");
    for (k, v) in tags {
        request = request.tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build(),
        );
    }
    request.send().await.unwrap().arn().unwrap().to_string()
}

/// The secret's deletion date and rotation flag; `None` for the date while it is live.
async fn describe(aws: &Aws, arn: &str) -> (Option<DateTime<Utc>>, bool) {
    let out = aws
        .secretsmanager
        .describe_secret()
        .secret_id(arn)
        .send()
        .await
        .expect("the secret still exists");
    (
        out.deleted_date().and_then(to_chrono),
        out.rotation_enabled().unwrap_or(false),
    )
}

fn assert_about(actual: DateTime<Utc>, expected: DateTime<Utc>) {
    let off = (actual - expected).num_seconds().abs();
    assert!(
        off <= 60,
        "deletion date {actual}, expected about {expected} ({off}s off)"
    );
}

/// Position of the first call to `operation` in the call log.
fn position(aws: &Aws, operation: &str) -> usize {
    aws.calls
        .records()
        .iter()
        .position(|r| r.operation == operation)
        .unwrap_or_else(|| panic!("no {operation} call: {:?}", aws.calls.mutating_operations()))
}

#[tokio::test]
async fn schedules_deletion_after_cancelling_rotation_and_leaves_look_alikes() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let target = rotating_secret(&setup, NAME, &[]).await;
    // AWS's name filter matches by prefix: these must not be caught.
    let longer = plain_secret(&setup, &format!("{NAME}-old"), &[]).await;
    let shorter = plain_secret(&setup, "secrets-manager-fargate-demo-db", &[]).await;

    let aws = moto.aws(Mode::Apply);
    let before = Utc::now();
    let out = run(
        &aws,
        build(&format!("name = \"{NAME}\""), "recovery_window_days = 7"),
    )
    .await
    .expect("step succeeds");

    assert_eq!(out.resources.len(), 1, "{:#?}", out.resources);
    let outcome = &out.resources[0];
    assert_eq!(outcome.outcome, OutcomeKind::Done);
    assert_eq!(outcome.resource.id, target);
    assert_eq!(outcome.resource.kind, "secret");
    assert_eq!(outcome.resource.attribute("rotation_enabled"), Some("true"));
    assert!(outcome.resource.created.is_some());

    let (deleted, rotation) = describe(&aws, &target).await;
    let deleted = deleted.expect("scheduled for deletion");
    assert_about(deleted, before + chrono::Duration::days(7));
    assert!(!rotation, "rotation still on");
    assert_eq!(
        outcome.detail,
        format!(
            "deletion scheduled for {} (restore until then with: aws secretsmanager restore-secret --secret-id {NAME} --region {})",
            deleted.format("%Y-%m-%d"),
            support::REGION
        )
    );
    assert!(
        out.summary
            .starts_with("schedule deletion of: 1 of 1 secret"),
        "{}",
        out.summary
    );
    assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
    assert!(
        out.notes[0].contains(&deleted.format("%Y-%m-%d").to_string()),
        "{:?}",
        out.notes
    );
    assert!(
        out.notes[0].contains(&format!(
            "aws secretsmanager restore-secret --secret-id {NAME} --region {}",
            support::REGION
        )),
        "{:?}",
        out.notes
    );

    assert!(
        position(&aws, "CancelRotateSecret") < position(&aws, "DeleteSecret"),
        "rotation must be cancelled before the deletion: {:?}",
        aws.calls.mutating_operations()
    );
    assert_eq!(
        aws.calls.mutating_operations().len(),
        2,
        "{:?}",
        aws.calls.mutating_operations()
    );
    for bystander in [&longer, &shorter] {
        assert_eq!(
            describe(&aws, bystander).await.0,
            None,
            "{bystander} was touched"
        );
    }
}

/// `secretsmanager.cancel-rotation` turns off the rotation of the secret it names and changes
/// nothing else: the secret stays live, a look-alike keeps its rotation, and a second look finds
/// nothing to do. A deletion after it in the same run does not cancel the rotation again.
#[tokio::test]
async fn cancel_rotation_turns_only_the_rotation_off_and_the_deletion_does_not_repeat_it() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let target = rotating_secret(&setup, NAME, &[]).await;
    let lookalike = rotating_secret(&setup, &format!("{NAME}-old"), &[]).await;
    let cancel = || {
        (CANCEL_ROTATION.build)(&StepInput {
            step: "t".into(),
            selector: toml::from_str(&format!("name = \"{NAME}\"")).unwrap(),
            options: toml::Table::new(),
        })
        .unwrap_or_else(|e| panic!("build: {e:?}"))
    };

    let aws = moto.aws(Mode::Apply);
    let out = run(&aws, cancel()).await.expect("step succeeds");
    assert_eq!(out.resources.len(), 1, "{:#?}", out.resources);
    assert_eq!(out.resources[0].resource.id, target);
    assert_eq!(out.resources[0].outcome, OutcomeKind::Done);
    assert_eq!(out.resources[0].detail, "rotation cancelled");
    assert_eq!(describe(&aws, &target).await, (None, false));
    assert_eq!(
        describe(&aws, &lookalike).await,
        (None, true),
        "the look-alike's rotation"
    );
    assert_eq!(
        aws.calls.mutating_operations(),
        ["Secrets Manager.CancelRotateSecret"]
    );

    // Its rotation is off now: nothing left for the step to match.
    let again = run(&aws, cancel()).await.expect("step succeeds");
    assert!(again.resources.is_empty(), "{:#?}", again.resources);

    // A deletion that found the secret while it still rotated (as the pre-flight did) knows
    // from the run's memory that the run cancelled it: DeleteSecret alone.
    let found_rotating = build(&format!("name = \"{NAME}\""), "recovery_window_days = 7")
        .act(&aws, &out.resources[0].resource)
        .await
        .expect("deletion scheduled");
    assert!(
        matches!(found_rotating, teardown::actions::Acted::Done(_)),
        "{found_rotating:?}"
    );
    assert_eq!(
        aws.calls.mutating_operations(),
        [
            "Secrets Manager.CancelRotateSecret",
            "Secrets Manager.DeleteSecret"
        ]
    );
    assert!(describe(&aws, &target).await.0.is_some(), "not scheduled");
    assert_eq!(
        describe(&aws, &lookalike).await,
        (None, true),
        "the look-alike"
    );
}

#[tokio::test]
async fn default_window_is_thirty_days_and_protected_secrets_stay() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let doomed = plain_secret(&setup, "lab/one", &[]).await;
    let protected = plain_secret(&setup, "lab/two", &[("teardown:protect", "yes")]).await;
    let elsewhere = plain_secret(&setup, "prod/one", &[]).await;

    let aws = moto.aws(Mode::Apply);
    let before = Utc::now();
    let out = run(&aws, build("name = \"lab/*\"", ""))
        .await
        .expect("step succeeds");

    let outcome_of = |arn: &str| {
        out.resources
            .iter()
            .find(|o| o.resource.id == arn)
            .unwrap_or_else(|| panic!("{arn} not in {:#?}", out.resources))
            .outcome
    };
    assert_eq!(outcome_of(&doomed), OutcomeKind::Done);
    assert_eq!(outcome_of(&protected), OutcomeKind::Protected);
    assert_eq!(out.resources.len(), 2);

    let deleted = describe(&aws, &doomed).await.0.expect("scheduled");
    assert_about(deleted, before + chrono::Duration::days(30));
    assert_eq!(
        describe(&aws, &protected).await.0,
        None,
        "protected secret touched"
    );
    assert_eq!(
        describe(&aws, &elsewhere).await.0,
        None,
        "unmatched secret touched"
    );
    // No rotation, so nothing to cancel.
    assert_eq!(
        aws.calls.mutating_operations(),
        vec!["Secrets Manager.DeleteSecret"]
    );
}

#[tokio::test]
async fn a_second_run_changes_nothing_and_keeps_the_date() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let target = rotating_secret(&setup, NAME, &[]).await;
    let selector = format!("name = \"{NAME}\"");

    let first = moto.aws(Mode::Apply);
    run(&first, build(&selector, "recovery_window_days = 7"))
        .await
        .unwrap();
    let date = describe(&first, &target).await.0.expect("scheduled");

    // A longer window on the second run would move the date, if the secret were found again.
    let second = moto.aws(Mode::Apply);
    let out = run(&second, build(&selector, "recovery_window_days = 30"))
        .await
        .unwrap();
    assert!(out.resources.is_empty(), "{:#?}", out.resources);
    assert_eq!(out.summary, "no secret matched: nothing to do");
    assert!(
        second.calls.mutating_operations().is_empty(),
        "{:?}",
        second.calls.mutating_operations()
    );
    assert_eq!(
        describe(&second, &target).await.0,
        Some(date),
        "the deletion date moved"
    );
}

#[tokio::test]
async fn dry_run_only_reads() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let target = rotating_secret(&setup, NAME, &[]).await;

    let aws = moto.aws(Mode::DryRun);
    let out = run(
        &aws,
        build(&format!("name = \"{NAME}\""), "recovery_window_days = 7"),
    )
    .await
    .unwrap();
    assert_eq!(out.resources.len(), 1);
    assert_eq!(out.resources[0].outcome, OutcomeKind::Planned);
    assert!(
        out.resources[0]
            .detail
            .starts_with("would schedule deletion of"),
        "{}",
        out.resources[0].detail
    );
    assert!(!aws.calls.is_empty(), "the dry run did not even look");
    assert!(
        aws.calls.mutating_operations().is_empty(),
        "{:?}",
        aws.calls.mutating_operations()
    );
    assert_eq!(describe(&aws, &target).await, (None, true));
}

#[tokio::test]
async fn force_deletes_at_once() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let target = rotating_secret(&setup, NAME, &[]).await;

    let aws = moto.aws(Mode::Apply);
    let out = run(
        &aws,
        build(
            &format!("name = \"{NAME}\""),
            "force_delete_without_recovery = true",
        ),
    )
    .await
    .unwrap();
    assert_eq!(out.resources[0].outcome, OutcomeKind::Done);
    assert!(
        out.summary.starts_with("delete: 1 of 1 secret"),
        "{}",
        out.summary
    );
    assert!(
        out.notes[0].contains("cannot be restored"),
        "{:?}",
        out.notes
    );
    let err = aws
        .secretsmanager
        .describe_secret()
        .secret_id(&target)
        .send()
        .await
        .expect_err("the secret is gone at once");
    assert!(teardown::aws::AwsError::from_sdk("SecretsManager.DescribeSecret", err).is_not_found());
    let listed = aws
        .secretsmanager
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .unwrap();
    assert!(listed.secret_list().is_empty());
}

#[tokio::test]
async fn a_secret_deleted_after_find_is_already_gone() {
    let moto = support::moto().await;
    let aws = moto.aws(Mode::Apply);
    let scheduled = rotating_secret(&aws, "race/scheduled", &[]).await;
    let removed = plain_secret(&aws, "race/removed", &[]).await;
    let action = build("name = \"race/*\"", "");
    let found = action.find(&aws).await.unwrap();
    assert_eq!(found.len(), 2);

    // Someone else is quicker, between find and act.
    aws.secretsmanager
        .delete_secret()
        .secret_id(&scheduled)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    aws.secretsmanager
        .delete_secret()
        .secret_id(&removed)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let date = describe(&aws, &scheduled).await.0;
    for resource in &found {
        assert_eq!(
            action.act(&aws, resource).await.unwrap(),
            teardown::actions::Acted::AlreadyGone,
            "{}",
            resource.name
        );
    }
    assert_eq!(
        describe(&aws, &scheduled).await.0,
        date,
        "the deletion date moved"
    );
}

#[test]
fn options_are_checked() {
    let options: toml::Table = toml::from_str("recovery_window_days = 3").unwrap();
    let errors = teardown::actions::check_fields(&options, DELETE_SECRET.options, &[], "step");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, vec!["recovery_window_days"]);
    let both = (DELETE_SECRET.build)(&StepInput {
        step: "t".into(),
        selector: toml::from_str("name = \"x\"").unwrap(),
        options: toml::from_str("recovery_window_days = 7\nforce_delete_without_recovery = true")
            .unwrap(),
    });
    let errors = both.err().expect("refused");
    assert_eq!(errors[0].path, vec!["force_delete_without_recovery"]);
    let missing = teardown::actions::check_fields(
        &toml::Table::new(),
        DELETE_SECRET.selector,
        &["match"],
        "match",
    );
    assert_eq!(missing.len(), 1, "name is required: {missing:?}");
}
