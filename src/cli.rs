//! The command line: clap commands and flags, and the functions that carry them out. Each command
//! returns an [`Outcome`] that `main` turns into the documented exit code.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::actions;
use crate::aws::{AuditLog, Aws, AwsOptions, Mode};
use crate::engine::{self, RunOptions, RunSummary};
use crate::event::EventSink;
use crate::journal::{Journal, RunHeader, RunLock};
pub use crate::outcome::Outcome;
use crate::plan::{self, LoadError, PhaseSelection, Plan};
use crate::preview::SavedPreview;
use crate::render::{self, OutputFormat};
use crate::settings::parse_var;
pub use crate::settings::{runs_dir, CallLimitArgs, CallTimeoutArgs};

/// Prints on stdout, ignoring a closed pipe: `teardown run ... | head -1` must neither panic (as
/// `println!` does on EPIPE) nor stop a run whose record is its journal and audit log.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Takes AWS accounts apart in the right order, from a declarative plan.
#[derive(Debug, Parser)]
#[command(name = "teardown", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Say more: the whole detail of an error (an SDK error with all its causes), and the SDK's
    /// own log lines (filtered by RUST_LOG when set, else warnings).
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a plan without calling AWS: exit 0, or print each problem with file:line:column and exit 2.
    Validate(PlanArgs),
    /// Print a plan's dependency graph (text levels, Graphviz dot, or Mermaid).
    Graph {
        /// The plan and its variables.
        #[command(flatten)]
        plan: PlanArgs,
        /// Picture format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Run a plan: delete what its steps match, in order.
    Run(RunArgs),
    /// Show what a run would delete, changing nothing (the same as `run --dry-run`).
    Preview(RunArgs),
    /// Continue a run that stopped (interrupted, killed, failed): steps that succeeded are not
    /// redone, the others are re-checked against the account as it is now.
    Resume(ResumeArgs),
    /// Delete exactly what a saved preview (`preview --save FILE`) listed, in the plan's order;
    /// anything that appeared since is left alone and reported.
    Apply(ApplyArgs),
    /// Apply a plan to every lab its `[sweep]` section finds (dry run unless --apply).
    Sweep(crate::sweep::SweepArgs),
    /// Print the least-privilege IAM policy a plan needs (JSON).
    Permissions(PermissionsArgs),
    /// List the actions a plan can use, with the keys each accepts.
    Actions,
}

/// Which plan's policy to print, and for which way of running it.
#[derive(Debug, Args)]
pub struct PermissionsArgs {
    /// The plan, and its variables.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Include what `teardown sweep --all-regions` needs too (ec2:DescribeRegions, to list the
    /// account's enabled regions). With `--assume-role`, this policy belongs to the assumed roles;
    /// the caller needs only sts:AssumeRole on them.
    #[arg(long)]
    pub all_regions: bool,
}

/// Which saved preview to apply, and how.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The file `teardown preview PLAN --save FILE` wrote.
    pub preview: PathBuf,
    /// How to run (the plan, variables and phases come from the preview).
    #[command(flatten)]
    pub settings: RunSettings,
}

/// How one execution of a plan differs from a plain run.
#[derive(Default)]
struct Execution {
    dry_run: bool,
    detailed_exitcode: bool,
    /// Steps a resumed run must not redo.
    done: BTreeSet<String>,
    /// A saved preview's resources, per step: nothing else may be changed.
    allowed: Option<BTreeMap<String, BTreeSet<String>>>,
    /// Where to save a preview.
    save: Option<PathBuf>,
}

/// Which run to continue, and how.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run id (printed at the end of the run, and the name of its directory under the runs dir).
    pub run_id: String,
    /// How to run (the plan, variables and phases come from the run's journal).
    #[command(flatten)]
    pub settings: RunSettings,
}

/// Which plan, and its variables.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    /// Override a plan variable: --var key=value (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

/// How to run a plan.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan and its variables.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Resolve what would be deleted with read-only calls, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only the steps of this phase (repeatable).
    #[arg(long = "only", value_name = "PHASE")]
    pub only: Vec<String>,
    /// Leave out the steps of this phase (repeatable).
    #[arg(long = "skip", value_name = "PHASE")]
    pub skip: Vec<String>,
    /// Treat left-out steps that selected steps wait for as done.
    #[arg(long)]
    pub assume_done: bool,
    /// Preview only: exit 4 when something would be deleted (0 when nothing would).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Preview only: save what would be deleted to this file, for `teardown apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// How to run.
    #[command(flatten)]
    pub settings: RunSettings,
}

