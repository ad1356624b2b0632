//! The four ECS actions against moto: each changes what it matched and nothing next to it (a
//! cluster whose name contains the target's, a family with the same prefix, a protected resource),
//! a second run changes nothing, and a dry run makes no mutating call.

use crate::support;

use std::sync::Arc;

use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType, NetworkConfiguration,
    NetworkMode, Tag, TaskDefinitionStatus,
};
use support::faults::{Answer, Faults, Rule};
use teardown::actions::ecs::{
    DELETE_CLUSTER, DELETE_SERVICES, DEREGISTER_TASK_DEFINITIONS, STOP_TASKS,
};
use teardown::actions::ActionSpec;
use teardown::aws::{Aws, AwsOptions, Mode};
use teardown::engine::{FailureKind, StepError, StepOutput};
use teardown::resource::OutcomeKind;

const PROTECT: &[(&str, &str)] = &[("teardown:protect", "true")];

/// Runs one step of `spec` with a fresh client (so that its call log holds only this step's
/// calls) and returns what it reported and the mutating calls it made.
async fn run(
    moto: &support::Moto,
    mode: Mode,
    spec: &ActionSpec,
    selector: &str,
    options: &str,
) -> (Result<StepOutput, StepError>, Vec<String>) {
    let aws = Arc::new(moto.aws(mode));
    let (result, _) = support::run_action(aws.clone(), spec, selector, options).await;
    (result, aws.calls.mutating_operations())
}

/// `name: outcome (detail)` for each resource, sorted, for comparisons that read well when they fail.
fn outcomes(output: &StepOutput) -> Vec<String> {
    let mut lines: Vec<String> = output
        .resources
        .iter()
        .map(|o| format!("{}: {:?}", o.resource.name, o.outcome))
        .collect();
    lines.sort();
    lines
}

fn expect(lines: &[String]) -> Vec<String> {
    let mut lines = lines.to_vec();
    lines.sort();
    lines
}

fn tags(pairs: &[(&str, &str)]) -> Option<Vec<Tag>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
            .collect(),
    )
}

fn short_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap().to_string()
}

/// An account to build in: clients, and the network moto needs to run Fargate tasks.
struct Lab {
    aws: Aws,
    subnet: String,
    security_group: String,
}

impl Lab {
    async fn new(moto: &support::Moto) -> Lab {
        let aws = moto.aws(Mode::Apply);
        let vpc = aws
            .ec2
            .create_vpc()
            .cidr_block("10.7.0.0/16")
            .send()
            .await
            .unwrap()
            .vpc()
            .unwrap()
            .vpc_id()
            .unwrap()
            .to_string();
        // moto's RunTask fails with a 500 in a VPC without DNS hostnames.
        aws.ec2
            .modify_vpc_attribute()
            .vpc_id(&vpc)
            .enable_dns_hostnames(
                aws_sdk_ec2::types::AttributeBooleanValue::builder()
                    .value(true)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let subnet = aws
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.7.1.0/24")
            .send()
            .await
            .unwrap()
            .subnet()
            .unwrap()
            .subnet_id()
            .unwrap()
            .to_string();
        let security_group = aws
            .ec2
            .create_security_group()
            .vpc_id(&vpc)
            .group_name("tasks")
            .description("tasks")
            .send()
            .await
            .unwrap()
            .group_id()
            .unwrap()
            .to_string();
        Lab {
            aws,
            subnet,
            security_group,
        }
    }

    async fn cluster(&self, name: &str, tag_pairs: &[(&str, &str)]) {
        self.aws
            .ecs
            .create_cluster()
            .cluster_name(name)
            .set_tags(tags(tag_pairs))
            .send()
            .await
            .unwrap();
    }

    /// Registers one more revision of `family`; returns its ARN.
    async fn task_definition(&self, family: &str, tag_pairs: &[(&str, &str)]) -> String {
        self.aws
            .ecs
            .register_task_definition()
            .family(family)
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("nginx")
                    .memory(128)
                    .build(),
            )
            .set_tags(tags(tag_pairs))
            .send()
            .await
            .unwrap()
            .task_definition()
            .unwrap()
            .task_definition_arn()
            .unwrap()
            .to_string()
    }

