//! The harness itself: moto starts, answers the SDK, and a reset empties it.

use crate::support;

use teardown::aws::Mode;

#[tokio::test]
async fn moto_answers_and_reset_empties_it() {
    let moto = support::moto().await;
    let aws = moto.aws(Mode::Apply);
    aws.ecs
        .create_cluster()
        .cluster_name("harness-check")
        .send()
        .await
        .expect("create a cluster in moto");
    let listed = aws.ecs.list_clusters().send().await.unwrap();
    assert_eq!(listed.cluster_arns().len(), 1);
    moto.post("/moto-api/reset", "application/json", "");
    let listed = aws.ecs.list_clusters().send().await.unwrap();
    assert!(
        listed.cluster_arns().is_empty(),
        "reset left {:?}",
        listed.cluster_arns()
    );
    assert_eq!(aws.calls.mutating_operations(), vec!["ECS.CreateCluster"]);
}

#[tokio::test]
async fn injected_throttling_is_retried_by_the_sdk_and_replaced_answers_reach_the_caller() {
    use support::faults::{Answer, Faults, Rule};
    let moto = support::moto().await;
    let faults = Faults::new(vec![
        Rule::on("ECS", "ListClusters", 2, Answer::throttle()),
        Rule::on(
            "ECS",
            "DescribeClusters",
            1,
            Answer::Body(
                r#"{"clusters":[{"clusterName":"c","status":"INACTIVE"}],"failures":[]}"#.into(),
            ),
        ),
    ]);
    let aws = moto.aws_with(
        Mode::Apply,
        teardown::aws::AwsOptions {
            interceptors: vec![faults.shared()],
            ..Default::default()
        },
    );
    aws.ecs
        .create_cluster()
        .cluster_name("c")
        .send()
        .await
        .unwrap();
    // Two throttled answers, then the SDK's third attempt goes through.
    let listed = aws.ecs.list_clusters().send().await.unwrap();
    assert_eq!(listed.cluster_arns().len(), 1);
    let described = aws
        .ecs
        .describe_clusters()
        .clusters("c")
        .send()
        .await
        .unwrap();
    assert_eq!(described.clusters()[0].status(), Some("INACTIVE"));
    assert_eq!(faults.injected(), 3);
    assert_eq!(
        faults.log(),
        vec![
            "ECS.ListClusters",
            "ECS.ListClusters",
            "ECS.DescribeClusters"
        ]
    );
}
