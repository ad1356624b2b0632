//! A wait's line tells the true time left at every moment, not the time left at the step's last
//! look at AWS: the engine sends the deadline with the wait, and the renderers count down from it
//! on their own clock. Tested on a fake clock (events and ticks with the times given by hand) and
//! through the real listening loop and engine in paused time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use indicatif::ProgressDrawTarget;
use teardown::engine::{
    self, RetryPolicy, RunOptions, StepContext, StepError, StepNode, StepOutput, Task,
};
use teardown::event::{Event, EventKind, EventSink, Waiting};
use teardown::graph::Dag;
use teardown::render::{self, HumanRenderer, Renderer};
use tokio_util::sync::CancellationToken;

fn at(secs: u64, kind: EventKind) -> Event {
    Event {
        elapsed: Duration::from_secs(secs),
        kind,
    }
}

fn started(step: &str) -> EventKind {
    EventKind::StepStarted {
        step: step.into(),
        action: "ec2.delete-network-interfaces".into(),
    }
}

/// The step began at 0 s and gives up at 30 s; its look at 6 s found 2 interfaces in use.
fn waiting_at_6s(step: &str) -> EventKind {
    let wait = Waiting {
        what: "2 network interfaces still in-use".into(),
        step_started: Duration::ZERO,
        deadline: Duration::from_secs(30),
    };
    EventKind::StepProgress {
        step: step.into(),
        message: wait.line_at(Duration::from_secs(6)),
        done: 0,
        total: 2,
        wait: Some(wait),
    }
}

#[test]
fn the_bar_of_a_wait_counts_down_every_tick_between_two_looks() {
    let mut human = HumanRenderer::drawing_to(ProgressDrawTarget::hidden());
    human.event(&at(0, started("delete-lambda-enis")));
    human.event(&at(6, waiting_at_6s("delete-lambda-enis")));
    assert_eq!(
        human.step_line("delete-lambda-enis").as_deref(),
        Some("2 network interfaces still in-use, 6s elapsed, gives up in 24s")
    );
    // The case: 4 s left, and no look at AWS since 6 s. The line says 4 s, not 24 s.
    human.tick(Duration::from_secs(26));
    assert_eq!(
        human.step_line("delete-lambda-enis").as_deref(),
        Some("2 network interfaces still in-use, 26s elapsed, gives up in 4s")
    );
    // Past the deadline (the step is about to say it gave up): never a negative or wrapped time.
    human.tick(Duration::from_secs(31));
    assert!(
        human
            .step_line("delete-lambda-enis")
            .unwrap()
            .ends_with("gives up in 0ms"),
        "{:?}",
        human.step_line("delete-lambda-enis")
    );
    // A progress line that is not a wait stops the countdown: a tick leaves it as it is.
    human.event(&at(
        32,
        EventKind::StepProgress {
            step: "delete-lambda-enis".into(),
            message: "delete eni-1".into(),
            done: 1,
            total: 2,
            wait: None,
        },
    ));
    human.tick(Duration::from_secs(33));
    assert_eq!(
        human.step_line("delete-lambda-enis").as_deref(),
        Some("delete eni-1")
    );
}

#[test]
fn a_plain_line_of_a_wait_is_worked_out_from_the_deadline_at_its_own_time() {
    let lines = teardown::render::plain_lines(&at(6, waiting_at_6s("delete-lambda-enis")));
    assert_eq!(
        lines,
        vec!["[    6.0s] delete-lambda-enis: [0/2] 2 network interfaces still in-use, 6s elapsed, gives up in 24s"]
    );
}

/// Waits for something that never finishes, looking every 10 s, until its deadline.
struct WaitsForever;

#[async_trait]
impl Task for WaitsForever {
    async fn run(&self, ctx: &StepContext) -> Result<StepOutput, StepError> {
        loop {
            ctx.waiting("1 network interface still in-use", 0, 1);
            ctx.sleep(Duration::from_secs(10)).await?;
        }
    }
}

/// A human renderer that records what the waiting step's line says after every tick.
struct Recording {
    inner: HumanRenderer,
    seen: Arc<Mutex<Vec<(Duration, String)>>>,
}

impl Renderer for Recording {
    fn event(&mut self, event: &Event) {
        self.inner.event(event);
    }

    fn tick(&mut self, now: Duration) {
        self.inner.tick(now);
        if let Some(line) = self.inner.step_line("wait") {
            self.seen.lock().unwrap().push((now, line));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_listening_loop_ticks_every_second_while_the_engine_waits() {
    let dag = Dag::build(vec![StepNode {
        id: "wait".into(),
        action: "test.wait".into(),
        after: vec![],
        timeout: Duration::from_secs(25),
        retry: RetryPolicy::none(),
        on_failure: None,
        task: Arc::new(WaitsForever),
    }])
    .unwrap();
    let (sink, receiver) = EventSink::channel();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let renderer = Recording {
        inner: HumanRenderer::drawing_to(ProgressDrawTarget::hidden()),
        seen: seen.clone(),
    };
    let listening = tokio::spawn(render::listen(
        receiver,
        sink.clock(),
        Box::new(renderer),
        |_| {},
    ));
    let summary = engine::run(
        &dag,
        &RunOptions::default(),
        &sink,
        &CancellationToken::new(),
    )
    .await;
    drop(sink);
    listening.await.unwrap();
    assert!(!summary.all_succeeded(), "the step gave up at its deadline");

    let seen = seen.lock().unwrap().clone();
    // The step looked at 0, 10 and 20 s; between looks, one line a second, each with the time
    // left at that second: 24 s at 1 s, 23 s at 2 s, ..., 1 s at 24 s.
    let whole: Vec<(u64, String)> = seen
        .iter()
        .filter(|(now, _)| now.subsec_millis() == 0 && now.as_secs() >= 1 && now.as_secs() <= 24)
        .map(|(now, line)| (now.as_secs(), line.clone()))
        .collect();
    assert_eq!(whole.len(), 24, "one tick a second: {seen:#?}");
    for (secs, line) in &whole {
        let expected = format!(
            "1 network interface still in-use, {secs}s elapsed, gives up in {}s",
            25 - secs
        );
        assert_eq!(line, &expected, "at {secs}s");
    }
}
