//! The command line as a person meets it: each command's `--help` and its examples, only the
//! flags a command uses, shell completions and the man page, and `--profile` / `--endpoint-url`
//! (a profile that does not exist is named, with what to do).

use std::path::Path;
use std::process::Output;

use clap::{CommandFactory, Parser};
use teardown::cli::Cli;

use crate::support;

fn teardown(args: &[&str], env: &[(String, String)]) -> Output {
    support::teardown_command(env, args)
        .output()
        .expect("run teardown")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The example lines at the end of a help text (after its last "Examples:").
fn examples(help: &str) -> Vec<String> {
    let (_, tail) = help
        .rsplit_once("Examples:\n")
        .unwrap_or_else(|| panic!("no examples at the end of:\n{help}"));
    tail.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_commands_help_ends_with_two_or_three_examples_that_are_real_commands() {
    let subcommands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|name| name != "help")
        .collect();
    assert!(subcommands.len() >= 11, "{subcommands:?}");
    let top = text(&teardown(&["--help"], &[]).stdout);
    assert!(
        (2..=3).contains(&examples(&top).len()),
        "teardown --help:\n{top}"
    );
    for name in &subcommands {
        let out = teardown(&[name, "--help"], &[]);
        assert!(out.status.success(), "{name} --help: {}", text(&out.stderr));
        let help = text(&out.stdout);
        let lines = examples(&help);
        assert!(
            (2..=3).contains(&lines.len()),
            "{name} --help ends with {} examples:\n{help}",
            lines.len()
        );
        assert!(
            help.trim_end().ends_with(lines.last().unwrap().as_str()),
            "the examples are not the end of {name} --help:\n{help}"
        );
        for line in &lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[0], "teardown", "{name}: {line}");
            assert_eq!(
                words[1], name,
                "an example of {name} runs another command: {line}"
            );
            // Each one is a command the parser accepts as it is written.
            match Cli::try_parse_from(&words) {
                Ok(_) => {}
                Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {}
                Err(e) => panic!("{name}: the example `{line}` does not parse:\n{e}"),
            }
            // The ones that need no AWS account run, from the repository, and succeed.
            if ["validate", "graph", "permissions", "actions", "completions"]
                .contains(&name.as_str())
                || line == "teardown man"
                || line == "teardown schema"
            {
                let out = teardown(&words[1..], &[]);
                assert!(
                    out.status.success(),
                    "`{line}` failed: {}",
                    text(&out.stderr)
                );
                assert!(!out.stdout.is_empty(), "`{line}` printed nothing");
            }
        }
    }
}

#[test]
fn run_and_preview_each_list_only_their_own_flags() {
    let run = text(&teardown(&["run", "--help"], &[]).stdout);
    let preview = text(&teardown(&["preview", "--help"], &[]).stdout);
    for flag in ["--save", "--detailed-exitcode"] {
        assert!(!run.contains(flag), "run --help lists {flag}:\n{run}");
        assert!(
            preview.contains(flag),
            "preview --help lacks {flag}:\n{preview}"
        );
    }
    // A preview never asks and keeps no records.
    for flag in ["--yes", "--runs-dir"] {
        assert!(run.contains(flag), "run --help lacks {flag}:\n{run}");
        assert!(
            !preview.contains(flag),
            "preview --help lists {flag}:\n{preview}"
        );
    }
    for help in [&run, &preview] {
        for flag in ["--profile", "--endpoint-url", "--region"] {
            assert!(help.contains(flag), "{flag} missing:\n{help}");
        }
    }
    // What a command does not have is a usage error (exit 2), before anything else.
    let out = teardown(
        &[
            "run",
            "plans/secrets-manager-fargate-workshop.toml",
            "--save",
            "x.json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--save"),
        "{}",
        text(&out.stderr)
    );
    // Every command that calls AWS takes --profile and --endpoint-url.
    for command in ["run", "preview", "resume", "apply", "sweep"] {
        let help = text(&teardown(&[command, "--help"], &[]).stdout);
        for flag in ["--profile <NAME>", "--endpoint-url <URL>"] {
            assert!(
                help.contains(flag),
                "{command} --help lacks {flag}:\n{help}"
            );
        }
    }
}

