//! `ecs.deregister-task-definitions`: deregisters the ACTIVE revisions of the matched task
//! definition families; with `delete = true`, deletes them and the INACTIVE ones too.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ecs::types::{TaskDefinitionFamilyStatus, TaskDefinitionField, TaskDefinitionStatus};

use super::{last_segment, required_pattern, tag_map, ACTIVE, INACTIVE, STATUS};
use crate::actions::{
    Acted, Action, ActionSpec, FieldKind, FieldSpec, InputError, Pattern, StepInput,
};
use crate::aws::{to_chrono, Aws, AwsError, ErrorClass};
use crate::resource::{OutcomeKind, Resource, ResourceOutcome};

const TASK_DEFINITION_KIND: &str = "ECS task definition";

/// `ecs.deregister-task-definitions`: deregisters the ACTIVE revisions of the matched families;
/// with `delete`, deletes them and the INACTIVE ones too.
pub static DEREGISTER_TASK_DEFINITIONS: ActionSpec = ActionSpec {
    name: "ecs.deregister-task-definitions",
    summary: "Deregister every ACTIVE revision of ECS task definition families (delete = true also deletes them)",
    selector: &[FieldSpec {
        name: "family",
        kind: FieldKind::Pattern,
        required: true,
        default: None,
        help: "the task definition family, or a glob with * and ?",
    }],
    options: &[FieldSpec {
        name: "delete",
        kind: FieldKind::Bool,
        required: false,
        default: Some("false"),
        help: "also delete the revisions (INACTIVE ones included) instead of leaving them INACTIVE",
    }],
    rules: &[],
    permissions: &[
        "ecs:ListTaskDefinitionFamilies",
        "ecs:ListTaskDefinitions",
        "ecs:DescribeTaskDefinition",
        "ecs:DeregisterTaskDefinition",
        "ecs:DeleteTaskDefinitions",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Ok(Arc::new(DeregisterTaskDefinitions {
            family: required_pattern(input, "family")?,
            delete: input.flag("delete"),
        }))
    },
};

struct DeregisterTaskDefinitions {
    family: Pattern,
    delete: bool,
}

/// `family` and revision of a task definition ARN (`...:task-definition/web:3`).
fn family_revision(arn: &str) -> Option<(&str, u32)> {
    let (family, revision) = last_segment(arn).rsplit_once(':')?;
    Some((family, revision.parse().ok()?))
}

/// True when the ARN is a revision of exactly this family. `familyPrefix` is documented as the
/// full family name, yet named a prefix: the family is checked again, so that "web" can never take
/// "web-old" with it.
fn is_revision_of(arn: &str, family: &str) -> bool {
    family_revision(arn).is_some_and(|(f, _)| f == family)
}

