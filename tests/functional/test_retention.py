"""Tombstone retention: purge, horizon, 410 for a watermark below it, counts stay exact."""

from __future__ import annotations

from typing import Any

from chalicelib.store.table import Table
from chalicelib.sync.retention import DAY_MS, purge_all
from tests.functional.sync_helpers import batch, live, tomb
from tests.helpers import Device


def _push(dev: Device, items: list[dict[str, Any]]) -> Any:
    r = dev.call("POST", "/api/sync/push", batch(items))
    assert r.status == 200, r.body
    return r.body


def test_purge_removes_old_tombstones_and_raises_horizon(registered: Device, clock: Any) -> None:
    # GIVEN old tombstones and a live item, then a young tombstone
    _push(registered, [live("a"), live("b"), live("c")])
    _push(registered, [tomb("a", 1), tomb("b", 2)])  # versions 4, 5
    clock(91 * DAY_MS)
    registered.sign_in()
    _push(registered, [tomb("c", 3)])  # version 6, young
    # WHEN the daily job runs
    removed = purge_all(Table(), 90)
    # THEN only the old tombstones are gone, the horizon is the newest removed version
    assert removed == 2
    registered.sign_in()
    st = registered.call("GET", "/api/sync/status").body
    assert st["counts"]["tombstones"] == 1 and st["counts"]["items"] == 0
    full = registered.call("GET", "/api/sync/pull?since=0").body
    assert [(i["id"], i["version"]) for i in full["items"]] == [("c", 6)]
    below = registered.call("GET", "/api/sync/pull?since=3")
    assert (below.status, below.body["code"]) == (410, "resync_required")
    at = registered.call("GET", "/api/sync/pull?since=5")
    assert at.status == 200 and [i["id"] for i in at.body["items"]] == ["c"]
    # a second run has nothing to do and leaves everything as it was
    assert purge_all(Table(), 90) == 0


def test_revived_item_is_not_purged(registered: Device, clock: Any) -> None:
    _push(registered, [live("a")])
    _push(registered, [tomb("a", 1)])
    _push(registered, [live("a", base=2, text="back")])
    clock(100 * DAY_MS)
    assert purge_all(Table(), 90) == 0
    registered.sign_in()
    st = registered.call("GET", "/api/sync/status").body["counts"]
    assert (st["items"], st["tombstones"]) == (1, 0)


def test_purge_during_a_full_page_answers_410(
    registered: Device, clock: Any, monkeypatch: Any
) -> None:
    # GIVEN old tombstones (v5, v6) behind a live item and young items after them
    from chalicelib.sync.retention import purge_vault

    _push(registered, [live("p"), live("a"), live("b"), live("c")])  # v1..4
    _push(registered, [tomb("a", 2), tomb("b", 3)])  # v5, v6
    clock(91 * DAY_MS)
    registered.sign_in()
    _push(registered, [live("q"), live("r"), live("s")])  # v7..9
    vault_id = (registered.token or "").split("~")[0]
    original = Table.query
    calls = {"n": 0}

    def query_with_purge(self: Any, cond: str, values: Any, **kw: Any) -> Any:
        if kw.get("index") == "byVersion" and ":hi" in values:
            calls["n"] += 1
            if calls["n"] == 1:  # a 2-row storage page, then the daily job runs
                rows, nxt = original(self, cond, values, **{**kw, "limit": 2})
                assert purge_vault(Table(), vault_id, 90) == 2
                return rows, nxt
        return original(self, cond, values, **kw)

    monkeypatch.setattr(Table, "query", query_with_purge)
    # WHEN a full page is read while the purge removes tombstones inside it
    r = registered.call("GET", "/api/sync/pull?since=1&limit=4")
    # THEN the client is told to resync instead of silently missing a deletion
    assert (r.status, r.body["code"]) == (410, "resync_required")
