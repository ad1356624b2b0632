//! Scale for the throttling tests: a counting proxy in front of moto, which sees from outside
//! the clients how many calls to each service are in flight at once, and helpers that grow the
//! workshop to hundreds of resources.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType,
    NetworkConfiguration, NetworkMode,
};
use serde_json::json;
use teardown::aws::{Aws, AwsOptions, Mode};

use super::fixture::Workshop;
use super::Moto;

/// What the proxy saw of one service.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    /// Requests being answered now.
    pub in_flight: usize,
    /// The most requests that were ever being answered at once.
    pub peak: usize,
    /// Requests in all.
    pub requests: usize,
}

/// An HTTP proxy on loopback in front of moto, one thread per connection. A request counts as
/// in flight from when the proxy has read it whole until just before its answer is written
/// back, so the count is never higher than what the client had under way. Each request is held
/// `latency` before it is forwarded, as the round trip to AWS would, so that concurrent calls
/// overlap as they do against AWS (moto answers in about 5 ms).
#[derive(Clone)]
pub struct CountingProxy {
    /// `http://127.0.0.1:PORT`, for the clients.
    pub endpoint: String,
    seen: Arc<Mutex<BTreeMap<String, Seen>>>,
    calls: Arc<Mutex<Vec<String>>>,
    timed: Arc<Mutex<Vec<TimedCall>>>,
}

/// One call the proxy answered, with when it arrived and when its answer went back.
#[derive(Clone, Debug)]
pub struct TimedCall {
    /// `Service.Operation`.
    pub call: String,
    /// When the proxy had read the request whole.
    pub start: std::time::Instant,
    /// Just before its answer was written back.
    pub end: std::time::Instant,
}

/// The longest chain of calls each of which started after the one before it had been answered:
/// how many round trips deep the client's work was, however many calls it made beside them.
/// With every call held the same latency, the client's wall time is about this many latencies.
pub fn chain_depth(calls: &[TimedCall]) -> (usize, Vec<String>) {
    let mut order: Vec<&TimedCall> = calls.iter().collect();
    order.sort_by_key(|c| c.end);
    // depth[i]: the longest chain that ends with order[i], and the call before it on that chain.
    let mut depth: Vec<(usize, Option<usize>)> = Vec::with_capacity(order.len());
    for (i, call) in order.iter().enumerate() {
        let best = (0..i)
            .filter(|&j| order[j].end <= call.start)
            .max_by_key(|&j| depth[j].0);
        depth.push(match best {
            Some(j) => (depth[j].0 + 1, Some(j)),
            None => (1, None),
        });
    }
    let Some(mut at) = (0..order.len()).max_by_key(|&i| depth[i].0) else {
        return (0, Vec::new());
    };
    let mut chain = vec![order[at].call.clone()];
    while let Some(before) = depth[at].1 {
        chain.push(order[before].call.clone());
        at = before;
    }
    chain.reverse();
    (chain.len(), chain)
}

/// One call as a [`ProxyRule`] sees it.
pub struct Exchange<'a> {
    /// The SDK's name of the service (`CloudFormation`, `EC2`...).
    pub service: &'a str,
    /// The operation (`DeleteStack`), from `X-Amz-Target` or the query protocol's `Action`.
    pub operation: &'a str,
    /// The request body as text.
    pub request: &'a str,
}

/// An answer a rule gives instead of moto's.
pub struct ProxyAnswer {
    /// HTTP status; 0 drops the connection without any answer (a reset).
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

/// Gives AWS's behaviour where moto differs, for a `teardown` binary that the test cannot hand an
/// SDK interceptor: `before` may answer a call without sending it to moto (AWS refuses it, so
/// nothing happens), `after` may replace moto's answer.
pub trait ProxyRule: Send + Sync {
    /// An answer instead of sending the call on.
    fn before(&self, _call: &Exchange) -> Option<ProxyAnswer> {
        None
    }
    /// An answer instead of moto's (`status`, `body`).
    fn after(&self, _call: &Exchange, _status: u16, _body: &str) -> Option<ProxyAnswer> {
        None
    }
}

impl CountingProxy {
    /// Starts a proxy to moto's endpoint (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, latency: Duration) -> CountingProxy {
        CountingProxy::with_rules(upstream, latency, Vec::new())
    }

