"""`nt2sync backup …`: encrypted .nt2backup files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nt2sync.cli import render
from nt2sync.cli.context import (
    STATE,
    JsonOpt,
    OfflineOpt,
    after_write,
    group,
    read_password,
    unlocked,
)

app = group("Encrypted .nt2backup files.")


@app.command("export")
def backup_export(file: Path, as_json: JsonOpt = False) -> None:
    """Write an encrypted .nt2backup."""
    with unlocked() as client:
        count = client.export_backup(file)
    if as_json:
        render.emit({"file": str(file), "items": count})
    else:
        render.say(f"{count} items written to {file}.")


@app.command("import")
def backup_import(
    file: Path,
    restore_deleted: Annotated[
        bool,
        typer.Option("--restore-deleted", help="Bring back items deleted here since."),
    ] = False,
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore (empty path) or merge (same vault) a .nt2backup; local deletions stay."""
    from nt2sync.engine import Client
    from nt2sync.vault import Vault

    password = read_password()
    if Vault.exists(STATE.vault):
        with unlocked() as client:
            count = client.import_into(file, password, restore_deleted=restore_deleted)
            after_write(client, offline)
    else:
        client, count = Client.import_new(STATE.vault, file, password)
        client.close()
    render.emit({"file": str(file), "imported": count}) if as_json else render.say(
        f"{count} items imported."
    )
