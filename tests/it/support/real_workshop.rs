//! The real public workshop, "AWS Secrets Manager with Amazon RDS and AWS Fargate"
//! (aws-samples/aws-secretsmgr-workshop, `docs/RDSFargate/RDSFargate.yml`, with the steps of
//! `RDS.md`, `Fargate.md` and `cleanup.md`), as several attendees leave one shared account: each
//! attendee's lab side by side, and look-alikes that belong to no lab.
//!
//! - [`provision_real_lab`] deploys one attendee's main stack from our own rendition of the
//!   template (`real_workshop/template.rs`), then does by API what the attendee does by hand:
//!   pushes two images, stores the database secret under a name of their choice, turns its rotation on
//!   (which makes the Serverless Application Repository's rotation stack, whose Lambda function
//!   holds network interfaces in the lab's subnets), registers revisions 2 and 3 of the stack's
//!   task definition family naming the secret, and runs one Fargate task of each. Every Lambda
//!   function has written its log group `/aws/lambda/<function>`, which no stack owns.
//! - [`provision_two_real_labs`]: attendees `ann` and `anna`, whose names are look-alikes on
//!   purpose: `secrets-workshop-ann` is a prefix of `secrets-workshop-anna`, secret `smdemo-ann`
//!   of `smdemo-anna` (and the partial ARN `...:secret:smdemo-ann` of anna's full ARN),
//!   `/aws/lambda/smdemo-ann` of `/aws/lambda/smdemo-anna`. A teardown of one that goes by
//!   prefix or glob takes the other too.
//! - [`provision_real_lookalikes`]: what a third attendee, `an` (a prefix of both), left after
//!   deleting their main stack in the wrong order (a retained VPC with their rotation function's
//!   network interfaces, cluster with a running task, repository with an image, their secret
//!   `smdemo` with rotation on, their rotation stack, their functions' log groups), a secret
//!   `smdemo-annabel` (a superstring of both labs' secrets), and a log group
//!   `/aws/lambda/smdemo-ann-old`.
//! - [`real_lab_leftovers`] (what of a lab is still there; empty once it is torn down),
//!   [`real_lab_damage`] and [`lookalike_damage`] (what was changed; empty when untouched).
//! - The names CloudFormation would generate (`<stack>-ECSCluster-<suffix>` and so on) are
//!   deterministic per attendee, so a test run is reproducible.
//!
//! How to use it: `moto.keep_tasks_running()` first (otherwise moto moves tasks on at every
//! DescribeTasks; the checks judge a task by its desired status, which only StopTask changes, so
//! they stay right either way), and provision with clients of their own, not the ones under test.
//! A teardown that deletes resources by hand before DeleteStack needs
//! [`super::faults::aws_like_delete_stack`] on its CloudFormation client (see there).
//!
//! # Where the fixture departs from the real template, and why (moto 5.2.5)
//!
//! Deployed as the real template writes them: `LogGroup`, `VpcName`, `DemoSubnet01/02`,
//! `BastionSG` and `DBSG` with their self-referencing ingress rules, `BastionRole`,
//! `BastionProfile`, `LambdaExecutionRole`, `RandomStrFunction`, `VpcEndpointServiceAzsFunction`,
//! `DBSubnetGroup`, `DBInstance` (MySQL 5.7), `TaskRole`, `TaskExecutionRole`, `TaskDefinition`,
//! `ECSCluster`, `ECRRepository`, the parameters `NamePrefix`, `ProjectTag`, `DBName`, `DBPort`,
//! and the outputs but `BastionIP`. The rest:
//!
//! | The real template / workshop | The fixture | Why |
//! |---|---|---|
//! | Custom resources `DBMasterUser`, `DBMasterPassword`, `EC2UserPassword` (random strings from `RandomStrFunction`) and `VpcEndpointServiceAzs` (AZs from `VpcEndpointServiceAzsFunction`) | Left out: literal 8-letter user and passwords per lab, AZs `<region>a` and `<region>b`; the two functions are still deployed | moto runs Lambda-backed custom resources in Docker only |
//! | `VpcIgw`, `VpcIgwAttachment`, `DemoRouteTable`, `DefaultPubRoute`, `DemoSubnet01DemoRtb`, `DemoSubnet02DemoRtb` | Left out | moto deletes none of these with the stack (an internet gateway outlives it even unattached), and a route table keeps the VPC from ever going |
//! | `Bastion` (EC2 instance, CloudFormation::Init, UserData), the `AmazonLinux2AmiId` parameter, output `BastionIP` | Left out (`BastionRole` and `BastionProfile` stay) | moto ignores the subnet of `NetworkInterfaces` (the instance lands in the default VPC); given `SubnetId` instead, it never deletes the instance's primary interface on termination, which stays `in-use` in a VPC that no longer exists |
//! | `SecretsManagerEndpoint` (interface VPC endpoint) | Left out | moto creates it with two interfaces but DeleteStack never deletes it: it would outlive its VPC |
//! | `Metadata` (console parameter groups), the functions' Python code, `Tags` of the functions | Left out or a stub | not behaviour; their code stays theirs |
//! | Names CloudFormation generates: `RandomStrFunction`, `VpcEndpointServiceAzsFunction`, `TaskDefinition` family, `ECSCluster`, `ECRRepository` | Set explicitly in the generated form (`<stack>-<LogicalId>-<12 alphanumerics>`, the repository lower-case), suffixes fixed per attendee | moto names a task definition family `task-definition-NNN` and a repository in a form it then rejects; it would name the cluster and the functions in AWS's form itself, but randomly at each run, and a fixed name per attendee keeps runs and failure messages reproducible. moto generates `LogGroup`, the IAM roles, `BastionProfile` and `DBInstance` in AWS's form, and they are left to it |
//! | `TaskDefinition`: `NetworkMode: awsvpc`, `RequiresCompatibilities: FARGATE`, `Cpu: 1024`, `TaskRoleArn`, `ExecutionRoleArn` | In the template as the real one, but moto's revision 1 has none of them (it reads as `bridge`, EC2, memory 4096 only) | moto's CloudFormation drops those properties; the by-API revisions 2 and 3 carry them all |
//! | Container `smdemo` has no container-level memory | Revisions 2 and 3 add `memoryReservation: 4096` | moto's RunTask fails (HTTP 500) without container memory; a soft limit equal to the task's changes nothing else |
//! | `EnableDnsHostnames: true` on the VPC | Also set with ModifyVpcAttribute after the stack is created | moto ignores the template property, and its RunTask fails (HTTP 500) without DNS hostnames |
//! | Rotation: the console installs the Serverless Application Repository app `SecretsManagerRDSMySQLRotationSingleUser` (a `AWS::Serverless-2016-10-31` template) as stack `aws-serverless-repository-SecretsManagerRDSMySQLRotationSingleUser-<suffix>`, and rotates the secret right away | Our expanded template of that app (function in both lab subnets and `DBSG`, its role, the permission for Secrets Manager, output `RotationLambdaARN`, stack tags `serverlessrepo:*`); rotation turned on with `RotateImmediately=false`, the AWSPENDING label of moto's test version removed | moto does not expand SAM transforms and cannot run the function; the exact suffix shape of that stack name is a guess (13 upper-case alphanumerics, as CloudFormation's older generated names) |
//! | Lambda's network interfaces (`AWS Lambda VPC ENI-<function>-<uuid>`, requester-managed, type `lambda`, `in-use` while the function exists) | Made with CreateNetworkInterface: `available`, type `interface`, not requester-managed, one per lab subnet in `DBSG` | moto's Lambda makes none; moto accepts `InterfaceType=lambda` but answers `interface` |
//! | `/aws/lambda/<function>` log groups, written by each function when it runs | Made with CreateLogGroup (one stream each) | moto's Lambda never runs (except that RotateSecret's test invocation makes the rotation function's group, which the fixture then only completes) |
//! | The RDS instance's own requester-managed interface in the subnet | None | moto's RDS makes none; it goes with the stack in AWS anyway |
//! | `docker push` of `:latest` twice leaves the older image untagged | The first image is pushed without a tag, the second as `latest`; manifests are made up (distinct per lab) | moto drops an image whose tag moves to a new one |
//! | Fargate task interfaces (description `arn:aws:ecs:...:attachment/<id>`), released when the task stops | moto's own: description `moto ECS`, `in-use`, in the first subnet; they stay after StopTask and after the VPC is gone | moto; the fixture does not track them |
//!
//! # What moto does on deletion that AWS does not (checked by hand, and in `tests/it/real_workshop.rs`)
//!
//! - DeleteStack after a resource of the stack was deleted by hand: moto deletes the rest,
//!   drops the stack (unknown even by id, missing from ListStacks) and answers with that
//!   resource's error; for a Lambda function or log group it is a JSON body in the XML protocol,
//!   which the SDK cannot parse. AWS succeeds and the stack ends DELETE_COMPLETE:
//!   [`super::faults::aws_like_delete_stack`] gives AWS's answer.
//! - DeleteStack with images in the repository: RepositoryNotEmptyException, and the same drop
//!   of the stack (AWS: DELETE_FAILED, stack kept). Not corrected.
//! - DeleteStack leaves the stack's ECS cluster ACTIVE and revision 1 ACTIVE (AWS deletes the
//!   cluster and deregisters revision 1). Revisions 2 and 3 stay ACTIVE in both: they are the
//!   attendee's, not the stack's.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::task::Poll;

