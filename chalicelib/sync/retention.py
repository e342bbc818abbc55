"""Tombstone retention (PROTOCOL.md §5): tombstones older than the retention are removed and
the vault's horizon rises to the newest removed tombstone's version.

A client whose watermark is below the horizon may have missed a removed tombstone, so its
pull answers 410 resync_required. Pulling from 0 is always served: it needs no tombstone.
Items are walked by version from a per-vault cursor, so each run costs what is new since
the last one. Versions follow commit order and `updatedAt` the commit clock, so the walk
stops at the first item younger than the cutoff.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import now_ms
from chalicelib.store import keys
from chalicelib.store.table import Table, error_code, to_av
from chalicelib.sync.pull import VERSION_INDEX

DAY_MS = 86_400_000
MAX_DELETES_PER_COMMIT = 99  # + the head row update = 100 actions


def purge_vault(table: Table, vault_id: str, retention_days: int) -> int:
    """Remove expired tombstones of one vault; returns how many were removed."""
    meta = table.get(keys.meta_key(vault_id))
    if meta is None:
        return 0
    cutoff = now_ms() - retention_days * DAY_MS
    cursor = int(meta.get("purgeCursor") or 0)
    removed = 0
    start: dict[str, Any] | None = None
    while True:
        rows, start = table.query(
            "pk = :pk AND ver > :cursor",
            {":pk": keys.vault_pk(vault_id), ":cursor": cursor},
            index=VERSION_INDEX,
            limit=500,
            start=start,
        )
        old = []
        reached_young = False
        for row in rows:
            if int(row.get("updatedAt", 0)) >= cutoff:
                reached_young = True
                break
            old.append(row)
        for i in range(0, len(old), MAX_DELETES_PER_COMMIT):
            group = old[i : i + MAX_DELETES_PER_COMMIT]
            tombs = [r for r in group if r.get("deleted")]
            new_cursor = int(group[-1]["ver"])
            if not _commit(table, vault_id, tombs, new_cursor):
                return removed  # an item changed under us: the next run picks up from here
            removed += len(tombs)
            cursor = new_cursor
        if reached_young or not start:
            return removed


def _commit(table: Table, vault_id: str, tombs: list[dict[str, Any]], cursor: int) -> bool:
    horizon = max((int(r["ver"]) for r in tombs), default=0)
    actions: list[dict[str, Any]] = [
        {
            "Delete": {
                "Key": keys.item_key(vault_id, r["id"]),
                # Only the tombstone we saw: a revived item (new version) is left alone.
                "ConditionExpression": "ver = :v AND deleted = :t",
                "ExpressionAttributeValues": {":v": to_av(int(r["ver"])), ":t": to_av(True)},
            }
        }
        for r in tombs
    ]
    update = "SET purgeCursor = :c"
    values: dict[str, Any] = {":c": to_av(cursor)}
    if tombs:
        update += ", horizon = :h ADD nTombstones :n"
        values.update({":h": to_av(horizon), ":n": to_av(-len(tombs))})
    actions.append(
        {
            "Update": {
                "Key": keys.meta_key(vault_id),
                "UpdateExpression": update,
                "ConditionExpression": "attribute_not_exists(purgeCursor) OR purgeCursor < :c",
                "ExpressionAttributeValues": values,
            }
        }
    )
    try:
        table.transact(actions)
    except ClientError as exc:
        if error_code(exc) == "TransactionCanceledException":
            return False
        raise
    return True


def purge_all(table: Table, retention_days: int) -> int:
    """The scheduled job: every vault head, then its expired tombstones."""
    removed = 0
    for vault_id in table.vault_ids():
        removed += purge_vault(table, vault_id, retention_days)
    return removed
