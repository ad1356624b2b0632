//! `cloudformation.delete-stack` against moto: what it deletes, what it leaves, and what it says
//! when CloudFormation refuses (the refusals moto does not emulate are injected, and say so).

use crate::support;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
use aws_sdk_cloudformation::operation::list_stack_resources::ListStackResourcesOutput;
use aws_sdk_cloudformation::operation::update_termination_protection::UpdateTerminationProtectionOutput;
use aws_sdk_cloudformation::types::{HookStatus, ResourceStatus, StackEvent, StackStatus, Tag};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextMut, Output, OutputOrError,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use teardown::actions::{StepInput, DEFAULT_PROTECT_TAG};
use teardown::aws::{Aws, AwsOptions, Mode};
use teardown::engine::{FailureKind, StepError, StepOutput};
use teardown::resource::OutcomeKind;

const VPC_TEMPLATE: &str =
    r#"{"Resources":{"Vpc":{"Type":"AWS::EC2::VPC","Properties":{"CidrBlock":"10.0.0.0/16"}}}}"#;

async fn create_stack(aws: &Aws, name: &str, tags: &[(&str, &str)]) -> String {
    let mut request = aws
        .cloudformation
        .create_stack()
        .stack_name(name)
        .template_body(VPC_TEMPLATE);
    for (k, v) in tags {
        request = request.tags(Tag::builder().key(*k).value(*v).build());
    }
    request
        .send()
        .await
        .unwrap()
        .stack_id()
        .unwrap()
        .to_string()
}

/// The stack's status by name, `None` once it is gone.
async fn status(aws: &Aws, name: &str) -> Option<String> {
    match aws
        .cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
    {
        Ok(out) => out.stacks()[0]
            .stack_status()
            .map(|s| s.as_str().to_string()),
        Err(e) => {
            let text = format!("{:?}", e.into_service_error());
            assert!(text.contains("does not exist"), "{text}");
            None
        }
    }
}

/// Runs the action as a step, the way the plan runner does.
async fn run(aws: Aws, selector: &str, options: &str) -> Result<StepOutput, StepError> {
    run_with_progress(aws, selector, options).await.0
}

/// Runs the action as a step, and returns the progress messages it sent too.
async fn run_with_progress(
    aws: Aws,
    selector: &str,
    options: &str,
) -> (Result<StepOutput, StepError>, Vec<String>) {
    support::run_action(
        Arc::new(aws),
        &teardown::actions::cloudformation::DELETE_STACK,
        selector,
        options,
    )
    .await
}

fn outcome_of<'a>(output: &'a StepOutput, name: &str) -> (&'a OutcomeKind, &'a str) {
    let o = output
        .resources
        .iter()
        .find(|o| o.resource.name == name)
        .unwrap_or_else(|| panic!("{name} not in {:#?}", output.resources));
    (&o.outcome, &o.detail)
}

/// Changes one call's result, given the call's index.
type RewriteFn = dyn Fn(usize, &mut OutputOrError) + Send + Sync;

/// Rewrites the typed result of one operation, for tests that need a behaviour of AWS that moto
/// does not have. `rewrite` gets the call's index (from 0) among this operation's calls.
#[derive(Clone)]
struct Rewrite {
    operation: &'static str,
    calls: Arc<AtomicUsize>,
    rewrite: Arc<RewriteFn>,
}

impl fmt::Debug for Rewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rewrite({})", self.operation)
    }
}

impl Rewrite {
    fn interceptor(
        operation: &'static str,
        rewrite: impl Fn(usize, &mut OutputOrError) + Send + Sync + 'static,
    ) -> SharedInterceptor {
        SharedInterceptor::new(Rewrite {
            operation,
            calls: Arc::default(),
            rewrite: Arc::new(rewrite),
        })
    }
}

impl Intercept for Rewrite {
    fn name(&self) -> &'static str {
        "test::Rewrite"
    }

    // After deserialization, before the retry decision: the typed output can be changed, and an
    // error replaced by a success is not retried.
    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Metadata>().map(|m| m.name()) != Some(self.operation) {
            return Ok(());
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(result) = context.output_or_error_mut() {
            (self.rewrite)(n, result);
        }
        Ok(())
    }
}

