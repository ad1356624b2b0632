//! The contract between the engine and the work it schedules: a [`Task`] runs with a
//! [`StepContext`] and returns a [`StepOutput`] or a classified [`StepError`].
//!
//! A step holds one of the run's parallelism slots while it works. While it only waits (a poll's
//! delay, the backoff before another attempt) it gives its slot back ([`StepContext::without_slot`],
//! which [`StepContext::sleep`] uses), so that the scheduler starts the next ready step, and it
//! takes a slot again before it goes on.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::event::{EventKind, EventSink, Waiting};
use crate::resource::ResourceOutcome;

/// How to continue a run when nothing better is known.
pub(crate) const RUN_AGAIN: &str = "run the same command again";

/// Something the engine can run as a step. It must be idempotent: the engine runs it again after a
/// retryable failure and after a failure handler.
#[async_trait]
pub trait Task: Send + Sync {
    /// Does the work. Long waits should check `ctx.cancel` (or use [`StepContext::sleep`]) so that
    /// cancellation and the deadline reach them. A wait that makes no call (a delay between polls)
    /// should go through [`StepContext::sleep`] or [`StepContext::without_slot`]: then it does not count
    /// against the run's parallelism.
    async fn run(&self, ctx: &StepContext) -> Result<StepOutput, StepError>;
}

/// What a successful step reports.
#[derive(Clone, Debug, Default)]
pub struct StepOutput {
    /// One line, e.g. `deleted 2 of 2 CloudFormation stacks`.
    pub summary: String,
    /// Each resource it matched and what became of it.
    pub resources: Vec<ResourceOutcome>,
    /// What the reader must know afterwards.
    pub notes: Vec<String>,
}

/// How a step failed, which decides whether the engine tries again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Try again after a backoff delay, while attempts and the deadline allow.
    Retryable,
    /// Do not try again.
    Fatal,
    /// The step's deadline passed.
    TimedOut,
    /// The run was cancelled while the step ran.
    Cancelled,
}

/// A failed step attempt.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// Whether to try again.
    pub kind: FailureKind,
    /// What went wrong and, where we know, what to do about it.
    pub message: String,
}

impl StepError {
    /// A failure worth another attempt.
    pub fn retryable(message: impl Into<String>) -> StepError {
        StepError {
            kind: FailureKind::Retryable,
            message: message.into(),
        }
    }

    /// A failure that another attempt will not fix.
    pub fn fatal(message: impl Into<String>) -> StepError {
        StepError {
            kind: FailureKind::Fatal,
            message: message.into(),
        }
    }

    /// The step ran out of time.
    pub fn timed_out(message: impl Into<String>) -> StepError {
        StepError {
            kind: FailureKind::TimedOut,
            message: message.into(),
        }
    }

    /// The run was cancelled.
    pub fn cancelled() -> StepError {
        StepError {
            kind: FailureKind::Cancelled,
            message: "cancelled before it finished".into(),
        }
    }
}

/// What a running step may know and do: who it is, its deadline, cancellation, progress.
#[derive(Clone, Debug)]
pub struct StepContext {
    pub(crate) step: Arc<str>,
    pub(crate) attempt: u32,
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
    pub(crate) cancel: CancellationToken,
    pub(crate) events: EventSink,
    pub(crate) continue_later: Arc<str>,
    pub(crate) slot: Arc<Slot>,
}

/// A step's parallelism slot: the permit it holds while it works, given back while it waits.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The run's slots; `None` outside the engine (a detached context), where nothing is limited.
    slots: Option<Arc<Semaphore>>,
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    permit: Option<OwnedSemaphorePermit>,
    /// Waits in progress (a task may wait in several branches at once): the slot is given back
    /// when the first starts and taken again when the last ends.
    waits: usize,
}

