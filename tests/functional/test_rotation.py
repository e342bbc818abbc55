"""§7 key rotation through chalice.test.Client over moto: every rule and error code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.shared.encoding import b64url_encode
from chalicelib.shared.messages import rotate_message, sign
from chalicelib.store import keys
from chalicelib.store import table as table_module
from chalicelib.store.table import Table
from tests.helpers import AUDIENCE, SALT, Caller, Device, did_for_seed, seed_for

NEW = seed_for(2)
KDF = {"algorithm": "PBKDF2-SHA256", "iterations": 100_000}


def _push(dev: Device, items: dict[str, bytes], batch: str) -> Any:
    body = {
        "batchId": batch,
        "items": [
            {"id": i, "baseVersion": 0, "deleted": False, "ciphertext": b64url_encode(ct)}
            for i, ct in items.items()
        ],
    }
    r = dev.call("POST", "/api/sync/push", body)
    assert r.status == 200, r.body
    return r.body


def _bootstrap(caller: Caller, key_did: str) -> Any:
    return caller.call("GET", f"/api/vault/bootstrap?keyDid={key_did}")


def _snapshot(dev: Device) -> dict[str, Any]:
    """What a client can see of its vault: items, devices, status (minus per-key fields)."""
    status = dev.call("GET", "/api/sync/status").body
    status.pop("keyDid")
    devices = dev.call("GET", "/api/devices").body["devices"]
    for d in devices:
        d.pop("lastSeenAt")
        d.pop("current")
    return {
        "items": dev.call("GET", "/api/sync/pull").body["items"],
        "devices": devices,
        "status": {k: v for k, v in status.items() if k not in ("lastPushAt", "lastPullAt")},
    }


@pytest.fixture
def vault(registered: Device) -> Device:
    """A registered vault with a verifier, two items and a second device."""
    proof = registered.proof("register", registered.key_did)
    r = registered.register(verifier="old-verifier", publicKeys={"sig": "old"}, proof=proof)
    assert r.status == 200, r.body
    _push(registered, {"a": b"alpha", "b": b"beta"}, "seed-batch")
    other = Device(registered.caller, registered.seed, "replica-b")
    other.sign_in("Phone")
    return registered


# -- the happy path --------------------------------------------------------------------------


def test_rotation_moves_the_vault_to_the_new_key(vault: Device, caller: Caller) -> None:
    # GIVEN a registered vault with items and two devices, and a second session of the old key
    before = _snapshot(vault)
    old_did = vault.key_did
    phone = Device(caller, vault.seed, "replica-b")
    phone.sign_in()
    # WHEN the laptop rotates to the new key with a new verifier, publicKeys and more iterations
    body = vault.rotate_body(
        NEW,
        verifier="new-verifier",
        publicKeys={"sig": "new"},
        kdf={"algorithm": "PBKDF2-SHA256", "iterations": 310_000},
    )
    r = vault.call("POST", "/api/vault/rotate", body)
    # THEN it answers the new key and the rotation time
    assert r.status == 200, r.body
    assert set(r.body) == {"keyDid", "rotatedAt"} and r.body["keyDid"] == did_for_seed(NEW)
    # AND every session of the vault has ended
    for dev in (vault, phone):
        r = dev.call("GET", "/api/sync/status")
        assert (r.status, r.body["code"]) == (401, "unauthorized")
    # AND bootstrap knows only the new key: same salt, replaced verifier/publicKeys, raised kdf
    assert _bootstrap(caller, old_did).status == 404
    boot = _bootstrap(caller, did_for_seed(NEW))
    assert boot.status == 200
    assert boot.body == {
        "keyDid": did_for_seed(NEW),
        "saltHex": SALT,
        "verifier": "new-verifier",
        "publicKeys": {"sig": "new"},
        "kdf": {"algorithm": "PBKDF2-SHA256", "iterations": 310_000},
    }
    # AND the new key signs in (same replica: no new enrolment) to the very same vault
    laptop = Device(caller, NEW, "replica-a")
    laptop.sign_in()
    after = _snapshot(laptop)
    assert after == before
    status = laptop.call("GET", "/api/sync/status").body
    assert status["keyDid"] == did_for_seed(NEW) and status["registered"] is True
    salt = laptop.call("GET", f"/api/salt?keyDid={did_for_seed(NEW)}")
    assert salt.body == {"saltHex": SALT, "verifier": "new-verifier"}
    # AND the new key keeps syncing on the same watermark
    pushed = _push(laptop, {"c": b"gamma"}, "after-rotation")
    assert pushed["watermark"] == before["status"]["watermark"] + 1


def test_old_key_is_retired(vault: Device, caller: Caller) -> None:
    old_did = vault.key_did
    assert vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW)).status == 200
    # WHEN the old key signs in again (it may, like any key)
    old = Device(caller, vault.seed, "replica-a")
    old.sign_in()
    # THEN it sees no vault, no data, no devices, and can never register again
    status = old.call("GET", "/api/sync/status").body
    assert status["registered"] is False and status["keyDid"] == old_did
    assert status["watermark"] == 0 and status["registeredAt"] is None
    r = old.call("GET", "/api/sync/pull")
    assert (r.status, r.body["code"]) == (404, "vault_not_found")
    assert old.call("GET", "/api/devices").body == {"devices": [], "cursor": None}
    r = old.call("POST", "/api/devices/replica-b/revoke")
    assert (r.status, r.body["code"]) == (404, "device_not_found")
    for salt in (SALT, "ab" * 16):
        r = old.register(salt)
        assert (r.status, r.body["code"]) == (409, "key_did_retired")
    r = old.call("GET", f"/api/salt?keyDid={old_did}")
    assert (r.status, r.body["code"]) == (404, "vault_not_found")
    r = old.call("POST", "/api/vault/rotate", old.rotate_body(seed_for(3)))
    assert (r.status, r.body["code"]) == (404, "vault_not_found")
    assert _bootstrap(caller, old_did).status == 404


def test_pointer_model_nothing_is_copied(vault: Device, aws: None) -> None:
    # GIVEN the vault id behind the old key
    t = Table()
    old_ptr = t.get(keys.key_pk(vault.key_did))
    assert old_ptr is not None
    # WHEN rotating
    r = vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW))
    assert r.status == 200
    # THEN the new pointer names the same vault, the old one is retired but still points there
    new_ptr = t.get(keys.key_pk(did_for_seed(NEW)))
    old_after = t.get(keys.key_pk(vault.key_did))
    assert new_ptr is not None and old_after is not None
    assert new_ptr["vaultId"] == old_ptr["vaultId"] == old_after["vaultId"]
    assert old_after["retiredAt"] == r.body["rotatedAt"]
    meta = t.get(keys.meta_key(old_ptr["vaultId"]))
    assert meta is not None
    assert meta["keyDid"] == did_for_seed(NEW) and meta["rotatedAt"] == r.body["rotatedAt"]


def test_rotation_without_options_keeps_verifier_keys_and_kdf(
    vault: Device, caller: Caller
) -> None:
    assert vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW)).status == 200
    boot = _bootstrap(caller, did_for_seed(NEW)).body
    assert boot["verifier"] == "old-verifier" and boot["publicKeys"] == {"sig": "old"}
    assert boot["kdf"]["iterations"] == 100_000


def test_rotate_again_to_a_third_key(vault: Device, caller: Caller) -> None:
    # GIVEN a vault rotated once
    assert vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW)).status == 200
    second = Device(caller, NEW, "replica-a")
    second.sign_in()
    before = _snapshot(second)
    # WHEN the new key rotates again
    r = second.call("POST", "/api/vault/rotate", second.rotate_body(seed_for(3)))
    assert r.status == 200, r.body
    # THEN the third key holds the same vault and the first two are retired
    third = Device(caller, seed_for(3), "replica-a")
    third.sign_in()
    assert _snapshot(third) == before
    for seed in (seed_for(1), NEW):
        assert _bootstrap(caller, did_for_seed(seed)).status == 404


def test_entitlement_moves_with_the_vault(
    vault: Device, caller: Caller, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Premium is required and the vault's head says it is active (the premium
    # module keeps this summary; entitlements live under the vault, not under a key)
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    t = Table()
    ptr = t.get(keys.key_pk(vault.key_did))
    assert ptr is not None
    until = 4_102_444_800_000
    t.update(
        keys.meta_key(ptr["vaultId"]),
        "SET premiumUntil = :u, premiumSource = :s",
        values={":u": until, ":s": "promo"},
    )
    # WHEN rotating (never gated)
    assert vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW)).status == 200
    # THEN the new key's vault is still Premium
    laptop = Device(caller, NEW, "replica-a")
    laptop.sign_in()
    premium = laptop.call("GET", "/api/sync/status").body["premium"]
    assert premium == {"required": True, "active": True, "source": "promo", "expiresAt": until}


def test_rotation_is_never_premium_gated(vault: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN Premium is required and this vault has none (push is refused)
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    item = {"id": "p", "baseVersion": 0, "deleted": False, "ciphertext": b64url_encode(b"p")}
    r = vault.call("POST", "/api/sync/push", {"batchId": "x", "items": [item]})
    assert (r.status, r.body["code"]) == (402, "premium_required")
    # WHEN rotating THEN it still works
    r = vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW))
    assert r.status == 200, r.body


# -- kdf -------------------------------------------------------------------------------------


def test_kdf_may_stay_or_go_up_never_down(vault: Device, caller: Caller) -> None:
    # GIVEN a vault rotated to 200 000 iterations
    body = vault.rotate_body(NEW, kdf={"algorithm": "PBKDF2-SHA256", "iterations": 200_000})
    assert vault.call("POST", "/api/vault/rotate", body).status == 200
    dev = Device(caller, NEW, "replica-a")
    dev.sign_in()
    # WHEN the next rotation asks for fewer
    lower = dev.rotate_body(seed_for(3), kdf={"algorithm": "PBKDF2-SHA256", "iterations": 150_000})
    r = dev.call("POST", "/api/vault/rotate", lower)
    # THEN 409 kdf_conflict and nothing changed: the session still works, the key is the same
    assert (r.status, r.body["code"]) == (409, "kdf_conflict")
    assert dev.call("GET", "/api/sync/status").status == 200
    assert _bootstrap(caller, did_for_seed(seed_for(3))).status == 404
    assert _bootstrap(caller, dev.key_did).body["kdf"]["iterations"] == 200_000
    # AND the same iterations are fine
    same = dev.rotate_body(seed_for(3), kdf={"algorithm": "PBKDF2-SHA256", "iterations": 200_000})
    assert dev.call("POST", "/api/vault/rotate", same).status == 200
    assert _bootstrap(caller, did_for_seed(seed_for(3))).body["kdf"]["iterations"] == 200_000


def test_kdf_lower_than_registered_is_a_conflict(caller: Caller) -> None:
    # GIVEN a vault registered with 300 000 iterations
    dev = Device(caller, seed_for(5), "replica-z")
    dev.sign_in()
    assert dev.register(kdf={"algorithm": "PBKDF2-SHA256", "iterations": 300_000}).status == 201
    # WHEN a rotation asks for the 100 000 minimum THEN it is a conflict, nothing moved
    r = dev.call("POST", "/api/vault/rotate", dev.rotate_body(seed_for(6), kdf=KDF))
    assert (r.status, r.body["code"]) == (409, "kdf_conflict")
    assert _bootstrap(caller, dev.key_did).status == 200


# -- validation (400 before any state) -------------------------------------------------------


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"kdf": {"algorithm": "PBKDF2-SHA256", "iterations": 99_999}}, "invalid_request"),
    ({"kdf": {"algorithm": "PBKDF2-SHA256", "iterations": 10_000_001}}, "invalid_request"),
    ({"kdf": {"algorithm": "argon2id", "iterations": 200_000}}, "invalid_request"),
    ({"kdf": {"iterations": 200_000}}, "invalid_request"),
    ({"saltHex": SALT}, "invalid_request"),
    ({"unknown": 1}, "invalid_request"),
    ({"verifier": "v" * 1025}, "invalid_request"),
    ({"publicKeys": {"k": "x" * 5000}}, "invalid_request"),
    ({"newKeyDid": "did:key:nope"}, "invalid_key_did"),
    ({"newKeyDid": 7}, "invalid_request"),
    ({"signature": "***"}, "invalid_encoding"),
    ({"signature": b64url_encode(b"\x01" * 16)}, "invalid_request"),
]


def test_malformed_rotation_is_400(vault: Device, caller: Caller) -> None:
    proof = vault.proof("rotate", did_for_seed(NEW))  # a 400 does not spend it (§3)
    for extra, code in MALFORMED:
        body = {**vault.rotate_body(NEW, proof=proof), **extra}
        r = vault.call("POST", "/api/vault/rotate", body)
        assert (r.status, r.body["code"]) == (400, code), extra
        # validation comes before authentication too
        r = caller.call("POST", "/api/vault/rotate", body)
        assert (r.status, r.body["code"]) == (400, code), extra
    assert vault.call("GET", "/api/sync/status").status == 200  # nothing happened


def test_missing_fields_are_400(vault: Device) -> None:
    for field in ("newKeyDid", "signature"):
        body = vault.rotate_body(NEW)
        del body[field]
        r = vault.call("POST", "/api/vault/rotate", body)
        assert (r.status, r.body["code"]) == (400, "invalid_request")


def test_rotation_needs_a_session(vault: Device, caller: Caller) -> None:
    r = caller.call("POST", "/api/vault/rotate", vault.rotate_body(NEW))
    assert (r.status, r.body["code"]) == (401, "unauthorized")


# -- signatures ------------------------------------------------------------------------------


def _signed(old_did: str, new_seed: bytes, signer: bytes, audience: str = AUDIENCE) -> Any:
    new_did = did_for_seed(new_seed)
    sig = sign(signer, rotate_message(audience, old_did, new_did))
    return {"newKeyDid": new_did, "signature": b64url_encode(sig)}


def test_bad_rotation_signature_is_401(vault: Device, caller: Caller) -> None:
    old = vault.key_did
    cases = {
        "signed_by_old_key": _signed(old, NEW, vault.seed),
        "other_audience": _signed(old, NEW, NEW, "https://other.example"),
        "other_old_key": _signed(did_for_seed(seed_for(7)), NEW, NEW),
        "other_new_key": {**_signed(old, NEW, NEW), "newKeyDid": did_for_seed(seed_for(8))},
    }
    for case, body in cases.items():
        body["proof"] = vault.proof("rotate", body["newKeyDid"])  # a good proof, a bad signature
        r = vault.call("POST", "/api/vault/rotate", body)
        assert (r.status, r.body["code"]) == (401, "invalid_signature"), case
    # nothing moved: the session works and the new key has no vault
    assert vault.call("GET", "/api/sync/status").status == 200
    assert _bootstrap(caller, did_for_seed(NEW)).status == 404
    assert _bootstrap(caller, old).status == 200


# -- state conflicts -------------------------------------------------------------------------


def test_rotate_before_registration_is_404(device: Device) -> None:
    device.sign_in()
    r = device.call("POST", "/api/vault/rotate", device.rotate_body(NEW))
    assert (r.status, r.body["code"]) == (404, "vault_not_found")


def test_rotate_to_the_current_key_is_taken(vault: Device) -> None:
    r = vault.call("POST", "/api/vault/rotate", vault.rotate_body(vault.seed))
    assert (r.status, r.body["code"]) == (409, "key_did_taken")
    assert vault.call("GET", "/api/sync/status").status == 200


def test_rotate_to_a_key_with_a_registered_vault_is_taken(vault: Device, caller: Caller) -> None:
    # GIVEN the new key has its own registered vault
    other = Device(caller, NEW, "replica-n")
    other.sign_in()
    assert other.register("cd" * 16).status == 201
    # WHEN rotating onto it
    r = vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW))
    # THEN 409 and neither vault changed
    assert (r.status, r.body["code"]) == (409, "key_did_taken")
    assert _bootstrap(caller, NEW_DID()).body["saltHex"] == "cd" * 16
    assert _bootstrap(caller, vault.key_did).body["saltHex"] == SALT
    assert other.call("GET", "/api/sync/status").status == 200


def NEW_DID() -> str:  # noqa: N802 - reads as the constant it stands for
    return did_for_seed(NEW)


def test_rotate_to_a_retired_key_is_409(vault: Device, caller: Caller) -> None:
    # GIVEN the vault rotated away from key 1 to key 2
    key1 = vault.key_did
    assert vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW)).status == 200
    dev = Device(caller, NEW, "replica-a")
    dev.sign_in()
    # WHEN key 2 tries to rotate back to key 1
    r = dev.call("POST", "/api/vault/rotate", dev.rotate_body(seed_for(1)))
    # THEN key 1 is retired for good
    assert (r.status, r.body["code"]) == (409, "key_did_retired")
    assert _bootstrap(caller, key1).status == 404
    # AND another vault cannot take it either
    stranger = Device(caller, seed_for(9), "replica-x")
    stranger.sign_in()
    assert stranger.register("ef" * 16).status == 201
    r = stranger.call("POST", "/api/vault/rotate", stranger.rotate_body(seed_for(1)))
    assert (r.status, r.body["code"]) == (409, "key_did_retired")


def test_rotate_to_a_key_that_signed_in_but_never_registered(vault: Device, caller: Caller) -> None:
    # GIVEN the new key already signed in once (which allocates an empty vault for it)
    early = Device(caller, NEW, "replica-early")
    early.sign_in("Early")
    assert early.call("GET", "/api/sync/status").body["registered"] is False
    before = _snapshot(vault)
    # WHEN the vault rotates to it
    r = vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW))
    # THEN it is allowed
    assert r.status == 200, r.body
    # AND the early session, bound to the abandoned empty vault, is over: it cannot register
    # or push into a vault nothing points to any more
    r = early.call("GET", "/api/sync/status")
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    # AND signing in again with the new key leads to the rotated vault
    laptop = Device(caller, NEW, "replica-a")
    laptop.sign_in()
    assert _snapshot(laptop) == before


def test_a_retry_after_success_meets_a_dead_session(vault: Device, caller: Caller) -> None:
    # GIVEN a rotation whose answer the client lost
    body = vault.rotate_body(NEW)
    assert vault.call("POST", "/api/vault/rotate", body).status == 200
    # WHEN the client retries with the old session
    r = vault.call("POST", "/api/vault/rotate", body)
    # THEN the session is over; signing in with the new key shows the rotation happened
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    laptop = Device(caller, NEW, "replica-a")
    laptop.sign_in()
    assert laptop.call("GET", "/api/sync/status").body["registered"] is True


@pytest.fixture
def failing_transactions() -> Iterator[list[int]]:
    """Make every TransactWriteItems fail as if storage were down (counts the attempts),
    from the first call of the rotate route on (a challenge is a transaction too)."""
    calls: list[int] = []
    from chalicelib import rotation

    original = rotation.rotate
    armed: list[bool] = []

    def arming(*args: Any, **kwargs: Any) -> Any:
        armed.append(True)
        return original(*args, **kwargs)

    rotation.rotate = arming  # type: ignore[assignment]

    def hook(operation: str) -> None:
        if operation == "TransactWriteItems" and armed:
            calls.append(1)
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "down"}},
                "TransactWriteItems",
            )

    table_module.fault_hook = hook
    yield calls
    table_module.fault_hook = None
    rotation.rotate = original  # type: ignore[assignment]


def test_a_failed_rotation_changes_nothing_and_a_retry_finishes_it(
    vault: Device, caller: Caller, failing_transactions: list[int]
) -> None:
    body = vault.rotate_body(NEW)
    # WHEN the rotation's transaction cannot commit
    r = vault.call("POST", "/api/vault/rotate", body)
    assert (r.status, r.body["code"]) == (503, "unavailable")
    assert failing_transactions
    table_module.fault_hook = None
    # THEN the vault still answers to exactly the old key
    assert _bootstrap(caller, vault.key_did).status == 200
    assert _bootstrap(caller, NEW_DID()).status == 404
    assert vault.call("GET", "/api/sync/status").status == 200
    # AND the same request, retried with a fresh proof (the first one's nonce is spent),
    # finishes it
    r = vault.call("POST", "/api/vault/rotate", {**body, "proof": vault.proof("rotate", NEW_DID())})
    assert r.status == 200, r.body
    assert _bootstrap(caller, vault.key_did).status == 404
    assert _bootstrap(caller, NEW_DID()).status == 200


def test_revoked_device_is_cut_off_by_revoke_plus_rotation(vault: Device, caller: Caller) -> None:
    # GIVEN the phone is revoked but still knows the old password (the old key)
    assert vault.call("POST", "/api/devices/replica-b/revoke").status == 200
    # WHEN the laptop rotates
    assert vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW)).status == 200
    # THEN the old key, on a fresh replica, sees no vault at all
    thief = Device(caller, vault.seed, "replica-new")
    thief.sign_in()
    assert thief.call("GET", "/api/sync/status").body["registered"] is False
    r = thief.call("GET", "/api/sync/pull")
    assert (r.status, r.body["code"]) == (404, "vault_not_found")
    # AND the revoked replica stays revoked under the new key
    phone = Device(caller, NEW, "replica-b")
    r = caller.call("POST", "/api/auth/session", phone.session_body(phone.challenge()))
    assert (r.status, r.body["code"]) == (403, "device_revoked")


# -- races decided by the transaction's conditions (state changed between read and commit) --


def _before_first_commit(action: Any) -> None:
    """Run `action` once, just before the rotation's first TransactWriteItems is sent."""
    fired: list[bool] = []

    def hook(operation: str) -> None:
        if operation == "TransactWriteItems" and not fired:
            fired.append(True)
            action()

    table_module.fault_hook = hook


