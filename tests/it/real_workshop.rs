//! The real workshop fixture (`support::real_workshop`) is shaped like the real template and the
//! real steps: two labs side by side share nothing, their stacks' outputs and resources name the
//! lab's cluster, repository, task definition and VPC, the attendee's revisions and the rotation
//! name the lab's secret and function; its checks see everything right after provisioning and
//! nothing once a lab is torn down by hand; and moto's DeleteStack is made AWS-like where it is
//! not.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use aws_sdk_cloudformation::client::Waiters;
use aws_sdk_ec2::types::Filter;
use teardown::aws::{Aws, AwsError, AwsOptions, Mode};

use crate::support::{self, faults, real_workshop as rw};
use rw::RealLab;

/// Each logical resource of a stack: (type, physical id).
async fn stack_resources(aws: &Aws, stack: &str) -> BTreeMap<String, (String, String)> {
    aws.cloudformation
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .unwrap()
        .stack_resources()
        .iter()
        .map(|r| {
            (
                r.logical_resource_id().unwrap().to_string(),
                (
                    r.resource_type().unwrap().to_string(),
                    r.physical_resource_id().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

/// `name` is `<prefix><12 characters of alphabet>`, as CloudFormation generates names.
fn assert_generated(name: &str, prefix: &str, lowercase: bool) {
    let suffix = name
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{name} does not begin with {prefix}"));
    assert_eq!(suffix.len(), 12, "{name}: suffix {suffix}");
    assert!(
        suffix.chars().all(|c| c.is_ascii_digit()
            || c.is_ascii_lowercase()
            || (!lowercase && c.is_ascii_uppercase())),
        "{name}: suffix {suffix}"
    );
}

/// Checks one lab against the template and the workshop's steps.
async fn assert_lab_is_the_real_thing(aws: &Aws, lab: &RealLab) {
    let stack = &lab.main_stack;
    // The main stack: the template's description, parameters and outputs.
    let described = aws
        .cloudformation
        .describe_stacks()
        .stack_name(&lab.main_stack_id)
        .send()
        .await
        .unwrap();
    let s = &described.stacks()[0];
    assert_eq!(s.stack_name(), Some(stack.as_str()));
    assert_eq!(s.description(), Some(rw::DESCRIPTION));
    let outputs: BTreeMap<_, _> = s
        .outputs()
        .iter()
        .map(|o| (o.output_key().unwrap(), o.output_value().unwrap()))
        .collect();
    assert_eq!(outputs["ECSCluster"], lab.cluster);
    assert_eq!(outputs["ECRRepository"], lab.repository);
    assert_eq!(outputs["DBInstance"], lab.db_instance);
    for key in ["DBUser", "DBPassword", "EC2UserPassword"] {
        assert_eq!(outputs[key].len(), 8, "{key}: {outputs:?}");
    }
    let parameters: BTreeMap<_, _> = s
        .parameters()
        .iter()
        .map(|p| (p.parameter_key().unwrap(), p.parameter_value().unwrap()))
        .collect();
    assert_eq!(
        parameters.get("NamePrefix"),
        Some(&"smdemo"),
        "{parameters:?}"
    );
    assert_eq!(
        parameters.get("ProjectTag"),
        Some(&"smproj"),
        "{parameters:?}"
    );

    // Names in CloudFormation's generated form.
    assert_eq!(*stack, format!("{}{}", rw::STACK_PREFIX, lab.attendee));
    assert_generated(&lab.cluster, &format!("{stack}-ECSCluster-"), false);
    assert_generated(
        &lab.repository,
        &format!("{}-ecrrepository-", stack.to_lowercase()),
        true,
    );
    assert_generated(&lab.task_family, &format!("{stack}-TaskDefinition-"), false);
    assert_generated(
        &lab.stack_functions[0],
        &format!("{stack}-RandomStrFunction-"),
        false,
    );
    assert!(lab
        .stack_log_group
        .starts_with(&format!("{stack}-LogGroup-")));

    // The stack's resources are the lab's: task definition revision 1, VPC, subnets, groups.
    let resources = stack_resources(aws, &lab.main_stack_id).await;
    let physical = |logical: &str| resources[logical].1.clone();
    assert_eq!(resources["TaskDefinition"].0, "AWS::ECS::TaskDefinition");
    assert_eq!(physical("TaskDefinition"), lab.stack_task_definition());
    assert_eq!(physical("ECSCluster"), lab.cluster);
    assert_eq!(physical("ECRRepository"), lab.repository);
    assert_eq!(physical("VpcName"), lab.vpc_id);
    assert_eq!(
        vec![physical("DemoSubnet01"), physical("DemoSubnet02")],
        lab.subnet_ids
    );
    assert_eq!(
        vec![physical("BastionSG"), physical("DBSG")],
        lab.security_group_ids()
    );
    assert_eq!(
        vec![
            physical("RandomStrFunction"),
            physical("VpcEndpointServiceAzsFunction")
        ],
        lab.stack_functions
    );
    assert_eq!(physical("LogGroup"), lab.stack_log_group);
    assert_eq!(physical("DBInstance"), lab.db_instance);

    // Revision 1 (the stack's), 2 and 3 (the attendee's): one family, the lab's image, the
    // secret placeholder, then the lab's secret by partial and by full ARN.
    assert_eq!(lab.task_definitions.len(), 3);
    for (i, arn) in lab.task_definitions.iter().enumerate() {
        let definition = aws
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .unwrap();
        let definition = definition.task_definition().unwrap();
        assert_eq!(definition.family(), Some(lab.task_family.as_str()));
        assert_eq!(definition.revision(), i as i32 + 1);
        let container = &definition.container_definitions()[0];
        assert_eq!(container.name(), Some("smdemo"));
        assert_eq!(container.image(), Some(lab.repository_uri.as_str()));
        let value_from = container.secrets()[0].value_from();
        assert_eq!(value_from, lab.secret_value_from[i]);
        if i == 0 {
            assert!(value_from.ends_with(":secret:SECRETNAME"), "{value_from}");
            continue;
        }
        assert_eq!(
            definition.network_mode().map(|m| m.as_str()),
            Some("awsvpc")
        );
        assert_eq!(definition.cpu(), Some("1024"));
        assert_eq!(definition.memory(), Some("4096"));
        // Secrets Manager resolves what the revision names to the lab's secret.
        let secret = aws
            .secretsmanager
            .describe_secret()
            .secret_id(value_from)
            .send()
            .await
            .unwrap();
        assert_eq!(secret.arn(), Some(lab.secret_arn.as_str()), "{value_from}");
    }

    // The running tasks: one of each of the attendee's revisions, in the lab's cluster and VPC.
    let tasks = aws
        .ecs
        .describe_tasks()
        .cluster(&lab.cluster)
        .set_tasks(Some(lab.tasks.clone()))
        .send()
        .await
        .unwrap();
    let revisions: BTreeMap<_, _> = tasks
        .tasks()
        .iter()
        .map(|t| {
            assert_eq!(t.cluster_arn(), Some(lab.cluster_arn.as_str()));
            assert_eq!(t.desired_status(), Some("RUNNING"));
            (t.task_arn().unwrap(), t.task_definition_arn().unwrap())
        })
        .collect();
    for (task, revision) in lab.tasks.iter().zip(lab.attendee_task_definitions()) {
        assert_eq!(revisions.get(task.as_str()), Some(&revision.as_str()));
    }

    // The images.
    let images = aws
        .ecr
        .describe_images()
        .repository_name(&lab.repository)
        .send()
        .await
        .unwrap();
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for image in images.image_details() {
        tags.insert(
            image.image_digest().unwrap().to_string(),
            image.image_tags().to_vec(),
        );
    }
    assert_eq!(
        tags.keys().cloned().collect::<BTreeSet<_>>(),
        lab.image_digests.iter().cloned().collect()
    );
    assert_eq!(tags[&lab.image_digests[0]], Vec::<String>::new());
    assert_eq!(tags[&lab.image_digests[1]], vec!["latest".to_string()]);

    // Rotation: the secret names the function of the lab's rotation stack.
    assert!(lab.rotation_stack.starts_with(rw::ROTATION_STACK_PREFIX));
    let secret = aws
        .secretsmanager
        .describe_secret()
        .secret_id(&lab.secret_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(secret.name(), Some(lab.secret.as_str()));
    assert_eq!(secret.rotation_enabled(), Some(true));
    assert_eq!(
        secret.rotation_lambda_arn(),
        Some(lab.rotation_function_arn.as_str())
    );
    let rotation_resources = aws
        .cloudformation
        .list_stack_resources()
        .stack_name(&lab.rotation_stack_id)
        .send()
        .await
        .unwrap();
    let functions: Vec<_> = rotation_resources
        .stack_resource_summaries()
        .iter()
        .filter(|r| r.resource_type() == Some("AWS::Lambda::Function"))
        .map(|r| r.physical_resource_id().unwrap().to_string())
        .collect();
    assert_eq!(functions, vec![lab.rotation_function.clone()]);
    assert!(lab
        .rotation_function_arn
        .ends_with(&format!(":function:{}", lab.rotation_function)));

    // Lambda's interfaces are in the stack's VPC, one per subnet, in DBSG.
    let enis = aws
        .ec2
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("network-interface-id")
                .set_values(Some(lab.lambda_enis.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(enis.network_interfaces().len(), 2);
    let mut subnets = BTreeSet::new();
    for eni in enis.network_interfaces() {
        assert_eq!(eni.vpc_id(), Some(lab.vpc_id.as_str()));
        subnets.insert(eni.subnet_id().unwrap().to_string());
        assert!(eni
            .description()
            .unwrap()
            .starts_with(&format!("AWS Lambda VPC ENI-{}-", lab.rotation_function)));
        assert_eq!(
            eni.groups()[0].group_id(),
            Some(lab.db_security_group.as_str())
        );
    }
    assert_eq!(subnets, lab.subnet_ids.iter().cloned().collect());

    // Each function's log group.
    let expected: Vec<_> = lab
        .stack_functions
        .iter()
        .chain([&lab.rotation_function])
        .map(|f| format!("/aws/lambda/{f}"))
        .collect();
    assert_eq!(lab.log_groups, expected);
}

#[tokio::test]
async fn two_labs_are_the_real_workshop_side_by_side_and_share_nothing() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let aws = moto.aws(Mode::Apply);
    let started = Instant::now();
    let (ann, anna) = rw::provision_two_real_labs(&aws).await;
    eprintln!("two real labs provisioned in {:?}", started.elapsed());

    assert_lab_is_the_real_thing(&aws, &ann).await;
    assert_lab_is_the_real_thing(&aws, &anna).await;

    let shared: Vec<_> = ann
        .identifiers()
        .intersection(&anna.identifiers())
        .cloned()
        .collect();
    assert!(shared.is_empty(), "the labs share {shared:?}");
    // ...but look alike: a prefix match on the first lab's names takes the second lab's.
    assert!(anna.main_stack.starts_with(&ann.main_stack));
    assert!(anna.secret.starts_with(&ann.secret));
    assert!(anna.secret_arn.starts_with(&ann.secret_value_from[1]));
    assert!(anna.log_groups[2].starts_with(&ann.log_groups[2]));
    assert_ne!(ann.vpc_id, anna.vpc_id);
}

#[tokio::test]
async fn fresh_labs_are_all_leftovers_and_nothing_is_damaged() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let aws = moto.aws(Mode::Apply);
    let started = Instant::now();
    let ((ann, anna), lookalikes) = tokio::join!(
        rw::provision_two_real_labs(&aws),
        rw::provision_real_lookalikes(&aws)
    );
    eprintln!(
        "two real labs and the look-alikes provisioned in {:?}",
        started.elapsed()
    );

    for lab in [&ann, &anna] {
        let left = rw::real_lab_leftovers(&aws, lab).await;
        let mut expected = vec![
            format!("CloudFormation stack {} (CREATE_COMPLETE)", lab.main_stack),
            format!(
                "CloudFormation stack {} (CREATE_COMPLETE)",
                lab.rotation_stack
            ),
            format!("VPC {}", lab.vpc_id),
            format!("ECS cluster {} (ACTIVE)", lab.cluster),
            format!("ECR repository {} (2 images)", lab.repository),
            format!(
                "secret {} (not scheduled for deletion, rotation on)",
                lab.secret
            ),
            format!("log group {}", lab.stack_log_group),
        ];
        expected.extend(
            lab.lambda_enis
                .iter()
                .map(|e| format!("Lambda network interface {e}")),
        );
        expected.extend(
            lab.tasks
                .iter()
                .map(|t| format!("ECS task {t} (desired RUNNING")),
        );
        expected.extend(
            lab.task_definitions
                .iter()
                .map(|t| format!("ECS task definition {t} (ACTIVE)")),
        );
        expected.extend(lab.log_groups.iter().map(|g| format!("log group {g}")));
        for thing in &expected {
            assert!(
                left.iter().any(|l| l.starts_with(thing.as_str())),
                "leftovers do not list {thing:?}: {left:#?}"
            );
        }
        assert_eq!(left.len(), expected.len(), "{left:#?}");
        let damage = rw::real_lab_damage(&aws, lab).await;
        assert!(damage.is_empty(), "fresh lab reported damaged: {damage:#?}");
    }
    let damage = rw::lookalike_damage(&aws, &lookalikes).await;
    assert!(
        damage.is_empty(),
        "fresh look-alikes reported damaged: {damage:#?}"
    );
    // The look-alikes look like the labs.
    assert!(ann.main_stack.starts_with(&lookalikes.deleted_main_stack));
    assert!(ann.secret.starts_with(&lookalikes.secret));
    assert!(lookalikes.other_secret.starts_with(&anna.secret));
    assert!(lookalikes
        .rotation_stack
        .starts_with(rw::ROTATION_STACK_PREFIX));
    assert!(lookalikes
        .log_groups
        .contains(&format!("{}-old", ann.log_groups[2])));
}

fn ok<T, E: std::error::Error>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| {
        panic!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(&e)
        )
    })
}

/// What `cleanup.sh` and `cleanup.md` do, by hand, to one lab.
async fn tear_down_by_hand(aws: &Aws, lab: &RealLab) {
    // cleanup.sh: repository, task definitions, tasks, cluster.
    ok(aws
        .ecr
        .delete_repository()
        .repository_name(&lab.repository)
        .force(true)
        .send()
        .await);
    for arn in &lab.task_definitions {
        ok(aws
            .ecs
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await);
    }
    for task in &lab.tasks {
        ok(aws
            .ecs
            .stop_task()
            .cluster(&lab.cluster)
            .task(task)
            .send()
            .await);
    }
    ok(aws.ecs.delete_cluster().cluster(&lab.cluster).send().await);
    // cleanup.md: the secret (rotation off first), the rotation stack, the interfaces, the main
    // stack; and the log groups no stack owns.
    ok(aws
        .secretsmanager
        .cancel_rotate_secret()
        .secret_id(&lab.secret_arn)
        .send()
        .await);
    ok(aws
        .secretsmanager
        .delete_secret()
        .secret_id(&lab.secret_arn)
        .recovery_window_in_days(7)
        .send()
        .await);
    ok(aws
        .cloudformation
        .delete_stack()
        .stack_name(&lab.rotation_stack_id)
        .send()
        .await);
    for eni in &lab.lambda_enis {
        ok(aws
            .ec2
            .delete_network_interface()
            .network_interface_id(eni)
            .send()
            .await);
    }
    for group in &lab.log_groups {
        ok(aws
            .logs
            .delete_log_group()
            .log_group_name(group)
            .send()
            .await);
    }
    ok(aws
        .cloudformation
        .delete_stack()
        .stack_name(&lab.main_stack_id)
        .send()
        .await);
}

#[tokio::test]
async fn a_by_hand_teardown_of_one_lab_is_seen_there_and_nowhere_else() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let aws = moto.aws(Mode::Apply);
    let ((ann, anna), lookalikes) = tokio::join!(
        rw::provision_two_real_labs(&aws),
        rw::provision_real_lookalikes(&aws)
    );

    // One change is one line of damage.
    ok(aws
        .ecs
        .stop_task()
        .cluster(&ann.cluster)
        .task(&ann.tasks[0])
        .send()
        .await);
    let damage = rw::real_lab_damage(&aws, &ann).await;
    assert_eq!(damage.len(), 1, "{damage:#?}");
    assert!(damage[0].contains(&ann.tasks[0]), "{damage:#?}");
    assert_eq!(rw::real_lab_damage(&aws, &anna).await, Vec::<String>::new());

    // The whole clean-up: nothing of the lab is left; the other lab and the look-alikes are
    // untouched. DeleteStack of the main stack comes after the repository was deleted by hand,
    // so it needs AWS's behaviour.
    let faults = faults::aws_like_delete_stack();
    let aws_like = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![faults.shared()],
            ..AwsOptions::default()
        },
    );
    tear_down_by_hand(&aws_like, &ann).await;
    assert_eq!(faults.log(), vec!["CloudFormation.DeleteStack"]);
    let left = rw::real_lab_leftovers(&aws, &ann).await;
    assert!(left.is_empty(), "left of the lab: {left:#?}");
    let damage = rw::real_lab_damage(&aws, &ann).await;
    assert!(damage.len() > 10, "{damage:#?}");
    assert_eq!(rw::real_lab_damage(&aws, &anna).await, Vec::<String>::new());
    assert_eq!(
        rw::lookalike_damage(&aws, &lookalikes).await,
        Vec::<String>::new()
    );
}

