"""devserver/moto_conditions.py: conditions parsed once, outcomes unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devserver import moto_conditions, moto_fidelity
from devserver.backend import ensure_resources

TABLE = "nt2-sync-test"
FAILED = "ConditionalCheckFailedException"


@pytest.fixture
def ddb(aws_env: None) -> Iterator[Any]:
    moto_fidelity.apply()
    with mock_aws():
        ensure_resources()
        yield boto3.client("dynamodb", region_name="us-east-1")


def _put(ddb: Any, sk: str, ver: int, condition: str, values: dict[str, Any] | None) -> str:
    item = {"pk": {"S": "VAULT#v"}, "sk": {"S": sk}, "ver": {"N": str(ver)}}
    kwargs: dict[str, Any] = {"TableName": TABLE, "Item": item, "ConditionExpression": condition}
    if values:
        kwargs["ExpressionAttributeValues"] = values
    try:
        ddb.put_item(**kwargs)
        return "ok"
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])


def test_cached_conditions_decide_exactly_as_before(ddb: Any) -> None:
    moto_conditions._parsed.cache_clear()
    # GIVEN one expression used many times, with different values
    assert _put(ddb, "ITEM#a", 1, "attribute_not_exists(pk)", None) == "ok"
    assert _put(ddb, "ITEM#a", 1, "attribute_not_exists(pk)", None) == FAILED
    assert _put(ddb, "ITEM#b", 1, "attribute_not_exists(pk)", None) == "ok"
    # THEN each use decided on its own item and values
    assert _put(ddb, "ITEM#a", 2, "ver = :v", {":v": {"N": "2"}}) == FAILED
    assert _put(ddb, "ITEM#a", 2, "ver = :v", {":v": {"N": "1"}}) == "ok"
    assert _put(ddb, "ITEM#a", 3, "ver = :v", {":v": {"N": "1"}}) == FAILED
    # AND the expression was parsed once per distinct (expression, values)
    info = moto_conditions._parsed.cache_info()
    assert info.misses == 3 and info.hits == 3
    # AND an invalid expression still fails on every use (errors are not cached; moto
    # raises it as ValueError where DynamoDB answers ValidationException)
    for _ in range(2):
        with pytest.raises(ValueError):
            _put(ddb, "ITEM#c", 1, "ver = = ver", None)
    assert moto_conditions._parsed.cache_info().currsize == 3
