//! `teardown init --from-stack NAME`: a plan for stacks that already exist, written from what
//! each stack owns (read-only: DescribeStacks and ListStackResources, through clients that refuse
//! every mutating call).
//!
//! DeleteStack alone fails, or waits for an hour, on a few things a lab leaves behind. The plan
//! adds a step before the stack's deletion for each of them that the stack owns, and says why in a
//! comment above it:
//! - an ECS cluster: AWS refuses to delete a cluster with running tasks, and CloudFormation never
//!   stops a task it did not start (`ecs.stop-tasks`);
//! - an ECR repository: AWS refuses to delete a repository that holds images, and images are
//!   pushed by hand (`ecr.delete-repository` with `force = true`);
//! - a VPC: the network interfaces Lambda leaves in it keep its subnets and security groups
//!   until AWS releases them, up to ~45 minutes after their function is gone
//!   (`ec2.delete-network-interfaces`, which waits for them; the stack's deletion runs it again
//!   and retries if it fails on them);
//! - an S3 bucket: CloudFormation cannot delete a bucket that holds objects, and teardown has no
//!   S3 action: the plan says so in a comment, and invents no step.
//!
//! A nested stack's resources are not read (ListStackResources lists the stack's own only): the
//! plan names the nested stacks in a comment and says how to see their steps.
//!
//! Every name in the plan is the exact physical id the stack records, never a glob, so that a plan
//! for one lab cannot reach another lab whose names start the same. The plan is validated before
//! it is written.

use std::fmt::Write as _;
use std::path::Path;

use crate::actions::cloudformation::is_missing_stack;
use crate::aws::{Aws, AwsError};

/// One resource a stack owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackResource {
    /// Its logical id in the template (`ECSCluster`).
    pub logical_id: String,
    /// Its type (`AWS::ECS::Cluster`).
    pub resource_type: String,
    /// Its physical id (a cluster's name, a VPC's id).
    pub physical_id: String,
}

/// A stack as `init` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackContents {
    /// Its name.
    pub name: String,
    /// Its id (ARN).
    pub id: String,
    /// Its status, e.g. `CREATE_COMPLETE`.
    pub status: String,
    /// What it owns (that exists: resources whose creation failed or that were deleted are left
    /// out).
    pub resources: Vec<StackResource>,
}

impl StackContents {
    fn of_type<'a>(&'a self, resource_type: &'a str) -> impl Iterator<Item = &'a StackResource> {
        self.resources
            .iter()
            .filter(move |r| r.resource_type == resource_type && !r.physical_id.is_empty())
    }
}

/// Why `init` could not write a plan.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A stack named on the command line is not there.
    #[error("stack {name} does not exist in region {region} (check the name, the region and the account): no plan was written")]
    NoSuchStack {
        /// The name given.
        name: String,
        /// Where it was looked for.
        region: String,
    },
    /// A call failed.
    #[error("{0}")]
    Aws(#[from] AwsError),
}

/// Reads what a stack owns, read-only.
pub async fn read_stack(aws: &Aws, name: &str) -> Result<StackContents, InitError> {
    let no_such_stack = || InitError::NoSuchStack {
        name: name.to_string(),
        region: aws.region.clone(),
    };
    let described = match aws
        .cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
    {
        Ok(described) => described,
        Err(e) if is_missing_stack(&e) => return Err(no_such_stack()),
        Err(e) => return Err(AwsError::from_sdk("CloudFormation.DescribeStacks", e).into()),
    };
    let Some(stack) = described.stacks().first() else {
        return Err(no_such_stack());
    };
    let listed = crate::actions::cloudformation::stack_resources(aws, name)
        .await
        .map_err(|e| AwsError::from_sdk("CloudFormation.ListStackResources", e))?;
    let resources = listed
        .iter()
        .filter(|r| {
            !matches!(
                r.resource_status().map(|s| s.as_str()),
                Some("DELETE_COMPLETE" | "CREATE_FAILED")
            )
        })
        .map(|r| StackResource {
            logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
            resource_type: r.resource_type().unwrap_or_default().to_string(),
            physical_id: r.physical_resource_id().unwrap_or_default().to_string(),
        })
        .collect();
    Ok(StackContents {
        name: stack.stack_name().unwrap_or(name).to_string(),
        id: stack.stack_id().unwrap_or_default().to_string(),
        status: stack
            .stack_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        resources,
    })
}

/// A TOML string literal.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// Where the plan is for, for its header and `[guard]`.
pub struct Place<'a> {
    /// The region the stacks are in.
    pub region: &'a str,
    /// The account they are in.
    pub account: &'a str,
}

