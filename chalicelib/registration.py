"""Salt escrow (PROTOCOL.md §4): register, bootstrap, session salt."""

from __future__ import annotations

from typing import Any

from chalicelib.clock import now_ms
from chalicelib.entitlements import require_premium
from chalicelib.errors import ApiError, ErrorCode, unavailable
from chalicelib.identity import Principal, add_session_guards, commit_guarded
from chalicelib.settings import Settings
from chalicelib.shared.limits import KDF_ALGORITHM, MIN_KDF_ITERATIONS
from chalicelib.shared.models.vault import RegisterRequest
from chalicelib.store import device_rows, key_pointers, vault_heads
from chalicelib.store.table import Item, Table
from chalicelib.store.txn import Cancelled, Transaction
from chalicelib.vaults import is_registered, key_record

_NOT_FOUND = "No vault is registered for this Key DID."


def _retired() -> ApiError:
    return ApiError(
        ErrorCode.KEY_DID_RETIRED, "This Key DID was rotated away from and cannot register."
    )


def register(
    table: Table,
    settings: Settings,
    principal: Principal,
    req: RegisterRequest,
    proven: bool = False,
) -> tuple[int, bool]:
    """(registeredAt, created). First registration fixes salt and kdf; later ones must match.

    Without a proof (§3) a re-registration may only send the stored verifier/publicKeys
    again: the condition compares them, so a concurrent change is never reverted either.
    """
    if principal.vault_id is None:
        raise _retired()
    require_premium(principal.meta, settings)
    now = now_ms()
    iterations = req.kdf.iterations if req.kdf else None
    txn = Transaction()
    vault_heads.add_register(
        txn,
        principal.vault_id,
        key_did=principal.key_did,
        salt_hex=req.saltHex,
        kdf_algorithm=KDF_ALGORITHM,
        kdf_iterations=iterations or MIN_KDF_ITERATIONS,
        iterations_given=iterations is not None,
        verifier=req.verifier,
        public_keys=req.publicKeys,
        proven=proven,
        now=now,
    )
    # The first registration also ends the 24 h lifetime of the key's pointer and devices
    # (§3) in the same commit.
    own_device_updated = False
    if not principal.registered:
        key_pointers.add_keep(txn, principal.key_did, principal.vault_id, now)
        for replica_id in _devices_with_ttl(table, principal.vault_id)[:MAX_DEVICE_UPDATES]:
            own = replica_id == principal.replica_id
            own_device_updated = own_device_updated or own
            device_rows.add_keep(
                txn, f"device:{replica_id}", principal.vault_id, replica_id, now, not_revoked=own
            )
    add_session_guards(txn, principal, head=False, caller_device=not own_device_updated)
    try:
        commit_guarded(table, txn)
    except Cancelled as cancelled:
        if vault_heads.REGISTER in cancelled.failed:
            raise _conflict(table, principal, req) from cancelled
        if cancelled.failed:  # the key's pointer expired or moved, or a device went away
            raise ApiError(ErrorCode.UNAUTHORIZED, "The session ended; sign in again.") from (
                cancelled
            )
        raise unavailable() from cancelled
    if principal.registered:
        assert principal.meta is not None
        return int(principal.meta["registeredAt"]), False
    meta = vault_heads.get(table, principal.vault_id) or {}
    registered_at = int(meta.get("registeredAt") or now)
    return registered_at, registered_at == now


MAX_DEVICE_UPDATES = 90  # leaves room in the 100-action transaction


def _devices_with_ttl(table: Table, vault_id: str) -> list[str]:
    rows = device_rows.all_of(table, vault_id)
    now_s = now_ms() // 1000
    return [str(row["replicaId"]) for row in rows if "ttl" in row and int(row["ttl"]) > now_s]


def _conflict(table: Table, principal: Principal, req: RegisterRequest) -> ApiError:
    assert principal.vault_id is not None
    meta = vault_heads.get(table, principal.vault_id) or {}
    expired = "ttl" in meta and int(meta["ttl"]) <= now_ms() // 1000  # never registered, 24 h
    if meta.get("keyDid") != principal.key_did or expired:
        return ApiError(ErrorCode.UNAUTHORIZED, "The session ended; sign in again.")
    if meta.get("saltHex") not in (None, req.saltHex):
        return ApiError(ErrorCode.SALT_CONFLICT, "This vault is registered with another salt.")
    stored_it = meta.get("kdfIterations")
    if req.kdf is not None and stored_it is not None and int(stored_it) != req.kdf.iterations:
        return ApiError(
            ErrorCode.KDF_CONFLICT, "This vault is registered with other KDF parameters."
        )
    return ApiError(
        ErrorCode.PROOF_REQUIRED,
        "Changing the verifier or public keys needs a proof signed by the vault's key.",
    )


def bootstrap(table: Table, key_did: str) -> dict[str, Any]:
    """Public material a new device needs: salt, kdf, verifier, public keys."""
    record = key_record(table, key_did)
    if record is None or "retiredAt" in record:
        raise ApiError(ErrorCode.VAULT_NOT_FOUND, _NOT_FOUND)
    meta = vault_heads.get(table, str(record["vaultId"]))
    if not is_registered(meta) or meta is None or meta.get("keyDid") != key_did:
        raise ApiError(ErrorCode.VAULT_NOT_FOUND, _NOT_FOUND)
    return bootstrap_view(meta)


def bootstrap_view(meta: Item) -> dict[str, Any]:
    return {
        "keyDid": meta["keyDid"],
        "saltHex": meta["saltHex"],
        "verifier": meta.get("verifier"),
        "publicKeys": meta.get("publicKeys"),
        "kdf": {
            "algorithm": meta.get("kdfAlgorithm", KDF_ALGORITHM),
            "iterations": int(meta.get("kdfIterations", MIN_KDF_ITERATIONS)),
        },
    }


def session_salt(principal: Principal, key_did: str) -> dict[str, Any]:
    if key_did != principal.key_did:
        raise ApiError(ErrorCode.KEY_DID_MISMATCH, "The session belongs to another Key DID.")
    _, meta = principal.require_vault()
    return {"saltHex": meta["saltHex"], "verifier": meta.get("verifier")}
