//! Where output goes: progress (bars, event lines) on stderr, data (the summary, JSON events) on
//! stdout, the default chosen by whether stderr is a terminal, NO_COLOR taking colour away and
//! nothing else, nothing for a terminal written where there is none, and `--output json` JSON
//! Lines to its last line, each event matching the shipped schema.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::{self, terminal};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

const PLAN: &str = "name = \"streams\"\n[steps.delete-repos]\naction = \"ecr.delete-repository\"\nmatch = { name = \"lab-*\" }\nforce = true\n";

async fn one_repository(moto: &support::Moto) {
    moto.aws(teardown::aws::Mode::Apply)
        .ecr
        .create_repository()
        .repository_name("lab-1")
        .send()
        .await
        .unwrap();
}

fn write_plan(dir: &Path) -> String {
    let path = dir.join("plan.toml");
    std::fs::write(&path, PLAN).unwrap();
    path.to_str().unwrap().to_string()
}

/// Every line of `stdout` as JSON, each checked against `schemas/events.schema.json`.
fn json_events(stdout: &str) -> Vec<serde_json::Value> {
    let schema = crate::render::shipped_event_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(stdout.ends_with('\n'), "{stdout}");
    stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\nin:\n{stdout}"));
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{line}: {errors:?}");
            value
        })
        .collect()
}

