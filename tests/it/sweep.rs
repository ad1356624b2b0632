//! Sweeps of stale labs against the emulator: labs are found by their main stack's tags and age,
//! each kept lab says why, a dry run changes nothing, a real sweep deletes exactly the stale labs
//! (in two regions, in one run), shards partition the labs, and the command's exit codes and
//! report are as documented.
//!
//! Ages: moto stamps a stack's CreationTime with the real clock, so every stack here is seconds
//! old. The in-process tests measure ages against an injected "now" (`SweepOptions::now`) set a
//! day after the young lab's creation, less a millisecond: the labs provisioned before it are
//! then just over a day old, and it is just under. The command-line tests use a copy of the plan
//! whose thresholds are zero instead.
//!
//! Tags: the workshop fixture creates the main stack without tags; each lab's main stack is
//! tagged afterwards with UpdateStack (same template, new tags), which moto applies in place.
//!
//! Use: moto leaves an ECS task's startedAt empty, so "in use" is simulated for one lab by
//! replacing the answer to DescribeTasks for its cluster (read-only clients only) with one whose
//! task started an hour before "now".

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Instant;

use aws_config::Region;
use aws_sdk_cloudformation::types::{Capability, Tag};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use support::faults::{Answer, Faults, Rule};
use support::fixture::{self, Workshop, WorkshopNames};
use teardown::aws::{Aws, AwsOptions, Mode};
use teardown::cli::Outcome;
use teardown::event::{Event, EventKind, EventSink};
use teardown::sweep::{RegionClients, Sweep, SweepOptions, SweepPlan};
use tokio_util::sync::CancellationToken;

const PLAN: &str = "tests/it/plans/tagged-labs-sweep.toml";
const WEST: &str = support::REGION;
const EAST: &str = "us-east-1";

/// The names of lab `lab`'s resources, all its own.
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

/// The tags the lab provisioner puts on a main stack (see the plan's header).
fn lab_tags(n: &WorkshopNames) -> BTreeMap<String, String> {
    [
        ("Workshop", "secrets-manager-fargate"),
        ("Cluster", n.cluster.as_str()),
        ("Service", n.service.as_str()),
        ("TaskFamily", n.task_family.as_str()),
        ("Repository", n.repository.as_str()),
        ("Secret", n.secret.as_str()),
        ("RotationStack", n.rotation_stack.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// teardown's clients for the emulator in `region`.
fn aws_in(moto: &support::Moto, region: &str, mode: Mode, options: AwsOptions) -> Aws {
    let config = moto
        .sdk_config()
        .to_builder()
        .region(Region::new(region.to_string()))
        .build();
    Aws::from_sdk_config(&config, mode, options).expect("clients")
}

/// Tags a stack in place (UpdateStack with its own template).
async fn tag_stack(aws: &Aws, stack: &str, tags: &BTreeMap<String, String>) {
    let mut request = aws
        .cloudformation
        .update_stack()
        .stack_name(stack)
        .use_previous_template(true)
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam);
    for (k, v) in tags {
        request = request.tags(Tag::builder().key(k).value(v).build());
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("tag stack {stack}: {e:?}"));
}

/// Edits a lab's tags before they are put on its main stack.
type TagChange = fn(&mut BTreeMap<String, String>);

/// Provisions lab `lab` and tags its main stack (`change` edits the tags first).
async fn provision_lab(aws: Aws, lab: String, change: TagChange) -> Workshop {
    let n = names(&lab);
    let workshop = fixture::provision_workshop(&aws, &n).await;
    let mut tags = lab_tags(&n);
    change(&mut tags);
    tag_stack(&aws, &n.main_stack, &tags).await;
    workshop
}

/// Provisions labs concurrently (moto serves calls in parallel).
async fn provision_labs(labs: Vec<(Aws, String, TagChange)>) -> BTreeMap<String, Workshop> {
    let mut set = tokio::task::JoinSet::new();
    for (aws, lab, change) in labs {
        set.spawn(async move { (lab.clone(), provision_lab(aws, lab, change).await) });
    }
    let mut done = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        let (lab, workshop) = joined.expect("provisioning panicked");
        done.insert(lab, workshop);
    }
    done
}

fn unchanged(_: &mut BTreeMap<String, String>) {}

async fn created(aws: &Aws, stack: &str) -> DateTime<Utc> {
    let out = aws
        .cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    let t = out.stacks()[0].creation_time().unwrap();
    teardown::aws::to_chrono(t).unwrap()
}

/// Discovers, previews and (when the regions have clients that may delete) applies.
pub(crate) async fn sweep(
    plan: &SweepPlan,
    regions: &[RegionClients],
    options: &SweepOptions,
) -> Sweep {
    let mut sweep = Sweep::discover(plan, regions, support::ACCOUNT, options).await;
    let (events, _) = EventSink::channel();
    let cancel = CancellationToken::new();
    sweep.preview(regions, options, &events, &cancel).await;
    if regions.iter().all(|r| r.write.is_some()) {
        sweep.apply(regions, options, &events, &cancel).await;
    }
    sweep
}

pub(crate) fn report(sweep: &Sweep, plan: &SweepPlan, options: &SweepOptions) -> Value {
    serde_json::to_value(sweep.report(plan, options)).unwrap()
}

/// Lab id -> (status, reasons joined), from a report.
pub(crate) fn statuses(report: &Value) -> BTreeMap<String, (String, String)> {
    report["labs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lab| {
            let reasons: Vec<&str> = lab["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            (
                lab["id"].as_str().unwrap().to_string(),
                (
                    lab["status"].as_str().unwrap().to_string(),
                    reasons.join("; "),
                ),
            )
        })
        .collect()
}

