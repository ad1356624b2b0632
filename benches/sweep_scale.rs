//! Sweep at scale against the emulator (BENCHMARKS.md, "4. Scale"): how long the real CLI takes to
//! sweep 10, 25, 50 and 100 stale labs in one account, how many API calls it makes, and the peak
//! memory of its process.
//!
//!     cargo bench --profile dev --bench sweep_scale      # 10, 25, 50, 100 labs
//!     SWEEP_SCALE_LABS="100" SWEEP_SCALE_PARALLELISM=32 \
//!         cargo bench --profile dev --bench sweep_scale
//!
//! For each size: moto is reset, ECS tasks are kept RUNNING until stopped, and N labs are
//! provisioned straight into moto, concurrently (`tests/it/support/fixture.rs`: the workshop, each
//! lab with names of its own and its main stack tagged as `tests/it/plans/tagged-labs-sweep.toml` expects,
//! as `tests/it/sweep.rs` does). Provisioning is timed apart and is not part of the figures. Then the
//! real binary runs; its wall time is measured around it, and its CPU time and peak RSS are read
//! from its own rusage when it is reaped (`wait4`):
//!
//!     teardown sweep <plan> --apply --yes --report <file> --output plain [--parallelism P]
//!
//! with `AWS_ENDPOINT_URL` pointing at the counting proxy of the peer bench
//! (`benches/peers/proxy.py`, no added latency), which counts every call. The plan is
//! `tests/it/plans/tagged-labs-sweep.toml` with its age thresholds at 0 s (`older_than`, `not_updated_for`):
//! moto stamps a stack with the real clock, so every lab is seconds old, and the CLI has no way to
//! move "now" (tests/it/sweep.rs does the same for its command-line tests). Everything else is the
//! shipped plan. Afterwards every lab is checked against moto (`fixture::workshop_leftovers`) and
//! the report must say every lab was deleted; a run that fails either check is reported as FAILED,
//! with no time.
//!
//! A full run starts with a warm-up sweep of 2 labs that is not reported (moto loads each
//! service's backend on its first call). `SWEEP_SCALE_DIRECT=1` points the CLI at moto itself,
//! without the proxy, to see what the proxy costs (no call counts then). `TEARDOWN_RATE_LIMITS`
//! and `RUST_LOG` are passed on to the CLI (its environment is otherwise cleared), and
//! `SWEEP_SCALE_VERBOSE=1` runs it with `--verbose`. moto's log (`moto.log`) and the CLI's stderr
//! (`sweep-N.stderr`) are kept in the bench's temporary directory, with the reports.
//!
//! Without `--bench` (`cargo test --all-targets` runs bench targets too) it is a smoke run: one
//! sweep of 2 labs, which checks the harness end to end in a few seconds.

#[path = "../tests/it/support/fixture.rs"]
#[allow(dead_code)]
mod fixture;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudformation::types::{Capability, Tag};
use aws_sdk_ecs::config::{Credentials, SharedCredentialsProvider};
use fixture::{Workshop, WorkshopNames};
use teardown::aws::{Aws, AwsOptions, CallLimits, Mode, RateLimits};

const PLAN: &str = "tests/it/plans/tagged-labs-sweep.toml";
const REGION: &str = "us-west-2";