/// The plan for `stacks`, as TOML with a comment on every step. `command` is how it was made,
/// for its header.
pub fn write_plan(stacks: &[StackContents], place: &Place, command: &str) -> String {
    let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
    let plan_name = if stacks.len() == 1 {
        format!("teardown-{}", names[0])
    } else {
        format!("teardown-{}-stacks", stacks.len())
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by `{command}`\n\
         # from what each stack owns in account {} region {} (DescribeStacks, ListStackResources).\n\
         # Every name below is the exact id the stack records: nothing else is matched.\n\
         # Review it, then: teardown preview THIS-FILE; teardown run THIS-FILE\n\
         # Editors check and complete it with the schema `teardown schema` prints (a `#:schema PATH` line).\n",
        place.account, place.region
    );
    let _ = writeln!(out, "name = {}", quoted(&plan_name));
    let _ = writeln!(
        out,
        "description = {}\n",
        quoted(&format!(
            "Delete stack{} {} and what CloudFormation cannot delete alone",
            if stacks.len() == 1 { "" } else { "s" },
            names.join(", ")
        ))
    );
    let _ = writeln!(
        out,
        "# The stacks are in this account and region; the plan runs nowhere else.\n[guard]\nregions = [{}]\naccounts = [{}]\n",
        quoted(place.region),
        quoted(place.account)
    );
    for stack in stacks {
        // Step ids need no stack prefix for one stack; with several, they must not clash.
        let prefix = if stacks.len() == 1 {
            String::new()
        } else {
            format!("{}-", stack.name)
        };
        stack_steps(&mut out, stack, &prefix);
    }
    // One final newline, not the blank line that separates stacks.
    let end = out.trim_end().len();
    out.truncate(end);
    out.push('\n');
    out
}

