//! The call budget of a whole `teardown run`: how many AWS calls the binary makes, pre-flight
//! included, on the two workshops the benchmarks measure, so that the count cannot grow back
//! unnoticed (issue 15). Each budget is what the code makes today; a change that needs more calls
//! must say why here and in BENCHMARKS.md.
//!
//! - the made-up workshop of `benches/peers.sh` (`tests/it/plans/named-workshop.toml`, with its
//!   look-alike bystanders), as the bench runs it;
//! - the shipped plan on the real workshop's fixture (two attendees' labs and a third's leftovers),
//!   as `real_teardown` runs it, with AWS's DeleteStack answer where moto differs
//!   ([`DeleteStackAsAws`]).
//!
//! The calls are counted by the proxy in front of moto, outside the clients. Each is held a few
//! milliseconds, as a round trip to AWS would, so that the chain of calls that wait for one another
//! shows in the timing; its depth is printed (with the chain) but not asserted: it is a timing, and
//! a loaded machine may stretch a call past the start of the next one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::support;
use support::aws_like::{is_read_only, DeleteStackAsAws};
use support::fixture::{self, WorkshopNames};
use support::real_workshop::{self, lookalike_damage, real_lab_damage, real_lab_leftovers};
use support::scale::{chain_depth, CountingProxy, ProxyRule};
use teardown::aws::Mode;

/// What one run cost, as the proxy saw it.
struct Cost {
    calls: Vec<String>,
    depth: usize,
}

impl Cost {
    fn of(proxy: &CountingProxy) -> Cost {
        let (depth, chain) = chain_depth(&proxy.timed_calls());
        let calls = proxy.calls();
        let mut by_operation = BTreeMap::<&str, usize>::new();
        for call in &calls {
            *by_operation.entry(call.as_str()).or_default() += 1;
        }
        eprintln!(
            "{} calls, {} of them changes, {depth} deep ({}): {by_operation:#?}",
            calls.len(),
            calls.iter().filter(|c| !is_read_only(c)).count(),
            chain.join(" -> ")
        );
        Cost { calls, depth }
    }

    fn mutating(&self) -> usize {
        self.calls.iter().filter(|c| !is_read_only(c)).count()
    }

    /// Fails the test when the run made more than `calls` calls, or more than `changes` of them
    /// change something, or the proxy saw no chain at all.
    fn assert_within(&self, calls: usize, changes: usize) {
        assert!(
            self.calls.len() <= calls,
            "{} calls, budget {calls}: {:#?}",
            self.calls.len(),
            self.calls
        );
        assert!(
            self.mutating() <= changes,
            "{} changes, budget {changes}: {:#?}",
            self.mutating(),
            self.calls
        );
        assert!(self.depth > 0);
    }
}

/// Runs the binary against moto through a proxy with `rules` and a small latency per call.
fn run_through_proxy(
    moto: &support::Moto,
    rules: Vec<Arc<dyn ProxyRule>>,
    args: &[&str],
) -> (std::process::Output, CountingProxy) {
    let proxy = CountingProxy::with_rules(&moto.endpoint, Duration::from_millis(20), rules);
    let home = tempfile::tempdir().unwrap();
    let mut env = moto.cli_env(home.path());
    for (key, value) in env.iter_mut() {
        if key == "AWS_ENDPOINT_URL" {
            *value = proxy.endpoint.clone();
        }
    }
    env.push((
        "TEARDOWN_RUNS_DIR".into(),
        home.path().join("runs").to_str().unwrap().into(),
    ));
    let out = support::teardown_command(&env, args).output().unwrap();
    (out, proxy)
}

/// The made-up workshop of `benches/peers.sh`: 13 changes (2 DeleteStack, 2
/// DeleteNetworkInterface, 2 DeregisterTaskDefinition, UpdateService, StopTask, DeleteService,
/// DeleteCluster, DeleteRepository, CancelRotateSecret, DeleteSecret, and no second UpdateService),
/// the account check, and the reads: each resource read once for the pre-flight and the run
/// together, plus the polls of what does not finish within its own call. 33 since the tasks are
/// listed twice (meant to run, and told to stop but not stopped yet: a cluster holds both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peers_workshop_run_stays_within_its_call_budget() {
    const BUDGET: usize = 33;
    const MUTATING: usize = 13;
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let provisioner = moto.aws(Mode::Apply);
    let workshop = fixture::provision_workshop(&provisioner, &WorkshopNames::default()).await;
    let bystanders = fixture::provision_bystanders(&provisioner).await;

    let (out, proxy) = run_through_proxy(
        &moto,
        Vec::new(),
        &[
            "run",
            "tests/it/plans/named-workshop.toml",
            "--yes",
            "--output",
            "plain",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    fixture::assert_workshop_gone(&provisioner, &workshop).await;
    fixture::assert_bystanders_untouched(&provisioner, &bystanders).await;

    Cost::of(&proxy).assert_within(BUDGET, MUTATING);
}

/// The shipped plan on the real workshop: one stack name in, every other value looked up, the
/// pre-flight, the run; the other lab and the look-alikes untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_workshop_run_stays_within_its_call_budget() {
    const BUDGET: usize = 55;
    const MUTATING: usize = 16;
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let aws = moto.aws(Mode::Apply);
    let (ann, anna) = real_workshop::provision_two_real_labs(&aws).await;
    let lookalikes = real_workshop::provision_real_lookalikes(&aws).await;

    let main_stack = format!("main_stack={}", ann.main_stack);
    let (out, proxy) = run_through_proxy(
        &moto,
        vec![Arc::new(DeleteStackAsAws)],
        &[
            "run",
            "plans/secrets-manager-fargate-workshop.toml",
            "--var",
            &main_stack,
            "--yes",
            "--output",
            "plain",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let reader = moto.aws(Mode::DryRun);
    let left = real_lab_leftovers(&reader, &ann).await;
    assert!(left.is_empty(), "left of the lab: {left:#?}\n{stdout}");
    let damage = real_lab_damage(&reader, &anna).await;
    assert!(damage.is_empty(), "the other lab was changed: {damage:#?}");
    let damage = lookalike_damage(&reader, &lookalikes).await;
    assert!(damage.is_empty(), "look-alikes were changed: {damage:#?}");

    Cost::of(&proxy).assert_within(BUDGET, MUTATING);
}
