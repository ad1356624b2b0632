//! The action contract: what one kind of change to one kind of AWS resource must do
//! ([`Action`]), what it reports ([`Acted`], [`Pending`], [`PollPolicy`]), and the data that names
//! it in plans and builds it from a step ([`ActionSpec`], [`BuildAction`]).
//!
//! Nothing here calls AWS or knows the engine: [`super::ActionStep`] runs an action as a step, and
//! [`super::registry`] lists the specs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{FieldSpec, InputError, StepInput};
use crate::aws::{Aws, AwsError};
use crate::resource::{Resource, ResourceOutcome};

/// The tag key that protects a resource from every plan, unless the plan names another.
pub const DEFAULT_PROTECT_TAG: &str = "teardown:protect";

/// What [`Action::act`] did to one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acted {
    /// Done; the words say what, e.g. `deleted` or `deletion scheduled for 2026-11-29`. The step
    /// then waits until [`Action::still_pending`] no longer lists it.
    Done(String),
    /// Done, and AWS's answer to the change already says it has finished (a cluster INACTIVE, an
    /// interface deleted): nothing to wait for, so no poll is made to confirm it.
    Finished(String),
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

    /// The verb for one kind of resource the action changes, where an action changes more than
    /// one kind (`ecs.stop-tasks` scales services to 0 and stops tasks); the step's summary counts
    /// each kind apart.
    fn verb_for(&self, _kind: &str) -> &'static str {
        self.verb()
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

    /// What to tell the reader when the step's deadline passed while `waiting` (resources this
    /// action changed) had not finished: what holds them, and what to do. `continue_later` is how
    /// this run is continued, e.g. ``"`teardown resume RUN_ID`"``. Each action that waits says
    /// what it knows about its own resources.
    fn timeout_advice(&self, _waiting: &[Resource], continue_later: &str) -> String {
        format!("{continue_later} once AWS has finished, or raise the step's `timeout`")
    }

    /// What a dry run says it would do to one resource it found. Where the change cannot be read
    /// off the verb, an action says more (a rotation names the version that is current now, a rule
    /// the targets that would be removed with it).
    fn planned(&self, _resource: &Resource) -> String {
        format!("would {} it", self.verb())
    }

    /// Whether the run's own call `operation` (e.g. `UpdateService`) on a resource that an earlier
    /// look of this step found (the pre-flight's) makes that look out of date, so that the step
    /// must look again. By default every change does; an action that accounts for a change in
    /// `act` (through what the run remembers it set) may say it does not.
    fn outdated_by(&self, _operation: &str) -> bool {
        true
    }

    /// What the reader must know after the step (e.g. how to restore a scheduled secret).
    fn notes(&self, _outcomes: &[ResourceOutcome]) -> Vec<String> {
        Vec::new()
    }
}

/// A rule between an action's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `match` must give at least one of these keys: without them the step would reach too far
    /// (every stack of the region, every interface of the account).
    MatchNeedsOneOf(&'static [&'static str]),
    /// `match` may not give both keys.
    MatchNotBoth(&'static str, &'static str),
    /// The step may not give both options; a flag counts only when it is `true`.
    OptionsNotBoth(&'static str, &'static str),
}

impl Rule {
    /// The rule in words, for `teardown actions`.
    pub fn describe(&self) -> String {
        let quoted = |keys: &[&str]| {
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Rule::MatchNeedsOneOf(keys) => {
                format!("`match` needs at least one of {}", quoted(keys))
            }
            Rule::MatchNotBoth(a, b) => format!("`match` takes `{a}` or `{b}`, not both"),
            Rule::OptionsNotBoth(a, b) => format!("`{a}` and `{b}` cannot be combined"),
        }
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
    /// The rules between its keys that no single [`FieldSpec`] can say ("`match` needs `name` or
    /// `tags`"). `build` enforces them, with its own words; this is the same rule as data, for
    /// the plan schema and `teardown actions`, and a unit test checks that the two agree.
    pub rules: &'static [Rule],
    /// The IAM actions it calls, for `teardown permissions`.
    pub permissions: &'static [&'static str],
    /// Makes the action.
    pub build: BuildAction,
}
