//! `cloudformation.delete-stack`: deletes the matched stacks and waits for DELETE_COMPLETE. A
//! stack that ends DELETE_FAILED is reported resource by resource, from its latest deletion
//! attempt's events; termination protection and `retain_on_failure` are opt-in.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudformation::types::{HookStatus, ResourceStatus, Stack, StackEvent, StackStatus};

use super::is_missing_stack;
use crate::actions::{
    Acted, Action, ActionSpec, FieldKind, FieldSpec, InputError, Pending, PollPolicy,
    ResourceFilter, StepInput, COMMON_FILTER_FIELDS,
};
use crate::aws::{to_chrono, Aws, AwsError, ErrorClass};
use crate::resource::Resource;
use crate::util::count_of;

/// `cloudformation.delete-stack`: deletes the matched stacks and waits for DELETE_COMPLETE; a
/// DELETE_FAILED stack is reported resource by resource.
pub static DELETE_STACK: ActionSpec = ActionSpec {
    name: "cloudformation.delete-stack",
    summary: "Delete CloudFormation stacks and wait for DELETE_COMPLETE (a failure lists each resource that failed, and why)",
    selector: &COMMON_FILTER_FIELDS,
    options: &[
        FieldSpec {
            name: "disable_termination_protection",
            kind: FieldKind::Bool,
            required: false,
            help: "turn termination protection off before deleting; without it a protected stack is an error",
        },
        FieldSpec {
            name: "retain_on_failure",
            kind: FieldKind::Bool,
            required: false,
            help: "delete a DELETE_FAILED stack again, leaving the resources that failed in the account (the result lists them)",
        },
    ],
    permissions: &[
        "cloudformation:DescribeStacks",
        "cloudformation:ListStackResources",
        "cloudformation:DescribeStackEvents",
        "cloudformation:UpdateTerminationProtection",
        "cloudformation:DeleteStack",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        let filter = input.filter("name");
        // `older_than` alone would match every stack in the region.
        if filter.name.is_none() && filter.tags.is_empty() {
            return Err(vec![InputError::at(
                &["match"],
                "`match` needs `name` or `tags`: without them it would match every stack in the region",
            )
            .hint("add `name = \"MyStack\"` (or a glob such as \"lab-*\"), or `tags = { Project = \"lab\" }`")]);
        }
        Ok(Arc::new(DeleteStack {
            filter,
            disable_termination_protection: input.flag("disable_termination_protection"),
            retain_on_failure: input.flag("retain_on_failure"),
        }))
    },
};

struct DeleteStack {
    filter: ResourceFilter,
    disable_termination_protection: bool,
    retain_on_failure: bool,
}

const KIND: &str = "CloudFormation stack";
const STATUS: &str = "status";
const TERMINATION_PROTECTION: &str = "termination_protection";
const NESTED_IN: &str = "nested_in";

/// One resource of a stack that failed to delete.
#[derive(Debug, PartialEq, Eq)]
struct FailedResource {
    logical_id: String,
    resource_type: String,
    reason: String,
}

impl std::fmt::Display for FailedResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.logical_id, self.resource_type)?;
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

