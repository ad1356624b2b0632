//! Sweeps of several accounts and of every enabled region, through the `teardown` binary against
//! the emulator: `--assume-role` with `--accounts` finds each account's labs (and only its own),
//! a dry run changes nothing, `--apply --yes` deletes exactly the stale labs of each account and
//! writes each account's audit log apart, an account whose assumed role answers for another
//! account is refused with nothing touched, `--all-regions` finds labs without naming regions,
//! and bad flag combinations are bad input.
//!
//! Accounts in moto (5.2.5, checked by hand before relying on it): AssumeRole of
//! `arn:aws:iam::X:role/NAME` succeeds whether or not the role exists, and the credentials it
//! returns act in account X (GetCallerIdentity says X; stacks made with them are X's alone). The
//! harness's own credentials are account 123456789012, which the sweeps here never name: its lab
//! is a bystander. The wrong account is produced for real, not injected: a role template whose
//! account is fixed (`arn:aws:iam::111111111111:role/teardown-{account}`) assumes a role in
//! 111111111111 whatever account it is asked for.
//!
//! Regions in moto: DescribeRegions lists every region it knows (38, China and GovCloud
//! included) even without AllRegions, 14 of them marked "not-opted-in" (AWS would leave those
//! out): the sweep drops them, which leaves 24. The shipped plan's `[guard] regions` (us-west-2,
//! us-east-1) narrows `--all-regions` further, to those two.
//!
//! Ages: every stack is seconds old, so the command runs a copy of the shipped plan with age
//! thresholds of zero (as tests/it/sweep.rs does).

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use aws_config::Region;
use aws_sdk_cloudformation::types::{Capability, Tag};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use serde_json::{json, Value};
use support::fixture::{self, Workshop, WorkshopNames};
use teardown::aws::{Aws, AwsOptions, Mode};

const PLAN: &str = "tests/it/plans/tagged-labs-sweep.toml";
const WEST: &str = support::REGION;
const EAST: &str = "us-east-1";
const A: &str = "111111111111";
const B: &str = "222222222222";
const ROLE: &str = "arn:aws:iam::{account}:role/teardown-sweep";

/// The names of lab `lab`'s resources, all its own (as in tests/it/sweep.rs).
fn names(lab: &str) -> WorkshopNames {
    let lower = lab.to_lowercase();
    WorkshopNames {
        main_stack: format!("Lab-{lab}"),
        rotation_stack: format!(
            "aws-serverless-repository-SecretsManagerRDSMySQLRotationSingleUser-{}",
            lab.to_uppercase()
        ),
        rotation_function: format!("Lab-{lab}-rotation"),
        cluster: format!("Lab-{lab}-cluster"),
        service: format!("Lab-{lab}-service"),
        task_family: format!("Lab-{lab}-task"),
        repository: format!("lab-{lower}-repo"),
        secret: format!("lab-{lower}-db-secret"),
    }
}

/// The tags the lab provisioner puts on a main stack (see the plan's header).
fn lab_tags(n: &WorkshopNames) -> Vec<(String, String)> {
    [
        ("Workshop", "secrets-manager-fargate"),
        ("Cluster", n.cluster.as_str()),
        ("Service", n.service.as_str()),
        ("TaskFamily", n.task_family.as_str()),
        ("Repository", n.repository.as_str()),
        ("Secret", n.secret.as_str()),
        ("RotationStack", n.rotation_stack.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Clients in `account` and `region`, through a role assumed in that account (None: the
/// harness's own account), for provisioning and checking.
async fn clients_in(moto: &support::Moto, account: Option<&str>, region: &str) -> Aws {
    let mut config = moto
        .sdk_config()
        .to_builder()
        .region(Region::new(region.to_string()));
    if let Some(account) = account {
        let assumed = moto
            .aws(Mode::Apply)
            .sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/provisioner"))
            .role_session_name("provisioner")
            .send()
            .await
            .expect("assume a role in the emulator");
        let c = assumed.credentials().expect("credentials");
        config = config.credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "assumed-in-test",
        )));
    }
    let aws =
        Aws::from_sdk_config(&config.build(), Mode::Apply, AwsOptions::default()).expect("clients");
    let identity = aws.sts.get_caller_identity().send().await.unwrap();
    assert_eq!(
        identity.account(),
        Some(account.unwrap_or(support::ACCOUNT)),
        "moto's assumed-role credentials do not act in the role's account"
    );
    aws
}

/// A whole workshop lab, its main stack tagged in place (UpdateStack with its own template).
async fn workshop_lab(aws: &Aws, lab: &str) -> Workshop {
    let n = names(lab);
    let workshop = fixture::provision_workshop(aws, &n).await;
    let mut request = aws
        .cloudformation
        .update_stack()
        .stack_name(&n.main_stack)
        .use_previous_template(true)
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam);
    for (k, v) in lab_tags(&n) {
        request = request.tags(Tag::builder().key(k).value(v).build());
    }
    request.send().await.expect("tag the main stack");
    workshop
}

