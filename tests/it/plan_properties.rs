//! Properties of the plan parser over generated plan text, for a fixed small budget of cases (a
//! few seconds in CI): parsing never panics, and gives either a valid plan or problems that each
//! carry a location in the text; and what the problems print is bounded, however many there are.

use std::path::Path;

use proptest::prelude::*;
use teardown::plan::{self, PlanErrors};

/// Bytes one printed problem takes at most: a message and a hint of 400 characters, the plan's
/// line cut to 160 around the problem, the location and the underline (characters of up to 4
/// bytes each).
const MAX_PER_PROBLEM: usize = 4 * (400 + 400 + 2 * 170) + 300;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures are reported with their minimal input; nothing is written into the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_-]{0,10}",
        Just("a".to_string()),
        Just("b".to_string()),
        "\\PC{0,12}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9*?\\[\\]{}/-]{0,24}",
        Just("{repo}".to_string()),
        Just("{nope}".to_string()),
        "\\PC{0,16}",
    ]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,22}(ns|ms|s|m|h|d|days|w|y)?",
        Just("18446744073709551615s".to_string()),
        Just("300000000000y".to_string()),
        Just("0s".to_string()),
        "\\PC{0,8}",
    ]
}

fn action() -> impl Strategy<Value = String> {
    let names: Vec<String> = teardown::actions::registry()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    prop_oneof![proptest::sample::select(names), ident()]
}

/// One line of a plan: a table header, a key the plan format knows, or noise.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        ident().prop_map(|n| format!("name = \"{n}\"")),
        Just("[vars]".to_string()),
        Just("[defaults]".to_string()),
        Just("[guard]".to_string()),
        Just("[safety]".to_string()),
        Just("[sweep]".to_string()),
        ident().prop_map(|id| format!("[steps.{id}]")),
        action().prop_map(|a| format!("action = \"{a}\"")),
        (ident(), value()).prop_map(|(k, v)| format!("match = {{ {k} = \"{v}\" }}")),
        value().prop_map(|v| format!("match = {{ name = \"{v}\", cluster = \"{v}\" }}")),
        ident().prop_map(|id| format!("after = [\"{id}\"]")),
        duration().prop_map(|d| format!("timeout = \"{d}\"")),
        any::<i64>().prop_map(|n| format!("retry = {n}")),
        (0i64..200, duration())
            .prop_map(|(n, d)| format!("retry = {{ attempts = {n}, max-delay = \"{d}\" }}")),
        ident().prop_map(|id| format!("on_failure = {{ run = \"{id}\" }}")),
        ident().prop_map(|p| format!("phase = \"{p}\"")),
        (ident(), value()).prop_map(|(k, v)| format!("{k} = \"{v}\"")),
        Just("repo = \"demo\"".to_string()),
        "\\PC{0,30}",
    ]
}

/// A valid plan to start from, half the time, so that generated lines reach the later checks
/// (variables filled into a step's selector, its options, durations, the graph) and not only the
/// first error.
const SKELETON: &str = "name = \"p\"\n[vars]\nrepo = \"demo\"\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = { name = \"{repo}\" }";

fn plan_text() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(line(), 0..40)).prop_map(|(skeleton, lines)| {
        let lines = lines.join("\n");
        if skeleton {
            format!("{SKELETON}\n{lines}")
        } else {
            lines
        }
    })
}

/// `--var` overrides: none, a declared one, an undeclared one, or a long glob (stars past about
/// 100,000 made globset panic).
fn overrides() -> impl Strategy<Value = Vec<(String, String)>> {
    prop_oneof![
        Just(vec![]),
        value().prop_map(|v| vec![("repo".to_string(), v)]),
        (ident(), value()).prop_map(|(k, v)| vec![(k, v)]),
        (1usize..3_000).prop_map(|n| vec![("repo".to_string(), "*a".repeat(n))]),
        (100_000usize..140_000).prop_map(|n| vec![("repo".to_string(), "*".repeat(n))]),
    ]
}

/// Checks what a parse returned: problems located inside the text, printed output bounded.
fn check(text: &str, errors: &PlanErrors) -> Result<(), TestCaseError> {
    let path = Path::new("plans/generated.toml");
    prop_assert!(!errors.0.is_empty(), "an error without a problem");
    let lines = text.split('\n').count();
    for d in &errors.0 {
        prop_assert_eq!(&d.file, path);
        prop_assert!(
            d.line >= 1 && d.line <= lines,
            "line {} of {}: {}",
            d.line,
            lines,
            d.message
        );
        prop_assert!(d.column >= 1, "column 0: {}", d.message);
    }
    let shown = errors.to_string();
    let bound = MAX_PER_PROBLEM * errors.0.len().min(PlanErrors::SHOWN) + 200;
    prop_assert!(
        shown.len() <= bound,
        "{} bytes printed for {} problems (at most {bound})",
        shown.len(),
        errors.0.len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(192))]

    #[test]
    fn parsing_never_panics_and_every_problem_is_located(
        text in plan_text(),
        vars in overrides(),
    ) {
        let path = Path::new("plans/generated.toml");
        match plan::parse(path, &text, &vars) {
            Ok(plan) => prop_assert!(!plan.dag.is_empty()),
            Err(errors) => check(&text, &errors)?,
        }
        // The sweep's reading of the same text (it parses the plan, then its [sweep] section).
        if let Err(errors) = teardown::sweep::SweepPlan::parse(path, &text, &vars) {
            check(&text, &errors)?;
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn any_variable_value_never_panics(vars in overrides()) {
        // The skeleton's step takes `repo` as a name pattern: each value reaches the glob reader.
        let path = Path::new("plans/generated.toml");
        if let Err(errors) = plan::parse(path, SKELETON, &vars) {
            check(SKELETON, &errors)?;
        }
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn many_broken_steps_print_bounded_output(steps in 50usize..600, seed in any::<u32>()) {
        let mut text = String::from("name = \"big\"\n");
        for i in 0..steps {
            text.push_str(&format!(
                "[steps.s{i}]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\" }}\nafter = [\"gone-{}\"]\n",
                seed.wrapping_add(i as u32)
            ));
        }
        let path = Path::new("plans/generated.toml");
        let errors = plan::parse(path, &text, &[]).err().expect("broken steps");
        prop_assert_eq!(errors.0.len(), steps);
        check(&text, &errors)?;
    }
}
