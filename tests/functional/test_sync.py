"""§5 push / pull / status through chalice.test.Client over moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.shared.encoding import b64url_encode
from chalicelib.store import table as table_module
from tests.functional.sync_helpers import batch, ct, live, tomb
from tests.helpers import Device, seed_for


def push(dev: Device, items: list[dict[str, Any]], batch_id: str | None = None) -> Any:
    return dev.call("POST", "/api/sync/push", batch(items, batch_id))


def pull(dev: Device, since: int = 0, limit: int | None = None) -> Any:
    q = f"?since={since}" + (f"&limit={limit}" if limit else "")
    return dev.call("GET", "/api/sync/pull" + q)


def pull_all(dev: Device, since: int = 0, limit: int = 200) -> tuple[dict[str, Any], int]:
    state: dict[str, Any] = {}
    while True:
        r = pull(dev, since, limit)
        assert r.status == 200, r.body
        versions = [i["version"] for i in r.body["items"]]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
        for item in r.body["items"]:
            state[item["id"]] = item
        since = r.body["watermark"]
        if not r.body["hasMore"]:
            return state, since


def test_push_accepts_in_request_order_and_pull_returns_them(registered: Device) -> None:
    r = push(registered, [live("b"), live("a"), live("c")])
    assert r.status == 200
    assert r.body == {
        "watermark": 3,
        "results": [
            {"id": "b", "status": "accepted", "version": 1},
            {"id": "a", "status": "accepted", "version": 2},
            {"id": "c", "status": "accepted", "version": 3},
        ],
    }
    p = pull(registered).body
    assert [(i["id"], i["version"]) for i in p["items"]] == [("b", 1), ("a", 2), ("c", 3)]
    assert p["watermark"] == 3 and p["hasMore"] is False
    item = p["items"][0]
    assert item["ciphertext"] == ct("x") and item["deleted"] is False
    assert item["replicaId"] == "replica-a" and item["updatedAt"] > 0


def test_conflict_is_per_item_and_reports_current(registered: Device) -> None:
    push(registered, [live("a", text="v1")])
    r = push(registered, [live("a", base=0, text="mine"), live("b"), live("ghost", base=7)])
    res = r.body["results"]
    assert res[0]["status"] == "conflict"
    assert res[0]["current"]["version"] == 1 and res[0]["current"]["ciphertext"] == ct("v1")
    assert res[1] == {"id": "b", "status": "accepted", "version": 2}
    assert res[2] == {"id": "ghost", "status": "conflict", "current": None}
    assert r.body["watermark"] == 2
    # exactly one winner per contested baseVersion
    w1 = push(registered, [live("a", base=1, text="w1")]).body["results"][0]
    w2 = push(registered, [live("a", base=1, text="w2")]).body["results"][0]
    assert w1["status"] == "accepted" and w2["status"] == "conflict"
    assert w2["current"]["ciphertext"] == ct("w1")


def test_tombstones_and_revival(registered: Device) -> None:
    push(registered, [live("a")])
    r = push(registered, [tomb("a", 1), tomb("never", 0)])
    assert [x["status"] for x in r.body["results"]] == ["accepted", "accepted"]
    items = {i["id"]: i for i in pull(registered).body["items"]}
    assert items["a"]["deleted"] is True and items["a"]["ciphertext"] is None
    assert items["never"]["deleted"] is True
    st = registered.call("GET", "/api/sync/status").body["counts"]
    assert (st["items"], st["tombstones"]) == (0, 2)
    revived = push(registered, [live("a", base=2, text="back")]).body["results"][0]
    assert revived["status"] == "accepted"
    st = registered.call("GET", "/api/sync/status").body["counts"]
    assert (st["items"], st["tombstones"]) == (1, 1)


@pytest.mark.parametrize(
    ("items", "code", "status"),
    [
        ([], "invalid_request", 400),
        (
            [{"id": "a", "baseVersion": 0, "deleted": True, "ciphertext": "a+b="}],
            "invalid_encoding",
            400,
        ),
        ([{"id": "a", "baseVersion": 0, "deleted": False}], "invalid_request", 400),
        (
            [{"id": "a", "baseVersion": -1, "deleted": False, "ciphertext": ct("x")}],
            "invalid_request",
            400,
        ),
        (
            [{"id": "a", "baseVersion": 0, "deleted": "no", "ciphertext": ct("x")}],
            "invalid_request",
            400,
        ),
        (
            [{"id": "a b", "baseVersion": 0, "deleted": False, "ciphertext": ct("x")}],
            "invalid_request",
            400,
        ),
        (
            [{"id": "a", "baseVersion": 0, "deleted": False, "ciphertext": "a+b="}],
            "invalid_encoding",
            400,
        ),
        ([live("a"), live("a")], "duplicate_item", 400),
        ([live(f"i{n}") for n in range(501)], "invalid_request", 400),
        (
            [
                {
                    "id": "a",
                    "baseVersion": 0,
                    "deleted": False,
                    "ciphertext": b64url_encode(b"\0" * (256 * 1024 + 1)),
                }
            ],
            "payload_too_large",
            413,
        ),
    ],
)
def test_push_validation(registered: Device, items: list[Any], code: str, status: int) -> None:
    r = push(registered, items)
    assert (r.status, r.body["code"]) == (status, code)
    assert pull(registered).body["watermark"] == 0  # nothing written


def test_push_bad_batch_id(registered: Device) -> None:
    r = registered.call("POST", "/api/sync/push", {"batchId": "bad id", "items": [live("a")]})
    assert (r.status, r.body["code"]) == (400, "invalid_request")


def test_replay_returns_same_results_and_writes_nothing(registered: Device) -> None:
    # v1.2 §5: the same accepted versions and watermark; a conflict's `current` is the
    # item as it is at the time of the retry (no snapshot of it was kept).
    push(registered, [live("x", text="first")])
    body = batch([live("x", base=0, text="late"), live("y")], "batch-1")
    first = registered.call("POST", "/api/sync/push", body)
    push(registered, [live("x", base=1, text="moved on")])  # x changes after the batch
    # same items, other key order and whitespace
    raw = json.dumps(
        {"items": [dict(reversed(list(i.items()))) for i in body["items"]], "batchId": "batch-1"},
        indent=3,
    )
    again = registered.call("POST", "/api/sync/push", raw=raw)
    assert again.status == 200 and again.body["watermark"] == first.body["watermark"]
    assert (
        again.body["results"][1]
        == first.body["results"][1]
        == {
            "id": "y",
            "status": "accepted",
            "version": 2,
        }
    )
    assert first.body["results"][0]["current"]["ciphertext"] == ct("first")
    current = again.body["results"][0]["current"]
    assert again.body["results"][0]["status"] == "conflict"
    assert (current["version"], current["ciphertext"]) == (3, ct("moved on"))
    assert registered.call("GET", "/api/sync/status").body["watermark"] == 3
    mismatch = registered.call("POST", "/api/sync/push", batch([live("z")], "batch-1"))
    assert (mismatch.status, mismatch.body["code"]) == (409, "batch_mismatch")


def test_batch_ids_are_scoped_per_replica(registered: Device, caller: Any) -> None:
    other = Device(caller, registered.seed, "replica-b")
    other.sign_in()
    a = push(registered, [live("p")], "same")
    b = push(other, [live("q")], "same")
    assert a.body["results"][0]["status"] == "accepted"
    assert b.body["results"][0] == {"id": "q", "status": "accepted", "version": 2}


def test_large_batch_is_chunked_and_resumes_after_a_crash(registered: Device) -> None:
    items = [live(f"item-{n:03d}", text=f"t{n}") for n in range(250)]
    calls = {"n": 0}

    class Crash(Exception):
        pass

    def crash_on_second_chunk(operation: str) -> None:
        if operation == "TransactWriteItems":
            calls["n"] += 1
            if calls["n"] == 2:
                raise Crash("lambda died between chunks")

    table_module.fault_hook = crash_on_second_chunk
    try:
        crashed = push(registered, items, "big")
    finally:
        table_module.fault_hook = None
    assert crashed.status == 500 and crashed.body["code"] == "internal_error"
    # the first chunk committed on its own
    assert 0 < registered.call("GET", "/api/sync/status").body["watermark"] < 250
    retried = push(registered, items, "big")
    assert retried.status == 200
    versions = [r["version"] for r in retried.body["results"]]
    assert versions == list(range(1, 251))
    assert retried.body["watermark"] == 250
    state, watermark = pull_all(registered, limit=1000)
    assert len(state) == 250 and watermark == 250
    assert registered.call("GET", "/api/sync/status").body["counts"]["items"] == 250
    assert push(registered, items, "big").body == retried.body


def _throttle(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, "TransactWriteItems")


def test_throttling_is_retried_without_duplicates(registered: Device) -> None:
    calls = {"n": 0}

    def flaky(operation: str) -> None:
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise _throttle("ProvisionedThroughputExceededException")

    table_module.fault_hook = flaky
    try:
        r = push(registered, [live(f"i{n}") for n in range(120)], "flaky")
        p = pull(registered, limit=1000)
    finally:
        table_module.fault_hook = None
    assert r.status == 200 and r.body["watermark"] == 120
    assert p.status == 200 and len(p.body["items"]) == 120


def test_storage_unavailable_is_503_with_retry_after_and_retry_is_safe(registered: Device) -> None:
    def always(operation: str) -> None:
        if operation == "TransactWriteItems":
            raise _throttle("ThrottlingException")

    table_module.fault_hook = always
    try:
        r = push(registered, [live("a")], "b503")
    finally:
        table_module.fault_hook = None
    assert (r.status, r.body["code"]) == (503, "unavailable")
    assert int(r.headers["Retry-After"]) >= 1
    ok = push(registered, [live("a")], "b503")
    assert ok.body["results"] == [{"id": "a", "status": "accepted", "version": 1}]


def test_pull_pages_limit_and_watermark(registered: Device) -> None:
    push(registered, [live(f"i{n}") for n in range(5)])
    p1 = pull(registered, 0, 2).body
    assert [i["version"] for i in p1["items"]] == [1, 2]
    assert p1["hasMore"] is True and p1["watermark"] == 2
    # an item updated between two pages still arrives (at its new version)
    push(registered, [live("i0", base=1, text="new")])
    p2 = pull(registered, 2, 2).body
    assert [i["version"] for i in p2["items"]] == [3, 4]
    p3 = pull(registered, 4, 2).body
    assert [(i["id"], i["version"]) for i in p3["items"]] == [("i4", 5), ("i0", 6)]
    assert p3["hasMore"] is False and p3["watermark"] == 6
    empty = pull(registered, 6).body
    assert empty == {"items": [], "watermark": 6, "hasMore": False}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "since=-1",
        "since=1.5",
        "since=9223372036854775808",
        "since=1&since=2",
        "limit=+5",
    ],
)
def test_pull_validation(registered: Device, query: str) -> None:
    r = registered.call("GET", f"/api/sync/pull?{query}")
    assert (r.status, r.body["code"]) == (400, "invalid_request")


def test_pull_ahead_of_head_is_410(registered: Device) -> None:
    push(registered, [live("a")])
    r = pull(registered, 2)
    assert (r.status, r.body["code"]) == (410, "resync_required")


def test_pull_page_stops_before_4_mib(registered: Device) -> None:
    big = b64url_encode(b"\1" * (256 * 1024))
    for chunk in range(2):
        items = [
            {"id": f"big{chunk}-{n}", "baseVersion": 0, "deleted": False, "ciphertext": big}
            for n in range(10)
        ]
        assert push(registered, items).status == 200
    first = pull(registered, 0, 1000).body
    assert len(first["items"]) == 11  # 11 × 349 526 chars ≤ 4 MiB < 12 × 349 526
    assert first["hasMore"] is True and first["watermark"] == 11
    second = pull(registered, 11, 1000).body
    assert len(second["items"]) == 9 and second["hasMore"] is False


def test_before_registration_push_pull_404_status_unregistered(device: Device) -> None:
    device.sign_in()
    assert push(device, [live("a")]).body["code"] == "vault_not_found"
    assert pull(device).body["code"] == "vault_not_found"
    st = device.call("GET", "/api/sync/status")
    assert st.status == 200 and st.body["registered"] is False
    assert st.body["watermark"] == 0 and st.body["lastPushAt"] is None


def test_status_counts_and_replica_times(registered: Device) -> None:
    st = registered.call("GET", "/api/sync/status").body
    assert st["registered"] is True and st["devices"] == 1
    assert st["lastPushAt"] is None and st["lastPullAt"] is None
    assert st["premium"] == {"required": False, "active": True, "source": "dev", "expiresAt": None}
    push(registered, [live("a"), live("b"), live("c")])
    push(registered, [tomb("b", 2)])
    pull(registered)
    st = registered.call("GET", "/api/sync/status").body
    assert st["counts"] == {"items": 2, "tombstones": 1, "attachments": 0, "attachmentBytes": 0}
    assert st["watermark"] == 4 and st["lastPushAt"] and st["lastPullAt"]


def test_premium_gate_on_push_not_on_pull(registered: Device, monkeypatch: Any) -> None:
    push(registered, [live("a")])
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    r = push(registered, [live("b")])
    assert (r.status, r.body["code"]) == (402, "premium_required")
    assert pull(registered).status == 200
    st = registered.call("GET", "/api/sync/status").body
    assert st["premium"]["required"] is True and st["premium"]["active"] is False


def test_another_vault_sees_nothing(registered: Device, caller: Any) -> None:
    push(registered, [live("secret")])
    other = Device(caller, seed_for(2), "replica-z")
    other.sign_in()
    assert other.register().status == 201
    assert pull(other).body["items"] == []


def test_item_moved_past_the_head_during_a_pull_still_arrives(
    registered: Device, caller: Any
) -> None:
    # GIVEN three items and a second replica of the same vault
    from chalicelib.identity import authenticate
    from chalicelib.settings import get_settings
    from chalicelib.shared.models.sync import PushRequest
    from chalicelib.store.table import Table
    from chalicelib.sync import push as push_rules

    push(registered, [live("a", text="a1"), live("b"), live("c")])
    other = Device(caller, registered.seed, "replica-b")
    other.sign_in()
    fired = {"done": False}

    def concurrent_edit(operation: str) -> None:
        if operation == "Query" and not fired["done"]:
            fired["done"] = True  # another replica commits while this pull reads
            table = Table()
            req = PushRequest.model_validate(batch([live("a", base=1, text="a2")]))
            push_rules.push(table, get_settings(), authenticate(table, other.token or ""), req)

    # WHEN a pull from 0 reads while "a" moves from version 1 to version 4
    table_module.fault_hook = concurrent_edit
    try:
        page = pull(registered, 0).body
    finally:
        table_module.fault_hook = None
    # THEN the page ends at the new head and holds "a" at its new version
    assert fired["done"]
    assert page["hasMore"] is False and page["watermark"] == 4
    assert [(i["id"], i["version"]) for i in page["items"]] == [("b", 2), ("c", 3), ("a", 4)]
    assert page["items"][2]["ciphertext"] == ct("a2")
