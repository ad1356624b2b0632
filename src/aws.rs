//! SDK configuration, one client per service, the read-only guard of a dry run, the call recorder,
//! the limit on calls in flight per service, and the one place where SDK errors are classified.
//!
//! Configuration is loaded once (`aws_config::defaults`), so the default chain finds credentials,
//! region and `AWS_ENDPOINT_URL` exactly as the AWS CLI would, and every client is built from it
//! with the same interceptors: nothing can reach AWS without passing the guard and the recorder.
//! Every client's HTTP client is wrapped so that at most [`CallLimits`] calls to its service are
//! in flight at once, whatever the parallelism of the steps.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

/// Whether the clients may change anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Read-only calls only: every other operation is refused before it is sent.
    DryRun,
    /// Real deletions.
    Apply,
}

/// How to build the clients. `Default` reads everything from the environment.
#[derive(Clone, Default)]
pub struct AwsOptions {
    /// Overrides the region of the default chain.
    pub region: Option<String>,
    /// Overrides the endpoint (what `AWS_ENDPOINT_URL` does), e.g. a local emulator.
    pub endpoint_url: Option<String>,
    /// Attempts per call, including the first, for the SDK's standard retry (throttling, 5xx).
    pub max_attempts: Option<u32>,
    /// Extra interceptors put on every client, after ours (tests inject faults with these).
    pub interceptors: Vec<SharedInterceptor>,
    /// Where to append the audit log of mutating calls (JSON Lines); none when `None`.
    pub audit: Option<AuditLog>,
    /// Calls in flight at once to each service, at most (`Default`: [`CallLimits::default`]).
    pub call_limits: CallLimits,
    /// How long one call may take. `None`: what the configuration sets (e.g. a sweep's, for its
    /// assumed roles' calls too), and [`CallTimeouts::default`] for what it does not.
    pub timeouts: Option<CallTimeouts>,
}

/// How long one AWS call may take, so that an endpoint that accepts a connection and never answers
/// cannot hang a run: connecting, each attempt (and each read of its answer), and the whole call
/// with its retries. A call that times out is an error like any other (retried within the step's
/// deadline), and the step's own deadline bounds the step whatever its calls do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallTimeouts {
    /// Establishing a connection.
    pub connect: Duration,
    /// One attempt of a call, and any single read of its answer.
    pub attempt: Duration,
    /// One call, all its attempts and the backoff between them included.
    pub operation: Duration,
}

impl CallTimeouts {
    /// Connecting: 5 s (an AWS endpoint answers in milliseconds).
    pub const DEFAULT_CONNECT: Duration = Duration::from_secs(5);
    /// One attempt: 30 s (teardown's calls are small; waits are polls, not long calls).
    pub const DEFAULT_ATTEMPT: Duration = Duration::from_secs(30);
    /// One call with its retries: 2 minutes.
    pub const DEFAULT_OPERATION: Duration = Duration::from_secs(120);

    /// As the SDK's configuration.
    pub fn config(&self) -> aws_smithy_types::timeout::TimeoutConfig {
        aws_smithy_types::timeout::TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.attempt)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

impl Default for CallTimeouts {
    fn default() -> CallTimeouts {
        CallTimeouts {
            connect: CallTimeouts::DEFAULT_CONNECT,
            attempt: CallTimeouts::DEFAULT_ATTEMPT,
            operation: CallTimeouts::DEFAULT_OPERATION,
        }
    }
}

/// The clients a teardown uses, built from one configuration.
#[derive(Clone)]
pub struct Aws {
    /// The region every client talks to.
    pub region: String,
    /// Whether mutating calls are allowed.
    pub mode: Mode,
    /// Every call the clients made, in order.
    pub calls: CallLog,
    /// Calls in flight per service: the limits, and the most there ever were at once.
    pub concurrency: CallConcurrency,
    /// The endpoint set in the configuration (`AWS_ENDPOINT_URL`), if one is.
    pub endpoint_url: Option<String>,
    /// CloudFormation.
    pub cloudformation: aws_sdk_cloudformation::Client,
    /// EC2 (network interfaces, VPCs).
    pub ec2: aws_sdk_ec2::Client,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
    /// EventBridge (CloudWatch Events) rules and their targets.
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// Secrets Manager.
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    /// CloudWatch Logs (the log groups Lambda functions leave behind).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// SNS topics.
    pub sns: aws_sdk_sns::Client,
    /// STS, for the account guard.
    pub sts: aws_sdk_sts::Client,
}

/// Why the clients could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No region from the flags, the environment or the profile.
    #[error("no AWS region is configured: pass --region, or set AWS_REGION (or a region in your profile)")]
    NoRegion,
}

