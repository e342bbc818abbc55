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
from chalicelib.store import keys
from chalicelib.store.table import Item, Table, to_av
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
    sets = [
        "registeredAt = if_not_exists(registeredAt, :now)",
        "saltHex = :salt",
        "kdfAlgorithm = if_not_exists(kdfAlgorithm, :alg)",
        "kdfIterations = if_not_exists(kdfIterations, :it)",
    ]
    values: dict[str, Any] = {
        ":now": now,
        ":salt": req.saltHex,
        ":alg": KDF_ALGORITHM,
        ":it": iterations or MIN_KDF_ITERATIONS,
        ":key": principal.key_did,
    }
    if req.verifier is not None:
        sets.append("verifier = :verifier")
        values[":verifier"] = req.verifier
    if req.publicKeys is not None:
        sets.append("publicKeys = :pk")
        values[":pk"] = req.publicKeys
    # One conditional write decides: a first registration, or the same salt (and kdf when
    # given) again. The keyDid check stops a write racing with a rotation.
    condition = "keyDid = :key AND (attribute_not_exists(saltHex) OR saltHex = :salt)"
    if iterations is not None:
        condition += " AND (attribute_not_exists(kdfIterations) OR kdfIterations = :it)"
    if not proven and req.verifier is not None:
        condition += " AND (attribute_not_exists(registeredAt) OR verifier = :verifier)"
    if not proven and req.publicKeys is not None:
        condition += " AND (attribute_not_exists(registeredAt) OR publicKeys = :pk)"
    sets_expr = "SET " + ", ".join(sets) + " REMOVE #ttl"
    # A vault's first registration ends the 24 h lifetime of what its key wrote before
    # (§3): the TTLs of the head, the key's pointer and the devices go in the same commit,
    # which also fails if that lifetime is over already (DynamoDB deletes expired rows late).
    condition += " AND (attribute_not_exists(#ttl) OR #ttl > :nows)"
    values[":nows"] = now // 1000
    txn = Transaction()
    txn.add(
        "meta",
        {
            "Update": {
                "Key": keys.meta_key(principal.vault_id),
                "UpdateExpression": sets_expr,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {k: to_av(v) for k, v in values.items()},
            }
        },
    )
    own_device_updated = False
    if not principal.registered:
        txn.add("key", _keep(keys.key_pk(principal.key_did), principal.vault_id, now))
        for replica_id in _devices_with_ttl(table, principal.vault_id)[:MAX_DEVICE_UPDATES]:
            own = replica_id == principal.replica_id
            own_device_updated = own_device_updated or own
            key = keys.device_key(principal.vault_id, replica_id)
            txn.add(f"device:{replica_id}", _keep(key, None, now, not_revoked=own))
    add_session_guards(txn, principal, head=False, caller_device=not own_device_updated)
    try:
        commit_guarded(table, txn)
    except Cancelled as cancelled:
        if "meta" in cancelled.failed:
            raise _conflict(table, principal, req) from cancelled
        if cancelled.failed:  # the key's pointer expired or moved, or a device went away
            raise ApiError(ErrorCode.UNAUTHORIZED, "The session ended; sign in again.") from (
                cancelled
            )
        raise unavailable() from cancelled
    if principal.registered:
        assert principal.meta is not None
        return int(principal.meta["registeredAt"]), False
    meta = table.get(keys.meta_key(principal.vault_id)) or {}
    registered_at = int(meta.get("registeredAt") or now)
    return registered_at, registered_at == now


MAX_DEVICE_UPDATES = 90  # leaves room in the 100-action transaction


def _devices_with_ttl(table: Table, vault_id: str) -> list[str]:
    rows = table.query_all(
        "pk = :pk AND begins_with(sk, :prefix)",
        {":pk": keys.vault_pk(vault_id), ":prefix": keys.device_sk("")},
    )
    now_s = now_ms() // 1000
    return [str(row["replicaId"]) for row in rows if "ttl" in row and int(row["ttl"]) > now_s]


def _keep(
    key: dict[str, dict[str, str]], vault_id: str | None, now: int, not_revoked: bool = False
) -> dict[str, Any]:
    """REMOVE ttl from a row, conditional on it being alive (and, for a pointer, ours)."""
    condition = "attribute_exists(pk) AND (attribute_not_exists(#ttl) OR #ttl > :nows)"
    values: dict[str, Any] = {":nows": to_av(now // 1000)}
    if vault_id is not None:
        condition += " AND vaultId = :v AND attribute_not_exists(retiredAt)"
        values[":v"] = to_av(vault_id)
    if not_revoked:
        condition += " AND attribute_not_exists(revokedAt)"
    return {
        "Update": {
            "Key": key,
            "UpdateExpression": "REMOVE #ttl",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": values,
        }
    }


def _conflict(table: Table, principal: Principal, req: RegisterRequest) -> ApiError:
    assert principal.vault_id is not None
    meta = table.get(keys.meta_key(principal.vault_id)) or {}
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
    meta = table.get(keys.meta_key(str(record["vaultId"])))
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
