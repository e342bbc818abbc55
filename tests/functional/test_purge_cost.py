"""The daily purge costs what expires: requests ∝ vaults with tombstones due, not ∝ the table.

The constant: one Query per shard of the purge index (16), then per due vault one Query of
its tombstones, one TransactWriteItems (≤ 99 of them) and one UpdateItem moving its mark.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from chalicelib.clock import DAY_MS, now_ms
from chalicelib.store import keys, tombstones
from chalicelib.store.item_rows import item_row
from chalicelib.store.table import Table, to_item
from chalicelib.sync.retention import purge_all, purge_vault
from chalicelib.vaults import EMPTY_COUNTS
from tests.functional.sync_helpers import batch, live, tomb
from tests.helpers import Device

RETENTION_DAYS = 90


class Requests:
    """Every DynamoDB request the code sends, by operation, with its parameters."""

    def __init__(self, table: Table) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        table.ddb.meta.events.register("provide-client-params.dynamodb", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def counts(self) -> Counter[str]:
        return Counter(name for name, _ in self.calls)


def _vaults(table: Table, n_due: int, n_young: int, n_clean: int) -> None:
    """Write vault partitions directly: `n_due` with 3 expired tombstones and a due mark,
    `n_young` with 2 young tombstones (marked, not due), `n_clean` with live items only."""
    now = now_ms()
    old, young = now - (RETENTION_DAYS + 1) * DAY_MS, now - DAY_MS
    rows: list[dict[str, Any]] = []

    def vault(name: str, tomb_times: list[int]) -> None:
        head: dict[str, Any] = {
            "pk": keys.vault_pk(name),
            "sk": keys.META_SK,
            "keyDid": f"did:key:z{name}",
            **EMPTY_COUNTS,
            "seq": len(tomb_times) + 1,
            "nItems": 1,
            "nTombstones": len(tomb_times),
        }
        if tomb_times:
            head[keys.PURGE_PK] = keys.purge_due_pk(keys.purge_shard(name))
            head[keys.PURGE_SK] = tomb_times[0] + RETENTION_DAYS * DAY_MS
        rows.append(to_item(head))
        rows.append(item_row(name, "live", 1, False, "AAAA", "r", old))
        for i, at in enumerate(tomb_times):
            rows.append(item_row(name, f"t{i}", i + 2, True, None, "r", at))

    for i in range(n_due):
        vault(f"due{i:04d}", [old, old, old])
    for i in range(n_young):
        vault(f"young{i:04d}", [young, young])
    for i in range(n_clean):
        vault(f"clean{i:04d}", [])
    for start in range(0, len(rows), 25):
        requests = [{"PutRequest": {"Item": r}} for r in rows[start : start + 25]]
        table.ddb.batch_write_item(RequestItems={table.name: requests})


@pytest.mark.usefixtures("aws")
def test_purge_of_2000_vaults_reads_only_the_20_that_are_due() -> None:
    # GIVEN 2 000 vaults: 20 with expired tombstones, 480 with young ones, 1 500 with none
    table = Table()
    _vaults(table, n_due=20, n_young=480, n_clean=1500)
    requests = Requests(table)
    # WHEN the daily job runs
    removed = purge_all(table, RETENTION_DAYS)
    # THEN it removed exactly the expired tombstones, with 16 + 3 requests per due vault
    assert removed == 60
    assert requests.counts() == {"Query": 16 + 20, "TransactWriteItems": 20, "UpdateItem": 20}
    assert sum(requests.counts().values()) == 16 + 3 * 20
    # AND it never scanned, and read the index as a GSI must be read (no ConsistentRead)
    for name, params in requests.calls:
        if name == "Query":
            assert params["IndexName"] == keys.PURGE_INDEX and "ConsistentRead" not in params
    # AND the due vaults' horizons rose and their marks are gone; the young ones kept theirs
    due = table.get(keys.meta_key("due0000")) or {}
    assert due["horizon"] == 4 and due["nTombstones"] == 0 and keys.PURGE_PK not in due
    assert keys.PURGE_PK in (table.get(keys.meta_key("young0000")) or {})
    # AND the next day's run costs the 16 shard Queries only
    requests.calls.clear()
    assert purge_all(table, RETENTION_DAYS) == 0
    assert requests.counts() == {"Query": 16}


def _push(dev: Device, items: list[dict[str, Any]]) -> None:
    r = dev.call("POST", "/api/sync/push", batch(items))
    assert r.status == 200, r.body


def _head(dev: Device) -> dict[str, Any]:
    vault_id = (dev.token or "").split("~")[0]
    return Table().get(keys.meta_key(vault_id)) or {}


def test_a_push_that_deletes_marks_the_vault_due_after_the_retention(
    registered: Device, clock: Any
) -> None:
    # GIVEN live items: no mark
    _push(registered, [live("a"), live("b")])
    assert keys.PURGE_PK not in _head(registered)
    # WHEN one is deleted, THEN the head is marked due one retention after that tombstone
    before = now_ms()
    _push(registered, [tomb("a", 1)])
    head = _head(registered)
    due = int(head[keys.PURGE_SK])
    assert before + RETENTION_DAYS * DAY_MS <= due <= now_ms() + RETENTION_DAYS * DAY_MS
    # AND a later deletion keeps the earlier (earliest due) mark
    clock(DAY_MS)
    registered.sign_in()
    _push(registered, [tomb("b", 2)])
    assert int(_head(registered)[keys.PURGE_SK]) == due
    # AND once the first is purged the mark moves to the second's due day, then goes away
    clock(RETENTION_DAYS * DAY_MS + 1000)
    assert purge_all(Table(), RETENTION_DAYS) == 1
    assert int(_head(registered)[keys.PURGE_SK]) > due
    clock((RETENTION_DAYS + 2) * DAY_MS)
    assert purge_all(Table(), RETENTION_DAYS) == 1
    assert keys.PURGE_PK not in _head(registered)


def test_a_tombstone_pushed_while_the_mark_is_removed_keeps_it(
    registered: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a marked vault whose only tombstone was revived (nothing left to purge)
    _push(registered, [live("a"), live("z")])
    _push(registered, [tomb("a", 1)])
    _push(registered, [live("a", base=3, text="back")])
    vault_id = (registered.token or "").split("~")[0]
    original = tombstones.reschedule

    def push_first(table: Table, vault: str, next_due: int | None, fallback_ms: int) -> None:
        _push(registered, [tomb("z", 2)])  # lands after the purge read the index
        original(table, vault, next_due, fallback_ms)

    monkeypatch.setattr(tombstones, "reschedule", push_first)
    # WHEN the purge finds nothing and removes the mark as that tombstone is pushed
    assert purge_vault(Table(), vault_id, RETENTION_DAYS) == 0
    # THEN the mark stays (the head counts a tombstone), so that tombstone will be purged
    head = _head(registered)
    assert head["nTombstones"] == 1 and keys.PURGE_PK in head
