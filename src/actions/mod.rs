//! The AWS actions: one folder per service, one file per resource kind, one shared shape.
//!
//! Every action does three things, in this order, and nothing else:
//! 1. [`Action::find`]: read-only calls that resolve the step's selector into
//!    [`Resource`](crate::resource::Resource)s;
//! 2. [`Action::act`]: one mutating call (or a few) per resource found, and only on those;
//! 3. [`Action::still_pending`]: read-only polling until the change has finished (tasks STOPPED,
//!    stack DELETE_COMPLETE...).
//!
//! - `action.rs`: the contract ([`Action`], [`Acted`], [`Pending`], [`PollPolicy`], [`ActionSpec`]);
//! - `step.rs`: [`ActionStep`], which turns an action into an engine
//!   [`Task`](crate::engine::Task): it runs the three parts, skips protected resources, stops after
//!   `find` in a dry run, polls with backoff against the step's deadline and reports progress;
//! - `selector.rs`, `expect.rs`: what a step's `match` and `expect` accept;
//! - `<service>/`: one file per action (`ecs/stop_tasks.rs` holds `ecs.stop-tasks`), and in the
//!   folder's `mod.rs` what the service's actions share.
//!
//! A new resource kind on an existing service is one new file, its `mod` and `pub use` lines in the
//! service's `mod.rs`, one line in [`registry`] and a row in the README's Actions table. The tests
//! below read the source files and fail until the registry has every action defined under
//! `<service>/` (each in a file named after it) and the README lists every registered one.

mod action;
pub mod cloudformation;
pub mod describe;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod events;
mod expect;
pub mod logs;
pub mod secretsmanager;
mod selector;
pub mod sns;
mod step;

pub use self::action::{
    Acted, Action, ActionSpec, BuildAction, Pending, PollPolicy, Rule, DEFAULT_PROTECT_TAG,
};
pub use self::expect::{Expect, EXPECT_FORMS};
pub use self::selector::{
    check_fields, nearest, some_of, FieldKind, FieldSpec, InputError, Pattern, ResourceFilter,
    StepInput, COMMON_FILTER_FIELDS,
};
pub use self::step::{step_error, ActionStep, HandOver, HAND_OVER_FRESH};

/// Every action teardown knows. Add a line here for a new one.
pub fn registry() -> Vec<&'static ActionSpec> {
    vec![
        &ecs::STOP_TASKS,
        &ecs::DELETE_SERVICES,
        &ecs::DEREGISTER_TASK_DEFINITIONS,
        &ecs::DELETE_CLUSTER,
        &ecr::DELETE_REPOSITORY,
        &secretsmanager::CANCEL_ROTATION,
        &secretsmanager::DELETE_SECRET,
        &cloudformation::DELETE_STACK,
        &ec2::DELETE_NETWORK_INTERFACES,
        &secretsmanager::ROTATE_SECRET,
        &ecs::FORCE_NEW_DEPLOYMENT,
        &events::DELETE_RULE,
        &sns::DELETE_TOPIC,
        &logs::DELETE_LOG_GROUPS,
    ]
}

/// Looks up an action by its plan name.
pub fn lookup(name: &str) -> Option<&'static ActionSpec> {
    registry().into_iter().find(|spec| spec.name == name)
}

