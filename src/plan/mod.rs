//! Plan files: reading the TOML, filling in variables, checking every step against its action,
//! and building the validated [`Dag`]. A [`Plan`] exists only if all of that passed, so nothing
//! that fails validation can reach the executor.

mod diagnostic;
pub mod lookup;
pub mod schema;
mod select;
pub mod sweep;
pub(crate) mod template;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub use self::diagnostic::{Diagnostic, PathSegment, PlanErrors, Source, Target};
pub use self::lookup::{Lookup, VarSource};
pub use self::select::{PhaseSelection, Selected, SelectionError};
pub use self::template::{interpolate, template_names};
use self::validate::Validator;
use crate::actions::{self, Action, Expect, StepInput};
use crate::engine::{FailureHandler, Handler, RetryPolicy, StepNode};
use crate::graph::{Dag, DagNode};

/// The step keys every action accepts; an action adds its own options to these.
pub const STEP_KEYS: [&str; 9] = [
    "action",
    "match",
    "expect",
    "after",
    "phase",
    "timeout",
    "retry",
    "on_failure",
    "description",
];

/// A step's timeout when neither the step nor `[defaults]` gives one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The longest timeout a step may have: 7 days. Longer is a typo (and a deadline the engine could
/// not even compute, `"300000000000y"`).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest delay between two attempts of a step (`retry.delay`, `retry.max-delay`): 24 hours.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(24 * 3600);

/// Where a plan may run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// Regions the plan may run in (any, when empty).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Account ids the plan may run in (any, when empty: the preview warns about that).
    #[serde(default)]
    pub accounts: Vec<String>,
}

/// A plan file as written. Its doc comments are the descriptions in the plan schema
/// ([`schema`]), which is derived from these types: a key added here is in the schema too.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    /// The plan's name (runs and their journals are named after it).
    name: String,
    /// What the plan is for.
    #[serde(default)]
    description: String,
    /// Where the plan may run: checked before any other call.
    #[serde(default)]
    guard: Guard,
    /// Variables, `{name}` in values; overridable with --var key=value. A variable declared ""
    /// is required.
    #[serde(default)]
    vars: BTreeMap<String, String>,
    /// Variables read from the account, read-only, before the run (see the `lookup` module).
    #[serde(default)]
    #[schemars(schema_with = "schema::lookups")]
    lookup: toml::Table,
    /// For every step that does not say otherwise.
    #[serde(default)]
    defaults: DefaultsFile,
    /// What is never touched.
    #[serde(default)]
    safety: SafetyFile,
    /// The steps, by id.
    #[serde(default)]
    #[schemars(schema_with = "schema::steps")]
    steps: toml::Table,
    /// Read and checked by `teardown sweep` (src/sweep.rs); other commands ignore it.
    #[serde(default)]
    #[schemars(schema_with = "schema::sweep")]
    sweep: Option<toml::Table>,
}

/// `[defaults]`: for every step that does not say otherwise.
#[derive(Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct DefaultsFile {
    /// Deadline of each step (default 30m).
    #[serde(default)]
    #[schemars(schema_with = "schema::duration")]
    timeout: Option<String>,
    /// Retries of each step.
    #[serde(default)]
    #[schemars(schema_with = "schema::retry")]
    retry: Option<toml::Value>,
}

/// `[safety]`: what is never touched.
#[derive(Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SafetyFile {
    /// Resources with this tag key are never touched (default `teardown:protect`).
    #[serde(default)]
    protect_tag: Option<String>,
    /// Names or ARNs never touched.
    #[serde(default)]
    keep: Vec<String>,
}

