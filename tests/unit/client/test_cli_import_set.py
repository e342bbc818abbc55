"""`nt2sync --help` starts at once: it imports the CLI's own modules and typer, nothing heavy.

Asserted on `sys.modules` in a fresh interpreter, not on time (time depends on the
machine; what is imported does not). The engine, httpx, the crypto, SQLite and rich are
imported by the commands that use them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
NOT_FOR_HELP = ("httpx", "rich", "boto3", "botocore", "moto", "nacl", "cryptography", "sqlite3")
NOT_FOR_HELP_OURS = ("nt2sync.engine", "nt2sync.api", "nt2sync.vault")

PROBE = """
import contextlib, io, json, sys
from nt2sync.cli import main
shown = io.StringIO()
with contextlib.redirect_stdout(shown):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "help": shown.getvalue(), "modules": sorted(sys.modules)}))
"""


def loaded_for(*argv: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def server_side(module: str) -> bool:
    """A chalicelib module outside chalicelib.shared (the server's code)."""
    return module.startswith("chalicelib.") and not (
        module == "chalicelib.shared" or module.startswith("chalicelib.shared.")
    )


@pytest.mark.parametrize(
    "argv", [("--help",), ("item", "--help"), ("sync", "enable", "--help")], ids=" ".join
)
def test_help_loads_no_network_crypto_storage_or_rich(argv: tuple[str, ...]) -> None:
    # WHEN the CLI renders help in a fresh interpreter
    probe = loaded_for(*argv)
    # THEN it really printed the help
    assert probe["code"] == 0 and probe["help"].startswith("Usage: nt2sync")
    modules = probe["modules"]
    # AND it imported no third-party package the commands use, nor the server, nor the engine
    assert [m for m in modules if m.split(".")[0] in NOT_FOR_HELP] == []
    assert [m for m in modules if server_side(m)] == []
    assert [m for m in modules if m in NOT_FOR_HELP_OURS] == []
    assert "nt2sync.cli.root" in modules  # the probe really loaded the command tree