fn failed_list(failed: &[FailedResource]) -> String {
    failed
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// True for the events of the stack itself (rather than of one of its resources). Nested stacks are
/// resources of type `AWS::CloudFormation::Stack` too: the physical id tells them apart.
fn is_stack_event(event: &StackEvent, stack_id: &str) -> bool {
    event.physical_resource_id() == Some(stack_id)
}

/// From a stack's events, newest first: the resources that failed in its latest deletion attempt
/// (each once, with its latest reason), and the stack's own failure reason.
fn failures_of_latest_deletion(
    events: &[StackEvent],
    stack_id: &str,
) -> (Vec<FailedResource>, Option<String>) {
    let mut failed: Vec<FailedResource> = Vec::new();
    let mut stack_reason = None;
    for event in events {
        let status = event.resource_status();
        if is_stack_event(event, stack_id) {
            // The start of the latest attempt: older failures were retried since.
            if status == Some(&ResourceStatus::DeleteInProgress) {
                break;
            }
            if status == Some(&ResourceStatus::DeleteFailed) && stack_reason.is_none() {
                stack_reason = event.resource_status_reason().map(str::to_string);
            }
            continue;
        }
        if status != Some(&ResourceStatus::DeleteFailed) {
            continue;
        }
        let logical_id = event.logical_resource_id().unwrap_or("?");
        if failed.iter().any(|f| f.logical_id == logical_id) {
            continue;
        }
        failed.push(FailedResource {
            logical_id: logical_id.to_string(),
            resource_type: event.resource_type().unwrap_or("?").to_string(),
            reason: event
                .resource_status_reason()
                .unwrap_or_default()
                .to_string(),
        });
    }
    (failed, stack_reason)
}

fn reason_of(event: &StackEvent) -> Option<&str> {
    event.resource_status_reason().filter(|r| !r.is_empty())
}

/// Why a stack is not being deleted, from its latest events (newest first): a failed hook, else
/// a failed resource, else the stack's own reason, else the latest event that gives one.
fn why_not_deleted(events: &[StackEvent], stack: &Stack) -> String {
    let hook = events.iter().find_map(|e| {
        let failed = matches!(
            e.hook_status(),
            Some(HookStatus::HookCompleteFailed | HookStatus::HookFailed)
        );
        let reason = e.hook_status_reason().filter(|r| failed && !r.is_empty())?;
        Some(format!(
            "hook {} failed: {reason}",
            e.hook_type().unwrap_or("?")
        ))
    });
    let failed = || {
        events.iter().find_map(|e| {
            let status = e.resource_status()?.as_str();
            let reason = reason_of(e).filter(|_| status.ends_with("_FAILED"))?;
            Some(format!(
                "{} {status}: {reason}",
                e.logical_resource_id().unwrap_or("?")
            ))
        })
    };
    let latest = || {
        events.iter().find_map(|e| {
            Some(format!(
                "latest event: {} {}: {}",
                e.logical_resource_id().unwrap_or("?"),
                e.resource_status().map(|s| s.as_str()).unwrap_or("?"),
                reason_of(e)?
            ))
        })
    };
    hook.or_else(failed)
        .or_else(|| stack.stack_status_reason().map(str::to_string))
        .or_else(latest)
        .unwrap_or_else(|| "CloudFormation gave no reason".into())
}

impl DeleteStack {
    /// The stack as a resource, if the filter matches it and it is not deleted already.
    fn resource_of(&self, stack: &Stack, now: chrono::DateTime<chrono::Utc>) -> Option<Resource> {
        let (Some(id), Some(name)) = (stack.stack_id(), stack.stack_name()) else {
            return None;
        };
        let status = stack.stack_status()?;
        // Deleted stacks stay listed for 90 days: they are not there any more.
        if status == &StackStatus::DeleteComplete {
            return None;
        }
        let created = stack.creation_time().and_then(to_chrono);
        let tags = stack
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect();
        let why = self.filter.matches(name, &tags, created, now)?;
        let protection = if stack.enable_termination_protection() == Some(true) {
            "on"
        } else {
            "off"
        };
        let mut resource = Resource::new(KIND, id, name, why)
            .with_attribute(STATUS, status.as_str())
            .with_attribute(TERMINATION_PROTECTION, protection);
        if let Some(parent) = stack.parent_id() {
            resource = resource.with_attribute(NESTED_IN, parent);
        }
        resource.created = created;
        resource.tags = tags;
        Some(resource)
    }

    /// The stack's resources that are DELETE_FAILED now (what `retain_resources` may name).
    async fn failed_resources(
        &self,
        aws: &Aws,
        stack_id: &str,
    ) -> Result<Vec<FailedResource>, AwsError> {
        let mut items = aws
            .cloudformation
            .list_stack_resources()
            .stack_name(stack_id)
            .into_paginator()
            .items()
            .send();
        let mut failed = Vec::new();
        while let Some(item) = items.next().await {
            let item =
                item.map_err(|e| AwsError::from_sdk("CloudFormation.ListStackResources", e))?;
            if item.resource_status() != Some(&ResourceStatus::DeleteFailed) {
                continue;
            }
            let Some(logical_id) = item.logical_resource_id() else {
                continue;
            };
            failed.push(FailedResource {
                logical_id: logical_id.to_string(),
                resource_type: item.resource_type().unwrap_or("?").to_string(),
                reason: item
                    .resource_status_reason()
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        Ok(failed)
    }

    /// `(left, total)`: the stack's resources not deleted yet, of all. Retained ones
    /// (DELETE_SKIPPED) will never be deleted, so they are not left.
    async fn resources_left(&self, aws: &Aws, stack_id: &str) -> Result<(usize, usize), AwsError> {
        let mut items = aws
            .cloudformation
            .list_stack_resources()
            .stack_name(stack_id)
            .into_paginator()
            .items()
            .send();
        let (mut left, mut total) = (0, 0);
        while let Some(item) = items.next().await {
            let item =
                item.map_err(|e| AwsError::from_sdk("CloudFormation.ListStackResources", e))?;
            total += 1;
            if !matches!(
                item.resource_status(),
                Some(ResourceStatus::DeleteComplete | ResourceStatus::DeleteSkipped)
            ) {
                left += 1;
            }
        }
        Ok((left, total))
    }

    /// The events of the latest deletion attempt, newest first: pages are read only until the
    /// attempt's start, since a stack may have thousands of older events.
    async fn latest_deletion_events(
        &self,
        aws: &Aws,
        stack_id: &str,
    ) -> Result<Vec<StackEvent>, AwsError> {
        let mut items = aws
            .cloudformation
            .describe_stack_events()
            .stack_name(stack_id)
            .into_paginator()
            .items()
            .send();
        let mut events = Vec::new();
        while let Some(event) = items.next().await {
            let event =
                event.map_err(|e| AwsError::from_sdk("CloudFormation.DescribeStackEvents", e))?;
            let start = is_stack_event(&event, stack_id)
                && event.resource_status() == Some(&ResourceStatus::DeleteInProgress);
            events.push(event);
            if start {
                break;
            }
        }
        Ok(events)
    }

    /// The error for a DELETE_FAILED stack: each resource that failed and why. Retryable, so that
    /// the step's failure handler (e.g. delete what holds the resource) and retry can run.
    async fn deletion_failed(&self, aws: &Aws, resource: &Resource, stack: &Stack) -> AwsError {
        let (failed, stack_reason) = match self.latest_deletion_events(aws, &resource.id).await {
            Ok(events) => failures_of_latest_deletion(&events, &resource.id),
            Err(e) => return e,
        };
        let detail = if failed.is_empty() {
            stack_reason
                .or_else(|| stack.stack_status_reason().map(str::to_string))
                .unwrap_or_else(|| "CloudFormation gave no reason".into())
        } else {
            format!(
                "{} failed to delete: {}",
                count_of(failed.len(), "resource"),
                failed_list(&failed)
            )
        };
        let what_next = if self.retain_on_failure {
            "the next attempt deletes the stack without them (retain_on_failure)"
        } else {
            "remove what holds them and run again, or set `retain_on_failure = true` to delete the stack without them"
        };
        AwsError {
            class: ErrorClass::Retryable,
            code: None,
            operation: "CloudFormation.DeleteStack".into(),
            message: format!(
                "stack {} is DELETE_FAILED: {detail}; {what_next}",
                resource.name
            ),
        }
    }

    /// The error for a stack that settled in a status other than deleted after we asked for its
    /// deletion (e.g. a deletion a hook blocked): waiting will not change it.
    async fn deletion_reverted(
        &self,
        aws: &Aws,
        resource: &Resource,
        stack: &Stack,
        status: &str,
    ) -> AwsError {
        // The newest page is enough: the reason is among the latest events.
        let first_page = aws
            .cloudformation
            .describe_stack_events()
            .stack_name(&resource.id)
            .send()
            .await;
        let events = match first_page {
            Ok(page) => page.stack_events,
            Err(e) => return AwsError::from_sdk("CloudFormation.DescribeStackEvents", e),
        };
        let reason = why_not_deleted(events.as_deref().unwrap_or_default(), stack);
        AwsError {
            class: ErrorClass::Fatal,
            code: None,
            operation: "CloudFormation.DeleteStack".into(),
            message: format!(
                "stack {} is {status} after its deletion was requested: CloudFormation did not delete it ({reason})",
                resource.name
            ),
        }
    }

    /// `None` when the stack is deleted, its status while the deletion runs, an error when it
    /// failed or stopped.
    async fn deletion_status(
        &self,
        aws: &Aws,
        resource: &Resource,
    ) -> Result<Option<String>, AwsError> {
        // By stack id: a deleted stack is still described (DELETE_COMPLETE), and a new stack of
        // the same name is never mistaken for this one.
        let output = match aws
            .cloudformation
            .describe_stacks()
            .stack_name(&resource.id)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if is_missing_stack(&e) => return Ok(None),
            Err(e) => return Err(AwsError::from_sdk("CloudFormation.DescribeStacks", e)),
        };
        let Some(stack) = output.stacks().first() else {
            return Ok(None);
        };
        let Some(status) = stack.stack_status() else {
            return Ok(None);
        };
        match status {
            StackStatus::DeleteComplete => Ok(None),
            StackStatus::DeleteInProgress => {
                let (left, total) = self.resources_left(aws, &resource.id).await?;
                Ok(Some(format!(
                    "DELETE_IN_PROGRESS, {left} of {total} resources left"
                )))
            }
            StackStatus::DeleteFailed => Err(self.deletion_failed(aws, resource, stack).await),
            // Still busy with something else (e.g. a rollback): the deletion follows, or the stack
            // settles in a status that the next look reports.
            other if other.as_str().ends_with("_IN_PROGRESS") => {
                Ok(Some(other.as_str().to_string()))
            }
            other => Err(self
                .deletion_reverted(aws, resource, stack, other.as_str())
                .await),
        }
    }
}

/// The error for a stack whose termination protection is on.
fn protected_error(name: &str) -> AwsError {
    AwsError {
        class: ErrorClass::Fatal,
        code: None,
        operation: "CloudFormation.DeleteStack".into(),
        message: format!(
            "stack {name} has termination protection on; set `disable_termination_protection = true` on the step to turn it off and delete the stack"
        ),
    }
}

#[async_trait]
impl Action for DeleteStack {
    fn resource_kind(&self) -> &'static str {
        KIND
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let mut request = aws.cloudformation.describe_stacks();
        if let Some(name) = self.filter.name.as_ref().and_then(|p| p.exact()) {
            request = request.stack_name(name);
        }
        let mut items = request.into_paginator().items().send();
        let now = chrono::Utc::now();
        let mut found = Vec::new();
        while let Some(stack) = items.next().await {
            let stack = match stack {
                Ok(stack) => stack,
                // Only an exact name can be missing: a stack that is not there matches nothing.
                Err(e) if is_missing_stack(&e) => return Ok(found),
                Err(e) => return Err(AwsError::from_sdk("CloudFormation.DescribeStacks", e)),
            };
            found.extend(self.resource_of(&stack, now));
        }
        Ok(found)
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        let mut done = Vec::new();
        if resource.attribute(TERMINATION_PROTECTION) == Some("on") {
            if !self.disable_termination_protection {
                return Err(protected_error(&resource.name));
            }
            let result = aws
                .cloudformation
                .update_termination_protection()
                .stack_name(&resource.id)
                .enable_termination_protection(false)
                .send()
                .await;
            match result {
                Ok(_) => done.push("termination protection turned off".to_string()),
                Err(e) if is_missing_stack(&e) => return Ok(Acted::AlreadyGone),
                Err(e) => {
                    return Err(AwsError::from_sdk(
                        "CloudFormation.UpdateTerminationProtection",
                        e,
                    ))
                }
            }
        }
        // The stack id, not the name: deletes the stack that `find` saw, never a newer namesake.
        let mut request = aws.cloudformation.delete_stack().stack_name(&resource.id);
        let mut retained = Vec::new();
        if resource.attribute(STATUS) == Some(StackStatus::DeleteFailed.as_str()) {
            if self.retain_on_failure {
                retained = self.failed_resources(aws, &resource.id).await?;
                for r in &retained {
                    request = request.retain_resources(&r.logical_id);
                }
            } else {
                done.push("deletion retried after DELETE_FAILED".to_string());
            }
        }
        match request.send().await {
            Ok(_) => {}
            Err(e) if is_missing_stack(&e) => return Ok(Acted::AlreadyGone),
            Err(e) => {
                let e = AwsError::from_sdk("CloudFormation.DeleteStack", e);
                // Protection turned on after `find` looked: say what to do, as above.
                if e.message.contains("TerminationProtection") {
                    return Err(protected_error(&resource.name));
                }
                return Err(e);
            }
        }
        done.push("deleted".to_string());
        if !retained.is_empty() {
            // Loud on purpose: these stay in the account, and nothing else will say so.
            done.push(format!(
                "RETAINED: {} left in the account, not deleted: {}",
                count_of(retained.len(), "resource"),
                failed_list(&retained)
            ));
        }
        Ok(Acted::Done(done.join("; ")))
    }

    fn timeout_advice(&self, _waiting: &[Resource], continue_later: &str) -> String {
        format!("CloudFormation is still deleting the stack's resources: its events (`aws cloudformation describe-stack-events --stack-name NAME`) say which resource it waits for (often a Lambda function's VPC network interfaces, which AWS releases 20-45 min after the function is deleted, or a database's final snapshot). The deletion goes on without teardown: {continue_later} later, or raise the step's `timeout`")
    }

    async fn still_pending(&self, aws: &Aws, acted: &[Resource]) -> Result<Vec<Pending>, AwsError> {
        let mut pending = Vec::new();
        for resource in acted {
            if let Some(status) = self.deletion_status(aws, resource).await? {
                pending.push(Pending {
                    id: resource.id.clone(),
                    status,
                });
            }
        }
        Ok(pending)
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

    fn event(logical: &str, physical: &str, status: ResourceStatus, reason: &str) -> StackEvent {
        StackEvent::builder()
            .logical_resource_id(logical)
            .physical_resource_id(physical)
            .resource_type(if physical.starts_with("arn:") {
                "AWS::CloudFormation::Stack"
            } else {
                "AWS::EC2::VPC"
            })
            .resource_status(status)
            .resource_status_reason(reason)
            .build()
    }

    #[test]
    fn only_the_latest_deletion_attempt_counts() {
        let arn = "arn:aws:cloudformation:us-west-2:123456789012:stack/lab/1";
        // Newest first, as DescribeStackEvents returns them.
        let events = [
            event(
                "lab",
                arn,
                ResourceStatus::DeleteFailed,
                "The following resource(s) failed to delete: [Vpc].",
            ),
            event(
                "Vpc",
                "vpc-1",
                ResourceStatus::DeleteFailed,
                "has dependencies",
            ),
            event(
                "Vpc",
                "vpc-1",
                ResourceStatus::DeleteFailed,
                "older reason, same attempt",
            ),
            event("lab", arn, ResourceStatus::DeleteInProgress, ""),
            event(
                "Subnet",
                "subnet-1",
                ResourceStatus::DeleteFailed,
                "an earlier attempt",
            ),
        ];
        let (failed, reason) = failures_of_latest_deletion(&events, arn);
        assert_eq!(
            failed,
            vec![FailedResource {
                logical_id: "Vpc".into(),
                resource_type: "AWS::EC2::VPC".into(),
                reason: "has dependencies".into(),
            }]
        );
        assert_eq!(
            reason.as_deref(),
            Some("The following resource(s) failed to delete: [Vpc].")
        );
    }

    const LAB: &str = "arn:aws:cloudformation:us-west-2:123456789012:stack/lab/1";

    fn stack(status: StackStatus) -> Stack {
        Stack::builder()
            .stack_id(LAB)
            .stack_name("lab")
            .stack_status(status)
            .build()
    }

    fn delete_stack(selector: &str) -> DeleteStack {
        let input = crate::actions::test_input(selector, "");
        DeleteStack {
            filter: input.filter("name"),
            disable_termination_protection: false,
            retain_on_failure: false,
        }
    }

    #[test]
    fn a_failed_resource_is_shown_with_its_type_and_reason() {
        let vpc = FailedResource {
            logical_id: "Vpc".into(),
            resource_type: "AWS::EC2::VPC".into(),
            reason: "has dependencies".into(),
        };
        let silent = FailedResource {
            logical_id: "Subnet".into(),
            resource_type: "AWS::EC2::Subnet".into(),
            reason: String::new(),
        };
        assert_eq!(
            failed_list(&[vpc, silent]),
            "Vpc (AWS::EC2::VPC): has dependencies; Subnet (AWS::EC2::Subnet)"
        );
    }

    #[test]
    fn why_a_stack_was_not_deleted_prefers_a_failed_hook_then_a_failed_resource() {
        let failed_resource = event("Vpc", "vpc-1", ResourceStatus::DeleteFailed, "in use");
        let hook = StackEvent::builder()
            .logical_resource_id("lab")
            .hook_type("Org::Guard::Hook")
            .hook_status(HookStatus::HookCompleteFailed)
            .hook_status_reason("deletion blocked")
            .build();
        let stack = stack(StackStatus::UpdateComplete);
        assert_eq!(
            why_not_deleted(&[failed_resource.clone(), hook], &stack),
            "hook Org::Guard::Hook failed: deletion blocked"
        );
        assert_eq!(
            why_not_deleted(&[failed_resource], &stack),
            "Vpc DELETE_FAILED: in use"
        );
        let quiet = event("lab", LAB, ResourceStatus::UpdateComplete, "");
        assert_eq!(
            why_not_deleted(std::slice::from_ref(&quiet), &stack),
            "CloudFormation gave no reason"
        );
        let with_reason = Stack::builder().stack_status_reason("rolled back").build();
        assert_eq!(why_not_deleted(&[quiet], &with_reason), "rolled back");
    }

    #[test]
    fn a_deleted_stack_is_not_found_again() {
        let now = chrono::Utc::now();
        let action = delete_stack("name = \"lab\"");
        assert!(action
            .resource_of(&stack(StackStatus::DeleteComplete), now)
            .is_none());
        let failed = action
            .resource_of(&stack(StackStatus::DeleteFailed), now)
            .expect("a DELETE_FAILED stack is still there");
        assert_eq!(failed.attribute(STATUS), Some("DELETE_FAILED"));
        assert_eq!(failed.attribute(TERMINATION_PROTECTION), Some("off"));
        assert_eq!(failed.attribute(NESTED_IN), None);
    }

    #[test]
    fn a_stack_records_its_protection_and_its_parent() {
        let now = chrono::Utc::now();
        let nested = Stack::builder()
            .stack_id(LAB)
            .stack_name("lab-Network-1")
            .stack_status(StackStatus::CreateComplete)
            .enable_termination_protection(true)
            .parent_id("arn:aws:cloudformation:us-west-2:123456789012:stack/lab/0")
            .build();
        let found = delete_stack("name = \"lab-*\"")
            .resource_of(&nested, now)
            .expect("the glob matches");
        assert_eq!(found.attribute(TERMINATION_PROTECTION), Some("on"));
        assert_eq!(
            found.attribute(NESTED_IN),
            Some("arn:aws:cloudformation:us-west-2:123456789012:stack/lab/0")
        );
        assert!(delete_stack("name = \"other\"")
            .resource_of(&nested, now)
            .is_none());
    }

    #[test]
    fn age_alone_would_match_every_stack_and_is_refused() {
        let Err(errors) =
            (DELETE_STACK.build)(&crate::actions::test_input("older_than = \"1d\"", ""))
        else {
            panic!("older_than alone must be refused");
        };
        assert_eq!(errors[0].path, vec!["match"]);
        assert!((DELETE_STACK.build)(&crate::actions::test_input(
            "tags = { Project = \"lab\" }",
            ""
        ))
        .is_ok());
    }
}
