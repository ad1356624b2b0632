//! `logs.delete-log-groups`: deletes the matched CloudWatch Logs log groups and their streams.
//!
//! Lambda creates `/aws/lambda/<function>` the first time a function logs, outside any
//! CloudFormation stack, so deleting the function's stack leaves its log group behind. A step names
//! the groups exactly (`names`, usually filled from the plan's variables), by a name or glob
//! (`name`), or by tags.
//!
//! DescribeLogGroups only filters by prefix: asked for `/aws/lambda/fn` it also returns
//! `/aws/lambda/fn-2`. Every group it returns is matched again here, exactly, before anything else
//! is asked about it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::operation::delete_log_group::DeleteLogGroupError;
use aws_sdk_cloudwatchlogs::operation::list_tags_for_resource::ListTagsForResourceError;
use aws_sdk_cloudwatchlogs::types::LogGroup;

use crate::actions::{
    Acted, Action, ActionSpec, FieldKind, FieldSpec, InputError, ResourceFilter, Rule, StepInput,
    COMMON_FILTER_FIELDS,
};
use crate::aws::{Aws, AwsError, ErrorClass};
use crate::resource::Resource;

/// `logs.delete-log-groups`: deletes the matched log groups, and with them their log streams.
pub static DELETE_LOG_GROUPS: ActionSpec = ActionSpec {
    name: "logs.delete-log-groups",
    summary: "Delete CloudWatch Logs log groups (such as the /aws/lambda/<function> groups Lambda leaves behind) by exact names, a glob or tags",
    selector: &[
        COMMON_FILTER_FIELDS[0],
        FieldSpec {
            name: "names",
            kind: FieldKind::List,
            required: false,
            default: None,
            help: "exact log group names, e.g. [\"/aws/lambda/{function}\"]; a longer name that starts the same is never matched",
        },
        COMMON_FILTER_FIELDS[1],
        COMMON_FILTER_FIELDS[2],
    ],
    options: &[],
    rules: &[
        Rule::MatchNeedsOneOf(&["name", "names", "tags"]),
        Rule::MatchNotBoth("name", "names"),
    ],
    permissions: &[
        "logs:DescribeLogGroups",
        "logs:ListTagsForResource",
        "logs:DeleteLogGroup",
    ],
    build,
};

const KIND: &str = "CloudWatch Logs log group";
/// Attribute, present when the group has AWS's deletion protection on.
const DELETION_PROTECTION: &str = "deletion_protection";

fn build(input: &StepInput) -> Result<Arc<dyn Action>, Vec<InputError>> {
    let filter = input.filter("name");
    let names = input
        .selector
        .contains_key("names")
        .then(|| input.list("names"));
    let mut errors = Vec::new();
    if let Some(names) = &names {
        errors.extend(check_names(names));
        if filter.name.is_some() {
            errors.push(
                InputError::at(&["match"], "`match` takes `name` or `names`, not both")
                    .hint("`names` for a list of exact names, `name` for one name or a glob"),
            );
        }
    }
    // `older_than` alone would match every log group in the region.
    if filter.name.is_none() && names.is_none() && filter.tags.is_empty() {
        errors.push(
            InputError::at(
                &["match"],
                "`match` needs `name`, `names` or `tags`: without them it would match every log group in the region",
            )
            .hint("add `names = [\"/aws/lambda/my-function\"]`, `name = \"/aws/lambda/lab-*\"`, or `tags = { Project = \"lab\" }`"),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Arc::new(DeleteLogGroups::new(
        filter,
        names.unwrap_or_default(),
    )))
}

/// Problems with the entries of `names`: each must be a whole log group name, as AWS spells them
/// (1 to 512 of `A-Za-z0-9._-/#`), since each is matched exactly.
fn check_names(names: &[String]) -> Vec<InputError> {
    if names.is_empty() {
        return vec![InputError::at(&["match", "names"], "`names` is empty")
            .hint("an empty list would match nothing: check the variables it is made of")];
    }
    names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let problem = if name.is_empty() {
                "is empty".to_string()
            } else if name.contains(['*', '?', '[']) {
                return Some(
                    InputError::at(
                        &["match", "names"],
                        format!("entry {i} (\"{name}\") is a glob, but `names` takes exact names"),
                    )
                    .hint("use `name = \"...\"` for a glob"),
                );
            } else if let Some(c) = name.chars().find(|c| !is_log_group_char(*c)) {
                format!("(\"{name}\") has {c:?}, which no log group name has")
            } else if name.len() > 512 {
                "is longer than the 512 characters of a log group name".to_string()
            } else {
                return None;
            };
            Some(
                InputError::at(&["match", "names"], format!("entry {i} {problem}"))
                    .hint("log group names are made of letters, digits and . - _ / #: check the variables it is made of"),
            )
        })
        .collect()
}

