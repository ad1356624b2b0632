//! `ecs.stop-tasks`: scales the matched clusters' services to 0 (so that ECS starts no more tasks
//! for them), then stops their running tasks, and waits until every task is STOPPED.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::operation::stop_task::StopTaskError;
use aws_sdk_ecs::types::Task;

use super::{
    by_cluster, clusters_with_contents, describe_tasks, in_cluster, last_segment, required_pattern,
    scale_to_zero, tag_map, ACTIVE, CLUSTER, CLUSTER_FIELD, DESIRED_COUNT, SERVICE_KIND, STATUS,
    STOPPED,
};
use crate::actions::{
    Acted, Action, ActionSpec, FieldKind, FieldSpec, InputError, Pattern, Pending, PollPolicy,
    StepInput,
};
use crate::aws::{to_chrono, Aws, AwsError};
use crate::resource::Resource;

const TASK_KIND: &str = "ECS task";

/// Attribute: the service that started a task.
const SERVICE: &str = "service";

/// Attribute, on a task already told to stop (its desired status STOPPED) that has not yet.
const STOPPING: &str = "stopping";

/// What AWS records as the reason of every task teardown stops (shown in the console).
const STOP_REASON: &str = "Stopped by teardown";

/// `ecs.stop-tasks`: scales the matched clusters' services to 0 and stops their running tasks.
pub static STOP_TASKS: ActionSpec = ActionSpec {
    name: "ecs.stop-tasks",
    summary: "Scale ECS services to 0 and stop the running tasks of the matched clusters",
    selector: &[
        CLUSTER_FIELD,
        FieldSpec {
            name: "services",
            kind: FieldKind::List,
            required: false,
            default: None,
            help: "only these services (by name) and the tasks they started; every one by default",
        },
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
        "ecs:UpdateService",
        "ecs:StopTask",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Ok(Arc::new(StopTasks {
            cluster: required_pattern(input, "cluster")?,
            services: input.list("services"),
        }))
    },
};

struct StopTasks {
    cluster: Pattern,
    /// Service names; empty for every service.
    services: Vec<String>,
}

impl StopTasks {
    fn wants_service(&self, name: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == name)
    }

    /// With `services`, only the tasks those services started; without, every task (standalone
    /// ones, started by no service, included).
    fn wants_task(&self, started_by: Option<&str>) -> bool {
        self.services.is_empty() || started_by.is_some_and(|s| self.wants_service(s))
    }

    async fn stop_task(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        // Told to stop already (by a run that was killed, by a person): nothing to send, the
        // step waits for it to stop as for the others.
        if resource.attribute(STOPPING).is_some() {
            return Ok(Acted::Done("already stopping; waited until stopped".into()));
        }
        let cluster = resource.attribute(CLUSTER).unwrap_or_default();
        let result = aws
            .ecs
            .stop_task()
            .cluster(cluster)
            .task(&resource.id)
            .reason(STOP_REASON)
            .send()
            .await;
        match result {
            // STOPPED in the answer (a task that never started): nothing to wait for.
            Ok(out) if out.task().and_then(|t| t.last_status()) == Some(STOPPED) => {
                aws.memory.gone(&resource.id);
                Ok(Acted::Finished("stopped".into()))
            }
            Ok(_) => Ok(Acted::Done("stopped".into())),
            Err(e) => match e.as_service_error() {
                Some(StopTaskError::ClusterNotFoundException(_)) => Ok(Acted::AlreadyGone),
                // AWS says InvalidParameterException for a task it has forgotten (stopped long
                // ago) as for a bad request: ask whether the task still runs instead of reading
                // the message.
                Some(StopTaskError::InvalidParameterException(_)) => {
                    let error = AwsError::from_sdk("ECS.StopTask", e);
                    let tasks =
                        describe_tasks(aws, cluster, std::slice::from_ref(&resource.id), false)
                            .await?;
                    if tasks.iter().any(|t| t.last_status() != Some(STOPPED)) {
                        Err(error)
                    } else {
                        Ok(Acted::AlreadyGone)
                    }
                }
                _ => Err(AwsError::from_sdk("ECS.StopTask", e)),
            },
        }
    }
}

/// The name of the service that started a task: ECS names the group of a service's tasks
/// `service:NAME`.
fn started_by(task: &Task) -> Option<&str> {
    task.group().and_then(|g| g.strip_prefix("service:"))
}

/// A task inherits the tags of its service that it lacks (as ECS's propagateTags would give
/// them): protecting a service then protects the tasks it runs, which stopping would only make it
/// start again.
fn inherit_tags(tags: &mut BTreeMap<String, String>, from_service: &BTreeMap<String, String>) {
    for (key, value) in from_service {
        tags.entry(key.clone()).or_insert_with(|| value.clone());
    }
}

