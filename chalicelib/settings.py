"""The one place that names environment variables; read lazily on every call.

`chalice.test.Client` and stage configs set variables per request, so nothing here is read
at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PUBLIC_API_URL = "PUBLIC_API_URL"
PREMIUM_SYNC_REQUIRED = "PREMIUM_SYNC_REQUIRED"
ALLOWED_ORIGINS = "ALLOWED_ORIGINS"
TABLE_NAME = "TABLE_NAME"
BUCKET_NAME = "BUCKET_NAME"
TOMBSTONE_RETENTION_DAYS = "TOMBSTONE_RETENTION_DAYS"
ATTACHMENT_QUOTA_BYTES = "ATTACHMENT_QUOTA_BYTES"
ATTACHMENT_MAX_BYTES = "ATTACHMENT_MAX_BYTES"
LEMONSQUEEZY_CHECKOUT_URL = "LEMONSQUEEZY_CHECKOUT_URL"
LEMONSQUEEZY_SIGNING_SECRET = "LEMONSQUEEZY_SIGNING_SECRET"  # noqa: S105 - a variable name
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
AWS_REGION = "AWS_REGION"
# Live notifications (§10): the WebSocket URL tickets name, and the management API endpoint
# of that WebSocket API's stage (`https://<api>.execute-api.<region>.amazonaws.com/<stage>`);
# without the latter no frame is sent (and no connection row read).
LIVE_WS_URL = "LIVE_WS_URL"
LIVE_MANAGEMENT_URL = "LIVE_MANAGEMENT_URL"
# Check every response against its declared model before sending it (the test suite sets it).
VALIDATE_RESPONSES = "VALIDATE_RESPONSES"

# Set by the Lambda runtime: on Lambda there are no loopback defaults to fall back on.
AWS_LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"
REQUIRED_ON_LAMBDA = (PUBLIC_API_URL, TABLE_NAME, BUCKET_NAME)

DEFAULT_TABLE = "nt2-sync"
DEFAULT_BUCKET = "nt2-sync-attachments"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return int(raw)


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment at one moment."""

    public_api_url: str
    premium_sync_required: bool
    allowed_origins: tuple[str, ...]
    table_name: str
    bucket_name: str
    tombstone_retention_days: int
    attachment_quota_bytes: int
    attachment_max_bytes: int
    lemonsqueezy_checkout_url: str
    lemonsqueezy_signing_secret: str
    aws_endpoint_url: str | None
    aws_region: str
    live_ws_url: str = "ws://127.0.0.1:8001"
    live_management_url: str | None = None


class MissingSettings(RuntimeError):
    """A Lambda started without a variable it cannot run without."""


def missing_on_lambda(env: dict[str, str] | None = None) -> list[str]:
    """The required variables that are unset or empty, when running on Lambda (else none)."""
    env = dict(os.environ) if env is None else env
    if not env.get(AWS_LAMBDA_FUNCTION_NAME):
        return []
    return [name for name in REQUIRED_ON_LAMBDA if not (env.get(name) or "").strip()]


def require_lambda_settings() -> None:
    """Fail the cold start, with one clear sentence, instead of serving on loopback defaults.

    A missing `TABLE_NAME` would otherwise write to a table named `nt2-sync` in whatever
    account the function runs in, and a missing `PUBLIC_API_URL` would make every
    signature's audience `http://127.0.0.1:8000`, so every sign-in fails much later.
    """
    missing = missing_on_lambda()
    if missing:
        raise MissingSettings(
            f"Lambda environment is missing {', '.join(missing)}: set them in the stage's "
            "environment_variables (.chalice/config.json) or the stack parameters; "
            "refusing to start."
        )


def validate_responses() -> bool:
    """Whether the HTTP edge checks each response against its model (routes/operations.py)."""
    return _flag(os.environ.get(VALIDATE_RESPONSES))


def get_settings() -> Settings:
    """Read the settings now (cheap: a handful of environ look-ups)."""
    env = os.environ
    origins = tuple(o.strip() for o in env.get(ALLOWED_ORIGINS, "").split(",") if o.strip())
    return Settings(
        public_api_url=env.get(PUBLIC_API_URL, "http://127.0.0.1:8000").rstrip("/"),
        premium_sync_required=_flag(env.get(PREMIUM_SYNC_REQUIRED)),
        allowed_origins=origins,
        table_name=env.get(TABLE_NAME, DEFAULT_TABLE),
        bucket_name=env.get(BUCKET_NAME, DEFAULT_BUCKET),
        tombstone_retention_days=_int(TOMBSTONE_RETENTION_DAYS, 90),
        attachment_quota_bytes=_int(ATTACHMENT_QUOTA_BYTES, 1 << 30),
        attachment_max_bytes=_int(ATTACHMENT_MAX_BYTES, 100 << 20),
        lemonsqueezy_checkout_url=env.get(LEMONSQUEEZY_CHECKOUT_URL, ""),
        lemonsqueezy_signing_secret=env.get(LEMONSQUEEZY_SIGNING_SECRET, ""),
        aws_endpoint_url=env.get(AWS_ENDPOINT_URL) or None,
        aws_region=env.get(AWS_REGION) or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        live_ws_url=env.get(LIVE_WS_URL) or "ws://127.0.0.1:8001",
        live_management_url=(env.get(LIVE_MANAGEMENT_URL) or "").rstrip("/") or None,
    )