/// Keeps the body of every request of one operation.
#[derive(Clone, Debug, Default)]
struct Requests {
    operation: &'static str,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "test::Requests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Metadata>().map(|m| m.name()) == Some(self.operation) {
            let body = context.request().body().bytes().unwrap_or_default();
            self.bodies
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(body).into_owned());
        }
        Ok(())
    }
}

fn stacks_of(result: &mut OutputOrError) -> &mut Vec<aws_sdk_cloudformation::types::Stack> {
    let output = result.as_mut().expect("DescribeStacks succeeded");
    let output = output.downcast_mut::<DescribeStacksOutput>().unwrap();
    output.stacks.as_mut().unwrap()
}

#[tokio::test]
async fn deletes_matching_stacks_and_leaves_near_misses_and_protected_ones() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    create_stack(&setup, "lab-a", &[]).await;
    create_stack(&setup, "lab-b", &[]).await;
    // Near misses: the glob's prefix inside the name, and a matching stack that is protected.
    create_stack(&setup, "xlab-c", &[]).await;
    create_stack(&setup, "lab-keep", &[(DEFAULT_PROTECT_TAG, "yes")]).await;

    let dry = moto.aws(Mode::DryRun);
    let output = run(dry.clone(), r#"name = "lab-*""#, "").await.unwrap();
    assert!(dry.calls.mutating_operations().is_empty());
    assert_eq!(outcome_of(&output, "lab-a").0, &OutcomeKind::Planned);
    assert_eq!(outcome_of(&output, "lab-b").0, &OutcomeKind::Planned);
    assert_eq!(outcome_of(&output, "lab-keep").0, &OutcomeKind::Protected);
    assert_eq!(output.resources.len(), 3, "{:#?}", output.resources);
    let lab_a = &output
        .resources
        .iter()
        .find(|o| o.resource.name == "lab-a")
        .unwrap()
        .resource;
    assert!(
        lab_a.id.starts_with("arn:aws:cloudformation:"),
        "{}",
        lab_a.id
    );
    assert_eq!(lab_a.kind, "CloudFormation stack");
    assert_eq!(lab_a.attribute("status"), Some("CREATE_COMPLETE"));
    assert_eq!(lab_a.attribute("termination_protection"), Some("off"));
    assert!(lab_a.created.is_some());
    assert_eq!(
        status(&setup, "lab-a").await.as_deref(),
        Some("CREATE_COMPLETE")
    );

    let apply = moto.aws(Mode::Apply);
    let output = run(apply.clone(), r#"name = "lab-*""#, "").await.unwrap();
    assert_eq!(
        outcome_of(&output, "lab-a"),
        (&OutcomeKind::Done, "deleted")
    );
    assert_eq!(
        outcome_of(&output, "lab-b"),
        (&OutcomeKind::Done, "deleted")
    );
    assert_eq!(outcome_of(&output, "lab-keep").0, &OutcomeKind::Protected);
    assert_eq!(
        apply.calls.mutating_operations(),
        vec!["CloudFormation.DeleteStack", "CloudFormation.DeleteStack"]
    );
    assert_eq!(status(&setup, "lab-a").await, None);
    assert_eq!(status(&setup, "lab-b").await, None);
    assert_eq!(
        status(&setup, "xlab-c").await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert_eq!(
        status(&setup, "lab-keep").await.as_deref(),
        Some("CREATE_COMPLETE")
    );

    // A second run finds only the protected stack, and changes nothing.
    let again = moto.aws(Mode::Apply);
    let output = run(again.clone(), r#"name = "lab-*""#, "").await.unwrap();
    assert!(again.calls.mutating_operations().is_empty());
    assert_eq!(output.resources.len(), 1);
    assert_eq!(outcome_of(&output, "lab-keep").0, &OutcomeKind::Protected);
}

#[tokio::test]
async fn tags_and_exact_names_select_only_their_stack() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    create_stack(&setup, "one", &[("Project", "lab")]).await;
    create_stack(&setup, "two", &[("Project", "laboratory")]).await;
    create_stack(&setup, "three", &[]).await;
    create_stack(&setup, "workshop", &[]).await;
    create_stack(&setup, "workshop-2", &[]).await;

    let apply = moto.aws(Mode::Apply);
    let output = run(apply.clone(), r#"tags = { Project = "lab" }"#, "")
        .await
        .unwrap();
    assert_eq!(output.resources.len(), 1, "{:#?}", output.resources);
    assert_eq!(outcome_of(&output, "one").0, &OutcomeKind::Done);
    assert!(output.resources[0]
        .resource
        .matched_because
        .contains("Project=lab"));
    assert_eq!(status(&setup, "one").await, None);
    assert!(status(&setup, "two").await.is_some());
    assert!(status(&setup, "three").await.is_some());

    let output = run(moto.aws(Mode::Apply), r#"name = "workshop""#, "")
        .await
        .unwrap();
    assert_eq!(output.resources.len(), 1);
    assert_eq!(status(&setup, "workshop").await, None);
    assert!(status(&setup, "workshop-2").await.is_some());

    // The exact name is gone now: DescribeStacks says ValidationError, which matches nothing.
    let again = moto.aws(Mode::Apply);
    let output = run(again.clone(), r#"name = "workshop""#, "")
        .await
        .unwrap();
    assert!(output.resources.is_empty());
    assert!(
        output.summary.contains("no CloudFormation stack matched"),
        "{}",
        output.summary
    );
    assert!(again.calls.mutating_operations().is_empty());
}

#[test]
fn a_match_without_name_or_tags_is_refused() {
    let input = StepInput {
        step: "t".into(),
        selector: toml::from_str(r#"older_than = "24h""#).unwrap(),
        options: Default::default(),
    };
    let Err(errors) = (teardown::actions::cloudformation::DELETE_STACK.build)(&input) else {
        panic!("older_than alone must be refused");
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, vec!["match"]);
    assert!(
        errors[0].message.contains("`name` or `tags`"),
        "{}",
        errors[0].message
    );
    assert!(errors[0].hint.as_deref().unwrap().contains("name = "));
}

#[tokio::test]
async fn delete_failed_lists_each_failed_resource_and_is_retryable() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let arn = create_stack(&setup, "main", &[]).await;
    let vpc_id = setup
        .cloudformation
        .list_stack_resources()
        .stack_name("main")
        .send()
        .await
        .unwrap()
        .stack_resource_summaries()[0]
        .physical_resource_id()
        .unwrap()
        .to_string();

    // Injected: moto never fails a deletion. The look after DeleteStack (DescribeStacks call 1,
    // call 0 being `find`) reports DELETE_FAILED, and the events report why, newest first, as AWS
    // does when an interface Lambda still holds keeps the VPC.
    let stack_arn = arn.clone();
    let failed_status = Rewrite::interceptor("DescribeStacks", |n, result| {
        if n == 1 {
            let stack = &mut stacks_of(result)[0];
            stack.stack_status = Some(StackStatus::DeleteFailed);
        }
    });
    let reason = format!("The vpc '{vpc_id}' has dependencies and cannot be deleted.");
    let failed_reason = reason.clone();
    let failed_events = Rewrite::interceptor("DescribeStackEvents", move |_, result| {
        let output = result.as_mut().unwrap();
        let output = output.downcast_mut::<DescribeStackEventsOutput>().unwrap();
        let event = |logical: &str, physical: &str, kind: &str, status, why: &str| {
            StackEvent::builder()
                .stack_id(&stack_arn)
                .stack_name("main")
                .logical_resource_id(logical)
                .physical_resource_id(physical)
                .resource_type(kind)
                .resource_status(status)
                .resource_status_reason(why)
                .build()
        };
        let stack = "AWS::CloudFormation::Stack";
        let mut events = vec![
            event(
                "main",
                &stack_arn,
                stack,
                ResourceStatus::DeleteFailed,
                "The following resource(s) failed to delete: [Vpc].",
            ),
            event(
                "Vpc",
                &vpc_id,
                "AWS::EC2::VPC",
                ResourceStatus::DeleteFailed,
                &failed_reason,
            ),
            event(
                "main",
                &stack_arn,
                stack,
                ResourceStatus::DeleteInProgress,
                "User Initiated",
            ),
        ];
        events.append(output.stack_events.get_or_insert_with(Vec::new));
        output.stack_events = Some(events);
    });
    let aws = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![failed_status, failed_events],
            ..Default::default()
        },
    );
    let err = run(aws, r#"name = "main""#, "").await.unwrap_err();
    assert_eq!(err.kind, FailureKind::Retryable, "{err}");
    assert!(err.message.contains("stack main is DELETE_FAILED"), "{err}");
    assert!(
        err.message
            .contains(&format!("Vpc (AWS::EC2::VPC): {reason}")),
        "{err}"
    );
    assert!(err.message.contains("retain_on_failure = true"), "{err}");

    // moto deleted it all the same: the retry the engine would make finds nothing to do.
    let again = moto.aws(Mode::Apply);
    let output = run(again.clone(), r#"name = "main""#, "").await.unwrap();
    assert!(output.resources.is_empty());
    assert!(again.calls.mutating_operations().is_empty());
}

#[tokio::test]
async fn retain_on_failure_deletes_a_failed_stack_without_its_failed_resources_and_says_so() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    create_stack(&setup, "main", &[]).await;

    // Injected: moto never fails a deletion. `find` (DescribeStacks call 0) sees the stack
    // DELETE_FAILED, and ListStackResources reports its VPC as the resource that failed.
    let failed_status = Rewrite::interceptor("DescribeStacks", |n, result| {
        if n == 0 {
            stacks_of(result)[0].stack_status = Some(StackStatus::DeleteFailed);
        }
    });
    let failed_resource = Rewrite::interceptor("ListStackResources", |_, result| {
        let output = result.as_mut().unwrap();
        let output = output.downcast_mut::<ListStackResourcesOutput>().unwrap();
        for r in output.stack_resource_summaries.iter_mut().flatten() {
            if r.logical_resource_id.as_deref() == Some("Vpc") {
                r.resource_status = Some(ResourceStatus::DeleteFailed);
                r.resource_status_reason = Some("has dependencies".into());
            }
        }
    });
    let deletes = Requests {
        operation: "DeleteStack",
        ..Default::default()
    };
    let aws = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![
                failed_status,
                failed_resource,
                SharedInterceptor::new(deletes.clone()),
            ],
            ..Default::default()
        },
    );
    let output = run(aws, r#"name = "main""#, "retain_on_failure = true")
        .await
        .unwrap();
    let (outcome, detail) = outcome_of(&output, "main");
    assert_eq!(outcome, &OutcomeKind::Done);
    assert!(
        detail.contains("RETAINED: 1 resource left in the account, not deleted: Vpc (AWS::EC2::VPC): has dependencies"),
        "{detail}"
    );
    let bodies = deletes.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    assert!(
        bodies[0].contains("RetainResources.member.1=Vpc"),
        "{}",
        bodies[0]
    );
    assert_eq!(status(&setup, "main").await, None);
}

#[tokio::test]
async fn termination_protection_is_an_error_unless_the_step_turns_it_off() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    create_stack(&setup, "guarded", &[]).await;
    // Injected: moto neither reports nor enforces termination protection, and answers
    // UpdateTerminationProtection with a 500. DescribeStacks reports it on; the update succeeds.
    let protected = || {
        Rewrite::interceptor("DescribeStacks", |_, result| {
            for stack in stacks_of(result) {
                stack.enable_termination_protection = Some(true);
            }
        })
    };
    let update_works = Rewrite::interceptor("UpdateTerminationProtection", |_, result| {
        *result = Ok(Output::erase(
            UpdateTerminationProtectionOutput::builder()
                .stack_id("guarded")
                .build(),
        ));
    });

    let refused = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![protected()],
            ..Default::default()
        },
    );
    let err = run(refused.clone(), r#"name = "guarded""#, "")
        .await
        .unwrap_err();
    assert_eq!(err.kind, FailureKind::Fatal, "{err}");
    assert!(err.message.contains("termination protection"), "{err}");
    assert!(
        err.message
            .contains("`disable_termination_protection = true`"),
        "{err}"
    );
    assert!(refused.calls.mutating_operations().is_empty());
    assert_eq!(
        status(&setup, "guarded").await.as_deref(),
        Some("CREATE_COMPLETE")
    );

    let allowed = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![protected(), update_works],
            ..Default::default()
        },
    );
    let output = run(
        allowed.clone(),
        r#"name = "guarded""#,
        "disable_termination_protection = true",
    )
    .await
    .unwrap();
    assert_eq!(
        outcome_of(&output, "guarded").1,
        "termination protection turned off; deleted"
    );
    assert_eq!(
        allowed.calls.mutating_operations(),
        vec![
            "CloudFormation.UpdateTerminationProtection",
            "CloudFormation.DeleteStack"
        ]
    );
    assert_eq!(status(&setup, "guarded").await, None);
}