impl Aws {
    /// Loads the configuration from the environment (as the AWS CLI does) and builds the clients.
    pub async fn from_env(mode: Mode, options: AwsOptions) -> Result<Aws, SetupError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        let sdk_config = loader.load().await;
        Aws::from_sdk_config(&sdk_config, mode, options)
    }

    /// Builds the clients from a loaded configuration, with the guard and the recorder on each.
    pub fn from_sdk_config(
        sdk_config: &SdkConfig,
        mode: Mode,
        options: AwsOptions,
    ) -> Result<Aws, SetupError> {
        let region = sdk_config
            .region()
            .map(|r| r.to_string())
            .ok_or(SetupError::NoRegion)?;
        let calls = CallLog {
            audit: options.audit.clone(),
            ..CallLog::default()
        };
        let mut interceptors = vec![
            SharedInterceptor::new(ReadOnlyGuard {
                mode,
                audit: options.audit.clone(),
            }),
            SharedInterceptor::new(calls.clone()),
        ];
        interceptors.extend(options.interceptors.iter().cloned());
        // Standard retry: throttling and transient 5xx are retried with exponential backoff and
        // jitter, 5 attempts. Adaptive mode was measured to stall: after two throttled answers its
        // client-side rate limiter held the next call for about 40 s. Bursts are bounded instead
        // by the limit on calls in flight per service (below), which every attempt, retries
        // included, passes through.
        let retry = RetryConfig::standard().with_max_attempts(options.max_attempts.unwrap_or(5));
        let http = base_http_client(sdk_config);
        let timeouts = match (options.timeouts, sdk_config.timeout_config()) {
            (Some(timeouts), _) => timeouts.config(),
            (None, Some(configured)) => {
                let mut merged = configured.clone();
                merged.take_defaults_from(&CallTimeouts::default().config());
                merged
            }
            (None, None) => CallTimeouts::default().config(),
        };
        let concurrency = CallConcurrency::default();

        macro_rules! client {
            ($krate:ident, $service:literal, $limit:expr) => {{
                let mut builder = $krate::config::Builder::from(sdk_config)
                    .retry_config(retry.clone())
                    .timeout_config(timeouts.clone());
                for interceptor in &interceptors {
                    builder.push_interceptor(interceptor.clone());
                }
                if let Some(http) = &http {
                    builder.set_http_client(Some(SharedHttpClient::new(LimitedHttpClient {
                        inner: http.clone(),
                        gate: concurrency.add($service, $limit),
                    })));
                }
                $krate::Client::from_conf(builder.build())
            }};
        }
        let limits = options.call_limits;
        Ok(Aws {
            endpoint_url: sdk_config.endpoint_url().map(str::to_string),
            region,
            mode,
            calls,
            cloudformation: client!(
                aws_sdk_cloudformation,
                "CloudFormation",
                limits.cloudformation
            ),
            ec2: client!(aws_sdk_ec2, "EC2", limits.other),
            ecs: client!(aws_sdk_ecs, "ECS", limits.other),
            ecr: client!(aws_sdk_ecr, "ECR", limits.other),
            eventbridge: client!(aws_sdk_eventbridge, "EventBridge", limits.other),
            secretsmanager: client!(aws_sdk_secretsmanager, "Secrets Manager", limits.other),
            logs: client!(aws_sdk_cloudwatchlogs, "CloudWatch Logs", limits.other),
            sns: client!(aws_sdk_sns, "SNS", limits.other),
            sts: client!(aws_sdk_sts, "STS", limits.other),
            concurrency,
        })
    }

    /// True in a dry run: actions resolve what they match and change nothing.
    pub fn is_dry_run(&self) -> bool {
        self.mode == Mode::DryRun
    }

    /// The endpoint a call to `service` (e.g. `sts`) goes to, for messages.
    pub fn endpoint_of(&self, service: &str) -> String {
        self.endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://{service}.{}.amazonaws.com", self.region))
    }
}

/// A failed call explained for the person reading: one line that says what failed and what to do,
/// and the SDK's whole account of it, for `--verbose`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explained {
    /// What failed and what to do, in a line or two.
    pub summary: String,
    /// The SDK's error with all its causes.
    pub detail: String,
}

/// Error codes that mean the credentials themselves were refused.
const CREDENTIAL_CODES: &[&str] = &[
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "AuthFailure",
];

/// What to do about credentials, said once.
pub const CREDENTIALS_ADVICE: &str = "check your credentials (AWS_PROFILE after `aws sso login`, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)";

