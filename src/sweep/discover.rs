//! Finding labs: listing a region's stacks, judging each against `find` (why it matched, why it
//! is kept), binding its variables, and checking recent use.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudformation::types::{Stack, StackStatus};
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksError;
use aws_sdk_ecs::operation::list_tasks::ListTasksError;
use aws_sdk_ecs::types::DesiredStatus;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws::{to_chrono, Aws, AwsError};
use crate::engine::StepResult;
use crate::plan::Plan;
use crate::resource::{OutcomeKind, ResourceOutcome};
use crate::util::{count_of, short_duration};

use super::{
    client_for, one_account, AccountClients, RefusedAccount, RegionClients, Sweep, SweepOptions,
};
use crate::plan::sweep::{Find, StackFacts, SweepPlan};

impl StackFacts {
    /// Reads what a sweep needs from a described stack.
    pub fn from_stack(stack: &Stack) -> StackFacts {
        // The same reading as the plans' `stack-output`/`stack-parameter`/`stack-tag` lookups.
        let values = crate::resolve::StackValues::of(stack);
        StackFacts {
            name: stack.stack_name().unwrap_or_default().to_string(),
            id: stack.stack_id().unwrap_or_default().to_string(),
            description: stack.description().unwrap_or_default().to_string(),
            status: stack
                .stack_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            created: stack.creation_time().and_then(to_chrono),
            last_updated: stack.last_updated_time().and_then(to_chrono),
            tags: values.tags,
            outputs: values.outputs,
            parameters: values.parameters,
            parent: stack.parent_id().map(str::to_string),
        }
    }
}

/// Where a lab stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabStatus {
    /// Left alone on purpose; the reasons say why.
    Kept,
    /// Found stale, and not run yet (a sweep interrupted before its preview leaves labs here).
    NotRun,
    /// Dry run: its preview succeeded; the report lists what would go.
    WouldDelete,
    /// Every step of its teardown succeeded.
    Deleted,
    /// Something failed: a check, its preview or a step; the reasons say what.
    Failed,
}

impl LabStatus {
    pub(super) fn word(self) -> &'static str {
        match self {
            LabStatus::Kept => "kept",
            LabStatus::NotRun => "not run",
            LabStatus::WouldDelete => "would delete",
            LabStatus::Deleted => "deleted",
            LabStatus::Failed => "FAILED",
        }
    }
}

/// One lab: its stack, why it matched, where it stands, and what its steps did.
pub struct Lab {
    /// Its id in step ids and reports: the stack name, prefixed with its region when several
    /// regions are swept and with its account when several accounts are
    /// (`123456789012/us-west-2/Lab-a`).
    pub id: String,
    /// Its account.
    pub account: String,
    /// Its region.
    pub region: String,
    /// Its stack.
    pub stack: StackFacts,
    /// Why `find` matched it: name, tags, age.
    pub matched_because: String,
    /// Where it stands.
    pub status: LabStatus,
    /// Why it is kept or failed.
    pub reasons: Vec<String>,
    /// What the reader should know (e.g. use that could not be checked).
    pub notes: Vec<String>,
    /// The variables bound from its stack.
    pub vars: BTreeMap<String, String>,
    /// Its steps' results (plain step ids), from the latest run it took part in.
    pub steps: Vec<StepResult>,
    pub(super) plan: Option<Plan>,
    /// Per step, the resource ids its preview would change: all that its real run may touch.
    pub(super) allowed: BTreeMap<String, BTreeSet<String>>,
}

impl Lab {
    pub(super) fn keep(&mut self, reason: String) {
        self.status = LabStatus::Kept;
        self.reasons.push(reason);
    }

    pub(super) fn fail(&mut self, reason: String) {
        self.status = LabStatus::Failed;
        self.reasons.push(reason);
    }

    /// Resources of its steps with this outcome.
    pub(super) fn resources(&self, outcome: OutcomeKind) -> usize {
        self.outcomes().filter(|r| r.outcome == outcome).count()
    }

    pub(super) fn outcomes(&self) -> impl Iterator<Item = &ResourceOutcome> {
        self.steps
            .iter()
            .filter_map(|s| s.output.as_ref())
            .flat_map(|o| &o.resources)
    }
}

