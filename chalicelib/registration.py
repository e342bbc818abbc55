"""Salt escrow (PROTOCOL.md §4): register, bootstrap, session salt."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import now_ms
from chalicelib.entitlements import require_premium
from chalicelib.errors import ApiError, ErrorCode
from chalicelib.identity import Principal
from chalicelib.settings import Settings
from chalicelib.shared.limits import KDF_ALGORITHM, MIN_KDF_ITERATIONS
from chalicelib.shared.models.vault import RegisterRequest
from chalicelib.store import keys
from chalicelib.store.table import Item, Table, condition_failed
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
    try:
        old = (
            table.update(
                keys.meta_key(principal.vault_id),
                "SET " + ", ".join(sets),
                condition=condition,
                values=values,
                returns="ALL_OLD",
            )
            or {}
        )
    except ClientError as exc:
        if not condition_failed(exc):
            raise
        raise _conflict(table, principal, req) from exc
    if is_registered(old):
        return int(old["registeredAt"]), False
    return now, True


def _conflict(table: Table, principal: Principal, req: RegisterRequest) -> ApiError:
    assert principal.vault_id is not None
    meta = table.get(keys.meta_key(principal.vault_id)) or {}
    if meta.get("keyDid") != principal.key_did:
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
