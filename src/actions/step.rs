//! [`ActionStep`]: an [`Action`] bound to the clients, as the engine [`Task`] that runs it. It
//! finds, skips the protected (protect tag, keep list, not in a saved preview), checks the
//! expected count, stops after `find` in a dry run, acts, and polls with backoff against the
//! step's deadline, reporting progress.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::{Acted, Action, Expect, Pending};
use crate::aws::{Aws, AwsError, CallContext, ErrorClass, CALL_CONTEXT};
use crate::engine::{StepContext, StepError, StepOutput, Task};
use crate::resource::{OutcomeKind, Resource, ResourceOutcome};
use crate::util::{count_of, short_duration};

/// An action bound to the clients: the engine [`Task`] that runs find, act and wait.
pub struct ActionStep {
    action: Arc<dyn Action>,
    aws: Arc<Aws>,
    protect_tag: String,
    keep: Vec<String>,
    only: Option<std::collections::BTreeSet<String>>,
    expect: Expect,
    hand_over: Option<Arc<HandOver>>,
    /// What an earlier attempt of this step changed and had not seen finish when it failed (a
    /// poll that found no answer while a task was stopping). A later attempt waits for it too:
    /// its own `find` may no longer match it (ECS lists a stopping task under the desired status
    /// STOPPED, not RUNNING), and the step must not report done while it still changes.
    unfinished: Mutex<Vec<ResourceOutcome>>,
}

/// How many resources of one kind a step changes side by side. The clients bound the calls in
/// flight per service and pace them per throttling group; this bounds what one step asks for.
pub const ACT_AT_ONCE: usize = 8;

/// How long what the pre-flight found may stand in for a step's own first look: a step that
/// starts later looks again, since the account may have moved on (a confirmation left waiting, a
/// change that takes minutes).
pub const HAND_OVER_FRESH: Duration = Duration::from_secs(60);

/// What the pre-flight found for one step, handed to the run's step so that it does not read the
/// account again for it. It is used at most once (by the step's first attempt; never by a later
/// attempt, nor by the same step run as a failure handler), only while it is fresh
/// ([`HAND_OVER_FRESH`]), and never once the run itself has changed what it describes: a change to
/// one of the resources found (unless the action accounts for that change, see
/// [`Action::outdated_by`]), or any change made by one of the `upstream` steps (those it waits
/// for that change resources of its kind, which might make its selector match more).
///
/// Within the freshness window, what others create meanwhile is not seen by a step that uses it:
/// the run acts on what the pre-flight showed (and the confirmation asked about), as `apply` acts
/// on a saved preview.
#[derive(Debug)]
pub struct HandOver {
    found: Mutex<Option<Vec<Resource>>>,
    at: Instant,
    upstream: BTreeSet<String>,
}

impl HandOver {
    /// What the pre-flight found for a step (every resource, protected ones included), when it
    /// looked (`at`), and the steps that step waits for which act on resources of its kind.
    pub fn new(found: Vec<Resource>, at: Instant, upstream: BTreeSet<String>) -> HandOver {
        HandOver {
            found: Mutex::new(Some(found)),
            at,
            upstream,
        }
    }
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
            expect: Expect::ANY,
            hand_over: None,
            unfinished: Mutex::new(Vec::new()),
        }
    }

    /// Lets the step's first look be what the pre-flight found, under the conditions of
    /// [`HandOver`].
    pub fn handed_over(mut self, hand_over: Arc<HandOver>) -> ActionStep {
        self.hand_over = Some(hand_over);
        self
    }

    /// What the pre-flight found, if this look may use it (see [`HandOver`]). Taken whatever the
    /// answer: only the first look of the step may use it.
    fn take_hand_over(&self, ctx: &StepContext) -> Option<Vec<Resource>> {
        let hand_over = self.hand_over.as_ref()?;
        let found = hand_over
            .found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        if ctx.attempt() != 1 || self.aws.is_dry_run() || hand_over.at.elapsed() > HAND_OVER_FRESH {
            return None;
        }
        let ids: BTreeSet<&str> = found.iter().map(|r| r.id.as_str()).collect();
        let outdated = self.aws.calls.records().iter().any(|call| {
            let sent = call.mutating && call.outcome != "refused before sending";
            let upstream = call
                .step
                .as_deref()
                .is_some_and(|s| hand_over.upstream.contains(s));
            let on_found = call.resource.as_deref().is_some_and(|id| ids.contains(id))
                && self.action.outdated_by(&call.operation);
            sent && (upstream || on_found)
        });
        (!outdated).then_some(found)
    }

    /// Fails the step, before it changes anything, when its first look finds a number of
    /// resources outside `expect` (a later attempt may find fewer: its first one acted). A dry
    /// run reports what it found and leaves the judgement to the caller, which sees every step.
    pub fn expecting(mut self, expect: Expect) -> ActionStep {
        self.expect = expect;
        self
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
            // Everything acted on again finished within its own call: nothing left to watch.
            if acted.is_empty() && not_yet.is_empty() {
                return Ok(());
            }
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
                acted_again |= matches!(result, Acted::Done(_) | Acted::Finished(_));
                record(result, resource, &mut acted, &mut not_yet, outcomes);
            }
            if acted_again {
                continue;
            }
            if pending.is_empty() && not_yet.is_empty() {
                return Ok(());
            }
            // Waited for: what AWS says is still changing, and what it refused to change yet
            // although it looks finished (an interface AWS says is in use when asked to delete it).
            let mut waiting = pending.clone();
            waiting.extend(
                not_yet
                    .iter()
                    .filter(|(r, _)| !pending.iter().any(|p| p.id == r.id))
                    .map(|(r, why)| Pending {
                        id: r.id.clone(),
                        // The reason's head ("in use", "detaching"): the rest speaks of one
                        // resource, and the line counts them.
                        status: why
                            .split([':', ';'])
                            .next()
                            .unwrap_or(why)
                            .trim()
                            .to_string(),
                    }),
            );
            let what = format!(
                "{} still {}",
                count_of(waiting.len(), kind),
                summarize_statuses(&waiting)
            );
            ctx.waiting(
                what.clone(),
                total.saturating_sub(waiting.len() as u64),
                total,
            );
            let left = ctx.time_left();
            let delay = delays.next().unwrap_or(policy.cap);
            // The last look happens right at the deadline rather than a whole delay before it.
            let delay = if delay > left && left > Duration::from_millis(1) {
                left - Duration::from_millis(1)
            } else {
                delay
            };
            ctx.sleep(delay).await.map_err(|e| match e.kind {
                crate::engine::FailureKind::TimedOut => {
                    let held: Vec<Resource> = acted
                        .iter()
                        .chain(not_yet.iter().map(|(r, _)| r))
                        .filter(|r| waiting.iter().any(|w| w.id == r.id))
                        .cloned()
                        .collect();
                    StepError::timed_out(format!(
                        "gave up waiting after {}: {what} ({}). {}",
                        short_duration(ctx.elapsed()),
                        waiting
                            .iter()
                            .map(|p| p.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        self.action.timeout_advice(&held, ctx.continue_later())
                    ))
                }
                _ => e,
            })?;
        }
    }
}