    /// A proxy whose `rules` may answer calls or replace answers (see [`ProxyRule`]).
    pub fn with_rules(
        upstream: &str,
        latency: Duration,
        rules: Vec<Arc<dyn ProxyRule>>,
    ) -> CountingProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let rules = Arc::new(rules);
        let calls: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = Arc::clone(&calls);
        let timed: Arc<Mutex<Vec<TimedCall>>> = Arc::default();
        let times = Arc::clone(&timed);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<BTreeMap<String, Seen>>> = Arc::default();
        let counts = Arc::clone(&seen);
        // Left to run until the test process ends, blocked in accept.
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let counts = Arc::clone(&counts);
                let rules = Arc::clone(&rules);
                let log = Arc::clone(&log);
                let times = Arc::clone(&times);
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, latency, &counts, &rules, &log, &times);
                });
            }
        });
        CountingProxy {
            endpoint,
            seen,
            calls,
            timed,
        }
    }

    /// Every call it answered, with when it arrived and when it was answered, in the order they
    /// were answered.
    pub fn timed_calls(&self) -> Vec<TimedCall> {
        self.timed.lock().unwrap().clone()
    }

    /// Every call it received, as `Service.Operation`, in the order they arrived.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// What it saw, per service, by the SDK's names for them (`CloudFormation`, `ECS`,
    /// `Secrets Manager`...).
    pub fn seen(&self) -> BTreeMap<String, Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The configuration of `moto`, pointed at this proxy.
    pub fn sdk_config(&self, moto: &Moto) -> SdkConfig {
        moto.sdk_config()
            .into_builder()
            .endpoint_url(&self.endpoint)
            .build()
    }

    /// teardown's clients, talking to moto through this proxy.
    pub fn aws(&self, moto: &Moto, mode: Mode, options: AwsOptions) -> Aws {
        Aws::from_sdk_config(&self.sdk_config(moto), mode, options).expect("clients")
    }
}

/// The service of a signed request, from its SigV4 credential scope, by the SDK's name for it.
fn service_of(authorization: &str) -> String {
    let scope = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split(['/', ',']).nth(3))
        .unwrap_or("unsigned");
    match scope {
        "cloudformation" => "CloudFormation",
        "ec2" => "EC2",
        "ecs" => "ECS",
        "ecr" => "ECR",
        "secretsmanager" => "Secrets Manager",
        "events" => "EventBridge",
        "logs" => "CloudWatch Logs",
        "sns" => "SNS",
        "sts" => "STS",
        other => other,
    }
    .to_string()
}

