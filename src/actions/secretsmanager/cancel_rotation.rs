//! `secretsmanager.cancel-rotation`: turns off the rotation of the matched secrets, and nothing
//! else: the secret, its value and its rotation settings stay.
//!
//! A step of its own so that what only needs the rotation off (deleting the function that
//! rotates the secret) need not wait for the secret's deletion too: the two go side by side.
//! `secretsmanager.delete-secret` cancels the rotation itself when no such step did.

use std::sync::Arc;

use async_trait::async_trait;

use super::{cancel_rotation, matching_secrets, KIND, ROTATION_ENABLED, SECRET_SELECTOR};
use crate::actions::{Acted, Action, ActionSpec, InputError, StepInput};
use crate::aws::{Aws, AwsError};
use crate::resource::Resource;

/// `secretsmanager.cancel-rotation`: turns off the rotation of the matched secrets.
pub static CANCEL_ROTATION: ActionSpec = ActionSpec {
    name: "secretsmanager.cancel-rotation",
    summary:
        "Turn off the rotation of secrets (the secret, its value and its rotation settings stay)",
    selector: SECRET_SELECTOR,
    options: &[],
    rules: &[],
    permissions: &[
        "secretsmanager:ListSecrets",
        "secretsmanager:DescribeSecret",
        "secretsmanager:CancelRotateSecret",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Ok(Arc::new(CancelRotation {
            filter: input.filter("name"),
        }))
    },
};

struct CancelRotation {
    filter: crate::actions::ResourceFilter,
}

#[async_trait]
impl Action for CancelRotation {
    fn resource_kind(&self) -> &'static str {
        KIND
    }

    fn verb(&self) -> &'static str {
        "cancel the rotation of"
    }

    /// The matched secrets whose rotation is on: one whose rotation is off has nothing to cancel,
    /// and is not shown as if it would change.
    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        Ok(matching_secrets(aws, &self.filter)
            .await?
            .into_iter()
            .map(|(resource, _)| resource)
            .filter(|resource| resource.attribute(ROTATION_ENABLED) == Some("true"))
            .collect())
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        // CancelRotateSecret's answer is the change done: no rotation starts after it.
        Ok(cancel_rotation(aws, resource)
            .await?
            .unwrap_or_else(|| Acted::Finished("rotation cancelled".into())))
    }
}
