//! Part 3 of the bench: a sweep of many labs in virtual time, under AWS's rate limits.
//!
//! The sweep's merged DAG is built as `teardown sweep` builds it: every lab gets its own copy of
//! the steps of `tests/it/plans/tagged-labs-sweep.toml`, step ids prefixed with the lab
//! (`Lab-007/stop-tasks`), all copies in one DAG under one parallelism. Each lab has its own
//! simulated account objects (part 1's `World`, at the nominal latencies); what the labs share is
//! the account's API rate limits: one token bucket per throttling group, per account and region,
//! as AWS keeps them.
//!
//! Each simulated find, act and poll makes the API calls the real action makes (counted by the
//! proxy in part 3 of BENCHMARKS.md against moto: e.g. stop-tasks' find is DescribeClusters,
//! ListServices, DescribeServices, ListTasks, DescribeTasks), one after another, 50 ms each. A call
//! finding its bucket empty is answered with a throttling error after its 50 ms, and the simulated
//! client retries it as the SDK's standard retry strategy does with teardown's settings
//! (aws-smithy-runtime 1.16: 5 attempts, a delay uniform in [0, min(1 s x 2^(n-1), 20 s)), a
//! client-side retry quota of 500 tokens per service, of which a throttled retry costs 5). When
//! the SDK gives up, the action fails with the same `ThrottlingException` the real client would
//! return, and the engine retries the step as the plan says.
//!
//! Each simulated call first passes teardown's own gate, the real one of `src/aws/limits.rs`
//! (`CallConcurrency::admit`): its throttling group's token bucket (unless pacing is off) and the
//! limit on calls in flight per service. As in the real clients, each attempt passes it, and the
//! call timeout (2 minutes, kept by the gate without the waits for a turn) is modelled: a call
//! that has not been answered within it fails with a timeout, which the engine retries like any
//! transient error.

use super::*;
use teardown::aws::{AwsOptions, CallLimits, RateLimits};
use teardown::engine::{Handler, StepOutcome};
use teardown::sweep::SweepPlan;

const SWEEP_PLAN: &str = "tests/it/plans/tagged-labs-sweep.toml";

/// One throttling group: a token bucket of `capacity` tokens refilled at `per_second`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limit {
    pub group: &'static str,
    pub capacity: f64,
    pub per_second: f64,
    /// Where the figure comes from ("documented: ..." or "assumed: ...").
    pub source: &'static str,
}

/// The throttling group of every operation the simulated actions make, at AWS's own rate: the
/// table teardown paces itself by (`teardown::aws::throttling_group`, which cites the AWS page of
/// every documented figure and says which are assumed), at 100% where teardown allows itself 90%.
/// One table for both sides, so that the bench cannot flatter the pacing with a gentler AWS.
pub(super) fn limit_of(operation: &str) -> Limit {
    let (prefix, name) = operation.split_once(':').expect("service:Name");
    let group = teardown::aws::throttling_group(sdk_service(prefix), name);
    Limit {
        group: group.name,
        capacity: group.rate.burst,
        per_second: group.rate.per_second,
        source: group.source,
    }
}

/// The operations every throttling group covers, for the table in the output.
pub(super) const OPERATIONS: [&str; 24] = [
    "cloudformation:DescribeStacks",
    "cloudformation:ListStackResources",
    "cloudformation:DeleteStack",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ecs:DescribeClusters",
    "ecs:ListServices",
    "ecs:DescribeServices",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:ListTaskDefinitions",
    "ecs:DescribeTaskDefinition",
    "ecs:UpdateService",
    "ecs:DeleteService",
    "ecs:StopTask",
    "ecs:DeleteCluster",
    "ecs:DeregisterTaskDefinition",
    "ecr:DescribeRepositories",
    "ecr:ListImages",
    "ecr:ListTagsForResource",
    "ecr:DeleteRepository",
    "secretsmanager:ListSecrets",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:DeleteSecret",
];

#[derive(Clone, Copy, Debug)]
enum Phase {
    Find,
    Act,
    Poll,
}

