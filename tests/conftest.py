"""Fixtures: fake AWS credentials, moto started before any client, the Chalice test client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import AUDIENCE, Caller, Device, seed_for


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with fake credentials and the suite's settings, never real AWS."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": "nt2-sync-test",
        "BUCKET_NAME": "nt2-sync-test-attachments",
        "PUBLIC_API_URL": AUDIENCE,
        "PREMIUM_SYNC_REQUIRED": "false",
        "ALLOWED_ORIGINS": "https://app.example.test",
        "LEMONSQUEEZY_SIGNING_SECRET": "whsec-test",
        "LEMONSQUEEZY_CHECKOUT_URL": "https://nt2.lemonsqueezy.com/buy/abc",
        "VALIDATE_RESPONSES": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    """moto in-process with our patches, table and bucket created from infra/template.json."""
    from devserver.backend import ensure_resources
    from tests.support.moto_world import moto_world

    with moto_world():
        ensure_resources()
        yield


@pytest.fixture
def client(aws: None) -> Iterator[Any]:
    from chalice.test import Client

    import app as app_module

    with Client(app_module.app, stage_name="test") as c:
        yield c


@pytest.fixture
def caller(client: Any) -> Caller:
    return Caller(client)


@pytest.fixture
def device(caller: Caller) -> Device:
    return Device(caller, seed_for(1), "replica-a")


@pytest.fixture
def registered(device: Device) -> Device:
    """A signed-in device whose vault is registered."""
    device.sign_in("Laptop")
    r = device.register()
    assert r.status == 201, r.body
    return device


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Move the server clock: clock(ms) shifts it forward."""
    from chalicelib import clock as clock_module

    def shift(ms: int) -> None:
        clock_module.set_offset_ms(ms)

    yield shift
    clock_module.set_offset_ms(0)