#[tokio::test]
async fn waits_while_the_deletion_runs_and_reports_the_resources_left() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    create_stack(&setup, "slow", &[]).await;
    // Injected: moto deletes a stack at once. The first look after DeleteStack (DescribeStacks
    // call 1) reports DELETE_IN_PROGRESS, and ListStackResources the VPC not deleted yet; the next
    // look, one poll later (5 s), is moto's own DELETE_COMPLETE.
    let in_progress = Rewrite::interceptor("DescribeStacks", |n, result| {
        if n == 1 {
            stacks_of(result)[0].stack_status = Some(StackStatus::DeleteInProgress);
        }
    });
    let resources = Rewrite::interceptor("ListStackResources", |_, result| {
        let summary = |id: &str, status| {
            aws_sdk_cloudformation::types::StackResourceSummary::builder()
                .logical_resource_id(id)
                .resource_type("AWS::EC2::Subnet")
                .resource_status(status)
                .build()
        };
        *result = Ok(Output::erase(
            ListStackResourcesOutput::builder()
                .stack_resource_summaries(summary("Vpc", ResourceStatus::DeleteInProgress))
                .stack_resource_summaries(summary("Subnet", ResourceStatus::DeleteComplete))
                .stack_resource_summaries(summary("Kept", ResourceStatus::DeleteSkipped))
                .build(),
        ));
    });
    let aws = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![in_progress, resources],
            ..Default::default()
        },
    );
    let started = std::time::Instant::now();
    let (result, progress) = run_with_progress(aws.clone(), r#"name = "slow""#, "").await;
    let output = result.unwrap();
    assert_eq!(outcome_of(&output, "slow").0, &OutcomeKind::Done);
    assert!(
        progress.iter().any(|m| m
            .contains("1 CloudFormation stack still DELETE_IN_PROGRESS, 1 of 3 resources left")),
        "{progress:#?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "it waited one poll"
    );
    let looks = aws
        .calls
        .records()
        .iter()
        .filter(|r| r.operation == "DescribeStacks")
        .count();
    assert_eq!(looks, 3, "find, DELETE_IN_PROGRESS, DELETE_COMPLETE");
    assert_eq!(status(&setup, "slow").await, None);
}

