//! The limits on calls per service: every client's HTTP client passes through a gate that paces
//! each attempt to AWS's published rate for its throttling group (a token bucket per group), then
//! bounds the calls in flight to the service, so that many steps at once cannot burst into AWS's
//! throttling and the SDK's retry quota.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// How many calls to one AWS service may be in flight at once, per set of clients ([`Aws`]).
///
/// AWS throttles each API per account and region with a token bucket: a burst, then a refill
/// rate. The rate of calls is paced to those buckets ([`throttling_group`]); this limit bounds
/// what is in flight on top of that, so that a slow answer cannot pile calls up, and it keeps
/// CloudFormation, which publishes no rates and advises working on one stack at a time
/// (<https://repost.aws/knowledge-center/cloudformation-rate-exceeded-error>), to a few calls at
/// once. What AWS still throttles is retried by the SDK (standard mode, 5 attempts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLimits {
    /// CloudFormation, whose limits are the lowest of the services a teardown calls.
    pub cloudformation: usize,
    /// Every other service (EC2, ECS, ECR, Secrets Manager, EventBridge, CloudWatch Logs, SNS,
    /// STS), each on its own.
    pub other: usize,
    /// Whether each attempt is paced to its throttling group's rate ([`throttling_group`]).
    pub rates: RateLimits,
}

impl CallLimits {
    /// The default for CloudFormation.
    pub const DEFAULT_CLOUDFORMATION: usize = 4;
    /// The default for every other service: the default parallelism, so that a plain run is
    /// never held back and only a wider run (a sweep of many labs) is.
    pub const DEFAULT_OTHER: usize = 8;
}

impl Default for CallLimits {
    fn default() -> CallLimits {
        CallLimits {
            cloudformation: CallLimits::DEFAULT_CLOUDFORMATION,
            other: CallLimits::DEFAULT_OTHER,
            rates: RateLimits::Published,
        }
    }
}

/// Whether calls are paced to AWS's rate per throttling group ([`throttling_group`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RateLimits {
    /// Each attempt waits for a token of its group's bucket, a little below AWS's rate.
    #[default]
    Published,
    /// No pacing: only the limit on calls in flight (tests against an emulator that never
    /// throttles, and the bench's comparison).
    Off,
}

/// The share of AWS's rate that teardown allows itself. AWS keeps one bucket per account and
/// region, which other tools may be drawing from too, and a call reaches AWS a variable latency
/// after it leaves: a tenth of headroom keeps a run out of the throttling it paces against.
pub const RATE_HEADROOM: f64 = 0.9;

/// AWS's token bucket for a group of operations: `burst` calls at once, then `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// The bucket's size: calls that may go at once after a quiet spell.
    pub burst: f64,
    /// The refill: calls a second, sustained.
    pub per_second: f64,
}

/// The operations AWS throttles together, their rate, and where the figure comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThrottlingGroup {
    /// E.g. `ECS task definition modify actions`, or an EC2 operation (EC2 throttles each API on
    /// its own).
    pub name: &'static str,
    /// AWS's rate for the group (before [`RATE_HEADROOM`]).
    pub rate: Rate,
    /// `documented: <AWS page>` or `assumed: <why>`.
    pub source: &'static str,
}

const ECS_DOC: &str = "documented: Amazon ECS API Reference, \"Request throttling for the Amazon ECS API\" (docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html)";
const EC2_DOC: &str = "documented: Amazon EC2 Developer Guide, \"Request throttling for the Amazon EC2 API\" (docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html)";
const SECRETS_DOC: &str = "documented: AWS Secrets Manager User Guide, \"AWS Secrets Manager quotas\" (docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html)";

