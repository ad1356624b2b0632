//! Unit tests of the clients, the guard, the limits and the error classes.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::SdkError;

use super::limits::LimitedConnector;
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