use aws_sdk_cloudformation::types::{Capability, Parameter, Tag as StackTag};
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, TagSpecification};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, KeyValuePair,
    LaunchType, LogConfiguration, LogDriver, NetworkConfiguration, NetworkMode, PortMapping,
    Secret as TaskSecret, TransportProtocol,
};
use aws_sdk_secretsmanager::types::RotationRulesType;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::{json, Value};
use teardown::aws::{Aws, AwsError};

use super::ACCOUNT;

// Explicit paths, so that the demo's example can include this file on its own (scripts/demo).
#[path = "real_workshop/checks.rs"]
mod checks;
#[path = "real_workshop/template.rs"]
mod template;

pub use checks::{lookalike_damage, real_lab_damage, real_lab_leftovers};
use template::{main_template, rotation_template};

/// What attendees type as the main stack's name, before their own name.
pub const STACK_PREFIX: &str = "secrets-workshop-";
/// The attendees of [`provision_two_real_labs`]: the first one's names are prefixes of the
/// second one's.
pub const ATTENDEES: [&str; 2] = ["ann", "anna"];
/// The attendee whose leftovers [`provision_real_lookalikes`] makes (a prefix of both).
pub const LOOKALIKE_ATTENDEE: &str = "an";
/// The beginning of every rotation stack's name (the Serverless Application Repository's).
pub const ROTATION_STACK_PREFIX: &str =
    "aws-serverless-repository-SecretsManagerRDSMySQLRotationSingleUser-";
/// The main stack's description, as in the real template.
pub const DESCRIPTION: &str =
    "Demo environment for AWS Secrets Manager with Amazon RDS and AWS Fargate";
/// The Serverless Application Repository app that rotates the secret.
const ROTATION_APP: &str =
    "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSMySQLRotationSingleUser";

