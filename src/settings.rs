//! Settings shared by the commands that run plans (`run`, `preview`, `resume`, `apply`, `sweep`):
//! the flags that become the AWS clients' call limits and timeouts, `--var`, and where runs are
//! kept. One definition each, below the command layer that flattens them into its flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::aws::{CallLimits, CallTimeouts};
use crate::render::OutputFormat;

/// Settings shared by `run`, `preview` and `resume`.
#[derive(Debug, Args)]
pub struct RunSettings {
    /// Do not ask for confirmation (for unattended runs).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Steps running at once, at most.
    #[arg(long, default_value_t = crate::engine::DEFAULT_PARALLELISM,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Stop starting new steps at the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Output format (default: human on a terminal, plain otherwise or when NO_COLOR is set).
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,
    /// AWS region (default: from the environment or profile, like the AWS CLI).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Where each run keeps its journal and audit log (default: $XDG_STATE_HOME/teardown/runs,
    /// or ~/.local/state/teardown/runs).
    #[arg(long, env = "TEARDOWN_RUNS_DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Calls in flight at once to each AWS service, at most.
    #[command(flatten)]
    pub call_limits: CallLimitArgs,
    /// How long one AWS call may take.
    #[command(flatten)]
    pub call_timeouts: CallTimeoutArgs,
}

/// How long one AWS call may take: an endpoint that never answers must not hang a run.
#[derive(Debug, Args)]
pub struct CallTimeoutArgs {
    /// Connecting to an AWS endpoint, at most.
    #[arg(long, value_name = "DURATION", env = "TEARDOWN_CONNECT_TIMEOUT",
          default_value = "5s", value_parser = parse_call_timeout)]
    pub connect_timeout: Duration,
    /// One attempt of an AWS call (and any single read of its answer), at most.
    #[arg(long, value_name = "DURATION", env = "TEARDOWN_ATTEMPT_TIMEOUT",
          default_value = "30s", value_parser = parse_call_timeout)]
    pub attempt_timeout: Duration,
    /// One AWS call with all its retries, at most.
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
}

impl CallLimitArgs {
    /// The limits, for `AwsOptions::call_limits`.
    pub fn limits(&self) -> CallLimits {
        CallLimits {
            cloudformation: self.max_concurrent_cloudformation_calls.into(),
            other: self.max_concurrent_calls.into(),
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
