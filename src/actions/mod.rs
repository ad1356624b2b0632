//! The AWS actions: one folder per service, one file per resource kind, one shared shape.
//!
//! Every action does three things, in this order, and nothing else:
//! 1. [`Action::find`]: read-only calls that resolve the step's selector into
//!    [`Resource`](crate::resource::Resource)s;
//! 2. [`Action::act`]: one mutating call (or a few) per resource found, and only on those;
//! 3. [`Action::still_pending`]: read-only polling until the change has finished (tasks STOPPED,
//!    stack DELETE_COMPLETE...).
//!
//! - `action.rs`: the contract ([`Action`], [`Acted`], [`Pending`], [`PollPolicy`], [`ActionSpec`]);
//! - `step.rs`: [`ActionStep`], which turns an action into an engine
//!   [`Task`](crate::engine::Task): it runs the three parts, skips protected resources, stops after
//!   `find` in a dry run, polls with backoff against the step's deadline and reports progress;
//! - `selector.rs`, `expect.rs`: what a step's `match` and `expect` accept;
//! - `<service>/`: one file per action (`ecs/stop_tasks.rs` holds `ecs.stop-tasks`), and in the
//!   folder's `mod.rs` what the service's actions share.
//!
//! A new resource kind on an existing service is one new file, its `mod` and `pub use` lines in the
//! service's `mod.rs`, and one line in [`registry`].

mod action;
pub mod cloudformation;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod events;
mod expect;
pub mod logs;
pub mod secretsmanager;
mod selector;
pub mod sns;
mod step;

pub use self::action::{
    Acted, Action, ActionSpec, BuildAction, Pending, PollPolicy, DEFAULT_PROTECT_TAG,
};
pub use self::expect::{Expect, EXPECT_FORMS};
pub use self::selector::{
    check_fields, nearest, FieldKind, FieldSpec, InputError, Pattern, ResourceFilter, StepInput,
    COMMON_FILTER_FIELDS,
};
pub use self::step::{step_error, ActionStep};

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
        &logs::DELETE_LOG_GROUPS,
    ]
}

/// Looks up an action by its plan name.
pub fn lookup(name: &str) -> Option<&'static ActionSpec> {
    registry().into_iter().find(|spec| spec.name == name)
}

/// A step input from the TOML of its `match` table and of its options: for the actions' unit
/// tests, which build actions from their specs as a plan would.
#[cfg(test)]
pub(crate) fn test_input(selector: &str, options: &str) -> StepInput {
    StepInput {
        step: "t".into(),
        selector: toml::from_str(selector).expect("selector TOML"),
        options: toml::from_str(options).expect("options TOML"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The README's table of actions (under `## Actions`) has one row per registered action, no
    /// more, no fewer: a new action cannot be left out of it.
    #[test]
    fn the_readme_lists_every_action() {
        let readme = include_str!("../../README.md");
        let (_, section) = readme
            .split_once("\n## Actions\n")
            .expect("README has an Actions section");
        let listed: BTreeSet<&str> = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|row| row.strip_prefix("| `")?.split_once('`').map(|(n, _)| n))
            .collect();
        let registered: BTreeSet<&str> = super::registry().iter().map(|s| s.name).collect();
        assert_eq!(listed, registered);
    }
}
