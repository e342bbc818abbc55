"""`nt2sync attach …`: encrypted attachments of items."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nt2sync.cli import render
from nt2sync.cli.context import JsonOpt, OfflineOpt, after_write, group, unlocked
from nt2sync.errors import ClientError

app = group("Encrypted attachments.")


@app.command("add")
def attach_add(
    item_id: str, file: Path, offline: OfflineOpt = False, as_json: JsonOpt = False
) -> None:
    """Encrypt a file and attach it to an item."""
    if not file.is_file():
        raise ClientError(f"{file} is not a readable file.")
    with unlocked() as client:
        attachment_id = client.add_attachment(item_id, file)
        after_write(client, offline)
    render.emit({"id": attachment_id}) if as_json else render.say(attachment_id)


@app.command("get")
def attach_get(
    attachment_id: str,
    out_path: Annotated[Path, typer.Argument(metavar="OUT")],
    as_json: JsonOpt = False,
) -> None:
    """Decrypt an attachment into a file."""
    with unlocked() as client:
        size = client.get_attachment(attachment_id, out_path)
    if as_json:
        render.emit({"id": attachment_id, "file": str(out_path), "size": size})
    else:
        render.say(f"Wrote {size} bytes to {out_path}.")


@app.command("rm")
def attach_rm(attachment_id: str, offline: OfflineOpt = False, as_json: JsonOpt = False) -> None:
    """Remove an attachment."""
    with unlocked() as client:
        client.remove_attachment(attachment_id)
        after_write(client, offline)
    if as_json:
        render.emit({"id": attachment_id, "deleted": True})
    else:
        render.say(f"Removed {attachment_id}.")


@app.command("list")
def attach_list(as_json: JsonOpt = False) -> None:
    """Attachments of every item."""
    with unlocked() as client:
        refs = client.attachment_refs()
    render.emit(refs) if as_json else render.attachments(refs)