/// One attendee's lab, as the workshop leaves it before the clean-up.
#[derive(Clone, Debug)]
pub struct RealLab {
    /// The attendee (`ann`).
    pub attendee: String,
    /// The main stack's name, `secrets-workshop-<attendee>`.
    pub main_stack: String,
    /// Its id (ARN): still answers after the stack is gone in AWS (not in moto after an error).
    pub main_stack_id: String,
    /// `<stack>-ECSCluster-<suffix>` (output `ECSCluster`).
    pub cluster: String,
    /// Its ARN.
    pub cluster_arn: String,
    /// `<stack lowercase>-ecrrepository-<suffix lowercase>` (output `ECRRepository`).
    pub repository: String,
    /// `<account>.dkr.ecr.<region>.amazonaws.com/<repository>`, the containers' image.
    pub repository_uri: String,
    /// The pushed images' digests, oldest first: the first untagged, the last `latest`.
    pub image_digests: Vec<String>,
    /// The task definition family, `<stack>-TaskDefinition-<suffix>`.
    pub task_family: String,
    /// Its revisions' ARNs, oldest first: revision 1 (the stack's `TaskDefinition`), then
    /// revisions 2 and 3, registered by the attendee.
    pub task_definitions: Vec<String>,
    /// `secrets[0].valueFrom` of each revision, in the same order: the template's placeholder
    /// `arn:...:secret:SECRETNAME`, then the partial ARN `arn:...:secret:<secret name>` (what
    /// `Fargate.md` says to type), then the secret's full ARN (copied from the console).
    pub secret_value_from: Vec<String>,
    /// The running Fargate tasks' ARNs: one of revision 2, one of revision 3.
    pub tasks: Vec<String>,
    /// The secret's name, the attendee's choice: `smdemo-<attendee>`.
    pub secret: String,
    /// Its ARN (with Secrets Manager's random suffix).
    pub secret_arn: String,
    /// The rotation function, named by the attendee when turning rotation on: the secret's name,
    /// as `RDS.md` does (`smdemo` for both).
    pub rotation_function: String,
    /// Its ARN: the secret's `RotationLambdaARN` and the rotation stack's output.
    pub rotation_function_arn: String,
    /// `aws-serverless-repository-SecretsManagerRDSMySQLRotationSingleUser-<suffix>`.
    pub rotation_stack: String,
    /// Its id.
    pub rotation_stack_id: String,
    /// The rotation function's network interfaces, one per lab subnet.
    pub lambda_enis: Vec<String>,
    /// `/aws/lambda/<function>` of the stack's two functions and of the rotation function, in
    /// that order: no stack owns them.
    pub log_groups: Vec<String>,
    /// The stack's own `LogGroup` (the tasks' log streams are in it): goes with the stack.
    pub stack_log_group: String,
    /// The stack's VPC (`VpcName`), 10.200.0.0/16 as in every lab.
    pub vpc_id: String,
    /// `DemoSubnet01`, `DemoSubnet02`.
    pub subnet_ids: Vec<String>,
    /// `BastionSG` (the tasks' security group).
    pub bastion_security_group: String,
    /// `DBSG` (the database's and the rotation function's).
    pub db_security_group: String,
    /// The stack's functions: `RandomStrFunction`, `VpcEndpointServiceAzsFunction`.
    pub stack_functions: Vec<String>,
    /// The stack's RDS instance identifier (output `DBInstance`).
    pub db_instance: String,
}

impl RealLab {
    /// `BastionSG` and `DBSG`.
    pub fn security_group_ids(&self) -> Vec<String> {
        vec![
            self.bastion_security_group.clone(),
            self.db_security_group.clone(),
        ]
    }

    /// Revision 1, the stack's `TaskDefinition`.
    pub fn stack_task_definition(&self) -> &str {
        &self.task_definitions[0]
    }

    /// The revisions the attendee registered (2 and 3).
    pub fn attendee_task_definitions(&self) -> &[String] {
        &self.task_definitions[1..]
    }

    /// Every name and id of the lab (for "two labs share nothing").
    pub fn identifiers(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = [
            &self.main_stack,
            &self.main_stack_id,
            &self.cluster,
            &self.cluster_arn,
            &self.repository,
            &self.repository_uri,
            &self.task_family,
            &self.secret,
            &self.secret_arn,
            &self.rotation_function,
            &self.rotation_function_arn,
            &self.rotation_stack,
            &self.rotation_stack_id,
            &self.stack_log_group,
            &self.vpc_id,
            &self.bastion_security_group,
            &self.db_security_group,
            &self.db_instance,
        ]
        .into_iter()
        .cloned()
        .collect();
        for list in [
            &self.image_digests,
            &self.task_definitions,
            &self.tasks,
            &self.lambda_enis,
            &self.log_groups,
            &self.subnet_ids,
            &self.stack_functions,
        ] {
            all.extend(list.iter().cloned());
        }
        all
    }
}

/// What belongs to no lab but looks like it (see the module docs).
#[derive(Clone, Debug)]
pub struct RealLookalikes {
    /// `an`.
    pub attendee: String,
    /// `secrets-workshop-an`: deleted, does not exist.
    pub deleted_main_stack: String,
    /// Their rotation stack (same name shape as the labs').
    pub rotation_stack: String,
    /// Its id.
    pub rotation_stack_id: String,
    /// Their rotation function, `smdemo` (the workshop's default name).
    pub rotation_function: String,
    /// Its ARN.
    pub rotation_function_arn: String,
    /// Their secret, `smdemo`, rotation on: a prefix of every lab's secret name (and its
    /// partial ARN a prefix of every lab secret's ARN).
    pub secret: String,
    /// Its ARN.
    pub secret_arn: String,
    /// `smdemo-annabel`: begins with both labs' secret names; no rotation.
    pub other_secret: String,
    /// Its ARN.
    pub other_secret_arn: String,
    /// Their retained VPC: 10.200.0.0/16, tagged `Name=smdemo-vpc`, `Project=smproj`, like
    /// every lab's.
    pub vpc_id: String,
    /// Its two subnets.
    pub subnet_ids: Vec<String>,
    /// Their retained `DBSG`.
    pub security_group_id: String,
    /// Their rotation function's network interfaces, in that VPC.
    pub lambda_enis: Vec<String>,
    /// `secrets-workshop-an-ECSCluster-<suffix>`, retained.
    pub cluster: String,
    /// Its running task.
    pub tasks: Vec<String>,
    /// `secrets-workshop-an-TaskDefinition-<suffix>`.
    pub task_family: String,
    /// Its revisions, oldest first: revision 1 INACTIVE (CloudFormation deregistered it),
    /// revision 2 ACTIVE.
    pub task_definitions: Vec<String>,
    /// `secrets-workshop-an-ecrrepository-<suffix>`, retained with an image.
    pub repository: String,
    /// Its image.
    pub image_digests: Vec<String>,
    /// `/aws/lambda/smdemo`, their stack functions' log groups, and `/aws/lambda/smdemo-ann-old`.
    pub log_groups: Vec<String>,
}