#[async_trait]
impl Action for StopTasks {
    fn resource_kind(&self) -> &'static str {
        TASK_KIND
    }

    fn verb(&self) -> &'static str {
        "stop"
    }

    fn verb_for(&self, kind: &str) -> &'static str {
        if kind == SERVICE_KIND {
            "scale to 0"
        } else {
            "stop"
        }
    }

    fn planned(&self, resource: &Resource) -> String {
        if resource.attribute(STOPPING).is_some() {
            "already stopping: would wait until it stops".into()
        } else {
            format!("would {} it", self.verb())
        }
    }

    fn timeout_advice(&self, _waiting: &[Resource], continue_later: &str) -> String {
        format!("ECS stops a task once its containers have exited: after their stop timeout (`stopTimeout`, 30 s by default, 120 s at most on Fargate), longer while its load balancer drains it; the task's `stoppedReason` and its containers' logs say what holds it. {continue_later} later, or raise the step's `timeout`")
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let mut services_found = Vec::new();
        let mut tasks_found = Vec::new();
        // The services and the tasks do not depend on each other: both are asked at once (and
        // with the cluster's description too, for an exact name).
        let wanted = |name: &str| self.wants_service(name);
        for (cluster, services, tasks) in
            clusters_with_contents(aws, &self.cluster, wanted, true).await?
        {
            let (Some(cluster_arn), Some(cluster_name)) =
                (cluster.cluster_arn(), cluster.cluster_name())
            else {
                continue;
            };
            let where_ = in_cluster(&self.cluster, cluster_name);
            let mut service_tags = BTreeMap::new();
            for service in services.iter().filter(|s| s.status() == Some(ACTIVE)) {
                let (Some(arn), Some(name)) = (service.service_arn(), service.service_name())
                else {
                    continue;
                };
                let tags = tag_map(service.tags());
                service_tags.insert(name.to_string(), tags.clone());
                // A service at 0 starts nothing: there is nothing to change.
                if service.desired_count() == 0 {
                    continue;
                }
                let mut resource = Resource::new(SERVICE_KIND, arn, name, where_.clone())
                    .with_attribute(CLUSTER, cluster_arn)
                    .with_attribute(DESIRED_COUNT, service.desired_count().to_string());
                resource.created = service.created_at().and_then(to_chrono);
                resource.tags = tags;
                services_found.push(resource);
            }
            for task in tasks {
                let Some(arn) = task.task_arn() else { continue };
                let service = started_by(&task);
                if !self.wants_task(service) {
                    continue;
                }
                let mut tags = tag_map(task.tags());
                if let Some(inherited) = service.and_then(|s| service_tags.get(s)) {
                    inherit_tags(&mut tags, inherited);
                }
                let why = match service {
                    Some(s) => format!("{where_}, started by service \"{s}\""),
                    None => where_.clone(),
                };
                let mut resource = Resource::new(TASK_KIND, arn, last_segment(arn), why)
                    .with_attribute(CLUSTER, cluster_arn)
                    .with_attribute(STATUS, task.last_status().unwrap_or("UNKNOWN"));
                if task.desired_status() == Some(STOPPED) {
                    resource = resource.with_attribute(STOPPING, "true");
                }
                if let Some(s) = service {
                    resource = resource.with_attribute(SERVICE, s);
                }
                resource.created = task.created_at().and_then(to_chrono);
                resource.tags = tags;
                tasks_found.push(resource);
            }
        }
        // Every service is scaled to 0 before any task stops, or a service would replace them.
        services_found.extend(tasks_found);
        Ok(services_found)
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        if resource.kind == SERVICE_KIND {
            scale_to_zero(aws, resource).await
        } else {
            self.stop_task(aws, resource).await
        }
    }

    async fn still_pending(&self, aws: &Aws, acted: &[Resource]) -> Result<Vec<Pending>, AwsError> {
        // A service is done once its desired count is 0; its tasks are waited for as tasks.
        let tasks = acted.iter().filter(|r| r.kind == TASK_KIND);
        let mut pending = Vec::new();
        for (cluster, arns) in by_cluster(tasks) {
            for task in describe_tasks(aws, &cluster, &arns, false).await? {
                let status = task.last_status().unwrap_or("UNKNOWN");
                if status == STOPPED {
                    aws.memory.gone(task.task_arn().unwrap_or_default());
                } else {
                    pending.push(Pending {
                        id: task.task_arn().unwrap_or_default().to_string(),
                        status: status.to_string(),
                    });
                }
            }
        }
        Ok(pending)
    }

    fn poll_policy(&self) -> PollPolicy {
        // Fargate tasks stop in seconds to a minute (the container's stop timeout is 30 s).
        PollPolicy {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop_tasks(services: &[&str]) -> StopTasks {
        StopTasks {
            cluster: Pattern::parse("demo").expect("pattern"),
            services: services.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_task_is_told_apart_by_the_service_that_started_it() {
        let task = |group: Option<&str>| Task::builder().set_group(group.map(Into::into)).build();
        assert_eq!(started_by(&task(Some("service:web"))), Some("web"));
        // A task started by hand (RunTask) is in a `family:` group, or none.
        assert_eq!(started_by(&task(Some("family:web"))), None);
        assert_eq!(started_by(&task(None)), None);
    }

    #[test]
    fn without_services_every_task_is_stopped() {
        let every = stop_tasks(&[]);
        assert!(every.wants_service("web"));
        assert!(every.wants_task(Some("web")));
        assert!(every.wants_task(None));
    }

    #[test]
    fn with_services_only_their_tasks_are_stopped() {
        let some = stop_tasks(&["web", "worker"]);
        assert!(some.wants_service("worker"));
        assert!(!some.wants_service("web-canary"));
        assert!(some.wants_task(Some("web")));
        assert!(!some.wants_task(Some("api")));
        // A standalone task is no listed service's.
        assert!(!some.wants_task(None));
    }

    #[test]
    fn a_task_keeps_its_own_tags_and_gains_its_services_others() {
        let mut tags: BTreeMap<String, String> = [("Owner".to_string(), "task".to_string())].into();
        let service: BTreeMap<String, String> = [
            ("Owner".to_string(), "service".to_string()),
            ("teardown:protect".to_string(), "true".to_string()),
        ]
        .into();
        inherit_tags(&mut tags, &service);
        assert_eq!(tags["Owner"], "task");
        assert_eq!(tags["teardown:protect"], "true");
    }
}
