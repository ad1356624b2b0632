//! Before any change: every selected step looks (read-only) at what it would change, and what it
//! finds is judged against its `expect`.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::engine::{self, RunOptions, RunSummary};
use crate::event::EventSink;
use crate::plan::{self, Plan};
use crate::settings::RunSettings;

use super::Execution;

/// What each step's `expect` says of what it found, in words; empty when all is as expected.
/// With `whole`, a run whose steps all found nothing is a problem too: a plan aimed at the
/// wrong place matches nothing, and that is not success.
pub(crate) fn expectation_problems(
    steps: &crate::graph::Dag<plan::PlannedStep>,
    summary: &RunSummary,
    whole: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut matched_any = false;
    for result in &summary.steps {
        let Some(output) = &result.output else {
            continue;
        };
        let found: Vec<crate::resource::Resource> = output
            .resources
            .iter()
            .map(|o| o.resource.clone())
            .collect();
        matched_any |= !found.is_empty();
        let Some(step) = steps.get(&result.id) else {
            continue;
        };
        if let Err(message) = step.expect.check(step.built.resource_kind(), &found) {
            let message = message.replace("\nnothing was changed by this step", "");
            problems.push(format!("step `{}`: {message}", step.id));
        }
    }
    if whole && !matched_any && summary.all_succeeded() && !summary.steps.is_empty() {
        problems.push("no step matched anything: the plan is aimed at nothing here (check the variables above, the region and the account)".into());
    }
    problems
}

/// The pre-flight of a run: the selected steps run as a dry run, with the run's own limits and,
/// for an applied preview, its list of resources. `Err` when a step could not look.
pub(crate) async fn preflight(
    plan: &Plan,
    steps: &crate::graph::Dag<plan::PlannedStep>,
    read_only: Arc<Aws>,
    args: &RunSettings,
    execution: &Execution,
) -> Result<RunSummary, String> {
    // Every step looks at once: looking changes nothing, so no look waits for another step's
    // (the order of the plan is the order of its changes). The reads they share are asked once
    // (the pre-flight's clients reuse reads).
    let at_once: Vec<plan::PlannedStep> = steps
        .in_order()
        .cloned()
        .map(|mut step| {
            step.after.clear();
            step
        })
        .collect();
    let at_once = crate::graph::Dag::build(at_once)
        .map_err(|e| format!("the look before the run could not be arranged: {e}; this is a bug in teardown: nothing was changed"))?;
    // Nor does a look wait for a slot: `--parallelism` bounds the steps at work, and here every
    // step only reads, with its calls bounded per service (in flight and paced) by the clients.
    // A look left waiting for a slot would hold back the first change of the whole run.
    let every_step = at_once.len().max(args.parallelism as usize);
    let dag = super::runnable(plan, at_once, read_only, execution.allowed.as_ref());
    let (events, _ignored) = EventSink::channel();
    let options = RunOptions {
        parallelism: every_step,
        fail_fast: false,
        plan_name: plan.name.clone(),
        dry_run: true,
        continue_later: None,
    };
    let summary = engine::run(&dag, &options, &events, &CancellationToken::new()).await;
    let failed: Vec<String> = summary
        .steps
        .iter()
        .filter_map(|s| match &s.outcome {
            engine::StepOutcome::Failed { error, .. } => Some(format!("step `{}`: {error}", s.id)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Err(format!(
            "the look before the run failed, so nothing was changed:\n{}",
            failed.join("\n")
        ));
    }
    Ok(summary)
}