/// The throttling group of an operation of a service (as the SDK names both: `ECS`,
/// `DescribeClusters`), with AWS's rate for it.
///
/// ECS and EC2 publish a bucket and a refill rate for every API; Secrets Manager publishes
/// requests per second (taken here as a bucket of one second's worth). CloudFormation, ECR's
/// control plane, EventBridge, CloudWatch Logs, SNS and STS publish no per-API rates that we
/// found: their figures are assumptions, kept low, and say so. An operation not listed falls in
/// its service's most conservative group.
pub fn throttling_group(service: &str, operation: &str) -> ThrottlingGroup {
    let group = |name, burst, per_second, source| ThrottlingGroup {
        name,
        rate: Rate { burst, per_second },
        source,
    };
    match service {
        "ECS" => match operation {
            "CreateCluster" | "DeleteCluster" | "PutClusterCapacityProviders"
            | "UpdateCluster" | "UpdateClusterSettings" => {
                group("ECS cluster modify actions", 20.0, 1.0, ECS_DOC)
            }
            "DescribeClusters" | "ListClusters" => {
                group("ECS cluster read actions", 50.0, 20.0, ECS_DOC)
            }
            "DeregisterTaskDefinition" | "RegisterTaskDefinition" => {
                group("ECS task definition modify actions", 20.0, 1.0, ECS_DOC)
            }
            "DescribeTaskDefinition" | "ListTaskDefinitions" | "ListTaskDefinitionFamilies" => {
                group("ECS task definition read actions", 50.0, 20.0, ECS_DOC)
            }
            "DeleteTaskDefinitions" => {
                group("ECS task definition deletion actions", 5.0, 1.0, ECS_DOC)
            }
            "TagResource" | "UntagResource" => group("ECS tag modify actions", 20.0, 10.0, ECS_DOC),
            "ListTagsForResource" => group("ECS tag read actions", 50.0, 20.0, ECS_DOC),
            "RunTask" | "StartTask" | "StopTask" | "ExecuteCommand" | "PutAttributes"
            | "DeleteAttributes" | "DeregisterContainerInstance" | "UpdateContainerAgent"
            | "UpdateContainerInstancesStates" => {
                group("ECS cluster resource modify actions", 100.0, 40.0, ECS_DOC)
            }
            "DescribeTasks" | "ListTasks" | "DescribeContainerInstances"
            | "ListContainerInstances" | "ListAttributes" => {
                group("ECS cluster resource read actions", 100.0, 20.0, ECS_DOC)
            }
            "CreateService" | "DeleteService" | "UpdateService" => {
                group("ECS service modify actions", 50.0, 5.0, ECS_DOC)
            }
            "DescribeServices" | "ListServices" => {
                group("ECS service read actions", 100.0, 20.0, ECS_DOC)
            }
            _ => group(
                "ECS other actions",
                20.0,
                1.0,
                "assumed: the lowest rate ECS documents for any group (20, 1/s)",
            ),
        },
        // EC2 throttles each API on its own bucket.
        "EC2" => match operation {
            // Filtered calls draw on the non-mutating bucket (100, 20/s); unfiltered or
            // unpaginated ones on a smaller one. Whichever way the call is made, this is safe.
            "DescribeNetworkInterfaces" => group(
                "EC2 DescribeNetworkInterfaces",
                50.0,
                10.0,
                EC2_DOC,
            ),
            "DeleteNetworkInterface" => group("EC2 DeleteNetworkInterface", 100.0, 5.0, EC2_DOC),
            "CreateTags" => group("EC2 CreateTags", 100.0, 10.0, EC2_DOC),
            "DeleteTags" => group("EC2 DeleteTags", 100.0, 10.0, EC2_DOC),
            op if ["Describe", "List", "Get", "Search"]
                .iter()
                .any(|p| op.starts_with(p)) =>
            {
                group("EC2 non-mutating actions (each API)", 100.0, 20.0, EC2_DOC)
            }
            _ => group("EC2 mutating actions (each API)", 50.0, 5.0, EC2_DOC),
        },
        "Secrets Manager" => match operation {
            "GetSecretValue" | "DescribeSecret" => {
                group("Secrets Manager reads", 10_000.0, 10_000.0, SECRETS_DOC)
            }
            "ListSecrets" => group("Secrets Manager ListSecrets", 100.0, 100.0, SECRETS_DOC),
            "RotateSecret" | "CancelRotateSecret" => group(
                "Secrets Manager RotateSecret and CancelRotateSecret",
                50.0,
                50.0,
                SECRETS_DOC,
            ),
            _ => group(
                "Secrets Manager other control-plane actions",
                50.0,
                50.0,
                "assumed: 50 per second, the rate the quotas page gives every control-plane group it lists",
            ),
        },
        "CloudFormation" => match operation {
            "DeleteStack" | "CreateStack" | "UpdateStack" => group(
                "CloudFormation stack changes",
                10.0,
                2.0,
                "assumed: 10, 2/s (CloudFormation publishes no API rates and advises working on one stack at a time)",
            ),
            _ => group(
                "CloudFormation reads",
                20.0,
                10.0,
                "assumed: 20, 10/s (CloudFormation publishes no API rates)",
            ),
        },
        "ECR" => group(
            "ECR control plane",
            20.0,
            20.0,
            "assumed: 20/s (ECR's quotas page gives rates for image pushes and pulls only)",
        ),
        "STS" => group(
            "STS",
            20.0,
            20.0,
            "assumed: 20/s (teardown calls GetCallerIdentity once a run)",
        ),
        _ => group(
            "other services",
            10.0,
            5.0,
            "assumed: 10, 5/s (EventBridge, CloudWatch Logs and SNS control-plane calls; no published per-API rate found)",
        ),
    }
}

