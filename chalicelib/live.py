"""Live change notifications (PROTOCOL.md §10): tickets, connections, and the fan-out.

Frames are hints: no ciphertext, no item id. The fan-out runs in the Lambda that made the
change, after its commit: one Query of the vault's connection rows, one management-API post
per connection. It never fails the request that triggered it: every error is logged and
dropped (a client always pulls to learn what changed), and a connection found gone is
deleted. See docs/TABLE_DESIGN.md for its cost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from typing import Any

from chalicelib.clock import now_ms
from chalicelib.settings import Settings
from chalicelib.shared.encoding import b64url_encode
from chalicelib.shared.models.live import (
    CHANGED,
    CONNECTION_LIFETIME_S,
    DEVICES,
    ENDED,
    PING,
    PONG,
    TICKET_TTL_MS,
    EndReason,
)
from chalicelib.store import live_rows
from chalicelib.store.table import Item, Table

log = logging.getLogger("nt2-sync.live")

# Tests put a fake management client here (it records what would be sent).
management_override: Any = None


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8")).hexdigest()


def open_ticket(
    table: Table, settings: Settings, vault_id: str, key_did: str, replica_id: str
) -> tuple[str, str, int]:
    """(url, ticket, expiresAt): 32 random bytes, stored hashed, valid 30 s, single use."""
    ticket = b64url_encode(secrets.token_bytes(32))
    expires_at = now_ms() + TICKET_TTL_MS
    fields = {
        "vaultId": vault_id,
        "replicaId": replica_id,
        "keyDid": key_did,
        "expiresAt": expires_at,
        "ttl": expires_at // 1000 + 60,  # TTL deletes lag; expiresAt decides
    }
    live_rows.put_ticket(table, _hash(ticket), fields)
    return settings.live_ws_url, ticket, expires_at


def connect(table: Table, connection_id: str, ticket: str | None) -> bool:
    """$connect: consume the ticket and record the connection; False refuses the handshake.

    Refused when the ticket is unknown, used or expired, and when since it was issued the
    device was revoked or the vault rotated (the ended frames were sent before this row).
    """
    if not ticket or len(ticket) > 64:
        return False
    row = live_rows.spend_ticket(table, _hash(ticket))
    now = now_ms()
    if row is None or int(row["expiresAt"]) <= now:
        return False
    vault_id, replica_id = str(row["vaultId"]), str(row["replicaId"])
    meta, device = live_rows.vault_state(table, vault_id, replica_id)
    if meta is None or meta.get("keyDid") != row["keyDid"]:
        return False
    if device is None or "revokedAt" in device:
        return False
    ttl = now // 1000 + CONNECTION_LIFETIME_S
    live_rows.add_connection(table, vault_id, connection_id, replica_id, now, ttl)
    return True


def disconnect(table: Table, connection_id: str) -> None:
    """$disconnect: forget the connection."""
    live_rows.drop_connection_by_id(table, connection_id)


def message(settings: Settings, connection_id: str, body: str | None) -> None:
    """$default: a ping is answered with a pong; anything else closes the connection."""
    try:
        frame = json.loads(body or "")
    except ValueError:
        frame = None
    management = _management(settings)
    if management is None:
        return
    try:
        if isinstance(frame, dict) and frame.get("type") == PING:
            live_rows.post(management, connection_id, _encode({"type": PONG}))
        else:
            live_rows.close(management, connection_id)
    except (live_rows.Gone, live_rows.PostFailed):
        pass  # the client sees no pong and reconnects


def notify_changed(
    table: Table, settings: Settings, vault_id: str, watermark: int, replica_id: str
) -> None:
    """After a push that accepted a write: `changed` to every connection of the vault."""
    frame = {"type": CHANGED, "watermark": watermark, "replicaId": replica_id}
    _fan_out(table, settings, vault_id, lambda _row: frame)


def notify_devices(table: Table, settings: Settings, vault_id: str) -> None:
    """After an enrol or a rename: `devices` to every connection of the vault."""
    _fan_out(table, settings, vault_id, lambda _row: {"type": DEVICES})


def device_revoked(table: Table, settings: Settings, vault_id: str, replica_id: str) -> None:
    """After a revoke: `ended` to that replica's connections (then closed), `devices` to
    the others; one Query for both."""
    ended = {"type": ENDED, "reason": "revoked"}

    def frame(row: Item) -> dict[str, Any]:
        return ended if row["replicaId"] == replica_id else {"type": DEVICES}

    _fan_out(table, settings, vault_id, frame, close=lambda row: row["replicaId"] == replica_id)


def end_connections(
    table: Table,
    settings: Settings,
    vault_id: str,
    reason: EndReason,
    replica_id: str | None = None,
) -> None:
    """`ended` to the vault's connections (only `replica_id`'s when given), then close them."""

    def mine(row: Item) -> bool:
        return replica_id is None or row["replicaId"] == replica_id

    frame = {"type": ENDED, "reason": reason}
    _fan_out(table, settings, vault_id, lambda row: frame if mine(row) else None, close=mine)


def _encode(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":")).encode()


def _management(settings: Settings) -> Any:
    if management_override is not None:
        return management_override
    if settings.live_management_url is None:
        return None
    return live_rows.management_client(settings.live_management_url, settings.aws_region)


def _fan_out(
    table: Table,
    settings: Settings,
    vault_id: str,
    frame_for: Any,
    close: Any = None,
) -> None:
    """One Query, one post per connection (and a close where asked); never raises."""
    try:
        management = _management(settings)
        if management is None:
            return
        for row in live_rows.connections(table, vault_id):
            frame = frame_for(row)
            if frame is None:
                continue
            connection_id = str(row["connectionId"])
            try:
                live_rows.post(management, connection_id, _encode(frame))
                if close is not None and close(row):
                    live_rows.close(management, connection_id)
                    live_rows.drop_connection(table, vault_id, connection_id)
            except live_rows.Gone:
                live_rows.drop_connection(table, vault_id, connection_id)
            except live_rows.PostFailed as exc:
                log.warning("live post failed: %s", exc)
    except Exception:  # noqa: BLE001 - a hint must never fail the write that committed
        log.exception("live fan-out failed")
