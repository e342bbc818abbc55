"""`nt2sync`: the reference client's command line (the SDK is nt2sync.engine).

`main` is the one boundary where errors become a sentence on stderr and an exit code.
"""

from __future__ import annotations

import sys

import typer

from nt2sync.cli.root import app
from nt2sync.errors import ClientError, UsageProblem

USAGE = 2
INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error is one sentence on stderr (exit 1, or 2 for usage)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="nt2sync", standalone_mode=False)
    except UsageProblem as exc:
        return _fail(exc.message, USAGE)
    except ClientError as exc:
        return _fail(exc.message, 1)
    except (typer.Abort, KeyboardInterrupt):
        return _fail("Interrupted; nothing half-done was kept.", INTERRUPTED)
    except typer.TyperException as exc:  # typer's own parsing errors (its click's UsageError)
        return _fail(*_typer_refusal(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror or 'I/O error'}: {exc.filename or ''}".rstrip(": ") + ".", 1)
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: never a traceback
        return _fail(_unexpected(exc), 1)
    return result if isinstance(result, int) else 0


def _typer_refusal(exc: typer.TyperException) -> tuple[str, int]:
    # A usage error carries the context of the command it was raised for (typer does not
    # export the class itself, only this base).
    ctx = getattr(exc, "ctx", None)
    if exc.exit_code == USAGE:
        path = ctx.command_path if ctx is not None else "nt2sync"
        message = exc.format_message().rstrip(".")
        return f"Usage error: {message} (see `{path} --help`).", USAGE
    return exc.format_message(), exc.exit_code


def _unexpected(exc: Exception) -> str:
    from chalicelib.shared.crypto import CryptoError

    if isinstance(exc, CryptoError):
        return f"Refused: {exc}."
    return f"Unexpected error ({type(exc).__name__}); please report it."


def _fail(message: str, code: int) -> int:
    from nt2sync.cli.render import printable

    sys.stderr.write(printable(message) + "\n")
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
