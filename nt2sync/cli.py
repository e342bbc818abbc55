"""`nt2sync`: the reference client's command line (the SDK is nt2sync.engine)."""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from platformdirs import user_data_dir
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

# typer ships its own click; its exceptions are only importable from there.
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from chalicelib.shared import crypto
from nt2sync.engine import Client, NoProgress, Progress, SyncSummary
from nt2sync.errors import ClientError, UsageProblem

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="NT² reference client: a local encrypted vault with end-to-end-encrypted cloud sync.",
)
item_app = typer.Typer(no_args_is_help=True, help="Items in the local vault.")
sync_app = typer.Typer(no_args_is_help=True, help="Cloud sync.")
devices_app = typer.Typer(no_args_is_help=True, help="Enrolled devices.")
backup_app = typer.Typer(no_args_is_help=True, help="Encrypted .nt2backup files.")
attach_app = typer.Typer(no_args_is_help=True, help="Encrypted attachments.")
premium_app = typer.Typer(no_args_is_help=True, help="NT² Premium.")
password_app = typer.Typer(no_args_is_help=True, help="Master password.")
for sub, name in (
    (item_app, "item"),
    (sync_app, "sync"),
    (devices_app, "devices"),
    (backup_app, "backup"),
    (attach_app, "attach"),
    (premium_app, "premium"),
    (password_app, "password"),
):
    app.add_typer(sub, name=name)

out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Do not sync after this change.")]


class _State:
    vault: Path


STATE = _State()


def default_vault_path() -> Path:
    """Where the vault lives unless --vault says otherwise."""
    return Path(user_data_dir("nt2sync", "NT2")) / "vault.sqlite3"


@app.callback()
def _global(
    vault: Annotated[
        Path | None,
        typer.Option("--vault", envvar="NT2_VAULT", help="Vault file (default: user data dir)."),
    ] = None,
) -> None:
    STATE.vault = vault or default_vault_path()


# -- helpers -----------------------------------------------------------------------------------
def read_password(
    env: str = "NT2_PASSWORD", label: str = "Master password", *, confirm=False
) -> str:
    """From the environment variable, else asked without echo on a terminal; never from argv."""
    value = os.environ.get(env)
    if value:
        return value
    if sys.stdin.isatty():
        value = getpass.getpass(f"{label}: ")
        if confirm and getpass.getpass(f"{label} (again): ") != value:
            raise ClientError("The two passwords differ.")
        if value:
            return value
    raise ClientError(f"No master password: set {env} (stdin is not a terminal).")


