//! The templates: our rendition of the workshop's `RDSFargate.yml` (reduced where moto cannot
//! follow, as the parent module lists), and of the rotation app the Serverless Application
//! Repository deploys.

use serde_json::{json, Value};

use super::{LabNames, DESCRIPTION};

/// `Name` (`<NamePrefix><suffix>`) and `Project` tags, as the template puts on everything.
fn name_tags(suffix: &str) -> Value {
    json!([
        { "Key": "Name", "Value": { "Fn::Join": ["", [{ "Ref": "NamePrefix" }, suffix]] } },
        { "Key": "Project", "Value": { "Ref": "ProjectTag" } }
    ])
}

fn assume_role(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": [service] },
            "Action": ["sts:AssumeRole"]
        }]
    })
}

fn policy(name_suffix: &str, actions: &[&str], resource: &str) -> Value {
    json!({
        "PolicyName": { "Fn::Join": ["", [{ "Ref": "NamePrefix" }, name_suffix]] },
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": resource }]
        }
    })
}

/// A stack function of the template (a stub: the real code stays theirs).
fn stack_function(name: &str, description: &str) -> Value {
    json!({
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": name,
            "Description": description,
            "Handler": "index.handler",
            "MemorySize": 128,
            "Role": { "Fn::GetAtt": ["LambdaExecutionRole", "Arn"] },
            "Runtime": "python3.6",
            "Timeout": 30,
            "Code": { "ZipFile": "def handler(event, context):\n    return None\n" }
        }
    })
}

fn self_reference(group: &str) -> Value {
    json!({
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {
            "FromPort": 0,
            "ToPort": 65535,
            "IpProtocol": "tcp",
            "GroupId": { "Fn::GetAtt": [group, "GroupId"] },
            "SourceSecurityGroupId": { "Fn::GetAtt": [group, "GroupId"] }
        }
    })
}

fn subnet(cidr: &str, az: &str, name: &str) -> Value {
    json!({
        "Type": "AWS::EC2::Subnet",
        "Properties": {
            "AvailabilityZone": az,
            "CidrBlock": cidr,
            "MapPublicIpOnLaunch": "true",
            "Tags": name_tags(name),
            "VpcId": { "Ref": "VpcName" }
        }
    })
}

