//! Secrets Manager: `secretsmanager.delete-secret` and `secretsmanager.rotate-secret`.
//!
//! Neither ever reads a secret's value: what they show are names, dates and version ids
//! (GetSecretValue is refused by the dry-run guard anyway).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_secretsmanager::operation::cancel_rotate_secret::CancelRotateSecretError;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::rotate_secret::RotateSecretError;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SecretListEntry};
use chrono::{DateTime, Utc};

use super::{
    Acted, Action, ActionSpec, FieldKind, FieldSpec, InputError, Pending, ResourceFilter,
    StepInput, COMMON_FILTER_FIELDS,
};
use crate::aws::{to_chrono, Aws, AwsError, ErrorClass};
use crate::resource::{OutcomeKind, Resource, ResourceOutcome};

/// The shortest recovery window AWS accepts, in days.
const MIN_WINDOW_DAYS: i64 = 7;
/// The longest one, and the default: a teardown's mistake stays recoverable as long as possible.
const MAX_WINDOW_DAYS: i64 = 30;

/// `secretsmanager.delete-secret`: cancels rotation, then schedules deletion of the matched
/// secrets (or deletes them at once with `force_delete_without_recovery`).
pub static DELETE_SECRET: ActionSpec = ActionSpec {
    name: "secretsmanager.delete-secret",
    summary: "Cancel rotation and schedule deletion of secrets (restorable for 7 to 30 days, 30 by default)",
    selector: &[
        FieldSpec {
            required: true,
            ..COMMON_FILTER_FIELDS[0]
        },
        COMMON_FILTER_FIELDS[1],
        COMMON_FILTER_FIELDS[2],
    ],
    options: &[
        FieldSpec {
            name: "recovery_window_days",
            kind: FieldKind::Integer {
                min: MIN_WINDOW_DAYS,
                max: MAX_WINDOW_DAYS,
            },
            required: false,
            help: "days during which the secret can still be restored; the default is 30, the longest \
                   AWS allows, so that a mistake in a teardown stays recoverable for as long as possible",
        },
        FieldSpec {
            name: "force_delete_without_recovery",
            kind: FieldKind::Bool,
            required: false,
            help: "delete at once, with no recovery window: the secret can never be restored \
                   (not together with recovery_window_days)",
        },
    ],
    permissions: &[
        "secretsmanager:ListSecrets",
        "secretsmanager:DescribeSecret",
        "secretsmanager:CancelRotateSecret",
        "secretsmanager:DeleteSecret",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        let window = input.integer("recovery_window_days");
        let force = input.flag("force_delete_without_recovery");
        let deletion = match (window, force) {
            (Some(_), true) => {
                return Err(vec![InputError::at(
                    &["force_delete_without_recovery"],
                    "`force_delete_without_recovery` cannot be combined with `recovery_window_days`",
                )
                .hint(
                    "keep `recovery_window_days` to be able to restore the secret, or remove it to \
                     delete the secret at once",
                )]);
            }
            (None, true) => Deletion::Immediate,
            (Some(days), false) if !(MIN_WINDOW_DAYS..=MAX_WINDOW_DAYS).contains(&days) => {
                // The plan validator checks the range already; this keeps a direct caller from
                // sending AWS a window it refuses.
                return Err(vec![InputError::at(
                    &["recovery_window_days"],
                    format!("{days} is out of range {MIN_WINDOW_DAYS}..={MAX_WINDOW_DAYS}"),
                )]);
            }
            (Some(days), false) => Deletion::Scheduled { days },
            (None, false) => Deletion::Scheduled {
                days: MAX_WINDOW_DAYS,
            },
        };
        Ok(Arc::new(DeleteSecret {
            filter: input.filter("name"),
            deletion,
            scheduled: Mutex::new(BTreeMap::new()),
        }))
    },
};

/// `secretsmanager.rotate-secret`: starts a rotation of the matched secrets with the rotation
/// configured on them, then waits until a new version is AWSCURRENT and none is left AWSPENDING.
pub static ROTATE_SECRET: ActionSpec = ActionSpec {
    name: "secretsmanager.rotate-secret",
    summary: "Rotate secrets now (with their own rotation function) and wait until a new version is AWSCURRENT",
    selector: &[
        FieldSpec {
            required: true,
            ..COMMON_FILTER_FIELDS[0]
        },
        COMMON_FILTER_FIELDS[1],
    ],
    options: &[],
    permissions: &[
        "secretsmanager:ListSecrets",
        "secretsmanager:DescribeSecret",
        "secretsmanager:RotateSecret",
        // RotateSecret's reference asks the caller for this too: the rotation runs the secret's
        // Lambda function on the caller's behalf.
        "lambda:InvokeFunction",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        if input.pattern("name").is_none() {
            return Err(vec![InputError::at(&["match", "name"], "missing `name` in match")
                .hint("add `name = ...`: the secret's name, or a glob")]);
        }
        Ok(Arc::new(RotateSecret {
            filter: input.filter("name"),
            rotated: Mutex::new(BTreeMap::new()),
        }))
    },
};

