"""Health and the OpenAPI document."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import openapi
from chalicelib.routes.http import REGISTRY, json_response, operation
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
def health() -> Response:
    audience = get_settings().public_api_url
    return json_response(Health(status="ok", audience=audience, protocol=PROTOCOL_VERSION))


@operation(bp, "/api/openapi.json", "GET", summary="This document", tag="meta", auth=False)
def openapi_document() -> Response:
    return json_response(openapi.build(REGISTRY.operations, get_settings().public_api_url))
