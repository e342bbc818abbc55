"""PROTOCOL v1.2 §5: sealed tombstones, and replays that keep no ciphertext copies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.shared.encoding import b64url_encode
from chalicelib.store.table import Table
from tests.helpers import Device


def ct(text: str) -> str:
    return b64url_encode(text.encode())


def live(item_id: str, base: int = 0, text: str = "x") -> dict[str, Any]:
    return {"id": item_id, "baseVersion": base, "deleted": False, "ciphertext": ct(text)}


def push(dev: Device, items: list[dict[str, Any]], batch_id: str) -> Any:
    r = dev.call("POST", "/api/sync/push", {"batchId": batch_id, "items": items})
    assert r.status == 200, r.body
    return r.body


def pulled(dev: Device) -> dict[str, Any]:
    r = dev.call("GET", "/api/sync/pull?since=0&limit=1000")
    return {i["id"]: i for i in r.body["items"]}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[list[dict[str, Any]]]:
    """Every TransactWriteItems the app sends, as sent (moto cannot count bytes for us)."""
    calls: list[list[dict[str, Any]]] = []
    original = Table.transact

    def spy(self: Table, actions: list[dict[str, Any]]) -> None:
        calls.append(actions)
        original(self, actions)

    monkeypatch.setattr(Table, "transact", spy)
    return calls


# -- sealed tombstones --------------------------------------------------------------------
def test_a_tombstone_keeps_its_sealed_ciphertext(registered: Device) -> None:
    push(registered, [live("a"), live("b")], "b1")
    sealed = {"id": "a", "baseVersion": 1, "deleted": True, "ciphertext": ct("sealed")}
    bare = {"id": "b", "baseVersion": 2, "deleted": True}
    results = push(registered, [sealed, bare], "b2")["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted"]
    items = pulled(registered)
    assert (items["a"]["deleted"], items["a"]["ciphertext"]) == (True, ct("sealed"))
    assert (items["b"]["deleted"], items["b"]["ciphertext"]) == (True, None)
    counts = registered.call("GET", "/api/sync/status").body["counts"]
    assert (counts["items"], counts["tombstones"]) == (0, 2)
    # AND a conflict against the tombstone shows the sealed record too
    conflict = push(registered, [live("a", base=1, text="late")], "b3")["results"][0]
    assert conflict["current"]["ciphertext"] == ct("sealed")
    # AND a write on the tombstone's version revives it
    revived = push(registered, [live("a", base=3, text="back")], "b4")["results"][0]
    assert revived["status"] == "accepted"
    assert pulled(registered)["a"]["ciphertext"] == ct("back")


def test_a_sealed_tombstone_for_a_never_seen_item(registered: Device) -> None:
    gone = {"id": "never", "deleted": True, "ciphertext": ct("sealed")}
    assert push(registered, [gone], "b1")["results"][0]["status"] == "accepted"
    assert pulled(registered)["never"]["ciphertext"] == ct("sealed")


def test_a_sealed_tombstone_has_the_live_items_size_limit(registered: Device) -> None:
    big = b64url_encode(b"\0" * (256 * 1024 + 1))
    item = {"id": "a", "deleted": True, "ciphertext": big}
    r = registered.call("POST", "/api/sync/push", {"batchId": "b1", "items": [item]})
    assert (r.status, r.body["code"]) == (413, "payload_too_large")


# -- no write amplification ---------------------------------------------------------------
def test_stale_pushes_store_no_copies_of_other_items(
    registered: Device, sent: list[list[dict[str, Any]]]
) -> None:
    # GIVEN 20 items of 100 KiB each
    big = "y" * 100_000
    for start in range(0, 20, 4):
        push(registered, [live(f"i{n}", text=big) for n in range(start, start + 4)], f"f{start}")
    sent.clear()
    # WHEN a replica pushes 20 stale tombstones, three times with new batchIds
    stale = [{"id": f"i{n}", "baseVersion": 0, "deleted": True} for n in range(20)]
    for n in range(3):
        results = push(registered, stale, f"stale-{n}")["results"]
        assert all(r["status"] == "conflict" for r in results)
        assert results[0]["current"]["ciphertext"] == ct(big)
    # THEN no transaction carried a byte of ciphertext (each push: a blind attempt that the
    # items' conditions cancel, then head + device + chunk record + session check)
    assert not any("ct" in a["Put"]["Item"] for actions in sent for a in actions if "Put" in a)
    assert [len(actions) for actions in sent] == [24, 4] * 3
    assert len(json.dumps(sent)) < 60_000  # v1.1 wrote 3 × 20 × 100 KB of snapshots


def test_a_replayed_conflict_answers_the_current_state(registered: Device) -> None:
    push(registered, [live("x", text="first")], "b0")
    body = [live("x", text="late"), live("new-later", base=1, text="stale")]
    first = push(registered, body, "b1")["results"]
    assert first[0]["current"]["ciphertext"] == ct("first") and first[1]["current"] is None
    # WHEN both items change and the batch is replayed
    push(registered, [{"id": "x", "baseVersion": 1, "deleted": True}], "b2")
    push(registered, [live("new-later", text="now")], "b3")
    again = push(registered, body, "b1")["results"]
    # THEN the conflicts show the items as they are now
    assert [r["status"] for r in again] == ["conflict", "conflict"]
    assert again[0]["current"]["deleted"] is True and again[0]["current"]["version"] == 2
    assert again[1]["current"]["ciphertext"] == ct("now")


def test_a_replay_of_more_than_one_chunk_of_conflicts(registered: Device) -> None:
    # 150 conflicts span two chunks and two BatchGetItem reads on replay
    push(registered, [live(f"i{n}") for n in range(150)], "seed")
    stale = [live(f"i{n}", text="stale") for n in range(150)]
    first = push(registered, stale, "stale")
    again = push(registered, stale, "stale")
    assert again == first
    assert all(r["current"]["ciphertext"] == ct("x") for r in again["results"])
