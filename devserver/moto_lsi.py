"""Make moto fetch non-projected attributes on a local secondary index, as DynamoDB does.

DynamoDB answers a Query on an LSI with `Select=ALL_ATTRIBUTES` by fetching the attributes
the index does not project from the base table (strongly consistent for an LSI). moto 5.2.5
returns only the projected attributes. Our version index projects keys only (an item's LSI
entry counts toward its 400 KB limit, so projecting 256 KiB of ciphertext would halve the
item size we can store), so pull relies on that fetch.

Upstream issue (moto 5.2.5; the report to file at github.com/getmoto/moto/issues):

    DynamoDB: Query on a local secondary index with Select=ALL_ATTRIBUTES returns only the
    projected attributes

    What moto does: `LocalSecondaryIndex.project` trims every item to the index projection,
    whatever `Select` asks for.
    What DynamoDB does: for an LSI, `Select=ALL_ATTRIBUTES` returns every attribute, fetching
    the unprojected ones from the base table ("Reading from an LSI ... DynamoDB fetches them
    from the table", LSI docs); only a GSI rejects it.
    Repro::

        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": t}
                                  for n, t in (("pk", "S"), ("sk", "S"), ("v", "N"))],
            LocalSecondaryIndexes=[{"IndexName": "byV", "Projection": {"ProjectionType":
                "KEYS_ONLY"}, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                            {"AttributeName": "v", "KeyType": "RANGE"}]}])
        ddb.put_item(TableName="t", Item={"pk": {"S": "p"}, "sk": {"S": "s"},
                                          "v": {"N": "1"}, "body": {"S": "x"}})
        ddb.query(TableName="t", IndexName="byV", Select="ALL_ATTRIBUTES",
                  KeyConditionExpression="pk = :p",
                  ExpressionAttributeValues={":p": {"S": "p"}})["Items"]
        # DynamoDB: [{pk, sk, v, body}]; moto: [{pk, sk, v}] -- "body" is missing

How: while a Query with `Select=ALL_ATTRIBUTES` runs in this thread, the LSI does not trim.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models.table import LocalSecondaryIndex
from moto.dynamodb.responses import DynamoHandler

__all__ = ["apply"]

_MARKER = "_nt2_lsi_fetch"
_state = threading.local()


def apply() -> None:
    """Install (idempotent); use ``devserver.moto_fidelity.apply()``."""
    if getattr(DynamoHandler.query, _MARKER, False):
        return
    original_query = DynamoHandler.query
    original_project = LocalSecondaryIndex.project

    @functools.wraps(original_query)
    def query(self: Any) -> Any:
        params = getattr(self, "params", None) or {}
        _state.fetch = params.get("Select") == "ALL_ATTRIBUTES"
        try:
            return original_query(self)
        finally:
            _state.fetch = False

    @functools.wraps(original_project)
    def project(self: Any, item: Any) -> Any:
        if getattr(_state, "fetch", False):
            return item
        return original_project(self, item)

    setattr(query, _MARKER, True)
    DynamoHandler.query = query  # type: ignore[method-assign]
    LocalSecondaryIndex.project = project  # type: ignore[method-assign]
