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
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from annotated_types import MaxLen
from chalice import Blueprint, Response
from chalice.app import Request as ChaliceRequest
from pydantic import BaseModel, ValidationError

from chalicelib import observability
from chalicelib.errors import ApiError, ErrorCode, echo
from chalicelib.settings import get_settings
from chalicelib.shared.limits import MAX_BODY_BYTES, MAX_ECHO_CHARS, MAX_REPORTED_PROBLEMS
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


@dataclass(frozen=True)
class _Nested:
    """A field that holds a request model (alone or as list items) whose keys we check."""

    model: type[BaseModel]
    many: bool
    max_items: int | None


@functools.cache
def _fields(model: type[BaseModel]) -> dict[str, _Nested | None]:
    """The keys a body of `model` may have, and which of them hold nested models."""
    out: dict[str, _Nested | None] = {}
    for name, info in model.model_fields.items():
        max_items = next((m.max_length for m in info.metadata if isinstance(m, MaxLen)), None)
        out[info.alias or name] = _nested(info.annotation, max_items)
    return out


def _nested(annotation: Any, max_items: int | None) -> _Nested | None:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):  # `Proof | None`: the one model among the members
        found = [n for a in get_args(annotation) if (n := _nested(a, max_items)) is not None]
        return found[0] if len(found) == 1 else None
    if origin is list:
        inner = _nested(get_args(annotation)[0], None)
        return _Nested(inner.model, True, max_items) if inner and not inner.many else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _Nested(annotation, False, None)
    return None


@dataclass
class _Unknown:
    """The unknown keys of a body: the first few (in body order) and how many in all."""

    first: list[tuple[str | int, ...]] = field(default_factory=list)
    count: int = 0


def _known_only(
    model: type[BaseModel], data: dict[str, Any], loc: tuple[str | int, ...], unknown: _Unknown
) -> dict[str, Any]:
    """`data` without the keys `model` forbids, noted in `unknown`; nested models likewise.

    pydantic builds one error per unknown key, ~2 µs each: 430 000 keys in a 5 MiB body cost
    a second and hundreds of MB. This costs a few steps per model instead (§1).
    """
    if model.model_config.get("extra") != "forbid":
        return data
    fields = _fields(model)
    present = [key for key in fields if key in data]
    if len(present) < len(data):
        unknown.count += len(data) - len(present)
        for key in data:  # at most len(fields) + 5 steps: every other key is unknown
            if len(unknown.first) >= MAX_REPORTED_PROBLEMS:
                break
            if key not in fields:
                unknown.first.append((*loc, key))
        data = {key: data[key] for key in present}
    for key in present:
        nested, value = fields[key], data[key]
        if nested is None:
            continue
        if not nested.many:
            if isinstance(value, dict):
                data = {**data, key: _known_only(nested.model, value, (*loc, key), unknown)}
        # Past max_items pydantic reports the length alone and looks at no item; so do we.
        elif isinstance(value, list) and len(value) <= (nested.max_items or len(value)):
            items = [
                _known_only(nested.model, v, (*loc, key, i), unknown) if isinstance(v, dict) else v
                for i, v in enumerate(value)
            ]
            data = {**data, key: items}
    return data


class _Quotes:
    """What one message may still quote of the request (§1: 100 characters in all)."""

    def __init__(self) -> None:
        self.left = MAX_ECHO_CHARS

    def quote(self, text: str) -> str:
        kept = echo(text, self.left)
        self.left = max(self.left - len(text), 0)
        return kept


def _describe(loc: tuple[str | int, ...], msg: str, quoted: bool, quotes: _Quotes) -> str:
    """`where: what` for one problem; `quoted`: the last key of `loc` is the request's own."""
    parts = [str(p) for p in loc]
    if quoted and parts:
        parts[-1] = quotes.quote(parts[-1])
    return f"{'.'.join(parts) or 'body'}: {msg}"


def validation_error(errors: list[Any], unknown: _Unknown | None = None) -> ApiError:
    """The protocol's one code for a failure (the first error with its own code decides),
    naming the first problems and quoting at most 100 characters of the request (§1)."""
    unknown = unknown or _Unknown()
    deciding = next((e for e in errors if e.get("type") in PROTOCOL_CODES), None)
    code = deciding["type"] if deciding else ErrorCode.INVALID_REQUEST
    ordered = ([deciding] if deciding else []) + [e for e in errors if e is not deciding]
    problems = [
        (tuple(e.get("loc", ())), e.get("msg", "invalid"), e.get("type") == "extra_forbidden")
        for e in ordered[:MAX_REPORTED_PROBLEMS]
    ]
    problems += [
        (loc, "Extra inputs are not permitted", True)
        for loc in unknown.first[: MAX_REPORTED_PROBLEMS - len(problems)]
    ]
    quotes = _Quotes()
    named = "; ".join(_describe(loc, msg, quoted, quotes) for loc, msg, quoted in problems)
    more = len(errors) + unknown.count - len(problems)
    return ApiError(code, f"Invalid request: {named}{f'; and {more} more' if more else ''}.")


def validate(model: type[M], data: Any) -> M:
    """`data` as `model` (strict), or the 400 for it, in time linear in the input (§1)."""
    unknown = _Unknown()
    if isinstance(data, dict):
        data = _known_only(model, data, (), unknown)
    try:
        result = model.model_validate(data, strict=True)
    except ValidationError as exc:
        errors = list(exc.errors(include_url=False, include_input=False))
        raise validation_error(errors, unknown) from exc
    if unknown.count:
        raise validation_error([], unknown)
    return result


def parse_body(request: ChaliceRequest, model: type[M]) -> M:
    """The request body as a validated model; 413 over 5 MiB, 400 for anything malformed."""
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, "The request body is over 5 MiB.")
    if model.model_config.get("extra") == "forbid":
        _bounded_members(raw)
    data = parse_json(raw) if raw else None
    if not isinstance(data, dict):
        raise ApiError(ErrorCode.INVALID_REQUEST, "The body must be a JSON object.")
    return validate(model, data)


# No valid request body of this protocol has this many members: the largest, a push of
# 500 items, has about 2 000; register's publicKeys (≤ 4 KiB) fewer than 1 400.
MAX_BODY_MEMBERS = 8192


def _bounded_members(raw: bytes | str) -> None:
    """Refuse a body with more `"key":` members than any request can have before parsing it
    (§1: linear time): counting costs ~6 ms for 5 MiB, json.loads of 430 000 members ~300 ms.
    The count is an upper bound (a `":` inside a string counts too), so nothing valid is lost.
    """
    text = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if text.count(b'":') > MAX_BODY_MEMBERS:
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            f"The body has more members than any request of this protocol ({MAX_BODY_MEMBERS}).",
        )


def parse_query(request: ChaliceRequest, model: type[M]) -> M:
    """Query parameters as a validated model (integers must be plain decimal digits)."""
    multi: Any = request.query_params or {}
    params: dict[str, str] = {}
    for name in multi:
        values = multi.getlist(name) if hasattr(multi, "getlist") else [multi[name]]
        if len(values) > 1:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Query parameter {echo(name)} is repeated.")
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
    return validate(model, data)


def parse_path(model: type[M], **values: str) -> M:
    """Path parameters as a validated model, before any state is read (400 otherwise)."""
    return validate(model, values)


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
