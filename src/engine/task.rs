//! The contract between the engine and the work it schedules: a [`Task`] runs with a
//! [`StepContext`] and returns a [`StepOutput`] or a classified [`StepError`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::event::{EventKind, EventSink, Waiting};

/// How to continue a run when nothing better is known.
pub(crate) const RUN_AGAIN: &str = "run the same command again";
use crate::resource::ResourceOutcome;

/// Something the engine can run as a step. It must be idempotent: the engine runs it again after a
/// retryable failure and after a failure handler.
#[async_trait]
pub trait Task: Send + Sync {
    /// Does the work. Long waits should check `ctx.cancel` (or use [`StepContext::sleep`]) so that
    /// cancellation and the deadline reach them.
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

    /// Sleeps, waking early with an error if the run is cancelled. A sleep that would pass the
    /// step's deadline ends at the deadline with a [`FailureKind::TimedOut`] error.
    pub async fn sleep(&self, duration: Duration) -> Result<(), StepError> {
        let passes_deadline = duration > self.time_left();
        let wake = if passes_deadline {
            self.deadline
        } else {
            super::instant_after(Instant::now(), duration)
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = self.cancel.cancelled() => return Err(StepError::cancelled()),
        }
        if passes_deadline {
            return Err(StepError::timed_out(format!(
                "gave up after {} (the step's timeout)",
                crate::util::short_duration(self.elapsed())
            )));
        }
        Ok(())
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