/// A lab that is only a tagged stack and an ECR repository of the name its tags give: enough
/// to be found, bound, previewed and deleted.
async fn small_lab(aws: &Aws, lab: &str, protect: bool) {
    let n = names(lab);
    let template = json!({
        "Resources": { "Logs": { "Type": "AWS::Logs::LogGroup", "Properties": {} } }
    });
    let mut request = aws
        .cloudformation
        .create_stack()
        .stack_name(&n.main_stack)
        .template_body(template.to_string());
    let mut tags = lab_tags(&n);
    if protect {
        tags.push(("teardown:protect".into(), "".into()));
    }
    for (k, v) in tags {
        request = request.tags(Tag::builder().key(k).value(v).build());
    }
    request.send().await.expect("create a small lab");
    aws.ecr
        .create_repository()
        .repository_name(&n.repository)
        .send()
        .await
        .expect("create the lab's repository");
}

/// What is left of a small lab: its stack and its repository, by name.
async fn small_lab_left(aws: &Aws, lab: &str) -> Vec<String> {
    let n = names(lab);
    let mut left = Vec::new();
    let stacks = aws
        .cloudformation
        .describe_stacks()
        .stack_name(&n.main_stack)
        .send()
        .await;
    if let Ok(out) = stacks {
        if out
            .stacks()
            .iter()
            .any(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
        {
            left.push(format!("stack {}", n.main_stack));
        }
    }
    if aws
        .ecr
        .describe_repositories()
        .repository_names(&n.repository)
        .send()
        .await
        .is_ok()
    {
        left.push(format!("repository {}", n.repository));
    }
    left
}

fn teardown(args: &[&str], env: &[(String, String)]) -> Output {
    support::teardown_command(env, args)
        .output()
        .expect("run teardown")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// The shipped plan with age thresholds of zero: moto's stacks are all seconds old.
fn plan_for_now(dir: &Path) -> String {
    let plan = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(PLAN))
        .unwrap()
        .replace("older_than = \"24h\"", "older_than = \"0s\"")
        .replace("not_updated_for = \"6h\"", "not_updated_for = \"0s\"");
    assert!(plan.contains("older_than = \"0s\""));
    let path = dir.join("sweep-now.toml");
    std::fs::write(&path, plan).unwrap();
    path.to_str().unwrap().to_string()
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Lab id -> (account, status), from a report.
fn labs(report: &Value) -> BTreeMap<String, (String, String)> {
    report["labs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lab| {
            (
                lab["id"].as_str().unwrap().to_string(),
                (
                    lab["account"].as_str().unwrap().to_string(),
                    lab["status"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// Every audit log file under `dir`, recursively.
fn audit_logs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(audit_logs(&path));
        } else if path.file_name().is_some_and(|n| n == "audit.jsonl") {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn owned(pairs: &[(&str, &str)]) -> BTreeMap<String, (String, String)> {
    pairs
        .iter()
        .map(|(id, status)| {
            let account = id.split('/').next().unwrap().to_string();
            (id.to_string(), (account, status.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_account_is_swept_through_its_role_and_a_role_in_the_wrong_account_is_refused() {
    let moto = support::moto().await;
    fixture::keep_tasks_running(&moto.endpoint);
    let home = tempfile::tempdir().unwrap();
    let env = moto.cli_env(home.path());
    let a_west = clients_in(&moto, Some(A), WEST).await;
    let a_east = clients_in(&moto, Some(A), EAST).await;
    let b_west = clients_in(&moto, Some(B), WEST).await;
    let b_east = clients_in(&moto, Some(B), EAST).await;
    let own_west = clients_in(&moto, None, WEST).await;

    // Account A: a whole workshop lab in us-west-2, a small one in us-east-1, bystanders.
    // Account B: a whole workshop lab in us-west-2, a protected one, and a small one in us-east-1.
    // Both: a lab of the same name ("same") with a repository of the same name.
    // The harness's own account (never named): a whole lab of its own.
    let a1 = workshop_lab(&a_west, "a1").await;
    small_lab(&a_east, "a2", false).await;
    let bystanders = fixture::provision_bystanders(&a_west).await;
    let b1 = workshop_lab(&b_west, "b1").await;
    small_lab(&b_west, "bp", true).await;
    small_lab(&b_east, "b2", false).await;
    for aws in [&a_west, &b_west] {
        small_lab(aws, "same", false).await;
    }
    let own = workshop_lab(&own_west, "own").await;
    let a1_before = fixture::workshop_leftovers(&a_west, &a1).await;
    let b1_before = fixture::workshop_leftovers(&b_west, &b1).await;
    let own_before = fixture::workshop_leftovers(&own_west, &own).await;
    assert!(a1_before.len() > 10 && b1_before.len() > 10 && own_before.len() > 10);
    // Each account sees its own stacks only.
    let stacks_of = |aws: &Aws| {
        let aws = aws.clone();
        async move {
            let out = aws.cloudformation.describe_stacks().send().await.unwrap();
            out.stacks()
                .iter()
                .filter_map(|s| s.stack_name().map(str::to_string))
                .filter(|s| s.starts_with("Lab-"))
                .collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(
        stacks_of(&b_west).await,
        BTreeSet::from(["Lab-b1".into(), "Lab-bp".into(), "Lab-same".into()])
    );

    let plan = plan_for_now(home.path());
    let runs = home.path().join("runs");
    let runs_arg = runs.to_str().unwrap();
    let report_path = home.path().join("report.json");
    let report_arg = report_path.to_str().unwrap();
    let both = format!("{A},{B}");
    let sweep_args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "sweep",
            plan.as_str(),
            "--assume-role",
            ROLE,
            "--accounts",
            both.as_str(),
            "--region",
            WEST,
            "--region",
            EAST,
            "--report",
            report_arg,
            "--runs-dir",
            runs_arg,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        teardown(&args, &env)
    };
    let expected_labs = |stale: &str| {
        owned(&[
            ("111111111111/us-west-2/Lab-a1", stale),
            ("111111111111/us-west-2/Lab-same", stale),
            ("111111111111/us-east-1/Lab-a2", stale),
            ("222222222222/us-west-2/Lab-b1", stale),
            ("222222222222/us-west-2/Lab-bp", "kept"),
            ("222222222222/us-west-2/Lab-same", stale),
            ("222222222222/us-east-1/Lab-b2", stale),
        ])
    };

    // ---- dry run: every account's labs, named by account; nothing changes ---------------------
    let dry = run(sweep_args(&[]));
    let stdout = text(&dry.stdout);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&dry.stderr)
    );
    assert!(
        stdout.contains(
            "Sweep of plan `stale-labs-sweep`: accounts 111111111111, 222222222222, regions us-west-2, us-east-1"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("Found 7 labs: 6 stale, 1 kept"), "{stdout}");
    assert!(
        stdout.contains("222222222222/us-west-2/Lab-b1/delete-main-stack"),
        "{stdout}"
    );
    let report = read_report(&report_path);
    assert_eq!(report["accounts"], json!([A, B]));
    assert_eq!(report["refused"], json!([]));
    assert_eq!(report["dry_run"], true);
    assert_eq!(labs(&report), expected_labs("would-delete"), "{report:#}");
    // Lab-same is the same name in two accounts, not a shared resource: both would go.
    assert_eq!(
        a_west
            .ecr
            .describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .len(),
        3,
        "account A's repositories: lab-a1-repo, lab-same-repo and the bystanders'"
    );
    assert!(audit_logs(&runs).is_empty(), "a dry run wrote an audit log");
    assert_eq!(fixture::workshop_leftovers(&a_west, &a1).await, a1_before);
    assert_eq!(fixture::workshop_leftovers(&b_west, &b1).await, b1_before);
    for (aws, lab) in [
        (&a_east, "a2"),
        (&b_west, "bp"),
        (&b_east, "b2"),
        (&a_west, "same"),
        (&b_west, "same"),
    ] {
        assert_eq!(
            small_lab_left(aws, lab).await.len(),
            2,
            "the dry run touched {lab}"
        );
    }

    // ---- a role that answers for another account: refused, nothing touched in either ----------
    // The accounts file form, with comments; the template always assumes a role in account A.
    let accounts_file = home.path().join("accounts.txt");
    std::fs::write(
        &accounts_file,
        format!("# the second lab account\n{B}   # labs of team B\n"),
    )
    .unwrap();
    let accounts_arg = format!("@{}", accounts_file.display());
    let wrong_report = home.path().join("wrong.json");
    let wrong = teardown(
        &[
            "sweep",
            &plan,
            "--assume-role",
            "arn:aws:iam::111111111111:role/teardown-{account}",
            "--accounts",
            &accounts_arg,
            "--region",
            WEST,
            "--apply",
            "--yes",
            "--report",
            wrong_report.to_str().unwrap(),
            "--runs-dir",
            runs_arg,
        ],
        &env,
    );
    let stderr = text(&wrong.stderr);
    assert_eq!(
        wrong.status.code(),
        Some(3),
        "{stderr}\n{}",
        text(&wrong.stdout)
    );
    assert!(
        stderr.contains("error: account 222222222222 refused: the role assumed for account 222222222222 is in account 111111111111"),
        "{stderr}"
    );
    let report = read_report(&wrong_report);
    assert_eq!(report["accounts"], json!([]));
    assert_eq!(report["refused"][0]["account"], B);
    assert_eq!(report["labs"], json!([]));
    assert_eq!(report["exit_code"], 3);
    assert!(
        audit_logs(&runs).is_empty(),
        "a refused sweep wrote an audit log"
    );
    // Neither the account asked for nor the account the role really is in was touched.
    assert_eq!(fixture::workshop_leftovers(&a_west, &a1).await, a1_before);
    assert_eq!(fixture::workshop_leftovers(&b_west, &b1).await, b1_before);
    assert_eq!(small_lab_left(&a_west, "same").await.len(), 2);
    assert_eq!(small_lab_left(&b_west, "same").await.len(), 2);

    // ---- the plan's own guard still applies: an account it does not allow is refused ---------
    let guarded = std::fs::read_to_string(&plan).unwrap().replace(
        "# accounts = [\"123456789012\"]",
        &format!("accounts = [\"{A}\"]"),
    );
    assert!(guarded.contains(&format!("accounts = [\"{A}\"]")));
    let guarded_plan = home.path().join("guarded.toml");
    std::fs::write(&guarded_plan, guarded).unwrap();
    let guarded_report = home.path().join("guarded.json");
    let out = teardown(
        &[
            "sweep",
            guarded_plan.to_str().unwrap(),
            "--assume-role",
            ROLE,
            "--accounts",
            &both,
            "--region",
            WEST,
            "--report",
            guarded_report.to_str().unwrap(),
        ],
        &env,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: account 222222222222 refused: the plan may run only in account 111111111111"
        ),
        "{stderr}"
    );
    let report = read_report(&guarded_report);
    assert_eq!(report["accounts"], json!([A]));
    assert_eq!(report["refused"][0]["account"], B);
    assert_eq!(report["exit_code"], 1);
    // Lab ids keep their account when another account is refused.
    assert_eq!(
        labs(&report),
        owned(&[
            ("111111111111/Lab-a1", "would-delete"),
            ("111111111111/Lab-same", "would-delete"),
        ])
    );

    // ---- for real: exactly each account's stale labs go --------------------------------------
    let applied = run(sweep_args(&["--apply", "--yes"]));
    let stdout = text(&applied.stdout);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&applied.stderr)
    );
    let report = read_report(&report_path);
    assert_eq!(
        labs(&report),
        expected_labs("deleted"),
        "{:#}",
        report["labs"]
    );
    assert_eq!(report["dry_run"], false);
    fixture::assert_workshop_gone(&a_west, &a1).await;
    fixture::assert_workshop_gone(&b_west, &b1).await;
    for (aws, lab) in [
        (&a_east, "a2"),
        (&b_east, "b2"),
        (&a_west, "same"),
        (&b_west, "same"),
    ] {
        assert_eq!(
            small_lab_left(aws, lab).await,
            Vec::<String>::new(),
            "{lab}"
        );
    }
    assert_eq!(
        small_lab_left(&b_west, "bp").await.len(),
        2,
        "the protected lab"
    );
    fixture::assert_bystanders_untouched(&a_west, &bystanders).await;
    assert_eq!(
        fixture::workshop_leftovers(&own_west, &own).await,
        own_before,
        "the sweep touched the account it was not asked to sweep"
    );

    // Each account's audit log is under RUNS_DIR/ACCOUNT and holds that account's calls only.
    let logs = audit_logs(&runs);
    assert_eq!(logs.len(), 2, "{logs:?}");
    for account in [A, B] {
        let dir = runs.join(account);
        let log = logs
            .iter()
            .find(|l| l.starts_with(&dir))
            .unwrap_or_else(|| panic!("no audit log under {}: {logs:?}", dir.display()));
        assert!(
            stdout.contains(&format!(
                "Audit log of every change made in account {account}: {}",
                log.display()
            )),
            "{stdout}"
        );
        let lines: Vec<Value> = std::fs::read_to_string(log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.len() >= 5, "{account}: only {} calls", lines.len());
        for line in &lines {
            let step = line["step"].as_str().unwrap_or_default();
            assert!(
                step.starts_with(&format!("{account}/")),
                "{account}'s audit log has a call of {step}: {line}"
            );
            if let Some(arn) = line["resource"].as_str().filter(|r| r.starts_with("arn:")) {
                let in_account = arn.split(':').nth(4).unwrap_or_default();
                assert!(
                    in_account.is_empty() || in_account == account,
                    "{account}'s audit log has a call on {arn}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_regions_finds_the_labs_of_every_enabled_region_the_guard_allows() {
    let moto = support::moto().await;
    let home = tempfile::tempdir().unwrap();
    let env = moto.cli_env(home.path());
    for region in [WEST, EAST, "eu-west-1"] {
        let aws = clients_in(&moto, None, region).await;
        small_lab(&aws, &format!("in-{region}"), false).await;
    }
    let plan = plan_for_now(home.path());
    let report_path = home.path().join("report.json");
    let out = teardown(
        &[
            "sweep",
            &plan,
            "--all-regions",
            "--report",
            report_path.to_str().unwrap(),
        ],
        &env,
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let report = read_report(&report_path);
    // moto enables 38 regions; the plan's [guard] regions allow two of them.
    assert_eq!(report["regions"], json!([EAST, WEST]));
    let found: BTreeMap<String, String> = report["labs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_str().unwrap().to_string(),
                l["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        BTreeMap::from([
            (
                "us-east-1/Lab-in-us-east-1".to_string(),
                "would-delete".to_string()
            ),
            (
                "us-west-2/Lab-in-us-west-2".to_string(),
                "would-delete".to_string()
            ),
        ])
    );
    assert!(stdout.contains("regions us-east-1, us-west-2"), "{stdout}");

    // Without a [guard] regions list, every enabled region is swept: the lab in eu-west-1 too.
    let unguarded = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("regions = [\"us-west-2\", \"us-east-1\"]", "");
    let unguarded_path = home.path().join("unguarded.toml");
    std::fs::write(&unguarded_path, unguarded).unwrap();
    let out = teardown(
        &[
            "sweep",
            unguarded_path.to_str().unwrap(),
            "--all-regions",
            "--report",
            report_path.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = read_report(&report_path);
    let regions = report["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 24, "{regions:?}");
    // An opt-in region the account has not opted in to is not swept.
    assert!(!regions.contains(&json!("me-south-1")), "{regions:?}");
    let ids: BTreeSet<&str> = report["labs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([
            "eu-west-1/Lab-in-eu-west-1",
            "us-east-1/Lab-in-us-east-1",
            "us-west-2/Lab-in-us-west-2"
        ])
    );
}

#[test]
fn bad_flag_combinations_are_bad_input_that_says_what_to_do() {
    let plan = PLAN;
    let cases: [(&[&str], &str); 6] = [
        (
            &["--accounts", A],
            "--accounts needs --assume-role: the role to assume in each account",
        ),
        (&["--assume-role", ROLE], "--assume-role needs --accounts"),
        (
            &[
                "--assume-role",
                "arn:aws:iam::111111111111:role/teardown-sweep",
                "--accounts",
                A,
            ],
            "put {account} in it",
        ),
        (
            &["--assume-role", ROLE, "--accounts", "111111111111,12345"],
            "`12345` is not an AWS account id (12 digits",
        ),
        (
            &[
                "--assume-role",
                ROLE,
                "--accounts",
                "@/nonexistent/accounts.txt",
            ],
            "cannot read the accounts file /nonexistent/accounts.txt",
        ),
        (&["--all-regions", "--region", WEST], "cannot be used with"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["sweep", plan];
        args.extend_from_slice(flags);
        let out = teardown(&args, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
    }
}
