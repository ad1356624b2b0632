//! The command line, on top of everything and imported by nothing: clap commands and flags, and
//! the dispatch of each command to what carries it out (a plan run: [`crate::session`]; a sweep:
//! [`crate::sweep`]). Each command returns an [`Outcome`] that `main` turns into the documented
//! exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::actions;
use crate::journal::{Journal, RunHeader};
pub use crate::outcome::Outcome;
use crate::plan::{self, LoadError, Plan};
use crate::preview::SavedPreview;
use crate::session;
use crate::settings::parse_var;
pub use crate::settings::{runs_dir, CallLimitArgs, CallTimeoutArgs, RunSettings};

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
    /// List the actions a plan can use; with a NAME, show that one's keys and a step to paste.
    Actions(ActionsArgs),
    /// Print the JSON Schema of plan files (what schemas/plan.schema.json holds), for editors.
    Schema,
    /// Write a plan for existing CloudFormation stacks, from what each one owns (read-only).
    Init(InitArgs),
}

/// Which action to show, and how.
#[derive(Debug, Args)]
pub struct ActionsArgs {
    /// The action, e.g. ecr.delete-repository (all of them when left out).
    pub name: Option<String>,
    /// Text for people, or JSON (one array of every action; one object with a NAME).
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

/// Formats of listings (`teardown actions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// For people.
    Text,
    /// JSON, for programs.
    Json,
}

/// Which stacks to write a plan for, and where.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// A stack to delete, with what CloudFormation cannot delete alone (repeatable).
    #[arg(long = "from-stack", value_name = "NAME", required = true)]
    pub from_stack: Vec<String>,
    /// Write the plan to this file (default: standard output).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Overwrite the --out file if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// AWS region (default: from the environment or profile, like the AWS CLI).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
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
        Command::Actions(args) => show_actions(args),
        Command::Schema => {
            let _ = std::io::stdout()
                .lock()
                .write_all(plan::schema::plan_schema_text().as_bytes());
            Outcome::Success
        }
        Command::Init(args) => {
            crate::init::command(
                &args.from_stack,
                args.out.as_deref(),
                args.force,
                args.region,
            )
            .await
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

/// `teardown actions [NAME] [--output json]`.
fn show_actions(args: ActionsArgs) -> Outcome {
    let specs = match &args.name {
        None => actions::registry(),
        Some(name) => match actions::lookup(name) {
            Some(spec) => vec![spec],
            None => {
                let names: Vec<&str> = actions::registry().iter().map(|s| s.name).collect();
                match actions::nearest(name, &names) {
                    Some(near) => eprintln!("error: unknown action `{name}`\n  = hint: did you mean `{near}`? (`teardown actions` lists them all)"),
                    None => eprintln!("error: unknown action `{name}`\n  = hint: the actions are: {}", names.join(", ")),
                }
                return Outcome::BadInput;
            }
        },
    };
    match (args.output, &args.name) {
        (ListFormat::Json, Some(_)) => say!("{:#}", actions::describe::json(specs[0])),
        (ListFormat::Json, None) => say!(
            "{:#}",
            serde_json::Value::Array(specs.iter().map(|s| actions::describe::json(s)).collect())
        ),
        (ListFormat::Text, Some(_)) => say!("{}", actions::describe::text(specs[0]).trim_end()),
        (ListFormat::Text, None) => {
            for spec in specs {
                say!("{}\n    {}", spec.name, spec.summary);
                for field in spec.selector {
                    let required = if field.required { " (required)" } else { "" };
                    say!("    match.{}{required}: {}", field.name, field.help);
                }
                for field in spec.options {
                    say!("    {}: {}", field.name, field.help);
                }
                for rule in spec.rules {
                    say!("    rule: {}", rule.describe());
                }
            }
            say!(
                "\n`teardown actions NAME` shows one action's keys, defaults and a step to paste."
            );
        }
    }
    Outcome::Success
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
    let execution = session::Execution {
        dry_run,
        detailed_exitcode: dry_run && args.detailed_exitcode,
        save: args.save.clone(),
        ..session::Execution::default()
    };
    session::execute_plan(header, &args.settings, execution).await
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
    let execution = session::Execution {
        allowed: Some(preview.allowed()),
        ..session::Execution::default()
    };
    session::execute_plan(header, &args.settings, execution).await
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
    if let Err(message) = session::check_journal_is_this_runs(&args.run_id, &header) {
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
    let execution = session::Execution {
        done,
        ..session::Execution::default()
    };
    session::execute_plan(header, &args.settings, execution).await
}