    async fn service(&self, cluster: &str, name: &str, desired: i32, tag_pairs: &[(&str, &str)]) {
        self.aws
            .ecs
            .create_service()
            .cluster(cluster)
            .service_name(name)
            .task_definition("web")
            .desired_count(desired)
            .set_tags(tags(tag_pairs))
            .send()
            .await
            .unwrap();
    }

    /// Runs a Fargate task of family `web`; `group` `service:NAME` makes it one of that service's
    /// tasks (moto starts none for services). Returns its ARN.
    async fn run_task(
        &self,
        cluster: &str,
        group: Option<&str>,
        tag_pairs: &[(&str, &str)],
    ) -> String {
        let network = AwsVpcConfiguration::builder()
            .subnets(&self.subnet)
            .security_groups(&self.security_group)
            .build()
            .unwrap();
        let out = self
            .aws
            .ecs
            .run_task()
            .cluster(cluster)
            .task_definition("web")
            .launch_type(LaunchType::Fargate)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(network)
                    .build(),
            )
            .set_group(group.map(str::to_string))
            .set_tags(tags(tag_pairs))
            .send()
            .await
            .unwrap();
        out.tasks()[0].task_arn().unwrap().to_string()
    }

    /// `lastStatus` of a task, and the reason it stopped.
    async fn task(&self, cluster: &str, arn: &str) -> (String, Option<String>) {
        let out = self
            .aws
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(arn)
            .send()
            .await
            .unwrap();
        let task = out
            .tasks()
            .iter()
            .find(|t| t.task_arn() == Some(arn))
            .expect("task described");
        (
            task.last_status().unwrap().to_string(),
            task.stopped_reason().map(str::to_string),
        )
    }

    /// Status and desired count of a service.
    async fn service_state(&self, cluster: &str, name: &str) -> (String, i32) {
        let out = self
            .aws
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(name)
            .send()
            .await
            .unwrap();
        let service = &out.services()[0];
        (
            service.status().unwrap().to_string(),
            service.desired_count(),
        )
    }

    async fn cluster_status(&self, name: &str) -> String {
        let out = self
            .aws
            .ecs
            .describe_clusters()
            .clusters(name)
            .send()
            .await
            .unwrap();
        out.clusters()[0].status().unwrap().to_string()
    }

    /// `family:revision` of every revision of `family` with this status.
    async fn revisions(&self, family: &str, status: TaskDefinitionStatus) -> Vec<String> {
        let out = self
            .aws
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(status)
            .send()
            .await
            .unwrap();
        out.task_definition_arns()
            .iter()
            .map(|a| short_id(a))
            .collect()
    }
}