/// A token bucket at [`RATE_HEADROOM`] of a group's rate. A call takes a token, or reserves the
/// next one and sleeps until it is due: callers go in the order they came, and none spins.
#[derive(Debug)]
struct Bucket {
    group: ThrottlingGroup,
    burst: f64,
    per_second: f64,
    /// Tokens (negative: reserved ahead), as of the instant.
    state: Mutex<(f64, tokio::time::Instant)>,
    calls: AtomicU64,
    waited: AtomicU64,
    longest_wait_ms: AtomicU64,
}

impl Bucket {
    fn new(group: ThrottlingGroup) -> Bucket {
        let burst = (group.rate.burst * RATE_HEADROOM).max(1.0);
        Bucket {
            group,
            burst,
            per_second: group.rate.per_second * RATE_HEADROOM,
            state: Mutex::new((burst, tokio::time::Instant::now())),
            calls: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            longest_wait_ms: AtomicU64::new(0),
        }
    }

    /// Takes a token, waiting for it if the bucket is empty. A caller dropped while it waits
    /// loses its reserved token: the bucket errs on the slow side.
    async fn take(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let wait = {
            // Two numbers, consistent after every statement: a poisoned lock is still usable.
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = tokio::time::Instant::now();
            let refilled = now.saturating_duration_since(state.1).as_secs_f64() * self.per_second;
            state.0 = (state.0 + refilled).min(self.burst) - 1.0;
            state.1 = now;
            if state.0 >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-state.0 / self.per_second)
            }
        };
        if !wait.is_zero() {
            self.waited.fetch_add(1, Ordering::Relaxed);
            self.longest_wait_ms
                .fetch_max(wait.as_millis() as u64, Ordering::Relaxed);
            // Only waiting: the step making the call gives its parallelism slot back meanwhile,
            // so that a slow group (1 call a second) cannot hold every slot of a wide run.
            crate::engine::without_slot(tokio::time::sleep(wait)).await;
        }
    }
}

/// How a throttling group's pacing went: calls, how many had to wait, the longest wait.
#[derive(Clone, Debug, PartialEq)]
pub struct PacingReport {
    /// The service, as the SDK names it.
    pub service: String,
    /// The group, its rate and the figure's source.
    pub group: ThrottlingGroup,
    /// Attempts paced by this group.
    pub calls: u64,
    /// Of which waited for a token.
    pub waited: u64,
    /// The longest wait for a token.
    pub longest_wait: Duration,
}

