//! Sweeps: one plan applied to every lab found in an account (`teardown sweep PLAN`).
//!
//! A plan's `[sweep]` section says how to find labs and how to fill the plan's variables from each:
//!
//! ```toml
//! [sweep]
//! find = { stack = "Lab-*", tags = { Workshop = "secrets" }, older_than = "24h", not_updated_for = "6h" }
//! bind = { main_stack = "{stack.name}", cluster = "{stack.tag.Cluster}" }
//! ```
//!
//! A lab is a CloudFormation stack that `find` matches (name glob and tags; age from its creation
//! time, `not_updated_for` from its last update, else its creation). `bind` gives plan variables a
//! template filled from the lab's stack: `{stack.name}`, `{stack.id}`, `{stack.tag.KEY}`,
//! `{stack.output.KEY}`, `{stack.parameter.KEY}`, `{region}`, `{account}`.
//!
//! A sweep goes in three stages, all read-only but the last:
//! 1. [`Sweep::discover`]: list the stacks, match them, and keep (with the reason) the labs that are
//!    protected, nested, busy, too young, recently updated, in use (an ECS task of the lab's
//!    cluster started within `not_updated_for`), or whose variables cannot be bound;
//! 2. [`Sweep::preview`]: every other lab becomes its own copy of the plan's DAG, its step ids
//!    prefixed with the lab (`Lab-a/stop-tasks`); all copies are merged into one DAG that the
//!    engine runs once, in a dry run, under the global parallelism. Labs whose copies would change
//!    the same resource are kept (a lab's teardown must never reach into another lab), and so are
//!    labs whose preview failed;
//! 3. [`Sweep::apply`] (with `--apply`): the same merged DAG with clients that may delete, each
//!    step restricted to exactly the resources its preview listed (as `teardown apply` does).
//!
//! The discovery and the preview use clients that cannot mutate, whatever the mode.
//!
//! What keeps each lab's teardown inside that lab: every step's `match` must use a variable that
//! `bind` sets (checked when the plan is read); a value bound from a stack may be neither empty nor
//! a glob; labs whose previews would change the same resource are both kept; and the real run
//! changes nothing its preview did not list.
//!
//! The command is a dry run unless `--apply`; `--apply` takes the plan's guard, the run lock and
//! the confirmation of `teardown run` (`--yes` for unattended sweeps), and writes the audit log.
//! Exit codes: 0 all went well (kept labs included), 1 something failed (a step, a preview, a
//! check, a region), 2 bad input, 3 refused, 130 interrupted. A sweep is not resumed: run it
//! again, every step is idempotent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudformation::types::{Stack, StackStatus};
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksError;
use aws_sdk_ecs::operation::list_tasks::ListTasksError;
use aws_sdk_ecs::types::DesiredStatus;
use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::actions::{nearest, Pattern};
use crate::aws::{to_chrono, AuditLog, Aws, AwsError, AwsOptions, Mode};
use crate::cli::Outcome;
use crate::engine::{self, Handler, RunOptions, RunSummary, StepNode, StepOutcome, StepResult};
use crate::event::EventSink;
use crate::graph::Dag;
use crate::journal::RunLock;
use crate::key_path;
use crate::plan::{
    self, Diagnostic, PathSegment, PhaseSelection, Plan, PlanErrors, Source, Target,
};
use crate::render::{self, OutputFormat};
use crate::resource::{OutcomeKind, ResourceOutcome};
use crate::util::{count_of, short_duration};

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

/// One shard of a sweep split over several runs: `K/N`, K from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: u64,
    /// How many shards in all.
    pub count: u64,
}

impl Shard {
    /// Reads `K/N` (1 <= K <= N).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("expected K/N with 1 <= K <= N (e.g. 2/4), got `{text}`");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// True if the lab of `stack` in `account` and `region` belongs to this shard. The hash is
    /// FNV-1a (64 bits), fixed: the same lab falls in the same shard on every run and machine,
    /// which std's randomly seeded hasher would not give.
    pub fn contains(&self, account: &str, region: &str, stack: &str) -> bool {
        fnv1a(format!("{account}/{region}/{stack}").as_bytes()) % self.count == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

// ---- the [sweep] section ----------------------------------------------------------------------

/// `[sweep] find`: which CloudFormation stacks are labs, and which of them are stale.
#[derive(Clone, Debug, Default)]
pub struct Find {
    /// Stack name, exact or a glob.
    pub stack: Option<Pattern>,
    /// Tags the stack must carry, values exact or globs.
    pub tags: Vec<(String, Pattern)>,
    /// Only labs created longer ago than this are swept.
    pub older_than: Option<Duration>,
    /// Only labs not updated (nor, without an update, created) for this long are swept; also the
    /// window in which a started ECS task counts as use.
    pub not_updated_for: Option<Duration>,
}

/// One piece of a `bind` template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    StackName,
    StackId,
    Tag(String),
    Output(String),
    Parameter(String),
    Region,
    Account,
}

impl Part {
    /// True for the pieces that differ from lab to lab.
    fn reads_the_stack(&self) -> bool {
        !matches!(self, Part::Text(_) | Part::Region | Part::Account)
    }
}

const PLACEHOLDERS: &str = "{stack.name}, {stack.id}, {stack.tag.KEY}, {stack.output.KEY}, {stack.parameter.KEY}, {region}, {account}";

/// Reads a `bind` template; `{{` and `}}` stand for literal braces, as in plan variables.
fn parse_template(text: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        literal.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            literal.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!(
                "unmatched `}}` in \"{text}\" (write `}}}}` for a literal brace)"
            ));
        }
        let Some(end) = tail.find('}') else {
            return Err(format!(
                "unclosed `{{` in \"{text}\" (write `{{{{` for a literal brace)"
            ));
        };
        let name = &tail[1..end];
        let keyed = |prefix: &str| name.strip_prefix(prefix).filter(|k| !k.is_empty());
        let part = if name == "stack.name" {
            Part::StackName
        } else if name == "stack.id" {
            Part::StackId
        } else if name == "region" {
            Part::Region
        } else if name == "account" {
            Part::Account
        } else if let Some(key) = keyed("stack.tag.") {
            Part::Tag(key.to_string())
        } else if let Some(key) = keyed("stack.output.") {
            Part::Output(key.to_string())
        } else if let Some(key) = keyed("stack.parameter.") {
            Part::Parameter(key.to_string())
        } else {
            return Err(format!("unknown placeholder `{{{name}}}` in \"{text}\""));
        };
        if !literal.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut literal)));
        }
        parts.push(part);
        rest = &tail[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(parts)
}

