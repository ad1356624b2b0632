//! For the demo (`scripts/demo`): builds the real workshop's labs (two attendees' side by side,
//! `tests/it/support/real_workshop.rs`, and a third attendee's leftovers) in the AWS endpoint of
//! the environment (`AWS_ENDPOINT_URL`, a local moto server), or with `--list`, prints what the
//! account holds, so that the demo can show what went and what stayed. With `--named`, builds
//! instead the made-up workshop of `tests/it/plans/named-workshop.toml` and its look-alike
//! bystanders (`tests/it/support/fixture.rs`), which `benches/peers.sh` tears down with each tool.
//!
//! It refuses to run against anything but a loopback endpoint: it creates resources.

#[path = "../tests/it/support/fixture.rs"]
#[allow(dead_code, unused_imports)]
mod fixture;

#[path = "../tests/it/support/real_workshop.rs"]
#[allow(dead_code, unused_imports)]
mod real_workshop;

/// moto's account (the fixture names it in ARNs).
const ACCOUNT: &str = "123456789012";

use teardown::aws::{Aws, AwsOptions, Mode};

#[tokio::main]
async fn main() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if !(endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:")) {
        eprintln!("refusing: AWS_ENDPOINT_URL must point at a local emulator (http://127.0.0.1:PORT), not {endpoint:?}");
        std::process::exit(2);
    }
    let aws = Aws::from_env(Mode::Apply, AwsOptions::default())
        .await
        .expect("AWS configuration");
    if std::env::args().any(|a| a == "--list") {
        list(&aws).await;
        return;
    }
    if std::env::args().any(|a| a == "--named") {
        let workshop = fixture::provision_workshop(&aws, &fixture::WorkshopNames::default()).await;
        let bystanders = fixture::provision_bystanders(&aws).await;
        println!(
            "workshop: stacks {} and {}, cluster {}, repository {}, secret {}; bystanders (must survive): stacks {}, cluster {}",
            workshop.main_stack,
            workshop.rotation_stack,
            workshop.cluster,
            workshop.repository,
            workshop.secret,
            bystanders.stacks.join(", "),
            bystanders.cluster
        );
        return;
    }
    let (ann, anna) = real_workshop::provision_two_real_labs(&aws).await;
    let lookalikes = real_workshop::provision_real_lookalikes(&aws).await;
    for lab in [&ann, &anna] {
        println!(
            "lab of {}: stack {}, cluster {} ({} tasks), {} revisions of {}, repository {} ({} images), secret {} rotated by {} (stack {}), {} Lambda ENIs, {} log groups",
            lab.attendee,
            lab.main_stack,
            lab.cluster,
            lab.tasks.len(),
            lab.task_definitions.len(),
            lab.task_family,
            lab.repository,
            lab.image_digests.len(),
            lab.secret,
            lab.rotation_function,
            lab.rotation_stack,
            lab.lambda_enis.len(),
            lab.log_groups.len()
        );
    }
    println!(
        "left behind by attendee {} (no lab: their main stack is gone): rotation stack {}, secret {}, cluster {}, repository {}",
        lookalikes.attendee,
        lookalikes.rotation_stack,
        lookalikes.secret,
        lookalikes.cluster,
        lookalikes.repository
    );
}

/// What the account holds now, one line per resource.
async fn list(aws: &Aws) {
    let stacks = aws
        .cloudformation
        .describe_stacks()
        .send()
        .await
        .expect("DescribeStacks");
    for s in stacks.stacks() {
        println!(
            "  stack       {} ({})",
            s.stack_name().unwrap_or("?"),
            s.stack_status().map(|s| s.as_str()).unwrap_or("?")
        );
    }
    let clusters = aws.ecs.list_clusters().send().await.expect("ListClusters");
    if !clusters.cluster_arns().is_empty() {
        let described = aws
            .ecs
            .describe_clusters()
            .set_clusters(Some(clusters.cluster_arns().to_vec()))
            .send()
            .await
            .expect("DescribeClusters");
        for c in described.clusters() {
            println!(
                "  cluster     {} ({})",
                c.cluster_name().unwrap_or("?"),
                c.status().unwrap_or("?")
            );
        }
    }
    let repos = aws
        .ecr
        .describe_repositories()
        .send()
        .await
        .expect("DescribeRepositories");
    for r in repos.repositories() {
        println!("  repository  {}", r.repository_name().unwrap_or("?"));
    }
    let secrets = aws
        .secretsmanager
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .expect("ListSecrets");
    for s in secrets.secret_list() {
        let state = match s.deleted_date() {
            Some(d) => format!(
                "deletion scheduled for {}",
                teardown::aws::to_chrono(d)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default()
            ),
            None => "active".into(),
        };
        println!("  secret      {} ({state})", s.name().unwrap_or("?"));
    }
    let enis = aws
        .ec2
        .describe_network_interfaces()
        .send()
        .await
        .expect("DescribeNetworkInterfaces");
    for e in enis.network_interfaces() {
        println!(
            "  interface   {} in {} ({})",
            e.network_interface_id().unwrap_or("?"),
            e.vpc_id().unwrap_or("?"),
            e.description().unwrap_or("")
        );
    }
    let groups = aws
        .logs
        .describe_log_groups()
        .send()
        .await
        .expect("DescribeLogGroups");
    for g in groups.log_groups() {
        println!("  log group   {}", g.log_group_name().unwrap_or("?"));
    }
}
