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
use teardown::event::{Event, EventSink, RunContext};
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
    let context = RunContext {
        account: "123456789012".into(),
        region: "us-west-2".into(),
        plan_file: Some("plans/snapshot.toml".into()),
        audit_log: None,
    };
    let (sink, mut receiver) = EventSink::for_run("r1", context);
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
    let expected = r#"{"run_id":"r1","elapsed_ms":0,"event":"run_started","plan":"snapshot","steps":3,"dry_run":false,"account":"123456789012","region":"us-west-2","plan_file":"plans/snapshot.toml","audit_log":null}
{"run_id":"r1","elapsed_ms":0,"event":"step_started","step":"delete-repos","action":"test.action"}
{"run_id":"r1","elapsed_ms":0,"event":"step_progress","step":"delete-repos","message":"delete web","done":0,"total":2}
{"run_id":"r1","elapsed_ms":1500,"event":"step_succeeded","step":"delete-repos","duration_ms":1500,"summary":"delete: 1 of 2 ECR repositories","resources":[{"resource":{"kind":"ECR repository","id":"arn:aws:ecr:::web","name":"web","matched_because":"name is \"web\""},"outcome":"done","detail":"deleted"},{"resource":{"kind":"ECR repository","id":"arn:aws:ecr:::keep-me","name":"keep-me","matched_because":"name is \"keep-me\""},"outcome":"protected","detail":"protected: tagged teardown:protect"}],"notes":["nothing to restore"]}
{"run_id":"r1","elapsed_ms":1500,"event":"step_started","step":"delete-vpc","action":"test.action"}
{"run_id":"r1","elapsed_ms":1500,"event":"attempt_failed","step":"delete-vpc","attempt":1,"error":"DependencyViolation: still in use","retry_in_ms":2000}
{"run_id":"r1","elapsed_ms":3500,"event":"step_failed","step":"delete-vpc","duration_ms":2000,"error":"DependencyViolation: still in use (gave up after 2 attempts)"}
{"run_id":"r1","elapsed_ms":3500,"event":"step_skipped","step":"delete-stack","reason":"blocked by delete-vpc"}
{"run_id":"r1","elapsed_ms":3500,"event":"run_finished","succeeded":1,"failed":1,"skipped":1,"duration_ms":3500}
"#;
    assert_eq!(buffer.text(), expected);
    // Every line is a JSON object with an `event` and an `elapsed_ms`, and matches the schema
    // shipped in the repository.
    let schema = shipped_event_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for line in buffer.text().lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            value["event"].is_string() && value["elapsed_ms"].is_u64(),
            "{line}"
        );
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
    }
    // The schema can fail: a line without its run id does not pass.
    let mut broken: serde_json::Value =
        serde_json::from_str(buffer.text().lines().next().unwrap()).unwrap();
    broken.as_object_mut().unwrap().remove("run_id");
    assert!(!validator.is_valid(&broken));
}

/// `schemas/events.schema.json`, as shipped.
pub fn shipped_event_schema() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/events.schema.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The shipped schema is the one generated from the event types: an event changed without its
/// schema fails here. `TEARDOWN_WRITE_SCHEMAS=1 cargo test --test it render::` rewrites it.
#[test]
fn the_shipped_event_schema_is_the_generated_one() {
    let generated = teardown::render::event_schema();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/events.schema.json");
    if std::env::var_os("TEARDOWN_WRITE_SCHEMAS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
        std::fs::write(
            path,
            serde_json::to_string_pretty(&generated).unwrap() + "\n",
        )
        .unwrap();
    }
    assert!(
        shipped_event_schema() == generated,
        "{path} is not what the event types generate: run `TEARDOWN_WRITE_SCHEMAS=1 cargo test --test it render::the_shipped_event_schema_is_the_generated_one` and commit it"
    );
    // It knows every event the README's table lists.
    let text = generated.to_string();
    for event in [
        "run_started",
        "step_started",
        "step_progress",
        "attempt_failed",
        "handler_started",
        "step_succeeded",
        "step_failed",
        "step_skipped",
        "run_cancelled",
        "run_finished",
    ] {
        assert!(text.contains(&format!("\"{event}\"")), "{event}");
    }
}
