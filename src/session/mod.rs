//! The run session, one floor below the commands: a plan carried out in one account and region,
//! as `run`, `preview`, `resume` and `apply` do it (parse and select, guard, look up, pre-flight,
//! lock, confirm, record, run, report), and what `sweep` shares with them (signals, the lock).
//!
//! One file per concern: `plan.rs` reads the plan a session runs, `preflight.rs` looks before
//! any change, `confirm.rs` asks, `records.rs` keeps the journal, audit log and lock, and
//! `signals.rs` handles Ctrl-C and SIGTERM.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::aws::{AuditLog, Aws, AwsOptions, Mode};
use crate::engine::{self, RunOptions, RunSummary};
use crate::event::{EventSink, RunContext};
use crate::journal::{RunHeader, RunLock};
use crate::outcome::Outcome;
use crate::plan::PhaseSelection;
use crate::preview::SavedPreview;
use crate::render::{self, OutputFormat};
use crate::settings::{runs_dir, RealRunSettings, RunSettings};

mod confirm;
mod plan;
mod preflight;
pub(crate) mod records;
mod runnable;
pub(crate) mod signals;

pub use runnable::runnable;
pub(crate) use runnable::with_hand_over;

use confirm::confirm;
pub(crate) use plan::check_journal_is_this_runs;
use plan::{parse_and_select, print_variables};
use preflight::{expectation_problems, preflight};
use records::{announce_takeover, record, start_records, stop_when_record_lost};

/// How one execution of a plan differs from a plain run.
#[derive(Default)]
pub(crate) struct Execution {
    pub(crate) dry_run: bool,
    pub(crate) detailed_exitcode: bool,
    /// Steps a resumed run must not redo.
    pub(crate) done: BTreeSet<String>,
    /// A saved preview's resources, per step: nothing else may be changed.
    pub(crate) allowed: Option<BTreeMap<String, BTreeSet<String>>>,
    /// Where to save a preview.
    pub(crate) save: Option<PathBuf>,
}