/// The calls in flight to one service: a semaphore of its limit, and counts for reporting.
#[derive(Debug)]
pub(crate) struct ServiceGate {
    service: &'static str,
    limit: usize,
    permits: Arc<tokio::sync::Semaphore>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    rates: RateLimits,
    /// One bucket per throttling group, made at the group's first call.
    buckets: Mutex<HashMap<&'static str, Arc<Bucket>>>,
    timeouts: GateTimeouts,
}

/// The SDK's per-attempt and per-call timeouts, kept by the gate rather than by the SDK, so that
/// they count the time a call spends on the network and in the SDK's backoff, not the time it
/// waits for its turn here: a wide run queues many calls behind AWS's slowest groups (1 a second),
/// and that queue must not time them out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GateTimeouts {
    /// One attempt on the network.
    pub attempt: Option<Duration>,
    /// One call, its attempts and the backoff between them, without the waits at the gate.
    pub call: Option<Duration>,
}

/// When a call's first attempt went out, and how long its attempts have waited at the gate: kept
/// in the call's configuration across its attempts, and handed to each attempt's request.
#[derive(Clone, Debug)]
struct CallClock {
    started: tokio::time::Instant,
    gated: Arc<Mutex<Duration>>,
}

impl Storable for CallClock {
    type Storer = StoreReplace<Self>;
}

impl CallClock {
    /// Adds an attempt's wait at the gate; the total so far.
    fn gated(&self, waited: Duration) -> Duration {
        let mut gated = self.gated.lock().unwrap_or_else(|p| p.into_inner());
        *gated += waited;
        *gated
    }
}

/// One call in flight: holds its permit, and gives it back when the call finishes or is dropped
/// (a cancelled step drops its call's future, and with it this).
pub struct InFlight {
    gate: Arc<ServiceGate>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl ServiceGate {
    fn new(
        service: &'static str,
        limit: usize,
        rates: RateLimits,
        timeouts: GateTimeouts,
    ) -> ServiceGate {
        let limit = limit.max(1);
        ServiceGate {
            service,
            limit,
            permits: Arc::new(tokio::sync::Semaphore::new(limit)),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            rates,
            buckets: Mutex::new(HashMap::new()),
            timeouts,
        }
    }

    fn bucket(&self, operation: &str) -> Arc<Bucket> {
        let group = throttling_group(self.service, operation);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            buckets
                .entry(group.name)
                .or_insert_with(|| Arc::new(Bucket::new(group))),
        )
    }

    /// Lets one attempt of `operation` go: first its throttling group's token (so that a call
    /// waiting on a slow group holds no permit that another group's calls could use), then a
    /// permit of the service.
    async fn admit(self: Arc<ServiceGate>, operation: Option<&str>) -> InFlight {
        if self.rates == RateLimits::Published {
            // An attempt whose operation is unknown (none is, from the SDK's clients) is paced
            // with its service's most conservative group.
            self.bucket(operation.unwrap_or("")).take().await;
        }
        self.enter().await
    }

    fn pacing(&self) -> Vec<PacingReport> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .values()
            .map(|b| PacingReport {
                service: self.service.to_string(),
                group: b.group,
                calls: b.calls.load(Ordering::Relaxed),
                waited: b.waited.load(Ordering::Relaxed),
                longest_wait: Duration::from_millis(b.longest_wait_ms.load(Ordering::Relaxed)),
            })
            .collect()
    }

    async fn enter(self: Arc<ServiceGate>) -> InFlight {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            // Waiting for a call to the service to finish: the step gives its slot back meanwhile.
            Err(_) => crate::engine::without_slot(Arc::clone(&self.permits).acquire_owned())
                .await
                .expect("the semaphore of a service is never closed"),
        };
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        InFlight {
            gate: self,
            _permit: permit,
        }
    }
}

