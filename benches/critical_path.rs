//! benches/README: teardown's benchmarks, one binary (`harness = false`, plain `main`). Results,
//! the machine and what the numbers mean: BENCHMARKS.md.
//!
//!     cargo bench --profile dev --bench critical_path
//!
//! Why `--profile dev`: `cargo bench` builds with the `bench` profile (release settings), and a
//! clean optimised build of the AWS SDK crates takes about 12 minutes on a 2-core machine; the dev
//! profile reuses the build that `cargo build` and `cargo test` already made. Part 1 runs in
//! paused tokio time, where optimisation changes nothing that is measured; part 2 measures real
//! time, so its numbers are those of an unoptimised build, and BENCHMARKS.md says so.
//!
//! `cargo test --all-targets` (scripts/test) runs bench targets too, without `--bench`: then this
//! is a smoke run (every part once, 5 sweep runs, a 1,000-step plan), a few seconds.
//!
//! Part 1, the critical path (virtual time). The real executor (`engine::run`) runs the real
//! workshop plan (`tests/it/plans/named-workshop.toml`) through the real find/act/wait
//! adapter (`actions::ActionStep`, with its real backoff polling and each real action's
//! `poll_policy`), over a simulated AWS: every API call takes 50 ms, ECS tasks stop 30 s after
//! StopTask, the rotation stack takes 3 min to delete and the main stack 8 min, Lambda releases its
//! network interfaces 35 min after the rotation stack is gone, the rest goes at once. The simulated
//! actions are honest: `still_pending` says pending until the simulated instant of completion, the
//! interfaces answer `Acted::NotYet` while Lambda holds them, and acting out of order (a cluster
//! with tasks, a main stack with Lambda interfaces) is recorded as a violation. The same latencies
//! give the lower bound: the earliest every step could finish if every wait were noticed the
//! instant it ended. The baseline is the workshop's instructions done one after another (a chain),
//! each wait polled at the fixed interval of the AWS CLI waiter. Round latencies line up with a
//! fixed 30 s grid, so a sweep repeats every scenario with the long waits spread over an interval.
//!
//! Part 2, the engine alone (real time): a generated 10,000-step plan is validated with
//! `plan::parse`, and `engine::run` runs its 10,000 steps as no-op tasks.
//!
//! Part 3, a sweep at scale (virtual time, `critical_path/scale.rs`): the merged DAG of 1 and of
//! 100 labs of `tests/it/plans/tagged-labs-sweep.toml`, over part 1's simulation, with the account's API
//! rate limits as token buckets and the SDK's retries when a call is throttled.
//!
//! Nothing here asserts a duration: the numbers are printed, and compared with the targets in
//! BENCHMARKS.md. The only checks are of the simulation's own consistency (every step succeeded,
//! nothing acted out of order); all of part 1 is deterministic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use teardown::actions::{Acted, Action, ActionStep, Pending, PollPolicy};
use teardown::aws::{Aws, AwsError, Mode};
use teardown::engine::{self, RunOptions, StepContext, StepError, StepNode, StepOutput, Task};
use teardown::event::{EventKind, EventSink};
use teardown::graph::Dag;
use teardown::plan::{self, Plan, PlannedStep};
use teardown::resource::Resource;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[path = "critical_path/scale.rs"]
mod scale;

const WORKSHOP_PLAN: &str = "tests/it/plans/named-workshop.toml";

/// The workshop's own instructions, in their order: the sequential baseline runs them as a chain.
const WORKSHOP_ORDER: [&str; 10] = [
    "stop-tasks",
    "delete-services",
    "deregister-task-definitions",
    "delete-cluster",
    "delete-repository",
    "cancel-rotation",
    "delete-secret",
    "delete-rotation-stack",
    "delete-lambda-enis",
    "delete-main-stack",
];

// ---- the simulated account -------------------------------------------------------------------

/// How long AWS takes. Everything not listed finishes within its own API call.
#[derive(Clone, Copy, Debug)]
struct Latencies {
    /// Every API call (find, act, each poll).
    call: Duration,
    /// A Fargate task, from StopTask to STOPPED.
    task_stop: Duration,
    /// The rotation Lambda's stack, from DeleteStack to DELETE_COMPLETE.
    rotation_stack: Duration,
    /// The workshop's main stack, from DeleteStack to DELETE_COMPLETE.
    main_stack: Duration,
    /// Lambda's network interfaces, from the rotation stack's DELETE_COMPLETE to their release.
    eni_release: Duration,
}

const NOMINAL: Latencies = Latencies {
    call: Duration::from_millis(50),
    task_stop: Duration::from_secs(30),
    rotation_stack: Duration::from_secs(3 * 60),
    main_stack: Duration::from_secs(8 * 60),
    eni_release: Duration::from_secs(35 * 60),
};

/// What the workshop leaves: one service running two tasks, three task-definition revisions, two
/// Lambda interfaces; one each of the rest.
const TASKS: usize = 2;
const REVISIONS: usize = 3;
const ENIS: usize = 2;

const SERVICE_ID: &str = "service/FargateClusterDemo/FargateServiceDemo";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stack {
    Rotation,
    Main,
}

/// Which simulation stands in for a step's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sim {
    StopTasks,
    DeleteServices,
    DeregisterTaskDefinitions,
    DeleteCluster,
    DeleteRepository,
    CancelRotation,
    DeleteSecret,
    DeleteStack(Stack),
    DeleteEnis,
}

impl Sim {
    fn of(step: &PlannedStep) -> Sim {
        match step.action.as_str() {
            "ecs.stop-tasks" => Sim::StopTasks,
            "ecs.delete-services" => Sim::DeleteServices,
            "ecs.deregister-task-definitions" => Sim::DeregisterTaskDefinitions,
            "ecs.delete-cluster" => Sim::DeleteCluster,
            "ecr.delete-repository" => Sim::DeleteRepository,
            "secretsmanager.cancel-rotation" => Sim::CancelRotation,
            "secretsmanager.delete-secret" => Sim::DeleteSecret,
            "cloudformation.delete-stack" => match step.id.as_str() {
                "delete-rotation-stack" => Sim::DeleteStack(Stack::Rotation),
                "delete-main-stack" => Sim::DeleteStack(Stack::Main),
                other => panic!("no simulated stack for step {other}"),
            },
            "ec2.delete-network-interfaces" => Sim::DeleteEnis,
            other => panic!("no simulation for action {other}"),
        }
    }

