//! The checks: what of a lab is still there ([`real_lab_leftovers`]), and what of a lab or of the
//! look-alikes was changed ([`real_lab_damage`], [`lookalike_damage`]), one line per thing, in
//! words a failing test can print. Each reads what it needs at once (the probes are
//! independent), so a check costs a few round trips, not one per resource.

use aws_sdk_ec2::types::Filter;
use teardown::aws::{Aws, AwsError};

use super::{unexpected, RealLab, RealLookalikes};

/// A stack's status by name or id, `None` once it is gone (unknown, or DELETE_COMPLETE).
async fn stack_status(aws: &Aws, name_or_id: &str) -> Option<String> {
    match aws
        .cloudformation
        .describe_stacks()
        .stack_name(name_or_id)
        .send()
        .await
    {
        Ok(out) => {
            let status = out
                .stacks()
                .first()
                .and_then(|s| s.stack_status())
                .map(|s| s.as_str().to_string())?;
            (status != "DELETE_COMPLETE").then_some(status)
        }
        Err(e) => {
            let e = AwsError::from_sdk("CloudFormation.DescribeStacks", e);
            // CloudFormation's only word for a missing stack.
            if e.code.as_deref() == Some("ValidationError") && e.message.contains("does not exist")
            {
                None
            } else {
                unexpected(&format!("stack {name_or_id}"), &e)
            }
        }
    }
}

/// Which of these EC2 things exist: `kind` is the filter (`vpc-id`, `subnet-id`, `group-id`,
/// `network-interface-id`); each found id with its state where it has one.
async fn ec2_present(aws: &Aws, kind: &str, ids: &[String]) -> Vec<(String, String)> {
    let filter = Filter::builder()
        .name(kind)
        .set_values(Some(ids.to_vec()))
        .build();
    let what = format!("{kind} {ids:?}");
    match kind {
        "vpc-id" => aws
            .ec2
            .describe_vpcs()
            .filters(filter)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("EC2.DescribeVpcs", e))
            .unwrap_or_else(|e| unexpected(&what, &e))
            .vpcs()
            .iter()
            .filter_map(|v| Some((v.vpc_id()?.to_string(), String::new())))
            .collect(),
        "subnet-id" => aws
            .ec2
            .describe_subnets()
            .filters(filter)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("EC2.DescribeSubnets", e))
            .unwrap_or_else(|e| unexpected(&what, &e))
            .subnets()
            .iter()
            .filter_map(|s| Some((s.subnet_id()?.to_string(), String::new())))
            .collect(),
        "group-id" => aws
            .ec2
            .describe_security_groups()
            .filters(filter)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("EC2.DescribeSecurityGroups", e))
            .unwrap_or_else(|e| unexpected(&what, &e))
            .security_groups()
            .iter()
            .filter_map(|g| Some((g.group_id()?.to_string(), String::new())))
            .collect(),
        "network-interface-id" => aws
            .ec2
            .describe_network_interfaces()
            .filters(filter)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("EC2.DescribeNetworkInterfaces", e))
            .unwrap_or_else(|e| unexpected(&what, &e))
            .network_interfaces()
            .iter()
            .filter_map(|n| {
                Some((
                    n.network_interface_id()?.to_string(),
                    n.status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                ))
            })
            .collect(),
        other => panic!("real workshop fixture: no EC2 check for {other}"),
    }
}

/// The ids of `ids` that `present` does not hold.
fn missing<'a>(ids: &'a [String], present: &[(String, String)]) -> Vec<&'a String> {
    ids.iter()
        .filter(|id| !present.iter().any(|(p, _)| p == *id))
        .collect()
}

/// A cluster's status, `None` when ECS does not know it.
async fn cluster_status(aws: &Aws, cluster: &str) -> Option<String> {
    aws.ecs
        .describe_clusters()
        .clusters(cluster)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ECS.DescribeClusters", e))
        .unwrap_or_else(|e| unexpected(&format!("cluster {cluster}"), &e))
        .clusters()
        .first()
        .map(|c| c.status().unwrap_or_default().to_string())
}

