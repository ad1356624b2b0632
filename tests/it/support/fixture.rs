//! The "Secrets Manager + RDS + Fargate" workshop, built in the emulator as the workshop leaves an
//! account, and look-alikes of its resources that a teardown of it must leave alone.
//!
//! - [`provision_workshop`] makes what the workshop's clean-up deletes: the main stack (VPC with DNS
//!   hostnames, subnet, security group, log group, IAM role, a Lambda in the VPC), the rotation
//!   stack the Serverless Application Repository names itself, an ECS cluster with a service and a
//!   running Fargate task, two revisions of the task definition, an ECR repository with two images,
//!   a secret with rotation configured, and two "AWS Lambda VPC ENI-..." interfaces in the main
//!   stack's subnet.
//! - [`provision_bystanders`] makes resources whose names or places resemble those, and which must
//!   survive: the traps of prefix filters (`FargateTaskDemoOld`, `...-db-secret-old`), a service of
//!   the same name in another cluster, Lambda interfaces in another VPC, stacks with similar names.
//! - [`workshop_leftovers`] and [`bystander_damage`] say in words what is wrong; the `assert_*`
//!   functions panic with that list.
//!
//! How to use it:
//! - keep tasks running before provisioning (that is the test's job: [`keep_tasks_running`] with
//!   `moto.endpoint`, or `moto.keep_tasks_running()` once the harness accepts moto's 201):
//!   otherwise moto moves a task one state on at every DescribeTasks, and the running tasks here
//!   stop by themselves. (The checks here judge a
//!   task by its desired status, which only a StopTask changes, so they stay right either way.)
//! - provision with clients of their own (`moto.aws(Mode::Apply)`), not the ones under test, so
//!   that the call log of the run under test holds teardown's calls only.
//!
//! Where moto differs from the real workshop (see ../shared/moto-notes.md): DNS hostnames are
//! switched on with ModifyVpcAttribute (moto ignores the template property), the Lambda network
//! interfaces are made by hand and start `available` (as if Lambda had already released them), and
//! the secret is made with the API (moto ignores `AWS::SecretsManager::Secret` in templates).
//!
//! The file uses nothing else from `tests/support`, so that the demo can include it on its own.

use std::collections::BTreeMap;

use aws_sdk_cloudformation::types::{Capability, Parameter};
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType,
    NetworkConfiguration, NetworkMode, PortMapping,
};
use aws_sdk_secretsmanager::types::{RotationRulesType, Tag};
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::json;
use teardown::aws::{Aws, AwsError};

/// The names a workshop is made with. `Default` gives the real workshop's names, as the workshop
/// plan (`tests/it/plans/named-workshop.toml`) expects them.
#[derive(Clone, Debug)]
pub struct WorkshopNames {
    /// The workshop's own stack: VPC, subnet, security group, log group, role, Lambda.
    pub main_stack: String,
    /// The rotation Lambda's stack, named the way the Serverless Application Repository does.
    pub rotation_stack: String,
    /// The rotation Lambda (function names are unique per region: change it for a second copy).
    pub rotation_function: String,
    /// The ECS cluster.
    pub cluster: String,
    /// The ECS service in it.
    pub service: String,
    /// The task definition family.
    pub task_family: String,
    /// The ECR repository (lowercase, as ECR requires).
    pub repository: String,
    /// The database secret.
    pub secret: String,
}

impl Default for WorkshopNames {
    fn default() -> WorkshopNames {
        WorkshopNames {
            main_stack: "SecretsManagerWorkshop".into(),
            rotation_stack:
                "aws-serverless-repository-SecretsManagerRDSMySQLRotationSingleUser-1XK7Q2PZ0M3T9"
                    .into(),
            rotation_function: "SecretsManagerRDSMySQLRotationSingleUser".into(),
            cluster: "FargateClusterDemo".into(),
            service: "FargateServiceDemo".into(),
            task_family: "FargateTaskDemo".into(),
            repository: "secrets-manager-rds-demo".into(),
            secret: "secrets-manager-fargate-demo-db-secret".into(),
        }
    }
}

/// A provisioned workshop: names, and the ids the checks need.
#[derive(Clone, Debug)]
pub struct Workshop {
    /// Main stack name.
    pub main_stack: String,
    /// Main stack id (its ARN): still answers after the stack is deleted.
    pub main_stack_id: String,
    /// Rotation stack name.
    pub rotation_stack: String,
    /// Rotation stack id.
    pub rotation_stack_id: String,
    /// ARN of the rotation Lambda (in the rotation stack).
    pub rotation_lambda_arn: String,
    /// ECS cluster name.
    pub cluster: String,
    /// ECS service name.
    pub service: String,
    /// ARNs of the running tasks (one, started as the service's).
    pub tasks: Vec<String>,
    /// Task definition family.
    pub task_family: String,
    /// ARNs of its revisions, oldest first (two).
    pub task_definitions: Vec<String>,
    /// ECR repository name.
    pub repository: String,
    /// Digests of its images (two).
    pub image_digests: Vec<String>,
    /// Secret name.
    pub secret: String,
    /// Secret ARN.
    pub secret_arn: String,
    /// The main stack's VPC.
    pub vpc_id: String,
    /// Its subnet.
    pub subnet_id: String,
    /// Its security group.
    pub security_group_id: String,
    /// The rotation Lambda's network interfaces in the subnet (two).
    pub lambda_enis: Vec<String>,
}

/// Look-alikes that a teardown of the workshop must leave as they are.
#[derive(Clone, Debug)]
pub struct Bystanders {
    /// Stacks with names like the workshop's (none matches the rotation glob or the main name).
    pub stacks: Vec<String>,
    /// Another VPC (from the `SecretsManagerWorkshop-Other` stack).
    pub vpc_id: String,
    /// Its subnet.
    pub subnet_id: String,
    /// Another cluster, whose name starts with the workshop's.
    pub cluster: String,
    /// A service with the workshop service's name, in that other cluster.
    pub service: String,
    /// Its running task.
    pub tasks: Vec<String>,
    /// A family whose name starts with the workshop's (`FargateTaskDemoOld`).
    pub task_family: String,
    /// Its revisions.
    pub task_definitions: Vec<String>,
    /// A repository whose name starts with the workshop's.
    pub repository: String,
    /// A secret whose name starts with the workshop's (what a prefix filter would catch), with
    /// rotation on.
    pub secret: String,
    /// Its ARN.
    pub secret_arn: String,
    /// A network interface with the Lambda description, in the other VPC.
    pub lambda_eni: String,
}

/// Keeps moto's ECS tasks RUNNING until they are stopped, for the emulator at `endpoint`
/// (`http://127.0.0.1:PORT`). Does what `Moto::keep_tasks_running` means to do, but accepts the
/// `201 Created` moto answers with (that one insists on 200), and needs only the endpoint, so
/// the demo can call it too. The setting survives `/moto-api/reset`.
pub fn keep_tasks_running(endpoint: &str) {
    use std::io::{Read, Write};
    let address = endpoint.trim_start_matches("http://");
    let body =
        r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#;
    let mut stream = std::net::TcpStream::connect(address).expect("connect to moto");
    write!(
        stream,
        "POST /moto-api/state-manager/set-transition HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write to moto");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read moto's answer");
    assert!(
        response.starts_with("HTTP/1.1 20") || response.starts_with("HTTP/1.0 20"),
        "moto set-transition answered: {response}"
    );
}

