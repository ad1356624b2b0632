//! `sns.delete-topic` against moto: matched topics deleted with their subscriptions, which are
//! reported (masked where personal); protected and look-alike topics left alone; a second run and
//! a dry run change nothing; a topic gone between find and act.

use crate::support;

use std::sync::Arc;

use teardown::actions::sns::DELETE_TOPIC;
use teardown::actions::{Acted, StepInput};
use teardown::aws::{Aws, Mode};
use teardown::resource::OutcomeKind;

async fn topic(
    aws: &Aws,
    name: &str,
    tags: &[(&str, &str)],
    subscribers: &[(&str, &str)],
) -> String {
    let mut request = aws.sns.create_topic().name(name);
    for (k, v) in tags {
        request = request.tags(
            aws_sdk_sns::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap(),
        );
    }
    let arn = request
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    for (protocol, endpoint) in subscribers {
        aws.sns
            .subscribe()
            .topic_arn(&arn)
            .protocol(*protocol)
            .endpoint(*endpoint)
            .send()
            .await
            .unwrap();
    }
    arn
}

async fn topic_names(aws: &Aws) -> Vec<String> {
    let out = aws.sns.list_topics().send().await.unwrap();
    let mut names: Vec<String> = out
        .topics()
        .iter()
        .filter_map(|t| t.topic_arn()?.rsplit(':').next().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// The topics that still have subscriptions.
async fn subscribed_topics(aws: &Aws) -> Vec<String> {
    let out = aws.sns.list_subscriptions().send().await.unwrap();
    let mut topics: Vec<String> = out
        .subscriptions()
        .iter()
        .filter_map(|s| s.topic_arn()?.rsplit(':').next().map(str::to_string))
        .collect();
    topics.sort();
    topics.dedup();
    topics
}

#[tokio::test]
async fn deletes_matched_topics_with_their_subscriptions_and_reports_them() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    topic(
        &setup,
        "lab-alerts",
        &[],
        &[("email", "bob@example.org"), ("sms", "+15550100123")],
    )
    .await;
    topic(&setup, "lab-quiet", &[], &[]).await;
    topic(
        &setup,
        "lab-kept",
        &[("teardown:protect", "yes")],
        &[("email", "carol@example.org")],
    )
    .await;
    topic(&setup, "prod-alerts", &[], &[("email", "ops@example.org")]).await;

    let aws = Arc::new(moto.aws(Mode::Apply));
    let (result, _) = support::run_action(aws.clone(), &DELETE_TOPIC, "name = \"lab-*\"", "").await;
    let out = result.expect("step succeeds");
    let outcome = |name: &str| {
        out.resources
            .iter()
            .find(|o| o.resource.name == name)
            .unwrap_or_else(|| panic!("{name} not in {:#?}", out.resources))
    };
    assert_eq!(out.resources.len(), 3, "{:#?}", out.resources);
    assert_eq!(
        outcome("lab-alerts").detail,
        "deleted with its 2 subscriptions"
    );
    assert_eq!(
        outcome("lab-quiet").detail,
        "deleted (it had no subscriptions)"
    );
    assert_eq!(outcome("lab-kept").outcome, OutcomeKind::Protected);
    assert_eq!(
        out.notes,
        vec!["topic lab-alerts had 2 subscriptions, deleted with it (they get no more messages): email b***@example.org, sms ***0123"]
    );
    assert_eq!(out.summary, "delete: 2 of 2 SNS topics");

    assert_eq!(topic_names(&aws).await, vec!["lab-kept", "prod-alerts"]);
    assert_eq!(
        subscribed_topics(&aws).await,
        vec!["lab-kept", "prod-alerts"]
    );
    assert_eq!(
        aws.calls.mutating_operations(),
        vec!["SNS.DeleteTopic", "SNS.DeleteTopic"]
    );

    let again = Arc::new(moto.aws(Mode::Apply));
    let (result, _) =
        support::run_action(again.clone(), &DELETE_TOPIC, "name = \"lab-*\"", "").await;
    let out = result.unwrap();
    assert_eq!(
        out.resources.len(),
        1,
        "only the protected one: {:#?}",
        out.resources
    );
    assert!(again.calls.mutating_operations().is_empty());
}

#[tokio::test]
async fn a_dry_run_only_reads_and_lists_the_subscriptions() {
    let moto = support::moto().await;
    let setup = moto.aws(Mode::Apply);
    topic(&setup, "lab-alerts", &[], &[("email", "bob@example.org")]).await;

    let aws = Arc::new(moto.aws(Mode::DryRun));
    let (result, _) =
        support::run_action(aws.clone(), &DELETE_TOPIC, "name = \"lab-alerts\"", "").await;
    let out = result.unwrap();
    assert_eq!(out.resources[0].outcome, OutcomeKind::Planned);
    assert_eq!(
        out.resources[0].detail,
        "would delete it and its 1 subscription: email b***@example.org"
    );
    assert!(aws.calls.mutating_operations().is_empty());
    assert_eq!(topic_names(&aws).await, vec!["lab-alerts"]);
    assert_eq!(subscribed_topics(&aws).await, vec!["lab-alerts"]);
}

#[tokio::test]
async fn a_topic_deleted_after_find_is_already_gone() {
    let moto = support::moto().await;
    let aws = moto.aws(Mode::Apply);
    let arn = topic(&aws, "lab-alerts", &[], &[]).await;
    let action = (DELETE_TOPIC.build)(&StepInput {
        step: "t".into(),
        selector: toml::from_str("name = \"lab-alerts\"").unwrap(),
        options: toml::Table::new(),
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    let found = action.find(&aws).await.unwrap();
    assert_eq!(found.len(), 1);
    aws.sns.delete_topic().topic_arn(&arn).send().await.unwrap();
    assert_eq!(
        action.act(&aws, &found[0]).await.unwrap(),
        Acted::AlreadyGone
    );
}
