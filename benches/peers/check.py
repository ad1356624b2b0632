#!/usr/bin/env python3
"""Snapshot and check of the emulated workshop, for benches/peers.sh (boto3, straight to moto).

    check.py snapshot FILE            record the ids of the workshop and of its bystanders
    check.py check FILE --scope S     print what is left of the workshop and what happened to the
                                      bystanders; exit 1 if anything is wrong

Scopes: `full` (everything the workshop plan deletes) and `no-cluster-repo` (the same without the
ECS cluster and the ECR repository, which Cloud Custodian 0.9.53 cannot delete: with that scope
they must still be there).

The judgement is the one of tests/it/support/fixture.rs (`workshop_leftovers`, `bystander_damage`):
a stack or VPC or interface is gone when it no longer exists; a task when it is STOPPED; a task
definition when it is no longer ACTIVE; a service or cluster when it is INACTIVE or unknown; the
secret when it is scheduled for deletion with its rotation off. Rotation still on is reported
separately ("note"), as a difference, not a leftover: a secret pending deletion cannot rotate.

Talks to the moto endpoint given in MOTO_ENDPOINT (never through the counting proxy), so that
these calls are neither counted nor delayed.
"""

import json
import os
import sys

import boto3
from botocore.exceptions import ClientError

WORKSHOP = {
    "main_stack": "SecretsManagerWorkshop",
    "rotation_prefix": "aws-serverless-repository-SecretsManagerRDSMySQLRotationSingleUser",
    "cluster": "FargateClusterDemo",
    "service": "FargateServiceDemo",
    "family": "FargateTaskDemo",
    "repository": "secrets-manager-rds-demo",
    "secret": "secrets-manager-fargate-demo-db-secret",
}
BYSTANDERS = {
    "stacks": [
        "SecretsManagerWorkshop-Other",
        "aws-serverless-repository-SecretsManagerRDSPostgreSQLRotationSingleUser-8M2V4WQ6R1BZ",
        "aws-serverless-repository-SomethingElse",
    ],
    "network_stack": "SecretsManagerWorkshop-Other",
    "cluster": "FargateClusterDemo2",
    "service": "FargateServiceDemo",
    "family": "FargateTaskDemoOld",
    "repository": "secrets-manager-rds-demo-old",
    "secret": "secrets-manager-fargate-demo-db-secret-old",
}


def clients():
    endpoint = os.environ["MOTO_ENDPOINT"]
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-west-2"
    )
    return {
        name: session.client(name, endpoint_url=endpoint)
        for name in ("cloudformation", "ec2", "ecs", "ecr", "secretsmanager")
    }


def stack(c, name_or_id):
    try:
        s = c["cloudformation"].describe_stacks(StackName=name_or_id)["Stacks"][0]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise
    return None if s["StackStatus"] == "DELETE_COMPLETE" else s


def output(s, key):
    return next(o["OutputValue"] for o in s["Outputs"] if o["OutputKey"] == key)


def lambda_enis(c, vpc_id):
    out = c["ec2"].describe_network_interfaces(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "description", "Values": ["AWS Lambda VPC ENI*"]},
        ]
    )
    return sorted(n["NetworkInterfaceId"] for n in out["NetworkInterfaces"])


def family_arns(c, family):
    arns = c["ecs"].list_task_definitions(familyPrefix=family, status="ACTIVE")[
        "taskDefinitionArns"
    ]
    return [a for a in arns if a.split("/")[-1].rsplit(":", 1)[0] == family]


def tasks_of(c, cluster):
    # moto 5.2.5's ListTasks matches the cluster by substring (FargateClusterDemo also gives
    # FargateClusterDemo2's tasks): keep the cluster's own.
    arns = c["ecs"].list_tasks(cluster=cluster)["taskArns"]
    return [a for a in arns if f":task/{cluster}/" in a]


