"""`nt2sync password …`: changing the master password."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nt2sync.cli import render
from nt2sync.cli.context import JsonOpt, group, opened, read_kit, read_password, unlocked

app = group("Master password.")


@app.command("change")
def password_change(
    iterations: Annotated[
        int | None, typer.Option(help="Raise PBKDF2 iterations (new kit).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """New master password: re-seal the data key, rotate the key DID on the server."""
    new_password = read_password("NT2_NEW_PASSWORD", "New master password", confirm=True)
    with unlocked() as client:
        old_iterations = client.meta.kdf["iterations"]
        key_did = client.change_password(new_password, iterations=iterations)
        kit_data = client.kit()
    if as_json:
        render.emit({"keyDid": key_did, "kit": kit_data})
        return
    render.say(f"Master password changed. New key DID: {key_did}")
    render.say("On each other device, run `nt2sync password adopt` with the new password.")
    if kit_data["kdf"]["iterations"] != old_iterations:
        render.say("The KDF changed: give them this new kit too (`password adopt --kit FILE`):")
    else:
        render.say("Export a new recovery kit with `nt2sync kit`.")
    render.say(json.dumps(kit_data))


@app.command("adopt")
def password_adopt(
    kit_file: Annotated[
        Path | None,
        typer.Option("--kit", help="The new kit, if the change raised the iterations."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Use the master password that was changed on another device (checked with the server)."""
    kit_kdf = read_kit(kit_file).get("kdf") if kit_file else None
    password = read_password(label="New master password (changed on another device)")
    with opened() as client:
        client.adopt_password(password, kit_kdf=kit_kdf)
        key_did = client.meta.key_did
    if as_json:
        render.emit({"keyDid": key_did})
    else:
        render.say(f"Now using the new master password. Key DID: {key_did}")
