"""devserver/moto_json.py answers Query, GetItem and BatchGetItem exactly as moto's own
serializer does (the same items, attributes, keys and counts), only faster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devserver import moto_fidelity, moto_json
from devserver.backend import ensure_resources

TABLE = "nt2-sync-test"


@pytest.fixture
def ddb(aws_env: None) -> Iterator[Any]:
    moto_fidelity.apply()
    with mock_aws():
        ensure_resources()
        client = boto3.client("dynamodb", region_name="us-east-1")
        for i in range(30):
            item = {
                "pk": {"S": "VAULT#v"},
                "sk": {"S": f"ITEM#{i:03d}"},
                "ver": {"N": str(i + 1)},
                "ct": {"B": bytes([i]) * 40},
                "deleted": {"BOOL": i % 7 == 0},
                "tags": {"SS": ["a", "b"]},
                "nested": {"M": {"n": {"N": "1.5"}, "l": {"L": [{"NULL": True}]}}},
            }
            client.put_item(TableName=TABLE, Item=item)
        yield client
    moto_json.apply()


def _answers(client: Any) -> list[Any]:
    key = {"pk": {"S": "VAULT#v"}, "sk": {"S": "ITEM#003"}}
    out = [
        client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "VAULT#v"}},
            Limit=7,
            ConsistentRead=True,
        ),
        client.query(
            TableName=TABLE,
            IndexName="byVersion",
            KeyConditionExpression="pk = :p AND ver BETWEEN :a AND :b",
            ExpressionAttributeValues={":p": {"S": "VAULT#v"}, ":a": {"N": "3"}, ":b": {"N": "9"}},
            Select="ALL_ATTRIBUTES",
        ),
        client.get_item(TableName=TABLE, Key=key, ConsistentRead=True),
        client.get_item(TableName=TABLE, Key={**key, "sk": {"S": "missing"}}),
        client.batch_get_item(RequestItems={TABLE: {"Keys": [key, {**key, "sk": {"S": "x"}}]}}),
    ]
    for answer in out:
        answer.pop("ResponseMetadata")
    return out


def test_item_reads_answer_as_moto_does(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the answers of moto's own serializer
    moto_json.remove()
    expected = _answers(ddb)
    # WHEN the fast path answers the same requests (moto's serializer is never reached)
    moto_json.apply()

    def not_here(self: Any, context: Any) -> Any:
        raise AssertionError(f"moto's serializer answered {context.operation_model.name}")

    monkeypatch.setattr(moto_json, "_ORIGINAL", not_here)
    # THEN every answer is the same, item for item
    assert _answers(ddb) == expected
    assert expected[0]["Count"] == 7 and "LastEvaluatedKey" in expected[0]