    /// Whether the real action polls (overrides `still_pending`); the others wait for nothing and
    /// make no call there.
    fn polls(self) -> bool {
        !matches!(
            self,
            Sim::DeregisterTaskDefinitions
                | Sim::DeleteRepository
                | Sim::CancelRotation
                | Sim::DeleteSecret
        )
    }

    /// The fixed interval of the AWS CLI waiter a person would use for this wait.
    fn waiter_interval(self) -> Option<Duration> {
        match self {
            // aws ecs wait tasks-stopped: every 6 s.
            Sim::StopTasks => Some(Duration::from_secs(6)),
            // aws ecs wait services-inactive: every 15 s.
            Sim::DeleteServices => Some(Duration::from_secs(15)),
            // aws cloudformation wait stack-delete-complete: every 30 s.
            Sim::DeleteStack(_) => Some(Duration::from_secs(30)),
            // No CLI waiter: looking again every 30 s.
            Sim::DeleteEnis => Some(Duration::from_secs(30)),
            _ => None,
        }
    }
}

/// API calls of one step.
#[derive(Clone, Copy, Debug, Default)]
struct Calls {
    find: u32,
    act: u32,
    poll: u32,
}

impl Calls {
    fn total(&self) -> u32 {
        self.find + self.act + self.poll
    }
    fn add(&mut self, other: &Calls) {
        self.find += other.find;
        self.act += other.act;
        self.poll += other.poll;
    }
}

/// One forced wait: when it began (the call that started the change, or the first `NotYet`), when
/// AWS finished, when a poll first said so.
#[derive(Clone, Debug)]
struct Wait {
    step: String,
    resource: String,
    began: Instant,
    completes: Option<Instant>,
    noticed: Option<Instant>,
}

/// The simulated account, shared by every step of a run.
struct World {
    lat: Latencies,
    service_desired: u32,
    service_deleted: Option<Instant>,
    /// When each task is STOPPED (`None`: still running, no StopTask yet).
    tasks: [Option<Instant>; TASKS],
    revisions: [bool; REVISIONS],
    cluster: bool,
    repository: bool,
    secret: bool,
    /// The secret's rotation is on (its function may still be called).
    rotating: bool,
    /// When each stack's deletion completes (`None`: not being deleted).
    stacks: BTreeMap<Stack, Option<Instant>>,
    enis: [bool; ENIS],
    waits: Vec<Wait>,
    calls: BTreeMap<String, Calls>,
    violations: Vec<String>,
}

