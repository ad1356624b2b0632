//! Executor semantics with in-process steps in paused tokio time: order, parallelism, retries with
//! backoff, timeouts, failure propagation, fail-fast, cancellation and failure handlers, and the
//! parallelism slots that a waiting step gives back. Time is virtual, so the assertions on
//! instants are exact and the tests take milliseconds.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use teardown::engine::{
    self, FailureKind, Handler, RetryPolicy, RunOptions, RunSummary, StepContext, StepError,
    StepNode, StepOutcome, StepOutput, Task,
};
use teardown::event::{Event, EventKind, EventSink};
use teardown::graph::Dag;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

type Log = Arc<Mutex<Vec<(String, Duration, Duration)>>>;

/// Sleeps for a while (cancellably), and records when it ran relative to `origin`.
struct Sleep {
    duration: Duration,
    log: Log,
    origin: Instant,
}

#[async_trait]
impl Task for Sleep {
    async fn run(&self, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let start = self.origin.elapsed();
        ctx.sleep(self.duration).await?;
        self.log
            .lock()
            .unwrap()
            .push((ctx.step().to_string(), start, self.origin.elapsed()));
        Ok(StepOutput {
            summary: format!("slept {:?}", self.duration),
            ..StepOutput::default()
        })
    }
}

/// Fails `failures` times with `kind`, then succeeds.
struct Flaky {
    failures: u32,
    kind: FailureKind,
    calls: AtomicU32,
}

#[async_trait]
impl Task for Flaky {
    async fn run(&self, _ctx: &StepContext) -> Result<StepOutput, StepError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call <= self.failures {
            return Err(StepError {
                kind: self.kind,
                message: format!("failure {call}"),
            });
        }
        Ok(StepOutput {
            summary: "ok".into(),
            ..StepOutput::default()
        })
    }
}

/// Counts its runs.
struct Counter(AtomicU32);

#[async_trait]
impl Task for Counter {
    async fn run(&self, _ctx: &StepContext) -> Result<StepOutput, StepError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(StepOutput::default())
    }
}

/// When each step was at work (not waiting), relative to the run's start.
type WorkLog = Arc<Mutex<Vec<(String, Duration, Duration)>>>;

/// Works (holds its slot, as a call in flight does) for `work[0]`, waits through its context for
/// `wait`, works for `work[1]`; records each working interval.
struct Phased {
    work: [Duration; 2],
    wait: Duration,
    log: WorkLog,
    origin: Instant,
}

#[async_trait]
impl Task for Phased {
    async fn run(&self, ctx: &StepContext) -> Result<StepOutput, StepError> {
        for (i, work) in self.work.iter().enumerate() {
            if i == 1 {
                if self.wait.is_zero() && work.is_zero() {
                    break;
                }
                ctx.sleep(self.wait).await?;
            }
            let start = self.origin.elapsed();
            tokio::time::sleep(*work).await;
            self.log
                .lock()
                .unwrap()
                .push((ctx.step().to_string(), start, self.origin.elapsed()));
        }
        Ok(StepOutput::default())
    }
}

/// Works (holds its slot) until the run is cancelled, looking every second.
struct BusyUntilCancelled;

#[async_trait]
impl Task for BusyUntilCancelled {
    async fn run(&self, ctx: &StepContext) -> Result<StepOutput, StepError> {
        loop {
            ctx.check_cancelled()?;
            tokio::time::sleep(secs(1)).await;
        }
    }
}

