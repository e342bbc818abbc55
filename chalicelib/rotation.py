"""Key rotation (PROTOCOL.md §7): the vault moves to a new Key DID in one transaction.

The vault's keyDid is only a pointer (`KEY#<keyDid>` → vaultId, see docs/ROTATION.md), so a
rotation copies nothing: it swaps META.keyDid, retires the old pointer and creates the new
one, atomically. Sessions of the old key end by themselves: authenticate() rejects a session
whose keyDid is not META.keyDid, and push commits are conditional on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.clock import now_ms
from chalicelib.errors import ApiError, ErrorCode, unavailable
from chalicelib.identity import Principal
from chalicelib.settings import Settings
from chalicelib.shared.didkey import parse_did_key
from chalicelib.shared.encoding import b64url_decode
from chalicelib.shared.limits import MIN_KDF_ITERATIONS
from chalicelib.shared.messages import rotate_message, verify
from chalicelib.shared.models.vault import RotateRequest
from chalicelib.store import key_pointers, vault_heads
from chalicelib.store.table import Item, Table
from chalicelib.store.txn import Cancelled, Transaction
from chalicelib.vaults import is_registered, key_record

MAX_ATTEMPTS = 3  # a lost race on the new key's pointer is re-read and decided again


def _session_ended() -> ApiError:
    return ApiError(ErrorCode.UNAUTHORIZED, "The session ended; sign in again.")


def _taken() -> ApiError:
    return ApiError(ErrorCode.KEY_DID_TAKEN, "That Key DID already has a vault.")


def _retired() -> ApiError:
    return ApiError(
        ErrorCode.KEY_DID_RETIRED, "A vault rotated away from that Key DID; it cannot be reused."
    )


def _kdf_conflict() -> ApiError:
    return ApiError(ErrorCode.KDF_CONFLICT, "KDF iterations can stay or go up, never down.")


@dataclass
class _Target:
    """What the new keyDid's pointer is now: absent, or an unregistered vault's (id)."""

    orphan_vault: str | None


def rotate(
    table: Table, settings: Settings, principal: Principal, req: RotateRequest
) -> tuple[str, int]:
    """Move the caller's vault to req.newKeyDid; (newKeyDid, rotatedAt)."""
    old = principal.key_did
    message = rotate_message(settings.public_api_url, old, req.newKeyDid)
    if not verify(parse_did_key(req.newKeyDid), message, b64url_decode(req.signature)):
        raise ApiError(
            ErrorCode.INVALID_SIGNATURE, "The rotation must be signed by the new Key DID."
        )
    vault_id, meta = principal.require_vault()
    if req.newKeyDid == old:
        raise _taken()
    for _ in range(MAX_ATTEMPTS):
        _check_kdf(meta, req)
        target = _target(table, vault_id, req.newKeyDid)
        now = now_ms()
        try:
            _transaction(vault_id, old, req, target, now).commit(table)
        except Cancelled as cancelled:
            meta = _after_cancel(table, vault_id, old, cancelled)
            continue  # the new key's pointer changed under us: decide again on fresh reads
        return req.newKeyDid, now
    raise unavailable()


def _check_kdf(meta: Item, req: RotateRequest) -> None:
    stored = int(meta.get("kdfIterations") or MIN_KDF_ITERATIONS)
    if req.kdf is not None and req.kdf.iterations < stored:
        raise _kdf_conflict()


def _target(table: Table, vault_id: str, new_key_did: str) -> _Target:
    """Classify the new keyDid (consistent reads): free, or pointing to a vault we may take."""
    record = key_record(table, new_key_did)
    if record is None:
        return _Target(None)
    if "retiredAt" in record:
        raise _retired()
    other = str(record["vaultId"])
    if other == vault_id:
        raise _taken()
    other_meta = vault_heads.get(table, other)
    if is_registered(other_meta):
        raise _taken()
    # The new key has signed in before (which allocates an empty vault) but never registered:
    # that empty vault is abandoned and the pointer re-aimed at ours.
    return _Target(other)


def _transaction(
    vault_id: str, old: str, req: RotateRequest, target: _Target, now: int
) -> Transaction:
    txn = Transaction()
    vault_heads.add_rotate(
        txn,
        vault_id,
        old_key=old,
        new_key=req.newKeyDid,
        now=now,
        verifier=req.verifier,
        public_keys=req.publicKeys,
        kdf_iterations=req.kdf.iterations if req.kdf is not None else None,
    )
    key_pointers.add_retire(txn, old, vault_id, now)
    key_pointers.add_point(txn, req.newKeyDid, vault_id, now, target.orphan_vault)
    if target.orphan_vault is not None:
        # Proves the abandoned vault is still unregistered, and ends the new key's existing
        # sessions on it, so none can register or push into a vault nothing points to.
        vault_heads.add_abandon(txn, target.orphan_vault, req.newKeyDid, vault_id)
    return txn


def _after_cancel(table: Table, vault_id: str, old: str, cancelled: Cancelled) -> Item:
    """Explain a cancelled rotation from fresh reads; return the head to try again with."""
    meta = vault_heads.get(table, vault_id)
    if meta is None or meta.get("keyDid") != old:
        raise _session_ended() from cancelled  # another rotation won: this session is over
    if not is_registered(meta):
        raise ApiError(
            ErrorCode.VAULT_NOT_FOUND, "No vault is registered for this Key DID."
        ) from cancelled
    if vault_heads.HEAD in cancelled.failed:
        return meta  # kdf raised concurrently: _check_kdf decides on the fresh head
    if key_pointers.RETIRED in cancelled.failed:
        raise _session_ended() from cancelled  # the old pointer is retired already
    return meta
