"""Fixtures for the client's unit tests: local vaults only, no server (no transport at all)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nt2sync.engine import Client
from tests.support.client_clock import PASSWORD, Clock


@pytest.fixture
def make_client(tmp_path: Any) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(name: str = "a", *, clock: Any = None, password: str = PASSWORD) -> Client:
        client = Client.init(
            tmp_path / f"{name}.sqlite3",
            password,
            clock=clock or Clock(),
            sleep=lambda s: None,
            device_name=name,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
