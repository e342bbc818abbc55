"""PROTOCOL v1.2 §3: a session token alone never changes who controls the vault.

Each test here plays the thief of a session token (it holds the token, not the key) or
checks one rule of the proof; each failed on the v1.1 server, which took a token alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.shared.encoding import b64url_encode
from chalicelib.shared.messages import confirm_message, sign
from tests.helpers import AUDIENCE, SALT, Caller, Device, did_for_seed, seed_for

THIEF_SEED = seed_for(9)
NEW_SEED = seed_for(2)


@pytest.fixture
def thief(registered: Device) -> Device:
    """Holds the owner's token and its own key, but not the owner's key."""
    return Device(registered.caller, THIEF_SEED, registered.replica_id, token=registered.token)


def forged_proof(owner: Device, action: str, target: str) -> dict[str, str]:
    """A fresh nonce for the owner's keyDid (public), signed by a key that is not the owner's."""
    nonce = owner.challenge()
    msg = confirm_message(AUDIENCE, owner.key_did, action, target, nonce)
    return {"nonce": nonce, "signature": b64url_encode(sign(THIEF_SEED, msg))}


def owner_key(caller: Caller, key_did: str) -> Any:
    return caller.call("GET", f"/api/vault/bootstrap?keyDid={key_did}")


def device_row(owner: Device, replica_id: str) -> dict[str, Any]:
    r = owner.call("GET", "/api/devices")
    return next(d for d in r.body["devices"] if d["replicaId"] == replica_id)


# -- rotate -------------------------------------------------------------------------------
def test_stolen_token_cannot_rotate_the_vault_away(registered: Device, caller: Caller) -> None:
    body = registered.rotate_body(THIEF_SEED, proof=None)
    del body["proof"]
    # WHEN the thief rotates to its own key with no proof, THEN 400
    r = registered.call("POST", "/api/vault/rotate", body)
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    assert "proof" in r.body["message"]
    # WHEN it forges one with its own key THEN 401, and the owner still owns the vault
    body["proof"] = forged_proof(registered, "rotate", did_for_seed(THIEF_SEED))
    r = registered.call("POST", "/api/vault/rotate", body)
    assert (r.status, r.body["code"]) == (401, "invalid_signature")
    assert owner_key(caller, registered.key_did).status == 200
    assert owner_key(caller, did_for_seed(THIEF_SEED)).status == 404


def test_rotate_proof_covers_exactly_its_action_and_target(registered: Device) -> None:
    # GIVEN genuine proofs by the owner's key, but for something else
    new_did = did_for_seed(NEW_SEED)
    for action, target in [("revoke", new_did), ("rotate", did_for_seed(seed_for(3)))]:
        body = registered.rotate_body(NEW_SEED, proof=registered.proof(action, target))
        r = registered.call("POST", "/api/vault/rotate", body)
        assert (r.status, r.body["code"]) == (401, "invalid_signature"), (action, target)
    # AND the right one works
    r = registered.call("POST", "/api/vault/rotate", registered.rotate_body(NEW_SEED))
    assert r.status == 200, r.body


def test_a_proof_nonce_is_single_use(registered: Device) -> None:
    proof = registered.proof("rotate", did_for_seed(NEW_SEED))
    other = Device(registered.caller, seed_for(4), "replica-b")
    other.sign_in()
    other.register()
    # WHEN a proof's nonce is spent by a failed attempt (the new key is taken)
    taken = registered.rotate_body(seed_for(4), proof=registered.proof("rotate", other.key_did))
    assert registered.call("POST", "/api/vault/rotate", taken).status == 409
    r = registered.call("POST", "/api/vault/rotate", {**taken, "proof": taken["proof"]})
    # THEN it cannot be used again
    assert (r.status, r.body["code"]) == (401, "challenge_invalid")
    # AND an unspent one still works
    body = registered.rotate_body(NEW_SEED, proof=proof)
    assert registered.call("POST", "/api/vault/rotate", body).status == 200


def test_an_expired_proof_is_refused(registered: Device, clock: Any) -> None:
    body = registered.rotate_body(NEW_SEED)
    clock(121_000)
    r = registered.call("POST", "/api/vault/rotate", body)
    assert (r.status, r.body["code"]) == (401, "challenge_expired")


def test_a_nonce_for_another_key_is_invalid(registered: Device, caller: Caller) -> None:
    other = Device(caller, seed_for(5))
    nonce = other.challenge()
    msg = confirm_message(AUDIENCE, registered.key_did, "rotate", did_for_seed(NEW_SEED), nonce)
    proof = {"nonce": nonce, "signature": b64url_encode(sign(registered.seed, msg))}
    r = registered.call("POST", "/api/vault/rotate", registered.rotate_body(NEW_SEED, proof=proof))
    assert (r.status, r.body["code"]) == (401, "challenge_invalid")


def test_a_malformed_request_does_not_spend_the_proof(registered: Device) -> None:
    body = registered.rotate_body(NEW_SEED)
    r = registered.call("POST", "/api/vault/rotate", {**body, "kdf": {"iterations": 5}})
    assert r.status == 400
    assert registered.call("POST", "/api/vault/rotate", body).status == 200


# -- revoke -------------------------------------------------------------------------------
def test_stolen_token_cannot_revoke_a_device(registered: Device, thief: Device) -> None:
    path = f"/api/devices/{registered.replica_id}/revoke"
    r = thief.caller.call("POST", path, None, token=thief.token)
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    forged = forged_proof(registered, "revoke", registered.replica_id)
    r = thief.caller.call("POST", path, {"proof": forged}, token=thief.token)
    assert (r.status, r.body["code"]) == (401, "invalid_signature")
    assert device_row(registered, registered.replica_id)["revokedAt"] is None


def test_revoke_proof_is_for_one_replica(registered: Device, caller: Caller) -> None:
    phone = Device(caller, registered.seed, "replica-b")
    phone.sign_in("Phone")
    wrong = registered.proof("revoke", registered.replica_id)
    r = registered.call("POST", "/api/devices/replica-b/revoke", {"proof": wrong})
    assert (r.status, r.body["code"]) == (401, "invalid_signature")
    assert device_row(registered, "replica-b")["revokedAt"] is None
    right = registered.proof("revoke", "replica-b")
    r = registered.call("POST", "/api/devices/replica-b/revoke", {"proof": right})
    assert r.status == 200 and isinstance(r.body["revokedAt"], int)


# -- re-registration ----------------------------------------------------------------------
def test_stolen_token_cannot_replace_the_verifier(registered: Device, caller: Caller) -> None:
    r = registered.register(verifier="thief's verifier")
    assert (r.status, r.body["code"]) == (403, "proof_required")
    r = registered.register(publicKeys={"keyDid": "x"})
    assert (r.status, r.body["code"]) == (403, "proof_required")
    forged = forged_proof(registered, "register", registered.key_did)
    r = registered.register(verifier="thief's verifier", proof=forged)
    assert (r.status, r.body["code"]) == (401, "invalid_signature")
    assert owner_key(caller, registered.key_did).body["verifier"] is None


def test_sending_the_stored_values_again_needs_no_proof(registered: Device) -> None:
    proof = registered.proof("register", registered.key_did)
    assert registered.register(verifier="v1", proof=proof).status == 200
    assert registered.register(verifier="v1").status == 200
    assert registered.register().status == 200


def test_a_given_proof_is_always_checked(registered: Device) -> None:
    # A re-registration that needs none, with a proof for another action: still 401.
    r = registered.register(proof=registered.proof("revoke", registered.key_did))
    assert (r.status, r.body["code"]) == (401, "invalid_signature")


def test_first_registration_needs_no_proof_but_checks_a_given_one(caller: Caller) -> None:
    dev = Device(caller, seed_for(6))
    dev.sign_in()
    forged = forged_proof(dev, "register", dev.key_did)
    assert dev.register(verifier="v", proof=forged).status == 401
    assert dev.register(verifier="v").status == 201


def test_conflicts_come_before_proof_required(registered: Device) -> None:
    r = registered.register(salt="ff" * 16, verifier="other")
    assert (r.status, r.body["code"]) == (409, "salt_conflict")
    kdf = {"algorithm": "PBKDF2-SHA256", "iterations": 200_000}
    r = registered.register(SALT, kdf=kdf, verifier="other")
    assert (r.status, r.body["code"]) == (409, "kdf_conflict")
