"""Key DID challenge–response, sessions and per-request authentication (PROTOCOL.md §3)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from chalicelib import live
from chalicelib.clock import now_ms
from chalicelib.errors import ApiError, ErrorCode, unavailable
from chalicelib.settings import Settings, get_settings
from chalicelib.shared.didkey import parse_did_key
from chalicelib.shared.encoding import EncodingError, b64url_decode, b64url_encode
from chalicelib.shared.limits import (
    MAX_ACTIVE_DEVICES,
    MAX_OUTSTANDING_NONCES,
    MAX_SESSIONS_PER_REPLICA,
    NONCE_TTL_MS,
    SESSION_TTL_MS,
)
from chalicelib.shared.messages import confirm_message, session_message, verify
from chalicelib.shared.models.identity import Proof, SessionRequest
from chalicelib.store import device_rows, key_pointers, session_rows, vault_heads
from chalicelib.store.challenges import Challenges
from chalicelib.store.table import Item, Table
from chalicelib.store.txn import Cancelled, Transaction
from chalicelib.vaults import is_registered, unregistered_ttl, vault_id_for

LAST_SEEN_EVERY_MS = 60_000
# Rows linger past expiry so an old token reads "expired", not unknown, but none of them
# outlives 24 h from its creation (a session lives 1 h, a nonce 120 s; v1.2 §3).
TTL_GRACE_S = 23 * 3600
MAX_SLOT_ATTEMPTS = 5


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
    """A single-use 32-byte nonce bound to key_did, valid 120 s; ≤ 10 outstanding (§3)."""
    challenges = Challenges(table)
    for _attempt in range(MAX_SLOT_ATTEMPTS):
        now = now_ms()
        live = {
            int(row["slot"]): int(row["expiresAt"])
            for row in challenges.outstanding(key_did)
            if int(row["expiresAt"]) > now
        }
        free = next((i for i in range(MAX_OUTSTANDING_NONCES) if i not in live), None)
        if free is None:
            wait_s = max(1, -(-(min(live.values()) - now) // 1000))
            raise ApiError(
                ErrorCode.RATE_LIMITED,
                f"{MAX_OUTSTANDING_NONCES} challenges are outstanding for this Key DID; "
                "use one or wait until the oldest expires.",
                {"Retry-After": str(wait_s)},
            )
        nonce = b64url_encode(secrets.token_bytes(32))
        expires_at = now + NONCE_TTL_MS
        if challenges.claim(key_did, free, nonce, expires_at, now, _ttl(expires_at)):
            return nonce, expires_at
    raise unavailable()


def _spend_signed_nonce(
    table: Table, key_did: str, nonce: str, message: bytes, signature: str
) -> None:
    """Consume a challenge of key_did, then check that `signature` over `message` verifies.

    Consuming first makes the nonce single-use under any concurrency: exactly one
    DeleteItem gets the old row back. A failed attempt has consumed it too.
    """
    challenge = Challenges(table).spend(nonce)
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


class _Again(Exception):
    """Something moved between our reads and the commit: decide again on fresh reads."""


def open_session(table: Table, settings: Settings, req: SessionRequest) -> tuple[str, int]:
    """Verify the signed challenge and open a 1-hour session; enrol an unknown replica."""
    message = session_message(settings.public_api_url, req.keyDid, req.replicaId, req.nonce)
    _spend_signed_nonce(table, req.keyDid, req.nonce, message, req.signature)
    for _attempt in range(MAX_SLOT_ATTEMPTS):
        try:
            return _open(table, req)
        except _Again:
            continue
    raise unavailable()


def _revoked_device() -> ApiError:
    return ApiError(ErrorCode.DEVICE_REVOKED, "This device was revoked and cannot sign in again.")


def _open(table: Table, req: SessionRequest) -> tuple[str, int]:
    """One attempt: the session, its slot (ending the oldest of 10) and, for a new replica,
    the enrolment are one transaction, conditional on the vault still answering to this key
    (a rotation committing meanwhile never gets a device enrolled into the rotated vault)."""
    now = now_ms()
    vault_id, retired = vault_id_for(table, req.keyDid, allocate=True)
    if retired:
        vault_id = None  # a retired key may sign in, but owns no vault any more
    token = make_token(vault_id, req.replicaId)
    token_hash = hash_token(token)
    expires_at = now + SESSION_TTL_MS
    txn = Transaction()
    slot = _claim_session_slot(table, txn, req, token_hash, now, expires_at)
    session_rows.add_session(
        txn,
        token_hash,
        {
            "keyDid": req.keyDid,
            "replicaId": req.replicaId,
            "vaultId": vault_id,
            "slot": slot,
            "createdAt": now,
            "expiresAt": expires_at,
            "ttl": _ttl(expires_at),
        },
    )
    enrolled = False
    if vault_id is not None:
        device = device_rows.get(table, vault_id, req.replicaId)
        if device is not None and "revokedAt" in device:
            raise _revoked_device()
        if device is None:
            meta = vault_heads.get(table, vault_id)
            _enrol(txn, vault_id, req, now, registered=is_registered(meta))
            enrolled = is_registered(meta)  # an unregistered vault has no live connections
    try:
        txn.commit(table)
    except Cancelled as cancelled:
        if vault_heads.HEAD in cancelled.failed and vault_id is not None:
            meta = vault_heads.get(table, vault_id) or {}
            if meta.get("keyDid") == req.keyDid and int(meta.get("nDevices") or 0) >= (
                MAX_ACTIVE_DEVICES
            ):
                raise ApiError(
                    ErrorCode.DEVICE_LIMIT,
                    f"This vault has {MAX_ACTIVE_DEVICES} active devices; revoke one first.",
                ) from cancelled
        raise _Again from cancelled  # the key moved, a slot or the replica was taken: again
    if enrolled and vault_id is not None:
        live.notify_devices(table, get_settings(), vault_id)
    return token, expires_at


def _enrol(
    txn: Transaction, vault_id: str, req: SessionRequest, now: int, *, registered: bool
) -> None:
    # Before registration the row expires with the vault's (§3: 24 h); registration keeps it.
    ttl = None if registered else unregistered_ttl(now)
    device_rows.add_enrol(txn, vault_id, req.replicaId, req.deviceName, now, ttl)
    vault_heads.add_device_enrolled(txn, vault_id, req.keyDid, MAX_ACTIVE_DEVICES)


def _claim_session_slot(
    table: Table,
    txn: Transaction,
    req: SessionRequest,
    token_hash: str,
    now: int,
    expires_at: int,
) -> int:
    """Add to txn: take a free slot of this replica's 10, or end the oldest live session."""
    by_slot = session_rows.slots(table, req.keyDid, req.replicaId)
    free = [
        i
        for i in range(MAX_SESSIONS_PER_REPLICA)
        if i not in by_slot or int(by_slot[i]["expiresAt"]) <= now
    ]
    if free:
        slot = free[0]
    else:
        slot = min(by_slot, key=lambda i: (int(by_slot[i]["createdAt"]), i))
        session_rows.add_end(txn, str(by_slot[slot]["tokenHash"]))
    fields = {"tokenHash": token_hash, "createdAt": now, "expiresAt": expires_at}
    fields["ttl"] = _ttl(expires_at)
    replaces = str(by_slot[slot]["tokenHash"]) if slot in by_slot else None
    session_rows.add_slot(txn, req.keyDid, req.replicaId, slot, fields, replaces)
    return slot


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
    session, meta, device = session_rows.read_for_token(table, token_hash, vault_id, replica_id)
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
    principal.meta, principal.device = meta, device
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
    device_rows.touch(table, vault_id, replica_id, fields)