impl World {
    fn new(lat: Latencies) -> World {
        World {
            lat,
            service_desired: 1,
            service_deleted: None,
            tasks: [None; TASKS],
            revisions: [true; REVISIONS],
            cluster: true,
            repository: true,
            secret: true,
            rotating: true,
            stacks: BTreeMap::from([(Stack::Rotation, None), (Stack::Main, None)]),
            enis: [true; ENIS],
            waits: Vec::new(),
            calls: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    fn calls(&mut self, step: &str) -> &mut Calls {
        self.calls.entry(step.to_string()).or_default()
    }

    fn tasks_stopped_at(&self) -> Option<Instant> {
        self.tasks
            .iter()
            .try_fold(None::<Instant>, |latest, t| Some(latest.max(Some((*t)?))))
            .flatten()
    }

    fn all_tasks_stopped(&self, now: Instant) -> bool {
        self.tasks.iter().all(|t| t.is_some_and(|t| t <= now))
    }

    fn service_inactive_at(&self) -> Option<Instant> {
        let deleted = self.service_deleted?;
        // DRAINING until its tasks have stopped, then INACTIVE.
        Some(self.tasks_stopped_at().map_or(deleted, |t| t.max(deleted)))
    }

    fn stack_done(&self, stack: Stack) -> Option<Instant> {
        self.stacks[&stack]
    }

    /// When Lambda lets go of its interfaces: a fixed time after the rotation stack is gone.
    fn enis_released_at(&self) -> Option<Instant> {
        Some(self.stack_done(Stack::Rotation)? + self.lat.eni_release)
    }

    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    fn find(&self, sim: Sim, kind: &str, now: Instant) -> Vec<Resource> {
        let r = |id: &str| Resource::new(kind, id, id, "simulated");
        match sim {
            Sim::StopTasks => {
                let mut found = Vec::new();
                if self.service_desired > 0 {
                    found.push(Resource::new(
                        "ECS service",
                        SERVICE_ID,
                        SERVICE_ID,
                        "simulated",
                    ));
                }
                for (i, t) in self.tasks.iter().enumerate() {
                    if t.is_none() {
                        found.push(r(&format!("task/{i}")));
                    }
                }
                found
            }
            Sim::DeleteServices if self.service_deleted.is_none() => vec![r(SERVICE_ID)],
            Sim::DeregisterTaskDefinitions => (0..REVISIONS)
                .filter(|&i| self.revisions[i])
                .map(|i| r(&format!("task-definition/FargateTaskDemo:{}", i + 1)))
                .collect(),
            Sim::DeleteCluster if self.cluster => vec![r("cluster/FargateClusterDemo")],
            Sim::DeleteRepository if self.repository => {
                vec![r("repository/secrets-manager-rds-demo")]
            }
            Sim::CancelRotation if self.secret && self.rotating => {
                vec![r("secret/secrets-manager-fargate-demo-db-secret")]
            }
            Sim::DeleteSecret if self.secret => {
                vec![r("secret/secrets-manager-fargate-demo-db-secret")]
            }
            Sim::DeleteStack(stack) => match self.stack_done(stack) {
                Some(done) if done <= now => Vec::new(),
                _ => vec![r(&format!("stack/{stack:?}"))],
            },
            Sim::DeleteEnis => (0..ENIS)
                .filter(|&i| self.enis[i])
                .map(|i| r(&format!("eni-{i:017}")))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn act(&mut self, sim: Sim, step: &str, resource: &Resource, now: Instant) -> Acted {
        let wait = |completes: Option<Instant>| Wait {
            step: step.to_string(),
            resource: resource.id.clone(),
            began: now,
            completes,
            noticed: None,
        };
        match sim {
            Sim::StopTasks if resource.id == SERVICE_ID => {
                self.service_desired = 0;
                Acted::Done("scaled to 0".into())
            }
            Sim::StopTasks => {
                let i: usize = resource.id["task/".len()..].parse().expect("a task id");
                let stops = now + self.lat.task_stop;
                self.tasks[i] = Some(stops);
                self.waits.push(wait(Some(stops)));
                Acted::Done("stop requested".into())
            }
            Sim::DeleteServices => {
                if self.service_desired > 0 {
                    self.violation(format!(
                        "{step}: deleted a service still at desired count {}",
                        self.service_desired
                    ));
                }
                self.service_deleted = Some(now);
                Acted::Done("deleted".into())
            }
            Sim::DeregisterTaskDefinitions => {
                let revision: usize = resource
                    .id
                    .rsplit(':')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a revision");
                self.revisions[revision - 1] = false;
                Acted::Done("deregistered".into())
            }
            Sim::DeleteCluster => {
                if !self.all_tasks_stopped(now)
                    || self.service_inactive_at().is_none_or(|t| t > now)
                {
                    self.violation(format!(
                        "{step}: deleted the cluster while it had services or tasks"
                    ));
                }
                self.cluster = false;
                // AWS answers DeleteCluster with the cluster INACTIVE (no capacity providers
                // here): the real action does not poll to confirm it.
                Acted::Finished("deleted".into())
            }
            Sim::DeleteRepository => {
                self.repository = false;
                Acted::Done("deleted".into())
            }
            Sim::CancelRotation => {
                self.rotating = false;
                Acted::Finished("rotation cancelled".into())
            }
            Sim::DeleteSecret => {
                // The real action cancels the rotation first when no step did.
                self.rotating = false;
                self.secret = false;
                Acted::Done("deletion scheduled".into())
            }
            Sim::DeleteStack(stack) => {
                if self.stack_done(stack).is_some() {
                    return Acted::Done("deletion already in progress".into());
                }
                if stack == Stack::Main
                    && (self.enis.iter().any(|&e| e) || !self.all_tasks_stopped(now))
                {
                    self.violation(format!(
                        "{step}: deleted the main stack while interfaces were still in its VPC"
                    ));
                }
                if stack == Stack::Rotation && self.rotating {
                    self.violation(format!("{step}: deleted the rotation stack before the secret's rotation was cancelled"));
                }
                let latency = match stack {
                    Stack::Rotation => self.lat.rotation_stack,
                    Stack::Main => self.lat.main_stack,
                };
                let done = now + latency;
                self.stacks.insert(stack, Some(done));
                self.waits.push(wait(Some(done)));
                Acted::Done("deletion started".into())
            }
            Sim::DeleteEnis => {
                let i: usize = resource.id["eni-".len()..]
                    .parse()
                    .expect("an interface id");
                if self.enis_released_at().is_some_and(|at| at <= now) {
                    self.enis[i] = false;
                    // EC2 deletes an interface within the call: the real action does not poll.
                    return Acted::Finished("deleted".into());
                }
                if !self.waits.iter().any(|w| w.resource == resource.id) {
                    self.waits.push(wait(None));
                }
                Acted::NotYet("in use by AWS Lambda until AWS releases it".into())
            }
        }
    }

    fn still_pending(&mut self, sim: Sim, acted: &[Resource], now: Instant) -> Vec<Pending> {
        let mut pending = Vec::new();
        for resource in acted {
            let status = match sim {
                Sim::StopTasks if resource.id == SERVICE_ID => None,
                Sim::StopTasks => {
                    let i: usize = resource.id["task/".len()..].parse().expect("a task id");
                    self.tasks[i]
                        .is_none_or(|t| t > now)
                        .then_some("DEPROVISIONING")
                }
                Sim::DeleteServices => self
                    .service_inactive_at()
                    .is_none_or(|t| t > now)
                    .then_some("DRAINING"),
                Sim::DeleteStack(stack) => self
                    .stack_done(stack)
                    .is_none_or(|t| t > now)
                    .then_some("DELETE_IN_PROGRESS"),
                Sim::DeleteEnis => {
                    let i: usize = resource.id["eni-".len()..]
                        .parse()
                        .expect("an interface id");
                    let held = self.enis_released_at().is_none_or(|at| at > now);
                    (self.enis[i] && held).then_some("in-use")
                }
                _ => None,
            };
            match status {
                Some(status) => pending.push(Pending {
                    id: resource.id.clone(),
                    status: status.into(),
                }),
                None => {
                    let released = self.enis_released_at();
                    if let Some(w) = self
                        .waits
                        .iter_mut()
                        .find(|w| w.resource == resource.id && w.noticed.is_none())
                    {
                        w.noticed = Some(now);
                        if w.completes.is_none() {
                            w.completes = released;
                        }
                    }
                }
            }
        }
        pending
    }
}

/// A stand-in for one real action: same resource kind, verb and poll policy, answers from the
/// simulated account after one simulated call each.
struct SimulatedAction {
    sim: Sim,
    step: String,
    kind: &'static str,
    verb: &'static str,
    poll: PollPolicy,
    world: Arc<Mutex<World>>,
}

/// How the simulated actions poll.
#[derive(Clone, Copy, Debug)]
enum Polling {
    /// Each real action's own `poll_policy` (what teardown does).
    Teardown,
    /// The fixed interval of the AWS CLI waiter.
    Waiters,
    /// Always this interval (a near-ideal reference).
    Every(Duration),
    /// Each action's own policy, but Lambda's interfaces polled every 30 s from the start.
    EniEvery30s,
}

/// A variant BENCHMARKS.md discusses: Lambda holds its interfaces for many minutes, so the ramp
/// from 5 s only adds polls there.
fn eni_every_30s(sim: Sim, real: PollPolicy) -> PollPolicy {
    match sim {
        Sim::DeleteEnis => PollPolicy {
            first: Duration::from_secs(30),
            cap: Duration::from_secs(30),
        },
        _ => real,
    }
}

impl SimulatedAction {
    fn new(step: &PlannedStep, polling: Polling, world: &Arc<Mutex<World>>) -> SimulatedAction {
        let sim = Sim::of(step);
        let real = step.built.poll_policy();
        let fixed = |d: Duration| PollPolicy { first: d, cap: d };
        SimulatedAction {
            sim,
            step: step.id.clone(),
            kind: step.built.resource_kind(),
            verb: step.built.verb(),
            poll: match polling {
                Polling::Teardown => real,
                Polling::Waiters => sim.waiter_interval().map_or(real, fixed),
                Polling::Every(d) => fixed(d),
                Polling::EniEvery30s => eni_every_30s(sim, real),
            },
            world: world.clone(),
        }
    }

    async fn call(&self) -> std::sync::MutexGuard<'_, World> {
        let latency = self.world.lock().expect("world").lat.call;
        tokio::time::sleep(latency).await;
        self.world.lock().expect("world")
    }
}

#[async_trait]
impl Action for SimulatedAction {
    fn resource_kind(&self) -> &'static str {
        self.kind
    }

    fn verb(&self) -> &'static str {
        self.verb
    }

    async fn find(&self, _aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let mut world = self.call().await;
        world.calls(&self.step).find += 1;
        Ok(world.find(self.sim, self.kind, Instant::now()))
    }

    async fn act(&self, _aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        let mut world = self.call().await;
        world.calls(&self.step).act += 1;
        Ok(world.act(self.sim, &self.step, resource, Instant::now()))
    }

    async fn still_pending(
        &self,
        _aws: &Aws,
        acted: &[Resource],
    ) -> Result<Vec<Pending>, AwsError> {
        if !self.sim.polls() {
            return Ok(Vec::new());
        }
        let mut world = self.call().await;
        world.calls(&self.step).poll += 1;
        Ok(world.still_pending(self.sim, acted, Instant::now()))
    }

    fn poll_policy(&self) -> PollPolicy {
        self.poll
    }
}

// ---- running a scenario ------------------------------------------------------------------------

/// Clients for `ActionStep`; the simulated actions never call them.
fn offline_aws() -> Arc<Aws> {
    offline_aws_with(Default::default())
}

/// The clients, built offline with `options` (nothing is sent: the simulations make no call).
fn offline_aws_with(options: teardown::aws::AwsOptions) -> Arc<Aws> {
    let config = SdkConfig::builder()
        .region(Region::new("us-west-2"))
        .behavior_version(BehaviorVersion::latest())
        .build();
    Arc::new(Aws::from_sdk_config(&config, Mode::Apply, options).expect("offline clients"))
}

/// Binds a planned step to its simulated action through the real adapter, as `Plan::bind` binds
/// it to the real one.
fn step_node(
    plan: &Plan,
    step: PlannedStep,
    after: Vec<String>,
    polling: Polling,
    world: &Arc<Mutex<World>>,
    aws: &Arc<Aws>,
) -> StepNode {
    let task = |step: &PlannedStep| -> Arc<dyn Task> {
        let action = SimulatedAction::new(step, polling, world);
        Arc::new(ActionStep::new(
            Arc::new(action),
            aws.clone(),
            plan.protect_tag.as_str(),
            vec![],
        ))
    };
    let mut node = plan.step_node(step, &task);
    node.after = after;
    node
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// The plan's DAG.
    Dag,
    /// The workshop's instructions, one after another.
    Chain,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    shape: Shape,
    polling: Polling,
}

const TEARDOWN: Scenario = Scenario {
    name: "teardown: plan DAG, each action's poll policy",
    shape: Shape::Dag,
    polling: Polling::Teardown,
};
const SEQUENTIAL: Scenario = Scenario {
    name: "baseline: instructions in order, CLI waiters",
    shape: Shape::Chain,
    polling: Polling::Waiters,
};
const DAG_WAITERS: Scenario = Scenario {
    name: "plan DAG, CLI waiters' fixed polling",
    shape: Shape::Dag,
    polling: Polling::Waiters,
};
const ENI_30S: Scenario = Scenario {
    name: "variant: teardown, Lambda ENIs polled every 30 s from the start",
    shape: Shape::Dag,
    polling: Polling::EniEvery30s,
};
const DAG_IDEAL: Scenario = Scenario {
    name: "plan DAG, polling every 10 ms (reference)",
    shape: Shape::Dag,
    polling: Polling::Every(Duration::from_millis(10)),
};

/// What a simulated run measured, in virtual time from its start.
struct Measured {
    wall: Duration,
    bound: Duration,
    /// (step, started, finished)
    timeline: Vec<(String, Duration, Duration)>,
    bound_finish: BTreeMap<String, Duration>,
    calls: BTreeMap<String, Calls>,
    /// (step, resource, length, lateness)
    waits: Vec<(String, String, Duration, Duration)>,
    violations: Vec<String>,
    failures: Vec<String>,
}

impl Measured {
    fn ratio(&self) -> f64 {
        self.wall.as_secs_f64() / self.bound.as_secs_f64()
    }

