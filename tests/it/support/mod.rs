//! Test harness: real moto servers (installed by `scripts/ensure-moto`, pinned, in a virtual
//! environment), a small pool per test process, each started on a free loopback port the first
//! time a test needs it and stopped when the process ends. A test has a server to itself for its
//! whole turn and starts from an empty emulator (`POST /moto-api/reset`).
//!
//! The pool has [`DEFAULT_SERVERS`] servers (`TEARDOWN_MOTO_SERVERS=N` to change it): moto is one
//! Python process and answers one request at a time, and a test spends much of its turn waiting
//! (polls, retries), so two turns side by side finish the suite in about two thirds of the time on
//! two cores.
#![allow(dead_code)]

pub mod aws_like;
pub mod faults;
pub mod fixture;
pub mod real_workshop;
pub mod scale;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::Credentials;
use teardown::aws::{Aws, AwsOptions, Mode};

/// The region every test uses.
pub const REGION: &str = "us-west-2";
/// moto's account id.
pub const ACCOUNT: &str = "123456789012";

/// Servers in the pool unless `TEARDOWN_MOTO_SERVERS` says otherwise.
pub const DEFAULT_SERVERS: usize = 2;

/// The pool: one slot per server (its endpoint once started), and a permit per free server.
struct Pool {
    servers: Vec<OnceLock<String>>,
    free: std::sync::Mutex<Vec<usize>>,
    permits: tokio::sync::Semaphore,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let size = std::env::var("TEARDOWN_MOTO_SERVERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_SERVERS);
        Pool {
            servers: (0..size).map(|_| OnceLock::new()).collect(),
            free: std::sync::Mutex::new((0..size).rev().collect()),
            permits: tokio::sync::Semaphore::new(size),
        }
    })
}

/// One server of the pool, held by one test until dropped.
struct Turn {
    server: usize,
    _permit: tokio::sync::SemaphorePermit<'static>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        pool().free.lock().unwrap().push(self.server);
    }
}

/// The emulator, reset, for one test. Holding it keeps other tests off its server.
pub struct Moto {
    _turn: Turn,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// When this test's turn began: with `TEARDOWN_TEST_TIMES=FILE`, each test's time on the
    /// emulator is appended to FILE, which shows where the suite's time goes (the turns add up).
    turn_began: Instant,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let Some(file) = std::env::var_os("TEARDOWN_TEST_TIMES") else {
            return;
        };
        let test = std::thread::current().name().unwrap_or("?").to_string();
        let line = format!("{:.2}\t{test}\n", self.turn_began.elapsed().as_secs_f64());
        use std::io::Write as _;
        if let Ok(mut out) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            let _ = out.write_all(line.as_bytes());
        }
    }
}

/// Waits for this test's turn, starts the emulator if it is not running yet, and resets it.
pub async fn moto() -> Moto {
    let pool = pool();
    let permit = pool
        .permits
        .acquire()
        .await
        .expect("the pool is never closed");
    let server = pool
        .free
        .lock()
        .unwrap()
        .pop()
        .expect("a permit means a free server");
    let turn = Turn {
        server,
        _permit: permit,
    };
    let endpoint = pool.servers[server].get_or_init(start_server).clone();
    let moto = Moto {
        _turn: turn,
        endpoint,
        turn_began: Instant::now(),
    };
    moto.post("/moto-api/reset", "application/json", "");
    moto
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start_server() -> String {
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/ensure-moto"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/ensure-moto");
    assert!(
        output.status.success(),
        "scripts/ensure-moto failed: could not install moto"
    );
    let moto_server = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A watchdog shell owns the server and stops it when this test process is gone, so that no
    // emulator outlives the tests (statics are never dropped).
    let script = format!(
        "'{moto_server}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         trap 'kill $m 2>/dev/null' EXIT; \
         while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done",
        parent = std::process::id()
    );
    // The watchdog is left to run: it ends by itself with this process, and waiting for it here
    // would block the tests.
    let watchdog = Command::new("bash")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .spawn()
        .expect("start moto_server");
    std::mem::forget(watchdog);
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto_server did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    endpoint
}

