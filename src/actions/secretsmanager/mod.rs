//! Secrets Manager: `secretsmanager.delete-secret` and `secretsmanager.rotate-secret`, one file
//! each; this one holds what they share: the listing of the secrets a step matches.
//!
//! Neither ever reads a secret's value: what they show are names, dates and version ids
//! (GetSecretValue is refused by the dry-run guard anyway).

mod delete_secret;
mod rotate_secret;

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SecretListEntry};
use chrono::Utc;

pub use self::delete_secret::DELETE_SECRET;
pub use self::rotate_secret::ROTATE_SECRET;
use crate::actions::ResourceFilter;
use crate::aws::{to_chrono, Aws, AwsError};
use crate::resource::Resource;

const KIND: &str = "secret";
const ROTATION_ENABLED: &str = "rotation_enabled";
const LAST_ACCESSED: &str = "last_accessed";

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
