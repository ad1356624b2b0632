//! Settings shared by the commands that run plans (`run`, `preview`, `resume`, `apply`, `sweep`):
//! the flags that choose the AWS profile and endpoint and become the clients' call limits and
//! timeouts, `--var`, and where runs are kept. One definition each, below the command layer that
//! flattens them into its flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::aws::{AwsOptions, CallLimits, CallTimeouts, RateLimits};
use crate::render::OutputFormat;

/// Which AWS credentials and endpoint: every command that calls AWS flattens these, so each
/// says `--profile` and `--endpoint-url` alike.
#[derive(Clone, Debug, Default, Args)]
pub struct AwsArgs {
    /// The named profile of ~/.aws/config or ~/.aws/credentials to take credentials and region
    /// from, as the AWS CLI's --profile (SSO: `aws sso login --profile NAME` first).
    #[arg(long, value_name = "NAME", env = "AWS_PROFILE", help_heading = "AWS")]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint instead of AWS's own: LocalStack, moto, a VPC
    /// endpoint (AWS_ENDPOINT_URL does the same).
    #[arg(long, value_name = "URL", help_heading = "AWS")]
    pub endpoint_url: Option<String>,
}

impl AwsArgs {
    /// The options that build the clients, in `region` (`None`: the environment's or profile's).
    pub fn options(&self, region: Option<String>) -> AwsOptions {
        AwsOptions {
            // An empty AWS_PROFILE names no profile, as for the SDK.
            profile: self.profile.clone().filter(|name| !name.is_empty()),
            endpoint_url: self.endpoint_url.clone(),
            region,
            ..AwsOptions::default()
        }
    }
}

/// How to run a plan, for `run`, `preview`, `resume` and `apply` (what only confirms or records
/// a real run is in [`RealRunSettings`]).
#[derive(Debug, Args)]
pub struct RunSettings {
    /// Steps at work at once, at most (a step only waiting between polls does not count, nor the
    /// look before a run, which only reads: the calls per service bound it).
    #[arg(long, default_value_t = crate::engine::DEFAULT_PARALLELISM,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Stop starting new steps at the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Output format (default: human when stderr is a terminal, plain otherwise; NO_COLOR removes
    /// colour only).
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,
    /// AWS region (default: from the environment or profile, like the AWS CLI).
    #[arg(long, env = "AWS_REGION", help_heading = "AWS")]
    pub region: Option<String>,
    /// The AWS profile and endpoint.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Calls in flight at once to each AWS service, at most.
    #[command(flatten)]
    pub call_limits: CallLimitArgs,
    /// How long one AWS call may take.
    #[command(flatten)]
    pub call_timeouts: CallTimeoutArgs,
}

/// What only a run that changes things uses: the confirmation it asks for and the directory its
/// journal and audit log go to (`run`, `resume`, `apply`; a preview has neither).
#[derive(Debug, Default, Args)]
pub struct RealRunSettings {
    /// Do not ask for confirmation (for unattended runs).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Where each run keeps its journal and audit log (default: $XDG_STATE_HOME/teardown/runs,
    /// or ~/.local/state/teardown/runs).
    #[arg(long, env = "TEARDOWN_RUNS_DIR")]
    pub runs_dir: Option<PathBuf>,
}

/// How long one AWS call may take: an endpoint that never answers must not hang a run.
#[derive(Debug, Args)]
pub struct CallTimeoutArgs {
    /// Connecting to an AWS endpoint, at most.
    #[arg(long, value_name = "DURATION", env = "TEARDOWN_CONNECT_TIMEOUT",
          default_value = "5s", value_parser = parse_call_timeout)]
    pub connect_timeout: Duration,
    /// One attempt of an AWS call (and any single read of its answer), at most, its wait for its
    /// turn under the rate limits not counted.
    #[arg(long, value_name = "DURATION", env = "TEARDOWN_ATTEMPT_TIMEOUT",
          default_value = "30s", value_parser = parse_call_timeout)]
    pub attempt_timeout: Duration,
    /// One AWS call with all its retries, at most, its waits for its turn not counted.
    #[arg(long, value_name = "DURATION", env = "TEARDOWN_CALL_TIMEOUT",
          default_value = "2m", value_parser = parse_call_timeout)]
    pub call_timeout: Duration,
}

impl CallTimeoutArgs {
    /// The timeouts, for `AwsOptions::timeouts`.
    pub fn timeouts(&self) -> CallTimeouts {
        CallTimeouts {
            connect: self.connect_timeout,
            attempt: self.attempt_timeout,
            operation: self.call_timeout,
        }
    }
}

/// A call timeout: a human duration from 100ms to 1h.
fn parse_call_timeout(text: &str) -> Result<Duration, String> {
    crate::util::parse_duration(text, Duration::from_millis(100)..=Duration::from_secs(3600))
        .map_err(|e| e.to_string())
}

/// Calls in flight at once per AWS service: AWS throttles each service's API per account and
/// region, CloudFormation's hardest (see "When things go wrong" in the README).
#[derive(Debug, Args)]
pub struct CallLimitArgs {
    /// Calls in flight at once to each AWS service other than CloudFormation, at most.
    #[arg(long, value_name = "N", default_value_t = CallLimits::DEFAULT_OTHER as u16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_concurrent_calls: u16,
    /// Calls in flight at once to CloudFormation, at most (its API limits are lower).
    #[arg(long, value_name = "N", default_value_t = CallLimits::DEFAULT_CLOUDFORMATION as u16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_concurrent_cloudformation_calls: u16,
    /// Pace each call to AWS's published rate for its throttling group (`published`), or not
    /// (`off`: for an emulator, which does not throttle).
    #[arg(
        long,
        value_enum,
        value_name = "RATES",
        default_value = "published",
        env = "TEARDOWN_RATE_LIMITS"
    )]
    pub rate_limits: RateLimitArg,
}

/// `--rate-limits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RateLimitArg {
    /// At 90% of the rate AWS publishes for each throttling group.
    Published,
    /// Not paced (only the limits on calls in flight).
    Off,
}

impl CallLimitArgs {
    /// The limits, for `AwsOptions::call_limits`.
    pub fn limits(&self) -> CallLimits {
        CallLimits {
            cloudformation: self.max_concurrent_cloudformation_calls.into(),
            other: self.max_concurrent_calls.into(),
            rates: match self.rate_limits {
                RateLimitArg::Published => RateLimits::Published,
                RateLimitArg::Off => RateLimits::Off,
            },
        }
    }
}

/// The directory runs are kept in.
pub fn runs_dir(flag: Option<&PathBuf>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.clone();
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    state.join("teardown").join("runs")
}

/// A `--var KEY=VALUE`.
pub(crate) fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{text}`")),
    }
}
