//! SDK configuration, one client per service, the read-only guard of a dry run, the call recorder,
//! the limit on calls in flight per service, and the one place where SDK errors are classified.
//!
//! Configuration is loaded once (`aws_config::defaults`), so the default chain finds credentials,
//! region and `AWS_ENDPOINT_URL` exactly as the AWS CLI would, and every client is built from it
//! with the same interceptors: nothing can reach AWS without passing the guard and the recorder.
//! Every client's HTTP client is wrapped so that each attempt is paced to its throttling group's
//! rate ([`throttling_group`], [`RateLimits`]) and at most [`CallLimits`] calls to its service are
//! in flight at once, whatever the parallelism of the steps.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_runtime_api::client::stalled_stream_protection::StalledStreamProtectionConfig;
use serde::Serialize;

mod calls;
mod error;
mod limits;
mod memory;
mod read_only;
mod reads;

pub use calls::*;
pub use error::*;
pub use limits::*;
pub use memory::*;
pub use read_only::*;

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
    /// The named profile (`--profile`, `AWS_PROFILE`) credentials and region come from; `None`:
    /// the default chain's choice. A name that no profile file holds is refused before any call.
    pub profile: Option<String>,
    /// Overrides the region of the default chain.
    pub region: Option<String>,
    /// Overrides the endpoint (what `AWS_ENDPOINT_URL` does), e.g. a local emulator.
    pub endpoint_url: Option<String>,
    /// Attempts per call, including the first, for the SDK's standard retry (throttling, 5xx).
    pub max_attempts: Option<u32>,
    /// The longest wait before the first retry of a call (each later one may wait twice as long),
    /// for the SDK's standard retry. `None`: the SDK's 1 s. Tests that throttle hundreds of calls
    /// shorten it, so that they test the retries and not the clock.
    pub retry_backoff: Option<Duration>,
    /// Extra interceptors put on every client, after ours (tests inject faults with these).
    pub interceptors: Vec<SharedInterceptor>,
    /// Where to append the audit log of mutating calls (JSON Lines); none when `None`.
    pub audit: Option<AuditLog>,
    /// Calls in flight at once to each service, at most (`Default`: [`CallLimits::default`]).
    pub call_limits: CallLimits,
    /// How long one call may take. `None`: what the configuration sets (e.g. a sweep's, for its
    /// assumed roles' calls too), and [`CallTimeouts::default`] for what it does not.
    pub timeouts: Option<CallTimeouts>,
    /// What the run knows from its own calls, shared with other clients of the same run (its
    /// pre-flight's); `Default`: a memory of these clients' own.
    pub memory: RunMemory,
    /// Answer a read asked before from its first answer (see `reads.rs`). Only for clients of a
    /// short read-only phase ([`Mode::DryRun`]), such as a run's lookups and pre-flight; ignored
    /// for clients that may change anything.
    pub reuse_reads: bool,
}

/// How long one AWS call may take, so that an endpoint that accepts a connection and never answers
/// cannot hang a run: connecting, each attempt (and each read of its answer), and the whole call
/// with its retries. A call that times out is an error like any other (retried within the step's
/// deadline), and the step's own deadline bounds the step whatever its calls do. The SDK keeps the
/// connect and read timeouts; the attempt and call timeouts are kept by the gate of
/// [`CallLimits`] ([`GateTimeouts`]), which leaves out a call's waits for its turn there.
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

