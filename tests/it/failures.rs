//! When AWS is slow or says no, against the emulated workshop. moto does not throttle, never keeps
//! an interface in use and has no IAM by default, so each of these strict behaviours is injected
//! in front of the SDK with the `Faults` interceptor (tests/it/support/faults.rs), on read-only calls
//! only: a replaced answer arrives after the emulator acted, so injecting on a mutating call would
//! test a different thing (an action whose effect happened but whose answer was lost).

use crate::support;

use std::path::Path;
use std::sync::Arc;

use support::faults::{Answer, Faults, Rule};
use support::fixture::{self, WorkshopNames};
use teardown::aws::{Aws, AwsOptions, Mode};
use teardown::engine::{self, FailureKind, RunOptions, RunSummary, StepOutcome};
use teardown::event::{Event, EventKind, EventSink};
use teardown::plan::{self, PhaseSelection, Plan};
use teardown::resource::OutcomeKind;
use tokio_util::sync::CancellationToken;

const PLAN: &str = "tests/it/plans/named-workshop.toml";

async fn run(plan: &Plan, aws: Aws) -> (RunSummary, Vec<Event>) {
    let selected = plan.select(&PhaseSelection::default()).unwrap();
    let dag = teardown::session::runnable(plan, selected.dag, Arc::new(aws), None);
    let (sink, mut receiver) = EventSink::channel();
    let summary = engine::run(
        &dag,
        &RunOptions::default(),
        &sink,
        &CancellationToken::new(),
    )
    .await;
    drop(sink);
    let mut events = Vec::new();
    while let Some(e) = receiver.recv().await {
        events.push(e);
    }
    (summary, events)
}

fn with_faults(moto: &support::Moto, faults: &Faults) -> Aws {
    moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![faults.shared()],
            // The SDK's retries as in production, but waiting a tenth as long between them.
            retry_backoff: Some(std::time::Duration::from_millis(100)),
            ..AwsOptions::default()
        },
    )
}

#[tokio::test]
async fn throttling_on_a_third_of_the_reads_does_not_fail_the_teardown() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let provisioner = moto.aws(Mode::Apply);
    let workshop = fixture::provision_workshop(&provisioner, &WorkshopNames::default()).await;
    let faults = Faults::new(vec![
        Rule::on("*", "Describe*", usize::MAX, Answer::throttle()).every(3),
        Rule::on("*", "List*", usize::MAX, Answer::throttle()).every(3),
    ]);
    let plan = plan::load(Path::new(PLAN), &[]).unwrap();
    let (summary, _) = run(&plan, with_faults(&moto, &faults)).await;
    assert!(summary.all_succeeded(), "{:#?}", summary.steps);
    // Since issue 15 the run reads less (no poll where the answer to a change says it is done),
    // so fewer reads are there to throttle: still several on every service the run reads.
    assert!(
        faults.injected() >= 6,
        "only {} throttles injected",
        faults.injected()
    );
    fixture::assert_workshop_gone(&provisioner, &workshop).await;
}