/// Validates, guards, confirms and runs a plan; `header` says which plan and how (its `run_id`
/// is empty for a new run), `done` lists steps a resumed run must not redo. `real` is what only
/// a run that changes things uses (a preview passes the default).
pub(crate) async fn execute_plan(
    mut header: RunHeader,
    args: &RunSettings,
    real: &RealRunSettings,
    execution: Execution,
) -> Outcome {
    let dry_run = execution.dry_run;
    let selection = PhaseSelection {
        only: header.only.clone(),
        skip: header.skip.clone(),
        assume_done: header.assume_done,
        done: execution.done.clone(),
    };
    // A resumed run or an applied preview brings the values its lookups found: they are used as
    // they are, and the account is not read for them again.
    let (plan, selected) = match parse_and_select(&header, &selection) {
        Ok(parsed) => parsed,
        Err(outcome) => return outcome,
    };
    for (step, dependency) in &selected.assumed_done {
        eprintln!("note: step `{step}` waits for `{dependency}`, which is left out: taken as done (--assume-done)");
    }
    let missing = plan.missing_for(&selected.dag);
    if !missing.is_empty() {
        let flags: Vec<String> = missing.iter().map(|m| format!("--var {m}=...")).collect();
        eprintln!(
            "error: the plan needs a value for {}: pass {} (nothing was done)",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", "),
            flags.join(" ")
        );
        return Outcome::BadInput;
    }
    let resuming = !header.run_id.is_empty();
    let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
    // Opened once the guard and the confirmation passed (a refused run leaves nothing behind);
    // until then the clients refuse every mutating call.
    let audit = (!dry_run).then(AuditLog::pending);
    let region = args
        .region
        .clone()
        .or_else(|| (!header.region.is_empty()).then(|| header.region.clone()));
    let aws = match Aws::from_env(
        mode,
        AwsOptions {
            audit: audit.clone(),
            call_limits: args.call_limits.limits(),
            timeouts: Some(args.call_timeouts.timeouts()),
            // A preview only reads, in seconds: a read asked twice is answered once.
            reuse_reads: dry_run,
            ..args.aws.options(region)
        },
    )
    .await
    {
        Ok(aws) => aws,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Refused;
        }
    };
    // The region is checked before any call; the account (STS GetCallerIdentity) alongside the
    // first reads, which go through clients that refuse every mutating call: nothing is changed,
    // nor shown, before the account is known to be the plan's.
    if let Err(message) = crate::guard::region_allowed(&plan.guard, &aws.region) {
        eprintln!("error: {message}");
        return Outcome::Refused;
    }
    if let Some(allowed) = &execution.allowed {
        if let Some(unknown) = allowed.keys().find(|step| selected.dag.get(step).is_none()) {
            eprintln!("error: the preview lists resources for step `{unknown}`, which its own plan does not run: the file is inconsistent; make a new preview");
            return Outcome::BadInput;
        }
    }
    // Lookups and the pre-flight read through clients that refuse every mutating call (the
    // dry-run guard), whatever a bug in them might try. They share what the run learns with the
    // run's own clients (`memory`).
    let read_only = match Aws::from_env(
        Mode::DryRun,
        AwsOptions {
            call_limits: args.call_limits.limits(),
            timeouts: Some(args.call_timeouts.timeouts()),
            memory: aws.memory.clone(),
            reuse_reads: true,
            ..args.aws.options(Some(aws.region.clone()))
        },
    )
    .await
    {
        Ok(read_only) => Arc::new(read_only),
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Refused;
        }
    };
    let guard = plan.guard.clone();
    let reads = first_reads(
        &header, &selection, plan, selected, read_only, args, &execution, resuming,
    );
    // The first error wins: a refused account drops the reads still under way, unseen.
    let checked = tokio::try_join!(crate::guard::check(&guard, &aws), async {
        Ok::<_, String>(reads.await)
    });
    let (account, reads) = match checked {
        Ok(both) => both,
        Err(message) => {
            eprintln!("error: {message}");
            return Outcome::Refused;
        }
    };
    // A resumed run or an applied preview belongs to one account and region.
    if !header.account.is_empty() && (header.account != account || header.region != aws.region) {
        eprintln!(
            "error: that run or preview was made in account {} region {}, and these credentials are for account {account} region {}: nothing was done; continue it with credentials for account {} and --region {}",
            header.account, header.region, aws.region, header.account, header.region
        );
        return Outcome::Refused;
    }
    header.account = account.clone();
    header.region = aws.region.clone();
    let FirstReads {
        looked_up,
        plan,
        selected,
        preflight,
    } = match reads {
        Ok(reads) => reads,
        Err(ReadsFailed::Lookup(e)) => {
            eprintln!("error: {e}\nnothing was changed: the account does not hold what the plan looks for here (account {account}, region {})", aws.region);
            return Outcome::NotAsExpected;
        }
        Err(ReadsFailed::Outcome(outcome)) => return outcome,
    };
    header.looked_up.extend(looked_up);
    let format = OutputFormat::chosen(args.output);
    print_variables(&plan, &header.looked_up, format);
    // Before any change: every selected step looked (read-only) at what it would change, and the
    // run goes on only if each found what it expects. The confirmation shows these counts.
    let preflight = match preflight {
        None => None,
        Some(Err(message)) => {
            eprintln!("error: {message}");
            return Outcome::Refused;
        }
        Some(Ok((found, at))) => {
            let problems = expectation_problems(&selected.dag, &found, !resuming);
            if !problems.is_empty() {
                for problem in &problems {
                    eprintln!("error: {problem}");
                }
                eprintln!("nothing was changed: the account does not hold what the plan expects (account {account}, region {})", aws.region);
                return Outcome::NotAsExpected;
            }
            Some((found, at))
        }
    };
    if !resuming {
        // Drawn now that the region is known; the directory is claimed before the first change.
        header.run_id = crate::run_dir::new_run_id(&plan.name, &aws.region);
    }
    // Two runs of one plan on one account and region would race each other's deletions.
    let _lock = if dry_run {
        None
    } else {
        let key = format!("{account}-{}-{}", aws.region, plan.name);
        match RunLock::acquire(&runs_dir(real.runs_dir.as_ref()), &key, &header.run_id) {
            Ok(lock) => Some(announce_takeover(lock)),
            Err(message) => {
                eprintln!("error: {message}");
                return Outcome::Refused;
            }
        }
    };
    if !dry_run
        && !real.yes
        && !confirm(
            &plan,
            &account,
            &aws.region,
            &selected.dag,
            preflight.as_ref().map(|(found, _)| found),
        )
    {
        return Outcome::Refused;
    }
    let mut journal = match &audit {
        None => None,
        Some(audit) => match start_records(
            &runs_dir(real.runs_dir.as_ref()),
            &mut header,
            resuming,
            &plan.name,
            audit,
        ) {
            Ok(journal) => Some(journal),
            Err(message) => {
                eprintln!("error: {message}");
                return Outcome::Refused;
            }
        },
    };
    let audit_path = audit.as_ref().map(|a| a.path());
    let aws = Arc::new(aws);
    let dag = runnable::with_hand_over(
        &plan,
        selected.dag,
        aws.clone(),
        execution.allowed.as_ref(),
        preflight.as_ref().map(|(found, at)| (found, *at)),
        "",
    );
    // A run that keeps a journal is continued with `resume`; a preview is simply run again.
    let resume = (!dry_run).then(|| {
        format!(
            "teardown resume {}{}",
            header.run_id,
            real.runs_dir
                .as_ref()
                .map(|d| format!(" --runs-dir {}", d.display()))
                .unwrap_or_default()
        )
    });
    let options = RunOptions {
        parallelism: args.parallelism as usize,
        fail_fast: args.fail_fast,
        plan_name: plan.name.clone(),
        dry_run,
        continue_later: resume.as_ref().map(|command| format!("`{command}`")),
    };
    let context = RunContext {
        account: account.clone(),
        region: aws.region.clone(),
        plan_file: Some(header.plan_path.clone()),
        audit_log: audit_path.clone(),
    };
    let (events, receiver) = EventSink::for_run(&header.run_id, context);
    let records = audit.clone();
    let listening = tokio::spawn(render::listen(
        receiver,
        events.clock(),
        render::for_format(format),
        move |event| record(journal.as_mut(), records.as_ref(), event),
    ));
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(signals::watch_signals(
        cancel.clone(),
        resume.as_ref().map_or_else(
            || "run the same command again".to_string(),
            |c| format!("`{c}`"),
        ),
    ));
    stop_when_record_lost(audit.as_ref(), &cancel);
    let record_lost = || audit.as_ref().and_then(AuditLog::why_stopped);
    let summary = engine::run_explained(&dag, &options, &events, &cancel, &record_lost).await;
    signals.abort();
    drop(events);
    drop(dag);
    let _ = listening.await;
    if format != OutputFormat::Json {
        let place = render::RunPlace {
            account: account.clone(),
            region: aws.region.clone(),
            resume: resume.clone(),
        };
        let _ = render::write_summary(&mut std::io::stdout(), &summary, dry_run, &place);
        if let Some(path) = &audit_path {
            say!("Audit log of every change made: {}", path.display());
        }
    }
    if let Some(problem) = audit.as_ref().and_then(AuditLog::problem) {
        eprintln!(
            "error: the run stopped changing things because its record could not be written: {problem}"
        );
        return Outcome::StepsFailed;
    }
    if let Some(path) = &execution.save {
        let preview = SavedPreview::from_run(header.clone(), &summary);
        if let Err(e) = preview.save(path) {
            eprintln!("error: cannot save the preview: {e}");
            return Outcome::StepsFailed;
        }
        // A line for people: with JSON events on stdout, it goes to stderr.
        let _ = writeln!(
            render::report_sink(format),
            "Saved the preview to {}: `teardown apply {}` deletes exactly these {} resources",
            path.display(),
            path.display(),
            preview.resource_count()
        );
    }
    if dry_run {
        // A preview is judged like the pre-flight of a run: the same counts, the same exit code.
        let problems = expectation_problems(&plan.dag, &summary, !resuming);
        if !problems.is_empty() && summary.all_succeeded() {
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            eprintln!("a run of this plan would stop here, before any change");
            return Outcome::NotAsExpected;
        }
    }
    outcome_of(&summary, execution.detailed_exitcode)
}

