//! ECS: `ecs.stop-tasks`, `ecs.delete-services`, `ecs.deregister-task-definitions` and
//! `ecs.delete-cluster`, the four changes a Fargate teardown makes, in that order; and
//! `ecs.force-new-deployment`, which replaces a service's tasks (after a secret they read at start
//! was rotated, say). One file per action; this one holds what they share: the listers of
//! clusters, services and tasks, and the attributes they record.
//!
//! Every listing is checked again against what was asked for after it is described (cluster of a
//! task or service, exact family of a revision): a listing filter that matches more than it should
//! (moto's cluster filters compare names as substrings) must never widen what a step touches.

mod delete_cluster;
mod delete_services;
mod deregister_task_definitions;
mod force_new_deployment;
mod stop_tasks;

use std::collections::BTreeMap;

use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksError;
use aws_sdk_ecs::operation::list_services::ListServicesError;
use aws_sdk_ecs::operation::list_tasks::ListTasksError;
use aws_sdk_ecs::operation::update_service::UpdateServiceError;
use aws_sdk_ecs::types::{
    Cluster, ClusterField, DesiredStatus, Service, ServiceField, Tag, Task, TaskField,
};

pub use self::delete_cluster::DELETE_CLUSTER;
pub use self::delete_services::DELETE_SERVICES;
pub use self::deregister_task_definitions::DEREGISTER_TASK_DEFINITIONS;
pub use self::force_new_deployment::FORCE_NEW_DEPLOYMENT;
pub use self::stop_tasks::STOP_TASKS;
use crate::actions::{Acted, FieldKind, FieldSpec, InputError, Pattern, StepInput};
use crate::aws::{to_chrono, Aws, AwsError};
use crate::resource::Resource;

const SERVICE_KIND: &str = "ECS service";

/// Attribute: the ARN of the cluster a service or task belongs to.
const CLUSTER: &str = "cluster";
/// Attribute: a service's desired count when it was found.
const DESIRED_COUNT: &str = "desired_count";
/// Attribute: a task's `lastStatus`, or a task definition's status, when it was found.
const STATUS: &str = "status";

/// What [`crate::aws::RunMemory`] calls the listings of a cluster's services and tasks.
const SERVICES: &str = "services";
const TASKS: &str = "tasks";

const ACTIVE: &str = "ACTIVE";
const INACTIVE: &str = "INACTIVE";
const STOPPED: &str = "STOPPED";