/// Explains a failed call of `operation` (e.g. `STS.GetCallerIdentity`) to `endpoint`, by the
/// error's type and its causes' types, never its text: no credentials, the endpoint refused the
/// connection or did not answer, another network failure, credentials refused, or AWS's own answer.
pub fn explain<E, R>(operation: &str, endpoint: Option<&str>, err: &SdkError<E, R>) -> Explained
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug,
{
    use aws_credential_types::provider::error::CredentialsError;
    use aws_smithy_types::error::display::DisplayErrorContext;
    let detail = DisplayErrorContext(err).to_string();
    let mut credentials = None;
    let mut io = None;
    let endpoint = match endpoint {
        Some(url) => format!("the AWS endpoint {url}"),
        None => "the AWS endpoint".to_string(),
    };
    // The error itself is an SdkError: its causes tell what happened.
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if credentials.is_none() {
            credentials = e.downcast_ref::<CredentialsError>();
        }
        if io.is_none() {
            io = e.downcast_ref::<std::io::Error>();
        }
        source = e.source();
    }
    let first_line = |text: String| text.lines().next().unwrap_or_default().to_string();
    let summary = if let Some(credentials) = credentials {
        match credentials {
            CredentialsError::CredentialsNotLoaded(_) => {
                format!("no AWS credentials were found; {CREDENTIALS_ADVICE}")
            }
            CredentialsError::ProviderTimedOut(_) => {
                format!("loading the AWS credentials timed out; {CREDENTIALS_ADVICE}")
            }
            other => format!(
                "the AWS credentials could not be loaded ({}); {CREDENTIALS_ADVICE}",
                first_line(other.to_string())
            ),
        }
    } else if let SdkError::ServiceError(service_error) = err {
        let e = service_error.err();
        let code = e.code().unwrap_or("unknown error");
        let message = first_line(e.message().unwrap_or_default().to_string());
        if CREDENTIAL_CODES.contains(&code) {
            format!("AWS refused the credentials ({operation}: {code}: {message}); {CREDENTIALS_ADVICE}")
        } else {
            format!("{operation}: {code}: {message}")
        }
    } else if matches!(err, SdkError::TimeoutError(_))
        || matches!(err, SdkError::DispatchFailure(d) if d.is_timeout())
        || io.is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
    {
        format!("{endpoint} did not answer in time; check the network and any proxy (HTTPS_PROXY), or AWS_ENDPOINT_URL")
    } else if io.is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused) {
        format!("cannot reach {endpoint}: connection refused; check AWS_ENDPOINT_URL and the region, and any proxy (HTTPS_PROXY)")
    } else if let (SdkError::DispatchFailure(_), Some(io)) = (err, io) {
        format!(
            "cannot reach {endpoint}: {}; check the network, AWS_ENDPOINT_URL and any proxy (HTTPS_PROXY)",
            first_line(io.to_string())
        )
    } else if let SdkError::DispatchFailure(_) = err {
        format!("cannot reach {endpoint}; check the network, AWS_ENDPOINT_URL and any proxy (HTTPS_PROXY) (--verbose says more)")
    } else {
        let mut line = first_line(detail.clone());
        if let Some((end, _)) = line.char_indices().nth(300) {
            line.truncate(end);
            line.push('…');
        }
        format!("{operation}: {line}")
    };
    Explained { summary, detail }
}

/// How many calls to one AWS service may be in flight at once, per set of clients ([`Aws`]).
///
/// AWS throttles each API per account and region with a token bucket: a burst, then a refill
/// rate. EC2 documents a bucket of 100 tokens refilled at 20 a second for a non-mutating action
/// such as DescribeHosts (<https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html>);
/// ECS one of 50 for cluster reads such as DescribeClusters
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/request-throttling.html>).
/// CloudFormation publishes no per-API rates, and AWS's advice for its "Rate exceeded" errors is
/// to back off and to work on one stack at a time
/// (<https://repost.aws/knowledge-center/cloudformation-rate-exceeded-error>). Each step makes
/// its calls one after another and polls with backoff, so what makes a burst is many steps at
/// once (a sweep of many labs); bounding the calls in flight bounds the burst. At about 100 ms a
/// call, [`CallLimits::DEFAULT_OTHER`] calls in flight is some 80 calls a second at most: a
/// second of that fits EC2's bucket and most of ECS's, and the steps' polls rarely keep it up.
/// [`CallLimits::DEFAULT_CLOUDFORMATION`] keeps CloudFormation to a few stacks' calls at a time.
/// What AWS still throttles is retried by the SDK (standard mode, 5 attempts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLimits {
    /// CloudFormation, whose limits are the lowest of the services a teardown calls.
    pub cloudformation: usize,
    /// Every other service (EC2, ECS, ECR, Secrets Manager, EventBridge, CloudWatch Logs, SNS,
    /// STS), each on its own.
    pub other: usize,
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
        }
    }
}

