//! `ec2.delete-network-interfaces` against moto: which interfaces it deletes, which it leaves, how
//! it waits for the ones AWS holds (injected: moto holds none), and when it detaches.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
use aws_sdk_ec2::types::{
    AttachmentStatus, NetworkInterfaceAttachment, NetworkInterfaceStatus, NetworkInterfaceType,
    ResourceType, Tag, TagSpecification,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextMut, Error, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::ErrorMetadata;
use teardown::actions::{StepInput, DEFAULT_PROTECT_TAG};
use teardown::aws::{Aws, AwsOptions, Mode};
use teardown::engine::{FailureKind, StepError, StepOutput};
use teardown::resource::OutcomeKind;

const LAMBDA_ENI: &str = "AWS Lambda VPC ENI-rotation-1f2e3d4c";

/// A stack that makes a VPC with one subnet and a security group, as the workshop's main stack
/// does.
const NETWORK_TEMPLATE: &str = r#"{"Resources":{
  "Vpc":{"Type":"AWS::EC2::VPC","Properties":{"CidrBlock":"10.0.0.0/16"}},
  "Subnet":{"Type":"AWS::EC2::Subnet","Properties":{"VpcId":{"Ref":"Vpc"},"CidrBlock":"10.0.1.0/24"}},
  "Sg":{"Type":"AWS::EC2::SecurityGroup","Properties":{"GroupDescription":"lambda","VpcId":{"Ref":"Vpc"}}}
}}"#;

/// Creates a network stack; returns its VPC and subnet ids.
async fn network_stack(aws: &Aws, name: &str) -> (String, String) {
    aws.cloudformation
        .create_stack()
        .stack_name(name)
        .template_body(NETWORK_TEMPLATE)
        .send()
        .await
        .unwrap();
    let resources = aws
        .cloudformation
        .list_stack_resources()
        .stack_name(name)
        .send()
        .await
        .unwrap();
    let id = |kind: &str| {
        resources
            .stack_resource_summaries()
            .iter()
            .find(|r| r.resource_type() == Some(kind))
            .and_then(|r| r.physical_resource_id())
            .unwrap()
            .to_string()
    };
    (id("AWS::EC2::VPC"), id("AWS::EC2::Subnet"))
}

async fn create_eni(aws: &Aws, subnet: &str, description: &str, tags: &[(&str, &str)]) -> String {
    let mut request = aws
        .ec2
        .create_network_interface()
        .subnet_id(subnet)
        .description(description);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::NetworkInterface);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        request = request.tag_specifications(spec.build());
    }
    let created = request.send().await.unwrap();
    created
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_string()
}

/// The interface's status, `None` once it is gone.
async fn eni_status(aws: &Aws, id: &str) -> Option<String> {
    let out = aws
        .ec2
        .describe_network_interfaces()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("network-interface-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.network_interfaces()
        .first()
        .and_then(|e| e.status())
        .map(|s| s.as_str().to_string())
}

/// Runs the action as a step, the way the plan runner does; returns its progress messages too.
async fn run(
    aws: Aws,
    selector: &str,
    options: &str,
) -> (Result<StepOutput, StepError>, Vec<String>) {
    support::run_action(
        Arc::new(aws),
        &teardown::actions::ec2::DELETE_NETWORK_INTERFACES,
        selector,
        options,
    )
    .await
}

fn outcome<'a>(output: &'a StepOutput, id: &str) -> Option<(&'a OutcomeKind, &'a str)> {
    output
        .resources
        .iter()
        .find(|o| o.resource.id == id)
        .map(|o| (&o.outcome, o.detail.as_str()))
}

#[tokio::test]
async fn deletes_lambda_interfaces_in_the_vpc_of_a_stack_and_nothing_else() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let (vpc, subnet) = network_stack(&setup, "main").await;
    let (_, other_subnet) = network_stack(&setup, "other").await;
    let target_1 = create_eni(&setup, &subnet, LAMBDA_ENI, &[]).await;
    let target_2 = create_eni(&setup, &subnet, "AWS Lambda VPC ENI-rotation-99aa", &[]).await;
    // Near misses: the same description in another VPC, another description (the pattern inside
    // it) in the same VPC, and a matching interface that is protected.
    let other_vpc = create_eni(&setup, &other_subnet, LAMBDA_ENI, &[]).await;
    let other_description = create_eni(&setup, &subnet, "x AWS Lambda VPC ENI-app", &[]).await;
    let protected = create_eni(&setup, &subnet, LAMBDA_ENI, &[(DEFAULT_PROTECT_TAG, "yes")]).await;
    let selector = r#"vpc_of_stack = "main"
