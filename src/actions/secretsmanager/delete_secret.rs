//! `secretsmanager.delete-secret`: cancels rotation, then schedules deletion of the matched
//! secrets (restorable for 7 to 30 days, 30 by default), or deletes them at once with
//! `force_delete_without_recovery`. The notes say until when, and how, each can be restored.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use chrono::{DateTime, Utc};

use super::{
    cancel_rotation, deleted_since_found, matching_secrets, rotation_cancelled_by_this_run, KIND,
    ROTATION_ENABLED, SECRET_SELECTOR,
};
use crate::actions::{
    Acted, Action, ActionSpec, FieldKind, FieldSpec, InputError, ResourceFilter, Rule, StepInput,
};
use crate::aws::{to_chrono, Aws, AwsError};
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
    selector: SECRET_SELECTOR,
    options: &[
        FieldSpec {
            name: "recovery_window_days",
            kind: FieldKind::Integer {
                min: MIN_WINDOW_DAYS,
                max: MAX_WINDOW_DAYS,
            },
            required: false,
            default: Some("30"),
            help: "days during which the secret can still be restored; the default is 30, the longest \
                   AWS allows, so that a mistake in a teardown stays recoverable for as long as possible",
        },
        FieldSpec {
            name: "force_delete_without_recovery",
            kind: FieldKind::Bool,
            required: false,
            default: Some("false"),
            help: "delete at once, with no recovery window: the secret can never be restored \
                   (not together with recovery_window_days)",
        },
    ],
    rules: &[Rule::OptionsNotBoth(
        "recovery_window_days",
        "force_delete_without_recovery",
    )],
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

/// The command that undoes a scheduled deletion, for people to copy.
fn restore_command(name: &str, region: &str) -> String {
    format!("aws secretsmanager restore-secret --secret-id {name} --region {region}")
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
        // Rotation goes first, unless this run turned it off already (a step of its own,
        // `secretsmanager.cancel-rotation`, which the rotation function's deletion waits for).
        if resource.attribute(ROTATION_ENABLED) == Some("true")
            && !rotation_cancelled_by_this_run(aws, resource)
        {
            if let Some(gone) = cancel_rotation(aws, resource).await? {
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
                        if deleted_since_found(aws, resource).await? =>
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

    fn outdated_by(&self, operation: &str) -> bool {
        // `act` knows from the run's memory that the run cancelled the rotation itself.
        operation != "CancelRotateSecret"
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

    #[test]
    fn the_verb_says_whether_the_secret_can_be_restored() {
        let scheduled = (DELETE_SECRET.build)(&input("")).expect("defaults");
        assert_eq!(scheduled.verb(), "schedule deletion of");
        let immediate =
            (DELETE_SECRET.build)(&input("force_delete_without_recovery = true")).expect("force");
        assert_eq!(immediate.verb(), "delete");
    }

    #[test]
    fn the_restore_command_names_the_secret_and_its_region() {
        assert_eq!(
            restore_command("lab/db", "us-west-2"),
            "aws secretsmanager restore-secret --secret-id lab/db --region us-west-2"
        );
    }
}
