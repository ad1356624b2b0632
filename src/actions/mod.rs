//! The AWS actions: one file per resource kind, one shared shape.
//!
//! Every action does three things, in this order, and nothing else:
//! 1. [`Action::find`]: read-only calls that resolve the step's selector into [`Resource`]s;
//! 2. [`Action::act`]: one mutating call (or a few) per resource found, and only on those;
//! 3. [`Action::still_pending`]: read-only polling until the change has finished (tasks STOPPED,
//!    stack DELETE_COMPLETE...).
//!
//! [`ActionStep`] turns an action into an engine [`Task`]: it runs the three parts, skips protected
//! resources, stops after `find` in a dry run, polls with backoff against the step's deadline and
//! reports progress. A new resource kind is one new file plus one line in [`registry`].

pub mod cloudformation;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod events;
pub mod secretsmanager;
mod selector;
pub mod sns;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use self::selector::{
    check_fields, nearest, some_of, FieldKind, FieldSpec, InputError, Pattern, ResourceFilter,
    StepInput, COMMON_FILTER_FIELDS,
};
use crate::aws::{Aws, AwsError, CallContext, ErrorClass, CALL_CONTEXT};
use crate::engine::{StepContext, StepError, StepOutput, Task};
use crate::resource::{OutcomeKind, Resource, ResourceOutcome};
use crate::util::{count_of, short_duration};

/// The tag key that protects a resource from every plan, unless the plan names another.
pub const DEFAULT_PROTECT_TAG: &str = "teardown:protect";

/// What [`Action::act`] did to one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acted {
    /// Done; the words say what, e.g. `deleted` or `deletion scheduled for 2026-11-29`.
    Done(String),
    /// It was gone already.
    AlreadyGone,
    /// It cannot be changed yet (e.g. a Lambda network interface AWS still holds). The step keeps
    /// polling [`Action::still_pending`] and calls `act` again once the resource is no longer
    /// pending. The words say what it waits for.
    NotYet(String),
}

/// One resource that [`Action::still_pending`] says is not finished yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The resource's id, as in [`Resource::id`].
    pub id: String,
    /// Its state in AWS's words, e.g. `in-use`, `DELETE_IN_PROGRESS`, `DEPROVISIONING`.
    pub status: String,
}

/// How often to look while waiting: start at `first`, double, never more than `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollPolicy {
    /// The first delay.
    pub first: Duration,
    /// The longest delay: how late a finished change may be noticed, at most.
    pub cap: Duration,
}

/// One kind of change to one kind of AWS resource.
#[async_trait]
pub trait Action: Send + Sync + 'static {
    /// The resource kind in words, singular: `ECS task`, `CloudFormation stack`.
    fn resource_kind(&self) -> &'static str;

    /// What `act` does, as a verb for the preview: `stop`, `delete`, `schedule deletion of`.
    fn verb(&self) -> &'static str {
        "delete"
    }

    /// Read-only: the resources the step's selector matches now. Never mutates.
    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError>;

    /// Mutating: changes one resource that `find` returned. What is already gone is
    /// [`Acted::AlreadyGone`], not an error.
    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError>;

    /// Read-only: which of `acted` have not finished changing yet. The default waits for nothing.
    async fn still_pending(
        &self,
        _aws: &Aws,
        _acted: &[Resource],
    ) -> Result<Vec<Pending>, AwsError> {
        Ok(Vec::new())
    }

    /// How to poll `still_pending`: seconds for ECS tasks, tens of seconds for stacks.
    fn poll_policy(&self) -> PollPolicy {
        PollPolicy {
            first: Duration::from_secs(2),
            cap: Duration::from_secs(15),
        }
    }

    /// What a dry run says it would do to one resource it found. Where the change cannot be read
    /// off the verb, an action says more (a rotation names the version that is current now, a rule
    /// the targets that would be removed with it).
    fn planned(&self, _resource: &Resource) -> String {
        format!("would {} it", self.verb())
    }

    /// What the reader must know after the step (e.g. how to restore a scheduled secret).
    fn notes(&self, _outcomes: &[ResourceOutcome]) -> Vec<String> {
        Vec::new()
    }
}

/// Builds an action from a validated step input.
pub type BuildAction = fn(&StepInput) -> Result<Arc<dyn Action>, Vec<InputError>>;

/// An action's name, what it accepts, and how to build it. The plan validator checks a step
/// against this before anything runs.
pub struct ActionSpec {
    /// The name used in plans, e.g. `ecs.stop-tasks`.
    pub name: &'static str,
    /// One line for `teardown actions` and the README.
    pub summary: &'static str,
    /// The keys its `match` accepts.
    pub selector: &'static [FieldSpec],
    /// The step keys it accepts besides the common ones (e.g. `force`).
    pub options: &'static [FieldSpec],
    /// The IAM actions it calls, for `teardown permissions`.
    pub permissions: &'static [&'static str],
    /// Makes the action.
    pub build: BuildAction,
}