/// The calls in flight to one service: a semaphore of its limit, and counts for reporting.
#[derive(Debug)]
struct ServiceGate {
    service: &'static str,
    limit: usize,
    permits: Arc<tokio::sync::Semaphore>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// One call in flight: holds its permit, and gives it back when the call finishes or is dropped
/// (a cancelled step drops its call's future, and with it this).
struct InFlight {
    gate: Arc<ServiceGate>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl ServiceGate {
    fn new(service: &'static str, limit: usize) -> ServiceGate {
        let limit = limit.max(1);
        ServiceGate {
            service,
            limit,
            permits: Arc::new(tokio::sync::Semaphore::new(limit)),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    async fn enter(self: Arc<ServiceGate>) -> InFlight {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the semaphore of a service is never closed");
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
    fn add(&self, service: &'static str, limit: usize) -> Arc<ServiceGate> {
        let gate = Arc::new(ServiceGate::new(service, limit));
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
struct LimitedHttpClient {
    inner: SharedHttpClient,
    gate: Arc<ServiceGate>,
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

/// Sends one attempt once its service has a free permit, and holds the permit until the answer
/// (its status and headers) is back. The SDK calls this once per attempt, so a retry waits for a
/// permit again, and the backoff before it holds none.
#[derive(Debug)]
struct LimitedConnector {
    inner: SharedHttpConnector,
    gate: Arc<ServiceGate>,
}

impl HttpConnector for LimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let gate = Arc::clone(&self.gate);
        HttpConnectorFuture::new(async move {
            let _in_flight = gate.enter().await;
            inner.call(request).await
        })
    }
}

/// The HTTP client the SDK would give a client built from `sdk_config`: the configuration's own,
/// or else the SDK's default, built the way aws-smithy-runtime builds it (hyper 1 with rustls on
/// aws-lc, proxy settings from the environment, the runtime's sleep for timeouts). That function
/// is private to aws-smithy-runtime, so its few lines are repeated here; the per-service limit
/// wraps whatever this returns.
fn base_http_client(sdk_config: &SdkConfig) -> Option<SharedHttpClient> {
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

/// True for operations that only read: the allow-list of a dry run.
///
/// An allow-list, not a deny-list: an operation we have not thought about is refused.
pub fn is_read_only(operation: &str) -> bool {
    const READ_PREFIXES: [&str; 5] = ["Describe", "List", "Get", "BatchGet", "Search"];
    // GetSecretValue reads a secret's value: never needed to tear anything down, so never allowed.
    operation != "GetSecretValue" && READ_PREFIXES.iter().any(|p| operation.starts_with(p))
}

/// Refuses every operation that is not read-only in a dry run, before it is serialized or sent;
/// and, when the clients keep an audit log, every mutating call that the log could not record.
#[derive(Debug)]
struct ReadOnlyGuard {
    mode: Mode,
    audit: Option<AuditLog>,
}

/// The error a dry run's guard raises. Seeing it means an action tried to change something in a
/// dry run: a bug in teardown, never something to skip quietly.
#[derive(Debug)]
pub struct DryRunViolation {
    /// Service and operation that were refused, e.g. `ECS.StopTask`.
    pub operation: String,
}

impl fmt::Display for DryRunViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dry run refused the mutating call {} before it was sent; this is a bug in teardown, please report it",
            self.operation
        )
    }
}

impl std::error::Error for DryRunViolation {}

/// Put in a call's configuration by the guard when it refused the call: the call log then knows
/// that nothing was sent, and keeps it out of the audit log.
#[derive(Clone, Debug)]
struct Refused;

impl aws_smithy_types::config_bag::Storable for Refused {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// The error raised instead of sending a mutating call that the audit log could not record.
#[derive(Debug)]
pub struct Unrecorded {
    /// Service and operation that were not sent, e.g. `ECS.StopTask`.
    pub operation: String,
    /// Why the log cannot record it.
    pub reason: String,
}

impl fmt::Display for Unrecorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown after the operation's name (`ECS.StopTask: not sent: ...`), as AWS errors are.
        write!(
            f,
            "not sent: {}, and no change is made that the run cannot record",
            self.reason
        )
    }
}

impl std::error::Error for Unrecorded {}

fn operation_of(cfg: &ConfigBag) -> (String, String) {
    match cfg.load::<Metadata>() {
        Some(m) => (m.service().to_string(), m.name().to_string()),
        None => ("unknown".into(), "unknown".into()),
    }
}

impl Intercept for ReadOnlyGuard {
    fn name(&self) -> &'static str {
        "teardown::ReadOnlyGuard"
    }

    // Not `read_before_execution`: client-level interceptors run that hook before the operation's
    // configuration (and so its name) is in the bag. This hook still runs before the request is
    // serialized, signed or sent.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = operation_of(cfg);
        if is_read_only(&operation) {
            return Ok(());
        }
        if self.mode == Mode::DryRun {
            cfg.interceptor_state().store_put(Refused);
            return Err(Box::new(DryRunViolation {
                operation: format!("{service}.{operation}"),
            }));
        }
        if let Some(Err(reason)) = self.audit.as_ref().map(AuditLog::check_open) {
            cfg.interceptor_state().store_put(Refused);
            return Err(Box::new(Unrecorded {
                operation: format!("{service}.{operation}"),
                reason,
            }));
        }
        Ok(())
    }
}

/// One call a client made (after its retries), as the recorder saw it.
#[derive(Clone, Debug, Serialize)]
pub struct CallRecord {
    /// When the call finished.
    #[serde(with = "humantime_serde_compat")]
    pub at: SystemTime,
    /// Service name as the SDK knows it, e.g. `ECS`.
    pub service: String,
    /// Operation name, e.g. `StopTask`.
    pub operation: String,
    /// False for the operations of the dry-run allow-list.
    pub mutating: bool,
    /// `ok`, or the error code AWS returned.
    pub outcome: String,
    /// The AWS request id, when the response had one.
    pub request_id: Option<String>,
    /// The step that made the call, when a step did.
    pub step: Option<String>,
    /// The resource the call was about, when an action said.
    pub resource: Option<String>,
}

tokio::task_local! {
    /// Which step, and which resource, the calls made inside this scope are for: read by the
    /// call log so that the audit log can say it without threading it through every call.
    pub static CALL_CONTEXT: CallContext;
}

/// What the calls of a scope are for (see [`CALL_CONTEXT`]).
#[derive(Clone, Debug, Default)]
pub struct CallContext {
    /// The step id.
    pub step: Option<String>,
    /// The resource id (ARN or AWS id).
    pub resource: Option<String>,
}

/// The audit log: every mutating call appended as one JSON line, written and flushed to disk as it
/// happens (so that a killed run still leaves a complete record of what it did).
///
/// A run makes its log [`AuditLog::pending`] and opens it with [`AuditLog::start`] once the guard
/// and the confirmation have passed, so that a refused run leaves no file behind. Clients built
/// with a log refuse every mutating call while it is not open, and from the moment the run's
/// record cannot be written: a line of this log (the file system is full, the file-size limit is
/// hit) or of the run's journal ([`AuditLog::fail`]). No change is made that the run could not
/// record; the one whose line could not be written is printed on stderr instead, and
/// [`AuditLog::problem`] says where the record ends.
#[derive(Clone, Debug)]
pub struct AuditLog {
    state: Arc<Mutex<AuditState>>,
    /// Cancelled when the run's record can no longer be written.
    lost: tokio_util::sync::CancellationToken,
}

#[derive(Debug)]
struct AuditState {
    run_id: String,
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    /// Complete lines written, and their bytes (where a torn line starts).
    lines: u64,
    bytes: u64,
    /// Why the run's record can no longer be written, once it cannot.
    broken: Option<String>,
    /// True once a line of this log could not be written: it ends there.
    ended: bool,
}

impl AuditLog {
    /// Opens (creating directories and the file as needed) the log at `path`, appending.
    pub fn open(path: &std::path::Path, run_id: &str) -> std::io::Result<AuditLog> {
        let audit = AuditLog::pending();
        audit.start(path, run_id)?;
        Ok(audit)
    }

