#!/usr/bin/env python3
"""The built-in Personalize through boto3: an independent client walks a whole lifecycle.

Usage: emulator_lifecycle.py ENDPOINT DATA_PREFIX DATA_DIR

  ENDPOINT     the emulator's URL, e.g. http://127.0.0.1:8787
  DATA_PREFIX  the object-store folder holding interactions.csv, users.csv and batch/input.json,
               e.g. s3://local/train/
  DATA_DIR     the directory that folder lives in (the emulator serves it with --data-dir), where the
               script checks the batch job's output files

Exits 0 and prints "lifecycle OK" when every step behaved as Amazon Personalize documents; any
deviation raises and exits non-zero.
"""

import json
import os
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/personalize"

INTERACTIONS_SCHEMA = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "USER_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": "float"},
    ],
    "version": "1.0",
}
USERS_SCHEMA = {
    "type": "record",
    "name": "Users",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "AGE", "type": "int"},
        {"name": "GENDER", "type": "string", "categorical": True},
    ],
    "version": "1.0",
}


def client(service, endpoint):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}),
    )


def error_code(call, **kwargs):
    """The error code of a call that must fail."""
    try:
        call(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"{call.__name__} succeeded but should have failed")


def wait(describe, key, arn_key, arn, want=("ACTIVE",), timeout=60):
    """Polls a Describe call until the resource reaches one of `want`; returns the resource."""
    deadline = time.time() + timeout
    while True:
        resource = describe(**{arn_key: arn})[key]
        status = resource["status"]
        if status in want:
            return resource
        if status in ("CREATE FAILED", "CREATE STOPPED") or time.time() > deadline:
            raise AssertionError(f"{arn} is {status}, expected {want}: {resource.get('failureReason')}")
        time.sleep(0.05)


