"""Key DID challenge–response, sessions and per-request authentication (PROTOCOL.md §3)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import now_ms
from chalicelib.errors import ApiError, ErrorCode
from chalicelib.settings import Settings
from chalicelib.shared.didkey import parse_did_key
from chalicelib.shared.encoding import EncodingError, b64url_decode, b64url_encode
from chalicelib.shared.limits import NONCE_TTL_MS, SESSION_TTL_MS
from chalicelib.shared.messages import confirm_message, session_message, verify
from chalicelib.shared.models.identity import Proof, SessionRequest
from chalicelib.store import keys
from chalicelib.store.table import Item, Table, condition_failed, to_av, to_item
from chalicelib.vaults import is_registered, unkey, vault_id_for

LAST_SEEN_EVERY_MS = 60_000
TTL_GRACE_S = 86_400  # rows linger a day past expiry so an old token reads "expired", not unknown


def hash_token(token: str) -> str:
    """Sessions are stored under the SHA-256 of their token, never the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _ttl(expires_at_ms: int) -> int:
    return expires_at_ms // 1000 + TTL_GRACE_S


@dataclass
class Principal:
    """Who is calling: the session's key and replica, and the vault rows read for it."""

    token_hash: str
    key_did: str
    replica_id: str
    vault_id: str | None
    meta: Item | None
    device: Item | None

    @property
    def registered(self) -> bool:
        return is_registered(self.meta)

    def require_vault(self) -> tuple[str, Item]:
        """The registered vault of this session, else 404 vault_not_found."""
        if self.vault_id is None or self.meta is None or not self.registered:
            raise ApiError(ErrorCode.VAULT_NOT_FOUND, "No vault is registered for this Key DID.")
        return self.vault_id, self.meta


def create_challenge(table: Table, key_did: str) -> tuple[str, int]:
    """A single-use 32-byte nonce bound to key_did, valid 120 s."""
    nonce = b64url_encode(secrets.token_bytes(32))
    expires_at = now_ms() + NONCE_TTL_MS
    table.put(
        {
            **unkey(keys.nonce_key(nonce)),
            "keyDid": key_did,
            "expiresAt": expires_at,
            "ttl": _ttl(expires_at),
        },
        condition="attribute_not_exists(pk)",
    )
    return nonce, expires_at


def _spend_signed_nonce(
    table: Table, key_did: str, nonce: str, message: bytes, signature: str
) -> None:
    """Consume a challenge of key_did, then check that `signature` over `message` verifies.

    Consuming first makes the nonce single-use under any concurrency: exactly one DeleteItem
    gets the old row back. A failed attempt has consumed it too.
    """
    challenge = table.delete(keys.nonce_key(nonce), return_old=True)
    if challenge is None or challenge.get("keyDid") != key_did:
        raise ApiError(
            ErrorCode.CHALLENGE_INVALID, "The challenge is unknown, used, or for another key."
        )
    if int(challenge["expiresAt"]) <= now_ms():
        raise ApiError(ErrorCode.CHALLENGE_EXPIRED, "The challenge expired; ask for a new one.")
    if not verify(parse_did_key(key_did), message, b64url_decode(signature)):
        raise ApiError(
            ErrorCode.INVALID_SIGNATURE, "The signature does not verify for this Key DID."
        )


def check_proof(
    table: Table, settings: Settings, principal: Principal, action: str, target: str, proof: Proof
) -> None:
    """§3: the caller holds the session's key right now (a stolen token alone is not enough).

    Checked right after validation and authentication, before any state is looked at; the
    nonce is spent whatever the outcome.
    """
    message = confirm_message(
        settings.public_api_url, principal.key_did, action, target, proof.nonce
    )
    _spend_signed_nonce(table, principal.key_did, proof.nonce, message, proof.signature)