    /// A log not open yet: clients built with it refuse mutating calls until [`AuditLog::start`].
    pub fn pending() -> AuditLog {
        AuditLog {
            state: Arc::new(Mutex::new(AuditState {
                run_id: String::new(),
                path: std::path::PathBuf::new(),
                file: None,
                lines: 0,
                bytes: 0,
                broken: None,
                ended: false,
            })),
            lost: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Opens the file at `path` (creating its directory as needed), appending; from now on
    /// mutating calls go through and are recorded.
    pub fn start(&self, path: &std::path::Path, run_id: &str) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let existing = file.metadata()?.len();
        let mut state = self.state.lock().expect("audit log poisoned");
        state.run_id = run_id.to_string();
        state.path = path.to_path_buf();
        state.file = Some(file);
        state.bytes = existing;
        state.lines = 0;
        Ok(())
    }

    /// The file it writes (empty before it is started).
    pub fn path(&self) -> std::path::PathBuf {
        self.state.lock().expect("audit log poisoned").path.clone()
    }

    /// Says that the run's record can no longer be written (`why`: which file, and where it
    /// ends): from now on no mutating call is sent. The first reason is kept.
    pub fn fail(&self, why: String) {
        let mut state = self.state.lock().expect("audit log poisoned");
        if state.broken.is_none() {
            state.broken = Some(why);
        }
        self.lost.cancel();
    }

    /// Cancelled once the run's record can no longer be written: the run should stop.
    pub fn lost(&self) -> tokio_util::sync::CancellationToken {
        self.lost.clone()
    }

    /// Why the run's record could not be written, if it could not: the run must not report
    /// success.
    pub fn problem(&self) -> Option<String> {
        self.state
            .lock()
            .expect("audit log poisoned")
            .broken
            .clone()
    }

    /// `Err(why)` when a mutating call must not be sent now, because it could not be recorded.
    fn check_open(&self) -> Result<(), String> {
        let state = self.state.lock().expect("audit log poisoned");
        if state.broken.is_some() {
            return Err("the run's record (audit log or journal) cannot be written".into());
        }
        if state.file.is_none() {
            return Err("the audit log is not open yet".into());
        }
        Ok(())
    }

    fn append(&self, record: &CallRecord) {
        use std::io::Write;
        #[derive(Serialize)]
        struct Line<'a> {
            run_id: &'a str,
            #[serde(flatten)]
            record: &'a CallRecord,
        }
        let mut state = self.state.lock().expect("audit log poisoned");
        let Ok(mut line) = serde_json::to_string(&Line {
            run_id: &state.run_id,
            record,
        }) else {
            return;
        };
        line.push('\n');
        let (path, lines, bytes, ended) =
            (state.path.clone(), state.lines, state.bytes, state.ended);
        let Some(file) = state.file.as_mut() else {
            return;
        };
        let written = if ended {
            // The log already ends: a line after the gap would hide it.
            Err(std::io::Error::other("the log already ends"))
        } else {
            file.write_all(line.as_bytes())
                .and_then(|_| file.sync_data())
        };
        let error = match written {
            Ok(()) => None,
            // A torn line is cut off, so that the log stays one complete record per line.
            Err(e) => Some((e, ended || file.set_len(bytes).is_ok())),
        };
        let Some((e, cut)) = error else {
            state.lines += 1;
            state.bytes += line.len() as u64;
            return;
        };
        state.ended = true;
        let why = format!(
            "cannot write the audit log {}: {e}; it ends {}{}",
            path.display(),
            if lines == 0 {
                format!("at byte {bytes}, before this run's first line")
            } else {
                format!("at byte {bytes}, after this run's {lines} complete lines")
            },
            if cut { "" } else { " (with a torn last line)" },
        );
        eprintln!(
            "error: {why}; this change was made and is not in it: {}\nno further change will be sent",
            line.trim_end()
        );
        if state.broken.is_none() {
            state.broken = Some(why);
        }
        self.lost.cancel();
    }
}

mod humantime_serde_compat {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_millis(*t).to_string())
    }
}