/// A child process that is stopped when the bench ends, however it ends.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the pinned moto server (`scripts/ensure-moto` installs it once).
fn start_moto(dir: &Path) -> (Background, String) {
    let output = Command::new("bash")
        .arg(root().join("scripts/ensure-moto"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/ensure-moto");
    assert!(output.status.success(), "scripts/ensure-moto failed");
    let server = String::from_utf8(output.stdout).expect("a path");
    let port = free_port();
    // moto's own log (one line a request, and any traceback), kept with the reports: it is what
    // says which call was slow or failed when a sweep does.
    let log_path = dir.join("moto.log");
    let log = std::fs::File::create(&log_path).expect("moto's log");
    eprintln!("moto's log: {}", log_path.display());
    let child = Command::new(server.trim())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(log.try_clone().expect("moto's log"))
        .stderr(log)
        .spawn()
        .expect("start moto_server");
    let moto = Background(child);
    wait_for_port(port, "moto_server");
    (moto, format!("http://127.0.0.1:{port}"))
}

/// Starts the counting proxy in front of moto.
fn start_proxy(moto: &str, dir: &Path) -> (Background, String) {
    let port_file = dir.join("proxy.port");
    let child = Command::new("python3")
        .arg(root().join("benches/peers/proxy.py"))
        .args(["--upstream", moto, "--port-file"])
        .arg(&port_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start benches/peers/proxy.py");
    let proxy = Background(child);
    let started = Instant::now();
    let port: u16 = loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            break port;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the proxy did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    wait_for_port(port, "the proxy");
    (proxy, format!("http://127.0.0.1:{port}"))
}

/// CPU time (user + system) a process has used so far, from /proc/PID/stat (Linux; in clock
/// ticks of 10 ms, the kernel's USER_HZ on every Linux target).
fn cpu_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// One HTTP request to a control endpoint (moto's or the proxy's); returns the body.
fn http(endpoint: &str, method: &str, path: &str, body: &str) -> String {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("answer");
    assert!(
        response.starts_with("HTTP/1.1 2") || response.starts_with("HTTP/1.0 2"),
        "{method} {path} answered: {response}"
    );
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

fn moto_clients(endpoint: &str) -> Aws {
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "sweep-scale-bench",
        )))
        .build();
    // Unpaced, as the tests' clients are (moto never throttles): paced to AWS's rates, 25 labs'
    // 75 stack changes and 50 task-definition registrations alone took 36.7 s to provision.
    let options = AwsOptions {
        call_limits: CallLimits {
            rates: RateLimits::Off,
            ..CallLimits::default()
        },
        ..AwsOptions::default()
    };
    Aws::from_sdk_config(&config, Mode::Apply, options).expect("clients")
}

/// Lab `lab`'s names, all its own (as tests/it/sweep.rs names them).
fn names(lab: &str) -> WorkshopNames {
    let lower = lab.to_lowercase();
    WorkshopNames {
        main_stack: format!("Lab-{lab}"),
        rotation_stack: format!(
            "aws-serverless-repository-SecretsManagerRDSMySQLRotationSingleUser-{}",
            lab.to_uppercase()
        ),
        rotation_function: format!("Lab-{lab}-rotation"),
        cluster: format!("Lab-{lab}-cluster"),
        service: format!("Lab-{lab}-service"),
        task_family: format!("Lab-{lab}-task"),
        repository: format!("lab-{lower}-repo"),
        secret: format!("lab-{lower}-db-secret"),
    }
}

/// Provisions one lab and tags its main stack as the sweep plan's header asks (UpdateStack with
/// its own template: moto applies new tags in place).
async fn provision_lab(aws: Aws, lab: String) -> Workshop {
    let n = names(&lab);
    let workshop = fixture::provision_workshop(&aws, &n).await;
    let tags = [
        ("Workshop", "secrets-manager-fargate"),
        ("Cluster", n.cluster.as_str()),
        ("Service", n.service.as_str()),
        ("TaskFamily", n.task_family.as_str()),
        ("Repository", n.repository.as_str()),
        ("Secret", n.secret.as_str()),
        ("RotationStack", n.rotation_stack.as_str()),
    ];
    let mut request = aws
        .cloudformation
        .update_stack()
        .stack_name(&n.main_stack)
        .use_previous_template(true)
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam);
    for (k, v) in tags {
        request = request.tags(Tag::builder().key(k).value(v).build());
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("tag the main stack of lab {lab}: {e:?}"));
    workshop
}

/// Provisions `count` labs, 8 at a time (moto serves calls in parallel, up to a point).
async fn provision_labs(aws: &Aws, count: usize) -> Vec<Workshop> {
    let mut set = tokio::task::JoinSet::new();
    let mut labs = Vec::new();
    for i in 0..count {
        if set.len() >= 8 {
            labs.push(set.join_next().await.expect("a lab").expect("provisioning"));
        }
        set.spawn(provision_lab(aws.clone(), format!("s{i:03}")));
    }
    while let Some(joined) = set.join_next().await {
        labs.push(joined.expect("provisioning"));
    }
    labs
}

