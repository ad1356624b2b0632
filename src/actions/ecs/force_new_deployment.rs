//! `ecs.force-new-deployment`: starts a new deployment of the matched services (same task
//! definition, same desired count, new tasks) and waits until each is stable on it, e.g. after a
//! secret their tasks read at start was rotated.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::operation::update_service::UpdateServiceError;
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service};

use super::{
    active_services, by_cluster, describe_services, required_pattern, ACTIVE, CLUSTER,
    CLUSTER_FIELD, DESIRED_COUNT, SERVICE_KIND,
};
use crate::actions::{
    Acted, Action, ActionSpec, InputError, Pattern, Pending, PollPolicy, StepInput,
    COMMON_FILTER_FIELDS,
};
use crate::aws::{Aws, AwsError, ErrorClass};
use crate::resource::{OutcomeKind, Resource, ResourceOutcome};

/// Attribute: a service's running count when it was found.
const RUNNING_COUNT: &str = "running_count";
/// Attribute: the id of a service's PRIMARY deployment when it was found.
const DEPLOYMENT: &str = "deployment";

/// `ecs.force-new-deployment`: starts a new deployment of the matched services (same task
/// definition, new tasks) and waits until each is stable again.
pub static FORCE_NEW_DEPLOYMENT: ActionSpec = ActionSpec {
    name: "ecs.force-new-deployment",
    summary: "Force a new deployment of ECS services (their tasks are replaced) and wait until they are stable",
    selector: &[CLUSTER_FIELD, COMMON_FILTER_FIELDS[0]],
    options: &[],
    permissions: &[
        "ecs:ListClusters",
        "ecs:DescribeClusters",
        "ecs:ListServices",
        "ecs:DescribeServices",
        "ecs:UpdateService",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Ok(Arc::new(ForceNewDeployment {
            cluster: required_pattern(input, "cluster")?,
            name: input.pattern("name"),
            redeployed: Mutex::new(BTreeMap::new()),
        }))
    },
};

struct ForceNewDeployment {
    cluster: Pattern,
    name: Option<Pattern>,
    /// By service ARN, what the wait saw once the service was stable: what `notes` reports.
    redeployed: Mutex<BTreeMap<String, Redeployed>>,
}

/// A service that became stable on its new deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Redeployed {
    deployment: String,
    running: i32,
    desired: i32,
}

/// The deployment ECS is rolling out, or has rolled out: the PRIMARY one.
fn primary_deployment(service: &Service) -> Option<&Deployment> {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
}

/// Where a service's new deployment is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rollout {
    /// Not stable yet: what it waits for.
    Pending(String),
    /// Stable on a new deployment.
    Stable(Redeployed),
}

/// Where the rollout of a service is: stable once one deployment is left, with as many tasks
/// running as desired, and that deployment is not `found`, the PRIMARY one when the step found
/// the service (or the new one has not begun).
fn rollout(found: Option<&str>, service: &Service) -> Rollout {
    let deployments = service.deployments().len();
    let (running, desired) = (service.running_count(), service.desired_count());
    let new_id = primary_deployment(service)
        .and_then(|d| d.id())
        .unwrap_or_default();
    Rollout::Pending(if found == Some(new_id) {
        "waiting for the new deployment".to_string()
    } else if deployments != 1 {
        format!("{deployments} deployments, {running} of {desired} running")
    } else if running != desired {
        format!("{running} of {desired} running")
    } else {
        return Rollout::Stable(Redeployed {
            deployment: new_id.to_string(),
            running,
            desired,
        });
    })
}