/// Every call the clients made, in the order they finished. Cheap to clone (shared). Mutating
/// calls also go to the audit log, when there is one.
#[derive(Clone, Debug, Default)]
pub struct CallLog {
    records: Arc<Mutex<Vec<CallRecord>>>,
    audit: Option<AuditLog>,
}

impl CallLog {
    /// A copy of the records so far.
    pub fn records(&self) -> Vec<CallRecord> {
        self.records.lock().expect("call log poisoned").clone()
    }

    /// The mutating calls so far, as `Service.Operation`.
    pub fn mutating_operations(&self) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r.mutating)
            .map(|r| format!("{}.{}", r.service, r.operation))
            .collect()
    }

    /// How many calls were made.
    pub fn len(&self) -> usize {
        self.records.lock().expect("call log poisoned").len()
    }

    /// True before the first call.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "teardown::CallLog"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = operation_of(cfg);
        let response = context.response();
        let request_id = response.and_then(|r| {
            ["x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"]
                .iter()
                .find_map(|h| r.headers().get(*h).map(str::to_string))
        });
        let outcome = match (context.output_or_error(), response) {
            (Some(Ok(_)), _) => "ok".to_string(),
            (_, Some(r)) if r.status().is_success() => "ok".to_string(),
            (_, Some(r)) => format!("http {}", r.status().as_u16()),
            (_, None) if cfg.load::<Refused>().is_some() => "refused before sending".to_string(),
            (_, None) => "not sent".to_string(),
        };
        let context = CALL_CONTEXT.try_with(Clone::clone).unwrap_or_default();
        let record = CallRecord {
            at: SystemTime::now(),
            mutating: !is_read_only(&operation),
            service,
            operation,
            outcome,
            request_id,
            step: context.step,
            resource: context.resource,
        };
        // A call the guard refused changed nothing: it is not a change to record.
        if record.mutating && cfg.load::<Refused>().is_none() {
            if let Some(audit) = &self.audit {
                audit.append(&record);
            }
        }
        self.records.lock().expect("call log poisoned").push(record);
        Ok(())
    }
}

/// How an AWS error should be treated: the only distinction the engine and the actions need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// The resource is not there: for a deletion, that is success.
    NotFound,
    /// Worth another try within the step's deadline: throttling, a dependency still in use,
    /// a transient fault.
    Retryable,
    /// Trying again will not help: access denied, bad input, a bug.
    Fatal,
}

/// Error codes that mean "not there" across the services we use.
const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "RepositoryNotFoundException",
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "InvalidNetworkInterfaceID.NotFound",
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidAttachmentID.NotFound",
];

/// Error codes that mean "not yet": something still depends on the resource, or AWS is busy.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "DependencyViolation",
    "ResourceInUseException",
    "ResourceInUse",
    "InvalidNetworkInterface.InUse",
    "ClusterContainsServicesException",
    "ClusterContainsTasksException",
    "ClusterContainsContainerInstancesException",
    "UpdateInProgressException",
    // CloudWatch Logs: another request is changing the same log group.
    "OperationAbortedException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "ServerException",
];

/// Classifies an AWS error by its error code (the typed variants of each operation map onto these
/// codes; this is the one place that knows the mapping for all services).
pub fn classify_code(code: Option<&str>) -> ErrorClass {
    match code {
        Some(c) if NOT_FOUND_CODES.contains(&c) => ErrorClass::NotFound,
        Some(c) if RETRYABLE_CODES.contains(&c) => ErrorClass::Retryable,
        _ => ErrorClass::Fatal,
    }
}

/// A failed AWS call, classified, with what to tell the person reading it.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct AwsError {
    /// What to do with it.
    pub class: ErrorClass,
    /// The AWS error code, when there was one (e.g. `AccessDeniedException`).
    pub code: Option<String>,
    /// `Service.Operation` that failed, e.g. `ECS.StopTask`.
    pub operation: String,
    /// AWS's message, or what went wrong before AWS answered.
    pub message: String,
}