/// The most intervals of `log` that overlap at one instant.
fn most_at_once(log: &WorkLog) -> usize {
    let log = log.lock().unwrap();
    log.iter()
        .map(|(_, start, _)| {
            log.iter()
                .filter(|(_, s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn phased(log: &WorkLog, origin: Instant, work: [u64; 2], wait: u64) -> Arc<dyn Task> {
    Arc::new(Phased {
        work: [secs(work[0]), secs(work[1])],
        wait: secs(wait),
        log: log.clone(),
        origin,
    })
}

fn node(id: &str, after: &[&str], task: Arc<dyn Task>) -> StepNode {
    StepNode {
        id: id.to_string(),
        action: "test.step".into(),
        after: after.iter().map(|s| s.to_string()).collect(),
        timeout: Duration::from_secs(3600),
        retry: RetryPolicy::none(),
        on_failure: None,
        task,
    }
}

struct Harness {
    log: Log,
    origin: Instant,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            log: Log::default(),
            origin: Instant::now(),
        }
    }

    fn sleep(&self, secs: u64) -> Arc<dyn Task> {
        Arc::new(Sleep {
            duration: Duration::from_secs(secs),
            log: self.log.clone(),
            origin: self.origin,
        })
    }

    fn ran(&self, id: &str) -> (Duration, Duration) {
        let log = self.log.lock().unwrap();
        let (_, start, end) = log
            .iter()
            .find(|(step, ..)| step == id)
            .unwrap_or_else(|| panic!("step {id} did not run"));
        (*start, *end)
    }
}

async fn run_with(
    nodes: Vec<StepNode>,
    options: RunOptions,
    cancel: &CancellationToken,
) -> (RunSummary, Vec<Event>) {
    let dag = Dag::build(nodes).expect("valid test graph");
    let (sink, mut receiver) = EventSink::channel();
    let summary = engine::run(&dag, &options, &sink, cancel).await;
    drop(sink);
    let mut events = Vec::new();
    while let Some(event) = receiver.recv().await {
        events.push(event);
    }
    (summary, events)
}

async fn run(nodes: Vec<StepNode>) -> (RunSummary, Vec<Event>) {
    run_with(nodes, RunOptions::default(), &CancellationToken::new()).await
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A token that the caller cancels after `delay`, as Ctrl-C or a lost record would.
fn cancelled_after(delay: Duration) -> CancellationToken {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        trigger.cancel();
    });
    cancel
}

#[tokio::test(start_paused = true)]
async fn steps_start_when_what_they_wait_for_has_finished_and_branches_overlap() {
    let h = Harness::new();
    let (summary, _) = run(vec![
        node("a", &[], h.sleep(10)),
        node("b", &["a"], h.sleep(5)),
        node("c", &["a"], h.sleep(20)),
        node("d", &["b", "c"], h.sleep(1)),
    ])
    .await;
    assert!(summary.all_succeeded());
    assert_eq!(h.ran("a"), (secs(0), secs(10)));
    // b and c both start as soon as a is done, and run at the same time.
    assert_eq!(h.ran("b"), (secs(10), secs(15)));
    assert_eq!(h.ran("c"), (secs(10), secs(30)));
    // d waits for the slower of its two dependencies.
    assert_eq!(h.ran("d"), (secs(30), secs(31)));
    assert_eq!(summary.duration, secs(31));
}

#[tokio::test(start_paused = true)]
async fn parallelism_bounds_the_steps_at_work_at_once() {
    let log = WorkLog::default();
    let origin = Instant::now();
    // Steps that work all the time (10 s, no wait): they hold their slots throughout.
    let nodes = (0..7)
        .map(|i| node(&format!("s{i}"), &[], phased(&log, origin, [10, 0], 0)))
        .collect();
    let options = RunOptions {
        parallelism: 3,
        ..RunOptions::default()
    };
    let (summary, _) = run_with(nodes, options, &CancellationToken::new()).await;
    assert!(summary.all_succeeded());
    // 7 steps of 10 s, 3 at a time: three waves.
    assert_eq!(summary.duration, secs(30));
    assert_eq!(most_at_once(&log), 3);
}

#[tokio::test(start_paused = true)]
async fn a_step_that_only_waits_gives_its_slot_to_the_next_ready_step() {
    let log = WorkLog::default();
    let origin = Instant::now();
    // Six steps: 1 s of work, a 60 s wait (a poll's delay), 1 s of work. Two slots.
    let nodes = (0..6)
        .map(|i| node(&format!("s{i}"), &[], phased(&log, origin, [1, 1], 60)))
        .collect();
    let options = RunOptions {
        parallelism: 2,
        ..RunOptions::default()
    };
    let (summary, events) = run_with(nodes, options, &CancellationToken::new()).await;
    assert!(summary.all_succeeded(), "{summary:?}");
    // Never more than two at work...
    assert_eq!(most_at_once(&log), 2);
    // ...but all six started within their first three seconds of work, two at a time, and all
    // waited at once: 3 s of starts, 60 s of waiting, 3 s to finish, two at a time. Holding the
    // slots while waiting would take three waves of 62 s.
    let started: Vec<Duration> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, end)| *end <= secs(3))
        .map(|(_, start, _)| *start)
        .collect();
    assert_eq!(started.len(), 6, "{:?}", log.lock().unwrap());
    assert_eq!(summary.duration, secs(64));
    let most_started = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::StepStarted { .. }))
        .count();
    assert_eq!(most_started, 6);
}

