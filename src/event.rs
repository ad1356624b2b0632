//! The events the engine emits. Renderers, the journal and tests only listen to these; the engine
//! never prints.
//!
//! Events own their data (no borrows), so they cross channels freely. With `--output json` each
//! event is one JSON object per line; the README documents the format.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::resource::ResourceOutcome;

/// One thing that happened during a run.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Time since the run started.
    #[serde(rename = "elapsed_ms", serialize_with = "as_millis")]
    pub elapsed: Duration,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. Serialized with an `event` field naming the variant in snake case.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The run begins.
    RunStarted {
        /// The plan's name.
        plan: String,
        /// How many steps will be considered.
        steps: usize,
        /// True when nothing will be changed.
        dry_run: bool,
    },
    /// A step's dependencies are done and it starts.
    StepStarted {
        /// Step id.
        step: String,
        /// What it does, e.g. `ecs.stop-tasks`.
        action: String,
    },
    /// A step says what it is doing.
    StepProgress {
        /// Step id.
        step: String,
        /// In words, e.g. `2 Lambda ENIs still in use, 14m elapsed, gives up in 31m`.
        message: String,
        /// Resources done so far.
        done: u64,
        /// Resources in all (0 while unknown).
        total: u64,
        /// Set while the step waits for AWS to finish a change: what it waits for and its
        /// deadline, so that a renderer counts down on its own between two looks.
        #[serde(skip_serializing_if = "Option::is_none")]
        wait: Option<Waiting>,
    },
    /// An attempt failed; the step will try again after a delay.
    AttemptFailed {
        /// Step id.
        step: String,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Why.
        error: String,
        /// How long until the next attempt.
        #[serde(rename = "retry_in_ms", serialize_with = "as_millis")]
        retry_in: Duration,
    },
    /// A step failed and its failure handler (another step) runs before it is tried again.
    HandlerStarted {
        /// The step that failed.
        step: String,
        /// The step run as its handler.
        handler: String,
        /// Why the step failed.
        error: String,
    },
    /// A step finished well.
    StepSucceeded {
        /// Step id.
        step: String,
        /// How long it took.
        #[serde(rename = "duration_ms", serialize_with = "as_millis")]
        duration: Duration,
        /// One line on what it did.
        summary: String,
        /// Every resource it matched, and what became of it.
        resources: Vec<ResourceOutcome>,
        /// Things the reader must know (e.g. how to restore a secret).
        notes: Vec<String>,
    },
    /// A step failed for good.
    StepFailed {
        /// Step id.
        step: String,
        /// How long it ran.
        #[serde(rename = "duration_ms", serialize_with = "as_millis")]
        duration: Duration,
        /// Why, with what to do about it.
        error: String,
    },
    /// A step did not run.
    StepSkipped {
        /// Step id.
        step: String,
        /// Why, e.g. `blocked by delete-rotation-stack`.
        reason: String,
    },
    /// The run stops scheduling new steps.
    RunCancelled {
        /// Why (interrupted, fail-fast...).
        reason: String,
    },
    /// The run is over.
    RunFinished {
        /// Steps that succeeded.
        succeeded: usize,
        /// Steps that failed.
        failed: usize,
        /// Steps that did not run.
        skipped: usize,
        /// Wall time of the run.
        #[serde(rename = "duration_ms", serialize_with = "as_millis")]
        duration: Duration,
    },
}

/// A wait in progress: what a step waits for, and when it began and gives up, on the clock of
/// [`Event::elapsed`] (time since the run started). Renderers compute the time left from it at
/// any moment, rather than showing the time left at the last look, which is stale by up to a
/// whole poll interval (30 s for a stack).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// What is not finished yet, e.g. `2 network interfaces still in-use`.
    #[serde(rename = "waiting_for")]
    pub what: String,
    /// When the step's first attempt began.
    #[serde(rename = "step_started_ms", serialize_with = "as_millis")]
    pub step_started: Duration,
    /// When the step gives up (its timeout).
    #[serde(rename = "deadline_ms", serialize_with = "as_millis")]
    pub deadline: Duration,
}

impl Waiting {
    /// The wait in words at `now` (time since the run started):
    /// `2 network interfaces still in-use, 14m elapsed, gives up in 31m`.
    pub fn line_at(&self, now: Duration) -> String {
        format!(
            "{}, {} elapsed, gives up in {}",
            self.what,
            crate::util::short_duration(now.saturating_sub(self.step_started)),
            crate::util::short_duration(self.deadline.saturating_sub(now))
        )
    }
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Where the engine sends events: cheap to clone, never blocks, and a run goes on if nobody
/// listens any more.
#[derive(Clone, Debug)]
pub struct EventSink {
    sender: mpsc::UnboundedSender<Event>,
    start: tokio::time::Instant,
}

impl EventSink {
    /// A sink and the receiver the renderers read from. Elapsed times count from now.
    pub fn channel() -> (EventSink, mpsc::UnboundedReceiver<Event>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            EventSink {
                sender,
                start: tokio::time::Instant::now(),
            },
            receiver,
        )
    }

    /// Sends an event stamped with the time since the sink was made.
    pub fn emit(&self, kind: EventKind) {
        let _ = self.sender.send(Event {
            elapsed: self.start.elapsed(),
            kind,
        });
    }

    /// Time since the sink was made (the run's start).
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The run's clock, for a listener that must tell the time between events without holding
    /// the sink (which would keep the channel open).
    pub fn clock(&self) -> RunClock {
        RunClock { start: self.start }
    }

    /// An instant on the run's clock: how long after the run's start it is (zero before it).
    pub fn since_start(&self, instant: tokio::time::Instant) -> Duration {
        instant.saturating_duration_since(self.start)
    }
}

/// The clock that stamps a run's events: time since the run started, on tokio's clock (so it
/// stands still, and moves only when told, in tests with paused time).
#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    start: tokio::time::Instant,
}

impl RunClock {
    /// Time since the run started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }
}
