"""PROTOCOL v1.2 §3: on a writing route the session check and the write are one step.

Each race is made deterministic by a hook that ends the session after the request was
authenticated and before its write commits; each failed on v1.1 (checked, then wrote).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib import devices, identity
from chalicelib.shared.encoding import b64url_encode
from chalicelib.sync import push as push_module
from tests.helpers import Caller, Device


def end_before_commit(
    monkeypatch: pytest.MonkeyPatch, module: Any, end: Callable[[], None]
) -> None:
    """Run `end` once, between the route's authentication and its commit."""
    original = module.add_session_guards
    pending = [end]

    def guards(*args: Any, **kwargs: Any) -> None:
        while pending:
            pending.pop()()
        original(*args, **kwargs)

    monkeypatch.setattr(module, "add_session_guards", guards)


@pytest.fixture
def phone(registered: Device, caller: Caller) -> Device:
    dev = Device(caller, registered.seed, "replica-b")
    dev.sign_in("Phone")
    return dev


def test_a_rename_racing_a_revoke_of_its_device_changes_nothing(
    registered: Device, phone: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    def revoke_phone() -> None:
        assert registered.call("POST", "/api/devices/replica-b/revoke").status == 200

    end_before_commit(monkeypatch, devices, revoke_phone)
    r = phone.call("PATCH", "/api/devices/replica-a", {"name": "renamed by the phone"})
    assert (r.status, r.body["code"]) == (401, "session_revoked")
    listed = {d["replicaId"]: d for d in registered.call("GET", "/api/devices").body["devices"]}
    assert listed["replica-a"]["name"] == "Laptop"


def test_a_rename_of_its_own_device_racing_its_revoke(
    registered: Device, phone: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    def revoke_phone() -> None:
        assert registered.call("POST", "/api/devices/replica-b/revoke").status == 200

    end_before_commit(monkeypatch, devices, revoke_phone)
    r = phone.call("PATCH", "/api/devices/replica-b", {"name": "still here"})
    assert (r.status, r.body["code"]) == (401, "session_revoked")


def test_a_revoke_whose_session_logged_out_meanwhile_changes_nothing(
    registered: Device, phone: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    def logout() -> None:
        assert registered.call("DELETE", "/api/auth/session").status == 204

    end_before_commit(monkeypatch, devices, logout)
    r = registered.call("POST", "/api/devices/replica-b/revoke")
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    assert phone.call("GET", "/api/sync/status").status == 200  # not revoked
    assert phone.call("GET", "/api/sync/status").body["devices"] == 2


def test_a_push_whose_session_logged_out_meanwhile_writes_nothing(
    registered: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    def logout() -> None:
        assert registered.call("DELETE", "/api/auth/session").status == 204

    end_before_commit(monkeypatch, push_module, logout)
    item = {"id": "a", "deleted": False, "ciphertext": b64url_encode(b"x")}
    r = registered.call("POST", "/api/sync/push", {"batchId": "b1", "items": [item]})
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    registered.sign_in()
    assert registered.call("GET", "/api/sync/status").body["watermark"] == 0


def test_an_upload_whose_session_logged_out_meanwhile_reserves_nothing(
    registered: Device, monkeypatch: pytest.MonkeyPatch
) -> None:

    def logout() -> None:
        assert registered.call("DELETE", "/api/auth/session").status == 204

    end_before_commit(monkeypatch, identity, logout)
    body = {"size": 10, "sha256": b64url_encode(b"\0" * 32)}
    r = registered.call("POST", "/api/attachments/a1/upload", body)
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    registered.sign_in()
    listed = registered.call("GET", "/api/attachments").body["attachments"]
    assert listed == []
    # AND the reservation was never made: the whole quota is still there
    from chalicelib.store import keys
    from chalicelib.store.table import Table

    vault = str(Table().get(keys.key_pk(registered.key_did))["vaultId"])  # type: ignore[index]
    assert Table().get(keys.reservation_key(vault, "a1")) is None


def test_a_delete_whose_session_ended_meanwhile_keeps_blob_and_row(
    registered: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.functional.test_attachments import exists, store

    key = store(registered, "a1", b"attachment bytes")

    def logout() -> None:
        assert registered.call("DELETE", "/api/auth/session").status == 204

    end_before_commit(monkeypatch, identity, logout)
    r = registered.call("DELETE", "/api/attachments/a1")
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    # THEN the record still lists the attachment, and its blob is still there (v1.1 deleted
    # the blob first and could leave a record of a deleted blob)
    registered.sign_in()
    assert [a["id"] for a in registered.call("GET", "/api/attachments").body["attachments"]] == [
        "a1"
    ]
    assert exists(key)


def test_an_upload_racing_a_rotation_writes_nothing_into_the_rotated_vault(
    registered: Device, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import seed_for

    thief_session = Device(caller, registered.seed, "replica-b")  # an old-key session
    thief_session.sign_in()
    rotate = registered.rotate_body(seed_for(7))

    def rotation() -> None:
        assert registered.call("POST", "/api/vault/rotate", rotate).status == 200

    end_before_commit(monkeypatch, identity, rotation)
    body = {"size": 10, "sha256": b64url_encode(b"\0" * 32)}
    r = thief_session.call("POST", "/api/attachments/a1/upload", body)
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    owner = Device(caller, seed_for(7), registered.replica_id)
    owner.sign_in()
    assert owner.call("GET", "/api/sync/status").body["counts"]["attachments"] == 0
    from chalicelib.store import keys
    from chalicelib.store.table import Table

    vault = str(Table().get(keys.key_pk(owner.key_did))["vaultId"])  # type: ignore[index]
    assert Table().get(keys.reservation_key(vault, "a1")) is None


def test_a_redeem_whose_session_logged_out_meanwhile_uses_nothing(
    registered: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.functional.test_premium import make_code

    code = make_code(days=10, max_redemptions=1)

    def logout() -> None:
        assert registered.call("DELETE", "/api/auth/session").status == 204

    end_before_commit(monkeypatch, identity, logout)
    r = registered.call("POST", "/api/premium/redeem", {"code": code})
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    # THEN the code's only redemption is still there
    registered.sign_in()
    r = registered.call("POST", "/api/premium/redeem", {"code": code})
    assert r.status == 200, r.body
