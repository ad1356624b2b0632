#!/usr/bin/env bash
# The workshop's clean-up instructions, scripted with the AWS CLI one command after another, as a
# person would put them in a cleanup.sh: peer (a) of benches/peers.sh.
#
# Same job as tests/it/plans/named-workshop.toml, in the instructions' order, with the
# CLI's own waiters where the instructions say to wait. Names are the workshop's; resources whose
# names only start like them (FargateTaskDemoOld, FargateClusterDemo2, ...) must survive, so every
# lookup filters on the exact name.
#
#   AWS=path/to/aws AWS_ENDPOINT_URL=... AWS_REGION=us-west-2 bash cleanup.sh
set -euo pipefail
aws=${AWS:-aws}
cluster=FargateClusterDemo
service=FargateServiceDemo
family=FargateTaskDemo
repository=secrets-manager-rds-demo
secret=secrets-manager-fargate-demo-db-secret
rotation_prefix=aws-serverless-repository-SecretsManagerRDSMySQLRotationSingleUser
main_stack=SecretsManagerWorkshop

# ---- fargate: tasks, service, task definitions, cluster, repository ----
# The query keeps the cluster's own tasks: moto's ListTasks matches the cluster by substring, so
# FargateClusterDemo also lists FargateClusterDemo2's (AWS does not; the filter costs no call).
tasks=$($aws ecs list-tasks --cluster "$cluster" \
  --query "taskArns[?contains(@, ':task/${cluster}/')]" --output text)
for task in $tasks; do
  $aws ecs stop-task --cluster "$cluster" --task "$task" --reason "workshop clean-up" >/dev/null
done
[ -n "$tasks" ] && $aws ecs wait tasks-stopped --cluster "$cluster" --tasks $tasks
$aws ecs update-service --cluster "$cluster" --service "$service" --desired-count 0 >/dev/null
$aws ecs delete-service --cluster "$cluster" --service "$service" >/dev/null
$aws ecs wait services-inactive --cluster "$cluster" --services "$service"
for td in $($aws ecs list-task-definitions --family-prefix "$family" --status ACTIVE \
    --query "taskDefinitionArns[?contains(@, ':task-definition/${family}:')]" --output text); do
  $aws ecs deregister-task-definition --task-definition "$td" >/dev/null
done
$aws ecs delete-cluster --cluster "$cluster" >/dev/null
$aws ecr delete-repository --repository-name "$repository" --force >/dev/null

# ---- general: secret, rotation stack, Lambda interfaces, main stack ----
# teardown's delete-secret cancels the rotation first; so does this script, to do the same job.
$aws secretsmanager cancel-rotate-secret --secret-id "$secret" >/dev/null
$aws secretsmanager delete-secret --secret-id "$secret" --recovery-window-in-days 7 >/dev/null
rotation_stack=$($aws cloudformation list-stacks --stack-status-filter CREATE_COMPLETE \
  --query "StackSummaries[?starts_with(StackName, '${rotation_prefix}')].StackName" --output text)
$aws cloudformation delete-stack --stack-name "$rotation_stack"
$aws cloudformation wait stack-delete-complete --stack-name "$rotation_stack"
vpc=$($aws cloudformation describe-stacks --stack-name "$main_stack" \
  --query "Stacks[0].Outputs[?OutputKey=='VpcId'].OutputValue" --output text)
for eni in $($aws ec2 describe-network-interfaces \
    --filters "Name=vpc-id,Values=$vpc" "Name=description,Values=AWS Lambda VPC ENI*" \
    --query 'NetworkInterfaces[].NetworkInterfaceId' --output text); do
  $aws ec2 delete-network-interface --network-interface-id "$eni"
done
$aws cloudformation delete-stack --stack-name "$main_stack"
$aws cloudformation wait stack-delete-complete --stack-name "$main_stack"
