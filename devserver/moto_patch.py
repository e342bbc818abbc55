"""Make moto's DynamoDB TransactWriteItems roll back per touched item instead of per table copy.

Upstream issue (moto 5.2.5; no network here, so this is the report to file at
github.com/getmoto/moto/issues):

    DynamoDB: transact_write_items deep-copies the whole table once per action

    What moto does: ``DynamoDBBackend.transact_write_items`` takes its rollback backup with
    ``copy.deepcopy(table)`` once per *action*. A 100-action transaction into a table of n
    items deep-copies the table 100 times, so filling a table with transactions is
    O(n^2) in time and holds a full table copy in memory during every call.
    What DynamoDB does: a transaction costs what its (at most 100) items cost, whatever the
    table size.
    Repro::

        import time, boto3, moto
        with moto.mock_aws():
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
            for batch in range(100):
                t = time.perf_counter()
                ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "t",
                    "Item": {"pk": {"S": f"{batch}-{i}"}}}} for i in range(100)])
                print(batch * 100, time.perf_counter() - t)  # grows with the table size

Why it matters here: pushing a vault of 10 000 items would be O(items^2).

How: we wrap moto's method instead of re-implementing it, so validation, condition evaluation,
``ReturnValuesOnConditionCheckFailure`` items and ``CancellationReasons`` stay moto's own code.
Only the backup changes:

1. Before calling moto we snapshot every item the actions may write, by primary key: a deep copy
   of the existing item, or "absent" (so a rollback deletes items the transaction created).
2. While moto's method runs in this thread, the ``copy.deepcopy`` that module sees returns
   ``Table`` objects as they are. Its backup then costs nothing, and its own "restore"
   (``self.tables[name] = backup``) just puts the same live table back.
3. If moto raises anything (cancellation, validation, ...), we put the snapshots back. That
   also covers the errors that moto raises without rolling back (e.g. two operations in one
   action) and tables addressed by ARN, which moto's by-name backup does not cover.

Secondary indexes need no extra work: moto stores no index data. LSI/GSI queries and scans
filter ``table.items`` when they are read, so restoring the items restores the indexes.

Installed by ``devserver.moto_fidelity.apply()`` (which checks the moto version first).
"""

from __future__ import annotations

import copy
import functools
import threading
import types
from collections.abc import Callable
from typing import Any

import moto.dynamodb.models as ddb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

__all__ = ["apply"]

_MARKER = "_nt2_touched_item_rollback"
_state = threading.local()  # .active: this thread is inside the patched transaction


def _deepcopy(obj: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy`` for moto's models module, except inside our wrapper, where a Table is
    not copied (that copy is moto's rollback backup, which our snapshot replaces)."""
    if isinstance(obj, Table) and getattr(_state, "active", False):
        return obj
    return copy.deepcopy(obj, memo)  # looked up at call time, so tests can count calls


# Stands in for the ``copy`` module inside moto.dynamodb.models: everything is the real module's,
# except deepcopy.
_copy_shim = types.SimpleNamespace(**vars(copy))
_copy_shim.deepcopy = _deepcopy


# (table, hash key, range key, partition existed, deep copy of the old item or None if absent)
_Snapshot = tuple[Table, Any, Any, bool, Any]


def _snapshot(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[_Snapshot]:
    snaps: list[_Snapshot] = []
    for action in transact_items:
        for op_type, op in action.items():
            if op_type == "ConditionCheck":
                continue  # reads only
            try:
                table = backend.get_table(op["TableName"])  # also resolves table ARNs
                if op_type == "Put":
                    key_names = (table.hash_key_attr, table.range_key_attr)
                    key = {k: op["Item"][k] for k in key_names if k is not None}
                else:
                    key = op["Key"]
                # The key lookup that moto runs before any write: if it fails here, moto fails
                # that action too, before writing it.
                hash_key, range_key = backend.get_keys_value(table, key)
            except Exception:  # noqa: BLE001, S112 - moto reports the bad action itself
                continue
            if range_key is None:
                old = table.items.get(hash_key)
                had_partition = old is not None
            else:
                partition = table.items.get(hash_key)
                had_partition = partition is not None
                old = partition.get(range_key) if partition is not None else None
            snaps.append((table, hash_key, range_key, had_partition, copy.deepcopy(old)))
    return snaps


def _restore(snaps: list[_Snapshot]) -> None:
    for table, hash_key, range_key, had_partition, old in reversed(snaps):
        if range_key is None:
            if old is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = old
            continue
        partition = table.items[hash_key]  # table.items is a defaultdict(dict)
        if old is None:
            partition.pop(range_key, None)
        else:
            partition[range_key] = old
        # moto's get_item() on a range-key table creates an empty partition for an absent hash
        # key (defaultdict); drop it so the table is exactly as before.
        if not had_partition and not partition:
            del table.items[hash_key]


def _stream_marks(snaps: list[_Snapshot]) -> list[tuple[Any, list[Any], int]]:
    """Where each touched table's stream ends now: a cancelled transaction emits no records."""
    shards = {id(s[0]): s[0].stream_shard for s in snaps if s[0].stream_shard is not None}
    return [(shard, shard.items, len(shard.items)) for shard in shards.values()]


def _wrap(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        snaps = _snapshot(self, transact_items)
        marks = _stream_marks(snaps)
        _state.active = True
        try:
            original(self, transact_items)
        except BaseException:
            _restore(snaps)
            for shard, records, length in marks:
                del records[length:]
                shard.items = records
            raise
        finally:
            _state.active = False

    setattr(transact_write_items, _MARKER, True)
    return transact_write_items


def apply() -> None:
    """Install the patch (idempotent); use ``devserver.moto_fidelity.apply()``."""
    if getattr(DynamoDBBackend.transact_write_items, _MARKER, False):
        return
    ddb_models.copy = _copy_shim  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = _wrap(  # type: ignore[method-assign]
        DynamoDBBackend.transact_write_items
    )