/// What the reads before any change gave: the values looked up, the plan validated again with
/// them and its steps selected, and (for a run) what the pre-flight found and when it looked.
struct FirstReads {
    looked_up: Vec<(String, crate::plan::VarSource)>,
    plan: crate::plan::Plan,
    selected: crate::plan::Selected,
    preflight: Option<Result<(RunSummary, tokio::time::Instant), String>>,
}

/// Why the reads before any change stopped the run.
enum ReadsFailed {
    /// A lookup found no value, or more than one.
    Lookup(String),
    /// Reported already (the plan with its values is invalid, a bug): the outcome to return.
    Outcome(Outcome),
}

/// The reads before any change, run alongside the account check and printing nothing (a refused
/// account must show nothing of what was read): the lookups the selected steps need, the plan
/// again with their values, and for a run (not a preview) the pre-flight.
#[allow(clippy::too_many_arguments)]
async fn first_reads(
    header: &RunHeader,
    selection: &PhaseSelection,
    mut plan: crate::plan::Plan,
    mut selected: crate::plan::Selected,
    read_only: Arc<Aws>,
    args: &RunSettings,
    execution: &Execution,
    resuming: bool,
) -> Result<FirstReads, ReadsFailed> {
    // Read-only: the values the selected steps need from the account, then the plan validated
    // again with them. Nothing has been changed yet, and nothing is if a lookup fails.
    let needed: BTreeSet<String> = plan
        .lookups_needed(&selected.dag)
        .intersection(&plan.unresolved)
        .cloned()
        .collect();
    let mut looked_up = Vec::new();
    if !needed.is_empty() {
        looked_up = crate::resolve::resolve(&plan, &needed, &read_only)
            .await
            .map_err(|e| ReadsFailed::Lookup(e.to_string()))?;
        let mut with_values = header.clone();
        with_values.looked_up.extend(looked_up.iter().cloned());
        (plan, selected) =
            parse_and_select(&with_values, selection).map_err(ReadsFailed::Outcome)?;
    }
    let still = plan.lookups_needed(&selected.dag);
    if let Some(name) = still.intersection(&plan.unresolved).next() {
        eprintln!("error: the variable `{name}` was not looked up; this is a bug in teardown: nothing was changed");
        return Err(ReadsFailed::Outcome(Outcome::BadInput));
    }
    if resuming {
        // Part of a resumed step's work may be done: it may find fewer than it expects, never more.
        selected.dag = selected.dag.map(|mut step| {
            step.expect = step.expect.without_minimum();
            step
        });
    }
    let preflight = if execution.dry_run {
        None
    } else {
        let found = preflight(&plan, &selected.dag, read_only, args, execution).await;
        Some(found.map(|found| (found, tokio::time::Instant::now())))
    };
    Ok(FirstReads {
        looked_up,
        plan,
        selected,
        preflight,
    })
}

fn outcome_of(summary: &RunSummary, detailed: bool) -> Outcome {
    if summary.cancelled == Some(engine::CancelReason::Interrupted) {
        return Outcome::Interrupted;
    }
    if !summary.all_succeeded() {
        return Outcome::StepsFailed;
    }
    let pending = summary
        .steps
        .iter()
        .filter_map(|s| s.output.as_ref())
        .flat_map(|o| &o.resources)
        .any(|r| r.outcome == crate::resource::OutcomeKind::Planned);
    if detailed && pending {
        Outcome::ChangesPending
    } else {
        Outcome::Success
    }
}
