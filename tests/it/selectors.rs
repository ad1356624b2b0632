//! The age selector spares what is too young, through the whole adapter. moto stamps every
//! repository with the time it was made, so one repository is made to look two days old by
//! replacing DescribeRepositories' answer in front of the SDK (a read-only call: nothing else is
//! changed); the other keeps its real, younger age.

use crate::support;

use std::sync::Arc;

use support::faults::{Answer, Faults, Rule};
use teardown::aws::{AwsOptions, Mode};
use teardown::resource::OutcomeKind;

#[tokio::test]
async fn older_than_deletes_the_old_and_spares_the_young_near_miss() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    for name in ["lab-old", "lab-young"] {
        setup
            .ecr
            .create_repository()
            .repository_name(name)
            .send()
            .await
            .unwrap();
    }
    let now = chrono::Utc::now().timestamp();
    let repository = |name: &str, created: i64| {
        format!(
            r#"{{"repositoryArn":"arn:aws:ecr:us-west-2:123456789012:repository/{name}","registryId":"123456789012","repositoryName":"{name}","repositoryUri":"123456789012.dkr.ecr.us-west-2.amazonaws.com/{name}","createdAt":{created}}}"#
        )
    };
    let answer = format!(
        r#"{{"repositories":[{},{}]}}"#,
        repository("lab-old", now - 2 * 86_400),
        repository("lab-young", now - 600)
    );
    let faults = Faults::new(vec![Rule::on(
        "ECR",
        "DescribeRepositories",
        usize::MAX,
        Answer::Body(answer),
    )]);
    let aws = Arc::new(moto.aws_with(
        Mode::Apply,
        AwsOptions {
            interceptors: vec![faults.shared()],
            ..AwsOptions::default()
        },
    ));
    let (result, _) = support::run_action(
        aws.clone(),
        &teardown::actions::ecr::DELETE_REPOSITORY,
        r#"name = "lab-*"
older_than = "24h""#,
        "",
    )
    .await;
    let output = result.expect("the step succeeds");
    let done: Vec<&str> = output
        .resources
        .iter()
        .filter(|r| r.outcome == OutcomeKind::Done)
        .map(|r| r.resource.name.as_str())
        .collect();
    assert_eq!(done, vec!["lab-old"]);
    let why = &output.resources[0].resource.matched_because;
    assert!(why.contains("older than 1day"), "{why}");
    assert_eq!(
        aws.calls.mutating_operations(),
        vec!["ECR.DeleteRepository"]
    );
    let left: Vec<String> = setup
        .ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name().map(str::to_string))
        .collect();
    assert_eq!(left, vec!["lab-young"]);
}
