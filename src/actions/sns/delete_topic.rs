//! `sns.delete-topic`: deletes the matched SNS topics.
//!
//! Deleting a topic deletes its subscriptions with it. Who was subscribed is worth knowing
//! afterwards (those people get no more alerts), so the step lists the subscriptions first and
//! reports them; email addresses and phone numbers are shown masked, since summaries end up in CI
//! logs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_sns::operation::delete_topic::DeleteTopicError;
use aws_sdk_sns::operation::list_subscriptions_by_topic::ListSubscriptionsByTopicError;
use aws_sdk_sns::operation::list_tags_for_resource::ListTagsForResourceError;
use aws_sdk_sns::types::Subscription;

use crate::actions::{
    Acted, Action, ActionSpec, FieldSpec, InputError, ResourceFilter, StepInput,
    COMMON_FILTER_FIELDS,
};
use crate::aws::{Aws, AwsError};
use crate::resource::{OutcomeKind, Resource, ResourceOutcome};
use crate::util::count_of;

/// `sns.delete-topic`: deletes the matched topics, and with them their subscriptions.
pub static DELETE_TOPIC: ActionSpec = ActionSpec {
    name: "sns.delete-topic",
    summary: "Delete SNS topics (their subscriptions go with them) and report the subscriptions that existed",
    selector: &[
        FieldSpec {
            required: true,
            ..COMMON_FILTER_FIELDS[0]
        },
        COMMON_FILTER_FIELDS[1],
    ],
    options: &[],
    rules: &[],
    permissions: &[
        "sns:ListTopics",
        "sns:ListTagsForResource",
        "sns:ListSubscriptionsByTopic",
        "sns:DeleteTopic",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        if input.pattern("name").is_none() {
            return Err(vec![InputError::at(&["match", "name"], "missing `name` in match")
                .hint("add `name = ...`: the topic's name (the last part of its ARN), or a glob")]);
        }
        Ok(Arc::new(DeleteTopic {
            filter: input.filter("name"),
            deleted: Mutex::new(BTreeMap::new()),
        }))
    },
};

const KIND: &str = "SNS topic";
/// Attribute: the topic's subscriptions when it was found, described and joined by `, `.
const SUBSCRIPTIONS: &str = "subscriptions";

struct DeleteTopic {
    filter: ResourceFilter,
    /// By topic ARN, the subscriptions that went with each deleted topic: what `notes` reports.
    deleted: Mutex<BTreeMap<String, Vec<String>>>,
}

/// A topic's name: the last part of its ARN (`arn:aws:sns:us-west-2:123456789012:Alerts`).
fn topic_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// An endpoint fit for a log: an email address keeps its first letter and its domain, a phone
/// number its last four digits; queues, functions and URLs are not personal and stay whole.
fn masked_endpoint(protocol: &str, endpoint: &str) -> String {
    match protocol {
        "email" | "email-json" => match endpoint.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        },
        "sms" => {
            let digits: Vec<char> = endpoint.chars().filter(char::is_ascii_digit).collect();
            let last: String = digits[digits.len().saturating_sub(4)..].iter().collect();
            format!("***{last}")
        }
        _ => endpoint.to_string(),
    }
}

/// `email a***@example.com (pending confirmation)`.
fn describe_subscription(subscription: &Subscription) -> String {
    let protocol = subscription.protocol().unwrap_or("unknown");
    let endpoint = masked_endpoint(protocol, subscription.endpoint().unwrap_or_default());
    // Until someone confirms it, SNS gives a subscription no ARN but this word.
    if subscription.subscription_arn() == Some("PendingConfirmation") {
        format!("{protocol} {endpoint} (pending confirmation)")
    } else {
        format!("{protocol} {endpoint}")
    }
}

impl DeleteTopic {
    /// A topic's subscriptions, described; `None` when the topic is gone.
    async fn subscriptions(aws: &Aws, arn: &str) -> Result<Option<Vec<String>>, AwsError> {
        let listed: Result<Vec<Subscription>, _> = aws
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(arn)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await;
        match listed {
            Ok(subscriptions) => Ok(Some(
                subscriptions.iter().map(describe_subscription).collect(),
            )),
            Err(e) => match e.as_service_error() {
                Some(ListSubscriptionsByTopicError::NotFoundException(_)) => Ok(None),
                _ => Err(AwsError::from_sdk("SNS.ListSubscriptionsByTopic", e)),
            },
        }
    }

    /// A topic's tags; `None` when the topic is gone.
    async fn tags(aws: &Aws, arn: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        match aws
            .sns
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
            )),
            Err(e) => match e.as_service_error() {
                Some(ListTagsForResourceError::ResourceNotFoundException(_)) => Ok(None),
                _ => Err(AwsError::from_sdk("SNS.ListTagsForResource", e)),
            },
        }
    }
}

