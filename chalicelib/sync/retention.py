"""Tombstone retention (PROTOCOL.md §5): tombstones older than the retention are removed and
the vault's horizon rises to the newest removed tombstone's version.

A client whose watermark is below the horizon may have missed a removed tombstone, so its
pull answers 410 resync_required. Pulling from 0 is always served: it needs no tombstone.

The daily work is proportional to what expires, not to the table: a push that writes a
tombstone marks the vault head in the purge index (store/tombstones.py) with the day its
oldest tombstone is due, so the job reads only the marks that are due and, per vault, only
its tombstones (oldest first). Versions follow commit order and `updatedAt` the commit
clock, so the walk stops at the first tombstone younger than the cutoff, and the vault's
mark moves to the day that one is due.
"""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.clock import DAY_MS, now_ms
from chalicelib.store import keys, tombstones
from chalicelib.store.table import Table

__all__ = ["DAY_MS", "purge_all", "purge_vault"]


def purge_vault(table: Table, vault_id: str, retention_days: int, now: int | None = None) -> int:
    """Remove expired tombstones of one vault and move its mark; returns how many went."""
    now = now_ms() if now is None else now
    retention = retention_days * DAY_MS
    cutoff = now - retention
    removed = 0
    next_due: int | None = None
    for page in tombstones.oldest(table, vault_id):
        old = [t for t in page if t.updated_at < cutoff]
        step = tombstones.MAX_REMOVALS_PER_COMMIT
        for i in range(0, len(old), step):
            removed += tombstones.remove(table, vault_id, old[i : i + step])
        if len(old) < len(page):
            next_due = page[len(old)].updated_at + retention
            break
    tombstones.reschedule(table, vault_id, next_due, fallback_ms=now + retention)
    return removed


def purge_all(table: Table, retention_days: int, shards: Iterable[int] | None = None) -> int:
    """The scheduled job: the vaults whose marks are due, shard by shard (several workers can
    share a day by taking disjoint shards), then each vault's expired tombstones."""
    now = now_ms()
    removed = 0
    for shard in range(keys.PURGE_SHARDS) if shards is None else shards:
        for vault_id in list(tombstones.vaults_due(table, shard, now)):
            removed += purge_vault(table, vault_id, retention_days, now)
    return removed
