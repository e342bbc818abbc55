"""Pull pages read as if every byte were hostile (issue 14 row 8): the shape, the bounds and
the order are checked before anything of a page is looked at further, and a page that fails
stops the sync with one sentence and stores nothing.
"""

from __future__ import annotations

from typing import Any

from nt2sync.errors import UntrustedAnswer

MAX_VERSION = 2**63 - 1
NOTHING_STORED = "the sync stopped and nothing of it was stored."


def _refuse(what: str) -> UntrustedAnswer:
    return UntrustedAnswer(f"The server sent a pull page that {what}; {NOTHING_STORED}")


def _version(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_VERSION
    return value if ok else None


def check_pull_page(page: Any, since: int, limit: int) -> tuple[list[dict[str, Any]], int, bool]:
    """(items, watermark, hasMore) of a page answering `since`/`limit`, or UntrustedAnswer.

    Items: at most `limit`, each an object with a text id, a version in since+1..watermark,
    ascending, each id once; the watermark an integer in since..2^63−1 (a pull never goes
    back); `hasMore` only with progress (a higher watermark), so a pull always ends.
    """
    if not isinstance(page, dict):
        raise _refuse("is not an object")
    items, watermark, more = page.get("items"), page.get("watermark"), page.get("hasMore", False)
    if not isinstance(items, list):
        raise _refuse("has no item list")
    if len(items) > limit:
        raise _refuse(f"holds {len(items)} items where at most {limit} were asked for")
    if not isinstance(more, bool):
        raise _refuse("says neither that more follow nor that none do")
    if not (isinstance(watermark, int) and not isinstance(watermark, bool)):
        raise _refuse("has no watermark")
    if not since <= watermark <= MAX_VERSION:
        raise _refuse(f"moves the watermark from {since} to {watermark}")
    if more and watermark <= since:
        raise _refuse("promises more without moving forward")
    previous = since
    ids: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise _refuse("holds an item without an id")
        version = _version(item.get("version"))
        if version is None or not previous < version <= watermark:
            raise _refuse(
                f"puts item {item['id'][:64]!r} at version {str(item.get('version'))[:24]} "
                "(out of order or outside the page)"
            )
        if item["id"] in ids:
            raise _refuse("holds one item twice")
        if not isinstance(item.get("deleted", False), bool):
            raise _refuse("holds an item that is neither deleted nor live")
        if item.get("ciphertext") is not None and not isinstance(item["ciphertext"], str):
            raise _refuse("holds an item whose ciphertext is not text")
        ids.add(item["id"])
        previous = version
    return items, watermark, more
