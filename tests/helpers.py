"""Test helpers: a device that signs in like a client (seeded Ed25519 key)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from nacl.signing import SigningKey

from chalicelib.shared.didkey import encode_did_key
from chalicelib.shared.encoding import b64url_encode
from chalicelib.shared.messages import confirm_message, rotate_message, session_message, sign

AUDIENCE = "https://sync.example.test"
SALT = "000102030405060708090a0b0c0d0e0f"


def seed_for(n: int) -> bytes:
    return bytes([n]) * 32


def did_for_seed(seed: bytes) -> str:
    return encode_did_key(bytes(SigningKey(seed).verify_key))


@dataclass
class Resp:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Caller:
    """Speaks the protocol through chalice.test.Client (functional) with JSON bodies."""

    client: Any

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | str | None = None,
    ) -> Resp:
        hdrs = {"Content-Type": "application/json"}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        hdrs.update(headers or {})
        payload: Any = raw if raw is not None else (json.dumps(body) if body is not None else b"")
        r = self.client.http.request(method, path, headers=hdrs, body=payload)
        text = r.body.decode() if isinstance(r.body, bytes) else r.body
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Resp(r.status_code, parsed, dict(r.headers))


@dataclass
class Device:
    """One replica of a vault whose key has the given seed."""

    caller: Caller
    seed: bytes
    replica_id: str = "replica-a"
    token: str | None = None
    audience: str = AUDIENCE
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key_did(self) -> str:
        return did_for_seed(self.seed)

    def challenge(self, key_did: str | None = None) -> str:
        r = self.caller.call("POST", "/api/auth/challenge", {"keyDid": key_did or self.key_did})
        assert r.status == 200, r.body
        return r.body["nonce"]

    def session_body(self, nonce_value: str, /, **overrides: Any) -> dict[str, Any]:
        msg = session_message(self.audience, self.key_did, self.replica_id, nonce_value)
        body = {
            "keyDid": self.key_did,
            "replicaId": self.replica_id,
            "nonce": nonce_value,
            "signature": b64url_encode(sign(self.seed, msg)),
        }
        body.update(overrides)
        return body

    def sign_in(self, device_name: str | None = None) -> str:
        body = self.session_body(self.challenge())
        if device_name is not None:
            body["deviceName"] = device_name
        r = self.caller.call("POST", "/api/auth/session", body)
        assert r.status == 200, r.body
        self.token = r.body["token"]
        return self.token

    def proof(self, action: str, target: str) -> dict[str, str]:
        """§3 proof by this device's key over a fresh nonce, as the reference client signs it."""
        nonce = self.challenge()
        msg = confirm_message(self.audience, self.key_did, action, target, nonce)
        return {"nonce": nonce, "signature": b64url_encode(sign(self.seed, msg))}

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Resp:
        # A revoke without a body gets the proof the reference client always sends; tests of
        # a missing or wrong proof send their own body (or go through Caller).
        parts = path.split("?")[0].split("/")
        if method == "POST" and body is None and len(parts) == 5 and parts[-1] == "revoke":
            if parts[2] == "devices" and self.token:
                body = {"proof": self.proof("revoke", parts[3])}
        return self.caller.call(method, path, body, token=self.token, **kw)

    def register(self, salt: str = SALT, **extra: Any) -> Resp:
        return self.call("POST", "/api/vault/register", {"saltHex": salt, **extra})

    def rotate_body(self, new_seed: bytes, **extra: Any) -> dict[str, Any]:
        """A rotate body signed by the new key, with the old key's proof (§7)."""
        new_did = did_for_seed(new_seed)
        sig = sign(new_seed, rotate_message(self.audience, self.key_did, new_did))
        body = {"newKeyDid": new_did, "signature": b64url_encode(sig)}
        if "proof" not in extra:
            body["proof"] = self.proof("rotate", new_did)  # type: ignore[assignment]
        return {**body, **extra}