/// The variables a plan string uses (`{name}`), braces escaped as `{{` / `}}` skipped.
fn variables_in(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            rest = &tail[2..];
        } else if let (true, Some(end)) = (tail.starts_with('{'), tail.find('}')) {
            names.push(tail[1..end].to_string());
            rest = &tail[end + 1..];
        } else {
            rest = &tail[1..];
        }
    }
    names
}

fn strings_in(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        toml::Value::Table(t) => t.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

/// Collects the problems of a `[sweep]` section, each located in the file.
struct Checker<'a> {
    source: &'a Source<'a>,
    errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, at: Vec<PathSegment>, target: Target, message: &str, hint: Option<&str>) {
        self.errors.push(self.source.at_path(
            &at,
            target,
            message.to_string(),
            hint.map(str::to_string),
        ));
    }

    fn finish(mut self) -> PlanErrors {
        self.errors.sort_by_key(|d| (d.line, d.column));
        self.errors.dedup();
        PlanErrors(self.errors)
    }

    fn unknown_keys(
        &mut self,
        table: &toml::Table,
        allowed: &[&str],
        at: Vec<PathSegment>,
        what: &str,
    ) {
        for key in table.keys().filter(|k| !allowed.contains(&k.as_str())) {
            let hint = match nearest(key, allowed) {
                Some(near) => format!("did you mean `{near}`? allowed: {}", allowed.join(", ")),
                None => format!("allowed: {}", allowed.join(", ")),
            };
            let mut path = at.clone();
            path.push(PathSegment::from(key.as_str()));
            self.error(
                path,
                Target::Key,
                &format!("unknown key `{key}` in {what}"),
                Some(&hint),
            );
        }
    }

    /// `[sweep] find`.
    fn find(&mut self, sweep: &toml::Table) -> Find {
        let mut find = Find::default();
        let table = match sweep.get("find").map(|f| f.as_table()) {
            Some(Some(table)) => table,
            None => {
                self.error(
                    key_path!["sweep"],
                    Target::Key,
                    "[sweep] has no `find`: which stacks are labs?",
                    Some("add find = { stack = \"Lab-*\", tags = { Workshop = \"secrets\" }, older_than = \"24h\" }"),
                );
                return find;
            }
            Some(None) => {
                self.error(
                    key_path!["sweep", "find"],
                    Target::Value,
                    "`find` must be a table",
                    Some("write find = { stack = \"Lab-*\", older_than = \"24h\" }"),
                );
                return find;
            }
        };
        self.unknown_keys(
            table,
            &["stack", "tags", "older_than", "not_updated_for"],
            key_path!["sweep", "find"],
            "`find`",
        );
        if let Some(value) = table.get("stack") {
            let at = key_path!["sweep", "find", "stack"];
            match value.as_str().map(Pattern::parse) {
                Some(Ok(p)) => find.stack = Some(p),
                Some(Err(e)) => self.error(at, Target::Value, &e, None),
                None => self.error(
                    at,
                    Target::Value,
                    "`stack` must be a string: a stack name or a glob",
                    None,
                ),
            }
        }
        if let Some(value) = table.get("tags") {
            match value.as_table() {
                Some(tags) => {
                    for (tag, v) in tags {
                        let at = key_path!["sweep", "find", "tags", tag.as_str()];
                        match v.as_str().map(Pattern::parse) {
                            Some(Ok(p)) => find.tags.push((tag.clone(), p)),
                            Some(Err(e)) => {
                                self.error(at, Target::Value, &format!("tag {tag}: {e}"), None)
                            }
                            None => self.error(
                                at,
                                Target::Value,
                                &format!("tag {tag}: expected a string value"),
                                None,
                            ),
                        }
                    }
                }
                None => self.error(
                    key_path!["sweep", "find", "tags"],
                    Target::Value,
                    "`tags` must be a table of tag = value",
                    Some("write tags = { Workshop = \"secrets\" }"),
                ),
            }
        }
        find.older_than = self.duration(table, "older_than");
        find.not_updated_for = self.duration(table, "not_updated_for");
        if find.stack.is_none() && !table.contains_key("tags") {
            self.error(
                key_path!["sweep", "find"],
                Target::Value,
                "`find` needs `stack` or `tags`: without them every stack in the region would be a lab",
                Some("add stack = \"Lab-*\" (a name or glob), or tags = { Workshop = \"secrets\" }"),
            );
        }
        find
    }

    /// A duration of `find`; zero is allowed (no threshold).
    fn duration(&mut self, table: &toml::Table, key: &str) -> Option<Duration> {
        let value = table.get(key)?;
        let at = key_path!["sweep", "find", key];
        let Some(text) = value.as_str() else {
            self.error(
                at,
                Target::Value,
                &format!("`{key}` must be a duration string"),
                Some("write it like \"24h\""),
            );
            return None;
        };
        match humantime::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    at,
                    Target::Value,
                    &format!("bad duration \"{text}\": {e}"),
                    Some("write durations like \"90s\", \"6h\", \"24h\" or \"2days\""),
                );
                None
            }
        }
    }

    /// `[sweep] bind`: declared variables only, each a template that reads the lab's stack.
    fn bind(
        &mut self,
        sweep: &toml::Table,
        plan: &Plan,
        overrides: &[(String, String)],
    ) -> BTreeMap<String, Vec<Part>> {
        let mut bind = BTreeMap::new();
        let table = match sweep.get("bind").map(|b| b.as_table()) {
            Some(Some(table)) if !table.is_empty() => table,
            None | Some(Some(_)) => {
                self.error(
                    key_path!["sweep", "bind"],
                    Target::Value,
                    "[sweep] binds no variable: every lab would get the same variables",
                    Some("add bind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.Cluster}\" }"),
                );
                return bind;
            }
            Some(None) => {
                self.error(
                    key_path!["sweep", "bind"],
                    Target::Value,
                    "`bind` must be a table of variable = template",
                    Some("write bind = { main_stack = \"{stack.name}\" }"),
                );
                return bind;
            }
        };
        let declared: Vec<&str> = plan.vars.keys().map(String::as_str).collect();
        let placeholders = format!("placeholders: {PLACEHOLDERS}");
        for (key, value) in table {
            let at = key_path!["sweep", "bind", key.as_str()];
            if !plan.vars.contains_key(key) {
                let hint = match nearest(key, &declared) {
                    Some(near) => format!(
                        "did you mean `{near}`? the plan declares: {}",
                        declared.join(", ")
                    ),
                    None => format!(
                        "declare it under [vars]; the plan declares: {}",
                        declared.join(", ")
                    ),
                };
                self.error(
                    at,
                    Target::Key,
                    &format!("`{key}` is not a variable of the plan"),
                    Some(&hint),
                );
                continue;
            }
            if overrides.iter().any(|(k, _)| k == key) {
                self.error(
                    at.clone(),
                    Target::Key,
                    &format!("--var {key}: `{key}` is set by [sweep] bind for each lab"),
                    Some("drop the --var, or remove the variable from bind"),
                );
            }
            let Some(text) = value.as_str() else {
                self.error(
                    at,
                    Target::Value,
                    &format!("`{key}` must be a template string"),
                    Some(&placeholders),
                );
                continue;
            };
            match parse_template(text) {
                Err(e) => self.error(at, Target::Value, &e, Some(&placeholders)),
                Ok(parts) if !parts.iter().any(Part::reads_the_stack) => self.error(
                    at,
                    Target::Value,
                    &format!("`{key}` would be the same for every lab: its template uses nothing of the lab's stack"),
                    Some("use {stack.name}, {stack.tag.KEY} or {stack.output.KEY}; a value that is the same for every lab belongs under [vars]"),
                ),
                Ok(parts) => {
                    bind.insert(key.clone(), parts);
                }
            }
        }
        bind
    }

    /// Every step must be narrowed to its lab by a bound variable: a step whose `match` uses none
    /// would match the same resources from every lab's copy of the plan.
    fn steps_are_bound(&mut self, text: &str, bind: &BTreeMap<String, Vec<Part>>) {
        let raw: toml::Table = toml::from_str(text).unwrap_or_default();
        let Some(steps) = raw.get("steps").and_then(|s| s.as_table()) else {
            return;
        };
        let names: Vec<&str> = bind.keys().map(String::as_str).collect();
        for (id, step) in steps {
            let mut strings = Vec::new();
            if let Some(selector) = step.get("match") {
                strings_in(selector, &mut strings);
            }
            let bound = strings
                .iter()
                .flat_map(|s| variables_in(s))
                .any(|v| bind.contains_key(&v));
            if !bound {
                self.error(
                    key_path!["steps", id.as_str(), "match"],
                    Target::Value,
                    &format!("step `{id}` would match the same resources in every lab: its `match` uses none of the variables [sweep] bind sets"),
                    Some(&format!("use one of {} in its `match` (e.g. name = \"{{{}}}\")", names.join(", "), names[0])),
                );
            }
        }
    }
}