def snapshot(path):
    c = clients()
    main = stack(c, WORKSHOP["main_stack"])
    rotation = [
        s
        for s in c["cloudformation"].list_stacks(StackStatusFilter=["CREATE_COMPLETE"])[
            "StackSummaries"
        ]
        if s["StackName"].startswith(WORKSHOP["rotation_prefix"])
    ]
    assert main and len(rotation) == 1, "the workshop is not provisioned"
    vpc = output(main, "VpcId")
    other = stack(c, BYSTANDERS["network_stack"])
    other_vpc = output(other, "VpcId")
    secret = c["secretsmanager"].describe_secret(SecretId=WORKSHOP["secret"])
    other_secret = c["secretsmanager"].describe_secret(SecretId=BYSTANDERS["secret"])
    snap = {
        "workshop": {
            "main_stack_id": main["StackId"],
            "rotation_stack_id": rotation[0]["StackId"],
            "vpc_id": vpc,
            "lambda_enis": lambda_enis(c, vpc),
            "tasks": tasks_of(c, WORKSHOP["cluster"]),
            "task_definitions": family_arns(c, WORKSHOP["family"]),
            "secret_arn": secret["ARN"],
        },
        "bystanders": {
            "vpc_id": other_vpc,
            "lambda_enis": lambda_enis(c, other_vpc),
            "tasks": tasks_of(c, BYSTANDERS["cluster"]),
            "task_definitions": family_arns(c, BYSTANDERS["family"]),
            "secret_arn": other_secret["ARN"],
        },
    }
    w = snap["workshop"]
    assert len(w["lambda_enis"]) == 2 and len(w["tasks"]) == 1, snap
    assert len(w["task_definitions"]) == 2 and secret.get("RotationEnabled"), snap
    with open(path, "w") as f:
        json.dump(snap, f, indent=1)


def cluster_status(c, name):
    out = c["ecs"].describe_clusters(clusters=[name])["clusters"]
    return out[0]["status"] if out else None


def service_state(c, cluster, service):
    try:
        out = c["ecs"].describe_services(cluster=cluster, services=[service])["services"]
    except ClientError as e:
        if "NotFound" in e.response["Error"]["Code"]:
            return None
        raise
    return (out[0]["status"], out[0]["desiredCount"]) if out else None


def task_states(c, cluster, tasks):
    if not tasks:
        return []
    try:
        out = c["ecs"].describe_tasks(cluster=cluster, tasks=tasks)["tasks"]
    except ClientError as e:
        if "NotFound" in e.response["Error"]["Code"]:
            return []
        raise
    return [(t["taskArn"], t.get("desiredStatus"), t.get("lastStatus")) for t in out]


def task_definition_status(c, arn):
    try:
        return c["ecs"].describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"]
    except ClientError as e:
        if e.response["Error"]["Code"] == "ClientException":
            return None
        raise


def repository_images(c, name):
    try:
        return len(c["ecr"].list_images(repositoryName=name)["imageIds"])
    except ClientError as e:
        if e.response["Error"]["Code"] == "RepositoryNotFoundException":
            return None
        raise


def secret_state(c, arn):
    try:
        s = c["secretsmanager"].describe_secret(SecretId=arn)
    except ClientError as e:
        if e.response["Error"]["Code"] == "ResourceNotFoundException":
            return ("gone", False)
        raise
    return ("scheduled" if s.get("DeletedDate") else "live", bool(s.get("RotationEnabled")))


