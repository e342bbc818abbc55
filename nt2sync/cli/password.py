"""`nt2sync password …`: changing the master password."""

from __future__ import annotations

import json
import os
import sys
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
    rekey: Annotated[
        bool,
        typer.Option(
            "--rekey",
            help="Also make a new data key and re-encrypt every item (after a lost device).",
        ),
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish an interrupted re-key, then stop.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """New master password: re-seal the data key (or, with --rekey, replace it), rotate the
    key DID on the server."""
    with unlocked() as client:
        if client.meta.pending_rekey or resume:
            # an interrupted re-key is finished first, with the password it set
            finished = bool(client.meta.pending_rekey)
            client.finish_rekey(render.progress())
            key_did = client.meta.key_did
            if as_json:
                render.emit({"keyDid": key_did, "rekeyFinished": finished})
            elif finished:
                render.say(f"Finished the interrupted re-key. Key DID: {key_did}")
                render.say("The master password is the one that re-key set.")
            else:
                render.say("There was no interrupted re-key to finish.")
            return
        new_password = read_password("NT2_NEW_PASSWORD", "New master password", confirm=True)
        old_iterations = client.meta.kdf["iterations"]
        if rekey:
            key_did = client.rekey(new_password, iterations=iterations, progress=render.progress())
        else:
            key_did = client.change_password(new_password, iterations=iterations)
        kit_data = client.kit()
    if as_json:
        render.emit({"keyDid": key_did, "kit": kit_data, "rekeyed": rekey})
        return
    if rekey:
        render.say(f"Vault re-keyed: a new data key encrypts every item. New key DID: {key_did}")
        render.say("The old password and the old key no longer open anything written from now on.")
    else:
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
    """Use the master password that was changed on another device (checked with the server).
    After a re-key, the previous password is asked too (NT2_OLD_PASSWORD), to re-seal what
    this device holds under the new key."""
    from nt2sync.unlock import RekeyNeedsOldPassword  # with the engine, not at --help

    kit_kdf = read_kit(kit_file).get("kdf") if kit_file else None
    password = read_password(label="New master password (changed on another device)")
    old_password = os.environ.get("NT2_OLD_PASSWORD") or None
    with opened() as client:
        try:
            client.adopt_password(password, kit_kdf=kit_kdf, old_password=old_password)
        except RekeyNeedsOldPassword:
            if not sys.stdin.isatty():
                raise
            old_password = read_password("NT2_OLD_PASSWORD", "Previous master password")
            client.adopt_password(password, kit_kdf=kit_kdf, old_password=old_password)
        key_did = client.meta.key_did
        for notice in client.notices:
            render.warn(notice)
    if as_json:
        render.emit({"keyDid": key_did})
    else:
        render.say(f"Now using the new master password. Key DID: {key_did}")
