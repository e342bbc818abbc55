"""Health and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib import openapi
from chalicelib.routes.operations import REGISTRY, operation
from chalicelib.settings import get_settings
from chalicelib.shared.limits import PROTOCOL_VERSION
from chalicelib.shared.models.identity import Health

bp = Blueprint(__name__)


@operation(
    bp,
    "/api/health",
    "GET",
    summary="Liveness, audience and protocol version",
    tag="meta",
    response=Health,
    auth=False,
)
def health() -> Health:
    audience = get_settings().public_api_url
    return Health(status="ok", audience=audience, protocol=PROTOCOL_VERSION)


@operation(bp, "/api/openapi.json", "GET", summary="This document", tag="meta", auth=False)
def openapi_document() -> dict[str, Any]:
    return openapi.build(REGISTRY.operations, get_settings().public_api_url)