    fn total_calls(&self) -> Calls {
        let mut all = Calls::default();
        for c in self.calls.values() {
            all.add(c);
        }
        all
    }

    /// Waits noticed later than max(2 s, 5% of their length).
    fn late_waits(&self) -> usize {
        self.waits
            .iter()
            .filter(|(_, _, length, late)| *late > allowed_lateness(*length))
            .count()
    }
}

fn allowed_lateness(length: Duration) -> Duration {
    Duration::from_secs(2).max(length.mul_f64(0.05))
}

fn simulate(plan: &Plan, aws: &Arc<Aws>, scenario: Scenario, lat: Latencies) -> Measured {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    runtime.block_on(async {
        let world = Arc::new(Mutex::new(World::new(lat)));
        let selected = plan.select(&Default::default()).expect("every step").dag;
        let order: Vec<(String, Sim, Vec<String>)>;
        let dag = match scenario.shape {
            Shape::Dag => {
                order = selected
                    .in_order()
                    .map(|s| (s.id.clone(), Sim::of(s), s.after.clone()))
                    .collect();
                selected.map(|step| {
                    let after = step.after.clone();
                    step_node(plan, step, after, scenario.polling, &world, aws)
                })
            }
            Shape::Chain => {
                let mut nodes = Vec::new();
                let mut links = Vec::new();
                for (i, id) in WORKSHOP_ORDER.iter().enumerate() {
                    let step = selected
                        .get(id)
                        .expect("a step of the workshop plan")
                        .clone();
                    let after: Vec<String> = if i == 0 {
                        Vec::new()
                    } else {
                        vec![WORKSHOP_ORDER[i - 1].to_string()]
                    };
                    links.push((step.id.clone(), Sim::of(&step), after.clone()));
                    nodes.push(step_node(plan, step, after, scenario.polling, &world, aws));
                }
                assert_eq!(
                    nodes.len(),
                    selected.len(),
                    "the chain has every step of the plan"
                );
                order = links;
                Dag::build(nodes).expect("a chain is a DAG")
            }
        };
        let (bound, bound_finish) = lower_bound(&order, &lat);

        let (sink, mut events) = EventSink::channel();
        let collector = tokio::spawn(async move {
            let mut begun = BTreeMap::new();
            let mut timeline = Vec::new();
            let mut failures = Vec::new();
            while let Some(event) = events.recv().await {
                match event.kind {
                    EventKind::StepStarted { step, .. } => {
                        begun.insert(step, event.elapsed);
                    }
                    EventKind::StepSucceeded { step, .. } => {
                        let began = begun.get(&step).copied().unwrap_or_default();
                        timeline.push((step, began, event.elapsed));
                    }
                    EventKind::StepFailed { step, error, .. } => {
                        failures.push(format!("{step}: {error}"))
                    }
                    EventKind::StepSkipped { step, reason } => {
                        failures.push(format!("{step}: skipped, {reason}"))
                    }
                    _ => {}
                }
            }
            (timeline, failures)
        });
        let options = RunOptions {
            plan_name: plan.name.clone(),
            ..RunOptions::default()
        };
        let summary = engine::run(&dag, &options, &sink, &CancellationToken::new()).await;
        drop(sink);
        let (timeline, failures) = collector.await.expect("the event collector");
        let world = world.lock().expect("world");
        let waits = world
            .waits
            .iter()
            .map(|w| {
                let completes = w.completes.expect("every wait ended");
                let noticed = w.noticed.expect("every wait was noticed");
                (
                    w.step.clone(),
                    w.resource.clone(),
                    completes - w.began,
                    noticed.saturating_duration_since(completes),
                )
            })
            .collect();
        Measured {
            wall: summary.duration,
            bound,
            timeline,
            bound_finish,
            calls: world.calls.clone(),
            waits,
            violations: world.violations.clone(),
            failures,
        }
    })
}

/// The earliest each step could finish, with every call taking `lat.call` and made one after
/// another as the adapter makes them (one find, one act per resource, and for the actions that
/// wait, one read whose answer comes at or after the end of the wait), and every wait noticed the
/// instant it ends. `steps` are in an order where each comes after what it waits for.
fn lower_bound(
    steps: &[(String, Sim, Vec<String>)],
    lat: &Latencies,
) -> (Duration, BTreeMap<String, Duration>) {
    let call = lat.call;
    let mut finish: BTreeMap<String, Duration> = BTreeMap::new();
    let mut tasks_stopped = Duration::ZERO;
    let mut rotation_done = None;
    for (id, sim, after) in steps {
        let start = after.iter().map(|d| finish[d]).max().unwrap_or_default();
        let found = start + call;
        let end = match sim {
            Sim::StopTasks => {
                // Scale the service to 0, then stop each task.
                let last_stop = found + call * (1 + TASKS as u32);
                tasks_stopped = last_stop + lat.task_stop;
                (last_stop + call).max(tasks_stopped)
            }
            Sim::DeleteServices => {
                let deleted = found + call;
                (deleted + call).max(tasks_stopped.max(deleted))
            }
            Sim::DeregisterTaskDefinitions => found + call * REVISIONS as u32,
            // Deleted within the call: no confirming poll.
            Sim::DeleteCluster => found + call,
            Sim::DeleteRepository | Sim::CancelRotation | Sim::DeleteSecret => found + call,
            Sim::DeleteStack(stack) => {
                let deleting = found + call;
                let done = deleting
                    + match stack {
                        Stack::Rotation => lat.rotation_stack,
                        Stack::Main => lat.main_stack,
                    };
                if *stack == Stack::Rotation {
                    rotation_done = Some(done);
                }
                (deleting + call).max(done)
            }
            Sim::DeleteEnis => {
                let released = rotation_done
                    .expect("the rotation stack goes before its interfaces")
                    + lat.eni_release;
                // Each delete succeeds only if its answer comes once Lambda has let go.
                // Each delete succeeds only if its answer comes once Lambda has let go, and
                // finishes within its call.
                let mut t = found;
                for _ in 0..ENIS {
                    t = (t + call).max(released);
                }
                t
            }
        };
        finish.insert(id.clone(), end);
    }
    let total = finish.values().copied().max().unwrap_or_default();
    (total, finish)
}

// ---- part 2: the engine alone, real time -------------------------------------------------------

/// A plan of `n` ECR steps in layers of `width`, each step after two of the layer before.
fn generated_plan(n: usize, width: usize) -> String {
    let mut text = String::with_capacity(n * 110);
    text.push_str("name = \"generated\"\n[defaults]\ntimeout = \"5m\"\n\n");
    for i in 0..n {
        let _ = write!(
            text,
            "[steps.s{i:05}]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"repo-{i:05}\" }}\n"
        );
        if i >= width {
            let layer = i / width * width - width;
            let a = i - width;
            let b = layer + (i - layer + 37) % width;
            let _ = writeln!(text, "after = [\"s{a:05}\", \"s{b:05}\"]");
        }
        text.push('\n');
    }
    text
}

struct Noop;

#[async_trait]
impl Task for Noop {
    async fn run(&self, _ctx: &StepContext) -> Result<StepOutput, StepError> {
        Ok(StepOutput::default())
    }
}

struct EngineMeasured {
    steps: usize,
    edges: usize,
    parse: Duration,
    bind: Duration,
    run: Duration,
    events: usize,
    succeeded: usize,
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Validates the plan, binds it to no-op tasks and runs it, timing each part.
fn engine_once(text: &str) -> EngineMeasured {
    let clock = std::time::Instant::now();
    let plan =
        plan::parse(Path::new("generated.toml"), text, &[]).expect("the generated plan is valid");
    let parse = clock.elapsed();

    let clock = std::time::Instant::now();
    let noop: Arc<dyn Task> = Arc::new(Noop);
    let selected = plan.select(&Default::default()).expect("every step").dag;
    let edges = selected.in_order().map(|s| s.after.len()).sum();
    let dag = selected.map(|s| StepNode {
        id: s.id,
        action: s.action,
        after: s.after,
        timeout: s.timeout,
        retry: s.retry,
        on_failure: None,
        task: noop.clone(),
    });
    let bind = clock.elapsed();

    // As the CLI runs it: a multi-threaded runtime, the default parallelism (8).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (run, events, succeeded) = runtime.block_on(async {
        let (sink, mut receiver) = EventSink::channel();
        // A listener drains the events as a renderer would.
        let listener = tokio::spawn(async move {
            let mut count = 0;
            while receiver.recv().await.is_some() {
                count += 1;
            }
            count
        });
        let clock = std::time::Instant::now();
        let summary = engine::run(
            &dag,
            &RunOptions::default(),
            &sink,
            &CancellationToken::new(),
        )
        .await;
        let run = clock.elapsed();
        drop(sink);
        let events = listener.await.expect("the listener");
        (run, events, summary.counts().0)
    });
    EngineMeasured {
        steps: dag.len(),
        edges,
        parse,
        bind,
        run,
        events,
        succeeded,
    }
}