/// A step input from the TOML of its `match` table and of its options: for the actions' unit
/// tests, which build actions from their specs as a plan would.
#[cfg(test)]
pub(crate) fn test_input(selector: &str, options: &str) -> StepInput {
    StepInput {
        step: "t".into(),
        selector: toml::from_str(selector).expect("selector TOML"),
        options: toml::from_str(options).expect("options TOML"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// The README's table of actions (under `## Actions`) has one row per registered action, no
    /// more, no fewer: a new action cannot be left out of it.
    #[test]
    fn the_readme_lists_every_action() {
        let readme = include_str!("../../README.md");
        let (_, section) = readme
            .split_once("\n## Actions\n")
            .expect("README has an Actions section");
        let listed: BTreeSet<&str> = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|row| row.strip_prefix("| `")?.split_once('`').map(|(n, _)| n))
            .collect();
        let registered: BTreeSet<&str> = super::registry().iter().map(|s| s.name).collect();
        assert_eq!(listed, registered);
    }

    /// The README's Actions table names, in its `matches` column, exactly the keys each action's
    /// `match` accepts: no key is promised to every action (`ecs.stop-tasks` takes no `tags`).
    #[test]
    fn the_readme_names_each_actions_match_keys() {
        let readme = include_str!("../../README.md");
        let (_, section) = readme
            .split_once("\n## Actions\n")
            .expect("README has an Actions section");
        let rows: BTreeMap<&str, BTreeSet<&str>> = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|row| {
                let mut cells = row.split(" | ");
                let name = cells.next()?.strip_prefix("| `")?.strip_suffix('`')?;
                let keys = cells
                    .next()?
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .filter(|k| !k.contains(' '))
                    .collect();
                Some((name, keys))
            })
            .collect();
        for spec in super::registry() {
            let accepted: BTreeSet<&str> = spec.selector.iter().map(|f| f.name).collect();
            assert_eq!(
                rows.get(spec.name),
                Some(&accepted),
                "README's `matches` for {}",
                spec.name
            );
        }
    }

    /// The plan names of the `ActionSpec`s a source file defines (`pub static X: ActionSpec =
    /// ActionSpec { name: "ecs.stop-tasks", ...`), read from the text.
    fn specs_defined_in(source: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut lines = source.lines();
        while let Some(line) = lines.next() {
            let line = line.trim_start();
            let item = ["pub ", "pub(crate) ", "pub(super) "]
                .iter()
                .find_map(|v| line.strip_prefix(v))
                .unwrap_or(line);
            let defines = (item.starts_with("static ") || item.starts_with("const "))
                && item.contains(": ActionSpec =");
            if !defines {
                continue;
            }
            let name = lines.by_ref().find_map(|l| {
                let rest = l.trim_start().strip_prefix("name: \"")?;
                rest.split_once('"').map(|(name, _)| name.to_string())
            });
            names.push(name.unwrap_or_else(|| panic!("no `name: \"...\"` after `{line}`")));
        }
        names
    }

    fn rust_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        files.sort();
        files
    }

    /// Every action lives in `src/actions/<service>/<action>.rs`, one a file, named after it
    /// (`ecs.stop-tasks` in `ecs/stop_tasks.rs`), and is in [`super::registry`]: a new action
    /// cannot be left out of the registry, nor put in the wrong service's folder.
    #[test]
    fn every_action_file_is_registered_under_its_service() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/actions");
        let mut defined: BTreeMap<String, PathBuf> = BTreeMap::new();
        for file in rust_files(&root) {
            let source = std::fs::read_to_string(&file).expect("readable source");
            assert_eq!(
                specs_defined_in(&source),
                Vec::<String>::new(),
                "{}: an action goes in its service's folder",
                file.display()
            );
        }
        let mut services: Vec<PathBuf> = std::fs::read_dir(&root)
            .expect("src/actions")
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.is_dir())
            .collect();
        services.sort();
        assert!(
            !services.is_empty(),
            "no service folders under {}",
            root.display()
        );
        for folder in services {
            let service = folder
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 folder name");
            for file in rust_files(&folder) {
                let source = std::fs::read_to_string(&file).expect("readable source");
                let names = specs_defined_in(&source);
                let stem = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                if stem == "mod" {
                    assert!(
                        names.is_empty(),
                        "{service}/mod.rs defines {names:?}: each action has a file of its own"
                    );
                    continue;
                }
                let [name] = names.as_slice() else {
                    panic!("{service}/{stem}.rs defines {names:?}: one action per file");
                };
                let Some(kind) = name.strip_prefix(&format!("{service}.")) else {
                    panic!("{name} is in {service}/: its name must start with `{service}.`");
                };
                assert_eq!(
                    kind.replace('-', "_"),
                    stem,
                    "{name} is in {service}/{stem}.rs: the file is named after the action"
                );
                let before = defined.insert(name.clone(), file.clone());
                assert!(before.is_none(), "{name} is defined twice");
            }
        }
        let registry = super::registry();
        let registered: BTreeSet<&str> = registry.iter().map(|s| s.name).collect();
        assert_eq!(
            registered.len(),
            registry.len(),
            "an action registered twice"
        );
        let defined: BTreeSet<&str> = defined.keys().map(String::as_str).collect();
        let unregistered: Vec<&&str> = defined.difference(&registered).collect();
        let undefined: Vec<&&str> = registered.difference(&defined).collect();
        assert!(
            unregistered.is_empty() && undefined.is_empty(),
            "defined under src/actions/<service>/ but not in registry(): {unregistered:?}; \
             in registry() but in no src/actions/<service>/<action>.rs: {undefined:?}"
        );
        for spec in registry {
            let service = spec.name.split_once('.').map_or(spec.name, |(s, _)| s);
            assert!(
                root.join(service).is_dir(),
                "{}: no src/actions/{service}/ folder",
                spec.name
            );
        }
    }

    /// A value of each kind that passes `check_fields`, for building steps from the specs alone.
    fn sample(kind: super::FieldKind) -> toml::Value {
        use super::FieldKind;
        match kind {
            FieldKind::Pattern | FieldKind::Text => "x".into(),
            FieldKind::List => toml::Value::Array(vec!["x".into()]),
            FieldKind::Tags => toml::Value::Table(toml::toml! { K = "v" }),
            FieldKind::Duration => "1h".into(),
            FieldKind::Bool => true.into(),
            FieldKind::Integer { min, .. } => min.into(),
        }
    }

    /// Whether a step with this `match` and these options passes what the plan validator runs:
    /// the field checks, then the action's own `build`.
    fn accepted(spec: &super::ActionSpec, selector: &toml::Table, options: &toml::Table) -> bool {
        let input = super::StepInput {
            step: "t".into(),
            selector: selector.clone(),
            options: options.clone(),
        };
        super::check_fields(selector, spec.selector, &["match"], "match").is_empty()
            && super::check_fields(options, spec.options, &[], "step").is_empty()
            && (spec.build)(&input).is_ok()
    }

    /// What the data of a spec says of a step that gives exactly these keys: its required `match`
    /// keys, its one-of rules and its not-both rules (every flag given as `true`).
    fn data_allows(
        spec: &super::ActionSpec,
        selector: &toml::Table,
        options: &toml::Table,
    ) -> bool {
        use super::Rule;
        spec.selector
            .iter()
            .filter(|f| f.required)
            .all(|f| selector.contains_key(f.name))
            && spec.rules.iter().all(|rule| match *rule {
                Rule::MatchNeedsOneOf(keys) => keys.iter().any(|k| selector.contains_key(*k)),
                Rule::MatchNotBoth(a, b) => !(selector.contains_key(a) && selector.contains_key(b)),
                Rule::OptionsNotBoth(a, b) => !(options.contains_key(a) && options.contains_key(b)),
            })
    }

    /// The rules written as data in each `ActionSpec` (for the schema and `teardown actions`) are
    /// exactly what the validator and the action's `build` enforce: for every combination of the
    /// action's keys, both accept it or both refuse it. A rule that `build` enforces and the data
    /// leaves out fails here, and so does a rule in the data that nothing enforces.
    #[test]
    fn every_rule_in_the_data_is_the_one_build_enforces() {
        for spec in super::registry() {
            let keys: Vec<&super::FieldSpec> = spec.selector.iter().chain(spec.options).collect();
            assert!(
                keys.len() < 12,
                "{}: too many keys to try every combination",
                spec.name
            );
            for mask in 0u32..(1 << keys.len()) {
                let (mut selector, mut options) = (toml::Table::new(), toml::Table::new());
                for (i, field) in keys.iter().enumerate() {
                    if mask & (1 << i) == 0 {
                        continue;
                    }
                    let table = if i < spec.selector.len() {
                        &mut selector
                    } else {
                        &mut options
                    };
                    table.insert(field.name.to_string(), sample(field.kind));
                }
                assert_eq!(
                    accepted(spec, &selector, &options),
                    data_allows(spec, &selector, &options),
                    "{}: match = {selector}, options = {options}: the validator and the spec's rules disagree",
                    spec.name
                );
            }
        }
    }

    /// Every default an action declares is a valid value of its key.
    #[test]
    fn every_declared_default_is_a_valid_value() {
        for spec in super::registry() {
            for field in spec.selector.iter().chain(spec.options) {
                let Some(text) = field.default else { continue };
                let table: toml::Table = toml::from_str(&format!("{} = {text}", field.name))
                    .unwrap_or_else(|e| panic!("{} {}: {e}", spec.name, field.name));
                let errors = super::check_fields(&table, std::slice::from_ref(field), &[], "t");
                assert!(
                    errors.is_empty(),
                    "{} {}: {errors:?}",
                    spec.name,
                    field.name
                );
            }
        }
    }

    #[test]
    fn a_spec_is_read_with_its_plan_name() {
        let source = "//! `x.y`\n/// doc\npub static DO_IT: ActionSpec = ActionSpec {\n    name: \"x.do-it\",\n    summary: \"...\",\n};\nconst FIELD: FieldSpec = FieldSpec {\n    name: \"cluster\",\n};\n";
        assert_eq!(specs_defined_in(source), vec!["x.do-it"]);
        assert_eq!(
            specs_defined_in("static SECRET: ActionSpec = ActionSpec {\n    name: \"x.hidden\",\n"),
            vec!["x.hidden"]
        );
        assert!(specs_defined_in("pub use self::stop_tasks::STOP_TASKS;\n").is_empty());
    }
}