#[tokio::test]
async fn stop_tasks_scales_services_and_stops_tasks_of_the_matched_cluster_only() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let lab = Lab::new(&moto).await;
    lab.task_definition("web", &[]).await;
    lab.cluster("demo", &[]).await;
    // Near miss: moto's ListTasks and ListServices for "demo" return this cluster's too.
    lab.cluster("old-demo", &[]).await;
    lab.service("demo", "web", 2, &[]).await;
    lab.service("demo", "keep", 1, PROTECT).await;
    lab.service("old-demo", "web", 1, &[]).await;
    let of_web = lab.run_task("demo", Some("service:web"), &[]).await;
    let plain = lab.run_task("demo", None, &[]).await;
    let protected = lab.run_task("demo", None, PROTECT).await;
    // Protected through its service: stopping it would only make the service start another.
    let of_keep = lab.run_task("demo", Some("service:keep"), &[]).await;
    let bystander = lab.run_task("old-demo", Some("service:web"), &[]).await;
    let selector = r#"cluster = "demo""#;
    let line = |arn: &str, outcome: &str| format!("{}: {outcome}", short_id(arn));

    let (dry, mutating) = run(&moto, Mode::DryRun, &STOP_TASKS, selector, "").await;
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(
        outcomes(&dry.unwrap()),
        expect(&[
            "web: Planned".into(),
            "keep: Protected".into(),
            line(&of_web, "Planned"),
            line(&plain, "Planned"),
            line(&protected, "Protected"),
            line(&of_keep, "Protected"),
        ])
    );

    let (applied, mutating) = run(&moto, Mode::Apply, &STOP_TASKS, selector, "").await;
    let applied = applied.unwrap();
    assert_eq!(
        outcomes(&applied),
        expect(&[
            "web: Done".into(),
            "keep: Protected".into(),
            line(&of_web, "Done"),
            line(&plain, "Done"),
            line(&protected, "Protected"),
            line(&of_keep, "Protected"),
        ])
    );
    // The service first, so that it does not replace the tasks being stopped.
    assert_eq!(
        mutating,
        ["ECS.UpdateService", "ECS.StopTask", "ECS.StopTask"]
    );
    assert_eq!(lab.service_state("demo", "web").await, ("ACTIVE".into(), 0));
    assert_eq!(
        lab.service_state("demo", "keep").await,
        ("ACTIVE".into(), 1)
    );
    assert_eq!(
        lab.service_state("old-demo", "web").await,
        ("ACTIVE".into(), 1)
    );
    for arn in [&of_web, &plain] {
        assert_eq!(
            lab.task("demo", arn).await,
            ("STOPPED".into(), Some("Stopped by teardown".into()))
        );
    }
    for arn in [&protected, &of_keep] {
        assert_eq!(lab.task("demo", arn).await.0, "RUNNING");
    }
    assert_eq!(lab.task("old-demo", &bystander).await.0, "RUNNING");

    let (again, mutating) = run(&moto, Mode::Apply, &STOP_TASKS, selector, "").await;
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(
        outcomes(&again.unwrap()),
        expect(&[
            "keep: Protected".into(),
            line(&protected, "Protected"),
            line(&of_keep, "Protected"),
        ])
    );
}

#[tokio::test]
async fn stop_tasks_with_services_touches_only_those_services_and_their_tasks() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let lab = Lab::new(&moto).await;
    lab.task_definition("web", &[]).await;
    lab.cluster("demo", &[]).await;
    lab.service("demo", "web", 1, &[]).await;
    lab.service("demo", "web-api", 1, &[]).await;
    let of_web = lab.run_task("demo", Some("service:web"), &[]).await;
    let of_api = lab.run_task("demo", Some("service:web-api"), &[]).await;
    let plain = lab.run_task("demo", None, &[]).await;

    let selector = "cluster = \"demo\"\nservices = [\"web\"]";
    let (applied, mutating) = run(&moto, Mode::Apply, &STOP_TASKS, selector, "").await;
    assert_eq!(
        outcomes(&applied.unwrap()),
        expect(&["web: Done".into(), format!("{}: Done", short_id(&of_web))])
    );
    assert_eq!(mutating, ["ECS.UpdateService", "ECS.StopTask"]);
    assert_eq!(
        lab.service_state("demo", "web-api").await,
        ("ACTIVE".into(), 1)
    );
    assert_eq!(lab.task("demo", &of_web).await.0, "STOPPED");
    assert_eq!(lab.task("demo", &of_api).await.0, "RUNNING");
    assert_eq!(lab.task("demo", &plain).await.0, "RUNNING");
}

