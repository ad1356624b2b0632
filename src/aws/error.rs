//! Failed calls: what kind of failure each is (the one place errors are classified), and a
//! one-line explanation of it for the person reading.

use super::read_only::{DryRunViolation, Unrecorded};
use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

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
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                let explained = explain(operation, None, &err);
                // The summary names no cause; the SDK's own chain does (`RUST_LOG`, `--verbose`).
                tracing::debug!(target: "teardown::aws", "{operation}: {}", explained.detail);
                (ErrorClass::Retryable, None, explained.summary)
            }
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
