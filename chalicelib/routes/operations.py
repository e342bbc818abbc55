"""The operation registry and the one decorator every HTTP route is declared with.

What a declaration says is what the route does: the decorator parses the path, query and body
into their models, authenticates when `auth` is set, calls the view with what it parsed, and
sends the view's result as the declared response model. OpenAPI (chalicelib/openapi.py) is
generated from the same declarations, so the document cannot promise what a route skips.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalice import Blueprint, Response
from chalice.app import Request as ChaliceRequest
from pydantic import BaseModel

from chalicelib import observability
from chalicelib.errors import ErrorCode
from chalicelib.routes.context import principal
from chalicelib.routes.cors import preflight
from chalicelib.routes.parsing import parse_body, parse_path, parse_query, reject_body
from chalicelib.routes.responses import answer, json_response
from chalicelib.settings import validate_responses

AUTH_ERRORS = (ErrorCode.UNAUTHORIZED, ErrorCode.SESSION_EXPIRED, ErrorCode.SESSION_REVOKED)
_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Operation:
    """One documented route: what OpenAPI says about it, and what the decorator enforces."""

    path: str
    method: str
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: bool
    errors: tuple[ErrorCode, ...]
    tag: str
    params: type[BaseModel] | None = None
    raw: bool = False


# Called with every operation's request and the response it got (tests record them).
Observer = Callable[[Operation, ChaliceRequest, Response], None]


@dataclass
class Registry:
    operations: list[Operation] = field(default_factory=list)
    preflight_paths: set[str] = field(default_factory=set)
    observer: Observer | None = None


REGISTRY = Registry()


@dataclass(frozen=True)
class Reply:
    """A view's result with a status or headers other than the operation's default."""

    body: BaseModel | dict[str, Any] | None
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)


def operation(
    bp: Blueprint,
    path: str,
    method: str,
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    params: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: bool = True,
    errors: tuple[ErrorCode, ...] = (),
    before_auth: Callable[..., None] | None = None,
    raw: bool = False,
    registry: Registry = REGISTRY,
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Register a route, its preflight and its OpenAPI entry, and do what they declare.

    The view is called with keyword arguments for what the operation declares: `path` (the
    `params` model), `query`, `body`, `caller` (when `auth`) and, with `raw=True`, `request`
    (the Chalice request: for a view that reads raw bytes or headers; no body is refused for
    it). It returns the response model (or a dict of its shape), None for no body, or a
    `Reply` for another status or headers. `before_auth` sees the parsed request before the
    caller is authenticated: checks that need no state answer 400 before 401, as they did.
    """
    for code in errors:
        if not isinstance(code, ErrorCode):
            raise TypeError(f"{method} {path}: error {code!r} is not an ErrorCode")
    names = set(_PARAM.findall(path))
    if names != (set(params.model_fields) if params is not None else set()):
        raise TypeError(f"{method} {path}: path parameters {sorted(names)} need a params model")
    op = Operation(
        path, method, summary, body, query, response, status, auth, errors, tag, params, raw
    )
    given = {"path"} if params else set()
    given |= {"query"} if query else set()
    given |= {"body"} if body else set()
    given |= {"request"} if raw else set()
    if before_auth is not None:
        _expect(before_auth, given, op)

    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        _expect(view, given | ({"caller"} if auth else set()), op)
        registry.operations.append(op)

        def serve(request: ChaliceRequest, uri: dict[str, str]) -> Response:
            kwargs: dict[str, Any] = {}
            if body is None and not raw:
                reject_body(request)
            if params is not None:
                kwargs["path"] = parse_path(params, **uri)
            if query is not None:
                kwargs["query"] = parse_query(request, query)
            if body is not None:
                kwargs["body"] = parse_body(request, body)
            if raw:
                kwargs["request"] = request
            if before_auth is not None:
                before_auth(**kwargs)
            if auth:
                kwargs["caller"] = principal(request)
            return _respond(op, view(**kwargs))

        @functools.wraps(view)
        def handler(**uri: str) -> Response:
            request = bp.current_request
            started = time.perf_counter()
            ctx: dict[str, Any] = {"route": path}

            def run() -> Response:
                nonlocal ctx
                ctx = observability.begin(request, path)
                return serve(request, uri)

            resp = answer(run, method, path)
            observability.finish(ctx, resp.status_code, time.perf_counter() - started)
            if registry.observer is not None:
                registry.observer(op, request, resp)
            return resp

        bp.route(path, methods=[method], content_types=["*/*"])(handler)
        if path not in registry.preflight_paths:
            registry.preflight_paths.add(path)
            bp.route(path, methods=["OPTIONS"], content_types=["*/*"])(preflight)
        return handler

    return decorate


def _expect(func: Callable[..., Any], names: set[str], op: Operation) -> None:
    """`func` takes exactly the arguments the declaration gives it: no more, no fewer."""
    takes = set(inspect.signature(func).parameters)
    if takes != names:
        raise TypeError(
            f"{op.method} {op.path}: {func.__name__} takes {sorted(takes)}, "
            f"the declaration gives {sorted(names)}"
        )


def _respond(op: Operation, result: Any) -> Response:
    """The view's result as the declared response (checked against its model when asked)."""
    status, headers = op.status, None
    if isinstance(result, Reply):
        status, headers, result = result.status, dict(result.headers), result.body
    if op.response is None:
        if status == 204 and result is not None:
            raise TypeError(f"{op.method} {op.path} answers 204 without a body")
    elif isinstance(result, BaseModel):
        if not isinstance(result, op.response):
            raise TypeError(f"{op.method} {op.path} returned {type(result).__name__}")
    elif result is None or validate_responses():
        # A model instance was validated when it was built; a dict (push, pull) is checked
        # when asked, as the test suite does. Off on Lambda: ~3-5 ms for 1 000 items, about
        # a json.dumps of them, and a mismatch there would turn committed writes into a 500.
        op.response.model_validate(result, strict=True)
    return json_response(result, status, headers)
