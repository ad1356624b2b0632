//! `teardown sweep`: its flags, the run locks, the confirmation, and the order of the stages
//! (connecting to each account behind its guard is `connect.rs`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use chrono::Utc;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::event::EventSink;
use crate::journal::RunLock;
use crate::outcome::Outcome;
use crate::render::{self, OutputFormat};
use crate::util::count_of;

use super::accounts::{AccountList, RoleTemplate};
use super::connect::{connect, Accounts, Regions, RunsDirs};
use super::discover::LabStatus;
use super::report::{write_found, write_labs};
use super::shard::Shard;
use super::{Sweep, SweepOptions};
use crate::plan::sweep::{LoadError, SweepPlan};

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
    /// Sweep every region enabled for the account (EC2 DescribeRegions), each region's labs in
    /// the same run; with a `[guard] regions` list, only the enabled regions it allows. Needs
    /// ec2:DescribeRegions besides the policy `teardown permissions PLAN` prints.
    #[arg(long, conflicts_with = "regions")]
    pub all_regions: bool,
    /// Sweep each account of --accounts through this role, assumed in it (session name
    /// `teardown-sweep`): an IAM role ARN with {account} where the account id goes, e.g.
    /// 'arn:aws:iam::{account}:role/teardown-sweep'. Your credentials need only sts:AssumeRole on
    /// it; the role, in each account, must trust them and have the policy `teardown permissions
    /// PLAN` prints (plus ec2:DescribeRegions with --all-regions).
    #[arg(long, value_name = "ROLE_ARN", value_parser = RoleTemplate::parse)]
    pub assume_role: Option<RoleTemplate>,
    /// The accounts to sweep (with --assume-role): 111111111111,222222222222, or @FILE with one
    /// account id a line (`#` starts a comment). Each account's guard is checked once, and its
    /// runs and audit log are kept under RUNS_DIR/ACCOUNT.
    #[arg(long, value_name = "IDS|@FILE", value_parser = AccountList::parse)]
    pub accounts: Option<AccountList>,
    /// Sweep only shard K of N: the labs whose stable hash of account/region/stack, modulo N, is
    /// K-1. Runs of shards 1/N to N/N together sweep every lab exactly once.
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Write a JSON report (labs found, kept and why, what each lab's steps did) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Calls in flight at once to each AWS service, at most (per account and region).
    #[command(flatten)]
    pub call_limits: crate::settings::CallLimitArgs,
    /// How long one AWS call may take.
    #[command(flatten)]
    pub call_timeouts: crate::settings::CallTimeoutArgs,
    /// Override a plan variable that `[sweep] bind` does not set: --var key=value (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = crate::settings::parse_var)]
    pub vars: Vec<(String, String)>,
    /// Steps running at once, at most, across all labs.
    #[arg(long, default_value_t = crate::engine::DEFAULT_PARALLELISM,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Stop starting new steps at the first failure (in any lab).
    #[arg(long)]
    pub fail_fast: bool,
    /// Output format (default: human on a terminal, plain otherwise or when NO_COLOR is set).
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,
    /// Where the audit log of a sweep that deletes is kept (default: as for `teardown run`); with
    /// --accounts, each account's under a directory of its own, named by its id.
    #[arg(long, env = "TEARDOWN_RUNS_DIR")]
    pub runs_dir: Option<PathBuf>,
}