/// The shipped sweep plan with age thresholds of zero: moto's stacks are all seconds old.
fn plan_for_now(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join(PLAN)).expect("the sweep plan");
    let now = text
        .replace("older_than = \"24h\"", "older_than = \"0s\"")
        .replace("not_updated_for = \"6h\"", "not_updated_for = \"0s\"");
    assert!(
        now.contains("older_than = \"0s\"") && now.contains("not_updated_for = \"0s\""),
        "{PLAN} no longer has the thresholds this bench rewrites"
    );
    let path = dir.join("stale-labs-sweep-now.toml");
    std::fs::write(&path, now).expect("write the plan");
    path
}

/// What one sweep of N labs measured.
struct Measured {
    labs: usize,
    provisioning: Duration,
    wall: Duration,
    cpu: Duration,
    /// CPU time moto spent during the sweep.
    moto_cpu: Option<Duration>,
    peak_rss_kib: u64,
    calls: u64,
    errors: u64,
    by_operation: BTreeMap<String, u64>,
    resources_done: u64,
    /// Why the run failed, if it did: it then has no time.
    failure: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn sweep_once(
    runtime: &tokio::runtime::Runtime,
    moto: &str,
    moto_pid: u32,
    endpoint: &str,
    proxy: &str,
    dir: &Path,
    plan: &Path,
    labs: usize,
    parallelism: Option<u16>,
) -> Measured {
    http(moto, "POST", "/moto-api/reset", "");
    fixture::keep_tasks_running(moto);
    let aws = moto_clients(moto);
    let started = Instant::now();
    let workshops = runtime.block_on(provision_labs(&aws, labs));
    let provisioning = started.elapsed();

    http(proxy, "POST", "/__proxy/reset", "{}");
    let report = dir.join(format!("report-{labs}.json"));
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("a home");
    let log = dir.join(format!("sweep-{labs}.log"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_teardown"));
    command
        .arg("sweep")
        .arg(plan)
        .args(["--apply", "--yes", "--output", "plain", "--report"])
        .arg(&report);
    if let Some(p) = parallelism {
        command.args(["--parallelism", &p.to_string()]);
    }
    if std::env::var("SWEEP_SCALE_VERBOSE").is_ok_and(|v| v == "1") {
        command.arg("--verbose");
    }
    command
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", &home)
        .env("TEARDOWN_RUNS_DIR", home.join("runs"))
        .env("NO_COLOR", "1")
        .envs(
            ["RUST_LOG", "TEARDOWN_RATE_LIMITS"]
                .into_iter()
                .filter_map(|name| std::env::var(name).ok().map(|value| (name, value))),
        )
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("the log"))
        .stderr(Stdio::piped());
    let moto_before = cpu_of(moto_pid);
    let clock = Instant::now();
    // Reaped by `rusage::wait` (wait4), which also gives its peak RSS: clippy cannot see that.
    #[allow(clippy::zombie_processes)]
    let mut child = command.spawn().expect("run teardown sweep");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).ok();
    }
    std::fs::write(dir.join(format!("sweep-{labs}.stderr")), &stderr).expect("the stderr log");
    let usage = rusage::wait(&child);
    let wall = clock.elapsed();
    let moto_cpu = moto_before.zip(cpu_of(moto_pid)).map(|(a, b)| b - a);
    let counts: serde_json::Value =
        serde_json::from_str(&http(proxy, "GET", "/__proxy/counts", "")).expect("proxy counts");

