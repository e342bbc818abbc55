"""Enrolled devices (PROTOCOL.md §7): list, rename, revoke.

Enrolment happens when a session is opened (identity.open_session); the cut-off of a
revoked replica happens in identity.authenticate, which reads the device row consistently
on every request. This module only changes device rows.
"""

from __future__ import annotations

from typing import Any

from chalicelib.clock import now_ms
from chalicelib.errors import ApiError, ErrorCode, unavailable
from chalicelib.identity import Principal, add_session_guards, commit_guarded
from chalicelib.shared.encoding import EncodingError, b64url_decode, b64url_encode
from chalicelib.shared.limits import DEVICE_PAGE
from chalicelib.store import device_rows, vault_heads
from chalicelib.store.table import Item, Table
from chalicelib.store.txn import Cancelled, Transaction


def _not_found() -> ApiError:
    return ApiError(ErrorCode.DEVICE_NOT_FOUND, "This vault has no device with that replicaId.")


def device_view(row: Item, principal: Principal) -> dict[str, Any]:
    """A device row as §7 shows it; `current` marks the caller's own replica."""
    return {
        "replicaId": row["replicaId"],
        "name": row.get("name"),
        "enrolledAt": int(row["enrolledAt"]),
        "lastSeenAt": int(row.get("lastSeenAt") or row["enrolledAt"]),
        "revokedAt": int(row["revokedAt"]) if "revokedAt" in row else None,
        "current": row["replicaId"] == principal.replica_id,
    }


def list_devices(
    table: Table, principal: Principal, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the vault's devices, revoked ones included, ordered by enrolledAt (§7).

    Device rows are keyed by replicaId, so the page is cut from one Query of them all,
    sorted: a vault has at most 100 active devices, and revoked ones are rare. The cursor
    is the last device's (enrolledAt, replicaId), opaque to clients.
    """
    after = _decode_cursor(cursor)
    if principal.vault_id is None:
        return [], None  # a retired key's session owns no vault, hence no devices
    ordered = sorted(device_rows.all_of(table, principal.vault_id), key=_order)
    if after is not None:
        ordered = [row for row in ordered if _order(row) > after]
    page = ordered[:DEVICE_PAGE]
    more = len(ordered) > DEVICE_PAGE
    next_cursor = _encode_cursor(_order(page[-1])) if more else None
    return [device_view(row, principal) for row in page], next_cursor


def _order(row: Item) -> tuple[int, str]:
    return int(row["enrolledAt"]), str(row["replicaId"])


def _encode_cursor(position: tuple[int, str]) -> str:
    return b64url_encode(f"{position[0]}:{position[1]}".encode())


def _decode_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:  # absent or empty (`?cursor=`): the first page
        return None
    try:
        enrolled, replica = b64url_decode(cursor).decode("utf-8").split(":", 1)
        return int(enrolled), replica
    except (EncodingError, UnicodeDecodeError, ValueError) as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, "The cursor is not valid.") from exc


def rename(table: Table, principal: Principal, replica_id: str, name: str) -> dict[str, Any]:
    """Set a device's name, stored exactly as given; decided with the session check (§3)."""
    if principal.vault_id is None:
        raise _not_found()
    own = replica_id == principal.replica_id
    txn = Transaction()
    add_session_guards(txn, principal, caller_device=not own)
    device_rows.add_rename(txn, principal.vault_id, replica_id, name, not_revoked=own)
    try:
        commit_guarded(table, txn)
    except Cancelled as cancelled:
        if device_rows.DEVICE not in cancelled.failed:
            raise unavailable() from cancelled  # a conflicting transaction: safe to retry
        row = device_rows.get(table, principal.vault_id, replica_id)
        if row is not None and own:
            raise ApiError(ErrorCode.SESSION_REVOKED, "This device was revoked.") from cancelled
        raise _not_found() from cancelled
    row = device_rows.get(table, principal.vault_id, replica_id)
    assert row is not None
    return device_view(row, principal)


def revoke(table: Table, principal: Principal, replica_id: str) -> dict[str, Any]:
    """Revoke a replica once: its sessions stop at their next request; idempotent.

    The device's revokedAt, the vault's device count and the session check are one commit:
    `devices` in status stays exact, only the first revoke counts, and a revoke whose own
    session ended meanwhile changes nothing (§3).
    """
    if principal.vault_id is None:
        raise _not_found()
    vault_id = principal.vault_id
    own = replica_id == principal.replica_id
    txn = Transaction()
    add_session_guards(txn, principal, head=False, caller_device=not own)
    device_rows.add_revoke(txn, vault_id, replica_id, now_ms())
    vault_heads.add_device_revoked(txn, vault_id, principal.key_did)
    try:
        commit_guarded(table, txn)
    except Cancelled as cancelled:
        if device_rows.DEVICE not in cancelled.failed:
            raise unavailable() from cancelled  # a conflicting transaction: safe to retry
        # Unknown, or revoked already: a consistent read tells which (rows are never deleted).
        row = device_rows.get(table, vault_id, replica_id)
        if row is None:
            raise _not_found() from cancelled
        return device_view(row, principal)
    row = device_rows.get(table, vault_id, replica_id)
    assert row is not None
    return device_view(row, principal)