impl AwsError {
    /// Classifies an SDK error of the operation named `operation` (e.g. `"ECS.StopTask"`).
    pub fn from_sdk<E, R>(operation: &str, err: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug,
    {
        use aws_smithy_types::error::display::DisplayErrorContext;
        let (class, code, message) = match &err {
            SdkError::ServiceError(service_error) => {
                let e = service_error.err();
                let code = e.code().map(str::to_string);
                let message = e
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| DisplayErrorContext(e).to_string());
                (classify_code(code.as_deref()), code, message)
            }
            // Timeouts and connection failures were already retried by the SDK: one more try of the
            // whole step may still work. Said in a line (no credentials, cannot reach the
            // endpoint, no answer in time), not as the SDK's Debug output.
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => (
                ErrorClass::Retryable,
                None,
                explain(operation, None, &err).summary,
            ),
            SdkError::ResponseError(_) => (
                ErrorClass::Retryable,
                None,
                DisplayErrorContext(&err).to_string(),
            ),
            _ => (
                ErrorClass::Fatal,
                None,
                std::error::Error::source(&err)
                    .and_then(guard_refusal)
                    .unwrap_or_else(|| DisplayErrorContext(&err).to_string()),
            ),
        };
        let access_denied = code
            .as_deref()
            .is_some_and(|c| c.contains("AccessDenied") || c == "UnauthorizedOperation");
        let message = if access_denied {
            format!("{message} (the credentials in use lack the permission for {operation}: grant it, or run `teardown permissions PLAN` for the policy this plan needs)")
        } else {
            message
        };
        AwsError {
            class,
            code,
            operation: operation.to_string(),
            message,
        }
    }

    /// True when the resource was not there.
    pub fn is_not_found(&self) -> bool {
        self.class == ErrorClass::NotFound
    }
}

/// The guard's own refusal ([`DryRunViolation`], [`Unrecorded`]) among an error's causes, in its
/// own words (the SDK's wrapping adds nothing a reader needs).
fn guard_refusal(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(v) = e.downcast_ref::<DryRunViolation>() {
            return Some(v.to_string());
        }
        if let Some(u) = e.downcast_ref::<Unrecorded>() {
            return Some(u.to_string());
        }
        source = e.source();
    }
    None
}

