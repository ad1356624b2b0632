//! `ec2.delete-network-interfaces`: deletes the matched VPC network interfaces, always within one
//! network (`vpc`, `vpc_of_stack` or `subnet`). Available ones go at once; AWS-managed ones
//! (Lambda's) are waited for until AWS releases them; our own attached ones are detached only with
//! `detach = true`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, NetworkInterface, NetworkInterfaceStatus, NetworkInterfaceType};

use crate::actions::cloudformation::is_missing_stack;
use crate::actions::{
    Acted, Action, ActionSpec, FieldKind, FieldSpec, InputError, Pattern, Pending, PollPolicy,
    ResourceFilter, Rule, StepInput, COMMON_FILTER_FIELDS,
};
use crate::aws::{Aws, AwsError, ErrorClass};
use crate::resource::Resource;

/// `ec2.delete-network-interfaces`: deletes the matched interfaces once they are available; waits
/// for AWS to release the ones it manages (Lambda's), and detaches our own only when asked.
pub static DELETE_NETWORK_INTERFACES: ActionSpec = ActionSpec {
    name: "ec2.delete-network-interfaces",
    summary: "Delete VPC network interfaces: available ones at once, AWS-managed ones (Lambda's) once AWS releases them",
    selector: &[
        FieldSpec {
            name: "description",
            kind: FieldKind::Pattern,
            required: false,
            default: None,
            help: "the interface's description, exact or a glob, e.g. \"AWS Lambda VPC ENI*\"",
        },
        FieldSpec {
            name: "vpc",
            kind: FieldKind::Text,
            required: false,
            default: None,
            help: "only interfaces in this VPC (vpc-...)",
        },
        FieldSpec {
            name: "vpc_of_stack",
            kind: FieldKind::Text,
            required: false,
            default: None,
            help: "only interfaces in the VPC (AWS::EC2::VPC) of this CloudFormation stack; none once the stack or its VPC is gone",
        },
        FieldSpec {
            name: "subnet",
            kind: FieldKind::Text,
            required: false,
            default: None,
            help: "only interfaces in this subnet (subnet-...)",
        },
        COMMON_FILTER_FIELDS[1],
    ],
    options: &[FieldSpec {
        name: "detach",
        kind: FieldKind::Bool,
        required: false,
        default: Some("false"),
        help: "detach our own attached interfaces first (never AWS-managed ones); without it an attached interface is an error",
    }],
    rules: &[Rule::MatchNeedsOneOf(&["vpc", "vpc_of_stack", "subnet"])],
    permissions: &[
        "ec2:DescribeNetworkInterfaces",
        "ec2:DetachNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "cloudformation:ListStackResources",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        let mut errors = Vec::new();
        let scope = |key: &str, errors: &mut Vec<InputError>| {
            let value = input.text(key)?;
            if value.trim().is_empty() {
                errors.push(
                    InputError::at(&["match", key], format!("`{key}` is empty"))
                        .hint("an empty value would match nothing: check the variable it comes from"),
                );
            }
            Some(value)
        };
        let vpc = scope("vpc", &mut errors);
        let vpc_of_stack = scope("vpc_of_stack", &mut errors);
        let subnet = scope("subnet", &mut errors);
        // A description alone would sweep every interface of the account that happens to match.
        if vpc.is_none() && vpc_of_stack.is_none() && subnet.is_none() {
            errors.push(
                InputError::at(
                    &["match"],
                    "`match` needs `vpc`, `vpc_of_stack` or `subnet`: network interfaces are only deleted within one network",
                )
                .hint("add `vpc_of_stack = \"MyStack\"` (the stack that made the VPC), `vpc = \"vpc-...\"` or `subnet = \"subnet-...\"`"),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut filter = input.filter("description");
        Ok(Arc::new(DeleteNetworkInterfaces {
            description: filter.name.take(),
            tags: filter,
            vpc,
            vpc_of_stack,
            subnet,
            detach: input.flag("detach"),
        }))
    },
};

struct DeleteNetworkInterfaces {
    description: Option<Pattern>,
    /// The tag conditions only (no name, no age: interfaces have neither).
    tags: ResourceFilter,
    vpc: Option<String>,
    vpc_of_stack: Option<String>,
    subnet: Option<String>,
    detach: bool,
}

const KIND: &str = "network interface";
const STATUS: &str = "status";
const REQUESTER_MANAGED: &str = "requester_managed";
const REQUESTER_ID: &str = "requester_id";
const ATTACHMENT_ID: &str = "attachment_id";
const VPC: &str = "vpc";
const DESCRIPTION: &str = "description";

/// EC2 filter values take `*` and `?` as wildcards, like our globs, but not `[...]`: such a glob is
/// only applied locally.
fn ec2_wildcard(pattern: &Pattern) -> Option<&str> {
    (!pattern.as_str().contains('[')).then(|| pattern.as_str())
}

fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

fn is_lambdas(eni: &NetworkInterface) -> bool {
    eni.interface_type() == Some(&NetworkInterfaceType::Lambda)
        || eni
            .description()
            .is_some_and(|d| d.starts_with("AWS Lambda VPC ENI"))
}

/// Interfaces the step must wait for: attached, or on their way in or out of an attachment.
fn is_busy(status: &NetworkInterfaceStatus) -> bool {
    matches!(
        status,
        NetworkInterfaceStatus::InUse
            | NetworkInterfaceStatus::Detaching
            | NetworkInterfaceStatus::Attaching
            | NetworkInterfaceStatus::Associated
    )
}

impl DeleteNetworkInterfaces {
    /// The VPC ids that `vpc_of_stack`'s stack made; empty when the stack (or its VPC) is gone.
    async fn vpcs_of_stack(&self, aws: &Aws, stack: &str) -> Result<Vec<String>, AwsError> {
        let mut items = aws
            .cloudformation
            .list_stack_resources()
            .stack_name(stack)
            .into_paginator()
            .items()
            .send();
        let mut vpcs = Vec::new();
        while let Some(item) = items.next().await {
            let item = match item {
                Ok(item) => item,
                // The stack is deleted already: so are its VPC and the interfaces in it. Matching
                // nothing keeps a second run a no-op.
                Err(e) if is_missing_stack(&e) => return Ok(Vec::new()),
                Err(e) => return Err(AwsError::from_sdk("CloudFormation.ListStackResources", e)),
            };
            if item.resource_type() != Some("AWS::EC2::VPC")
                || item.resource_status()
                    == Some(&aws_sdk_cloudformation::types::ResourceStatus::DeleteComplete)
            {
                continue;
            }
            if let Some(id) = item.physical_resource_id().filter(|id| !id.is_empty()) {
                vpcs.push(id.to_string());
            }
        }
        Ok(vpcs)
    }

    /// The interface as a resource, if every condition holds.
    fn resource_of(&self, eni: &NetworkInterface, scope: &str) -> Option<Resource> {
        let id = eni.network_interface_id()?;
        let description = eni.description().unwrap_or_default();
        let tags: BTreeMap<String, String> = eni
            .tag_set()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect();
        let mut why = Vec::new();
        if let Some(pattern) = &self.description {
            if !pattern.matches(description) {
                return None;
            }
            why.push(pattern.describe("description"));
        }
        let tag_why = self.tags.matches(id, &tags, None, chrono::Utc::now())?;
        if !tag_why.is_empty() {
            why.push(tag_why);
        }
        why.push(scope.to_string());
        let mut resource = Resource::new(KIND, id, id, why.join(", "))
            .with_attribute(
                STATUS,
                eni.status().map(|s| s.as_str()).unwrap_or("unknown"),
            )
            .with_attribute(
                REQUESTER_MANAGED,
                eni.requester_managed().unwrap_or(false).to_string(),
            )
            .with_attribute(DESCRIPTION, description);
        if let Some(requester) = eni.requester_id() {
            resource = resource.with_attribute(REQUESTER_ID, requester);
        }
        if let Some(attachment) = eni.attachment().and_then(|a| a.attachment_id()) {
            resource = resource.with_attribute(ATTACHMENT_ID, attachment);
        }
        if let Some(vpc) = eni.vpc_id() {
            resource = resource.with_attribute(VPC, vpc);
        }
        resource.tags = tags;
        Some(resource)
    }

    /// The interfaces with these ids that still exist, as they are now. A filter rather than
    /// `NetworkInterfaceIds`, which fails the whole call when one of them is gone.
    async fn describe(&self, aws: &Aws, ids: &[String]) -> Result<Vec<NetworkInterface>, AwsError> {
        let mut found = Vec::new();
        // EC2 takes up to 200 values per filter.
        for chunk in ids.chunks(100) {
            let mut items = aws
                .ec2
                .describe_network_interfaces()
                .filters(filter("network-interface-id", chunk.iter().cloned()))
                .into_paginator()
                .items()
                .send();
            while let Some(eni) = items.next().await {
                match eni {
                    Ok(eni) => found.push(eni),
                    Err(e) => {
                        let e = AwsError::from_sdk("EC2.DescribeNetworkInterfaces", e);
                        if e.class == ErrorClass::NotFound {
                            break;
                        }
                        return Err(e);
                    }
                }
            }
        }
        Ok(found)
    }

    async fn delete(&self, aws: &Aws, id: &str) -> Result<Acted, AwsError> {
        let result = aws
            .ec2
            .delete_network_interface()
            .network_interface_id(id)
            .send()
            .await;
        // EC2 models no error variants: its error codes are the typed information.
        match result {
            // EC2 deletes an interface within the call: nothing to wait for.
            Ok(_) => Ok(Acted::Finished("deleted".into())),
            Err(e) => {
                let e = AwsError::from_sdk("EC2.DeleteNetworkInterface", e);
                match e.code.as_deref() {
                    Some("InvalidNetworkInterfaceID.NotFound") => Ok(Acted::AlreadyGone),
                    // Attached since we looked: wait for it like any interface in use.
                    Some("InvalidNetworkInterface.InUse") => Ok(Acted::NotYet(
                        "in use: AWS refused to delete it while attached".into(),
                    )),
                    _ => Err(e),
                }
            }
        }
    }
}

#[async_trait]
impl Action for DeleteNetworkInterfaces {
    fn resource_kind(&self) -> &'static str {
        KIND
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let mut scope = Vec::new();
        let mut vpcs = self.vpc.clone().map(|vpc| vec![vpc]);
        if let Some(stack) = &self.vpc_of_stack {
            let of_stack = self.vpcs_of_stack(aws, stack).await?;
            // Both given: both must hold.
            vpcs = Some(match vpcs {
                Some(given) => given.into_iter().filter(|v| of_stack.contains(v)).collect(),
                None => of_stack,
            });
        }
        let mut filters = Vec::new();
        if let Some(vpcs) = &vpcs {
            if vpcs.is_empty() {
                return Ok(Vec::new());
            }
            let of = match &self.vpc_of_stack {
                Some(stack) => format!(" (of stack {stack})"),
                None => String::new(),
            };
            scope.push(format!("in {}{of}", vpcs.join(", ")));
            filters.push(filter("vpc-id", vpcs.iter().cloned()));
        }
        if let Some(subnet) = &self.subnet {
            scope.push(format!("in {subnet}"));
            filters.push(filter("subnet-id", [subnet.clone()]));
        }
        // Narrows what AWS returns; the same conditions are checked again locally below.
        if let Some(description) = self.description.as_ref().and_then(ec2_wildcard) {
            filters.push(filter("description", [description]));
        }
        for (key, value) in &self.tags.tags {
            if let Some(value) = ec2_wildcard(value) {
                filters.push(filter(&format!("tag:{key}"), [value]));
            }
        }
        let scope = scope.join(", ");
        let mut items = aws
            .ec2
            .describe_network_interfaces()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send();
        let mut found = Vec::new();
        while let Some(eni) = items.next().await {
            let eni = eni.map_err(|e| AwsError::from_sdk("EC2.DescribeNetworkInterfaces", e))?;
            found.extend(self.resource_of(&eni, &scope));
        }
        Ok(found)
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        // Available when found: deleted straight away. Attached since, AWS refuses
        // (InvalidNetworkInterface.InUse) and it is waited for like any interface in use; gone
        // since, AWS says so (InvalidNetworkInterfaceID.NotFound). Only an interface found busy is
        // looked up again first, to tell who holds it.
        if resource.attribute(STATUS) == Some(NetworkInterfaceStatus::Available.as_str()) {
            return self.delete(aws, &resource.id).await;
        }
        // Looked up again: `act` also runs after a wait, when what `find` saw is out of date.
        let Some(eni) = self
            .describe(aws, std::slice::from_ref(&resource.id))
            .await?
            .pop()
        else {
            return Ok(Acted::AlreadyGone);
        };
        let Some(status) = eni.status() else {
            return self.delete(aws, &resource.id).await;
        };
        if !is_busy(status) {
            return self.delete(aws, &resource.id).await;
        }
        if status == &NetworkInterfaceStatus::Detaching {
            return Ok(Acted::NotYet("detaching".into()));
        }
        if eni.requester_managed() == Some(true) {
            // AWS owns the attachment: detaching it ourselves would break the service that uses it
            // (or be refused); AWS lets go of it once its owner is gone.
            return Ok(Acted::NotYet(if is_lambdas(&eni) {
                "in use by AWS Lambda; AWS releases it up to ~45 min after the function is deleted"
                    .into()
            } else {
                format!(
                    "in use by an AWS service ({}); AWS releases it once the resource that owns it is deleted",
                    eni.requester_id().unwrap_or("requester unknown")
                )
            }));
        }
        let attachment = eni.attachment();
        if !self.detach {
            return Err(AwsError {
                class: ErrorClass::Fatal,
                code: None,
                operation: "EC2.DeleteNetworkInterface".into(),
                message: format!(
                    "network interface {} is {} (attached to {}); set `detach = true` on the step to detach it first",
                    resource.id,
                    status.as_str(),
                    attachment
                        .and_then(|a| a.instance_id())
                        .unwrap_or("an instance")
                ),
            });
        }
        let Some(attachment_id) = attachment.and_then(|a| a.attachment_id()) else {
            return Ok(Acted::NotYet(format!(
                "{} without an attachment to detach",
                status.as_str()
            )));
        };
        let result = aws
            .ec2
            .detach_network_interface()
            .attachment_id(attachment_id)
            .force(false)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Acted::NotYet("detaching".into())),
            Err(e) => {
                let e = AwsError::from_sdk("EC2.DetachNetworkInterface", e);
                match e.code.as_deref() {
                    // Detached meanwhile: the next look finds it available.
                    Some("InvalidAttachmentID.NotFound") => Ok(Acted::NotYet("detaching".into())),
                    Some("InvalidNetworkInterfaceID.NotFound") => Ok(Acted::AlreadyGone),
                    _ => Err(e),
                }
            }
        }
    }

    fn timeout_advice(&self, waiting: &[Resource], continue_later: &str) -> String {
        let lambdas = waiting.iter().any(|r| {
            r.attribute(DESCRIPTION)
                .is_some_and(|d| d.starts_with("AWS Lambda VPC ENI"))
        });
        let managed: Vec<&str> = waiting
            .iter()
            .filter(|r| r.attribute(REQUESTER_MANAGED) == Some("true"))
            .filter_map(|r| r.attribute(REQUESTER_ID))
            .collect();
        if lambdas {
            // What a person needs most at this point: it is AWS, it will pass, and how to go on.
            format!("AWS Lambda holds them: AWS releases them 20-45 min after the function is deleted; {continue_later} later, or raise the step's timeout")
        } else if !managed.is_empty() {
            format!("the AWS service that made them holds them ({}) until the resource that uses them is deleted; delete that first, then {continue_later}, or raise the step's timeout", managed.join(", "))
        } else {
            format!("they are still attached (or detaching) to an instance or endpoint: detach or delete what uses them (or set `detach = true` on the step for our own), then {continue_later}, or raise the step's timeout")
        }
    }

    async fn still_pending(&self, aws: &Aws, acted: &[Resource]) -> Result<Vec<Pending>, AwsError> {
        let ids: Vec<String> = acted.iter().map(|r| r.id.clone()).collect();
        Ok(self
            .describe(aws, &ids)
            .await?
            .into_iter()
            .filter_map(|eni| {
                let status = eni.status().filter(|s| is_busy(s))?;
                Some(Pending {
                    id: eni.network_interface_id()?.to_string(),
                    status: status.as_str().to_string(),
                })
            })
            .collect())
    }

    fn poll_policy(&self) -> PollPolicy {
        PollPolicy {
            first: std::time::Duration::from_secs(5),
            cap: std::time::Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_globs_stay_local() {
        let star = Pattern::parse("AWS Lambda VPC ENI*").unwrap();
        assert_eq!(ec2_wildcard(&star), Some("AWS Lambda VPC ENI*"));
        let bracket = Pattern::parse("eni-[ab]*").unwrap();
        assert_eq!(ec2_wildcard(&bracket), None);
    }

    use aws_sdk_ec2::types::{NetworkInterfaceAttachment, Tag};

    fn action(selector: &str) -> DeleteNetworkInterfaces {
        let input = crate::actions::test_input(selector, "");
        let mut filter = input.filter("description");
        DeleteNetworkInterfaces {
            description: filter.name.take(),
            tags: filter,
            vpc: input.text("vpc"),
            vpc_of_stack: None,
            subnet: None,
            detach: false,
        }
    }

    fn lambda_eni() -> NetworkInterface {
        NetworkInterface::builder()
            .network_interface_id("eni-1")
            .description("AWS Lambda VPC ENI-rotation-1a2b")
            .status(NetworkInterfaceStatus::InUse)
            .requester_managed(true)
            .requester_id("AROAEXAMPLE:rotation")
            .vpc_id("vpc-1")
            .attachment(
                NetworkInterfaceAttachment::builder()
                    .attachment_id("ela-attach-1")
                    .build(),
            )
            .tag_set(Tag::builder().key("Lab").value("1").build())
            .build()
    }

    #[test]
    fn attached_and_moving_interfaces_are_waited_for() {
        assert!(is_busy(&NetworkInterfaceStatus::InUse));
        assert!(is_busy(&NetworkInterfaceStatus::Detaching));
        assert!(is_busy(&NetworkInterfaceStatus::Attaching));
        assert!(is_busy(&NetworkInterfaceStatus::Associated));
        assert!(!is_busy(&NetworkInterfaceStatus::Available));
    }

    #[test]
    fn lambdas_interfaces_are_known_by_type_or_description() {
        assert!(is_lambdas(&lambda_eni()));
        let by_type = NetworkInterface::builder()
            .interface_type(NetworkInterfaceType::Lambda)
            .build();
        assert!(is_lambdas(&by_type));
        let own = NetworkInterface::builder()
            .description("lab bastion")
            .interface_type(NetworkInterfaceType::Interface)
            .build();
        assert!(!is_lambdas(&own));
    }

    #[test]
    fn an_interface_records_what_act_needs_and_why_it_matched() {
        let found = action("description = \"AWS Lambda VPC ENI*\"\ntags = { Lab = \"1\" }")
            .resource_of(&lambda_eni(), "in vpc-1")
            .expect("description and tag match");
        assert_eq!(found.id, "eni-1");
        assert_eq!(
            found.matched_because,
            "description matches \"AWS Lambda VPC ENI*\", tag Lab=1, in vpc-1"
        );
        assert_eq!(found.attribute(STATUS), Some("in-use"));
        assert_eq!(found.attribute(REQUESTER_MANAGED), Some("true"));
        assert_eq!(found.attribute(REQUESTER_ID), Some("AROAEXAMPLE:rotation"));
        assert_eq!(found.attribute(ATTACHMENT_ID), Some("ela-attach-1"));
        assert_eq!(found.attribute(VPC), Some("vpc-1"));
        assert!(action("description = \"lab *\"")
            .resource_of(&lambda_eni(), "in vpc-1")
            .is_none());
        assert!(action("tags = { Lab = \"2\" }")
            .resource_of(&lambda_eni(), "in vpc-1")
            .is_none());
    }

    #[test]
    fn an_empty_scope_is_refused_rather_than_matching_nothing() {
        let Err(errors) =
            (DELETE_NETWORK_INTERFACES.build)(&crate::actions::test_input("vpc = \"\"", ""))
        else {
            panic!("an empty vpc must be refused");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, vec!["match", "vpc"]);
        assert!(
            (DELETE_NETWORK_INTERFACES.build)(&crate::actions::test_input(
                "subnet = \"subnet-1\"",
                ""
            ))
            .is_ok()
        );
    }
}