impl ActionStep {
    /// A cancellation caused by the run's record (the audit log or journal could not be written:
    /// the run stops) is reported as that, not as an interruption.
    fn why_stopped(&self, error: StepError) -> StepError {
        if error.kind != crate::engine::FailureKind::Cancelled {
            return error;
        }
        match self.aws.calls.audit.as_ref().and_then(|a| a.why_stopped()) {
            Some(why) => StepError {
                kind: crate::engine::FailureKind::Cancelled,
                message: format!("stopped: {why}; no further change is sent"),
            },
            None => error,
        }
    }

    /// Keeps, for a later attempt, the outcomes of the resources changed and not yet seen
    /// finish (`acted`); an empty `acted` forgets them (the step saw everything finish).
    fn keep_unfinished(&self, acted: &[Resource], outcomes: &[ResourceOutcome]) {
        let unfinished = outcomes
            .iter()
            .filter(|o| acted.iter().any(|r| r.id == o.resource.id))
            .cloned()
            .collect();
        *self.unfinished.lock().unwrap_or_else(|e| e.into_inner()) = unfinished;
    }

    /// What an earlier attempt changed and did not see finish, but for what this attempt acts on
    /// itself (`to_change`) or has already reported (`outcomes`).
    fn take_unfinished(
        &self,
        outcomes: &[ResourceOutcome],
        to_change: &[Resource],
    ) -> Vec<ResourceOutcome> {
        let carried =
            std::mem::take(&mut *self.unfinished.lock().unwrap_or_else(|e| e.into_inner()));
        carried
            .into_iter()
            .filter(|o| {
                !to_change.iter().any(|r| r.id == o.resource.id)
                    && !outcomes.iter().any(|r| r.resource.id == o.resource.id)
            })
            .collect()
    }
}

/// `resources` split into runs of one kind, in their order.
fn by_kind(resources: Vec<Resource>) -> Vec<Vec<Resource>> {
    let mut groups: Vec<Vec<Resource>> = Vec::new();
    for resource in resources {
        match groups.last_mut() {
            Some(group) if group[0].kind == resource.kind => group.push(resource),
            _ => groups.push(vec![resource]),
        }
    }
    groups
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
        Acted::Finished(detail) => outcomes.push(ResourceOutcome {
            resource,
            outcome: OutcomeKind::Done,
            detail,
        }),
        Acted::AlreadyGone => outcomes.push(ResourceOutcome {
            resource,
            outcome: OutcomeKind::AlreadyGone,
            detail: "already gone".into(),
        }),
        Acted::NotYet(why) => not_yet.push((resource, why)),
    }
}