#[tokio::test]
async fn a_deletion_that_did_not_happen_is_a_fatal_error_not_a_wait() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    create_stack(&setup, "hooked", &[]).await;
    // Injected: moto has no hooks. A deletion that a hook refused leaves the stack in its previous
    // state: the look after DeleteStack reports UPDATE_COMPLETE, and the events the hook's verdict.
    let reverted = Rewrite::interceptor("DescribeStacks", |n, result| {
        if n == 1 {
            let stack = &mut stacks_of(result)[0];
            stack.stack_status = Some(StackStatus::UpdateComplete);
            stack.stack_status_reason = Some("Hook MyOrg::Guard::NoDelete failed".into());
        }
    });
    let hook_event = Rewrite::interceptor("DescribeStackEvents", |_, result| {
        let output = result.as_mut().unwrap();
        let output = output.downcast_mut::<DescribeStackEventsOutput>().unwrap();
        let refused = StackEvent::builder()
            .logical_resource_id("hooked")
            .resource_type("AWS::CloudFormation::Stack")
            .resource_status(ResourceStatus::UpdateComplete)
            .hook_type("MyOrg::Guard::NoDelete")
            .hook_status(HookStatus::HookCompleteFailed)
            .hook_status_reason("stacks tagged Env=prod cannot be deleted")
            .build();
        output
            .stack_events
            .get_or_insert_with(Vec::new)
            .insert(0, refused);
    });
    let aws = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![reverted, hook_event],
            ..Default::default()
        },
    );
    let started = std::time::Instant::now();
    let err = run(aws, r#"name = "hooked""#, "").await.unwrap_err();
    assert_eq!(err.kind, FailureKind::Fatal, "{err}");
    assert!(
        err.message
            .contains("stack hooked is UPDATE_COMPLETE after its deletion was requested"),
        "{err}"
    );
    assert!(
        err.message.contains(
            "(hook MyOrg::Guard::NoDelete failed: stacks tagged Env=prod cannot be deleted)"
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "no wait");
}