impl Drop for InFlight {
    // Runs before the permit (a field) is released, so the count never exceeds the limit.
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The limit and the calls in flight of each service of one set of clients. Cheap to clone
/// (shared).
#[derive(Clone, Debug, Default)]
pub struct CallConcurrency {
    gates: Arc<Mutex<Vec<Arc<ServiceGate>>>>,
}

impl CallConcurrency {
    pub(crate) fn add(
        &self,
        service: &'static str,
        limit: usize,
        rates: RateLimits,
        timeouts: GateTimeouts,
    ) -> Arc<ServiceGate> {
        let gate = Arc::new(ServiceGate::new(service, limit, rates, timeouts));
        self.gates
            .lock()
            .expect("call concurrency poisoned")
            .push(Arc::clone(&gate));
        gate
    }

    fn gate(&self, service: &str) -> Option<Arc<ServiceGate>> {
        self.gates
            .lock()
            .expect("call concurrency poisoned")
            .iter()
            .find(|g| g.service == service)
            .cloned()
    }

    /// The timeouts the gate of `service` keeps for its calls (see [`GateTimeouts`]).
    pub fn timeouts(&self, service: &str) -> Option<GateTimeouts> {
        self.gate(service).map(|g| g.timeouts)
    }

    /// The limit of `service` (as the SDK names it: `CloudFormation`, `ECS`, `Secrets Manager`),
    /// or `None` when its calls are not limited.
    pub fn limit(&self, service: &str) -> Option<usize> {
        self.gate(service).map(|g| g.limit)
    }

    /// Calls to `service` in flight now.
    pub fn in_flight(&self, service: &str) -> usize {
        self.gate(service)
            .map_or(0, |g| g.in_flight.load(Ordering::SeqCst))
    }

    /// The most calls to `service` that were ever in flight at once.
    pub fn peak(&self, service: &str) -> usize {
        self.gate(service)
            .map_or(0, |g| g.peak.load(Ordering::SeqCst))
    }

    /// Waits until one call of `operation` to `service` (as the SDK names them: `ECS`,
    /// `StopTask`) may go, as the clients' own attempts do: its throttling group's token, then a
    /// permit of the service, held until the returned value is dropped. `None` for a service
    /// these clients do not have. For simulations that make no HTTP call (the benches).
    pub async fn admit(&self, service: &str, operation: &str) -> Option<InFlight> {
        let gate = self.gate(service)?;
        Some(gate.admit(Some(operation)).await)
    }

    /// How each throttling group's pacing went, by service and group.
    pub fn pacing(&self) -> Vec<PacingReport> {
        let gates = self.gates.lock().expect("call concurrency poisoned");
        let mut reports: Vec<PacingReport> = gates.iter().flat_map(|g| g.pacing()).collect();
        reports.sort_by(|a, b| (&a.service, a.group.name).cmp(&(&b.service, b.group.name)));
        reports
    }

