//! The generic executor: it runs a validated [`Dag`] of [`StepNode`]s and knows nothing about AWS.
//!
//! Every step whose dependencies succeeded runs, concurrently up to the parallelism limit, under
//! its timeout and retry policy. The limit counts steps at work: a step that only waits (between
//! polls, before another attempt) gives its slot back meanwhile ([`StepContext::without_slot`]), so a
//! run of many long waits is not held back by its parallelism. A failed step skips its dependents (each skip is an event with the
//! reason); independent branches go on unless fail-fast is set. Cancellation stops scheduling and
//! reaches running steps through their [`StepContext`]. The engine emits events and returns a
//! [`RunSummary`]; it never prints.

mod task;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use petgraph::graph::NodeIndex;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::task::{with_slot, Slot};
pub use self::task::{without_slot, FailureKind, StepContext, StepError, StepOutput, Task};
use crate::event::{EventKind, EventSink};
use crate::graph::{Dag, DagNode};

/// How long past its deadline a step may take to report why it gave up.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// `from + duration`, or the far future (30 years on, as tokio's own "never") when that would
/// overflow: a deadline is never a reason to panic, whatever duration reached the engine.
pub(crate) fn instant_after(from: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    from.checked_add(duration)
        .or_else(|| from.checked_add(FAR))
        .unwrap_or(from)
}

/// How a step retries a retryable failure: exponential backoff with jitter (backon).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. 1 means no retry.
    pub attempts: u32,
    /// Delay before the second attempt.
    pub delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// `exponential` doubles the delay each time; `constant` keeps it.
    pub exponential: bool,
    /// Spread delays randomly so that parallel steps do not retry in lockstep.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
            exponential: true,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// No retry at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    fn delays(&self) -> Box<dyn Iterator<Item = Duration> + Send> {
        use backon::BackoffBuilder;
        let retries = self.attempts.saturating_sub(1) as usize;
        if self.exponential {
            let mut b = backon::ExponentialBuilder::default()
                .with_min_delay(self.delay)
                .with_max_delay(self.max_delay)
                .with_factor(2.0)
                .with_max_times(retries);
            if self.jitter {
                b = b.with_jitter();
            }
            Box::new(b.build())
        } else {
            let mut b = backon::ConstantBuilder::default()
                .with_delay(self.delay)
                .with_max_times(retries);
            if self.jitter {
                b = b.with_jitter();
            }
            Box::new(b.build())
        }
    }
}

/// What to do when a step fails: run another step (its handler), then try the step again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureHandler {
    /// The id of the step to run.
    pub run: String,
    /// How many times at most the handler runs for one step.
    pub times: u32,
}

/// A failure handler ready to run: the handler step's own work and deadline. It is carried by
/// the step itself, so that it can run even when the handler step is not part of this run (a
/// resumed run whose handler step had already succeeded).
#[derive(Clone)]
pub struct Handler {
    /// The handler step's id.
    pub id: String,
    /// How many times at most it runs for one step.
    pub times: u32,
    /// Its deadline for one run.
    pub timeout: Duration,
    /// Its work.
    pub task: Arc<dyn Task>,
}

/// One step as the engine sees it.
#[derive(Clone)]
pub struct StepNode {
    /// Unique id.
    pub id: String,
    /// What it does, e.g. `ecs.stop-tasks`.
    pub action: String,
    /// The ids it waits for.
    pub after: Vec<String>,
    /// Deadline for the whole step, retries and waits included.
    pub timeout: Duration,
    /// Retries of retryable failures.
    pub retry: RetryPolicy,
    /// A step to run when this one fails, before trying again.
    pub on_failure: Option<Handler>,
    /// The work.
    pub task: Arc<dyn Task>,
}