/// Panics with what failed, AWS's words included.
trait OrPanic<T> {
    fn or_panic(self, what: &str) -> T;
}

impl<T, E: std::error::Error> OrPanic<T> for Result<T, E> {
    fn or_panic(self, what: &str) -> T {
        self.unwrap_or_else(|e| panic!("workshop fixture: {what}: {}", DisplayErrorContext(&e)))
    }
}

/// The network part of a template: a VPC, one subnet and one security group, as outputs.
fn network_resources(region: &str, cidr: u8, name: &str) -> serde_json::Value {
    json!({
        "Vpc": {
            "Type": "AWS::EC2::VPC",
            "Properties": {
                "CidrBlock": format!("10.{cidr}.0.0/16"),
                "EnableDnsSupport": true,
                "EnableDnsHostnames": true,
                "Tags": [{ "Key": "Name", "Value": name }]
            }
        },
        "Subnet": {
            "Type": "AWS::EC2::Subnet",
            "Properties": {
                "VpcId": { "Ref": "Vpc" },
                "CidrBlock": format!("10.{cidr}.1.0/24"),
                // Not Fn::GetAZs: moto answers it with another region's zones.
                "AvailabilityZone": format!("{region}a")
            }
        },
        "SecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": format!("{name} tasks and Lambda functions"),
                "VpcId": { "Ref": "Vpc" }
            }
        }
    })
}

fn network_outputs() -> serde_json::Value {
    json!({
        "VpcId": { "Value": { "Ref": "Vpc" } },
        "SubnetId": { "Value": { "Ref": "Subnet" } },
        "SecurityGroupId": { "Value": { "Ref": "SecurityGroup" } }
    })
}

fn lambda_role() -> serde_json::Value {
    json!({
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": { "Service": "lambda.amazonaws.com" },
                    "Action": "sts:AssumeRole"
                }]
            },
            "ManagedPolicyArns": [
                "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
            ]
        }
    })
}

/// The template of the Serverless Application Repository's rotation app, as far as moto takes it:
/// the function (in a VPC when `vpc` is given), its role, and the permission for Secrets Manager.
fn rotation_template(function_name: &str, in_vpc: bool) -> serde_json::Value {
    let mut function = json!({
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": function_name,
            "Runtime": "python3.12",
            "Handler": "lambda_function.lambda_handler",
            "Timeout": 30,
            "Role": { "Fn::GetAtt": ["RotationRole", "Arn"] },
            "Code": { "ZipFile": "def lambda_handler(event, context):\n    return None\n" }
        }
    });
    let mut template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Rotates a Secrets Manager secret for Amazon RDS MySQL (single user)",
        "Resources": {
            "RotationRole": lambda_role(),
            "SecretsManagerRotationPermission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "FunctionName": { "Ref": "RotationFunction" },
                    "Action": "lambda:InvokeFunction",
                    "Principal": "secretsmanager.amazonaws.com"
                }
            }
        },
        "Outputs": {
            "RotationLambdaARN": { "Value": { "Fn::GetAtt": ["RotationFunction", "Arn"] } }
        }
    });
    if in_vpc {
        template["Parameters"] = json!({
            "vpcSubnetIds": { "Type": "String" },
            "vpcSecurityGroupIds": { "Type": "String" }
        });
        function["Properties"]["VpcConfig"] = json!({
            "SubnetIds": [{ "Ref": "vpcSubnetIds" }],
            "SecurityGroupIds": [{ "Ref": "vpcSecurityGroupIds" }]
        });
    }
    template["Resources"]["RotationFunction"] = function;
    template
}

/// Creates a stack and returns its id and outputs. moto creates stacks synchronously.
async fn create_stack(
    aws: &Aws,
    name: &str,
    template: &serde_json::Value,
    parameters: &[(&str, &str)],
) -> (String, BTreeMap<String, String>) {
    let mut request = aws
        .cloudformation
        .create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam);
    for (key, value) in parameters {
        request = request.parameters(
            Parameter::builder()
                .parameter_key(*key)
                .parameter_value(*value)
                .build(),
        );
    }
    let stack_id = request
        .send()
        .await
        .or_panic(&format!("create stack {name}"))
        .stack_id()
        .expect("CreateStack returns the stack id")
        .to_string();
    let described = aws
        .cloudformation
        .describe_stacks()
        .stack_name(&stack_id)
        .send()
        .await
        .or_panic(&format!("describe stack {name}"));
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
        "workshop fixture: stack {name} is {status}, not CREATE_COMPLETE: {:?}",
        stack.stack_status_reason()
    );
    let outputs = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect();
    (stack_id, outputs)
}

fn output(outputs: &BTreeMap<String, String>, key: &str, stack: &str) -> String {
    outputs
        .get(key)
        .unwrap_or_else(|| {
            panic!("workshop fixture: stack {stack} has no output {key}: {outputs:?}")
        })
        .clone()
}

/// A VPC, subnet and security group in a stack of their own (plus `extra` resources), with DNS
/// hostnames on: RunTask needs them.
async fn network_stack(
    aws: &Aws,
    name: &str,
    cidr: u8,
    extra: serde_json::Value,
) -> (String, String, String, String) {
    let mut resources = network_resources(&aws.region, cidr, name);
    if let (Some(resources), Some(extra)) = (resources.as_object_mut(), extra.as_object()) {
        resources.extend(extra.clone());
    }
    let template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("{name}: network for the Secrets Manager + Fargate workshop"),
        "Resources": resources,
        "Outputs": network_outputs()
    });
    let (stack_id, outputs) = create_stack(aws, name, &template, &[]).await;
    let vpc_id = output(&outputs, "VpcId", name);
    // moto ignores EnableDnsHostnames in templates, and RunTask fails without it.
    aws.ec2
        .modify_vpc_attribute()
        .vpc_id(&vpc_id)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .or_panic("enable DNS hostnames");
    (
        stack_id,
        vpc_id,
        output(&outputs, "SubnetId", name),
        output(&outputs, "SecurityGroupId", name),
    )
}

/// A stack holding a rotation Lambda (as the Serverless Application Repository makes it), in a
/// VPC when `vpc` gives a subnet and a security group. Returns the stack id and the function ARN.
pub async fn deploy_rotation_function(
    aws: &Aws,
    stack: &str,
    function_name: &str,
    vpc: Option<(&str, &str)>,
) -> (String, String) {
    let template = rotation_template(function_name, vpc.is_some());
    let parameters: Vec<(&str, &str)> = match vpc {
        Some((subnet, group)) => vec![("vpcSubnetIds", subnet), ("vpcSecurityGroupIds", group)],
        None => Vec::new(),
    };
    let (stack_id, outputs) = create_stack(aws, stack, &template, &parameters).await;
    (stack_id, output(&outputs, "RotationLambdaARN", stack))
}

