"""§10 live change notifications: the ticket and the frames, shared by server and clients."""

from __future__ import annotations

from typing import Literal

from chalicelib.shared.models import Response

TICKET_TTL_MS = 30_000  # a ticket is valid 30 s, once
CONNECTION_LIFETIME_S = 2 * 3600  # API Gateway closes a WebSocket connection after 2 hours
IDLE_TIMEOUT_S = 600  # ... and may close one idle for 10 minutes

# Frame types, server → client and client → server.
CHANGED = "changed"
DEVICES = "devices"
ENDED = "ended"
PING = "ping"
PONG = "pong"
EndReason = Literal["revoked", "rotated"]


class LiveTicketResponse(Response):
    url: str
    ticket: str
    expiresAt: int
