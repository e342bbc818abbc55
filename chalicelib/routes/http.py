"""The HTTP edge: body/query parsing, error mapping, CORS, the operation registry.

Errors become responses here and nowhere else.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from chalice import Blueprint, Response
from chalice.app import Request as ChaliceRequest
from pydantic import BaseModel, ValidationError

from chalicelib import observability
from chalicelib.errors import ApiError, ErrorCode
from chalicelib.settings import get_settings
from chalicelib.shared.limits import MAX_BODY_BYTES
from chalicelib.shared.types import PROTOCOL_CODES

log = logging.getLogger("nt2sync.http")

M = TypeVar("M", bound=BaseModel)

AUTH_ERRORS = ("unauthorized", "session_expired", "session_revoked")
ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type"
EXPOSE_HEADERS = "Retry-After"
_INT = re.compile(r"^[0-9]{1,19}\Z")


@dataclass(frozen=True)
class Operation:
    """One documented route: what OpenAPI says about it."""

    path: str
    method: str
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: bool
    errors: tuple[str, ...]
    tag: str


@dataclass
class Registry:
    operations: list[Operation] = field(default_factory=list)
    preflight_paths: set[str] = field(default_factory=set)


REGISTRY = Registry()


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes | str) -> Any:
    """Parse a request body strictly (no NaN/Infinity)."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(ErrorCode.INVALID_REQUEST, "The body is not UTF-8 JSON.") from exc
    try:
        return json.loads(raw, parse_constant=_json_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, "The body is not valid JSON.") from exc


def _describe(err: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in err.get("loc", ())) or "body"
    return f"{where}: {err.get('msg', 'invalid')}"


def validation_error(exc: ValidationError) -> ApiError:
    """Map a pydantic failure to the protocol's one code for it (first error decides)."""
    errors: list[Any] = list(exc.errors(include_url=False, include_input=False))
    first: dict[str, Any] = errors[0] if errors else {}
    code = first.get("type", "")
    # A Literal/union mismatch nested under a custom type still names the custom type.
    for err in errors:
        if err.get("type") in PROTOCOL_CODES:
            code = err["type"]
            first = err
            break
    if code not in PROTOCOL_CODES:
        code = "invalid_request"
    return ApiError(code, f"Invalid request: {_describe(first)}.")


def parse_body(request: ChaliceRequest, model: type[M]) -> M:
    """The request body as a validated model; 413 over 5 MiB, 400 for anything malformed."""
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, "The request body is over 5 MiB.")
    data = parse_json(raw) if raw else None
    if not isinstance(data, dict):
        raise ApiError(ErrorCode.INVALID_REQUEST, "The body must be a JSON object.")
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def parse_query(request: ChaliceRequest, model: type[M]) -> M:
    """Query parameters as a validated model (integers must be plain decimal digits)."""
    multi: Any = request.query_params or {}
    params: dict[str, str] = {}
    for name in multi:
        values = multi.getlist(name) if hasattr(multi, "getlist") else [multi[name]]
        if len(values) > 1:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Query parameter {name} is repeated.")
        params[name] = values[0]
    data: dict[str, Any] = {}
    for name, value in params.items():
        info = model.model_fields.get(name)
        if info is not None and info.annotation is int:
            if not _INT.match(value):
                raise ApiError(
                    ErrorCode.INVALID_REQUEST, f"Invalid request: {name} must be an integer."
                )
            data[name] = int(value)
        else:
            data[name] = value
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def parse_path(model: type[M], **values: str) -> M:
    """Path parameters as a validated model, before any state is read (400 otherwise)."""
    try:
        return model.model_validate(values, strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def bearer_token(request: ChaliceRequest) -> str:
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            ErrorCode.UNAUTHORIZED, "A session token is required (Authorization: Bearer)."
        )
    return token.strip()


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


def operation(
    bp: Blueprint,
    path: str,
    method: str,
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: bool = True,
    errors: tuple[str, ...] = (),
    raw_body: bool = False,
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register a route, its preflight and its OpenAPI entry; map every error in one place."""
    REGISTRY.operations.append(
        Operation(path, method, summary, body, query, response, status, auth, errors, tag)
    )

    def decorate(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def handler(**kwargs: Any) -> Response:
            request = bp.current_request
            started = time.perf_counter()
            ctx: dict[str, Any] = {"route": path}
            try:
                ctx = observability.begin(request, path)
                if body is None and not raw_body:
                    _reject_body(request)
                resp = view(**kwargs)
            except ApiError as err:
                resp = error_response(err)
            except Exception:  # noqa: BLE001 - the one place that turns surprises into a 500
                log.exception("unhandled error on %s %s", method, path)
                resp = error_response(ApiError(ErrorCode.INTERNAL_ERROR, "Something went wrong."))
            observability.finish(ctx, resp.status_code, time.perf_counter() - started)
            return resp

        bp.route(path, methods=[method], content_types=["*/*"])(handler)
        if path not in REGISTRY.preflight_paths:
            REGISTRY.preflight_paths.add(path)
            bp.route(path, methods=["OPTIONS"], content_types=["*/*"])(preflight)
        return handler

    return decorate


def _reject_body(request: ChaliceRequest) -> None:
    """A route without a body model takes no body (unknown fields are never silently ignored)."""
    raw = request.raw_body or b""
    if raw.strip():
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, "The request body is over 5 MiB.")
        data = parse_json(raw)
        if data != {}:
            raise ApiError(ErrorCode.INVALID_REQUEST, "This request takes no body.")


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