/// A secret holding database credentials, with rotation on (every 30 days, by `lambda_arn`).
pub async fn create_rotating_secret(
    aws: &Aws,
    name: &str,
    lambda_arn: &str,
    tags: &[(&str, &str)],
) -> String {
    let mut request = aws
        .secretsmanager
        .create_secret()
        .name(name)
        .description("Database credentials for the Secrets Manager + Fargate workshop")
        .secret_string(
            json!({
                "engine": "mysql",
                "host": "workshop-db.cluster-abc.rds.amazonaws.com",
                "port": 3306,
                "username": "admin",
                "password": "not-a-real-password",
                "dbname": "workshop"
            })
            .to_string(),
        );
    for (key, value) in tags {
        request = request.tags(Tag::builder().key(*key).value(*value).build());
    }
    let arn = request
        .send()
        .await
        .or_panic(&format!("create secret {name}"))
        .arn()
        .expect("CreateSecret returns the ARN")
        .to_string();
    // Not immediately: that would call the Lambda four times (moto cannot run it anyway) and
    // leave a pending version as the current one.
    aws.secretsmanager
        .rotate_secret()
        .secret_id(&arn)
        .rotation_lambda_arn(lambda_arn)
        .rotation_rules(
            RotationRulesType::builder()
                .automatically_after_days(30)
                .build(),
        )
        .rotate_immediately(false)
        .send()
        .await
        .or_panic(&format!("turn on rotation of {name}"));
    arn
}

/// Two revisions of a Fargate task definition whose container runs `image`; ARNs, oldest first.
async fn register_task_definitions(
    aws: &Aws,
    family: &str,
    image: &str,
    count: usize,
) -> Vec<String> {
    let mut arns = Vec::new();
    for revision in 1..=count {
        let container = ContainerDefinition::builder()
            .name("app")
            .image(image)
            .essential(true)
            // moto's RunTask needs memory on the container, not only on the task.
            .memory(512)
            .port_mappings(PortMapping::builder().container_port(80).build())
            .environment(
                aws_sdk_ecs::types::KeyValuePair::builder()
                    .name("REVISION")
                    .value(revision.to_string())
                    .build(),
            )
            .build();
        let registered = aws
            .ecs
            .register_task_definition()
            .family(family)
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(container)
            .send()
            .await
            .or_panic(&format!("register task definition {family}"));
        let arn = registered
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .expect("RegisterTaskDefinition returns the ARN");
        arns.push(arn.to_string());
    }
    arns
}

fn awsvpc(subnet: &str, group: &str) -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets(subnet)
                // moto's RunTask fails without security groups here.
                .security_groups(group)
                .assign_public_ip(AssignPublicIp::Enabled)
                .build()
                .expect("subnets are set"),
        )
        .build()
}

/// A cluster, a Fargate service in it (desired 1) and its running task. Returns the task ARNs.
async fn cluster_with_service(
    aws: &Aws,
    cluster: &str,
    service: &str,
    task_definition: &str,
    subnet: &str,
    group: &str,
) -> Vec<String> {
    aws.ecs
        .create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .or_panic(&format!("create cluster {cluster}"));
    aws.ecs
        .create_service()
        .cluster(cluster)
        .service_name(service)
        .task_definition(task_definition)
        .desired_count(1)
        .launch_type(LaunchType::Fargate)
        .network_configuration(awsvpc(subnet, group))
        .send()
        .await
        .or_panic(&format!("create service {service}"));
    // moto starts no task for a service: start the one the service would have, as it would.
    let ran = aws
        .ecs
        .run_task()
        .cluster(cluster)
        .task_definition(task_definition)
        .launch_type(LaunchType::Fargate)
        .network_configuration(awsvpc(subnet, group))
        .started_by("ecs-svc/7413967218594530303")
        .group(format!("service:{service}"))
        .send()
        .await
        .or_panic(&format!("run a task in {cluster}"));
    assert!(
        ran.failures().is_empty(),
        "workshop fixture: RunTask in {cluster} failed: {:?}",
        ran.failures()
    );
    let tasks: Vec<String> = ran
        .tasks()
        .iter()
        .filter_map(|t| t.task_arn().map(str::to_string))
        .collect();
    assert_eq!(
        tasks.len(),
        1,
        "workshop fixture: RunTask in {cluster} started {tasks:?}"
    );
    tasks
}

/// A repository with `count` distinct images (distinct layers, so distinct digests). Returns the
/// repository URI and the digests.
async fn repository_with_images(aws: &Aws, name: &str, count: usize) -> (String, Vec<String>) {
    let created = aws
        .ecr
        .create_repository()
        .repository_name(name)
        .send()
        .await
        .or_panic(&format!("create repository {name}"));
    let uri = created
        .repository()
        .and_then(|r| r.repository_uri())
        .expect("CreateRepository returns the URI")
        .to_string();
    let mut digests = Vec::new();
    for i in 0..count {
        let tag = if i + 1 == count {
            "latest".to_string()
        } else {
            format!("v{}", i + 1)
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1470 + i,
                "digest": fake_digest(name, "config", i)
            },
            "layers": [{
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 31_357_624 + i,
                "digest": fake_digest(name, "layer", i)
            }]
        });
        let pushed = aws
            .ecr
            .put_image()
            .repository_name(name)
            .image_manifest(manifest.to_string())
            .image_tag(&tag)
            .send()
            .await
            .or_panic(&format!("push image {name}:{tag}"));
        let digest = pushed
            .image()
            .and_then(|i| i.image_id())
            .and_then(|id| id.image_digest())
            .expect("PutImage returns the digest");
        digests.push(digest.to_string());
    }
    (uri, digests)
}

/// A well-formed sha256 digest, different for every (repository, part, index).
fn fake_digest(repository: &str, part: &str, index: usize) -> String {
    use std::hash::{Hash, Hasher};
    let mut hex = String::new();
    for round in 0..4u8 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (repository, part, index, round).hash(&mut hasher);
        hex.push_str(&format!("{:016x}", hasher.finish()));
    }
    format!("sha256:{hex}")
}

/// A network interface as Lambda makes one for a function in a VPC.
async fn lambda_eni(aws: &Aws, function: &str, subnet: &str, group: &str, index: usize) -> String {
    let created = aws
        .ec2
        .create_network_interface()
        .subnet_id(subnet)
        .groups(group)
        .description(format!(
            "AWS Lambda VPC ENI-{function}-{index:08x}-4f1c-4b7e-9d3a-5c2e8f0a{index:04x}"
        ))
        .send()
        .await
        .or_panic("create a Lambda network interface");
    created
        .network_interface()
        .and_then(|n| n.network_interface_id())
        .expect("CreateNetworkInterface returns the id")
        .to_string()
}