/// A plan with a valid `[sweep]` section.
pub struct SweepPlan {
    /// The plan, its variables at their defaults (and `--var`s).
    pub plan: Plan,
    /// Which stacks are labs.
    pub find: Find,
    path: PathBuf,
    text: String,
    overrides: Vec<(String, String)>,
    bind: BTreeMap<String, Vec<Part>>,
}

/// Why a sweep plan could not be loaded.
pub type LoadError = plan::LoadError;

impl SweepPlan {
    /// Reads and validates a plan and its `[sweep]` section. `overrides` are `--var` pairs, for
    /// variables that `bind` does not set.
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<SweepPlan, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(SweepPlan::parse(path, &text, overrides)?)
    }

    /// Validates a plan's text and its `[sweep]` section (`path` is used in messages only).
    pub fn parse(
        path: &Path,
        text: &str,
        overrides: &[(String, String)],
    ) -> Result<SweepPlan, PlanErrors> {
        let plan = plan::parse(path, text, overrides)?;
        let source = Source::new(path, text);
        let mut check = Checker {
            source: &source,
            errors: Vec::new(),
        };
        let Some(sweep) = &plan.sweep else {
            check.error(
                key_path![],
                Target::Value,
                "the plan has no [sweep] section: `teardown sweep` needs one to find the labs",
                Some("add [sweep] with find = { stack = \"Lab-*\", older_than = \"24h\" } and bind = { main_stack = \"{stack.name}\" }"),
            );
            return Err(check.finish());
        };
        check.unknown_keys(sweep, &["find", "bind"], key_path!["sweep"], "[sweep]");
        let find = check.find(sweep);
        let bind = check.bind(sweep, &plan, overrides);
        if !bind.is_empty() {
            check.steps_are_bound(text, &bind);
        }
        if !check.errors.is_empty() {
            return Err(check.finish());
        }
        Ok(SweepPlan {
            plan,
            find,
            path: path.to_path_buf(),
            text: text.to_string(),
            overrides: overrides.to_vec(),
            bind,
        })
    }

    /// The plan's variables for one lab: each `bind` template filled from the lab's stack. A value
    /// the stack cannot give (a missing tag or output), an empty one, or one with glob characters
    /// (which would widen the lab's matches to other labs) is refused with the reason.
    fn bind(
        &self,
        stack: &StackFacts,
        region: &str,
        account: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut vars = BTreeMap::new();
        for (key, parts) in &self.bind {
            let mut value = String::new();
            for part in parts {
                let (filled, what) = match part {
                    Part::Text(text) => {
                        value.push_str(text);
                        continue;
                    }
                    Part::StackName => (Some(&stack.name), "its name".to_string()),
                    Part::StackId => (Some(&stack.id), "its id".to_string()),
                    Part::Region => {
                        value.push_str(region);
                        continue;
                    }
                    Part::Account => {
                        value.push_str(account);
                        continue;
                    }
                    Part::Tag(k) => (stack.tags.get(k), format!("tag `{k}`")),
                    Part::Output(k) => (stack.outputs.get(k), format!("output `{k}`")),
                    Part::Parameter(k) => (stack.parameters.get(k), format!("parameter `{k}`")),
                };
                let filled = match filled {
                    None => return Err(format!("cannot bind `{key}`: the stack has no {what}")),
                    Some(v) if v.is_empty() => {
                        return Err(format!("cannot bind `{key}`: the stack's {what} is empty"))
                    }
                    Some(v) if v.contains(['*', '?', '[']) => {
                        return Err(format!(
                            "cannot bind `{key}`: the stack's {what} (\"{v}\") has glob characters, which could match other labs' resources"
                        ))
                    }
                    Some(v) => v,
                };
                value.push_str(filled);
            }
            vars.insert(key.clone(), value);
        }
        Ok(vars)
    }

    /// The plan with one lab's variables.
    fn for_lab(&self, vars: &BTreeMap<String, String>) -> Result<Plan, PlanErrors> {
        let mut overrides = self.overrides.clone();
        overrides.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        plan::parse(&self.path, &self.text, &overrides)
    }
}

