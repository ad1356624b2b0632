//! ECS: `ecs.stop-tasks`, `ecs.delete-services`, `ecs.deregister-task-definitions` and
//! `ecs.delete-cluster`, the four changes a Fargate teardown makes, in that order; and
//! `ecs.force-new-deployment`, which replaces a service's tasks (after a secret they read at start
//! was rotated, say).
//!
//! Every listing is checked again against what was asked for after it is described (cluster of a
//! task or service, exact family of a revision): a listing filter that matches more than it should
//! (moto's cluster filters compare names as substrings) must never widen what a step touches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::operation::delete_cluster::DeleteClusterError;
use aws_sdk_ecs::operation::delete_service::DeleteServiceError;
use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksError;
use aws_sdk_ecs::operation::list_services::ListServicesError;
use aws_sdk_ecs::operation::list_tasks::ListTasksError;
use aws_sdk_ecs::operation::stop_task::StopTaskError;
use aws_sdk_ecs::operation::update_service::UpdateServiceError;
use aws_sdk_ecs::types::{
    Cluster, ClusterField, Deployment, DeploymentRolloutState, DesiredStatus, Service,
    ServiceField, Tag, Task, TaskDefinitionFamilyStatus, TaskDefinitionField, TaskDefinitionStatus,
    TaskField,
};

use super::{
    Acted, Action, ActionSpec, FieldKind, FieldSpec, InputError, Pattern, Pending, PollPolicy,
    ResourceFilter, StepInput, COMMON_FILTER_FIELDS,
};
use crate::aws::{to_chrono, Aws, AwsError, ErrorClass};
use crate::resource::{OutcomeKind, Resource, ResourceOutcome};
use crate::util::count_of;

const CLUSTER_KIND: &str = "ECS cluster";
const SERVICE_KIND: &str = "ECS service";
const TASK_KIND: &str = "ECS task";
const TASK_DEFINITION_KIND: &str = "ECS task definition";

/// Attribute: the ARN of the cluster a service or task belongs to.
const CLUSTER: &str = "cluster";
/// Attribute: a service's desired count when it was found.
const DESIRED_COUNT: &str = "desired_count";
/// Attribute: a task's `lastStatus`, or a task definition's status, when it was found.
const STATUS: &str = "status";
/// Attribute: the service that started a task.
const SERVICE: &str = "service";
/// Attribute: a service's running count when it was found.
const RUNNING_COUNT: &str = "running_count";
/// Attribute: the id of a service's PRIMARY deployment when it was found.
const DEPLOYMENT: &str = "deployment";

const ACTIVE: &str = "ACTIVE";
const INACTIVE: &str = "INACTIVE";
const STOPPED: &str = "STOPPED";

/// What AWS records as the reason of every task teardown stops (shown in the console).
const STOP_REASON: &str = "Stopped by teardown";

/// The `cluster` key of the actions that work inside clusters.
const CLUSTER_FIELD: FieldSpec = FieldSpec {
    name: "cluster",
    kind: FieldKind::Pattern,
    required: true,
    help: "the cluster's name, or a glob with * and ?",
};

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
            help: "only these services (by name) and the tasks they started; every one by default",
        },
    ],
    options: &[],
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

