"""Create the table and bucket from infra/template.json: one source for local and deployed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "template.json"


def template() -> dict[str, Any]:
    return json.loads(TEMPLATE.read_text())


def table_properties() -> dict[str, Any]:
    return template()["Resources"]["SyncTable"]["Properties"]


def bucket_properties() -> dict[str, Any]:
    return template()["Resources"]["AttachmentBucket"]["Properties"]


def create_table_kwargs(name: str) -> dict[str, Any]:
    """CloudFormation's table properties as CreateTable arguments (the keys are the API's)."""
    props = table_properties()
    kwargs: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props["BillingMode"],
    }
    if props.get("LocalSecondaryIndexes"):
        kwargs["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return kwargs


def ensure_table(ddb: Any, name: str) -> None:
    """Create the table (and its TTL) unless it exists."""
    try:
        ddb.create_table(**create_table_kwargs(name))
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
    ttl = table_properties().get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def ensure_bucket(s3: Any, name: str, allowed_origins: list[str]) -> None:
    """Create the bucket with the template's lifecycle and CORS (origins from the settings)."""
    try:
        s3.create_bucket(Bucket=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    props = bucket_properties()
    rules = []
    for rule in props["LifecycleConfiguration"]["Rules"]:
        out: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"]}
        if "TagFilters" in rule:
            tag = rule["TagFilters"][0]
            out["Filter"] = {"Tag": {"Key": tag["Key"], "Value": tag["Value"]}}
        else:
            out["Filter"] = {"Prefix": ""}
        if "ExpirationInDays" in rule:
            out["Expiration"] = {"Days": rule["ExpirationInDays"]}
        if "AbortIncompleteMultipartUpload" in rule:
            out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
        rules.append(out)
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    cors = []
    for rule in props["CorsConfiguration"]["CorsRules"]:
        cors.append(
            {
                "AllowedMethods": rule["AllowedMethods"],
                "AllowedOrigins": allowed_origins or ["*"],
                "AllowedHeaders": rule["AllowedHeaders"],
                "ExposeHeaders": rule.get("ExposedHeaders", []),
                "MaxAgeSeconds": rule.get("MaxAge", 0),
            }
        )
    s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": cors})


def ensure_resources() -> None:
    """Table and bucket named by the settings, at the configured endpoint."""
    from chalicelib.settings import get_settings
    from chalicelib.store.aws import client

    s = get_settings()
    ensure_table(client("dynamodb"), s.table_name)
    ensure_bucket(client("s3"), s.bucket_name, list(s.allowed_origins))