#[tokio::test]
async fn delete_services_deletes_the_matched_services_and_waits_until_inactive() {
    let moto = support::moto().await;
    let lab = Lab::new(&moto).await;
    lab.task_definition("web", &[]).await;
    lab.cluster("demo", &[]).await;
    lab.cluster("old-demo", &[]).await;
    lab.service("demo", "api", 2, &[]).await;
    lab.service("demo", "api-v2", 0, &[]).await;
    lab.service("demo", "api-keep", 1, PROTECT).await;
    lab.service("demo", "my-api", 1, &[]).await;
    lab.service("old-demo", "api", 1, &[]).await;
    let selector = "cluster = \"demo\"\nname = \"api*\"";

    let (dry, mutating) = run(&moto, Mode::DryRun, &DELETE_SERVICES, selector, "").await;
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(
        outcomes(&dry.unwrap()),
        ["api-keep: Protected", "api-v2: Planned", "api: Planned"]
    );

    let (applied, mutating) = run(&moto, Mode::Apply, &DELETE_SERVICES, selector, "").await;
    let applied = applied.unwrap();
    assert_eq!(
        outcomes(&applied),
        ["api-keep: Protected", "api-v2: Done", "api: Done"]
    );
    let detail = |name: &str| {
        applied
            .resources
            .iter()
            .find(|o| o.resource.name == name)
            .unwrap()
            .detail
            .clone()
    };
    assert_eq!(detail("api"), "scaled to 0 and deleted");
    assert_eq!(detail("api-v2"), "deleted");
    // api-v2 is at 0 already: it is deleted without being scaled to 0 again. (The two services
    // are taken apart side by side: across them, no order.)
    let mut mutating = mutating;
    mutating.sort();
    assert_eq!(
        mutating,
        [
            "ECS.DeleteService",
            "ECS.DeleteService",
            "ECS.UpdateService"
        ]
    );
    assert_eq!(
        lab.service_state("demo", "api").await,
        ("INACTIVE".into(), 0)
    );
    assert_eq!(lab.service_state("demo", "api-v2").await.0, "INACTIVE");
    assert_eq!(
        lab.service_state("demo", "api-keep").await,
        ("ACTIVE".into(), 1)
    );
    assert_eq!(
        lab.service_state("demo", "my-api").await,
        ("ACTIVE".into(), 1)
    );
    assert_eq!(
        lab.service_state("old-demo", "api").await,
        ("ACTIVE".into(), 1)
    );

    let (again, mutating) = run(&moto, Mode::Apply, &DELETE_SERVICES, selector, "").await;
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(outcomes(&again.unwrap()), ["api-keep: Protected"]);
}

