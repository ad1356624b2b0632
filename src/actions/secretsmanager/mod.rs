//! Secrets Manager: `secretsmanager.cancel-rotation`, `secretsmanager.delete-secret` and
//! `secretsmanager.rotate-secret`, one file each; this one holds what they share: the listing of
//! the secrets a step matches, and the cancelling of a secret's rotation.
//!
//! Neither ever reads a secret's value: what they show are names, dates and version ids
//! (GetSecretValue is refused by the dry-run guard anyway).

mod cancel_rotation;
mod delete_secret;
mod rotate_secret;

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::operation::cancel_rotate_secret::CancelRotateSecretError;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SecretListEntry};
use chrono::Utc;

pub use self::cancel_rotation::CANCEL_ROTATION;
pub use self::delete_secret::DELETE_SECRET;
pub use self::rotate_secret::ROTATE_SECRET;
use crate::actions::{Acted, FieldSpec, ResourceFilter, COMMON_FILTER_FIELDS};
use crate::aws::{to_chrono, Aws, AwsError};
use crate::resource::Resource;

const KIND: &str = "secret";
/// What a step of `delete-secret` or `cancel-rotation` may match on: the secret's name (required),
/// its tags, its age.
const SECRET_SELECTOR: &[FieldSpec] = &[
    FieldSpec {
        required: true,
        ..COMMON_FILTER_FIELDS[0]
    },
    COMMON_FILTER_FIELDS[1],
    COMMON_FILTER_FIELDS[2],
];
const ROTATION_ENABLED: &str = "rotation_enabled";
const LAST_ACCESSED: &str = "last_accessed";
/// What the run's memory records of a secret whose rotation the run cancelled: `delete-secret`
/// then neither cancels it again nor looks at the secret again for it.
const ROTATION: &str = "rotation";
const CANCELLED: &str = "cancelled";

/// The live secrets the filter matches, each as a resource (rotation flag and last access among
/// its attributes) with the listing entry it came from.
///
/// Never `include_planned_deletion`: a secret already scheduled for deletion is left alone, which
/// is what keeps a second run of a deletion from moving its date (and nobody rotates a secret on
/// its way out).
async fn matching_secrets(
    aws: &Aws,
    filter: &ResourceFilter,
) -> Result<Vec<(Resource, SecretListEntry)>, AwsError> {
    let mut request = aws.secretsmanager.list_secrets();
    if let Some(name) = filter.name.as_ref().and_then(|p| p.exact()) {
        // AWS matches this filter by prefix: the exact comparison below does the rest.
        request = request.filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(name)
                .build(),
        );
    }
    let mut pages = request.into_paginator().send();
    let now = Utc::now();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("SecretsManager.ListSecrets", e))?;
        for secret in page.secret_list() {
            let (Some(name), Some(arn)) = (secret.name(), secret.arn()) else {
                continue;
            };
            if secret.deleted_date().is_some() {
                continue;
            }
            let tags: BTreeMap<String, String> = secret
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect();
            let created = secret.created_date().and_then(to_chrono);
            let Some(why) = filter.matches(name, &tags, created, now) else {
                continue;
            };
            let rotation = secret.rotation_enabled().unwrap_or(false);
            let mut resource = Resource::new(KIND, arn, name, why)
                .with_attribute(ROTATION_ENABLED, rotation.to_string());
            // Worth seeing before changing: a secret read yesterday is still in use somewhere.
            if let Some(last) = secret.last_accessed_date().and_then(to_chrono) {
                resource =
                    resource.with_attribute(LAST_ACCESSED, last.format("%Y-%m-%d").to_string());
            }
            resource.created = created;
            resource.tags = tags;
            found.push((resource, secret.clone()));
        }
    }
    Ok(found)
}

/// True when this run cancelled the secret's rotation itself (see [`cancel_rotation`]).
fn rotation_cancelled_by_this_run(aws: &Aws, resource: &Resource) -> bool {
    aws.memory.was_set(&resource.id, ROTATION).as_deref() == Some(CANCELLED)
}

/// Stops the secret's rotation, so that no rotation starts on a secret on its way out, nor calls
/// a rotation Lambda that a later step deletes, and records it in the run's memory.
/// `Some(AlreadyGone)` when the secret was deleted or scheduled for deletion meanwhile (AWS
/// refuses to cancel the rotation of a secret scheduled for deletion).
async fn cancel_rotation(aws: &Aws, resource: &Resource) -> Result<Option<Acted>, AwsError> {
    let result = aws
        .secretsmanager
        .cancel_rotate_secret()
        .secret_id(&resource.id)
        .send()
        .await;
    match result {
        Ok(_) => {
            aws.memory.set(&resource.id, ROTATION, CANCELLED);
            Ok(None)
        }
        Err(e) => match e.as_service_error() {
            Some(CancelRotateSecretError::ResourceNotFoundException(_)) => {
                Ok(Some(Acted::AlreadyGone))
            }
            Some(CancelRotateSecretError::InvalidRequestException(_))
                if deleted_since_found(aws, resource).await? =>
            {
                Ok(Some(Acted::AlreadyGone))
            }
            _ => Err(AwsError::from_sdk("SecretsManager.CancelRotateSecret", e)),
        },
    }
}

/// True when the secret is scheduled for deletion or gone. Asked after AWS refused a change as
/// invalid for the secret's state, so that a deletion scheduled by someone else between `find`
/// and `act` is told apart from a real refusal by the secret's state, not by the wording of the
/// message.
async fn deleted_since_found(aws: &Aws, resource: &Resource) -> Result<bool, AwsError> {
    match aws
        .secretsmanager
        .describe_secret()
        .secret_id(&resource.id)
        .send()
        .await
    {
        Ok(secret) => Ok(secret.deleted_date().is_some()),
        Err(e) => {
            let e = AwsError::from_sdk("SecretsManager.DescribeSecret", e);
            if e.is_not_found() {
                Ok(true)
            } else {
                Err(e)
            }
        }
    }
}