    /// The most calls in flight at once, for each service called at least once.
    pub fn peaks(&self) -> BTreeMap<String, usize> {
        self.gates
            .lock()
            .expect("call concurrency poisoned")
            .iter()
            .map(|g| (g.service.to_string(), g.peak.load(Ordering::SeqCst)))
            .filter(|(_, peak)| *peak > 0)
            .collect()
    }
}

/// The HTTP client of one service's client: the SDK's own, behind that service's gate.
#[derive(Debug)]
pub(crate) struct LimitedHttpClient {
    pub(crate) inner: SharedHttpClient,
    pub(crate) gate: Arc<ServiceGate>,
}

impl HttpClient for LimitedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(LimitedConnector {
            inner: self.inner.http_connector(settings, components),
            gate: Arc::clone(&self.gate),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// Sends one attempt once its throttling group has a token and its service a free permit, and
/// holds the permit until the answer (its status and headers) is back. The SDK calls this once
/// per attempt, so a retry waits for a token and a permit again, and the backoff before it holds
/// none. The attempt and call timeouts are kept here ([`GateTimeouts`]), without the waits at the
/// gate: a call waits for a token about (calls queued in its group) / (the group's rate), which
/// for a hundred labs' deregistrations at 1 a second is well over a minute.
#[derive(Debug)]
pub(crate) struct LimitedConnector {
    pub(crate) inner: SharedHttpConnector,
    pub(crate) gate: Arc<ServiceGate>,
}

impl HttpConnector for LimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let gate = Arc::clone(&self.gate);
        HttpConnectorFuture::new(async move {
            let tag = request.extension::<AttemptTag>().cloned();
            let arrived = tokio::time::Instant::now();
            let _in_flight = Arc::clone(&gate)
                .admit(tag.as_ref().map(|t| t.operation.as_str()))
                .await;
            let now = tokio::time::Instant::now();
            let call_left = match (&tag, gate.timeouts.call) {
                (Some(tag), Some(call)) => {
                    let gated = tag.clock.gated(now - arrived);
                    Some((tag.clock.started + call + gated).saturating_duration_since(now))
                }
                _ => None,
            };
            let limit = match (gate.timeouts.attempt, call_left) {
                (Some(a), Some(c)) => Some(a.min(c)),
                (a, c) => a.or(c),
            };
            let Some(limit) = limit else {
                return inner.call(request).await;
            };
            let timed_out = || {
                ConnectorError::timeout(
                    format!(
                        "no answer within {} (the call's time on the network, its waits for its turn not counted)",
                        crate::util::short_duration(limit)
                    )
                    .into(),
                )
            };
            if limit.is_zero() {
                return Err(timed_out());
            }
            match tokio::time::timeout(limit, inner.call(request)).await {
                Ok(answer) => answer,
                Err(_) => Err(timed_out()),
            }
        })
    }
}

/// The operation an attempt belongs to and its call's clock, put on its request for the gate.
#[derive(Clone, Debug)]
pub(crate) struct AttemptTag {
    operation: String,
    clock: CallClock,
}

impl AttemptTag {
    /// The tag of a first attempt of `operation`, its call starting now (for tests).
    #[cfg(test)]
    pub(crate) fn new(operation: &str) -> AttemptTag {
        AttemptTag {
            operation: operation.to_string(),
            clock: CallClock {
                started: tokio::time::Instant::now(),
                gated: Arc::default(),
            },
        }
    }
}

/// Tags each attempt's request (an extension, never sent) with its operation and its call's
/// clock, so that the gate, which sees only HTTP requests, can pace it by throttling group and
/// keep its timeouts.
#[derive(Debug)]
pub(crate) struct NameOperations;

impl Intercept for NameOperations {
    fn name(&self) -> &'static str {
        "teardown::NameOperations"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let clock = match cfg.load::<CallClock>() {
            Some(clock) => clock.clone(),
            None => {
                let clock = CallClock {
                    started: tokio::time::Instant::now(),
                    gated: Arc::default(),
                };
                cfg.interceptor_state().store_put(clock.clone());
                clock
            }
        };
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_default();
        context
            .request_mut()
            .add_extension(AttemptTag { operation, clock });
        Ok(())
    }
}

/// The HTTP client the SDK would give a client built from `sdk_config`: the configuration's own,
/// or else the SDK's default, built the way aws-smithy-runtime builds it (hyper 1 with rustls on
/// aws-lc, proxy settings from the environment, the runtime's sleep for timeouts). That function
/// is private to aws-smithy-runtime, so its few lines are repeated here; the per-service limit
/// wraps whatever this returns.
pub(crate) fn base_http_client(sdk_config: &SdkConfig) -> Option<SharedHttpClient> {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    if let Some(client) = sdk_config.http_client() {
        return Some(client);
    }
    Some(
        Builder::new().build_with_connector_fn(|settings, runtime_components| {
            let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ));
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = runtime_components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        }),
    )
}
