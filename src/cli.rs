//! The command line, on top of everything and imported by nothing: clap commands and flags, and
//! the dispatch of each command to what carries it out (a plan run: [`crate::session`]; a sweep:
//! [`crate::sweep`]). Each command returns an [`Outcome`] that `main` turns into the documented
//! exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::actions;
use crate::journal::{Journal, RunHeader};
pub use crate::outcome::Outcome;
use crate::plan::{self, LoadError, Plan};
use crate::preview::SavedPreview;
use crate::session;
use crate::settings::parse_var;
pub use crate::settings::{
    runs_dir, AwsArgs, CallLimitArgs, CallTimeoutArgs, RealRunSettings, RunSettings,
};

/// Takes AWS accounts apart in the right order, from a declarative plan.
#[derive(Debug, Parser)]
#[command(name = "teardown", version, about, long_about = None, after_help = examples::TOP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Say more: the whole detail of an error (an SDK error with all its causes), and the SDK's
    /// own log lines (filtered by RUST_LOG when set, else warnings).
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

/// The examples that end each command's `--help`: real commands on the shipped plans (a test
/// parses every one of them, and runs those that need no AWS account).
pub mod examples {
    /// `teardown --help`.
    pub const TOP: &str = "\
Examples:
  teardown validate plans/secrets-manager-fargate-workshop.toml
  teardown preview plans/secrets-manager-fargate-workshop.toml --var main_stack=secrets-workshop-ann
  teardown run plans/secrets-manager-fargate-workshop.toml --var main_stack=secrets-workshop-ann --profile lab";
    /// `teardown validate --help`.
    pub const VALIDATE: &str = "\
Examples:
  teardown validate plans/secrets-manager-fargate-workshop.toml
  teardown validate plans/stale-labs-sweep.toml
  teardown validate plans/rotate-and-redeploy.toml --var cluster=FargateClusterDemo";
    /// `teardown graph --help`.
    pub const GRAPH: &str = "\
Examples:
  teardown graph plans/secrets-manager-fargate-workshop.toml
  teardown graph plans/secrets-manager-fargate-workshop.toml --format mermaid
  teardown graph plans/secret-alerting-lab.toml --format dot";
    /// `teardown run --help`.
    pub const RUN: &str = "\
Examples:
  teardown run plans/secrets-manager-fargate-workshop.toml --var main_stack=secrets-workshop-ann
  teardown run plans/secrets-manager-fargate-workshop.toml --var main_stack=secrets-workshop-ann --only fargate --yes
  teardown run plans/rotate-and-redeploy.toml --profile lab --region us-west-2 --output json";
    /// `teardown preview --help`.
    pub const PREVIEW: &str = "\
Examples:
  teardown preview plans/secrets-manager-fargate-workshop.toml --var main_stack=secrets-workshop-ann
  teardown preview plans/secrets-manager-fargate-workshop.toml --var main_stack=secrets-workshop-ann --save preview.json
  teardown preview plans/secret-alerting-lab.toml --endpoint-url http://localhost:4566 --detailed-exitcode";
    /// `teardown resume --help`.
    pub const RESUME: &str = "\
Examples:
  teardown resume 20261122T031500.123456Z-us-west-2-secrets-manager-fargate-workshop-1a2b3c4d
  teardown resume 20261122T031500.123456Z-us-west-2-secrets-manager-fargate-workshop-1a2b3c4d --profile lab --yes";
    /// `teardown apply --help`.
    pub const APPLY: &str = "\
Examples:
  teardown apply preview.json
  teardown apply preview.json --profile lab --yes --output plain";
    /// `teardown sweep --help`.
    pub const SWEEP: &str = "\
Examples:
  teardown sweep plans/stale-labs-sweep.toml
  teardown sweep plans/stale-labs-sweep.toml --apply --yes --report sweep.json
  teardown sweep plans/stale-labs-sweep.toml --profile lab --region us-west-2 --region us-east-1 --shard 1/4";
    /// `teardown permissions --help`.
    pub const PERMISSIONS: &str = "\
Examples:
  teardown permissions plans/secrets-manager-fargate-workshop.toml
  teardown permissions plans/stale-labs-sweep.toml --all-regions";
    /// `teardown actions --help`.
    pub const ACTIONS: &str = "\
Examples:
  teardown actions
  teardown actions ecs.stop-tasks
  teardown actions --output json";
    /// `teardown schema --help`.
    pub const SCHEMA: &str = "\
Examples:
  teardown schema
  teardown schema --help";
    /// `teardown init --help`.
    pub const INIT: &str = "\
Examples:
  teardown init --from-stack secrets-workshop-ann
  teardown init --from-stack lab-a --from-stack lab-b --out labs.toml
  teardown init --from-stack secrets-workshop-ann --region eu-west-1 --out lab.toml --force";
    /// `teardown completions --help`.
    pub const COMPLETIONS: &str = "\
Examples:
  teardown completions bash
  teardown completions zsh
  teardown completions fish";
    /// `teardown man --help`.
    pub const MAN: &str = "\
Examples:
  teardown man
  teardown man --dir man";
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a plan without calling AWS: exit 0, or print each problem with file:line:column and exit 2.
    #[command(after_help = examples::VALIDATE)]
    Validate(PlanArgs),
    /// Print a plan's dependency graph (text levels, Graphviz dot, or Mermaid).
    #[command(after_help = examples::GRAPH)]
    Graph {
        /// The plan and its variables.
        #[command(flatten)]
        plan: PlanArgs,
        /// Picture format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Run a plan: delete what its steps match, in order.
    #[command(after_help = examples::RUN)]
    Run(RunArgs),
    /// Show what a run would delete, changing nothing (the same as `run --dry-run`).
    #[command(after_help = examples::PREVIEW)]
    Preview(PreviewArgs),
    /// Continue a run that stopped (interrupted, killed, failed): steps that succeeded are not
    /// redone, the others are re-checked against the account as it is now.
    #[command(after_help = examples::RESUME)]
    Resume(ResumeArgs),
    /// Delete exactly what a saved preview (`preview --save FILE`) listed, in the plan's order;
    /// anything that appeared since is left alone and reported.
    #[command(after_help = examples::APPLY)]
    Apply(ApplyArgs),
    /// Apply a plan to every lab its `[sweep]` section finds (dry run unless --apply).
    #[command(after_help = examples::SWEEP)]
    Sweep(crate::sweep::SweepArgs),
    /// Print the least-privilege IAM policy a plan needs (JSON).
    #[command(after_help = examples::PERMISSIONS)]
    Permissions(PermissionsArgs),
    /// List the actions a plan can use; with a NAME, show that one's keys and a step to paste.
    #[command(after_help = examples::ACTIONS)]
    Actions(ActionsArgs),
    /// Print the JSON Schema of plan files (what schemas/plan.schema.json holds), for editors.
    #[command(after_help = examples::SCHEMA)]
    Schema,
    /// Write a plan for existing CloudFormation stacks, from what each one owns (read-only).
    #[command(after_help = examples::INIT)]
    Init(InitArgs),
    /// Print a shell completion script on stdout (see the README for where each shell wants it).
    #[command(after_help = examples::COMPLETIONS)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout, or write a page per command into a directory.
    #[command(after_help = examples::MAN)]
    Man {
        /// Write teardown.1 and one page per command (teardown-run.1...) into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
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
    /// The profile and endpoint to read the stacks through.
    #[command(flatten)]
    pub aws: crate::settings::AwsArgs,
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
    /// The confirmation and the run's records.
    #[command(flatten)]
    pub real: RealRunSettings,
}

/// Which run to continue, and how.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run id (printed at the end of the run, and the name of its directory under the runs dir).
    pub run_id: String,
    /// How to run (the plan, variables and phases come from the run's journal).
    #[command(flatten)]
    pub settings: RunSettings,
    /// The confirmation and the run's records.
    #[command(flatten)]
    pub real: RealRunSettings,
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

/// Which plan, which of its steps, and how to run them: what `run` and `preview` share.
#[derive(Debug, Args)]
pub struct PlanRunArgs {
    /// The plan and its variables.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Run only the steps of this phase (repeatable).
    #[arg(long = "only", value_name = "PHASE")]
    pub only: Vec<String>,
    /// Leave out the steps of this phase (repeatable).
    #[arg(long = "skip", value_name = "PHASE")]
    pub skip: Vec<String>,
    /// Treat left-out steps that selected steps wait for as done.
    #[arg(long)]
    pub assume_done: bool,
    /// How to run.
    #[command(flatten)]
    pub settings: RunSettings,
}

/// `teardown run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan, its steps, and how to run them.
    #[command(flatten)]
    pub run: PlanRunArgs,
    /// Resolve what would be deleted with read-only calls, and change nothing (`teardown
    /// preview` does the same, and can save what it found).
    #[arg(long)]
    pub dry_run: bool,
    /// The confirmation and the run's records.
    #[command(flatten)]
    pub real: RealRunSettings,
}

/// `teardown preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The plan, its steps, and how to run them.
    #[command(flatten)]
    pub run: PlanRunArgs,
    /// Exit 4 when something would be deleted (0 when nothing would).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save what would be deleted to this file, for `teardown apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
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
                args.aws.options(args.region.clone()),
            )
            .await
        }
        Command::Run(args) => {
            let execution = session::Execution {
                dry_run: args.dry_run,
                ..session::Execution::default()
            };
            run(args.run, &args.real, execution).await
        }
        Command::Preview(args) => {
            let execution = session::Execution {
                dry_run: true,
                detailed_exitcode: args.detailed_exitcode,
                save: args.save,
                ..session::Execution::default()
            };
            run(args.run, &RealRunSettings::default(), execution).await
        }
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "teardown", &mut out);
            // A closed pipe is not an error (see `say!`).
            let _ = std::io::stdout().lock().write_all(&out);
            Outcome::Success
        }
        Command::Man { dir } => man(dir.as_deref()),
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

/// Prints the man page, or writes every command's page into `dir`.
fn man(dir: Option<&std::path::Path>) -> Outcome {
    let command = Cli::command();
    let written = match dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page).map(|()| {
                // A closed pipe is not an error (see `say!`).
                let _ = std::io::stdout().lock().write_all(&page);
            })
        }
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .map(|()| say!("Wrote the man pages to {}", dir.display())),
    };
    match written {
        Ok(()) => Outcome::Success,
        Err(e) => {
            eprintln!(
                "error: cannot write the man pages{}: {e}",
                dir.map(|d| format!(" to {}", d.display()))
                    .unwrap_or_default()
            );
            Outcome::StepsFailed
        }
    }
}

async fn run(args: PlanRunArgs, real: &RealRunSettings, execution: session::Execution) -> Outcome {
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
    session::execute_plan(header, &args.settings, real, execution).await
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
    session::execute_plan(header, &args.settings, &args.real, execution).await
}

/// Continues a run from its journal.
async fn resume(args: ResumeArgs) -> Outcome {
    let run_dir = runs_dir(args.real.runs_dir.as_ref()).join(&args.run_id);
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
    session::execute_plan(header, &args.settings, &args.real, execution).await
}