def wait_gone(describe, arn_key, arn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            describe(**{arn_key: arn})
        except ClientError as e:
            if e.response["Error"]["Code"] == "ResourceNotFoundException":
                return
            raise
        time.sleep(0.05)
    raise AssertionError(f"{arn} was not deleted")


def main(endpoint, prefix, data_dir):
    p = client("personalize", endpoint)
    runtime = client("personalize-runtime", endpoint)
    events = client("personalize-events", endpoint)

    group = p.create_dataset_group(name="py-shop", tags=[{"tagKey": "owner", "tagValue": "boto3"}])["datasetGroupArn"]
    assert group == "arn:aws:personalize:us-east-1:000000000000:dataset-group/py-shop", group
    described = wait(p.describe_dataset_group, "datasetGroup", "datasetGroupArn", group)
    assert isinstance(described["creationDateTime"].timestamp(), float)
    assert error_code(p.create_dataset_group, name="py-shop") == "ResourceAlreadyExistsException"
    assert error_code(p.create_dataset_group, name="bad name") == "InvalidInputException"
    assert error_code(
        p.describe_dataset_group, datasetGroupArn="arn:aws:personalize:us-east-1:000000000000:dataset-group/none"
    ) == "ResourceNotFoundException"
    tags = p.list_tags_for_resource(resourceArn=group)["tags"]
    assert tags == [{"tagKey": "owner", "tagValue": "boto3"}], tags

    interactions_schema = p.create_schema(name="py-interactions", schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    users_schema = p.create_schema(name="py-users", schema=json.dumps(USERS_SCHEMA))["schemaArn"]
    interactions = p.create_dataset(
        name="py-interactions", datasetGroupArn=group, schemaArn=interactions_schema, datasetType="Interactions"
    )["datasetArn"]
    assert interactions.endswith("dataset/py-shop/INTERACTIONS"), interactions
    users = p.create_dataset(name="py-users", datasetGroupArn=group, schemaArn=users_schema, datasetType="USERS")[
        "datasetArn"
    ]
    for ds in (interactions, users):
        wait(p.describe_dataset, "dataset", "datasetArn", ds)

    jobs = {}
    for name, ds, key in (("py-import-i", interactions, "interactions.csv"), ("py-import-u", users, "users.csv")):
        jobs[name] = p.create_dataset_import_job(
            jobName=name, datasetArn=ds, dataSource={"dataLocation": prefix + key}, roleArn=ROLE
        )["datasetImportJobArn"]
    for arn in jobs.values():
        wait(p.describe_dataset_import_job, "datasetImportJob", "datasetImportJobArn", arn)
    bad = p.create_dataset_import_job(
        jobName="py-import-missing",
        datasetArn=users,
        dataSource={"dataLocation": prefix + "nothing-here.csv"},
        roleArn=ROLE,
        importMode="INCREMENTAL",
    )["datasetImportJobArn"]
    failed = wait(
        p.describe_dataset_import_job, "datasetImportJob", "datasetImportJobArn", bad, want=("CREATE FAILED",)
    )
    assert failed.get("failureReason"), failed
    listed = p.list_dataset_import_jobs(datasetArn=users)["datasetImportJobs"]
    assert [j["jobName"] for j in listed] == ["py-import-missing", "py-import-u"], listed

    tracker = p.create_event_tracker(name="py-tracker", datasetGroupArn=group)
    wait(p.describe_event_tracker, "eventTracker", "eventTrackerArn", tracker["eventTrackerArn"])
    events.put_events(
        trackingId=tracker["trackingId"],
        userId="1",
        sessionId="session-1",
        eventList=[{"eventType": "RATING", "itemId": "42", "sentAt": time.time(), "eventValue": 5.0}],
    )
    assert error_code(
        events.put_events,
        trackingId="00000000-0000-0000-0000-000000000000",
        sessionId="s",
        eventList=[{"eventType": "RATING", "itemId": "1", "sentAt": time.time()}],
    ) == "InvalidInputException"

    filter_arn = p.create_filter(
        name="py-not-rated",
        datasetGroupArn=group,
        filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("RATING")',
    )["filterArn"]
    wait(p.describe_filter, "filter", "filterArn", filter_arn)
    assert len(p.list_filters(datasetGroupArn=group)["Filters"]) == 1

    solution = p.create_solution(
        name="py-up",
        datasetGroupArn=group,
        recipeArn="arn:aws:personalize:::recipe/aws-user-personalization",
        performAutoTraining=False,
    )["solutionArn"]
    wait(p.describe_solution, "solution", "solutionArn", solution)
    assert p.describe_solution(solutionArn=solution)["solution"]["performAutoTraining"] is False
    version = p.create_solution_version(solutionArn=solution, trainingMode="FULL")["solutionVersionArn"]
    assert version.startswith(solution + "/") and len(version.rsplit("/", 1)[1]) == 8, version
    trained = wait(p.describe_solution_version, "solutionVersion", "solutionVersionArn", version)
    assert "trainingHours" in trained, trained
    metrics = p.get_solution_metrics(solutionVersionArn=version)["metrics"]
    for key in (
        "coverage",
        "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_5",
        "normalized_discounted_cumulative_gain_at_10",
        "normalized_discounted_cumulative_gain_at_25",
        "precision_at_5",
        "precision_at_10",
        "precision_at_25",
    ):
        assert key in metrics, (key, metrics)

    campaign = p.create_campaign(name="py-campaign", solutionVersionArn=version, minProvisionedTPS=1)["campaignArn"]
    deployed = wait(p.describe_campaign, "campaign", "campaignArn", campaign)
    assert "latestCampaignUpdate" not in deployed, deployed
    recs = runtime.get_recommendations(campaignArn=campaign, userId="1", numResults=5)
    assert 0 < len(recs["itemList"]) <= 5, recs
    assert recs["recommendationId"].startswith("RID-") and len(recs["recommendationId"]) == 40, recs
    filtered = runtime.get_recommendations(campaignArn=campaign, userId="1", numResults=5, filterArn=filter_arn)
    assert "42" not in [i["itemId"] for i in filtered["itemList"]], filtered
    assert error_code(runtime.get_recommendations, campaignArn=campaign) == "InvalidInputException"
    assert error_code(
        runtime.get_recommendations,
        campaignArn="arn:aws:personalize:us-east-1:000000000000:campaign/none",
        userId="1",
    ) == "ResourceNotFoundException"

    p.update_campaign(campaignArn=campaign, minProvisionedTPS=2)
    updated = wait(p.describe_campaign, "campaign", "campaignArn", campaign)
    deadline = time.time() + 60
    while updated["latestCampaignUpdate"]["status"] != "ACTIVE" and time.time() < deadline:
        time.sleep(0.05)
        updated = p.describe_campaign(campaignArn=campaign)["campaign"]
    assert updated["minProvisionedTPS"] == 2, updated

    batch = p.create_batch_inference_job(
        jobName="py-batch",
        solutionVersionArn=version,
        jobInput={"s3DataSource": {"path": prefix + "batch/input.json"}},
        jobOutput={"s3DataDestination": {"path": prefix + "batch/output/"}},
        roleArn=ROLE,
        numResults=3,
    )["batchInferenceJobArn"]
    wait(p.describe_batch_inference_job, "batchInferenceJob", "batchInferenceJobArn", batch)
    out_dir = os.path.join(data_dir, "batch", "output")
    assert os.path.exists(os.path.join(out_dir, "_CHECK")), os.listdir(out_dir)
    with open(os.path.join(out_dir, "input.json.out"), encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    assert lines and all(len(line["output"]["recommendedItems"]) <= 3 for line in lines), lines

    schemas = [s["name"] for page in p.get_paginator("list_schemas").paginate(PaginationConfig={"PageSize": 1}) for s in page["schemas"]]
    assert schemas == ["py-users", "py-interactions"], schemas
    assert error_code(p.list_schemas, nextToken="not-a-token") == "InvalidNextTokenException"

    # Tear down in dependency order; every resource passes through deletion and then is gone.
    p.delete_campaign(campaignArn=campaign)
    wait_gone(p.describe_campaign, "campaignArn", campaign)
    p.delete_solution(solutionArn=solution)
    wait_gone(p.describe_solution, "solutionArn", solution)
    wait_gone(p.describe_solution_version, "solutionVersionArn", version)
    p.delete_event_tracker(eventTrackerArn=tracker["eventTrackerArn"])
    p.delete_filter(filterArn=filter_arn)
    for ds in (interactions, users):
        p.delete_dataset(datasetArn=ds)
        wait_gone(p.describe_dataset, "datasetArn", ds)
    assert error_code(p.describe_dataset_import_job, datasetImportJobArn=jobs["py-import-i"]) == "ResourceNotFoundException"
    p.delete_dataset_group(datasetGroupArn=group)
    wait_gone(p.describe_dataset_group, "datasetGroupArn", group)
    print("lifecycle OK")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