#[tokio::test]
async fn access_denied_fails_the_step_at_once_and_names_the_permission() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let provisioner = moto.aws(Mode::Apply);
    fixture::provision_workshop(&provisioner, &WorkshopNames::default()).await;
    let faults = Faults::new(vec![Rule::on(
        "ECR",
        "DescribeRepositories",
        usize::MAX,
        Answer::error(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/lab is not authorized to perform: ecr:DescribeRepositories",
        ),
    )]);
    let plan = plan::load(Path::new(PLAN), &[]).unwrap();
    let (summary, _) = run(&plan, with_faults(&moto, &faults)).await;
    let step = summary.step("delete-repository").unwrap();
    match &step.outcome {
        StepOutcome::Failed { error, kind } => {
            assert_eq!(*kind, FailureKind::Fatal);
            assert!(error.contains("ecr:DescribeRepositories"), "{error}");
            assert!(
                error.contains("lack the permission for ECR.DescribeRepositories"),
                "{error}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    // Not retried: an access problem does not go away by asking again.
    assert_eq!(step.attempts, 1);
    assert_eq!(faults.injected(), 1);
    // The other branches went on.
    assert_eq!(
        summary.step("delete-main-stack").unwrap().outcome,
        StepOutcome::Succeeded
    );
}

/// A DescribeNetworkInterfaces answer in which these interfaces are attached to a Lambda and in
/// use, as AWS answers for 20 to 45 minutes after the function is deleted.
fn enis_in_use(vpc: &str, subnet: &str, enis: &[String]) -> String {
    let items: String = enis
        .iter()
        .enumerate()
        .map(|(i, eni)| {
            format!(
                "<item><networkInterfaceId>{eni}</networkInterfaceId><subnetId>{subnet}</subnetId><vpcId>{vpc}</vpcId>\
                 <availabilityZone>us-west-2a</availabilityZone><description>AWS Lambda VPC ENI-rotation-{i}</description>\
                 <ownerId>123456789012</ownerId><requesterId>AROAEXAMPLE:rotation</requesterId><requesterManaged>true</requesterManaged>\
                 <status>in-use</status><macAddress>02:00:00:00:00:0{i}</macAddress><privateIpAddress>10.0.0.{}</privateIpAddress>\
                 <sourceDestCheck>true</sourceDestCheck><interfaceType>lambda</interfaceType>\
                 <attachment><attachmentId>ela-attach-{i}</attachmentId><deviceIndex>1</deviceIndex><status>attached</status>\
                 <instanceOwnerId>amazon-aws</instanceOwnerId><deleteOnTermination>false</deleteOnTermination></attachment>\
                 <groupSet/><tagSet/><privateIpAddressesSet/><ipv6AddressesSet/></item>",
                10 + i
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeNetworkInterfacesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
         <requestId>fault-injected</requestId><networkInterfaceSet>{items}</networkInterfaceSet></DescribeNetworkInterfacesResponse>"
    )
}

/// The workshop plan with short deadlines, so that a wait past its deadline fails in seconds.
fn plan_with_short_eni_timeout() -> Plan {
    let text = std::fs::read_to_string(PLAN).unwrap().replace(
        "after = [\"delete-rotation-stack\"]\ntimeout = \"60m\"",
        "after = [\"delete-rotation-stack\"]\ntimeout = \"4s\"",
    );
    assert!(
        text.contains("timeout = \"4s\""),
        "the plan changed: update this test"
    );
    plan::parse(Path::new(PLAN), &text, &[]).unwrap()
}

#[tokio::test]
async fn lambda_enis_held_in_use_are_waited_for_and_deleted_on_release() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let provisioner = moto.aws(Mode::Apply);
    let workshop = fixture::provision_workshop(&provisioner, &WorkshopNames::default()).await;
    // The first four looks at the interfaces (finding them, a look at each before deleting it,
    // the first poll) say they are in use; the next sees the truth (available), and the step must
    // delete them then. Each more would cost a longer poll (5, 10, 20, 30 s) of the suite's time.
    let faults = Faults::new(vec![Rule::on(
        "EC2",
        "DescribeNetworkInterfaces",
        4,
        Answer::Body(enis_in_use(
            &workshop.vpc_id,
            &workshop.subnet_id,
            &workshop.lambda_enis,
        )),
    )]);
    let plan = plan::load(Path::new(PLAN), &[]).unwrap();
    let (summary, events) = run(&plan, with_faults(&moto, &faults)).await;
    assert!(summary.all_succeeded(), "{:#?}", summary.steps);
    assert_eq!(faults.injected(), 4);
    // The wait said what it waited for.
    let progress: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepProgress { step, message, .. } if step == "delete-lambda-enis" => {
                Some(message.clone())
            }
            _ => None,
        })
        .collect();
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::StepProgress { step, message, .. } if step == "delete-lambda-enis" && message.contains("in-use"))), "{progress:#?}");
    fixture::assert_workshop_gone(&provisioner, &workshop).await;
}

