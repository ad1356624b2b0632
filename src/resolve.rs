//! Reads the plan's `[lookup]` variables from the account, read-only, before the confirmation
//! and before any change: a stack's outputs, parameters, tags and resources, the secret a task
//! family references, the function that rotates a secret, the stack that owns a resource. Each
//! value comes from what AWS records about the lab, never from a name pattern, and each lookup
//! must find exactly one value: nothing, or two candidates, is an error that names the stack and
//! the key, never an empty string that quietly matches nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use aws_sdk_cloudformation::error::ProvideErrorMetadata;

use crate::actions::cloudformation::is_missing_stack;
use crate::aws::{Aws, AwsError};
use crate::plan::{self, Lookup, Plan, VarSource};

/// Why a lookup found no single value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("lookup `{name}` ({what}): {problem}")]
pub struct LookupError {
    /// The variable it was to fill.
    pub name: String,
    /// Where it looked, templates filled.
    pub what: String,
    /// What went wrong and what to do.
    pub problem: String,
}

/// Reads the looked-up variables in `needed` that the plan does not have yet, and returns each
/// with where it came from. Lookups whose keys need no value still to be looked up are read side
/// by side, wave after wave (a stack's outputs together; then the secret the family names; then
/// its rotation function...). Stops at the first wave in which a lookup finds no single value,
/// with the first such lookup in the plan's order.
pub async fn resolve(
    plan: &Plan,
    needed: &BTreeSet<String>,
    aws: &Aws,
) -> Result<Vec<(String, VarSource)>, LookupError> {
    let mut values = plan.vars.clone();
    let mut resolved = Vec::new();
    let stacks = StackCache::default();
    let mut waiting: Vec<&Lookup> = plan
        .lookups
        .iter()
        .filter(|l| needed.contains(&l.name) && plan.unresolved.contains(&l.name))
        .collect();
    let unknown = crate::plan::lookup::placeholder("");
    while !waiting.is_empty() {
        let ready_now = |lookup: &&Lookup| {
            lookup.keys.values().all(|template| {
                plan::interpolate(template, &values).is_ok_and(|v| !v.contains(&unknown))
            })
        };
        let (mut ready, later): (Vec<&Lookup>, Vec<&Lookup>) =
            waiting.iter().copied().partition(ready_now);
        waiting = later;
        if ready.is_empty() {
            // None can be filled: the first one says which value it misses.
            ready.push(waiting.remove(0));
        }
        let found = futures_util::future::join_all(
            ready
                .iter()
                .map(|lookup| resolve_one(lookup, &values, aws, &stacks)),
        )
        .await;
        for (lookup, found) in ready.iter().zip(found) {
            let (value, what) = found?;
            values.insert(lookup.name.clone(), value.clone());
            resolved.push((
                lookup.name.clone(),
                VarSource {
                    value,
                    source: what,
                },
            ));
        }
    }
    Ok(resolved)
}

/// One lookup, its keys filled from `values`: its value and where it came from.
async fn resolve_one(
    lookup: &Lookup,
    values: &BTreeMap<String, String>,
    aws: &Aws,
    stacks: &StackCache,
) -> Result<(String, String), LookupError> {
    let mut keys = BTreeMap::new();
    for (key, template) in &lookup.keys {
        let filled = plan::interpolate(template, values).map_err(|problem| LookupError {
            name: lookup.name.clone(),
            what: lookup.describe(&lookup.keys),
            problem,
        })?;
        keys.insert(key.clone(), filled);
    }
    let what = lookup.describe(&keys);
    let fail = |problem: String| LookupError {
        name: lookup.name.clone(),
        what: what.clone(),
        problem,
    };
    let value = one(lookup, &keys, aws, stacks).await.map_err(fail)?;
    if value.is_empty() {
        return Err(fail("the value is empty".into()));
    }
    if value.contains(['*', '?', '[']) {
        return Err(fail(format!(
            "the value \"{value}\" has glob characters, which could match other labs' resources"
        )));
    }
    Ok((value, what))
}

