"""Pull (PROTOCOL.md §5): items in (since, head] by version, from the version LSI.

The head comes from the strongly consistent read that authenticated the request; the Query
on the LSI is strongly consistent too, so a version ≤ head that committed is always seen.
Versions are assigned inside the commit that advances the head, so nothing below the head
can still be in flight: no accepted write is ever skipped.
"""

from __future__ import annotations

from typing import Any

from chalicelib.clock import now_ms
from chalicelib.errors import ApiError
from chalicelib.identity import Principal, touch_device
from chalicelib.shared.limits import MAX_PAGE_CIPHERTEXT_CHARS
from chalicelib.shared.models.sync import PullQuery
from chalicelib.store import keys
from chalicelib.store.table import Table
from chalicelib.sync.items import ciphertext_chars, wire_item

VERSION_INDEX = "byVersion"
LAST_PULL_EVERY_MS = 60_000


def pull(table: Table, principal: Principal, query: PullQuery) -> dict[str, Any]:
    vault_id, meta = principal.require_vault()
    head = int(meta["seq"])
    horizon = int(meta.get("horizon") or 0)
    if query.since > head:
        raise ApiError("resync_required", "The watermark is ahead of the server; pull from 0.")
    if 0 < query.since < horizon:
        raise ApiError("resync_required", "Changes this old are no longer kept; pull from 0.")
    items: list[dict[str, Any]] = []
    chars = 0
    has_more = False
    start: dict[str, Any] | None = None
    while query.since < head:
        want = query.limit + 1 - len(items)  # one extra tells whether more remain
        rows, start = table.query(
            "pk = :pk AND ver BETWEEN :lo AND :hi",
            {":pk": keys.vault_pk(vault_id), ":lo": query.since + 1, ":hi": head},
            index=VERSION_INDEX,
            limit=want,
            start=start,
        )
        for row in rows:
            item = wire_item(row)
            size = ciphertext_chars(len(row["ct"])) if item["ciphertext"] else 0
            if len(items) == query.limit or (items and chars + size > MAX_PAGE_CIPHERTEXT_CHARS):
                has_more = True
                break
            items.append(item)
            chars += size
        if has_more or not start:
            break
    watermark = items[-1]["version"] if has_more else head
    _note_pull(table, principal, vault_id)
    return {"items": items, "watermark": watermark, "hasMore": has_more}


def _note_pull(table: Table, principal: Principal, vault_id: str) -> None:
    """lastPullAt for status, written at most once a minute (it is not worth a write per page)."""
    now = now_ms()
    last = int((principal.device or {}).get("lastPullAt") or 0)
    if now - last >= LAST_PULL_EVERY_MS:
        touch_device(table, vault_id, principal.replica_id, {"lastPullAt": now, "lastSeenAt": now})