/// The kinds among `resources`, in the order they first appear, each with how many there are.
fn kinds_of(resources: &[Resource]) -> Vec<(String, usize)> {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for resource in resources {
        match kinds.iter_mut().find(|(k, _)| *k == resource.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((resource.kind.clone(), 1)),
        }
    }
    kinds
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
        let found = match self.take_hand_over(ctx) {
            Some(found) => found,
            None => {
                ctx.progress(format!("finding {}", crate::util::plural(kind)), 0, 0);
                self.action
                    .find(&self.aws)
                    .await
                    .map_err(|e| step_error(&e))?
            }
        };
        if ctx.attempt() == 1 && !self.aws.is_dry_run() {
            self.expect.check(kind, &found).map_err(StepError::fatal)?;
        }
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

        // One step may change more than one kind (`ecs.stop-tasks`: services, then tasks): each
        // is counted as what it is, never as the action's main kind.
        let changed = kinds_of(&to_change);
        if self.aws.is_dry_run() {
            let summary = match changed.as_slice() {
                [] => format!("would {verb} {}", count_of(0, kind)),
                [(kind, n)] => format!(
                    "would {} {}",
                    self.action.verb_for(kind),
                    count_of(*n, kind)
                ),
                _ => changed
                    .iter()
                    .map(|(kind, n)| {
                        format!(
                            "would {}: {}",
                            self.action.verb_for(kind),
                            count_of(*n, kind)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            };
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
        // What an earlier attempt changed and did not see finish, and this look no longer finds:
        // waited for again, reported as that attempt reported it.
        let carried = self.take_unfinished(&outcomes, &to_change);
        for outcome in carried {
            acted.push(outcome.resource.clone());
            outcomes.push(outcome);
        }
        // Resources of one kind are changed side by side (at most ACT_AT_ONCE at a time), the
        // kinds one after the other in the order `find` gave them: a service is scaled to 0
        // before its tasks are stopped, or it replaces them. The audit log's line of each call is
        // written before that call is sent, so that calls side by side are each recorded first.
        let mut done = 0;
        for group in by_kind(to_change) {
            let first = &group[0];
            let verb = self.action.verb_for(&first.kind);
            let what = match group.len() {
                1 => first.name.clone(),
                n => count_of(n, &first.kind),
            };
            ctx.progress(format!("{verb} {what}"), done, total);
            let results: Vec<(Resource, Result<Acted, StepError>)> =
                futures_util::stream::iter(group.into_iter().map(|resource| async move {
                    if let Err(e) = ctx.check_cancelled() {
                        return (resource, Err(e));
                    }
                    let result = self.act_on(ctx, &resource).await;
                    (resource, result)
                }))
                .buffered(ACT_AT_ONCE)
                .collect()
                .await;
            let mut failed = None;
            for (resource, result) in results {
                done += 1;
                match result {
                    Ok(result) => {
                        ctx.progress(
                            format!("{} {}", self.action.verb_for(&resource.kind), resource.name),
                            done,
                            total,
                        );
                        record(result, resource, &mut acted, &mut not_yet, &mut outcomes);
                    }
                    // The error that says why: a call refused or failed, rather than the
                    // cancellation that refusal caused in the calls beside it.
                    Err(e) => {
                        let cancelled =
                            |e: &StepError| e.kind == crate::engine::FailureKind::Cancelled;
                        if failed
                            .as_ref()
                            .is_none_or(|f| cancelled(f) && !cancelled(&e))
                        {
                            failed = Some(e);
                        }
                    }
                }
            }
            if let Some(e) = failed {
                self.keep_unfinished(&acted, &outcomes);
                return Err(self.why_stopped(e));
            }
        }
        if !acted.is_empty() || !not_yet.is_empty() {
            self.keep_unfinished(&acted, &outcomes);
            self.wait_until_done(ctx, acted, not_yet, &mut outcomes)
                .await?;
            self.keep_unfinished(&[], &outcomes);
        }
        ctx.progress("done", total, total);
        let summary = if outcomes.is_empty() {
            format!("no {kind} matched: nothing to do")
        } else if changed.len() <= 1 {
            let done = outcomes
                .iter()
                .filter(|o| o.outcome == OutcomeKind::Done)
                .count();
            let kind = changed.first().map_or(kind, |(k, _)| k.as_str());
            format!(
                "{}: {done} of {}",
                self.action.verb_for(kind),
                count_of(total as usize, kind)
            )
        } else {
            changed
                .iter()
                .map(|(kind, n)| {
                    let done = outcomes
                        .iter()
                        .filter(|o| o.outcome == OutcomeKind::Done && &o.resource.kind == kind)
                        .count();
                    format!(
                        "{}: {done} of {}",
                        self.action.verb_for(kind),
                        count_of(*n, kind)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let notes = self.action.notes(&outcomes);
        Ok(StepOutput {
            summary,
            resources: outcomes,
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_grouped_in_runs_of_one_kind_in_their_order() {
        let r = |kind: &str, id: &str| Resource::new(kind, id, id, "test");
        let groups = by_kind(vec![
            r("ECS service", "s1"),
            r("ECS service", "s2"),
            r("ECS task", "t1"),
            r("ECS task", "t2"),
            r("ECS service", "s3"),
        ]);
        let ids: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|r| r.id.as_str()).collect())
            .collect();
        assert_eq!(ids, [vec!["s1", "s2"], vec!["t1", "t2"], vec!["s3"]]);
        assert!(by_kind(Vec::new()).is_empty());
    }
}