/// Settings shared by `run`, `preview` and `resume`.
#[derive(Debug, Args)]
pub struct RunSettings {
    /// Do not ask for confirmation (for unattended runs).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Steps running at once, at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Stop starting new steps at the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Output format (default: human on a terminal, plain otherwise or when NO_COLOR is set).
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,
    /// AWS region (default: from the environment or profile, like the AWS CLI).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Where each run keeps its journal and audit log (default: $XDG_STATE_HOME/teardown/runs,
    /// or ~/.local/state/teardown/runs).
    #[arg(long, env = "TEARDOWN_RUNS_DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Calls in flight at once to each AWS service, at most.
    #[command(flatten)]
    pub call_limits: CallLimitArgs,
    /// How long one AWS call may take.
    #[command(flatten)]
    pub call_timeouts: CallTimeoutArgs,
}

/// Formats of `teardown graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Levels of steps that can run together, in order.
    Text,
    /// Graphviz.
    Dot,
    /// Mermaid, for Markdown viewers.
    Mermaid,
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    crate::session::signals::ignore_file_size_signal();
    let cli = Cli::parse();
    crate::util::set_verbose(cli.verbose);
    if cli.verbose || std::env::var_os("RUST_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the async runtime");
    runtime.block_on(execute(cli.command)).exit_code()
}

/// Runs one command.
pub async fn execute(command: Command) -> Outcome {
    match command {
        Command::Validate(args) => match load(&args) {
            Some(plan) => {
                // A plan with a [sweep] section is checked as a sweep too.
                if plan.sweep.is_some() {
                    if let Err(e) = crate::sweep::SweepPlan::load(&args.plan, &args.vars) {
                        eprintln!("{e}");
                        return Outcome::BadInput;
                    }
                }
                say!(
                    "{}: plan `{}` is valid ({} steps)",
                    plan.file.display(),
                    plan.name,
                    plan.dag.len()
                );
                Outcome::Success
            }
            None => Outcome::BadInput,
        },
        Command::Graph { plan, format } => match load(&plan) {
            Some(plan) => {
                let picture = match format {
                    GraphFormat::Text => plan.dag.to_text(),
                    GraphFormat::Dot => plan.dag.to_dot(),
                    GraphFormat::Mermaid => plan.dag.to_mermaid(),
                };
                // A closed pipe is not an error (see `say!`).
                let _ = std::io::stdout().lock().write_all(picture.as_bytes());
                Outcome::Success
            }
            None => Outcome::BadInput,
        },
        Command::Actions => {
            for spec in actions::registry() {
                say!("{}\n    {}", spec.name, spec.summary);
                for field in spec.selector {
                    let required = if field.required { " (required)" } else { "" };
                    say!("    match.{}{required}: {}", field.name, field.help);
                }
                for field in spec.options {
                    say!("    {}: {}", field.name, field.help);
                }
            }
            Outcome::Success
        }
        Command::Run(args) => run(args, false).await,
        Command::Resume(args) => resume(args).await,
        Command::Apply(args) => apply(args).await,
        Command::Sweep(args) => crate::sweep::run(args).await,
        Command::Permissions(args) => match load(&args.plan) {
            Some(plan) => {
                let extra: &[&str] = if args.all_regions {
                    &["ec2:DescribeRegions"]
                } else {
                    &[]
                };
                say!("{}", plan.iam_policy(extra));
                Outcome::Success
            }
            None => Outcome::BadInput,
        },
        Command::Preview(args) => run(args, true).await,
    }
}

fn load(args: &PlanArgs) -> Option<Plan> {
    match plan::load(&args.plan, &args.vars) {
        Ok(plan) => Some(plan),
        Err(LoadError::Io { path, source }) => {
            eprintln!("error: cannot read the plan {}: {source}", path.display());
            None
        }
        Err(LoadError::Invalid(errors)) => {
            eprintln!("{errors}");
            None
        }
    }
}

async fn run(args: RunArgs, preview: bool) -> Outcome {
    let text = match std::fs::read_to_string(&args.plan.plan) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "error: cannot read the plan {}: {e}",
                args.plan.plan.display()
            );
            return Outcome::BadInput;
        }
    };
    let header = RunHeader {
        run_id: String::new(),
        plan_path: args.plan.plan.clone(),
        plan_text: text,
        vars: args.plan.vars.clone(),
        only: args.only.clone(),
        skip: args.skip.clone(),
        assume_done: args.assume_done,
        account: String::new(),
        region: String::new(),
        looked_up: Default::default(),
    };
    let dry_run = preview || args.dry_run;
    if args.save.is_some() && !dry_run {
        eprintln!("error: --save goes with a preview (`teardown preview PLAN --save FILE`)");
        return Outcome::BadInput;
    }
    let execution = Execution {
        dry_run,
        detailed_exitcode: dry_run && args.detailed_exitcode,
        save: args.save.clone(),
        ..Execution::default()
    };
    execute_plan(header, &args.settings, execution).await
}

