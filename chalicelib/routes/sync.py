"""§5 routes: push, pull, status."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import observability
from chalicelib.routes.context import principal, table
from chalicelib.routes.http import AUTH_ERRORS, json_response, operation, parse_body, parse_query
from chalicelib.settings import get_settings
from chalicelib.shared.models.sync import (
    PullQuery,
    PullResponse,
    PushRequest,
    PushResponse,
    StatusResponse,
)
from chalicelib.sync import pull as pull_rules
from chalicelib.sync import push as push_rules
from chalicelib.sync import status as status_rules

bp = Blueprint(__name__)


@operation(
    bp,
    "/api/sync/push",
    "POST",
    summary="Push a batch of item writes",
    tag="sync",
    body=PushRequest,
    response=PushResponse,
    errors=(
        "invalid_request",
        "invalid_encoding",
        "duplicate_item",
        "payload_too_large",
        *AUTH_ERRORS,
        "premium_required",
        "vault_not_found",
        "batch_mismatch",
        "unavailable",
    ),
)
def push() -> Response:
    request = bp.current_request
    req = parse_body(request, PushRequest)
    push_rules.check_duplicates(req)
    caller = principal(request)
    result = push_rules.push(table(), get_settings(), caller, req)
    conflicts = sum(1 for r in result["results"] if r["status"] == "conflict")
    observability.annotate(items=len(req.items), conflicts=conflicts)
    return json_response(result)


@operation(
    bp,
    "/api/sync/pull",
    "GET",
    summary="Pull changes after a watermark",
    tag="sync",
    query=PullQuery,
    response=PullResponse,
    errors=("invalid_request", *AUTH_ERRORS, "vault_not_found", "resync_required", "unavailable"),
)
def pull() -> Response:
    request = bp.current_request
    query = parse_query(request, PullQuery)
    caller = principal(request)
    result = pull_rules.pull(table(), caller, query)
    observability.annotate(items=len(result["items"]), hasMore=result["hasMore"])
    return json_response(result)


@operation(
    bp,
    "/api/sync/status",
    "GET",
    summary="Sync status of this vault and replica",
    tag="sync",
    response=StatusResponse,
    errors=AUTH_ERRORS,
)
def status() -> Response:
    caller = principal(bp.current_request)
    return json_response(StatusResponse(**status_rules.status(caller, get_settings())))