pub(crate) fn lab<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["labs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == id)
        .unwrap_or_else(|| panic!("no lab {id} in the report"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_says_why_for_each_lab_changes_nothing_dry_and_deletes_exactly_the_stale_labs() {
    let started = Instant::now();
    let moto = support::moto().await;
    fixture::keep_tasks_running(&moto.endpoint);
    let west = moto.aws(Mode::Apply);
    let east = aws_in(&moto, EAST, Mode::Apply, AwsOptions::default());
    let protect: TagChange = |tags| {
        tags.insert("teardown:protect".into(), "true".into());
    };
    let untagged: TagChange = |tags| {
        tags.remove("Cluster");
    };
    let mut workshops = provision_labs(vec![
        (west.clone(), "a".into(), unchanged),
        (west.clone(), "b".into(), unchanged),
        (west.clone(), "p".into(), protect),
        (west.clone(), "u".into(), untagged),
        (west.clone(), "busy".into(), unchanged),
        (east.clone(), "e".into(), unchanged),
    ])
    .await;
    let bystanders = fixture::provision_bystanders(&west).await;
    // Last: the young lab. "now" is a day after its creation, less a millisecond.
    workshops.extend(provision_labs(vec![(west.clone(), "y".into(), unchanged)]).await);
    let now = created(&west, "Lab-y").await + chrono::Duration::hours(24)
        - chrono::Duration::milliseconds(1);
    let provisioned = started.elapsed();

    let region_of = |lab: &str| if lab == "e" { &east } else { &west };
    let mut before = BTreeMap::new();
    for (lab, w) in &workshops {
        let left = fixture::workshop_leftovers(region_of(lab), w).await;
        assert!(left.len() > 10, "lab {lab} is not all there: {left:?}");
        before.insert(lab.clone(), left);
    }

    // Lab-busy's task started an hour before "now" (moto gives no start time: see the top).
    let busy = &workshops["busy"];
    let started_at = (now - chrono::Duration::hours(1)).timestamp();
    let described = json!({
        "tasks": [{
            "taskArn": busy.tasks[0],
            "clusterArn": format!("arn:aws:ecs:{WEST}:{}:cluster/{}", support::ACCOUNT, busy.cluster),
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "startedAt": started_at
        }],
        "failures": []
    });
    let in_use = Faults::new(vec![Rule::on(
        "ECS",
        "DescribeTasks",
        usize::MAX,
        Answer::Body(described.to_string()),
    )
    .when_request_contains("Lab-busy-cluster")]);
    let read_west = Arc::new(aws_in(
        &moto,
        WEST,
        Mode::DryRun,
        AwsOptions {
            interceptors: vec![in_use.shared()],
            ..AwsOptions::default()
        },
    ));
    let read_east = Arc::new(aws_in(&moto, EAST, Mode::DryRun, AwsOptions::default()));
    let plan = SweepPlan::load(Path::new(PLAN), &[]).unwrap_or_else(|e| panic!("{e}"));
    let options = SweepOptions {
        now,
        parallelism: 16,
        ..SweepOptions::default()
    };

    // ---- dry run ------------------------------------------------------------------------------
    let dry_started = Instant::now();
    let regions = [
        RegionClients {
            read: read_west.clone(),
            write: None,
        },
        RegionClients {
            read: read_east.clone(),
            write: None,
        },
    ];
    let dry = sweep(&plan, &regions, &options).await;
    let dry_took = dry_started.elapsed();
    assert_eq!(dry.outcome(), Outcome::Success);
    let dry_report = report(&dry, &plan, &options);
    let found = statuses(&dry_report);
    let id = |lab: &str| format!("{}/Lab-{lab}", if lab == "e" { EAST } else { WEST });
    let status = |lab: &str| found[&id(lab)].0.as_str();
    let reasons = |lab: &str| found[&id(lab)].1.as_str();
    // Only the labs: bystander and rotation stacks carry no workshop tag.
    assert_eq!(
        found.keys().cloned().collect::<BTreeSet<_>>(),
        ["a", "b", "busy", "e", "p", "u", "y"]
            .iter()
            .map(|l| id(l))
            .collect::<BTreeSet<_>>(),
        "{found:#?}"
    );
    for stale in ["a", "b", "e"] {
        assert_eq!(status(stale), "would-delete", "{stale}: {}", reasons(stale));
    }
    assert_eq!(status("p"), "kept");
    assert_eq!(reasons("p"), "protected: tagged teardown:protect");
    assert_eq!(status("u"), "kept");
    assert_eq!(
        reasons("u"),
        "cannot bind `cluster`: the stack has no tag `Cluster`"
    );
    assert_eq!(status("busy"), "kept");
    assert_eq!(
        reasons("busy"),
        "in use: a task in cluster Lab-busy-cluster started 1h ago (not_updated_for 6h)"
    );
    assert_eq!(status("y"), "kept");
    assert!(
        reasons("y").starts_with("too young: created 23h59m ago (older_than 24h)"),
        "{}",
        reasons("y")
    );
    assert!(
        in_use.injected() > 0,
        "the in-use answer was never asked for"
    );

    // Why each stale lab matched, what it binds, and what would go.
    let a = lab(&dry_report, &id("a"));
    let matched = a["matched_because"].as_str().unwrap();
    assert!(
        matched.starts_with("tag Workshop=secrets-manager-fargate, created 24h"),
        "{matched}"
    );
    assert_eq!(a["vars"]["cluster"], "Lab-a-cluster");
    assert_eq!(a["vars"]["main_stack"], "Lab-a");
    assert_eq!(a["stack"]["tags"]["Workshop"], "secrets-manager-fargate");
    assert_eq!(a["steps"].as_array().unwrap().len(), 9);
    assert!(
        a["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["outcome"] == "succeeded"),
        "{:#}",
        a["steps"]
    );
    let planned = a["resources"]["planned"].as_u64().unwrap();
    assert!(
        planned >= 12,
        "{planned} resources would go: {:#}",
        a["steps"]
    );
    assert!(
        a["notes"][0]
            .as_str()
            .unwrap()
            .contains("1 task running in cluster Lab-a-cluster with no start time"),
        "{:#}",
        a["notes"]
    );
    assert_eq!(dry_report["dry_run"], true);
    assert_eq!(dry_report["counts"]["would-delete"], 3);
    assert_eq!(dry_report["counts"]["kept"], 4);
    assert_eq!(dry_report["exit_code"], 0);
    // Not one mutating call, and everything is still there.
    for aws in [&read_west, &read_east] {
        assert_eq!(aws.calls.mutating_operations(), Vec::<String>::new());
    }
    for (lab, w) in &workshops {
        let left = fixture::workshop_leftovers(region_of(lab), w).await;
        assert_eq!(left, before[lab], "the dry run changed lab {lab}");
    }

    // ---- for real -----------------------------------------------------------------------------
    let apply_started = Instant::now();
    let write_west = Arc::new(aws_in(&moto, WEST, Mode::Apply, AwsOptions::default()));
    let write_east = Arc::new(aws_in(&moto, EAST, Mode::Apply, AwsOptions::default()));
    let regions = [
        RegionClients {
            read: read_west.clone(),
            write: Some(write_west.clone()),
        },
        RegionClients {
            read: read_east.clone(),
            write: Some(write_east.clone()),
        },
    ];
    let done = sweep(&plan, &regions, &options).await;
    let apply_took = apply_started.elapsed();
    let done_report = report(&done, &plan, &options);
    assert_eq!(
        done.outcome(),
        Outcome::Success,
        "{:#}",
        done_report["labs"]
    );
    let after = statuses(&done_report);
    for stale in ["a", "b", "e"] {
        assert_eq!(
            after[&id(stale)].0,
            "deleted",
            "{stale}: {:?}",
            after[&id(stale)]
        );
        fixture::assert_workshop_gone(region_of(stale), &workshops[stale]).await;
    }
    for kept in ["p", "u", "busy", "y"] {
        assert_eq!(after[&id(kept)], found[&id(kept)], "{kept}");
        let left = fixture::workshop_leftovers(region_of(kept), &workshops[kept]).await;
        assert_eq!(left, before[kept], "the sweep touched kept lab {kept}");
    }
    fixture::assert_bystanders_untouched(&west, &bystanders).await;
    let a = lab(&done_report, &id("a"));
    assert!(a["resources"]["done"].as_u64().unwrap() >= 12, "{a:#}");
    assert_eq!(done_report["dry_run"], false);
    assert_eq!(done_report["counts"]["deleted"], 3);
    // Every change was made by a step of a stale lab; the read-only clients changed nothing.
    let stale_prefixes = [id("a") + "/", id("b") + "/", id("e") + "/"];
    for aws in [&write_west, &write_east] {
        for call in aws.calls.records().into_iter().filter(|c| c.mutating) {
            let step = call.step.clone().unwrap_or_default();
            assert!(
                stale_prefixes.iter().any(|p| step.starts_with(p)),
                "{}.{} by {step}",
                call.service,
                call.operation
            );
        }
    }
    for aws in [&read_west, &read_east] {
        assert_eq!(aws.calls.mutating_operations(), Vec::<String>::new());
    }
    eprintln!(
        "timings: provisioning {:?}, dry sweep {dry_took:?}, real sweep {apply_took:?}",
        provisioned
    );
}

/// The most steps running at once in a run, and how many labs they belonged to then.
fn peak_concurrency(events: &[Event]) -> (usize, usize) {
    let mut running: BTreeSet<String> = BTreeSet::new();
    let mut peak = (0, 0);
    for event in events {
        match &event.kind {
            EventKind::StepStarted { step, .. } => {
                running.insert(step.clone());
            }
            EventKind::StepSucceeded { step, .. } | EventKind::StepFailed { step, .. } => {
                running.remove(step);
            }
            _ => {}
        }
        if running.len() > peak.0 {
            let labs: BTreeSet<&str> = running
                .iter()
                .filter_map(|s| s.split_once('/').map(|(lab, _)| lab))
                .collect();
            peak = (running.len(), labs.len());
        }
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_labs_go_in_one_run_of_one_merged_dag() {
    const LABS: usize = 20;
    let moto = support::moto().await;
    fixture::keep_tasks_running(&moto.endpoint);
    let provisioner = moto.aws(Mode::Apply);
    let plan = SweepPlan::load(Path::new(PLAN), &[]).unwrap_or_else(|e| panic!("{e}"));
    let options = SweepOptions {
        // Every lab is a few seconds old: two days later, all are stale.
        now: Utc::now() + chrono::Duration::days(2),
        parallelism: 32,
        ..SweepOptions::default()
    };
    let provisioning = Instant::now();
    let labs = provision_labs(
        (0..LABS)
            .map(|i| {
                (
                    provisioner.clone(),
                    format!("n{i:02}"),
                    unchanged as TagChange,
                )
            })
            .collect(),
    )
    .await;
    let provisioned = provisioning.elapsed();

    let started = Instant::now();
    let write = Arc::new(moto.aws(Mode::Apply));
    let regions = [RegionClients {
        read: Arc::new(moto.aws(Mode::DryRun)),
        write: Some(write.clone()),
    }];
    let cancel = CancellationToken::new();
    let mut sweep = Sweep::discover(&plan, &regions, support::ACCOUNT, &options).await;
    let (events, _) = EventSink::channel();
    let previewing = Instant::now();
    sweep.preview(&regions, &options, &events, &cancel).await;
    let (events, mut receiver) = EventSink::channel();
    let summary = sweep
        .apply(&regions, &options, &events, &cancel)
        .await
        .expect("labs to delete");
    drop(events);
    let took = started.elapsed();
    let since_preview = previewing.elapsed();
    let report = report(&sweep, &plan, &options);
    assert_eq!(sweep.outcome(), Outcome::Success, "{:#}", report["labs"]);
    assert_eq!(report["counts"]["deleted"], LABS, "{:#}", report["counts"]);
    // What each lab's preview found was handed to its steps: the deletion read no repository
    // and no secret again (none of them is polled: both go within their call). Only while the
    // preview's findings are fresh: a preview and deletion longer than that look again.
    let reads_again = write
        .calls
        .records()
        .iter()
        .filter(|c| {
            matches!(
                (c.service.as_str(), c.operation.as_str()),
                ("ECR", "DescribeRepositories") | ("Secrets Manager", "ListSecrets")
            )
        })
        .count();
    assert!(
        reads_again == 0 || since_preview > teardown::actions::HAND_OVER_FRESH,
        "the deletion read {reads_again} repositories and secrets again, {since_preview:?} after the preview began"
    );
    for w in labs.values() {
        fixture::assert_workshop_gone(&provisioner, w).await;
    }
    // One run of one DAG: every lab's nine steps, labs side by side under one parallelism.
    assert_eq!(summary.steps.len(), LABS * 9);
    let mut seen = Vec::new();
    while let Some(event) = receiver.recv().await {
        seen.push(event);
    }
    let (peak, peak_labs) = peak_concurrency(&seen);
    assert!(
        peak > 16 && peak_labs > 4,
        "at most {peak} steps of {peak_labs} labs ran at once"
    );
    let done: u64 = report["labs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["resources"]["done"].as_u64().unwrap_or(0))
        .sum();
    assert!(done as usize >= LABS * 12, "only {done} resources changed");
    eprintln!(
        "{LABS} labs ({done} resources deleted or changed, besides those their stacks own): provisioned in {provisioned:?}, swept (discovery, preview, deletion) in {took:?}; up to {peak} steps of {peak_labs} labs at once"
    );
}

/// Creates a lab that is only a tagged stack (no resources of its own beyond a log group): enough
/// to be found, bound and previewed.
async fn cheap_lab(aws: &Aws, lab: &str, change: TagChange) -> String {
    let n = names(lab);
    let template = json!({
        "Resources": { "Logs": { "Type": "AWS::Logs::LogGroup", "Properties": {} } }
    });
    let mut tags = lab_tags(&n);
    change(&mut tags);
    let mut request = aws
        .cloudformation
        .create_stack()
        .stack_name(&n.main_stack)
        .template_body(template.to_string());
    for (k, v) in tags {
        request = request.tags(Tag::builder().key(k).value(v).build());
    }
    request.send().await.unwrap();
    n.main_stack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labs_that_share_a_resource_are_kept_and_a_failed_preview_fails_its_lab() {
    let moto = support::moto().await;
    let aws = moto.aws(Mode::Apply);
    // Two labs whose tags name the same repository: whose is it? Neither is swept.
    let shared: TagChange = |tags| {
        tags.insert("Repository".into(), "shared-repo".into());
    };
    cheap_lab(&aws, "o1", shared).await;
    cheap_lab(&aws, "o2", shared).await;
    cheap_lab(&aws, "ok", unchanged).await;
    cheap_lab(&aws, "f", unchanged).await;
    aws.ecr
        .create_repository()
        .repository_name("shared-repo")
        .send()
        .await
        .unwrap();
    // Lab-f cannot list its secret: its preview fails, so it is not swept, and the sweep fails.
    let denied = Faults::new(vec![Rule::on(
        "Secrets Manager",
        "ListSecrets",
        usize::MAX,
        Answer::error(400, "AccessDeniedException", "not allowed to list secrets"),
    )
    .when_request_contains("lab-f-db-secret")]);
    let read = Arc::new(moto.aws_with(
        Mode::DryRun,
        AwsOptions {
            interceptors: vec![denied.shared()],
            ..AwsOptions::default()
        },
    ));
    let plan = SweepPlan::load(Path::new(PLAN), &[]).unwrap_or_else(|e| panic!("{e}"));
    let options = SweepOptions {
        now: Utc::now() + chrono::Duration::days(2),
        ..SweepOptions::default()
    };
    let regions = [RegionClients { read, write: None }];
    let swept = sweep(&plan, &regions, &options).await;
    let report = report(&swept, &plan, &options);
    let found = statuses(&report);
    assert_eq!(found["Lab-ok"].0, "would-delete", "{found:#?}");
    for (lab, other) in [("Lab-o1", "Lab-o2"), ("Lab-o2", "Lab-o1")] {
        assert_eq!(
            found[lab],
            (
                "kept".to_string(),
                format!("shares ECR repository shared-repo with lab {other}: swept by neither")
            )
        );
    }
    assert_eq!(found["Lab-f"].0, "failed");
    assert!(
        found["Lab-f"]
            .1
            .starts_with("its preview failed: step delete-secret failed: SecretsManager.ListSecrets: not allowed"),
        "{}",
        found["Lab-f"].1
    );
    assert_eq!(swept.outcome(), Outcome::StepsFailed);
    assert_eq!(report["exit_code"], 1);
}

// ---- the command ------------------------------------------------------------------------------

fn teardown(args: &[&str], env: &[(String, String)]) -> Output {
    support::teardown_command(env, args)
        .output()
        .expect("run teardown")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// The shipped plan with age thresholds of zero: moto's stacks are all seconds old.
fn plan_for_now(dir: &Path) -> String {
    let plan = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(PLAN))
        .unwrap()
        .replace("older_than = \"24h\"", "older_than = \"0s\"")
        .replace("not_updated_for = \"6h\"", "not_updated_for = \"0s\"");
    assert!(plan.contains("older_than = \"0s\""));
    let path = dir.join("sweep-now.toml");
    std::fs::write(&path, plan).unwrap();
    path.to_str().unwrap().to_string()
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_command_is_dry_by_default_refuses_without_yes_and_deletes_with_apply() {
    let moto = support::moto().await;
    fixture::keep_tasks_running(&moto.endpoint);
    let home = tempfile::tempdir().unwrap();
    let env = moto.cli_env(home.path());
    let west = moto.aws(Mode::Apply);
    let protect: TagChange = |tags| {
        tags.insert("teardown:protect".into(), "".into());
    };
    let workshops = provision_labs(vec![
        (west.clone(), "c1".into(), unchanged),
        (west.clone(), "c2".into(), unchanged),
        (west.clone(), "kept".into(), protect),
    ])
    .await;
    let plan = plan_for_now(home.path());
    let report_path = home.path().join("report.json");
    let report_arg = report_path.to_str().unwrap();
    let runs = home.path().join("runs");
    let runs_arg = runs.to_str().unwrap();

    let dry = teardown(&["sweep", &plan, "--report", report_arg], &env);
    let stdout = text(&dry.stdout);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&dry.stderr)
    );
    assert!(stdout.contains("Found 3 labs: 2 stale, 1 kept"), "{stdout}");
    assert!(
        stdout.contains("Preview (dry run: nothing was changed)"),
        "{stdout}"
    );
    assert!(stdout.contains("Lab-c1/delete-main-stack"), "{stdout}");
    // The event lines are progress: on stderr, and not among the data on stdout.
    let stderr = text(&dry.stderr);
    assert!(
        stderr.contains("run started: plan stale-labs-sweep (2 labs), 18 steps (dry run"),
        "{stderr}"
    );
    assert!(!stdout.contains("run started"), "{stdout}");
    assert!(stdout.contains("Labs: 1 kept, 2 would delete"), "{stdout}");
    assert!(stdout.contains("Run again with --apply"), "{stdout}");
    let report = read_report(&report_path);
    assert_eq!(report["dry_run"], true);
    assert_eq!(lab(&report, "Lab-c1")["status"], "would-delete");
    assert_eq!(
        lab(&report, "Lab-kept")["reasons"][0],
        "protected: tagged teardown:protect"
    );

    let refused = teardown(&["sweep", &plan, "--apply", "--runs-dir", runs_arg], &env);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("--yes"),
        "{}",
        text(&refused.stderr)
    );
    for w in workshops.values() {
        assert!(fixture::workshop_leftovers(&west, w).await.len() > 10);
    }

    let applied = teardown(
        &[
            "sweep",
            &plan,
            "--apply",
            "--yes",
            "--report",
            report_arg,
            "--runs-dir",
            runs_arg,
        ],
        &env,
    );
    let stdout = text(&applied.stdout);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&applied.stderr)
    );
    assert!(stdout.contains("Labs: 1 kept, 2 deleted"), "{stdout}");
    assert!(
        stdout.contains("Audit log of every change made"),
        "{stdout}"
    );
    let report = read_report(&report_path);
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["exit_code"], 0);
    for gone in ["c1", "c2"] {
        assert_eq!(lab(&report, &format!("Lab-{gone}"))["status"], "deleted");
        fixture::assert_workshop_gone(&west, &workshops[gone]).await;
    }
    assert!(
        fixture::workshop_leftovers(&west, &workshops["kept"])
            .await
            .len()
            > 10
    );
    assert_eq!(lab(&report, "Lab-kept")["status"], "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_one_and_two_of_two_partition_the_labs() {
    let moto = support::moto().await;
    let home = tempfile::tempdir().unwrap();
    let env = moto.cli_env(home.path());
    let aws = moto.aws(Mode::Apply);
    // Labs need no more than a tagged stack to be found and sharded.
    let template = json!({
        "Resources": { "Logs": { "Type": "AWS::Logs::LogGroup", "Properties": {} } }
    })
    .to_string();
    let mut all = Vec::new();
    for i in 0..12 {
        let n = names(&format!("s{i:02}"));
        let mut request = aws
            .cloudformation
            .create_stack()
            .stack_name(&n.main_stack)
            .template_body(&template);
        for (k, v) in lab_tags(&n) {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
        request.send().await.unwrap();
        all.push(n.main_stack);
    }
    let plan = plan_for_now(home.path());
    let mut seen: Vec<Vec<String>> = Vec::new();
    for shard in ["1/2", "2/2"] {
        let path = home.path().join(format!("shard-{}.json", &shard[..1]));
        let out = teardown(
            &[
                "sweep",
                &plan,
                "--shard",
                shard,
                "--report",
                path.to_str().unwrap(),
            ],
            &env,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let report = read_report(&path);
        assert_eq!(report["shard"], shard);
        let labs: Vec<String> = report["labs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(report["in_other_shards"], 12 - labs.len());
        seen.push(labs);
    }
    assert!(
        !seen[0].is_empty() && !seen[1].is_empty(),
        "a shard is empty: {seen:?}"
    );
    assert!(seen[0].iter().all(|l| !seen[1].contains(l)), "{seen:?}");
    let mut union: Vec<String> = seen.concat();
    union.sort();
    assert_eq!(union, all);
    // The same shard twice: the same labs (the hash is stable).
    let again = teardown(&["sweep", &plan, "--shard", "1/2"], &env);
    for l in &seen[0] {
        assert!(text(&again.stdout).contains(l.as_str()), "{l}");
    }
    let bad = teardown(&["sweep", &plan, "--shard", "3/2"], &env);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    // Nothing was deleted by the dry runs.
    let stacks = aws.cloudformation.describe_stacks().send().await.unwrap();
    assert_eq!(stacks.stacks().len(), 12);
}

#[test]
fn a_plan_without_a_sweep_section_is_bad_input() {
    let out = teardown(&["sweep", "tests/it/plans/named-workshop.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("the plan has no [sweep] section"), "{err}");
    assert!(
        err.contains("--> tests/it/plans/named-workshop.toml:1:1"),
        "{err}"
    );
}
