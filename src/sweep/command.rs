//! `teardown sweep`: its flags, connecting to each region with the guard checked first, the run
//! lock, the confirmation, and the order of the stages.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::aws::{AuditLog, Aws, AwsOptions, Mode};
use crate::cli::Outcome;
use crate::event::EventSink;
use crate::journal::RunLock;
use crate::render::{self, OutputFormat};
use crate::util::count_of;

use super::discover::LabStatus;
use super::plan::{LoadError, SweepPlan};
use super::report::{write_found, write_labs};
use super::shard::Shard;
use super::{RegionClients, Sweep, SweepOptions};

/// `teardown sweep` arguments.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The plan file, with a `[sweep]` section.
    pub plan: PathBuf,
    /// Delete (without it, the sweep is a dry run that lists the labs and what would go).
    #[arg(long)]
    pub apply: bool,
    /// Do not ask for confirmation (for scheduled, unattended sweeps).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Sweep this region (repeatable: each region's labs join the same run). Default: the region
    /// of the environment or profile, like the AWS CLI.
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
    /// Sweep only shard K of N: the labs whose stable hash of account/region/stack, modulo N, is
    /// K-1. Runs of shards 1/N to N/N together sweep every lab exactly once.
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Write a JSON report (labs found, kept and why, what each lab's steps did) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Override a plan variable that `[sweep] bind` does not set: --var key=value (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = crate::cli::parse_var)]
    pub vars: Vec<(String, String)>,
    /// Steps running at once, at most, across all labs.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Stop starting new steps at the first failure (in any lab).
    #[arg(long)]
    pub fail_fast: bool,
    /// Output format (default: human on a terminal, plain otherwise or when NO_COLOR is set).
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,
    /// Where the audit log of a sweep that deletes is kept (default: as for `teardown run`).
    #[arg(long, env = "TEARDOWN_RUNS_DIR")]
    pub runs_dir: Option<PathBuf>,
}

/// Runs `teardown sweep`.
pub async fn run(args: SweepArgs) -> Outcome {
    let plan = match SweepPlan::load(&args.plan, &args.vars) {
        Ok(plan) => plan,
        Err(LoadError::Io { path, source }) => {
            eprintln!("error: cannot read the plan {}: {source}", path.display());
            return Outcome::BadInput;
        }
        Err(LoadError::Invalid(errors)) => {
            eprintln!("{errors}");
            return Outcome::BadInput;
        }
    };
    let apply = args.apply;
    let mut regions: Vec<Option<String>> = Vec::new();
    for region in &args.regions {
        if !regions.contains(&Some(region.clone())) {
            regions.push(Some(region.clone()));
        }
    }
    if regions.is_empty() {
        regions.push(None);
    }
    let run_id = format!(
        "{}-sweep-{}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        plan.plan.name
    );
    let runs_dir = crate::cli::runs_dir(args.runs_dir.as_ref());
    let audit = if apply {
        let path = runs_dir.join(&run_id).join("audit.jsonl");
        match AuditLog::open(&path, &run_id) {
            Ok(audit) => Some(audit),
            Err(e) => {
                eprintln!("error: cannot create the audit log {}: {e}; pass --runs-dir to put it elsewhere", path.display());
                return Outcome::Refused;
            }
        }
    } else {
        None
    };
    let (clients, account) = match connect(&plan, regions, audit.as_ref()).await {
        Ok(connected) => connected,
        Err(message) => {
            eprintln!("error: {message}");
            return Outcome::Refused;
        }
    };
    // Two sweeps of one plan in one account and region would race each other's deletions.
    let mut locks = Vec::new();
    if apply {
        for c in &clients {
            let mut key = format!("{account}-{}-{}", c.read.region, plan.plan.name);
            if let Some(shard) = &args.shard {
                key.push_str(&format!("-shard-{}-of-{}", shard.index, shard.count));
            }
            match RunLock::acquire(&runs_dir, &key, &run_id) {
                Ok(lock) => locks.push(lock),
                Err(message) => {
                    eprintln!("error: {message}");
                    return Outcome::Refused;
                }
            }
        }
    }
    let format = args.output.unwrap_or_else(|| {
        if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            OutputFormat::Human
        } else {
            OutputFormat::Plain
        }
    });
    // Text for people goes to stdout, except with JSON events there.
    let mut out: Box<dyn Write> = if format == OutputFormat::Json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let options = SweepOptions {
        shard: args.shard,
        parallelism: args.parallelism as usize,
        fail_fast: args.fail_fast,
        now: Utc::now(),
    };
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(crate::cli::watch_signals(cancel.clone()));

    let mut sweep = Sweep::discover(&plan, &clients, &account, &options).await;
    let _ = write_found(&mut out, &plan, &sweep, &options);
    let (events, listening) = listen(format);
    let preview = sweep.preview(&clients, &options, &events, &cancel).await;
    drop(events);
    let _ = listening.await;
    let place = render::RunPlace {
        account: account.clone(),
        region: sweep.regions.join(", "),
    };
    let to_delete = sweep
        .labs
        .iter()
        .filter(|l| l.status == LabStatus::WouldDelete)
        .count();
    if apply && to_delete > 0 && !sweep.interrupted {
        if let (Some(summary), false) = (&preview, args.yes || format == OutputFormat::Json) {
            let _ = render::write_summary(&mut out, summary, true, &place);
        }
        if !args.yes && !confirmed(&plan, &sweep, to_delete) {
            signals.abort();
            return Outcome::Refused;
        }
        let (events, listening) = listen(format);
        let applied = sweep.apply(&clients, &options, &events, &cancel).await;
        drop(events);
        let _ = listening.await;
        if let (Some(summary), true) = (&applied, format != OutputFormat::Json) {
            let _ = render::write_summary(&mut out, summary, false, &place);
        }
        if let Some(audit) = &audit {
            let _ = writeln!(
                out,
                "Audit log of every change made: {}",
                audit.path().display()
            );
        }
    } else if let (Some(summary), true) = (&preview, format != OutputFormat::Json) {
        let _ = render::write_summary(&mut out, summary, true, &place);
    }
    signals.abort();
    let _ = write_labs(&mut out, &sweep);
    if let Some(path) = &args.report {
        let report = sweep.report(&plan, &options);
        let written = serde_json::to_string_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json + "\n"));
        if let Err(e) = written {
            eprintln!("error: cannot write the report {}: {e}", path.display());
            return Outcome::StepsFailed;
        }
    }
    sweep.outcome()
}