def emit(data: Any) -> None:
    """Print JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=None, sort_keys=False) + "\n")


def relative(ms: int | None) -> str:
    """'3 min ago' style time."""
    if not ms:
        return "never"
    delta = time.time() - ms / 1000
    if delta < 0:
        return "just now"
    for limit, unit, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600)):
        if delta < limit:
            return f"{int(delta // size)} {unit} ago"
    return f"{int(delta // 86400)} d ago"


class CliProgress:
    """Rich progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self._bar: RichProgress | None = None
        self._task: Any = None

    def start(self, label: str, total: int | None) -> None:
        """Open a bar."""
        if not err.is_terminal:
            return
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int) -> None:
        """Move it."""
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def stop(self) -> None:
        """Close it."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def progress() -> Progress:
    """The progress reporter for this run."""
    return CliProgress() if err.is_terminal else NoProgress()


@contextmanager
def unlocked(kit_kdf: dict[str, Any] | None = None) -> Iterator[Client]:
    """Open the vault and unlock it with the master password."""
    client = Client.open(STATE.vault)
    try:
        client.unlock(read_password(), kit_kdf=kit_kdf)
        yield client
        for notice in client.notices:
            err.print(notice)
    finally:
        client.close()


def after_write(client: Client, offline: bool) -> None:
    """Sync on change (unless --offline); a failure keeps the change local and says so."""
    if offline or not client.meta.sync_enabled:
        return
    try:
        client.sync_now(progress())
    except ClientError as exc:
        err.print(f"Saved locally; not synced yet: {exc.message}")


def print_summary(summary: SyncSummary, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """The result of a sync."""
    data = {**summary.as_dict(), **(extra or {})}
    if as_json:
        emit(data)
        return
    for notice in summary.notices:
        err.print(notice)
    out.print(
        f"Synced: {summary.pushed} pushed, {summary.pulled} pulled, {summary.conflicts} conflicts"
        + (
            f", {summary.attachments_uploaded} attachments uploaded"
            if summary.attachments_uploaded
            else ""
        )
        + "."
    )


# -- init / kit / join -------------------------------------------------------------------------
@app.command()
def init(
    iterations: Annotated[
        int, typer.Option(help="PBKDF2 iterations (≥ 100000).")
    ] = crypto.DEFAULT_ITERATIONS,
    device_name: Annotated[str | None, typer.Option("--device-name")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a new local vault (salt, data key, key DID)."""
    if iterations < crypto.MIN_ITERATIONS or iterations > crypto.MAX_ITERATIONS:
        raise UsageProblem("--iterations must be between 100000 and 10000000.")
    password = read_password(confirm=True)
    client = Client.init(STATE.vault, password, iterations=iterations, device_name=device_name)
    try:
        key_did = client.meta.key_did
    finally:
        client.close()
    if as_json:
        emit({"keyDid": key_did})
    else:
        out.print(f"New vault at {STATE.vault}\nKey DID: {key_did}")