/// The code of a failed DeleteStack.
async fn delete_stack_error(aws: &Aws, stack: &str) -> Option<AwsError> {
    aws.cloudformation
        .delete_stack()
        .stack_name(stack)
        .send()
        .await
        .err()
        .map(|e| AwsError::from_sdk("CloudFormation.DeleteStack", e))
}

#[tokio::test]
async fn moto_delete_stack_fails_on_resources_deleted_by_hand_unless_made_aws_like() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let aws = moto.aws(Mode::Apply);
    let (ann, anna) = rw::provision_two_real_labs(&aws).await;
    for lab in [&ann, &anna] {
        ok(aws
            .ecr
            .delete_repository()
            .repository_name(&lab.repository)
            .force(true)
            .send()
            .await);
    }

    // moto: the error of the missing repository, and the stack is gone, even by its id, with
    // the rest of its resources.
    let error = delete_stack_error(&aws, &ann.main_stack_id).await;
    assert_eq!(
        error.and_then(|e| e.code),
        Some("RepositoryNotFoundException".to_string())
    );
    let left = rw::real_lab_leftovers(&aws, &ann).await;
    assert!(
        !left.iter().any(
            |l| l.starts_with(&format!("CloudFormation stack {} ", ann.main_stack))
                || l.starts_with("VPC")
                || l.contains(&ann.stack_log_group)
        ),
        "{left:#?}"
    );

    // AWS-like: success, also when a log group of the stack went too (moto's answer is then a
    // JSON body the SDK cannot read), and the waiter sees the stack deleted.
    ok(aws
        .logs
        .delete_log_group()
        .log_group_name(&anna.stack_log_group)
        .send()
        .await);
    let faults = faults::aws_like_delete_stack();
    let aws_like = moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![faults.shared()],
            ..AwsOptions::default()
        },
    );
    // Nothing gone by hand: the answer passes untouched.
    ok(aws_like
        .cloudformation
        .delete_stack()
        .stack_name(&anna.rotation_stack_id)
        .send()
        .await);
    assert_eq!(faults.injected(), 0);
    ok(aws_like
        .cloudformation
        .delete_stack()
        .stack_name(&anna.main_stack_id)
        .send()
        .await);
    assert_eq!(faults.log(), vec!["CloudFormation.DeleteStack"]);
    ok(aws_like
        .cloudformation
        .wait_until_stack_delete_complete()
        .stack_name(&anna.main_stack_id)
        .wait(std::time::Duration::from_secs(10))
        .await);
    let left = rw::real_lab_leftovers(&aws, &anna).await;
    assert!(
        !left
            .iter()
            .any(|l| l.starts_with(&format!("CloudFormation stack {} ", anna.main_stack))),
        "{left:#?}"
    );
}