/// `ecs.delete-services`: scales the matched services to 0, deletes them, waits until INACTIVE.
pub static DELETE_SERVICES: ActionSpec = ActionSpec {
    name: "ecs.delete-services",
    summary: "Delete ECS services (scaled to 0 first) and wait until they are INACTIVE",
    selector: &[CLUSTER_FIELD, COMMON_FILTER_FIELDS[0]],
    options: &[],
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

/// `ecs.deregister-task-definitions`: deregisters the ACTIVE revisions of the matched families;
/// with `delete`, deletes them and the INACTIVE ones too.
pub static DEREGISTER_TASK_DEFINITIONS: ActionSpec = ActionSpec {
    name: "ecs.deregister-task-definitions",
    summary: "Deregister every ACTIVE revision of ECS task definition families (delete = true also deletes them)",
    selector: &[FieldSpec {
        name: "family",
        kind: FieldKind::Pattern,
        required: true,
        help: "the task definition family, or a glob with * and ?",
    }],
    options: &[FieldSpec {
        name: "delete",
        kind: FieldKind::Bool,
        required: false,
        help: "also delete the revisions (INACTIVE ones included) instead of leaving them INACTIVE",
    }],
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

/// A pattern the plan validator already required; checked again so that a step built by hand
/// without it is an error rather than a step that matches everything.
fn required_pattern(input: &StepInput, key: &str) -> Result<Pattern, Vec<InputError>> {
    input.pattern(key).ok_or_else(|| {
        vec![
            InputError::at(&["match", key], format!("missing `{key}` in match"))
                .hint(format!("add `{key} = ...` (a name or a glob)")),
        ]
    })
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// The last part of an ECS ARN: a cluster's or service's name, a task's id.
fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Why a resource inside a cluster matched: `in cluster "demo"`, or with a glob
/// `in cluster "demo-1" (cluster matches "demo-*")`.
fn in_cluster(pattern: &Pattern, cluster_name: &str) -> String {
    match pattern {
        Pattern::Exact(_) => format!("in cluster \"{cluster_name}\""),
        Pattern::Glob(..) => format!(
            "in cluster \"{cluster_name}\" ({})",
            pattern.describe("cluster")
        ),
    }
}

/// The ACTIVE clusters whose names match, with their tags. An exact name is asked for directly;
/// a glob lists the region's clusters first.
async fn active_clusters(aws: &Aws, pattern: &Pattern) -> Result<Vec<Cluster>, AwsError> {
    let wanted: Vec<String> = match pattern.exact() {
        Some(name) => vec![name.to_string()],
        None => aws
            .ecs
            .list_clusters()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::from_sdk("ECS.ListClusters", e))?
            .into_iter()
            .filter(|arn| pattern.matches(last_segment(arn)))
            .collect(),
    };
    let mut clusters = Vec::new();
    // Never an empty list: DescribeClusters without clusters describes the `default` cluster.
    for chunk in wanted.chunks(100) {
        let out = aws
            .ecs
            .describe_clusters()
            .set_clusters(Some(chunk.to_vec()))
            .include(ClusterField::Tags)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS.DescribeClusters", e))?;
        // A name that does not exist comes back in `failures` (MISSING): it matches nothing.
        // INACTIVE clusters stay listed for a while after their deletion: they are gone.
        clusters.extend(
            out.clusters()
                .iter()
                .filter(|c| {
                    c.status() == Some(ACTIVE)
                        && c.cluster_arn().is_some()
                        && c.cluster_name().is_some_and(|n| pattern.matches(n))
                })
                .cloned(),
        );
    }
    Ok(clusters)
}

/// The ACTIVE services whose cluster and name match, each with the resource that stands for it
/// (its cluster and desired count as attributes). DRAINING services are being deleted already;
/// INACTIVE ones are gone.
async fn active_services(
    aws: &Aws,
    cluster_pattern: &Pattern,
    name_pattern: Option<&Pattern>,
) -> Result<Vec<(Service, Resource)>, AwsError> {
    let mut found = Vec::new();
    for cluster in active_clusters(aws, cluster_pattern).await? {
        let (Some(cluster_arn), Some(cluster_name)) =
            (cluster.cluster_arn(), cluster.cluster_name())
        else {
            continue;
        };
        let where_ = in_cluster(cluster_pattern, cluster_name);
        let wanted = |name: &str| name_pattern.is_none_or(|p| p.matches(name));
        for service in services_in(aws, cluster_arn, wanted).await? {
            if service.status() != Some(ACTIVE) {
                continue;
            }
            let (Some(arn), Some(name)) = (service.service_arn(), service.service_name()) else {
                continue;
            };
            let why = match name_pattern {
                Some(p) => format!("{}, {where_}", p.describe("name")),
                None => where_.clone(),
            };
            let mut resource = Resource::new(SERVICE_KIND, arn, name, why)
                .with_attribute(CLUSTER, cluster_arn)
                .with_attribute(DESIRED_COUNT, service.desired_count().to_string());
            resource.created = service.created_at().and_then(to_chrono);
            resource.tags = tag_map(service.tags());
            found.push((service, resource));
        }
    }
    Ok(found)
}

/// The services of a cluster whose names pass `wanted`, described with their tags (INACTIVE ones
/// included: callers decide). Empty when the cluster is gone.
async fn services_in(
    aws: &Aws,
    cluster_arn: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<Service>, AwsError> {
    let listed = aws
        .ecs
        .list_services()
        .cluster(cluster_arn)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    let mut arns = match listed {
        Ok(arns) => arns,
        Err(e) => match e.as_service_error() {
            Some(ListServicesError::ClusterNotFoundException(_)) => return Ok(Vec::new()),
            _ => return Err(AwsError::from_sdk("ECS.ListServices", e)),
        },
    };
    arns.retain(|arn| wanted(last_segment(arn)));
    arns.sort();
    arns.dedup();
    describe_services(aws, cluster_arn, &arns, true).await
}

/// Describes services of one cluster, 10 a call (the API's limit). Services that no longer exist
/// are left out, and so are services of other clusters. Empty when the cluster is gone.
async fn describe_services(
    aws: &Aws,
    cluster_arn: &str,
    arns: &[String],
    with_tags: bool,
) -> Result<Vec<Service>, AwsError> {
    let mut services: Vec<Service> = Vec::new();
    for chunk in arns.chunks(10) {
        let mut request = aws
            .ecs
            .describe_services()
            .cluster(cluster_arn)
            .set_services(Some(chunk.to_vec()));
        if with_tags {
            request = request.include(ServiceField::Tags);
        }
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) => match e.as_service_error() {
                Some(DescribeServicesError::ClusterNotFoundException(_)) => return Ok(Vec::new()),
                _ => return Err(AwsError::from_sdk("ECS.DescribeServices", e)),
            },
        };
        for service in out.services() {
            let new = service
                .service_arn()
                .is_some_and(|arn| !services.iter().any(|s| s.service_arn() == Some(arn)));
            if new && service.cluster_arn() == Some(cluster_arn) {
                services.push(service.clone());
            }
        }
    }
    Ok(services)
}

/// The tasks of a cluster that are meant to run (PENDING or RUNNING), described with their tags.
/// Empty when the cluster is gone.
async fn running_tasks(aws: &Aws, cluster_arn: &str) -> Result<Vec<Task>, AwsError> {
    let listed = aws
        .ecs
        .list_tasks()
        .cluster(cluster_arn)
        .desired_status(DesiredStatus::Running)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    let arns = match listed {
        Ok(arns) => arns,
        Err(e) => match e.as_service_error() {
            Some(ListTasksError::ClusterNotFoundException(_)) => return Ok(Vec::new()),
            _ => return Err(AwsError::from_sdk("ECS.ListTasks", e)),
        },
    };
    let tasks = describe_tasks(aws, cluster_arn, &arns, true).await?;
    Ok(tasks
        .into_iter()
        .filter(|t| t.last_status() != Some(STOPPED))
        .collect())
}

/// Describes tasks of one cluster, 100 a call (the API's limit). Only the tasks asked for, in
/// that cluster, are kept; tasks AWS no longer knows are left out. Empty when the cluster is gone.
async fn describe_tasks(
    aws: &Aws,
    cluster_arn: &str,
    arns: &[String],
    with_tags: bool,
) -> Result<Vec<Task>, AwsError> {
    let mut tasks = Vec::new();
    for chunk in arns.chunks(100) {
        let mut request = aws
            .ecs
            .describe_tasks()
            .cluster(cluster_arn)
            .set_tasks(Some(chunk.to_vec()));
        if with_tags {
            request = request.include(TaskField::Tags);
        }
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) => match e.as_service_error() {
                Some(DescribeTasksError::ClusterNotFoundException(_)) => return Ok(Vec::new()),
                _ => return Err(AwsError::from_sdk("ECS.DescribeTasks", e)),
            },
        };
        tasks.extend(
            out.tasks()
                .iter()
                .filter(|t| {
                    t.cluster_arn() == Some(cluster_arn)
                        && t.task_arn()
                            .is_some_and(|arn| chunk.iter().any(|a| a == arn))
                })
                .cloned(),
        );
    }
    Ok(tasks)
}

