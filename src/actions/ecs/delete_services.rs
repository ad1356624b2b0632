//! `ecs.delete-services`: scales the matched services to 0, deletes them, and waits until they are
//! INACTIVE (DRAINING while their tasks stop).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::operation::delete_service::DeleteServiceError;

use super::{
    active_services, by_cluster, describe_services, required_pattern, scale_to_zero, CLUSTER,
    CLUSTER_FIELD, DESIRED_COUNT, INACTIVE, SERVICE_KIND,
};
use crate::actions::{
    Acted, Action, ActionSpec, InputError, Pattern, Pending, PollPolicy, StepInput,
    COMMON_FILTER_FIELDS,
};
use crate::aws::{Aws, AwsError};
use crate::resource::Resource;

/// `ecs.delete-services`: scales the matched services to 0, deletes them, waits until INACTIVE.
pub static DELETE_SERVICES: ActionSpec = ActionSpec {
    name: "ecs.delete-services",
    summary: "Delete ECS services (scaled to 0 first) and wait until they are INACTIVE",
    selector: &[CLUSTER_FIELD, COMMON_FILTER_FIELDS[0]],
    options: &[],
    rules: &[],
    permissions: &[
        "ecs:ListClusters",
        "ecs:DescribeClusters",
        "ecs:ListServices",
        "ecs:DescribeServices",
        "ecs:UpdateService",
        "ecs:DeleteService",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Ok(Arc::new(DeleteServices {
            cluster: required_pattern(input, "cluster")?,
            name: input.pattern("name"),
        }))
    },
};

struct DeleteServices {
    cluster: Pattern,
    name: Option<Pattern>,
}

#[async_trait]
impl Action for DeleteServices {
    fn resource_kind(&self) -> &'static str {
        SERVICE_KIND
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let services = active_services(aws, &self.cluster, self.name.as_ref()).await?;
        Ok(services.into_iter().map(|(_, resource)| resource).collect())
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        // AWS refuses to delete a service scaled above 0 (unless forced, which would skip the
        // orderly stop of its tasks). One at 0 already, as found or as this run set it (the
        // stop-tasks step scales services to 0), is not scaled again.
        let at_zero = resource.attribute(DESIRED_COUNT) == Some("0")
            || aws.memory.was_set(&resource.id, DESIRED_COUNT).as_deref() == Some("0");
        let scaled = !at_zero;
        if scaled && scale_to_zero(aws, resource).await? == Acted::AlreadyGone {
            return Ok(Acted::AlreadyGone);
        }
        let result = aws
            .ecs
            .delete_service()
            .cluster(resource.attribute(CLUSTER).unwrap_or_default())
            .service(&resource.id)
            .send()
            .await;
        let words = if scaled {
            "scaled to 0 and deleted"
        } else {
            "deleted"
        };
        match result {
            // INACTIVE in the answer (no task left to drain): nothing to wait for.
            Ok(out) if out.service().and_then(|s| s.status()) == Some(INACTIVE) => {
                aws.memory.gone(&resource.id);
                Ok(Acted::Finished(words.into()))
            }
            Ok(_) => Ok(Acted::Done(words.into())),
            Err(e) => match e.as_service_error() {
                Some(
                    DeleteServiceError::ServiceNotFoundException(_)
                    | DeleteServiceError::ClusterNotFoundException(_),
                ) => Ok(Acted::AlreadyGone),
                _ => {
                    // DeleteService has no typed variant for a service deleted meanwhile.
                    let error = AwsError::from_sdk("ECS.DeleteService", e);
                    if error.code.as_deref() == Some("ServiceNotActiveException") {
                        Ok(Acted::AlreadyGone)
                    } else {
                        Err(error)
                    }
                }
            },
        }
    }

    fn timeout_advice(&self, _waiting: &[Resource], continue_later: &str) -> String {
        format!("a deleted service stays DRAINING until its last task has stopped (its load balancer's deregistration delay, 300 s by default, and the containers' stop timeout); the service's events in the ECS console say which task holds it. {continue_later} later, or raise the step's `timeout`")
    }

    async fn still_pending(&self, aws: &Aws, acted: &[Resource]) -> Result<Vec<Pending>, AwsError> {
        // A deleted service is DRAINING until its tasks have stopped, then INACTIVE.
        let mut pending = Vec::new();
        for (cluster, arns) in by_cluster(acted) {
            for service in describe_services(aws, &cluster, &arns, false).await? {
                let status = service.status().unwrap_or("UNKNOWN");
                if status == INACTIVE {
                    aws.memory.gone(service.service_arn().unwrap_or_default());
                } else {
                    pending.push(Pending {
                        id: service.service_arn().unwrap_or_default().to_string(),
                        status: status.to_string(),
                    });
                }
            }
        }
        Ok(pending)
    }

    fn outdated_by(&self, operation: &str) -> bool {
        // `act` knows from the run's memory that it scaled the service to 0 itself.
        operation != "UpdateService"
    }

    fn poll_policy(&self) -> PollPolicy {
        PollPolicy {
            first: Duration::from_secs(2),
            cap: Duration::from_secs(10),
        }
    }
}