@pytest.fixture
def race() -> Iterator[Any]:
    yield _before_first_commit
    table_module.fault_hook = None


def test_new_key_allocated_meanwhile_is_reread_and_taken_over(
    vault: Device, caller: Caller, race: Any
) -> None:
    from chalicelib.vaults import vault_id_for

    # GIVEN the new key signs in for the first time between our read and our commit
    race(lambda: vault_id_for(Table(), NEW_DID(), allocate=True))
    # WHEN rotating THEN the cancelled commit is decided again and succeeds
    r = vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW))
    assert r.status == 200, r.body
    laptop = Device(caller, NEW, "replica-a")
    laptop.sign_in()
    assert laptop.call("GET", "/api/sync/status").body["counts"]["items"] == 2


def test_new_key_registered_meanwhile_is_taken(vault: Device, caller: Caller, race: Any) -> None:
    from chalicelib.vaults import vault_id_for

    # GIVEN the new key's empty vault exists when we read, and registers before we commit
    vault_id, _ = vault_id_for(Table(), NEW_DID(), allocate=True)
    assert vault_id is not None

    def register_it() -> None:
        Table().update(keys.meta_key(vault_id), "SET saltHex = :s", values={":s": "cd" * 16})

    race(register_it)
    # WHEN rotating THEN 409 key_did_taken, and the registered vault keeps its key
    r = vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW))
    assert (r.status, r.body["code"]) == (409, "key_did_taken")
    assert _bootstrap(caller, NEW_DID()).body["saltHex"] == "cd" * 16
    assert _bootstrap(caller, vault.key_did).body["saltHex"] == SALT