#[tokio::test(start_paused = true)]
async fn a_step_back_from_a_wait_waits_for_a_free_slot() {
    let log = WorkLog::default();
    let origin = Instant::now();
    // One slot. `poller` works 1 s, waits 5 s, works 10 s; `worker` is ready at once and works
    // 20 s without waiting. The poller's wait lets the worker start at 1 s; back from its wait at
    // 6 s, the poller finds the slot taken and goes on only when the worker is done, at 21 s.
    let (summary, _) = run_with(
        vec![
            node("poller", &[], phased(&log, origin, [1, 10], 5)),
            node("worker", &[], phased(&log, origin, [20, 0], 0)),
        ],
        RunOptions {
            parallelism: 1,
            ..RunOptions::default()
        },
        &CancellationToken::new(),
    )
    .await;
    assert!(summary.all_succeeded(), "{summary:?}");
    assert_eq!(most_at_once(&log), 1);
    let worked = |id: &str| -> Vec<(Duration, Duration)> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(step, s, e)| step == id && s < e)
            .map(|(_, s, e)| (*s, *e))
            .collect()
    };
    assert_eq!(
        worked("poller"),
        vec![(secs(0), secs(1)), (secs(21), secs(31))]
    );
    assert_eq!(worked("worker"), vec![(secs(1), secs(21))]);
    assert_eq!(summary.duration, secs(31));
}

/// Works 1 s, waits 10 s through `engine::without_slot` (as a call waiting for its turn does, deep in
/// a task with no context at hand), works 1 s.
struct WaitsWithoutContext {
    log: WorkLog,
    origin: Instant,
}

#[async_trait]
impl Task for WaitsWithoutContext {
    async fn run(&self, ctx: &StepContext) -> Result<StepOutput, StepError> {
        for i in 0..2 {
            if i == 1 {
                engine::without_slot(tokio::time::sleep(secs(10))).await;
            }
            let start = self.origin.elapsed();
            tokio::time::sleep(secs(1)).await;
            self.log
                .lock()
                .unwrap()
                .push((ctx.step().to_string(), start, self.origin.elapsed()));
        }
        Ok(StepOutput::default())
    }
}

#[tokio::test(start_paused = true)]
async fn a_wait_deep_in_a_task_gives_the_slot_back_too() {
    let log = WorkLog::default();
    let origin = Instant::now();
    // One slot: the worker's 5 s fit in the other step's 10 s wait.
    let (summary, _) = run_with(
        vec![
            node(
                "caller",
                &[],
                Arc::new(WaitsWithoutContext {
                    log: log.clone(),
                    origin,
                }),
            ),
            node("worker", &[], phased(&log, origin, [5, 0], 0)),
        ],
        RunOptions {
            parallelism: 1,
            ..RunOptions::default()
        },
        &CancellationToken::new(),
    )
    .await;
    assert!(summary.all_succeeded(), "{summary:?}");
    assert_eq!(most_at_once(&log), 1);
    assert_eq!(summary.duration, secs(12));
    // Outside a step it only waits.
    let before = Instant::now();
    assert_eq!(engine::without_slot(async { 7 }).await, 7);
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_backoff_before_another_attempt_gives_the_slot_back() {
    let log = WorkLog::default();
    let origin = Instant::now();
    let flaky = Arc::new(Flaky {
        failures: 1,
        kind: FailureKind::Retryable,
        calls: AtomicU32::new(0),
    });
    let mut first = node("flaky", &[], flaky.clone());
    first.retry = RetryPolicy {
        attempts: 2,
        delay: secs(5),
        max_delay: secs(5),
        exponential: false,
        jitter: false,
    };
    // One slot: while `flaky` waits 5 s to try again, `worker` does its 3 s.
    let (summary, _) = run_with(
        vec![first, node("worker", &[], phased(&log, origin, [3, 0], 0))],
        RunOptions {
            parallelism: 1,
            ..RunOptions::default()
        },
        &CancellationToken::new(),
    )
    .await;
    assert!(summary.all_succeeded(), "{summary:?}");
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 2);
    let worker: Vec<(Duration, Duration)> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s, e)| s < e)
        .map(|(_, s, e)| (*s, *e))
        .collect();
    assert_eq!(worker, vec![(secs(0), secs(3))]);
    assert_eq!(summary.duration, secs(5));
}

