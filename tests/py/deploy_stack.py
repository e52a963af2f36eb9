"""Deploys deploy/stack.yaml on a moto server and prints what the daemon needs, as one JSON line.

Usage: deploy_stack.py ENDPOINT TEMPLATE STACK_NAME

Prints {"status", "outputs": {key: value}, "environment": {name: value}, "resources": {logical id:
type}}: the stack's outputs, and the environment of the task definition moto registered from the
template (so the test runs the daemon with the settings the stack gives it on ECS).
"""
import json
import sys
import time

import boto3


def main():
    endpoint, template, name = sys.argv[1:4]
    session = dict(endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
    cf = boto3.client("cloudformation", **session)
    with open(template, encoding="utf-8") as f:
        body = f.read()
    cf.create_stack(
        StackName=name,
        TemplateBody=body,
        Parameters=[
            {"ParameterKey": "Image", "ParameterValue": "example.invalid/personalize-ops:test"},
            {"ParameterKey": "CreateEventBus", "ParameterValue": "yes"},
        ],
        Capabilities=["CAPABILITY_IAM"],
    )
    deadline = time.time() + 120
    while True:
        stack = cf.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.time() > deadline:
            break
        time.sleep(0.2)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resources = {
        r["LogicalResourceId"]: r["ResourceType"]
        for r in cf.list_stack_resources(StackName=name)["StackResourceSummaries"]
        if r.get("LogicalResourceId")
    }
    environment = {}
    ecs = boto3.client("ecs", **session)
    for arn in ecs.list_task_definitions()["taskDefinitionArns"]:
        definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        for container in definition["containerDefinitions"]:
            for pair in container.get("environment", []):
                environment[pair["name"]] = pair["value"]
    print(json.dumps({
        "status": stack["StackStatus"],
        "reason": stack.get("StackStatusReason"),
        "outputs": outputs,
        "environment": environment,
        "resources": resources,
    }))


if __name__ == "__main__":
    main()
