//! The selected steps of a plan bound to the AWS clients: the graph of actions the engine runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::actions::{ActionStep, HandOver};
use crate::aws::Aws;
use crate::engine::{RunSummary, StepNode};
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
    with_hand_over(plan, selected, aws, allowed, None, "")
}

/// [`runnable`], with what the pre-flight found (`preflight`: its summary, and when it looked)
/// handed to each step for its first look, under the conditions of [`HandOver`]: the run then
/// reads again only what it changed itself, or what has aged. `id_prefix` is what the engine's
/// step ids add to the plan's (a sweep's `LAB/`), so that the changes of the steps a step waits
/// for are known by the ids the calls are recorded with.
pub(crate) fn with_hand_over(
    plan: &Plan,
    selected: Dag<PlannedStep>,
    aws: Arc<Aws>,
    allowed: Option<&BTreeMap<String, BTreeSet<String>>>,
    preflight: Option<(&RunSummary, tokio::time::Instant)>,
    id_prefix: &str,
) -> Dag<StepNode> {
    // One hand-over per step id, shared by the step and by the same step run as a failure
    // handler, so that only the first of them may use it.
    let mut hand_overs: BTreeMap<String, Arc<HandOver>> = BTreeMap::new();
    if let Some((summary, at)) = preflight {
        for step in selected.in_order() {
            let Some(output) = summary.step(&step.id).and_then(|s| s.output.as_ref()) else {
                continue;
            };
            let found = output
                .resources
                .iter()
                .map(|o| o.resource.clone())
                .collect();
            // A change the steps before it made to other resources of its kind (a stack deleted,
            // a service scaled) may make the step's selector match what it did not match before
            // (a stack now DELETE_FAILED): its look is then taken again. Not for a step that
            // matches one exact name: changes to other resources cannot make it match more.
            let kind = step.built.resource_kind();
            let by_exact_name = step
                .input
                .pattern("name")
                .is_some_and(|p| p.exact().is_some());
            let upstream = selected
                .in_order()
                .filter(|other| {
                    !by_exact_name
                        && other.built.resource_kind() == kind
                        && selected.depends_on(&step.id, &other.id)
                })
                .map(|other| format!("{id_prefix}{}", other.id))
                .collect();
            hand_overs.insert(
                step.id.clone(),
                Arc::new(HandOver::new(found, at, upstream)),
            );
        }
    }
    let task = |step: &PlannedStep| -> Arc<dyn crate::engine::Task> {
        let mut action = ActionStep::new(
            step.built.clone(),
            aws.clone(),
            &plan.protect_tag,
            plan.keep.clone(),
        )
        .expecting(step.expect);
        if let Some(hand_over) = hand_overs.get(&step.id) {
            action = action.handed_over(hand_over.clone());
        }
        Arc::new(match allowed {
            Some(allowed) => action.only_these(allowed.get(&step.id).cloned().unwrap_or_default()),
            None => action,
        })
    };
    selected.map(|step| plan.step_node(step, &task))
}