/// Builds the workshop as it stands at the end of the workshop, under `names`. Use clients of
/// their own (see the module docs), after `moto.keep_tasks_running()`.
pub async fn provision_workshop(aws: &Aws, names: &WorkshopNames) -> Workshop {
    let main_extra = json!({
        "TaskLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": format!("/ecs/{}", names.task_family),
                "RetentionInDays": 7
            }
        },
        "WorkshopFunctionRole": lambda_role(),
        "WorkshopFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Role": { "Fn::GetAtt": ["WorkshopFunctionRole", "Arn"] },
                "Code": { "ZipFile": "def handler(event, context):\n    return None\n" },
                "VpcConfig": {
                    "SubnetIds": [{ "Ref": "Subnet" }],
                    "SecurityGroupIds": [{ "Ref": "SecurityGroup" }]
                }
            }
        }
    });
    let (main_stack_id, vpc_id, subnet_id, security_group_id) =
        network_stack(aws, &names.main_stack, 10, main_extra).await;

    let (rotation_stack_id, rotation_lambda_arn) = deploy_rotation_function(
        aws,
        &names.rotation_stack,
        &names.rotation_function,
        Some((&subnet_id, &security_group_id)),
    )
    .await;
    let mut lambda_enis = Vec::new();
    for index in 0..2 {
        lambda_enis.push(
            lambda_eni(
                aws,
                &names.rotation_function,
                &subnet_id,
                &security_group_id,
                index,
            )
            .await,
        );
    }

    let secret_arn = create_rotating_secret(aws, &names.secret, &rotation_lambda_arn, &[]).await;

    let (repository_uri, image_digests) = repository_with_images(aws, &names.repository, 2).await;
    let task_definitions = register_task_definitions(
        aws,
        &names.task_family,
        &format!("{repository_uri}:latest"),
        2,
    )
    .await;
    let latest = task_definitions.last().expect("two revisions").clone();
    let tasks = cluster_with_service(
        aws,
        &names.cluster,
        &names.service,
        &latest,
        &subnet_id,
        &security_group_id,
    )
    .await;

    Workshop {
        main_stack: names.main_stack.clone(),
        main_stack_id,
        rotation_stack: names.rotation_stack.clone(),
        rotation_stack_id,
        rotation_lambda_arn,
        cluster: names.cluster.clone(),
        service: names.service.clone(),
        tasks,
        task_family: names.task_family.clone(),
        task_definitions,
        repository: names.repository.clone(),
        image_digests,
        secret: names.secret.clone(),
        secret_arn,
        vpc_id,
        subnet_id,
        security_group_id,
        lambda_enis,
    }
}

/// Builds the look-alikes (fixed names, all unlike the default [`WorkshopNames`] in a way a
/// careless filter would miss).
pub async fn provision_bystanders(aws: &Aws) -> Bystanders {
    let other_stack = "SecretsManagerWorkshop-Other";
    let other_rotation_stack =
        "aws-serverless-repository-SecretsManagerRDSPostgreSQLRotationSingleUser-8M2V4WQ6R1BZ";
    let unrelated_stack = "aws-serverless-repository-SomethingElse";
    let other_function = "SecretsManagerRDSPostgreSQLRotationSingleUser";

    let (_, vpc_id, subnet_id, group) = network_stack(aws, other_stack, 20, json!({})).await;
    let (_, other_lambda_arn) = deploy_rotation_function(
        aws,
        other_rotation_stack,
        other_function,
        Some((&subnet_id, &group)),
    )
    .await;
    let unrelated = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Logs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": { "LogGroupName": "/aws/lambda/something-else", "RetentionInDays": 7 }
            }
        }
    });
    create_stack(aws, unrelated_stack, &unrelated, &[]).await;
    let lambda_eni = lambda_eni(aws, other_function, &subnet_id, &group, 7).await;

    let secret = "secrets-manager-fargate-demo-db-secret-old";
    let secret_arn = create_rotating_secret(
        aws,
        secret,
        &other_lambda_arn,
        &[("Workshop", "previous-run")],
    )
    .await;

    let repository = "secrets-manager-rds-demo-old";
    let (repository_uri, _) = repository_with_images(aws, repository, 1).await;
    let task_family = "FargateTaskDemoOld";
    let task_definitions =
        register_task_definitions(aws, task_family, &format!("{repository_uri}:latest"), 2).await;
    let cluster = "FargateClusterDemo2";
    let service = "FargateServiceDemo";
    let latest = task_definitions.last().expect("two revisions").clone();
    let tasks = cluster_with_service(aws, cluster, service, &latest, &subnet_id, &group).await;

    Bystanders {
        stacks: vec![
            other_stack.to_string(),
            other_rotation_stack.to_string(),
            unrelated_stack.to_string(),
        ],
        vpc_id,
        subnet_id,
        cluster: cluster.into(),
        service: service.into(),
        tasks,
        task_family: task_family.into(),
        task_definitions,
        repository: repository.into(),
        secret: secret.into(),
        secret_arn,
        lambda_eni,
    }
}

/// What AWS said, for a panic message.
fn unexpected(what: &str, e: &AwsError) -> ! {
    panic!("workshop fixture: cannot check {what}: {e}")
}

/// A stack's status by name or id, `None` once it is gone.
async fn stack_status(aws: &Aws, name_or_id: &str) -> Option<String> {
    match aws
        .cloudformation
        .describe_stacks()
        .stack_name(name_or_id)
        .send()
        .await
    {
        Ok(out) => {
            let status = out
                .stacks()
                .first()
                .and_then(|s| s.stack_status())
                .map(|s| s.as_str().to_string())?;
            (status != "DELETE_COMPLETE").then_some(status)
        }
        Err(e) => {
            let e = AwsError::from_sdk("CloudFormation.DescribeStacks", e);
            // CloudFormation's only word for a missing stack (see sdk-notes.md).
            if e.code.as_deref() == Some("ValidationError") && e.message.contains("does not exist")
            {
                None
            } else {
                unexpected(&format!("stack {name_or_id}"), &e)
            }
        }
    }
}

async fn vpc_exists(aws: &Aws, vpc_id: &str) -> bool {
    let out = aws
        .ec2
        .describe_vpcs()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2.DescribeVpcs", e))
        .unwrap_or_else(|e| unexpected(&format!("VPC {vpc_id}"), &e));
    !out.vpcs().is_empty()
}

