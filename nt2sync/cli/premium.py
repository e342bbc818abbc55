"""`nt2sync premium …`: NT² Premium (before sync is enabled too, with --server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from nt2sync.cli import render
from nt2sync.cli.context import JsonOpt, group, unlocked

if TYPE_CHECKING:
    from nt2sync.engine import Client

app = group("NT² Premium.")
ServerOpt = Annotated[str | None, typer.Option("--server", help="Before sync is enabled.")]


@contextmanager
def premium_client(server: str | None) -> Iterator[Client]:
    """An unlocked client talking to the vault's server, or --server before enabling."""
    with unlocked() as client:
        if server:
            client.use_server(server)
        yield client


@app.command("status")
def premium_status(server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Premium state of this vault."""
    with premium_client(server) as client:
        data = client.premium("status")
    render.emit(data) if as_json else render.say(render.premium_line(data))


@app.command("redeem")
def premium_redeem(code: str, server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Redeem a promo code."""
    with premium_client(server) as client:
        data = client.premium("redeem", code)
    render.emit(data) if as_json else render.say(render.premium_line(data))


@app.command("checkout")
def premium_checkout(server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Print the checkout URL."""
    with premium_client(server) as client:
        data = client.premium("checkout")
    render.emit(data) if as_json else render.say(data["url"])
