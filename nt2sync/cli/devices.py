"""`nt2sync devices …`: the vault's enrolled devices."""

from __future__ import annotations

from nt2sync.cli import render
from nt2sync.cli.context import JsonOpt, group, unlocked

app = group("Enrolled devices.")


@app.command("list")
def devices_list(as_json: JsonOpt = False) -> None:
    """Enrolled devices."""
    with unlocked() as client:
        devices = client.devices()
    render.emit(devices) if as_json else render.devices(devices)


@app.command("rename")
def devices_rename(replica: str, name: str, as_json: JsonOpt = False) -> None:
    """Rename a device."""
    with unlocked() as client:
        device = client.rename_device(replica, name)
    render.emit(device) if as_json else render.say(f"Renamed {replica} to {name}.")


@app.command("revoke")
def devices_revoke(replica: str, as_json: JsonOpt = False) -> None:
    """Revoke a device (then `password change --rekey` cuts it off fully)."""
    with unlocked() as client:
        device = client.revoke_device(replica)
    if as_json:
        render.emit(device)
    else:
        render.say(
            f"Revoked {replica}. If that device knows the master password, run "
            "`nt2sync password change --rekey` to cut it off fully: a new password and a new "
            "data key, so neither the old password nor anything copied from that device opens "
            "what is written from then on."
        )
