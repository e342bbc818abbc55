"""The vault's entitlement rows and the summary (premiumUntil, premiumSource) kept on META.

Every change to an entitlement row goes through `change_entitlements`: it reads META and all
`ENT#` rows strongly consistently, lets the caller plan its writes from that snapshot, and
commits the writes together with the recomputed summary in ONE transaction, conditioned on
META's `entVersion` counter. Two concurrent changes therefore cannot lose each other: the
second one's transaction is cancelled, and it is planned again from fresh reads (which is also
how a domain rule such as "no redemptions left" is re-judged after losing a race).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.clock import now_ms
from chalicelib.errors import unavailable
from chalicelib.store import entitlement_rows, keys, vault_heads
from chalicelib.store.table import Item, Table
from chalicelib.store.txn import Cancelled, Transaction

SOURCE_SUBSCRIPTION = "subscription"
SOURCE_PROMO = "promo"
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Snapshot:
    """META and the entitlement rows of one vault, read together (strongly consistent)."""

    vault_id: str
    meta: Item
    rows: dict[str, Item]

    @property
    def version(self) -> int:
        return int(self.meta.get("entVersion") or 0)


@dataclass
class Change:
    """A planned change: its writes (a transaction the summary joins) and the entitlement rows
    as they will be after it."""

    txn: Transaction
    rows: dict[str, Item] = field(default_factory=dict)


def row_until(row: Item) -> int:
    """Until when (ms) one entitlement row keeps the vault active; 0 when it does not."""
    if row.get("sk") == keys.PROMO_ENTITLEMENT_SK:
        return int(row.get("endsAt") or 0)
    return int(row.get("until") or 0)


def row_source(row: Item) -> str:
    return SOURCE_PROMO if row.get("sk") == keys.PROMO_ENTITLEMENT_SK else SOURCE_SUBSCRIPTION


def summarize(rows: Iterable[Item], previous_source: str | None) -> tuple[int, str | None]:
    """(premiumUntil, premiumSource): the latest end of any entitlement and whose it is.

    A vault is active while any of its entitlements is, so the summary is the maximum. The
    source is that of the entitlement that is or was last active; when no row was ever active
    (a subscription that arrived paused) the previous source stays, `None` if there never was
    one.
    """
    best_until, best_source = 0, None
    for row in rows:
        until = row_until(row)
        if until > best_until:
            best_until, best_source = until, row_source(row)
    return best_until, best_source or previous_source


def load(table: Table, vault_id: str) -> Snapshot | None:
    """META and every `ENT#` row of the vault; None if the vault head does not exist."""
    meta = vault_heads.get(table, vault_id)
    if meta is None or ("ttl" in meta and int(meta["ttl"]) <= now_ms() // 1000):
        return None  # gone, or an unregistered vault past its 24 h (deleted late by TTL)
    return Snapshot(vault_id, meta, entitlement_rows.rows(table, vault_id))


def change_entitlements(
    table: Table,
    vault_id: str,
    plan: Callable[[Snapshot], Change | None],
    commit: Callable[[Transaction], None] | None = None,
) -> dict[str, Any] | None:
    """Plan and commit one entitlement change with the vault's summary; retried on any race.

    `plan` may raise a domain error (ApiError) or return None for "nothing to write". Returns
    the summary now in force ({premiumUntil, premiumSource}), or None if the vault is gone.
    `commit` (default: the transaction alone) lets a route add its session checks.
    """
    for attempt in range(MAX_ATTEMPTS):
        snap = load(table, vault_id)
        if snap is None:
            return None
        change = plan(snap)
        if change is None:
            return {
                "premiumUntil": int(snap.meta.get("premiumUntil") or 0),
                "premiumSource": snap.meta.get("premiumSource"),
            }
        rows = {**snap.rows, **change.rows}
        until, source = summarize(rows.values(), snap.meta.get("premiumSource"))
        txn = change.txn
        entitlement_rows.add_summary(
            txn,
            vault_id,
            seen_version=snap.version,
            until=until,
            source=source,
            now_s=now_ms() // 1000,
        )
        if "ttl" in snap.meta and snap.meta.get("keyDid"):
            entitlement_rows.add_keep_pointer(txn, str(snap.meta["keyDid"]), vault_id)
        try:
            if commit is None:
                txn.commit(table)
            else:
                commit(txn)
        except Cancelled:
            # Someone changed the vault's entitlements (or the promo counter) since we read:
            # plan again from fresh reads.
            time.sleep(min(0.2, 0.005 * (2**attempt)) * (0.5 + random.random()))
            continue
        return {"premiumUntil": until, "premiumSource": source}
    raise unavailable()