/// The SDK's stalled-stream protection for answers only, as `sdk_config` sets it otherwise (the
/// SDK's default: on, 5 s of grace). For requests it is off: the SDK's check of a request's upload
/// wraps the whole call to the HTTP client, so it runs while the call waits for its turn at the
/// gate of [`CallLimits`]. In a sweep of 25 labs against moto, DeleteStack and
/// DeregisterTaskDefinition calls (the slowest-paced groups) failed that check ("minimum
/// throughput was specified at 1 B/s, but throughput of 0 B/s was observed") without reaching the
/// endpoint, and their steps failed after 5 attempts: the check counts a body not yet polled as
/// 0 B/s, and fails the attempt after its 1 s window plus the grace period (with a short queue, a
/// retried attempt gets its token at once, which hid it). Reproduced with one attempt in
/// `throttling::a_call_paced_for_seconds_is_not_failed_as_a_stalled_upload`.
/// teardown's requests are a few hundred bytes, and the gate's attempt timeout still bounds a
/// request that the network holds. Turning the upload check off is the SDK maintainers' own advice
/// for this error (awslabs/aws-sdk-rust#1146), and was the SDK's default before
/// `BehaviorVersion::v2024_03_28`.
fn answers_only_stall_protection(sdk_config: &SdkConfig) -> StalledStreamProtectionConfig {
    const SDK_DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(5);
    let configured = sdk_config.stalled_stream_protection();
    StalledStreamProtectionConfig::enabled()
        .upload_enabled(false)
        .download_enabled(configured.as_ref().is_none_or(|c| c.download_enabled()))
        .grace_period(configured.map_or(SDK_DEFAULT_GRACE_PERIOD, |c| c.grace_period()))
        .build()
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
    /// What the run knows from its own calls (see [`RunMemory`]).
    pub memory: RunMemory,
    /// The endpoint set in the configuration (`AWS_ENDPOINT_URL`), if one is.
    pub endpoint_url: Option<String>,
    /// The named profile in use, if one was asked for (for messages).
    pub profile: Option<String>,
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
    #[error("{}", no_region_message(.profile.as_deref()))]
    NoRegion {
        /// The profile in use, if one was named.
        profile: Option<String>,
    },
    /// `--profile` (or `AWS_PROFILE`) names a profile that no profile file holds.
    #[error("the AWS profile `{name}` is not in {files}{}: check the name (--profile or AWS_PROFILE), or create it with `aws configure --profile {name}` (or `aws configure sso --profile {name}`); nothing was done", known_profiles(.known))]
    NoSuchProfile {
        /// The name asked for.
        name: String,
        /// The profile files read, for people (`~/.aws/config and ~/.aws/credentials`).
        files: String,
        /// The profiles they do hold.
        known: Vec<String>,
    },
    /// The profile files exist but cannot be read or parsed.
    #[error("cannot read the AWS profile files ({files}) for profile `{name}`: {reason}; nothing was done")]
    ProfileFiles {
        /// The name asked for.
        name: String,
        /// The profile files, for people.
        files: String,
        /// What went wrong.
        reason: String,
    },
}

fn no_region_message(profile: Option<&str>) -> String {
    match profile {
        Some(name) => format!("no AWS region is configured for profile `{name}`: pass --region, set AWS_REGION, or add `region = ...` to `[profile {name}]` in {}", config_file_for_people()),
        None => "no AWS region is configured: pass --region, or set AWS_REGION (or a region in your profile)".into(),
    }
}

fn known_profiles(known: &[String]) -> String {
    if known.is_empty() {
        " (they hold no profile)".into()
    } else {
        format!(" (they hold: {})", known.join(", "))
    }
}

/// The shared config file as the SDK finds it: `AWS_CONFIG_FILE`, else `~/.aws/config`.
fn config_file_for_people() -> String {
    std::env::var("AWS_CONFIG_FILE").unwrap_or_else(|_| "~/.aws/config".into())
}

/// The shared credentials file as the SDK finds it: `AWS_SHARED_CREDENTIALS_FILE`, else
/// `~/.aws/credentials`.
fn credentials_file_for_people() -> String {
    std::env::var("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|_| "~/.aws/credentials".into())
}

/// Refuses a profile name that neither profile file holds. The SDK itself would go on without
/// it: no region (so "no AWS region is configured", which blames the wrong thing) and, at the
/// first call, a credentials error. Read with the SDK's own parser, so that what counts as a
/// profile is exactly what the SDK would use.
async fn check_profile(name: &str) -> Result<(), SetupError> {
    use aws_types::os_shim_internal::{Env, Fs};
    let files = format!(
        "{} and {}",
        config_file_for_people(),
        credentials_file_for_people()
    );
    let profiles = aws_config::profile::load(&Fs::real(), &Env::real(), &Default::default(), None)
        .await
        .map_err(|e| SetupError::ProfileFiles {
            name: name.to_string(),
            files: files.clone(),
            reason: e.to_string(),
        })?;
    if profiles.get_profile(name).is_some() {
        return Ok(());
    }
    let mut known: Vec<String> = profiles.profiles().map(str::to_string).collect();
    known.sort();
    Err(SetupError::NoSuchProfile {
        name: name.to_string(),
        files,
        known,
    })
}

/// The SDK configuration's loader for these options: the default chain (credentials, region and
/// `AWS_ENDPOINT_URL` as the AWS CLI finds them), with the profile, region and endpoint asked
/// for. A profile that does not exist is refused here, by name.
pub async fn config_loader(options: &AwsOptions) -> Result<aws_config::ConfigLoader, SetupError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(name) = &options.profile {
        check_profile(name).await?;
        loader = loader.profile_name(name);
    }
    if let Some(region) = &options.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    Ok(loader)
}