/// Whether `find` matches a stack: `None` if it is not a lab at all, else why it matched and the
/// reasons to keep it (none: it is stale). Pure, so that every rule is tested without AWS.
pub(super) fn judge(
    find: &Find,
    stack: &StackFacts,
    protect_tag: &str,
    keep: &[String],
    now: DateTime<Utc>,
) -> Option<(String, Vec<String>)> {
    if stack.status == StackStatus::DeleteComplete.as_str() {
        return None;
    }
    let mut why = Vec::new();
    if let Some(pattern) = &find.stack {
        if !pattern.matches(&stack.name) {
            return None;
        }
        why.push(pattern.describe("name"));
    }
    if let Some(pattern) = &find.description {
        if !pattern.matches(&stack.description) {
            return None;
        }
        why.push(pattern.describe("description"));
    }
    if !find.outputs.is_empty() {
        if !find.outputs.iter().all(|k| stack.outputs.contains_key(k)) {
            return None;
        }
        why.push(format!("outputs {}", find.outputs.join(", ")));
    }
    for (key, pattern) in &find.tags {
        match stack.tags.get(key) {
            Some(value) if pattern.matches(value) => why.push(format!("tag {key}={value}")),
            _ => return None,
        }
    }
    let age = |t: DateTime<Utc>| (now - t).to_std().unwrap_or_default();
    if let Some(created) = stack.created {
        why.push(format!("created {} ago", short_duration(age(created))));
    }
    if let Some(updated) = stack.last_updated {
        why.push(format!("updated {} ago", short_duration(age(updated))));
    }
    let mut kept = Vec::new();
    if stack.tags.contains_key(protect_tag) {
        kept.push(format!("protected: tagged {protect_tag}"));
    }
    if keep.iter().any(|k| k == &stack.name || k == &stack.id) {
        kept.push("protected: listed in the plan's keep list".to_string());
    }
    if let Some(parent) = &stack.parent {
        kept.push(format!(
            "nested stack of {parent}: goes with its parent, never on its own"
        ));
    }
    if stack.status.ends_with("_IN_PROGRESS") {
        kept.push(format!(
            "busy: {} (the next sweep looks again)",
            stack.status
        ));
    }
    if let Some(min) = find.older_than {
        match stack.created {
            Some(created) if age(created) > min => {}
            Some(created) => kept.push(format!(
                "too young: created {} ago (older_than {})",
                short_duration(age(created)),
                short_duration(min)
            )),
            None => kept.push("age unknown: CloudFormation gave no creation time".to_string()),
        }
    }
    if let Some(min) = find.not_updated_for {
        match stack.last_updated.or(stack.created) {
            Some(touched) if age(touched) > min => {}
            Some(touched) => kept.push(format!(
                "recently updated: {} ago (not_updated_for {})",
                short_duration(age(touched)),
                short_duration(min)
            )),
            None => kept.push("last update unknown: CloudFormation gave no time".to_string()),
        }
    }
    Some((why.join(", "), kept))
}