// ---- labs -------------------------------------------------------------------------------------

/// What a sweep knows of a lab's stack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StackFacts {
    /// Stack name.
    pub name: String,
    /// Stack id (ARN).
    pub id: String,
    /// Its status, e.g. `CREATE_COMPLETE`.
    pub status: String,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
    /// When it was last updated (none if never).
    pub last_updated: Option<DateTime<Utc>>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its outputs.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
    /// Its parameters.
    #[serde(skip)]
    pub parameters: BTreeMap<String, String>,
    /// The stack it is nested in, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

impl StackFacts {
    /// Reads what a sweep needs from a described stack.
    pub fn from_stack(stack: &Stack) -> StackFacts {
        let pairs = |items: Vec<(Option<&str>, Option<&str>)>| -> BTreeMap<String, String> {
            items
                .into_iter()
                .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
                .collect()
        };
        StackFacts {
            name: stack.stack_name().unwrap_or_default().to_string(),
            id: stack.stack_id().unwrap_or_default().to_string(),
            status: stack
                .stack_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            created: stack.creation_time().and_then(to_chrono),
            last_updated: stack.last_updated_time().and_then(to_chrono),
            tags: pairs(stack.tags().iter().map(|t| (t.key(), t.value())).collect()),
            outputs: pairs(
                stack
                    .outputs()
                    .iter()
                    .map(|o| (o.output_key(), o.output_value()))
                    .collect(),
            ),
            parameters: pairs(
                stack
                    .parameters()
                    .iter()
                    .map(|p| {
                        (
                            p.parameter_key(),
                            p.resolved_value().or(p.parameter_value()),
                        )
                    })
                    .collect(),
            ),
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
    fn word(self) -> &'static str {
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
    /// Its id in step ids and reports: the stack name, `region/stack` when several regions are swept.
    pub id: String,
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
    plan: Option<Plan>,
    /// Per step, the resource ids its preview would change: all that its real run may touch.
    allowed: BTreeMap<String, BTreeSet<String>>,
}

impl Lab {
    fn keep(&mut self, reason: String) {
        self.status = LabStatus::Kept;
        self.reasons.push(reason);
    }

    fn fail(&mut self, reason: String) {
        self.status = LabStatus::Failed;
        self.reasons.push(reason);
    }

    /// Resources of its steps with this outcome.
    fn resources(&self, outcome: OutcomeKind) -> usize {
        self.outcomes().filter(|r| r.outcome == outcome).count()
    }

    fn outcomes(&self) -> impl Iterator<Item = &ResourceOutcome> {
        self.steps
            .iter()
            .filter_map(|s| s.output.as_ref())
            .flat_map(|o| &o.resources)
    }
}

/// Whether `find` matches a stack: `None` if it is not a lab at all, else why it matched and the
/// reasons to keep it (none: it is stale). Pure, so that every rule is tested without AWS.
fn judge(
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

/// The ECS clusters a lab's plan works on, by exact name (a glob cannot be listed).
fn clusters_of(plan: &Plan) -> BTreeSet<String> {
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

// ---- the sweep --------------------------------------------------------------------------------

/// One region's clients: `read` cannot mutate (discovery and previews use it whatever the mode);
/// `write` deletes, and is absent from a dry run.
#[derive(Clone)]
pub struct RegionClients {
    /// Read-only clients ([`Mode::DryRun`]).
    pub read: Arc<Aws>,
    /// Clients that may delete ([`Mode::Apply`]); `None` in a dry run.
    pub write: Option<Arc<Aws>>,
}

/// How to sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Only this shard's labs.
    pub shard: Option<Shard>,
    /// Steps running at once, at most, across all labs.
    pub parallelism: usize,
    /// Stop starting new steps at the first failure.
    pub fail_fast: bool,
    /// The time ages are measured against (now, except in tests).
    pub now: DateTime<Utc>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            shard: None,
            parallelism: 8,
            fail_fast: false,
            now: Utc::now(),
        }
    }
}

/// A sweep in progress: the labs found and where each stands.
pub struct Sweep {
    /// The account swept.
    pub account: String,
    /// The regions swept, in order.
    pub regions: Vec<String>,
    /// Every lab found (in this shard), in region then stack order.
    pub labs: Vec<Lab>,
    /// Labs found that belong to other shards.
    pub in_other_shards: usize,
    /// Problems that are not one lab's (a region whose stacks could not be listed).
    pub errors: Vec<String>,
    /// True once a run was cancelled (Ctrl-C, SIGTERM, the caller's token).
    pub interrupted: bool,
    /// True once [`Sweep::apply`] ran.
    pub applied: bool,
    plan_name: String,
}

/// Which steps of the merged DAG belong to which lab: prefixed id to (lab index, plain id).
type Owners = HashMap<String, (usize, String)>;

impl Sweep {
    /// Finds the labs of every region, read-only, and decides which are kept and why.
    pub async fn discover(
        plan: &SweepPlan,
        regions: &[RegionClients],
        account: &str,
        options: &SweepOptions,
    ) -> Sweep {
        let mut sweep = Sweep {
            account: account.to_string(),
            regions: regions.iter().map(|r| r.read.region.clone()).collect(),
            labs: Vec::new(),
            in_other_shards: 0,
            errors: Vec::new(),
            interrupted: false,
            applied: false,
            plan_name: plan.plan.name.clone(),
        };
        let several = regions.len() > 1;
        for clients in regions {
            let aws = &clients.read;
            let stacks = match list_stacks(aws).await {
                Ok(stacks) => stacks,
                Err(e) => {
                    sweep.errors.push(format!(
                        "region {}: cannot list the stacks: {e}",
                        aws.region
                    ));
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
                let id = if several {
                    format!("{}/{}", aws.region, stack.name)
                } else {
                    stack.name.clone()
                };
                let mut lab = Lab {
                    id,
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
                            Ok(lab_plan) => {
                                lab.vars = vars;
                                lab.plan = Some(lab_plan);
                            }
                        },
                    }
                }
                labs.push(lab);
            }
            labs.sort_by(|a, b| a.stack.name.cmp(&b.stack.name));
            sweep.labs.extend(labs);
        }
        if let Some(window) = plan.find.not_updated_for {
            sweep.check_use(regions, window, options).await;
        }
        sweep
    }