/// Applies a saved preview.
async fn apply(args: ApplyArgs) -> Outcome {
    let preview = match SavedPreview::load(&args.preview) {
        Ok(preview) => preview,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::BadInput;
        }
    };
    eprintln!(
        "applying the preview {} ({} resources, account {}, region {})",
        args.preview.display(),
        preview.resource_count(),
        preview.run.account,
        preview.run.region
    );
    let mut header = preview.run.clone();
    header.run_id = String::new();
    let execution = Execution {
        allowed: Some(preview.allowed()),
        ..Execution::default()
    };
    execute_plan(header, &args.settings, execution).await
}

/// Continues a run from its journal.
async fn resume(args: ResumeArgs) -> Outcome {
    let run_dir = runs_dir(args.settings.runs_dir.as_ref()).join(&args.run_id);
    let (header, done) = match Journal::load(&run_dir) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: cannot resume run {}: {e}", args.run_id);
            return Outcome::BadInput;
        }
    };
    if let Err(message) = check_journal_is_this_runs(&args.run_id, &header) {
        eprintln!(
            "error: cannot resume run {}: {message}: nothing was done",
            args.run_id
        );
        return Outcome::Refused;
    }
    if !done.is_empty() {
        eprintln!(
            "resuming run {}: {} done already, not redone: {}",
            header.run_id,
            done.len(),
            done.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let execution = Execution {
        done,
        ..Execution::default()
    };
    execute_plan(header, &args.settings, execution).await
}

/// The plan a run, preview, resume or apply executes, validated exactly as `teardown validate`
/// does: only a validated plan runs, so a plan with a `[sweep]` section must pass the sweep's
/// checks too, although these commands do not use it.
fn parse_validated(header: &RunHeader) -> Result<Plan, plan::PlanErrors> {
    let plan = plan::parse(&header.plan_path, &header.plan_text, &header.vars)?;
    if plan.sweep.is_some() {
        crate::sweep::SweepPlan::parse(&header.plan_path, &header.plan_text, &header.vars)?;
    }
    Ok(plan)
}

/// A journal says which steps are done; it may be trusted only for the run it was written by:
/// the run id it names must be the directory's, and that id must name the journal's own region
/// and plan (ids made before they named a region are not checked for it). The account and region
/// the resume is about to act in are checked against the journal's once they are known (see
/// `execute_plan`).
fn check_journal_is_this_runs(run_id: &str, header: &RunHeader) -> Result<(), String> {
    if header.run_id != run_id {
        return Err(format!(
            "its journal belongs to run {}: the run directory was copied or mixed up",
            header.run_id
        ));
    }
    if header.account.is_empty() || header.region.is_empty() {
        return Err("its journal does not say which account and region it ran in".into());
    }
    let plan = plan::parse(&header.plan_path, &header.plan_text, &header.vars)
        .map(|p| p.name)
        .unwrap_or_default();
    if !plan.is_empty() && crate::run_dir::id_names(run_id, &header.region, &plan) == Some(false) {
        return Err(format!(
            "its journal is for plan `{plan}` in region {}, which is not what the run id names: the journal was written by another run",
            header.region
        ));
    }
    Ok(())
}

/// Validates, guards, confirms and runs a plan; `header` says which plan and how (its `run_id`
/// is empty for a new run), `done` lists steps a resumed run must not redo.
async fn execute_plan(mut header: RunHeader, args: &RunSettings, execution: Execution) -> Outcome {
    let dry_run = execution.dry_run;
    let selection = PhaseSelection {
        only: header.only.clone(),
        skip: header.skip.clone(),
        assume_done: header.assume_done,
        done: execution.done.clone(),
    };
    // A resumed run or an applied preview brings the values its lookups found: they are used as
    // they are, and the account is not read for them again.
    let (mut plan, mut selected) = match parse_and_select(&header, &selection) {
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
            region,
            audit: audit.clone(),
            call_limits: args.call_limits.limits(),
            timeouts: Some(args.call_timeouts.timeouts()),
            ..AwsOptions::default()
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
    let account = match crate::guard::check(&plan.guard, &aws).await {
        Ok(account) => account,
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
    if let Some(allowed) = &execution.allowed {
        if let Some(unknown) = allowed.keys().find(|step| selected.dag.get(step).is_none()) {
            eprintln!("error: the preview lists resources for step `{unknown}`, which its own plan does not run: the file is inconsistent; make a new preview");
            return Outcome::BadInput;
        }
    }
    header.account = account.clone();
    header.region = aws.region.clone();
    // Read-only: the values the selected steps need from the account, then the plan validated
    // again with them. Nothing has been changed yet, and nothing is if a lookup fails.
    let needed: BTreeSet<String> = plan
        .lookups_needed(&selected.dag)
        .intersection(&plan.unresolved)
        .cloned()
        .collect();
    // Lookups and the pre-flight read through clients that refuse every mutating call (the
    // dry-run guard), whatever a bug in them might try.
    let read_only = match Aws::from_env(
        Mode::DryRun,
        AwsOptions {
            region: Some(aws.region.clone()),
            call_limits: args.call_limits.limits(),
            timeouts: Some(args.call_timeouts.timeouts()),
            ..AwsOptions::default()
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
    if !needed.is_empty() {
        match crate::resolve::resolve(&plan, &needed, &read_only).await {
            Ok(found) => header.looked_up.extend(found),
            Err(e) => {
                eprintln!("error: {e}\nnothing was changed: the account does not hold what the plan looks for here (account {account}, region {})", aws.region);
                return Outcome::NotAsExpected;
            }
        }
        (plan, selected) = match parse_and_select(&header, &selection) {
            Ok(parsed) => parsed,
            Err(outcome) => return outcome,
        };
    }
    let still = plan.lookups_needed(&selected.dag);
    if let Some(name) = still.intersection(&plan.unresolved).next() {
        eprintln!("error: the variable `{name}` was not looked up; this is a bug in teardown: nothing was changed");
        return Outcome::BadInput;
    }
    if resuming {
        // Part of a resumed step's work may be done: it may find fewer than it expects, never more.
        selected.dag = selected.dag.map(|mut step| {
            step.expect = step.expect.without_minimum();
            step
        });
    }
    let format = args.output.unwrap_or_else(|| {
        if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            OutputFormat::Human
        } else {
            OutputFormat::Plain
        }
    });
    print_variables(&plan, &header.looked_up, format);
    // Before any change: every selected step looks (read-only) at what it would change, and the
    // run goes on only if each finds what it expects. The confirmation shows these counts.
    let preflight = if dry_run {
        None
    } else {
        let found = match preflight(&plan, &selected.dag, read_only, args, &execution).await {
            Ok(found) => found,
            Err(message) => {
                eprintln!("error: {message}");
                return Outcome::Refused;
            }
        };
        let problems = expectation_problems(&selected.dag, &found, !resuming);
        if !problems.is_empty() {
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            eprintln!("nothing was changed: the account does not hold what the plan expects (account {account}, region {})", aws.region);
            return Outcome::NotAsExpected;
        }
        Some(found)
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
        match RunLock::acquire(&runs_dir(args.runs_dir.as_ref()), &key, &header.run_id) {
            Ok(lock) => Some(crate::session::records::announce_takeover(lock)),
            Err(message) => {
                eprintln!("error: {message}");
                return Outcome::Refused;
            }
        }
    };
    if !dry_run
        && !args.yes
        && !confirm(
            &plan,
            &account,
            &aws.region,
            &selected.dag,
            preflight.as_ref(),
        )
    {
        return Outcome::Refused;
    }
    let mut journal = match &audit {
        None => None,
        Some(audit) => match start_records(
            &runs_dir(args.runs_dir.as_ref()),
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
    let dag = plan.bind(selected.dag, aws.clone(), execution.allowed.as_ref());
    let options = RunOptions {
        parallelism: args.parallelism as usize,
        fail_fast: args.fail_fast,
        plan_name: plan.name.clone(),
        dry_run,
    };
    let (events, mut receiver) = EventSink::channel();
    let mut renderer = render::for_format(format);
    let records = audit.clone();
    let listening = tokio::spawn(async move {
        while let Some(event) = receiver.recv().await {
            record(journal.as_mut(), records.as_ref(), &event);
            renderer.event(&event);
        }
        renderer.finish();
    });
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(crate::session::signals::watch_signals(cancel.clone()));
    stop_when_record_lost(audit.as_ref(), &cancel);
    let summary = engine::run(&dag, &options, &events, &cancel).await;
    signals.abort();
    drop(events);
    drop(dag);
    let _ = listening.await;
    if format != OutputFormat::Json {
        let place = render::RunPlace {
            account: account.clone(),
            region: aws.region.clone(),
        };
        let _ = render::write_summary(&mut std::io::stdout(), &summary, dry_run, &place);
        if let Some(path) = &audit_path {
            say!("Audit log of every change made: {}", path.display());
        }
        if !dry_run && !summary.all_succeeded() {
            say!(
                "Continue this run with: teardown resume {}{}",
                header.run_id,
                args.runs_dir
                    .as_ref()
                    .map(|d| format!(" --runs-dir {}", d.display()))
                    .unwrap_or_default()
            );
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
        say!(
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

/// Parses the run's plan with its `--var`s and the values its lookups found so far, and selects
/// the steps of its phases; the error is reported, as its outcome.
fn parse_and_select(
    header: &RunHeader,
    selection: &PhaseSelection,
) -> Result<(Plan, plan::Selected), Outcome> {
    // The plan as given (its [sweep] section too), then with the values found so far.
    let given = parse_validated(header).map_err(|errors| {
        eprintln!("{errors}");
        Outcome::BadInput
    })?;
    let plan = if header.looked_up.is_empty() {
        given
    } else {
        let mut overrides = header.vars.clone();
        overrides.extend(
            header
                .looked_up
                .iter()
                .map(|(name, found)| (name.clone(), found.value.clone())),
        );
        plan::parse(&header.plan_path, &header.plan_text, &overrides).map_err(|errors| {
            eprintln!("{errors}");
            Outcome::BadInput
        })?
    };
    let selected = plan.select(selection).map_err(|e| {
        eprintln!("error: {e}");
        Outcome::BadInput
    })?;
    Ok((plan, selected))
}

/// Prints every variable with its value and where it came from, before anything runs: on
/// stdout with the rest of the report, on stderr when stdout carries JSON Lines.
fn print_variables(
    plan: &Plan,
    looked_up: &BTreeMap<String, plan::VarSource>,
    format: OutputFormat,
) {
    let vars = plan.variable_sources(looked_up);
    if vars.is_empty() {
        return;
    }
    let width = vars.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut text = String::from("Variables:\n");
    for (name, found) in &vars {
        text.push_str(&format!(
            "  {name:<width$} = {}    ({})\n",
            found.value, found.source
        ));
    }
    if format == OutputFormat::Json {
        eprint!("{text}");
    } else {
        say!("{}", text.trim_end());
    }
}

/// What each step's `expect` says of what it found, in words; empty when all is as expected.
/// With `whole`, a run whose steps all found nothing is a problem too: a plan aimed at the
/// wrong place matches nothing, and that is not success.
fn expectation_problems(
    steps: &crate::graph::Dag<plan::PlannedStep>,
    summary: &RunSummary,
    whole: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut matched_any = false;
    for result in &summary.steps {
        let Some(output) = &result.output else {
            continue;
        };
        let found: Vec<crate::resource::Resource> = output
            .resources
            .iter()
            .map(|o| o.resource.clone())
            .collect();
        matched_any |= !found.is_empty();
        let Some(step) = steps.get(&result.id) else {
            continue;
        };
        if let Err(message) = step.expect.check(step.built.resource_kind(), &found) {
            let message = message.replace("\nnothing was changed by this step", "");
            problems.push(format!("step `{}`: {message}", step.id));
        }
    }
    if whole && !matched_any && summary.all_succeeded() && !summary.steps.is_empty() {
        problems.push("no step matched anything: the plan is aimed at nothing here (check the variables above, the region and the account)".into());
    }
    problems
}

/// The pre-flight of a run: the selected steps run as a dry run, with the run's own limits and,
/// for an applied preview, its list of resources. `Err` when a step could not look.
async fn preflight(
    plan: &Plan,
    steps: &crate::graph::Dag<plan::PlannedStep>,
    read_only: Arc<Aws>,
    args: &RunSettings,
    execution: &Execution,
) -> Result<RunSummary, String> {
    let dag = plan.bind(steps.clone(), read_only, execution.allowed.as_ref());
    let (events, _ignored) = EventSink::channel();
    let options = RunOptions {
        parallelism: args.parallelism as usize,
        fail_fast: false,
        plan_name: plan.name.clone(),
        dry_run: true,
    };
    let summary = engine::run(&dag, &options, &events, &CancellationToken::new()).await;
    let failed: Vec<String> = summary
        .steps
        .iter()
        .filter_map(|s| match &s.outcome {
            engine::StepOutcome::Failed { error, .. } => Some(format!("step `{}`: {error}", s.id)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Err(format!(
            "the look before the run failed, so nothing was changed:\n{}",
            failed.join("\n")
        ));
    }
    Ok(summary)
}

/// Records an event in the journal; a journal that cannot be written breaks the run's record, so
/// that no further change is sent (see [`AuditLog`]).
fn record(journal: Option<&mut Journal>, records: Option<&AuditLog>, event: &crate::event::Event) {
    let (Some(journal), Some(records)) = (journal, records) else {
        return;
    };
    if let Err(why) = journal.record(event) {
        if records.problem().is_none() {
            eprintln!("error: {why}; no further change will be sent");
        }
        records.fail(why);
    }
}

/// A run whose record can no longer be written stops: nothing new starts, and running steps stop
/// at their next safe point (their changes are refused already).
fn stop_when_record_lost(audit: Option<&AuditLog>, cancel: &CancellationToken) {
    if let Some(lost) = audit.map(AuditLog::lost) {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            lost.cancelled().await;
            cancel.cancel()
        });
    }
}

/// Creates what a run that changes things keeps on disk, now that it is about to make its first
/// change: its directory (claimed: a new run never shares one, see [`crate::run_dir`]), its
/// journal and its audit log. A resumed run appends to its own.
fn start_records(
    runs: &Path,
    header: &mut RunHeader,
    resuming: bool,
    plan: &str,
    audit: &AuditLog,
) -> Result<Journal, String> {
    let (run_dir, journal) = if resuming {
        let run_dir = runs.join(&header.run_id);
        let journal = Journal::reopen(&run_dir).map_err(|e| e.to_string())?;
        (run_dir, journal)
    } else {
        let mut first = Some(header.run_id.clone());
        let region = header.region.clone();
        let claimed = crate::run_dir::claim_with(runs, || {
            first
                .take()
                .unwrap_or_else(|| crate::run_dir::new_run_id(plan, &region))
        })
        .map_err(|e| {
            format!(
                "cannot create a run directory in {}: {e}; pass --runs-dir to put it elsewhere",
                runs.display()
            )
        })?;
        header.run_id = claimed.id;
        let journal = Journal::create(&claimed.path, header).map_err(|e| e.to_string())?;
        (claimed.path, journal)
    };
    let path = run_dir.join("audit.jsonl");
    audit.start(&path, &header.run_id).map_err(|e| {
        format!(
            "cannot create the audit log {}: {e}; pass --runs-dir to put it elsewhere",
            path.display()
        )
    })?;
    Ok(journal)
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

/// Asks the person at the terminal to type the account id, showing what the pre-flight found.
/// Without a terminal, refuses: an unattended run must say --yes.
pub(crate) fn confirm(
    plan: &Plan,
    account: &str,
    region: &str,
    steps: &crate::graph::Dag<plan::PlannedStep>,
    preflight: Option<&RunSummary>,
) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("error: refusing to delete without confirmation: no terminal to ask on. Pass --yes for unattended runs, or preview first with `teardown preview {}`", plan.file.display());
        return false;
    }
    eprintln!(
        "About to run plan `{}` ({} steps) in account {account}, region {region}.",
        plan.name,
        steps.len()
    );
    match preflight.map(what_would_change) {
        Some(kinds) if kinds.is_empty() => {
            eprintln!("Nothing matches now: the run would change nothing.")
        }
        Some(kinds) => eprintln!("This DELETES or changes: {}.", kinds.join(", ")),
        None => eprintln!("This DELETES what the plan matches."),
    }
    eprint!("Type the account id ({account}) to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() || answer.trim() != account {
        eprintln!("not confirmed: nothing was done");
        return false;
    }
    true
}

/// What a dry run would change, counted per kind (`2 CloudFormation stacks`).
fn what_would_change(summary: &RunSummary) -> Vec<String> {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for resource in summary
        .steps
        .iter()
        .filter_map(|s| s.output.as_ref())
        .flat_map(|o| &o.resources)
        .filter(|r| r.outcome == crate::resource::OutcomeKind::Planned)
    {
        *kinds.entry(resource.resource.kind.clone()).or_default() += 1;
    }
    kinds
        .into_iter()
        .map(|(kind, n)| crate::util::count_of(n, &kind))
        .collect()
}
