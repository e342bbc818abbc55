"""The purge index (GSI `byPurge`): which vaults have tombstones due, and which tombstones.

Access patterns (docs/TABLE_DESIGN.md, "Purge index"):
- vaults due in one shard: Query `purgePk = PURGEDUE#<s> AND purgeSk <= now` (head marks);
- a vault's tombstones, oldest first: Query `purgePk = TOMBS#<v>` (ascending version).
Both are eventually consistent (a GSI has nothing else). That is safe because every write
that acts on them re-checks the base table: a tombstone is deleted only if it is still the
tombstone at the version the index showed, and a mark is removed only if the head counts
no tombstone. A tombstone too new to be in the index yet is also too young to be due.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.store import keys
from chalicelib.store.table import Table, condition_failed, to_av
from chalicelib.store.txn import Cancelled, Transaction

PAGE = 100  # index rows per Query page
MAX_REMOVALS_PER_COMMIT = 99  # + the head row update = 100 actions
HEAD = "head"
TOMB = "tomb:"  # action names of tombstone deletes: TOMB + item id

# The head's mark, set by a push that writes a tombstone if no mark is there yet: a mark
# already present is at least as early, because tombstones only get younger.
MARK_IF_ABSENT = (
    f"{keys.PURGE_PK} = if_not_exists({keys.PURGE_PK}, :purgePk), "
    f"{keys.PURGE_SK} = if_not_exists({keys.PURGE_SK}, :purgeDue)"
)


def mark_values(vault_id: str, due_ms: int) -> dict[str, Any]:
    """Expression values for MARK_IF_ABSENT: the vault's shard and when it is due."""
    return {
        ":purgePk": to_av(keys.purge_due_pk(keys.purge_shard(vault_id))),
        ":purgeDue": to_av(due_ms),
    }


def tombstone_attributes(vault_id: str, version: int) -> dict[str, Any]:
    """The attributes that put a tombstone row into the index (a live row has none)."""
    return {keys.PURGE_PK: keys.tombstones_pk(vault_id), keys.PURGE_SK: version}


@dataclass(frozen=True)
class Tombstone:
    item_id: str
    version: int
    updated_at: int


def vaults_due(table: Table, shard: int, now_ms: int) -> Iterator[str]:
    """Every vault of one shard whose oldest unpurged tombstone is due by now."""
    start: dict[str, Any] | None = None
    while True:
        rows, start = table.query_index(
            keys.PURGE_INDEX,
            f"{keys.PURGE_PK} = :p AND {keys.PURGE_SK} <= :now",
            {":p": keys.purge_due_pk(shard), ":now": now_ms},
            limit=PAGE * 10,
            start=start,
        )
        for row in rows:
            yield keys.vault_id_of(str(row["pk"]))
        if not start:
            return


def oldest(table: Table, vault_id: str) -> Iterator[list[Tombstone]]:
    """A vault's tombstones as the index holds them, oldest (lowest version) first, by page."""
    start: dict[str, Any] | None = None
    item_prefix = len(keys.item_sk(""))
    while True:
        rows, start = table.query_index(
            keys.PURGE_INDEX,
            f"{keys.PURGE_PK} = :p",
            {":p": keys.tombstones_pk(vault_id)},
            limit=PAGE,
            start=start,
        )
        yield [
            Tombstone(str(r["sk"])[item_prefix:], int(r[keys.PURGE_SK]), int(r["updatedAt"]))
            for r in rows
        ]
        if not start:
            return


def remove(table: Table, vault_id: str, tombs: list[Tombstone]) -> int:
    """Delete these tombstones and raise the vault's horizon to the newest of them, in one
    transaction; returns how many were removed. One that changed meanwhile (revived, or
    already removed by another run) is left alone; the horizon never goes down."""
    assert len(tombs) <= MAX_REMOVALS_PER_COMMIT
    pending = list(tombs)
    raise_horizon = True
    for _attempt in range(3):
        if not pending:
            return 0
        try:
            _removal(vault_id, pending, raise_horizon).commit(table)
        except Cancelled as cancelled:
            if HEAD in cancelled.failed:
                if not raise_horizon:
                    return 0  # the vault itself is gone
                raise_horizon = False  # the horizon is already higher: keep it
            pending = [t for t in pending if TOMB + t.item_id not in cancelled.failed]
            continue
        return len(pending)
    return 0  # still contended: its mark stays, so the next run tries again


def _removal(vault_id: str, tombs: list[Tombstone], raise_horizon: bool) -> Transaction:
    txn = Transaction()
    for t in tombs:
        txn.add(
            TOMB + t.item_id,
            {
                "Delete": {
                    "Key": keys.item_key(vault_id, t.item_id),
                    "ConditionExpression": "ver = :v AND deleted = :t",
                    "ExpressionAttributeValues": {":v": to_av(t.version), ":t": to_av(True)},
                }
            },
        )
    values: dict[str, Any] = {":n": to_av(-len(tombs))}
    update = "ADD nTombstones :n"
    condition = "attribute_exists(pk)"
    if raise_horizon:
        update = "SET horizon = :h " + update
        condition += " AND (attribute_not_exists(horizon) OR horizon < :h)"
        values[":h"] = to_av(max(t.version for t in tombs))
    txn.add(
        HEAD,
        {
            "Update": {
                "Key": keys.meta_key(vault_id),
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        },
    )
    return txn


def reschedule(table: Table, vault_id: str, next_due_ms: int | None, fallback_ms: int) -> None:
    """After a purge: mark the vault due when its oldest remaining tombstone is, or remove
    the mark when the head counts none (a tombstone pushed meanwhile keeps it, due at
    `fallback_ms`: no later than that tombstone's own due time)."""
    if next_due_ms is None:
        try:
            table.update(
                keys.meta_key(vault_id),
                f"REMOVE {keys.PURGE_PK}, {keys.PURGE_SK}",
                condition="attribute_exists(pk) AND nTombstones <= :zero",
                values={":zero": 0},
            )
            return
        except ClientError as exc:
            if not condition_failed(exc):
                raise
        next_due_ms = fallback_ms
    try:
        table.update(
            keys.meta_key(vault_id),
            f"SET {keys.PURGE_PK} = :p, {keys.PURGE_SK} = :d",
            condition="attribute_exists(pk)",
            values={":p": keys.purge_due_pk(keys.purge_shard(vault_id)), ":d": next_due_ms},
        )
    except ClientError as exc:
        # A vault deleted meanwhile has no head to mark: nothing to do.
        if not condition_failed(exc):
            raise