impl Moto {
    /// The SDK configuration for the emulator: static test credentials, region, endpoint.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
                Credentials::new("testing", "testing", None, None, "teardown-tests"),
            ))
            .build()
    }

    /// teardown's clients, pointed at the emulator.
    pub fn aws(&self, mode: Mode) -> Aws {
        self.aws_with(mode, AwsOptions::default())
    }

    /// teardown's clients with extra options (e.g. fault-injecting interceptors).
    pub fn aws_with(&self, mode: Mode, options: AwsOptions) -> Aws {
        Aws::from_sdk_config(&self.sdk_config(), mode, options).expect("clients")
    }

    /// The environment for running the `teardown` binary against the emulator, with a HOME that
    /// holds no profile of the developer's.
    pub fn cli_env(&self, home: &Path) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("HOME", home.to_str().unwrap()),
            ("NO_COLOR", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Keeps ECS tasks RUNNING until they are stopped (by default moto moves a task one state on
    /// at every DescribeTasks, so a waiter would pass without anyone stopping it).
    pub fn keep_tasks_running(&self) {
        self.post(
            "/moto-api/state-manager/set-transition",
            "application/json",
            r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#,
        );
    }

    /// POSTs to one of moto's control endpoints and returns the body.
    pub fn post(&self, path: &str, content_type: &str, body: &str) -> String {
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect to moto");
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 2") || response.starts_with("HTTP/1.0 2"),
            "moto {path} answered: {response}"
        );
        response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

/// Runs one step of `spec` with this `match` and these options (TOML text), through the real
/// adapter, the way the plan runner does; returns what it reported and its progress messages.
pub async fn run_action(
    aws: std::sync::Arc<Aws>,
    spec: &teardown::actions::ActionSpec,
    selector: &str,
    options: &str,
) -> (
    Result<teardown::engine::StepOutput, teardown::engine::StepError>,
    Vec<String>,
) {
    use teardown::engine::Task;
    let input = teardown::actions::StepInput {
        step: "t".into(),
        selector: toml::from_str(selector).expect("selector TOML"),
        options: toml::from_str(options).expect("options TOML"),
    };
    let action = (spec.build)(&input).unwrap_or_else(|e| panic!("{}: {e:?}", spec.name));
    let step = teardown::actions::ActionStep::new(
        action,
        aws,
        teardown::actions::DEFAULT_PROTECT_TAG,
        vec![],
    );
    let (sink, mut events) = teardown::event::EventSink::channel();
    let context =
        teardown::engine::StepContext::detached("t", std::time::Duration::from_secs(120), sink);
    let result = step.run(&context).await;
    drop(context);
    let mut progress = Vec::new();
    while let Some(event) = events.recv().await {
        if let teardown::event::EventKind::StepProgress { message, .. } = event.kind {
            progress.push(message);
        }
    }
    (result, progress)
}

/// The IAM action of a call the clients made, from the SDK's service name (as the call log
/// records it) and the operation: `("CloudWatch Logs", "DeleteLogGroup")` is
/// `logs:DeleteLogGroup`.
pub fn iam_action(service: &str, operation: &str) -> String {
    let prefix = match service {
        "Secrets Manager" => "secretsmanager".to_string(),
        "EventBridge" => "events".to_string(),
        "CloudWatch Logs" => "logs".to_string(),
        other => other.to_lowercase(),
    };
    format!("{prefix}:{operation}")
}

/// The `teardown` binary under test: `$TEARDOWN_BIN` when set, else the one cargo built for this
/// test run. Where several work trees share one target directory, `target/debug/teardown` is
/// whichever tree built last; point `TEARDOWN_BIN` at this tree's `target/debug/deps/teardown-HASH`
/// to test its own.
pub fn teardown_bin() -> String {
    std::env::var("TEARDOWN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_teardown").to_string())
}

/// The `teardown` binary, run from the repository with only `env` (and PATH) in its
/// environment and no standard input.
pub fn teardown_command(env: &[(String, String)], args: &[&str]) -> Command {
    let mut command = Command::new(teardown_bin());
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}
