//! The limit on calls in flight per service: every client's HTTP client passes through a gate,
//! so that many steps at once cannot burst into AWS's throttling.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

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
pub(crate) struct ServiceGate {
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
    pub(crate) fn add(&self, service: &'static str, limit: usize) -> Arc<ServiceGate> {
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

/// Sends one attempt once its service has a free permit, and holds the permit until the answer
/// (its status and headers) is back. The SDK calls this once per attempt, so a retry waits for a
/// permit again, and the backoff before it holds none.
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
