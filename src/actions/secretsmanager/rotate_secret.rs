//! `secretsmanager.rotate-secret`: starts a rotation of the matched secrets with the rotation
//! configured on them, then waits until a new version is AWSCURRENT and none is left AWSPENDING.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_secretsmanager::operation::rotate_secret::RotateSecretError;

use super::{matching_secrets, KIND};
use crate::actions::{
    Acted, Action, ActionSpec, FieldSpec, InputError, Pending, ResourceFilter, StepInput,
    COMMON_FILTER_FIELDS,
};
use crate::aws::{Aws, AwsError, ErrorClass};
use crate::resource::{OutcomeKind, Resource, ResourceOutcome};

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

    fn timeout_advice(&self, _waiting: &[Resource], continue_later: &str) -> String {
        format!("the secret's rotation function has not finished (a new version is not AWSCURRENT yet, or one is still AWSPENDING): its log group `/aws/lambda/FUNCTION` says which step it is in or why it fails (often it cannot reach the database or Secrets Manager from its VPC). {continue_later} once it has finished (a rotation is not started twice while one is pending), or raise the step's `timeout`")
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
    use crate::actions::test_input;

    fn stages(versions: &[(&str, &[&str])]) -> Stages {
        let map: HashMap<String, Vec<String>> = versions
            .iter()
            .map(|(v, labels)| {
                (
                    v.to_string(),
                    labels.iter().map(|l| l.to_string()).collect(),
                )
            })
            .collect();
        Stages::of(Some(&map))
    }

    #[test]
    fn the_labels_say_which_version_is_current_and_which_pending() {
        let s = stages(&[
            ("v1", &["AWSPREVIOUS"]),
            ("v2", &[AWSCURRENT]),
            ("v3", &[AWSPENDING]),
        ]);
        assert_eq!(s.current.as_deref(), Some("v2"));
        assert_eq!(s.pending.as_deref(), Some("v3"));
        assert_eq!(s.unfinished(), Some("v3"));
        assert_eq!(Stages::of(None), Stages::default());
    }

    #[test]
    fn pending_on_the_current_version_is_a_finished_rotation() {
        // AWS may leave AWSPENDING on the version a finished rotation made current.
        let s = stages(&[("v1", &["AWSPREVIOUS"]), ("v2", &[AWSCURRENT, AWSPENDING])]);
        assert_eq!(s.unfinished(), None);
        assert_eq!(stages(&[("v1", &[AWSCURRENT])]).unfinished(), None);
    }

    #[test]
    fn a_dry_run_names_the_current_version_and_warns_of_an_unfinished_rotation() {
        let action =
            (ROTATE_SECRET.build)(&test_input("name = \"lab/db\"", "")).expect("name given");
        let found = Resource::new(KIND, "arn", "lab/db", "").with_attribute(CURRENT_VERSION, "v2");
        assert_eq!(
            action.planned(&found),
            "would rotate it: AWSCURRENT is version v2 now, a new version would replace it"
        );
        let stuck = found.with_attribute(PENDING_VERSION, "v3");
        assert!(
            action.planned(&stuck).starts_with(
                "would rotate it, but AWS would refuse: version v3 is still AWSPENDING"
            ),
            "{}",
            action.planned(&stuck)
        );
    }

    #[test]
    fn a_rotation_needs_a_name() {
        let Err(errors) = (ROTATE_SECRET.build)(&test_input("tags = { Lab = \"1\" }", "")) else {
            panic!("tags alone must be refused");
        };
        assert_eq!(errors[0].path, vec!["match", "name"]);
    }
}
