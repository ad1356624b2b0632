//! The module graph of `src/`: arrows only point down, and no files import each other in a circle.
//!
//! Read from the source text (every `crate::`, `super::` and `self::` path outside comments), so
//! that a new import that points up fails here, with the file and the arrow, before review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;

/// The top-level modules from the bottom up: a module may use only modules before it. The engine
/// layer knows nothing of AWS; the command layer (`cli`, the `sweep` command) is used by nothing.
const LAYERS: &[&str] = &[
    "util", "resource", "lock", "run_dir", "event", "graph", "engine", // generic
    "aws", "actions", "plan", // AWS and plans
    "resolve", "journal", "preview", "guard", "outcome",
    "init", // a run's parts; init: a plan from stacks
    "render", "settings", // listeners and shared flags
    "session", "sweep", "cli", // commands
];

/// `#[macro_export]` macros live at the crate root, but belong to a module.
const MACROS: &[(&str, &str)] = &[("key_path", "plan")];

struct SourceFile {
    /// The module path, e.g. `["sweep", "discover"]` (`mod.rs` names its folder).
    module: Vec<String>,
    path: PathBuf,
    /// The module paths it names (`crate::a::b`, resolved `super::`/`self::`), as written.
    names: BTreeSet<Vec<String>>,
}

fn source_files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let mut module: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                module.clear();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let names = paths_named(&module, &text);
            files.push(SourceFile {
                module,
                path,
                names,
            });
        }
    }
    files
}

/// Every module path the text names, resolved against `module`.
fn paths_named(module: &[String], text: &str) -> BTreeSet<Vec<String>> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find(['c', 's']) {
            let tail = &rest[i..];
            let boundary = rest[..i]
                .chars()
                .last()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
            let (base, after): (Vec<String>, &str) = if !boundary {
                (Vec::new(), "")
            } else if let Some(after) = tail.strip_prefix("crate::") {
                (Vec::new(), after)
            } else if let Some(after) = tail.strip_prefix("super::") {
                (module[..module.len().saturating_sub(1)].to_vec(), after)
            } else if let Some(after) = tail.strip_prefix("self::") {
                (module.to_vec(), after)
            } else {
                (Vec::new(), "")
            };
            if after.is_empty() {
                rest = &tail[1..];
                continue;
            }
            let mut path = base;
            let mut segments = after;
            // `super::super::x`
            while let Some(more) = segments.strip_prefix("super::") {
                path.pop();
                segments = more;
            }
            for segment in segments.split("::") {
                let word: String = segment
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if word.is_empty() || word.chars().next().is_some_and(char::is_uppercase) {
                    break;
                }
                path.push(word.clone());
                if word.len() != segment.len() {
                    break;
                }
            }
            if !path.is_empty() {
                names.insert(path);
            }
            rest = &tail[1..];
        }
    }
    names
}

/// The longest known module that `name` starts with.
fn module_of(name: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=name.len())
        .rev()
        .map(|n| name[..n].to_vec())
        .find(|m| modules.contains(m))
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let files = source_files();
    let rank = |top: &str| LAYERS.iter().position(|l| *l == top);
    let mut arrows_up = Vec::new();
    for file in &files {
        let Some(from) = file.module.first() else {
            continue; // lib.rs and main.rs sit on top
        };
        let Some(from_rank) = rank(from) else {
            panic!(
                "{} is a top-level module this test does not know: add `{from}` to LAYERS at its floor",
                file.path.display()
            );
        };
        for name in &file.names {
            let top = MACROS
                .iter()
                .find(|(m, _)| *m == name[0])
                .map_or(name[0].as_str(), |(_, owner)| owner);
            let Some(to_rank) = rank(top) else { continue };
            if to_rank > from_rank {
                arrows_up.push(format!(
                    "{} ({from}) uses crate::{} ({top} is above {from})",
                    file.path.display(),
                    name.join("::")
                ));
            }
        }
    }
    assert!(
        arrows_up.is_empty(),
        "arrows pointing up:\n{}",
        arrows_up.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let files = source_files();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut graph = DiGraph::<Vec<String>, ()>::new();
    let index: BTreeMap<Vec<String>, _> = modules
        .iter()
        .map(|m| (m.clone(), graph.add_node(m.clone())))
        .collect();
    for file in &files {
        for name in &file.names {
            let Some(to) = module_of(name, &modules) else {
                continue;
            };
            // A folder's `mod.rs` declaring or re-exporting its own files is not a dependency on
            // them in the sense that matters here; a file using its folder's shared items is.
            if to == file.module || to.starts_with(&file.module) {
                continue;
            }
            graph.update_edge(index[&file.module], index[&to], ());
        }
    }
    let circles: Vec<String> = tarjan_scc(&graph)
        .into_iter()
        .filter(|scc| scc.len() > 1)
        .map(|scc| {
            scc.iter()
                .map(|n| graph[*n].join("::"))
                .collect::<Vec<_>>()
                .join(" <-> ")
        })
        .collect();
    assert!(
        circles.is_empty(),
        "modules that import each other:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_reader_resolves_relative_paths() {
    let module = vec!["sweep".to_string(), "discover".to_string()];
    let names = paths_named(
        &module,
        "use super::plan::{Find};\nuse crate::aws::Aws; // crate::cli::x\nlet a = self::inner::f();\nuse super::super::graph::Dag;",
    );
    let expected: BTreeSet<Vec<String>> = [
        vec!["sweep", "plan"],
        vec!["aws"],
        vec!["sweep", "discover", "inner", "f"],
        vec!["graph"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    assert_eq!(names, expected);
}

/// `cargo build` and `cargo test` resolve the same features for every crate the program uses, so
/// that neither rebuilds the AWS SDK after the other: a test-only dependency that turns on a
/// feature of a shared crate (the unifying lines in Cargo.toml's `[dependencies]`) fails here.
#[test]
fn cargo_build_and_cargo_test_resolve_the_same_features() {
    let tree = |edges: &str| -> std::collections::BTreeSet<String> {
        let output = std::process::Command::new(env!("CARGO"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["tree", "--locked", "--prefix", "none", "-e", edges])
            .output()
            .expect("run cargo tree");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let feature = |line: &String| -> Option<(String, String)> {
        let (krate, rest) = line.split_once(" feature \"")?;
        Some((krate.to_string(), rest.split('"').next()?.to_string()))
    };
    let program_crates: BTreeSet<String> = tree("normal")
        .iter()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let of_build: BTreeSet<(String, String)> =
        tree("features,normal").iter().filter_map(feature).collect();
    let only_in_tests: Vec<String> = tree("features")
        .iter()
        .filter_map(feature)
        .filter(|f| program_crates.contains(&f.0) && !of_build.contains(f))
        .map(|(krate, feature)| format!("{krate} \"{feature}\""))
        .collect();
    assert!(
        only_in_tests.is_empty(),
        "features that only the tests' dependencies turn on, so `cargo build` and `cargo test` would each build these crates (and the SDK crates above them) their own way: add them to the unifying lines in Cargo.toml\n{}",
        only_in_tests.join("\n")
    );
}
