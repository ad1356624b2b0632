//! The `[sweep]` section of a plan: `find` (which stacks are labs), `bind` (the plan's variables
//! filled from each lab's stack), and the checks that keep each lab's copy of the plan to its lab.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::actions::{nearest, some_of, Pattern};
use crate::key_path;
use crate::plan::{self, Diagnostic, PathSegment, Plan, PlanErrors, Source, Target};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// `[sweep] find`: which CloudFormation stacks are labs, and which of them are stale.
#[derive(Clone, Debug, Default)]
pub struct Find {
    /// Stack name, exact or a glob.
    pub stack: Option<Pattern>,
    /// Stack description, exact or a glob: what a template says of itself (the workshop's
    /// template always gives the same one, whatever the stack is called).
    pub description: Option<Pattern>,
    /// Output keys the stack must have: what the template leaves in every copy.
    pub outputs: Vec<String>,
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
pub(crate) enum Part {
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

/// Reads a `bind` template with the plans' one template reader, and each placeholder's meaning.
pub(crate) fn parse_template(text: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    for piece in plan::template::pieces(text)? {
        let name = match piece {
            plan::template::Piece::Text(literal) => {
                parts.push(Part::Text(literal));
                continue;
            }
            plan::template::Piece::Name(name) => name,
        };
        let keyed = |prefix: &str| name.strip_prefix(prefix).filter(|k| !k.is_empty());
        parts.push(if name == "stack.name" {
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
        });
    }
    Ok(parts)
}

fn strings_in(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        toml::Value::Table(t) => t.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

/// Validates a `[sweep]` section as `plan::validate` does the rest of the plan: collects its
/// problems, each located in the file.
struct SweepValidator<'a> {
    source: &'a Source<'a>,
    errors: Vec<Diagnostic>,
}

impl SweepValidator<'_> {
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
            &[
                "stack",
                "description",
                "outputs",
                "tags",
                "older_than",
                "not_updated_for",
            ],
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
        if let Some(value) = table.get("description") {
            let at = key_path!["sweep", "find", "description"];
            match value.as_str().map(Pattern::parse) {
                Some(Ok(p)) => find.description = Some(p),
                Some(Err(e)) => self.error(at, Target::Value, &e, None),
                None => self.error(
                    at,
                    Target::Value,
                    "`description` must be a string: the stack's description or a glob",
                    None,
                ),
            }
        }
        if let Some(value) = table.get("outputs") {
            let keys: Option<Vec<String>> = value
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or(None);
            match keys {
                Some(keys) if !keys.is_empty() => find.outputs = keys,
                _ => self.error(
                    key_path!["sweep", "find", "outputs"],
                    Target::Value,
                    "`outputs` must be a list of output keys every lab's stack has",
                    Some("write outputs = [\"ECSCluster\", \"ECRRepository\"]"),
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
        if find.stack.is_none() && find.description.is_none() && !table.contains_key("tags") {
            self.error(
                key_path!["sweep", "find"],
                Target::Value,
                "`find` needs `stack`, `description` or `tags`: without them every stack in the region would be a lab",
                Some("add description = \"...\" (the template's Description), stack = \"Lab-*\" (a name or glob), or tags = { Workshop = \"secrets\" }"),
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
        match crate::util::parse_duration(text, Duration::ZERO..=Duration::MAX) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(at, Target::Value, &e.problem, Some(&e.hint));
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
                        some_of(&declared)
                    ),
                    None => format!(
                        "declare it under [vars]; the plan declares: {}",
                        some_of(&declared)
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
    fn steps_are_bound(
        &mut self,
        text: &str,
        bind: &BTreeMap<String, Vec<Part>>,
        lookups: &[plan::Lookup],
    ) {
        let raw: toml::Table = toml::from_str(text).unwrap_or_default();
        let Some(steps) = raw.get("steps").and_then(|s| s.as_table()) else {
            return;
        };
        let names: Vec<&str> = bind.keys().map(String::as_str).collect();
        // A lookup that reads from a bound variable (the lab's stack) is the lab's too; the
        // lookups come in the order they resolve in, so one pass sees every chain.
        let mut lab_vars: BTreeSet<String> = bind.keys().cloned().collect();
        for lookup in lookups {
            if lookup.uses.iter().any(|u| lab_vars.contains(u)) {
                lab_vars.insert(lookup.name.clone());
            }
        }
        for (id, step) in steps {
            let mut strings = Vec::new();
            if let Some(selector) = step.get("match") {
                strings_in(selector, &mut strings);
            }
            let bound = strings
                .iter()
                .flat_map(|s| plan::template_names(s).unwrap_or_default())
                .any(|v| lab_vars.contains(&v));
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
    pub(crate) path: PathBuf,
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
        let mut check = SweepValidator {
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
            check.steps_are_bound(text, &bind, &plan.lookups);
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
    pub(crate) fn bind(
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
    pub(crate) fn for_lab(&self, vars: &BTreeMap<String, String>) -> Result<Plan, PlanErrors> {
        let mut overrides = self.overrides.clone();
        overrides.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        plan::parse(&self.path, &self.text, &overrides)
    }
}

/// What a sweep knows of a lab's stack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StackFacts {
    /// Stack name.
    pub name: String,
    /// Stack id (ARN).
    pub id: String,
    /// Its status, e.g. `CREATE_COMPLETE`.
    pub status: String,
    /// Its description (from its template).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
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