/// Runs `teardown sweep`.
pub async fn run(args: SweepArgs) -> Outcome {
    let accounts = match (&args.assume_role, &args.accounts) {
        (None, None) => Accounts::Environment,
        (Some(role), Some(accounts)) => Accounts::AssumeRole {
            role: role.clone(),
            accounts: accounts.0.clone(),
        },
        (None, Some(_)) => {
            eprintln!("error: --accounts needs --assume-role: the role to assume in each account, e.g. --assume-role 'arn:aws:iam::{{account}}:role/teardown-sweep' (without --accounts, the sweep stays in the account of your credentials)");
            return Outcome::BadInput;
        }
        (Some(_), None) => {
            eprintln!("error: --assume-role needs --accounts: the accounts to assume it in, e.g. --accounts 111111111111,222222222222 or --accounts @accounts.txt (one id a line)");
            return Outcome::BadInput;
        }
    };
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
    let regions = if args.all_regions {
        Regions::AllEnabled
    } else if args.regions.is_empty() {
        Regions::Environment
    } else {
        let mut regions: Vec<String> = Vec::new();
        for region in &args.regions {
            if !regions.contains(region) {
                regions.push(region.clone());
            }
        }
        Regions::Listed(regions)
    };
    // Unique like a run's (see crate::run_dir): two sweeps (shards) started in the same second
    // must not share an audit log. `sweep` stands where a run's id names its region.
    let run_id = crate::run_dir::new_run_id(&plan.plan.name, "sweep");
    let runs = RunsDirs {
        root: crate::settings::runs_dir(args.runs_dir.as_ref()),
        per_account: matches!(accounts, Accounts::AssumeRole { .. }),
    };
    crate::guard::warn_without_account_guard(&plan.plan.guard, None);
    let audit = apply.then_some((&runs, run_id.as_str()));
    let connected = match connect(
        &plan.plan,
        &accounts,
        &regions,
        audit,
        args.call_limits.limits(),
        args.call_timeouts.timeouts(),
    )
    .await
    {
        Ok(connected) => connected,
        Err(message) => {
            eprintln!("error: {message}");
            return Outcome::Refused;
        }
    };
    for refused in &connected.refused {
        eprintln!(
            "error: account {} refused: {}",
            refused.account, refused.reason
        );
    }
    let clients = connected.accounts;
    // Two sweeps of one plan in one account and region would race each other's deletions.
    let mut locks = Vec::new();
    if apply {
        for account in &clients {
            for c in &account.regions {
                let mut key = format!("{}-{}-{}", account.account, c.read.region, plan.plan.name);
                if let Some(shard) = &args.shard {
                    key.push_str(&format!("-shard-{}-of-{}", shard.index, shard.count));
                }
                match RunLock::acquire(&runs.of(&account.account), &key, &run_id) {
                    Ok(lock) => locks.push(crate::session::records::announce_takeover(lock)),
                    Err(message) => {
                        eprintln!("error: {message}");
                        return Outcome::Refused;
                    }
                }
            }
        }
    }
    let format = OutputFormat::chosen(args.output);
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
    // Sweeps keep no journal: an interrupted one is finished by sweeping again.
    let signals = tokio::spawn(crate::session::signals::watch_signals(
        cancel.clone(),
        "run the same sweep again".to_string(),
    ));

    let mut sweep = Sweep::discover_accounts(&plan, &clients, connected.refused, &options).await;
    let _ = write_found(&mut out, &plan, &sweep, &options);
    let (events, listening) = listen(format);
    let preview = sweep
        .preview_accounts(&clients, &options, &events, &cancel)
        .await;
    drop(events);
    let _ = listening.await;
    let place = render::RunPlace {
        account: sweep.accounts.join(", "),
        region: sweep.regions.join(", "),
        resume: None,
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
        let applied = sweep
            .apply_accounts(&clients, &options, &events, &cancel)
            .await;
        drop(events);
        let _ = listening.await;
        if let (Some(summary), true) = (&applied, format != OutputFormat::Json) {
            let _ = render::write_summary(&mut out, summary, false, &place);
        }
        for (account, audit) in sweep.accounts.iter().zip(&connected.audits) {
            let whose = if sweep.accounts.len() > 1 {
                format!(" in account {account}")
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "Audit log of every change made{whose}: {}",
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

/// A renderer of its own for one stage's events: the sink, and the listener to await once the
/// sink is dropped.
fn listen(format: OutputFormat) -> (EventSink, tokio::task::JoinHandle<()>) {
    let (events, receiver) = EventSink::channel();
    let listening = tokio::spawn(render::listen(
        receiver,
        events.clock(),
        render::for_format(format),
        |_| {},
    ));
    (events, listening)
}

/// Asks the person at the terminal, as `teardown run` does; without one, refuses.
fn confirmed(plan: &SweepPlan, sweep: &Sweep, labs: usize) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("error: refusing to delete without confirmation: no terminal to ask on. Pass --yes for unattended sweeps, or look first with `teardown sweep {}` (a dry run)", plan.path.display());
        return false;
    }
    // One account: its id is typed, as for `teardown run`; several: how many there are.
    let (whose, expected) = match sweep.accounts.as_slice() {
        [account] => (format!("account {account}"), account.clone()),
        accounts => (
            format!("{} accounts ({})", accounts.len(), accounts.join(", ")),
            accounts.len().to_string(),
        ),
    };
    eprintln!(
        "About to sweep plan `{}` in {whose}, {}: this DELETES {} (listed above).",
        plan.plan.name,
        sweep.regions.join(", "),
        count_of(labs, "lab")
    );
    if sweep.accounts.len() == 1 {
        eprint!("Type the account id ({expected}) to go on: ");
    } else {
        eprint!("Type the number of accounts ({expected}) to go on: ");
    }
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() || answer.trim() != expected {
        eprintln!("not confirmed: nothing was done");
        return false;
    }
    true
}