/// The API calls one simulated find, act or poll stands for, in the order the real action makes
/// them (as counted through the proxy against moto, BENCHMARKS.md part 3).
fn operations(sim: Sim, phase: Phase, resource: Option<&Resource>) -> Vec<&'static str> {
    use Phase::*;
    match (sim, phase) {
        (Sim::StopTasks, Find) => vec![
            "ecs:DescribeClusters",
            "ecs:ListServices",
            "ecs:DescribeServices",
            "ecs:ListTasks",
            "ecs:DescribeTasks",
        ],
        (Sim::StopTasks, Act) if resource.is_some_and(|r| r.id == SERVICE_ID) => {
            vec!["ecs:UpdateService"]
        }
        (Sim::StopTasks, Act) => vec!["ecs:StopTask"],
        (Sim::StopTasks, Poll) => vec!["ecs:DescribeTasks"],
        (Sim::DeleteServices, Find) => vec![
            "ecs:DescribeClusters",
            "ecs:ListServices",
            "ecs:DescribeServices",
        ],
        (Sim::DeleteServices, Act) => vec!["ecs:UpdateService", "ecs:DeleteService"],
        (Sim::DeleteServices, Poll) => vec!["ecs:DescribeServices"],
        (Sim::DeregisterTaskDefinitions, Find) => {
            let mut ops = vec!["ecs:ListTaskDefinitions"];
            ops.extend(["ecs:DescribeTaskDefinition"; REVISIONS]);
            ops
        }
        (Sim::DeregisterTaskDefinitions, _) => vec!["ecs:DeregisterTaskDefinition"],
        (Sim::DeleteCluster, Find) => vec!["ecs:DescribeClusters"],
        (Sim::DeleteCluster, Act) => vec![
            "ecs:ListServices",
            "ecs:DescribeServices",
            "ecs:ListTasks",
            "ecs:DescribeTasks",
            "ecs:DeleteCluster",
        ],
        (Sim::DeleteCluster, Poll) => vec!["ecs:DescribeClusters"],
        (Sim::DeleteRepository, Find) => vec![
            "ecr:DescribeRepositories",
            "ecr:ListImages",
            "ecr:ListTagsForResource",
        ],
        (Sim::DeleteRepository, _) => vec!["ecr:DeleteRepository"],
        (Sim::CancelRotation | Sim::DeleteSecret, Find) => vec!["secretsmanager:ListSecrets"],
        (Sim::CancelRotation, _) => vec!["secretsmanager:CancelRotateSecret"],
        // Without a cancel-rotation step (the sweep plan simulated here has none), the deletion
        // cancels the rotation itself.
        (Sim::DeleteSecret, _) => vec![
            "secretsmanager:CancelRotateSecret",
            "secretsmanager:DeleteSecret",
        ],
        (Sim::DeleteStack(_), Act) => vec!["cloudformation:DeleteStack"],
        (Sim::DeleteStack(_), _) => vec!["cloudformation:DescribeStacks"],
        (Sim::DeleteEnis, Find) => vec![
            "cloudformation:ListStackResources",
            "ec2:DescribeNetworkInterfaces",
        ],
        (Sim::DeleteEnis, Act) => vec![
            "ec2:DescribeNetworkInterfaces",
            "ec2:DeleteNetworkInterface",
        ],
        (Sim::DeleteEnis, Poll) => vec!["ec2:DescribeNetworkInterfaces"],
    }
}

struct Bucket {
    limit: Limit,
    tokens: f64,
    at: Instant,
}

/// The SDK's client-side retry quota (aws-smithy-runtime 1.16, standard strategy, legacy costs).
const RETRY_QUOTA: f64 = 500.0;
const THROTTLED_RETRY_COST: f64 = 5.0;
const MAX_ATTEMPTS: u32 = 5;

/// What the labs share: the account's rate limits, and the SDK's retry quota. The quota is kept per
/// retry partition, which is the service by default, and the sweep's labs share one set of clients
/// per region: one quota per service for all labs.
pub(super) struct Account {
    limited: bool,
    buckets: BTreeMap<&'static str, Bucket>,
    quota: BTreeMap<&'static str, f64>,
    rng: Rng,
    calls: BTreeMap<&'static str, u64>,
    throttled: BTreeMap<&'static str, u64>,
    /// Calls the SDK gave up on (attempts or retry quota exhausted).
    gave_up: u64,
    /// Calls not answered within the SDK's call timeout (waits for teardown's gate included).
    timed_out: u64,
}

