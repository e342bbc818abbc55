"""CORS: the preflight answer and the headers every response carries (PROTOCOL.md §1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Response
from chalice.app import Request as ChaliceRequest

from chalicelib.settings import get_settings

ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type"
EXPOSE_HEADERS = "Retry-After"


def preflight(**_: Any) -> Response:
    """Answer CORS preflight before authentication and validation."""
    return Response(
        body="",
        status_code=204,
        headers={
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
        },
    )


def allowed_origin(origin: str | None) -> str | None:
    """The origin to echo, if it is allowed (one value, never the list)."""
    if not origin:
        return None
    allowed = get_settings().allowed_origins
    if origin in allowed or "*" in allowed:
        return origin
    return None


def cors_middleware(event: ChaliceRequest, get_response: Callable[[Any], Response]) -> Response:
    """Add CORS headers to every response, errors included."""
    response = get_response(event)
    origin = allowed_origin(event.headers.get("origin"))
    vary = response.headers.get("Vary")
    response.headers["Vary"] = "Origin" if not vary else f"{vary}, Origin"
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    return response
