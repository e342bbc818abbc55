"""Lazily built, cached boto3 clients (warm Lambdas reuse them; tests start moto first)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from chalicelib.settings import get_settings

_CLIENTS: dict[tuple[str, str, str | None], Any] = {}

# Our own retry loop (store/table.py) decides what a throttle becomes; botocore's standard
# mode still absorbs network blips. Short timeouts: a Lambda must answer within API Gateway's.
_CONFIG = Config(
    retries={"max_attempts": 2, "mode": "standard"},
    connect_timeout=3,
    read_timeout=10,
    signature_version="s3v4",
    s3={"addressing_style": "path"},
)


def client(service: str) -> Any:
    """The cached client for a service, honouring AWS_ENDPOINT_URL (local server)."""
    s = get_settings()
    key = (service, s.aws_region, s.aws_endpoint_url)
    found = _CLIENTS.get(key)
    if found is None:
        make: Any = boto3.client
        found = make(
            service, region_name=s.aws_region, endpoint_url=s.aws_endpoint_url, config=_CONFIG
        )
        _CLIENTS[key] = found
    return found


def reset_clients() -> None:
    """Forget cached clients (tests that start a fresh moto)."""
    _CLIENTS.clear()