#[tokio::test]
async fn a_wait_past_its_deadline_fails_clearly_and_skips_its_dependents() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let provisioner = moto.aws(Mode::Apply);
    let workshop = fixture::provision_workshop(&provisioner, &WorkshopNames::default()).await;
    let faults = Faults::new(vec![Rule::on(
        "EC2",
        "DescribeNetworkInterfaces",
        usize::MAX,
        Answer::Body(enis_in_use(
            &workshop.vpc_id,
            &workshop.subnet_id,
            &workshop.lambda_enis,
        )),
    )]);
    let plan = plan_with_short_eni_timeout();
    let (summary, _) = run(&plan, with_faults(&moto, &faults)).await;
    match &summary.step("delete-lambda-enis").unwrap().outcome {
        StepOutcome::Failed { error, kind } => {
            assert_eq!(*kind, FailureKind::TimedOut, "{error}");
            assert!(error.contains("in-use"), "{error}");
            assert!(error.contains(&workshop.lambda_enis[0]), "{error}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        summary.step("delete-main-stack").unwrap().outcome,
        StepOutcome::Skipped {
            reason: "blocked by delete-lambda-enis".into()
        }
    );
    // The main stack is still there: nothing ran past the failed wait.
    let stacks = provisioner
        .cloudformation
        .describe_stacks()
        .stack_name(&workshop.main_stack)
        .send()
        .await
        .unwrap();
    assert_eq!(stacks.stacks().len(), 1);
}

#[tokio::test]
async fn a_main_stack_that_fails_to_delete_runs_its_handler_and_is_deleted_on_retry() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let provisioner = moto.aws(Mode::Apply);
    let workshop = fixture::provision_workshop(&provisioner, &WorkshopNames::default()).await;
    // The first look at the main stack after its DeleteStack says DELETE_FAILED because a subnet
    // still has a network interface, as AWS says while Lambda holds one (moto deletes the stack
    // regardless). The lookup by ARN is the one after the deletion was asked for.
    let failed = format!(
        "<DescribeStacksResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><DescribeStacksResult><Stacks><member>\
         <StackId>{id}</StackId><StackName>{name}</StackName><CreationTime>2026-11-22T00:00:00Z</CreationTime>\
         <StackStatus>DELETE_FAILED</StackStatus><StackStatusReason>The following resource(s) failed to delete: [PrivateSubnet].</StackStatusReason>\
         </member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>fault-injected</RequestId></ResponseMetadata></DescribeStacksResponse>",
        id = workshop.main_stack_id,
        name = workshop.main_stack
    );
    let faults = Faults::new(vec![Rule::on(
        "CloudFormation",
        "DescribeStacks",
        1,
        Answer::Body(failed),
    )
    .when_request_contains(&format!("stack%2F{}%2F", workshop.main_stack))]);
    let plan = plan::load(Path::new(PLAN), &[]).unwrap();
    let (summary, events) = run(&plan, with_faults(&moto, &faults)).await;
    assert_eq!(
        faults.injected(),
        1,
        "the DELETE_FAILED answer was not used"
    );
    assert!(summary.all_succeeded(), "{:#?}", summary.steps);
    let handled: Vec<&Event> = events
        .iter()
        .filter(|e| {
            matches!(&e.kind, EventKind::HandlerStarted { step, handler, .. }
            if step == "delete-main-stack" && handler == "delete-lambda-enis")
        })
        .collect();
    assert_eq!(
        handled.len(),
        1,
        "the ENI step ran once as the main stack's handler"
    );
    if let EventKind::HandlerStarted { error, .. } = &handled[0].kind {
        assert!(error.contains("DELETE_FAILED"), "{error}");
    }
    fixture::assert_workshop_gone(&provisioner, &workshop).await;
}

/// A step retried after its wait lost its answer still waits for what its first attempt changed,
/// though its own look no longer finds it: ECS lists a task being stopped under the desired status
/// STOPPED, so the second attempt's ListTasks (desired RUNNING) does not see it, and before this
/// was fixed the step reported "nothing to do" while the task was still stopping, and let
/// delete-cluster go on.
///
/// Injected in front of the SDK: StopTask answers as AWS does (the task still RUNNING, desired
/// STOPPED; moto stops it at once, and the call did happen there), and the first poll of the task
/// gets five server errors in a row (the SDK's five attempts), which fails the step's attempt.
#[tokio::test]
async fn a_retried_stop_tasks_still_waits_for_the_tasks_its_first_attempt_stopped() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let provisioner = moto.aws(Mode::Apply);
    let workshop = fixture::provision_workshop(&provisioner, &WorkshopNames::default()).await;
    let faults = Faults::new(vec![
        Rule::on(
            "ECS",
            "StopTask",
            1,
            Answer::Body(r#"{"task":{"lastStatus":"RUNNING","desiredStatus":"STOPPED"}}"#.into()),
        ),
        // The first DescribeTasks is the step's look for the tasks; the next five, its first
        // poll and the SDK's four retries of it.
        Rule::on(
            "ECS",
            "DescribeTasks",
            5,
            Answer::error(500, "ServerException", "Service unavailable"),
        )
        .after(1),
    ]);
    let plan = plan::load(Path::new(PLAN), &[]).unwrap();
    let (summary, _) = run(&plan, with_faults(&moto, &faults)).await;
    assert!(summary.all_succeeded(), "{:#?}", summary.steps);
    assert_eq!(faults.injected(), 6);
    let stop = summary.step("stop-tasks").unwrap();
    assert_eq!(stop.attempts, 2, "{stop:#?}");
    // The second attempt reports the task its first one stopped, and saw it STOPPED.
    let output = stop.output.as_ref().unwrap();
    let tasks: Vec<_> = output
        .resources
        .iter()
        .filter(|o| o.resource.kind == "ECS task")
        .collect();
    assert_eq!(tasks.len(), 1, "{output:#?}");
    assert_eq!(tasks[0].outcome, OutcomeKind::Done, "{output:#?}");
    fixture::assert_workshop_gone(&provisioner, &workshop).await;
}