/// One validated step.
#[derive(Clone)]
pub struct PlannedStep {
    /// Its id (the table key).
    pub id: String,
    /// Its action's name.
    pub action: String,
    /// What the plan says about it.
    pub description: Option<String>,
    /// Its phase, for `--only` and `--skip`.
    pub phase: Option<String>,
    /// What it waits for.
    pub after: Vec<String>,
    /// Deadline of the whole step.
    pub timeout: Duration,
    /// Retries of retryable failures.
    pub retry: RetryPolicy,
    /// The step to run when it fails, before trying again.
    pub on_failure: Option<FailureHandler>,
    /// Its `match` and options, variables filled in.
    pub input: StepInput,
    /// How many resources its `match` must find ([`Expect::ANY`] when the plan says nothing).
    pub expect: Expect,
    /// The variables (plain and looked up) its `match` and options use.
    pub uses: BTreeSet<String>,
    /// The action, built from the input.
    pub built: Arc<dyn Action>,
}

impl DagNode for PlannedStep {
    fn id(&self) -> &str {
        &self.id
    }
    fn after(&self) -> &[String] {
        &self.after
    }
    fn label(&self) -> &str {
        &self.action
    }
}

/// A plan that passed validation.
pub struct Plan {
    /// The plan's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Where it may run.
    pub guard: Guard,
    /// Its variables, overrides applied; a looked-up variable that was not given has its
    /// [`lookup::placeholder`] until the account is read.
    pub vars: BTreeMap<String, String>,
    /// The variables given with `--var` (or by a sweep's `bind`, or recorded by an earlier run).
    pub given: BTreeSet<String>,
    /// The `[lookup]` entries, in the order they resolve in.
    pub lookups: Vec<Lookup>,
    /// The looked-up variables that still have their placeholder: steps that use one cannot run
    /// until `crate::resolve` has read the account and the plan was validated again with them.
    pub unresolved: BTreeSet<String>,
    /// Required variables (declared `""` under `[vars]`) that no `--var` gave: they have a
    /// placeholder, and a run whose steps use one is refused before any call.
    pub missing: BTreeSet<String>,
    /// Resources with this tag key are never touched.
    pub protect_tag: String,
    /// Names or ARNs never touched.
    pub keep: Vec<String>,
    /// The steps.
    pub dag: Dag<PlannedStep>,
    /// The `[sweep]` section as written, for `teardown sweep` to check and use (see
    /// [`crate::sweep`]); every other command ignores it.
    pub sweep: Option<toml::Table>,
}

/// Why a plan could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read the plan {}: {source}", path.display())]
    Io {
        /// The path given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The plan has problems.
    #[error("{0}")]
    Invalid(#[from] PlanErrors),
}

/// Reads and validates a plan file. `overrides` are `--var key=value` pairs.
pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Plan, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse(path, &text, overrides)?)
}

/// Validates a plan's text (`path` is used in messages only).
pub fn parse(path: &Path, text: &str, overrides: &[(String, String)]) -> Result<Plan, PlanErrors> {
    // Parsed once: the same document gives the spans of every later error and the values.
    let source = Source::new(path, text);
    let Some(document) = source.document() else {
        let e = toml_edit::ImDocument::parse(text).expect_err("the document did not parse");
        return Err(PlanErrors(vec![source.at_span(
            e.span().unwrap_or(0..0),
            format!("invalid TOML: {}", e.message().trim()),
            Some("fix the syntax at this place (see https://toml.io)".into()),
        )]));
    };
    let file = PlanFile::deserialize(toml_edit::de::Deserializer::from(document.clone())).map_err(
        |e| {
            let message = e.message().trim().to_string();
            let hint = if message.starts_with("unknown field") {
                Some("remove the key or fix its spelling".to_string())
            } else {
                None
            };
            PlanErrors(vec![source.at_span(
                e.span().unwrap_or(0..0),
                message,
                hint,
            )])
        },
    )?;
    Validator {
        source: &source,
        errors: Vec::new(),
        used: BTreeSet::new(),
    }
    .validate(path, file, overrides)
}

