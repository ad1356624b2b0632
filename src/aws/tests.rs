//! Unit tests of the clients, the guard, the limits and the error classes.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::SdkError;

use super::limits::{AttemptTag, LimitedConnector};
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
        gate: concurrency.add("ECS", limit, RateLimits::Off, GateTimeouts::default()),
    }
}

/// teardown's clients, built offline (nothing is sent): for the pacing, which needs no call.
fn offline(rate_limits: RateLimits, other: usize) -> Aws {
    let sdk_config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .build();
    Aws::from_sdk_config(
        &sdk_config,
        Mode::DryRun,
        AwsOptions {
            call_limits: CallLimits {
                cloudformation: 4,
                other,
                rates: rate_limits,
            },
            ..AwsOptions::default()
        },
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn calls_are_paced_to_their_throttling_groups_rate() {
    let aws = offline(RateLimits::Published, 8);
    let group = throttling_group("ECS", "DeregisterTaskDefinition");
    assert_eq!(group.name, "ECS task definition modify actions");
    assert_eq!(
        group.rate,
        Rate {
            burst: 20.0,
            per_second: 1.0
        }
    );
    let start = tokio::time::Instant::now();
    let mut admitted = Vec::new();
    for _ in 0..22 {
        let permit = aws
            .concurrency
            .admit("ECS", "DeregisterTaskDefinition")
            .await
            .expect("ECS has a gate");
        admitted.push(start.elapsed());
        drop(permit);
    }
    // A burst of 90% of AWS's 20, then 90% of AWS's 1 a second.
    let burst = (20.0 * RATE_HEADROOM) as usize;
    assert!(
        admitted[..burst].iter().all(|t| t.is_zero()),
        "{admitted:?}"
    );
    let gap = Duration::from_secs_f64(1.0 / RATE_HEADROOM);
    for (i, t) in admitted[burst..].iter().enumerate() {
        let due = gap.mul_f64(i as f64 + 1.0 - (20.0 * RATE_HEADROOM).fract());
        let off = t.abs_diff(due);
        assert!(
            off < Duration::from_millis(5),
            "call {}: {t:?}, due {due:?}",
            burst + i
        );
    }
    // Another group of the same service is not held back by the empty one...
    let before = start.elapsed();
    let _read = aws.concurrency.admit("ECS", "DescribeTasks").await;
    assert_eq!(start.elapsed(), before);
    // ...and the pacing is reported per group.
    let pacing = aws.concurrency.pacing();
    let modify = pacing
        .iter()
        .find(|p| p.group.name == "ECS task definition modify actions")
        .unwrap();
    assert_eq!((modify.calls, modify.waited), (22, 22 - burst as u64));
    assert!(
        modify.longest_wait + Duration::from_millis(1) >= gap,
        "{modify:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_waiting_for_its_token_holds_no_permit_of_its_service() {
    // One call in flight to ECS at most, and the task-definition group empty: a deregistration
    // waiting for its token must not keep a DescribeTasks from going.
    let aws = Arc::new(offline(RateLimits::Published, 1));
    for _ in 0..18 {
        drop(
            aws.concurrency
                .admit("ECS", "DeregisterTaskDefinition")
                .await,
        );
    }
    let waiting = {
        let aws = Arc::clone(&aws);
        tokio::spawn(async move {
            let _permit = aws
                .concurrency
                .admit("ECS", "DeregisterTaskDefinition")
                .await;
            tokio::time::Instant::now()
        })
    };
    tokio::task::yield_now().await;
    let start = tokio::time::Instant::now();
    let read = aws.concurrency.admit("ECS", "DescribeTasks").await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(aws.concurrency.in_flight("ECS"), 1);
    drop(read);
    let admitted = waiting.await.unwrap();
    assert!(
        admitted - start >= Duration::from_millis(1000),
        "{:?}",
        admitted - start
    );
}

#[tokio::test(start_paused = true)]
async fn without_rate_limits_only_the_calls_in_flight_are_bounded() {
    let aws = offline(RateLimits::Off, 8);
    let start = tokio::time::Instant::now();
    for _ in 0..100 {
        drop(
            aws.concurrency
                .admit("ECS", "DeregisterTaskDefinition")
                .await,
        );
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(aws.concurrency.pacing().is_empty());
}

#[test]
fn every_operation_teardown_calls_has_a_throttling_group_with_a_source() {
    for (service, operation, group) in [
        ("ECS", "StopTask", "ECS cluster resource modify actions"),
        ("ECS", "UpdateService", "ECS service modify actions"),
        ("ECS", "ListServices", "ECS service read actions"),
        ("ECS", "DeleteCluster", "ECS cluster modify actions"),
        (
            "EC2",
            "DescribeNetworkInterfaces",
            "EC2 DescribeNetworkInterfaces",
        ),
        ("EC2", "DescribeVpcs", "EC2 non-mutating actions (each API)"),
        (
            "EC2",
            "DetachNetworkInterface",
            "EC2 mutating actions (each API)",
        ),
        (
            "Secrets Manager",
            "CancelRotateSecret",
            "Secrets Manager RotateSecret and CancelRotateSecret",
        ),
        (
            "CloudFormation",
            "DeleteStack",
            "CloudFormation stack changes",
        ),
        ("CloudFormation", "DescribeStacks", "CloudFormation reads"),
    ] {
        let found = throttling_group(service, operation);
        assert_eq!(found.name, group, "{service} {operation}");
        assert!(
            found.source.starts_with("documented: ") || found.source.starts_with("assumed: "),
            "{found:?}"
        );
        assert!(
            found.rate.burst >= 1.0 && found.rate.per_second > 0.0,
            "{found:?}"
        );
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
                rates: RateLimits::Published,
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
    // (the SDK's timeouts, the gate's) of the clients built from a configuration and options.
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
        let gate = aws.concurrency.timeouts("STS").unwrap();
        assert_eq!(Some(gate), aws.concurrency.timeouts("ECS"));
        // The SDK connects and reads; the gate keeps the attempt and call timeouts, so that
        // they leave out the waits for a turn.
        assert_eq!(sts.operation_attempt_timeout(), None);
        assert_eq!(sts.operation_timeout(), None);
        (sts, gate)
    };
    // Nothing set anywhere: the defaults, never none.
    let (sdk, gate) = timeouts_of(&sdk_config(None), None);
    assert_eq!(sdk.connect_timeout(), Some(Duration::from_secs(5)));
    assert_eq!(sdk.read_timeout(), Some(Duration::from_secs(30)));
    assert_eq!(gate.attempt, Some(Duration::from_secs(30)));
    assert_eq!(gate.call, Some(Duration::from_secs(120)));
    // The options win.
    let short = CallTimeouts {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(2),
        operation: Duration::from_secs(3),
    };
    let (sdk, gate) = timeouts_of(&sdk_config(None), Some(short));
    assert_eq!(sdk.connect_timeout(), Some(Duration::from_secs(1)));
    assert_eq!(gate.call, Some(Duration::from_secs(3)));
    // What the configuration sets is kept, and what it does not is filled in.
    let configured = aws_smithy_types::timeout::TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(7))
        .build();
    let (sdk, gate) = timeouts_of(&sdk_config(Some(configured)), None);
    assert_eq!(gate.call, Some(Duration::from_secs(7)));
    assert_eq!(sdk.connect_timeout(), Some(Duration::from_secs(5)));
}

fn tagged(path: &str, operation: &str) -> HttpRequest {
    let mut request = request(path);
    request.add_extension(AttemptTag::new(operation));
    request
}

#[tokio::test(start_paused = true)]
async fn the_wait_for_a_turn_does_not_count_against_the_call_timeout() {
    let concurrency = CallConcurrency::default();
    let connector = LimitedConnector {
        inner: SharedHttpConnector::new(OkOrHang),
        gate: concurrency.add(
            "ECS",
            8,
            RateLimits::Published,
            GateTimeouts {
                attempt: Some(Duration::from_secs(2)),
                call: Some(Duration::from_secs(5)),
            },
        ),
    };
    // Empty the task-definition group's bucket (18 at once, then 0.9 a second), and queue six
    // more ahead: the next call waits about 7.8 s for its token, longer than its 5 s.
    for _ in 0..18 {
        drop(concurrency.admit("ECS", "DeregisterTaskDefinition").await);
    }
    let ahead: Vec<_> = (0..6)
        .map(|_| {
            let concurrency = concurrency.clone();
            tokio::spawn(async move {
                drop(concurrency.admit("ECS", "DeregisterTaskDefinition").await);
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let start = tokio::time::Instant::now();
    let answer = connector
        .call(tagged("/ok", "DeregisterTaskDefinition"))
        .await;
    assert!(answer.is_ok(), "{answer:?}");
    assert!(
        start.elapsed() > Duration::from_secs(7),
        "{:?}",
        start.elapsed()
    );
    for a in ahead {
        a.await.unwrap();
    }
    // An endpoint that never answers is still cut off at the attempt timeout.
    let start = tokio::time::Instant::now();
    let answer = connector.call(tagged("/hang", "DescribeTasks")).await;
    let error = answer.expect_err("a hung call times out");
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[test]
fn stalled_stream_protection_watches_answers_only() {
    // The SDK watches a request's body from before the call waits for its turn at the gate: in a
    // 25-lab sweep against moto, DeleteStack and DeregisterTaskDefinition calls paced for longer
    // than its 5 s grace period failed as stalled uploads ("minimum throughput was specified at
    // 1 B/s, but throughput of 0 B/s was observed") without reaching the endpoint.
    let protection = |configured: Option<StalledStreamProtectionConfig>| {
        let mut sdk_config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-west-2"));
        sdk_config.set_stalled_stream_protection(configured);
        let aws =
            Aws::from_sdk_config(&sdk_config.build(), Mode::Apply, AwsOptions::default()).unwrap();
        let cloudformation = aws.cloudformation.config().stalled_stream_protection();
        assert_eq!(
            format!("{:?}", aws.ecs.config().stalled_stream_protection()),
            format!("{cloudformation:?}")
        );
        cloudformation.unwrap().clone()
    };
    let default = protection(None);
    assert!(!default.upload_enabled());
    assert!(default.download_enabled());
    assert_eq!(default.grace_period(), Duration::from_secs(5));
    // A configuration's own setting is kept for answers.
    let configured = protection(Some(
        StalledStreamProtectionConfig::enabled()
            .grace_period(Duration::from_secs(9))
            .build(),
    ));
    assert!(!configured.upload_enabled());
    assert!(configured.download_enabled());
    assert_eq!(configured.grace_period(), Duration::from_secs(9));
    let off = protection(Some(StalledStreamProtectionConfig::disabled()));
    assert!(!off.upload_enabled() && !off.download_enabled());
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