#[tokio::test(start_paused = true)]
async fn cancellation_reaches_a_step_waiting_for_a_slot() {
    let log = WorkLog::default();
    let origin = Instant::now();
    let cancel = cancelled_after(Duration::from_millis(10_500));
    // One slot. At 6 s the poller is back from its wait and waits for the slot, which the worker
    // never gives back; cancelled at 10.5 s, the poller ends then, the worker at its next look.
    let (summary, _) = run_with(
        vec![
            node("poller", &[], phased(&log, origin, [1, 1], 5)),
            node("worker", &[], Arc::new(BusyUntilCancelled)),
        ],
        RunOptions {
            parallelism: 1,
            ..RunOptions::default()
        },
        &cancel,
    )
    .await;
    for id in ["poller", "worker"] {
        match &summary.step(id).unwrap().outcome {
            StepOutcome::Failed { kind, .. } => assert_eq!(*kind, FailureKind::Cancelled, "{id}"),
            other => panic!("{id}: expected cancellation, got {other:?}"),
        }
    }
    assert_eq!(
        summary.step("poller").unwrap().duration,
        Duration::from_millis(10_500)
    );
    assert_eq!(summary.duration, secs(11));
}

#[tokio::test(start_paused = true)]
async fn a_wait_cut_off_by_the_deadline_fails_the_step_and_frees_its_slot() {
    let log = WorkLog::default();
    let origin = Instant::now();
    let mut stuck = node("stuck", &[], phased(&log, origin, [1, 1], 3600));
    stuck.timeout = secs(30);
    // One slot: the next step starts during the wait, and the timed-out step does not hold the
    // slot on its way out.
    let (summary, _) = run_with(
        vec![
            stuck,
            node("next", &[], phased(&log, origin, [40, 0], 0)),
            node("after-next", &["next"], phased(&log, origin, [1, 0], 0)),
        ],
        RunOptions {
            parallelism: 1,
            ..RunOptions::default()
        },
        &CancellationToken::new(),
    )
    .await;
    match &summary.step("stuck").unwrap().outcome {
        StepOutcome::Failed { kind, .. } => assert_eq!(*kind, FailureKind::TimedOut),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(summary.step("stuck").unwrap().duration, secs(30));
    assert_eq!(
        summary.step("after-next").unwrap().outcome,
        StepOutcome::Succeeded
    );
    assert_eq!(summary.duration, secs(42));
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_with_exponential_backoff() {
    let flaky = Arc::new(Flaky {
        failures: 2,
        kind: FailureKind::Retryable,
        calls: AtomicU32::new(0),
    });
    let mut step = node("flaky", &[], flaky.clone());
    step.retry = RetryPolicy {
        attempts: 4,
        delay: secs(2),
        max_delay: secs(60),
        exponential: true,
        jitter: false,
    };
    let (summary, events) = run(vec![step]).await;
    assert!(summary.all_succeeded());
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
    assert_eq!(summary.step("flaky").unwrap().attempts, 3);
    let delays: Vec<Duration> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AttemptFailed { retry_in, .. } => Some(*retry_in),
            _ => None,
        })
        .collect();
    assert_eq!(delays, vec![secs(2), secs(4)]);
    assert_eq!(summary.duration, secs(6));
}

