"""The reference client against the real app in-process (moto), behind a LyingServer.

tests/conftest.py's `client` (the app in chalice.test.Client) runs here over one moto world
per module, with a fresh table and bucket per test (`aws` below). The server is honest until
a test calls one of its hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nt2sync.engine import Client
from tests.helpers import AUDIENCE
from tests.support.app_transport import AppTransport
from tests.support.client_clock import PASSWORD, Clock
from tests.support.lying_server import LyingServer
from tests.support.moto_world import fresh_resources, moto_world
from tests.support.server_state import ServerState


@pytest.fixture(scope="module")
def shared_moto() -> Iterator[None]:
    with moto_world():
        yield


@pytest.fixture
def aws(aws_env: None, shared_moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's own table and bucket, in the module's moto world."""
    fresh_resources(monkeypatch)


@pytest.fixture
def server(client: Any) -> LyingServer:
    """`app.py`'s app behind a proxy; its audience is the app's PUBLIC_API_URL."""
    return LyingServer(AppTransport(client, AUDIENCE))


@pytest.fixture
def stored(aws: None) -> ServerState:
    """What the app stored (the table and bucket behind the API)."""
    return ServerState()


@pytest.fixture
def make_client(tmp_path: Any, server: LyingServer) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(name: str = "a", *, clock: Any = None, password: str = PASSWORD) -> Client:
        client = Client.init(
            tmp_path / f"{name}.sqlite3",
            password,
            transport=server,
            clock=clock or Clock(),
            sleep=lambda s: None,
            device_name=name,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def join_client(tmp_path: Any, server: LyingServer) -> Callable[..., Client]:
    def join(
        name: str,
        key_did: str,
        *,
        password: str = PASSWORD,
        clock: Any = None,
        transport: LyingServer | None = None,
    ) -> Client:
        via = transport or server  # another proxy in front of the same app: lies to one device
        client, _ = Client.join(
            tmp_path / f"{name}.sqlite3",
            via.audience,
            key_did,
            password,
            transport=via,
            clock=clock or Clock(),
            sleep=lambda s: None,
            device_name=name,
        )
        return client

    return join
