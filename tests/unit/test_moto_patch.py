"""devserver.moto_patch: TransactWriteItems rolls back per touched item, with moto's semantics."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.table import Table

from devserver import moto_fidelity
from devserver.backend import create_table_kwargs

TABLE = "t"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def ddb() -> Iterator[Any]:
    moto_fidelity.apply()
    with moto.mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        # The deployed table's schema (infra/template.json), never a hand copy.
        client.create_table(**create_table_kwargs(TABLE))
        yield client


def item(sk: str, ver: int, pk: str = "p") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "ver": {"N": str(ver)}}


def key(sk: str, pk: str = "p") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def seed(client: Any) -> None:
    for i, sk in enumerate(["keep", "upd", "del"]):
        client.put_item(TableName=TABLE, Item=item(sk, i + 1))


def scan(client: Any) -> list[dict[str, Any]]:
    return sorted(client.scan(TableName=TABLE)["Items"], key=lambda i: i["sk"]["S"])


def by_ver(client: Any, pk: str = "p") -> list[tuple[str, str]]:
    out = client.query(
        TableName=TABLE,
        IndexName="byVersion",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": pk}},
    )
    return [(i["ver"]["N"], i["sk"]["S"]) for i in out["Items"]]


def mixed_actions(fail: bool) -> list[dict[str, Any]]:
    """Create (also in a new partition), update, delete and check; `fail` breaks the check."""
    ver = 99 if fail else 1
    return [
        {
            "Put": {
                "TableName": TABLE,
                "Item": item("new", 7),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {"Put": {"TableName": TABLE, "Item": item("new", 8, pk="q")}},
        {
            "Update": {
                "TableName": TABLE,
                "Key": key("upd"),
                "UpdateExpression": "SET ver = :v",
                "ExpressionAttributeValues": {":v": {"N": "20"}},
            }
        },
        {"Delete": {"TableName": TABLE, "Key": key("del")}},
        {
            "ConditionCheck": {
                "TableName": TABLE,
                "Key": key("keep"),
                "ConditionExpression": "ver = :v",
                "ExpressionAttributeValues": {":v": {"N": str(ver)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    ]


def cancellation(client: Any, actions: list[dict[str, Any]]) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        client.transact_write_items(TransactItems=actions)
    response = info.value.response
    return {k: response[k] for k in ("Error", "CancellationReasons")}


def test_apply_is_idempotent() -> None:
    moto_fidelity.apply()
    patched = DynamoDBBackend.transact_write_items
    moto_fidelity.apply()
    assert DynamoDBBackend.transact_write_items is patched
    assert not hasattr(patched.__wrapped__, "__wrapped__")  # type: ignore[attr-defined]


def test_successful_transaction_writes_everything(ddb: Any) -> None:
    seed(ddb)
    ddb.transact_write_items(TransactItems=mixed_actions(fail=False))
    assert [(i["sk"]["S"], i["ver"]["N"]) for i in scan(ddb)] == [
        ("keep", "1"),
        ("new", "7"),
        ("new", "8"),
        ("upd", "20"),
    ]
    assert by_ver(ddb) == [("1", "keep"), ("7", "new"), ("20", "upd")]
    assert by_ver(ddb, pk="q") == [("8", "new")]


def test_failed_condition_writes_nothing(ddb: Any) -> None:
    seed(ddb)
    before, index_before = scan(ddb), by_ver(ddb)
    assert index_before == [("1", "keep"), ("2", "upd"), ("3", "del")]

    reasons = cancellation(ddb, mixed_actions(fail=True))["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None"] * 4 + ["ConditionalCheckFailed"]

    assert scan(ddb) == before  # new items absent, updated unchanged, deleted still there
    assert by_ver(ddb) == index_before
    assert by_ver(ddb, pk="q") == []
    # The rollback also drops the partition that the new item's lookup created.
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[TABLE]
    assert set(table.items) == {i.hash_key for i in table.all_items()}


def test_later_failure_and_duplicate_key_roll_back(ddb: Any) -> None:
    seed(ddb)
    before = scan(ddb)
    # The failing action comes after writes: those writes are undone.
    actions = mixed_actions(fail=False) + [
        {
            "Put": {
                "TableName": TABLE,
                "Item": item("x", 1),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
    ]
    cancellation(ddb, actions)
    assert scan(ddb) == before
    # Two actions on one item: a ValidationException after the first write.
    dup = mixed_actions(fail=False) + [{"Delete": {"TableName": TABLE, "Key": key("new")}}]
    with pytest.raises(ClientError, match="multiple operations on one item"):
        ddb.transact_write_items(TransactItems=dup)
    assert scan(ddb) == before


def test_cancellation_reasons_match_unpatched_moto(
    ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(ddb)
    failing = mixed_actions(fail=True) + [
        {
            "Update": {
                "TableName": TABLE,
                "Key": key("keep2"),
                "UpdateExpression": "SET ver = :v",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":v": {"N": "5"}},
            }
        }
    ]
    patched = cancellation(ddb, failing)
    patched_state = scan(ddb)

    monkeypatch.setattr(
        DynamoDBBackend,
        "transact_write_items",
        DynamoDBBackend.transact_write_items.__wrapped__,  # type: ignore[attr-defined]
    )
    unpatched = cancellation(ddb, failing)

    assert patched == unpatched
    assert scan(ddb) == patched_state
    assert unpatched["CancellationReasons"][4]["Item"] == item("keep", 1)  # ALL_OLD


def test_does_not_copy_the_table(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = 2000
    for start in range(0, rows, 25):
        ddb.batch_write_item(
            RequestItems={
                TABLE: [
                    {"PutRequest": {"Item": item(f"{i:05}", i)}} for i in range(start, start + 25)
                ]
            }
        )
    actions = [
        {
            "Update": {
                "TableName": TABLE,
                "Key": key(f"{i:05}"),
                "UpdateExpression": "SET ver = :v",
                "ExpressionAttributeValues": {":v": {"N": "-1"}},
            }
        }
        for i in range(100)
    ]

    calls: list[Any] = []
    real = copy.deepcopy

    def counting(obj: Any, memo: Any = None) -> Any:
        calls.append(obj)
        return real(obj, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    ddb.transact_write_items(TransactItems=actions)
    monkeypatch.undo()

    assert not any(isinstance(obj, Table) for obj in calls)
    # Nested calls included: a few per touched item (each item has 3 attributes), nowhere
    # near one table copy (> 2000 items x 4 calls).
    assert len(calls) <= 20 * len(actions)
    assert len(by_ver(ddb)) == rows
