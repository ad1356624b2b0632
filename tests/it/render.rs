//! Snapshots of the plain and JSON renderers for one small run in paused time (so every elapsed
//! time is exact): a step that succeeds with resources and a note, one that fails after a retry,
//! and one skipped because of it.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use teardown::engine::{
    self, RetryPolicy, RunOptions, StepContext, StepError, StepNode, StepOutput, Task,
};
use teardown::event::{Event, EventSink};
use teardown::graph::Dag;
use teardown::render::{JsonRenderer, PlainRenderer, Renderer};
use teardown::resource::{OutcomeKind, Resource, ResourceOutcome};
use tokio_util::sync::CancellationToken;

struct DeletesTwo;

#[async_trait]
impl Task for DeletesTwo {
    async fn run(&self, ctx: &StepContext) -> Result<StepOutput, StepError> {
        ctx.progress("delete web", 0, 2);
        ctx.sleep(Duration::from_millis(1500)).await?;
        let outcome = |name: &str, outcome, detail: &str| ResourceOutcome {
            resource: Resource::new(
                "ECR repository",
                format!("arn:aws:ecr:::{name}"),
                name,
                format!("name is \"{name}\""),
            ),
            outcome,
            detail: detail.into(),
        };
        Ok(StepOutput {
            summary: "delete: 1 of 2 ECR repositories".into(),
            resources: vec![
                outcome("web", OutcomeKind::Done, "deleted"),
                outcome(
                    "keep-me",
                    OutcomeKind::Protected,
                    "protected: tagged teardown:protect",
                ),
            ],
            notes: vec!["nothing to restore".into()],
        })
    }
}

struct AlwaysBusy(AtomicU32);

#[async_trait]
impl Task for AlwaysBusy {
    async fn run(&self, _ctx: &StepContext) -> Result<StepOutput, StepError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(StepError::retryable("DependencyViolation: still in use"))
    }
}

fn node(id: &str, after: &[&str], task: Arc<dyn Task>, retry: RetryPolicy) -> StepNode {
    StepNode {
        id: id.into(),
        action: "test.action".into(),
        after: after.iter().map(|s| s.to_string()).collect(),
        timeout: Duration::from_secs(600),
        retry,
        on_failure: None,
        task,
    }
}

async fn events() -> Vec<Event> {
    let retry = RetryPolicy {
        attempts: 2,
        delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(2),
        exponential: false,
        jitter: false,
    };
    let dag = Dag::build(vec![
        node(
            "delete-repos",
            &[],
            Arc::new(DeletesTwo),
            RetryPolicy::none(),
        ),
        node(
            "delete-vpc",
            &["delete-repos"],
            Arc::new(AlwaysBusy(AtomicU32::new(0))),
            retry,
        ),
        node(
            "delete-stack",
            &["delete-vpc"],
            Arc::new(DeletesTwo),
            RetryPolicy::none(),
        ),
    ])
    .unwrap();
    let (sink, mut receiver) = EventSink::channel();
    let options = RunOptions {
        plan_name: "snapshot".into(),
        ..RunOptions::default()
    };
    engine::run(&dag, &options, &sink, &CancellationToken::new()).await;
    drop(sink);
    let mut events = Vec::new();
    while let Some(e) = receiver.recv().await {
        events.push(e);
    }
    events
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn plain_output_snapshot() {
    let buffer = Buffer::default();
    let mut renderer = PlainRenderer::new(Box::new(buffer.clone()));
    for event in events().await {
        renderer.event(&event);
    }
    let expected = r#"[    0.0s] run started: plan snapshot, 3 steps
[    0.0s] delete-repos: started (test.action)
[    0.0s] delete-repos: [0/2] delete web
[    1.5s] delete-repos: succeeded in 1.5s: delete: 1 of 2 ECR repositories
             done ECR repository web: deleted [name is "web"]
             kept ECR repository keep-me: protected: tagged teardown:protect [name is "keep-me"]
             note: nothing to restore
[    1.5s] delete-vpc: started (test.action)
[    1.5s] delete-vpc: attempt 1 failed: DependencyViolation: still in use; retrying in 2s
[    3.5s] delete-vpc: FAILED after 2s: DependencyViolation: still in use (gave up after 2 attempts)
[    3.5s] delete-stack: skipped: blocked by delete-vpc
[    3.5s] run finished in 3.5s: 1 succeeded, 1 failed, 1 skipped
"#;
    assert_eq!(buffer.text(), expected);
}

#[tokio::test(start_paused = true)]
async fn json_lines_snapshot() {
    let buffer = Buffer::default();
    let mut renderer = JsonRenderer::new(Box::new(buffer.clone()));
    for event in events().await {
        renderer.event(&event);
    }
    let expected = r#"{"elapsed_ms":0,"event":"run_started","plan":"snapshot","steps":3,"dry_run":false}
{"elapsed_ms":0,"event":"step_started","step":"delete-repos","action":"test.action"}
{"elapsed_ms":0,"event":"step_progress","step":"delete-repos","message":"delete web","done":0,"total":2}
{"elapsed_ms":1500,"event":"step_succeeded","step":"delete-repos","duration_ms":1500,"summary":"delete: 1 of 2 ECR repositories","resources":[{"resource":{"kind":"ECR repository","id":"arn:aws:ecr:::web","name":"web","matched_because":"name is \"web\""},"outcome":"done","detail":"deleted"},{"resource":{"kind":"ECR repository","id":"arn:aws:ecr:::keep-me","name":"keep-me","matched_because":"name is \"keep-me\""},"outcome":"protected","detail":"protected: tagged teardown:protect"}],"notes":["nothing to restore"]}
{"elapsed_ms":1500,"event":"step_started","step":"delete-vpc","action":"test.action"}
{"elapsed_ms":1500,"event":"attempt_failed","step":"delete-vpc","attempt":1,"error":"DependencyViolation: still in use","retry_in_ms":2000}
{"elapsed_ms":3500,"event":"step_failed","step":"delete-vpc","duration_ms":2000,"error":"DependencyViolation: still in use (gave up after 2 attempts)"}
{"elapsed_ms":3500,"event":"step_skipped","step":"delete-stack","reason":"blocked by delete-vpc"}
{"elapsed_ms":3500,"event":"run_finished","succeeded":1,"failed":1,"skipped":1,"duration_ms":3500}
"#;
    assert_eq!(buffer.text(), expected);
    // Every line is a JSON object with an `event` and an `elapsed_ms`.
    for line in buffer.text().lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            value["event"].is_string() && value["elapsed_ms"].is_u64(),
            "{line}"
        );
    }
}