impl Account {
    pub(super) fn new(limited: bool) -> Account {
        Account {
            limited,
            buckets: BTreeMap::new(),
            quota: BTreeMap::new(),
            rng: Rng(0x2545_F491_4F6C_DD1D),
            calls: BTreeMap::new(),
            throttled: BTreeMap::new(),
            gave_up: 0,
            timed_out: 0,
        }
    }

    /// One request arriving at AWS: true if its bucket had a token.
    fn admit(&mut self, operation: &'static str, now: Instant) -> bool {
        *self.calls.entry(operation).or_default() += 1;
        if !self.limited {
            return true;
        }
        let limit = limit_of(operation);
        let bucket = self.buckets.entry(limit.group).or_insert(Bucket {
            limit,
            tokens: limit.capacity,
            at: now,
        });
        let refilled = (now - bucket.at).as_secs_f64() * bucket.limit.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(bucket.limit.capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            *self.throttled.entry(operation).or_default() += 1;
            false
        }
    }

    /// The SDK's delay before attempt `attempt + 1`, or `None` when it gives up.
    fn retry_after_throttle(&mut self, operation: &'static str, attempt: u32) -> Option<Duration> {
        let quota = self.quota_of(operation);
        if attempt >= MAX_ATTEMPTS || *quota < THROTTLED_RETRY_COST {
            self.gave_up += 1;
            return None;
        }
        *quota -= THROTTLED_RETRY_COST;
        let ceiling = Duration::from_secs(1 << (attempt - 1).min(5)).min(Duration::from_secs(20));
        Some(self.rng.below(ceiling))
    }

    /// A call answered: a retry that worked gives its tokens back; a first try earns one.
    fn succeeded(&mut self, operation: &'static str, retried: bool) {
        let back = if retried { THROTTLED_RETRY_COST } else { 1.0 };
        let quota = self.quota_of(operation);
        *quota = (*quota + back).min(RETRY_QUOTA);
    }

    /// The retry quota of the operation's service.
    fn quota_of(&mut self, operation: &'static str) -> &mut f64 {
        let service = operation.split_once(':').map_or(operation, |(s, _)| s);
        self.quota.entry(service).or_insert(RETRY_QUOTA)
    }
}

/// Part 1's simulated action, whose calls pass teardown's gate and then the account's rate
/// limits.
struct Throttled {
    inner: SimulatedAction,
    account: Arc<Mutex<Account>>,
    aws: Arc<Aws>,
}

/// The timeout for one call, its attempts and the SDK's backoff included, the waits at teardown's
/// gate not (teardown's default).
const CALL_TIMEOUT: Duration = teardown::aws::CallTimeouts::DEFAULT_OPERATION;

/// The SDK's name of a service, from the bench's `service:Operation` prefix.
fn sdk_service(prefix: &str) -> &'static str {
    match prefix {
        "ec2" => "EC2",
        "ecs" => "ECS",
        "ecr" => "ECR",
        "cloudformation" => "CloudFormation",
        "secretsmanager" => "Secrets Manager",
        other => panic!("no client for {other}"),
    }
}

