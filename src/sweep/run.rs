//! Running the labs: every stale lab's copy of the plan merged into one DAG, previewed with
//! read-only clients, then applied restricted to what each preview listed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::engine::{self, Handler, RunOptions, RunSummary, StepNode, StepOutcome, StepResult};
use crate::event::EventSink;
use crate::graph::Dag;
use crate::plan::PhaseSelection;
use crate::resource::OutcomeKind;
use crate::util::count_of;

use super::discover::LabStatus;
use super::{client_for, one_account, AccountClients, RegionClients, Sweep, SweepOptions};

/// Which steps of the merged DAG belong to which lab: prefixed id to (lab index, plain id).
type Owners = HashMap<String, (usize, String)>;

impl Sweep {
    /// [`Sweep::preview_accounts`] for a sweep of one account.
    pub async fn preview(
        &mut self,
        regions: &[RegionClients],
        options: &SweepOptions,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Option<RunSummary> {
        let accounts = one_account(&self.account, regions);
        self.preview_accounts(&accounts, options, events, cancel)
            .await
    }

    /// Runs every stale lab's copy of the plan in one dry run (read-only clients), then keeps the
    /// labs whose copies would change the same resource, and marks those whose preview failed.
    /// Returns the run's summary (`None` when no lab was stale).
    pub async fn preview_accounts(
        &mut self,
        accounts: &[AccountClients],
        options: &SweepOptions,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Option<RunSummary> {
        let (dag, owners) =
            self.merged_dag(LabStatus::NotRun, |c| Some(c.read.clone()), false, accounts)?;
        // Before the first look: what a step found is at least this fresh.
        self.previewed_at = Some(tokio::time::Instant::now());
        let summary = self.run(&dag, &owners, options, true, events, cancel).await;
        for lab in self.labs.iter_mut() {
            if lab.status != LabStatus::NotRun || lab.steps.is_empty() {
                continue;
            }
            let problems = step_problems(&lab.steps);
            let failed = lab
                .steps
                .iter()
                .any(|s| matches!(s.outcome, StepOutcome::Failed { .. }));
            if summary.cancelled.is_some() && !failed && !problems.is_empty() {
                lab.reasons
                    .push("the sweep stopped before its preview finished".into());
                continue;
            }
            if !problems.is_empty() {
                lab.fail(format!("its preview failed: {}", problems.join("; ")));
                continue;
            }
            // As a run's pre-flight: a step that matched more (or fewer) than its `expect` says
            // reaches beyond this lab, or misses it; the lab is kept, untouched, with the counts.
            let unexpected = lab
                .plan
                .as_ref()
                .map(|plan| unexpected_counts(plan, &lab.steps))
                .unwrap_or_default();
            if !unexpected.is_empty() {
                lab.keep(format!(
                    "not as the plan expects: {}",
                    unexpected.join("; ")
                ));
                continue;
            }
            lab.allowed = lab
                .steps
                .iter()
                .map(|s| {
                    let planned = s
                        .output
                        .iter()
                        .flat_map(|o| &o.resources)
                        .filter(|r| r.outcome == OutcomeKind::Planned)
                        .map(|r| r.resource.id.clone())
                        .collect();
                    (s.id.clone(), planned)
                })
                .collect();
            lab.status = LabStatus::WouldDelete;
        }
        self.keep_overlaps();
        Some(summary)
    }

    /// Keeps every lab whose preview would change a resource that another lab's would too: a
    /// lab's teardown must never reach into another lab, and which one owns it is not known.
    /// A resource is one account's, in one region: the same id elsewhere is another resource.
    fn keep_overlaps(&mut self) {
        type Claims<'a> = BTreeMap<(&'a str, &'a str, &'a str), (BTreeSet<usize>, String)>;
        let mut claims: Claims = BTreeMap::new();
        for (index, lab) in self.labs.iter().enumerate() {
            if lab.status != LabStatus::WouldDelete {
                continue;
            }
            for r in lab.outcomes().filter(|r| r.outcome == OutcomeKind::Planned) {
                let entry = claims
                    .entry((&lab.account, &lab.region, &r.resource.id))
                    .or_insert_with(|| (BTreeSet::new(), String::new()));
                entry.0.insert(index);
                entry.1 = format!("{} {}", r.resource.kind, r.resource.name);
            }
        }
        let mut reasons: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (labs, what) in claims.values().filter(|(labs, _)| labs.len() > 1) {
            for &index in labs {
                let others: Vec<&str> = labs
                    .iter()
                    .filter(|&&o| o != index)
                    .map(|&o| self.labs[o].id.as_str())
                    .collect();
                reasons.entry(index).or_default().push(format!(
                    "shares {what} with lab {}: swept by neither",
                    others.join(", ")
                ));
            }
        }
        for (index, mut why) in reasons {
            why.dedup();
            let lab = &mut self.labs[index];
            lab.status = LabStatus::Kept;
            lab.reasons.extend(why);
        }
    }

    /// [`Sweep::apply_accounts`] for a sweep of one account.
    pub async fn apply(
        &mut self,
        regions: &[RegionClients],
        options: &SweepOptions,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Option<RunSummary> {
        let accounts = one_account(&self.account, regions);
        self.apply_accounts(&accounts, options, events, cancel)
            .await
    }

    /// Deletes what each previewed lab's preview listed, in one run of the merged DAG with the
    /// clients that may delete; every step changes only the resources its preview listed.
    /// Returns the run's summary (`None` when no lab was to be deleted). Panics if a region of
    /// such a lab has no `write` clients.
    pub async fn apply_accounts(
        &mut self,
        accounts: &[AccountClients],
        options: &SweepOptions,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Option<RunSummary> {
        self.applied = true;
        let (dag, owners) =
            self.merged_dag(LabStatus::WouldDelete, |c| c.write.clone(), true, accounts)?;
        let summary = self
            .run(&dag, &owners, options, false, events, cancel)
            .await;
        for lab in self.labs.iter_mut() {
            if lab.status != LabStatus::WouldDelete {
                continue;
            }
            let problems = step_problems(&lab.steps);
            if problems.is_empty() {
                lab.status = LabStatus::Deleted;
            } else {
                lab.fail(problems.join("; "));
            }
        }
        Some(summary)
    }

    /// Every lab in `status` as its own copy of the plan, step ids prefixed with the lab id, in
    /// one DAG. With `restrict`, each step may change only what the lab's preview listed.
    fn merged_dag(
        &self,
        status: LabStatus,
        clients: impl Fn(&RegionClients) -> Option<Arc<Aws>>,
        restrict: bool,
        accounts: &[AccountClients],
    ) -> Option<(Dag<StepNode>, Owners)> {
        let mut nodes = Vec::new();
        let mut owners = Owners::new();
        for (index, lab) in self.labs.iter().enumerate() {
            let Some(lab_plan) = lab.plan.as_ref().filter(|_| lab.status == status) else {
                continue;
            };
            let aws = clients(client_for(accounts, &lab.account, &lab.region))
                .expect("the clients of a sweep that deletes are given for every region");
            let selected = lab_plan
                .select(&PhaseSelection::default())
                .expect("selecting every step of a valid plan cannot fail");
            // Deleting: each step's first look may be what the lab's preview found, while it
            // is fresh, as a run's steps take its pre-flight's (a wide sweep saves a read of
            // every resource of every lab, each under its service's rate limit).
            let preview = self.previewed_at.filter(|_| restrict).map(|at| {
                let steps = lab.steps.clone();
                let duration = std::time::Duration::ZERO;
                (
                    RunSummary {
                        steps,
                        cancelled: None,
                        duration,
                    },
                    at,
                )
            });
            let hand_over = preview.as_ref().map(|(summary, at)| (summary, *at));
            let dag = crate::session::with_hand_over(
                lab_plan,
                selected.dag,
                aws,
                restrict.then_some(&lab.allowed),
                hand_over,
                &format!("{}/", lab.id),
            );
            let prefix = |id: &str| format!("{}/{id}", lab.id);
            // `map` is how a Dag gives up its nodes; the Dag<()> it returns is dropped.
            let _ = dag.map(|node| {
                owners.insert(prefix(&node.id), (index, node.id.clone()));
                nodes.push(StepNode {
                    id: prefix(&node.id),
                    after: node.after.iter().map(|a| prefix(a)).collect(),
                    on_failure: node.on_failure.map(|h| Handler {
                        id: prefix(&h.id),
                        ..h
                    }),
                    ..node
                });
            });
        }
        if nodes.is_empty() {
            return None;
        }
        let dag = Dag::build(nodes)
            .expect("copies of a valid DAG under distinct prefixes make a valid DAG");
        Some((dag, owners))
    }

    /// Runs a merged DAG and files each step's result under its lab.
    async fn run(
        &mut self,
        dag: &Dag<StepNode>,
        owners: &Owners,
        options: &SweepOptions,
        dry_run: bool,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> RunSummary {
        let labs: BTreeSet<usize> = owners.values().map(|(index, _)| *index).collect();
        let run_options = RunOptions {
            parallelism: options.parallelism,
            fail_fast: options.fail_fast,
            plan_name: format!("{} ({})", self.plan_name, count_of(labs.len(), "lab")),
            dry_run,
            continue_later: Some("run the same sweep again".into()),
        };
        let summary = engine::run(dag, &run_options, events, cancel).await;
        if summary.cancelled == Some(engine::CancelReason::Interrupted) {
            self.interrupted = true;
        }
        let mut results: BTreeMap<usize, Vec<StepResult>> = BTreeMap::new();
        for step in &summary.steps {
            if let Some((index, plain)) = owners.get(&step.id) {
                let mut step = step.clone();
                step.id = plain.clone();
                results.entry(*index).or_default().push(step);
            }
        }
        for (index, steps) in results {
            self.labs[index].steps = steps;
        }
        summary
    }
}

/// `step: expected ..., matched ...` for each step whose dry run found a number of resources
/// outside its `expect`.
fn unexpected_counts(plan: &crate::plan::Plan, steps: &[StepResult]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| {
            let step = plan.dag.get(&s.id)?;
            let output = s.output.as_ref()?;
            let found: Vec<crate::resource::Resource> = output
                .resources
                .iter()
                .map(|o| o.resource.clone())
                .collect();
            let message = step
                .expect
                .check(step.built.resource_kind(), &found)
                .err()?;
            let first = message
                .lines()
                .next()
                .unwrap_or_default()
                .trim_end_matches(':');
            Some(format!("step {} {first}", s.id))
        })
        .collect()
}

/// `step: error` for each step of a lab that did not succeed.
fn step_problems(steps: &[StepResult]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| match &s.outcome {
            StepOutcome::Succeeded => None,
            StepOutcome::Failed { error, .. } => Some(format!("step {} failed: {error}", s.id)),
            StepOutcome::Skipped { reason } => Some(format!("step {} skipped: {reason}", s.id)),
        })
        .collect()
}