/// Sets a service's desired count to 0, so that ECS stops starting tasks for it.
async fn scale_to_zero(aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
    let result = aws
        .ecs
        .update_service()
        .cluster(resource.attribute(CLUSTER).unwrap_or_default())
        .service(&resource.id)
        .desired_count(0)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Acted::Done(format!(
            "scaled to 0 (desired count was {})",
            resource.attribute(DESIRED_COUNT).unwrap_or("unknown")
        ))),
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

/// Groups resources by the cluster they belong to, for the per-cluster Describe calls.
fn by_cluster<'a>(
    resources: impl IntoIterator<Item = &'a Resource>,
) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in resources {
        if let Some(cluster) = r.attribute(CLUSTER) {
            groups
                .entry(cluster.to_string())
                .or_default()
                .push(r.id.clone());
        }
    }
    groups
}

// ---- ecs.stop-tasks ---------------------------------------------------------------------------

struct StopTasks {
    cluster: Pattern,
    /// Service names; empty for every service.
    services: Vec<String>,
}

impl StopTasks {
    fn wants_service(&self, name: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == name)
    }

    async fn stop_task(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
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

#[async_trait]
impl Action for StopTasks {
    fn resource_kind(&self) -> &'static str {
        TASK_KIND
    }

    fn verb(&self) -> &'static str {
        "stop"
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let mut services_found = Vec::new();
        let mut tasks_found = Vec::new();
        for cluster in active_clusters(aws, &self.cluster).await? {
            let (Some(cluster_arn), Some(cluster_name)) =
                (cluster.cluster_arn(), cluster.cluster_name())
            else {
                continue;
            };
            let where_ = in_cluster(&self.cluster, cluster_name);
            let services = services_in(aws, cluster_arn, |name| self.wants_service(name)).await?;
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
            for task in running_tasks(aws, cluster_arn).await? {
                let Some(arn) = task.task_arn() else { continue };
                // ECS names the group of a service's tasks `service:NAME`.
                let service = task.group().and_then(|g| g.strip_prefix("service:"));
                if !self.services.is_empty() && !service.is_some_and(|s| self.wants_service(s)) {
                    continue;
                }
                let mut tags = tag_map(task.tags());
                // A task inherits the tags of its service that it lacks (as ECS's propagateTags
                // would give them): protecting a service then protects the tasks it runs, which
                // stopping would only make it start again.
                if let Some(inherited) = service.and_then(|s| service_tags.get(s)) {
                    for (key, value) in inherited {
                        tags.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                }
                let why = match service {
                    Some(s) => format!("{where_}, started by service \"{s}\""),
                    None => where_.clone(),
                };
                let mut resource = Resource::new(TASK_KIND, arn, last_segment(arn), why)
                    .with_attribute(CLUSTER, cluster_arn)
                    .with_attribute(STATUS, task.last_status().unwrap_or("UNKNOWN"));
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
                if status != STOPPED {
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

// ---- ecs.delete-services ----------------------------------------------------------------------

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
        // orderly stop of its tasks); scaling again when it is at 0 already changes nothing.
        let scaled = match scale_to_zero(aws, resource).await? {
            Acted::AlreadyGone => return Ok(Acted::AlreadyGone),
            _ => resource.attribute(DESIRED_COUNT).is_some_and(|n| n != "0"),
        };
        let result = aws
            .ecs
            .delete_service()
            .cluster(resource.attribute(CLUSTER).unwrap_or_default())
            .service(&resource.id)
            .send()
            .await;
        match result {
            Ok(_) if scaled => Ok(Acted::Done("scaled to 0 and deleted".into())),
            Ok(_) => Ok(Acted::Done("deleted".into())),
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

    async fn still_pending(&self, aws: &Aws, acted: &[Resource]) -> Result<Vec<Pending>, AwsError> {
        // A deleted service is DRAINING until its tasks have stopped, then INACTIVE.
        let mut pending = Vec::new();
        for (cluster, arns) in by_cluster(acted) {
            for service in describe_services(aws, &cluster, &arns, false).await? {
                let status = service.status().unwrap_or("UNKNOWN");
                if status != INACTIVE {
                    pending.push(Pending {
                        id: service.service_arn().unwrap_or_default().to_string(),
                        status: status.to_string(),
                    });
                }
            }
        }
        Ok(pending)
    }

    fn poll_policy(&self) -> PollPolicy {
        PollPolicy {
            first: Duration::from_secs(2),
            cap: Duration::from_secs(10),
        }
    }
}

// ---- ecs.force-new-deployment -----------------------------------------------------------------

struct ForceNewDeployment {
    cluster: Pattern,
    name: Option<Pattern>,
    /// By service ARN, what the wait saw once the service was stable: what `notes` reports.
    redeployed: Mutex<BTreeMap<String, Redeployed>>,
}

/// A service that became stable on its new deployment.
#[derive(Clone, Debug)]
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
                let deployments = service.deployments().len();
                let (running, desired) = (service.running_count(), service.desired_count());
                let new_id = primary.and_then(|d| d.id()).unwrap_or_default();
                let status = if resource.attribute(DEPLOYMENT) == Some(new_id) {
                    "waiting for the new deployment".to_string()
                } else if deployments != 1 {
                    format!("{deployments} deployments, {running} of {desired} running")
                } else if running != desired {
                    format!("{running} of {desired} running")
                } else {
                    self.redeployed
                        .lock()
                        .expect("deployments poisoned")
                        .insert(
                            resource.id.clone(),
                            Redeployed {
                                deployment: new_id.to_string(),
                                running,
                                desired,
                            },
                        );
                    continue;
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

// ---- ecs.deregister-task-definitions ----------------------------------------------------------

struct DeregisterTaskDefinitions {
    family: Pattern,
    delete: bool,
}

/// `family` and revision of a task definition ARN (`...:task-definition/web:3`).
fn family_revision(arn: &str) -> Option<(&str, u32)> {
    let (family, revision) = last_segment(arn).rsplit_once(':')?;
    Some((family, revision.parse().ok()?))
}

/// The literal start of a glob, to narrow the listing AWS does: `web-*` gives `web-`.
fn literal_prefix(glob: &str) -> &str {
    let end = glob.find(['*', '?', '[', '{', '\\']).unwrap_or(glob.len());
    &glob[..end]
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
        // `familyPrefix` is documented as the full family name, yet named a prefix: check the
        // family exactly, so that "web" can never take "web-old" with it.
        Ok(arns
            .into_iter()
            .filter(|arn| family_revision(arn).is_some_and(|(f, _)| f == family))
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
                let prefix = literal_prefix(self.family.as_str());
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
        let mut found = Vec::new();
        for family in &families {
            for status in &statuses {
                for arn in self.revisions(aws, family, status.clone()).await? {
                    let Some((family, revision)) = family_revision(&arn) else {
                        continue;
                    };
                    let described = aws
                        .ecs
                        .describe_task_definition()
                        .task_definition(&arn)
                        .include(TaskDefinitionField::Tags)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk("ECS.DescribeTaskDefinition", e))?;
                    let why = match status {
                        TaskDefinitionStatus::Active => self.family.describe("family"),
                        _ => format!("{}, {}", self.family.describe("family"), status.as_str()),
                    };
                    let mut resource = Resource::new(
                        TASK_DEFINITION_KIND,
                        &arn,
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
            }
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

// ---- ecs.delete-cluster -----------------------------------------------------------------------

struct DeleteCluster {
    filter: ResourceFilter,
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
        // (ClusterContainsServicesException / ClusterContainsTasksException). Count them first so
        // that the error is the same everywhere and says which step is missing.
        let services = services_in(aws, &resource.id, |_| true)
            .await?
            .iter()
            .filter(|s| s.status() != Some(INACTIVE))
            .count();
        let tasks = running_tasks(aws, &resource.id).await?.len();
        if services + tasks > 0 {
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
            return Err(AwsError {
                class: ErrorClass::Retryable,
                code: None,
                operation: "ECS.DeleteCluster".into(),
                message: format!(
                    "cluster {} still has {}; AWS refuses to delete a cluster that has them: put the {} step in this step's `after`",
                    resource.name,
                    held.join(" and "),
                    steps.join(" and ")
                ),
            });
        }
        let result = aws.ecs.delete_cluster().cluster(&resource.id).send().await;
        match result {
            Ok(_) => Ok(Acted::Done("deleted".into())),
            Err(e) => match e.as_service_error() {
                Some(DeleteClusterError::ClusterNotFoundException(_)) => Ok(Acted::AlreadyGone),
                // ClusterContains* (something started after the count) are retryable by code.
                _ => Err(AwsError::from_sdk("ECS.DeleteCluster", e)),
            },
        }
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
