"""devserver.moto_query: partition-only Query gives exactly DynamoDB's answers."""

from __future__ import annotations

import random
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devserver import moto_fidelity
from devserver.backend import create_table_kwargs


@pytest.fixture
def ddb() -> Any:
    moto_fidelity.apply()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**create_table_kwargs("t"))  # infra/template.json's schema
        rng = random.Random(7)
        versions = rng.sample(range(1, 5000), 300)
        for n, v in enumerate(versions):
            for pk in ("VAULT#a", "VAULT#b"):
                client.put_item(
                    TableName="t",
                    Item={
                        "pk": {"S": pk},
                        "sk": {"S": f"ITEM#{n:04d}"},
                        "ver": {"N": str(v)},
                        "body": {"S": "x" * 10},
                    },
                )
            client.put_item(
                TableName="t", Item={"pk": {"S": "VAULT#a"}, "sk": {"S": f"BATCH#{n:04d}"}}
            )
        yield client, sorted(versions)


def _all_pages(client: Any, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    start = None
    while True:
        args = dict(kw, ExclusiveStartKey=start) if start else kw
        resp = client.query(TableName="t", ConsistentRead=True, **args)
        out.extend(resp["Items"])
        start = resp.get("LastEvaluatedKey")
        if not start:
            return out


def test_lsi_range_query_pages_in_version_order(ddb: Any) -> None:
    client, versions = ddb
    lo, hi = versions[20], versions[250]
    items = _all_pages(
        client,
        IndexName="byVersion",
        Limit=37,
        Select="ALL_ATTRIBUTES",
        KeyConditionExpression="pk = :p AND ver BETWEEN :lo AND :hi",
        ExpressionAttributeValues={
            ":p": {"S": "VAULT#a"},
            ":lo": {"N": str(lo)},
            ":hi": {"N": str(hi)},
        },
    )
    got = [int(i["ver"]["N"]) for i in items]
    assert got == [v for v in versions if lo <= v <= hi]
    assert all(i["pk"]["S"] == "VAULT#a" and i["body"]["S"] == "x" * 10 for i in items)


def test_descending_and_base_table_prefix(ddb: Any) -> None:
    client, versions = ddb
    down = _all_pages(
        client,
        IndexName="byVersion",
        ScanIndexForward=False,
        Limit=50,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "VAULT#b"}},
    )
    assert [int(i["ver"]["N"]) for i in down] == sorted(versions, reverse=True)
    batch = _all_pages(
        client,
        Limit=64,
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": "VAULT#a"}, ":s": {"S": "BATCH#"}},
    )
    assert [i["sk"]["S"] for i in batch] == [f"BATCH#{n:04d}" for n in range(300)]


def test_scan_still_sees_the_whole_table(ddb: Any) -> None:
    client, _ = ddb
    assert client.scan(TableName="t", Select="COUNT")["Count"] == 900
