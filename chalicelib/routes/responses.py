"""Responses: JSON bodies no cache keeps, and the one place errors become responses."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from chalice import Response
from pydantic import BaseModel

from chalicelib.errors import ApiError, ErrorCode

log = logging.getLogger("nt2sync.http")


def json_response(
    payload: BaseModel | dict[str, Any] | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON response that no cache keeps."""
    if isinstance(payload, BaseModel):
        body: Any = payload.model_dump(mode="json")
    else:
        body = payload
    base: dict[str, Any] = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    base.update(headers or {})
    if body is None:
        return Response(body="", status_code=status, headers=base)
    return Response(body=json.dumps(body, separators=(",", ":")), status_code=status, headers=base)


def error_response(err: ApiError) -> Response:
    return json_response(err.body(), err.status, err.headers)


def answer(call: Callable[[], Response], method: str, path: str) -> Response:
    """`call()`'s response, or the protocol's error for what it raised (a surprise is a 500)."""
    try:
        return call()
    except ApiError as err:
        return error_response(err)
    except Exception:  # noqa: BLE001 - the one place that turns surprises into a 500
        log.exception("unhandled error on %s %s", method, path)
        return error_response(ApiError(ErrorCode.INTERNAL_ERROR, "Something went wrong."))