// ---- names ----------------------------------------------------------------------------------

/// A hash of `parts`, the same in every run (`DefaultHasher::new` has fixed keys; its
/// algorithm may change with the Rust release, and the names with it).
fn hash_of(parts: &[&str], round: u64) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (parts, round).hash(&mut hasher);
    hasher.finish()
}

/// `len` characters of `alphabet`, random-looking but fixed for `parts`.
fn pseudo_random(parts: &[&str], len: usize, alphabet: &[u8]) -> String {
    (0..len)
        .map(|i| {
            let n = hash_of(parts, i as u64) as usize;
            alphabet[n % alphabet.len()] as char
        })
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A name as CloudFormation generates it: `<stack>-<logical id>-<12 alphanumerics>`, shortened
/// to `max` characters by cutting the stack's name first, then the logical id.
fn generated_name(stack: &str, logical_id: &str, max: usize) -> String {
    let suffix = pseudo_random(&[stack, logical_id], 12, ALNUM);
    let (mut stack_len, mut logical_len) = (stack.len(), logical_id.len());
    while stack_len + logical_len + suffix.len() + 2 > max && logical_len > 1 {
        if stack_len > 1 {
            stack_len -= 1;
        } else {
            logical_len -= 1;
        }
    }
    format!(
        "{}-{}-{suffix}",
        &stack[..stack_len],
        &logical_id[..logical_len]
    )
}

/// A version-4-looking UUID, fixed for `parts`.
fn pseudo_uuid(parts: &[&str]) -> String {
    let hex = format!("{:016x}{:016x}", hash_of(parts, 100), hash_of(parts, 101));
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The names of one attendee's lab that exist before anything is created.
#[derive(Clone, Debug)]
struct LabNames {
    attendee: String,
    main_stack: String,
    cluster: String,
    repository: String,
    task_family: String,
    random_str_function: String,
    azs_function: String,
    secret: String,
    rotation_function: String,
    rotation_stack: String,
    db_user: String,
    db_password: String,
    ec2_user_password: String,
}

impl LabNames {
    fn new(attendee: &str) -> LabNames {
        let main_stack = format!("{STACK_PREFIX}{attendee}");
        let secret = format!("smdemo-{attendee}");
        let letters = &ALNUM[..52];
        LabNames {
            attendee: attendee.into(),
            cluster: generated_name(&main_stack, "ECSCluster", 255),
            repository: generated_name(&main_stack, "ECRRepository", 256).to_lowercase(),
            task_family: generated_name(&main_stack, "TaskDefinition", 255),
            random_str_function: generated_name(&main_stack, "RandomStrFunction", 64),
            azs_function: generated_name(&main_stack, "VpcEndpointServiceAzsFunction", 64),
            rotation_function: secret.clone(),
            rotation_stack: format!(
                "{ROTATION_STACK_PREFIX}{}",
                pseudo_random(&[attendee, "rotation stack"], 13, UPPER_ALNUM)
            ),
            db_user: pseudo_random(&[attendee, "DBMasterUser"], 8, letters),
            db_password: pseudo_random(&[attendee, "DBMasterPassword"], 8, letters),
            ec2_user_password: pseudo_random(&[attendee, "EC2UserPassword"], 8, letters),
            secret,
            main_stack,
        }
    }
}

// ---- calls ----------------------------------------------------------------------------------

/// Panics with what failed, AWS's words included.
trait OrPanic<T> {
    fn or_panic(self, what: &str) -> T;
}

impl<T, E: std::error::Error> OrPanic<T> for Result<T, E> {
    fn or_panic(self, what: &str) -> T {
        self.unwrap_or_else(|e| {
            panic!("real workshop fixture: {what}: {}", DisplayErrorContext(&e))
        })
    }
}

/// What AWS said, for a panic message.
fn unexpected(what: &str, e: &AwsError) -> ! {
    panic!("real workshop fixture: cannot check {what}: {e}")
}

/// A created stack: id, outputs, and the physical id of each logical resource.
struct Stack {
    id: String,
    outputs: BTreeMap<String, String>,
    resources: BTreeMap<String, String>,
}

impl Stack {
    fn resource(&self, logical_id: &str) -> String {
        self.resources
            .get(logical_id)
            .unwrap_or_else(|| {
                panic!(
                    "real workshop fixture: stack {} has no resource {logical_id}",
                    self.id
                )
            })
            .clone()
    }

    fn output(&self, key: &str) -> String {
        self.outputs
            .get(key)
            .unwrap_or_else(|| {
                panic!(
                    "real workshop fixture: stack {} has no output {key}",
                    self.id
                )
            })
            .clone()
    }
}

/// Creates a stack (moto creates synchronously) and reads back its outputs and resources.
async fn create_stack(
    aws: &Aws,
    name: &str,
    template: &Value,
    parameters: &[(&str, &str)],
    tags: &[(&str, &str)],
) -> Stack {
    let mut request = aws
        .cloudformation
        .create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .capabilities(Capability::CapabilityAutoExpand);
    for (key, value) in parameters {
        request = request.parameters(
            Parameter::builder()
                .parameter_key(*key)
                .parameter_value(*value)
                .build(),
        );
    }
    for (key, value) in tags {
        request = request.tags(StackTag::builder().key(*key).value(*value).build());
    }
    let id = request
        .send()
        .await
        .or_panic(&format!("create stack {name}"))
        .stack_id()
        .expect("CreateStack returns the stack id")
        .to_string();
    let (described, resources) = tokio::join!(
        aws.cloudformation.describe_stacks().stack_name(&id).send(),
        aws.cloudformation
            .describe_stack_resources()
            .stack_name(&id)
            .send(),
    );
    let described = described.or_panic(&format!("describe stack {name}"));
    let stack = described
        .stacks()
        .first()
        .expect("the new stack is described");
    let status = stack
        .stack_status()
        .map(|s| s.as_str())
        .unwrap_or("unknown");
    assert_eq!(
        status,
        "CREATE_COMPLETE",
        "real workshop fixture: stack {name} is {status}: {:?}",
        stack.stack_status_reason()
    );
    let outputs = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect();
    let resources = resources
        .or_panic(&format!("describe the resources of stack {name}"))
        .stack_resources()
        .iter()
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_string(),
                r.physical_resource_id().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    Stack {
        id,
        outputs,
        resources,
    }
}

async fn enable_dns_hostnames(aws: &Aws, vpc_id: &str) {
    aws.ec2
        .modify_vpc_attribute()
        .vpc_id(vpc_id)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .or_panic(&format!("enable DNS hostnames in {vpc_id}"));
}

/// A well-formed sha256 digest, different for every (seed, part, index).
fn fake_digest(seed: &str, part: &str, index: usize) -> String {
    let hex: String = (0..4u64)
        .map(|round| format!("{:016x}", hash_of(&[seed, part, &index.to_string()], round)))
        .collect();
    format!("sha256:{hex}")
}

/// Pushes `count` distinct images, as `docker push` of `:latest` again and again leaves them:
/// the older ones untagged, the newest `latest`. Returns their digests, oldest first.
async fn push_images(aws: &Aws, repository: &str, count: usize) -> Vec<String> {
    let mut digests = Vec::new();
    for i in 0..count {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7023 + i,
                "digest": fake_digest(repository, "config", i)
            },
            "layers": [{
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 62_310_822 + i,
                "digest": fake_digest(repository, "layer", i)
            }]
        });
        let mut request = aws
            .ecr
            .put_image()
            .repository_name(repository)
            .image_manifest(manifest.to_string());
        if i + 1 == count {
            request = request.image_tag("latest");
        }
        let pushed = request
            .send()
            .await
            .or_panic(&format!("push image {i} to {repository}"));
        digests.push(
            pushed
                .image()
                .and_then(|i| i.image_id())
                .and_then(|id| id.image_digest())
                .expect("PutImage returns the digest")
                .to_string(),
        );
    }
    digests
}

