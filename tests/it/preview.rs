//! Previews you can trust, through the binary: the detailed exit code, a saved preview applied
//! later (exactly what it listed, nothing that appeared since), an edited or foreign preview
//! refused, the keep list, and the confirmation typed at a real terminal.

use crate::support;

use std::process::{Command, Output, Stdio};

use support::fixture::{self, WorkshopNames};
use teardown::aws::Mode;

const PLAN: &str = "tests/it/plans/named-workshop.toml";

fn teardown(env: &[(String, String)], args: &[&str]) -> Output {
    support::teardown_command(env, args)
        .output()
        .expect("run teardown")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn repositories(aws: &teardown::aws::Aws) -> Vec<String> {
    let mut names: Vec<String> = aws
        .ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_saved_preview_applies_exactly_what_it_listed() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let aws = moto.aws(Mode::Apply);
    let home = tempfile::tempdir().unwrap();
    let env = moto.cli_env(home.path());
    // A plan whose step matches by glob, so that a repository made after the preview matches too.
    let plan = home.path().join("repos.toml");
    std::fs::write(
        &plan,
        "name = \"repos\"\n[steps.delete-repos]\naction = \"ecr.delete-repository\"\nmatch = { name = \"lab-*\" }\nforce = true\n",
    )
    .unwrap();
    let plan = plan.to_str().unwrap();
    for name in ["lab-1", "lab-2", "other"] {
        aws.ecr
            .create_repository()
            .repository_name(name)
            .send()
            .await
            .unwrap();
    }

    let saved = home.path().join("preview.json");
    let out = teardown(
        &env,
        &[
            "preview",
            plan,
            "--save",
            saved.to_str().unwrap(),
            "--detailed-exitcode",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "something to delete: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("deletes exactly these 2 resources"),
        "{}",
        text(&out)
    );
    assert_eq!(
        repositories(&aws).await,
        vec!["lab-1", "lab-2", "other"],
        "a preview changes nothing"
    );

    // Appears after the preview: must be left alone, and said so.
    aws.ecr
        .create_repository()
        .repository_name("lab-3")
        .send()
        .await
        .unwrap();
    let out = teardown(
        &env,
        &[
            "apply",
            saved.to_str().unwrap(),
            "--yes",
            "--output",
            "plain",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not in the saved preview"),
        "{}",
        text(&out)
    );
    assert_eq!(repositories(&aws).await, vec!["lab-3", "other"]);

    // An edited preview is refused before any call.
    let edited = std::fs::read_to_string(&saved)
        .unwrap()
        .replace("lab-1", "other");
    let tampered = home.path().join("tampered.json");
    std::fs::write(&tampered, edited).unwrap();
    let out = teardown(&env, &["apply", tampered.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("edited after it was saved"),
        "{}",
        text(&out)
    );
    assert_eq!(repositories(&aws).await, vec!["lab-3", "other"]);
}

#[tokio::test]
async fn a_preview_made_in_another_account_is_refused() {
    let moto = support::moto().await;
    let aws = moto.aws(Mode::Apply);
    aws.ecr
        .create_repository()
        .repository_name("lab-1")
        .send()
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let env = moto.cli_env(home.path());
    // A well-formed preview, digest and all, that says it was made in another account.
    let run = teardown::journal::RunHeader {
        run_id: String::new(),
        plan_path: "repos.toml".into(),
        plan_text: "name = \"repos\"\n[steps.delete-repos]\naction = \"ecr.delete-repository\"\nmatch = { name = \"lab-*\" }\n".into(),
        vars: vec![],
        only: vec![],
        skip: vec![],
        assume_done: false,
        account: "999999999999".into(),
        region: support::REGION.into(),
        looked_up: Default::default(),
    };
    let summary = teardown::engine::RunSummary {
        steps: vec![],
        cancelled: None,
        duration: std::time::Duration::ZERO,
    };
    let preview = teardown::preview::SavedPreview::from_run(run, &summary);
    let path = home.path().join("foreign.json");
    preview.save(&path).unwrap();
    let out = teardown(&env, &["apply", path.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("account 999999999999"),
        "{}",
        text(&out)
    );
    assert_eq!(repositories(&aws).await, vec!["lab-1"]);
}

#[tokio::test]
async fn the_keep_list_and_the_protect_tag_spare_matched_resources() {
    let moto = support::moto().await;
    let aws = moto.aws(Mode::Apply);
    for name in ["lab-1", "lab-2", "lab-3"] {
        aws.ecr
            .create_repository()
            .repository_name(name)
            .send()
            .await
            .unwrap();
    }
    aws.ecr
        .tag_resource()
        .resource_arn("arn:aws:ecr:us-west-2:123456789012:repository/lab-3")
        .tags(
            aws_sdk_ecr::types::Tag::builder()
                .key("owner:keep")
                .value("yes")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let plan = home.path().join("keep.toml");
    std::fs::write(
        &plan,
        "name = \"keep\"\n[safety]\nprotect_tag = \"owner:keep\"\nkeep = [\"lab-2\"]\n[steps.delete-repos]\naction = \"ecr.delete-repository\"\nmatch = { name = \"lab-*\" }\n",
    )
    .unwrap();
    let out = teardown(
        &moto.cli_env(home.path()),
        &["run", plan.to_str().unwrap(), "--yes", "--output", "plain"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("listed in the plan's keep list"), "{shown}");
    assert!(shown.contains("tagged owner:keep"), "{shown}");
    assert_eq!(repositories(&aws).await, vec!["lab-2", "lab-3"]);
}

#[tokio::test]
async fn a_real_run_on_a_terminal_goes_on_only_when_the_account_id_is_typed() {
    let moto = support::moto().await;
    moto.keep_tasks_running();
    let aws = moto.aws(Mode::Apply);
    let workshop = fixture::provision_workshop(&aws, &WorkshopNames::default()).await;
    let home = tempfile::tempdir().unwrap();
    // `script` gives teardown a real terminal; the answer comes on its standard input.
    let on_terminal = |answer: &str| {
        let mut command = Command::new("script");
        command
            .args([
                "-qec",
                &format!(
                    "{} run {PLAN} --only fargate --output plain",
                    support::teardown_bin()
                ),
                "/dev/null",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in moto.cli_env(home.path()) {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = on_terminal("yes");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("Type the account id (123456789012)"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("not confirmed"), "{}", text(&out));
    // Before asking, it says what would go, resolved with read-only calls.
    assert!(
        text(&out).contains("This DELETES or changes: "),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("1 ECR repository"), "{}", text(&out));
    assert_eq!(repositories(&aws).await, vec![workshop.repository.clone()]);

    let out = on_terminal(support::ACCOUNT);
    assert!(out.status.success(), "{}", text(&out));
    assert!(repositories(&aws).await.is_empty());
}