def end_session(table: Table, principal: Principal) -> None:
    """The token stops working at once; its slot is freed (unless a newer session took it)."""
    session_rows.end(table, principal.token_hash, principal.key_did, principal.replica_id)


# -- auth and write in one atomic step (§3) -------------------------------------------------
def add_session_guards(
    txn: Transaction, principal: Principal, *, head: bool = True, caller_device: bool = True
) -> None:
    """Add to a write's transaction the checks authenticate() made, so that they and the
    write are decided together: the session still exists and is unexpired (`session`), the
    vault still answers to its key (`head`), its device is not revoked (`caller`).

    Leave out `head` / `caller_device` where the transaction writes that row itself, and put
    the same condition on that action (DynamoDB allows one action per item).
    """
    session_rows.add_live_check(txn, principal.token_hash, now_ms())
    if principal.vault_id is None:
        return
    if head:
        vault_heads.add_key_check(txn, principal.vault_id, principal.key_did)
    if caller_device:
        device_rows.add_not_revoked_check(txn, principal.vault_id, principal.replica_id)


def session_ended(cancelled: Cancelled) -> ApiError | None:
    """The 401 for a write whose session ended while it was in flight, if that is why."""
    if "caller" in cancelled.failed:
        return ApiError(ErrorCode.SESSION_REVOKED, "This device was revoked.")
    if cancelled.failed & {"session", "head", "pointer"}:
        return ApiError(ErrorCode.UNAUTHORIZED, "The session ended; sign in again.")
    return None


def commit_guarded(table: Table, txn: Transaction) -> None:
    """Commit a transaction that carries add_session_guards' checks: a failed guard is raised
    as the 401 it stands for, any other cancellation as Cancelled."""
    try:
        txn.commit(table)
    except Cancelled as cancelled:
        ended = session_ended(cancelled)
        if ended is not None:
            raise ended from cancelled
        raise


def commit_with_session(table: Table, principal: Principal, txn: Transaction) -> None:
    """Commit `txn` with the session's checks added (§3: auth and write are one step); for
    transactions that may write the head themselves, so the "vault still answers to this
    key" check is made on the key's pointer (a rotation retires it in its commit).

    A failed guard is raised as the 401 it stands for, any other cancellation as Cancelled.
    """
    add_session_guards(txn, principal, head=False)
    if principal.vault_id is not None and key_pointers.POINTER not in txn.names:
        key_pointers.add_current_check(txn, principal.key_did, principal.vault_id)
    commit_guarded(table, txn)
