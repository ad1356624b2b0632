//! The selected steps of a plan bound to the AWS clients: the graph of actions the engine runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::actions::ActionStep;
use crate::aws::Aws;
use crate::engine::StepNode;
use crate::graph::Dag;
use crate::plan::{Plan, PlannedStep};

/// The selected steps bound to the AWS clients: the graph the engine runs. Failure handlers
/// are looked up in the whole plan, so they run even if their own step is not selected.
/// With `allowed` (a saved preview's resource ids per step), each step changes only those.
pub fn runnable(
    plan: &Plan,
    selected: Dag<PlannedStep>,
    aws: Arc<Aws>,
    allowed: Option<&BTreeMap<String, BTreeSet<String>>>,
) -> Dag<StepNode> {
    let task = |step: &PlannedStep| -> Arc<dyn crate::engine::Task> {
        let action = ActionStep::new(
            step.built.clone(),
            aws.clone(),
            &plan.protect_tag,
            plan.keep.clone(),
        )
        .expecting(step.expect);
        Arc::new(match allowed {
            Some(allowed) => action.only_these(allowed.get(&step.id).cloned().unwrap_or_default()),
            None => action,
        })
    };
    selected.map(|step| plan.step_node(step, &task))
}
