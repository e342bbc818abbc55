"""The HTTP edge, as app.py and the benchmarks import it.

Its parts live beside it: operations.py (the registry and the `operation` decorator),
parsing.py (JSON, body, query, path, bearer token), responses.py (JSON responses and the one
place errors become responses), cors.py (preflight and CORS headers).
"""

from __future__ import annotations

from chalicelib.routes.cors import allowed_origin, cors_middleware, preflight
from chalicelib.routes.operations import (
    AUTH_ERRORS,
    REGISTRY,
    Operation,
    Registry,
    Reply,
    operation,
)
from chalicelib.routes.parsing import (
    MAX_BODY_MEMBERS,
    bearer_token,
    parse_body,
    parse_json,
    parse_path,
    parse_query,
    validate,
    validation_error,
)
from chalicelib.routes.responses import error_response, json_response

__all__ = [
    "AUTH_ERRORS",
    "MAX_BODY_MEMBERS",
    "REGISTRY",
    "Operation",
    "Registry",
    "Reply",
    "allowed_origin",
    "bearer_token",
    "cors_middleware",
    "error_response",
    "json_response",
    "operation",
    "parse_body",
    "parse_json",
    "parse_path",
    "parse_query",
    "preflight",
    "validate",
    "validation_error",
]
