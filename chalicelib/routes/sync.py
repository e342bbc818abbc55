"""§5 routes: push, pull, status."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib import live, observability
from chalicelib.errors import ErrorCode
from chalicelib.identity import Principal
from chalicelib.routes.context import table
from chalicelib.routes.operations import AUTH_ERRORS, operation
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


def _no_duplicates(body: PushRequest) -> None:
    push_rules.check_duplicates(body)


@operation(
    bp,
    "/api/sync/push",
    "POST",
    summary="Push a batch of item writes",
    tag="sync",
    body=PushRequest,
    response=PushResponse,
    before_auth=_no_duplicates,
    errors=(
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_ENCODING,
        ErrorCode.DUPLICATE_ITEM,
        ErrorCode.PAYLOAD_TOO_LARGE,
        *AUTH_ERRORS,
        ErrorCode.PREMIUM_REQUIRED,
        ErrorCode.VAULT_NOT_FOUND,
        ErrorCode.BATCH_MISMATCH,
        ErrorCode.UNAVAILABLE,
    ),
)
def push(body: PushRequest, caller: Principal) -> dict[str, Any]:
    result = push_rules.push(table(), get_settings(), caller, body)
    conflicts = sum(1 for r in result["results"] if r["status"] == "conflict")
    observability.annotate(items=len(body.items), conflicts=conflicts)
    if conflicts < len(result["results"]) and caller.vault_id is not None:
        live.notify_changed(
            table(), get_settings(), caller.vault_id, result["watermark"], caller.replica_id
        )
    return result


@operation(
    bp,
    "/api/sync/pull",
    "GET",
    summary="Pull changes after a watermark",
    tag="sync",
    query=PullQuery,
    response=PullResponse,
    errors=(
        ErrorCode.INVALID_REQUEST,
        *AUTH_ERRORS,
        ErrorCode.VAULT_NOT_FOUND,
        ErrorCode.RESYNC_REQUIRED,
        ErrorCode.UNAVAILABLE,
    ),
)
def pull(query: PullQuery, caller: Principal) -> dict[str, Any]:
    result = pull_rules.pull(table(), caller, query)
    observability.annotate(items=len(result["items"]), hasMore=result["hasMore"])
    return result


@operation(
    bp,
    "/api/sync/status",
    "GET",
    summary="Sync status of this vault and replica",
    tag="sync",
    response=StatusResponse,
    errors=AUTH_ERRORS,
)
def status(caller: Principal) -> StatusResponse:
    return StatusResponse(**status_rules.status(caller, get_settings()))
