"""Live sync (PROTOCOL.md §10): keep a vault in sync on its own.

`watch(client, on_sync, stop)` opens a ticket and a WebSocket connection; on `changed` from
another replica it syncs (bursts coalesced), on a commit to the vault file by any other
process (SQLite's `PRAGMA data_version`, polled 4 times a second) it syncs, after every
(re)connect it syncs to catch up, and it reconnects with backoff and a new ticket when the
connection drops. It returns why it stopped: `stopped` (asked to), or the sentence of an
`ended` frame (revoked, password changed elsewhere). The `websockets` library is imported
only here, when a watch starts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.shared.models.live import CHANGED, ENDED, PING
from nt2sync.errors import DeviceRevoked, NetworkError, PasswordChangedElsewhere, ServerError

if TYPE_CHECKING:
    from nt2sync.engine import Client
    from nt2sync.report import SyncSummary

POLL_SECONDS = 0.25  # data_version is read at most 4 times a second
COALESCE_SECONDS = 0.05  # frames arriving this close together make one sync
PING_SECONDS = 300.0  # inside API Gateway's 10-minute idle limit; each ping is a billed message
MAX_BACKOFF_SECONDS = 30.0
REVOKED = "This device was revoked from the vault's enrolled devices; live sync stopped."
ROTATED = (
    "The master password was changed on another device; live sync stopped. Run it again "
    "with the new master password."
)
STOPPED = "stopped"


@dataclass
class Sync:
    """One sync the watch made, and why."""

    reason: str  # "start", "reconnect", "remote" (a changed frame), "local" (another process)
    summary: SyncSummary


OnSync = Callable[[Sync], None]


class Ended(Exception):
    """The server ended this device's live sync (revoked, rotated)."""


def open_ticket(client: Client) -> dict[str, Any]:
    """POST /api/live/ticket: {url, ticket, expiresAt}."""
    ticket: dict[str, Any] = client.call(lambda api: api.request("POST", "/live/ticket"))
    return ticket


def data_version(client: Client) -> int:
    """SQLite's counter of commits made by *other* connections to the vault file."""
    row = client.vault.conn.execute("PRAGMA data_version").fetchone()
    return int(row[0])


def watch(
    client: Client,
    on_sync: OnSync,
    stop: threading.Event,
    *,
    on_event: Callable[[str], None] | None = None,
) -> str:
    """Keep the vault in sync until `stop` is set or the server ends it; returns why."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
    from websockets.sync.client import connect

    def say(text: str) -> None:
        if on_event is not None:
            on_event(text)

    def sync(reason: str) -> None:
        on_sync(Sync(reason, client.sync_now()))

    backoff = 0.5
    reason = "start"
    try:
        while not stop.is_set():
            try:
                sync(reason)
                ticket = open_ticket(client)
                url = f"{ticket['url']}?ticket={ticket['ticket']}"
                with connect(url, open_timeout=10, close_timeout=2, ping_interval=None) as ws:
                    backoff = 0.5
                    say("connected")
                    _session(client, ws, stop, sync)
                    if stop.is_set():
                        break
            except (ConnectionClosed, InvalidHandshake, InvalidStatus, OSError, TimeoutError):
                pass
            except (NetworkError, ServerError) as exc:
                say(f"server: {exc}")
            if stop.is_set():
                break
            say(f"disconnected; reconnecting in {backoff:.1f} s")
            stop.wait(backoff)
            backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
            reason = "reconnect"
    except Ended as ended:
        return str(ended)
    except DeviceRevoked:
        return REVOKED
    except PasswordChangedElsewhere:
        return ROTATED
    return STOPPED


def _session(client: Client, ws: Any, stop: threading.Event, sync: Callable[[str], None]) -> None:
    """One connection's life: frames, local commits, pings, until it closes or stop."""
    seen = data_version(client)
    last_ping = time.monotonic()
    while not stop.is_set():
        remote = False
        try:
            frame = ws.recv(timeout=POLL_SECONDS)
        except TimeoutError:
            frame = None
        while frame is not None:
            remote |= _handle(client, frame)
            try:  # coalesce a burst of frames into one sync
                frame = ws.recv(timeout=COALESCE_SECONDS)
            except TimeoutError:
                frame = None
        # Read before syncing: a commit by another process during the sync is seen next time
        # (our own commits, on this connection, never move it).
        version = data_version(client)
        if remote or version != seen:
            seen = version
            sync("remote" if remote else "local")
        if time.monotonic() - last_ping > PING_SECONDS:
            ws.send(json.dumps({"type": PING}))
            last_ping = time.monotonic()


def _handle(client: Client, raw: str | bytes) -> bool:
    """Act on one frame; True when a pull is due."""
    try:
        frame = json.loads(raw)
    except ValueError:
        return False
    kind = frame.get("type") if isinstance(frame, dict) else None
    if kind == ENDED:
        raise Ended(REVOKED if frame.get("reason") == "revoked" else ROTATED)
    if kind == CHANGED:
        own = frame.get("replicaId") == client.meta.replica_id
        return not own or int(frame.get("watermark") or 0) > int(client.meta.watermark or 0)
    return False  # `devices`, `pong`: nothing to pull (the device list is read on demand)
