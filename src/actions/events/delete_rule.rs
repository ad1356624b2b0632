//! `events.delete-rule`: deletes the matched EventBridge (CloudWatch Events) rules.
//!
//! AWS refuses to delete a rule that still has targets, so each rule's targets are removed first,
//! in the same act. The targets themselves (an SNS topic, a Lambda function) are not touched: a
//! step of their own deletes them, if the plan says so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_eventbridge::operation::delete_rule::DeleteRuleError;
use aws_sdk_eventbridge::operation::list_rules::ListRulesError;
use aws_sdk_eventbridge::operation::list_tags_for_resource::ListTagsForResourceError;
use aws_sdk_eventbridge::operation::list_targets_by_rule::ListTargetsByRuleError;
use aws_sdk_eventbridge::operation::remove_targets::RemoveTargetsError;
use aws_sdk_eventbridge::types::{Rule, Target};

use crate::actions::{
    Acted, Action, ActionSpec, FieldKind, FieldSpec, InputError, Pattern, ResourceFilter,
    StepInput, COMMON_FILTER_FIELDS,
};
use crate::aws::{Aws, AwsError, ErrorClass};
use crate::resource::{OutcomeKind, Resource, ResourceOutcome};
use crate::util::count_of;

/// `events.delete-rule`: removes the matched rules' targets, then deletes the rules.
pub static DELETE_RULE: ActionSpec = ActionSpec {
    name: "events.delete-rule",
    summary: "Delete EventBridge (CloudWatch Events) rules, their targets removed first (the targets themselves stay)",
    selector: &[
        COMMON_FILTER_FIELDS[0],
        FieldSpec {
            name: "source",
            kind: FieldKind::Pattern,
            required: false,
            default: None,
            help: "a `source` of the rule's event pattern, exact or a glob, e.g. \"aws.secretsmanager\"",
        },
        COMMON_FILTER_FIELDS[1],
        FieldSpec {
            name: "event_bus",
            kind: FieldKind::Text,
            required: false,
            default: Some("\"default\""),
            help: "the event bus (name or ARN) the rules are on; `default` when absent",
        },
    ],
    options: &[],
    rules: &[crate::actions::Rule::MatchNeedsOneOf(&["name", "source"])],
    permissions: &[
        "events:ListRules",
        "events:ListTagsForResource",
        "events:ListTargetsByRule",
        "events:RemoveTargets",
        "events:DeleteRule",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        let source = input.pattern("source");
        // Tags alone would reach every rule of the bus that carries them, AWS's own included.
        if input.pattern("name").is_none() && source.is_none() {
            return Err(vec![InputError::at(
                &["match"],
                "`match` needs `name` or `source`: which rules to delete",
            )
            .hint("add `name = \"MyRule\"` (or a glob), or `source = \"aws.secretsmanager\"` (the event pattern's source)")]);
        }
        Ok(Arc::new(DeleteRule {
            filter: input.filter("name"),
            source,
            event_bus: input.text("event_bus"),
            removed: Mutex::new(BTreeMap::new()),
        }))
    },
};

const KIND: &str = "EventBridge rule";
/// Attribute: the event bus the rule is on.
const EVENT_BUS: &str = "event_bus";
/// Attribute: the rule's targets when it was found, as `id=ARN` joined by `, `.
const TARGETS: &str = "targets";
/// Attribute: ENABLED or DISABLED.
const STATE: &str = "state";

/// The bus AWS uses when none is named.
const DEFAULT_BUS: &str = "default";

/// How many target ids RemoveTargets takes in one call.
const REMOVE_TARGETS_LIMIT: usize = 10;

struct DeleteRule {
    /// The name pattern and the tag conditions.
    filter: ResourceFilter,
    source: Option<Pattern>,
    event_bus: Option<String>,
    /// By rule ARN, the targets `act` removed: what `notes` reports.
    removed: Mutex<BTreeMap<String, Vec<String>>>,
}

