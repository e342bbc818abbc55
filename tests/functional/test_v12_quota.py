"""v1.2 §6: an upload reserves its size until commit, delete or its URL's end; ≤ 100 live.

The quota counts committed bytes plus live reservations, so uploads granted together can
never store more than the quota.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.functional.test_attachments import counts, put_blob, upload
from tests.helpers import Device

QUOTA = 10_000
PAST_URL_END_MS = 901_000  # the URL lives 900 s


@pytest.fixture
def quota(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("ATTACHMENT_QUOTA_BYTES", str(QUOTA))
    return QUOTA


def code(r: Any) -> tuple[int, str | None]:
    return r.status, (r.body or {}).get("code") if r.status >= 400 else None


def meta(dev: Device) -> dict[str, Any]:
    from chalicelib.identity import authenticate
    from chalicelib.store import keys
    from chalicelib.store.table import Table

    vault_id = authenticate(Table(), dev.token or "").vault_id
    assert vault_id
    row = Table().get(keys.meta_key(vault_id))
    assert row
    return row


def test_pending_uploads_count_against_the_quota(registered: Device, quota: int) -> None:
    # GIVEN a 10 000 B quota and nothing stored
    # WHEN 40 uploads of 5 000 B are requested, none committed
    results = [code(upload(registered, f"att-{n}", bytes([n]) * 5000)) for n in range(40)]
    # THEN the first two are granted and every other one is refused as over the quota
    assert results[:2] == [(200, None)] * 2
    assert results[2:] == [(413, "quota_exceeded")] * 38
    # AND nothing is committed: the reservations are all that is counted
    assert counts(registered)["attachmentBytes"] == 0
    assert (meta(registered)["claimedBytes"], meta(registered)["nReservations"]) == (10_000, 2)


def test_commit_turns_a_reservation_into_usage_once(registered: Device, quota: int) -> None:
    # GIVEN a 6 000 B upload, PUT and committed
    data = b"a" * 6000
    put_blob(upload(registered, "a", data).body, data)
    c = registered.call("POST", "/api/attachments/a/commit")
    assert c.status == 200, c.body
    # THEN its bytes are usage now, counted once (not also as a reservation)
    assert counts(registered)["attachmentBytes"] == 6000
    assert (meta(registered)["claimedBytes"], meta(registered)["nReservations"]) == (6000, 0)
    assert registered.call("POST", "/api/attachments/a/commit").status == 200
    assert meta(registered)["claimedBytes"] == 6000
    # WHEN a 4 000 B upload fills the rest
    assert code(upload(registered, "b", b"b" * 4000)) == (200, None)
    # THEN 1 more byte is over the quota: committed plus reserved is 10 000
    assert code(upload(registered, "c", b"c")) == (413, "quota_exceeded")
    # AND a new upload for the same id replaces its reservation (it is not another one)
    assert code(upload(registered, "b", b"B" * 4000)) == (200, None)
    assert code(upload(registered, "b", b"B" * 3000)) == (200, None)
    assert meta(registered)["nReservations"] == 1
    assert code(upload(registered, "c", b"c" * 1000)) == (200, None)
    assert code(upload(registered, "d", b"d")) == (413, "quota_exceeded")


def test_delete_and_expiry_end_a_reservation(registered: Device, quota: int, clock: Any) -> None:
    # GIVEN the whole quota reserved by one pending upload
    assert code(upload(registered, "a", b"a" * QUOTA)) == (200, None)
    assert code(upload(registered, "b", b"b")) == (413, "quota_exceeded")
    # WHEN it is deleted
    assert registered.call("DELETE", "/api/attachments/a").status == 204
    # THEN its reservation ends
    assert code(upload(registered, "b", b"b")) == (200, None)
    data = b"c" * (QUOTA - 1)
    grant = upload(registered, "c", data)
    assert grant.status == 200
    put_blob(grant.body, data)  # PUT in time, not committed yet
    assert code(upload(registered, "d", b"d")) == (413, "quota_exceeded")
    # WHEN the URLs have expired (no background job ran)
    clock(PAST_URL_END_MS)
    # THEN the reservations stop counting: a new upload gets the space
    assert code(upload(registered, "d", b"d")) == (200, None)
    assert meta(registered)["nReservations"] == 1
    # AND an ended reservation's object can still be committed if the quota has room for it
    c = registered.call("POST", "/api/attachments/c/commit")
    assert c.status == 200, c.body
    assert counts(registered)["attachmentBytes"] == QUOTA - 1
    assert code(upload(registered, "e", b"ee")) == (413, "quota_exceeded")


def test_an_ended_reservation_commits_only_within_the_quota(
    registered: Device, quota: int, clock: Any
) -> None:
    # GIVEN an upload PUT in time whose URL then expired, and its space granted to another
    data = b"a" * 6000
    put_blob(upload(registered, "a", data).body, data)
    clock(PAST_URL_END_MS)
    assert code(upload(registered, "b", b"b" * 6000)) == (200, None)
    # WHEN the first one is committed late
    r = registered.call("POST", "/api/attachments/a/commit")
    # THEN it does not fit next to the live reservation
    assert code(r) == (413, "quota_exceeded")
    assert counts(registered)["attachmentBytes"] == 0


def test_the_101st_live_reservation_is_rate_limited(registered: Device, clock: Any) -> None:
    # GIVEN 100 pending uploads (well within the quota)
    for n in range(100):
        assert code(upload(registered, f"p-{n}", b"x")) == (200, None), n
    # WHEN a 101st id is uploaded
    r = upload(registered, "p-100", b"x")
    # THEN it is 429 with the seconds until the oldest reservation ends
    assert code(r) == (429, "rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 900
    # AND a new upload for one of the 100 ids is not another reservation
    assert code(upload(registered, "p-7", b"y")) == (200, None)
    # AND deleting one pending upload makes room for exactly one
    assert registered.call("DELETE", "/api/attachments/p-0").status == 204
    assert code(upload(registered, "p-100", b"x")) == (200, None)
    assert code(upload(registered, "p-101", b"x")) == (429, "rate_limited")
    # AND once the URLs have expired, none of them counts
    clock(PAST_URL_END_MS)
    registered.sign_in()
    assert code(upload(registered, "p-101", b"x")) == (200, None)
    assert meta(registered)["nReservations"] == 1


def test_two_concurrent_uploads_cannot_pass_the_quota_together(
    registered: Device, quota: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import attachments
    from chalicelib.errors import ApiError
    from chalicelib.identity import authenticate
    from chalicelib.settings import get_settings
    from chalicelib.shared.models.attachments import UploadRequest
    from chalicelib.store import keys
    from chalicelib.store.blobs import Blobs
    from chalicelib.store.table import Table
    from tests.functional.test_attachments import sha

    # GIVEN two uploads of 6 000 B against 10 000 B, each of which fits alone
    vault_id = authenticate(Table(), registered.token or "").vault_id
    assert vault_id
    barrier = threading.Barrier(2, timeout=10)
    sent: list[list[dict[str, Any]]] = []
    real_transact = Table.transact

    def transact(self: Table, actions: list[dict[str, Any]]) -> None:
        # Both have read the attachment and reservation rows before either writes.
        sent.append(actions)
        if len(sent) <= 2:
            barrier.wait()
        real_transact(self, actions)

    monkeypatch.setattr(Table, "transact", transact)
    results: dict[str, Any] = {}

    def run(att_id: str) -> None:
        req = UploadRequest(size=6000, sha256=sha(att_id.encode()))
        try:
            caller = authenticate(Table(), registered.token or "")
            attachments.request_upload(Table(), Blobs(), get_settings(), caller, att_id, req)
            results[att_id] = "granted"
        except ApiError as err:
            results[att_id] = str(err.code)

    # WHEN they run concurrently
    threads = [threading.Thread(target=run, args=(i,)) for i in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    # THEN the write's condition decides: one is granted, the other is over the quota
    assert sorted(results.values()) == ["granted", "quota_exceeded"], results
    assert (meta(registered)["claimedBytes"], meta(registered)["nReservations"]) == (6000, 1)
    # AND what was sent carries the quota and the reservation limit on the vault's counters
    head = keys.meta_key(vault_id)
    for actions in sent[:2]:
        usage = next(a["Update"] for a in actions if a.get("Update", {}).get("Key") == head)
        assert (
            "ADD" in usage["UpdateExpression"]
            and "claimedBytes :claimedBytes" in (usage["UpdateExpression"])
        )
        assert "claimedBytes <= :limit" in usage["ConditionExpression"]
        assert "nReservations < :maxres" in usage["ConditionExpression"]
        assert usage["ExpressionAttributeValues"][":limit"] == {"N": str(QUOTA - 6000)}


def test_a_vault_from_before_reservations_counts_its_committed_bytes(
    registered: Device, quota: int
) -> None:
    from chalicelib.identity import authenticate
    from chalicelib.store import keys
    from chalicelib.store.table import Table

    # GIVEN 6 000 B committed and a head row without the reservation counters (as written
    # before v1.2)
    data = b"a" * 6000
    put_blob(upload(registered, "a", data).body, data)
    assert registered.call("POST", "/api/attachments/a/commit").status == 200
    vault_id = authenticate(Table(), registered.token or "").vault_id
    assert vault_id
    Table().update(keys.meta_key(vault_id), "REMOVE claimedBytes, nReservations")
    # WHEN uploads are requested
    assert code(upload(registered, "b", b"b" * 4001)) == (413, "quota_exceeded")
    assert code(upload(registered, "b", b"b" * 4000)) == (200, None)
    # THEN the committed bytes count next to the new reservation
    assert code(upload(registered, "c", b"c")) == (413, "quota_exceeded")
    assert meta(registered)["claimedBytes"] == 10_000