fn is_log_group_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#')
}

struct DeleteLogGroups {
    /// Name pattern (when the step gave `name`), tags and age.
    filter: ResourceFilter,
    /// `filter` without its tags: what can be checked before the tags are fetched.
    untagged: ResourceFilter,
    /// The exact names the step gave (`names`), sorted; empty when it gave none.
    names: BTreeSet<String>,
}

impl DeleteLogGroups {
    fn new(filter: ResourceFilter, names: Vec<String>) -> DeleteLogGroups {
        let untagged = ResourceFilter {
            tags: Vec::new(),
            ..filter.clone()
        };
        DeleteLogGroups {
            filter,
            untagged,
            names: names.into_iter().collect(),
        }
    }

    /// The `logGroupNamePrefix` of each listing to make: one per exact name, the literal start of
    /// a glob, or `None` for a listing of every group.
    fn prefixes(&self) -> Vec<Option<String>> {
        if !self.names.is_empty() {
            return self.names.iter().cloned().map(Some).collect();
        }
        let prefix = self
            .filter
            .name
            .as_ref()
            .map(|p| p.literal_prefix().to_string())
            .filter(|p| !p.is_empty());
        vec![prefix]
    }

    /// True when a group's name and age match: what is known before its tags are fetched.
    fn candidate(
        &self,
        name: &str,
        created: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        (self.names.is_empty() || self.names.contains(name))
            && self
                .untagged
                .matches(name, &BTreeMap::new(), created, now)
                .is_some()
    }

    /// Why a candidate matched, once its tags are known, or `None`.
    fn matched_because(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
        created: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<String> {
        let why = self.filter.matches(name, tags, created, now)?;
        if self.names.is_empty() {
            return Some(why);
        }
        let listed = format!("name is \"{name}\" (listed in names)");
        Some(if why.is_empty() {
            listed
        } else {
            format!("{listed}, {why}")
        })
    }

    /// A log group's tags; `None` when the group is gone.
    async fn tags(aws: &Aws, arn: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        match aws
            .logs
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.tags()
                    .map(|tags| tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            )),
            Err(e) => match e.as_service_error() {
                Some(ListTagsForResourceError::ResourceNotFoundException(_)) => Ok(None),
                _ => Err(AwsError::from_sdk("CloudWatchLogs.ListTagsForResource", e)),
            },
        }
    }

    /// The group as a resource, if it matches (fetching its tags when its name and age do).
    async fn resource(
        &self,
        aws: &Aws,
        group: &LogGroup,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Resource>, AwsError> {
        let Some(name) = group.log_group_name() else {
            return Ok(None);
        };
        let created = group
            .creation_time()
            .and_then(chrono::DateTime::from_timestamp_millis);
        if !self.candidate(name, created, now) {
            return Ok(None);
        }
        // ListTagsForResource takes the ARN without the `:*` that `arn` ends with.
        let Some(arn) = group
            .log_group_arn()
            .or_else(|| group.arn().map(|a| a.trim_end_matches(":*")))
        else {
            return Ok(None);
        };
        // Always fetched, `tags` in the step or not: the protect tag is checked on every group.
        let Some(tags) = Self::tags(aws, arn).await? else {
            return Ok(None);
        };
        let Some(why) = self.matched_because(name, &tags, created, now) else {
            return Ok(None);
        };
        let mut resource = Resource::new(KIND, arn, name, why);
        if group.deletion_protection_enabled() == Some(true) {
            resource = resource.with_attribute(DELETION_PROTECTION, "on");
        }
        resource.created = created;
        resource.tags = tags;
        Ok(Some(resource))
    }
}

