"""`nt2sync sync …`: turning cloud sync on and off, syncing, its status."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from nt2sync.cli import render
from nt2sync.cli.context import JsonOpt, group, opened, unlocked

app = group("Cloud sync.")


@app.command("enable")
def sync_enable(
    server: Annotated[str, typer.Option("--server", help="The API's public base URL.")],
    device_name: Annotated[str | None, typer.Option("--device-name")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register this vault (existing salt), push everything, pull."""
    with unlocked() as client:
        summary = client.enable(server, device_name=device_name, progress=render.progress())
        extra = {
            "syncEnabled": True,
            "server": client.meta.server_url,
            "keyDid": client.meta.key_did,
        }
    render.summary(summary, as_json, extra)


@app.command("now")
def sync_now(as_json: JsonOpt = False) -> None:
    """Push local changes and pull remote ones."""
    with unlocked() as client:
        summary = client.sync_now(render.progress())
    render.summary(summary, as_json)


@app.command("status")
def sync_status(
    offline: Annotated[bool, typer.Option("--offline", help="Local state only.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Registered?, last sync, local vs remote counts, watermark, devices, Premium."""
    with unlocked() as client:
        data = client.status(offline=offline)
    render.emit(data) if as_json else render.status(data)


@app.command("disable")
def sync_disable(as_json: JsonOpt = False) -> None:
    """Stop syncing on this device (the server keeps the vault)."""
    with opened() as client:
        data = client.disable()
    if as_json:
        render.emit(data)
    else:
        render.say("Cloud sync is off on this device; the server keeps the vault's data.")


@app.command("watch")
def sync_watch(as_json: JsonOpt = False) -> None:
    """Stay running and keep this vault in sync (live notifications); Ctrl-C stops."""
    import signal
    import threading
    import time

    from nt2sync import live
    from nt2sync.errors import UsageProblem

    stop = threading.Event()

    def on_sync(done: live.Sync) -> None:
        data = {"reason": done.reason, "at": int(time.time() * 1000), **done.summary.as_dict()}
        if as_json:
            render.emit(data)
        else:
            s = done.summary
            render.say(
                f"{time.strftime('%H:%M:%S')} synced ({done.reason}): pushed {s.pushed}, "
                f"pulled {s.pulled}, conflicts {s.conflicts}"
            )
        sys.stdout.flush()

    def on_signal(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with unlocked() as client:
        if not client.meta.sync_enabled:
            raise UsageProblem("Cloud sync is off on this device: run `nt2sync sync enable`.")
        why = live.watch(client, on_sync, stop, on_event=lambda text: render.warn(text))
    if why != live.STOPPED:
        if as_json:
            render.emit({"ended": why})
        render.warn(why)
        raise typer.Exit(3)
