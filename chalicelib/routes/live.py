"""§10 live notifications: the ticket route, and the WebSocket API's three handlers.

The handlers are registered in app.py (a Blueprint cannot hold WebSocket handlers: Chalice
wraps them only on the app, which owns the WebSocket API's configuration).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response
from chalice.app import WebsocketEvent

from chalicelib import live
from chalicelib.errors import ErrorCode
from chalicelib.identity import Principal
from chalicelib.routes.context import table
from chalicelib.routes.operations import AUTH_ERRORS, operation
from chalicelib.settings import get_settings
from chalicelib.shared.models.live import LiveTicketResponse

bp = Blueprint(__name__)


@operation(
    bp,
    "/api/live/ticket",
    "POST",
    summary="A single-use ticket to open the live notification WebSocket",
    tag="live",
    response=LiveTicketResponse,
    errors=(*AUTH_ERRORS, ErrorCode.VAULT_NOT_FOUND),
)
def ticket(caller: Principal) -> LiveTicketResponse:
    vault_id, _meta = caller.require_vault()
    url, value, expires_at = live.open_ticket(
        table(), get_settings(), vault_id, caller.key_did, caller.replica_id
    )
    return LiveTicketResponse(url=url, ticket=value, expiresAt=expires_at)


def ws_connect(event: WebsocketEvent) -> Response:
    """$connect: a non-2xx answer refuses the handshake."""
    query: dict[str, Any] = event.to_dict().get("queryStringParameters") or {}
    if live.connect(table(), event.connection_id, query.get("ticket")):
        return Response(body="", status_code=200)
    return Response(body="", status_code=403)


def ws_message(event: WebsocketEvent) -> None:
    """$default: ping → pong."""
    live.message(get_settings(), event.connection_id, event.body)


def ws_disconnect(event: WebsocketEvent) -> None:
    """$disconnect: the connection row goes."""
    live.disconnect(table(), event.connection_id)