/// The `source` values of an event pattern (a JSON document): `["aws.secretsmanager"]`, or a
/// single string. Content filters such as `{"prefix": "aws."}` are not names and are left out.
fn pattern_sources(event_pattern: &str) -> Vec<String> {
    let Ok(pattern) = serde_json::from_str::<serde_json::Value>(event_pattern) else {
        return Vec::new();
    };
    match pattern.get("source") {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(values)) => values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// `T1=arn:aws:sns:...`: how a target is reported.
fn describe_target(target: &Target) -> String {
    format!("{}={}", target.id(), target.arn())
}

impl DeleteRule {
    fn bus<'a>(&'a self, resource: &'a Resource) -> &'a str {
        resource
            .attribute(EVENT_BUS)
            .or(self.event_bus.as_deref())
            .unwrap_or(DEFAULT_BUS)
    }

    /// The rules on the bus whose name can match, every page. None when the bus does not exist.
    async fn list_rules(&self, aws: &Aws) -> Result<Vec<Rule>, AwsError> {
        let prefix = self
            .filter
            .name
            .as_ref()
            .map(Pattern::literal_prefix)
            .filter(|p| !p.is_empty());
        let mut rules = Vec::new();
        let mut next_token = None;
        loop {
            let result = aws
                .eventbridge
                .list_rules()
                .set_event_bus_name(self.event_bus.clone())
                .set_name_prefix(prefix.map(str::to_string))
                .set_next_token(next_token.take())
                .send()
                .await;
            let page = match result {
                Ok(page) => page,
                Err(e) => match e.as_service_error() {
                    Some(ListRulesError::ResourceNotFoundException(_)) => return Ok(Vec::new()),
                    _ => return Err(AwsError::from_sdk("EventBridge.ListRules", e)),
                },
            };
            rules.extend(page.rules().iter().cloned());
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(rules),
            }
        }
    }

    /// A rule's tags; `None` when the rule went meanwhile.
    async fn tags(aws: &Aws, arn: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        match aws
            .eventbridge
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
                _ => Err(AwsError::from_sdk("EventBridge.ListTagsForResource", e)),
            },
        }
    }

    /// Every target of a rule; `None` when the rule is gone.
    async fn targets(aws: &Aws, rule: &str, bus: &str) -> Result<Option<Vec<Target>>, AwsError> {
        let mut targets = Vec::new();
        let mut next_token = None;
        loop {
            let result = aws
                .eventbridge
                .list_targets_by_rule()
                .rule(rule)
                .event_bus_name(bus)
                .set_next_token(next_token.take())
                .send()
                .await;
            let page = match result {
                Ok(page) => page,
                Err(e) => match e.as_service_error() {
                    Some(ListTargetsByRuleError::ResourceNotFoundException(_)) => return Ok(None),
                    _ => return Err(AwsError::from_sdk("EventBridge.ListTargetsByRule", e)),
                },
            };
            targets.extend(page.targets().iter().cloned());
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(Some(targets)),
            }
        }
    }

    /// Removes targets, ten a call. `false` when the rule went meanwhile.
    async fn remove_targets(
        aws: &Aws,
        resource: &Resource,
        bus: &str,
        targets: &[Target],
    ) -> Result<bool, AwsError> {
        let ids: Vec<String> = targets.iter().map(|t| t.id().to_string()).collect();
        for chunk in ids.chunks(REMOVE_TARGETS_LIMIT) {
            let result = aws
                .eventbridge
                .remove_targets()
                .rule(&resource.name)
                .event_bus_name(bus)
                .set_ids(Some(chunk.to_vec()))
                .send()
                .await;
            let out = match result {
                Ok(out) => out,
                Err(e) => match e.as_service_error() {
                    Some(RemoveTargetsError::ResourceNotFoundException(_)) => return Ok(false),
                    _ => return Err(AwsError::from_sdk("EventBridge.RemoveTargets", e)),
                },
            };
            // Refusals per target come back in the answer, not as an error.
            if let Some(failed) = out.failed_entries().first() {
                let code = failed.error_code().map(str::to_string);
                // Someone else changing the rule at the same moment: worth another try.
                let class = if code.as_deref() == Some("ConcurrentModificationException") {
                    ErrorClass::Retryable
                } else {
                    ErrorClass::Fatal
                };
                return Err(AwsError {
                    class,
                    code,
                    operation: "EventBridge.RemoveTargets".into(),
                    message: format!(
                        "{} of the targets of rule {} were not removed; target {}: {}",
                        out.failed_entry_count(),
                        resource.name,
                        failed.target_id().unwrap_or("?"),
                        failed.error_message().unwrap_or("no reason given")
                    ),
                });
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl Action for DeleteRule {
    fn resource_kind(&self) -> &'static str {
        KIND
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let now = chrono::Utc::now();
        let mut found = Vec::new();
        for rule in self.list_rules(aws).await? {
            let (Some(name), Some(arn)) = (rule.name(), rule.arn()) else {
                continue;
            };
            // A rule another AWS service made for itself (ManagedBy) is that service's to delete:
            // AWS refuses without `Force`, and forcing it would break the service.
            if rule.managed_by().is_some() {
                continue;
            }
            if self.filter.name.as_ref().is_some_and(|p| !p.matches(name)) {
                continue;
            }
            let source_matched = match &self.source {
                Some(pattern) => {
                    let sources = pattern_sources(rule.event_pattern().unwrap_or_default());
                    match sources.iter().find(|s| pattern.matches(s)) {
                        Some(source) => Some(format!("event pattern source \"{source}\"")),
                        None => continue,
                    }
                }
                None => None,
            };
            let Some(tags) = Self::tags(aws, arn).await? else {
                continue;
            };
            // EventBridge gives no creation time: the selector takes no `older_than`.
            let Some(why) = self.filter.matches(name, &tags, None, now) else {
                continue;
            };
            let why = match (why.is_empty(), source_matched) {
                (_, None) => why,
                (true, Some(source)) => source,
                (false, Some(source)) => format!("{why}, {source}"),
            };
            let bus = rule
                .event_bus_name()
                .or(self.event_bus.as_deref())
                .unwrap_or(DEFAULT_BUS)
                .to_string();
            // The targets too, so that a dry run shows what the deletion takes away.
            let Some(targets) = Self::targets(aws, name, &bus).await? else {
                continue;
            };
            let mut resource = Resource::new(KIND, arn, name, why)
                .with_attribute(EVENT_BUS, bus)
                .with_attribute(
                    TARGETS,
                    targets
                        .iter()
                        .map(describe_target)
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            if let Some(state) = rule.state() {
                resource = resource.with_attribute(STATE, state.as_str());
            }
            resource.tags = tags;
            found.push(resource);
        }
        Ok(found)
    }

    fn planned(&self, resource: &Resource) -> String {
        match resource.attribute(TARGETS).filter(|t| !t.is_empty()) {
            Some(targets) => format!(
                "would remove its {} ({targets}), then delete it",
                count_of(targets.split(", ").count(), "target")
            ),
            None => "would delete it (it has no targets)".into(),
        }
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        let bus = self.bus(resource);
        // Listed again: targets added since `find` would make AWS refuse the deletion.
        let Some(targets) = Self::targets(aws, &resource.name, bus).await? else {
            return Ok(Acted::AlreadyGone);
        };
        if !targets.is_empty() && !Self::remove_targets(aws, resource, bus, &targets).await? {
            return Ok(Acted::AlreadyGone);
        }
        let removed: Vec<String> = targets.iter().map(describe_target).collect();
        let result = aws
            .eventbridge
            .delete_rule()
            .name(&resource.name)
            .event_bus_name(bus)
            .send()
            .await;
        if let Err(e) = result {
            match e.as_service_error() {
                Some(DeleteRuleError::ResourceNotFoundException(_)) if removed.is_empty() => {
                    return Ok(Acted::AlreadyGone)
                }
                Some(DeleteRuleError::ResourceNotFoundException(_)) => {}
                _ => {
                    let error = AwsError::from_sdk("EventBridge.DeleteRule", e);
                    // A target added between the removal and the deletion: AWS refuses (as a
                    // validation error); the next attempt removes it too.
                    return match Self::targets(aws, &resource.name, bus).await? {
                        Some(left) if !left.is_empty() => Err(AwsError {
                            class: ErrorClass::Retryable,
                            message: format!(
                                "{} was added to rule {} while it was being deleted: {}",
                                count_of(left.len(), "target"),
                                resource.name,
                                error.message
                            ),
                            ..error
                        }),
                        _ => Err(error),
                    };
                }
            }
        }
        let detail = if removed.is_empty() {
            "deleted (it had no targets)".to_string()
        } else {
            format!(
                "removed its {} ({}), then deleted it",
                count_of(removed.len(), "target"),
                removed.join(", ")
            )
        };
        self.removed
            .lock()
            .expect("removed targets poisoned")
            .insert(resource.id.clone(), removed);
        Ok(Acted::Done(detail))
    }

    fn notes(&self, outcomes: &[ResourceOutcome]) -> Vec<String> {
        let removed = self.removed.lock().expect("removed targets poisoned");
        outcomes
            .iter()
            .filter(|o| o.outcome == OutcomeKind::Done)
            .filter_map(|o| {
                let targets = removed.get(&o.resource.id).filter(|t| !t.is_empty())?;
                Some(format!(
                    "rule {}: removed {} before deleting it: {} (the targets themselves were not deleted)",
                    o.resource.name,
                    count_of(targets.len(), "target"),
                    targets.join(", ")
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_of_an_event_pattern() {
        let lab = r#"{"source":["aws.secretsmanager"],"detail-type":["AWS API Call via CloudTrail"],
                      "detail":{"eventSource":["secretsmanager.amazonaws.com"],"eventName":["DeleteSecret"]}}"#;
        assert_eq!(pattern_sources(lab), vec!["aws.secretsmanager"]);
        assert_eq!(
            pattern_sources(r#"{"source":["aws.ec2",{"prefix":"aws."}]}"#),
            vec!["aws.ec2"]
        );
        assert_eq!(pattern_sources(r#"{"source":"aws.ecs"}"#), vec!["aws.ecs"]);
        assert!(pattern_sources(r#"{"detail-type":["Scheduled Event"]}"#).is_empty());
        assert!(pattern_sources("not json").is_empty());
    }

    #[test]
    fn name_or_source_is_required() {
        let input = |selector: &str| StepInput {
            step: "t".into(),
            selector: toml::from_str(selector).unwrap(),
            options: toml::Table::new(),
        };
        assert!((DELETE_RULE.build)(&input("name = \"r\"")).is_ok());
        assert!((DELETE_RULE.build)(&input("source = \"aws.secretsmanager\"")).is_ok());
        let errors = (DELETE_RULE.build)(&input("tags = { Lab = \"x\" }"))
            .err()
            .expect("tags alone are refused");
        assert_eq!(errors[0].path, vec!["match"]);
    }

    fn rule(selector: &str) -> DeleteRule {
        let input = crate::actions::test_input(selector, "");
        DeleteRule {
            filter: input.filter("name"),
            source: input.pattern("source"),
            event_bus: input.text("event_bus"),
            removed: Mutex::new(BTreeMap::new()),
        }
    }

    #[test]
    fn the_bus_found_wins_over_the_steps_and_the_default() {
        let found = Resource::new(KIND, "arn", "r", "").with_attribute(EVENT_BUS, "lab-bus");
        let unknown = Resource::new(KIND, "arn", "r", "");
        let on_bus = rule("name = \"r\"\nevent_bus = \"other\"");
        assert_eq!(on_bus.bus(&found), "lab-bus");
        assert_eq!(on_bus.bus(&unknown), "other");
        assert_eq!(rule("name = \"r\"").bus(&unknown), DEFAULT_BUS);
    }

    #[test]
    fn a_dry_run_lists_the_targets_that_would_be_removed() {
        let target = Target::builder()
            .id("T1")
            .arn("arn:aws:sns:us-west-2:123456789012:Alerts")
            .build()
            .expect("id and arn");
        let targets = [
            describe_target(&target),
            "T2=arn:aws:lambda:us-west-2:123456789012:function:f".into(),
        ];
        assert_eq!(targets[0], "T1=arn:aws:sns:us-west-2:123456789012:Alerts");
        let found = Resource::new(KIND, "arn", "r", "").with_attribute(TARGETS, targets.join(", "));
        assert_eq!(
            rule("name = \"r\"").planned(&found),
            format!(
                "would remove its 2 targets ({}), then delete it",
                targets.join(", ")
            )
        );
        let bare = Resource::new(KIND, "arn", "r", "").with_attribute(TARGETS, "");
        assert_eq!(
            rule("name = \"r\"").planned(&bare),
            "would delete it (it has no targets)"
        );
    }
}