impl Slot {
    /// A slot holding `permit`, one of `slots`.
    pub(crate) fn held(slots: Arc<Semaphore>, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            slots: Some(slots),
            state: Mutex::new(SlotState {
                permit: Some(permit),
                waits: 0,
            }),
        }
    }

    /// No limit: for a task run outside the engine.
    pub(crate) fn unlimited() -> Slot {
        Slot {
            slots: None,
            state: Mutex::new(SlotState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        // The state is two plain fields, consistent after every statement: a panic elsewhere
        // while the lock was held leaves nothing half-done, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A wait starts: the first one gives the permit back.
    fn release(&self) {
        let mut state = self.lock();
        state.waits += 1;
        state.permit = None;
    }

    /// Gives the permit back until the next [`Slot::acquire`] (the engine's backoff between
    /// attempts).
    pub(crate) fn give_back(&self) {
        self.lock().permit = None;
    }

    /// A wait ended without taking the slot again (it failed, or was dropped).
    fn forget_wait(&self) {
        let mut state = self.lock();
        state.waits = state.waits.saturating_sub(1);
    }

    /// Holds a permit again, once no wait is in progress, waiting for a free slot if need be
    /// (or until `cancel`). True when the step holds its slot.
    pub(crate) async fn acquire(&self, cancel: &CancellationToken) -> bool {
        let Some(slots) = &self.slots else {
            return true;
        };
        if self.holds_or_waits() {
            return true;
        }
        // A cancelled run takes no slot, even when one is free at the same instant.
        let permit = tokio::select! {
            biased;
            _ = cancel.cancelled() => return false,
            permit = Arc::clone(slots).acquire_owned() => permit,
        };
        let Ok(permit) = permit else {
            // The run's semaphore is never closed; were it, nothing would be limited.
            return true;
        };
        let mut state = self.lock();
        // Another branch of the task may have started waiting, or taken a permit, while this one
        // waited for a slot: keep at most one, and none while a wait is in progress.
        if state.permit.is_none() && state.waits == 0 {
            state.permit = Some(permit);
        }
        true
    }

    fn holds_or_waits(&self) -> bool {
        let state = self.lock();
        state.permit.is_some() || state.waits > 0
    }

    /// A wait ended: the last one takes the slot again.
    async fn end_wait(&self, cancel: &CancellationToken) -> bool {
        self.forget_wait();
        self.acquire(cancel).await
    }
}

tokio::task_local! {
    /// The slot of the step whose task is running here, and the run's cancellation: what lets a
    /// wait deep inside a task (a call waiting for its turn, in a lower layer that has no
    /// [`StepContext`]) give the slot back through [`without_slot`].
    static CURRENT: (Arc<Slot>, CancellationToken);
}

/// Runs a task's future with its step's slot known to [`without_slot`].
pub(crate) async fn with_slot<F: Future>(
    slot: Arc<Slot>,
    cancel: CancellationToken,
    work: F,
) -> F::Output {
    CURRENT.scope((slot, cancel), work).await
}

/// Runs `wait` (something that only waits) with the current step's parallelism slot given back,
/// then takes a slot again, as [`StepContext::without_slot`] does, for code that runs inside a step's
/// task but has no [`StepContext`] (a call waiting for its turn under a rate limit). Outside a
/// step (or in a task the step spawned) it only runs `wait`. If the run is cancelled while it
/// waits for a slot, it returns without one: the step stops at its next check, and its next
/// attempt, if any, takes a slot first.
pub async fn without_slot<F: Future>(wait: F) -> F::Output {
    let Ok((slot, cancel)) = CURRENT.try_with(|(slot, cancel)| (Arc::clone(slot), cancel.clone()))
    else {
        return wait.await;
    };
    slot.release();
    let mut guard = WaitGuard {
        slot: &slot,
        armed: true,
    };
    let output = wait.await;
    guard.armed = false;
    slot.end_wait(&cancel).await;
    output
}

/// Ends a wait that was dropped before it finished, so that the step's next attempt takes its
/// slot again (the engine makes sure of it before every attempt).
struct WaitGuard<'a> {
    slot: &'a Slot,
    armed: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.slot.forget_wait();
        }
    }
}