/// How a secret is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deletion {
    /// Restorable for this many days, then gone.
    Scheduled { days: i64 },
    /// Gone at once, for good.
    Immediate,
}

/// A deletion this action scheduled: what `notes` tells the reader.
#[derive(Clone, Debug)]
struct Scheduled {
    until: DateTime<Utc>,
    region: String,
}

struct DeleteSecret {
    filter: ResourceFilter,
    deletion: Deletion,
    /// By ARN, the deletions `act` scheduled: the date AWS gave is not in the found resource, and
    /// `notes` only sees those.
    scheduled: Mutex<BTreeMap<String, Scheduled>>,
}

const KIND: &str = "secret";
const ROTATION_ENABLED: &str = "rotation_enabled";
const LAST_ACCESSED: &str = "last_accessed";

/// The command that undoes a scheduled deletion, for people to copy.
fn restore_command(name: &str, region: &str) -> String {
    format!("aws secretsmanager restore-secret --secret-id {name} --region {region}")
}

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

impl DeleteSecret {
    /// True when the secret is scheduled for deletion or gone. Asked after AWS refused a change
    /// as invalid for the secret's state, so that a deletion scheduled by someone else between
    /// `find` and `act` is told apart from a real refusal by the secret's state, not by the
    /// wording of the message.
    async fn deleted_since_found(&self, aws: &Aws, resource: &Resource) -> Result<bool, AwsError> {
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

    /// Stops rotation, so that no rotation starts on a secret on its way out (nor calls a rotation
    /// Lambda that a later step deletes). `Some(AlreadyGone)` when the secret went meanwhile.
    async fn cancel_rotation(
        &self,
        aws: &Aws,
        resource: &Resource,
    ) -> Result<Option<Acted>, AwsError> {
        let result = aws
            .secretsmanager
            .cancel_rotate_secret()
            .secret_id(&resource.id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(CancelRotateSecretError::ResourceNotFoundException(_)) => {
                    Ok(Some(Acted::AlreadyGone))
                }
                Some(CancelRotateSecretError::InvalidRequestException(_))
                    if self.deleted_since_found(aws, resource).await? =>
                {
                    Ok(Some(Acted::AlreadyGone))
                }
                _ => Err(AwsError::from_sdk("SecretsManager.CancelRotateSecret", e)),
            },
        }
    }
}

#[async_trait]
impl Action for DeleteSecret {
    fn resource_kind(&self) -> &'static str {
        KIND
    }

    fn verb(&self) -> &'static str {
        match self.deletion {
            Deletion::Scheduled { .. } => "schedule deletion of",
            Deletion::Immediate => "delete",
        }
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        Ok(matching_secrets(aws, &self.filter)
            .await?
            .into_iter()
            .map(|(resource, _)| resource)
            .collect())
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        if resource.attribute(ROTATION_ENABLED) == Some("true") {
            if let Some(gone) = self.cancel_rotation(aws, resource).await? {
                return Ok(gone);
            }
        }
        let request = aws.secretsmanager.delete_secret().secret_id(&resource.id);
        let request = match self.deletion {
            Deletion::Scheduled { days } => request.recovery_window_in_days(days),
            Deletion::Immediate => request.force_delete_without_recovery(true),
        };
        let output = match request.send().await {
            Ok(output) => output,
            Err(e) => {
                return match e.as_service_error() {
                    Some(DeleteSecretError::ResourceNotFoundException(_)) => Ok(Acted::AlreadyGone),
                    Some(DeleteSecretError::InvalidRequestException(_))
                        if self.deleted_since_found(aws, resource).await? =>
                    {
                        Ok(Acted::AlreadyGone)
                    }
                    _ => Err(AwsError::from_sdk("SecretsManager.DeleteSecret", e)),
                };
            }
        };
        let Deletion::Scheduled { days } = self.deletion else {
            return Ok(Acted::Done(
                "deleted without recovery: it cannot be restored".into(),
            ));
        };
        // AWS's date is the one that counts; ours is only a fallback should it ever not say.
        let until = output
            .deletion_date()
            .and_then(to_chrono)
            .unwrap_or_else(|| Utc::now() + chrono::Duration::days(days));
        self.scheduled
            .lock()
            .expect("scheduled deletions poisoned")
            .insert(
                resource.id.clone(),
                Scheduled {
                    until,
                    region: aws.region.clone(),
                },
            );
        Ok(Acted::Done(format!(
            "deletion scheduled for {} (restore until then with: {})",
            until.format("%Y-%m-%d"),
            restore_command(&resource.name, &aws.region)
        )))
    }

    fn notes(&self, outcomes: &[ResourceOutcome]) -> Vec<String> {
        let scheduled = self.scheduled.lock().expect("scheduled deletions poisoned");
        outcomes
            .iter()
            .filter(|o| o.outcome == OutcomeKind::Done)
            .map(|o| {
                let name = &o.resource.name;
                match scheduled.get(&o.resource.id) {
                    Some(s) => format!(
                        "secret {name} is gone for good on {} UTC; until then it can be restored with: {}",
                        s.until.format("%Y-%m-%d %H:%M"),
                        restore_command(name, &s.region)
                    ),
                    None => format!("secret {name} was deleted without a recovery window: it cannot be restored"),
                }
            })
            .collect()
    }
}

