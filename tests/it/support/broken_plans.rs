//! The corpus of broken plans: every plan the tests show `teardown validate` refusing, in one
//! place. The tests of each mistake (`plan.rs`, `lookups.rs`, `cli.rs`) take their text from here
//! by id, and `plan_schema.rs` checks that the plan schema refuses each of them too, except the
//! ones listed as [`Schema::ValidatorOnly`], each with why a JSON Schema cannot see it.

/// What the plan schema says of a broken plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// The schema refuses it (as the validator does).
    Refuses,
    /// Only the validator can see this mistake; the reason says why.
    ValidatorOnly(&'static str),
}

/// One broken plan.
pub struct Broken {
    /// What the mistake is, for the tests that name it.
    pub id: &'static str,
    /// The plan's text.
    pub text: String,
    /// `--var` overrides it is validated with.
    pub vars: Vec<(String, String)>,
    /// What the schema says of it.
    pub schema: Schema,
}

/// The header most cases start from: a name and one variable.
pub const HEADER: &str = r#"name = "test"

[vars]
repo = "demo-repo"
"#;

/// The base of the `[lookup]` cases: one required variable.
pub const LOOKUP_BASE: &str = r#"name = "t"

[vars]
main_stack = ""
"#;

/// The step of the `[lookup]` cases, which uses the looked-up `cluster`.
pub const LOOKUP_STEP: &str = r#"
[steps.delete-cluster]
action = "ecs.delete-cluster"
match = { name = "{cluster}" }
expect = "one"
"#;

const GRAPH: &str = "the steps' graph is not a property of one value: a schema cannot tell whether an `after` names a step of the plan, or whether the steps wait for each other in a cycle";
const VARIABLES: &str = "a `{name}` is a name in a string to a schema: whether it is declared under [vars] or [lookup] is known only by reading the whole plan";
const LIMITS: &str = "the schema checks a duration's form; its size (a step's timeout at most 7 days, a retry delay at most 24 hours) is the validator's";
const GLOBS: &str = "whether a glob compiles (an unclosed `[`) is globset's to say; the schema checks a pattern's length only";
const FROM_VAR: &str =
    "the mistake comes with --var on the command line, not from the file the schema reads";

fn one_step(extra: &str) -> String {
    format!(
        "{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\" }}\n{extra}"
    )
}

fn cycle() -> String {
    let step = |id: &str, after: &str| {
        format!("\n[steps.{id}]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"{id}\" }}\nafter = [\"{after}\"]\n")
    };
    format!(
        "{HEADER}{}{}{}",
        step("a", "c"),
        step("b", "a"),
        step("c", "b")
    )
}

fn thousands_of_broken_steps() -> String {
    let mut text = String::from("name = \"big\"\n");
    for i in 0..2_000 {
        text.push_str(&format!(
            "[steps.step-{i}]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\" }}\nafter = [\"missing-{i}\"]\nbogus = 1\n"
        ));
    }
    text
}

fn lookup(entry: &str) -> String {
    format!("{LOOKUP_BASE}\n[lookup]\n{entry}\n{LOOKUP_STEP}")
}