fn stack_steps(out: &mut String, stack: &StackContents, prefix: &str) {
    let _ = writeln!(
        out,
        "# ---- stack {} ({}, {} resources) ----\n",
        stack.name,
        stack.status,
        stack.resources.len()
    );
    let mut before_stack: Vec<String> = Vec::new();
    let mut eni_step: Option<String> = None;
    for cluster in stack.of_type("AWS::ECS::Cluster") {
        let id = format!("{prefix}stop-tasks-{}", cluster.logical_id);
        let _ = writeln!(
            out,
            "# ECS cluster {} (the stack's {}):\n\
             # AWS refuses to delete a cluster that still runs tasks, and CloudFormation never stops\n\
             # tasks it did not start (run by hand or by a service). This scales its services to 0\n\
             # and stops its tasks first.\n\
             [steps.{id}]\n\
             action = \"ecs.stop-tasks\"\n\
             match = {{ cluster = {} }}\n\
             timeout = \"15m\"\n",
            cluster.physical_id,
            cluster.logical_id,
            quoted(&cluster.physical_id)
        );
        before_stack.push(id);
    }
    for repository in stack.of_type("AWS::ECR::Repository") {
        let id = format!("{prefix}delete-repository-{}", repository.logical_id);
        let _ = writeln!(
            out,
            "# ECR repository {} (the stack's {}):\n\
             # AWS refuses to delete a repository that holds images (RepositoryNotEmptyException),\n\
             # and images are pushed outside CloudFormation.\n\
             # This deletes it with its images; the stack's deletion then finds it gone.\n\
             [steps.{id}]\n\
             action = \"ecr.delete-repository\"\n\
             match = {{ name = {} }}\n\
             force = true\n\
             expect = \"at-most-one\"\n",
            repository.physical_id,
            repository.logical_id,
            quoted(&repository.physical_id)
        );
        before_stack.push(id);
    }
    for vpc in stack.of_type("AWS::EC2::VPC") {
        let id = format!("{prefix}lambda-interfaces-{}", vpc.logical_id);
        let _ = writeln!(
            out,
            "# VPC {} (the stack's {}):\n\
             # the network interfaces that Lambda functions leave in it (description\n\
             # \"AWS Lambda VPC ENI-...\") keep its subnets and security groups from\n\
             # being deleted until AWS releases them, 20 to 45 minutes after their function is\n\
             # gone. This deletes the ones AWS has released and waits for the rest; only this VPC\n\
             # is looked at. A function of another stack that still uses the VPC must go first.\n\
             [steps.{id}]\n\
             action = \"ec2.delete-network-interfaces\"\n\
             match = {{ vpc = {}, description = \"AWS Lambda VPC ENI*\" }}\n\
             timeout = \"60m\"\n",
            vpc.physical_id,
            vpc.logical_id,
            quoted(&vpc.physical_id)
        );
        if eni_step.is_none() {
            eni_step = Some(id.clone());
        }
        before_stack.push(id);
    }
    let buckets: Vec<&StackResource> = stack.of_type("AWS::S3::Bucket").collect();
    if !buckets.is_empty() {
        let _ = writeln!(
            out,
            "# The stack owns S3 bucket{}: {}.\n\
             # CloudFormation cannot delete a bucket that holds objects, and teardown has no S3\n\
             # action: empty {} before the run (e.g. `aws s3 rm s3://NAME --recursive`, and its\n\
             # object versions if versioning is on), or the stack's deletion fails on {}.\n",
            if buckets.len() == 1 { "" } else { "s" },
            buckets
                .iter()
                .map(|b| format!("{} ({})", b.physical_id, b.logical_id))
                .collect::<Vec<_>>()
                .join(", "),
            if buckets.len() == 1 { "it" } else { "them" },
            if buckets.len() == 1 { "it" } else { "them" },
        );
    }
    let nested: Vec<&StackResource> = stack.of_type("AWS::CloudFormation::Stack").collect();
    if !nested.is_empty() {
        let _ = writeln!(
            out,
            "# The stack has nested stacks: {}.\n\
             # Their resources are not read here (ListStackResources lists only this stack's own);\n\
             # CloudFormation deletes them with this one. If one of them owns a cluster, a\n\
             # repository or a VPC, add its steps: `teardown init --from-stack <its id>` shows them.\n",
            nested
                .iter()
                .map(|n| format!("{} ({})", n.physical_id, n.logical_id))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let id = format!("{prefix}delete-stack");
    let mut why = String::from(
        "# Deletes the stack and waits for DELETE_COMPLETE; a failure lists each resource\n\
         # that failed, and why.",
    );
    if !before_stack.is_empty() {
        why.push_str(" It waits for the steps above.");
    }
    if eni_step.is_some() {
        why.push_str(
            "\n# If it fails on interfaces Lambda released meanwhile, it deletes them and tries again.",
        );
    }
    let _ = writeln!(
        out,
        "{why}\n[steps.{id}]\naction = \"cloudformation.delete-stack\"\nmatch = {{ name = {} }}\nexpect = \"one\"\ntimeout = \"60m\"",
        quoted(&stack.name)
    );
    if !before_stack.is_empty() {
        let after: Vec<String> = before_stack.iter().map(|s| quoted(s)).collect();
        let _ = writeln!(out, "after = [{}]", after.join(", "));
    }
    if let Some(eni) = eni_step {
        let _ = writeln!(
            out,
            "on_failure = {{ run = {}, then = \"retry\", times = 2 }}",
            quoted(&eni)
        );
    }
    out.push('\n');
}

/// Checks the plan before it is written: a plan that `teardown validate` would refuse is a bug
/// here, never a file left for the user to debug.
pub fn check(text: &str, path: &Path) -> Result<(), String> {
    crate::plan::parse(path, text, &[])
        .map(|_| ())
        .map_err(|e| format!("the plan written for these stacks does not validate (a bug in `teardown init`):\n{e}"))
}

/// `teardown init --from-stack NAME... [--out PATH [--force]]`: reads the stacks through
/// read-only clients, writes the plan (to `out`, or standard output), and says what it wrote.
pub async fn command(
    stacks: &[String],
    out: Option<&Path>,
    force: bool,
    options: crate::aws::AwsOptions,
) -> crate::outcome::Outcome {
    use crate::outcome::Outcome;
    // Refused before any call: an existing file is someone's plan.
    if let Some(path) = out {
        if path.exists() && !force {
            eprintln!(
                "error: {} exists: nothing was written (pass --force to overwrite it, or choose another --out)",
                path.display()
            );
            return Outcome::BadInput;
        }
    }
    let aws = match Aws::from_env(crate::aws::Mode::DryRun, options).await {
        Ok(aws) => aws,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Refused;
        }
    };
    let account = match aws.sts.get_caller_identity().send().await {
        Ok(identity) => identity.account().unwrap_or_default().to_string(),
        Err(e) => {
            eprintln!(
                "error: {}\nno plan was written: the account could not be read (check the credentials)",
                AwsError::from_sdk("STS.GetCallerIdentity", e)
            );
            return Outcome::Refused;
        }
    };
    let mut read = Vec::new();
    for name in stacks {
        match read_stack(&aws, name).await {
            Ok(stack) => read.push(stack),
            Err(e @ InitError::NoSuchStack { .. }) => {
                eprintln!("error: {e}");
                return Outcome::NotAsExpected;
            }
            Err(e) => {
                eprintln!("error: {e}\nno plan was written");
                return Outcome::Refused;
            }
        }
    }
    let mut command = String::from("teardown init");
    for name in stacks {
        command.push_str(&format!(" --from-stack {name}"));
    }
    let text = write_plan(
        &read,
        &Place {
            region: &aws.region,
            account: &account,
        },
        &command,
    );
    let shown = out.unwrap_or(Path::new("<stdout>"));
    if let Err(message) = check(&text, shown) {
        eprintln!("error: {message}");
        return Outcome::StepsFailed;
    }
    match out {
        None => {
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
        }
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true);
            if force {
                options.create(true).truncate(true);
            } else {
                // Not `exists()` then write: a file made in between is not overwritten either.
                options.create_new(true);
            }
            let written = options
                .open(path)
                .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()));
            if let Err(e) = written {
                eprintln!("error: cannot write {}: {e}", path.display());
                return Outcome::BadInput;
            }
            let steps = text.lines().filter(|l| l.starts_with("[steps.")).count();
            eprintln!(
                "wrote {} ({steps} steps for {} stack{}); next: teardown preview {}",
                path.display(),
                read.len(),
                if read.len() == 1 { "" } else { "s" },
                path.display()
            );
        }
    }
    Outcome::Success
}
