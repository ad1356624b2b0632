//! The workshop fixture checks itself: right after provisioning, every kind of workshop resource is
//! reported as left over (so the end-to-end tests cannot pass by checking nothing), and the
//! bystanders are reported undamaged (so they cannot fail for the fixture's own reasons).

use crate::support;

use support::fixture::{self, WorkshopNames};
use teardown::aws::Mode;

#[tokio::test]
async fn a_fresh_workshop_is_all_leftovers_and_bystanders_are_intact() {
    let moto = support::moto().await;
    fixture::keep_tasks_running(&moto.endpoint);
    let aws = moto.aws(Mode::Apply);
    let workshop = fixture::provision_workshop(&aws, &WorkshopNames::default()).await;
    let bystanders = fixture::provision_bystanders(&aws).await;

    assert_eq!(workshop.task_definitions.len(), 2);
    assert_eq!(workshop.image_digests.len(), 2);
    assert_ne!(workshop.image_digests[0], workshop.image_digests[1]);
    assert_eq!(workshop.lambda_enis.len(), 2);
    assert_ne!(workshop.vpc_id, bystanders.vpc_id);

    let left = fixture::workshop_leftovers(&aws, &workshop).await;
    let expected = [
        format!("CloudFormation stack {}", workshop.main_stack),
        format!("CloudFormation stack {}", workshop.rotation_stack),
        format!("VPC {}", workshop.vpc_id),
        format!("Lambda network interface {}", workshop.lambda_enis[0]),
        format!("Lambda network interface {}", workshop.lambda_enis[1]),
        format!("ECS cluster {}", workshop.cluster),
        format!("ECS service {}", workshop.service),
        format!("ECS task {}", workshop.tasks[0]),
        format!("ECS task definition {}", workshop.task_definitions[0]),
        format!("ECS task definition {}", workshop.task_definitions[1]),
        format!("ECR repository {} (2 images)", workshop.repository),
        format!("secret {} (not scheduled for deletion)", workshop.secret),
    ];
    for thing in &expected {
        assert!(
            left.iter().any(|l| l.starts_with(thing.as_str())),
            "leftovers do not list {thing:?}: {left:#?}"
        );
    }
    assert_eq!(left.len(), expected.len(), "{left:#?}");
    // assert_workshop_gone panics on it (in a task of its own, so that the panic is caught).
    let (aws2, workshop2) = (aws.clone(), workshop.clone());
    let checked =
        tokio::spawn(async move { fixture::assert_workshop_gone(&aws2, &workshop2).await }).await;
    assert!(
        checked.is_err_and(|e| e.is_panic()),
        "assert_workshop_gone passed on a fresh workshop"
    );

    let damage = fixture::bystander_damage(&aws, &bystanders).await;
    assert!(
        damage.is_empty(),
        "fresh bystanders reported damaged: {damage:#?}"
    );
    fixture::assert_bystanders_untouched(&aws, &bystanders).await;

    // Damage is seen: stop the bystander task and schedule its secret's deletion.
    aws.ecs
        .stop_task()
        .cluster(&bystanders.cluster)
        .task(&bystanders.tasks[0])
        .send()
        .await
        .unwrap();
    aws.secretsmanager
        .delete_secret()
        .secret_id(&bystanders.secret_arn)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let damage = fixture::bystander_damage(&aws, &bystanders).await;
    assert_eq!(damage.len(), 2, "{damage:#?}");
    assert!(damage[0].contains("was stopped"), "{damage:#?}");
    assert!(damage[1].contains("scheduled for deletion"), "{damage:#?}");
}

/// The "gone" the checks ask for can be reached in moto: after the workshop's clean-up done by
/// hand with plain SDK calls, nothing is left and no bystander was touched.
#[tokio::test]
async fn a_workshop_cleaned_up_by_hand_is_gone() {
    let moto = support::moto().await;
    fixture::keep_tasks_running(&moto.endpoint);
    let aws = moto.aws(Mode::Apply);
    let w = fixture::provision_workshop(&aws, &WorkshopNames::default()).await;
    let bystanders = fixture::provision_bystanders(&aws).await;

    aws.ecs
        .update_service()
        .cluster(&w.cluster)
        .service(&w.service)
        .desired_count(0)
        .send()
        .await
        .unwrap();
    for task in &w.tasks {
        aws.ecs
            .stop_task()
            .cluster(&w.cluster)
            .task(task)
            .send()
            .await
            .unwrap();
    }
    aws.ecs
        .delete_service()
        .cluster(&w.cluster)
        .service(&w.service)
        .send()
        .await
        .unwrap();
    for arn in &w.task_definitions {
        aws.ecs
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .unwrap();
    }
    aws.ecs
        .delete_cluster()
        .cluster(&w.cluster)
        .send()
        .await
        .unwrap();
    aws.ecr
        .delete_repository()
        .repository_name(&w.repository)
        .force(true)
        .send()
        .await
        .unwrap();
    aws.secretsmanager
        .cancel_rotate_secret()
        .secret_id(&w.secret_arn)
        .send()
        .await
        .unwrap();
    aws.secretsmanager
        .delete_secret()
        .secret_id(&w.secret_arn)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    aws.cloudformation
        .delete_stack()
        .stack_name(&w.rotation_stack)
        .send()
        .await
        .unwrap();
    for eni in &w.lambda_enis {
        aws.ec2
            .delete_network_interface()
            .network_interface_id(eni)
            .send()
            .await
            .unwrap();
    }
    aws.cloudformation
        .delete_stack()
        .stack_name(&w.main_stack)
        .send()
        .await
        .unwrap();

    fixture::assert_workshop_gone(&aws, &w).await;
    fixture::assert_bystanders_untouched(&aws, &bystanders).await;
}