description = "AWS Lambda VPC ENI*""#;

    let dry = moto.aws(Mode::DryRun);
    let output = run(dry.clone(), selector, "").await.0.unwrap();
    assert!(dry.calls.mutating_operations().is_empty());
    assert_eq!(output.resources.len(), 3, "{:#?}", output.resources);
    assert_eq!(
        outcome(&output, &target_1).unwrap().0,
        &OutcomeKind::Planned
    );
    assert_eq!(
        outcome(&output, &target_2).unwrap().0,
        &OutcomeKind::Planned
    );
    assert_eq!(
        outcome(&output, &protected).unwrap().0,
        &OutcomeKind::Protected
    );
    let found = &output
        .resources
        .iter()
        .find(|o| o.resource.id == target_1)
        .unwrap()
        .resource;
    assert_eq!(found.kind, "network interface");
    assert_eq!(found.name, target_1);
    assert_eq!(found.attribute("status"), Some("available"));
    assert_eq!(found.attribute("requester_managed"), Some("false"));
    assert_eq!(found.attribute("vpc"), Some(vpc.as_str()));
    assert!(
        found
            .matched_because
            .contains(r#"description matches "AWS Lambda VPC ENI*""#)
            && found.matched_because.contains("of stack main"),
        "{}",
        found.matched_because
    );

    let apply = moto.aws(Mode::Apply);
    let output = run(apply.clone(), selector, "").await.0.unwrap();
    assert_eq!(
        outcome(&output, &target_1),
        Some((&OutcomeKind::Done, "deleted"))
    );
    assert_eq!(
        outcome(&output, &target_2),
        Some((&OutcomeKind::Done, "deleted"))
    );
    assert_eq!(
        apply.calls.mutating_operations(),
        vec!["EC2.DeleteNetworkInterface", "EC2.DeleteNetworkInterface"]
    );
    assert_eq!(eni_status(&setup, &target_1).await, None);
    assert_eq!(eni_status(&setup, &target_2).await, None);
    for bystander in [&other_vpc, &other_description, &protected] {
        assert_eq!(
            eni_status(&setup, bystander).await.as_deref(),
            Some("available")
        );
    }

    let again = moto.aws(Mode::Apply);
    let output = run(again.clone(), selector, "").await.0.unwrap();
    assert!(again.calls.mutating_operations().is_empty());
    assert_eq!(
        output.resources.len(),
        1,
        "only the protected one: {:#?}",
        output.resources
    );

    // Once the stack is gone, nothing matches: not even a look at the account's interfaces.
    setup
        .cloudformation
        .delete_stack()
        .stack_name("main")
        .send()
        .await
        .unwrap();
    let after = moto.aws(Mode::Apply);
    let output = run(after.clone(), selector, "").await.0.unwrap();
    assert!(output.resources.is_empty());
    assert!(after.calls.mutating_operations().is_empty());
    assert!(!after
        .calls
        .records()
        .iter()
        .any(|r| r.operation == "DescribeNetworkInterfaces"));
}

#[tokio::test]
async fn subnet_and_tags_select_only_their_interfaces() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let (_, subnet) = network_stack(&setup, "main").await;
    let target = create_eni(&setup, &subnet, "worker", &[("Team", "lab")]).await;
    let other_team = create_eni(&setup, &subnet, "worker", &[("Team", "lab2")]).await;
    let untagged = create_eni(&setup, &subnet, "worker", &[]).await;

    let apply = moto.aws(Mode::Apply);
    let selector = format!("subnet = \"{subnet}\"\ntags = {{ Team = \"lab\" }}");
    let output = run(apply.clone(), &selector, "").await.0.unwrap();
    assert_eq!(output.resources.len(), 1, "{:#?}", output.resources);
    assert_eq!(
        outcome(&output, &target),
        Some((&OutcomeKind::Done, "deleted"))
    );
    assert_eq!(eni_status(&setup, &target).await, None);
    assert!(eni_status(&setup, &other_team).await.is_some());
    assert!(eni_status(&setup, &untagged).await.is_some());
}