impl DeregisterTaskDefinitions {
    /// The ARNs of a family's revisions that have this status, in revision order.
    async fn revisions(
        &self,
        aws: &Aws,
        family: &str,
        status: TaskDefinitionStatus,
    ) -> Result<Vec<String>, AwsError> {
        let arns: Vec<String> = aws
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(status)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::from_sdk("ECS.ListTaskDefinitions", e))?;
        Ok(arns
            .into_iter()
            .filter(|arn| is_revision_of(arn, family))
            .collect())
    }

    /// Where a revision is now: `ACTIVE`, `INACTIVE`, or `None` when it is deleted (or being
    /// deleted). Asked when a call fails, because the errors of these calls are generic
    /// (ClientException) whatever the cause.
    async fn status_now(&self, aws: &Aws, arn: &str) -> Result<Option<&'static str>, AwsError> {
        let Some((family, _)) = family_revision(arn) else {
            return Ok(None);
        };
        for (status, name) in [
            (TaskDefinitionStatus::Active, ACTIVE),
            (TaskDefinitionStatus::Inactive, INACTIVE),
        ] {
            if self
                .revisions(aws, family, status)
                .await?
                .iter()
                .any(|a| a == arn)
            {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// Deletes an INACTIVE revision: true if deleted, false if it was gone already.
    async fn delete_revision(&self, aws: &Aws, arn: &str) -> Result<bool, AwsError> {
        let out = aws
            .ecs
            .delete_task_definitions()
            .task_definitions(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS.DeleteTaskDefinitions", e))?;
        // Refusals come back in `failures`, not as an error.
        let Some(failure) = out.failures().first() else {
            return Ok(true);
        };
        if self.status_now(aws, arn).await?.is_none() {
            return Ok(false);
        }
        Err(AwsError {
            class: ErrorClass::Fatal,
            code: None,
            operation: "ECS.DeleteTaskDefinitions".into(),
            message: format!(
                "{} was not deleted: {}{}",
                last_segment(arn),
                failure.reason().unwrap_or("no reason given"),
                failure
                    .detail()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
        })
    }
}

#[async_trait]
impl Action for DeregisterTaskDefinitions {
    fn resource_kind(&self) -> &'static str {
        TASK_DEFINITION_KIND
    }

    fn verb(&self) -> &'static str {
        if self.delete {
            "delete"
        } else {
            "deregister"
        }
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let families: Vec<String> = match self.family.exact() {
            Some(family) => vec![family.to_string()],
            None => {
                let mut request = aws.ecs.list_task_definition_families();
                let prefix = self.family.literal_prefix();
                if !prefix.is_empty() {
                    request = request.family_prefix(prefix);
                }
                // Without `delete`, only a family with an ACTIVE revision has anything to change.
                if !self.delete {
                    request = request.status(TaskDefinitionFamilyStatus::Active);
                }
                request
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| AwsError::from_sdk("ECS.ListTaskDefinitionFamilies", e))?
                    .into_iter()
                    .filter(|f| self.family.matches(f))
                    .collect()
            }
        };
        let mut statuses = vec![TaskDefinitionStatus::Active];
        if self.delete {
            statuses.push(TaskDefinitionStatus::Inactive);
        }
        let mut listed = Vec::new();
        for family in &families {
            for status in &statuses {
                for arn in self.revisions(aws, family, status.clone()).await? {
                    listed.push((arn, status.clone()));
                }
            }
        }
        // Each revision is described (for its tags) side by side, under the per-service limit.
        let described =
            futures_util::future::try_join_all(listed.iter().map(|(arn, _)| async move {
                aws.ecs
                    .describe_task_definition()
                    .task_definition(arn)
                    .include(TaskDefinitionField::Tags)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("ECS.DescribeTaskDefinition", e))
            }))
            .await?;
        let mut found = Vec::new();
        for ((arn, status), described) in listed.iter().zip(described) {
            let Some((family, revision)) = family_revision(arn) else {
                continue;
            };
            let why = match status {
                TaskDefinitionStatus::Active => self.family.describe("family"),
                _ => format!("{}, {}", self.family.describe("family"), status.as_str()),
            };
            let mut resource = Resource::new(
                TASK_DEFINITION_KIND,
                arn,
                format!("{family}:{revision}"),
                why,
            )
            .with_attribute(STATUS, status.as_str());
            resource.created = described
                .task_definition()
                .and_then(|d| d.registered_at())
                .and_then(to_chrono);
            resource.tags = tag_map(described.tags());
            found.push(resource);
        }
        Ok(found)
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        let mut deregistered = false;
        if resource.attribute(STATUS) == Some(ACTIVE) {
            let result = aws
                .ecs
                .deregister_task_definition()
                .task_definition(&resource.id)
                .send()
                .await;
            match result {
                Ok(_) => deregistered = true,
                Err(e) => {
                    let error = AwsError::from_sdk("ECS.DeregisterTaskDefinition", e);
                    match self.status_now(aws, &resource.id).await? {
                        Some(ACTIVE) => return Err(error),
                        // Deregistered meanwhile: what is left is the deletion, if asked.
                        Some(_) if self.delete => {}
                        _ => return Ok(Acted::AlreadyGone),
                    }
                }
            }
        }
        if !self.delete {
            return Ok(Acted::Done("deregistered".into()));
        }
        // AWS deletes only INACTIVE revisions: an ACTIVE one was deregistered just above.
        match (self.delete_revision(aws, &resource.id).await?, deregistered) {
            (true, true) => Ok(Acted::Done("deregistered and deleted".into())),
            (true, false) => Ok(Acted::Done("deleted".into())),
            (false, true) => Ok(Acted::Done("deregistered (deleted meanwhile)".into())),
            (false, false) => Ok(Acted::AlreadyGone),
        }
    }

    fn notes(&self, outcomes: &[ResourceOutcome]) -> Vec<String> {
        if !outcomes.iter().any(|o| o.outcome == OutcomeKind::Done) {
            return Vec::new();
        }
        if self.delete {
            vec!["AWS deletes revisions in the background (DELETE_IN_PROGRESS) once no task or service uses them".into()]
        } else {
            vec!["deregistered revisions stay in the account as INACTIVE (running tasks may still use them); set `delete = true` on the step to delete them".into()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::test_input;
    use crate::resource::OutcomeKind;

    const WEB_3: &str = "arn:aws:ecs:us-west-2:123456789012:task-definition/web:3";

    #[test]
    fn an_arn_gives_its_family_and_revision() {
        assert_eq!(family_revision(WEB_3), Some(("web", 3)));
        assert_eq!(
            family_revision("arn:aws:ecs:us-west-2:123456789012:task-definition/web-old:12"),
            Some(("web-old", 12))
        );
        assert_eq!(family_revision("web:3"), Some(("web", 3)));
        assert_eq!(
            family_revision("arn:aws:ecs:us-west-2:123456789012:task-definition/web"),
            None
        );
        assert_eq!(family_revision("web:latest"), None);
    }

    #[test]
    fn a_family_never_takes_a_longer_family_with_it() {
        assert!(is_revision_of(WEB_3, "web"));
        assert!(!is_revision_of(
            "arn:aws:ecs:us-west-2:123456789012:task-definition/web-old:1",
            "web"
        ));
        assert!(!is_revision_of(WEB_3, "we"));
    }

    #[test]
    fn delete_changes_the_verb_and_the_note() {
        let done = |name: &str| ResourceOutcome {
            resource: Resource::new(TASK_DEFINITION_KIND, WEB_3, name, ""),
            outcome: OutcomeKind::Done,
            detail: String::new(),
        };
        let deregister = (DEREGISTER_TASK_DEFINITIONS.build)(&test_input("family = \"web\"", ""))
            .expect("family given");
        assert_eq!(deregister.verb(), "deregister");
        assert!(deregister.notes(&[done("web:3")])[0].contains("stay in the account as INACTIVE"));
        assert!(deregister.notes(&[]).is_empty());
        let delete =
            (DEREGISTER_TASK_DEFINITIONS.build)(&test_input("family = \"web\"", "delete = true"))
                .expect("family given");
        assert_eq!(delete.verb(), "delete");
        assert!(delete.notes(&[done("web:3")])[0].contains("deletes revisions in the background"));
    }
}