#[tokio::test]
async fn deregister_task_definitions_takes_the_family_not_its_prefix_and_deletes_on_request() {
    let moto = support::moto().await;
    let lab = Lab::new(&moto).await;
    lab.task_definition("web", &[]).await;
    lab.task_definition("web", &[]).await;
    lab.task_definition("web", PROTECT).await;
    lab.task_definition("web-old", &[]).await;
    lab.task_definition("api", &[]).await;
    lab.task_definition("apple", &[]).await;
    let selector = r#"family = "web""#;

    let (dry, mutating) = run(
        &moto,
        Mode::DryRun,
        &DEREGISTER_TASK_DEFINITIONS,
        selector,
        "",
    )
    .await;
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(
        outcomes(&dry.unwrap()),
        ["web:1: Planned", "web:2: Planned", "web:3: Protected"]
    );

    let (applied, mutating) = run(
        &moto,
        Mode::Apply,
        &DEREGISTER_TASK_DEFINITIONS,
        selector,
        "",
    )
    .await;
    let applied = applied.unwrap();
    assert_eq!(
        outcomes(&applied),
        ["web:1: Done", "web:2: Done", "web:3: Protected"]
    );
    assert_eq!(
        mutating,
        [
            "ECS.DeregisterTaskDefinition",
            "ECS.DeregisterTaskDefinition"
        ]
    );
    assert!(
        applied.notes[0].contains("delete = true"),
        "{:?}",
        applied.notes
    );
    assert_eq!(
        lab.revisions("web", TaskDefinitionStatus::Active).await,
        ["web:3"]
    );
    assert_eq!(
        lab.revisions("web", TaskDefinitionStatus::Inactive).await,
        ["web:1", "web:2"]
    );
    assert_eq!(
        lab.revisions("web-old", TaskDefinitionStatus::Active).await,
        ["web-old:1"]
    );

    let (again, mutating) = run(
        &moto,
        Mode::Apply,
        &DEREGISTER_TASK_DEFINITIONS,
        selector,
        "",
    )
    .await;
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(outcomes(&again.unwrap()), ["web:3: Protected"]);

    // With `delete`, the INACTIVE revisions go too; the protected one stays ACTIVE.
    let delete = "delete = true";
    let (dry, mutating) = run(
        &moto,
        Mode::DryRun,
        &DEREGISTER_TASK_DEFINITIONS,
        selector,
        delete,
    )
    .await;
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(
        outcomes(&dry.unwrap()),
        ["web:1: Planned", "web:2: Planned", "web:3: Protected"]
    );
    let (deleted, mutating) = run(
        &moto,
        Mode::Apply,
        &DEREGISTER_TASK_DEFINITIONS,
        selector,
        delete,
    )
    .await;
    let deleted = deleted.unwrap();
    assert_eq!(
        outcomes(&deleted),
        ["web:1: Done", "web:2: Done", "web:3: Protected"]
    );
    assert!(deleted
        .resources
        .iter()
        .filter(|o| o.outcome == OutcomeKind::Done)
        .all(|o| o.detail == "deleted"));
    assert_eq!(
        mutating,
        ["ECS.DeleteTaskDefinitions", "ECS.DeleteTaskDefinitions"]
    );
    assert_eq!(
        lab.revisions("web", TaskDefinitionStatus::Inactive).await,
        Vec::<String>::new()
    );
    assert_eq!(
        lab.revisions("web", TaskDefinitionStatus::Active).await,
        ["web:3"]
    );
    let (again, mutating) = run(
        &moto,
        Mode::Apply,
        &DEREGISTER_TASK_DEFINITIONS,
        selector,
        delete,
    )
    .await;
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(outcomes(&again.unwrap()), ["web:3: Protected"]);

    // A glob, and an ACTIVE revision deregistered then deleted in one go.
    let (globbed, mutating) = run(
        &moto,
        Mode::Apply,
        &DEREGISTER_TASK_DEFINITIONS,
        r#"family = "ap?""#,
        delete,
    )
    .await;
    let globbed = globbed.unwrap();
    assert_eq!(outcomes(&globbed), ["api:1: Done"]);
    assert_eq!(globbed.resources[0].detail, "deregistered and deleted");
    assert_eq!(
        mutating,
        ["ECS.DeregisterTaskDefinition", "ECS.DeleteTaskDefinitions"]
    );
    assert_eq!(
        lab.revisions("apple", TaskDefinitionStatus::Active).await,
        ["apple:1"]
    );
    assert_eq!(
        lab.revisions("web-old", TaskDefinitionStatus::Active).await,
        ["web-old:1"]
    );
}

