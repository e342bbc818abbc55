"""Request parsing: JSON bodies, query strings, path parameters, the bearer token.

Everything here turns request text into a validated model or raises the 400/401/413 for it,
in time linear in the input (PROTOCOL.md §1).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from annotated_types import MaxLen
from chalice.app import Request as ChaliceRequest
from pydantic import BaseModel, ValidationError

from chalicelib.errors import ApiError, ErrorCode, echo
from chalicelib.shared.limits import MAX_BODY_BYTES, MAX_ECHO_CHARS, MAX_REPORTED_PROBLEMS
from chalicelib.shared.types import PROTOCOL_CODES

M = TypeVar("M", bound=BaseModel)

_INT = re.compile(r"^[0-9]{1,19}\Z")


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


def reject_body(request: ChaliceRequest) -> None:
    """A route without a body model takes no body (unknown fields are never silently ignored)."""
    raw = request.raw_body or b""
    if raw.strip():
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, "The request body is over 5 MiB.")
        data = parse_json(raw)
        if data != {}:
            raise ApiError(ErrorCode.INVALID_REQUEST, "This request takes no body.")
