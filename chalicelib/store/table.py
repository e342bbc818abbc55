"""The single table: typed conversion, retries with backoff, the calls the domain needs."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.errors import unavailable
from chalicelib.settings import get_settings
from chalicelib.store.aws import client
from chalicelib.store.errors import ConditionFailed

T = TypeVar("T")
Item = dict[str, Any]
Key = dict[str, dict[str, str]]

RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
MAX_ATTEMPTS = 6
MAX_BATCH_GET = 100  # keys per BatchGetItem request

_ser = TypeSerializer()
_deser = TypeDeserializer()

# Tests install a hook here to inject faults: called with the operation name before each call.
fault_hook: Callable[[str], None] | None = None


def to_av(value: Any) -> dict[str, Any]:
    """Python value → DynamoDB attribute value (ints stay exact)."""
    out: dict[str, Any] = _ser.serialize(value)  # type: ignore[assignment]
    return out


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return bytes(value.value)  # type: ignore[attr-defined]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


def from_item(item: Mapping[str, Any] | None) -> Item | None:
    """DynamoDB item → plain dict (numbers as int, binary as bytes)."""
    if item is None:
        return None
    return {k: _plain(_deser.deserialize(v)) for k, v in item.items()}


def is_transaction_conflict(exc: ClientError) -> bool:
    """A TransactionCanceledException caused only by a concurrent transaction (retry it)."""
    reasons = exc.response.get("CancellationReasons") or []
    codes = {r.get("Code") for r in reasons} - {"None", None}
    return bool(codes) and codes <= {"TransactionConflict"}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def with_retries(operation: str, call: Callable[[], T]) -> T:
    """Run a storage call, retrying throttles and transaction conflicts with jittered backoff.

    When retries run out the client gets 503 `unavailable` with Retry-After; every caller is
    idempotent (conditional writes, batch records), so a retry of the request is safe.
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            if fault_hook is not None:
                fault_hook(operation)
            return call()
        except ClientError as exc:
            code = error_code(exc)
            retry = code in RETRYABLE or (
                code == "TransactionCanceledException" and is_transaction_conflict(exc)
            )
            if not retry:
                raise
            if attempt == MAX_ATTEMPTS - 1:
                raise unavailable() from exc
            time.sleep(min(0.5, 0.01 * (2**attempt)) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _conditional(operation: str, call: Callable[[], T]) -> T:
    """A single-item write: a false condition is raised as ConditionFailed."""
    try:
        return with_retries(operation, call)
    except ClientError as exc:
        if condition_failed(exc):
            raise ConditionFailed.from_client_error(exc) from exc
        raise


class Table:
    """Thin access layer over the single table; every method names its consistency."""

    def __init__(self, name: str | None = None, ddb: Any = None) -> None:
        self.name = name or get_settings().table_name
        self.ddb = ddb or client("dynamodb")

    def get(self, key: Key) -> Item | None:
        """Strongly consistent GetItem."""
        resp = with_retries(
            "GetItem",
            lambda: self.ddb.get_item(TableName=self.name, Key=key, ConsistentRead=True),
        )
        return from_item(resp.get("Item"))

    def batch_get(self, keys: list[Key]) -> list[Item]:
        """Strongly consistent BatchGetItem of any number of keys: one request per 100 (the
        service's limit), each following its UnprocessedKeys."""
        out: list[Item] = []
        for start in range(0, len(keys), MAX_BATCH_GET):
            out += self._batch_get_group(keys[start : start + MAX_BATCH_GET])
        return out

    def _batch_get_group(self, keys: list[Key]) -> list[Item]:
        out: list[Item] = []
        request: dict[str, Any] = {self.name: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(MAX_ATTEMPTS + 1):
            resp = self._batch_get_once(request)
            for raw in resp.get("Responses", {}).get(self.name, []):
                item = from_item(raw)
                assert item is not None
                out.append(item)
            pending = resp.get("UnprocessedKeys") or {}
            if not pending.get(self.name):
                return out
            if attempt == MAX_ATTEMPTS:
                break
            request = pending
            time.sleep(min(0.5, 0.01 * (2**attempt)) * (0.5 + random.random()))
        raise unavailable()

    def _batch_get_once(self, request: dict[str, Any]) -> Any:
        return with_retries("BatchGetItem", lambda: self.ddb.batch_get_item(RequestItems=request))

    def put(
        self,
        item: Mapping[str, Any],
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Item": to_item(item)}
        _add_condition(kwargs, condition, names, values)
        _conditional("PutItem", lambda: self.ddb.put_item(**kwargs))

    def update(
        self,
        key: Key,
        expression: str,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        returns: str | None = None,
    ) -> Item | None:
        """UpdateItem; `returns` is a ReturnValues mode (ALL_OLD, ALL_NEW) or None."""
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "Key": key,
            "UpdateExpression": expression,
        }
        _add_condition(kwargs, condition, names, values)
        if returns:
            kwargs["ReturnValues"] = returns
        resp = _conditional("UpdateItem", lambda: self.ddb.update_item(**kwargs))
        return from_item(resp.get("Attributes"))

    def delete(
        self,
        key: Key,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        return_old: bool = False,
    ) -> Item | None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Key": key}
        _add_condition(kwargs, condition, names, values)
        if return_old:
            kwargs["ReturnValues"] = "ALL_OLD"
        resp = _conditional("DeleteItem", lambda: self.ddb.delete_item(**kwargs))
        return from_item(resp.get("Attributes"))

    def transact(self, actions: list[dict[str, Any]]) -> None:
        """TransactWriteItems (≤ 100 actions, ≤ 4 MB); conflicts with other transactions retry."""
        for action in actions:
            body = next(iter(action.values()))
            body.setdefault("TableName", self.name)
        with_retries(
            "TransactWriteItems", lambda: self.ddb.transact_write_items(TransactItems=actions)
        )

    def query(
        self,
        key_condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
        index: str | None = None,
        limit: int | None = None,
        forward: bool = True,
        start: dict[str, Any] | None = None,
    ) -> tuple[list[Item], dict[str, Any] | None]:
        """One strongly consistent Query page (base table or LSI): items and LastEvaluatedKey."""
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": {k: to_av(v) for k, v in values.items()},
            "ConsistentRead": True,
            "ScanIndexForward": forward,
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if index:
            kwargs["IndexName"] = index
            # The version index projects keys only (an LSI entry counts toward the item's
            # 400 KB); DynamoDB fetches the rest from the base table, strongly consistent.
            kwargs["Select"] = "ALL_ATTRIBUTES"
        return self._query_page(kwargs, limit, start)

    def query_index(
        self,
        index: str,
        key_condition: str,
        values: dict[str, Any],
        limit: int | None = None,
        start: dict[str, Any] | None = None,
    ) -> tuple[list[Item], dict[str, Any] | None]:
        """One Query page of a global secondary index, with its projected attributes only.

        Eventually consistent: DynamoDB refuses ConsistentRead on a GSI. A caller acts on
        what it finds only through writes whose conditions re-check the base table.
        """
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "IndexName": index,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": {k: to_av(v) for k, v in values.items()},
        }
        return self._query_page(kwargs, limit, start)

    def _query_page(
        self, kwargs: dict[str, Any], limit: int | None, start: dict[str, Any] | None
    ) -> tuple[list[Item], dict[str, Any] | None]:
        if limit:
            kwargs["Limit"] = limit
        if start:
            kwargs["ExclusiveStartKey"] = start
        resp = with_retries("Query", lambda: self.ddb.query(**kwargs))
        items = [i for i in (from_item(r) for r in resp.get("Items", [])) if i is not None]
        return items, resp.get("LastEvaluatedKey")

    def query_all(
        self, key_condition: str, values: dict[str, Any], names: dict[str, str] | None = None
    ) -> Iterator[Item]:
        """Every item of a strongly consistent Query, page after page."""
        start: dict[str, Any] | None = None
        while True:
            items, start = self.query(key_condition, values, names, start=start)
            yield from items
            if not start:
                return

    def pages(self, **kwargs: Any) -> Iterator[Item]:
        """Every item of a low-level Query (kwargs as boto3 takes them), page after page."""
        return paginate(self, "Query", self.ddb.query, kwargs)


def _add_condition(
    kwargs: dict[str, Any],
    condition: str | None,
    names: dict[str, str] | None,
    values: dict[str, Any] | None,
) -> None:
    if condition:
        kwargs["ConditionExpression"] = condition
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if values:
        kwargs["ExpressionAttributeValues"] = {k: to_av(v) for k, v in values.items()}


def condition_failed(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def paginate(
    table: Table, operation: str, call: Callable[..., Any], kwargs: dict[str, Any]
) -> Iterator[Item]:
    """Every item of a low-level Query or Scan `call`, following LastEvaluatedKey."""
    request: dict[str, Any] = {"TableName": table.name, **kwargs}
    while True:
        resp = with_retries(operation, lambda: call(**request))
        for raw in resp.get("Items", []):
            item = from_item(raw)
            assert item is not None
            yield item
        start = resp.get("LastEvaluatedKey")
        if not start:
            return
        request["ExclusiveStartKey"] = start
