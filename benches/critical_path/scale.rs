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

use super::*;
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

/// The throttling group of every operation the simulated actions make. Figures AWS documents are
/// cited; the rest are assumptions, and BENCHMARKS.md says which.
pub(super) fn limit_of(operation: &str) -> Limit {
    let limit = |group, capacity, per_second, source| Limit {
        group,
        capacity,
        per_second,
        source,
    };
    match operation {
        "ec2:DescribeNetworkInterfaces" => limit(
            "ec2 non-mutating (Describe*)",
            100.0,
            20.0,
            "documented: EC2 API request throttling, bucket 100, refill 20/s",
        ),
        "ec2:DeleteNetworkInterface" => limit(
            "ec2 mutating",
            200.0,
            5.0,
            "assumed: EC2's mutating-actions bucket as we recall it (200, 5/s), not confirmed",
        ),
        "ecs:DescribeClusters" => limit(
            "ecs cluster reads",
            50.0,
            20.0,
            "documented: ECS request throttling, cluster reads bucket 50; refill 20/s assumed",
        ),
        "ecs:ListServices" | "ecs:DescribeServices" => {
            limit("ecs service reads", 50.0, 20.0, "assumed: as cluster reads")
        }
        "ecs:ListTasks" | "ecs:DescribeTasks" => {
            limit("ecs task reads", 50.0, 20.0, "assumed: as cluster reads")
        }
        "ecs:ListTaskDefinitions" | "ecs:DescribeTaskDefinition" => limit(
            "ecs task definition reads",
            50.0,
            20.0,
            "assumed: as cluster reads",
        ),
        "ecs:UpdateService" | "ecs:DeleteService" => {
            limit("ecs service changes", 20.0, 5.0, "assumed: 20, 5/s")
        }
        "ecs:StopTask" => limit("ecs task changes", 20.0, 5.0, "assumed: 20, 5/s"),
        "ecs:DeleteCluster" => limit("ecs cluster changes", 20.0, 5.0, "assumed: 20, 5/s"),
        "ecs:DeregisterTaskDefinition" => {
            limit("ecs task definition changes", 20.0, 5.0, "assumed: 20, 5/s")
        }
        "ecr:DescribeRepositories" | "ecr:ListImages" | "ecr:ListTagsForResource" => limit(
            "ecr reads",
            20.0,
            20.0,
            "assumed: 20/s (ECR's quotas page lists only image push/pull rates)",
        ),
        "ecr:DeleteRepository" => limit("ecr changes", 20.0, 20.0, "assumed: 20/s"),
        "secretsmanager:CancelRotateSecret" => limit(
            "secretsmanager RotateSecret+CancelRotateSecret",
            50.0,
            50.0,
            "documented: Secrets Manager quotas, 50 per second combined",
        ),
        "secretsmanager:ListSecrets" | "secretsmanager:DeleteSecret" => limit(
            "secretsmanager control plane",
            50.0,
            50.0,
            "assumed: 50/s, as every control-plane rate Secrets Manager lists",
        ),
        "cloudformation:DescribeStacks" | "cloudformation:ListStackResources" => limit(
            "cloudformation reads",
            20.0,
            10.0,
            "assumed: 20, 10/s (CloudFormation documents no API rates)",
        ),
        "cloudformation:DeleteStack" => limit(
            "cloudformation DeleteStack",
            10.0,
            2.0,
            "assumed: 10, 2/s (CloudFormation documents no API rates)",
        ),
        other => panic!("no throttling group for {other}"),
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
        (Sim::DeleteSecret, Find) => vec!["secretsmanager:ListSecrets"],
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

/// Part 1's simulated action, whose calls go through the account's rate limits first.
struct Throttled {
    inner: SimulatedAction,
    account: Arc<Mutex<Account>>,
}

impl Throttled {
    /// Makes the calls of one find, act or poll, one after another, each retried as the SDK would.
    /// The last call's 50 ms are spent by the simulated action itself, which then answers.
    async fn calls(&self, operations: Vec<&'static str>) -> Result<(), AwsError> {
        let latency = self.inner.world.lock().expect("world").lat.call;
        let last = operations.len() - 1;
        for (i, operation) in operations.into_iter().enumerate() {
            let mut attempt = 1;
            loop {
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
                    }
                    break;
                }
                // The throttling error takes a round trip too.
                tokio::time::sleep(latency).await;
                let delay = self
                    .account
                    .lock()
                    .expect("account")
                    .retry_after_throttle(operation, attempt);
                match delay {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => {
                        let (service, name) = operation.split_once(':').expect("service:Name");
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
        Ok(())
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
        self.calls(operations(self.inner.sim, Phase::Find, None))
            .await?;
        self.inner.find(aws).await
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        self.calls(operations(self.inner.sim, Phase::Act, Some(resource)))
            .await?;
        self.inner.act(aws, resource).await
    }

    async fn still_pending(&self, aws: &Aws, acted: &[Resource]) -> Result<Vec<Pending>, AwsError> {
        if !self.inner.sim.polls() {
            return Ok(Vec::new());
        }
        self.calls(operations(self.inner.sim, Phase::Poll, None))
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
    pub wall: Duration,
    pub steps: usize,
    /// Steps that failed, with why.
    pub failed: Vec<String>,
    /// Steps skipped because a step they wait for failed.
    pub skipped: usize,
    pub violations: usize,
    pub calls: u64,
    pub throttled: u64,
    pub gave_up: u64,
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
    aws: &Arc<Aws>,
    labs: usize,
    parallelism: u16,
    limited: bool,
) -> SweepMeasured {
    let plan = &sweep.plan;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    runtime.block_on(async {
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
        SweepMeasured {
            labs,
            parallelism,
            limited,
            wall: summary.duration,
            steps,
            failed,
            skipped,
            violations,
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

/// Prints part 3: 1 lab and `many` labs, at the CLI's default parallelism and at larger ones.
pub(super) fn report(aws: &Arc<Aws>, many: usize, parallelisms: &[u16]) {
    let sweep = sweep_plan();
    println!(
        "\n## 3. A sweep of many labs under AWS's rate limits (virtual time; BENCHMARKS.md, 4b)\n"
    );
    println!(
        "The merged DAG of `{SWEEP_PLAN}` (9 steps a lab), each lab at part 1's nominal latencies; every simulated call is the real action's API calls, 50 ms each, against per-account token buckets; throttled calls are retried as the SDK's standard strategy does (5 attempts, jittered exponential backoff from 1 s to 20 s, a 500-token retry quota per service).\n"
    );
    println!("| labs | parallelism | rate limits | wall (virtual) | ratio to 1 lab | steps | failed / skipped | API calls | throttled answers | calls the SDK gave up on | steps retried |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut detail = Vec::new();
    for &parallelism in parallelisms {
        for limited in [true, false] {
            let one = simulate_sweep(&sweep, aws, 1, parallelism, limited);
            let all = simulate_sweep(&sweep, aws, many, parallelism, limited);
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
                    "| {} | {} | {} | {wall} | {ratio} | {} | {} / {} | {} | {} | {} | {} |",
                    m.labs,
                    m.parallelism,
                    if m.limited { "yes" } else { "none" },
                    m.steps,
                    m.failed.len(),
                    m.skipped,
                    m.calls,
                    m.throttled,
                    m.gave_up,
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
            "\n{} labs, parallelism {}: calls and throttled answers per throttling group\n",
            m.labs, m.parallelism
        );
        println!("| group | calls | throttled |");
        println!("|---|---|---|");
        for (group, calls) in &m.calls_by_group {
            println!(
                "| {group} | {calls} | {} |",
                m.throttled_by_group.get(group).copied().unwrap_or(0)
            );
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