#[async_trait]
impl Action for ForceNewDeployment {
    fn resource_kind(&self) -> &'static str {
        SERVICE_KIND
    }

    fn verb(&self) -> &'static str {
        "force a new deployment of"
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let services = active_services(aws, &self.cluster, self.name.as_ref()).await?;
        Ok(services
            .into_iter()
            .map(|(service, mut resource)| {
                resource =
                    resource.with_attribute(RUNNING_COUNT, service.running_count().to_string());
                if let Some(id) = primary_deployment(&service).and_then(|d| d.id()) {
                    resource = resource.with_attribute(DEPLOYMENT, id);
                }
                resource
            })
            .collect())
    }

    fn planned(&self, resource: &Resource) -> String {
        format!(
            "would force a new deployment: deployment {} now, {} of {} tasks running; each would be replaced by a new task",
            resource.attribute(DEPLOYMENT).unwrap_or("none"),
            resource.attribute(RUNNING_COUNT).unwrap_or("?"),
            resource.attribute(DESIRED_COUNT).unwrap_or("?"),
        )
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        // Nothing else changes: same task definition, same desired count (a count written back
        // here could undo an autoscaling decision taken since `find`).
        let result = aws
            .ecs
            .update_service()
            .cluster(resource.attribute(CLUSTER).unwrap_or_default())
            .service(&resource.id)
            .force_new_deployment(true)
            .send()
            .await;
        let before = resource.attribute(DEPLOYMENT).unwrap_or("none");
        match result {
            Ok(out) => {
                let new = out
                    .service()
                    .and_then(primary_deployment)
                    .and_then(|d| d.id());
                Ok(Acted::Done(match new {
                    Some(id) => format!("new deployment {id} started (was {before})"),
                    None => format!("new deployment started (was {before})"),
                }))
            }
            Err(e) => match e.as_service_error() {
                Some(
                    UpdateServiceError::ServiceNotFoundException(_)
                    | UpdateServiceError::ServiceNotActiveException(_)
                    | UpdateServiceError::ClusterNotFoundException(_),
                ) => Ok(Acted::AlreadyGone),
                _ => Err(AwsError::from_sdk("ECS.UpdateService", e)),
            },
        }
    }

    fn timeout_advice(&self, _waiting: &[Resource], continue_later: &str) -> String {
        format!("the new deployment's tasks have not all started, or the old ones not all stopped: the service's events and its stopped tasks' `stoppedReason` say why (an image that cannot be pulled, a failing health check, no capacity). Nothing is undone: {continue_later} once the service is stable, or raise the step's `timeout`")
    }

    async fn still_pending(&self, aws: &Aws, acted: &[Resource]) -> Result<Vec<Pending>, AwsError> {
        // Stable as the `services-stable` waiter of the SDK and the CLI judges it: one deployment
        // left, and as many tasks running as desired. That waiter is not used because the step's
        // own poll loop owns the deadline, the progress and the cancellation. On top of it, the
        // one deployment must not be the one found before, or the new one has not begun.
        let mut pending = Vec::new();
        for (cluster, arns) in by_cluster(acted) {
            let services = describe_services(aws, &cluster, &arns, false).await?;
            for resource in acted.iter().filter(|r| arns.contains(&r.id)) {
                let service = services
                    .iter()
                    .find(|s| s.service_arn() == Some(resource.id.as_str()))
                    .filter(|s| s.status() == Some(ACTIVE));
                let Some(service) = service else {
                    return Err(AwsError {
                        class: ErrorClass::Fatal,
                        code: None,
                        operation: "ECS.DescribeServices".into(),
                        message: format!(
                            "service {} was deleted while its new deployment rolled out",
                            resource.name
                        ),
                    });
                };
                let primary = primary_deployment(service);
                if let Some(failed) =
                    primary.filter(|d| d.rollout_state() == Some(&DeploymentRolloutState::Failed))
                {
                    return Err(AwsError {
                        class: ErrorClass::Fatal,
                        code: None,
                        operation: "ECS.DescribeServices".into(),
                        message: format!(
                            "the new deployment {} of service {} failed: {} (the service's events in the ECS console say which tasks did not start and why)",
                            failed.id().unwrap_or("?"),
                            resource.name,
                            failed.rollout_state_reason().unwrap_or("no reason given")
                        ),
                    });
                }
                let status = match rollout(resource.attribute(DEPLOYMENT), service) {
                    Rollout::Pending(status) => status,
                    Rollout::Stable(redeployed) => {
                        self.redeployed
                            .lock()
                            .expect("deployments poisoned")
                            .insert(resource.id.clone(), redeployed);
                        continue;
                    }
                };
                pending.push(Pending {
                    id: resource.id.clone(),
                    status,
                });
            }
        }
        Ok(pending)
    }

    fn poll_policy(&self) -> PollPolicy {
        // New tasks start and pass health checks in a minute or two, and the old ones drain
        // (deregistration delay) after that; the CLI's waiter looks every 15 s.
        PollPolicy {
            first: Duration::from_secs(5),
            cap: Duration::from_secs(15),
        }
    }

    fn notes(&self, outcomes: &[ResourceOutcome]) -> Vec<String> {
        let redeployed = self.redeployed.lock().expect("deployments poisoned");
        outcomes
            .iter()
            .filter(|o| o.outcome == OutcomeKind::Done)
            .filter_map(|o| {
                let r = redeployed.get(&o.resource.id)?;
                Some(format!(
                    "service {}: deployment {} replaced {}; stable with {} of {} tasks running",
                    o.resource.name,
                    r.deployment,
                    o.resource.attribute(DEPLOYMENT).unwrap_or("none"),
                    r.running,
                    r.desired
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::test_input;

    fn deployment(id: &str, status: &str) -> Deployment {
        Deployment::builder().id(id).status(status).build()
    }

    fn service(deployments: Vec<Deployment>, running: i32, desired: i32) -> Service {
        Service::builder()
            .set_deployments(Some(deployments))
            .running_count(running)
            .desired_count(desired)
            .build()
    }

    #[test]
    fn the_primary_deployment_is_the_one_rolled_out() {
        let s = service(
            vec![
                deployment("ecs-svc/1", "ACTIVE"),
                deployment("ecs-svc/2", "PRIMARY"),
            ],
            1,
            2,
        );
        assert_eq!(
            primary_deployment(&s).and_then(|d| d.id()),
            Some("ecs-svc/2")
        );
        assert!(primary_deployment(&service(Vec::new(), 0, 0)).is_none());
    }

    #[test]
    fn a_rollout_is_stable_on_a_new_deployment_with_every_task_running() {
        let old = Some("ecs-svc/1");
        // Asked, not begun: the PRIMARY deployment is still the one found.
        assert_eq!(
            rollout(
                old,
                &service(vec![deployment("ecs-svc/1", "PRIMARY")], 2, 2)
            ),
            Rollout::Pending("waiting for the new deployment".into())
        );
        assert_eq!(
            rollout(
                old,
                &service(
                    vec![
                        deployment("ecs-svc/2", "PRIMARY"),
                        deployment("ecs-svc/1", "ACTIVE")
                    ],
                    3,
                    2
                )
            ),
            Rollout::Pending("2 deployments, 3 of 2 running".into())
        );
        assert_eq!(
            rollout(
                old,
                &service(vec![deployment("ecs-svc/2", "PRIMARY")], 1, 2)
            ),
            Rollout::Pending("1 of 2 running".into())
        );
        assert_eq!(
            rollout(
                old,
                &service(vec![deployment("ecs-svc/2", "PRIMARY")], 2, 2)
            ),
            Rollout::Stable(Redeployed {
                deployment: "ecs-svc/2".into(),
                running: 2,
                desired: 2
            })
        );
    }

    #[test]
    fn a_dry_run_says_what_would_be_replaced() {
        let action =
            (FORCE_NEW_DEPLOYMENT.build)(&test_input("cluster = \"demo\"\nname = \"web\"", ""))
                .expect("cluster given");
        let found = Resource::new(SERVICE_KIND, "arn", "web", "")
            .with_attribute(DEPLOYMENT, "ecs-svc/1")
            .with_attribute(RUNNING_COUNT, "2")
            .with_attribute(DESIRED_COUNT, "2");
        assert_eq!(
            action.planned(&found),
            "would force a new deployment: deployment ecs-svc/1 now, 2 of 2 tasks running; each would be replaced by a new task"
        );
        assert_eq!(action.verb(), "force a new deployment of");
    }
}