def open_session(table: Table, settings: Settings, req: SessionRequest) -> tuple[str, int]:
    """Verify the signed challenge and open a 1-hour session; enrol an unknown replica."""
    message = session_message(settings.public_api_url, req.keyDid, req.replicaId, req.nonce)
    _spend_signed_nonce(table, req.keyDid, req.nonce, message, req.signature)
    now = now_ms()

    vault_id, retired = vault_id_for(table, req.keyDid, allocate=True)
    if retired:
        vault_id = None  # a retired key may sign in, but owns no vault any more
    token = make_token(vault_id, req.replicaId)
    expires_at = now + SESSION_TTL_MS
    session: dict[str, Any] = {
        **unkey(keys.session_key(hash_token(token))),
        "keyDid": req.keyDid,
        "replicaId": req.replicaId,
        "vaultId": vault_id,
        "createdAt": now,
        "expiresAt": expires_at,
        "ttl": _ttl(expires_at),
    }
    put_session = {
        "Put": {"Item": to_item(session), "ConditionExpression": "attribute_not_exists(pk)"}
    }
    if vault_id is None:
        table.transact([put_session])
        return token, expires_at

    device = table.get(keys.device_key(vault_id, req.replicaId))
    if device is not None and "revokedAt" in device:
        raise ApiError(
            ErrorCode.DEVICE_REVOKED, "This device was revoked and cannot sign in again."
        )
    if device is not None:
        table.transact([put_session])
        return token, expires_at
    enrol = {
        **unkey(keys.device_key(vault_id, req.replicaId)),
        "replicaId": req.replicaId,
        "name": req.deviceName,
        "enrolledAt": now,
        "lastSeenAt": now,
    }
    try:
        table.transact(
            [
                put_session,
                {
                    "Put": {
                        "Item": to_item(enrol),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "Key": keys.meta_key(vault_id),
                        "UpdateExpression": "ADD nDevices :one",
                        "ExpressionAttributeValues": {":one": to_av(1)},
                    }
                },
            ]
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        # Another session enrolled this replica at the same moment: it is known now.
        again = table.get(keys.device_key(vault_id, req.replicaId))
        if again is None:
            raise
        if "revokedAt" in again:
            raise ApiError(
                ErrorCode.DEVICE_REVOKED, "This device was revoked and cannot sign in again."
            ) from exc
        table.transact([put_session])
    return token, expires_at


TOKEN_SEPARATOR = "~"  # noqa: S105 - a separator, not a secret
_VAULT_ID = re.compile(r"^[0-9a-f]{32}\Z")
_REPLICA_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
NO_VAULT = "-"


def make_token(vault_id: str | None, replica_id: str) -> str:
    """`<vaultId>~<replicaId>~<256 random bits>`: the prefix routes, the secret authenticates.

    The prefix lets one BatchGetItem fetch the session, the vault head and the device row
    together; the session is stored under the hash of the whole token, so a prefix cannot be
    altered without losing the session.
    """
    secret = b64url_encode(secrets.token_bytes(32))
    return TOKEN_SEPARATOR.join((vault_id or NO_VAULT, replica_id, secret))


def _parse_token(token: str) -> tuple[str | None, str] | None:
    parts = token.split(TOKEN_SEPARATOR)
    if len(parts) != 3:
        return None
    vault_part, replica_id, secret = parts
    if vault_part != NO_VAULT and not _VAULT_ID.match(vault_part):
        return None
    if not _REPLICA_ID.match(replica_id):
        return None
    try:
        if len(b64url_decode(secret)) != 32:
            return None
    except EncodingError:
        return None
    return (None if vault_part == NO_VAULT else vault_part), replica_id


def authenticate(table: Table, token: str) -> Principal:
    """Resolve a bearer token with one strongly consistent BatchGetItem (session, head, device)."""
    parsed = _parse_token(token)
    if parsed is None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "The session token is not valid.")
    vault_id, replica_id = parsed
    token_hash = hash_token(token)
    wanted = [keys.session_key(token_hash)]
    if vault_id is not None:
        wanted += [keys.meta_key(vault_id), keys.device_key(vault_id, replica_id)]
    rows = table.batch_get(wanted)
    by_sk = {row["sk"]: row for row in rows}
    session = by_sk.get("SESSION")
    if session is None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "The session token is not valid.")
    now = now_ms()
    if int(session["expiresAt"]) <= now:
        raise ApiError(ErrorCode.SESSION_EXPIRED, "The session expired; sign in again.")
    if session.get("vaultId") != vault_id or session.get("replicaId") != replica_id:
        raise ApiError(ErrorCode.UNAUTHORIZED, "The session token is not valid.")
    principal = Principal(token_hash, session["keyDid"], replica_id, vault_id, None, None)
    if vault_id is None:
        return principal
    principal.meta = by_sk.get(keys.META_SK)
    principal.device = by_sk.get(keys.device_sk(replica_id))
    meta, device = principal.meta, principal.device
    if meta is None or meta.get("keyDid") != principal.key_did or device is None:
        # The vault moved to another key (rotation) or was deleted: this session ended.
        raise ApiError(ErrorCode.UNAUTHORIZED, "The session ended; sign in again.")
    if "revokedAt" in device:
        raise ApiError(ErrorCode.SESSION_REVOKED, "This device was revoked.")
    if now - int(device.get("lastSeenAt") or 0) >= LAST_SEEN_EVERY_MS:
        touch_device(table, vault_id, principal.replica_id, {"lastSeenAt": now})
        device["lastSeenAt"] = now
    return principal


def touch_device(table: Table, vault_id: str, replica_id: str, fields: dict[str, int]) -> None:
    """Refresh device timestamps (best effort: a revoked or deleted device is left alone)."""
    names = {f"#{k}": k for k in fields}
    values = {f":{k}": v for k, v in fields.items()}
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in fields)
    try:
        table.update(
            keys.device_key(vault_id, replica_id),
            expression,
            condition="attribute_exists(pk) AND attribute_not_exists(revokedAt)",
            names=names,
            values=values,
        )
    except ClientError as exc:
        if not condition_failed(exc):
            raise


def end_session(table: Table, token_hash: str) -> None:
    table.delete(keys.session_key(token_hash))
