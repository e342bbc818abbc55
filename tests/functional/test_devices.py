"""§7 enrolled devices through chalice.test.Client over moto: list, rename, revoke."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.shared.encoding import b64url_encode
from tests.helpers import Caller, Device, seed_for


def _push(dev: Device, item_id: str, batch: str) -> Any:
    body = {
        "batchId": batch,
        "items": [
            {"id": item_id, "baseVersion": 0, "deleted": False, "ciphertext": b64url_encode(b"x")}
        ],
    }
    return dev.call("POST", "/api/sync/push", body)


@pytest.fixture
def second(registered: Device) -> Device:
    """Another replica of the same vault (same key), signed in without a name."""
    other = Device(registered.caller, registered.seed, "replica-b")
    other.sign_in()
    return other


def _by_id(dev: Device) -> dict[str, dict[str, Any]]:
    r = dev.call("GET", "/api/devices")
    assert r.status == 200, r.body
    return {d["replicaId"]: d for d in r.body["devices"]}


# -- list ------------------------------------------------------------------------------------


def test_list_shows_every_enrolled_device_and_marks_the_caller(
    registered: Device, second: Device
) -> None:
    # GIVEN two replicas, one enrolled with a name and one without
    # WHEN each lists the devices
    seen_by_a = _by_id(registered)
    seen_by_b = _by_id(second)
    # THEN both see both, `current` marks the caller, a nameless enrolment is null
    assert set(seen_by_a) == {"replica-a", "replica-b"}
    a, b = seen_by_a["replica-a"], seen_by_a["replica-b"]
    assert a["name"] == "Laptop" and a["current"] is True
    assert b["name"] is None and b["current"] is False
    assert seen_by_b["replica-b"]["current"] is True and seen_by_b["replica-a"]["current"] is False
    for d in (a, b):
        assert set(d) == {"replicaId", "name", "enrolledAt", "lastSeenAt", "revokedAt", "current"}
        assert d["revokedAt"] is None
        assert isinstance(d["enrolledAt"], int) and d["lastSeenAt"] >= d["enrolledAt"]


def test_list_is_scoped_to_the_vault(registered: Device, caller: Caller) -> None:
    # GIVEN another vault with its own device
    stranger = Device(caller, seed_for(9), "replica-x")
    stranger.sign_in("Stranger")
    # THEN neither sees the other's devices
    assert set(_by_id(registered)) == {"replica-a"}
    assert set(_by_id(stranger)) == {"replica-x"}


def test_list_works_before_registration(device: Device) -> None:
    device.sign_in("Phone")
    assert _by_id(device)["replica-a"]["name"] == "Phone"


def test_devices_need_a_session(caller: Caller) -> None:
    r = caller.call("GET", "/api/devices")
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    proof = {"nonce": "A" * 43, "signature": "A" * 86}
    r = caller.call("POST", "/api/devices/replica-a/revoke", {"proof": proof}, token="A" * 43)
    assert (r.status, r.body["code"]) == (401, "unauthorized")


def test_last_seen_is_refreshed_at_most_once_a_minute(
    registered: Device, second: Device, clock: Any
) -> None:
    # GIVEN B's lastSeenAt as enrolled
    first = _by_id(registered)["replica-b"]["lastSeenAt"]
    # WHEN B makes a request 30 s later
    clock(30_000)
    assert second.call("GET", "/api/sync/status").status == 200
    # THEN it is not written yet
    assert _by_id(registered)["replica-b"]["lastSeenAt"] == first
    # WHEN B makes a request more than a minute after enrolment
    clock(61_000)
    assert second.call("GET", "/api/sync/status").status == 200
    # THEN lastSeenAt moved forward
    assert _by_id(registered)["replica-b"]["lastSeenAt"] >= first + 61_000


# -- rename ----------------------------------------------------------------------------------


def test_rename_stores_and_returns_the_name_as_given(registered: Device, second: Device) -> None:
    # One vault for every case: the aws fixture is the expensive part of a test.
    for name in ("W", "<b>Work</b> & \"laptop\" 'x'", "Ünïcødé téléphone ☃", "x" * 64, " padded "):
        r = registered.call("PATCH", "/api/devices/replica-b", {"name": name})
        assert r.status == 200, (name, r.body)
        assert r.body["name"] == name and r.body["replicaId"] == "replica-b"
        assert r.body["current"] is False
        assert _by_id(second)["replica-b"]["name"] == name


def test_rename_own_device(registered: Device) -> None:
    r = registered.call("PATCH", "/api/devices/replica-a", {"name": "Desk"})
    assert (r.status, r.body["name"], r.body["current"]) == (200, "Desk", True)


BAD_NAMES: list[dict[str, Any]] = [
    {"name": ""},
    {"name": "x" * 65},
    {"name": "line\nbreak"},
    {"name": "tab\there"},
    {"name": "nul\x00"},
    {"name": None},
    {"name": 5},
    {},
    {"name": "ok", "extra": 1},
]


def test_rename_rejects_bad_names(registered: Device) -> None:
    for body in BAD_NAMES:
        r = registered.call("PATCH", "/api/devices/replica-a", body)
        assert (r.status, r.body["code"]) == (400, "invalid_request"), body
    assert _by_id(registered)["replica-a"]["name"] == "Laptop"


def test_rename_validates_before_authenticating(caller: Caller) -> None:
    r = caller.call("PATCH", "/api/devices/replica-a", {"name": ""})
    assert (r.status, r.body["code"]) == (400, "invalid_request")


def test_rename_unknown_or_foreign_device_is_404(registered: Device, caller: Caller) -> None:
    stranger = Device(caller, seed_for(9), "replica-x")
    stranger.sign_in("Stranger")
    for replica in ("nobody", "replica-x"):
        r = registered.call("PATCH", f"/api/devices/{replica}", {"name": "Mine"})
        assert (r.status, r.body["code"]) == (404, "device_not_found")
    assert _by_id(stranger)["replica-x"]["name"] == "Stranger"
    assert set(_by_id(registered)) == {"replica-a"}  # no row was created by the update


def test_malformed_replica_id_in_path_is_400(registered: Device) -> None:
    r = registered.call("POST", "/api/devices/bad!id/revoke")
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    r = registered.call("PATCH", "/api/devices/" + "r" * 65, {"name": "x"})
    assert (r.status, r.body["code"]) == (400, "invalid_request")


# -- revoke ----------------------------------------------------------------------------------


def test_revoke_cuts_the_device_off_at_once(registered: Device, second: Device) -> None:
    # GIVEN B has two sessions and has pushed
    assert _push(second, "item-1", "b1").status == 200
    other_tab = Device(second.caller, second.seed, "replica-b")
    other_tab.sign_in()
    # WHEN A revokes B
    r = registered.call("POST", "/api/devices/replica-b/revoke")
    # THEN the answer is B's row with revokedAt
    assert r.status == 200, r.body
    assert r.body["replicaId"] == "replica-b" and isinstance(r.body["revokedAt"], int)
    assert r.body["current"] is False
    # AND every session of B fails on its very next request, whatever the route
    for dev in (second, other_tab):
        for method, path, body in (
            ("GET", "/api/sync/pull", None),
            ("GET", "/api/sync/status", None),
            ("GET", "/api/devices", None),
            ("POST", "/api/devices/replica-a/revoke", None),
        ):
            r = dev.call(method, path, body)
            assert (r.status, r.body["code"]) == (401, "session_revoked"), (method, path)
        r = _push(dev, "item-2", "b2")
        assert (r.status, r.body["code"]) == (401, "session_revoked")
    # AND B can never open a session again
    r = second.caller.call("POST", "/api/auth/session", second.session_body(second.challenge()))
    assert (r.status, r.body["code"]) == (403, "device_revoked")
    # AND A is unaffected and B's item is still there
    pulled = registered.call("GET", "/api/sync/pull")
    assert pulled.status == 200 and [i["id"] for i in pulled.body["items"]] == ["item-1"]
    # AND A still could not be revoked by B
    assert _by_id(registered)["replica-a"]["revokedAt"] is None


def test_revoke_is_idempotent_and_counts_once(
    registered: Device, second: Device, clock: Any
) -> None:
    assert registered.call("GET", "/api/sync/status").body["devices"] == 2
    first = registered.call("POST", "/api/devices/replica-b/revoke")
    assert first.status == 200
    # WHEN the revoke is repeated later
    clock(5_000)
    again = registered.call("POST", "/api/devices/replica-b/revoke")
    # THEN it answers the same device with the first revokedAt, and counted once
    assert again.status == 200
    assert again.body["revokedAt"] == first.body["revokedAt"]
    assert registered.call("GET", "/api/sync/status").body["devices"] == 1
    listed = _by_id(registered)
    assert listed["replica-b"]["revokedAt"] == first.body["revokedAt"]  # still listed


def test_revoke_unknown_or_foreign_device_is_404(registered: Device, caller: Caller) -> None:
    stranger = Device(caller, seed_for(9), "replica-x")
    stranger.sign_in("Stranger")
    for replica in ("nobody", "replica-x"):
        r = registered.call("POST", f"/api/devices/{replica}/revoke")
        assert (r.status, r.body["code"]) == (404, "device_not_found")
    # the stranger is untouched and the caller's count unchanged
    assert stranger.call("GET", "/api/sync/status").status == 200
    assert registered.call("GET", "/api/sync/status").body["devices"] == 1


def test_a_device_may_revoke_itself(registered: Device, second: Device) -> None:
    r = second.call("POST", "/api/devices/replica-b/revoke")
    assert r.status == 200 and r.body["current"] is True and r.body["revokedAt"] is not None
    r = second.call("GET", "/api/sync/status")
    assert (r.status, r.body["code"]) == (401, "session_revoked")
    r = second.caller.call("POST", "/api/auth/session", second.session_body(second.challenge()))
    assert (r.status, r.body["code"]) == (403, "device_revoked")
    assert registered.call("GET", "/api/sync/status").body["devices"] == 1


def test_revoked_replica_cannot_enrol_again_even_with_a_name(
    registered: Device, second: Device
) -> None:
    registered.call("POST", "/api/devices/replica-b/revoke")
    body = second.session_body(second.challenge(), deviceName="Fresh start")
    r = second.caller.call("POST", "/api/auth/session", body)
    assert (r.status, r.body["code"]) == (403, "device_revoked")
    assert _by_id(registered)["replica-b"]["name"] is None


def test_devices_never_need_premium(
    registered: Device, second: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    assert registered.call("GET", "/api/devices").status == 200
    assert registered.call("PATCH", "/api/devices/replica-b", {"name": "B"}).status == 200
    assert registered.call("POST", "/api/devices/replica-b/revoke").status == 200


def test_device_routes_are_documented(caller: Caller) -> None:
    doc = caller.call("GET", "/api/openapi.json").body
    assert "get" in doc["paths"]["/api/devices"]
    assert "patch" in doc["paths"]["/api/devices/{replicaId}"]
    assert "post" in doc["paths"]["/api/devices/{replicaId}/revoke"]
    assert "post" in doc["paths"]["/api/vault/rotate"]
