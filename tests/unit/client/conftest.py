"""Fixtures for the client's unit tests: the fake server behind an httpx.MockTransport."""

from __future__ import annotations

import pytest

from nt2sync.engine import Client
from tests.e2e.client_fakes import FakeServer
from tests.unit.client.support import PASSWORD, Clock


@pytest.fixture
def fake() -> FakeServer:
    return FakeServer("https://sync.example.test")


@pytest.fixture
def make_client(tmp_path, fake):
    made: list[Client] = []

    def make(name: str = "a", *, clock=None, password: str = PASSWORD) -> Client:
        client = Client.init(
            tmp_path / f"{name}.sqlite3",
            password,
            transport=fake.transport(),
            clock=clock or Clock(),
            sleep=lambda s: None,
            device_name=name,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        try:
            client.close()
        except Exception:
            pass


@pytest.fixture
def join_client(tmp_path, fake):
    def join(name: str, key_did: str, *, password: str = PASSWORD, clock=None) -> Client:
        client, _ = Client.join(
            tmp_path / f"{name}.sqlite3",
            fake.audience,
            key_did,
            password,
            transport=fake.transport(),
            clock=clock or Clock(),
            sleep=lambda s: None,
            device_name=name,
        )
        return client

    return join
