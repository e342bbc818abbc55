"""One structured JSON log line per request and CloudWatch embedded-format metrics.

`routes/operations.py` calls `begin` and `finish` around every operation; anything in between
(routes, domain code) adds facts with `annotate(**fields)`, which finds the current request
through a context variable. Only counts, flags and short identifiers are accepted: a field
whose name says secret (token, signature, salt, verifier, ciphertext, nonce, ...) is dropped,
strings are capped, and a keyDid is logged as `key_hash(keyDid)`, never in clear.

Powertools for AWS Lambda (Logger, Metrics) writes both: it adds about 20-25 ms of imports
to a 2 s `import app` (docs/DEPLOY.md, "Observability"), and gives the standard Lambda
fields, POWERTOOLS_* settings and EMF validation for free.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "nt2-sync"
NAMESPACE = "NT2Sync"

# Substrings of field names that never reach a log line, whatever their value.
_SECRET_NAMES = (
    "token",
    "signature",
    "salt",
    "verifier",
    "ciphertext",
    "nonce",
    "secret",
    "password",
    "authorization",
    "publickeys",
    "url",
)
_MAX_STR = 80
# LogRecord's own attributes cannot be passed as `extra` (logging raises KeyError).
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}
_SMALL_BODY = 4096  # only small JSON bodies are looked at for a keyDid

# The SDK's DEBUG output dumps whole requests (ciphertext, tokens' hashes, salts): a Lambda
# log level of DEBUG must not turn that on, so the SDK loggers stop at WARNING.
for _sdk in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_sdk).setLevel(logging.WARNING)

_CURRENT: ContextVar[dict[str, Any] | None] = ContextVar("nt2sync_request", default=None)


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Write to whatever sys.stdout is now (Lambda captures it; tests swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


_logger: Logger | None = None
_metrics: Metrics | None = None


def _log() -> Logger:
    global _logger
    if _logger is None:
        _logger = Logger(
            service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE),
            level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
            logger_handler=_Stdout(),
        )
    return _logger


def _metric_sink() -> Metrics:
    global _metrics
    if _metrics is None:
        _metrics = Metrics(
            namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE),
            service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE),
        )
    return _metrics


def key_hash(key_did: str) -> str:
    """A short, stable, non-reversible tag for a keyDid in logs."""
    return hashlib.sha256(key_did.encode()).hexdigest()[:16]


def _safe(name: str, value: Any) -> tuple[str, Any] | None:
    """The (name, value) a log line may carry, or None to drop it."""
    lowered = name.lower()
    if lowered in {"keydid", "key_did", "newkeydid"}:
        return ("keyHash" if lowered != "newkeydid" else "newKeyHash"), (
            key_hash(value) if isinstance(value, str) else None
        )
    if name in _RESERVED or any(part in lowered for part in _SECRET_NAMES):
        return None
    if value is None or isinstance(value, bool | int | float):
        return name, value
    if isinstance(value, str):
        return name, value[:_MAX_STR]
    return None


def annotate(ctx: dict[str, Any] | None = None, /, **fields: Any) -> None:
    """Add facts (counts, flags, short ids) to the current request's log line."""
    target = ctx if ctx is not None else _CURRENT.get()
    if target is None:
        return
    for name, value in fields.items():
        kept = _safe(name, value)
        if kept is not None:
            target[kept[0]] = kept[1]


def _key_did_from(request: Any) -> str | None:
    """The keyDid a public route names (query or a small JSON body), for its key hash."""
    query = getattr(request, "query_params", None) or {}
    value = query.get("keyDid") if hasattr(query, "get") else None
    if isinstance(value, str):
        return value
    raw = getattr(request, "raw_body", None) or b""
    if not raw or len(raw) > _SMALL_BODY:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    found = body.get("keyDid") if isinstance(body, dict) else None
    return found if isinstance(found, str) else None


def begin(request: Any, route: str) -> dict[str, Any]:
    """Start the request's log context (and make it the current one)."""
    ctx: dict[str, Any] = {"route": route}
    method = getattr(request, "method", None)
    if method:
        ctx["method"] = method
    context = getattr(request, "context", None) or {}
    if isinstance(context, dict) and context.get("requestId"):
        ctx["requestId"] = str(context["requestId"])[:_MAX_STR]
    key_did = _key_did_from(request)
    if key_did:
        ctx["keyHash"] = key_hash(key_did)
    _CURRENT.set(ctx)
    return ctx


def request_metrics(ctx: dict[str, Any]) -> dict[str, int]:
    """The business metrics one finished request contributes."""
    status = ctx.get("status")
    route = ctx.get("route")
    out: dict[str, int] = {}
    if status == 200 and route == "/api/sync/push":
        out["Pushes"] = 1
        out["PushedItems"] = int(ctx.get("items") or 0)
        out["Conflicts"] = int(ctx.get("conflicts") or 0)
    if status == 200 and route == "/api/sync/pull":
        out["Pulls"] = 1
        out["PulledItems"] = int(ctx.get("items") or 0)
    if status == 410:
        out["Resyncs"] = 1
    if status == 402:
        out["PremiumRequired"] = 1
    return out


def finish(ctx: dict[str, Any], status: int, seconds: float) -> None:
    """Write the request's one log line and its metrics; end the context."""
    ctx["status"] = status
    ctx["latencyMs"] = round(seconds * 1000, 1)
    _log().info("request", extra=ctx)
    metrics = request_metrics(ctx)
    if metrics:
        sink = _metric_sink()
        for name, value in metrics.items():
            sink.add_metric(name=name, unit=MetricUnit.Count, value=value)
        sink.flush_metrics()
    _CURRENT.set(None)