#[tokio::test(start_paused = true)]
async fn fatal_failures_are_not_retried_and_attempts_are_bounded() {
    let fatal = Arc::new(Flaky {
        failures: 5,
        kind: FailureKind::Fatal,
        calls: AtomicU32::new(0),
    });
    let retryable = Arc::new(Flaky {
        failures: 5,
        kind: FailureKind::Retryable,
        calls: AtomicU32::new(0),
    });
    let mut a = node("fatal", &[], fatal.clone());
    a.retry = RetryPolicy::default();
    let mut b = node("retryable", &[], retryable.clone());
    b.retry = RetryPolicy {
        attempts: 3,
        delay: secs(1),
        max_delay: secs(1),
        exponential: false,
        jitter: false,
    };
    let (summary, _) = run(vec![a, b]).await;
    assert_eq!(fatal.calls.load(Ordering::SeqCst), 1);
    assert_eq!(retryable.calls.load(Ordering::SeqCst), 3);
    match &summary.step("retryable").unwrap().outcome {
        StepOutcome::Failed { error, .. } => {
            assert!(error.contains("gave up after 3 attempts"), "{error}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_past_its_timeout_fails_and_its_dependents_are_skipped() {
    let h = Harness::new();
    let mut slow = node("slow", &[], h.sleep(100));
    slow.timeout = secs(10);
    let (summary, events) = run(vec![slow, node("after-slow", &["slow"], h.sleep(1))]).await;
    match &summary.step("slow").unwrap().outcome {
        StepOutcome::Failed { kind, .. } => assert_eq!(*kind, FailureKind::TimedOut),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(summary.step("slow").unwrap().duration, secs(10));
    assert_eq!(
        summary.step("after-slow").unwrap().outcome,
        StepOutcome::Skipped {
            reason: "blocked by slow".into()
        }
    );
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::StepSkipped { step, reason } if step == "after-slow" && reason == "blocked by slow")));
}

#[tokio::test(start_paused = true)]
async fn a_failure_skips_only_its_dependents_and_independent_branches_go_on() {
    let h = Harness::new();
    let broken = Arc::new(Flaky {
        failures: 1,
        kind: FailureKind::Fatal,
        calls: AtomicU32::new(0),
    });
    let (summary, _) = run(vec![
        node("a", &[], broken),
        node("b", &["a"], h.sleep(1)),
        node("c", &["b"], h.sleep(1)),
        node("independent", &[], h.sleep(5)),
    ])
    .await;
    let outcome = |id: &str| summary.step(id).unwrap().outcome.clone();
    assert!(matches!(outcome("a"), StepOutcome::Failed { .. }));
    for id in ["b", "c"] {
        assert_eq!(
            outcome(id),
            StepOutcome::Skipped {
                reason: "blocked by a".into()
            }
        );
    }
    assert_eq!(outcome("independent"), StepOutcome::Succeeded);
    assert_eq!(summary.counts(), (1, 1, 2));
}

#[tokio::test(start_paused = true)]
async fn fail_fast_stops_scheduling_after_the_first_failure() {
    let h = Harness::new();
    let broken = Arc::new(Flaky {
        failures: 1,
        kind: FailureKind::Fatal,
        calls: AtomicU32::new(0),
    });
    let options = RunOptions {
        parallelism: 1,
        fail_fast: true,
        ..RunOptions::default()
    };
    let (summary, events) = run_with(
        vec![node("first", &[], broken), node("second", &[], h.sleep(1))],
        options,
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(
        summary.step("second").unwrap().outcome,
        StepOutcome::Skipped {
            reason: "not started: fail-fast: step first failed".into()
        }
    );
    assert!(events.iter().any(
        |e| matches!(&e.kind, EventKind::RunCancelled { reason } if reason.contains("fail-fast"))
    ));
}

#[tokio::test(start_paused = true)]
async fn cancellation_reaches_running_steps_and_nothing_new_starts() {
    let h = Harness::new();
    let cancel = cancelled_after(secs(5));
    let (summary, _) = run_with(
        vec![
            node("long", &[], h.sleep(3600)),
            node("later", &["long"], h.sleep(1)),
        ],
        RunOptions::default(),
        &cancel,
    )
    .await;
    match &summary.step("long").unwrap().outcome {
        StepOutcome::Failed { kind, .. } => assert_eq!(*kind, FailureKind::Cancelled),
        other => panic!("expected cancellation, got {other:?}"),
    }
    // The running step stopped at its next safe point: right when the run was cancelled.
    assert_eq!(summary.duration, secs(5));
    assert_eq!(summary.cancelled, Some(engine::CancelReason::Interrupted));
    assert!(matches!(
        summary.step("later").unwrap().outcome,
        StepOutcome::Skipped { .. }
    ));
}

/// A caller that says why it cancelled (a run whose record cannot be written) gets that reason
/// in the run's cancellation event and summary, not "interrupted".
#[tokio::test(start_paused = true)]
async fn a_cancellation_with_a_reason_is_reported_with_it() {
    let h = Harness::new();
    let cancel = cancelled_after(secs(5));
    let dag = Dag::build(vec![
        node("long", &[], h.sleep(3600)),
        node("later", &["long"], h.sleep(1)),
    ])
    .expect("valid test graph");
    let (sink, mut receiver) = EventSink::channel();
    let why = || Some("the journal cannot be written".to_string());
    let summary = engine::run_explained(&dag, &RunOptions::default(), &sink, &cancel, &why).await;
    drop(sink);
    let mut reasons = Vec::new();
    while let Some(event) = receiver.recv().await {
        if let EventKind::RunCancelled { reason } = event.kind {
            reasons.push(reason);
        }
    }
    assert_eq!(reasons, ["the journal cannot be written"]);
    assert_eq!(
        summary.cancelled,
        Some(engine::CancelReason::Stopped {
            why: "the journal cannot be written".into()
        })
    );
    assert!(matches!(
        summary.step("later").unwrap().outcome,
        StepOutcome::Skipped { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_failure_handler_runs_before_the_step_is_tried_again() {
    let handler = Arc::new(Counter(AtomicU32::new(0)));
    // Fails once (fatally, like a DELETE_FAILED stack), then succeeds once the handler ran.
    let stack = Arc::new(Flaky {
        failures: 1,
        kind: FailureKind::Fatal,
        calls: AtomicU32::new(0),
    });
    let mut main = node("delete-main-stack", &["delete-enis"], stack.clone());
    main.on_failure = Some(Handler {
        id: "delete-enis".into(),
        times: 2,
        timeout: secs(60),
        task: handler.clone(),
    });
    let (summary, events) = run(vec![node("delete-enis", &[], handler.clone()), main]).await;
    assert!(summary.all_succeeded(), "{summary:?}");
    // Once as its own step, once as the handler.
    assert_eq!(handler.0.load(Ordering::SeqCst), 2);
    assert_eq!(stack.calls.load(Ordering::SeqCst), 2);
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::HandlerStarted { step, handler, .. } if step == "delete-main-stack" && handler == "delete-enis")));
}

#[tokio::test(start_paused = true)]
async fn a_duration_too_long_for_a_deadline_does_not_panic() {
    // Validation refuses such plans; the engine computes its deadlines with checked arithmetic
    // all the same, so that nothing that reaches it can make it panic.
    let h = Harness::new();
    let mut forever = node("forever", &[], h.sleep(1));
    forever.timeout = Duration::MAX;
    let mut flaky = node(
        "flaky",
        &[],
        Arc::new(Flaky {
            failures: 1,
            kind: FailureKind::Retryable,
            calls: AtomicU32::new(0),
        }),
    );
    flaky.timeout = Duration::MAX;
    flaky.retry = RetryPolicy {
        attempts: 2,
        delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(1),
        exponential: false,
        jitter: false,
    };
    let (summary, _) = run(vec![forever, flaky]).await;
    assert!(summary.all_succeeded(), "{summary:?}");
}

/// Never returns and ignores its deadline, as a call to an endpoint that never answers would.
struct Hang;

#[async_trait]
impl Task for Hang {
    async fn run(&self, _ctx: &StepContext) -> Result<StepOutput, StepError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_call_counts_against_the_steps_deadline() {
    let origin = Instant::now();
    let mut hung = node("hung", &[], Arc::new(Hang));
    hung.timeout = Duration::from_secs(60);
    let (summary, _) = run(vec![hung]).await;
    let step = summary.step("hung").unwrap();
    match &step.outcome {
        StepOutcome::Failed { kind, error } => {
            assert_eq!(*kind, FailureKind::TimedOut);
            assert!(error.contains("timed out after 1m"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // Cut off at its deadline, give or take the engine's short grace.
    assert!(
        origin.elapsed() <= Duration::from_secs(63),
        "{:?}",
        origin.elapsed()
    );
}