/// `/aws/lambda/<function>` with one stream, as the function's first run leaves it. moto makes
/// the group itself when it invokes the function (RotateSecret does, for its test of the
/// rotation function): then it is only given the stream.
async fn lambda_log_group(aws: &Aws, function: &str) -> String {
    let group = format!("/aws/lambda/{function}");
    if let Err(e) = aws
        .logs
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
    {
        let e = AwsError::from_sdk("Logs.CreateLogGroup", e);
        if e.code.as_deref() != Some("ResourceAlreadyExistsException") {
            panic!("real workshop fixture: create log group {group}: {e}");
        }
    }
    let stream = format!(
        "2026/11/30/[$LATEST]{}",
        &fake_digest(function, "stream", 0)[7..39]
    );
    aws.logs
        .create_log_stream()
        .log_group_name(&group)
        .log_stream_name(stream)
        .send()
        .await
        .or_panic(&format!("create a log stream in {group}"));
    group
}

/// Lambda's network interface for `function` in `subnet`.
async fn lambda_eni(aws: &Aws, function: &str, subnet: &str, group: &str) -> String {
    aws.ec2
        .create_network_interface()
        .subnet_id(subnet)
        .groups(group)
        .description(format!(
            "AWS Lambda VPC ENI-{function}-{}",
            pseudo_uuid(&[function, subnet])
        ))
        .send()
        .await
        .or_panic(&format!("create a Lambda network interface for {function}"))
        .network_interface()
        .and_then(|n| n.network_interface_id())
        .expect("CreateNetworkInterface returns the id")
        .to_string()
}

/// The database secret as the console's "Credentials for RDS database" stores it.
async fn create_db_secret(aws: &Aws, name: &str, user: &str, password: &str, db: &str) -> String {
    let secret = json!({
        "username": user,
        "password": password,
        "engine": "mysql",
        "host": format!("{db}.c7hxq2bmzk4p.{}.rds.amazonaws.com", aws.region),
        "port": 3306,
        "dbname": "smdemo",
        "dbInstanceIdentifier": db
    });
    aws.secretsmanager
        .create_secret()
        .name(name)
        .secret_string(secret.to_string())
        .send()
        .await
        .or_panic(&format!("create secret {name}"))
        .arn()
        .expect("CreateSecret returns the ARN")
        .to_string()
}