/// An SDK timestamp as a chrono one (`None` if out of chrono's range).
pub fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_allow_list_refuses_anything_unknown() {
        for op in [
            "DescribeStacks",
            "ListTasks",
            "GetCallerIdentity",
            "BatchGetImage",
        ] {
            assert!(is_read_only(op), "{op}");
        }
        for op in [
            "DeleteStack",
            "StopTask",
            "UpdateService",
            "DeregisterTaskDefinition",
            "CancelRotateSecret",
            "GetSecretValue",
            "TagResource",
            "SomethingNew",
        ] {
            assert!(!is_read_only(op), "{op}");
        }
    }

    #[test]
    fn codes_are_classified() {
        assert_eq!(
            classify_code(Some("InvalidNetworkInterfaceID.NotFound")),
            ErrorClass::NotFound
        );
        assert_eq!(
            classify_code(Some("DependencyViolation")),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify_code(Some("ThrottlingException")),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify_code(Some("AccessDeniedException")),
            ErrorClass::Fatal
        );
        // CloudWatch Logs: a concurrent change to the same log group; a log group that is gone.
        assert_eq!(
            classify_code(Some("OperationAbortedException")),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify_code(Some("ResourceNotFoundException")),
            ErrorClass::NotFound
        );
        assert_eq!(classify_code(None), ErrorClass::Fatal);
    }

    /// An inner connector that answers `/ok` at once and never answers anything else.
    #[derive(Debug)]
    struct OkOrHang;

    impl HttpConnector for OkOrHang {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let ok = request.uri().ends_with("/ok");
            HttpConnectorFuture::new(async move {
                if !ok {
                    std::future::pending::<()>().await;
                }
                Ok(
                    aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
                        200.try_into().unwrap(),
                        aws_smithy_types::body::SdkBody::empty(),
                    ),
                )
            })
        }
    }

    fn request(path: &str) -> HttpRequest {
        let mut request = HttpRequest::empty();
        request.set_uri(format!("http://127.0.0.1{path}")).unwrap();
        request
    }

    fn limited(concurrency: &CallConcurrency, limit: usize) -> LimitedConnector {
        LimitedConnector {
            inner: SharedHttpConnector::new(OkOrHang),
            gate: concurrency.add("ECS", limit),
        }
    }

    #[tokio::test]
    async fn calls_beyond_the_limit_wait_for_a_permit() {
        let concurrency = CallConcurrency::default();
        let connector = Arc::new(limited(&concurrency, 2));
        let hanging: Vec<_> = (0..5)
            .map(|_| tokio::spawn(connector.call(request("/hang"))))
            .collect();
        while concurrency.in_flight("ECS") < 2 {
            tokio::task::yield_now().await;
        }
        // Let the other three run as far as they can: they wait for a permit.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(concurrency.in_flight("ECS"), 2);
        assert_eq!(concurrency.peak("ECS"), 2);
        assert_eq!(concurrency.limit("ECS"), Some(2));
        for call in hanging {
            call.abort();
        }
    }

    #[tokio::test]
    async fn a_dropped_call_gives_its_permit_back() {
        let concurrency = CallConcurrency::default();
        let connector = Arc::new(limited(&concurrency, 1));
        let hanging = tokio::spawn(connector.call(request("/hang")));
        while concurrency.in_flight("ECS") < 1 {
            tokio::task::yield_now().await;
        }
        // Cancelled in flight, as a step is when the run is interrupted.
        hanging.abort();
        assert!(hanging.await.unwrap_err().is_cancelled());
        assert_eq!(concurrency.in_flight("ECS"), 0);
        // The only permit is free again: the next call goes through.
        let response = connector.call(request("/ok")).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(concurrency.peak("ECS"), 1);
        assert_eq!(concurrency.in_flight("ECS"), 0);
    }

    #[tokio::test]
    async fn every_client_gets_the_sdk_default_http_client_behind_its_limit() {
        let sdk_config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-west-2"))
            .build();
        // No client in the configuration: the SDK's default is found, not sent anything.
        assert!(sdk_config.http_client().is_none());
        assert!(base_http_client(&sdk_config).is_some());
        let aws = Aws::from_sdk_config(
            &sdk_config,
            Mode::DryRun,
            AwsOptions {
                call_limits: CallLimits {
                    cloudformation: 2,
                    other: 5,
                },
                ..AwsOptions::default()
            },
        )
        .unwrap();
        assert_eq!(aws.concurrency.limit("CloudFormation"), Some(2));
        for service in [
            "EC2",
            "ECS",
            "ECR",
            "EventBridge",
            "Secrets Manager",
            "CloudWatch Logs",
            "SNS",
            "STS",
        ] {
            assert_eq!(aws.concurrency.limit(service), Some(5), "{service}");
        }
        assert!(aws.concurrency.peaks().is_empty());
    }

    #[test]
    fn every_client_has_call_timeouts_from_the_options_or_the_configuration() {
        let sdk_config = |timeouts: Option<aws_smithy_types::timeout::TimeoutConfig>| {
            let mut builder = SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(aws_config::Region::new("us-west-2"));
            builder.set_timeout_config(timeouts);
            builder.build()
        };
        let timeouts_of = |config: &SdkConfig, timeouts: Option<CallTimeouts>| {
            let aws = Aws::from_sdk_config(
                config,
                Mode::DryRun,
                AwsOptions {
                    timeouts,
                    ..AwsOptions::default()
                },
            )
            .unwrap();
            let sts = aws.sts.config().timeout_config().unwrap().clone();
            let ecs = aws.ecs.config().timeout_config().unwrap().clone();
            assert_eq!(sts, ecs);
            sts
        };
        // Nothing set anywhere: the defaults, never none.
        let defaults = timeouts_of(&sdk_config(None), None);
        assert_eq!(defaults.connect_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(defaults.read_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(
            defaults.operation_attempt_timeout(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(defaults.operation_timeout(), Some(Duration::from_secs(120)));
        // The options win.
        let short = CallTimeouts {
            connect: Duration::from_secs(1),
            attempt: Duration::from_secs(2),
            operation: Duration::from_secs(3),
        };
        let set = timeouts_of(&sdk_config(None), Some(short));
        assert_eq!(set.operation_timeout(), Some(Duration::from_secs(3)));
        // What the configuration sets is kept, and what it does not is filled in.
        let configured = aws_smithy_types::timeout::TimeoutConfig::builder()
            .operation_timeout(Duration::from_secs(7))
            .build();
        let merged = timeouts_of(&sdk_config(Some(configured)), None);
        assert_eq!(merged.operation_timeout(), Some(Duration::from_secs(7)));
        assert_eq!(merged.connect_timeout(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn failed_calls_are_explained_by_type_in_a_line() {
        use aws_credential_types::provider::error::CredentialsError;
        use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        type Error = SdkError<GetCallerIdentityError, HttpResponse>;
        let refused: Error = SdkError::dispatch_failure(ConnectorError::io(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        )));
        let no_credentials: Error = SdkError::dispatch_failure(ConnectorError::other(
            Box::new(CredentialsError::not_loaded(
                "no credentials found in chain",
            )),
            None,
        ));
        let timed_out: Error = SdkError::timeout_error("operation timeout after 3s");
        let endpoint = Some("http://127.0.0.1:9");
        let op = "STS.GetCallerIdentity";
        assert_eq!(
            explain(op, endpoint, &refused).summary,
            "cannot reach the AWS endpoint http://127.0.0.1:9: connection refused; check AWS_ENDPOINT_URL and the region, and any proxy (HTTPS_PROXY)"
        );
        let summary = explain(op, endpoint, &no_credentials).summary;
        assert!(
            summary.starts_with("no AWS credentials were found; check your credentials"),
            "{summary}"
        );
        let summary = explain(op, None, &timed_out).summary;
        assert!(
            summary.starts_with("the AWS endpoint did not answer in time"),
            "{summary}"
        );
        // A step's error says the same, in a line, and is retried.
        let e = AwsError::from_sdk("ECS.StopTask", refused);
        assert_eq!(e.class, ErrorClass::Retryable);
        assert!(
            e.message
                .starts_with("cannot reach the AWS endpoint: connection refused"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("DispatchFailure"), "{}", e.message);
    }
}