/// Reads the lab's `[lookup]` variables from its account (read-only), as `teardown run` does,
/// and validates the lab's plan again with them. A lab whose relations are missing or ambiguous
/// is kept, with the lookup's reason: guessing could reach another lab.
async fn with_lookups(
    plan: &SweepPlan,
    lab_plan: Plan,
    mut vars: BTreeMap<String, String>,
    aws: &Aws,
) -> Result<(Plan, BTreeMap<String, String>), String> {
    let needed: BTreeSet<String> = lab_plan
        .lookups_needed(&lab_plan.dag)
        .intersection(&lab_plan.unresolved)
        .cloned()
        .collect();
    if needed.is_empty() {
        return Ok((lab_plan, vars));
    }
    let found = crate::resolve::resolve(&lab_plan, &needed, aws)
        .await
        .map_err(|e| format!("cannot look up the lab's resources: {e}"))?;
    vars.extend(found.into_iter().map(|(name, found)| (name, found.value)));
    let lab_plan = plan.for_lab(&vars).map_err(|errors| {
        format!(
            "the plan refuses the values looked up for this lab: {}",
            errors
                .0
                .iter()
                .map(|d| d.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    Ok((lab_plan, vars))
}

/// The ECS clusters a lab's plan works on, by exact name (a glob cannot be listed).
pub(super) fn clusters_of(plan: &Plan) -> BTreeSet<String> {
    plan.dag
        .in_order()
        .filter_map(|step| match step.action.as_str() {
            "ecs.stop-tasks" | "ecs.delete-services" => step.input.text("cluster"),
            "ecs.delete-cluster" => step.input.text("name"),
            _ => None,
        })
        .filter(|name| !name.contains(['*', '?', '[']))
        .collect()
}

/// Use of a lab: the latest start of a running task in its clusters, within `window`. Tasks
/// without a start time (moto never sets one; AWS does once a task runs) cannot be judged and
/// are reported as a note.
async fn recent_use(
    aws: &Aws,
    clusters: &BTreeSet<String>,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<(Option<String>, Vec<String>), AwsError> {
    let mut notes = Vec::new();
    for cluster in clusters {
        let listed = aws
            .ecs
            .list_tasks()
            .cluster(cluster)
            .desired_status(DesiredStatus::Running)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await;
        let arns = match listed {
            Ok(arns) => arns,
            Err(e) => match e.as_service_error() {
                Some(ListTasksError::ClusterNotFoundException(_)) => continue,
                _ => return Err(AwsError::from_sdk("ECS.ListTasks", e)),
            },
        };
        let mut unknown = 0;
        for chunk in arns.chunks(100) {
            let described = aws
                .ecs
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await;
            let out = match described {
                Ok(out) => out,
                Err(e) => match e.as_service_error() {
                    Some(DescribeTasksError::ClusterNotFoundException(_)) => break,
                    _ => return Err(AwsError::from_sdk("ECS.DescribeTasks", e)),
                },
            };
            for task in out.tasks() {
                match task.started_at().and_then(to_chrono) {
                    Some(started) => {
                        let ago = (now - started).to_std().unwrap_or_default();
                        if ago <= window {
                            return Ok((
                                Some(format!(
                                    "in use: a task in cluster {cluster} started {} ago (not_updated_for {})",
                                    short_duration(ago),
                                    short_duration(window)
                                )),
                                notes,
                            ));
                        }
                    }
                    None => unknown += 1,
                }
            }
        }
        if unknown > 0 {
            notes.push(format!(
                "{} running in cluster {cluster} with no start time: not counted as use",
                count_of(unknown, "task")
            ));
        }
    }
    Ok((None, notes))
}

impl Sweep {
    /// Finds the labs of every region of one account, read-only, and decides which are kept and
    /// why.
    pub async fn discover(
        plan: &SweepPlan,
        regions: &[RegionClients],
        account: &str,
        options: &SweepOptions,
    ) -> Sweep {
        Sweep::discover_accounts(plan, &one_account(account, regions), Vec::new(), options).await
    }

    /// Finds the labs of every region of every account, read-only, and decides which are kept
    /// and why; `refused` are the accounts asked for whose guard failed (reported, never
    /// touched). A lab's id names its account when several were asked for, and its region when
    /// several are swept: `123456789012/us-west-2/Lab-a`.
    pub async fn discover_accounts(
        plan: &SweepPlan,
        accounts: &[AccountClients],
        refused: Vec<RefusedAccount>,
        options: &SweepOptions,
    ) -> Sweep {
        let mut regions: Vec<String> = Vec::new();
        for clients in accounts.iter().flat_map(|a| &a.regions) {
            if !regions.contains(&clients.read.region) {
                regions.push(clients.read.region.clone());
            }
        }
        // Ids stay the same when some accounts asked for are refused.
        let several_accounts = accounts.len() + refused.len() > 1;
        let several_regions = regions.len() > 1 || accounts.iter().any(|a| a.regions.len() > 1);
        let mut sweep = Sweep {
            account: accounts
                .first()
                .map(|a| a.account.clone())
                .unwrap_or_default(),
            accounts: accounts.iter().map(|a| a.account.clone()).collect(),
            refused,
            regions,
            labs: Vec::new(),
            in_other_shards: 0,
            errors: Vec::new(),
            interrupted: false,
            applied: false,
            plan_name: plan.plan.name.clone(),
            previewed_at: None,
        };
        let places: Vec<(&str, &RegionClients)> = accounts
            .iter()
            .flat_map(|a| a.regions.iter().map(move |r| (a.account.as_str(), r)))
            .collect();
        let listed = list_everywhere(
            places.iter().map(|(_, c)| c.read.clone()).collect(),
            options.parallelism,
        )
        .await;
        for ((account, clients), listed) in places.into_iter().zip(listed) {
            let aws = &clients.read;
            let stacks = match listed {
                Ok(stacks) => stacks,
                Err(e) => {
                    let place = if several_accounts {
                        format!("account {account}, region {}", aws.region)
                    } else {
                        format!("region {}", aws.region)
                    };
                    sweep
                        .errors
                        .push(format!("{place}: cannot list the stacks: {e}"));
                    continue;
                }
            };
            let mut labs = Vec::new();
            for stack in stacks {
                let Some((matched_because, kept)) = judge(
                    &plan.find,
                    &stack,
                    &plan.plan.protect_tag,
                    &plan.plan.keep,
                    options.now,
                ) else {
                    continue;
                };
                if let Some(shard) = &options.shard {
                    if !shard.contains(account, &aws.region, &stack.name) {
                        sweep.in_other_shards += 1;
                        continue;
                    }
                }
                let mut id = String::new();
                if several_accounts {
                    id.push_str(&format!("{account}/"));
                }
                if several_regions {
                    id.push_str(&format!("{}/", aws.region));
                }
                id.push_str(&stack.name);
                let mut lab = Lab {
                    id,
                    account: account.to_string(),
                    region: aws.region.clone(),
                    stack,
                    matched_because,
                    status: LabStatus::NotRun,
                    reasons: Vec::new(),
                    notes: Vec::new(),
                    vars: BTreeMap::new(),
                    steps: Vec::new(),
                    plan: None,
                    allowed: BTreeMap::new(),
                };
                for reason in kept {
                    lab.keep(reason);
                }
                if lab.status == LabStatus::NotRun {
                    match plan.bind(&lab.stack, &aws.region, account) {
                        Err(reason) => lab.keep(reason),
                        Ok(vars) => match plan.for_lab(&vars) {
                            Err(errors) => lab.keep(format!(
                                "cannot bind: the plan refuses this lab's variables: {}",
                                errors
                                    .0
                                    .iter()
                                    .map(|d| d.message.as_str())
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            )),
                            Ok(lab_plan) => match with_lookups(plan, lab_plan, vars, aws).await {
                                Ok((lab_plan, vars)) => {
                                    lab.vars = vars;
                                    lab.plan = Some(lab_plan);
                                }
                                Err(reason) => lab.keep(reason),
                            },
                        },
                    }
                }
                labs.push(lab);
            }
            labs.sort_by(|a, b| a.stack.name.cmp(&b.stack.name));
            sweep.labs.extend(labs);
        }
        if let Some(window) = plan.find.not_updated_for {
            sweep.check_use(accounts, window, options).await;
        }
        sweep
    }

    /// Keeps the labs in use: their clusters' tasks, checked concurrently (bounded).
    async fn check_use(
        &mut self,
        accounts: &[AccountClients],
        window: Duration,
        options: &SweepOptions,
    ) {
        let permits = Arc::new(tokio::sync::Semaphore::new(options.parallelism.max(1)));
        let mut checks = tokio::task::JoinSet::new();
        for (index, lab) in self.labs.iter().enumerate() {
            let Some(lab_plan) = lab
                .plan
                .as_ref()
                .filter(|_| lab.status == LabStatus::NotRun)
            else {
                continue;
            };
            let clusters = clusters_of(lab_plan);
            if clusters.is_empty() {
                continue;
            }
            let aws = client_for(accounts, &lab.account, &lab.region).read.clone();
            let permits = permits.clone();
            let now = options.now;
            checks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (index, recent_use(&aws, &clusters, window, now).await)
            });
        }
        while let Some(joined) = checks.join_next().await {
            let (index, result) = match joined {
                Ok(done) => done,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            let lab = &mut self.labs[index];
            match result {
                Ok((in_use, notes)) => {
                    lab.notes.extend(notes);
                    if let Some(reason) = in_use {
                        lab.keep(reason);
                    }
                }
                // Use that cannot be checked is not absence of use: keep it, and say it failed.
                Err(e) => lab.fail(format!("cannot tell whether the lab is in use: {e}")),
            }
        }
    }
}

/// The stacks of every region given, listed side by side (`parallelism` at once: many accounts
/// times every enabled region is hundreds of listings), in the order given.
async fn list_everywhere(
    regions: Vec<Arc<Aws>>,
    parallelism: usize,
) -> Vec<Result<Vec<StackFacts>, AwsError>> {
    let permits = Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
    let mut listing = tokio::task::JoinSet::new();
    let count = regions.len();
    for (index, aws) in regions.into_iter().enumerate() {
        let permits = permits.clone();
        listing.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, list_stacks(&aws).await)
        });
    }
    let mut listed: Vec<Option<Result<Vec<StackFacts>, AwsError>>> =
        (0..count).map(|_| None).collect();
    while let Some(joined) = listing.join_next().await {
        match joined {
            Ok((index, stacks)) => listed[index] = Some(stacks),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    listed
        .into_iter()
        .map(|l| l.expect("every listing finished"))
        .collect()
}

/// Every stack of the region (deleted ones are left out by [`judge`]).
async fn list_stacks(aws: &Aws) -> Result<Vec<StackFacts>, AwsError> {
    let mut items = aws
        .cloudformation
        .describe_stacks()
        .into_paginator()
        .items()
        .send();
    let mut stacks = Vec::new();
    while let Some(stack) = items.next().await {
        let stack = stack.map_err(|e| AwsError::from_sdk("CloudFormation.DescribeStacks", e))?;
        stacks.push(StackFacts::from_stack(&stack));
    }
    Ok(stacks)
}
