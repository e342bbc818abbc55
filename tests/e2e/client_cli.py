"""Drive the `nt2sync` CLI as a person would: in-process (fast) or as a subprocess."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nt2sync.cli import main

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


def run(vault: Path, *args: str, password: str | None = "pw-one", **env: str) -> Result:
    """`nt2sync --vault VAULT ARGS…` in this process, with NT2_PASSWORD (never on argv)."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.pop("NT2_PASSWORD", None)
    os.environ.pop("NT2_NEW_PASSWORD", None)
    if password is not None:
        os.environ["NT2_PASSWORD"] = password
    os.environ.update(env)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--vault", str(vault), *args])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Result(code, out.getvalue(), err.getvalue())


def run_process(vault: Path, *args: str, password: str | None = "pw-one", **env: str) -> Result:
    """The same through `python -m nt2sync` in a child process (stdin is not a terminal)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("NT2_")}
    if password is not None:
        child_env["NT2_PASSWORD"] = password
    child_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "nt2sync", "--vault", str(vault), *args],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