/// Every action teardown knows. Add a line here for a new one.
pub fn registry() -> Vec<&'static ActionSpec> {
    vec![
        &ecs::STOP_TASKS,
        &ecs::DELETE_SERVICES,
        &ecs::DEREGISTER_TASK_DEFINITIONS,
        &ecs::DELETE_CLUSTER,
        &ecr::DELETE_REPOSITORY,
        &secretsmanager::DELETE_SECRET,
        &cloudformation::DELETE_STACK,
        &ec2::DELETE_NETWORK_INTERFACES,
        &secretsmanager::ROTATE_SECRET,
        &ecs::FORCE_NEW_DEPLOYMENT,
        &events::DELETE_RULE,
        &sns::DELETE_TOPIC,
    ]
}

/// Looks up an action by its plan name.
pub fn lookup(name: &str) -> Option<&'static ActionSpec> {
    registry().into_iter().find(|spec| spec.name == name)
}

/// An action bound to the clients: the engine [`Task`] that runs find, act and wait.
pub struct ActionStep {
    action: Arc<dyn Action>,
    aws: Arc<Aws>,
    protect_tag: String,
    keep: Vec<String>,
    only: Option<std::collections::BTreeSet<String>>,
}

impl ActionStep {
    /// Calls `act` with the step and the resource recorded for the audit log.
    async fn act_on(&self, ctx: &StepContext, resource: &Resource) -> Result<Acted, StepError> {
        let context = CallContext {
            step: Some(ctx.step().to_string()),
            resource: Some(resource.id.clone()),
        };
        CALL_CONTEXT
            .scope(context, self.action.act(&self.aws, resource))
            .await
            .map_err(|e| step_error(&e))
    }

    /// Binds an action to the clients. Resources tagged `protect_tag`, or whose name or id is in
    /// `keep`, are never acted on.
    pub fn new(
        action: Arc<dyn Action>,
        aws: Arc<Aws>,
        protect_tag: impl Into<String>,
        keep: Vec<String>,
    ) -> ActionStep {
        ActionStep {
            action,
            aws,
            protect_tag: protect_tag.into(),
            keep,
            only: None,
        }
    }

    /// Restricts the step to these resource ids (a saved preview's): anything else it finds
    /// appeared since the preview and is left alone, and reported.
    pub fn only_these(mut self, ids: std::collections::BTreeSet<String>) -> ActionStep {
        self.only = Some(ids);
        self
    }

    fn protection_reason(&self, resource: &Resource) -> Option<String> {
        if resource.tags.contains_key(&self.protect_tag) {
            Some(format!("protected: tagged {}", self.protect_tag))
        } else if self
            .keep
            .iter()
            .any(|k| k == &resource.name || k == &resource.id)
        {
            Some("protected: listed in the plan's keep list".to_string())
        } else {
            None
        }
    }

