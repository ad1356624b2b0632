//! The harness itself: moto starts, answers the SDK, and a reset empties it.

mod support;

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
    assert!(listed.cluster_arns().is_empty(), "reset left {:?}", listed.cluster_arns());
    assert_eq!(aws.calls.mutating_operations(), vec!["ECS.CreateCluster"]);
}