/// Our rendition of `RDSFargate.yml` for one attendee, reduced as the module docs list.
pub(super) fn main_template(region: &str, names: &LabNames) -> Value {
    let resources = json!({
        "LogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": { "RetentionInDays": 3 }
        },
        "VpcName": {
            "Type": "AWS::EC2::VPC",
            "Properties": {
                "CidrBlock": "10.200.0.0/16",
                "EnableDnsSupport": "true",
                "EnableDnsHostnames": "true",
                "Tags": name_tags("-vpc")
            }
        },
        // The real template picks the AZs with the VpcEndpointServiceAzs custom resource.
        "DemoSubnet01": subnet("10.200.11.0/24", &format!("{region}a"), "-demosn01"),
        "DemoSubnet02": subnet("10.200.12.0/24", &format!("{region}b"), "-demosn02"),
        "BastionSG": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "Enable SSH access",
                "SecurityGroupIngress": [
                    { "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "10.200.0.0/16" }
                ],
                "Tags": name_tags("-bastionsg"),
                "VpcId": { "Ref": "VpcName" }
            }
        },
        "BastionSGSelfReference": self_reference("BastionSG"),
        "BastionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": assume_role("ec2.amazonaws.com"),
                "Path": "/",
                "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AmazonEC2RoleforSSM"],
                "Policies": [
                    policy("-CloudWatchLogs", &["logs:CreateLogGroup", "logs:CreateLogStream",
                        "logs:PutLogEvents", "logs:DescribeLogStreams"], "arn:aws:logs:*:*:*"),
                    policy("-others", &["cloudwatch:PutMetricData", "ec2:Describe*", "ecr:*",
                        "ecs:*", "kms:*", "secretsmanager:*"], "*")
                ]
            }
        },
        "BastionProfile": {
            "Type": "AWS::IAM::InstanceProfile",
            "Properties": { "Path": "/", "Roles": [{ "Ref": "BastionRole" }] }
        },
        "LambdaExecutionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": assume_role("lambda.amazonaws.com"),
                "Path": "/",
                "Policies": [{
                    "PolicyName": "root",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            { "Effect": "Allow", "Action": ["logs:CreateLogGroup",
                                "logs:CreateLogStream", "logs:PutLogEvents"],
                              "Resource": "arn:aws:logs:*:*:*" },
                            { "Effect": "Allow", "Action": ["ec2:DescribeVpcEndpointServices"],
                              "Resource": "*" }
                        ]
                    }
                }]
            }
        },
        "RandomStrFunction": stack_function(
            &names.random_str_function,
            "Generate a random string of characters"
        ),
        "VpcEndpointServiceAzsFunction": stack_function(
            &names.azs_function,
            "Look up the AZs that are available for a VPC endpoint for a service"
        ),
        "DBSG": {
            "Type": "AWS::EC2::SecurityGroup",
            "DependsOn": "VpcName",
            "Properties": {
                "GroupDescription": "Enable MySQL access via the selected DBPort",
                "SecurityGroupIngress": [{
                    "IpProtocol": "tcp",
                    "FromPort": { "Ref": "DBPort" },
                    "ToPort": { "Ref": "DBPort" },
                    "CidrIp": "10.200.0.0/16"
                }],
                "Tags": name_tags("-dbsg"),
                "VpcId": { "Ref": "VpcName" }
            }
        },
        "DBSGSelfReference": self_reference("DBSG"),
        "DBSubnetGroup": {
            "Type": "AWS::RDS::DBSubnetGroup",
            "Properties": {
                "DBSubnetGroupDescription": "Subnet group for RDS database",
                "SubnetIds": [{ "Ref": "DemoSubnet01" }, { "Ref": "DemoSubnet02" }],
                "Tags": name_tags("-dbsubg")
            }
        },
        "DBInstance": {
            "Type": "AWS::RDS::DBInstance",
            "DeletionPolicy": "Delete",
            "Properties": {
                "AllocatedStorage": 5,
                "AllowMajorVersionUpgrade": false,
                "AutoMinorVersionUpgrade": true,
                "AvailabilityZone": format!("{region}a"),
                "BackupRetentionPeriod": 0,
                "DBInstanceClass": "db.t2.micro",
                "DBName": { "Ref": "DBName" },
                "DBSubnetGroupName": { "Ref": "DBSubnetGroup" },
                "Engine": "mysql",
                "EngineVersion": "5.7",
                // The real template takes these from the DBMasterUser/DBMasterPassword custom
                // resources.
                "MasterUsername": names.db_user,
                "MasterUserPassword": names.db_password,
                "MultiAZ": false,
                "Port": { "Ref": "DBPort" },
                "PubliclyAccessible": false,
                "StorageType": "gp2",
                "Tags": name_tags("-db"),
                "VPCSecurityGroups": [{ "Ref": "DBSG" }]
            }
        },
        "TaskRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com"),
                "Path": "/",
                "Policies": [policy("-secretsmgr", &["secretsmanager:*"], "*")]
            }
        },
        "TaskExecutionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com"),
                "Path": "/",
                "ManagedPolicyArns": [
                    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
                ],
                "Policies": [policy("-secretsmgr",
                    &["secretsmanager:GetSecretValue", "kms:Decrypt"], "*")]
            }
        },
        "TaskDefinition": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": names.task_family,
                "TaskRoleArn": { "Fn::GetAtt": ["TaskRole", "Arn"] },
                "ExecutionRoleArn": { "Fn::GetAtt": ["TaskExecutionRole", "Arn"] },
                "NetworkMode": "awsvpc",
                "ContainerDefinitions": [{
                    "Image": {
                        "Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/${ECRRepository}"
                    },
                    "Name": "smdemo",
                    "PortMappings": [{ "ContainerPort": 22, "HostPort": 22, "Protocol": "tcp" }],
                    "Essential": true,
                    "ReadonlyRootFilesystem": false,
                    "LogConfiguration": {
                        "LogDriver": "awslogs",
                        "Options": {
                            "awslogs-group": { "Ref": "LogGroup" },
                            "awslogs-region": { "Ref": "AWS::Region" },
                            "awslogs-stream-prefix": "smdemo"
                        }
                    },
                    "Environment": [
                        { "Name": "TASKDEF_ENVVAR", "Value": "my test environment value" }
                    ],
                    "Secrets": [{
                        "Name": "TASKDEF_SECRET",
                        "ValueFrom": {
                            "Fn::Sub": "arn:aws:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:SECRETNAME"
                        }
                    }]
                }],
                "RequiresCompatibilities": ["FARGATE"],
                "Cpu": 1024,
                "Memory": 4096,
                "Tags": name_tags("-taskdef")
            }
        },
        "ECSCluster": {
            "Type": "AWS::ECS::Cluster",
            "Properties": { "ClusterName": names.cluster, "Tags": name_tags("-ecscluster") }
        },
        "ECRRepository": {
            "Type": "AWS::ECR::Repository",
            "Properties": { "RepositoryName": names.repository, "Tags": name_tags("-ecr") }
        }
    });
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": DESCRIPTION,
        "Parameters": {
            "NamePrefix": {
                "Type": "String", "Default": "smdemo", "MinLength": 2, "MaxLength": 15,
                "AllowedPattern": "[a-zA-Z][a-zA-Z0-9]*"
            },
            "ProjectTag": {
                "Type": "String", "Default": "smproj", "MinLength": 2, "MaxLength": 15,
                "AllowedPattern": "[a-zA-Z][a-zA-Z0-9]*"
            },
            "DBName": {
                "Type": "String", "Default": "smdemo", "MinLength": 1, "MaxLength": 64,
                "AllowedPattern": "[a-zA-Z][a-zA-Z0-9]*"
            },
            "DBPort": { "Type": "Number", "Default": 3306, "MinValue": 1024, "MaxValue": 65535 }
        },
        "Resources": resources,
        "Outputs": {
            "DBInstance": { "Description": "RDS MySQL instance", "Value": { "Ref": "DBInstance" } },
            "DBUser": { "Description": "RDS MySQL master user", "Value": names.db_user },
            "DBPassword": {
                "Description": "RDS MySQL master user initial password",
                "Value": names.db_password
            },
            "EC2UserPassword": {
                "Description": "User ec2-user password",
                "Value": names.ec2_user_password
            },
            "ECRRepository": { "Description": "ECR Repository", "Value": { "Ref": "ECRRepository" } },
            "ECSCluster": { "Description": "ECS Cluster", "Value": { "Ref": "ECSCluster" } }
        }
    })
}