/// The interfaces of `ids` that still exist, with their status.
async fn enis_present(aws: &Aws, ids: &[String]) -> Vec<(String, String)> {
    let out = aws
        .ec2
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("network-interface-id")
                .set_values(Some(ids.to_vec()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2.DescribeNetworkInterfaces", e))
        .unwrap_or_else(|e| unexpected("network interfaces", &e));
    out.network_interfaces()
        .iter()
        .filter_map(|n| {
            Some((
                n.network_interface_id()?.to_string(),
                n.status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            ))
        })
        .collect()
}

/// A cluster's status, `None` when ECS does not know it.
async fn cluster_status(aws: &Aws, cluster: &str) -> Option<String> {
    let out = aws
        .ecs
        .describe_clusters()
        .clusters(cluster)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ECS.DescribeClusters", e))
        .unwrap_or_else(|e| unexpected(&format!("cluster {cluster}"), &e));
    out.clusters()
        .first()
        .map(|c| c.status().unwrap_or_default().to_string())
}

/// A service's status and desired count, `None` when it (or its cluster) is not known.
async fn service_state(aws: &Aws, cluster: &str, service: &str) -> Option<(String, i32)> {
    match aws
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
    {
        Ok(out) => out.services().first().map(|s| {
            (
                s.status().unwrap_or_default().to_string(),
                s.desired_count(),
            )
        }),
        Err(e) => {
            let e = AwsError::from_sdk("ECS.DescribeServices", e);
            if e.is_not_found() {
                None
            } else {
                unexpected(&format!("service {service}"), &e)
            }
        }
    }
}

/// Each known task's (ARN, desired status, last status). The desired status is the judge: only a
/// StopTask sets it to STOPPED, whatever moto's state machine does to the last status.
async fn task_states(aws: &Aws, cluster: &str, tasks: &[String]) -> Vec<(String, String, String)> {
    match aws
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(tasks.to_vec()))
        .send()
        .await
    {
        Ok(out) => out
            .tasks()
            .iter()
            .filter_map(|t| {
                Some((
                    t.task_arn()?.to_string(),
                    t.desired_status().unwrap_or_default().to_string(),
                    t.last_status().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        Err(e) => {
            let e = AwsError::from_sdk("ECS.DescribeTasks", e);
            if e.is_not_found() {
                Vec::new()
            } else {
                unexpected(&format!("tasks of {cluster}"), &e)
            }
        }
    }
}

/// A task definition's status, `None` once it is deleted.
async fn task_definition_status(aws: &Aws, arn: &str) -> Option<String> {
    match aws
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
    {
        Ok(out) => out
            .task_definition()
            .and_then(|t| t.status())
            .map(|s| s.as_str().to_string()),
        Err(e) => {
            let e = AwsError::from_sdk("ECS.DescribeTaskDefinition", e);
            // ECS answers a deleted revision with a generic client error.
            if e.code.as_deref() == Some("ClientException") {
                None
            } else {
                unexpected(&format!("task definition {arn}"), &e)
            }
        }
    }
}

/// How many images a repository holds, `None` when it does not exist.
async fn repository_images(aws: &Aws, repository: &str) -> Option<usize> {
    match aws
        .ecr
        .list_images()
        .repository_name(repository)
        .send()
        .await
    {
        Ok(out) => Some(out.image_ids().len()),
        Err(e) => {
            let e = AwsError::from_sdk("ECR.ListImages", e);
            if e.is_not_found() {
                None
            } else {
                unexpected(&format!("repository {repository}"), &e)
            }
        }
    }
}

/// A secret as the checks see it.
#[derive(Debug)]
enum SecretState {
    /// Deleted for good.
    Gone,
    /// Scheduled for deletion; whether rotation is still on.
    Scheduled { rotation: bool },
    /// Live; whether rotation is on.
    Live { rotation: bool },
}

async fn secret_state(aws: &Aws, arn: &str) -> SecretState {
    match aws
        .secretsmanager
        .describe_secret()
        .secret_id(arn)
        .send()
        .await
    {
        Ok(out) => {
            let rotation = out.rotation_enabled().unwrap_or(false);
            if out.deleted_date().is_some() {
                SecretState::Scheduled { rotation }
            } else {
                SecretState::Live { rotation }
            }
        }
        Err(e) => {
            let e = AwsError::from_sdk("SecretsManager.DescribeSecret", e);
            if e.is_not_found() {
                SecretState::Gone
            } else {
                unexpected(&format!("secret {arn}"), &e)
            }
        }
    }
}

/// What is left of the workshop, one line per thing, e.g. `ECS cluster FargateClusterDemo
/// (ACTIVE)`; empty once the teardown is complete. A secret counts as gone once it is scheduled
/// for deletion and its rotation is off; a task once it was stopped; a task definition once it is
/// no longer ACTIVE; the Lambda interfaces and the VPC once they do not exist.
pub async fn workshop_leftovers(aws: &Aws, w: &Workshop) -> Vec<String> {
    let mut left = Vec::new();
    for (name, id) in [
        (&w.main_stack, &w.main_stack_id),
        (&w.rotation_stack, &w.rotation_stack_id),
    ] {
        if let Some(status) = stack_status(aws, id).await {
            left.push(format!("CloudFormation stack {name} ({status})"));
        }
    }
    if vpc_exists(aws, &w.vpc_id).await {
        left.push(format!("VPC {} of stack {}", w.vpc_id, w.main_stack));
    }
    for (id, status) in enis_present(aws, &w.lambda_enis).await {
        left.push(format!("Lambda network interface {id} ({status})"));
    }
    if let Some(status) = cluster_status(aws, &w.cluster)
        .await
        .filter(|s| s != "INACTIVE")
    {
        left.push(format!("ECS cluster {} ({status})", w.cluster));
    }
    if let Some((status, desired)) = service_state(aws, &w.cluster, &w.service)
        .await
        .filter(|(s, _)| s != "INACTIVE")
    {
        left.push(format!(
            "ECS service {} ({status}, desired {desired})",
            w.service
        ));
    }
    for (arn, desired, last) in task_states(aws, &w.cluster, &w.tasks).await {
        if desired != "STOPPED" || last != "STOPPED" {
            left.push(format!("ECS task {arn} (desired {desired}, last {last})"));
        }
    }
    for arn in &w.task_definitions {
        if let Some(status) = task_definition_status(aws, arn)
            .await
            .filter(|s| s == "ACTIVE")
        {
            left.push(format!("ECS task definition {arn} ({status})"));
        }
    }
    if let Some(images) = repository_images(aws, &w.repository).await {
        left.push(format!("ECR repository {} ({images} images)", w.repository));
    }
    match secret_state(aws, &w.secret_arn).await {
        SecretState::Gone | SecretState::Scheduled { rotation: false } => {}
        SecretState::Scheduled { rotation: true } => left.push(format!(
            "secret {} (scheduled for deletion, but its rotation is still on)",
            w.secret
        )),
        SecretState::Live { .. } => {
            left.push(format!("secret {} (not scheduled for deletion)", w.secret))
        }
    }
    left
}

/// Panics, listing every leftover, unless the whole workshop is gone.
pub async fn assert_workshop_gone(aws: &Aws, w: &Workshop) {
    let left = workshop_leftovers(aws, w).await;
    assert!(
        left.is_empty(),
        "the workshop is not gone; still there:\n  {}",
        left.join("\n  ")
    );
}

/// What happened to the bystanders, one line per problem; empty when they are as provisioned.
pub async fn bystander_damage(aws: &Aws, b: &Bystanders) -> Vec<String> {
    let mut damage = Vec::new();
    for stack in &b.stacks {
        match stack_status(aws, stack).await {
            Some(status) if status == "CREATE_COMPLETE" => {}
            Some(status) => damage.push(format!("CloudFormation stack {stack} is {status}")),
            None => damage.push(format!("CloudFormation stack {stack} is gone")),
        }
    }
    if !vpc_exists(aws, &b.vpc_id).await {
        damage.push(format!("VPC {} is gone", b.vpc_id));
    }
    let enis = enis_present(aws, std::slice::from_ref(&b.lambda_eni)).await;
    if enis.is_empty() {
        damage.push(format!(
            "Lambda network interface {} (other VPC) is gone",
            b.lambda_eni
        ));
    }
    match cluster_status(aws, &b.cluster).await {
        Some(status) if status == "ACTIVE" => {}
        Some(status) => damage.push(format!("ECS cluster {} is {status}", b.cluster)),
        None => damage.push(format!("ECS cluster {} is gone", b.cluster)),
    }
    match service_state(aws, &b.cluster, &b.service).await {
        Some((status, 1)) if status == "ACTIVE" => {}
        Some((status, desired)) => damage.push(format!(
            "ECS service {} in {} is {status}, desired {desired}",
            b.service, b.cluster
        )),
        None => damage.push(format!(
            "ECS service {} in {} is gone",
            b.service, b.cluster
        )),
    }
    let tasks = task_states(aws, &b.cluster, &b.tasks).await;
    for arn in &b.tasks {
        match tasks.iter().find(|(a, _, _)| a == arn) {
            Some((_, desired, _)) if desired == "RUNNING" => {}
            Some((_, desired, last)) => damage.push(format!(
                "ECS task {arn} in {} was stopped (desired {desired}, last {last})",
                b.cluster
            )),
            None => damage.push(format!("ECS task {arn} in {} is gone", b.cluster)),
        }
    }
    for arn in &b.task_definitions {
        match task_definition_status(aws, arn).await {
            Some(status) if status == "ACTIVE" => {}
            Some(status) => damage.push(format!("ECS task definition {arn} is {status}")),
            None => damage.push(format!("ECS task definition {arn} is gone")),
        }
    }
    match repository_images(aws, &b.repository).await {
        Some(0) => damage.push(format!("ECR repository {} lost its images", b.repository)),
        Some(_) => {}
        None => damage.push(format!("ECR repository {} is gone", b.repository)),
    }
    match secret_state(aws, &b.secret_arn).await {
        SecretState::Live { rotation: true } => {}
        SecretState::Live { rotation: false } => {
            damage.push(format!("secret {}: its rotation was cancelled", b.secret))
        }
        SecretState::Scheduled { .. } => {
            damage.push(format!("secret {} is scheduled for deletion", b.secret))
        }
        SecretState::Gone => damage.push(format!("secret {} is gone", b.secret)),
    }
    damage
}

/// Panics, listing every problem, unless the bystanders are as provisioned.
pub async fn assert_bystanders_untouched(aws: &Aws, b: &Bystanders) {
    let damage = bystander_damage(aws, b).await;
    assert!(
        damage.is_empty(),
        "bystanders were touched:\n  {}",
        damage.join("\n  ")
    );
}

// ---- the serverless workshop's rotate-and-redeploy, and the secret-alerting lab -----------------
//
// Two more flows that workshops leave in an account, each with look-alikes that their plans
// (`plans/rotate-and-redeploy.toml`, `plans/secret-alerting-lab.toml`) must leave alone, and a
// snapshot of everything the checks look at, so that a dry run can be shown to change nothing.

/// Removes the AWSPENDING label that moto leaves on the version its rotation test made when
/// rotation was turned on without rotating (`RotateImmediately=false`). AWS removes it once its
/// testSecret step is done; left in place, it looks like an unfinished rotation.
async fn settle_test_rotation(aws: &Aws, arn: &str) {
    for (version, labels) in secret_versions(aws, arn).await {
        if labels.iter().any(|l| l == "AWSPENDING") && !labels.iter().any(|l| l == "AWSCURRENT") {
            aws.secretsmanager
                .update_secret_version_stage()
                .secret_id(arn)
                .version_stage("AWSPENDING")
                .remove_from_version_id(&version)
                .send()
                .await
                .or_panic("remove the AWSPENDING label of the rotation test");
        }
    }
}

/// A secret with rotation on through a Lambda function of its own (stack `stack`, function
/// `function`), as the Serverless Application Repository sets it up; its ARN.
async fn secret_rotated_by_lambda(aws: &Aws, name: &str, stack: &str, function: &str) -> String {
    let (_, lambda) = deploy_rotation_function(aws, stack, function, None).await;
    let arn = create_rotating_secret(aws, name, &lambda, &[]).await;
    settle_test_rotation(aws, &arn).await;
    arn
}

/// Each version of a secret with its labels (AWSCURRENT, AWSPENDING, AWSPREVIOUS). Never a value.
pub async fn secret_versions(aws: &Aws, arn: &str) -> BTreeMap<String, Vec<String>> {
    let out = aws
        .secretsmanager
        .describe_secret()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("SecretsManager.DescribeSecret", e))
        .unwrap_or_else(|e| unexpected(&format!("secret {arn}"), &e));
    out.version_ids_to_stages()
        .into_iter()
        .flatten()
        .map(|(version, labels)| {
            let mut labels = labels.clone();
            labels.sort();
            (version.clone(), labels)
        })
        .collect()
}

/// The version of a secret that is AWSCURRENT.
pub async fn current_version(aws: &Aws, arn: &str) -> String {
    secret_versions(aws, arn)
        .await
        .into_iter()
        .find(|(_, labels)| labels.iter().any(|l| l == "AWSCURRENT"))
        .map(|(version, _)| version)
        .unwrap_or_else(|| panic!("workshop fixture: secret {arn} has no AWSCURRENT version"))
}

/// A service as the rotate-and-redeploy checks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSnapshot {
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: String,
    /// Desired count.
    pub desired: i32,
    /// Running count.
    pub running: i32,
    /// Its deployments: (id, status), PRIMARY first as ECS lists them.
    pub deployments: Vec<(String, String)>,
}

/// A service's state now.
pub async fn service_snapshot(aws: &Aws, cluster: &str, service: &str) -> ServiceSnapshot {
    let out = aws
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ECS.DescribeServices", e))
        .unwrap_or_else(|e| unexpected(&format!("service {service} in {cluster}"), &e));
    let s = out
        .services()
        .first()
        .unwrap_or_else(|| panic!("workshop fixture: service {service} in {cluster} is gone"));
    ServiceSnapshot {
        status: s.status().unwrap_or_default().to_string(),
        desired: s.desired_count(),
        running: s.running_count(),
        deployments: s
            .deployments()
            .iter()
            .map(|d| {
                (
                    d.id().unwrap_or_default().to_string(),
                    d.status().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    }
}

/// A Fargate service (desired 1) in an existing cluster, with the task it runs. moto reports a
/// new service's running count as 0 whatever runs; setting the desired count again makes it
/// report the task (moto copies the desired count into the running count), as AWS would once the
/// task is up.
async fn running_service(
    aws: &Aws,
    cluster: &str,
    service: &str,
    task_definition: &str,
    subnet: &str,
    group: &str,
) {
    aws.ecs
        .create_service()
        .cluster(cluster)
        .service_name(service)
        .task_definition(task_definition)
        .desired_count(1)
        .launch_type(LaunchType::Fargate)
        .network_configuration(awsvpc(subnet, group))
        .send()
        .await
        .or_panic(&format!("create service {service}"));
    let ran = aws
        .ecs
        .run_task()
        .cluster(cluster)
        .task_definition(task_definition)
        .launch_type(LaunchType::Fargate)
        .network_configuration(awsvpc(subnet, group))
        .group(format!("service:{service}"))
        .send()
        .await
        .or_panic(&format!("run the task of {service}"));
    assert!(
        ran.failures().is_empty(),
        "workshop fixture: RunTask for {service} failed: {:?}",
        ran.failures()
    );
    report_running(aws, cluster, service).await;
}

async fn report_running(aws: &Aws, cluster: &str, service: &str) {
    aws.ecs
        .update_service()
        .cluster(cluster)
        .service(service)
        .desired_count(1)
        .send()
        .await
        .or_panic(&format!("make moto report the task of {service}"));
}

/// The serverless workshop as the rotate-and-redeploy plan finds it: the database secret with
/// rotation by a Lambda function, and the Fargate service that reads it.
#[derive(Clone, Debug)]
pub struct RotateLab {
    /// `serverless-credentials`.
    pub secret: String,
    /// Its ARN.
    pub secret_arn: String,
    /// `FargateClusterDemo`.
    pub cluster: String,
    /// `FargateServiceDemo`.
    pub service: String,
    /// Look-alike secrets (a longer name, rotation on): their ARNs.
    pub bystander_secrets: Vec<String>,
    /// Look-alike services, as (cluster, service): another service of the same cluster whose
    /// name starts with the workshop's, and a service of the workshop's name in another cluster.
    pub bystander_services: Vec<(String, String)>,
}

/// Builds the serverless workshop's secret and service under their real names, and look-alikes.
/// Use clients of their own, after `keep_tasks_running`.
pub async fn provision_rotate_lab(aws: &Aws) -> RotateLab {
    let (_, _, subnet, group) = network_stack(aws, "ServerlessWorkshop", 30, json!({})).await;
    let task_definitions =
        register_task_definitions(aws, "ServerlessTaskDemo", "nginx:latest", 1).await;
    let task_definition = task_definitions.last().expect("one revision").clone();
    let (cluster, service) = ("FargateClusterDemo", "FargateServiceDemo");
    cluster_with_service(aws, cluster, service, &task_definition, &subnet, &group).await;
    report_running(aws, cluster, service).await;
    let secret = "serverless-credentials";
    let secret_arn = secret_rotated_by_lambda(
        aws,
        secret,
        "aws-serverless-repository-SecretsManagerRotationServerless-4HQ2",
        "serverless-credentials-rotation",
    )
    .await;

    let worker = "FargateServiceDemoWorker";
    running_service(aws, cluster, worker, &task_definition, &subnet, &group).await;
    let other_cluster = "FargateClusterDemoStaging";
    cluster_with_service(
        aws,
        other_cluster,
        service,
        &task_definition,
        &subnet,
        &group,
    )
    .await;
    report_running(aws, other_cluster, service).await;
    let other_secret = secret_rotated_by_lambda(
        aws,
        "serverless-credentials-staging",
        "aws-serverless-repository-SecretsManagerRotationServerless-9ZK1",
        "serverless-credentials-staging-rotation",
    )
    .await;

    RotateLab {
        secret: secret.into(),
        secret_arn,
        cluster: cluster.into(),
        service: service.into(),
        bystander_secrets: vec![other_secret],
        bystander_services: vec![
            (cluster.into(), worker.into()),
            (other_cluster.into(), service.into()),
        ],
    }
}

/// Everything of a [`RotateLab`] the checks compare: each secret's versions and labels, each
/// service's counts and deployments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotateLabSnapshot {
    /// By secret ARN: version to labels.
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// By `cluster/service`.
    pub services: BTreeMap<String, ServiceSnapshot>,
}

/// The lab's state now, bystanders included.
pub async fn rotate_lab_snapshot(aws: &Aws, lab: &RotateLab) -> RotateLabSnapshot {
    let mut secrets = BTreeMap::new();
    for arn in std::iter::once(&lab.secret_arn).chain(&lab.bystander_secrets) {
        secrets.insert(arn.clone(), secret_versions(aws, arn).await);
    }
    let mut services = BTreeMap::new();
    for (cluster, service) in
        std::iter::once(&(lab.cluster.clone(), lab.service.clone())).chain(&lab.bystander_services)
    {
        services.insert(
            format!("{cluster}/{service}"),
            service_snapshot(aws, cluster, service).await,
        );
    }
    RotateLabSnapshot { secrets, services }
}

/// The secret-alerting lab as its clean-up finds it.
#[derive(Clone, Debug)]
pub struct AlertingLab {
    /// The rule on DeleteSecret (default bus).
    pub rule: String,
    /// Its ARN.
    pub rule_arn: String,
    /// The rule's target id.
    pub target_id: String,
    /// The topic (the rule's target).
    pub topic_arn: String,
    /// Its subscriptions' ARNs (an email and an SMS number).
    pub subscriptions: Vec<String>,
    /// The email subscribed.
    pub email: String,
    /// The phone number subscribed.
    pub phone: String,
    /// The secret.
    pub secret: String,
    /// Its ARN.
    pub secret_arn: String,
    /// The rotation stack (named as the Serverless Application Repository does).
    pub rotation_stack: String,
    /// Its id.
    pub rotation_stack_id: String,
}

/// Look-alikes the lab's clean-up must leave alone.
#[derive(Clone, Debug)]
pub struct AlertingBystanders {
    /// Rules as (bus, name): one with the same source and another name, one with the lab rule's
    /// name on another bus, one with the lab rule's name prefix and another source.
    pub rules: Vec<(String, String)>,
    /// A topic whose name starts with the lab's (a target of the rules above).
    pub topic_arn: String,
    /// Its subscription.
    pub subscription: String,
    /// A secret whose name starts with the lab's, rotation on.
    pub secret_arn: String,
    /// A rotation stack for PostgreSQL (outside the lab's MySQL glob).
    pub stack: String,
}

async fn alert_rule(
    aws: &Aws,
    bus: &str,
    name: &str,
    source: &str,
    target: (&str, &str),
) -> String {
    let pattern = json!({
        "source": [source],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": [format!("{}.amazonaws.com", source.trim_start_matches("aws."))],
            "eventName": ["DeleteSecret"]
        }
    });
    let rule_arn = aws
        .eventbridge
        .put_rule()
        .name(name)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .description("Alert when a secret is deleted")
        .send()
        .await
        .or_panic(&format!("create rule {name} on {bus}"))
        .rule_arn()
        .expect("PutRule returns the ARN")
        .to_string();
    let put = aws
        .eventbridge
        .put_targets()
        .rule(name)
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id(target.0)
                .arn(target.1)
                .build()
                .expect("id and ARN are set"),
        )
        .send()
        .await
        .or_panic(&format!("add a target to rule {name}"));
    assert_eq!(put.failed_entry_count(), 0, "workshop fixture: {put:?}");
    rule_arn
}

async fn topic(aws: &Aws, name: &str, subscribers: &[(&str, &str)]) -> (String, Vec<String>) {
    let arn = aws
        .sns
        .create_topic()
        .name(name)
        .send()
        .await
        .or_panic(&format!("create topic {name}"))
        .topic_arn()
        .expect("CreateTopic returns the ARN")
        .to_string();
    let mut subscriptions = Vec::new();
    for (protocol, endpoint) in subscribers {
        let subscribed = aws
            .sns
            .subscribe()
            .topic_arn(&arn)
            .protocol(*protocol)
            .endpoint(*endpoint)
            .return_subscription_arn(true)
            .send()
            .await
            .or_panic(&format!("subscribe {protocol} to {name}"));
        subscriptions.push(
            subscribed
                .subscription_arn()
                .expect("Subscribe returns the ARN")
                .to_string(),
        );
    }
    (arn, subscriptions)
}

/// Builds the secret-alerting lab under the names `plans/secret-alerting-lab.toml` expects, and
/// look-alikes. Use clients of their own.
pub async fn provision_alerting_lab(aws: &Aws) -> (AlertingLab, AlertingBystanders) {
    let (email, phone) = ("alice@example.com", "+15550100199");
    let (topic_arn, subscriptions) = topic(
        aws,
        "SecretDeletionAlerts",
        &[("email", email), ("sms", phone)],
    )
    .await;
    let (rule, target_id) = ("SecretDeletionAlertRule", "SecretDeletionTopic");
    let rule_arn = alert_rule(
        aws,
        "default",
        rule,
        "aws.secretsmanager",
        (target_id, &topic_arn),
    )
    .await;
    let rotation_stack =
        "aws-serverless-repository-SecretsManagerRDSMySQLRotationSingleUser-LAB7Q2PZ";
    let (rotation_stack_id, lambda) =
        deploy_rotation_function(aws, rotation_stack, "SecretsManagerLabMySQLRotation", None).await;
    let secret = "secrets-manager-lab-db-secret";
    let secret_arn = create_rotating_secret(aws, secret, &lambda, &[]).await;
    settle_test_rotation(aws, &secret_arn).await;

    let (other_topic, other_subscriptions) = topic(
        aws,
        "SecretDeletionAlerts-prod",
        &[("email", "oncall@example.com")],
    )
    .await;
    aws.eventbridge
        .create_event_bus()
        .name("lab-bus")
        .send()
        .await
        .or_panic("create event bus lab-bus");
    let rules = [
        ("default", "SecretRotationAlertRule", "aws.secretsmanager"),
        ("lab-bus", rule, "aws.secretsmanager"),
        ("default", "SecretDeletionAlertRule-ecs", "aws.ecs"),
    ];
    for (bus, name, source) in rules {
        alert_rule(aws, bus, name, source, ("Prod", &other_topic)).await;
    }
    let other_stack =
        "aws-serverless-repository-SecretsManagerRDSPostgreSQLRotationSingleUser-PROD9";
    let (_, other_lambda) = deploy_rotation_function(
        aws,
        other_stack,
        "SecretsManagerProdPostgreSQLRotation",
        None,
    )
    .await;
    let other_secret = create_rotating_secret(
        aws,
        "secrets-manager-lab-db-secret-prod",
        &other_lambda,
        &[],
    )
    .await;
    settle_test_rotation(aws, &other_secret).await;

    (
        AlertingLab {
            rule: rule.into(),
            rule_arn,
            target_id: target_id.into(),
            topic_arn,
            subscriptions,
            email: email.into(),
            phone: phone.into(),
            secret: secret.into(),
            secret_arn,
            rotation_stack: rotation_stack.into(),
            rotation_stack_id,
        },
        AlertingBystanders {
            rules: rules
                .iter()
                .map(|(bus, name, _)| (bus.to_string(), name.to_string()))
                .collect(),
            topic_arn: other_topic,
            subscription: other_subscriptions[0].clone(),
            secret_arn: other_secret,
            stack: other_stack.into(),
        },
    )
}

/// A rule's target ids, `None` when the rule does not exist.
async fn rule_targets(aws: &Aws, bus: &str, rule: &str) -> Option<Vec<String>> {
    match aws
        .eventbridge
        .list_targets_by_rule()
        .rule(rule)
        .event_bus_name(bus)
        .send()
        .await
    {
        Ok(out) => Some(out.targets().iter().map(|t| t.id().to_string()).collect()),
        Err(e) => {
            let e = AwsError::from_sdk("EventBridge.ListTargetsByRule", e);
            if e.is_not_found() {
                None
            } else {
                unexpected(&format!("rule {rule} on {bus}"), &e)
            }
        }
    }
}

/// Whether a rule exists (DescribeRule), by bus and name.
async fn rule_exists(aws: &Aws, bus: &str, rule: &str) -> bool {
    match aws
        .eventbridge
        .describe_rule()
        .name(rule)
        .event_bus_name(bus)
        .send()
        .await
    {
        Ok(_) => true,
        Err(e) => {
            let e = AwsError::from_sdk("EventBridge.DescribeRule", e);
            if e.is_not_found() {
                false
            } else {
                unexpected(&format!("rule {rule} on {bus}"), &e)
            }
        }
    }
}

/// Whether a topic exists.
async fn topic_exists(aws: &Aws, arn: &str) -> bool {
    let topics: Vec<_> = aws
        .sns
        .list_topics()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("SNS.ListTopics", e))
        .unwrap_or_else(|e| unexpected("topics", &e));
    topics.iter().any(|t| t.topic_arn() == Some(arn))
}

/// The ARNs of every subscription in the region.
pub async fn all_subscriptions(aws: &Aws) -> Vec<String> {
    let subscriptions: Vec<_> = aws
        .sns
        .list_subscriptions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("SNS.ListSubscriptions", e))
        .unwrap_or_else(|e| unexpected("subscriptions", &e));
    subscriptions
        .iter()
        .filter_map(|s| s.subscription_arn().map(str::to_string))
        .collect()
}

/// What is left of the lab, one line per thing; empty once its clean-up is complete (the secret
/// counts as gone once scheduled for deletion with its rotation off).
pub async fn alerting_lab_leftovers(aws: &Aws, lab: &AlertingLab) -> Vec<String> {
    let mut left = Vec::new();
    if rule_exists(aws, "default", &lab.rule).await {
        left.push(format!("EventBridge rule {}", lab.rule));
    }
    if topic_exists(aws, &lab.topic_arn).await {
        left.push(format!("SNS topic {}", lab.topic_arn));
    }
    let subscriptions = all_subscriptions(aws).await;
    for subscription in &lab.subscriptions {
        if subscriptions.contains(subscription) {
            left.push(format!("SNS subscription {subscription}"));
        }
    }
    match secret_state(aws, &lab.secret_arn).await {
        SecretState::Gone | SecretState::Scheduled { rotation: false } => {}
        state => left.push(format!("secret {} ({state:?})", lab.secret)),
    }
    if let Some(status) = stack_status(aws, &lab.rotation_stack_id).await {
        left.push(format!(
            "CloudFormation stack {} ({status})",
            lab.rotation_stack
        ));
    }
    left
}

/// What happened to the lab's look-alikes, one line per problem; empty when they are as
/// provisioned.
pub async fn alerting_bystander_damage(aws: &Aws, b: &AlertingBystanders) -> Vec<String> {
    let mut damage = Vec::new();
    for (bus, rule) in &b.rules {
        match rule_targets(aws, bus, rule).await {
            Some(targets) if targets == ["Prod"] => {}
            Some(targets) => damage.push(format!("rule {rule} on {bus} has targets {targets:?}")),
            None => damage.push(format!("rule {rule} on {bus} is gone")),
        }
    }
    if !topic_exists(aws, &b.topic_arn).await {
        damage.push(format!("SNS topic {} is gone", b.topic_arn));
    }
    if !all_subscriptions(aws).await.contains(&b.subscription) {
        damage.push(format!("SNS subscription {} is gone", b.subscription));
    }
    match secret_state(aws, &b.secret_arn).await {
        SecretState::Live { rotation: true } => {}
        state => damage.push(format!("secret {} is {state:?}", b.secret_arn)),
    }
    match stack_status(aws, &b.stack).await {
        Some(status) if status == "CREATE_COMPLETE" => {}
        status => damage.push(format!("stack {} is {status:?}", b.stack)),
    }
    damage
}