/// Each known task's (ARN, desired status, last status). The desired status is the judge: only
/// StopTask sets it to STOPPED, whatever moto's state machine does to the last status.
async fn task_states(aws: &Aws, cluster: &str, tasks: &[String]) -> Vec<(String, String, String)> {
    match aws
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(tasks.to_vec()))
        .send()
        .await
    {
        Ok(out) => out
            .tasks()
            .iter()
            .filter_map(|t| {
                Some((
                    t.task_arn()?.to_string(),
                    t.desired_status().unwrap_or_default().to_string(),
                    t.last_status().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        Err(e) => {
            let e = AwsError::from_sdk("ECS.DescribeTasks", e);
            if e.is_not_found() {
                Vec::new()
            } else {
                unexpected(&format!("tasks of {cluster}"), &e)
            }
        }
    }
}

/// Each revision's status, `None` once it is deleted.
async fn task_definition_statuses(aws: &Aws, arns: &[String]) -> Vec<Option<String>> {
    super::join_all(arns.iter().map(|arn| async move {
        match aws
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
        {
            Ok(out) => out
                .task_definition()
                .and_then(|t| t.status())
                .map(|s| s.as_str().to_string()),
            Err(e) => {
                let e = AwsError::from_sdk("ECS.DescribeTaskDefinition", e);
                // ECS answers a deleted revision with a generic client error.
                if e.code.as_deref() == Some("ClientException") {
                    None
                } else {
                    unexpected(&format!("task definition {arn}"), &e)
                }
            }
        }
    }))
    .await
}

/// The digests of a repository's images, `None` when it does not exist.
async fn repository_images(aws: &Aws, repository: &str) -> Option<Vec<String>> {
    match aws
        .ecr
        .list_images()
        .repository_name(repository)
        .send()
        .await
    {
        Ok(out) => Some(
            out.image_ids()
                .iter()
                .filter_map(|i| i.image_digest().map(str::to_string))
                .collect(),
        ),
        Err(e) => {
            let e = AwsError::from_sdk("ECR.ListImages", e);
            if e.is_not_found() {
                None
            } else {
                unexpected(&format!("repository {repository}"), &e)
            }
        }
    }
}

/// A secret as the checks see it.
#[derive(Debug)]
struct SecretFacts {
    /// Scheduled for deletion.
    scheduled: bool,
    /// Rotation on.
    rotation: bool,
    /// The function that rotates it.
    rotation_lambda: Option<String>,
}

/// `None` once the secret is deleted for good.
async fn secret_facts(aws: &Aws, arn: &str) -> Option<SecretFacts> {
    match aws
        .secretsmanager
        .describe_secret()
        .secret_id(arn)
        .send()
        .await
    {
        Ok(out) => Some(SecretFacts {
            scheduled: out.deleted_date().is_some(),
            rotation: out.rotation_enabled().unwrap_or(false),
            rotation_lambda: out.rotation_lambda_arn().map(str::to_string),
        }),
        Err(e) => {
            let e = AwsError::from_sdk("SecretsManager.DescribeSecret", e);
            if e.is_not_found() {
                None
            } else {
                unexpected(&format!("secret {arn}"), &e)
            }
        }
    }
}

/// Which of these log groups exist (exact names: a prefix query finds look-alikes too).
async fn log_groups_present(aws: &Aws, names: &[String]) -> Vec<String> {
    let found = super::join_all(names.iter().map(|name| async move {
        let out = aws
            .logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("Logs.DescribeLogGroups", e))
            .unwrap_or_else(|e| unexpected(&format!("log group {name}"), &e));
        out.log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(name.as_str()))
            .then(|| name.clone())
    }))
    .await;
    found.into_iter().flatten().collect()
}

/// Everything the checks look at for one lab, read at once.
struct LabState {
    main_stack: Option<String>,
    rotation_stack: Option<String>,
    vpcs: Vec<(String, String)>,
    subnets: Vec<(String, String)>,
    groups: Vec<(String, String)>,
    enis: Vec<(String, String)>,
    cluster: Option<String>,
    tasks: Vec<(String, String, String)>,
    revisions: Vec<Option<String>>,
    images: Option<Vec<String>>,
    secret: Option<SecretFacts>,
    log_groups: Vec<String>,
}

/// The lab's log groups, those no stack owns and the stack's own.
fn all_log_groups(lab: &RealLab) -> Vec<String> {
    let mut all = lab.log_groups.clone();
    all.push(lab.stack_log_group.clone());
    all
}

async fn lab_state(aws: &Aws, lab: &RealLab) -> LabState {
    let log_groups = all_log_groups(lab);
    let security_groups = lab.security_group_ids();
    let (
        (main_stack, rotation_stack),
        (vpcs, subnets, groups, enis),
        (cluster, tasks, revisions, images),
        (secret, log_groups),
    ) = tokio::join!(
        async {
            tokio::join!(
                stack_status(aws, &lab.main_stack_id),
                stack_status(aws, &lab.rotation_stack_id)
            )
        },
        async {
            tokio::join!(
                ec2_present(aws, "vpc-id", std::slice::from_ref(&lab.vpc_id)),
                ec2_present(aws, "subnet-id", &lab.subnet_ids),
                ec2_present(aws, "group-id", &security_groups),
                ec2_present(aws, "network-interface-id", &lab.lambda_enis),
            )
        },
        async {
            tokio::join!(
                cluster_status(aws, &lab.cluster),
                task_states(aws, &lab.cluster, &lab.tasks),
                task_definition_statuses(aws, &lab.task_definitions),
                repository_images(aws, &lab.repository),
            )
        },
        async {
            tokio::join!(
                secret_facts(aws, &lab.secret_arn),
                log_groups_present(aws, &log_groups)
            )
        },
    );
    LabState {
        main_stack,
        rotation_stack,
        vpcs,
        subnets,
        groups,
        enis,
        cluster,
        tasks,
        revisions,
        images,
        secret,
        log_groups,
    }
}

/// What is left of the lab, one line per thing, e.g. `ECS cluster secrets-workshop-ann-ECSCluster-…
/// (ACTIVE)`; empty once the lab is torn down: both stacks gone, the VPC and Lambda's interfaces
/// gone, every task stopped (desired STOPPED: a StopTask was sent), every revision INACTIVE or
/// deleted, the cluster gone or INACTIVE, the repository gone, the secret scheduled for deletion
/// with its rotation off (or deleted), every log group gone.
pub async fn real_lab_leftovers(aws: &Aws, lab: &RealLab) -> Vec<String> {
    let state = lab_state(aws, lab).await;
    let mut left = Vec::new();
    if let Some(status) = state.main_stack {
        left.push(format!(
            "CloudFormation stack {} ({status})",
            lab.main_stack
        ));
    }
    if let Some(status) = state.rotation_stack {
        left.push(format!(
            "CloudFormation stack {} ({status})",
            lab.rotation_stack
        ));
    }
    for (vpc, _) in &state.vpcs {
        left.push(format!("VPC {vpc} of stack {}", lab.main_stack));
    }
    for (eni, status) in &state.enis {
        left.push(format!("Lambda network interface {eni} ({status})"));
    }
    if let Some(status) = state.cluster.filter(|s| s != "INACTIVE") {
        left.push(format!("ECS cluster {} ({status})", lab.cluster));
    }
    for (task, desired, last) in &state.tasks {
        if desired != "STOPPED" {
            left.push(format!("ECS task {task} (desired {desired}, last {last})"));
        }
    }
    for (arn, status) in lab.task_definitions.iter().zip(&state.revisions) {
        if let Some(status) = status.as_ref().filter(|s| *s == "ACTIVE") {
            left.push(format!("ECS task definition {arn} ({status})"));
        }
    }
    if let Some(images) = state.images {
        left.push(format!(
            "ECR repository {} ({} images)",
            lab.repository,
            images.len()
        ));
    }
    match state.secret {
        None
        | Some(SecretFacts {
            scheduled: true,
            rotation: false,
            ..
        }) => {}
        Some(SecretFacts {
            scheduled: true, ..
        }) => left.push(format!(
            "secret {} (scheduled for deletion, but its rotation is still on)",
            lab.secret
        )),
        Some(facts) => left.push(format!(
            "secret {} (not scheduled for deletion, rotation {})",
            lab.secret,
            if facts.rotation { "on" } else { "off" }
        )),
    }
    for group in &state.log_groups {
        left.push(format!("log group {group}"));
    }
    left
}

/// What was changed of a lab, one line per thing; empty when the lab is exactly as provisioned
/// (for a bystander lab, a teardown of another lab must keep it so).
pub async fn real_lab_damage(aws: &Aws, lab: &RealLab) -> Vec<String> {
    let state = lab_state(aws, lab).await;
    let mut damage = Vec::new();
    for (name, status) in [
        (&lab.main_stack, &state.main_stack),
        (&lab.rotation_stack, &state.rotation_stack),
    ] {
        match status.as_deref() {
            Some("CREATE_COMPLETE") => {}
            Some(status) => damage.push(format!("CloudFormation stack {name} is {status}")),
            None => damage.push(format!("CloudFormation stack {name} is gone")),
        }
    }
    for (kind, ids, present) in [
        ("VPC", std::slice::from_ref(&lab.vpc_id), &state.vpcs),
        ("subnet", &lab.subnet_ids[..], &state.subnets),
        (
            "security group",
            &lab.security_group_ids()[..],
            &state.groups,
        ),
        (
            "Lambda network interface",
            &lab.lambda_enis[..],
            &state.enis,
        ),
    ] {
        for id in missing(ids, present) {
            damage.push(format!("{kind} {id} is gone"));
        }
    }
    match state.cluster.as_deref() {
        Some("ACTIVE") => {}
        Some(status) => damage.push(format!("ECS cluster {} is {status}", lab.cluster)),
        None => damage.push(format!("ECS cluster {} is gone", lab.cluster)),
    }
    damage.extend(tasks_damage(&lab.cluster, &lab.tasks, &state.tasks));
    for (arn, status) in lab.task_definitions.iter().zip(&state.revisions) {
        match status.as_deref() {
            Some("ACTIVE") => {}
            Some(status) => damage.push(format!("ECS task definition {arn} is {status}")),
            None => damage.push(format!("ECS task definition {arn} is gone")),
        }
    }
    damage.extend(images_damage(
        &lab.repository,
        &lab.image_digests,
        &state.images,
    ));
    match state.secret {
        Some(SecretFacts {
            scheduled: false,
            rotation: true,
            rotation_lambda,
        }) if rotation_lambda.as_deref() == Some(lab.rotation_function_arn.as_str()) => {}
        Some(facts) => damage.push(format!("secret {} is now {facts:?}", lab.secret)),
        None => damage.push(format!("secret {} is gone", lab.secret)),
    }
    for group in all_log_groups(lab) {
        if !state.log_groups.contains(&group) {
            damage.push(format!("log group {group} is gone"));
        }
    }
    damage
}

/// Tasks that should still run: one line per task stopped or gone.
fn tasks_damage(
    cluster: &str,
    tasks: &[String],
    states: &[(String, String, String)],
) -> Vec<String> {
    tasks
        .iter()
        .filter_map(|arn| match states.iter().find(|(a, _, _)| a == arn) {
            Some((_, desired, _)) if desired == "RUNNING" => None,
            Some((_, desired, last)) => Some(format!(
                "ECS task {arn} in {cluster} was stopped (desired {desired}, last {last})"
            )),
            None => Some(format!("ECS task {arn} in {cluster} is gone")),
        })
        .collect()
}

/// Images that should still be there: one line per image gone, or the repository.
fn images_damage(
    repository: &str,
    digests: &[String],
    images: &Option<Vec<String>>,
) -> Vec<String> {
    match images {
        None => vec![format!("ECR repository {repository} is gone")],
        Some(images) => digests
            .iter()
            .filter(|d| !images.contains(d))
            .map(|d| format!("image {d} of ECR repository {repository} is gone"))
            .collect(),
    }
}

/// What was changed of the look-alikes, one line per thing; empty when they are as provisioned.
pub async fn lookalike_damage(aws: &Aws, l: &RealLookalikes) -> Vec<String> {
    let (
        rotation_stack,
        (vpcs, subnets, groups, enis),
        (cluster, tasks, revisions, images),
        (secret, other_secret, log_groups),
    ) = tokio::join!(
        stack_status(aws, &l.rotation_stack_id),
        async {
            tokio::join!(
                ec2_present(aws, "vpc-id", std::slice::from_ref(&l.vpc_id)),
                ec2_present(aws, "subnet-id", &l.subnet_ids),
                ec2_present(aws, "group-id", std::slice::from_ref(&l.security_group_id)),
                ec2_present(aws, "network-interface-id", &l.lambda_enis),
            )
        },
        async {
            tokio::join!(
                cluster_status(aws, &l.cluster),
                task_states(aws, &l.cluster, &l.tasks),
                task_definition_statuses(aws, &l.task_definitions),
                repository_images(aws, &l.repository),
            )
        },
        async {
            tokio::join!(
                secret_facts(aws, &l.secret_arn),
                secret_facts(aws, &l.other_secret_arn),
                log_groups_present(aws, &l.log_groups)
            )
        },
    );
    let mut damage = Vec::new();
    match rotation_stack.as_deref() {
        Some("CREATE_COMPLETE") => {}
        status => damage.push(format!(
            "CloudFormation stack {} is {status:?}",
            l.rotation_stack
        )),
    }
    for (kind, ids, present) in [
        ("VPC", std::slice::from_ref(&l.vpc_id), &vpcs),
        ("subnet", &l.subnet_ids[..], &subnets),
        (
            "security group",
            std::slice::from_ref(&l.security_group_id),
            &groups,
        ),
        ("Lambda network interface", &l.lambda_enis[..], &enis),
    ] {
        for id in missing(ids, present) {
            damage.push(format!("{kind} {id} is gone"));
        }
    }
    match cluster.as_deref() {
        Some("ACTIVE") => {}
        status => damage.push(format!("ECS cluster {} is {status:?}", l.cluster)),
    }
    damage.extend(tasks_damage(&l.cluster, &l.tasks, &tasks));
    // Revision 1 was left INACTIVE by their stack, revision 2 ACTIVE.
    for ((arn, status), expected) in l
        .task_definitions
        .iter()
        .zip(&revisions)
        .zip(["INACTIVE", "ACTIVE"])
    {
        if status.as_deref() != Some(expected) {
            damage.push(format!(
                "ECS task definition {arn} is {status:?}, not {expected}"
            ));
        }
    }
    damage.extend(images_damage(&l.repository, &l.image_digests, &images));
    match secret {
        Some(SecretFacts {
            scheduled: false,
            rotation: true,
            rotation_lambda,
        }) if rotation_lambda.as_deref() == Some(l.rotation_function_arn.as_str()) => {}
        facts => damage.push(format!("secret {} is now {facts:?}", l.secret)),
    }
    match other_secret {
        Some(SecretFacts {
            scheduled: false,
            rotation: false,
            ..
        }) => {}
        facts => damage.push(format!("secret {} is now {facts:?}", l.other_secret)),
    }
    for group in &l.log_groups {
        if !log_groups.contains(group) {
            damage.push(format!("log group {group} is gone"));
        }
    }
    damage
}