def vpc_exists(c, vpc_id):
    return bool(c["ec2"].describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"])


def enis_present(c, ids):
    if not ids:
        return []
    out = c["ec2"].describe_network_interfaces(
        Filters=[{"Name": "network-interface-id", "Values": ids}]
    )
    return [(n["NetworkInterfaceId"], n["Status"]) for n in out["NetworkInterfaces"]]


def check(path, scope):
    c = clients()
    with open(path) as f:
        snap = json.load(f)
    w, b = snap["workshop"], snap["bystanders"]
    left, notes, damage = [], [], []

    for name, sid in (
        (WORKSHOP["main_stack"], w["main_stack_id"]),
        ("rotation stack", w["rotation_stack_id"]),
    ):
        s = stack(c, sid)
        if s:
            left.append(f"stack {name} ({s['StackStatus']})")
    if vpc_exists(c, w["vpc_id"]):
        left.append(f"VPC {w['vpc_id']} of the main stack")
    for eni, status in enis_present(c, w["lambda_enis"]):
        left.append(f"Lambda interface {eni} ({status})")
    status = service_state(c, WORKSHOP["cluster"], WORKSHOP["service"])
    if status and status[0] != "INACTIVE":
        left.append(f"service {WORKSHOP['service']} ({status[0]}, desired {status[1]})")
    for arn, desired, last in task_states(c, WORKSHOP["cluster"], w["tasks"]):
        if desired != "STOPPED" or last != "STOPPED":
            left.append(f"task {arn} (desired {desired}, last {last})")
    for arn in w["task_definitions"]:
        if task_definition_status(c, arn) == "ACTIVE":
            left.append(f"task definition {arn} (ACTIVE)")
    state, rotation = secret_state(c, w["secret_arn"])
    if state == "live":
        left.append(f"secret {WORKSHOP['secret']} (not scheduled for deletion)")
    elif rotation:
        notes.append("secret scheduled for deletion with its rotation still configured")
    cluster = cluster_status(c, WORKSHOP["cluster"])
    images = repository_images(c, WORKSHOP["repository"])
    if scope == "full":
        if cluster and cluster != "INACTIVE":
            left.append(f"cluster {WORKSHOP['cluster']} ({cluster})")
        if images is not None:
            left.append(f"repository {WORKSHOP['repository']} ({images} images)")
    else:
        # Out of scope: must be left as they were (nothing may delete more than it is asked to).
        if cluster != "ACTIVE":
            damage.append(f"cluster {WORKSHOP['cluster']} is {cluster} (out of scope)")
        if images != 2:
            damage.append(f"repository {WORKSHOP['repository']}: {images} images (out of scope)")

    for name in BYSTANDERS["stacks"]:
        s = stack(c, name)
        if not s or s["StackStatus"] != "CREATE_COMPLETE":
            damage.append(f"bystander stack {name}: {s['StackStatus'] if s else 'gone'}")
    if not vpc_exists(c, b["vpc_id"]):
        damage.append(f"bystander VPC {b['vpc_id']} gone")
    if len(enis_present(c, b["lambda_enis"])) != len(b["lambda_enis"]):
        damage.append("bystander Lambda interface gone")
    if cluster_status(c, BYSTANDERS["cluster"]) != "ACTIVE":
        damage.append(f"bystander cluster {BYSTANDERS['cluster']} not ACTIVE")
    if service_state(c, BYSTANDERS["cluster"], BYSTANDERS["service"]) != ("ACTIVE", 1):
        damage.append(f"bystander service in {BYSTANDERS['cluster']} changed")
    for arn, desired, _ in task_states(c, BYSTANDERS["cluster"], b["tasks"]):
        if desired != "RUNNING":
            damage.append(f"bystander task {arn} stopped")
    for arn in b["task_definitions"]:
        if task_definition_status(c, arn) != "ACTIVE":
            damage.append(f"bystander task definition {arn} not ACTIVE")
    if not repository_images(c, BYSTANDERS["repository"]):
        damage.append(f"bystander repository {BYSTANDERS['repository']} gone or emptied")
    if secret_state(c, b["secret_arn"]) != ("live", True):
        damage.append(f"bystander secret {BYSTANDERS['secret']} changed")

    for line in left:
        print(f"LEFT   {line}")
    for line in damage:
        print(f"DAMAGE {line}")
    for line in notes:
        print(f"NOTE   {line}")
    return 1 if left or damage else 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "snapshot":
        snapshot(sys.argv[2])
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "check" and sys.argv[3] == "--scope":
        return check(sys.argv[2], sys.argv[4])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