/// One size of the parse-scaling measurement.
struct ParseMeasured {
    steps: usize,
    kib: usize,
    /// `toml_edit`'s parse of the text alone.
    toml: Vec<Duration>,
    /// `plan::parse`: the TOML, deserializing, validating every step, the DAG.
    parse: Vec<Duration>,
}

/// Times `plan::parse`, and the TOML parse inside it, on generated plans of each size.
fn parse_scaling(sizes: &[(usize, usize)]) -> Vec<ParseMeasured> {
    sizes
        .iter()
        .map(|&(steps, repeats)| {
            let text = generated_plan(steps, (steps / 10).max(1));
            let mut toml = Vec::new();
            let mut parse = Vec::new();
            for _ in 0..repeats {
                let clock = std::time::Instant::now();
                let document = toml_edit::ImDocument::parse(text.as_str()).expect("valid TOML");
                toml.push(clock.elapsed());
                drop(document);
                let clock = std::time::Instant::now();
                let plan = plan::parse(Path::new("generated.toml"), &text, &[])
                    .expect("the generated plan is valid");
                parse.push(clock.elapsed());
                assert_eq!(plan.dag.len(), steps);
            }
            ParseMeasured {
                steps,
                kib: text.len() / 1024,
                toml,
                parse,
            }
        })
        .collect()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// The fewest polls that notice the end of a wait within max(2 s, 5% of its length) when the
/// length is not known in advance: each poll comes max(2 s, 5% of the time waited so far) after
/// the one before (any later, and an end just after the earlier poll would be noticed too late),
/// the first at once; the count runs until a poll comes at or after `length`.
fn fewest_polls(length: Duration) -> u32 {
    let (mut waited, mut polls) = (0.0f64, 1);
    while waited < length.as_secs_f64() {
        waited += f64::max(2.0, 0.05 * waited);
        polls += 1;
    }
    polls
}

// ---- the sweep ---------------------------------------------------------------------------------

#[derive(Default)]
struct WaitStats {
    count: u32,
    in_time: u32,
    late: Duration,
    max_late: Duration,
    allowed: Duration,
    polls: u32,
}

struct Sweep {
    ratios: Vec<f64>,
    polls: Vec<u32>,
    walls: Vec<Duration>,
    all_in_time: usize,
    per_wait: BTreeMap<String, WaitStats>,
}

/// `runs` runs with the long waits spread over a polling interval; the same spread for every
/// scenario (a fixed seed).
fn sweep(plan: &Plan, aws: &Arc<Aws>, scenario: Scenario, runs: usize) -> Sweep {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Sweep {
        ratios: Vec::new(),
        polls: Vec::new(),
        walls: Vec::new(),
        all_in_time: 0,
        per_wait: BTreeMap::new(),
    };
    for _ in 0..runs {
        let lat = Latencies {
            task_stop: NOMINAL.task_stop + rng.below(Duration::from_secs(6)),
            rotation_stack: NOMINAL.rotation_stack + rng.below(Duration::from_secs(30)),
            main_stack: NOMINAL.main_stack + rng.below(Duration::from_secs(30)),
            eni_release: NOMINAL.eni_release + rng.below(Duration::from_secs(30)),
            ..NOMINAL
        };
        let m = simulate(plan, aws, scenario, lat);
        check(scenario, &m);
        out.ratios.push(m.ratio());
        out.polls.push(m.total_calls().poll);
        out.walls.push(m.wall);
        out.all_in_time += usize::from(m.late_waits() == 0);
        let mut counted = std::collections::BTreeSet::new();
        for (step, _, length, late) in &m.waits {
            let w = out.per_wait.entry(step.clone()).or_default();
            let allowed = allowed_lateness(*length);
            w.count += 1;
            w.in_time += u32::from(*late <= allowed);
            w.late += *late;
            w.max_late = w.max_late.max(*late);
            w.allowed += allowed;
            if counted.insert(step.clone()) {
                w.polls += m.calls.get(step).map_or(0, |c| c.poll);
            }
        }
    }
    out
}

// ---- output ------------------------------------------------------------------------------------

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn clock(d: Duration) -> String {
    let s = d.as_secs_f64();
    let m = (s / 60.0).floor();
    format!("{}m {:05.2}s", m as u64, s - m * 60.0)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A small xorshift: the sweep is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, max).
    fn below(&mut self, max: Duration) -> Duration {
        max.mul_f64((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

fn main() {
    // `cargo bench` passes `--bench`. Without it (`cargo test --all-targets` runs bench targets
    // too) this is a smoke run: every part once, small, so that the tests stay quick.
    let full = std::env::args().any(|a| a == "--bench");
    let (steps, repeats, runs) = if full {
        (10_000, 3, 200)
    } else {
        (1_000, 1, 5)
    };
    // Part 2b: plan sizes for the parse's scaling, each with its number of runs.
    let parse_sizes: &[(usize, usize)] = if full {
        &[(1_000, 5), (10_000, 3), (100_000, 1)]
    } else {
        &[(100, 1), (1_000, 1)]
    };
    // Part 3: labs in the big sweep, and the parallelisms tried (8 is the CLI's default).
    let (labs, parallelisms): (usize, &[u16]) = if full {
        (100, &[8, 64, 128, 256])
    } else {
        (5, &[8])
    };
    // The engine part runs first, so that the peak RSS is its own.
    let rss_before = proc_status_kib("VmRSS:");
    let text = generated_plan(steps, steps / 10);
    let engine: Vec<EngineMeasured> = (0..repeats).map(|_| engine_once(&text)).collect();
    let hwm = proc_status_kib("VmHWM:");
    let scaling = parse_scaling(parse_sizes);

    let plan = match plan::load(Path::new(WORKSHOP_PLAN), &[]) {
        Ok(plan) => plan,
        Err(e) => panic!("{WORKSHOP_PLAN} does not validate: {e}"),
    };
    let aws = offline_aws();

    println!("# teardown benchmarks\n");
    if !full {
        println!("(smoke run: `cargo bench --profile dev --bench critical_path` runs the full benchmark)\n");
    }
    println!("## 1. Critical path of the workshop plan (virtual time, paused tokio clock)\n");
    println!(
        "Latencies: every API call {}, ECS task stop {}, rotation stack {}, main stack {}, Lambda ENI release {} after the rotation stack is gone.\n",
        ms(NOMINAL.call),
        clock(NOMINAL.task_stop),
        clock(NOMINAL.rotation_stack),
        clock(NOMINAL.main_stack),
        clock(NOMINAL.eni_release),
    );
    println!("| scenario | wall (virtual) | lower bound | ratio | API calls | of which polls | waits late |");
    println!("|---|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for scenario in [TEARDOWN, SEQUENTIAL, DAG_WAITERS, ENI_30S, DAG_IDEAL] {
        let measured = simulate(&plan, &aws, scenario, NOMINAL);
        check(scenario, &measured);
        let calls = measured.total_calls();
        println!(
            "| {} | {} ({}) | {} | {:.4} | {} ({} find, {} act) | {} | {} of {} |",
            scenario.name,
            clock(measured.wall),
            secs(measured.wall),
            clock(measured.bound),
            measured.ratio(),
            calls.total(),
            calls.find,
            calls.act,
            calls.poll,
            measured.late_waits(),
            measured.waits.len(),
        );
        results.push((scenario, measured));
    }
    let teardown = &results[0].1;
    let sequential = &results[1].1;
    println!(
        "\nteardown against the sequential baseline: done {} sooner ({:.1}%), with {} polls against {}.",
        clock(sequential.wall.saturating_sub(teardown.wall)),
        100.0 * (1.0 - teardown.wall.as_secs_f64() / sequential.wall.as_secs_f64()),
        teardown.total_calls().poll,
        sequential.total_calls().poll,
    );

    for (scenario, measured) in &results[..2] {
        println!("\n### {}: steps\n", scenario.name);
        println!(
            "| step | started | finished | earliest possible finish | calls (find/act/poll) |"
        );
        println!("|---|---|---|---|---|");
        let mut timeline = measured.timeline.clone();
        timeline.sort_by_key(|(_, began, end)| (*began, *end));
        for (step, began, end) in timeline {
            let c = measured.calls.get(&step).copied().unwrap_or_default();
            println!(
                "| {step} | {} | {} | {} | {}/{}/{} |",
                clock(began),
                clock(end),
                clock(measured.bound_finish[&step]),
                c.find,
                c.act,
                c.poll
            );
        }
        println!("\n| wait | length | noticed late by | allowed: max(2 s, 5%) | met |");
        println!("|---|---|---|---|---|");
        for (step, resource, length, late) in &measured.waits {
            let allowed = allowed_lateness(*length);
            println!(
                "| {step}: {resource} | {} | {} | {} | {} |",
                clock(*length),
                secs(*late),
                secs(allowed),
                if *late <= allowed { "yes" } else { "no" }
            );
        }
    }

    println!("\n### Polls per wait, and the fewest that could meet max(2 s, 5% of the wait)\n");
    println!("| wait | length | teardown's polls | CLI waiter's polls | fewest for max(2 s, 5%), length not known in advance |");
    println!("|---|---|---|---|---|");
    for step in [
        "stop-tasks",
        "delete-rotation-stack",
        "delete-lambda-enis",
        "delete-main-stack",
    ] {
        let length = teardown
            .waits
            .iter()
            .filter(|w| w.0 == step)
            .map(|w| w.2)
            .max()
            .unwrap_or_default();
        println!(
            "| {step} | {} | {} | {} | {} |",
            clock(length),
            teardown.calls[step].poll,
            sequential.calls[step].poll,
            fewest_polls(length)
        );
    }

    // The nominal latencies are round numbers, and round numbers line up with a fixed 30 s grid:
    // the sweep spreads each long wait over a whole polling interval.
    println!("\n### Sweep: {runs} runs, each long wait lengthened by a uniform random 0-30 s (task stop by 0-6 s)\n");
    println!("| scenario | wall mean | ratio mean | ratio max | runs with ratio <= 1.02 | runs with every wait in time | polls mean | polls max |");
    println!("|---|---|---|---|---|---|---|---|");
    let sweeps: Vec<(Scenario, Sweep)> = [TEARDOWN, SEQUENTIAL, DAG_WAITERS, ENI_30S]
        .into_iter()
        .map(|scenario| (scenario, sweep(&plan, &aws, scenario, runs)))
        .collect();
    for (scenario, sw) in &sweeps {
        let mean = sw.ratios.iter().sum::<f64>() / runs as f64;
        let max = sw.ratios.iter().copied().fold(0.0, f64::max);
        let within = sw.ratios.iter().filter(|&&r| r <= 1.02).count();
        println!(
            "| {} | {} | {mean:.4} | {max:.4} | {within} of {runs} | {} of {runs} | {:.1} | {} |",
            scenario.name,
            clock(sw.walls.iter().sum::<Duration>() / runs as u32),
            sw.all_in_time,
            sw.polls.iter().sum::<u32>() as f64 / runs as f64,
            sw.polls.iter().max().copied().unwrap_or_default(),
        );
    }
    for (scenario, sw) in sweeps.iter().filter(|(s, _)| s.name != DAG_WAITERS.name) {
        println!("\n{}: each wait over the {runs} runs\n", scenario.name);
        println!("| wait | in time | noticed late by, mean | max | allowed, mean | polls of the step, mean |");
        println!("|---|---|---|---|---|---|");
        for (step, w) in &sw.per_wait {
            println!(
                "| {step} | {} of {} | {} | {} | {} | {:.1} |",
                w.in_time,
                w.count,
                secs(w.late / w.count),
                secs(w.max_late),
                secs(w.allowed / w.count),
                w.polls as f64 / runs as f64,
            );
        }
    }

    // The profile decides what part 2 measures: say which one this binary was built with.
    println!(
        "\n## 2. The engine alone (real time, {})\n",
        if cfg!(debug_assertions) {
            "dev profile: unoptimised"
        } else {
            "optimised build"
        }
    );
    let first = &engine[0];
    println!(
        "A generated plan of {} `ecr.delete-repository` steps in 10 layers of {}, each step after two of the layer before ({} edges, {} KiB of TOML); the tasks do nothing. Median and fastest of {repeats} runs.\n",
        first.steps,
        first.steps / 10,
        first.edges,
        text.len() / 1024
    );
    let row = |name: &str, values: Vec<Duration>| {
        let fastest = values.iter().min().copied().unwrap_or_default();
        println!("| {name} | {} | {} |", ms(median(values)), ms(fastest));
    };
    println!("| phase | median | fastest |");
    println!("|---|---|---|");
    row(
        "`plan::parse` (TOML, validation, DAG)",
        engine.iter().map(|e| e.parse).collect(),
    );
    row(
        "`select` + `Dag::map` to `StepNode`s",
        engine.iter().map(|e| e.bind).collect(),
    );
    row(
        &format!(
            "`engine::run`: {} no-op steps, parallelism 8 ({} succeeded, {} events drained)",
            first.steps, first.succeeded, first.events
        ),
        engine.iter().map(|e| e.run).collect(),
    );
    row(
        "total",
        engine.iter().map(|e| e.parse + e.bind + e.run).collect(),
    );
    match (rss_before, hwm) {
        (Some(before), Some(hwm)) => println!(
            "\nPeak RSS of the process (VmHWM) after these runs: {:.1} MiB (RSS at start: {:.1} MiB).",
            hwm as f64 / 1024.0,
            before as f64 / 1024.0
        ),
        _ => println!("\nPeak RSS: /proc/self/status is not readable here."),
    }

    println!(
        "\n### 2b. Plan parsing against plan size ({})\n",
        if cfg!(debug_assertions) {
            "dev profile: unoptimised"
        } else {
            "optimised build"
        }
    );
    println!("The same generated plans at three sizes (10 layers, each step after two of the layer before). Median of the runs; per step, and against the smallest size's time per step (1.00 = linear).\n");
    println!("| steps | KiB of TOML | runs | `plan::parse` | per step | TOML alone (`toml_edit`) | the rest: deserialize, validate, DAG | per step, against the smallest |");
    println!("|---|---|---|---|---|---|---|---|");
    let per_step = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;
    let base = scaling
        .first()
        .map(|m| per_step(median(m.parse.clone()), m.steps))
        .unwrap_or(1.0);
    for m in &scaling {
        let parse = median(m.parse.clone());
        let toml = median(m.toml.clone());
        println!(
            "| {} | {} | {} | {} | {:.1} µs | {} | {} | {:.2} |",
            m.steps,
            m.kib,
            m.parse.len(),
            ms(parse),
            per_step(parse, m.steps),
            ms(toml),
            ms(parse.saturating_sub(toml)),
            per_step(parse, m.steps) / base,
        );
    }

    scale::report(labs, parallelisms);
}

/// The simulation's own consistency: not a measurement.
fn check(scenario: Scenario, m: &Measured) {
    assert!(
        m.failures.is_empty(),
        "{}: steps failed: {:?}",
        scenario.name,
        m.failures
    );
    assert!(
        m.violations.is_empty(),
        "{}: acted out of order: {:?}",
        scenario.name,
        m.violations
    );
    if m.wall < m.bound {
        eprintln!(
            "warning: {}: the run ({}) beat the lower bound ({}): the bound's model is wrong",
            scenario.name,
            secs(m.wall),
            secs(m.bound)
        );
    }
}