@app.command()
def kit(
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write the kit here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Setup/recovery kit (server URL, key DID, KDF; no secret) as JSON and a QR code."""
    client = Client.open(STATE.vault)
    try:
        data = client.kit()
    finally:
        client.close()
    text = json.dumps(data)
    if out_file:
        out_file.write_text(text + "\n")
    if as_json:
        emit(data)
        return
    out.print(text)
    import segno

    segno.make(text, error="m").terminal(compact=True)
    if out_file:
        out.print(f"Kit written to {out_file}.")


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
    salt_hex = kdf = None
    if kit_file:
        data = read_kit(kit_file)
        server = server or data.get("server")
        key_did = key_did or data["keyDid"]
        salt_hex = data.get("saltHex")
        kdf = data.get("kdf")
    if not server or not key_did:
        raise UsageProblem("join needs --server and --key-did, or --kit FILE.")
    password = read_password()
    client, summary = Client.join(
        STATE.vault,
        server,
        key_did,
        password,
        kit_salt_hex=salt_hex,
        kit_kdf=kdf,
        device_name=device_name,
        progress=progress(),
    )
    try:
        meta = client.meta
    finally:
        client.close()
    if as_json:
        emit({"keyDid": meta.key_did, "replicaId": meta.replica_id, **summary.as_dict()})
    else:
        out.print(f"Joined {key_did} as {meta.replica_id}: {summary.pulled} items pulled.")


# -- items -------------------------------------------------------------------------------------
def _show(view: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    for key in ("id", "title", "username", "url", "body"):
        table.add_row(key, str(view[key]))
    table.add_row("updated", relative(view["updatedAt"]))
    out.print(table)


@item_app.command("add")
def item_add(
    title: str,
    body: Annotated[str | None, typer.Option()] = None,
    username: Annotated[str | None, typer.Option()] = None,
    url: Annotated[str | None, typer.Option()] = None,
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Add an item; prints its id."""
    with unlocked() as client:
        item_id = client.add_item(title, body=body, username=username, url=url)
        after_write(client, offline)
    emit({"id": item_id}) if as_json else out.print(item_id)


@item_app.command("edit")
def item_edit(
    item_id: Annotated[str, typer.Argument(metavar="ID")],
    title: Annotated[str | None, typer.Option()] = None,
    body: Annotated[str | None, typer.Option()] = None,
    username: Annotated[str | None, typer.Option()] = None,
    url: Annotated[str | None, typer.Option()] = None,
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Change fields of an item."""
    with unlocked() as client:
        client.edit_item(item_id, title=title, body=body, username=username, url=url)
        after_write(client, offline)
        view = Client.public_view(item_id, client.get_item(item_id))
    emit(view) if as_json else out.print(f"Edited {item_id}.")


@item_app.command("show")
def item_show(
    item_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOpt = False
) -> None:
    """Show one item."""
    with unlocked() as client:
        view = Client.public_view(item_id, client.get_item(item_id))
    emit(view) if as_json else _show(view)


@item_app.command("list")
def item_list(as_json: JsonOpt = False) -> None:
    """List items."""
    with unlocked() as client:
        views = [Client.public_view(i, p) for i, p in client.list_items()]
    if as_json:
        emit(views)
        return
    table = Table("id", "title", "username", "url", "updated")
    for v in views:
        table.add_row(v["id"], v["title"], v["username"], v["url"], relative(v["updatedAt"]))
    out.print(table)


@item_app.command("rm")
def item_rm(
    item_id: Annotated[str, typer.Argument(metavar="ID")],
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete an item."""
    with unlocked() as client:
        client.remove_item(item_id)
        after_write(client, offline)
    emit({"id": item_id, "deleted": True}) if as_json else out.print(f"Deleted {item_id}.")


# -- sync --------------------------------------------------------------------------------------
@sync_app.command("enable")
def sync_enable(
    server: Annotated[str, typer.Option("--server", help="The API's public base URL.")],
    device_name: Annotated[str | None, typer.Option("--device-name")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register this vault (existing salt), push everything, pull."""
    with unlocked() as client:
        summary = client.enable(server, device_name=device_name, progress=progress())
        extra = {
            "syncEnabled": True,
            "server": client.meta.server_url,
            "keyDid": client.meta.key_did,
        }
    print_summary(summary, as_json, extra)


def read_kit(path: Path) -> dict[str, Any]:
    """A kit file written by `nt2sync kit`."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data["keyDid"], str):
            raise ValueError("not a kit")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClientError(f"{path} is not a kit written by `nt2sync kit`.") from exc
    return data


@sync_app.command("now")
def sync_now(
    kit_file: Annotated[
        Path | None,
        typer.Option("--kit", help="New kit, after a password change that raised iterations."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Push local changes and pull remote ones."""
    kit_kdf = read_kit(kit_file).get("kdf") if kit_file else None
    with unlocked(kit_kdf) as client:
        summary = client.sync_now(progress())
    print_summary(summary, as_json)


@sync_app.command("status")
def sync_status(
    offline: Annotated[bool, typer.Option("--offline", help="Local state only.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Registered?, last sync, local vs remote counts, watermark, devices, Premium."""
    with unlocked() as client:
        data = client.status(offline=offline)
    if as_json:
        emit(data)
        return
    table = Table(show_header=False, box=None)
    premium = data["premium"] or {}
    rows = [
        ("sync", "on" if data["syncEnabled"] else "off"),
        ("server", data["server"] or "-"),
        ("registered", {None: "unknown", True: "yes", False: "no"}[data["registered"]]),
        ("key DID", data["keyDid"]),
        ("last sync", relative(data["lastSyncAt"])),
        (
            "items",
            f"{data['counts']['local']} local / {_or_unknown(data['counts']['remote'])} remote",
        ),
        ("pending", str(data["pending"])),
        ("watermark", str(data["watermark"])),
        ("devices", str(data["devices"] if data["devices"] is not None else "?")),
        (
            "premium",
            "active" if premium.get("active") else ("required" if premium.get("required") else "-"),
        ),
    ]
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)


def _or_unknown(value: Any) -> str:
    return "?" if value is None else str(value)


@sync_app.command("disable")
def sync_disable(as_json: JsonOpt = False) -> None:
    """Stop syncing on this device (the server keeps the vault)."""
    client = Client.open(STATE.vault)
    try:
        data = client.disable()
    finally:
        client.close()
    if as_json:
        emit(data)
    else:
        out.print("Cloud sync is off on this device; the server keeps the vault's data.")


# -- devices -----------------------------------------------------------------------------------
@devices_app.command("list")
def devices_list(as_json: JsonOpt = False) -> None:
    """Enrolled devices."""
    with unlocked() as client:
        devices = client.devices()
    if as_json:
        emit(devices)
        return
    table = Table("replica", "name", "enrolled", "last seen", "revoked", "")
    for d in devices:
        table.add_row(
            d["replicaId"],
            d.get("name") or "-",
            relative(d.get("enrolledAt")),
            relative(d.get("lastSeenAt")),
            relative(d["revokedAt"]) if d.get("revokedAt") else "",
            "this device" if d.get("current") else "",
        )
    out.print(table)


@devices_app.command("rename")
def devices_rename(replica: str, name: str, as_json: JsonOpt = False) -> None:
    """Rename a device."""
    with unlocked() as client:
        device = client.rename_device(replica, name)
    emit(device) if as_json else out.print(f"Renamed {replica} to {name}.")


@devices_app.command("revoke")
def devices_revoke(replica: str, as_json: JsonOpt = False) -> None:
    """Revoke a device (then `password change` cuts it off fully)."""
    with unlocked() as client:
        device = client.revoke_device(replica)
    if as_json:
        emit(device)
    else:
        out.print(
            f"Revoked {replica}. If that device knows the master password, run "
            "`nt2sync password change` to cut it off fully."
        )


# -- password ----------------------------------------------------------------------------------
@password_app.command("change")
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
        emit({"keyDid": key_did, "kit": kit_data})
        return
    out.print(f"Master password changed. New key DID: {key_did}")
    if kit_data["kdf"]["iterations"] != old_iterations:
        out.print("The KDF changed: other devices need this new kit:")
    else:
        out.print("Export a new recovery kit with `nt2sync kit`.")
    out.print(json.dumps(kit_data))


# -- backup ------------------------------------------------------------------------------------
@backup_app.command("export")
def backup_export(file: Path, as_json: JsonOpt = False) -> None:
    """Write an encrypted .nt2backup."""
    with unlocked() as client:
        count = client.export_backup(file)
    emit({"file": str(file), "items": count}) if as_json else out.print(
        f"{count} items written to {file}."
    )


@backup_app.command("import")
def backup_import(file: Path, offline: OfflineOpt = False, as_json: JsonOpt = False) -> None:
    """Restore (empty path) or merge (same vault) a .nt2backup."""
    password = read_password()
    from nt2sync.vault import Vault

    if Vault.exists(STATE.vault):
        with unlocked() as client:
            count = client.import_into(file, password)
            after_write(client, offline)
    else:
        client, count = Client.import_new(STATE.vault, file, password)
        client.close()
    emit({"file": str(file), "imported": count}) if as_json else out.print(
        f"{count} items imported."
    )


# -- attachments -------------------------------------------------------------------------------
@attach_app.command("add")
def attach_add(
    item_id: str, file: Path, offline: OfflineOpt = False, as_json: JsonOpt = False
) -> None:
    """Encrypt a file and attach it to an item."""
    if not file.is_file():
        raise ClientError(f"{file} is not a readable file.")
    with unlocked() as client:
        attachment_id = client.add_attachment(item_id, file)
        after_write(client, offline)
    emit({"id": attachment_id}) if as_json else out.print(attachment_id)


@attach_app.command("get")
def attach_get(
    attachment_id: str,
    out_path: Annotated[Path, typer.Argument(metavar="OUT")],
    as_json: JsonOpt = False,
) -> None:
    """Decrypt an attachment into a file."""
    with unlocked() as client:
        size = client.get_attachment(attachment_id, out_path)
    emit({"id": attachment_id, "file": str(out_path), "size": size}) if as_json else out.print(
        f"Wrote {size} bytes to {out_path}."
    )


@attach_app.command("rm")
def attach_rm(attachment_id: str, offline: OfflineOpt = False, as_json: JsonOpt = False) -> None:
    """Remove an attachment."""
    with unlocked() as client:
        client.remove_attachment(attachment_id)
        after_write(client, offline)
    emit({"id": attachment_id, "deleted": True}) if as_json else out.print(
        f"Removed {attachment_id}."
    )


@attach_app.command("list")
def attach_list(as_json: JsonOpt = False) -> None:
    """Attachments of every item."""
    with unlocked() as client:
        refs = client.attachment_refs()
    if as_json:
        emit(refs)
        return
    table = Table("id", "item", "name", "size", "local", "uploaded")
    for r in refs:
        table.add_row(
            r["id"],
            r["itemId"],
            str(r["name"]),
            str(r["size"]),
            "yes" if r["local"] else "no",
            "yes" if r["uploaded"] else "no",
        )
    out.print(table)


# -- premium -----------------------------------------------------------------------------------
ServerOpt = Annotated[str | None, typer.Option("--server", help="Before sync is enabled.")]


@contextmanager
def premium_client(server: str | None) -> Iterator[Client]:
    """An unlocked client talking to the vault's server, or --server before enabling."""
    with unlocked() as client:
        if server:
            client.use_server(server)
        yield client


def _premium_line(p: dict[str, Any]) -> str:
    if p.get("active"):
        until = p.get("expiresAt")
        return f"Premium active ({p.get('source')})" + (
            f" until {time.strftime('%Y-%m-%d', time.gmtime(until / 1000))}" if until else ""
        )
    return "Premium not active" + (
        " (required for sync on this server)" if p.get("required") else ""
    )


@premium_app.command("status")
def premium_status(server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Premium state of this vault."""
    with premium_client(server) as client:
        data = client.premium("status")
    emit(data) if as_json else out.print(_premium_line(data))


@premium_app.command("redeem")
def premium_redeem(code: str, server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Redeem a promo code."""
    with premium_client(server) as client:
        data = client.premium("redeem", code)
    emit(data) if as_json else out.print(_premium_line(data))


@premium_app.command("checkout")
def premium_checkout(server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Print the checkout URL."""
    with premium_client(server) as client:
        data = client.premium("checkout")
    emit(data) if as_json else out.print(data["url"])


# -- entry point -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error is one sentence on stderr (exit 1, or 2 for usage)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="nt2sync", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        sys.stderr.write(exc.ctx.get_help() + "\n" if exc.ctx else "See `nt2sync --help`.\n")
        return 2
    except UsageError as exc:
        path = exc.ctx.command_path if exc.ctx else "nt2sync"
        message = exc.format_message().rstrip(".")
        sys.stderr.write(f"Usage error: {message} (see `{path} --help`).\n")
        return 2
    except UsageProblem as exc:
        sys.stderr.write(exc.message + "\n")
        return 2
    except ClientError as exc:
        sys.stderr.write(exc.message + "\n")
        return 1
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("Interrupted; nothing half-done was kept.\n")
        return 130
    except ClickException as exc:
        sys.stderr.write(exc.format_message() + "\n")
        return exc.exit_code
    except crypto.CryptoError as exc:
        sys.stderr.write(f"Refused: {exc}.\n")
        return 1
    except OSError as exc:
        sys.stderr.write(
            f"{exc.strerror or 'I/O error'}: {exc.filename or ''}".rstrip(": ") + ".\n"
        )
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: never a traceback
        sys.stderr.write(f"Unexpected error ({type(exc).__name__}); please report it.\n")
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