    /// Polls until every changed resource has finished changing, acting again on those that
    /// could not be changed before ([`Acted::NotYet`]) as soon as they are no longer pending.
    async fn wait_until_done(
        &self,
        ctx: &StepContext,
        mut acted: Vec<Resource>,
        mut not_yet: Vec<(Resource, String)>,
        outcomes: &mut Vec<ResourceOutcome>,
    ) -> Result<(), StepError> {
        let kind = self.action.resource_kind();
        let policy = self.action.poll_policy();
        let mut delays = backon::BackoffBuilder::build(
            backon::ExponentialBuilder::default()
                .with_min_delay(policy.first)
                .with_max_delay(policy.cap)
                .with_factor(2.0)
                .without_max_times(),
        );
        let total = (acted.len() + not_yet.len()) as u64;
        loop {
            let watched: Vec<Resource> = acted
                .iter()
                .chain(not_yet.iter().map(|(r, _)| r))
                .cloned()
                .collect();
            let pending = self
                .action
                .still_pending(&self.aws, &watched)
                .await
                .map_err(|e| step_error(&e))?;
            // Released since the last look: act on them now.
            let (released, held): (Vec<_>, Vec<_>) = std::mem::take(&mut not_yet)
                .into_iter()
                .partition(|(r, _)| !pending.iter().any(|p| p.id == r.id));
            not_yet = held;
            let mut acted_again = false;
            for (resource, _) in released {
                ctx.check_cancelled()?;
                let result = self.act_on(ctx, &resource).await?;
                acted_again |= matches!(result, Acted::Done(_));
                record(result, resource, &mut acted, &mut not_yet, outcomes);
            }
            if acted_again {
                continue;
            }
            if pending.is_empty() && not_yet.is_empty() {
                return Ok(());
            }
            let statuses = summarize_statuses(&pending);
            let left = ctx.time_left();
            ctx.progress(
                format!(
                    "{} still {statuses}, {} elapsed, gives up in {}",
                    count_of(pending.len(), kind),
                    short_duration(ctx.elapsed()),
                    short_duration(left)
                ),
                total.saturating_sub(pending.len() as u64),
                total,
            );
            let delay = delays.next().unwrap_or(policy.cap);
            // The last look happens right at the deadline rather than a whole delay before it.
            let delay = if delay > left && left > Duration::from_millis(1) {
                left - Duration::from_millis(1)
            } else {
                delay
            };
            ctx.sleep(delay).await.map_err(|e| match e.kind {
                crate::engine::FailureKind::TimedOut => StepError::timed_out(format!(
                    "gave up waiting after {}: {} still {statuses} ({})",
                    short_duration(ctx.elapsed()),
                    count_of(pending.len(), kind),
                    pending
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                _ => e,
            })?;
        }
    }
}

/// Files what `act` said about a resource.
fn record(
    result: Acted,
    resource: Resource,
    acted: &mut Vec<Resource>,
    not_yet: &mut Vec<(Resource, String)>,
    outcomes: &mut Vec<ResourceOutcome>,
) {
    match result {
        Acted::Done(detail) => {
            acted.push(resource.clone());
            outcomes.push(ResourceOutcome {
                resource,
                outcome: OutcomeKind::Done,
                detail,
            });
        }
        Acted::AlreadyGone => outcomes.push(ResourceOutcome {
            resource,
            outcome: OutcomeKind::AlreadyGone,
            detail: "already gone".into(),
        }),
        Acted::NotYet(why) => not_yet.push((resource, why)),
    }
}

/// `in-use` or `DELETE_IN_PROGRESS (1), in-use (2)`.
fn summarize_statuses(pending: &[Pending]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for p in pending {
        *counts.entry(p.status.as_str()).or_default() += 1;
    }
    if counts.len() == 1 {
        return counts
            .keys()
            .next()
            .map(|s| s.to_string())
            .unwrap_or_default();
    }
    counts
        .iter()
        .map(|(s, n)| format!("{s} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An AWS error as a step error: retryable errors are retried by the engine, the rest are not.
pub fn step_error(e: &AwsError) -> StepError {
    match e.class {
        ErrorClass::Retryable => StepError::retryable(e.to_string()),
        // Not found where something must exist (a find that names a missing parent) is bad input.
        ErrorClass::NotFound | ErrorClass::Fatal => StepError::fatal(e.to_string()),
    }
}

#[async_trait]
impl Task for ActionStep {
    async fn run(&self, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let context = CallContext {
            step: Some(ctx.step().to_string()),
            resource: None,
        };
        CALL_CONTEXT.scope(context, self.find_act_wait(ctx)).await
    }
}

impl ActionStep {
    /// The shared shape: find, skip the protected, act (or only report, in a dry run), wait.
    async fn find_act_wait(&self, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let kind = self.action.resource_kind();
        ctx.progress(format!("finding {}", crate::util::plural(kind)), 0, 0);
        let found = self
            .action
            .find(&self.aws)
            .await
            .map_err(|e| step_error(&e))?;
        let mut outcomes = Vec::with_capacity(found.len());
        let mut to_change = Vec::new();
        for resource in found {
            if self
                .only
                .as_ref()
                .is_some_and(|ids| !ids.contains(&resource.id))
            {
                outcomes.push(ResourceOutcome {
                    resource,
                    outcome: OutcomeKind::NotPreviewed,
                    detail: "not in the saved preview (appeared since): left alone".into(),
                });
                continue;
            }
            match self.protection_reason(&resource) {
                Some(reason) => outcomes.push(ResourceOutcome {
                    resource,
                    outcome: OutcomeKind::Protected,
                    detail: reason,
                }),
                None => to_change.push(resource),
            }
        }
        let total = to_change.len() as u64;
        let verb = self.action.verb();

        if self.aws.is_dry_run() {
            let summary = format!("would {verb} {}", count_of(to_change.len(), kind));
            outcomes.extend(to_change.into_iter().map(|resource| ResourceOutcome {
                detail: self.action.planned(&resource),
                resource,
                outcome: OutcomeKind::Planned,
            }));
            return Ok(StepOutput {
                summary,
                resources: outcomes,
                notes: Vec::new(),
            });
        }

        let mut acted = Vec::new();
        let mut not_yet = Vec::new();
        for (i, resource) in to_change.into_iter().enumerate() {
            ctx.check_cancelled()?;
            ctx.progress(format!("{verb} {}", resource.name), i as u64, total);
            let result = self.act_on(ctx, &resource).await?;
            record(result, resource, &mut acted, &mut not_yet, &mut outcomes);
        }
        if !acted.is_empty() || !not_yet.is_empty() {
            self.wait_until_done(ctx, acted, not_yet, &mut outcomes)
                .await?;
        }
        ctx.progress("done", total, total);
        let done = outcomes
            .iter()
            .filter(|o| o.outcome == OutcomeKind::Done)
            .count();
        let summary = if outcomes.is_empty() {
            format!("no {kind} matched: nothing to do")
        } else {
            format!("{verb}: {done} of {}", count_of(total as usize, kind))
        };
        let notes = self.action.notes(&outcomes);
        Ok(StepOutput {
            summary,
            resources: outcomes,
            notes,
        })
    }
}