impl StepContext {
    /// A context for running a task outside the engine (tests, tools).
    pub fn detached(step: &str, timeout: Duration, events: EventSink) -> StepContext {
        let now = Instant::now();
        StepContext {
            step: step.into(),
            attempt: 1,
            started: now,
            deadline: super::instant_after(now, timeout),
            cancel: CancellationToken::new(),
            events,
            continue_later: RUN_AGAIN.into(),
            slot: Arc::new(Slot::unlimited()),
        }
    }

    /// The step's id.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// How a person continues the run after it stopped (e.g. ``"`teardown resume RUN_ID`"``),
    /// for a step that gives up to say.
    pub fn continue_later(&self) -> &str {
        &self.continue_later
    }

    /// Which attempt this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Time since the step's first attempt started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Time left until the step's deadline (its timeout, counted from the first attempt).
    pub fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// True once the run is cancelled: stop at the next safe point.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Fails with [`FailureKind::Cancelled`] if the run is cancelled: call it between changes.
    pub fn check_cancelled(&self) -> Result<(), StepError> {
        if self.is_cancelled() {
            Err(StepError::cancelled())
        } else {
            Ok(())
        }
    }

    /// Runs `wait` (something that only waits: no call, no change) with the step's parallelism slot
    /// given back, so that another step can work meanwhile; then takes a slot again, waiting for
    /// one to be free, before returning what `wait` returned. Fails with
    /// [`FailureKind::Cancelled`] if the run is cancelled while it waits for a slot.
    pub async fn without_slot<F: Future>(&self, wait: F) -> Result<F::Output, StepError> {
        self.slot.release();
        let mut guard = WaitGuard {
            slot: &self.slot,
            armed: true,
        };
        let output = wait.await;
        guard.armed = false;
        if self.slot.end_wait(&self.cancel).await {
            Ok(output)
        } else {
            Err(StepError::cancelled())
        }
    }

    /// Sleeps, waking early with an error if the run is cancelled. A sleep that would pass the
    /// step's deadline ends at the deadline with a [`FailureKind::TimedOut`] error. The step does
    /// not hold its parallelism slot while it sleeps (see [`StepContext::without_slot`]).
    pub async fn sleep(&self, duration: Duration) -> Result<(), StepError> {
        let passes_deadline = duration > self.time_left();
        let wake = if passes_deadline {
            self.deadline
        } else {
            super::instant_after(Instant::now(), duration)
        };
        self.slot.release();
        let mut guard = WaitGuard {
            slot: &self.slot,
            armed: true,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = self.cancel.cancelled() => return Err(StepError::cancelled()),
        }
        if passes_deadline {
            // The step is about to fail: it needs no slot for that, and waiting for one could
            // take it past the engine's grace after the deadline.
            return Err(StepError::timed_out(format!(
                "gave up after {} (the step's timeout)",
                crate::util::short_duration(self.elapsed())
            )));
        }
        guard.armed = false;
        if self.slot.end_wait(&self.cancel).await {
            Ok(())
        } else {
            Err(StepError::cancelled())
        }
    }

    /// Tells the listeners what the step is doing and how far it got.
    pub fn progress(&self, message: impl Into<String>, done: u64, total: u64) {
        self.events.emit(EventKind::StepProgress {
            step: self.step.to_string(),
            message: message.into(),
            done,
            total,
            wait: None,
        });
    }

    /// Tells the listeners that the step waits for `what` (e.g. `2 network interfaces still
    /// in-use`) until its deadline. The event carries the deadline, so that a renderer counts
    /// down by itself until the next look; its `message` is the wait in words as of now.
    pub fn waiting(&self, what: impl Into<String>, done: u64, total: u64) {
        let wait = Waiting {
            what: what.into(),
            step_started: self.events.since_start(self.started),
            deadline: self.events.since_start(self.deadline),
        };
        self.events.emit(EventKind::StepProgress {
            step: self.step.to_string(),
            message: wait.line_at(self.events.elapsed()),
            done,
            total,
            wait: Some(wait),
        });
    }
}