/// Deploys the rotation app as the console does when rotation is turned on with "create a new
/// Lambda function": returns the stack and the function's ARN.
async fn deploy_rotation_stack(
    aws: &Aws,
    stack: &str,
    function: &str,
    subnets: &[String],
    group: &str,
) -> (Stack, String) {
    let endpoint = format!("https://secretsmanager.{}.amazonaws.com", aws.region);
    let subnets = subnets.join(",");
    let stack = create_stack(
        aws,
        stack,
        &rotation_template(),
        &[
            ("endpoint", &endpoint),
            ("functionName", function),
            ("vpcSubnetIds", &subnets),
            ("vpcSecurityGroupIds", group),
        ],
        &[
            ("serverlessrepo:applicationId", ROTATION_APP),
            ("serverlessrepo:semanticVersion", "1.1.367"),
        ],
    )
    .await;
    let arn = stack.output("RotationLambdaARN");
    (stack, arn)
}

/// Turns rotation on (every 30 days, by `lambda_arn`), as far as moto can: without rotating now
/// (moto cannot run the function), and without the AWSPENDING label moto's test rotation leaves
/// (AWS removes it once its test step is done).
async fn turn_rotation_on(aws: &Aws, arn: &str, lambda_arn: &str) {
    aws.secretsmanager
        .rotate_secret()
        .secret_id(arn)
        .rotation_lambda_arn(lambda_arn)
        .rotation_rules(
            RotationRulesType::builder()
                .automatically_after_days(30)
                .build(),
        )
        .rotate_immediately(false)
        .send()
        .await
        .or_panic(&format!("turn on rotation of {arn}"));
    let described = aws
        .secretsmanager
        .describe_secret()
        .secret_id(arn)
        .send()
        .await
        .or_panic(&format!("describe secret {arn}"));
    for (version, labels) in described.version_ids_to_stages().into_iter().flatten() {
        if labels.iter().any(|l| l == "AWSPENDING") && !labels.iter().any(|l| l == "AWSCURRENT") {
            aws.secretsmanager
                .update_secret_version_stage()
                .secret_id(arn)
                .version_stage("AWSPENDING")
                .remove_from_version_id(version)
                .send()
                .await
                .or_panic("remove the AWSPENDING label of moto's test rotation");
        }
    }
}

/// The role ARN of a role name made by a stack (path `/`).
fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// What a revision the attendee registers from the console holds: revision 1's values, with
/// `value_from` as the secret.
struct Revision<'a> {
    family: &'a str,
    image: &'a str,
    log_group: &'a str,
    task_role: &'a str,
    execution_role: &'a str,
    value_from: &'a str,
}

async fn register_revision(aws: &Aws, r: &Revision<'_>) -> String {
    let container = ContainerDefinition::builder()
        .name("smdemo")
        .image(r.image)
        .port_mappings(
            PortMapping::builder()
                .container_port(22)
                .host_port(22)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .essential(true)
        .readonly_root_filesystem(false)
        // Not in the real template: moto's RunTask needs memory on the container.
        .memory_reservation(4096)
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", r.log_group)
                .options("awslogs-region", &aws.region)
                .options("awslogs-stream-prefix", "smdemo")
                .build()
                .expect("the log driver is set"),
        )
        .environment(
            KeyValuePair::builder()
                .name("TASKDEF_ENVVAR")
                .value("my test environment value")
                .build(),
        )
        .secrets(
            TaskSecret::builder()
                .name("TASKDEF_SECRET")
                .value_from(r.value_from)
                .build()
                .expect("name and valueFrom are set"),
        )
        .build();
    aws.ecs
        .register_task_definition()
        .family(r.family)
        .task_role_arn(role_arn(r.task_role))
        .execution_role_arn(role_arn(r.execution_role))
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("1024")
        .memory("4096")
        .container_definitions(container)
        .send()
        .await
        .or_panic(&format!("register a revision of {}", r.family))
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("RegisterTaskDefinition returns the ARN")
        .to_string()
}

/// Runs one Fargate task as `Fargate.md` says: every subnet, the bastion's security group.
async fn run_task(
    aws: &Aws,
    cluster: &str,
    task_definition: &str,
    subnets: &[String],
    group: &str,
) -> String {
    let network = NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(subnets.to_vec()))
                .security_groups(group)
                .assign_public_ip(AssignPublicIp::Enabled)
                .build()
                .expect("subnets are set"),
        )
        .build();
    let ran = aws
        .ecs
        .run_task()
        .cluster(cluster)
        .task_definition(task_definition)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network)
        .count(1)
        .send()
        .await
        .or_panic(&format!("run {task_definition} in {cluster}"));
    assert!(
        ran.failures().is_empty(),
        "real workshop fixture: RunTask in {cluster} failed: {:?}",
        ran.failures()
    );
    ran.tasks()
        .first()
        .and_then(|t| t.task_arn())
        .expect("RunTask returns the task")
        .to_string()
}

/// The task's log stream in the stack's log group (`awslogs-stream-prefix` smdemo).
async fn task_log_stream(aws: &Aws, log_group: &str, task_arn: &str) {
    let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    aws.logs
        .create_log_stream()
        .log_group_name(log_group)
        .log_stream_name(format!("smdemo/smdemo/{task_id}"))
        .send()
        .await
        .or_panic(&format!("create the log stream of task {task_id}"));
}

// ---- provisioning ---------------------------------------------------------------------------