/// The rotation app's template, expanded as the Serverless Application Repository deploys it:
/// the function (in the given subnets and security groups), its role, and Secrets Manager's
/// permission to invoke it.
pub(super) fn rotation_template() -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Conducts an AWS SecretsManager secret rotation for RDS MySQL using single user rotation scheme",
        "Parameters": {
            "endpoint": { "Type": "String" },
            "functionName": { "Type": "String" },
            "vpcSubnetIds": { "Type": "String" },
            "vpcSecurityGroupIds": { "Type": "String" }
        },
        "Resources": {
            "SecretsManagerRDSMySQLRotationSingleUserRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": assume_role("lambda.amazonaws.com"),
                    "ManagedPolicyArns": [
                        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                        "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
                    ]
                }
            },
            "SecretsManagerRDSMySQLRotationSingleUser": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": { "Ref": "functionName" },
                    "Description": "Conducts an AWS SecretsManager secret rotation for RDS MySQL using single user rotation scheme",
                    "Handler": "lambda_function.lambda_handler",
                    "Runtime": "python3.9",
                    "Timeout": 30,
                    "Role": { "Fn::GetAtt": ["SecretsManagerRDSMySQLRotationSingleUserRole", "Arn"] },
                    "Code": { "ZipFile": "def lambda_handler(event, context):\n    return None\n" },
                    "Environment": {
                        "Variables": { "SECRETS_MANAGER_ENDPOINT": { "Ref": "endpoint" } }
                    },
                    "VpcConfig": {
                        "SubnetIds": { "Fn::Split": [",", { "Ref": "vpcSubnetIds" }] },
                        "SecurityGroupIds": { "Fn::Split": [",", { "Ref": "vpcSecurityGroupIds" }] }
                    }
                }
            },
            "LambdaPermission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "FunctionName": { "Ref": "SecretsManagerRDSMySQLRotationSingleUser" },
                    "Action": "lambda:InvokeFunction",
                    "Principal": "secretsmanager.amazonaws.com"
                }
            }
        },
        "Outputs": {
            "RotationLambdaARN": {
                "Value": { "Fn::GetAtt": ["SecretsManagerRDSMySQLRotationSingleUser", "Arn"] }
            }
        }
    })
}
