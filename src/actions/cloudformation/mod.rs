//! CloudFormation: `cloudformation.delete-stack` (its own file), and what other parts of teardown
//! need to know about CloudFormation's answers: [`is_missing_stack`], used by the EC2 action's
//! `vpc_of_stack` and by the plan's stack lookups.

mod delete_stack;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use self::delete_stack::DELETE_STACK;

/// Every resource a stack lists, all pages (what `init` writes a plan from and the
/// `stack-resource` lookups read).
pub async fn stack_resources(
    aws: &crate::aws::Aws,
    stack: &str,
) -> Result<
    Vec<aws_sdk_cloudformation::types::StackResourceSummary>,
    aws_sdk_cloudformation::error::SdkError<
        aws_sdk_cloudformation::operation::list_stack_resources::ListStackResourcesError,
    >,
> {
    aws.cloudformation
        .list_stack_resources()
        .stack_name(stack)
        .into_paginator()
        .items()
        .send()
        .collect()
        .await
}

/// True when CloudFormation says the stack does not exist. It has no error code of its own: it is
/// a `ValidationError` ("Stack with id X does not exist"), the code of every bad input too, so the
/// message is the only way to tell. This is the one place that reads it.
pub fn is_missing_stack(err: &impl ProvideErrorMetadata) -> bool {
    err.code() == Some("ValidationError")
        && err
            .message()
            .is_some_and(|m| m.starts_with("Stack with id") && m.ends_with("does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError;
    use aws_smithy_types::error::ErrorMetadata;

    fn error(code: &str, message: &str) -> DescribeStacksError {
        DescribeStacksError::generic(ErrorMetadata::builder().code(code).message(message).build())
    }

    #[test]
    fn a_missing_stack_is_told_apart_from_other_validation_errors() {
        assert!(is_missing_stack(&error(
            "ValidationError",
            "Stack with id lab-main does not exist"
        )));
        assert!(!is_missing_stack(&error(
            "ValidationError",
            "Stack [lab-main] cannot be deleted while TerminationProtection is enabled"
        )));
        assert!(!is_missing_stack(&error(
            "AccessDenied",
            "Stack with id lab-main does not exist"
        )));
    }
}