#[test]
fn a_match_without_a_network_is_refused() {
    let input = StepInput {
        step: "t".into(),
        selector: toml::from_str(r#"description = "AWS Lambda VPC ENI*""#).unwrap(),
        options: Default::default(),
    };
    let Err(errors) = (teardown::actions::ec2::DELETE_NETWORK_INTERFACES.build)(&input) else {
        panic!("a description alone must be refused");
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, vec!["match"]);
    assert!(errors[0]
        .message
        .contains("`vpc`, `vpc_of_stack` or `subnet`"));
    assert!(errors[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("vpc_of_stack = "));
}

/// Makes DescribeNetworkInterfaces report one interface as held by AWS Lambda (in-use,
/// requester-managed, attached) for its first `times` calls.
#[derive(Debug)]
struct HeldByLambda {
    eni: String,
    times: usize,
    calls: AtomicUsize,
}

impl Intercept for HeldByLambda {
    fn name(&self) -> &'static str {
        "test::HeldByLambda"
    }

    // After deserialization: the typed output is changed in place, the rest is moto's answer.
    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Metadata>().map(|m| m.name()) != Some("DescribeNetworkInterfaces")
            || self.calls.fetch_add(1, Ordering::SeqCst) >= self.times
        {
            return Ok(());
        }
        let Some(Ok(output)) = context.output_or_error_mut() else {
            return Ok(());
        };
        let output = output
            .downcast_mut::<DescribeNetworkInterfacesOutput>()
            .unwrap();
        for eni in output.network_interfaces.iter_mut().flatten() {
            if eni.network_interface_id.as_deref() == Some(self.eni.as_str()) {
                eni.status = Some(NetworkInterfaceStatus::InUse);
                eni.requester_managed = Some(true);
                eni.requester_id = Some("AROAEXAMPLE:lambda-rotation".into());
                eni.interface_type = Some(NetworkInterfaceType::Lambda);
                eni.attachment = Some(
                    NetworkInterfaceAttachment::builder()
                        .attachment_id("ela-attach-0123")
                        .status(AttachmentStatus::Attached)
                        .build(),
                );
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn waits_for_aws_to_release_a_lambda_interface_and_never_detaches_it() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let (vpc, subnet) = network_stack(&setup, "main").await;
    let eni = create_eni(&setup, &subnet, LAMBDA_ENI, &[]).await;
    // Injected: moto never holds an interface. Lambda's stays in-use for the first three looks
    // (find, act, the first wait); the look after one poll (5 s) sees it released.
    let held = HeldByLambda {
        eni: eni.clone(),
        times: 3,
        calls: AtomicUsize::new(0),
    };
    let aws = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![SharedInterceptor::new(held)],
            ..Default::default()
        },
    );
    let started = Instant::now();
    let (result, progress) = run(aws.clone(), &format!("vpc = \"{vpc}\""), "").await;
    let output = result.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "it waited one poll"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "and noticed at the next"
    );
    assert_eq!(
        outcome(&output, &eni),
        Some((&OutcomeKind::Done, "deleted"))
    );
    assert!(
        progress
            .iter()
            .any(|m| m.starts_with("1 network interface still in-use")),
        "{progress:#?}"
    );
    // Never detached: one call that changes anything, the deletion once it was released.
    assert_eq!(
        aws.calls.mutating_operations(),
        vec!["EC2.DeleteNetworkInterface"]
    );
    assert_eq!(eni_status(&setup, &eni).await, None);
}