    /// Keeps the labs in use: their clusters' tasks, checked concurrently (bounded).
    async fn check_use(
        &mut self,
        regions: &[RegionClients],
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
            let aws = client_for(regions, &lab.region).read.clone();
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

    /// Labs found stale and not run yet.
    pub fn stale(&self) -> impl Iterator<Item = &Lab> {
        self.labs.iter().filter(|l| l.status == LabStatus::NotRun)
    }

    /// Runs every stale lab's copy of the plan in one dry run (read-only clients), then keeps the
    /// labs whose copies would change the same resource, and marks those whose preview failed.
    /// Returns the run's summary (`None` when no lab was stale).
    pub async fn preview(
        &mut self,
        regions: &[RegionClients],
        options: &SweepOptions,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Option<RunSummary> {
        let (dag, owners) =
            self.merged_dag(LabStatus::NotRun, |c| Some(c.read.clone()), false, regions)?;
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
    fn keep_overlaps(&mut self) {
        let mut claims: BTreeMap<&str, (BTreeSet<usize>, String)> = BTreeMap::new();
        for (index, lab) in self.labs.iter().enumerate() {
            if lab.status != LabStatus::WouldDelete {
                continue;
            }
            for r in lab.outcomes().filter(|r| r.outcome == OutcomeKind::Planned) {
                let entry = claims
                    .entry(&r.resource.id)
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

    /// Deletes what each previewed lab's preview listed, in one run of the merged DAG with the
    /// clients that may delete; every step changes only the resources its preview listed.
    /// Returns the run's summary (`None` when no lab was to be deleted). Panics if a region of
    /// such a lab has no `write` clients.
    pub async fn apply(
        &mut self,
        regions: &[RegionClients],
        options: &SweepOptions,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Option<RunSummary> {
        self.applied = true;
        let (dag, owners) =
            self.merged_dag(LabStatus::WouldDelete, |c| c.write.clone(), true, regions)?;
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
        regions: &[RegionClients],
    ) -> Option<(Dag<StepNode>, Owners)> {
        let mut nodes = Vec::new();
        let mut owners = Owners::new();
        for (index, lab) in self.labs.iter().enumerate() {
            let Some(lab_plan) = lab.plan.as_ref().filter(|_| lab.status == status) else {
                continue;
            };
            let aws = clients(client_for(regions, &lab.region))
                .expect("the clients of a sweep that deletes are given for every region");
            let selected = lab_plan
                .select(&PhaseSelection::default())
                .expect("selecting every step of a valid plan cannot fail");
            let dag = lab_plan.bind(selected.dag, aws, restrict.then_some(&lab.allowed));
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

    /// How the sweep ended, as the documented exit code: 1 when anything failed (a scheduler
    /// alerts on it), 130 when interrupted.
    pub fn outcome(&self) -> Outcome {
        if self.interrupted {
            Outcome::Interrupted
        } else if !self.errors.is_empty() || self.labs.iter().any(|l| l.status == LabStatus::Failed)
        {
            Outcome::StepsFailed
        } else {
            Outcome::Success
        }
    }

    /// The machine-readable report.
    pub fn report(&self, plan: &SweepPlan, options: &SweepOptions) -> SweepReport {
        let mut counts = BTreeMap::new();
        for lab in &self.labs {
            *counts.entry(lab.status).or_insert(0) += 1;
        }
        SweepReport {
            plan: plan.plan.name.clone(),
            file: plan.path.display().to_string(),
            account: self.account.clone(),
            regions: self.regions.clone(),
            dry_run: !self.applied,
            shard: options.shard.map(|s| s.to_string()),
            now: options.now,
            found: self.labs.len(),
            in_other_shards: self.in_other_shards,
            counts,
            labs: self.labs.iter().map(LabReport::of).collect(),
            errors: self.errors.clone(),
            exit_code: exit_number(self.outcome()),
        }
    }
}

fn exit_number(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Success => 0,
        Outcome::StepsFailed => 1,
        Outcome::BadInput => 2,
        Outcome::Refused => 3,
        Outcome::ChangesPending => 4,
        Outcome::Interrupted => 130,
    }
}

fn client_for<'a>(regions: &'a [RegionClients], region: &str) -> &'a RegionClients {
    regions
        .iter()
        .find(|c| c.read.region == region)
        .expect("every lab comes from one of the regions swept")
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

// ---- the report -------------------------------------------------------------------------------

/// The JSON report of a sweep (`--report FILE`).
#[derive(Debug, Serialize)]
pub struct SweepReport {
    /// The plan's name.
    pub plan: String,
    /// The plan file.
    pub file: String,
    /// The account swept.
    pub account: String,
    /// The regions swept.
    pub regions: Vec<String>,
    /// True unless the sweep deleted (`--apply`).
    pub dry_run: bool,
    /// `K/N` for a sharded sweep.
    pub shard: Option<String>,
    /// The time ages were measured against.
    pub now: DateTime<Utc>,
    /// Labs found in this shard.
    pub found: usize,
    /// Labs found that belong to other shards (not reported here).
    pub in_other_shards: usize,
    /// How many labs ended in each status.
    pub counts: BTreeMap<LabStatus, usize>,
    /// Every lab found.
    pub labs: Vec<LabReport>,
    /// Problems that are not one lab's.
    pub errors: Vec<String>,
    /// The exit code of the sweep.
    pub exit_code: u8,
}

/// One lab in the report.
#[derive(Debug, Serialize)]
pub struct LabReport {
    /// Its id (the prefix of its step ids).
    pub id: String,
    /// Its region.
    pub region: String,
    /// Its stack.
    pub stack: StackFacts,
    /// Why `find` matched it.
    pub matched_because: String,
    /// Where it stands.
    pub status: LabStatus,
    /// Why it is kept or failed.
    pub reasons: Vec<String>,
    /// What the reader should know.
    pub notes: Vec<String>,
    /// The variables bound from its stack.
    pub vars: BTreeMap<String, String>,
    /// Resources per outcome (`planned`, `done`, `already-gone`, `protected`, `not-previewed`).
    pub resources: BTreeMap<OutcomeKind, usize>,
    /// Its steps, from the latest run it took part in.
    pub steps: Vec<StepReport>,
}

/// One step of a lab in the report.
#[derive(Debug, Serialize)]
pub struct StepReport {
    /// The plan's step id.
    pub step: String,
    /// Its action.
    pub action: String,
    /// `succeeded`, `failed` or `skipped`.
    pub outcome: &'static str,
    /// Its summary, the error, or why it was skipped.
    pub detail: String,
    /// Each resource it matched and what became of it.
    pub resources: Vec<ResourceOutcome>,
}

impl LabReport {
    fn of(lab: &Lab) -> LabReport {
        let mut resources = BTreeMap::new();
        for r in lab.outcomes() {
            *resources.entry(r.outcome).or_insert(0) += 1;
        }
        LabReport {
            id: lab.id.clone(),
            region: lab.region.clone(),
            stack: lab.stack.clone(),
            matched_because: lab.matched_because.clone(),
            status: lab.status,
            reasons: lab.reasons.clone(),
            notes: lab.notes.clone(),
            vars: lab.vars.clone(),
            resources,
            steps: lab
                .steps
                .iter()
                .map(|s| {
                    let (outcome, detail) = match &s.outcome {
                        StepOutcome::Succeeded => (
                            "succeeded",
                            s.output
                                .as_ref()
                                .map(|o| o.summary.clone())
                                .unwrap_or_default(),
                        ),
                        StepOutcome::Failed { error, .. } => ("failed", error.clone()),
                        StepOutcome::Skipped { reason } => ("skipped", reason.clone()),
                    };
                    StepReport {
                        step: s.id.clone(),
                        action: s.action.clone(),
                        outcome,
                        detail,
                        resources: s
                            .output
                            .as_ref()
                            .map(|o| o.resources.clone())
                            .unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }
}

// ---- the command ------------------------------------------------------------------------------

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

fn write_found(
    out: &mut dyn Write,
    plan: &SweepPlan,
    sweep: &Sweep,
    options: &SweepOptions,
) -> std::io::Result<()> {
    let shard = match &options.shard {
        Some(shard) => format!(
            ", shard {shard} ({} found in other shards)",
            count_of(sweep.in_other_shards, "lab")
        ),
        None => String::new(),
    };
    writeln!(
        out,
        "Sweep of plan `{}`: account {}, {} {}{shard}",
        plan.plan.name,
        sweep.account,
        if sweep.regions.len() == 1 {
            "region"
        } else {
            "regions"
        },
        sweep.regions.join(", ")
    )?;
    for error in &sweep.errors {
        writeln!(out, "  error: {error}")?;
    }
    let stale = sweep.stale().count();
    writeln!(
        out,
        "Found {}: {stale} stale, {} kept",
        count_of(sweep.labs.len(), "lab"),
        sweep.labs.len() - stale
    )?;
    for lab in &sweep.labs {
        let (mark, why) = match lab.status {
            LabStatus::NotRun => ("stale", lab.matched_because.clone()),
            _ => (lab.status.word(), lab.reasons.join("; ")),
        };
        writeln!(out, "  {mark:12} {:<32} {why}", lab.id)?;
        for note in &lab.notes {
            writeln!(out, "  {:12} {:<32} note: {note}", "", "")?;
        }
    }
    Ok(())
}

fn write_labs(out: &mut dyn Write, sweep: &Sweep) -> std::io::Result<()> {
    let mut counts: BTreeMap<LabStatus, usize> = BTreeMap::new();
    for lab in &sweep.labs {
        *counts.entry(lab.status).or_default() += 1;
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {}", status.word()))
        .collect();
    writeln!(out)?;
    writeln!(
        out,
        "Labs: {}",
        if counts.is_empty() {
            "none found".to_string()
        } else {
            counts.join(", ")
        }
    )?;
    for lab in &sweep.labs {
        let what = match lab.status {
            LabStatus::WouldDelete => format!(
                "{} would be deleted or changed ({})",
                count_of(lab.resources(OutcomeKind::Planned), "resource"),
                lab.matched_because
            ),
            LabStatus::Deleted => format!(
                "{} deleted or changed, {} already gone",
                count_of(lab.resources(OutcomeKind::Done), "resource"),
                lab.resources(OutcomeKind::AlreadyGone)
            ),
            _ => lab.reasons.join("; "),
        };
        writeln!(out, "  {:12} {:<32} {what}", lab.status.word(), lab.id)?;
    }
    if sweep
        .labs
        .iter()
        .any(|l| l.status == LabStatus::WouldDelete)
        && !sweep.applied
    {
        writeln!(
            out,
            "Dry run: nothing was changed. Run again with --apply to delete the labs marked \"would delete\"."
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn stack(name: &str, hours_old: i64, tags: &[(&str, &str)]) -> StackFacts {
        StackFacts {
            name: name.into(),
            id: format!("arn:aws:cloudformation:us-west-2:123456789012:stack/{name}/1"),
            status: "CREATE_COMPLETE".into(),
            created: Some(now() - chrono::Duration::hours(hours_old)),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..StackFacts::default()
        }
    }

    fn find() -> Find {
        Find {
            stack: Some(Pattern::parse("Lab-*").unwrap()),
            tags: vec![("Workshop".into(), Pattern::parse("secrets").unwrap())],
            older_than: Some(Duration::from_secs(24 * 3600)),
            not_updated_for: Some(Duration::from_secs(6 * 3600)),
        }
    }

    fn judged(s: &StackFacts) -> Option<(String, Vec<String>)> {
        judge(&find(), s, "teardown:protect", &["Lab-kept".into()], now())
    }

    #[test]
    fn a_stale_lab_matches_with_the_reasons() {
        let (why, kept) = judged(&stack("Lab-a", 30, &[("Workshop", "secrets")])).unwrap();
        assert_eq!(
            why,
            "name matches \"Lab-*\", tag Workshop=secrets, created 30h ago"
        );
        assert!(kept.is_empty(), "{kept:?}");
    }

    #[test]
    fn other_stacks_are_not_labs() {
        assert!(judged(&stack("Other", 30, &[("Workshop", "secrets")])).is_none());
        assert!(judged(&stack("Lab-a", 30, &[("Workshop", "other")])).is_none());
        assert!(judged(&stack("Lab-a", 30, &[])).is_none());
        let mut deleted = stack("Lab-a", 30, &[("Workshop", "secrets")]);
        deleted.status = "DELETE_COMPLETE".into();
        assert!(judged(&deleted).is_none());
    }

    #[test]
    fn labs_are_kept_with_every_reason() {
        let kept = |s: &StackFacts| judged(s).unwrap().1.join("; ");
        assert_eq!(
            kept(&stack("Lab-a", 3, &[("Workshop", "secrets")])),
            "too young: created 3h ago (older_than 24h); recently updated: 3h ago (not_updated_for 6h)"
        );
        let mut updated = stack("Lab-a", 30, &[("Workshop", "secrets")]);
        updated.last_updated = Some(now() - chrono::Duration::hours(2));
        assert_eq!(
            kept(&updated),
            "recently updated: 2h ago (not_updated_for 6h)"
        );
        updated.last_updated = Some(now() - chrono::Duration::hours(7));
        assert_eq!(kept(&updated), "");
        assert_eq!(
            kept(&stack(
                "Lab-p",
                30,
                &[("Workshop", "secrets"), ("teardown:protect", "")]
            )),
            "protected: tagged teardown:protect"
        );
        assert_eq!(
            kept(&stack("Lab-kept", 30, &[("Workshop", "secrets")])),
            "protected: listed in the plan's keep list"
        );
        let mut busy = stack("Lab-a", 30, &[("Workshop", "secrets")]);
        busy.status = "UPDATE_IN_PROGRESS".into();
        busy.parent = Some("arn:parent".into());
        assert_eq!(
            kept(&busy),
            "nested stack of arn:parent: goes with its parent, never on its own; busy: UPDATE_IN_PROGRESS (the next sweep looks again)"
        );
        let mut unknown = stack("Lab-a", 30, &[("Workshop", "secrets")]);
        unknown.created = None;
        assert!(
            kept(&unknown).starts_with("age unknown"),
            "{}",
            kept(&unknown)
        );
    }

    fn sweep_plan(sweep: &str) -> Result<SweepPlan, String> {
        let text = format!(
            "name = \"p\"\n[vars]\nmain_stack = \"x\"\ncluster = \"c\"\n\n{sweep}\n\n\
             [steps.stop]\naction = \"ecs.stop-tasks\"\nmatch = {{ cluster = \"{{cluster}}\" }}\n\n\
             [steps.stack]\naction = \"cloudformation.delete-stack\"\nmatch = {{ name = \"{{main_stack}}\" }}\nafter = [\"stop\"]\n"
        );
        SweepPlan::parse(Path::new("p.toml"), &text, &[]).map_err(|e| e.to_string())
    }

    #[test]
    fn a_sweep_section_is_read() {
        let plan = sweep_plan(
            "[sweep]\nfind = { stack = \"Lab-*\", tags = { Workshop = \"s*\" }, older_than = \"24h\", not_updated_for = \"0s\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.Cluster}-{region}\" }",
        )
        .unwrap();
        assert_eq!(plan.find.older_than, Some(Duration::from_secs(86400)));
        assert_eq!(plan.find.not_updated_for, Some(Duration::ZERO));
        let facts = stack("Lab-a", 30, &[("Cluster", "cl-a")]);
        let vars = plan.bind(&facts, "us-west-2", "123").unwrap();
        assert_eq!(vars["main_stack"], "Lab-a");
        assert_eq!(vars["cluster"], "cl-a-us-west-2");
        let lab_plan = plan.for_lab(&vars).unwrap();
        assert_eq!(
            clusters_of(&lab_plan),
            BTreeSet::from(["cl-a-us-west-2".to_string()])
        );
    }

    #[test]
    fn binding_refuses_what_the_stack_cannot_give_or_could_widen() {
        let plan = sweep_plan(
            "[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.Cluster}\" }",
        )
        .unwrap();
        let err =
            |tags: &[(&str, &str)]| plan.bind(&stack("Lab-a", 30, tags), "r", "a").unwrap_err();
        assert_eq!(
            err(&[]),
            "cannot bind `cluster`: the stack has no tag `Cluster`"
        );
        assert_eq!(
            err(&[("Cluster", "")]),
            "cannot bind `cluster`: the stack's tag `Cluster` is empty"
        );
        assert!(err(&[("Cluster", "*")]).contains("glob characters"));
    }

    #[test]
    fn bad_sweep_sections_are_located_and_explained() {
        let err = |sweep: &str| match sweep_plan(sweep) {
            Ok(_) => panic!("accepted: {sweep}"),
            Err(e) => e,
        };
        let e = err("");
        assert!(e.contains("no [sweep] section"), "{e}");
        let e = err("[sweep]\nfind = { stack = \"Lab-*\", older = \"1h\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.C}\" }");
        assert!(e.contains("unknown key `older` in `find`"), "{e}");
        assert!(e.contains("p.toml:7:27"), "{e}");
        let e = err("[sweep]\nfind = { stack = \"Lab-*\", older_than = \"yesterday\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.C}\" }");
        assert!(e.contains("bad duration \"yesterday\""), "{e}");
        let e = err("[sweep]\nfind = { older_than = \"1h\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.C}\" }");
        assert!(e.contains("needs `stack` or `tags`"), "{e}");
        let e = err("[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stak = \"{stack.name}\", cluster = \"{stack.tag.C}\" }");
        assert!(e.contains("`main_stak` is not a variable"), "{e}");
        assert!(e.contains("did you mean `main_stack`"), "{e}");
        let e = err("[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stack = \"{stack.nam}\", cluster = \"{stack.tag.C}\" }");
        assert!(e.contains("unknown placeholder `{stack.nam}`"), "{e}");
        let e = err("[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{region}\" }");
        assert!(e.contains("the same for every lab"), "{e}");
        // `stop` matches {cluster}, which is not bound: every lab's copy would stop the same tasks.
        let e =
            err("[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stack = \"{stack.name}\" }");
        assert!(
            e.contains("step `stop` would match the same resources in every lab"),
            "{e}"
        );
        let e = err("[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.C}\" }\nschedule = \"daily\"");
        assert!(e.contains("unknown key `schedule` in [sweep]"), "{e}");
    }

    #[test]
    fn shards_are_stable_and_partition() {
        // FNV-1a's published test vector: the hash must never change between releases.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let two = [Shard::parse("1/2").unwrap(), Shard::parse("2/2").unwrap()];
        for i in 0..50 {
            let lab = format!("Lab-{i}");
            let homes = two
                .iter()
                .filter(|s| s.contains("123456789012", "us-west-2", &lab))
                .count();
            assert_eq!(homes, 1, "{lab}");
        }
        assert!(Shard::parse("0/2").is_err());
        assert!(Shard::parse("3/2").is_err());
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn variables_and_templates_read_braces_like_plans() {
        assert_eq!(variables_in("{a}-{{b}}-{c}"), vec!["a", "c"]);
        assert_eq!(
            parse_template("x{{{stack.tag.K}}}").unwrap(),
            vec![
                Part::Text("x{".into()),
                Part::Tag("K".into()),
                Part::Text("}".into())
            ]
        );
        assert!(parse_template("{stack.tag.}").is_err());
        assert!(parse_template("a}").is_err());
    }
}