#[tokio::test]
async fn json_output_is_json_lines_to_the_last_line_and_each_event_matches_the_schema() {
    let moto = support::moto().await;
    one_repository(&moto).await;
    let home = tempfile::tempdir().unwrap();
    let plan = write_plan(home.path());
    let env = moto.cli_env(home.path());
    let saved = home.path().join("preview.json");
    let run = |args: &[&str]| -> Output {
        support::teardown_command(&env, args)
            .output()
            .expect("run teardown")
    };

    let out = run(&[
        "preview",
        &plan,
        "--output",
        "json",
        "--save",
        saved.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let events = json_events(&stdout);
    // The line for people is on stderr, never among the events.
    assert!(stderr.contains("Saved the preview to"), "{stderr}");
    assert!(!stdout.contains("Saved the preview"), "{stdout}");
    let started = &events[0];
    assert_eq!(started["event"], "run_started", "{stdout}");
    assert_eq!(started["account"], support::ACCOUNT);
    assert_eq!(started["region"], support::REGION);
    assert_eq!(started["plan"], "streams");
    assert_eq!(started["plan_file"], plan.as_str());
    assert_eq!(started["dry_run"], true);
    assert!(
        started["audit_log"].is_null(),
        "a preview keeps no audit log: {started}"
    );
    assert_eq!(events.last().unwrap()["event"], "run_finished", "{stdout}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    assert!(run_id.contains("streams"), "{run_id}");
    assert!(
        events.iter().all(|e| e["run_id"] == run_id.as_str()),
        "{stdout}"
    );

    let out = run(&["run", &plan, "--yes", "--output", "json"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let events = json_events(&stdout);
    let started = &events[0];
    assert_eq!(started["event"], "run_started", "{stdout}");
    assert_eq!(started["dry_run"], false);
    let run_id = started["run_id"].as_str().unwrap();
    // The audit log named is the run's own, and it holds the deletion.
    let audit = started["audit_log"].as_str().unwrap();
    assert!(audit.ends_with(&format!("{run_id}/audit.jsonl")), "{audit}");
    let logged = std::fs::read_to_string(audit).unwrap();
    assert!(logged.contains("DeleteRepository"), "{logged}");
    assert!(events.iter().all(|e| e["run_id"] == run_id), "{stdout}");
    let finished = events.last().unwrap();
    assert_eq!(finished["event"], "run_finished", "{stdout}");
    assert_eq!(finished["succeeded"], 1, "{stdout}");
}

#[tokio::test]
async fn into_pipes_progress_goes_to_stderr_data_to_stdout_and_no_terminal_codes_anywhere() {
    let moto = support::moto().await;
    one_repository(&moto).await;
    let home = tempfile::tempdir().unwrap();
    let plan = write_plan(home.path());
    let mut env = moto.cli_env(home.path());
    // A terminal type and no NO_COLOR: only the pipes themselves must keep colour and bars out.
    env.retain(|(k, _)| k != "NO_COLOR");
    env.push(("TERM".into(), "xterm-256color".into()));
    for args in [&["preview", &plan][..], &["run", &plan, "--yes"][..]] {
        let out = support::teardown_command(&env, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{args:?}\n{stdout}\n{stderr}");
        // The default without a terminal is one line per event: progress, on stderr.
        assert!(
            stderr.contains("] run started: plan streams"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("delete-repos: succeeded"),
            "{args:?}: {stderr}"
        );
        // The data: the summary and what was (or would be) deleted, on stdout, and no progress.
        assert!(
            stdout.contains(&format!(
                "account {}, region {}",
                support::ACCOUNT,
                support::REGION
            )),
            "{args:?}: {stdout}"
        );
        assert!(stdout.contains("lab-1"), "{args:?}: {stdout}");
        assert!(!stdout.contains("run started"), "{args:?}: {stdout}");
        for (name, stream) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(
                !stream.contains('\x1b'),
                "{args:?}: escape codes on the {name} pipe:\n{stream:?}"
            );
            assert!(
                !stream.contains('\r'),
                "{args:?}: a redrawn line on the {name} pipe:\n{stream:?}"
            );
        }
    }
    // The run (the second command) deleted the repository the preview listed.
    let left = moto
        .aws(teardown::aws::Mode::DryRun)
        .ecr
        .describe_repositories()
        .send()
        .await
        .unwrap();
    assert!(left.repositories().is_empty());
}

/// Bars asked for where stderr is a pipe would draw nothing (the terminal library hides them):
/// the lines are shown instead, with a note that says why.
#[tokio::test]
async fn output_human_into_a_pipe_shows_the_lines_and_says_why() {
    let moto = support::moto().await;
    one_repository(&moto).await;
    let home = tempfile::tempdir().unwrap();
    let plan = write_plan(home.path());
    let env = moto.cli_env(home.path());
    let out = support::teardown_command(&env, &["preview", &plan, "--output", "human"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("--output human draws progress bars on a terminal, and stderr is not one"),
        "{stderr}"
    );
    assert!(stderr.contains("delete-repos: succeeded"), "{stderr}");
    assert!(stdout.contains("lab-1"), "{stdout}");
}

#[tokio::test]
async fn on_a_terminal_with_stderr_to_a_file_the_data_still_shows_on_stdout() {
    let moto = support::moto().await;
    one_repository(&moto).await;
    let home = tempfile::tempdir().unwrap();
    let plan = write_plan(home.path());
    let mut env = moto.cli_env(home.path());
    env.push(("TERM".into(), "xterm-256color".into()));
    let errors = home.path().join("errors.txt");
    // `teardown preview PLAN 2> errors.txt` typed at a terminal.
    let screen = terminal::open();
    let mut command = support::teardown_command(&env, &["preview", &plan]);
    command
        .stdout(screen.stream())
        .stderr(std::fs::File::create(&errors).unwrap());
    let (status, drawn) = screen.run(command, Duration::from_secs(60));
    let logged = std::fs::read_to_string(&errors).unwrap();
    assert_eq!(status.code(), Some(0), "{drawn}\n{logged}");
    assert!(
        drawn.contains("Preview (dry run: nothing was changed)"),
        "{drawn:?}"
    );
    assert!(drawn.contains("lab-1"), "{drawn:?}");
    // stderr is not a terminal: plain event lines there, without a terminal's codes.
    assert!(logged.contains("] run started: plan streams"), "{logged}");
    assert!(!logged.contains('\x1b'), "{logged:?}");
    assert!(!drawn.contains("run started"), "{drawn:?}");
}

/// `teardown preview PLAN` on a terminal (`> out.txt` with `to_file`), with `extra` in the
/// environment: the exit status, what was drawn on the terminal, and what went to the file.
async fn preview_on_a_terminal(extra: &[(&str, &str)], to_file: bool) -> (i32, String, String) {
    let moto = support::moto().await;
    one_repository(&moto).await;
    let home = tempfile::tempdir().unwrap();
    let plan = write_plan(home.path());
    let mut env: Vec<(String, String)> = moto
        .cli_env(home.path())
        .into_iter()
        .filter(|(k, _)| k != "NO_COLOR")
        .collect();
    env.push(("TERM".into(), "xterm-256color".into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let file = home.path().join("out.txt");
    let screen = terminal::open();
    let mut command = support::teardown_command(&env, &["preview", &plan]);
    if to_file {
        command.stdout(std::fs::File::create(&file).unwrap());
    } else {
        command.stdout(screen.stream());
    }
    command.stderr(screen.stream());
    let (status, drawn) = screen.run(command, Duration::from_secs(60));
    let written = std::fs::read_to_string(&file).unwrap_or_default();
    (status.code().unwrap_or(-1), drawn, written)
}

#[tokio::test]
async fn with_stdout_to_a_file_the_bars_still_draw_on_the_terminal_and_the_file_gets_the_data() {
    let (status, drawn, written) = preview_on_a_terminal(&[], true).await;
    assert_eq!(status, 0, "{drawn:?}\n{written}");
    // stderr, the terminal, decides: bars (stdout, a file, does not).
    assert!(drawn.contains("overall"), "no overall bar:\n{drawn:?}");
    assert!(drawn.contains("1/1 steps"), "no step count:\n{drawn:?}");
    assert!(!drawn.contains("Preview (dry run"), "{drawn:?}");
    // The data went to the file, clean.
    assert!(
        written.contains("Preview (dry run: nothing was changed)"),
        "{written}"
    );
    assert!(written.contains("lab-1"), "{written}");
    assert!(!written.contains('\x1b'), "{written:?}");
    assert!(!written.contains("overall"), "{written}");
}

#[tokio::test]
async fn no_color_takes_the_colour_away_and_leaves_the_bars() {
    let (status, plain, _) = preview_on_a_terminal(&[("NO_COLOR", "1")], false).await;
    assert_eq!(status, 0, "{plain:?}");
    assert!(
        plain.contains("overall"),
        "no overall bar with NO_COLOR:\n{plain:?}"
    );
    assert!(
        plain.contains("1/1 steps"),
        "no step count with NO_COLOR:\n{plain:?}"
    );
    assert!(plain.contains("Preview (dry run"), "{plain:?}");
    assert!(
        !terminal::has_colour(&plain),
        "colour despite NO_COLOR:\n{plain:?}"
    );
    // The same without NO_COLOR is in colour: the test above could fail.
    let (status, coloured, _) = preview_on_a_terminal(&[], false).await;
    assert_eq!(status, 0, "{coloured:?}");
    assert!(coloured.contains("overall"), "{coloured:?}");
    assert!(
        terminal::has_colour(&coloured),
        "no colour on a colour terminal:\n{coloured:?}"
    );
}
