"""Small steps shared by the client's functional tests."""

from __future__ import annotations

from typing import Any

from nt2sync.engine import Client


def bodies(client: Client) -> dict[str, str]:
    """title → body of every live item."""
    return {p["title"]: p["body"] for _, p in client.list_items()}


def enabled(make_client: Any, server: Any, name: str = "a") -> Client:
    """A new client with sync enabled on `server`."""
    client = make_client(name)
    client.enable(server.audience, device_name=name)
    return client
