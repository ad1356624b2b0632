//! `ecs.delete-cluster`: deletes the matched clusters, refusing (as AWS does) while services or
//! tasks remain in them, and waits until they are INACTIVE.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ecs::operation::delete_cluster::DeleteClusterError;

use super::{
    active_clusters, required_pattern, running_tasks, services_in, tag_map, INACTIVE, SERVICES,
    TASKS,
};
use crate::actions::{
    Acted, Action, ActionSpec, FieldSpec, InputError, Pending, ResourceFilter, StepInput,
    COMMON_FILTER_FIELDS, HAND_OVER_FRESH,
};
use crate::aws::{Aws, AwsError, ErrorClass};
use crate::resource::Resource;
use crate::util::count_of;

const CLUSTER_KIND: &str = "ECS cluster";

/// `ecs.delete-cluster`: deletes the matched clusters, refusing (as AWS does) while services or
/// tasks remain in them.
pub static DELETE_CLUSTER: ActionSpec = ActionSpec {
    name: "ecs.delete-cluster",
    summary: "Delete ECS clusters that no longer hold services or tasks",
    selector: &[
        FieldSpec {
            required: true,
            ..COMMON_FILTER_FIELDS[0]
        },
        COMMON_FILTER_FIELDS[1],
    ],
    options: &[],
    rules: &[],
    permissions: &[
        "ecs:ListClusters",
        "ecs:DescribeClusters",
        "ecs:ListServices",
        "ecs:DescribeServices",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "ecs:DeleteCluster",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        required_pattern(input, "name")?;
        Ok(Arc::new(DeleteCluster {
            filter: input.filter("name"),
        }))
    },
};

struct DeleteCluster {
    filter: ResourceFilter,
}

/// The error for a cluster that still has services or running tasks, which AWS refuses to
/// delete; `None` when it has neither. It names the steps to put before this one.
fn still_held(name: &str, services: usize, tasks: usize) -> Option<AwsError> {
    if services + tasks == 0 {
        return None;
    }
    let mut held = Vec::new();
    let mut steps = Vec::new();
    if services > 0 {
        held.push(count_of(services, "service"));
        steps.push("ecs.delete-services");
    }
    if tasks > 0 {
        held.push(count_of(tasks, "running task"));
        steps.push("ecs.stop-tasks");
    }
    // Retryable: tasks may be stopping and services draining right now.
    Some(AwsError {
        class: ErrorClass::Retryable,
        code: None,
        operation: "ECS.DeleteCluster".into(),
        message: format!(
            "cluster {name} still has {}; AWS refuses to delete a cluster that has them: put the {} step in this step's `after`",
            held.join(" and "),
            steps.join(" and ")
        ),
    })
}

