"""Pull (PROTOCOL.md §5): items in (since, head] by version, from the version LSI.

The head comes from the strongly consistent read that authenticated the request; the Query
on the LSI is strongly consistent too, so a version ≤ head that committed is always seen.
Versions are assigned inside the commit that advances the head, so nothing below the head
can still be in flight: no accepted write is ever skipped.
"""

from __future__ import annotations

from typing import Any

from chalicelib.clock import now_ms
from chalicelib.errors import ApiError, ErrorCode, unavailable
from chalicelib.identity import Principal, touch_device
from chalicelib.shared.limits import MAX_PAGE_CIPHERTEXT_CHARS
from chalicelib.shared.models.sync import PullQuery
from chalicelib.store import item_rows, vault_heads
from chalicelib.store.table import Table
from chalicelib.sync.items import ciphertext_chars, wire_item

LAST_PULL_EVERY_MS = 60_000
MAX_HEAD_ROUNDS = 8


def pull(table: Table, principal: Principal, query: PullQuery) -> dict[str, Any]:
    vault_id, meta = principal.require_vault()
    head = int(meta["seq"])
    horizon = int(meta.get("horizon") or 0)
    if query.since > head:
        raise ApiError(
            ErrorCode.RESYNC_REQUIRED, "The watermark is ahead of the server; pull from 0."
        )
    if 0 < query.since < horizon:
        raise ApiError(
            ErrorCode.RESYNC_REQUIRED, "Changes this old are no longer kept; pull from 0."
        )
    page = _Page(query.limit)
    lo = query.since
    if lo == head:  # nothing can move out of an empty range
        return _answer(table, principal, vault_id, [], head, False)
    for _round in range(MAX_HEAD_ROUNDS):
        if not page.collect(table, vault_id, lo, head):
            # The page is full: the client continues from its last item, unless a purge
            # raised the horizon past `since` while we read (then this page may lack one).
            _head(table, vault_id, query.since)
            break
        # A write that committed while we read may have moved an item from inside the
        # range to a version above the head we started from. The page only ends at the head
        # if the head did not move meanwhile; otherwise read the versions it moved over too.
        now_head = _head(table, vault_id, query.since)
        if now_head == head:
            return _answer(table, principal, vault_id, page.items, head, False)
        lo, head = head, now_head
    if not page.items:
        raise unavailable()  # unceasing writes: the client retries (pathological)
    return _answer(table, principal, vault_id, page.items, page.items[-1]["version"], True)


class _Page:
    """Items of one response: ≤ limit, ≤ 4 MiB of ciphertext, one entry per item id."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[dict[str, Any]] = []
        self.chars = 0
        self.positions: dict[str, int] = {}
        self.sizes: dict[str, int] = {}

    def collect(self, table: Table, vault_id: str, lo: int, hi: int) -> bool:
        """Add items with lo < version ≤ hi; False when the page filled up first."""
        start: dict[str, Any] | None = None
        while True:
            want = self.limit + 1 - len(self.items)  # one extra tells whether more remain
            rows, start = item_rows.between(table, vault_id, lo, hi, want, start)
            for row in rows:
                if not self._add(row):
                    return False
            if not start:
                return True

    def _add(self, row: dict[str, Any]) -> bool:
        item = wire_item(row)
        size = ciphertext_chars(len(row["ct"])) if item["ciphertext"] else 0
        if len(self.items) == self.limit or (
            self.items and self.chars + size > MAX_PAGE_CIPHERTEXT_CHARS
        ):
            return False
        old = self.positions.pop(item["id"], None)
        if old is not None:  # seen at an older version earlier in this page: keep the newest
            self.chars -= self.sizes.pop(item["id"])
            del self.items[old]
            self.positions = {i["id"]: n for n, i in enumerate(self.items)}
        self.sizes[item["id"]] = size
        self.positions[item["id"]] = len(self.items)
        self.items.append(item)
        self.chars += size
        return True


def _head(table: Table, vault_id: str, since: int) -> int:
    """The head now; 410 if a purge raised the horizon past `since` while we read."""
    meta = vault_heads.get(table, vault_id)
    if meta is None:
        raise ApiError(ErrorCode.VAULT_NOT_FOUND, "No vault is registered for this Key DID.")
    if 0 < since < int(meta.get("horizon") or 0):
        raise ApiError(
            ErrorCode.RESYNC_REQUIRED, "Changes this old are no longer kept; pull from 0."
        )
    return int(meta["seq"])


def _answer(
    table: Table,
    principal: Principal,
    vault_id: str,
    items: list[dict[str, Any]],
    watermark: int,
    has_more: bool,
) -> dict[str, Any]:
    _note_pull(table, principal, vault_id)
    return {"items": items, "watermark": watermark, "hasMore": has_more}


def _note_pull(table: Table, principal: Principal, vault_id: str) -> None:
    """lastPullAt for status, written at most once a minute (it is not worth a write per page)."""
    now = now_ms()
    last = int((principal.device or {}).get("lastPullAt") or 0)
    if now - last >= LAST_PULL_EVERY_MS:
        touch_device(table, vault_id, principal.replica_id, {"lastPullAt": now, "lastSeenAt": now})