impl Aws {
    /// Loads the configuration from the environment (as the AWS CLI does) and builds the clients.
    pub async fn from_env(mode: Mode, options: AwsOptions) -> Result<Aws, SetupError> {
        let sdk_config = config_loader(&options).await?.load().await;
        Aws::from_sdk_config(&sdk_config, mode, options)
    }

    /// Builds the clients from a loaded configuration, with the guard and the recorder on each.
    pub fn from_sdk_config(
        sdk_config: &SdkConfig,
        mode: Mode,
        options: AwsOptions,
    ) -> Result<Aws, SetupError> {
        let region =
            sdk_config
                .region()
                .map(|r| r.to_string())
                .ok_or_else(|| SetupError::NoRegion {
                    profile: options.profile.clone(),
                })?;
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
            SharedInterceptor::new(NameOperations),
        ];
        interceptors.extend(options.interceptors.iter().cloned());
        // Standard retry: throttling and transient 5xx are retried with exponential backoff and
        // jitter, 5 attempts. Adaptive mode was measured to stall: after two throttled answers its
        // client-side rate limiter held the next call for about 40 s. Bursts are bounded instead
        // by pacing each throttling group to AWS's published rate and by the limit on calls in
        // flight per service (below), which every attempt, retries included, passes through.
        let mut retry =
            RetryConfig::standard().with_max_attempts(options.max_attempts.unwrap_or(5));
        if let Some(backoff) = options.retry_backoff {
            retry = retry.with_initial_backoff(backoff);
        }
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
        // The attempt and call timeouts are kept by the gate, which can leave out the time a call
        // waits for its turn there; the SDK keeps connecting and reading.
        let gate_timeouts = GateTimeouts {
            attempt: timeouts.operation_attempt_timeout(),
            call: timeouts.operation_timeout(),
        };
        let timeouts = {
            let mut sdk = aws_smithy_types::timeout::TimeoutConfig::builder()
                .disable_operation_attempt_timeout()
                .disable_operation_timeout();
            sdk.set_connect_timeout(timeouts.connect_timeout());
            sdk.set_read_timeout(timeouts.read_timeout());
            sdk.build()
        };
        let concurrency = CallConcurrency::default();
        let limits = options.call_limits;
        let reads = (options.reuse_reads && mode == Mode::DryRun).then(reads::ReusedReads::default);
        let stall_protection = answers_only_stall_protection(sdk_config);

        macro_rules! client {
            ($krate:ident, $service:literal, $limit:expr) => {{
                let mut builder = $krate::config::Builder::from(sdk_config)
                    .retry_config(retry.clone())
                    .timeout_config(timeouts.clone())
                    .stalled_stream_protection(stall_protection.clone());
                for interceptor in &interceptors {
                    builder.push_interceptor(interceptor.clone());
                }
                if let Some(http) = &http {
                    let limited = SharedHttpClient::new(LimitedHttpClient {
                        inner: http.clone(),
                        gate: concurrency.add($service, $limit, limits.rates, gate_timeouts),
                    });
                    // Outside the limit: a read answered again takes no place in flight.
                    builder.set_http_client(Some(match &reads {
                        Some(reads) => SharedHttpClient::new(reads::ReusingHttpClient {
                            inner: limited,
                            reads: reads.clone(),
                        }),
                        None => limited,
                    }));
                }
                $krate::Client::from_conf(builder.build())
            }};
        }
        Ok(Aws {
            endpoint_url: sdk_config.endpoint_url().map(str::to_string),
            profile: options.profile.clone(),
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
            memory: options.memory.clone(),
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

/// An SDK timestamp as a chrono one (`None` if out of chrono's range).
pub fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[cfg(test)]
mod tests;
