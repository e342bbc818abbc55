"""§3–§4 through chalice.test.Client over moto: every route and error code."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.shared.encoding import b64url_encode
from tests.helpers import SALT, Caller, Device, did_for_seed, seed_for

OTHER_SALT = "ff" * 16


def test_health_names_audience_and_protocol(caller: Caller) -> None:
    r = caller.call("GET", "/api/health")
    assert r.status == 200
    assert r.body == {"status": "ok", "audience": "https://sync.example.test", "protocol": "1.2"}


def test_sign_in_and_logout(device: Device) -> None:
    token = device.sign_in("Laptop")
    assert len(token.rsplit("~", 1)[1]) == 43  # <vaultId>~<replicaId>~<256 random bits>
    r = device.call("GET", "/api/sync/status")
    assert r.status == 200
    assert device.call("DELETE", "/api/auth/session").status == 204
    r = device.call("GET", "/api/sync/status")
    assert (r.status, r.body["code"]) == (401, "unauthorized")


def test_token_is_stored_hashed(device: Device, aws: None) -> None:
    import boto3

    token = device.sign_in()
    rows = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="nt2-sync-test")
    assert token not in str(rows["Items"])


def test_nonce_is_single_use(device: Device) -> None:
    nonce = device.challenge()
    body = device.session_body(nonce)
    assert device.caller.call("POST", "/api/auth/session", body).status == 200
    r = device.caller.call("POST", "/api/auth/session", body)
    assert (r.status, r.body["code"]) == (401, "challenge_invalid")


def test_nonce_for_another_key(caller: Caller) -> None:
    a = Device(caller, seed_for(1))
    b = Device(caller, seed_for(2))
    nonce = a.challenge()
    r = caller.call("POST", "/api/auth/session", b.session_body(nonce))
    assert (r.status, r.body["code"]) == (401, "challenge_invalid")
    # the failed attempt consumed it: A cannot use it either
    r = caller.call("POST", "/api/auth/session", a.session_body(nonce))
    assert (r.status, r.body["code"]) == (401, "challenge_invalid")


def test_unknown_nonce(device: Device) -> None:
    body = device.session_body(b64url_encode(b"\x09" * 32))
    r = device.caller.call("POST", "/api/auth/session", body)
    assert (r.status, r.body["code"]) == (401, "challenge_invalid")


def test_expired_nonce(device: Device, clock: Any) -> None:
    nonce = device.challenge()
    clock(121_000)
    r = device.caller.call("POST", "/api/auth/session", device.session_body(nonce))
    assert (r.status, r.body["code"]) == (401, "challenge_expired")


def test_wrong_audience_signature_fails_and_consumes(device: Device) -> None:
    nonce = device.challenge()
    device.audience = "https://other.example"
    r = device.caller.call("POST", "/api/auth/session", device.session_body(nonce))
    assert (r.status, r.body["code"]) == (401, "invalid_signature")
    device.audience = "https://sync.example.test"
    r = device.caller.call("POST", "/api/auth/session", device.session_body(nonce))
    assert (r.status, r.body["code"]) == (401, "challenge_invalid")


def test_malformed_session_request_does_not_consume_nonce(device: Device) -> None:
    nonce = device.challenge()
    r = device.caller.call("POST", "/api/auth/session", device.session_body(nonce, extra=1))
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    assert device.caller.call("POST", "/api/auth/session", device.session_body(nonce)).status == 200


def test_expired_session(device: Device, clock: Any) -> None:
    device.sign_in()
    clock(3_600_001)
    r = device.call("GET", "/api/sync/status")
    assert (r.status, r.body["code"]) == (401, "session_expired")


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Basic abc", "Bearer not-a-token", "Bearer " + "A" * 43]
)
def test_bad_tokens_are_401(caller: Caller, header: str) -> None:
    r = caller.call("GET", "/api/sync/status", headers={"Authorization": header} if header else {})
    assert (r.status, r.body["code"]) == (401, "unauthorized")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"keyDid": "did:key:zabc"}, "invalid_key_did"),
        ({"keyDid": 5}, "invalid_request"),
        ({}, "invalid_request"),
        ({"keyDid": did_for_seed(seed_for(1)), "x": 1}, "invalid_request"),
        ([1, 2], "invalid_request"),
    ],
)
def test_challenge_validation(caller: Caller, body: Any, code: str) -> None:
    r = caller.call("POST", "/api/auth/challenge", body)
    assert (r.status, r.body["code"]) == (400, code)
    assert set(r.body) == {"code", "message"}


@pytest.mark.parametrize("raw", [b"{", b"nope", b"\xff\xfe", b'{"keyDid": NaN}', b""])
def test_bad_json_is_400(caller: Caller, raw: bytes) -> None:
    r = caller.call("POST", "/api/auth/challenge", raw=raw)
    assert (r.status, r.body["code"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("nonce", "not*base64", "invalid_encoding"),
        ("nonce", b64url_encode(b"\x01" * 16), "invalid_request"),
        ("signature", "!!", "invalid_encoding"),
        ("replicaId", "has space", "invalid_request"),
        ("replicaId", "r" * 65, "invalid_request"),
        ("deviceName", "", "invalid_request"),
        ("deviceName", "a\nb", "invalid_request"),
        ("deviceName", "x" * 65, "invalid_request"),
        ("keyDid", "did:key:z6Mk", "invalid_key_did"),
    ],
)
def test_session_validation(device: Device, field: str, value: str, code: str) -> None:
    body = device.session_body(device.challenge(), **{field: value})
    r = device.caller.call("POST", "/api/auth/session", body)
    assert (r.status, r.body["code"]) == (400, code)


def test_body_over_5_mib_is_413(caller: Caller) -> None:
    r = caller.call("POST", "/api/auth/challenge", raw=b" " * (5 * 1024 * 1024 + 1))
    assert (r.status, r.body["code"]) == (413, "payload_too_large")


def test_register_bootstrap_salt(device: Device) -> None:
    device.sign_in()
    r = device.register(
        kdf={"algorithm": "PBKDF2-SHA256", "iterations": 200000},
        verifier="v1",
        publicKeys={"signing": device.key_did},
    )
    assert r.status == 201
    first_at = r.body["registeredAt"]
    assert r.body["keyDid"] == device.key_did
    r = device.caller.call("GET", f"/api/vault/bootstrap?keyDid={device.key_did}")
    assert r.status == 200
    assert r.headers["Cache-Control"] == "no-store"
    assert r.body == {
        "keyDid": device.key_did,
        "saltHex": SALT,
        "verifier": "v1",
        "publicKeys": {"signing": device.key_did},
        "kdf": {"algorithm": "PBKDF2-SHA256", "iterations": 200000},
    }
    # same salt again: 200, verifier replaced, kdf kept, registeredAt unchanged
    r = device.register(verifier="v2", proof=device.proof("register", device.key_did))
    assert r.status == 200 and r.body["registeredAt"] == first_at
    r = device.call("GET", f"/api/salt?keyDid={device.key_did}")
    assert r.body == {"saltHex": SALT, "verifier": "v2"}
    boot = device.caller.call("GET", f"/api/vault/bootstrap?keyDid={device.key_did}").body
    assert boot["kdf"]["iterations"] == 200000
    # null verifier is the same as leaving it out
    assert device.register(verifier=None).status == 200
    assert device.call("GET", f"/api/salt?keyDid={device.key_did}").body["verifier"] == "v2"


def test_salt_conflict_changes_nothing(registered: Device) -> None:
    r = registered.register(OTHER_SALT, verifier="evil")
    assert (r.status, r.body["code"]) == (409, "salt_conflict")
    r = registered.call("GET", f"/api/salt?keyDid={registered.key_did}")
    assert r.body == {"saltHex": SALT, "verifier": None}


def test_kdf_conflict(registered: Device) -> None:
    r = registered.register(kdf={"algorithm": "PBKDF2-SHA256", "iterations": 300000})
    assert (r.status, r.body["code"]) == (409, "kdf_conflict")
    same = registered.register(kdf={"algorithm": "PBKDF2-SHA256", "iterations": 100000})
    assert same.status == 200


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"saltHex": "00" * 15}, "invalid_request"),
        ({"saltHex": "00" * 65}, "invalid_request"),
        ({"saltHex": "ZZ" * 16}, "invalid_encoding"),
        ({"saltHex": "AA" * 16}, "invalid_encoding"),
        ({"kdf": {"algorithm": "PBKDF2-SHA256"}}, "invalid_request"),
        ({"kdf": {"algorithm": "scrypt", "iterations": 100000}}, "invalid_request"),
        ({"kdf": {"algorithm": "PBKDF2-SHA256", "iterations": 99999}}, "invalid_request"),
        ({"kdf": {"algorithm": "PBKDF2-SHA256", "iterations": "100000"}}, "invalid_request"),
        ({"verifier": "v" * 1025}, "invalid_request"),
        ({"publicKeys": {"k": "x" * 5000}}, "invalid_request"),
        ({"publicKeys": "nope"}, "invalid_request"),
    ],
)
def test_register_validation(device: Device, extra: dict[str, Any], code: str) -> None:
    device.sign_in()
    body = {"saltHex": SALT, **extra}
    r = device.call("POST", "/api/vault/register", body)
    assert (r.status, r.body["code"]) == (400, code)


def test_validation_comes_before_auth(caller: Caller) -> None:
    r = caller.call("POST", "/api/vault/register", {"saltHex": "zz"})
    assert (r.status, r.body["code"]) == (400, "invalid_encoding")
    r = caller.call("GET", "/api/salt?keyDid=garbage")
    assert (r.status, r.body["code"]) == (400, "invalid_key_did")


def test_bootstrap_errors(caller: Caller, device: Device) -> None:
    r = caller.call("GET", "/api/vault/bootstrap?keyDid=nope")
    assert (r.status, r.body["code"]) == (400, "invalid_key_did")
    r = caller.call("GET", "/api/vault/bootstrap")
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    r = caller.call("GET", f"/api/vault/bootstrap?keyDid={device.key_did}")
    assert (r.status, r.body["code"]) == (404, "vault_not_found")
    device.sign_in()  # a session alone does not make a vault
    r = caller.call("GET", f"/api/vault/bootstrap?keyDid={device.key_did}")
    assert (r.status, r.body["code"]) == (404, "vault_not_found")


def test_salt_errors(device: Device, caller: Caller) -> None:
    device.sign_in()
    r = device.call("GET", f"/api/salt?keyDid={device.key_did}")
    assert (r.status, r.body["code"]) == (404, "vault_not_found")
    other = did_for_seed(seed_for(9))
    r = device.call("GET", f"/api/salt?keyDid={other}")
    assert (r.status, r.body["code"]) == (403, "key_did_mismatch")
    r = device.call("GET", "/api/salt")
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    r = caller.call("GET", f"/api/salt?keyDid={device.key_did}")
    assert (r.status, r.body["code"]) == (401, "unauthorized")


def test_premium_gate_on_register(device: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    device.sign_in()
    r = device.register()
    assert (r.status, r.body["code"]) == (402, "premium_required")
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "false")
    assert device.register().status == 201
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    r = device.register()  # re-registration is gated too
    assert (r.status, r.body["code"]) == (402, "premium_required")


def test_second_session_does_not_end_first(device: Device) -> None:
    first = device.sign_in()
    second = device.sign_in()
    assert first != second
    for token in (first, second):
        device.token = token
        assert device.call("GET", "/api/sync/status").status == 200


def test_cors_preflight_and_error_headers(caller: Caller) -> None:
    origin = {"Origin": "https://app.example.test"}
    r = caller.call("OPTIONS", "/api/vault/register", headers=origin)
    assert r.status == 204
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.test"
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    assert "PATCH" in r.headers["Access-Control-Allow-Methods"]
    assert "Origin" in r.headers["Vary"]
    r = caller.call("GET", "/api/sync/status", headers=origin)
    assert r.status == 401
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.test"
    assert r.headers["Access-Control-Expose-Headers"] == "Retry-After"
    r = caller.call("GET", "/api/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_openapi_document(caller: Caller) -> None:
    r = caller.call("GET", "/api/openapi.json")
    doc = r.body
    assert doc["openapi"].startswith("3.1")
    reg = doc["components"]["schemas"]["RegisterRequest"]
    assert reg["additionalProperties"] is False
    assert "/api/auth/session" in doc["paths"]
    assert set(doc["paths"]["/api/auth/session"]) == {"post", "delete"}


def test_token_routing_prefix_cannot_be_altered(device: Device, caller: Caller) -> None:
    # GIVEN a valid token <vaultId>~<replicaId>~<secret>
    token = device.sign_in()
    vault_id, replica, secret = token.split("~")
    other = Device(caller, seed_for(2), "replica-a")
    other_vault = other.sign_in().split("~")[0]
    # WHEN the prefix is pointed at another vault or replica, THEN the session is unknown
    for forged in (
        f"{other_vault}~{replica}~{secret}",
        f"{vault_id}~replica-b~{secret}",
        f"-~{replica}~{secret}",
        f"{vault_id}~{replica}",
        secret,
    ):
        r = caller.call("GET", "/api/sync/status", token=forged)
        assert (r.status, r.body["code"]) == (401, "unauthorized"), forged
    assert caller.call("GET", "/api/sync/status", token=token).status == 200