#[async_trait]
impl Action for DeleteLogGroups {
    fn resource_kind(&self) -> &'static str {
        KIND
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let now = chrono::Utc::now();
        // Each name is listed, and each group's tags read, side by side: none depends on another.
        let listings = futures_util::future::try_join_all(self.prefixes().into_iter().map(
            |prefix| async move {
                aws.logs
                    .describe_log_groups()
                    .set_log_group_name_prefix(prefix)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| AwsError::from_sdk("CloudWatchLogs.DescribeLogGroups", e))
            },
        ))
        .await?;
        // One name's listing also returns the longer names it starts, which `names` may list as
        // well: each group is looked at once.
        let mut seen = BTreeSet::new();
        let groups: Vec<LogGroup> = listings
            .into_iter()
            .flatten()
            .filter(|g| {
                g.log_group_name()
                    .is_some_and(|n| seen.insert(n.to_string()))
            })
            .collect();
        let found = futures_util::future::try_join_all(
            groups.iter().map(|group| self.resource(aws, group, now)),
        )
        .await?;
        Ok(found.into_iter().flatten().collect())
    }

    fn planned(&self, resource: &Resource) -> String {
        if resource.attribute(DELETION_PROTECTION).is_some() {
            "would delete it, but its deletion protection is on: AWS will refuse until it is turned off".into()
        } else {
            "would delete it and its log streams".into()
        }
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        let result = aws
            .logs
            .delete_log_group()
            .log_group_name(&resource.name)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Acted::Done("deleted".into())),
            Err(e) => match e.as_service_error() {
                Some(DeleteLogGroupError::ResourceNotFoundException(_)) => Ok(Acted::AlreadyGone),
                Some(DeleteLogGroupError::ValidationException(_))
                    if resource.attribute(DELETION_PROTECTION).is_some() =>
                {
                    let e = AwsError::from_sdk("CloudWatchLogs.DeleteLogGroup", e);
                    Err(AwsError {
                        class: ErrorClass::Fatal,
                        message: format!(
                            "{} (log group {} has deletion protection on: turn it off with `aws logs put-log-group-deletion-protection --log-group-identifier {} --no-deletion-protection-enabled` if it really is to go)",
                            e.message, resource.name, resource.name
                        ),
                        ..e
                    })
                }
                _ => Err(AwsError::from_sdk("CloudWatchLogs.DeleteLogGroup", e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(selector: &str) -> StepInput {
        StepInput {
            step: "t".into(),
            selector: toml::from_str(selector).unwrap(),
            options: toml::Table::new(),
        }
    }

    fn action(selector: &str) -> DeleteLogGroups {
        let input = input(selector);
        assert!(build(&input).is_ok(), "{selector}");
        DeleteLogGroups::new(input.filter("name"), input.list("names"))
    }

    fn errors(selector: &str) -> Vec<String> {
        match build(&input(selector)) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.message).collect(),
        }
    }

    #[test]
    fn a_glob_is_listed_from_its_literal_start() {
        assert_eq!(
            action("name = \"/aws/lambda/lab-*\"").prefixes(),
            vec![Some("/aws/lambda/lab-".to_string())]
        );
        assert_eq!(action("name = \"*x*\"").prefixes(), vec![None]);
    }

    #[test]
    fn exact_names_are_listed_each_by_its_whole_name() {
        assert_eq!(
            action("name = \"/aws/lambda/fn\"").prefixes(),
            vec![Some("/aws/lambda/fn".to_string())]
        );
        assert_eq!(
            action("names = [\"/aws/lambda/b\", \"/aws/lambda/a\", \"/aws/lambda/b\"]").prefixes(),
            vec![
                Some("/aws/lambda/a".to_string()),
                Some("/aws/lambda/b".to_string())
            ]
        );
        assert_eq!(
            action("tags = { Project = \"lab\" }").prefixes(),
            vec![None]
        );
    }

    #[test]
    fn exact_names_never_match_a_longer_name() {
        let now = chrono::Utc::now();
        for selector in ["names = [\"/aws/lambda/fn\"]", "name = \"/aws/lambda/fn\""] {
            let a = action(selector);
            assert!(a.candidate("/aws/lambda/fn", Some(now), now));
            assert!(!a.candidate("/aws/lambda/fn-2", Some(now), now));
            assert!(!a.candidate("/aws/lambda/f", Some(now), now));
        }
        let glob = action("name = \"/aws/lambda/fn-*\"");
        assert!(glob.candidate("/aws/lambda/fn-2", Some(now), now));
        assert!(!glob.candidate("/aws/lambda/fn", Some(now), now));
    }

    #[test]
    fn names_tags_and_age_all_hold_and_say_why() {
        let now = chrono::Utc::now();
        let old = Some(now - chrono::Duration::days(3));
        let a = action(
            "names = [\"/aws/lambda/fn\"]\ntags = { Project = \"lab\" }\nolder_than = \"1d\"",
        );
        // Name and age are known without a call; tags are not.
        assert!(a.candidate("/aws/lambda/fn", old, now));
        assert!(!a.candidate("/aws/lambda/fn", Some(now), now));
        assert!(!a.candidate("/aws/lambda/fn", None, now));
        let lab: BTreeMap<_, _> = [("Project".to_string(), "lab".to_string())].into();
        let why = a.matched_because("/aws/lambda/fn", &lab, old, now).unwrap();
        assert!(
            why.starts_with(
                "name is \"/aws/lambda/fn\" (listed in names), tag Project=lab, 72h old"
            ),
            "{why}"
        );
        assert!(a
            .matched_because("/aws/lambda/fn", &BTreeMap::new(), old, now)
            .is_none());
        assert_eq!(
            action("name = \"/aws/lambda/*\"")
                .matched_because("/aws/lambda/fn", &BTreeMap::new(), None, now)
                .as_deref(),
            Some("name matches \"/aws/lambda/*\"")
        );
    }

    #[test]
    fn a_step_must_say_which_groups() {
        assert!(errors("older_than = \"1d\"")[0].contains("needs `name`, `names` or `tags`"));
        assert!(errors("")[0].contains("needs `name`, `names` or `tags`"));
        assert!(
            errors("name = \"/aws/lambda/a\"\nnames = [\"/aws/lambda/b\"]")[0].contains("not both")
        );
        assert_eq!(errors("names = []"), vec!["`names` is empty"]);
        assert_eq!(
            errors("names = [\"/aws/lambda/a\", \"\", \"/aws/lambda/*\", \"/aws/lambda/a b\"]"),
            vec![
                "entry 1 is empty",
                "entry 2 (\"/aws/lambda/*\") is a glob, but `names` takes exact names",
                "entry 3 (\"/aws/lambda/a b\") has ' ', which no log group name has",
            ]
        );
        assert!(errors("tags = { Project = \"lab\" }").is_empty());
        assert!(errors("names = [\"/aws/lambda/fn\", \"/ecs/lab#1\"]").is_empty());
    }

    #[test]
    fn a_protected_group_is_planned_with_a_warning() {
        let a = action("name = \"/aws/lambda/fn\"");
        let plain = Resource::new(KIND, "arn", "/aws/lambda/fn", "");
        assert_eq!(a.planned(&plain), "would delete it and its log streams");
        let protected = plain.with_attribute(DELETION_PROTECTION, "on");
        assert!(a.planned(&protected).contains("deletion protection is on"));
    }
}