/// The `cluster` key of the actions that work inside clusters.
const CLUSTER_FIELD: FieldSpec = FieldSpec {
    name: "cluster",
    kind: FieldKind::Pattern,
    required: true,
    default: None,
    help: "the cluster's name, or a glob with * and ?",
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

/// False for a service or task ARN of the long form (`service/CLUSTER/NAME`) that names another
/// cluster: a listing filter that matches more than it should (moto's) must not make another
/// cluster's services look like this one's. Short-form ARNs name no cluster: kept.
fn may_be_in(arn: &str, cluster_arn: &str) -> bool {
    let parts: Vec<&str> = arn.rsplit('/').collect();
    parts.len() < 3 || parts[1] == last_segment(cluster_arn)
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

/// True for a described cluster that a step may touch: ACTIVE (INACTIVE clusters stay listed for
/// a while after their deletion: they are gone) and named as asked. A name that is only similar
/// (moto's filters compare names as substrings) is not.
fn is_matching_cluster(cluster: &Cluster, pattern: &Pattern) -> bool {
    cluster.status() == Some(ACTIVE)
        && cluster.cluster_arn().is_some()
        && cluster.cluster_name().is_some_and(|n| pattern.matches(n))
}

/// True when a described service's or task's `cluster_arn` is the cluster a request named:
/// `cluster` is its ARN, or its exact name when it was asked at the same time as the cluster's own
/// description (see [`clusters_with_contents`]), where only the name is known yet.
fn names_cluster(cluster_arn: Option<&str>, cluster: &str) -> bool {
    cluster_arn.is_some_and(|arn| {
        arn == cluster || (!cluster.starts_with("arn:") && last_segment(arn) == cluster)
    })
}

/// True for a described service to keep: of the cluster asked about, and not kept already.
fn is_new_in_cluster(service: &Service, cluster: &str, kept: &[Service]) -> bool {
    let new = service
        .service_arn()
        .is_some_and(|arn| !kept.iter().any(|s| s.service_arn() == Some(arn)));
    new && names_cluster(service.cluster_arn(), cluster)
}

/// True for a described task that was asked for, in the cluster asked about.
fn is_asked_task(task: &Task, cluster: &str, asked: &[String]) -> bool {
    names_cluster(task.cluster_arn(), cluster)
        && task
            .task_arn()
            .is_some_and(|arn| asked.iter().any(|a| a == arn))
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
                .filter(|c| is_matching_cluster(c, pattern))
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
    let wanted = |name: &str| name_pattern.is_none_or(|p| p.matches(name));
    for (cluster, services, _) in
        clusters_with_contents(aws, cluster_pattern, wanted, false).await?
    {
        let (Some(cluster_arn), Some(cluster_name)) =
            (cluster.cluster_arn(), cluster.cluster_name())
        else {
            continue;
        };
        let where_ = in_cluster(cluster_pattern, cluster_name);
        for service in services {
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
    Ok(list_services(aws, cluster_arn, wanted)
        .await?
        .of_cluster(aws, cluster_arn))
}

/// What a cluster holds, as one step listed and described it: every id listed, and those of
/// them described. Not yet tied to the cluster's ARN when the request named the cluster by name
/// ([`Listed::of_cluster`] does that).
struct Listed<T> {
    ids: Vec<String>,
    described: Vec<T>,
}

impl Listed<Service> {
    /// The services of the cluster `cluster_arn` (of another one, none), and the listing
    /// remembered for the run: whatever `wanted` kept, every service of the cluster that is not
    /// INACTIVE, what a later step needs to know to tell whether the cluster is empty.
    fn of_cluster(self, aws: &Aws, cluster_arn: &str) -> Vec<Service> {
        let listed = self
            .ids
            .into_iter()
            .filter(|arn| may_be_in(arn, cluster_arn))
            .collect();
        aws.memory.listed(cluster_arn, SERVICES, listed);
        self.described
            .into_iter()
            .filter(|s| s.cluster_arn() == Some(cluster_arn))
            .collect()
    }
}

impl Listed<Task> {
    /// The tasks of the cluster `cluster_arn` meant to run, and, remembered for the run, every one
    /// of them, as a later step needs it to tell whether the cluster is empty.
    fn of_cluster(self, aws: &Aws, cluster_arn: &str) -> Vec<Task> {
        let tasks: Vec<Task> = self
            .described
            .into_iter()
            .filter(|t| t.cluster_arn() == Some(cluster_arn))
            .collect();
        let listed = tasks
            .iter()
            .filter_map(|t| t.task_arn().map(str::to_string))
            .collect();
        aws.memory.listed(cluster_arn, TASKS, listed);
        tasks
    }
}

/// Lists and describes the services of the cluster named `cluster` (its ARN or exact name) whose
/// names pass `wanted`. Empty when the cluster is gone.
async fn list_services(
    aws: &Aws,
    cluster: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<Listed<Service>, AwsError> {
    let listed = aws
        .ecs
        .list_services()
        .cluster(cluster)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    let ids: Vec<String> = match listed {
        Ok(arns) => arns,
        Err(e) => match e.as_service_error() {
            Some(ListServicesError::ClusterNotFoundException(_)) => Vec::new(),
            _ => return Err(AwsError::from_sdk("ECS.ListServices", e)),
        },
    };
    let mut arns: Vec<String> = ids
        .iter()
        .filter(|arn| wanted(last_segment(arn)))
        .cloned()
        .collect();
    arns.sort();
    arns.dedup();
    let described = describe_services(aws, cluster, &arns, true).await?;
    Ok(Listed { ids, described })
}

/// The clusters whose names match `pattern` (ACTIVE, described with their tags), each with its
/// services whose names pass `wanted` and, with `tasks`, its tasks meant to run. For an exact
/// name the three are asked at once, naming the cluster by that name (AWS resolves it to the one
/// ACTIVE cluster of that name in the account and region), and what they list is then tied to
/// the ARN the description gives: one round trip less before the first change. A glob lists
/// the clusters first.
async fn clusters_with_contents(
    aws: &Aws,
    pattern: &Pattern,
    wanted: impl Fn(&str) -> bool + Copy,
    tasks: bool,
) -> Result<Vec<(Cluster, Vec<Service>, Vec<Task>)>, AwsError> {
    let running = |cluster: String| async move {
        if tasks {
            list_running_tasks(aws, &cluster).await
        } else {
            Ok(Listed {
                ids: Vec::new(),
                described: Vec::new(),
            })
        }
    };
    if let Some(name) = pattern.exact() {
        let (clusters, services, listed_tasks) = tokio::try_join!(
            active_clusters(aws, pattern),
            list_services(aws, name, wanted),
            running(name.to_string())
        )?;
        // At most one: the cluster of that exact name.
        let Some(cluster) = clusters.into_iter().next() else {
            return Ok(Vec::new());
        };
        let Some(arn) = cluster.cluster_arn().map(str::to_string) else {
            return Ok(Vec::new());
        };
        let services = services.of_cluster(aws, &arn);
        let listed_tasks = if tasks {
            listed_tasks.of_cluster(aws, &arn)
        } else {
            Vec::new()
        };
        return Ok(vec![(cluster, services, listed_tasks)]);
    }
    let mut found = Vec::new();
    for cluster in active_clusters(aws, pattern).await? {
        let Some(arn) = cluster.cluster_arn().map(str::to_string) else {
            continue;
        };
        let (services, listed_tasks) =
            tokio::try_join!(list_services(aws, &arn, wanted), running(arn.clone()))?;
        let services = services.of_cluster(aws, &arn);
        let listed_tasks = if tasks {
            listed_tasks.of_cluster(aws, &arn)
        } else {
            Vec::new()
        };
        found.push((cluster, services, listed_tasks));
    }
    Ok(found)
}

/// Describes services of one cluster (`cluster`: its ARN, or its exact name), 10 a call (the API's
/// limit). Services that no longer exist
/// are left out, and so are services of other clusters. Empty when the cluster is gone.
async fn describe_services(
    aws: &Aws,
    cluster: &str,
    arns: &[String],
    with_tags: bool,
) -> Result<Vec<Service>, AwsError> {
    let mut services: Vec<Service> = Vec::new();
    for chunk in arns.chunks(10) {
        let mut request = aws
            .ecs
            .describe_services()
            .cluster(cluster)
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
            if is_new_in_cluster(service, cluster, &services) {
                services.push(service.clone());
            }
        }
    }
    Ok(services)
}

/// The tasks of a cluster that are not STOPPED: those meant to run (PENDING or RUNNING), and
/// those told to stop that have not yet (their desired status STOPPED, still DEACTIVATING or
/// STOPPING), described with their tags. Empty when the cluster is gone.
async fn running_tasks(aws: &Aws, cluster_arn: &str) -> Result<Vec<Task>, AwsError> {
    Ok(list_running_tasks(aws, cluster_arn)
        .await?
        .of_cluster(aws, cluster_arn))
}

/// Lists and describes the tasks not STOPPED yet (see [`running_tasks`]) of the cluster named
/// `cluster` (its ARN or exact name). Both listings are asked at once: ECS lists a task being
/// stopped only under the desired status STOPPED, and a cluster holds it until it has stopped,
/// so a step that stops tasks waits for it too (one stopped by a run that was killed, say), and
/// a step that deletes the cluster counts it. Empty when the cluster is gone.
async fn list_running_tasks(aws: &Aws, cluster: &str) -> Result<Listed<Task>, AwsError> {
    let (running, stopping) = tokio::try_join!(
        list_tasks(aws, cluster, DesiredStatus::Running),
        list_tasks(aws, cluster, DesiredStatus::Stopped)
    )?;
    let mut ids = running;
    for id in stopping {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let described = describe_tasks(aws, cluster, &ids, true)
        .await?
        .into_iter()
        .filter(|t| t.last_status() != Some(STOPPED))
        .collect();
    Ok(Listed { ids, described })
}

/// The ARNs of a cluster's tasks of one desired status. Empty when the cluster is gone.
async fn list_tasks(
    aws: &Aws,
    cluster: &str,
    desired: DesiredStatus,
) -> Result<Vec<String>, AwsError> {
    let listed = aws
        .ecs
        .list_tasks()
        .cluster(cluster)
        .desired_status(desired)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    match listed {
        Ok(arns) => Ok(arns),
        Err(e) => match e.as_service_error() {
            Some(ListTasksError::ClusterNotFoundException(_)) => Ok(Vec::new()),
            _ => Err(AwsError::from_sdk("ECS.ListTasks", e)),
        },
    }
}

/// Describes tasks of one cluster (`cluster`: its ARN, or its exact name), 100 a call (the API's
/// limit). Only the tasks asked for, in that cluster, are kept; tasks AWS no longer knows are left out. Empty when the cluster is gone.
async fn describe_tasks(
    aws: &Aws,
    cluster: &str,
    arns: &[String],
    with_tags: bool,
) -> Result<Vec<Task>, AwsError> {
    let mut tasks = Vec::new();
    for chunk in arns.chunks(100) {
        let mut request = aws
            .ecs
            .describe_tasks()
            .cluster(cluster)
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
                .filter(|t| is_asked_task(t, cluster, chunk))
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
        Ok(_) => {
            // Remembered, so that a later step of this run does not scale it again.
            aws.memory.set(&resource.id, DESIRED_COUNT, "0");
            Ok(Acted::Done(format!(
                "scaled to 0 (desired count was {})",
                resource.attribute(DESIRED_COUNT).unwrap_or("unknown")
            )))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::test_input;

    const CLUSTER_ARN: &str = "arn:aws:ecs:us-west-2:123456789012:cluster/demo";

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).expect("pattern")
    }

    fn cluster(name: &str, status: &str) -> Cluster {
        Cluster::builder()
            .cluster_name(name)
            .cluster_arn(format!("arn:aws:ecs:us-west-2:123456789012:cluster/{name}"))
            .status(status)
            .build()
    }

    #[test]
    fn a_long_arn_names_its_cluster() {
        assert!(may_be_in(
            "arn:aws:ecs:us-west-2:123456789012:service/demo/web",
            CLUSTER_ARN
        ));
        assert!(!may_be_in(
            "arn:aws:ecs:us-west-2:123456789012:service/demo2/web",
            CLUSTER_ARN
        ));
        assert!(may_be_in(
            "arn:aws:ecs:us-west-2:123456789012:service/web",
            CLUSTER_ARN
        ));
    }

    #[test]
    fn the_last_segment_of_an_arn_is_the_name_or_id() {
        assert_eq!(last_segment(CLUSTER_ARN), "demo");
        assert_eq!(
            last_segment("arn:aws:ecs:us-west-2:123456789012:service/demo/web"),
            "web"
        );
        assert_eq!(
            last_segment("arn:aws:ecs:us-west-2:123456789012:task/demo/0123456789abcdef"),
            "0123456789abcdef"
        );
        assert_eq!(last_segment("web"), "web");
    }

    #[test]
    fn a_described_cluster_must_be_active_and_named_as_asked() {
        let exact = pattern("demo");
        assert!(is_matching_cluster(&cluster("demo", ACTIVE), &exact));
        // moto's filters compare names as substrings: a longer name never widens the step.
        assert!(!is_matching_cluster(&cluster("demo-2", ACTIVE), &exact));
        assert!(!is_matching_cluster(&cluster("demo", INACTIVE), &exact));
        assert!(!is_matching_cluster(
            &Cluster::builder()
                .cluster_name("demo")
                .status(ACTIVE)
                .build(),
            &exact
        ));
        let glob = pattern("demo-*");
        assert!(is_matching_cluster(&cluster("demo-2", ACTIVE), &glob));
        assert!(!is_matching_cluster(&cluster("demo", ACTIVE), &glob));
    }

    #[test]
    fn a_described_task_is_kept_only_if_asked_for_in_that_cluster() {
        let arn = "arn:aws:ecs:us-west-2:123456789012:task/demo/1";
        let asked = vec![arn.to_string()];
        let task =
            |cluster: &str, arn: &str| Task::builder().cluster_arn(cluster).task_arn(arn).build();
        assert!(is_asked_task(&task(CLUSTER_ARN, arn), CLUSTER_ARN, &asked));
        let other_cluster = "arn:aws:ecs:us-west-2:123456789012:cluster/demo-2";
        assert!(!is_asked_task(
            &task(other_cluster, arn),
            CLUSTER_ARN,
            &asked
        ));
        let not_asked = "arn:aws:ecs:us-west-2:123456789012:task/demo/2";
        assert!(!is_asked_task(
            &task(CLUSTER_ARN, not_asked),
            CLUSTER_ARN,
            &asked
        ));
    }

    #[test]
    fn a_described_service_is_kept_once_and_only_from_its_cluster() {
        let service = |cluster: &str, name: &str| {
            Service::builder()
                .cluster_arn(cluster)
                .service_arn(format!(
                    "arn:aws:ecs:us-west-2:123456789012:service/demo/{name}"
                ))
                .build()
        };
        let web = service(CLUSTER_ARN, "web");
        assert!(is_new_in_cluster(&web, CLUSTER_ARN, &[]));
        assert!(!is_new_in_cluster(
            &web,
            CLUSTER_ARN,
            std::slice::from_ref(&web)
        ));
        assert!(is_new_in_cluster(
            &service(CLUSTER_ARN, "api"),
            CLUSTER_ARN,
            std::slice::from_ref(&web)
        ));
        let elsewhere = service("arn:aws:ecs:us-west-2:123456789012:cluster/other", "web");
        assert!(!is_new_in_cluster(&elsewhere, CLUSTER_ARN, &[]));
        assert!(!is_new_in_cluster(
            &Service::builder().cluster_arn(CLUSTER_ARN).build(),
            CLUSTER_ARN,
            &[]
        ));
    }

    #[test]
    fn why_a_resource_in_a_cluster_matched() {
        assert_eq!(in_cluster(&pattern("demo"), "demo"), "in cluster \"demo\"");
        assert_eq!(
            in_cluster(&pattern("demo-*"), "demo-1"),
            "in cluster \"demo-1\" (cluster matches \"demo-*\")"
        );
    }

    #[test]
    fn resources_are_grouped_by_their_cluster() {
        let other = "arn:aws:ecs:us-west-2:123456789012:cluster/other";
        let resources = [
            Resource::new(SERVICE_KIND, "s1", "s1", "").with_attribute(CLUSTER, CLUSTER_ARN),
            Resource::new(SERVICE_KIND, "s2", "s2", "").with_attribute(CLUSTER, other),
            Resource::new(SERVICE_KIND, "s3", "s3", "").with_attribute(CLUSTER, CLUSTER_ARN),
            // No cluster recorded: nothing to describe it in.
            Resource::new(SERVICE_KIND, "s4", "s4", ""),
        ];
        let groups = by_cluster(&resources);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[CLUSTER_ARN], vec!["s1", "s3"]);
        assert_eq!(groups[other], vec!["s2"]);
    }

    #[test]
    fn tags_without_a_key_are_dropped_and_without_a_value_are_empty() {
        let tags = [
            Tag::builder().key("Lab").value("1").build(),
            Tag::builder().key("Flag").build(),
            Tag::builder().value("orphan").build(),
        ];
        let map = tag_map(&tags);
        assert_eq!(map.len(), 2);
        assert_eq!(map["Lab"], "1");
        assert_eq!(map["Flag"], "");
    }

    #[test]
    fn a_step_built_without_its_required_pattern_is_refused() {
        for (spec, key) in [
            (&STOP_TASKS, "cluster"),
            (&DELETE_SERVICES, "cluster"),
            (&FORCE_NEW_DEPLOYMENT, "cluster"),
            (&DEREGISTER_TASK_DEFINITIONS, "family"),
            (&DELETE_CLUSTER, "name"),
        ] {
            let Err(errors) = (spec.build)(&test_input("", "")) else {
                panic!("{} built without `{key}`", spec.name);
            };
            assert_eq!(errors.len(), 1, "{}", spec.name);
            assert_eq!(errors[0].path, vec!["match", key], "{}", spec.name);
            assert!(errors[0].hint.is_some(), "{}", spec.name);
        }
        assert!((STOP_TASKS.build)(&test_input("cluster = \"demo-*\"", "")).is_ok());
    }
}