// ---- secretsmanager.rotate-secret -------------------------------------------------------------

const AWSCURRENT: &str = "AWSCURRENT";
const AWSPENDING: &str = "AWSPENDING";
/// Attribute: the version that was AWSCURRENT when the secret was found.
const CURRENT_VERSION: &str = "current_version";
/// Attribute: a version left AWSPENDING by an earlier rotation that did not finish.
const PENDING_VERSION: &str = "pending_version";

/// Which versions carry the two labels a rotation moves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Stages {
    current: Option<String>,
    pending: Option<String>,
}

impl Stages {
    fn of(versions: Option<&HashMap<String, Vec<String>>>) -> Stages {
        let mut stages = Stages::default();
        for (version, labels) in versions.into_iter().flatten() {
            if labels.iter().any(|l| l == AWSCURRENT) {
                stages.current = Some(version.clone());
            }
            if labels.iter().any(|l| l == AWSPENDING) {
                stages.pending = Some(version.clone());
            }
        }
        stages
    }

    /// A version AWSPENDING that is not the current one: a rotation still under way (or one that
    /// failed and left it). AWS lets a finished rotation leave AWSPENDING on the new current
    /// version, so that one does not count.
    fn unfinished(&self) -> Option<&str> {
        self.pending
            .as_deref()
            .filter(|p| Some(*p) != self.current.as_deref())
    }
}

/// A rotation this action waited for: the version ids the notes report.
#[derive(Clone, Debug)]
struct Rotated {
    before: String,
    after: String,
}

struct RotateSecret {
    filter: ResourceFilter,
    /// By ARN, the rotations that finished: `notes` reports before and after.
    rotated: Mutex<BTreeMap<String, Rotated>>,
}

