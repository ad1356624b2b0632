//! Checking a plan file against the actions: every step, variable, lookup and safety setting,
//! each error with the place it points at and what to do.

use super::template::{fill_template, template_names};
use super::{
    lookup, Plan, PlanFile, PlannedStep, DEFAULT_TIMEOUT, MAX_RETRY_DELAY, MAX_TIMEOUT, STEP_KEYS,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use super::Lookup;
use super::{Diagnostic, PathSegment, PlanErrors, Source, Target};
use crate::actions::{
    self, check_fields, nearest, some_of, ActionSpec, Expect, StepInput, EXPECT_FORMS,
};
use crate::engine::{FailureHandler, RetryPolicy};
use crate::graph::{Dag, GraphError};
use crate::key_path;

pub(super) struct Validator<'a> {
    pub(super) source: &'a Source<'a>,
    pub(super) errors: Vec<Diagnostic>,
    /// The variables the step being validated uses, collected as its values are filled in.
    pub(super) used: BTreeSet<String>,
}

impl Validator<'_> {
    fn error(
        &mut self,
        path: Vec<PathSegment>,
        target: Target,
        message: String,
        hint: Option<String>,
    ) {
        self.errors
            .push(self.source.at_path(&path, target, message, hint));
    }

    pub(super) fn validate(
        mut self,
        path: &Path,
        file: PlanFile,
        overrides: &[(String, String)],
    ) -> Result<Plan, PlanErrors> {
        let mut vars = file.vars.clone();
        let mut given = BTreeSet::new();
        for (key, value) in overrides {
            if vars.contains_key(key) || file.lookup.contains_key(key) {
                vars.insert(key.clone(), value.clone());
                given.insert(key.clone());
            } else {
                let declared: Vec<&str> = file
                    .vars
                    .keys()
                    .chain(file.lookup.keys())
                    .map(String::as_str)
                    .collect();
                let hint = match self.suggest(key, &declared) {
                    Some(near) => format!(
                        "did you mean `{near}`? the plan declares: {}",
                        some_of(&declared)
                    ),
                    None => format!("the plan declares: {}", some_of(&declared)),
                };
                self.error(
                    key_path!["vars"],
                    Target::Key,
                    format!("--var {key}: the plan has no variable `{key}`"),
                    Some(hint),
                );
            }
        }
        let mut missing = BTreeSet::new();
        for (name, value) in vars.iter_mut() {
            if value.is_empty() && !given.contains(name) {
                *value = lookup::placeholder(name);
                missing.insert(name.clone());
            }
        }
        let lookups = self.lookups(&file, &vars);
        let mut unresolved = BTreeSet::new();
        // Every entry of [lookup], valid or not (its own error is reported), so that the steps
        // that use it are checked without a second error for the same mistake.
        for name in file.lookup.keys() {
            if !given.contains(name) && !file.vars.contains_key(name) {
                vars.insert(name.clone(), lookup::placeholder(name));
                unresolved.insert(name.clone());
            }
        }
        let default_timeout = match &file.defaults.timeout {
            Some(text) => self
                .duration(
                    text,
                    key_path!["defaults", "timeout"],
                    MAX_TIMEOUT,
                    "a step's timeout",
                )
                .unwrap_or(DEFAULT_TIMEOUT),
            None => DEFAULT_TIMEOUT,
        };
        let default_retry = match &file.defaults.retry {
            Some(value) => self
                .retry(
                    value,
                    key_path!["defaults", "retry"],
                    RetryPolicy::default(),
                )
                .unwrap_or_default(),
            None => RetryPolicy::default(),
        };
        let ids: Vec<&str> = file.steps.keys().map(String::as_str).collect();
        // Looked up once per `after` entry: a set, so that a plan of thousands of steps validates
        // in linear time (measured by benches/critical_path.rs).
        let known: HashSet<&str> = ids.iter().copied().collect();
        let mut steps = Vec::new();
        for (id, value) in &file.steps {
            if let Some(step) = self.step(
                id,
                value,
                &ids,
                &known,
                &vars,
                default_timeout,
                default_retry,
            ) {
                steps.push(step);
            }
        }
        if steps.is_empty() && self.errors.is_empty() {
            self.error(
                key_path![],
                Target::Value,
                "the plan has no steps".into(),
                Some("add a step: [steps.my-step] with an `action` and a `match`".into()),
            );
        }
        if !self.errors.is_empty() {
            return Err(self.finish());
        }
        let dag = match Dag::build(steps) {
            Ok(dag) => dag,
            Err(GraphError::Cycle(cycle)) => {
                // Point at the `after` entry that closes the cycle's first edge.
                let (first, second) = (&cycle[0], &cycle[1]);
                let index = file
                    .steps
                    .get(second)
                    .and_then(|s| s.get("after"))
                    .and_then(|a| a.as_array())
                    .and_then(|a| a.iter().position(|v| v.as_str() == Some(first)))
                    .unwrap_or(0);
                self.error(
                    key_path!["steps", second.as_str(), "after", index],
                    Target::Value,
                    format!("the steps wait for each other in a cycle: {}", cycle.join(" -> ")),
                    Some("a step cannot run before what it waits for: remove one of these `after` entries".into()),
                );
                return Err(self.finish());
            }
            Err(e) => {
                self.error(key_path!["steps"], Target::Key, e.to_string(), None);
                return Err(self.finish());
            }
        };
        for step in dag.in_order() {
            if let Some(handler) = &step.on_failure {
                if dag.depends_on(&handler.run, &step.id) {
                    self.error(
                        key_path!["steps", step.id.as_str(), "on_failure", "run"],
                        Target::Value,
                        format!("the failure handler `{}` waits for `{}` itself", handler.run, step.id),
                        Some("a handler must be able to run before the step is retried: pick a step that does not depend on it".into()),
                    );
                }
            }
        }
        if !self.errors.is_empty() {
            return Err(self.finish());
        }
        Ok(Plan {
            name: file.name,
            description: file.description,
            file: path.to_path_buf(),
            guard: file.guard,
            vars,
            given,
            lookups,
            unresolved,
            missing,
            protect_tag: file
                .safety
                .protect_tag
                .unwrap_or_else(|| actions::DEFAULT_PROTECT_TAG.to_string()),
            keep: file.safety.keep,
            dag,
            sweep: file.sweep,
        })
    }

    /// Validates `[lookup]`: each entry's kind, keys and templates, names that clash with
    /// `[vars]`, and cycles. Returns the entries in the order they resolve in.
    fn lookups(&mut self, file: &PlanFile, vars: &BTreeMap<String, String>) -> Vec<Lookup> {
        let kinds: Vec<&str> = lookup::LOOKUP_KINDS.iter().map(|k| k.from).collect();
        let mut lookups = Vec::new();
        for (name, value) in &file.lookup {
            let at = |rest: &[&str]| {
                let mut p = key_path!["lookup", name.as_str()];
                p.extend(rest.iter().map(|s| PathSegment::from(*s)));
                p
            };
            if file.vars.contains_key(name) {
                self.error(
                    at(&[]),
                    Target::Key,
                    format!("`{name}` is both a variable under [vars] and a lookup"),
                    Some("keep one: a lookup reads the value from the account, [vars] gives it in the plan".into()),
                );
                continue;
            }
            let Some(table) = value.as_table() else {
                self.error(
                    at(&[]),
                    Target::Value,
                    format!("lookup `{name}` must be a table"),
                    Some(format!("write {name} = {{ from = \"stack-output\", stack = \"{{main_stack}}\", key = \"...\" }}; from is one of: {}", kinds.join(", "))),
                );
                continue;
            };
            let kind = match table.get("from").map(|f| f.as_str()) {
                Some(Some(from)) => match lookup::kind(from) {
                    Some(kind) => kind,
                    None => {
                        let hint = match nearest(from, &kinds) {
                            Some(near) => format!(
                                "did you mean `{near}`? the lookups are: {}",
                                kinds.join(", ")
                            ),
                            None => format!("the lookups are: {}", kinds.join(", ")),
                        };
                        self.error(
                            at(&["from"]),
                            Target::Value,
                            format!("unknown lookup `{from}`"),
                            Some(hint),
                        );
                        continue;
                    }
                },
                _ => {
                    self.error(
                        at(&[]),
                        Target::Value,
                        format!("lookup `{name}` has no `from` (a string)"),
                        Some(format!("add from = one of: {}", kinds.join(", "))),
                    );
                    continue;
                }
            };
            let mut keys = BTreeMap::new();
            let mut uses = BTreeSet::new();
            let mut ok = true;
            for (key, value) in table {
                if key == "from" {
                    continue;
                }
                if !kind.keys.contains(&key.as_str()) {
                    self.error(
                        at(&[key]),
                        Target::Key,
                        format!("unknown key `{key}` in lookup `{name}` ({})", kind.from),
                        Some(format!(
                            "{} takes: from, {}",
                            kind.from,
                            kind.keys.join(", ")
                        )),
                    );
                    ok = false;
                    continue;
                }
                let Some(text) = value.as_str() else {
                    self.error(
                        at(&[key]),
                        Target::Value,
                        format!("`{key}` must be a string"),
                        None,
                    );
                    ok = false;
                    continue;
                };
                match template_names(text) {
                    Err(message) => {
                        self.error(at(&[key]), Target::Value, message, None);
                        ok = false;
                    }
                    Ok(names) => {
                        for used in names {
                            if !vars.contains_key(&used) && !file.lookup.contains_key(&used) {
                                let declared: Vec<&str> = vars
                                    .keys()
                                    .chain(file.lookup.keys())
                                    .map(String::as_str)
                                    .collect();
                                self.error(
                                    at(&[key]),
                                    Target::Value,
                                    format!("unknown variable `{used}` in \"{text}\""),
                                    Some(format!(
                                        "declare it under [vars] or [lookup]; declared: {}",
                                        declared.join(", ")
                                    )),
                                );
                                ok = false;
                            }
                            uses.insert(used);
                        }
                    }
                }
                keys.insert(key.clone(), text.to_string());
            }
            for key in kind.keys {
                if !table.contains_key(*key) {
                    self.error(
                        at(&[]),
                        Target::Value,
                        format!("lookup `{name}` ({}) needs `{key}`", kind.from),
                        Some(format!("{}: {}", kind.from, kind.help)),
                    );
                    ok = false;
                }
            }
            if ok {
                lookups.push(Lookup {
                    name: name.clone(),
                    from: kind.from,
                    keys,
                    uses,
                });
            }
        }
        match lookup::in_order(&lookups) {
            Ok(order) => order.into_iter().cloned().collect(),
            Err(cycle) => {
                self.error(
                    key_path!["lookup", cycle[0].as_str()],
                    Target::Key,
                    format!(
                        "the lookups need each other in a cycle: {}",
                        cycle.join(" -> ")
                    ),
                    Some("one of them must come from [vars], --var or the account directly".into()),
                );
                Vec::new()
            }
        }
    }

    /// The name closest to `word` among `names` (a typo's likely fix), looked for only while
    /// the problems found so far are few enough to be shown: each look is linear in the names,
    /// and a plan of thousands of broken references must still validate in linear time.
    fn suggest<'n>(&self, word: &str, names: &[&'n str]) -> Option<&'n str> {
        if self.errors.len() >= PlanErrors::SHOWN {
            return None;
        }
        nearest(word, names)
    }

    fn finish(mut self) -> PlanErrors {
        self.errors.sort_by_key(|d| (d.line, d.column));
        self.errors.dedup();
        PlanErrors(self.errors)
    }

    /// A positive duration of at most `max` (what it is for, e.g. `a step's timeout`, is said
    /// in the error).
    fn duration(
        &mut self,
        text: &str,
        path: Vec<PathSegment>,
        max: Duration,
        what: &str,
    ) -> Option<Duration> {
        match crate::util::parse_duration(text, Duration::from_nanos(1)..=max) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    path,
                    Target::Value,
                    format!("{what}: {}", e.problem),
                    Some(e.hint),
                );
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        id: &str,
        value: &toml::Value,
        ids: &[&str],
        known: &HashSet<&str>,
        vars: &BTreeMap<String, String>,
        default_timeout: Duration,
        default_retry: RetryPolicy,
    ) -> Option<PlannedStep> {
        let errors_before = self.errors.len();
        let here = |rest: &[&str]| {
            let mut p = key_path!["steps", id];
            p.extend(rest.iter().map(|s| PathSegment::from(*s)));
            p
        };
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.error(
                here(&[]),
                Target::Key,
                format!("step id `{id}` has characters other than letters, digits, - and _"),
                Some("rename the step".into()),
            );
        }
        let Some(table) = value.as_table() else {
            self.error(
                here(&[]),
                Target::Value,
                format!("step `{id}` must be a table"),
                Some(format!("write it as [steps.{id}] with an `action` key")),
            );
            return None;
        };
        let spec: Option<&'static ActionSpec> = match table.get("action").map(|a| a.as_str()) {
            None => {
                self.error(
                    here(&[]),
                    Target::Key,
                    format!("step `{id}` has no `action`"),
                    Some(format!(
                        "add `action = \"...\"`; the actions are: {}",
                        action_names().join(", ")
                    )),
                );
                None
            }
            Some(None) => {
                self.error(
                    here(&["action"]),
                    Target::Value,
                    "`action` must be a string".into(),
                    None,
                );
                None
            }
            Some(Some(name)) => match actions::lookup(name) {
                Some(spec) => Some(spec),
                None => {
                    let names = action_names();
                    let hint = match nearest(name, &names) {
                        Some(near) => {
                            format!("did you mean `{near}`? (`teardown actions` lists them all)")
                        }
                        None => format!("the actions are: {}", names.join(", ")),
                    };
                    self.error(
                        here(&["action"]),
                        Target::Value,
                        format!("unknown action `{name}`"),
                        Some(hint),
                    );
                    None
                }
            },
        };
        let mut selector = toml::Table::new();
        let mut options = toml::Table::new();
        let mut after = Vec::new();
        let mut phase = None;
        let mut description = None;
        let mut timeout = default_timeout;
        let mut retry = default_retry;
        let mut on_failure = None;
        let mut expect = Expect::ANY;
        self.used.clear();
        for (key, value) in table {
            match key.as_str() {
                "action" => {}
                "expect" => match Expect::parse(value) {
                    Ok(e) => expect = e,
                    Err(message) => self.error(
                        here(&["expect"]),
                        Target::Value,
                        message,
                        Some(format!("write expect = one of {EXPECT_FORMS}")),
                    ),
                },
                "match" => match value.as_table() {
                    Some(t) => selector = self.interpolate_table(t, vars, here(&["match"])),
                    None => self.error(
                        here(&["match"]),
                        Target::Value,
                        "`match` must be a table".into(),
                        Some("write it as match = { name = \"...\" }".into()),
                    ),
                },
                "after" => match value.as_array() {
                    Some(list) => {
                        for (i, entry) in list.iter().enumerate() {
                            let mut at = here(&["after"]);
                            at.push(PathSegment::Index(i));
                            match entry.as_str() {
                                Some(dep) if known.contains(dep) => after.push(dep.to_string()),
                                Some(dep) => {
                                    let hint = match self.suggest(dep, ids) {
                                        Some(near) => format!("did you mean `{near}`?"),
                                        None => format!("the steps are: {}", some_of(ids)),
                                    };
                                    self.error(at, Target::Value, format!("step `{id}` waits for `{dep}`, which is not a step of this plan"), Some(hint));
                                }
                                None => self.error(
                                    at,
                                    Target::Value,
                                    "`after` lists step ids (strings)".into(),
                                    None,
                                ),
                            }
                        }
                    }
                    None => self.error(
                        here(&["after"]),
                        Target::Value,
                        "`after` must be a list of step ids".into(),
                        Some("write it as after = [\"other-step\"]".into()),
                    ),
                },
                "phase" => match value.as_str() {
                    Some(p) => phase = Some(p.to_string()),
                    None => self.error(
                        here(&["phase"]),
                        Target::Value,
                        "`phase` must be a string".into(),
                        None,
                    ),
                },
                "description" => match value.as_str() {
                    Some(text) => description = Some(text.to_string()),
                    None => self.error(
                        here(&["description"]),
                        Target::Value,
                        "`description` must be a string".into(),
                        Some("write it in quotes: description = \"what this step does\"".into()),
                    ),
                },
                "timeout" => match value.as_str() {
                    Some(text) => {
                        if let Some(d) =
                            self.duration(text, here(&["timeout"]), MAX_TIMEOUT, "a step's timeout")
                        {
                            timeout = d;
                        }
                    }
                    None => self.error(
                        here(&["timeout"]),
                        Target::Value,
                        "`timeout` must be a duration string".into(),
                        Some("write it like timeout = \"45m\"".into()),
                    ),
                },
                "retry" => {
                    if let Some(r) = self.retry(value, here(&["retry"]), default_retry) {
                        retry = r;
                    }
                }
                "on_failure" => {
                    on_failure = self.on_failure(id, value, ids, known, here(&["on_failure"]))
                }
                other => match spec {
                    Some(spec) if spec.options.iter().any(|o| o.name == other) => {
                        options.insert(
                            other.to_string(),
                            self.interpolate_value(value, vars, here(&[other])),
                        );
                    }
                    Some(spec) => {
                        let mut allowed: Vec<&str> = STEP_KEYS.to_vec();
                        allowed.extend(spec.options.iter().map(|o| o.name));
                        let hint = match nearest(other, &allowed) {
                            Some(near) => format!(
                                "did you mean `{near}`? allowed here: {}",
                                allowed.join(", ")
                            ),
                            None => format!("allowed here: {}", allowed.join(", ")),
                        };
                        self.error(
                            here(&[other]),
                            Target::Key,
                            format!("unknown key `{other}` in step `{id}` ({})", spec.name),
                            Some(hint),
                        );
                    }
                    // The action is unknown: its options cannot be checked yet.
                    None => {}
                },
            }
        }
        let spec = spec?;
        for e in check_fields(
            &selector,
            spec.selector,
            &["match"],
            &format!("the `match` of {}", spec.name),
        )
        .into_iter()
        .chain(check_fields(
            &options,
            spec.options,
            &[],
            &format!("step `{id}`"),
        )) {
            let mut path = key_path!["steps", id];
            path.extend(e.path.iter().map(|s| PathSegment::from(s.as_str())));
            let target = if e.message.starts_with("unknown key") {
                Target::Key
            } else {
                Target::Value
            };
            self.error(path, target, e.message, e.hint);
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let input = StepInput {
            step: id.to_string(),
            selector,
            options,
        };
        let built = match (spec.build)(&input) {
            Ok(built) => built,
            Err(errors) => {
                for e in errors {
                    let mut path = key_path!["steps", id];
                    path.extend(e.path.iter().map(|s| PathSegment::from(s.as_str())));
                    self.error(path, Target::Value, e.message, e.hint);
                }
                return None;
            }
        };
        Some(PlannedStep {
            id: id.to_string(),
            action: spec.name.to_string(),
            description,
            phase,
            after,
            timeout,
            retry,
            on_failure,
            input,
            built,
            expect,
            uses: std::mem::take(&mut self.used),
        })
    }

    fn retry(
        &mut self,
        value: &toml::Value,
        path: Vec<PathSegment>,
        base: RetryPolicy,
    ) -> Option<RetryPolicy> {
        const KEYS: [&str; 5] = ["attempts", "backoff", "delay", "max-delay", "jitter"];
        if let Some(n) = value.as_integer() {
            return self
                .attempts(n, path)
                .map(|attempts| RetryPolicy { attempts, ..base });
        }
        let Some(table) = value.as_table() else {
            self.error(path, Target::Value, "`retry` takes a number of attempts or a table".into(), Some("write retry = 3, or retry = { attempts = 3, backoff = \"exponential\", delay = \"10s\", max-delay = \"2m\" }".into()));
            return None;
        };
        let mut policy = base;
        for (key, v) in table {
            let mut at = path.clone();
            at.push(PathSegment::from(key.as_str()));
            match key.as_str() {
                "attempts" => match v.as_integer() {
                    Some(n) => policy.attempts = self.attempts(n, at)?,
                    None => self.error(
                        at,
                        Target::Value,
                        "`attempts` must be a whole number".into(),
                        None,
                    ),
                },
                "backoff" => match v.as_str() {
                    Some("exponential") => policy.exponential = true,
                    Some("constant") => policy.exponential = false,
                    _ => self.error(
                        at,
                        Target::Value,
                        "unknown backoff".into(),
                        Some("use \"exponential\" or \"constant\"".into()),
                    ),
                },
                "delay" | "max-delay" | "max_delay" => match v.as_str() {
                    Some(text) => {
                        let d =
                            self.duration(text, at, MAX_RETRY_DELAY, "a delay between attempts")?;
                        if key == "delay" {
                            policy.delay = d;
                        } else {
                            policy.max_delay = d;
                        }
                    }
                    None => self.error(
                        at,
                        Target::Value,
                        format!("`{key}` must be a duration string"),
                        Some("write it like \"10s\"".into()),
                    ),
                },
                "jitter" => match v.as_bool() {
                    Some(b) => policy.jitter = b,
                    None => self.error(
                        at,
                        Target::Value,
                        "`jitter` must be true or false".into(),
                        None,
                    ),
                },
                other => {
                    let hint = match nearest(other, &KEYS) {
                        Some(near) => {
                            format!("did you mean `{near}`? allowed: {}", KEYS.join(", "))
                        }
                        None => format!("allowed: {}", KEYS.join(", ")),
                    };
                    self.error(
                        at,
                        Target::Key,
                        format!("unknown key `{other}` in `retry`"),
                        Some(hint),
                    );
                }
            }
        }
        if policy.max_delay < policy.delay {
            policy.max_delay = policy.delay;
        }
        Some(policy)
    }

    fn attempts(&mut self, n: i64, path: Vec<PathSegment>) -> Option<u32> {
        if (1..=100).contains(&n) {
            Some(n as u32)
        } else {
            self.error(
                path,
                Target::Value,
                format!("{n} attempts"),
                Some("attempts count the first try too: give 1 (no retry) to 100".into()),
            );
            None
        }
    }

    fn on_failure(
        &mut self,
        id: &str,
        value: &toml::Value,
        ids: &[&str],
        known: &HashSet<&str>,
        path: Vec<PathSegment>,
    ) -> Option<FailureHandler> {
        const KEYS: [&str; 3] = ["run", "then", "times"];
        let Some(table) = value.as_table() else {
            self.error(
                path,
                Target::Value,
                "`on_failure` must be a table".into(),
                Some("write on_failure = { run = \"other-step\", then = \"retry\" }".into()),
            );
            return None;
        };
        let mut run = None;
        let mut times = 2;
        for (key, v) in table {
            let mut at = path.clone();
            at.push(PathSegment::from(key.as_str()));
            match (key.as_str(), v) {
                ("run", toml::Value::String(step)) if step == id => {
                    self.error(
                        at,
                        Target::Value,
                        format!("step `{id}` cannot be its own failure handler"),
                        Some(
                            "name another step, e.g. one that removes what blocks this one".into(),
                        ),
                    );
                }
                ("run", toml::Value::String(step)) if known.contains(step.as_str()) => {
                    run = Some(step.clone())
                }
                ("run", toml::Value::String(step)) => {
                    let hint = self
                        .suggest(step, ids)
                        .map(|n| format!("did you mean `{n}`?"));
                    self.error(
                        at,
                        Target::Value,
                        format!("failure handler `{step}` is not a step of this plan"),
                        hint,
                    );
                }
                ("then", toml::Value::String(then)) if then == "retry" => {}
                ("then", _) => self.error(
                    at,
                    Target::Value,
                    "`then` can only be \"retry\"".into(),
                    Some("after the handler runs, the step is tried again".into()),
                ),
                ("times", toml::Value::Integer(n)) if (1..=20).contains(n) => times = *n as u32,
                ("times", _) => self.error(
                    at,
                    Target::Value,
                    "`times` must be a whole number from 1 to 20".into(),
                    None,
                ),
                (other, _) if !KEYS.contains(&other) => self.error(
                    at,
                    Target::Key,
                    format!("unknown key `{other}` in `on_failure`"),
                    Some(format!("allowed: {}", KEYS.join(", "))),
                ),
                _ => self.error(at, Target::Value, format!("`{key}` must be a string"), None),
            }
        }
        if run.is_none() && !table.contains_key("run") {
            self.error(
                path,
                Target::Value,
                "`on_failure` needs `run`".into(),
                Some("name the step to run when this one fails".into()),
            );
        }
        run.map(|run| FailureHandler { run, times })
    }

    fn interpolate_table(
        &mut self,
        table: &toml::Table,
        vars: &BTreeMap<String, String>,
        path: Vec<PathSegment>,
    ) -> toml::Table {
        table
            .iter()
            .map(|(k, v)| {
                let mut at = path.clone();
                at.push(PathSegment::from(k.as_str()));
                (k.clone(), self.interpolate_value(v, vars, at))
            })
            .collect()
    }

    fn interpolate_value(
        &mut self,
        value: &toml::Value,
        vars: &BTreeMap<String, String>,
        path: Vec<PathSegment>,
    ) -> toml::Value {
        match value {
            toml::Value::String(s) => match fill_template(s, |name| {
                let value = vars.get(name)?;
                self.used.insert(name.to_string());
                Some(value.as_str())
            }) {
                Ok(filled) => toml::Value::String(filled),
                Err(message) => {
                    let declared: Vec<&str> = vars.keys().map(String::as_str).collect();
                    self.error(
                        path,
                        Target::Value,
                        message,
                        Some(format!(
                            "declare it under [vars] or pass --var; declared: {}",
                            some_of(&declared)
                        )),
                    );
                    value.clone()
                }
            },
            toml::Value::Array(items) => toml::Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let mut at = path.clone();
                        at.push(PathSegment::Index(i));
                        self.interpolate_value(v, vars, at)
                    })
                    .collect(),
            ),
            toml::Value::Table(t) => toml::Value::Table(self.interpolate_table(t, vars, path)),
            other => other.clone(),
        }
    }
}

fn action_names() -> Vec<&'static str> {
    actions::registry().iter().map(|s| s.name).collect()
}