/// One attendee's lab, as it stands at the end of the workshop (see the module docs). Use
/// clients of their own, after `moto.keep_tasks_running()`.
pub async fn provision_real_lab(aws: &Aws, attendee: &str) -> RealLab {
    let names = LabNames::new(attendee);
    let region = aws.region.clone();
    // The attendee deploys the template.
    let stack = create_stack(
        aws,
        &names.main_stack,
        &main_template(&region, &names),
        &[],
        &[],
    )
    .await;
    let cluster = stack.output("ECSCluster");
    let repository = stack.output("ECRRepository");
    let db_instance = stack.output("DBInstance");
    let vpc_id = stack.resource("VpcName");
    let subnet_ids = vec![
        stack.resource("DemoSubnet01"),
        stack.resource("DemoSubnet02"),
    ];
    let bastion_security_group = stack.resource("BastionSG");
    let db_security_group = stack.resource("DBSG");
    let stack_log_group = stack.resource("LogGroup");
    let stack_functions = vec![
        stack.resource("RandomStrFunction"),
        stack.resource("VpcEndpointServiceAzsFunction"),
    ];
    let revision_1 = stack.resource("TaskDefinition");
    let repository_uri = format!("{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{repository}");

    // Stack creation ran the two functions (custom resources): their logs. The RDS phase: the
    // secret. The Fargate phase begins with two image pushes.
    let (_, cluster_arn, image_digests, stack_function_logs, secret_arn) = tokio::join!(
        enable_dns_hostnames(aws, &vpc_id),
        async {
            aws.ecs
                .describe_clusters()
                .clusters(&cluster)
                .send()
                .await
                .or_panic(&format!("describe cluster {cluster}"))
                .clusters()
                .first()
                .and_then(|c| c.cluster_arn())
                .expect("the stack's cluster exists")
                .to_string()
        },
        push_images(aws, &repository, 2),
        join_all(stack_functions.iter().map(|f| lambda_log_group(aws, f))),
        create_db_secret(
            aws,
            &names.secret,
            &names.db_user,
            &names.db_password,
            &db_instance
        ),
    );

    // Rotation on (the rotation stack, its function's interfaces and log group), and, at the
    // same time, the Fargate phase: two revisions naming the secret, and a task of each.
    let partial_secret_arn = format!(
        "arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{}",
        names.secret
    );
    let rotation = async {
        let (stack, function_arn) = deploy_rotation_stack(
            aws,
            &names.rotation_stack,
            &names.rotation_function,
            &subnet_ids,
            &db_security_group,
        )
        .await;
        let (log_group, enis) = tokio::join!(
            async {
                turn_rotation_on(aws, &secret_arn, &function_arn).await;
                lambda_log_group(aws, &names.rotation_function).await
            },
            join_all(subnet_ids.iter().map(|s| lambda_eni(
                aws,
                &names.rotation_function,
                s,
                &db_security_group
            ))),
        );
        (stack.id, function_arn, enis, log_group)
    };
    let fargate = async {
        let (task_role, execution_role) = (
            stack.resource("TaskRole"),
            stack.resource("TaskExecutionRole"),
        );
        let mut revisions = vec![revision_1.clone()];
        for value_from in [&partial_secret_arn, &secret_arn] {
            revisions.push(
                register_revision(
                    aws,
                    &Revision {
                        family: &names.task_family,
                        image: &repository_uri,
                        log_group: &stack_log_group,
                        task_role: &task_role,
                        execution_role: &execution_role,
                        value_from,
                    },
                )
                .await,
            );
        }
        let tasks = join_all(revisions[1..].iter().map(|r| async {
            let task = run_task(aws, &cluster, r, &subnet_ids, &bastion_security_group).await;
            task_log_stream(aws, &stack_log_group, &task).await;
            task
        }))
        .await;
        (revisions, tasks)
    };
    let (
        (rotation_stack_id, rotation_function_arn, lambda_enis, rotation_log_group),
        (task_definitions, tasks),
    ) = tokio::join!(rotation, fargate);

    let mut log_groups = stack_function_logs;
    log_groups.push(rotation_log_group);
    RealLab {
        attendee: names.attendee.clone(),
        main_stack: names.main_stack.clone(),
        main_stack_id: stack.id.clone(),
        cluster,
        cluster_arn,
        repository,
        repository_uri,
        image_digests,
        task_family: names.task_family.clone(),
        task_definitions,
        secret_value_from: vec![
            format!("arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:SECRETNAME"),
            partial_secret_arn,
            secret_arn.clone(),
        ],
        tasks,
        secret: names.secret.clone(),
        secret_arn,
        rotation_function: names.rotation_function.clone(),
        rotation_function_arn,
        rotation_stack: names.rotation_stack.clone(),
        rotation_stack_id,
        lambda_enis,
        log_groups,
        stack_log_group,
        vpc_id,
        subnet_ids,
        bastion_security_group,
        db_security_group,
        stack_functions,
        db_instance,
    }
}