impl RotateSecret {
    /// The secret's labels now; `None` when it is gone or scheduled for deletion.
    async fn stages_now(aws: &Aws, arn: &str) -> Result<Option<Stages>, AwsError> {
        match aws
            .secretsmanager
            .describe_secret()
            .secret_id(arn)
            .send()
            .await
        {
            Ok(secret) if secret.deleted_date().is_some() => Ok(None),
            Ok(secret) => Ok(Some(Stages::of(secret.version_ids_to_stages()))),
            Err(e) => {
                let e = AwsError::from_sdk("SecretsManager.DescribeSecret", e);
                if e.is_not_found() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// What to say when AWS refused the rotation as invalid for the secret's state: told apart by
    /// the state (gone, or a rotation still pending), not by the wording of the message.
    async fn refused(
        &self,
        aws: &Aws,
        resource: &Resource,
        error: AwsError,
    ) -> Result<Acted, AwsError> {
        let Some(stages) = Self::stages_now(aws, &resource.id).await? else {
            return Ok(Acted::AlreadyGone);
        };
        match stages.unfinished() {
            Some(pending) => Err(AwsError {
                class: ErrorClass::Fatal,
                code: error.code,
                operation: error.operation,
                message: format!(
                    "secret {} has an unfinished rotation: version {pending} is still AWSPENDING (AWSCURRENT is {}); AWS starts no new rotation until it finishes. Look at the rotation function's logs for why it stopped, then retry",
                    resource.name,
                    stages.current.as_deref().unwrap_or("none")
                ),
            }),
            None => Err(error),
        }
    }
}

#[async_trait]
impl Action for RotateSecret {
    fn resource_kind(&self) -> &'static str {
        KIND
    }

    fn verb(&self) -> &'static str {
        "rotate"
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        // The listing carries each secret's version labels: no DescribeSecret per secret.
        Ok(matching_secrets(aws, &self.filter)
            .await?
            .into_iter()
            .map(|(mut resource, entry)| {
                let stages = Stages::of(entry.secret_versions_to_stages());
                if let Some(current) = &stages.current {
                    resource = resource.with_attribute(CURRENT_VERSION, current.clone());
                }
                if let Some(pending) = stages.unfinished() {
                    resource = resource.with_attribute(PENDING_VERSION, pending);
                }
                resource
            })
            .collect())
    }

    fn planned(&self, resource: &Resource) -> String {
        let current = resource.attribute(CURRENT_VERSION).unwrap_or("none");
        match resource.attribute(PENDING_VERSION) {
            Some(pending) => format!(
                "would rotate it, but AWS would refuse: version {pending} is still AWSPENDING from an unfinished rotation (AWSCURRENT is version {current})"
            ),
            None => format!(
                "would rotate it: AWSCURRENT is version {current} now, a new version would replace it"
            ),
        }
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        // Only the secret's id: AWS then rotates with the function and schedule already configured
        // on the secret, and changes neither.
        let result = aws
            .secretsmanager
            .rotate_secret()
            .secret_id(&resource.id)
            .send()
            .await;
        let before = resource.attribute(CURRENT_VERSION).unwrap_or("none");
        match result {
            Ok(out) => Ok(Acted::Done(match out.version_id() {
                Some(new) => {
                    format!("rotation started: new version {new} (AWSCURRENT was version {before})")
                }
                None => format!("rotation started (AWSCURRENT was version {before})"),
            })),
            Err(e) => match e.as_service_error() {
                Some(RotateSecretError::ResourceNotFoundException(_)) => Ok(Acted::AlreadyGone),
                Some(RotateSecretError::InvalidRequestException(_)) => {
                    let error = AwsError::from_sdk("SecretsManager.RotateSecret", e);
                    self.refused(aws, resource, error).await
                }
                _ => Err(AwsError::from_sdk("SecretsManager.RotateSecret", e)),
            },
        }
    }

    async fn still_pending(&self, aws: &Aws, acted: &[Resource]) -> Result<Vec<Pending>, AwsError> {
        // Finished once another version is AWSCURRENT and no other is left AWSPENDING: the
        // rotation function's last step (finishSecret) moves AWSCURRENT onto the new version.
        let mut pending = Vec::new();
        for resource in acted {
            let before = resource.attribute(CURRENT_VERSION).unwrap_or_default();
            let Some(stages) = Self::stages_now(aws, &resource.id).await? else {
                return Err(AwsError {
                    class: ErrorClass::Fatal,
                    code: None,
                    operation: "SecretsManager.DescribeSecret".into(),
                    message: format!(
                        "secret {} was deleted (or scheduled for deletion) during its rotation",
                        resource.name
                    ),
                });
            };
            let current = stages.current.clone().unwrap_or_default();
            let status = match stages.unfinished() {
                Some(version) if current == before => {
                    format!("rotating (version {version} AWSPENDING)")
                }
                Some(version) => format!("finishing (version {version} still AWSPENDING)"),
                None if current == before => "waiting for the rotation to start".to_string(),
                None => {
                    self.rotated.lock().expect("rotations poisoned").insert(
                        resource.id.clone(),
                        Rotated {
                            before: before.to_string(),
                            after: current,
                        },
                    );
                    continue;
                }
            };
            pending.push(Pending {
                id: resource.id.clone(),
                status,
            });
        }
        Ok(pending)
    }

    fn notes(&self, outcomes: &[ResourceOutcome]) -> Vec<String> {
        let rotated = self.rotated.lock().expect("rotations poisoned");
        outcomes
            .iter()
            .filter(|o| o.outcome == OutcomeKind::Done)
            .filter_map(|o| {
                let r = rotated.get(&o.resource.id)?;
                Some(format!(
                    "secret {}: AWSCURRENT was version {}, is now version {}",
                    o.resource.name, r.before, r.after
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(options: &str) -> StepInput {
        StepInput {
            step: "t".into(),
            selector: toml::from_str("name = \"s\"").unwrap(),
            options: toml::from_str(options).unwrap(),
        }
    }

    #[test]
    fn window_defaults_to_the_longest_and_conflicts_with_force() {
        assert!((DELETE_SECRET.build)(&input("")).is_ok());
        assert!((DELETE_SECRET.build)(&input("force_delete_without_recovery = true")).is_ok());
        assert!((DELETE_SECRET.build)(&input(
            "recovery_window_days = 7\nforce_delete_without_recovery = false"
        ))
        .is_ok());
        let errors = (DELETE_SECRET.build)(&input(
            "recovery_window_days = 7\nforce_delete_without_recovery = true",
        ))
        .err()
        .expect("both options refused");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, vec!["force_delete_without_recovery"]);
        let errors = (DELETE_SECRET.build)(&input("recovery_window_days = 3"))
            .err()
            .expect("a window AWS refuses");
        assert_eq!(errors[0].path, vec!["recovery_window_days"]);
    }
}
