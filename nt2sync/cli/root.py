"""The `nt2sync` command: the global --vault option, vault setup (init, kit, join), and the
sub-command groups, one module each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from chalicelib.shared.limits import MAX_KDF_ITERATIONS, MIN_KDF_ITERATIONS
from nt2sync.cli import attach, backup, devices, items, password, premium, render, sync, vault
from nt2sync.cli.context import (
    STATE,
    JsonOpt,
    default_vault_path,
    help_without_command,
    read_kit,
    read_password,
    unlocked,
)
from nt2sync.errors import UsageProblem

# rich_markup_mode=None: help is drawn by typer's plain formatter, so `--help` loads no rich.
app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="NT² reference client: a local encrypted vault with end-to-end-encrypted cloud sync.",
)
for module, name in (
    (items, "item"),
    (sync, "sync"),
    (devices, "devices"),
    (backup, "backup"),
    (attach, "attach"),
    (premium, "premium"),
    (password, "password"),
    (vault, "vault"),
):
    app.add_typer(module.app, name=name)


@app.callback()
def _global(
    ctx: typer.Context,
    vault: Annotated[
        Path | None,
        typer.Option("--vault", envvar="NT2_VAULT", help="Vault file (default: user data dir)."),
    ] = None,
) -> None:
    help_without_command(ctx)
    STATE.vault = vault or default_vault_path()


@app.command()
def init(
    iterations: Annotated[
        int | None, typer.Option(help="PBKDF2 iterations (≥ 100000; default 100000).")
    ] = None,
    device_name: Annotated[str | None, typer.Option("--device-name")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a new local vault (salt, data key, key DID)."""
    from nt2sync.engine import Client

    if iterations is not None and not MIN_KDF_ITERATIONS <= iterations <= MAX_KDF_ITERATIONS:
        raise UsageProblem("--iterations must be between 100000 and 10000000.")
    password = read_password(confirm=True)
    chosen = {} if iterations is None else {"iterations": iterations}
    client = Client.init(STATE.vault, password, device_name=device_name, **chosen)
    try:
        key_did = client.meta.key_did
    finally:
        client.close()
    if as_json:
        render.emit({"keyDid": key_did})
    else:
        render.say(f"New vault at {STATE.vault}\nKey DID: {key_did}")


@app.command()
def kit(
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write the kit here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Setup/recovery kit (server, key DID, KDF, salt, MAC) as JSON and a QR code.

    No secret is in it, but the kit plus a guessed master password opens the vault: keep it
    like a recovery code.
    """
    with unlocked() as client:
        data = client.kit()
    text = json.dumps(data)
    if out_file:
        out_file.write_text(text + "\n")
    if as_json:
        render.emit(data)
        return
    render.say(text)
    render.say(
        "Keep this kit like a recovery code: with a guessed master password it opens the "
        "vault. Its MAC lets `join` detect a changed server, key or KDF."
    )
    import segno

    segno.make(text, error="m").terminal(compact=True)
    if out_file:
        render.say(f"Kit written to {out_file}.")


@app.command()
def join(
    server: Annotated[str | None, typer.Option("--server")] = None,
    key_did: Annotated[str | None, typer.Option("--key-did")] = None,
    kit_file: Annotated[
        Path | None, typer.Option("--kit", help="A kit written by `nt2sync kit`.")
    ] = None,
    device_name: Annotated[str | None, typer.Option("--device-name")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set up this device from the server and the master password."""
    from nt2sync.engine import Client

    data = None
    if kit_file:
        data = read_kit(kit_file)
        if server and server != data.get("server"):
            raise UsageProblem("--server differs from the kit's server; use one or the other.")
        server = data.get("server")
        key_did = key_did or data["keyDid"]
    if not server or not key_did:
        raise UsageProblem("join needs --server and --key-did, or --kit FILE.")
    password = read_password()
    client, summary = Client.join(
        STATE.vault,
        server,
        key_did,
        password,
        kit=data,
        device_name=device_name,
        progress=render.progress(),
    )
    try:
        meta = client.meta
    finally:
        client.close()
    if as_json:
        render.emit({"keyDid": meta.key_did, "replicaId": meta.replica_id, **summary.as_dict()})
    else:
        render.say(f"Joined {key_did} as {meta.replica_id}: {summary.pulled} items pulled.")
