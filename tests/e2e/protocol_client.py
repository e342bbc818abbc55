"""A minimal protocol speaker over real HTTP for end-to-end tests (not the reference client)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from nacl.signing import SigningKey

from chalicelib.shared.didkey import encode_did_key
from chalicelib.shared.encoding import b64url_encode
from chalicelib.shared.messages import confirm_message, rotate_message, session_message, sign


@dataclass
class HttpDevice:
    base: str
    seed: bytes
    replica_id: str
    token: str | None = None

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base, timeout=30)

    @classmethod
    def new(cls, base: str, replica_id: str = "r1", seed: bytes | None = None) -> HttpDevice:
        return cls(base, seed or secrets.token_bytes(32), replica_id)

    @property
    def key_did(self) -> str:
        return encode_did_key(bytes(SigningKey(self.seed).verify_key))

    def session_body(self, nonce: str) -> dict[str, Any]:
        msg = session_message(self.base, self.key_did, self.replica_id, nonce)
        return {
            "keyDid": self.key_did,
            "replicaId": self.replica_id,
            "nonce": nonce,
            "signature": b64url_encode(sign(self.seed, msg)),
        }

    def challenge(self) -> str:
        r = self.http.post("/api/auth/challenge", json={"keyDid": self.key_did})
        r.raise_for_status()
        return str(r.json()["nonce"])

    def sign_in(self, name: str | None = None) -> str:
        body = self.session_body(self.challenge())
        if name:
            body["deviceName"] = name
        r = self.http.post("/api/auth/session", json=body)
        assert r.status_code == 200, r.text
        self.token = str(r.json()["token"])
        return self.token

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.http.request(method, path, headers=headers, **kw)

    def register(self, salt: str = "00" * 16) -> httpx.Response:
        return self.call("POST", "/api/vault/register", json={"saltHex": salt})

    def push(self, items: list[dict[str, Any]], batch_id: str | None = None) -> httpx.Response:
        return self.call(
            "POST",
            "/api/sync/push",
            json={"batchId": batch_id or secrets.token_hex(8), "items": items},
        )

    def pull(self, since: int = 0, limit: int = 200) -> httpx.Response:
        return self.call("GET", f"/api/sync/pull?since={since}&limit={limit}")

    def proof(self, action: str, target: str) -> dict[str, str]:
        """§3 proof by this device's key over a fresh nonce."""
        nonce = self.challenge()
        msg = confirm_message(self.base, self.key_did, action, target, nonce)
        return {"nonce": nonce, "signature": b64url_encode(sign(self.seed, msg))}

    def revoke(self, replica_id: str) -> httpx.Response:
        body = {"proof": self.proof("revoke", replica_id)}
        return self.call("POST", f"/api/devices/{replica_id}/revoke", json=body)

    def rotate_body(self, new_seed: bytes) -> dict[str, Any]:
        """Signed by the new key, with the old key's proof (§7)."""
        new_did = encode_did_key(bytes(SigningKey(new_seed).verify_key))
        sig = sign(new_seed, rotate_message(self.base, self.key_did, new_did))
        proof = self.proof("rotate", new_did)
        return {"newKeyDid": new_did, "signature": b64url_encode(sig), "proof": proof}