impl DagNode for StepNode {
    fn id(&self) -> &str {
        &self.id
    }
    fn after(&self) -> &[String] {
        &self.after
    }
    fn label(&self) -> &str {
        &self.action
    }
}

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Steps at work at once, at most. A step that only waits (see [`StepContext::without_slot`]) does
    /// not count while it waits.
    pub parallelism: usize,
    /// Stop scheduling new steps at the first failure.
    pub fail_fast: bool,
    /// Name shown in the run's first event.
    pub plan_name: String,
    /// Shown in the first event; the engine itself treats both modes alike.
    pub dry_run: bool,
    /// How a person continues this run after it stopped, in words for messages (e.g.
    /// ``"`teardown resume RUN_ID`"``); steps that give up name it. Without it, "run the same
    /// command again".
    pub continue_later: Option<String>,
}

/// Steps at work at once, at most, unless the user says otherwise (`--parallelism`).
pub const DEFAULT_PARALLELISM: u16 = 8;

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            parallelism: DEFAULT_PARALLELISM.into(),
            fail_fast: false,
            plan_name: String::new(),
            dry_run: false,
            continue_later: None,
        }
    }
}

/// Why a run stopped scheduling. When several apply, the caller's reason wins over fail-fast.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CancelReason {
    /// `--fail-fast` and a step failed.
    FailFast {
        /// The step that failed.
        step: String,
    },
    /// Ctrl-C, SIGTERM, or the caller's token, with no reason given.
    Interrupted,
    /// The caller's token, for the reason the caller gave (see [`run_explained`]).
    Stopped {
        /// Why, in the caller's words.
        why: String,
    },
}

impl CancelReason {
    /// Whether the caller's token stopped the run (rather than a step's failure).
    pub fn by_caller(&self) -> bool {
        matches!(
            self,
            CancelReason::Interrupted | CancelReason::Stopped { .. }
        )
    }
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CancelReason::FailFast { step } => write!(f, "fail-fast: step {step} failed"),
            CancelReason::Interrupted => write!(f, "interrupted"),
            CancelReason::Stopped { why } => write!(f, "{why}"),
        }
    }
}

/// How one step ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum StepOutcome {
    /// It did its work.
    Succeeded,
    /// It failed for good.
    Failed {
        /// Why.
        error: String,
        /// How.
        #[serde(skip)]
        kind: FailureKind,
    },
    /// It never ran.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One step of a finished run.
#[derive(Clone, Debug)]
pub struct StepResult {
    /// Step id.
    pub id: String,
    /// Its action.
    pub action: String,
    /// How it ended.
    pub outcome: StepOutcome,
    /// How long it ran (zero if it never ran).
    pub duration: Duration,
    /// What it reported, when it succeeded.
    pub output: Option<StepOutput>,
    /// Attempts made.
    pub attempts: u32,
    /// Its deadline: how long it may take at most.
    pub timeout: Duration,
}

/// The result of a run, every step in the DAG's order.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Every step.
    pub steps: Vec<StepResult>,
    /// Why the run stopped early, if it did.
    pub cancelled: Option<CancelReason>,
    /// Wall time.
    pub duration: Duration,
}

impl RunSummary {
    /// True when every step succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.steps
            .iter()
            .all(|s| s.outcome == StepOutcome::Succeeded)
    }

    /// Counts of (succeeded, failed, skipped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for step in &self.steps {
            match step.outcome {
                StepOutcome::Succeeded => counts.0 += 1,
                StepOutcome::Failed { .. } => counts.1 += 1,
                StepOutcome::Skipped { .. } => counts.2 += 1,
            }
        }
        counts
    }

    /// The result of the step with this id.
    pub fn step(&self, id: &str) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.id == id)
    }
}

enum State {
    Waiting { unmet: usize },
    Ready,
    Running,
    Done(StepResult),
}

struct Finished {
    index: NodeIndex,
    result: StepResult,
    /// The step's slot, given back only once the scheduler has taken the step's end into
    /// account: a slot freed earlier could start a ready step that a failure (fail-fast) should
    /// have kept from starting.
    slot: Arc<Slot>,
}

