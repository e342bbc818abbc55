"""DynamoDB item reads answer with plain JSON, not through moto's generic serializer.

Upstream report (moto 5.2.5, not filed: no network here): "DynamoDB Query/GetItem/
BatchGetItem responses are serialized by `moto.core.serialize.ResponseSerializer`, which
walks the botocore output shape for every attribute of every item. A Query page of 1 000
items of 1 KiB takes ~0.5 s of CPU in the serializer alone (5.6 s of an 8.6 s full pull of
10 000 items), while the result is already in DynamoDB's wire form: `DynamoResult` holds
`dynamo_to_dict(...)` of the items, `{"S": …}`/`{"N": …}`/`{"B": <base64>}` maps that the
JSON protocol sends as they are. Repro: put 1 000 items, time `query` with
`ScanIndexForward` and a 1 MB page; profile `moto/core/serialize.py`."

Real DynamoDB answers these operations with exactly that JSON, so for the three item-reading
operations we send the result as JSON directly; every other operation keeps moto's path.
`tests/unit/test_moto_json.py` checks the answers equal moto's own, item for item.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from moto.core.responses import ActionContext
from moto.dynamodb import responses as dynamo_responses

FAST = frozenset({"Query", "GetItem", "BatchGetItem"})
_ORIGINAL = dynamo_responses.DynamoResult.execute_result


def _wire(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")  # the JSON protocol's blob form
    raise TypeError(type(value).__name__)


def _execute_result(self: Any, context: ActionContext) -> Any:
    if context.operation_model.name not in FAST:
        return _ORIGINAL(self, context)
    try:
        body = json.dumps(self.result, separators=(",", ":"), default=_wire)
    except TypeError:
        return _ORIGINAL(self, context)  # something only moto's serializer knows: its path
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body


def apply() -> None:
    """Install the fast path (idempotent)."""
    dynamo_responses.DynamoResult.execute_result = _execute_result  # type: ignore[method-assign]


def remove() -> None:
    """Back to moto's serializer (the test compares the two)."""
    dynamo_responses.DynamoResult.execute_result = _ORIGINAL  # type: ignore[method-assign]