#[tokio::test]
async fn delete_cluster_refuses_while_a_service_or_task_remains_then_deletes_only_the_match() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let lab = Lab::new(&moto).await;
    lab.task_definition("web", &[]).await;
    let lab_tag = &[("env", "lab")];
    lab.cluster("demo", lab_tag).await;
    lab.cluster("demo-keep", &[("env", "lab"), ("teardown:protect", "true")])
        .await;
    lab.cluster("demo-other", &[("env", "prod")]).await;
    lab.cluster("old-demo", lab_tag).await;
    lab.service("demo", "web", 0, &[]).await;
    let task = lab.run_task("demo", None, &[]).await;
    let selector = "name = \"demo*\"\ntags = { env = \"lab\" }";

    let (dry, mutating) = run(&moto, Mode::DryRun, &DELETE_CLUSTER, selector, "").await;
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(
        outcomes(&dry.unwrap()),
        ["demo-keep: Protected", "demo: Planned"]
    );

    // moto would delete it; AWS refuses, and so does teardown, before calling DeleteCluster.
    let (refused, mutating) = run(&moto, Mode::Apply, &DELETE_CLUSTER, selector, "").await;
    let error = refused.expect_err("a cluster with a task and a service must not be deleted");
    assert_eq!(error.kind, FailureKind::Retryable, "{error}");
    assert!(
        error
            .message
            .contains("cluster demo still has 1 service and 1 running task"),
        "{error}"
    );
    assert!(
        error
            .message
            .contains("put the ecs.delete-services and ecs.stop-tasks step in this step's `after`"),
        "{error}"
    );
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(lab.cluster_status("demo").await, "ACTIVE");

    lab.aws
        .ecs
        .delete_service()
        .cluster("demo")
        .service("web")
        .send()
        .await
        .unwrap();
    let (refused, _) = run(&moto, Mode::Apply, &DELETE_CLUSTER, selector, "").await;
    let error = refused.expect_err("a cluster with a running task must not be deleted");
    assert!(
        error.message.contains("still has 1 running task;")
            && error.message.contains("ecs.stop-tasks step"),
        "{error}"
    );
    lab.aws
        .ecs
        .stop_task()
        .cluster("demo")
        .task(&task)
        .send()
        .await
        .unwrap();

    let (applied, mutating) = run(&moto, Mode::Apply, &DELETE_CLUSTER, selector, "").await;
    assert_eq!(
        outcomes(&applied.unwrap()),
        ["demo-keep: Protected", "demo: Done"]
    );
    assert_eq!(mutating, ["ECS.DeleteCluster"]);
    assert_eq!(lab.cluster_status("demo").await, "INACTIVE");
    for name in ["demo-keep", "demo-other", "old-demo"] {
        assert_eq!(lab.cluster_status(name).await, "ACTIVE", "{name}");
    }

    let (again, mutating) = run(&moto, Mode::Apply, &DELETE_CLUSTER, selector, "").await;
    assert_eq!(mutating, Vec::<String>::new());
    assert_eq!(outcomes(&again.unwrap()), ["demo-keep: Protected"]);
}

/// A task told to stop before the step looked (by a run that was killed after its StopTask, or
/// by a person) is no longer listed as meant to run: ECS lists it under the desired status
/// STOPPED until it has stopped, and its cluster cannot be deleted until then. stop-tasks finds
/// it there, sends nothing for it, and waits until it is STOPPED.
///
/// Injected in front of the SDK: moto stops a task within its StopTask, so the task's first two
/// descriptions say what AWS says of a task that is stopping (DEACTIVATING, desired STOPPED).
#[tokio::test]
async fn stop_tasks_waits_for_a_task_that_was_already_stopping() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let lab = Lab::new(&moto).await;
    lab.task_definition("web", &[]).await;
    lab.cluster("demo", &[]).await;
    let task = lab.run_task("demo", None, &[]).await;
    lab.aws
        .ecs
        .stop_task()
        .cluster("demo")
        .task(&task)
        .reason("stopped by a run that was then killed")
        .send()
        .await
        .unwrap();
    let cluster_arn = task.replace(":task/", ":cluster/");
    let cluster_arn = cluster_arn.rsplit_once('/').unwrap().0;
    let stopping = format!(
        r#"{{"tasks":[{{"taskArn":"{task}","clusterArn":"{cluster_arn}","lastStatus":"DEACTIVATING","desiredStatus":"STOPPED","group":"family:web","tags":[]}}],"failures":[]}}"#
    );
    let faults = Faults::new(vec![Rule::on(
        "ECS",
        "DescribeTasks",
        2,
        Answer::Body(stopping),
    )
    .when_request_contains(&task)]);
    let aws = Arc::new(moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![faults.shared()],
            ..AwsOptions::default()
        },
    ));
    let (result, _) =
        support::run_action(aws.clone(), &STOP_TASKS, r#"cluster = "demo""#, "").await;
    let output = result.unwrap();
    // Found (first description), waited for (second), and seen STOPPED (third, moto's own).
    assert_eq!(faults.injected(), 2);
    assert_eq!(outcomes(&output), [format!("{}: Done", short_id(&task))]);
    assert_eq!(
        output.resources[0].detail,
        "already stopping; waited until stopped"
    );
    // Nothing was sent for it: it had been told to stop already.
    assert_eq!(aws.calls.mutating_operations(), Vec::<String>::new());
    assert_eq!(lab.task("demo", &task).await.0, "STOPPED");
}
