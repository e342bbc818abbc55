"""`nt2sync vault …`: the local vault as a whole."""

from __future__ import annotations

from nt2sync.cli import render
from nt2sync.cli.context import JsonOpt, group, opened

app = group("The local vault.")


@app.command("fingerprint")
def vault_fingerprint(as_json: JsonOpt = False) -> None:
    """A short code of the synced items: two devices in sync print the same one."""
    from nt2sync.fingerprint import fingerprint

    with opened() as client:
        data = fingerprint(client)
    if as_json:
        render.emit(data)
        return
    render.say(f"{data['fingerprint']}  ({data['items']} items at watermark {data['watermark']})")
    if data["pending"]:
        render.say(f"{data['pending']} local changes are not synced yet: sync, then compare.")
