"""PROTOCOL v1.2 §3/§7: bounded challenges, sessions and devices; paged device lists.

Each failed on v1.1 (1 500 challenges for one keyDid were all 200; no session or device
limit; one unpaged device list).
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import identity
from tests.helpers import Caller, Device, seed_for


def challenge(caller: Caller, key_did: str) -> Any:
    return caller.call("POST", "/api/auth/challenge", {"keyDid": key_did})


# -- challenges ---------------------------------------------------------------------------
def test_at_most_ten_outstanding_challenges_per_key(device: Device, caller: Caller) -> None:
    nonces = [device.challenge() for _ in range(10)]
    # WHEN an 11th is asked for THEN 429 with the seconds until the oldest expires
    r = challenge(caller, device.key_did)
    assert (r.status, r.body["code"]) == (429, "rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 120
    # AND another key is not affected
    assert challenge(caller, Device(caller, seed_for(2)).key_did).status == 200
    # WHEN one is used THEN a new one can be issued
    r = caller.call("POST", "/api/auth/session", device.session_body(nonces[3]))
    assert r.status == 200
    assert challenge(caller, device.key_did).status == 200
    assert challenge(caller, device.key_did).status == 429


def test_a_failed_attempt_frees_the_slot_too(device: Device, caller: Caller) -> None:
    nonces = [device.challenge() for _ in range(10)]
    bad = device.session_body(nonces[0], signature="A" * 86)
    assert caller.call("POST", "/api/auth/session", bad).status == 401
    assert challenge(caller, device.key_did).status == 200


def test_expired_challenges_stop_counting(device: Device, caller: Caller, clock: Any) -> None:
    for _ in range(10):
        device.challenge()
    clock(120_001)
    assert challenge(caller, device.key_did).status == 200


def test_a_challenge_race_for_the_last_slot_gives_it_once(
    device: Device, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 9 outstanding, and a rival request that takes the 10th between our read and
    # our write
    for _ in range(9):
        device.challenge()
    from chalicelib.store.challenges import Challenges

    original = Challenges.claim
    raced: list[bool] = []

    def claim(self: Challenges, *args: Any) -> bool:
        if not raced:
            raced.append(True)
            assert original(self, *args[:2], "rival-nonce", *args[3:])  # the rival wins
        return original(self, *args)

    monkeypatch.setattr(Challenges, "claim", claim)
    # WHEN our request then tries THEN its conditional write loses and it is refused
    r = challenge(caller, device.key_did)
    assert (r.status, r.body["code"]) == (429, "rate_limited")


# -- sessions -----------------------------------------------------------------------------
def test_an_eleventh_session_ends_the_oldest(registered: Device, caller: Caller) -> None:
    tokens = [registered.token] + [registered.sign_in() for _ in range(10)]
    status = [caller.call("GET", "/api/sync/status", token=t).status for t in tokens]
    assert status == [401] + [200] * 10
    # AND another replica's sessions are not affected
    other = Device(caller, registered.seed, "replica-b")
    other.sign_in()
    assert other.call("GET", "/api/sync/status").status == 200
    assert caller.call("GET", "/api/sync/status", token=tokens[1]).status == 200


def test_a_logout_frees_its_slot(registered: Device, caller: Caller) -> None:
    tokens = [registered.token] + [registered.sign_in() for _ in range(9)]
    assert caller.call("DELETE", "/api/auth/session", token=tokens[4]).status == 204
    registered.sign_in()
    status = [caller.call("GET", "/api/sync/status", token=t).status for t in tokens]
    assert status == [200] * 4 + [401] + [200] * 5  # only the logged-out one is gone


# -- devices ------------------------------------------------------------------------------
def enrol(caller: Caller, owner: Device, n: int) -> Any:
    dev = Device(caller, owner.seed, f"dev-{n:03d}")
    r = caller.call("POST", "/api/auth/challenge", {"keyDid": owner.key_did})
    r = caller.call("POST", "/api/auth/session", dev.session_body(r.body["nonce"]))
    return r


def test_at_most_100_active_devices(registered: Device, caller: Caller) -> None:
    for n in range(99):  # the registering device is the first
        assert enrol(caller, registered, n).status == 200
    r = enrol(caller, registered, 99)
    assert (r.status, r.body["code"]) == (409, "device_limit")
    assert registered.call("GET", "/api/sync/status").body["devices"] == 100
    # WHEN one is revoked THEN another may enrol, and a known device may always sign in
    assert registered.call("POST", "/api/devices/dev-000/revoke").status == 200
    assert enrol(caller, registered, 99).status == 200
    assert enrol(caller, registered, 5).status == 200
    r = enrol(caller, registered, 100)
    assert (r.status, r.body["code"]) == (409, "device_limit")


def test_the_device_list_is_paged_in_enrolment_order(
    registered: Device, caller: Caller, clock: Any
) -> None:
    for n in range(120):
        clock(n * 1000)  # distinct enrolment times, in an order unlike the replicaIds'
        if n >= 99:  # stay within 100 active: revoke the oldest enrolled
            r = registered.call("POST", f"/api/devices/dev-{119 - (n - 99):03d}/revoke")
            assert r.status == 200, r.body
        assert enrol(caller, registered, 119 - n).status == 200
    first = registered.call("GET", "/api/devices").body
    assert len(first["devices"]) == 100 and first["cursor"]
    second = registered.call("GET", f"/api/devices?cursor={first['cursor']}").body
    assert second["cursor"] is None
    listed = first["devices"] + second["devices"]
    assert len(listed) == 121 == len({d["replicaId"] for d in listed})
    assert [d["enrolledAt"] for d in listed] == sorted(d["enrolledAt"] for d in listed)
    assert listed[0]["replicaId"] == registered.replica_id and listed[0]["current"]


def test_a_bad_device_cursor_is_400(registered: Device) -> None:
    for cursor in ("!!", "bm90LWEtY3Vyc29y"):
        r = registered.call("GET", f"/api/devices?cursor={cursor}")
        assert (r.status, r.body["code"]) == (400, "invalid_request"), cursor


def test_a_session_racing_a_rotation_enrols_nothing_into_the_rotated_vault(
    registered: Device, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a new replica signing in with the old key, and the owner's rotation committing
    # between that sign-in's reads and its write
    rotate = registered.rotate_body(seed_for(7))
    newcomer = Device(caller, registered.seed, "newcomer")
    nonce = newcomer.challenge()
    original = identity._enrol

    def enrol_after_rotation(*args: Any, **kwargs: Any) -> None:
        if rotate:
            r = registered.call("POST", "/api/vault/rotate", rotate)
            assert r.status == 200, r.body
            rotate.clear()
        original(*args, **kwargs)

    monkeypatch.setattr(identity, "_enrol", enrol_after_rotation)
    r = caller.call("POST", "/api/auth/session", newcomer.session_body(nonce))
    # THEN the sign-in succeeds for a retired key, which owns no vault
    assert r.status == 200, r.body
    assert caller.call("GET", "/api/sync/status", token=r.body["token"]).body["registered"] is False
    # AND the rotated vault has no such device
    owner = Device(caller, seed_for(7), registered.replica_id)
    owner.sign_in()
    listed = owner.call("GET", "/api/devices").body["devices"]
    assert [d["replicaId"] for d in listed] == [registered.replica_id]
    assert owner.call("GET", "/api/sync/status").body["devices"] == 1
