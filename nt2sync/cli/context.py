"""What every command shares: the vault path, the master password, an unlocked client.

The engine (and with it httpx, the crypto and SQLite) is imported only when a command
opens the vault, so `nt2sync --help` starts without them.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nt2sync.cli import render
from nt2sync.errors import ClientError

if TYPE_CHECKING:
    from nt2sync.engine import Client

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Do not sync after this change.")]


class _State:
    vault: Path


STATE = _State()


def default_vault_path() -> Path:
    """Where the vault lives unless --vault says otherwise."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("nt2sync", "NT2")) / "vault.sqlite3"


def group(text: str) -> typer.Typer:
    """A sub-command group that prints its help (exit 2) when called without a command."""
    sub = typer.Typer(help=text, invoke_without_command=True, rich_markup_mode=None)
    sub.callback()(help_without_command)
    return sub


def help_without_command(ctx: typer.Context) -> None:
    """`nt2sync item` alone: the group's help on stderr, a usage exit code (as typer's
    no_args_is_help would, without catching its unexported exception)."""
    if ctx.invoked_subcommand is None:
        sys.stderr.write(ctx.get_help() + "\n")
        raise typer.Exit(2)


def read_password(
    env: str = "NT2_PASSWORD", label: str = "Master password", *, confirm: bool = False
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


def read_kit(path: Path) -> dict[str, Any]:
    """A kit file written by `nt2sync kit`."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data["keyDid"], str):
            raise ValueError("not a kit")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClientError(f"{path} is not a kit written by `nt2sync kit`.") from exc
    return data


@contextmanager
def opened() -> Iterator[Client]:
    """The vault, still locked (commands that need no password)."""
    from nt2sync.engine import Client

    client = Client.open(STATE.vault)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def unlocked() -> Iterator[Client]:
    """Open the vault and unlock it with the master password."""
    with opened() as client:
        client.unlock(read_password())
        yield client
        for notice in client.notices:
            render.warn(notice)


def after_write(client: Client, offline: bool) -> None:
    """Sync on change (unless --offline); a failure keeps the change local and says so."""
    if offline or not client.meta.sync_enabled:
        return
    try:
        client.sync_now(render.progress())
    except ClientError as exc:
        render.warn(f"Saved locally; not synced yet: {exc.message}")