/// The value of one lookup, its keys filled.
async fn one(
    lookup: &Lookup,
    keys: &BTreeMap<String, String>,
    aws: &Aws,
    stacks: &StackCache,
) -> Result<String, String> {
    let key = |k: &str| keys.get(k).cloned().unwrap_or_default();
    for (k, v) in keys {
        if v.contains(&crate::plan::lookup::placeholder("")) {
            return Err(format!("`{k}` uses a variable that has no value yet: {v}"));
        }
    }
    match lookup.from {
        "stack-output" | "stack-parameter" | "stack-tag" => {
            let (stack, wanted) = (key("stack"), key("key"));
            let facts = stacks.stack(aws, &stack).await?;
            let (map, what) = match lookup.from {
                "stack-output" => (&facts.outputs, "output"),
                "stack-parameter" => (&facts.parameters, "parameter"),
                _ => (&facts.tags, "tag"),
            };
            map.get(&wanted).cloned().ok_or_else(|| {
                format!(
                    "stack {stack} has no {what} `{wanted}` (it has: {})",
                    listed(map.keys())
                )
            })
        }
        "stack-resource" => {
            let (stack, logical_id) = (key("stack"), key("logical_id"));
            let resources = stacks.resources(aws, &stack).await?;
            let Some((resource_type, physical)) = resources.get(&logical_id) else {
                return Err(format!(
                    "stack {stack} has no resource `{logical_id}` (it has: {})",
                    listed(resources.keys())
                ));
            };
            if resource_type == "AWS::ECS::TaskDefinition" {
                family_of(physical)
                    .map(str::to_string)
                    .ok_or_else(|| format!("`{physical}` is not a task definition ARN"))
            } else {
                Ok(physical.clone())
            }
        }
        "secret-of-task-family" => secret_of_family(aws, &key("family")).await,
        "rotation-function-of-secret" => {
            let secret = key("secret");
            let described = aws
                .secretsmanager
                .describe_secret()
                .secret_id(&secret)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("Secrets Manager.DescribeSecret", e).to_string())?;
            let arn = described.rotation_lambda_arn().unwrap_or_default();
            if arn.is_empty() {
                return Err(format!(
                    "secret {secret} has no rotation function (rotation was never turned on)"
                ));
            }
            // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
            arn.split(':')
                .nth(6)
                .map(str::to_string)
                .ok_or_else(|| format!("`{arn}` is not a Lambda function ARN"))
        }
        "stack-owning-resource" => stack_owning(aws, &key("resource"), stacks).await,
        other => Err(format!("unknown lookup `{other}`")),
    }
}