/// Every broken plan of the tests.
pub fn corpus() -> Vec<Broken> {
    use Schema::{Refuses, ValidatorOnly};
    let case = |id, text: String, schema| Broken {
        id,
        text,
        vars: Vec::new(),
        schema,
    };
    let glob = "*".repeat(130_000);
    let mut cases = vec![
        // tests/it/plan.rs
        case(
            "toml-syntax",
            "name = \"x\"\n[steps.a]\naction = \"ecr.delete-repository\n".into(),
            Refuses,
        ),
        case(
            "duplicate-step-id",
            format!("{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\" }}\n\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"y\" }}\n"),
            Refuses,
        ),
        case("unknown-top-level-key", "name = \"x\"\nstepz = 1\n".into(), Refuses),
        case("unknown-step-key", one_step("forse = true\n"), Refuses),
        case("description-not-a-string", one_step("description = 3\n"), Refuses),
        case(
            "unknown-action",
            format!("{HEADER}\n[steps.a]\naction = \"ecr.delete-repositry\"\nmatch = {{ name = \"x\" }}\n"),
            Refuses,
        ),
        case(
            "unknown-step-in-after",
            format!("{HEADER}\n[steps.first]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\" }}\n\n[steps.second]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"y\" }}\nafter = [\"frist\"]\n"),
            ValidatorOnly(GRAPH),
        ),
        case("cycle", cycle(), ValidatorOnly(GRAPH)),
        case("bad-duration", one_step("timeout = \"ten minutes\"\n"), Refuses),
        case(
            "bad-duration-in-match",
            format!("{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\", older_than = \"1 fortnight\" }}\n"),
            Refuses,
        ),
        case(
            "unknown-variable",
            format!("{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"{{repository}}\" }}\n"),
            ValidatorOnly(VARIABLES),
        ),
        case(
            "bad-glob",
            format!("{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"demo-[abc\" }}\n"),
            ValidatorOnly(GLOBS),
        ),
        case(
            "missing-required-match-key",
            format!("{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ tags = {{ Workshop = \"x\" }} }}\n"),
            Refuses,
        ),
        case(
            "several-problems",
            format!("{HEADER}\n[steps.a]\naction = \"nope\"\n\n[steps.b]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\" }}\ntimeout = \"soon\"\n"),
            Refuses,
        ),
        case("timeout-300000000000y", one_step("timeout = \"300000000000y\"\n"), ValidatorOnly(LIMITS)),
        case(
            "timeout-u64-max-seconds",
            one_step("timeout = \"18446744073709551615s\"\n"),
            ValidatorOnly(LIMITS),
        ),
        case("timeout-8days", one_step("timeout = \"8days\"\n"), ValidatorOnly(LIMITS)),
        case(
            "default-timeout-too-long",
            format!("{HEADER}\n[defaults]\ntimeout = \"18446744073709551615s\"\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\" }}\n"),
            ValidatorOnly(LIMITS),
        ),
        case(
            "retry-delay-too-long",
            one_step("retry = { attempts = 3, max-delay = \"25h\" }\n"),
            ValidatorOnly(LIMITS),
        ),
        Broken {
            id: "over-long-glob-from-var",
            text: format!("{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"{{repo}}\" }}\n"),
            vars: vec![("repo".into(), glob.clone())],
            schema: ValidatorOnly(FROM_VAR),
        },
        case(
            "over-long-glob",
            format!("{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"{glob}\" }}\n"),
            Refuses,
        ),
        Broken {
            id: "override-of-undeclared-variable",
            text: one_step(""),
            vars: vec![("rpo".into(), "v".into())],
            schema: ValidatorOnly(FROM_VAR),
        },
        case("thousands-of-broken-steps", thousands_of_broken_steps(), Refuses),
        case(
            "very-long-line",
            format!("{HEADER}\n[steps.a]\naction = \"ecr.delete-repository\"\nmatch = {{ name = \"x\", bogus = \"{}\" }}\n", "x".repeat(100_000)),
            Refuses,
        ),
        // tests/it/lookups.rs
        case(
            "unknown-lookup",
            lookup("cluster = { from = \"stack-outputs\", stack = \"{main_stack}\", key = \"K\" }"),
            Refuses,
        ),
        case(
            "lookup-without-its-key",
            lookup("cluster = { from = \"stack-output\", stack = \"{main_stack}\" }"),
            Refuses,
        ),
        case(
            "lookup-unknown-variable",
            lookup("cluster = { from = \"stack-output\", stack = \"{main_stak}\", key = \"K\" }"),
            ValidatorOnly(VARIABLES),
        ),
        case(
            "lookup-unknown-key",
            lookup("cluster = { from = \"stack-output\", stack = \"{main_stack}\", key = \"K\", region = \"x\" }"),
            Refuses,
        ),
        case(
            "lookup-cycle",
            format!("{LOOKUP_BASE}\n[lookup]\ncluster = {{ from = \"stack-output\", stack = \"{{other}}\", key = \"K\" }}\nother = {{ from = \"stack-output\", stack = \"{{cluster}}\", key = \"K\" }}\n{LOOKUP_STEP}"),
            ValidatorOnly(VARIABLES),
        ),
        case(
            "lookup-and-var-of-one-name",
            format!("name = \"t\"\n[vars]\ncluster = \"x\"\n[lookup]\ncluster = {{ from = \"stack-output\", stack = \"s\", key = \"K\" }}\n{LOOKUP_STEP}"),
            ValidatorOnly("a name under both [vars] and [lookup] is two valid tables to a schema (draft 7 cannot compare the keys of two objects)"),
        ),
        case(
            "unknown-expect",
            format!("{LOOKUP_BASE}\n[lookup]\ncluster = {{ from = \"stack-output\", stack = \"{{main_stack}}\", key = \"K\" }}\n{}", LOOKUP_STEP.replace("\"one\"", "\"two\"")),
            Refuses,
        ),
        // tests/it/actions_logs.rs
        case(
            "glob-in-log-group-names",
            "name = \"lambda-logs\"\n\n[steps.delete-lambda-logs]\naction = \"logs.delete-log-groups\"\n\
             match = { names = [\"/aws/lambda/*\"] }\n"
                .into(),
            ValidatorOnly("that each entry of `names` is a whole log group name is the action's own check (`check_names`), not data of its spec"),
        ),
        // The plan form of tests/it/actions_cloudformation.rs and actions_ec2.rs, which call
        // `build` directly: the one-of rules.
        case(
            "stack-match-without-name-or-tags",
            "name = \"x\"\n[steps.s]\naction = \"cloudformation.delete-stack\"\nmatch = { older_than = \"1d\" }\n".into(),
            Refuses,
        ),
        case(
            "interfaces-without-a-network",
            "name = \"x\"\n[steps.s]\naction = \"ec2.delete-network-interfaces\"\nmatch = { description = \"AWS Lambda VPC ENI*\" }\n".into(),
            Refuses,
        ),
        case(
            "log-groups-by-name-and-names",
            "name = \"x\"\n[steps.s]\naction = \"logs.delete-log-groups\"\nmatch = { name = \"/aws/lambda/a\", names = [\"/aws/lambda/b\"] }\n".into(),
            Refuses,
        ),
        case(
            "secret-window-and-force",
            "name = \"x\"\n[steps.s]\naction = \"secretsmanager.delete-secret\"\nmatch = { name = \"s\" }\nrecovery_window_days = 7\nforce_delete_without_recovery = true\n".into(),
            Refuses,
        ),
        // tests/it/cli.rs
        case(
            "unknown-action-in-validate",
            "name = \"x\"\n\n[steps.a]\naction = \"ecs.stop-task\"\nmatch = { cluster = \"c\" }\n".into(),
            Refuses,
        ),
        case(
            "sweep-without-bind",
            "name = \"swept\"\n[steps.delete-repos]\naction = \"ecr.delete-repository\"\nmatch = { name = \"lab-*\" }\n[sweep]\nfind = { stack = \"Lab-*\" }\n".into(),
            Refuses,
        ),
    ];
    cases.sort_by_key(|c| c.id);
    for pair in cases.windows(2) {
        assert_ne!(pair[0].id, pair[1].id, "two broken plans with one id");
    }
    cases
}

/// The text of the broken plan `id`.
pub fn text(id: &str) -> String {
    corpus()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no broken plan `{id}` in support::broken_plans"))
        .text
}
