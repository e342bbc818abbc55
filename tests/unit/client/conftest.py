"""Fixtures for the client's unit tests: the fake server behind an httpx.MockTransport."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))

from client_fakes import FakeServer  # noqa: E402

from nt2sync.engine import Client  # noqa: E402

PASSWORD = "pw-one"


class Clock:
    """A controllable millisecond clock."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1
        return self.now


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