/// `a, b, c`, or `nothing`.
fn listed<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION` -> `FAMILY`.
pub fn family_of(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":task-definition/")?;
    let (family, revision) = rest.rsplit_once(':')?;
    (!family.is_empty() && revision.parse::<u32>().is_ok()).then_some(family)
}

/// The secret's own ARN from a `valueFrom`, which may add `:json-key:version-stage:version-id`.
fn secret_arn(value_from: &str) -> Option<String> {
    let parts: Vec<&str> = value_from.split(':').collect();
    (parts.len() >= 7 && parts[2] == "secretsmanager" && parts[5] == "secret")
        .then(|| parts[..7].join(":"))
}

/// The one existing secret that the family's active revisions reference.
async fn secret_of_family(aws: &Aws, family: &str) -> Result<String, String> {
    use aws_sdk_ecs::types::TaskDefinitionStatus;
    let arns: Vec<String> = aws
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| AwsError::from_sdk("ECS.ListTaskDefinitions", e).to_string())?
        .into_iter()
        // familyPrefix is a prefix: `lab-TaskDefinition-X` would also list `...-X2`.
        .filter(|arn| family_of(arn) == Some(family))
        .collect();
    if arns.is_empty() {
        return Err(format!("task family {family} has no active revision"));
    }
    // The revisions are read side by side, under the per-service limit on calls in flight.
    let described = futures_util::future::join_all(arns.iter().map(|arn| async move {
        aws.ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS.DescribeTaskDefinition", e).to_string())
    }))
    .await;
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    for answer in described {
        let answer = answer?;
        for container in answer
            .task_definition()
            .map(|t| t.container_definitions())
            .unwrap_or_default()
        {
            for secret in container.secrets() {
                if let Some(arn) = secret_arn(secret.value_from()) {
                    referenced.insert(arn);
                }
            }
        }
    }
    // The template's first revision names a placeholder (`secret:SECRETNAME`) that does not exist:
    // only secrets that exist, and are not scheduled for deletion, count.
    let mut existing = Vec::new();
    let mut missing = Vec::new();
    // Side by side too: each secret is looked at on its own.
    let described = futures_util::future::join_all(referenced.iter().map(|arn| async move {
        let answer = aws
            .secretsmanager
            .describe_secret()
            .secret_id(arn)
            .send()
            .await;
        (arn, answer)
    }))
    .await;
    for (arn, answer) in described {
        match answer {
            Ok(secret) if secret.deleted_date().is_none() => {
                existing.push(secret.name().unwrap_or(arn).to_string())
            }
            Ok(_) => missing.push(format!("{arn} (scheduled for deletion)")),
            Err(e) => {
                let e = AwsError::from_sdk("Secrets Manager.DescribeSecret", e);
                if e.is_not_found() {
                    missing.push(format!("{arn} (does not exist)"));
                } else {
                    return Err(e.to_string());
                }
            }
        }
    }
    existing.sort();
    existing.dedup();
    match existing.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no active revision of task family {family} references an existing secret{}; name it with --var",
            if missing.is_empty() {
                String::new()
            } else {
                format!(" (referenced: {})", missing.join(", "))
            }
        )),
        many => Err(format!(
            "the revisions of task family {family} reference {} secrets: {}; name the lab's with --var",
            many.len(),
            many.join(", ")
        )),
    }
}

/// The name of the one stack that owns the resource with this physical id. AWS answers that in
/// one call (DescribeStackResources with PhysicalResourceId); where that form is refused (moto
/// does not implement it), every live stack's resources are read instead.
async fn stack_owning(aws: &Aws, physical: &str, stacks: &StackCache) -> Result<String, String> {
    match aws
        .cloudformation
        .describe_stack_resources()
        .physical_resource_id(physical)
        .send()
        .await
    {
        Ok(answer) => {
            let owners: BTreeSet<&str> = answer
                .stack_resources()
                .iter()
                .filter(|r| r.physical_resource_id() == Some(physical))
                .filter_map(|r| r.stack_name())
                .collect();
            if owners.len() == 1 {
                return Ok(owners.into_iter().next().unwrap_or_default().to_string());
            }
        }
        Err(e) => {
            let known_refusal = e
                .as_service_error()
                .is_some_and(|s| s.code() == Some("ValidationError"));
            if !known_refusal {
                return Err(
                    AwsError::from_sdk("CloudFormation.DescribeStackResources", e).to_string(),
                );
            }
        }
    }
    let live = live_stacks(aws).await?;
    // Every live stack's resources, side by side (under the per-service limit on calls).
    let read =
        futures_util::future::join_all(live.iter().map(|name| stacks.resources(aws, name))).await;
    let mut owners = Vec::new();
    for (name, resources) in live.into_iter().zip(read) {
        if resources?.values().any(|(_, p)| p == physical) {
            owners.push(name);
        }
    }
    match owners.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no stack owns `{physical}`")),
        many => Err(format!(
            "{} stacks own `{physical}`: {}",
            many.len(),
            many.join(", ")
        )),
    }
}

/// The names of the stacks that exist now (not deleted).
async fn live_stacks(aws: &Aws) -> Result<Vec<String>, String> {
    let stacks = aws
        .cloudformation
        .describe_stacks()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| AwsError::from_sdk("CloudFormation.DescribeStacks", e).to_string())?;
    Ok(stacks
        .iter()
        .filter(|s| {
            s.stack_status()
                .is_none_or(|st| st.as_str() != "DELETE_COMPLETE")
        })
        .filter_map(|s| s.stack_name().map(str::to_string))
        .collect())
}

/// A stack's outputs, parameters and tags, as DescribeStacks gives them: what `stack-output`,
/// `stack-parameter` and `stack-tag` read, and what a sweep's `{stack.output.KEY}`,
/// `{stack.parameter.KEY}` and `{stack.tag.KEY}` read (one reading for both).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackValues {
    /// Output key to value.
    pub outputs: BTreeMap<String, String>,
    /// Parameter key to value (the resolved value of an SSM parameter, where there is one).
    pub parameters: BTreeMap<String, String>,
    /// Tag key to value.
    pub tags: BTreeMap<String, String>,
}

impl StackValues {
    /// Reads them from a described stack.
    pub fn of(stack: &aws_sdk_cloudformation::types::Stack) -> StackValues {
        StackValues {
            outputs: stack
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
                .collect(),
            parameters: stack
                .parameters()
                .iter()
                .filter_map(|p| {
                    let value = p.resolved_value().or(p.parameter_value())?;
                    Some((p.parameter_key()?.to_string(), value.to_string()))
                })
                .collect(),
            tags: stack
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect(),
        }
    }
}

/// A stack's resources: logical id to (type, physical id).
type StackResources = std::sync::Arc<BTreeMap<String, (String, String)>>;

/// Each stack is described, and its resources listed, at most once per resolution, by lookups
/// that run side by side too: a second asker waits for the first one's answer.
#[derive(Default)]
struct StackCache {
    facts: Mutex<BTreeMap<String, Once<std::sync::Arc<StackValues>>>>,
    resources: Mutex<BTreeMap<String, Once<StackResources>>>,
}

/// One answer, once, for every lookup that asks.
type Once<T> = std::sync::Arc<tokio::sync::OnceCell<Result<T, String>>>;

fn once<T>(map: &Mutex<BTreeMap<String, Once<T>>>, name: &str) -> Once<T> {
    map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.to_string())
        .or_default()
        .clone()
}

impl StackCache {
    async fn stack(&self, aws: &Aws, name: &str) -> Result<std::sync::Arc<StackValues>, String> {
        once(&self.facts, name)
            .get_or_init(|| async {
                let answer = aws
                    .cloudformation
                    .describe_stacks()
                    .stack_name(name)
                    .send()
                    .await
                    .map_err(|e| missing_or(name, "CloudFormation.DescribeStacks", e))?;
                let Some(stack) = answer.stacks().first() else {
                    return Err(format!(
                        "stack {name} does not exist in account/region {}",
                        aws.region
                    ));
                };
                Ok(std::sync::Arc::new(StackValues::of(stack)))
            })
            .await
            .clone()
    }

    async fn resources(&self, aws: &Aws, name: &str) -> Result<StackResources, String> {
        once(&self.resources, name)
            .get_or_init(|| async {
                let listed = crate::actions::cloudformation::stack_resources(aws, name)
                    .await
                    .map_err(|e| missing_or(name, "CloudFormation.ListStackResources", e))?;
                Ok(std::sync::Arc::new(
                    listed
                        .iter()
                        .filter_map(|r| {
                            Some((
                                r.logical_resource_id()?.to_string(),
                                (
                                    r.resource_type().unwrap_or_default().to_string(),
                                    r.physical_resource_id().unwrap_or_default().to_string(),
                                ),
                            ))
                        })
                        .collect(),
                ))
            })
            .await
            .clone()
    }
}

/// "stack X does not exist" for a missing stack, else the classified error.
fn missing_or<E, R>(
    stack: &str,
    operation: &str,
    e: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if e.as_service_error().is_some_and(is_missing_stack) {
        format!("stack {stack} does not exist (check the name, the region and the account)")
    } else {
        AwsError::from_sdk(operation, e).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_secret_arns_read_from_what_ecs_records() {
        assert_eq!(
            family_of(
                "arn:aws:ecs:us-west-2:123456789012:task-definition/lab-TaskDefinition-AB12:3"
            ),
            Some("lab-TaskDefinition-AB12")
        );
        assert_eq!(family_of("arn:aws:ecs:us-west-2:1:cluster/x"), None);
        assert_eq!(
            secret_arn("arn:aws:secretsmanager:us-west-2:1:secret:db-AbCdEf:password::"),
            Some("arn:aws:secretsmanager:us-west-2:1:secret:db-AbCdEf".into())
        );
        assert_eq!(
            secret_arn("arn:aws:secretsmanager:us-west-2:1:secret:SECRETNAME"),
            Some("arn:aws:secretsmanager:us-west-2:1:secret:SECRETNAME".into())
        );
        assert_eq!(secret_arn("arn:aws:ssm:us-west-2:1:parameter/x"), None);
    }
}