/// Counts the services and running tasks of a cluster (both at once): the error of
/// [`still_held`] when there are any.
async fn count_before_deleting(aws: &Aws, resource: &Resource) -> Result<(), AwsError> {
    let (services, tasks) = tokio::try_join!(
        services_in(aws, &resource.id, |_| true),
        running_tasks(aws, &resource.id)
    )?;
    let services = services
        .iter()
        .filter(|s| s.status() != Some(INACTIVE))
        .count();
    match still_held(&resource.name, services, tasks.len()) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

#[async_trait]
impl Action for DeleteCluster {
    fn resource_kind(&self) -> &'static str {
        CLUSTER_KIND
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let Some(pattern) = &self.filter.name else {
            return Ok(Vec::new());
        };
        let now = chrono::Utc::now();
        let mut found = Vec::new();
        for cluster in active_clusters(aws, pattern).await? {
            let (Some(arn), Some(name)) = (cluster.cluster_arn(), cluster.cluster_name()) else {
                continue;
            };
            let tags = tag_map(cluster.tags());
            // ECS gives no creation time for a cluster: the selector takes no `older_than`.
            let Some(why) = self.filter.matches(name, &tags, None, now) else {
                continue;
            };
            let mut resource = Resource::new(CLUSTER_KIND, arn, name, why);
            resource.tags = tags;
            found.push(resource);
        }
        Ok(found)
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        // moto deletes a cluster that still has services or tasks; AWS refuses
        // (ClusterContainsServicesException / ClusterContainsTasksException). Unless this run
        // itself listed the cluster's services and tasks moments ago and saw each of them gone
        // since (the stop-tasks and delete-services steps before this one), count them first, so
        // that the error is the same everywhere and says which step is missing.
        let memory = &aws.memory;
        let emptied = [SERVICES, TASKS]
            .iter()
            .all(|what| memory.left(&resource.id, what, HAND_OVER_FRESH) == Some(Vec::new()));
        if !emptied {
            count_before_deleting(aws, resource).await?;
        }
        let result = aws.ecs.delete_cluster().cluster(&resource.id).send().await;
        match result {
            // INACTIVE in the answer (no capacity to take down): nothing to wait for.
            Ok(out) if out.cluster().and_then(|c| c.status()) == Some(INACTIVE) => {
                Ok(Acted::Finished("deleted".into()))
            }
            Ok(_) => Ok(Acted::Done("deleted".into())),
            Err(e) => match e.as_service_error() {
                Some(DeleteClusterError::ClusterNotFoundException(_)) => Ok(Acted::AlreadyGone),
                Some(
                    DeleteClusterError::ClusterContainsServicesException(_)
                    | DeleteClusterError::ClusterContainsTasksException(_),
                ) => {
                    // Something started since it was counted: say what, and which step is
                    // missing; AWS's own error (retryable by its code) if the count finds nothing.
                    let error = AwsError::from_sdk("ECS.DeleteCluster", e);
                    count_before_deleting(aws, resource).await?;
                    Err(error)
                }
                _ => Err(AwsError::from_sdk("ECS.DeleteCluster", e)),
            },
        }
    }

    fn timeout_advice(&self, _waiting: &[Resource], continue_later: &str) -> String {
        format!("a cluster stays DEPROVISIONING while ECS takes down its capacity providers (the Auto Scaling groups' instances must terminate first); the cluster's capacity providers in the ECS console say which one holds it. {continue_later} later, or raise the step's `timeout`")
    }

    async fn still_pending(&self, aws: &Aws, acted: &[Resource]) -> Result<Vec<Pending>, AwsError> {
        // Usually INACTIVE at once; DEPROVISIONING while capacity providers are taken down.
        let arns: Vec<String> = acted.iter().map(|r| r.id.clone()).collect();
        let mut pending = Vec::new();
        for chunk in arns.chunks(100) {
            let out = aws
                .ecs
                .describe_clusters()
                .set_clusters(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ECS.DescribeClusters", e))?;
            for cluster in out.clusters() {
                let status = cluster.status().unwrap_or("UNKNOWN");
                if status != INACTIVE {
                    pending.push(Pending {
                        id: cluster.cluster_arn().unwrap_or_default().to_string(),
                        status: status.to_string(),
                    });
                }
            }
        }
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_cluster_may_be_deleted() {
        assert!(still_held("demo", 0, 0).is_none());
    }

    #[test]
    fn a_cluster_that_still_holds_something_names_the_missing_steps() {
        let both = still_held("demo", 2, 1).expect("held");
        assert_eq!(both.class, ErrorClass::Retryable);
        assert_eq!(
            both.message,
            "cluster demo still has 2 services and 1 running task; AWS refuses to delete a cluster that has them: put the ecs.delete-services and ecs.stop-tasks step in this step's `after`"
        );
        let tasks = still_held("demo", 0, 3).expect("held").message;
        assert!(tasks.contains("still has 3 running tasks;"), "{tasks}");
        assert!(tasks.contains("put the ecs.stop-tasks step"), "{tasks}");
        assert!(!tasks.contains("ecs.delete-services"), "{tasks}");
    }
}
