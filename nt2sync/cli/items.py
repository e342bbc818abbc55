"""`nt2sync item …`: items in the local vault."""

from __future__ import annotations

from typing import Annotated

import typer

from nt2sync.cli import render
from nt2sync.cli.context import JsonOpt, OfflineOpt, after_write, group, unlocked

app = group("Items in the local vault.")
ItemId = Annotated[str, typer.Argument(metavar="ID")]
Field = Annotated[str | None, typer.Option()]


@app.command("add")
def item_add(
    title: str,
    body: Field = None,
    username: Field = None,
    url: Field = None,
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Add an item; prints its id."""
    with unlocked() as client:
        item_id = client.add_item(title, body=body, username=username, url=url)
        after_write(client, offline)
    render.emit({"id": item_id}) if as_json else render.say(item_id)


@app.command("edit")
def item_edit(
    item_id: ItemId,
    title: Field = None,
    body: Field = None,
    username: Field = None,
    url: Field = None,
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Change fields of an item."""
    with unlocked() as client:
        client.edit_item(item_id, title=title, body=body, username=username, url=url)
        after_write(client, offline)
        view = client.public_view(item_id, client.get_item(item_id))
    render.emit(view) if as_json else render.say(f"Edited {item_id}.")


@app.command("show")
def item_show(item_id: ItemId, as_json: JsonOpt = False) -> None:
    """Show one item."""
    with unlocked() as client:
        view = client.public_view(item_id, client.get_item(item_id))
    render.emit(view) if as_json else render.item(view)


@app.command("list")
def item_list(as_json: JsonOpt = False) -> None:
    """List items."""
    with unlocked() as client:
        views = [client.public_view(i, p) for i, p in client.list_items()]
    render.emit(views) if as_json else render.items(views)


@app.command("rm")
def item_rm(item_id: ItemId, offline: OfflineOpt = False, as_json: JsonOpt = False) -> None:
    """Delete an item."""
    with unlocked() as client:
        client.remove_item(item_id)
        after_write(client, offline)
    render.emit({"id": item_id, "deleted": True}) if as_json else render.say(f"Deleted {item_id}.")