    let mut problems = Vec::new();
    if usage.exit_code != Some(0) {
        problems.push(format!(
            "exit {:?}: {}",
            usage.exit_code,
            stderr.lines().last().unwrap_or("")
        ));
    }
    let mut resources_done = 0;
    match std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    {
        Some(report) => {
            if report["counts"]["deleted"] != labs {
                problems.push(format!("report counts: {}", report["counts"]));
            }
            resources_done = report["labs"]
                .as_array()
                .map(|labs| {
                    labs.iter()
                        .map(|l| l["resources"]["done"].as_u64().unwrap_or(0))
                        .sum()
                })
                .unwrap_or(0);
        }
        None => problems.push("no report".into()),
    }
    // Really gone: each lab checked against moto itself.
    let left: Vec<String> = runtime.block_on(async {
        let mut left = Vec::new();
        for w in &workshops {
            for thing in fixture::workshop_leftovers(&aws, w).await {
                left.push(format!("{}: {thing}", w.main_stack));
            }
        }
        left
    });
    if !left.is_empty() {
        problems.push(format!(
            "{} things left, e.g. {}",
            left.len(),
            left[..left.len().min(3)].join("; ")
        ));
    }
    let by_operation = counts["by_operation"]
        .as_object()
        .map(|ops| {
            ops.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    Measured {
        labs,
        provisioning,
        wall,
        cpu: usage.cpu,
        moto_cpu,
        peak_rss_kib: usage.peak_rss_kib,
        calls: counts["total"].as_u64().unwrap_or(0),
        errors: counts["errors"].as_u64().unwrap_or(0),
        by_operation,
        resources_done,
        failure: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

/// The child's own resource use, read when it is reaped: `wait4` gives the peak RSS of that one
/// process (RUSAGE_CHILDREN would mix in every child reaped before).
mod rusage {
    use std::process::Child;
    use std::time::Duration;

    pub struct Usage {
        pub exit_code: Option<i32>,
        pub cpu: Duration,
        pub peak_rss_kib: u64,
    }

    #[repr(C)]
    struct Timeval {
        sec: i64,
        usec: i64,
    }

    /// `struct rusage` of Linux on 64-bit targets: two timevals, then 14 longs (ru_maxrss first).
    #[repr(C)]
    struct Rusage {
        utime: Timeval,
        stime: Timeval,
        maxrss: i64,
        rest: [i64; 13],
    }

    extern "C" {
        fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut Rusage) -> i32;
    }

    /// Waits for `child` (instead of `Child::wait`) and returns its exit code and usage.
    pub fn wait(child: &Child) -> Usage {
        let mut status = 0;
        let mut usage = Rusage {
            utime: Timeval { sec: 0, usec: 0 },
            stime: Timeval { sec: 0, usec: 0 },
            maxrss: 0,
            rest: [0; 13],
        };
        // SAFETY: wait4 writes only to the two pointers, which point at live values of the
        // layout the kernel expects (x86_64 and aarch64 Linux: long = i64).
        let reaped = unsafe { wait4(child.id() as i32, &mut status, 0, &mut usage) };
        assert_eq!(reaped, child.id() as i32, "wait4 failed");
        let time = |t: &Timeval| Duration::new(t.sec as u64, t.usec as u32 * 1000);
        Usage {
            // WIFEXITED / WEXITSTATUS
            exit_code: (status & 0x7f == 0).then_some((status >> 8) & 0xff),
            cpu: time(&usage.utime) + time(&usage.stime),
            peak_rss_kib: usage.maxrss as u64,
        }
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = match std::env::var("SWEEP_SCALE_LABS") {
        Ok(list) => list
            .split_whitespace()
            .map(|n| n.parse().expect("SWEEP_SCALE_LABS: numbers"))
            .collect(),
        Err(_) if full => vec![10, 25, 50, 100],
        Err(_) => vec![2],
    };
    let parallelism: Option<u16> = std::env::var("SWEEP_SCALE_PARALLELISM")
        .ok()
        .map(|p| p.parse().expect("SWEEP_SCALE_PARALLELISM: a number"));
    // SWEEP_SCALE_DIRECT=1: the CLI talks to moto itself, without the counting proxy (what the
    // proxy costs; no call counts then).
    let direct = std::env::var("SWEEP_SCALE_DIRECT").is_ok_and(|v| v == "1");
    let dir = tempfile::Builder::new()
        .prefix("teardown-sweep-scale.")
        .tempdir()
        .expect("a temporary directory")
        .keep();
    let plan = plan_for_now(&dir);
    let (moto_process, moto) = start_moto(&dir);
    let moto_pid = moto_process.0.id();
    let (proxy_process, proxy) = start_proxy(&moto, &dir);
    let endpoint = if direct { moto.clone() } else { proxy.clone() };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");

    println!("# Sweep at scale against moto\n");
    if !full {
        println!(
            "(smoke run: `cargo bench --profile dev --bench sweep_scale` runs the full benchmark)\n"
        );
    }
    println!(
        "`teardown sweep {PLAN} (ages 0 s) --apply --yes --report FILE --output plain{}`, {} build, {}.\n",
        parallelism.map(|p| format!(" --parallelism {p}")).unwrap_or_default(),
        if cfg!(debug_assertions) { "debug (dev profile)" } else { "optimised" },
        if direct { "straight to moto (no proxy: calls not counted)" } else { "through the counting proxy (no added latency)" }
    );
    // A warm-up sweep, not in the table: moto loads each service's backend on its first call.
    if full {
        let warm = sweep_once(
            &runtime,
            &moto,
            moto_pid,
            &endpoint,
            &proxy,
            &dir,
            &plan,
            2,
            parallelism,
        );
        if let Some(why) = warm.failure {
            eprintln!("the warm-up sweep of 2 labs failed: {why}");
            drop((proxy_process, moto_process));
            std::process::exit(1);
        }
    }
    println!("| labs | provisioning (not timed) | sweep wall | per lab | CPU (user + sys) | moto's CPU meanwhile | peak RSS | API calls | calls per lab | error answers | resources deleted or changed | check |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut all = Vec::new();
    for &labs in &sizes {
        let m = sweep_once(
            &runtime,
            &moto,
            moto_pid,
            &endpoint,
            &proxy,
            &dir,
            &plan,
            labs,
            parallelism,
        );
        let row = match &m.failure {
            None => format!(
                "| {} | {:.1} s | **{:.2} s** | {:.3} s | {:.2} s | {} | **{:.1} MiB** | {} | {} | {} | {} | all {} labs gone |",
                m.labs,
                m.provisioning.as_secs_f64(),
                m.wall.as_secs_f64(),
                m.wall.as_secs_f64() / m.labs as f64,
                m.cpu.as_secs_f64(),
                m.moto_cpu.map_or("-".into(), |c| format!("{:.2} s", c.as_secs_f64())),
                m.peak_rss_kib as f64 / 1024.0,
                if m.calls == 0 { "-".to_string() } else { m.calls.to_string() },
                if m.calls == 0 { "-".to_string() } else { format!("{:.1}", m.calls as f64 / m.labs as f64) },
                m.errors,
                m.resources_done,
                m.labs
            ),
            Some(why) => format!(
                "| {} | {:.1} s | FAILED | - | - | - | - | {} | - | {} | {} | {why} |",
                m.labs,
                m.provisioning.as_secs_f64(),
                m.calls,
                m.errors,
                m.resources_done
            ),
        };
        println!("{row}");
        std::io::stdout().flush().ok();
        all.push(m);
    }
    if let Some(biggest) = all
        .iter()
        .filter(|m| m.failure.is_none())
        .max_by_key(|m| m.labs)
    {
        println!("\nCalls by operation, {} labs:\n", biggest.labs);
        println!("| operation | calls | per lab |");
        println!("|---|---|---|");
        for (op, n) in &biggest.by_operation {
            println!("| {op} | {n} | {:.2} |", *n as f64 / biggest.labs as f64);
        }
    }
    let failed = all.iter().filter(|m| m.failure.is_some()).count();
    if full || failed > 0 {
        println!("\nRaw data (sweep logs, reports): {}", dir.display());
    } else {
        // A smoke run that passed leaves nothing behind.
        let _ = std::fs::remove_dir_all(&dir);
    }
    if failed > 0 {
        eprintln!("{failed} sweep(s) failed: see the table");
        // `exit` skips destructors: stop moto and the proxy first.
        drop((proxy_process, moto_process));
        std::process::exit(1);
    }
}