/// Runs futures at once and returns their outputs in order (`tokio::join!` for a list).
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(done) => {
                        *output = Some(done);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

/// The labs of attendees `ann` and `anna` ([`ATTENDEES`]), side by side, provisioned at once.
pub async fn provision_two_real_labs(aws: &Aws) -> (RealLab, RealLab) {
    tokio::join!(
        provision_real_lab(aws, ATTENDEES[0]),
        provision_real_lab(aws, ATTENDEES[1])
    )
}

/// What belongs to no lab but looks like the labs of [`provision_two_real_labs`] (see the
/// module docs). Use clients of their own, after `moto.keep_tasks_running()`.
pub async fn provision_real_lookalikes(aws: &Aws) -> RealLookalikes {
    let region = aws.region.clone();
    // They kept the workshop's default names for the secret and the rotation function.
    let names = LabNames {
        secret: "smdemo".into(),
        rotation_function: "smdemo".into(),
        ..LabNames::new(LOOKALIKE_ATTENDEE)
    };
    let tag = |key: &str, value: &str| {
        aws_sdk_ec2::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
    };
    let tagged = |kind: ResourceType, name: &str| {
        TagSpecification::builder()
            .resource_type(kind)
            .tags(tag("Name", name))
            .tags(tag("Project", "smproj"))
            .build()
    };

    // What the attendee's stack deletion left: it could not delete the network (Lambda's
    // interfaces were in it), the cluster (a task ran) or the repository (it held an image),
    // and they chose to retain those.
    let vpc_id = aws
        .ec2
        .create_vpc()
        .cidr_block("10.200.0.0/16")
        .tag_specifications(tagged(ResourceType::Vpc, "smdemo-vpc"))
        .send()
        .await
        .or_panic("create the look-alike VPC")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("CreateVpc returns the id")
        .to_string();
    let subnet = |cidr: &'static str, az: String, name: &'static str| {
        let vpc_id = vpc_id.clone();
        async move {
            aws.ec2
                .create_subnet()
                .vpc_id(vpc_id)
                .cidr_block(cidr)
                .availability_zone(az)
                .tag_specifications(tagged(ResourceType::Subnet, name))
                .send()
                .await
                .or_panic("create a look-alike subnet")
                .subnet()
                .and_then(|s| s.subnet_id())
                .expect("CreateSubnet returns the id")
                .to_string()
        }
    };
    let group_name = generated_name(&names.main_stack, "DBSG", 255);
    let (_, subnet_1, subnet_2, security_group_id, _) = tokio::join!(
        enable_dns_hostnames(aws, &vpc_id),
        subnet("10.200.11.0/24", format!("{region}a"), "smdemo-demosn01"),
        subnet("10.200.12.0/24", format!("{region}b"), "smdemo-demosn02"),
        async {
            aws.ec2
                .create_security_group()
                .group_name(&group_name)
                .description("Enable MySQL access via the selected DBPort")
                .vpc_id(&vpc_id)
                .tag_specifications(tagged(ResourceType::SecurityGroup, "smdemo-dbsg"))
                .send()
                .await
                .or_panic("create the look-alike security group")
                .group_id()
                .expect("CreateSecurityGroup returns the id")
                .to_string()
        },
        async {
            aws.ecs
                .create_cluster()
                .cluster_name(&names.cluster)
                .send()
                .await
                .or_panic("create the look-alike cluster")
                .cluster()
                .and_then(|c| c.cluster_arn())
                .expect("CreateCluster returns the ARN")
                .to_string()
        },
    );
    let subnet_ids = vec![subnet_1, subnet_2];
    let repository_uri = format!(
        "{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{}",
        names.repository
    );

    let rotation = async {
        let db_instance = format!(
            "{}-dbinstance-q4vbn2x8lmzt",
            names.main_stack.to_lowercase()
        );
        let secret_arn = create_db_secret(
            aws,
            &names.secret,
            &names.db_user,
            &names.db_password,
            &db_instance,
        );
        let (secret_arn, (stack, function_arn)) = tokio::join!(
            secret_arn,
            deploy_rotation_stack(
                aws,
                &names.rotation_stack,
                &names.rotation_function,
                &subnet_ids,
                &security_group_id,
            )
        );
        let (_, enis) = tokio::join!(
            turn_rotation_on(aws, &secret_arn, &function_arn),
            join_all(subnet_ids.iter().map(|s| lambda_eni(
                aws,
                &names.rotation_function,
                s,
                &security_group_id
            ))),
        );
        (stack.id, function_arn, secret_arn, enis)
    };
    let fargate = async {
        aws.ecr
            .create_repository()
            .repository_name(&names.repository)
            .send()
            .await
            .or_panic("create the look-alike repository");
        let digests = push_images(aws, &names.repository, 1).await;
        let mut revisions = Vec::new();
        for value_from in ["SECRETNAME", names.secret.as_str()] {
            revisions.push(
                register_revision(
                    aws,
                    &Revision {
                        family: &names.task_family,
                        image: &repository_uri,
                        log_group: &format!("{}-LogGroup-K2V8QXN4TB7M", names.main_stack),
                        task_role: &generated_name(&names.main_stack, "TaskRole", 64),
                        execution_role: &generated_name(&names.main_stack, "TaskExecutionRole", 64),
                        value_from: &format!(
                            "arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{value_from}"
                        ),
                    },
                )
                .await,
            );
        }
        // CloudFormation deregistered the stack's revision 1 when the stack went.
        aws.ecs
            .deregister_task_definition()
            .task_definition(&revisions[0])
            .send()
            .await
            .or_panic("deregister the look-alike revision 1");
        let task = run_task(
            aws,
            &names.cluster,
            &revisions[1],
            &subnet_ids,
            &security_group_id,
        )
        .await;
        (digests, revisions, vec![task])
    };
    let other_secret = "smdemo-annabel".to_string();
    let log_group_names = [
        names.rotation_function.clone(),
        names.random_str_function.clone(),
        names.azs_function.clone(),
        format!("{}-old", LabNames::new(ATTENDEES[0]).rotation_function),
    ];
    let (
        (rotation_stack_id, rotation_function_arn, secret_arn, lambda_enis),
        (image_digests, task_definitions, tasks),
        other_secret_arn,
        log_groups,
    ) = tokio::join!(
        rotation,
        fargate,
        create_db_secret(aws, &other_secret, "annabel", "9f3KqLmVxw", "annabel-db"),
        join_all(log_group_names.iter().map(|f| lambda_log_group(aws, f))),
    );

    RealLookalikes {
        attendee: LOOKALIKE_ATTENDEE.into(),
        deleted_main_stack: names.main_stack.clone(),
        rotation_stack: names.rotation_stack.clone(),
        rotation_stack_id,
        rotation_function: names.rotation_function.clone(),
        rotation_function_arn,
        secret: names.secret.clone(),
        secret_arn,
        other_secret,
        other_secret_arn,
        vpc_id,
        subnet_ids,
        security_group_id,
        lambda_enis,
        cluster: names.cluster.clone(),
        tasks,
        task_family: names.task_family.clone(),
        task_definitions,
        repository: names.repository.clone(),
        image_digests,
        log_groups,
    }
}