#[test]
fn completions_for_each_shell_name_the_real_commands_and_flags() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = teardown(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for word in [
            "preview",
            "resume",
            "sweep",
            "permissions",
            "profile",
            "endpoint-url",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    // The bash script is valid bash.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("teardown.bash");
    std::fs::write(&file, teardown(&["completions", "bash"], &[]).stdout).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    // An unknown shell is a usage error that lists the ones there are.
    let out = teardown(&["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("powershell"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_man_page_describes_the_commands_and_writes_one_page_per_command() {
    let out = teardown(&["man"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH teardown 1"), "{page}");
    for command in ["preview", "resume", "apply", "sweep", "completions"] {
        assert!(page.contains(command), "the man page lacks {command}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = teardown(&["man", "--dir", dir.path().to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for file in [
        "teardown.1",
        "teardown-run.1",
        "teardown-preview.1",
        "teardown-sweep.1",
    ] {
        let page = std::fs::read_to_string(dir.path().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(page.contains(".TH"), "{file}");
    }
    let run = std::fs::read_to_string(dir.path().join("teardown-run.1")).unwrap();
    assert!(run.contains("profile"), "{run}");
}

/// A HOME with ~/.aws/config and ~/.aws/credentials as given.
fn aws_home(config: &str, credentials: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join("config"), config).unwrap();
    std::fs::write(aws.join("credentials"), credentials).unwrap();
    home
}

fn home_env(home: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("HOME", home.to_str().unwrap()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("NO_COLOR", "1"),
    ];
    pairs.extend_from_slice(extra);
    env(&pairs)
}

const PLAN: &str = "name = \"profiled\"\n[steps.delete-repos]\naction = \"ecr.delete-repository\"\nmatch = { name = \"lab-*\" }\nforce = true\n";

#[test]
fn a_profile_that_does_not_exist_is_named_with_what_to_do() {
    let home = aws_home(
        "[profile lab]\nregion = us-west-2\n",
        "[lab]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    );
    let plan = home.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let plan = plan.to_str().unwrap();
    // Port 9 refuses connections: nothing may get as far as calling it.
    let endpoint = "http://127.0.0.1:9";
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (vec!["preview", plan], vec![("AWS_PROFILE", "nope")]),
        (vec!["preview", plan, "--profile", "nope"], vec![]),
        (
            vec![
                "run",
                plan,
                "--yes",
                "--profile",
                "nope",
                "--endpoint-url",
                endpoint,
            ],
            vec![],
        ),
    ];
    for (args, extra) in cases {
        let out = teardown(&args, &home_env(home.path(), &extra));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(
            err.contains("the AWS profile `nope` is not in ~/.aws/config and ~/.aws/credentials"),
            "{args:?}: {err}"
        );
        assert!(err.contains("(they hold: lab)"), "{args:?}: {err}");
        assert!(
            err.contains("aws configure --profile nope"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("no AWS region"), "{args:?}: {err}");
        assert!(err.lines().count() <= 2, "{args:?}: {err}");
    }
}

#[test]
fn a_sweep_with_a_profile_that_does_not_exist_is_refused_by_name() {
    let home = aws_home("[default]\nregion = us-west-2\n", "");
    let out = teardown(
        &["sweep", "plans/stale-labs-sweep.toml", "--profile", "nope"],
        &home_env(home.path(), &[]),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("the AWS profile `nope` is not in"), "{err}");
    assert!(err.contains("(they hold: default)"), "{err}");
}

#[test]
fn a_profile_without_a_region_says_so_by_name() {
    let home = aws_home(
        "[profile bare]\n",
        "[bare]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    );
    let out = teardown(
        &[
            "preview",
            "tests/it/plans/named-workshop.toml",
            "--profile",
            "bare",
        ],
        &home_env(home.path(), &[]),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("no AWS region is configured for profile `bare`: pass --region, set AWS_REGION, or add `region = ...` to `[profile bare]` in ~/.aws/config"),
        "{err}"
    );
}

#[tokio::test]
async fn a_profile_and_an_endpoint_url_given_as_flags_reach_the_emulator() {
    let moto = support::moto().await;
    let aws = moto.aws(teardown::aws::Mode::Apply);
    aws.ecr
        .create_repository()
        .repository_name("lab-1")
        .send()
        .await
        .unwrap();
    // Region and credentials only in the profile, the endpoint only as a flag: no AWS_* variable.
    let home = aws_home(
        &format!("[profile lab]\nregion = {}\n", support::REGION),
        "[lab]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    );
    let plan = home.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let plan = plan.to_str().unwrap();
    let env = home_env(home.path(), &[]);
    let out = teardown(
        &[
            "preview",
            plan,
            "--profile",
            "lab",
            "--endpoint-url",
            &moto.endpoint,
        ],
        &env,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "account {}, region {}",
            support::ACCOUNT,
            support::REGION
        )),
        "{stdout}"
    );
    assert!(stdout.contains("lab-1"), "{stdout}");
    // A real run through the same flags deletes it.
    let out = teardown(
        &[
            "run",
            plan,
            "--yes",
            "--profile",
            "lab",
            "--endpoint-url",
            &moto.endpoint,
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let repos = aws.ecr.describe_repositories().send().await.unwrap();
    assert!(
        repos.repositories().is_empty(),
        "the run through the profile deleted nothing"
    );
}