def test_concurrent_rotation_wins_and_this_session_ends(
    vault: Device, caller: Caller, race: Any
) -> None:
    # GIVEN another device rotates the vault to key 3 between our read and our commit
    phone = Device(caller, vault.seed, "replica-b")
    phone.sign_in()
    race(lambda: phone.call("POST", "/api/vault/rotate", phone.rotate_body(seed_for(3))))
    # WHEN we rotate to key 2 THEN we lose: the session is over, the vault has exactly key 3
    r = vault.call("POST", "/api/vault/rotate", vault.rotate_body(NEW))
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    assert _bootstrap(caller, did_for_seed(seed_for(3))).status == 200
    assert _bootstrap(caller, NEW_DID()).status == 404
    assert _bootstrap(caller, vault.key_did).status == 404


def test_kdf_raised_meanwhile_cannot_be_lowered(vault: Device, caller: Caller, race: Any) -> None:
    # GIVEN the stored iterations go up between our check and our commit
    ptr = Table().get(keys.key_pk(vault.key_did))
    assert ptr is not None
    race(
        lambda: Table().update(
            keys.meta_key(ptr["vaultId"]), "SET kdfIterations = :i", values={":i": 500_000}
        )
    )
    # WHEN rotating with fewer THEN the condition guards it: 409 kdf_conflict, nothing moved
    body = vault.rotate_body(NEW, kdf={"algorithm": "PBKDF2-SHA256", "iterations": 200_000})
    r = vault.call("POST", "/api/vault/rotate", body)
    assert (r.status, r.body["code"]) == (409, "kdf_conflict")
    assert _bootstrap(caller, vault.key_did).body["kdf"]["iterations"] == 500_000