impl Throttled {
    /// Makes the calls of one find, act or poll, one after another, each retried as the SDK would.
    /// The last call's 50 ms are spent by the simulated action itself, which then answers: the
    /// returned permit keeps that call in flight meanwhile.
    async fn calls(
        &self,
        operations: Vec<&'static str>,
    ) -> Result<Option<teardown::aws::InFlight>, AwsError> {
        let latency = self.inner.world.lock().expect("world").lat.call;
        let last = operations.len() - 1;
        for (i, operation) in operations.into_iter().enumerate() {
            let (prefix, name) = operation.split_once(':').expect("service:Name");
            let service = sdk_service(prefix);
            let started = Instant::now();
            let mut gated = Duration::ZERO;
            let mut attempt = 1;
            loop {
                // teardown's gate, as the real connector passes it for every attempt.
                let arrived = Instant::now();
                let permit = self.aws.concurrency.admit(service, name).await;
                gated += arrived.elapsed();
                if started.elapsed() - gated + latency > CALL_TIMEOUT {
                    self.account.lock().expect("account").timed_out += 1;
                    return Err(AwsError {
                        class: teardown::aws::ErrorClass::Retryable,
                        code: None,
                        operation: format!("{service}.{name}"),
                        message: "the AWS endpoint did not answer in time (call timeout)".into(),
                    });
                }
                let admitted = self
                    .account
                    .lock()
                    .expect("account")
                    .admit(operation, Instant::now());
                if admitted {
                    self.account
                        .lock()
                        .expect("account")
                        .succeeded(operation, attempt > 1);
                    if i < last {
                        tokio::time::sleep(latency).await;
                        break;
                    }
                    return Ok(permit);
                }
                // The throttling error takes a round trip too.
                tokio::time::sleep(latency).await;
                drop(permit);
                let delay = self
                    .account
                    .lock()
                    .expect("account")
                    .retry_after_throttle(operation, attempt);
                match delay {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => {
                        return Err(AwsError {
                            class: teardown::aws::ErrorClass::Retryable,
                            code: Some("ThrottlingException".into()),
                            operation: format!("{service}.{name}"),
                            message: "Rate exceeded".into(),
                        });
                    }
                }
                attempt += 1;
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl Action for Throttled {
    fn resource_kind(&self) -> &'static str {
        self.inner.resource_kind()
    }

    fn verb(&self) -> &'static str {
        self.inner.verb()
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let _in_flight = self
            .calls(operations(self.inner.sim, Phase::Find, None))
            .await?;
        self.inner.find(aws).await
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        let _in_flight = self
            .calls(operations(self.inner.sim, Phase::Act, Some(resource)))
            .await?;
        self.inner.act(aws, resource).await
    }

    async fn still_pending(&self, aws: &Aws, acted: &[Resource]) -> Result<Vec<Pending>, AwsError> {
        if !self.inner.sim.polls() {
            return Ok(Vec::new());
        }
        let _in_flight = self
            .calls(operations(self.inner.sim, Phase::Poll, None))
            .await?;
        self.inner.still_pending(aws, acted).await
    }

    fn poll_policy(&self) -> PollPolicy {
        self.inner.poll_policy()
    }
}

/// What one simulated sweep measured.
pub(super) struct SweepMeasured {
    pub labs: usize,
    pub parallelism: u16,
    pub limited: bool,
    /// teardown's pacing per throttling group.
    pub paced: bool,
    pub wall: Duration,
    pub steps: usize,
    /// Steps that failed, with why.
    pub failed: Vec<String>,
    /// Steps skipped because a step they wait for failed.
    pub skipped: usize,
    pub violations: usize,
    /// What the first out-of-order act was, if any.
    pub first_violation: Option<String>,
    pub calls: u64,
    pub throttled: u64,
    pub gave_up: u64,
    /// Calls that hit the SDK's call timeout.
    pub timed_out: u64,
    /// Per group paced by teardown: (service group, calls, calls that waited, longest wait).
    pub pacing: Vec<(String, u64, u64, Duration)>,
    /// Steps that needed more than one attempt.
    pub retried_steps: usize,
    pub throttled_by_group: BTreeMap<&'static str, u64>,
    pub calls_by_group: BTreeMap<&'static str, u64>,
}

impl SweepMeasured {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped == 0 && self.violations == 0
    }
}

/// Runs the sweep's merged DAG of `labs` copies of the stale-labs plan in paused time.
pub(super) fn simulate_sweep(
    sweep: &SweepPlan,
    labs: usize,
    parallelism: u16,
    limited: bool,
    paced: bool,
) -> SweepMeasured {
    let plan = &sweep.plan;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    runtime.block_on(async {
        // A set of clients of its own for every run, as `teardown sweep` makes one per region: its
        // buckets start full, on this runtime's virtual clock.
        let aws = &offline_aws_with(AwsOptions {
            call_limits: CallLimits {
                rates: if paced {
                    RateLimits::Published
                } else {
                    RateLimits::Off
                },
                ..CallLimits::default()
            },
            ..AwsOptions::default()
        });
        let account = Arc::new(Mutex::new(Account::new(limited)));
        let mut worlds = Vec::new();
        let mut nodes = Vec::new();
        for lab in 0..labs {
            let lab_id = format!("Lab-{lab:03}");
            let world = Arc::new(Mutex::new(World::new(NOMINAL)));
            let task = |step: &PlannedStep| -> Arc<dyn Task> {
                let action = Throttled {
                    inner: SimulatedAction::new(step, Polling::Teardown, &world),
                    account: account.clone(),
                    aws: aws.clone(),
                };
                Arc::new(ActionStep::new(
                    Arc::new(action),
                    aws.clone(),
                    plan.protect_tag.as_str(),
                    vec![],
                ))
            };
            let prefix = |id: &str| format!("{lab_id}/{id}");
            let selected = plan.select(&Default::default()).expect("every step").dag;
            for step in selected.in_order() {
                let node = plan.step_node(step.clone(), &task);
                nodes.push(StepNode {
                    id: prefix(&node.id),
                    after: node.after.iter().map(|a| prefix(a)).collect(),
                    on_failure: node.on_failure.map(|h| Handler {
                        id: prefix(&h.id),
                        ..h
                    }),
                    ..node
                });
            }
            worlds.push(world);
        }
        let dag = Dag::build(nodes).expect("copies of a DAG under distinct prefixes");
        let steps = dag.len();
        let (sink, mut events) = EventSink::channel();
        let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
        let options = RunOptions {
            parallelism: parallelism.into(),
            plan_name: format!("{} ({labs} labs)", plan.name),
            ..RunOptions::default()
        };
        let summary = engine::run(&dag, &options, &sink, &CancellationToken::new()).await;
        drop(sink);
        drain.await.expect("the event drain");
        let failed = summary
            .steps
            .iter()
            .filter(|s| matches!(s.outcome, StepOutcome::Failed { .. }))
            .map(|s| format!("{}: {:?}", s.id, s.outcome))
            .collect();
        let skipped = summary
            .steps
            .iter()
            .filter(|s| matches!(s.outcome, StepOutcome::Skipped { .. }))
            .count();
        let retried_steps = summary.steps.iter().filter(|s| s.attempts > 1).count();
        let first_violation = worlds.iter().enumerate().find_map(|(lab, w)| {
            let w = w.lock().expect("world");
            w.violations.first().map(|v| format!("Lab-{lab:03}: {v}"))
        });
        let violations = worlds
            .iter()
            .map(|w| w.lock().expect("world").violations.len())
            .sum();
        let account = account.lock().expect("account");
        let mut throttled_by_group = BTreeMap::new();
        for (op, n) in &account.throttled {
            *throttled_by_group.entry(limit_of(op).group).or_default() += n;
        }
        let mut calls_by_group = BTreeMap::new();
        for (op, n) in &account.calls {
            *calls_by_group.entry(limit_of(op).group).or_default() += n;
        }
        let pacing = aws
            .concurrency
            .pacing()
            .into_iter()
            .map(|p| (p.group.name.to_string(), p.calls, p.waited, p.longest_wait))
            .collect();
        SweepMeasured {
            labs,
            parallelism,
            limited,
            paced,
            timed_out: account.timed_out,
            pacing,
            wall: summary.duration,
            steps,
            failed,
            skipped,
            violations,
            first_violation,
            calls: account.calls.values().sum(),
            throttled: account.throttled.values().sum(),
            gave_up: account.gave_up,
            retried_steps,
            throttled_by_group,
            calls_by_group,
        }
    })
}

/// Loads the sweep plan whose steps the merged DAG copies.
pub(super) fn sweep_plan() -> SweepPlan {
    match SweepPlan::load(Path::new(SWEEP_PLAN), &[]) {
        Ok(plan) => plan,
        Err(e) => panic!("{SWEEP_PLAN} does not validate: {e}"),
    }
}

/// Prints part 3: 1 lab and `many` labs, at the CLI's default parallelism and at larger ones, with
/// teardown's pacing (the default), without it, and without AWS's limits.
pub(super) fn report(many: usize, parallelisms: &[u16]) {
    let sweep = sweep_plan();
    println!(
        "\n## 3. A sweep of many labs under AWS's rate limits (virtual time; BENCHMARKS.md, 4b)\n"
    );
    println!(
        "The merged DAG of `{SWEEP_PLAN}` (9 steps a lab), each lab at part 1's nominal latencies; every simulated call is the real action's API calls, 50 ms each, through teardown's own gate (`CallConcurrency::admit`: the token bucket of its throttling group at 90% of AWS's rate, when paced, then the limit on calls in flight per service), against per-account token buckets; throttled calls are retried as the SDK's standard strategy does (5 attempts, jittered exponential backoff from 1 s to 20 s, a 500-token retry quota per service), and a call not answered within the call timeout ({}, the waits at the gate not counted) fails.\n",
        secs(CALL_TIMEOUT)
    );
    println!("| labs | parallelism | AWS's rate limits | teardown's pacing | wall (virtual) | ratio to 1 lab | steps | failed / skipped | API calls | throttled answers | calls the SDK gave up on | calls timed out | steps retried |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut detail = Vec::new();
    for &parallelism in parallelisms {
        for (limited, paced) in [(true, true), (true, false), (false, false)] {
            let one = simulate_sweep(&sweep, 1, parallelism, limited, paced);
            let all = simulate_sweep(&sweep, many, parallelism, limited, paced);
            for m in [&one, &all] {
                let ratio = if one.ok() && m.ok() {
                    format!("{:.3}", m.wall.as_secs_f64() / one.wall.as_secs_f64())
                } else {
                    "- (a run failed)".into()
                };
                let wall = if m.ok() {
                    format!("{} ({})", clock(m.wall), secs(m.wall))
                } else {
                    format!(
                        "FAILED: {} steps failed, {} skipped, {} out-of-order acts",
                        m.failed.len(),
                        m.skipped,
                        m.violations
                    )
                };
                println!(
                    "| {} | {} | {} | {} | {wall} | {ratio} | {} | {} / {} | {} | {} | {} | {} | {} |",
                    m.labs,
                    m.parallelism,
                    if m.limited { "yes" } else { "none" },
                    if m.paced { "on" } else { "off" },
                    m.steps,
                    m.failed.len(),
                    m.skipped,
                    m.calls,
                    m.throttled,
                    m.gave_up,
                    m.timed_out,
                    m.retried_steps,
                );
            }
            if limited {
                detail.push(all);
            }
        }
    }
    for m in &detail {
        println!(
            "\n{} labs, parallelism {}, pacing {}: calls and throttled answers per throttling group\n",
            m.labs,
            m.parallelism,
            if m.paced { "on" } else { "off" }
        );
        println!("| group | calls | throttled |");
        println!("|---|---|---|");
        for (group, calls) in &m.calls_by_group {
            println!(
                "| {group} | {calls} | {} |",
                m.throttled_by_group.get(group).copied().unwrap_or(0)
            );
        }
        if m.paced {
            println!("\nteardown's pacing (its groups, at 90% of AWS's rates):\n");
            println!(
                "| teardown's group | attempts | of which waited for a token | longest wait |"
            );
            println!("|---|---|---|---|");
            for (group, calls, waited, longest) in &m.pacing {
                println!("| {group} | {calls} | {waited} | {} |", secs(*longest));
            }
        }
        if let Some(first) = m.failed.first() {
            let mut by_step: BTreeMap<&str, usize> = BTreeMap::new();
            for failed in &m.failed {
                let plain = failed
                    .split_once('/')
                    .and_then(|(_, rest)| rest.split_once(':'))
                    .map_or(failed.as_str(), |(step, _)| step);
                *by_step.entry(plain).or_default() += 1;
            }
            let counts: Vec<String> = by_step.iter().map(|(s, n)| format!("{s} {n}")).collect();
            println!("\nfailed steps: {}; the first: {first}", counts.join(", "));
        }
        if let Some(violation) = &m.first_violation {
            println!(
                "\nout of order ({} in all), the first: {violation}",
                m.violations
            );
        }
    }
    println!("\nThe throttling groups and their figures:\n");
    println!("| operations | group | bucket | refill | source |");
    println!("|---|---|---|---|---|");
    let mut groups: BTreeMap<&str, (Limit, Vec<&str>)> = BTreeMap::new();
    for op in OPERATIONS {
        let limit = limit_of(op);
        let entry = groups.entry(limit.group).or_insert((limit, Vec::new()));
        if !entry.1.contains(&op) {
            entry.1.push(op);
        }
    }
    for (group, (limit, ops)) in groups {
        println!(
            "| {} | {group} | {} | {}/s | {} |",
            ops.join(", "),
            limit.capacity,
            limit.per_second,
            limit.source
        );
    }
}