impl Plan {
    /// The least-privilege IAM policy for this plan: the calls of its actions, plus the account
    /// check, plus `extra` (what a way of running it needs besides, e.g. `ec2:DescribeRegions`). As
    /// pretty JSON, ready for `aws iam create-policy --policy-document`.
    pub fn iam_policy(&self, extra: &[&str]) -> String {
        let mut actions: BTreeSet<&str> = BTreeSet::from(["sts:GetCallerIdentity"]);
        actions.extend(extra.iter().copied());
        for step in self.dag.in_order() {
            if let Some(spec) = actions::lookup(&step.action) {
                actions.extend(spec.permissions.iter().copied());
            }
        }
        for found in &self.lookups {
            if let Some(kind) = lookup::kind(found.from) {
                actions.extend(kind.permissions.iter().copied());
            }
        }
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "TeardownPlan",
                "Effect": "Allow",
                "Action": actions.into_iter().collect::<Vec<_>>(),
                "Resource": "*"
            }]
        });
        serde_json::to_string_pretty(&policy).expect("a policy serializes")
    }
}

impl Plan {
    /// The looked-up variables that the steps of `dag` (and their failure handlers) need,
    /// with the lookups those depend on.
    pub fn lookups_needed(&self, dag: &Dag<PlannedStep>) -> BTreeSet<String> {
        lookup::needed_by(&self.lookups, &self.used_by(dag))
    }

    /// The required variables (`""` under `[vars]`) that the steps of `dag`, their failure
    /// handlers and the lookups they need use, and that no `--var` gave.
    pub fn missing_for(&self, dag: &Dag<PlannedStep>) -> BTreeSet<String> {
        let mut used = self.used_by(dag);
        for lookup in &self.lookups {
            if self.lookups_needed(dag).contains(&lookup.name) {
                used.extend(lookup.uses.iter().cloned());
            }
        }
        used.intersection(&self.missing).cloned().collect()
    }

    /// The variables the steps of `dag` and their failure handlers use directly.
    fn used_by(&self, dag: &Dag<PlannedStep>) -> BTreeSet<String> {
        let mut used = BTreeSet::new();
        for step in dag.in_order() {
            used.extend(step.uses.iter().cloned());
            if let Some(handler) = step.on_failure.as_ref().and_then(|h| self.dag.get(&h.run)) {
                used.extend(handler.uses.iter().cloned());
            }
        }
        used
    }

    /// Every variable with its value and where the value came from: `looked_up` (this run's or
    /// a recorded run's lookups), `--var`, or the plan's `[vars]`. Looked-up variables that
    /// the selected steps do not need are left out.
    pub fn variable_sources(
        &self,
        looked_up: &BTreeMap<String, VarSource>,
    ) -> Vec<(String, VarSource)> {
        self.vars
            .iter()
            .filter(|(name, _)| !self.unresolved.contains(*name) && !self.missing.contains(*name))
            .map(|(name, value)| {
                let source = match looked_up.get(name) {
                    Some(found) => found.source.clone(),
                    None if self.given.contains(name) => "--var".to_string(),
                    None => "the plan's [vars]".to_string(),
                };
                (
                    name.clone(),
                    VarSource {
                        value: value.clone(),
                        source,
                    },
                )
            })
            .collect()
    }
}

impl Plan {
    /// One step as the engine runs it, with `task` making the work of a step (the step's own,
    /// and its failure handler's, looked up in the whole plan). `session::runnable` uses it with the
    /// real actions; the benchmarks with simulated ones.
    pub fn step_node(
        &self,
        step: PlannedStep,
        task: &dyn Fn(&PlannedStep) -> Arc<dyn crate::engine::Task>,
    ) -> StepNode {
        StepNode {
            task: task(&step),
            on_failure: step.on_failure.as_ref().and_then(|h| {
                let handler = self.dag.get(&h.run)?;
                Some(Handler {
                    id: handler.id.clone(),
                    times: h.times,
                    timeout: handler.timeout,
                    task: task(handler),
                })
            }),
            id: step.id,
            action: step.action,
            after: step.after,
            timeout: step.timeout,
            retry: step.retry,
        }
    }
}