/// The clients of every region (`None`: the region of the environment), each region's guard
/// checked before any other call; with an audit log, clients that may delete too. Returns them
/// and the account id.
async fn connect(
    plan: &SweepPlan,
    regions: Vec<Option<String>>,
    audit: Option<&AuditLog>,
) -> Result<(Vec<RegionClients>, String), String> {
    let mut clients = Vec::new();
    let mut account = String::new();
    for region in regions {
        let options = |audit: Option<&AuditLog>| AwsOptions {
            region: region.clone(),
            audit: audit.cloned(),
            ..AwsOptions::default()
        };
        let read = Aws::from_env(Mode::DryRun, options(None))
            .await
            .map_err(|e| e.to_string())?;
        account = crate::cli::check_guard(&plan.plan, &read).await?;
        let write = match audit {
            Some(audit) => Some(Arc::new(
                Aws::from_env(Mode::Apply, options(Some(audit)))
                    .await
                    .map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        clients.push(RegionClients {
            read: Arc::new(read),
            write,
        });
    }
    Ok((clients, account))
}

/// A renderer of its own for one stage's events: the sink, and the listener to await once the
/// sink is dropped.
fn listen(format: OutputFormat) -> (EventSink, tokio::task::JoinHandle<()>) {
    let (events, mut receiver) = EventSink::channel();
    let mut renderer = render::for_format(format);
    let listening = tokio::spawn(async move {
        while let Some(event) = receiver.recv().await {
            renderer.event(&event);
        }
        renderer.finish();
    });
    (events, listening)
}

/// Asks the person at the terminal, as `teardown run` does; without one, refuses.
fn confirmed(plan: &SweepPlan, sweep: &Sweep, labs: usize) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("error: refusing to delete without confirmation: no terminal to ask on. Pass --yes for unattended sweeps, or look first with `teardown sweep {}` (a dry run)", plan.path.display());
        return false;
    }
    let account = &sweep.account;
    eprintln!(
        "About to sweep plan `{}` in account {account}, {}: this DELETES {} (listed above).",
        plan.plan.name,
        sweep.regions.join(", "),
        count_of(labs, "lab")
    );
    eprint!("Type the account id ({account}) to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() || answer.trim() != account {
        eprintln!("not confirmed: nothing was done");
        return false;
    }
    true
}