#[tokio::test]
async fn detaches_our_own_attached_interface_only_when_told_to() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let (vpc, subnet) = network_stack(&setup, "main").await;
    let eni = create_eni(&setup, &subnet, "app", &[]).await;
    let image = setup.ec2.describe_images().send().await.unwrap().images()[0]
        .image_id()
        .unwrap()
        .to_string();
    let instance = setup
        .ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    setup
        .ec2
        .attach_network_interface()
        .network_interface_id(&eni)
        .instance_id(&instance)
        .device_index(1)
        .send()
        .await
        .unwrap();
    assert_eq!(eni_status(&setup, &eni).await.as_deref(), Some("in-use"));
    let selector = format!("vpc = \"{vpc}\"\ndescription = \"app\"");

    let refused = moto.aws(Mode::Apply);
    let err = run(refused.clone(), &selector, "").await.0.unwrap_err();
    assert_eq!(err.kind, FailureKind::Fatal, "{err}");
    assert!(
        err.message.contains(&format!("attached to {instance}")),
        "{err}"
    );
    assert!(err.message.contains("`detach = true`"), "{err}");
    assert!(refused.calls.mutating_operations().is_empty());
    assert_eq!(eni_status(&setup, &eni).await.as_deref(), Some("in-use"));

    let allowed = moto.aws(Mode::Apply);
    let output = run(allowed.clone(), &selector, "detach = true")
        .await
        .0
        .unwrap();
    assert_eq!(
        outcome(&output, &eni),
        Some((&OutcomeKind::Done, "deleted"))
    );
    assert_eq!(
        allowed.calls.mutating_operations(),
        vec!["EC2.DetachNetworkInterface", "EC2.DeleteNetworkInterface"]
    );
    assert_eq!(eni_status(&setup, &eni).await, None);
}

/// Makes the first DeleteNetworkInterface of one interface fail with AWS's
/// `InvalidNetworkInterface.InUse`. So that moto does not delete it all the same, that request is
/// sent for an interface that does not exist (an id of the same length), and moto's NotFound answer
/// is replaced by AWS's InUse one.
#[derive(Debug)]
struct InUseOnce {
    eni: String,
    done: AtomicUsize,
}

fn is_delete(cfg: &ConfigBag) -> bool {
    cfg.load::<Metadata>().map(|m| m.name()) == Some("DeleteNetworkInterface")
}

impl Intercept for InUseOnce {
    fn name(&self) -> &'static str {
        "test::InUseOnce"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !is_delete(cfg) || self.done.load(Ordering::SeqCst) > 0 {
            return Ok(());
        }
        let request = context.request_mut();
        let body = String::from_utf8_lossy(request.body().bytes().unwrap()).into_owned();
        let decoy = format!("eni-{}", "0".repeat(self.eni.len() - 4));
        *request.body_mut() = SdkBody::from(body.replace(&self.eni, &decoy));
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !is_delete(cfg) || self.done.fetch_add(1, Ordering::SeqCst) > 0 {
            return Ok(());
        }
        let in_use =
            aws_sdk_ec2::operation::delete_network_interface::DeleteNetworkInterfaceError::generic(
                ErrorMetadata::builder()
                    .code("InvalidNetworkInterface.InUse")
                    .message(format!("Interface: [{}] in use.", self.eni))
                    .build(),
            );
        if let Some(result) = context.output_or_error_mut() {
            *result = Err(OrchestratorError::operation(Error::erase(in_use)));
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_interface_aws_says_is_in_use_is_deleted_once_it_is_not() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    let (vpc, subnet) = network_stack(&setup, "main").await;
    let eni = create_eni(&setup, &subnet, LAMBDA_ENI, &[]).await;
    // Injected (see InUseOnce): the first deletion is refused as in use, as AWS does for an
    // interface that got attached after `find` looked.
    let in_use = InUseOnce {
        eni: eni.clone(),
        done: AtomicUsize::new(0),
    };
    let aws = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![SharedInterceptor::new(in_use)],
            ..Default::default()
        },
    );
    let output = run(aws.clone(), &format!("vpc = \"{vpc}\""), "")
        .await
        .0
        .unwrap();
    assert_eq!(
        outcome(&output, &eni),
        Some((&OutcomeKind::Done, "deleted"))
    );
    assert_eq!(
        aws.calls.mutating_operations(),
        vec!["EC2.DeleteNetworkInterface", "EC2.DeleteNetworkInterface"]
    );
    assert_eq!(eni_status(&setup, &eni).await, None);
}