/// Runs the DAG to the end, or until cancelled. Events go to `events`; the summary comes back.
pub async fn run(
    dag: &Dag<StepNode>,
    options: &RunOptions,
    events: &EventSink,
    cancel: &CancellationToken,
) -> RunSummary {
    run_explained(dag, options, events, cancel, &|| None).await
}

/// [`run`], where `why_cancelled` says why the caller cancelled `cancel`, when it was not an
/// interruption (e.g. "the run's record cannot be written"): the run's cancellation event and
/// its summary then give that reason ([`CancelReason::Stopped`]) rather than "interrupted".
pub async fn run_explained(
    dag: &Dag<StepNode>,
    options: &RunOptions,
    events: &EventSink,
    cancel: &CancellationToken,
    why_cancelled: &(dyn Fn() -> Option<String> + Sync),
) -> RunSummary {
    let started = Instant::now();
    events.emit(EventKind::RunStarted {
        plan: options.plan_name.clone(),
        steps: dag.len(),
        dry_run: options.dry_run,
        context: events.context().clone(),
    });
    // Running steps get a child token: cancelling the run reaches them, while a step's own end
    // cancels nothing else.
    let step_cancel = cancel.child_token();
    let continue_later: Arc<str> = options
        .continue_later
        .as_deref()
        .unwrap_or(task::RUN_AGAIN)
        .into();
    let mut states: Vec<State> = dag
        .order()
        .iter()
        .map(|_| State::Waiting { unmet: 0 })
        .collect();
    let mut ready = VecDeque::new();
    for &index in dag.order() {
        let unmet = dag.dependency_count(index);
        states[index.index()] = if unmet == 0 {
            ready.push_back(index);
            State::Ready
        } else {
            State::Waiting { unmet }
        };
    }
    // The parallelism slots: a step takes one to start, gives it back while it only waits, and
    // takes one again to go on. The semaphore is fair (first come, first served), so a step that
    // has finished waiting is not overtaken by every ready step behind it.
    let slots = Arc::new(Semaphore::new(options.parallelism.max(1)));
    let mut free: Option<OwnedSemaphorePermit> = None;
    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut stop: Option<CancelReason> = None;

    let interrupted = |stop: &mut Option<CancelReason>| {
        if cancel.is_cancelled() && !stop.as_ref().is_some_and(CancelReason::by_caller) {
            let reason = why_cancelled().map_or(CancelReason::Interrupted, |why| {
                CancelReason::Stopped { why }
            });
            events.emit(EventKind::RunCancelled {
                reason: reason.to_string(),
            });
            *stop = Some(reason);
            step_cancel.cancel();
        }
    };
    loop {
        interrupted(&mut stop);
        while stop.is_none() && !ready.is_empty() {
            let Some(permit) = free
                .take()
                .or_else(|| Arc::clone(&slots).try_acquire_owned().ok())
            else {
                break;
            };
            let Some(index) = ready.pop_front() else {
                break;
            };
            states[index.index()] = State::Running;
            let step = dag.node(index).clone();
            let events = events.clone();
            let cancel = step_cancel.clone();
            let continue_later = continue_later.clone();
            let slot = Arc::new(Slot::held(Arc::clone(&slots), permit));
            running.spawn(async move {
                let result =
                    run_step(step, events, cancel, continue_later, Arc::clone(&slot)).await;
                Finished {
                    index,
                    result,
                    slot,
                }
            });
        }
        if stop.is_some() || ready.is_empty() {
            // A slot taken for a step that will not start now goes back at once: a running step
            // may be waiting for it.
            free = None;
        }
        if running.is_empty() {
            break;
        }
        let wants_slot = stop.is_none() && !ready.is_empty() && free.is_none();
        let finished = tokio::select! {
            // A finished step first: its end may stop the run before anything else starts.
            biased;
            joined = running.join_next() => joined,
            permit = Arc::clone(&slots).acquire_owned(), if wants_slot => {
                free = permit.ok();
                continue;
            }
            _ = cancel.cancelled(), if !stop.as_ref().is_some_and(CancelReason::by_caller) => continue,
        };
        let Some(joined) = finished else { break };
        let Finished {
            index,
            result,
            slot,
        } = match joined {
            Ok(finished) => finished,
            // A step that panicked: the panic is a bug; surface it rather than hide it.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let failed = matches!(result.outcome, StepOutcome::Failed { .. });
        if failed {
            skip_dependents(dag, index, &result.id, &mut states, events);
            if options.fail_fast && stop.is_none() {
                let reason = CancelReason::FailFast {
                    step: result.id.clone(),
                };
                events.emit(EventKind::RunCancelled {
                    reason: reason.to_string(),
                });
                stop = Some(reason);
            }
        } else {
            for dependent in dag.dependents(index) {
                if let State::Waiting { unmet } = &mut states[dependent.index()] {
                    *unmet -= 1;
                    if *unmet == 0 {
                        states[dependent.index()] = State::Ready;
                        ready.push_back(dependent);
                    }
                }
            }
        }
        states[index.index()] = State::Done(result);
        drop(slot);
    }

    interrupted(&mut stop);
    // Whatever did not run: say why, one event each.
    let mut steps = Vec::with_capacity(dag.len());
    for &index in dag.order() {
        let state = std::mem::replace(&mut states[index.index()], State::Ready);
        let result = match state {
            State::Done(result) => result,
            _ => {
                let node = dag.node(index);
                let reason = match &stop {
                    Some(reason) => format!("not started: {reason}"),
                    None => "not started".to_string(),
                };
                events.emit(EventKind::StepSkipped {
                    step: node.id.clone(),
                    reason: reason.clone(),
                });
                skipped(node, reason)
            }
        };
        steps.push(result);
    }
    let summary = RunSummary {
        steps,
        cancelled: stop,
        duration: started.elapsed(),
    };
    let (succeeded, failed, skipped) = summary.counts();
    events.emit(EventKind::RunFinished {
        succeeded,
        failed,
        skipped,
        duration: summary.duration,
    });
    summary
}

fn skipped(node: &StepNode, reason: String) -> StepResult {
    StepResult {
        id: node.id.clone(),
        action: node.action.clone(),
        outcome: StepOutcome::Skipped { reason },
        duration: Duration::ZERO,
        output: None,
        attempts: 0,
        timeout: node.timeout,
    }
}

/// Marks every step that waits (directly or not) for `failed` as skipped, with the reason.
fn skip_dependents(
    dag: &Dag<StepNode>,
    failed: NodeIndex,
    failed_id: &str,
    states: &mut [State],
    events: &EventSink,
) {
    let mut stack: Vec<NodeIndex> = dag.dependents(failed).collect();
    while let Some(index) = stack.pop() {
        if !matches!(states[index.index()], State::Waiting { .. }) {
            continue;
        }
        let node = dag.node(index);
        let reason = format!("blocked by {failed_id}");
        events.emit(EventKind::StepSkipped {
            step: node.id.clone(),
            reason: reason.clone(),
        });
        states[index.index()] = State::Done(skipped(node, reason));
        stack.extend(dag.dependents(index));
    }
}

/// One step: attempts under the deadline, backoff between retryable failures, the failure
/// handler between failures.
async fn run_step(
    step: StepNode,
    events: EventSink,
    cancel: CancellationToken,
    continue_later: Arc<str>,
    slot: Arc<Slot>,
) -> StepResult {
    let started = Instant::now();
    let deadline = instant_after(started, step.timeout);
    events.emit(EventKind::StepStarted {
        step: step.id.clone(),
        action: step.action.clone(),
    });
    let mut delays = step.retry.delays();
    let mut handler_runs = 0;
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        // Every attempt works in a slot, whatever became of an earlier attempt's waits (a wait cut
        // off by the deadline, say, ends without taking one again).
        if !slot.acquire(&cancel).await {
            break Err(StepError::cancelled());
        }
        let ctx = StepContext {
            step: step.id.as_str().into(),
            attempt,
            started,
            deadline,
            cancel: cancel.clone(),
            events: events.clone(),
            continue_later: continue_later.clone(),
            slot: Arc::clone(&slot),
        };
        // A little grace after the deadline, so that a task's own deadline-aware wait can fail
        // first with what it was waiting for; a task that ignores its deadline is cut off here.
        let work = with_slot(Arc::clone(&slot), cancel.clone(), step.task.run(&ctx));
        let result = match tokio::time::timeout_at(instant_after(deadline, DEADLINE_GRACE), work).await {
            Ok(result) => result,
            Err(_) => Err(StepError::timed_out(format!(
                "timed out after {} (the step's timeout); raise `timeout` on the step if this is expected",
                crate::util::short_duration(step.timeout)
            ))),
        };
        let error = match result {
            Ok(output) => break Ok(output),
            Err(error) => error,
        };
        if matches!(error.kind, FailureKind::Cancelled | FailureKind::TimedOut) {
            break Err(error);
        }
        if let Some(handler) = &step.on_failure {
            if handler_runs < handler.times {
                handler_runs += 1;
                events.emit(EventKind::HandlerStarted {
                    step: step.id.clone(),
                    handler: handler.id.clone(),
                    error: error.message.clone(),
                });
                // The handler works in the failed step's slot, and gives it back while it waits.
                let handler_ctx = StepContext {
                    step: handler.id.as_str().into(),
                    attempt: handler_runs,
                    started: Instant::now(),
                    deadline: deadline.min(instant_after(Instant::now(), handler.timeout)),
                    cancel: cancel.clone(),
                    events: events.clone(),
                    continue_later: continue_later.clone(),
                    slot: Arc::clone(&slot),
                };
                let work = with_slot(
                    Arc::clone(&slot),
                    cancel.clone(),
                    handler.task.run(&handler_ctx),
                );
                let handled = tokio::time::timeout_at(handler_ctx.deadline, work).await;
                match handled {
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => {
                        break Err(StepError::fatal(format!(
                            "{}; its failure handler {} failed too: {}",
                            error.message, handler.id, e.message
                        )))
                    }
                    Err(_) => {
                        break Err(StepError::timed_out(format!(
                            "{}; its failure handler {} ran out of time",
                            error.message, handler.id
                        )))
                    }
                }
            }
        }
        if error.kind != FailureKind::Retryable {
            break Err(error);
        }
        let Some(delay) = delays.next() else {
            break Err(StepError::fatal(format!(
                "{} (gave up after {attempt} attempts)",
                error.message
            )));
        };
        if instant_after(Instant::now(), delay) >= deadline {
            break Err(StepError::timed_out(format!(
                "{} (no time left for another attempt before the step's timeout of {})",
                error.message,
                crate::util::short_duration(step.timeout)
            )));
        }
        events.emit(EventKind::AttemptFailed {
            step: step.id.clone(),
            attempt,
            error: error.message.clone(),
            retry_in: delay,
        });
        // The backoff before another attempt only waits: the slot is free for other steps
        // meanwhile, and the next attempt takes one again (above).
        slot.give_back();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => break Err(StepError::cancelled()),
        }
    };
    let duration = started.elapsed();
    match outcome {
        Ok(output) => {
            events.emit(EventKind::StepSucceeded {
                step: step.id.clone(),
                duration,
                summary: output.summary.clone(),
                resources: output.resources.clone(),
                notes: output.notes.clone(),
            });
            StepResult {
                id: step.id,
                action: step.action,
                outcome: StepOutcome::Succeeded,
                duration,
                output: Some(output),
                attempts: attempt,
                timeout: step.timeout,
            }
        }
        Err(error) => {
            events.emit(EventKind::StepFailed {
                step: step.id.clone(),
                duration,
                error: error.message.clone(),
            });
            StepResult {
                id: step.id,
                action: step.action,
                outcome: StepOutcome::Failed {
                    error: error.message,
                    kind: error.kind,
                },
                duration,
                output: None,
                attempts: attempt,
                timeout: step.timeout,
            }
        }
    }
}