/// Reads an HTTP head (up to the empty line): its lines without line ends, or `None` at the end
/// of the stream.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// The head again, with `Connection: close` (one request per connection keeps the counting
/// simple: the client opens a new connection for its next call).
fn closing(head: &[String]) -> Vec<u8> {
    let mut text = String::new();
    for (i, line) in head.iter().enumerate() {
        let name = line.split(':').next().unwrap_or("").trim();
        if i > 0
            && (name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive"))
        {
            continue;
        }
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("Connection: close\r\n\r\n");
    text.into_bytes()
}

/// The operation of a call: `X-Amz-Target: Service.Operation`, or `Action=Operation` in a query
/// protocol's form body.
fn operation_of(head: &[String], body: &str) -> String {
    if let Some(target) = header(head, "x-amz-target") {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    body.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or("unknown")
        .to_string()
}

fn serve(
    client: TcpStream,
    upstream: &str,
    latency: Duration,
    seen: &Mutex<BTreeMap<String, Seen>>,
    rules: &[Arc<dyn ProxyRule>],
    calls: &Mutex<Vec<String>>,
    timed: &Mutex<Vec<TimedCall>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let service = service_of(header(&head, "authorization").unwrap_or(""));
    {
        let mut seen = seen.lock().unwrap();
        let counts = seen.entry(service.clone()).or_default();
        counts.in_flight += 1;
        counts.requests += 1;
        counts.peak = counts.peak.max(counts.in_flight);
    }
    let text = String::from_utf8_lossy(&body).to_string();
    let operation = operation_of(&head, &text);
    calls.lock().unwrap().push(format!("{service}.{operation}"));
    let start = std::time::Instant::now();
    let call = Exchange {
        service: &service,
        operation: &operation,
        request: &text,
    };
    let answer = match rules.iter().find_map(|r| r.before(&call)) {
        // A dropped connection: the client sees it reset, with no answer.
        Some(answer) if answer.status == 0 => {
            seen.lock().unwrap().get_mut(&service).unwrap().in_flight -= 1;
            return Ok(());
        }
        Some(answer) => {
            std::thread::sleep(latency);
            Ok(canned(&answer))
        }
        None => forward(&head, &body, upstream, latency).map(|(head, body)| {
            let status: u16 = head
                .first()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let text = String::from_utf8_lossy(&body);
            match rules.iter().find_map(|r| r.after(&call, status, &text)) {
                Some(answer) => canned(&answer),
                None => {
                    let mut answer = closing(&head);
                    answer.extend_from_slice(&body);
                    answer
                }
            }
        }),
    };
    seen.lock().unwrap().get_mut(&service).unwrap().in_flight -= 1;
    timed.lock().unwrap().push(TimedCall {
        call: format!("{service}.{operation}"),
        start,
        end: std::time::Instant::now(),
    });
    let mut client = client;
    client.write_all(&answer?)?;
    client.flush()
}

/// A whole HTTP answer from a rule's.
fn canned(answer: &ProxyAnswer) -> Vec<u8> {
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nx-amzn-RequestId: proxy-rule\r\nConnection: close\r\n\r\n{}",
        answer.status,
        if answer.status < 300 { "OK" } else { "Bad Request" },
        answer.content_type,
        answer.body.len(),
        answer.body
    )
    .into_bytes()
}

fn forward(
    head: &[String],
    body: &[u8],
    upstream: &str,
    latency: Duration,
) -> std::io::Result<(Vec<String>, Vec<u8>)> {
    std::thread::sleep(latency);
    let mut moto = TcpStream::connect(upstream)?;
    moto.write_all(&closing(head))?;
    moto.write_all(body)?;
    let mut reader = BufReader::new(moto);
    let Some(response_head) = read_head(&mut reader)? else {
        return Err(std::io::Error::other("moto closed the connection"));
    };
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?;
    Ok((response_head, rest))
}

/// How much to add to the workshop.
#[derive(Clone, Copy, Debug)]
pub struct Growth {
    /// Task definition revisions in the workshop's family.
    pub task_definitions: usize,
    /// Images in the workshop's repository.
    pub images: usize,
    /// Lambda network interfaces in the workshop's subnet.
    pub lambda_enis: usize,
    /// Running tasks in the workshop's cluster.
    pub tasks: usize,
}

/// Adds resources of the kinds the workshop has to it, and their ids to `workshop`, so that
/// `fixture::assert_workshop_gone` checks every one. Use clients straight to moto.
pub async fn grow_workshop(aws: &Aws, workshop: &mut Workshop, growth: Growth) {
    for revision in 0..growth.task_definitions {
        let container = ContainerDefinition::builder()
            .name("app")
            .image(format!("{}:latest", workshop.repository))
            .essential(true)
            // moto's RunTask needs memory on the container, not only on the task.
            .memory(512)
            .environment(
                aws_sdk_ecs::types::KeyValuePair::builder()
                    .name("SCALE_REVISION")
                    .value(revision.to_string())
                    .build(),
            )
            .build();
        let registered = aws
            .ecs
            .register_task_definition()
            .family(&workshop.task_family)
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(container)
            .send()
            .await
            .expect("register a task definition revision");
        workshop.task_definitions.push(
            registered
                .task_definition()
                .and_then(|t| t.task_definition_arn())
                .expect("RegisterTaskDefinition returns the ARN")
                .to_string(),
        );
    }

    for i in 0..growth.images {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 2000 + i,
                "digest": digest("config", i)
            },
            "layers": [{
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 40_000_000 + i,
                "digest": digest("layer", i)
            }]
        });
        let pushed = aws
            .ecr
            .put_image()
            .repository_name(&workshop.repository)
            .image_manifest(manifest.to_string())
            .image_tag(format!("build-{i}"))
            .send()
            .await
            .expect("push an image");
        workshop.image_digests.push(
            pushed
                .image()
                .and_then(|i| i.image_id())
                .and_then(|id| id.image_digest())
                .expect("PutImage returns the digest")
                .to_string(),
        );
    }

    for i in 0..growth.lambda_enis {
        let created = aws
            .ec2
            .create_network_interface()
            .subnet_id(&workshop.subnet_id)
            .groups(&workshop.security_group_id)
            .description(format!(
                "AWS Lambda VPC ENI-scale-{i:08x}-4f1c-4b7e-9d3a-5c2e8f0a{i:04x}"
            ))
            .send()
            .await
            .expect("create a Lambda network interface");
        workshop.lambda_enis.push(
            created
                .network_interface()
                .and_then(|n| n.network_interface_id())
                .expect("CreateNetworkInterface returns the id")
                .to_string(),
        );
    }

    let task_definition = workshop.task_definitions[0].clone();
    let mut started = 0;
    while started < growth.tasks {
        // RunTask starts at most 10 tasks a call.
        let count = (growth.tasks - started).min(10);
        let ran = aws
            .ecs
            .run_task()
            .cluster(&workshop.cluster)
            .task_definition(&task_definition)
            .launch_type(LaunchType::Fargate)
            .count(count as i32)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        AwsVpcConfiguration::builder()
                            .subnets(&workshop.subnet_id)
                            // moto's RunTask fails without security groups here.
                            .security_groups(&workshop.security_group_id)
                            .assign_public_ip(AssignPublicIp::Enabled)
                            .build()
                            .expect("subnets are set"),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("run tasks");
        assert!(ran.failures().is_empty(), "RunTask: {:?}", ran.failures());
        let tasks: Vec<String> = ran
            .tasks()
            .iter()
            .filter_map(|t| t.task_arn().map(str::to_string))
            .collect();
        assert_eq!(tasks.len(), count, "RunTask started {tasks:?}");
        started += count;
        workshop.tasks.extend(tasks);
    }
}

/// A well-formed sha256 digest, different for every (part, index), unlike the fixture's.
fn digest(part: &str, index: usize) -> String {
    use std::hash::{Hash, Hasher};
    let mut hex = String::new();
    for round in 0..4u8 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        ("scale", part, index, round).hash(&mut hasher);
        hex.push_str(&format!("{:016x}", hasher.finish()));
    }
    format!("sha256:{hex}")
}