#[async_trait]
impl Action for DeleteTopic {
    fn resource_kind(&self) -> &'static str {
        KIND
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let topics: Vec<_> = aws
            .sns
            .list_topics()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::from_sdk("SNS.ListTopics", e))?;
        let now = chrono::Utc::now();
        let mut found = Vec::new();
        for topic in topics {
            let Some(arn) = topic.topic_arn() else {
                continue;
            };
            let name = topic_name(arn);
            // The name first: tags cost a call per topic.
            if self.filter.name.as_ref().is_some_and(|p| !p.matches(name)) {
                continue;
            }
            let Some(tags) = Self::tags(aws, arn).await? else {
                continue;
            };
            // SNS gives no creation time: the selector takes no `older_than`.
            let Some(why) = self.filter.matches(name, &tags, None, now) else {
                continue;
            };
            let Some(subscriptions) = Self::subscriptions(aws, arn).await? else {
                continue;
            };
            let mut resource = Resource::new(KIND, arn, name, why)
                .with_attribute(SUBSCRIPTIONS, subscriptions.join(", "));
            resource.tags = tags;
            found.push(resource);
        }
        Ok(found)
    }

    fn planned(&self, resource: &Resource) -> String {
        match resource.attribute(SUBSCRIPTIONS).filter(|s| !s.is_empty()) {
            Some(subscriptions) => format!(
                "would delete it and its {}: {subscriptions}",
                count_of(subscriptions.split(", ").count(), "subscription")
            ),
            None => "would delete it (it has no subscriptions)".into(),
        }
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        // Listed again right before: the report names what really went. It also tells a topic
        // deleted meanwhile apart, which DeleteTopic cannot (it succeeds for a missing topic).
        let Some(subscriptions) = Self::subscriptions(aws, &resource.id).await? else {
            return Ok(Acted::AlreadyGone);
        };
        let result = aws.sns.delete_topic().topic_arn(&resource.id).send().await;
        if let Err(e) = result {
            return match e.as_service_error() {
                Some(DeleteTopicError::NotFoundException(_)) => Ok(Acted::AlreadyGone),
                _ => Err(AwsError::from_sdk("SNS.DeleteTopic", e)),
            };
        }
        let detail = if subscriptions.is_empty() {
            "deleted (it had no subscriptions)".to_string()
        } else {
            format!(
                "deleted with its {}",
                count_of(subscriptions.len(), "subscription")
            )
        };
        self.deleted
            .lock()
            .expect("deleted topics poisoned")
            .insert(resource.id.clone(), subscriptions);
        Ok(Acted::Done(detail))
    }

    fn notes(&self, outcomes: &[ResourceOutcome]) -> Vec<String> {
        let deleted = self.deleted.lock().expect("deleted topics poisoned");
        outcomes
            .iter()
            .filter(|o| o.outcome == OutcomeKind::Done)
            .filter_map(|o| {
                let subscriptions = deleted.get(&o.resource.id).filter(|s| !s.is_empty())?;
                Some(format!(
                    "topic {} had {}, deleted with it (they get no more messages): {}",
                    o.resource.name,
                    count_of(subscriptions.len(), "subscription"),
                    subscriptions.join(", ")
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_masked_where_personal() {
        assert_eq!(
            masked_endpoint("email", "alice@example.com"),
            "a***@example.com"
        );
        assert_eq!(masked_endpoint("sms", "+1 555-010-0199"), "***0199");
        let queue = "arn:aws:sqs:us-west-2:123456789012:alerts";
        assert_eq!(masked_endpoint("sqs", queue), queue);
        assert_eq!(
            topic_name("arn:aws:sns:us-west-2:123456789012:SecretDeletionAlerts"),
            "SecretDeletionAlerts"
        );
    }

    #[test]
    fn odd_endpoints_are_masked_without_panicking() {
        assert_eq!(
            masked_endpoint("email-json", "bob@example.org"),
            "b***@example.org"
        );
        assert_eq!(masked_endpoint("email", "not-an-address"), "***");
        assert_eq!(masked_endpoint("sms", "12"), "***12");
        assert_eq!(masked_endpoint("sms", ""), "***");
        assert_eq!(topic_name("Alerts"), "Alerts");
    }

    #[test]
    fn a_subscription_is_described_masked_and_pending_ones_said_so() {
        let confirmed = Subscription::builder()
            .protocol("email")
            .endpoint("alice@example.com")
            .subscription_arn("arn:aws:sns:us-west-2:123456789012:Alerts:1")
            .build();
        assert_eq!(describe_subscription(&confirmed), "email a***@example.com");
        let pending = Subscription::builder()
            .protocol("sms")
            .endpoint("+1 555-010-0199")
            .subscription_arn("PendingConfirmation")
            .build();
        assert_eq!(
            describe_subscription(&pending),
            "sms ***0199 (pending confirmation)"
        );
    }

    #[test]
    fn a_dry_run_counts_the_subscriptions_that_would_go() {
        let action = (DELETE_TOPIC.build)(&crate::actions::test_input("name = \"Alerts\"", ""))
            .expect("name given");
        let topic = Resource::new(KIND, "arn", "Alerts", "")
            .with_attribute(SUBSCRIPTIONS, "email a***@example.com, sqs arn:q");
        assert_eq!(
            action.planned(&topic),
            "would delete it and its 2 subscriptions: email a***@example.com, sqs arn:q"
        );
        let bare = Resource::new(KIND, "arn", "Alerts", "").with_attribute(SUBSCRIPTIONS, "");
        assert_eq!(
            action.planned(&bare),
            "would delete it (it has no subscriptions)"
        );
    }
}
